//! **imagenetx**: evaluate an ONNX image classifier on ImageNet and explain its mistakes with
//! the ImageNet-X factors of variation (Idrissi et al., 2022) — the library behind the
//! `imagenetx` command, with the same numbers.
//!
//! This crate is the one dependency an embedder adds. It re-exports the crates it is built
//! from ([`vocab`], [`imaging`], [`dataset`], [`infer`], [`factors`], [`report`]) and has one
//! error type, [`Error`].
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod annotations;
mod error;
pub mod evaluate;
pub mod preprocess;
pub mod run;
mod score;

pub use annotations::AnnotationOptions;
pub use error::{Error, Result, ResultExt};
pub use evaluate::{Collect, Evaluator, EvaluatorConfig, RunStats, Sink};
pub use imagenetx_infer::{ExecutionProvider, RuntimeSearch};
pub use preprocess::{Layer, PreprocessSpec, ResolvedPreprocess, Source, Sources};
pub use run::{Finished, JournalSink, RunOutput, Started};
pub use score::{Accuracy, Evaluation, Scores, Truth};

pub use imagenetx_dataset as dataset;
pub use imagenetx_factors as factors;
pub use imagenetx_imaging as imaging;
pub use imagenetx_infer as infer;
pub use imagenetx_report as report;
pub use imagenetx_vocab as vocab;
