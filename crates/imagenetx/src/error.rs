//! The one error type of the facade.

use std::path::PathBuf;

/// Everything that can go wrong in an evaluation or an analysis. Each variant names the file,
/// line, tensor or setting at fault (the wrapped crates' errors do); [`Error::Context`] adds
/// what was being done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Annotations, label sets, predictions files or image folders.
    #[error(transparent)]
    Dataset(#[from] imagenetx_dataset::Error),
    /// Decoding or preprocessing an image.
    #[error(transparent)]
    Imaging(#[from] imagenetx_imaging::Error),
    /// The model, ONNX Runtime, the journal or the run record.
    #[error(transparent)]
    Infer(#[from] imagenetx_infer::Error),
    /// Inputs of the statistics that do not fit together.
    #[error(transparent)]
    Factors(#[from] imagenetx_factors::Error),
    /// Assembling a report or writing its plots.
    #[error(transparent)]
    Report(#[from] imagenetx_report::Error),
    /// Annotations that do not fit together.
    #[error(transparent)]
    Vocab(#[from] imagenetx_vocab::Error),
    /// A file that could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating-system error (its text is part of the message).
        error: std::io::Error,
    },
    /// A setting or an input that cannot be used, and why.
    #[error("{0}")]
    Invalid(String),
    /// An error with what was being done when it happened.
    #[error("{context}: {error}")]
    Context {
        /// What was being done.
        context: String,
        /// The error (its text is part of the message, so it is not also a `source`).
        error: Box<Error>,
    },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }

    /// An [`Error::Invalid`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    /// This error with `context` in front of its message.
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context {
            context: context.into(),
            error: Box::new(self),
        }
    }
}

/// Result with the facade's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds context to the facade's results, and converts the crates' errors on the way.
pub trait ResultExt<T> {
    /// On error, put `context()` in front of its message.
    fn context_with(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context_with(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| e.into().context(context()))
    }
}
