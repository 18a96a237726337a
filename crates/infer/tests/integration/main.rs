//! Integration tests of `imagenetx-infer`, one test binary: each module is a former test file
//! (run one with a filter: `cargo test -p imagenetx-infer --test integration -- models::`).
//! They load the workspace's fixture models and run `tests/ort_reference.py`, so the tests
//! are not part of the published package.
//!
//! A process loads one ONNX Runtime library: `gpu_library::` (ignored, it loads the CUDA
//! build) must run alone, `-- --ignored gpu_library::`. With `--include-ignored` beside the
//! CPU tests, whichever loads second fails with `RuntimeAlreadyLoaded`: never a silent pass.

mod common;

mod gpu_library;
mod models;
