//! **imagenetx**: evaluate an ONNX image classifier on ImageNet and explain its mistakes with
//! the ImageNet-X factors of variation (Idrissi et al., 2022) — the library behind the
//! `imagenetx` command, with the same numbers.
//!
//! This crate is the one dependency an embedder adds. It re-exports the crates it is built
//! from ([`vocab`], [`imaging`], [`dataset`], [`infer`], [`factors`], [`report`]) and has one
//! error type, [`Error`]. The analyses of prediction files are one call each in
//! [`analysis`] ([`analyze`], [`compare`], [`assemble_report`], [`annotation_summary`]).
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod analysis;
mod annotations;
mod error;

pub use analysis::{
    Analysis, AnalyzeOptions, AnnotationSummary, CompareOptions, ComparisonResult, Format,
    ModelRun, ReportRequest, analyze, annotation_summary, assemble_report, compare, run_metadata,
    write_plots, write_tables,
};
pub use annotations::AnnotationOptions;
pub use error::{Error, Result, ResultExt};

pub use imagenetx_dataset as dataset;
pub use imagenetx_factors as factors;
pub use imagenetx_imaging as imaging;
pub use imagenetx_infer as infer;
pub use imagenetx_report as report;
pub use imagenetx_vocab as vocab;
