//! Running a classifier: one ONNX Runtime session, batches in, top-k predictions out.

use std::path::{Path, PathBuf};

use half::f16;
use imagenetx_dataset::PredictionRow;
use ndarray::{ArrayView4, Axis};
use ort::session::Session;
use ort::value::{Tensor, TensorElementType, TensorRef, ValueType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{
    self, Decision, Dim, ElementType, InputOverrides, Layout, ModelInfo, ModelMetadata, OutputInfo,
    ScoreKind, TensorDesc,
};
use crate::provider::{AUTO_ORDER, CPU_PROVIDER, ExecutionProvider, ProviderInfo, ProviderReport};
use crate::runtime::Runtime;

/// Height and width of the probe batch when neither the model nor
/// [`ClassifierConfig::probe_size`] fixes the input size.
pub const PROBE_SIZE: usize = 224;

/// The largest side of a probe batch (a dynamic model asked for more is probed at
/// [`PROBE_SIZE`]): 4096 × 4096 × 3 float32 is 192 MiB.
pub const MAX_PROBE_SIZE: usize = 4096;

/// How many classes are ranked for each image: as many as a predictions CSV row holds.
pub const TOP_K: usize = imagenetx_dataset::TOP_K;

/// A validated description of the classifier to build.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// The `.onnx` file.
    pub model: PathBuf,
    /// Requested execution provider.
    pub provider: ExecutionProvider,
    /// Threads inside one operator; 0 lets ONNX Runtime decide (one per core).
    pub intra_threads: usize,
    /// Name of the output holding the classes, overriding the automatic choice.
    pub output: Option<String>,
    /// Height and width of the probe batch for a model whose input size is dynamic (the size
    /// the caller will feed, e.g. its crop); `None`: [`PROBE_SIZE`]. A model with a fixed
    /// size is probed at that size.
    #[serde(default)]
    pub probe_size: Option<usize>,
    /// Without a `probe_size`: reads a probe size from the model's metadata (the caller knows
    /// its metadata records; this crate does not), e.g. the crop of a preprocessing record.
    #[serde(skip)]
    pub probe_size_from_metadata: Option<fn(&ModelMetadata) -> Option<usize>>,
    /// The caller's layout and input size, over what the model's input declares.
    #[serde(default)]
    pub input: InputOverrides,
    /// Whether ONNX Runtime's intra-op threads spin while waiting for work; `None`: ONNX
    /// Runtime's default (they do). Off frees the cores for other threads (e.g. image
    /// decoding) between operators and batches.
    #[serde(default)]
    pub intra_spinning: Option<bool>,
}

impl ClassifierConfig {
    /// A configuration for `model` with the defaults: `auto` provider, ONNX Runtime's thread
    /// count, automatic output choice.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        ClassifierConfig {
            model: model.into(),
            provider: ExecutionProvider::Auto,
            intra_threads: 0,
            output: None,
            probe_size: None,
            probe_size_from_metadata: None,
            input: InputOverrides::default(),
            intra_spinning: None,
        }
    }

    /// Sets whether ONNX Runtime's intra-op threads spin ([`ClassifierConfig::intra_spinning`]).
    #[must_use]
    pub fn with_intra_spinning(mut self, spinning: Option<bool>) -> Self {
        self.intra_spinning = spinning;
        self
    }

    /// Sets the caller's layout and input size ([`InputOverrides`]).
    #[must_use]
    pub fn with_input(mut self, input: InputOverrides) -> Self {
        self.input = input;
        self
    }

    /// Sets the execution provider.
    #[must_use]
    pub fn with_provider(mut self, provider: ExecutionProvider) -> Self {
        self.provider = provider;
        self
    }

    /// Sets the intra-op thread count (0: ONNX Runtime's default).
    #[must_use]
    pub fn with_intra_threads(mut self, threads: usize) -> Self {
        self.intra_threads = threads;
        self
    }

    /// Names the class output.
    #[must_use]
    pub fn with_output(mut self, output: Option<String>) -> Self {
        self.output = output.filter(|o| !o.is_empty());
        self
    }

    /// Sets the probe size for a model whose input size is dynamic (`None` or 0:
    /// [`PROBE_SIZE`]).
    #[must_use]
    pub fn with_probe_size(mut self, size: Option<usize>) -> Self {
        self.probe_size = size.filter(|&s| s > 0);
        self
    }

    /// Sets how a probe size is read from the model's metadata when no probe size is set.
    #[must_use]
    pub fn with_probe_size_from_metadata(
        mut self,
        read: Option<fn(&ModelMetadata) -> Option<usize>>,
    ) -> Self {
        self.probe_size_from_metadata = read;
        self
    }

    /// Checks what can be checked before loading anything: the model file exists.
    pub fn validate(&self) -> Result<()> {
        let meta = std::fs::metadata(&self.model).map_err(|err| Error::io(&self.model, err))?;
        if !meta.is_file() {
            return Err(Error::ModelLoad {
                path: self.model.clone(),
                message: "not a file".to_owned(),
            });
        }
        Ok(())
    }
}

