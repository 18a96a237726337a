//! ONNX Runtime inference for ImageNet classifiers exported to ONNX.
//!
//! This is the only crate of the workspace that talks to ONNX Runtime (through `ort`). It
//!
//! - finds the ONNX Runtime shared library where a [`RuntimeSearch`] says to look, and loads
//!   it once per process ([`Runtime::find`], [`Runtime`]); it runs no program and reads no
//!   path of the build machine unless told to;
//! - builds a session on the requested execution provider (every one `ort` offers for
//!   classifiers, [`PROVIDERS`]), failing loudly when one named cannot be used, trying the
//!   accelerators the library has in [`AUTO_ORDER`] then the CPU (and saying so) for `auto`
//!   ([`ExecutionProvider`], [`ProviderReport`], [`Runtime::providers`]);
//! - decides how a model is fed and read: input layout, batch, size, element type, which output
//!   holds the classes, background class, logits or probabilities — each choice with its
//!   reason — and reads the model's metadata, giving no meaning to its custom entries
//!   ([`ModelInfo`], [`Decision`], [`ModelMetadata`]);
//! - runs batches and ranks the classes ([`Classifier`], [`TopK`]);
//! - writes the predictions crash-safely (a journal, one writer per output, resume checked
//!   against the images: [`PredictionsWriter`], [`OutputLock`], [`ResumePlan`]) in the
//!   predictions CSV format of `imagenetx-dataset` ([`PredictionRow`]), and the run record
//!   ([`RunRecord`]).
//!
//! ```
//! use imagenetx_infer::{
//!     Classifier, ClassifierConfig, ExecutionProvider, Layout, Runtime, RuntimeSearch,
//! };
//!
//! # fn main() -> imagenetx_infer::Result<()> {
//! // ORT_DYLIB_PATH, the cache `just setup-ort` fills ($IMAGENETX_CACHE, ~/.cache/imagenetx),
//! // the system library.
//! let runtime = Runtime::find(&RuntimeSearch::default())?;
//! let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/models/nchw_dynamic.onnx");
//! let config = ClassifierConfig::new(model).with_provider(ExecutionProvider::Cpu);
//! let mut classifier = Classifier::new(runtime, &config)?;
//! let layout = classifier.info().decisions.iter().find(|d| d.subject == "layout");
//! assert_eq!(layout.map(ToString::to_string).as_deref(), Some("layout NCHW: input dim 1 is 3"));
//! assert_eq!(classifier.layout(), Layout::Nchw);
//!
//! // Two preprocessed images (here: all zeros) in the layout and size the model takes.
//! let (h, w) = classifier.input_size().unwrap_or((224, 224));
//! let batch = vec![0f32; 2 * 3 * h * w];
//! for result in classifier.classify_slice(&batch, [2, 3, h, w])? {
//!     let top = result?; // Err(NonFiniteOutput) for an image whose scores hold NaN
//!     assert_eq!(top.classes.len(), imagenetx_infer::TOP_K);
//!     assert!(top.probabilities.windows(2).all(|p| p[0] >= p[1]));
//!     let row = top.into_row("grey.png"); // a predictions CSV row
//!     assert_eq!(row.file_name, "grey.png");
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod atomic;
mod classify;
mod error;
pub mod journal;
mod model;
#[doc(hidden)]
pub mod pause;
mod provider;
mod record;
mod runtime;

pub use atomic::write_atomic;
pub use classify::{
    Classifier, ClassifierConfig, ImageResult, PROBE_SIZE, TOP_K, TopK, predict_row,
};
pub use error::{Error, Result};
/// The predictions CSV row the journal stores and writes (defined by `imagenetx-dataset`).
pub use imagenetx_dataset::PredictionRow;
pub use journal::{
    CheckpointPolicy, CutTail, Fingerprint, ImageKeys, JournalIdentity, OutputLock,
    PredictionsWriter, PriorSource, ResumePlan, Rows, RunFiles, StoredRow,
};
pub use model::{
    Decision, Dim, ElementType, InputInfo, InputOverrides, Layout, ModelInfo, ModelMetadata,
    OutputInfo, PROBABILITY_TOLERANCE, ScoreKind, format_shape,
};
pub use provider::{
    AUTO_ORDER, CPU_PROVIDER, CUDA_PROVIDER, ExecutionProvider, PROVIDERS, ProviderAvailability,
    ProviderInfo, ProviderReport, availability,
};
pub use record::{
    ImageListId, MergedShard, ModelFile, ResumeSummary, RunCounts, RunRecord, RunState,
    ShardRecord, SkippedFile, sha256_file, sha256_hex,
};
pub use runtime::{
    LibrarySource, ORT_LIBRARY_FILE, ORT_VERSION, Runtime, RuntimeLibrary, RuntimeReport,
    RuntimeSearch, locate_runtime,
};
