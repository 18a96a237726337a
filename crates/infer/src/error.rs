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
    /// A provider asked for by name is not in the loaded ONNX Runtime.
    #[error(
        "execution provider {name} ({ort_name}) is not in ONNX Runtime {version} loaded from \
         {library} (it has: {available}); to get a build that has it: {how_to_get}",
        name = provider.name,
        ort_name = provider.ort_name,
        how_to_get = provider.how_to_get
    )]
    ProviderMissing {
        /// The provider.
        provider: &'static crate::ProviderInfo,
        /// The ONNX Runtime library in use.
        library: PathBuf,
        /// Its version.
        version: String,
        /// What the library offers, comma-separated.
        available: String,
    },
    /// A provider asked for by name is in the runtime but could not be registered (a library
    /// it needs is missing, no device, ...).
    #[error(
        "the {name} execution provider ({ort_name}) is not usable with {library}: {reason}",
        name = provider.name,
        ort_name = provider.ort_name
    )]
    ProviderFailed {
        /// The provider.
        provider: &'static crate::ProviderInfo,
        /// The ONNX Runtime library in use.
        library: PathBuf,
        /// Why registration failed, with what to do about it.
        reason: String,
    },
    /// An execution-provider name that `--ep` does not know.
    #[error("unknown execution provider {got:?}: expected one of {expected}")]
    UnknownProvider {
        /// The name that was given.
        got: String,
        /// The accepted names, comma-separated.
        expected: String,
    },
    /// The model file could not be read or is not an ONNX model (its protobuf does not parse).
    #[error("cannot load model {path} (expected an ONNX model file): {message}")]
    ModelLoad {
        /// The model file.
        path: PathBuf,
        /// What ONNX Runtime said.
        message: String,
    },
    /// An ONNX model this ONNX Runtime cannot run: an operator it lacks, an opset or IR
    /// version it does not support.
    #[error("cannot load model {path}: {what}; ONNX Runtime says: {message}")]
    ModelUnsupported {
        /// The model file.
        path: PathBuf,
        /// What is unsupported, named (e.g. "operator `Frobnicate` (domain `com.example`) is
        /// not available in this ONNX Runtime").
        what: String,
        /// What ONNX Runtime said.
        message: String,
    },
    /// An ONNX model that ONNX Runtime refuses for another reason (an invalid graph, a type
    /// error): the file parses, but is not a model it can load.
    #[error("cannot load model {path}: ONNX Runtime refuses the model: {message}")]
    ModelInvalid {
        /// The model file.
        path: PathBuf,
        /// What ONNX Runtime said.
        message: String,
    },
    /// The model's input or output tensor has an element type this tool cannot feed or read.
    #[error("{role} tensor `{tensor}` of {path} has element type {got}: expected {expected}")]
    UnsupportedElementType {
        /// The model file.
        path: PathBuf,
        /// `input` or `output`.
        role: &'static str,
        /// The tensor's name.
        tensor: String,
        /// The element type it has.
        got: String,
        /// The element types accepted in that role.
        expected: &'static str,
    },
    /// The caller's `--layout` or `--input-size` contradicts the model's declared input.
    #[error("{asked} does not fit input `{tensor}` {shape} of {path}: {why}")]
    InputOverride {
        /// The model file.
        path: PathBuf,
        /// The input's name.
        tensor: String,
        /// The input's declared shape.
        shape: String,
        /// The setting, as its flag (`--layout nhwc`).
        asked: String,
        /// Why it does not fit.
        why: String,
    },
    /// A batch value cannot be fed to an integer input exactly.
    #[error(
        "input `{tensor}` is {element}: batch value {value} is not an integer in {min}..={max} \
         (the preprocessing must give raw pixels for it)"
    )]
    NotRepresentable {
        /// The model's input name.
        tensor: String,
        /// The input's element type (`u8`, `i8`).
        element: String,
        /// The first value that does not fit.
        value: f32,
        /// The smallest value the type holds.
        min: f32,
        /// The largest.
        max: f32,
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
    /// Reading a predictions CSV failed (the file and line are in the message).
    #[error(transparent)]
    Predictions(#[from] imagenetx_dataset::Error),
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
    /// The error for a model ONNX Runtime could not make a session of, from its error code
    /// and message: "not an ONNX model" only when the protobuf does not parse; an operator,
    /// opset or IR version the runtime lacks is named as such; anything else is an invalid
    /// model. ONNX Runtime's message is kept in each.
    pub(crate) fn model_session(
        path: impl Into<PathBuf>,
        code: Option<ort::error::ErrorCode>,
        message: &str,
    ) -> Self {
        use ort::error::ErrorCode;
        let path = path.into();
        let message = message.trim().to_owned();
        if let Some(what) = unsupported_feature(&message) {
            return Error::ModelUnsupported {
                path,
                what,
                message,
            };
        }
        let not_onnx = matches!(
            code,
            Some(ErrorCode::InvalidProtobuf | ErrorCode::NoSuchFile | ErrorCode::NoModel)
        ) || message.contains("Protobuf parsing failed")
            || message.contains("No graph was found in the protobuf");
        if not_onnx {
            return Error::ModelLoad { path, message };
        }
        Error::ModelInvalid { path, message }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
}

/// What ONNX Runtime's session-creation message says the model uses that the runtime lacks,
/// named for the user; `None` when the message is about something else.
fn unsupported_feature(message: &str) -> Option<String> {
    // "Unsupported model IR version: 99, max supported IR version: 13"
    if let Some(rest) = after(message, "Unsupported model IR version: ") {
        let version = leading_number(rest);
        let max = after(rest, "max supported IR version: ").map(leading_number);
        return Some(match max {
            Some(max) => format!(
                "the model's IR version {version} is not supported by this ONNX Runtime (it supports up to IR version {max})"
            ),
            None => {
                format!("the model's IR version {version} is not supported by this ONNX Runtime")
            }
        });
    }
    // "Fatal error: com.example:Frobnicate(-1) is not a registered function/op"
    if let Some(end) = message.find(" is not a registered function/op") {
        let head = &message[..end];
        let full = head.rsplit(' ').next().unwrap_or(head);
        let full = full.split('(').next().unwrap_or(full);
        let (domain, op) = full.rsplit_once(':').unwrap_or(("", full));
        return Some(if domain.is_empty() {
            format!("operator `{op}` is not available in this ONNX Runtime")
        } else {
            format!("operator `{op}` of domain `{domain}` is not available in this ONNX Runtime")
        });
    }
    // "No Op registered for Frobnicate with domain_version of 13"
    if let Some(rest) = after(message, "No Op registered for ") {
        let op = rest.split_whitespace().next().unwrap_or(rest);
        let version = after(rest, "domain_version of ").map(leading_number);
        return Some(match version {
            Some(v) => format!("operator `{op}` (opset {v}) is not available in this ONNX Runtime"),
            None => format!("operator `{op}` is not available in this ONNX Runtime"),
        });
    }
    // "Could not find an implementation for Frobnicate(13) node with name 'n'"
    if let Some(rest) = after(message, "Could not find an implementation for ") {
        let op = rest.split_whitespace().next().unwrap_or(rest);
        return Some(format!(
            "operator {op} has no implementation in this ONNX Runtime"
        ));
    }
    // In Node, ("n", Frobnicate, "com.example", -1) : ... , Error No opset import for domain 'com.example'
    if let Some(rest) = after(message, "No opset import for domain ") {
        let domain = rest.trim().trim_matches(|c| c == '\'' || c == '"');
        let op = after(message, "In Node, (")
            .and_then(|node| node.split(", ").nth(1))
            .map(|op| op.trim_matches('"'));
        return Some(match op {
            Some(op) => format!(
                "operator `{op}` of domain `{domain}` is not available: the model imports no opset for that domain"
            ),
            None => format!("the model imports no opset for domain `{domain}`"),
        });
    }
    // "... Opset 99 is under development ... Current official support for domain ai.onnx is till opset 26."
    if let Some(rest) = after(message, "Opset ")
        && (rest.contains("is under development") || rest.contains("not supported"))
    {
        let version = leading_number(rest);
        let supported = after(message, "Current official support for domain ").map(|r| {
            let domain = r.split_whitespace().next().unwrap_or(r);
            let till = after(r, "till opset ").map(leading_number);
            (domain, till)
        });
        return Some(match supported {
            Some((domain, Some(till))) => format!(
                "the model's opset {version} is not supported by this ONNX Runtime (domain {domain}: up to opset {till})"
            ),
            _ => format!("the model's opset {version} is not supported by this ONNX Runtime"),
        });
    }
    None
}

/// The text after the first `needle` in `haystack`.
fn after<'a>(haystack: &'a str, needle: &str) -> Option<&'a str> {
    haystack.find(needle).map(|i| &haystack[i + needle.len()..])
}