/// The top-k classes of one image, most probable first (at most [`TOP_K`]).
///
/// The analysis works on the top-1 [`imagenetx_vocab::Prediction`] ([`TopK::top1`]); a
/// predictions CSV row holds all of it ([`TopK::into_row`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopK {
    /// ImageNet class indices (0..999), most probable first.
    pub classes: Vec<usize>,
    /// Their probabilities (softmax of the logits in f64, or the model's own probabilities).
    pub probabilities: Vec<f64>,
}

impl TopK {
    /// The most probable class and its probability; `None` when there is no class or the
    /// class index does not fit a `u16` (not an ImageNet class).
    pub fn top1(&self) -> Option<imagenetx_vocab::Prediction> {
        Some(imagenetx_vocab::Prediction {
            class: u16::try_from(*self.classes.first()?).ok()?,
            probability: *self.probabilities.first()?,
        })
    }

    /// The predictions CSV row of the image named `file_name` (its key: the base name, escaped
    /// when it is not UTF-8).
    pub fn into_row(self, file_name: impl Into<String>) -> PredictionRow {
        PredictionRow::new(file_name, self.classes, self.probabilities)
    }
}

/// One result per image of a batch: a prediction, or why the image has none
/// ([`Error::NonFiniteOutput`]).
pub type ImageResult = Result<TopK>;

/// An image classifier: one ONNX Runtime session and what was decided about the model.
///
/// [`Classifier::classify`] takes `&mut self` (ONNX Runtime sessions run one call at a time):
/// build one classifier per inference worker.
#[derive(Debug)]
pub struct Classifier {
    /// `None` while released ([`Classifier::release`]).
    session: Option<Session>,
    info: ModelInfo,
    provider: ProviderReport,
    /// What it was built from, to open the session again.
    config: ClassifierConfig,
}

