//! Integration tests of `imagenetx-imaging`, one test binary: each module is a former test
//! file (run one with a filter: `cargo test -p imagenetx-imaging --test integration --
//! imaging_parity::`). The parity tests read the workspace's `fixtures/photos` and run
//! `python/preprocess_reference.py`, so the tests are not part of the published package.

mod imaging_errors;
mod imaging_parity;