/// The number (with a leading minus) at the start of `text`, as written.
fn leading_number(text: &str) -> &str {
    let end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
        .map_or(text.len(), |(i, _)| i);
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use ort::error::ErrorCode;

    fn classify(code: ErrorCode, message: &str) -> Error {
        Error::model_session("m.onnx", Some(code), message)
    }

    #[test]
    fn session_errors_name_what_is_unsupported() {
        let cases = [
            (
                ErrorCode::GenericFailure,
                "Load model from m.onnx failed:/onnxruntime_src/onnxruntime/core/graph/model.cc:256 onnxruntime::Model::Model(...) Unsupported model IR version: 99, max supported IR version: 13",
                "IR version 99 is not supported by this ONNX Runtime (it supports up to IR version 13)",
            ),
            (
                ErrorCode::GenericFailure,
                "Load model from m.onnx failed:Fatal error: com.example.madeup:Frobnicate(-1) is not a registered function/op",
                "operator `Frobnicate` of domain `com.example.madeup` is not available",
            ),
            (
                ErrorCode::InvalidGraph,
                "Load model from m.onnx failed:This is an invalid model. In Node, (\"\", Frobnicate, \"\", -1) : (\"x\": tensor(float),) -> (\"y\": tensor(float),) , Error No Op registered for Frobnicate with domain_version of 13",
                "operator `Frobnicate` (opset 13) is not available",
            ),
            (
                ErrorCode::InvalidGraph,
                "Load model from m.onnx failed:This is an invalid model. In Node, (\"\", Frobnicate, \"com.example.madeup\", -1) : (\"x\": tensor(float),) -> (\"y\": tensor(float),) , Error No opset import for domain 'com.example.madeup'",
                "operator `Frobnicate` of domain `com.example.madeup` is not available",
            ),
            (
                ErrorCode::NotImplemented,
                "Could not find an implementation for Frobnicate(13) node with name 'n'",
                "operator Frobnicate(13) has no implementation",
            ),
            (
                ErrorCode::GenericFailure,
                "Load model from m.onnx failed:/x.h:46 void f() ONNX Runtime only *guarantees* support for models stamped with official released onnx opset versions. Opset 99 is under development and support for this is limited. Current official support for domain ai.onnx is till opset 26.",
                "opset 99 is not supported by this ONNX Runtime (domain ai.onnx: up to opset 26)",
            ),
        ];
        for (code, message, want) in cases {
            let err = classify(code, message);
            let text = err.to_string();
            assert!(matches!(err, Error::ModelUnsupported { .. }), "{text}");
            assert!(text.contains(want), "{text}");
            assert!(text.contains(message), "ORT's message is kept: {text}");
            assert!(!text.contains("expected an ONNX model file"), "{text}");
        }
    }

    #[test]
    fn only_an_unparsable_protobuf_is_not_an_onnx_model() {
        let err = classify(
            ErrorCode::InvalidProtobuf,
            "Load model from m.onnx failed:Protobuf parsing failed.",
        );
        assert!(matches!(err, Error::ModelLoad { .. }), "{err}");
        assert!(err.to_string().contains("expected an ONNX model file"));
        let err = classify(
            ErrorCode::InvalidGraph,
            "Load model from m.onnx failed:This is an invalid model. Type Error: Type 'tensor(float)' of input parameter (x) of operator (Col2Im) in node () is invalid.",
        );
        assert!(matches!(err, Error::ModelInvalid { .. }), "{err}");
        assert!(!err.to_string().contains("expected an ONNX model file"));
    }
}