impl Classifier {
    /// Loads the model on the requested provider, inspects its inputs and outputs and runs one
    /// probe batch to decide between logits and probabilities.
    pub fn new(runtime: &Runtime, config: &ClassifierConfig) -> Result<Self> {
        config.validate()?;
        let path = config.model.as_path();
        let (mut session, provider) = open_session(runtime, config)?;
        let mut decisions = vec![Decision::new(
            "provider",
            &provider.used,
            match &provider.fallback {
                Some(why) => {
                    format!("auto: no accelerator could be used ({why}); fell back to CPU")
                }
                None => format!("requested {}", provider.requested),
            },
        )];
        let inputs: Vec<TensorDesc> = session
            .inputs()
            .iter()
            .map(|o| describe(o.name(), o.dtype()))
            .collect();
        let outputs: Vec<TensorDesc> = session
            .outputs()
            .iter()
            .map(|o| describe(o.name(), o.dtype()))
            .collect();
        let input = model::analyse_input(path, &inputs, config.input, &mut decisions)?;
        let choice =
            model::choose_output(path, &outputs, config.output.as_deref(), &mut decisions)?;
        let chosen = &outputs[choice.index];
        let metadata = read_metadata(&session);

        // Probe: a zero tensor (a mid-grey image after mean/std normalisation), at the model's
        // size, else the configured probe size, else the one its metadata gives, else
        // PROBE_SIZE; never larger than MAX_PROBE_SIZE.
        let probe_batch = input.fixed_batch().unwrap_or(1);
        let (h, w) = input.fixed_size().unwrap_or_else(|| {
            let size = config
                .probe_size
                .or_else(|| {
                    config
                        .probe_size_from_metadata
                        .and_then(|read| read(&metadata))
                })
                .filter(|&size| size > 0 && size <= MAX_PROBE_SIZE)
                .unwrap_or(PROBE_SIZE);
            (size, size)
        });
        let dims = match input.layout {
            Layout::Nchw => [probe_batch, 3, h, w],
            Layout::Nhwc => [probe_batch, h, w, 3],
        };
        let zeros = vec![0f32; dims.iter().product()];
        let probe_text = format!("zeros, shape {dims:?}");
        let (out_dims, scores) = run_once(
            &mut session,
            path,
            &input.name,
            input.element_type,
            &chosen.name,
            choice.element_type,
            &zeros,
            dims,
        )?;
        let per_image: usize = out_dims.iter().skip(1).product();
        let classes = match choice.classes {
            Some(c) => c,
            None => {
                let c = per_image;
                if c != 1000 && c != 1001 {
                    return Err(Error::ClassShape {
                        path: path.to_path_buf(),
                        tensor: chosen.name.clone(),
                        got: format!("{out_dims:?} (produced by the probe)"),
                    });
                }
                c
            }
        };
        if out_dims.first() != Some(&probe_batch) || per_image != classes {
            return Err(Error::ClassShape {
                path: path.to_path_buf(),
                tensor: chosen.name.clone(),
                got: format!("{out_dims:?} (produced by the probe for a batch of {probe_batch})"),
            });
        }
        decisions.push(model::class_decision(
            classes,
            if choice.classes.is_some() {
                "declared output shape"
            } else {
                "shape produced by the probe"
            },
        ));
        let (score_kind, score_decision) = model::decide_scores(&scores, classes, &probe_text);
        decisions.push(score_decision);

        let other_outputs = outputs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != choice.index)
            .map(|(_, o)| {
                format!(
                    "`{}` {} {}",
                    o.name,
                    o.element_name,
                    model::format_shape(&o.dims)
                )
            })
            .collect();
        let info = ModelInfo {
            path: path.to_path_buf(),
            input,
            output: OutputInfo {
                name: chosen.name.clone(),
                element_type: choice.element_type,
                shape: chosen.dims.clone(),
                classes,
                background_first: classes == 1001,
            },
            scores: score_kind,
            other_outputs,
            metadata,
            decisions,
        };
        Ok(Classifier {
            session: Some(session),
            info,
            provider,
            config: config.clone(),
        })
    }

    /// Frees the ONNX Runtime session (the model's weights and buffers) while keeping what
    /// was found out about the model; [`Classifier::reopen`] opens it again. Classifying a
    /// released classifier is an error.
    pub fn release(&mut self) {
        self.session = None;
    }

    /// Whether the session is open (not [released](Self::release)).
    pub fn is_open(&self) -> bool {
        self.session.is_some()
    }

    /// Opens the session of a [released](Self::release) classifier again, with the same
    /// settings (nothing when it is open). An error when it cannot be opened, or when it
    /// would run on another execution provider than the first time.
    pub fn reopen(&mut self, runtime: &Runtime) -> Result<()> {
        if self.session.is_some() {
            return Ok(());
        }
        let (session, provider) = open_session(runtime, &self.config)?;
        if provider.used != self.provider.used {
            return Err(Error::Inference {
                path: self.info.path.clone(),
                message: format!(
                    "opened again on {} where it first ran on {}",
                    provider.used, self.provider.used
                ),
            });
        }
        self.session = Some(session);
        Ok(())
    }

    /// What was decided about the model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Adds a decision made about the model elsewhere (e.g. the input size a caller's
    /// preprocessing gives a symbolic input), kept in [`ModelInfo::decisions`] for the record.
    pub fn record_decision(&mut self, decision: Decision) {
        self.info.decisions.push(decision);
    }

    /// The execution provider in use.
    pub fn provider(&self) -> &ProviderReport {
        &self.provider
    }

    /// The layout batches must be in (ask the preprocessing for it).
    pub fn layout(&self) -> Layout {
        self.info.input.layout
    }

    /// `(height, width)` when the model fixes its input size.
    pub fn input_size(&self) -> Option<(usize, usize)> {
        self.info.input.fixed_size()
    }

    /// Classifies a batch of preprocessed images in the model's [`layout`](Self::layout).
    ///
    /// The outer error is fatal for the batch (shape mismatch, ONNX Runtime failure); the inner
    /// results are per image, in order: an image whose scores hold NaN gets
    /// [`Error::NonFiniteOutput`] and is never ranked. Models with a fixed batch size are run in
    /// chunks of that size (the last chunk padded with zeros).
    pub fn classify(&mut self, batch: ArrayView4<'_, f32>) -> Result<Vec<ImageResult>> {
        let shape = batch.shape();
        let (n, dims) = (shape[0], [shape[0], shape[1], shape[2], shape[3]]);
        self.check_batch(dims)?;
        let chunk = self.info.input.fixed_batch().unwrap_or(n.max(1));
        let mut results = Vec::with_capacity(n);
        let mut start = 0;
        while start < n {
            let take = chunk.min(n - start);
            let part = batch.slice_axis(Axis(0), (start..start + take).into());
            // Borrow the caller's buffer when it is contiguous and needs no padding.
            let owned: Vec<f32>;
            let data: &[f32] = match part.as_slice() {
                Some(slice) if take == chunk => slice,
                _ => {
                    let per_image = dims[1] * dims[2] * dims[3];
                    let mut buf = Vec::with_capacity(chunk * per_image);
                    buf.extend(part.iter().copied());
                    buf.resize(chunk * per_image, 0.0);
                    owned = buf;
                    &owned
                }
            };
            let run_dims = [chunk, dims[1], dims[2], dims[3]];
            let session = self.session.as_mut().ok_or_else(|| Error::Inference {
                path: self.info.path.clone(),
                message: "the session was released (reopen it first)".into(),
            })?;
            let (_, scores) = run_once(
                session,
                &self.info.path,
                &self.info.input.name,
                self.info.input.element_type,
                &self.info.output.name,
                self.info.output.element_type,
                data,
                run_dims,
            )?;
            let classes = self.info.output.classes;
            if scores.len() != chunk * classes {
                return Err(Error::Inference {
                    path: self.info.path.clone(),
                    message: format!(
                        "output `{}` has {} values for a batch of {chunk}: expected {chunk}x{classes}",
                        self.info.output.name,
                        scores.len()
                    ),
                });
            }
            for (i, row) in scores.chunks(classes).take(take).enumerate() {
                results.push(predict_row(
                    row,
                    self.info.output.background_first,
                    self.info.scores,
                    &self.info.output.name,
                    start + i,
                ));
            }
            start += take;
        }
        Ok(results)
    }

    /// [`classify`](Self::classify) for a flat buffer with its 4-d shape.
    pub fn classify_slice(&mut self, data: &[f32], shape: [usize; 4]) -> Result<Vec<ImageResult>> {
        let view = ArrayView4::from_shape(shape, data).map_err(|_| Error::BatchShape {
            tensor: self.info.input.name.clone(),
            expected: format!(
                "{} values for shape {shape:?}",
                shape.iter().product::<usize>()
            ),
            got: vec![data.len()],
        })?;
        self.classify(view)
    }

    fn check_batch(&self, dims: [usize; 4]) -> Result<()> {
        let input = &self.info.input;
        let (c, h, w) = match input.layout {
            Layout::Nchw => (dims[1], dims[2], dims[3]),
            Layout::Nhwc => (dims[3], dims[1], dims[2]),
        };
        let size_ok = input.fixed_size().is_none_or(|fixed| fixed == (h, w));
        if c != 3 || !size_ok || h == 0 || w == 0 {
            let (fh, fw) = (input.height.to_string(), input.width.to_string());
            let expected = match input.layout {
                Layout::Nchw => format!("[N,3,{fh},{fw}] (NCHW)"),
                Layout::Nhwc => format!("[N,{fh},{fw},3] (NHWC)"),
            };
            return Err(Error::BatchShape {
                tensor: input.name.clone(),
                expected,
                got: dims.to_vec(),
            });
        }
        Ok(())
    }
}

