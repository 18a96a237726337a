//! The crate's error type.

use std::path::PathBuf;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while finding ONNX Runtime, loading a model, running it or
/// reading and writing predictions. Each variant carries what a user needs to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No ONNX Runtime shared library was found anywhere discovery looks.
    #[error(
        "no ONNX Runtime library found (looked at: {searched}); get one with `just setup-ort`, \
         or `pip install onnxruntime==1.31.1`, or pass --ort-lib PATH to a libonnxruntime.so"
    )]
    RuntimeNotFound {
        /// Every place that was tried, in order, with why it did not match.
        searched: String,
    },
    /// A library path that was given explicitly (`--ort-lib`, `ORT_DYLIB_PATH`) is not a file.
    #[error("ONNX Runtime library {path} (from {origin}) does not exist or is not a file")]
    RuntimeMissing {
        /// The path that was given.
        path: PathBuf,
        /// Where the path came from (`--ort-lib`, `ORT_DYLIB_PATH`).
        origin: String,
    },
    /// The library exists but could not be loaded or is not a usable ONNX Runtime.
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    RuntimeLoad {
        /// The library that failed to load.
        path: PathBuf,
        /// What the loader or ONNX Runtime said.
        message: String,
    },
    /// ONNX Runtime is loaded once per process; a second, different library was requested.
    #[error(
        "ONNX Runtime is already loaded from {loaded} in this process; cannot also load {requested}"
    )]
    RuntimeAlreadyLoaded {
        /// The library in use.
        loaded: PathBuf,
        /// The library that was asked for afterwards.
        requested: PathBuf,
    },
    /// `--ep cuda` was asked for and the CUDA execution provider could not be registered.
    #[error("the CUDA execution provider is not usable with {library}: {reason}")]
    CudaUnavailable {
        /// The ONNX Runtime library in use.
        library: PathBuf,
        /// Why registration failed, with what to do about it.
        reason: String,
    },
    /// An execution-provider name that is not `auto`, `cpu` or `cuda`.
    #[error("unknown execution provider {got:?}: expected auto, cpu or cuda")]
    UnknownProvider {
        /// The name that was given.
        got: String,
    },
    /// The model file could not be read or parsed by ONNX Runtime.
    #[error("cannot load model {path} (expected an ONNX model file): {message}")]
    ModelLoad {
        /// The model file.
        path: PathBuf,
        /// What ONNX Runtime said.
        message: String,
    },
    /// The model's input or output tensor has an element type this tool cannot feed or read.
    #[error("{role} tensor `{tensor}` of {path} has element type {got}: expected f32 or f16")]
    UnsupportedElementType {
        /// The model file.
        path: PathBuf,
        /// `input` or `output`.
        role: &'static str,
        /// The tensor's name.
        tensor: String,
        /// The element type it has.
        got: String,
    },
    /// The model does not take exactly one input tensor.
    #[error("{path} has {count} inputs ({inputs}): expected exactly one image input")]
    InputCount {
        /// The model file.
        path: PathBuf,
        /// How many inputs the model declares.
        count: usize,
        /// The inputs with their shapes.
        inputs: String,
    },
    /// The single input does not look like a batch of RGB images.
    #[error("{path}: no image-like input: expected [N,3,H,W] or [N,H,W,3], got `{tensor}` {shape}")]
    NoImageInput {
        /// The model file.
        path: PathBuf,
        /// The input's name.
        tensor: String,
        /// The input's declared shape.
        shape: String,
    },
    /// No output has a 1000- or 1001-class dimension (and `--output` was not given).
    #[error(
        "{path}: no class output: expected an output shaped [N,1000] or [N,1001] \
         (or pass --output NAME), got {outputs}"
    )]
    NoClassOutput {
        /// The model file.
        path: PathBuf,
        /// Every output with its shape.
        outputs: String,
    },
    /// `--output NAME` names no output of the model.
    #[error("{path} has no output named `{name}`; its outputs are {outputs}")]
    UnknownOutput {
        /// The model file.
        path: PathBuf,
        /// The requested output name.
        name: String,
        /// Every output with its shape.
        outputs: String,
    },
    /// The chosen output does not hold 1000 or 1001 scores per image.
    #[error(
        "output `{tensor}` of {path} has shape {got}: expected [N,1000] or [N,1001] (other dimensions 1)"
    )]
    ClassShape {
        /// The model file.
        path: PathBuf,
        /// The output's name.
        tensor: String,
        /// The shape it has (declared or produced).
        got: String,
    },
    /// The `imagenetx.preprocess` metadata entry is not valid JSON.
    #[error("metadata entry `{key}` of {path} is not valid JSON: {message}")]
    BadMetadata {
        /// The model file.
        path: PathBuf,
        /// The metadata key.
        key: String,
        /// The JSON parser's message.
        message: String,
    },
    /// A batch handed to [`crate::Classifier::classify`] does not match what the model takes.
    #[error("batch for `{tensor}` has shape {got:?}: expected {expected}")]
    BatchShape {
        /// The model's input name.
        tensor: String,
        /// What the model takes.
        expected: String,
        /// What was given.
        got: Vec<usize>,
    },
    /// ONNX Runtime failed while running the model.
    #[error("running {path} failed: {message}")]
    Inference {
        /// The model file.
        path: PathBuf,
        /// What ONNX Runtime said.
        message: String,
    },
    /// An image's class scores contain NaN (or, for logits, an infinity): it gets no prediction.
    #[error("{value} output for image {image} of the batch in tensor `{tensor}`: not ranked")]
    NonFiniteOutput {
        /// Index of the image inside the batch.
        image: usize,
        /// The output tensor.
        tensor: String,
        /// The first offending value (NaN or ±inf).
        value: f32,
    },
    /// Reading or writing a file failed (the operating system's reason is part of the
    /// message, not a separate source, so it is printed once).
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// A predictions CSV is malformed.
    #[error("{path}:{line}: {message}")]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line number (0 when unknown).
        line: u64,
        /// What is wrong, as expected vs got.
        message: String,
    },
    /// Another run is writing the same output.
    #[error(
        "{} is being written by another run ({holder}, lock {}); wait for it to finish, or write elsewhere with --out",
        output.display(),
        lock.display(),
        holder = if holder.is_empty() { "PID unknown".to_string() } else { format!("PID {holder}") }
    )]
    Locked {
        /// The output.
        output: PathBuf,
        /// Its lock file.
        lock: PathBuf,
        /// What the lock file says of its holder (its PID).
        holder: String,
    },
    /// A file of an earlier run was made with another model or preprocessing.
    #[error(
        "{}: made with a different {what} (SHA-256 {recorded}, this run's is {now}); to start over, run without --resume or write elsewhere with --out",
        path.display()
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// `model` or `preprocessing`.
        what: &'static str,
        /// The digest recorded in the file.
        recorded: String,
        /// The digest of this run.
        now: String,
    },
    /// A JSON file could not be written or read.
    #[error("{}: {error}", path.display())]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The underlying error.
        error: serde_json::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
}
