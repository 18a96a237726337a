//! **imagenetx**: evaluate an ONNX image classifier on ImageNet and explain its mistakes with
//! the ImageNet-X factors of variation (Idrissi et al., 2022) — the library behind the
//! `imagenetx` command, with the same numbers.
//!
//! This crate is the one dependency an embedder adds. It re-exports the crates it is built
//! from ([`vocab`], [`imaging`], [`dataset`], [`infer`], [`factors`], [`report`]) and has one
//! error type, [`Error`].
//!
//! - [`Evaluator`]: a model ready to run (ONNX Runtime found by a [`RuntimeSearch`], the model
//!   inspected, its preprocessing resolved); [`Evaluator::run`] streams results to a
//!   [`Sink`], [`Evaluator::evaluate`] does a whole evaluation in one call.
//! - [`preprocess`]: defaults → the side files of Hugging Face and timm exports
//!   ([`sidefiles`]) → the model's `imagenetx.preprocess` metadata → the caller's
//!   [`PreprocessSpec`], each resolved field with the [`Layer`] it came from. A model may be
//!   given as its export folder ([`sidefiles::model_file`]).
//! - [`run`]: an evaluation that loses nothing (journal, run record, resume).
//! - [`shard`]: one image list cut into N slices for N processes or cluster tasks, and
//!   [`merge()`]: their predictions put back together, checked, byte for byte what one process
//!   writes.
//! - [`zoo`]: many models in one pass ([`Zoo`]): grouped by their resolved preprocessing, each
//!   image decoded once per group and fed to every model of the group.
//! - [`Truth`] and [`Scores`]: labels, top-1 / top-5 / ReaL accuracy, the factor analysis.
//!
//! ```no_run
//! use imagenetx::{AnnotationOptions, Evaluator, EvaluatorConfig, dataset::discover_images};
//!
//! let mut evaluator = Evaluator::new(EvaluatorConfig::new("model.onnx"))?;
//! // A folder, or ImageNet as distributed: "ILSVRC2012_img_val.tar",
//! // "shards/val-{000000..000063}.tar", a folder of parquet shards.
//! let images = discover_images("imagenet/val".as_ref(), None)?;
//! let evaluation = evaluator.evaluate(&images, &AnnotationOptions::default())?;
//! if let Some(analysis) = evaluation.analysis() {
//!     let pose = analysis.error_ratio(imagenetx::vocab::Factor::Pose);
//!     println!("pose: {pose:?} times the usual share of errors");
//! }
//! evaluation.write_predictions("model.predictions.csv".as_ref())?;
//! # Ok::<(), imagenetx::Error>(())
//! ```
//!
//! The same preprocessing an embedder and the command get, field by field:
//!
//! ```
//! use imagenetx::{Layer, PreprocessSpec, preprocess::resolve_layers};
//! use imagenetx::vocab::Layout;
//!
//! // A model with a fixed 240x240 input, no metadata, the caller asking for bicubic.
//! let caller = PreprocessSpec {
//!     interpolation: Some(imagenetx::imaging::Interpolation::Bicubic),
//!     ..PreprocessSpec::default()
//! };
//! let resolved = resolve_layers(Some((240, 240)), None, &caller, Layout::Nchw)?;
//! assert_eq!(resolved.sources.crop.layer, Layer::ModelInput); // 240, from the input shape
//! assert_eq!(resolved.sources.interpolation.layer, Layer::Caller);
//! assert_eq!(resolved.sources.mean.layer, Layer::Default); // ImageNet mean
//! # Ok::<(), imagenetx::Error>(())
//! ```
//!
//! The analyses of prediction files are one call each in [`analyses`] ([`analyze`],
//! [`compare`], [`assemble_report`], [`annotation_summary`]).
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod analyses;
mod annotations;
mod error;
pub mod evaluate;
pub mod merge;
pub mod preprocess;
pub mod run;
mod score;
pub mod shard;
pub mod sidefiles;
pub mod tensors;
pub mod timing;
pub mod zoo;

pub use analyses::{
    Analysis, AnalyzeOptions, AnnotationSummary, CompareOptions, ComparisonResult, Format,
    ModelRun, ReportRequest, analyze, annotation_summary, assemble_report, compare, run_metadata,
    write_file, write_plots, write_tables,
};
pub use annotations::AnnotationOptions;
pub use error::{Error, Result, ResultExt};
pub use evaluate::{
    Collect, Evaluator, EvaluatorConfig, Inspection, Providers, RunStats, Sink, inspect, providers,
};
pub use imagenetx_dataset::{ImageEntry, ImageList, discover_images, discover_images_in};
pub use imagenetx_infer::{
    CheckpointPolicy, ExecutionProvider, Fingerprint, RuntimeSearch, SkippedFile, TopK,
};
pub use merge::{Merged, MergedPass, merge, merge_pass};
pub use preprocess::{Layer, PreprocessSpec, ResolvedPreprocess, Source, Sources};
pub use run::{Finished, JournalSink, RunOutput, Started};
pub use score::{Accuracy, Evaluation, Scores, Truth};
pub use shard::{Shard, ShardRequest, ShardedList, take_shard};
pub use tensors::{
    TensorConfig, TensorsWritten, WrittenTensor, resolve_tensor_preprocessing, write_tensors,
};
pub use timing::{Bottleneck, PipelineTimes};
pub use zoo::{ModelFailure, ModelOutcome, PassRecord, Zoo};

pub use imagenetx_dataset as dataset;
pub use imagenetx_factors as factors;
pub use imagenetx_imaging as imaging;
pub use imagenetx_infer as infer;
pub use imagenetx_report as report;
pub use imagenetx_vocab as vocab;