fn describe(name: &str, dtype: &ValueType) -> TensorDesc {
    match dtype {
        ValueType::Tensor {
            ty,
            shape,
            dimension_symbols,
        } => TensorDesc {
            name: name.to_owned(),
            element: match ty {
                TensorElementType::Float32 => Some(ElementType::F32),
                TensorElementType::Float16 => Some(ElementType::F16),
                TensorElementType::Uint8 => Some(ElementType::U8),
                TensorElementType::Int8 => Some(ElementType::I8),
                _ => None,
            },
            element_name: ty.to_string(),
            dims: shape
                .iter()
                .enumerate()
                .map(|(i, &d)| Dim::from_ort(d, dimension_symbols.get(i).map(String::as_str)))
                .collect(),
        },
        other => TensorDesc {
            name: name.to_owned(),
            element: None,
            element_name: format!("{other:?}"),
            dims: Vec::new(),
        },
    }
}

/// The model's metadata; what ONNX Runtime cannot read is left out (an empty string counts
/// as absent).
fn read_metadata(session: &Session) -> ModelMetadata {
    let Ok(meta) = session.metadata() else {
        return ModelMetadata::default();
    };
    let text = |value: Option<String>| value.filter(|v| !v.is_empty());
    let custom = meta
        .custom_keys()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|key| {
            let value = meta.custom(&key)?;
            Some((key, value))
        })
        .collect();
    ModelMetadata {
        producer_name: text(meta.producer()),
        domain: text(meta.domain()),
        description: text(meta.description()),
        // ONNX Runtime reports i64::MAX for a model without `model_version`.
        model_version: meta.version().filter(|&v| v != i64::MAX),
        graph_name: text(meta.name()),
        graph_description: text(meta.graph_description()),
        custom,
    }
}

