//! Integration tests of `imagenetx-report`, one test binary: each module is a former test
//! file (run one with a filter: `cargo test -p imagenetx-report --test integration --
//! size_bound::`).

mod size_bound;
