//! The `imagenetx` binary's integration tests, one test binary: each module is a former test
//! file, run alone with a module filter, e.g. `cargo test -p imagenetx-cli --test integration
//! -- robustness::`. They run the real binary (`IMAGENETX_BIN`, else the one cargo built) on
//! temp folders, against the fixtures of the workspace and the Python references of its
//! `python/` folder, so they are not part of the published package.
//!
//! The tests on the paper's published predictions are `#[ignore]`d (`paper_predictions::`,
//! and one in `report_cli::`): `just test-paper` runs them with `--ignored`.

mod parity_util;

mod archives;
mod build_paths;
mod embed;
mod evaluate;
mod exports;
mod inspect;
mod kubernetes;
mod log_colours;
mod paper_predictions;
mod parity_analysis;
mod parse_cache;
mod preprocess_cmd;
mod report_browser;
mod report_cli;
mod robustness;
mod shards;
mod side_files;
mod slurm;
mod stats_cli;
mod streaming;
mod zoo;
