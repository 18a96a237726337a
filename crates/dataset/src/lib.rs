//! ImageNet-X data: annotations, label sets, prediction files, images.
//!
//! Reads the files of the ImageNet-X release (as the PyPI wheel `imagenet-x` 0.0.7 ships them
//! in `imagenet_x/annotations/`) into typed records, with errors that name the file and line
//! at fault, and aligns prediction files in the paper toolkit's CSV format with the annotated
//! images, ready for the analysis crate `imagenetx-factors`.
//!
//! ```no_run
//! use imagenetx_dataset::{AnnotationDir, LoadOptions, read_predictions};
//! use imagenetx_vocab::{analyze, AnalysisOptions, Factor};
//!
//! let dir = AnnotationDir::discover(None)?; // --annotations, $IMAGENETX_ANNOTATIONS, caches
//! let set = dir.load_set(LoadOptions::default())?; // val, top factor, prototypes removed
//! let preds = read_predictions("ResNet50.csv".as_ref(), &set, false)?;
//! let result = analyze(&set.annotations, "ResNet50", &preds.predictions, AnalysisOptions::default())?;
//! println!("pose error ratio: {:?}", result.error_ratio(Factor::Pose));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod annotations;
pub mod cache;
mod error;
pub mod images;
pub mod labels;
pub mod predictions;
mod record;

pub use annotations::{
    AnnotatedSet, AnnotationDir, AnnotationRecord, LoadOptions, Partition, Selection,
};
pub use cache::{CacheStatus, ParseCache};
pub use error::{Error, Result};
pub use images::{
    ImageEntry, ImageList, SkippedEntry, discover_images, escape_file_name, unescape_file_name,
};
pub use predictions::{
    AlignedPredictions, HEADER, ParsedPredictions, PredictionFile, PredictionRow,
    PredictionWriter, TOP_K, collect_prediction_files, format_row, parse_predictions,
    read_prediction_rows, read_predictions,
};
