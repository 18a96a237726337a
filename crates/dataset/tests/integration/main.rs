//! Integration tests of `imagenetx-dataset`, one test binary: each module is a former test
//! file (run one with a filter: `cargo test -p imagenetx-dataset --test integration --
//! hostile::`).

mod hostile;
mod readers_proptest;