fn open_session(runtime: &Runtime, config: &ClassifierConfig) -> Result<(Session, ProviderReport)> {
    let available = runtime.providers();
    let requested = config.provider;
    let report = |used: &str, fallback: Option<String>| ProviderReport {
        requested,
        used: used.to_owned(),
        fallback,
        available: available.to_vec(),
    };
    let offered = |info: &ProviderInfo| available.iter().any(|a| a == info.ort_name);
    let cpu_session = || {
        build_session(runtime, config, ExecutionProvider::Cpu).map_err(|failure| match failure {
            SessionFailure::Provider(message) => Error::ModelLoad {
                path: config.model.clone(),
                message,
            },
            SessionFailure::Other(err) => *err,
        })
    };
    match requested.info() {
        None => {
            // `auto`: the accelerators the runtime offers, in their documented order; any
            // failure (registration, or the session with it) moves on to the next one.
            let mut reasons = Vec::new();
            for provider in AUTO_ORDER {
                let Some(info) = provider.info().filter(|info| offered(info)) else {
                    continue;
                };
                match build_session(runtime, config, provider) {
                    Ok(session) => return Ok((session, report(info.ort_name, None))),
                    Err(failure) => {
                        let why = match failure {
                            SessionFailure::Provider(message) => {
                                provider_hint(info, &message, runtime)
                            }
                            SessionFailure::Other(err) => err.to_string(),
                        };
                        tracing::info!("--ep auto: {} unavailable ({why})", info.name);
                        reasons.push(format!("{}: {why}", info.name));
                    }
                }
            }
            let why = if reasons.is_empty() {
                format!(
                    "ONNX Runtime {} ({}) offers none of the accelerators auto tries (it has: {})",
                    runtime.version(),
                    runtime.library().path.display(),
                    available.join(", ")
                )
            } else {
                reasons.join("; ")
            };
            Ok((cpu_session()?, report(CPU_PROVIDER, Some(why))))
        }
        Some(info) if info.provider == ExecutionProvider::Cpu => {
            Ok((cpu_session()?, report(CPU_PROVIDER, None)))
        }
        Some(info) => {
            if !offered(info) {
                return Err(Error::ProviderMissing {
                    provider: info,
                    library: runtime.library().path.clone(),
                    version: runtime.version().to_owned(),
                    available: available.join(", "),
                });
            }
            let session =
                build_session(runtime, config, requested).map_err(|failure| match failure {
                    SessionFailure::Provider(message) => Error::ProviderFailed {
                        provider: info,
                        library: runtime.library().path.clone(),
                        reason: provider_hint(info, &message, runtime),
                    },
                    SessionFailure::Other(err) => *err,
                })?;
            Ok((session, report(info.ort_name, None)))
        }
    }
}

