//! ImageNet-X data: annotations, label sets, prediction files, images.
//!
//! Reads the files of the ImageNet-X release (as the PyPI wheel `imagenet-x` 0.0.7 ships them
//! in `imagenet_x/annotations/`) into typed records, with errors that name the file and line
//! at fault; finds the images of a folder or of archives (tar, WebDataset, parquet) without extracting them ([`discover_images`], [`archives`]); and owns the predictions CSV:
//! its one writer ([`PredictionWriter`]), the reader of whole top-5 rows
//! ([`read_prediction_rows`]) and the reader that aligns the paper toolkit's top-1 columns
//! with the annotated images for the analysis ([`read_predictions`]).
//!
//! ```
//! use imagenetx_dataset::{PredictionRow, PredictionWriter, read_prediction_rows};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("model.csv");
//! let mut writer = PredictionWriter::new(std::fs::File::create(&path)?)?;
//! writer.write(&PredictionRow::new("ILSVRC2012_val_00000001.JPEG", vec![65, 62], vec![0.8, 0.1]))?;
//! writer.finish()?;
//! let rows = read_prediction_rows(&path)?;
//! assert_eq!(rows[0].classes, [65, 62]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With the annotations (`just setup` fetches them):
//!
//! ```no_run
//! use imagenetx_dataset::{AnnotationDir, LoadOptions, read_predictions};
//!
//! let dir = AnnotationDir::discover(None)?; // an explicit folder, $IMAGENETX_ANNOTATIONS, caches
//! let set = dir.load_set(LoadOptions::default())?; // val, top factor, prototypes removed
//! let aligned = read_predictions("ResNet50.csv".as_ref(), &set, false)?;
//! println!("{} of {} annotated images lack a prediction", aligned.missing, set.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod annotations;
pub mod archives;
pub mod cache;
mod error;
pub mod images;
pub mod labels;
pub mod predictions;
mod record;

pub use annotations::{
    AnnotatedSet, AnnotationDir, AnnotationRecord, LoadOptions, Partition, Selection,
};
pub use archives::{Member, expand_pattern};
pub use cache::{CacheStatus, ParseCache};
pub use error::{Error, Result};
pub use images::{
    FolderLayout, ImageEntry, ImageList, SkippedEntry, discover_images, discover_images_in,
    escape_file_name, unescape_file_name,
};
pub use predictions::{
    AlignedPredictions, HEADER, ParsedPredictions, PredictionFile, PredictionRow, PredictionWriter,
    TOP_K, align_predictions, collect_prediction_files, format_row, parse_predictions,
    read_prediction_rows, read_predictions,
};
