//! The error type of the annotation and prediction readers.

use std::path::PathBuf;

/// An error reading annotations or predictions. Every variant names the file, and the line
/// where one is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened or read. The OS reason is part of the message (once); it
    /// is not also a [`source`](std::error::Error::source), which `anyhow`'s `{:#}` would
    /// print a second time.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        error: std::io::Error,
    },
    /// A line (or record) that does not hold what was expected.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What was expected and what was found.
        message: String,
    },
    /// A file whose content as a whole is wrong (too few records, wrong size).
    #[error("{}: {message}", path.display())]
    Content {
        /// The file.
        path: PathBuf,
        /// What was expected and what was found.
        message: String,
    },
    /// The annotations folder could not be found.
    #[error("{message}")]
    AnnotationsNotFound {
        /// Where it was looked for, and how to get the annotations.
        message: String,
    },
    /// Annotated images without a prediction, with `strict` checking on.
    #[error(
        "{}: {missing} of {annotated} annotated images have no prediction (first: {first}); \
         without --strict they are left out of every number",
        path.display()
    )]
    MissingPredictions {
        /// The predictions file.
        path: PathBuf,
        /// How many annotated images it lacks.
        missing: usize,
        /// Annotated images in all.
        annotated: usize,
        /// The first one lacking.
        first: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            error,
        }
    }

    pub(crate) fn parse(path: impl Into<PathBuf>, line: u64, message: impl Into<String>) -> Error {
        Error::Parse {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    pub(crate) fn content(path: impl Into<PathBuf>, message: impl Into<String>) -> Error {
        Error::Content {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