/// ONNX Runtime's message about a provider that failed to register, with what to do.
fn provider_hint(info: &ProviderInfo, message: &str, runtime: &Runtime) -> String {
    let message = message.trim();
    match info.provider {
        ExecutionProvider::Cuda => format!(
            "{message}; the CUDA provider needs CUDA 13 and cuDNN 9 on the loader path (e.g. \
             `pip install \"onnxruntime-gpu[cuda,cudnn]=={}\"` and its nvidia/*/lib folders in \
             LD_LIBRARY_PATH), or use --ep cpu",
            runtime.version()
        ),
        ExecutionProvider::TensorRt => format!(
            "{message}; the TensorRT provider needs TensorRT 10 (libnvinfer.so.10) besides CUDA 13 \
             and cuDNN 9 on the loader path, or use --ep cuda"
        ),
        _ => format!(
            "{message}; the libraries and the device it needs must be present ({})",
            info.how_to_get
        ),
    }
}

enum SessionFailure {
    /// Registering the execution provider failed.
    Provider(String),
    /// Anything else (already a user-facing error; boxed, the error type is large).
    Other(Box<Error>),
}

fn build_session(
    runtime: &Runtime,
    config: &ClassifierConfig,
    provider: ExecutionProvider,
) -> Result<Session, SessionFailure> {
    let model_error = |message: String| {
        SessionFailure::Other(Box::new(Error::ModelLoad {
            path: config.model.clone(),
            message,
        }))
    };
    let mut builder = Session::builder(&runtime.env).map_err(|err| model_error(err.to_string()))?;
    if config.intra_threads > 0 {
        builder = builder
            .with_intra_threads(config.intra_threads)
            .map_err(|err| model_error(err.to_string()))?;
    }
    if let Some(spinning) = config.intra_spinning {
        builder = builder
            .with_intra_op_spinning(spinning)
            .map_err(|err| model_error(err.to_string()))?;
    }
    let mut providers = vec![provider.dispatch()];
    if provider == ExecutionProvider::TensorRt {
        // As ONNX Runtime recommends: the nodes TensorRT does not take go to CUDA when it
        // registers, else to the CPU.
        providers.push(ExecutionProvider::Cuda.dispatch().fail_silently());
    }
    let mut builder = builder
        .with_execution_providers(providers)
        .map_err(|err| SessionFailure::Provider(err.to_string()))?;
    builder.commit_from_file(&config.model).map_err(|err| {
        SessionFailure::Other(Box::new(Error::model_session(
            &config.model,
            Some(err.code()),
            err.message(),
        )))
    })
}

