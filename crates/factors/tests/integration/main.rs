//! Integration tests of `imagenetx-factors`, one test binary: each module is a former test
//! file (run one with a filter: `cargo test -p imagenetx-factors --test integration --
//! stats_reference::`). `stats_reference` compares with statsmodels and numpy through
//! `python/stats_reference.py` of the workspace, so the tests are not part of the published
//! package.

mod stats_coverage;
mod stats_determinism;
mod stats_reference;
