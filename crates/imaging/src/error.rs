//! The error type of the [`imaging`](crate::imaging) module.

use std::path::PathBuf;

/// Result alias for image decoding and preprocessing.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while reading, decoding or preprocessing an image.
///
/// Decode errors name the file (`path`); when the bytes did not come from a
/// file the path is `<memory>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read. The OS reason is part of the message
    /// (`…: cannot read image file: Permission denied (os error 13)`), once: it is not also
    /// a [`source`](std::error::Error::source), which `anyhow`'s `{:#}` would repeat.
    #[error("{}: cannot read image file: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        error: std::io::Error,
    },
    /// The path is not a regular file (a FIFO, a device, a socket, a folder): it is not
    /// read, so that nothing blocks or streams without end.
    #[error("{}: not a regular file: {kind}", path.display())]
    NotRegularFile {
        /// The file.
        path: PathBuf,
        /// What it is: `FIFO (named pipe)`, `character device`, `block device`, `socket`,
        /// `directory`.
        kind: &'static str,
    },
    /// The file is larger than [`ReadLimits::max_file_bytes`](super::ReadLimits), checked
    /// before reading (or found while reading, for a file that grows).
    #[error(
        "{}: file is {size} bytes, over the limit of {limit} bytes (raise it with \
         --max-file-size)",
        path.display()
    )]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size (or, for a file that grew while read, more than `limit`).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The image has more pixels than [`ReadLimits::max_pixels`](super::ReadLimits)
    /// (Pillow's `DecompressionBombError`); refused from its header, before decoding.
    #[error(
        "{}: {format} image of {width}x{height} = {pixels} pixels exceeds {limit} \
         (Pillow's decompression-bomb limit)",
        path.display()
    )]
    TooManyPixels {
        /// The file.
        path: PathBuf,
        /// The detected format.
        format: &'static str,
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// `width * height`.
        pixels: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is empty.
    #[error("{}: image file is empty (0 bytes)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The bytes are not in an image format this crate decodes.
    #[error("{}: unsupported or unrecognised image format (first bytes: {magic})", path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The first bytes of the file, in hex.
        magic: String,
    },
    /// The JPEG data ends before the image is complete. Pillow raises
    /// `OSError: image file is truncated` on such files by default; so do we.
    #[error("{}: image file is truncated ({detail})", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        detail: String,
    },
    /// The decoder rejected the data.
    #[error("{}: corrupt {format} image: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The detected format (`JPEG`, `PNG`, ...).
        format: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// The image is valid but uses a feature (bit depth, colour model, size)
    /// that is not supported.
    #[error("{}: unsupported {format} image: {detail}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The detected format.
        format: &'static str,
        /// What is unsupported.
        detail: String,
    },
    /// A preprocessing configuration is invalid.
    #[error("invalid preprocessing config: {field} {problem}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// An unknown preset name was given.
    #[error("unknown preprocessing preset {name:?} (known: {known})")]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// The output buffer handed to a preprocessing call has the wrong length.
    #[error(
        "output buffer holds {got} floats, the config needs {expected} (3 x {height} x {width})"
    )]
    OutputLength {
        /// Floats required.
        expected: usize,
        /// Floats given.
        got: usize,
        /// Output height.
        height: u32,
        /// Output width.
        width: u32,
    },
}