/// Runs one batch and returns the class output's shape and values as f32.
#[allow(clippy::too_many_arguments)]
fn run_once(
    session: &mut Session,
    path: &Path,
    input_name: &str,
    input_type: ElementType,
    output_name: &str,
    output_type: ElementType,
    data: &[f32],
    dims: [usize; 4],
) -> Result<(Vec<usize>, Vec<f32>)> {
    let fail = |message: String| Error::Inference {
        path: path.to_path_buf(),
        message,
    };
    let shape: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
    let outputs = match input_type {
        ElementType::F32 => {
            let tensor =
                TensorRef::from_array_view((shape, data)).map_err(|err| fail(err.to_string()))?;
            session.run(ort::inputs![input_name => tensor])
        }
        ElementType::F16 => {
            let halves: Vec<f16> = data.iter().map(|&v| f16::from_f32(v)).collect();
            let tensor =
                Tensor::from_array((shape, halves)).map_err(|err| fail(err.to_string()))?;
            session.run(ort::inputs![input_name => tensor])
        }
        ElementType::U8 => {
            let values: Vec<u8> = exact_integers(input_name, input_type, data)?;
            let tensor =
                Tensor::from_array((shape, values)).map_err(|err| fail(err.to_string()))?;
            session.run(ort::inputs![input_name => tensor])
        }
        ElementType::I8 => {
            let values: Vec<i8> = exact_integers(input_name, input_type, data)?;
            let tensor =
                Tensor::from_array((shape, values)).map_err(|err| fail(err.to_string()))?;
            session.run(ort::inputs![input_name => tensor])
        }
    }
    .map_err(|err| fail(err.to_string()))?;
    let value = outputs
        .get(output_name)
        .ok_or_else(|| fail(format!("output `{output_name}` missing from the results")))?;
    let (out_shape, scores) = match output_type {
        ElementType::F32 | ElementType::U8 | ElementType::I8 => {
            let (shape, values) = value
                .try_extract_tensor::<f32>()
                .map_err(|err| fail(err.to_string()))?;
            (shape.to_vec(), values.to_vec())
        }
        ElementType::F16 => {
            let (shape, values) = value
                .try_extract_tensor::<f16>()
                .map_err(|err| fail(err.to_string()))?;
            (shape.to_vec(), values.iter().map(|v| v.to_f32()).collect())
        }
    };
    let out_dims = out_shape
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect();
    Ok((out_dims, scores))
}

/// `data` as the integers of an integer input type: every value must be a whole number in the
/// type's range (the preprocessing gives raw pixels for such an input); nothing is rounded.
fn exact_integers<T: TryFrom<i16>>(
    tensor: &str,
    element: ElementType,
    data: &[f32],
) -> Result<Vec<T>> {
    let (min, max) = element.integer_range().unwrap_or((0.0, 0.0));
    data.iter()
        .map(|&v| {
            let whole = v.fract() == 0.0 && (min..=max).contains(&v);
            whole
                .then(|| T::try_from(v as i16).ok())
                .flatten()
                .ok_or_else(|| Error::NotRepresentable {
                    tensor: tensor.to_owned(),
                    element: element.to_string(),
                    value: v,
                    min,
                    max,
                })
        })
        .collect()
}

