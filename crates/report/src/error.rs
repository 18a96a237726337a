//! The error type of the report crate.

use std::path::PathBuf;

/// What can go wrong while assembling a report or writing its plots.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The statistics of a model could not be computed (inputs that do not fit together).
    #[error("{context}: {error}")]
    Analysis {
        /// What was being computed, and for which model.
        context: String,
        /// The statistics' error (its text is part of the message).
        error: imagenetx_factors::Error,
    },
    /// A plot could not be rasterised to PNG.
    #[cfg(feature = "png")]
    #[error("rasterising plot {name}: {error}")]
    Raster {
        /// The figure's name.
        name: String,
        /// Why.
        error: crate::raster::RasterError,
    },
    /// A scale for the PNG plots outside (0, 16].
    #[error("--png-scale {0} is not a scale in (0, 16]")]
    PngScale(f32),
    /// A folder could not be created.
    #[error("cannot create {}: {error}", path.display())]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The operating-system error.
        error: std::io::Error,
    },
}

/// Result with the report crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