/// Turns one row of class scores into a top-k prediction.
///
/// Ranking compares the raw scores with [`f32::total_cmp`] (ties: lower class index first);
/// softmax is monotonic, so the ranking of logits and probabilities agree. A NaN anywhere in
/// the row (or an infinity in logits, which softmax cannot handle) gives
/// [`Error::NonFiniteOutput`].
pub fn predict_row(
    row: &[f32],
    background_first: bool,
    kind: ScoreKind,
    tensor: &str,
    image: usize,
) -> ImageResult {
    let bad = row.iter().find(|v| v.is_nan()).or_else(|| match kind {
        ScoreKind::Logits => row.iter().find(|v| v.is_infinite()),
        ScoreKind::Probabilities => None,
    });
    if let Some(&value) = bad {
        return Err(Error::NonFiniteOutput {
            image,
            tensor: tensor.to_owned(),
            value,
        });
    }
    let scores = if background_first {
        &row[1.min(row.len())..]
    } else {
        row
    };
    let k = TOP_K.min(scores.len());
    let by_score = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    let mut order: Vec<usize> = (0..scores.len()).collect();
    if k > 0 && k < order.len() {
        order.select_nth_unstable_by(k - 1, by_score);
        order.truncate(k);
    }
    order.sort_by(by_score);
    order.truncate(k);
    let probabilities = match kind {
        ScoreKind::Probabilities => order.iter().map(|&i| f64::from(scores[i])).collect(),
        ScoreKind::Logits => {
            let max = scores
                .iter()
                .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
            let total: f64 = scores.iter().map(|&v| (f64::from(v) - max).exp()).sum();
            order
                .iter()
                .map(|&i| (f64::from(scores[i]) - max).exp() / total)
                .collect()
        }
    };
    Ok(TopK {
        classes: order,
        probabilities,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classifier_can_move_to_a_worker_thread() {
        fn assert_send<T: Send>() {}
        fn assert_sync<T: Sync>() {}
        assert_send::<Classifier>();
        assert_sync::<crate::Runtime>();
    }

    #[test]
    fn integer_inputs_take_exact_integers_only() {
        let ok: Vec<u8> = exact_integers("x", ElementType::U8, &[0.0, 17.0, 255.0]).unwrap();
        assert_eq!(ok, vec![0, 17, 255]);
        let ok: Vec<i8> = exact_integers("x", ElementType::I8, &[-128.0, 0.0, 127.0]).unwrap();
        assert_eq!(ok, vec![-128, 0, 127]);
        for (element, bad) in [
            (ElementType::U8, 0.5f32),
            (ElementType::U8, 256.0),
            (ElementType::U8, -1.0),
            (ElementType::U8, f32::NAN),
            (ElementType::I8, 128.0),
        ] {
            let err = exact_integers::<i16>("image", element, &[1.0, bad])
                .expect_err("not representable")
                .to_string();
            assert!(
                err.starts_with(&format!("input `image` is {element}: batch value")),
                "{err}"
            );
        }
    }

    #[test]
    fn softmax_and_ranking() {
        let row = [1.0f32, 3.0, 2.0, 3.0, -1.0, 0.0, 0.5];
        let p = predict_row(&row, false, ScoreKind::Logits, "y", 0).expect("finite");
        // Ties keep the lower class index first.
        assert_eq!(p.classes, vec![1, 3, 2, 0, 6]);
        let total: f64 = row.iter().map(|&v| f64::from(v).exp()).sum();
        assert!((p.probabilities[0] - 3f64.exp() / total).abs() < 1e-12);
        assert!(p.probabilities.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn background_column_is_dropped() {
        let mut row = vec![0.0f32; 1001];
        row[0] = 100.0; // background
        row[1] = 5.0; // ImageNet class 0
        row[1000] = 4.0; // ImageNet class 999
        let p = predict_row(&row, true, ScoreKind::Logits, "y", 0).expect("finite");
        assert_eq!(&p.classes[..2], &[0, 999]);
        assert_eq!(p.classes.len(), TOP_K);
    }

    #[test]
    fn probabilities_are_used_as_given() {
        let row = [0.1f32, 0.6, 0.3];
        let p = predict_row(&row, false, ScoreKind::Probabilities, "y", 0).expect("finite");
        assert_eq!(p.classes, vec![1, 2, 0]);
        assert_eq!(
            p.probabilities,
            vec![f64::from(0.6f32), f64::from(0.3f32), f64::from(0.1f32)]
        );
        assert_eq!(
            p.top1(),
            Some(imagenetx_vocab::Prediction {
                class: 1,
                probability: f64::from(0.6f32)
            })
        );
        let row = p.into_row("a.JPEG");
        assert_eq!(
            (row.file_name.as_str(), row.classes),
            ("a.JPEG", vec![1, 2, 0])
        );
        let empty = TopK {
            classes: vec![],
            probabilities: vec![],
        };
        assert_eq!(empty.top1(), None);
    }

    #[test]
    fn nan_is_reported_not_ranked() {
        let row = [0.1f32, f32::NAN, 0.3];
        let err = predict_row(&row, false, ScoreKind::Logits, "logits", 7).expect_err("nan");
        assert!(matches!(err, Error::NonFiniteOutput { image: 7, .. }));
        assert!(
            err.to_string().starts_with("NaN output for image 7"),
            "{err}"
        );
        let inf = [0.1f32, f32::INFINITY, 0.3];
        assert!(predict_row(&inf, false, ScoreKind::Logits, "y", 0).is_err());
    }
}
