//! The evaluator: a model, its resolved preprocessing, and the parallel decode → batch →
//! inference pipeline that feeds it.
//!
//! Decoding and preprocessing run in parallel on a rayon pool and fill whole batches, which
//! go through a bounded queue to the one thread that owns the ONNX Runtime session; memory
//! is bounded by batch size × queue depth, not by the number of images. Each result goes to
//! a [`Sink`] as it is made.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use imagenetx_dataset::{ImageEntry, escape_file_name};
use imagenetx_imaging::PixelScale;
use imagenetx_imaging::{PreprocessConfig, Preprocessor, ReadLimits};
use imagenetx_infer::{
    Classifier, ClassifierConfig, Decision, ExecutionProvider, Fingerprint, InputOverrides,
    ModelFile, ModelInfo, ProviderReport, Runtime, RuntimeSearch, SkippedFile, TopK,
};
use rayon::prelude::*;
use thread_local::ThreadLocal;

use crate::preprocess::{Layer, PreprocessSpec, ResolvedPreprocess, Source, resolve};
use crate::timing::PipelineTimes;
use crate::{Error, Result};

/// Largest batch tensor, in bytes: a batch of a model with a huge fixed input is made smaller.
pub const BATCH_BYTES: usize = 256 << 20;
/// Largest tensor of one image, in bytes (a fixed input of about 9,400 × 9,400 pixels).
pub const IMAGE_TENSOR_BYTES: usize = 1 << 30;
/// Batches decoded ahead of the inference thread.
const QUEUE_DEPTH: usize = 2;

/// Batches decoded at once when a batch holds few images per decoding thread (see
/// `Decode::run`).
const LANES: usize = 2;
/// Images per decoding thread in a batch from which one batch is decoded at a time.
const IMAGES_PER_THREAD: usize = 8;

/// Everything an evaluation needs to know, as data (the `imagenetx evaluate` flags).
#[derive(Debug, Clone)]
pub struct EvaluatorConfig {
    /// The ONNX model, or its export folder (the folder's `model.onnx`, else its only `.onnx`
    /// file; see [`crate::sidefiles::model_file`]). Side files beside the model are read
    /// ([`crate::sidefiles`]).
    pub model: PathBuf,
    /// Where to look for the ONNX Runtime library ([`RuntimeSearch::default`]: the
    /// caller's file, `ORT_DYLIB_PATH`, the set-up cache, the system library; a Python
    /// `onnxruntime` package only when asked). Whether to prefer its GPU build follows
    /// `provider`.
    pub runtime: RuntimeSearch,
    /// Execution provider: `Cuda` fails if CUDA cannot be used, `Auto` falls back to CPU.
    pub provider: ExecutionProvider,
    /// ONNX Runtime intra-op threads (0: its default).
    pub intra_threads: usize,
    /// Whether ONNX Runtime's intra-op threads spin while waiting for work. Off by default
    /// (ONNX Runtime's own default is on): the decoding threads share the cores, and spinning
    /// took them away — on 16 cores, off gave 1.3–1.4× the images/s when decoding dominates
    /// and 1.1× with Lite0 on CUDA, the same with Lite0 on the CPU (`BENCHMARKS.md`).
    pub intra_spinning: bool,
    /// Name of the output holding the class scores (default: the one with 1000 or 1001
    /// classes).
    pub output: Option<String>,
    /// The caller's layout and input size for the model's input (`--layout`,
    /// `--input-size`), over its declared shape and the names of its symbolic dims. A size set
    /// here is treated as a fixed input size (the default preprocessing is fitted to it).
    pub input: InputOverrides,
    /// The caller's preprocessing overrides (over the model's metadata and the defaults).
    pub preprocess: PreprocessSpec,
    /// Images per inference batch (made smaller for huge fixed inputs, see
    /// [`Evaluator::notices`]).
    pub batch_size: usize,
    /// Decoding threads (0: one per core).
    pub threads: usize,
    /// Limits on the image files read (size, pixels, decode memory).
    pub read_limits: ReadLimits,
}

impl EvaluatorConfig {
    /// The defaults for `model`: automatic provider, batches of 32, a thread per core, the
    /// model's own preprocessing.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        EvaluatorConfig {
            model: model.into(),
            runtime: RuntimeSearch::default(),
            provider: ExecutionProvider::Auto,
            intra_threads: 0,
            intra_spinning: false,
            output: None,
            input: InputOverrides::default(),
            preprocess: PreprocessSpec::default(),
            batch_size: 32,
            threads: 0,
            read_limits: ReadLimits::default(),
        }
    }
}

/// Receives the results of an evaluation as they are made (the way ripgrep's searcher hands
/// matches to a `Sink`).
///
/// Batches follow the order of the `todo` list given to [`Evaluator::run`]; within a batch,
/// the images that could not be read or decoded come first ([`Sink::skipped`]), then the
/// predictions, in `todo` order. An error returned by a method stops the run and is returned
/// by [`Evaluator::run`]. A sink that wraps another (as the command wraps a
/// [`JournalSink`](crate::JournalSink) to add a progress bar) forwards every method the inner
/// one implements.
pub trait Sink {
    /// Image `index` of the list was predicted. `fingerprint` is the file's size and mtime
    /// taken before it was read (`None` when it could not be taken).
    fn prediction(
        &mut self,
        index: usize,
        image: &ImageEntry,
        fingerprint: Option<Fingerprint>,
        prediction: &TopK,
    ) -> Result<()>;

    /// Image `index` could not be read, decoded or predicted.
    fn skipped(&mut self, index: usize, skipped: &SkippedFile) -> Result<()> {
        let _ = (index, skipped);
        Ok(())
    }

    /// A warning about an image (decoded although larger than Pillow's warning size).
    fn warning(&mut self, message: &str) {
        tracing::warn!("{message}");
    }

    /// A batch of `images` images is done (predicted or skipped).
    fn batch_done(&mut self, images: usize) -> Result<()> {
        let _ = images;
        Ok(())
    }

    /// Asked before each batch: `true` stops the run there (what is done stays done).
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// Collects predictions in memory, by image index.
#[derive(Debug, Default, Clone)]
pub struct Collect {
    /// `predictions[i]`: the prediction of image `i`, if it was made.
    pub predictions: Vec<Option<TopK>>,
    /// The images that failed.
    pub skipped: Vec<SkippedFile>,
}

impl Sink for Collect {
    fn prediction(
        &mut self,
        index: usize,
        _image: &ImageEntry,
        _fingerprint: Option<Fingerprint>,
        prediction: &TopK,
    ) -> Result<()> {
        if self.predictions.len() <= index {
            self.predictions.resize(index + 1, None);
        }
        self.predictions[index] = Some(prediction.clone());
        Ok(())
    }

    fn skipped(&mut self, _index: usize, skipped: &SkippedFile) -> Result<()> {
        self.skipped.push(skipped.clone());
        Ok(())
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Where the run's time went (for a model of a pass: its group's pass; all zero for a
    /// model of a pass that never ran, stopped before it).
    pub pipeline: PipelineTimes,
    /// Time in the model (ONNX Runtime's run, its output read back).
    pub inference: Duration,
    /// Images predicted.
    pub predicted: usize,
    /// Images that failed (their reasons went to [`Sink::skipped`]).
    pub skipped: usize,
    /// Images decoded although larger than Pillow's warning size.
    pub large_images: usize,
    /// Whether [`Sink::should_stop`] ended the run early.
    pub stopped: bool,
}

/// A model ready to evaluate: ONNX Runtime loaded, the model inspected, its preprocessing
/// resolved, the batch size fitted.
#[derive(Debug)]
pub struct Evaluator {
    config: EvaluatorConfig,
    runtime: &'static Runtime,
    pub(crate) classifier: Classifier,
    preprocessing: ResolvedPreprocess,
    model_file: ModelFile,
    batch_size: usize,
    notices: Vec<String>,
}

impl Evaluator {
    /// Loads ONNX Runtime and the model, and resolves its preprocessing (defaults → model
    /// metadata → `config.preprocess`).
    pub fn new(config: EvaluatorConfig) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(Error::invalid("the batch size must be at least 1"));
        }
        let (runtime, mut classifier, model_file) = load(&config)?;
        let mut preprocessing = resolve(classifier.info(), &config.preprocess)?;
        caller_input_sources(&mut preprocessing, config.input);
        record_input_decisions(&mut classifier, &preprocessing);
        let mut notices = Vec::new();
        let batch_size = batch_size_for(config.batch_size, &preprocessing.config, &mut notices)?;
        Ok(Evaluator {
            config,
            runtime,
            classifier,
            preprocessing,
            model_file,
            batch_size,
            notices,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &EvaluatorConfig {
        &self.config
    }

    /// What was found out about the model (input, output, scores, decisions).
    pub fn info(&self) -> &ModelInfo {
        self.classifier.info()
    }

    /// The execution provider in use, and why.
    pub fn provider(&self) -> &ProviderReport {
        self.classifier.provider()
    }

    /// The ONNX Runtime library in use.
    pub fn runtime(&self) -> &'static Runtime {
        self.runtime
    }

    /// The preprocessing, with where each field came from.
    pub fn preprocessing(&self) -> &ResolvedPreprocess {
        &self.preprocessing
    }

    /// The model file and its SHA-256.
    pub fn model_file(&self) -> &ModelFile {
        &self.model_file
    }

    /// The batch size in use.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Things the caller should tell the user (a batch size made smaller, and why).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// Predicts the images `todo` (indices into `images`) and hands each result to `sink`.
    ///
    /// (The crash tests of the command stop and slow the run through the environment variables
    /// `IMAGENETX_PAUSE_AT` and `IMAGENETX_THROTTLE_MS`; leave them unset.)
    ///
    /// On an error (a failed inference, an error from the sink) the run stops and the error
    /// is returned; what the sink received before is its to keep.
    pub fn run<S: Sink>(
        &mut self,
        images: &[ImageEntry],
        todo: &[usize],
        sink: &mut S,
    ) -> Result<RunStats> {
        if let Some(bad) = todo.iter().find(|&&i| i >= images.len()) {
            return Err(Error::invalid(format!(
                "image index {bad} is outside the list of {} images",
                images.len()
            )));
        }
        let config = &self.preprocessing.config;
        let classifier = &mut self.classifier;
        let mut stats = RunStats::default();
        let decode = Decode {
            images,
            config,
            limits: self.config.read_limits,
            batch_size: self.batch_size,
            threads: self.config.threads,
        };
        stats.pipeline = decode.run(todo, |batch| {
            if sink.should_stop() {
                stats.stopped = true;
                return Ok(false);
            }
            feed(classifier, config, images, batch, sink, &mut stats)?;
            sink.batch_done(batch.len())?;
            Ok(true)
        })?;
        Ok(stats)
    }

    /// Evaluates every image of `images` and scores the predictions against `annotations`
    /// (labels for accuracy, ImageNet-X factors for the analysis): the whole `imagenetx
    /// evaluate` in one call, predictions kept in memory.
    pub fn evaluate(
        &mut self,
        images: &imagenetx_dataset::ImageList,
        annotations: &crate::AnnotationOptions,
    ) -> Result<crate::Evaluation> {
        // The annotations first: a wrong path is said before the inference, not after it.
        let truth = crate::Truth::load(annotations, &images.images)?;
        let todo: Vec<usize> = (0..images.images.len()).collect();
        let mut sink = Collect::default();
        self.run(&images.images, &todo, &mut sink)?;
        let model = model_name(&self.config.model);
        let predictions = sink.predictions;
        let scores = truth.score(&model, &images.images, |i| {
            Ok(predictions.get(i).cloned().flatten())
        })?;
        let mut rows: Vec<imagenetx_dataset::PredictionRow> = predictions
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some(p.clone()?.into_row(images.images[i].file_name())))
            .collect();
        rows.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        let mut skipped = skipped_entries(&images.skipped);
        skipped.extend(sink.skipped);
        skipped.sort_by(|a, b| a.file.cmp(&b.file));
        let intervals = truth.intervals(
            &scores,
            &imagenetx_factors::intervals::IntervalOptions::default(),
        )?;
        Ok(crate::Evaluation {
            model,
            rows,
            scores,
            intervals,
            skipped,
        })
    }
}

/// Loads ONNX Runtime and the model as `config` says (a caller's crop checked before the model
/// is probed with it) and hashes the model file.
fn load(config: &EvaluatorConfig) -> Result<(&'static Runtime, Classifier, ModelFile)> {
    if let Some(crop) = config.preprocess.crop {
        if crop == 0 || crop > imagenetx_imaging::MAX_SIDE {
            return Err(Error::invalid(format!(
                "the crop {crop} is outside 1..={}",
                imagenetx_imaging::MAX_SIDE
            )));
        }
        check_image_tensor(crop, crop)?;
    }
    if let Some((h, w)) = config.input.size {
        let side = |s: usize| u32::try_from(s).unwrap_or(u32::MAX);
        let (h, w) = (side(h), side(w));
        if h == 0 || w == 0 || h > imagenetx_imaging::MAX_SIDE || w > imagenetx_imaging::MAX_SIDE {
            return Err(Error::invalid(format!(
                "the input size {h}x{w} is outside 1..={}",
                imagenetx_imaging::MAX_SIDE
            )));
        }
        check_image_tensor(h, w)?;
    }
    // A model with a dynamic input size is probed at the caller's crop, else its metadata's,
    // else 224.
    // A model given as its export folder is the folder's model file.
    let model = crate::sidefiles::model_file(&config.model)?;
    let classifier_config = ClassifierConfig::new(&model)
        .with_provider(config.provider)
        .with_intra_threads(config.intra_threads)
        .with_intra_spinning(Some(config.intra_spinning))
        .with_output(config.output.clone())
        .with_input(config.input)
        .with_probe_size(config.preprocess.crop.map(|c| c as usize))
        .with_probe_size_from_metadata(Some(crate::preprocess::metadata_crop));
    classifier_config.validate()?;
    let runtime = Runtime::find(
        &config
            .runtime
            .clone()
            .with_prefer_gpu(config.provider.wants_gpu()),
    )?;
    let classifier = Classifier::new(runtime, &classifier_config)?;
    let model_file = ModelFile::hash(&model)?;
    Ok((runtime, classifier, model_file))
}

/// What is known about a model before evaluating it: `imagenetx inspect`. Unlike
/// [`Evaluator::new`], a preprocessing that cannot be resolved (bad metadata, a crop that does
/// not fit the input) is part of the answer, not an error.
#[derive(Debug)]
pub struct Inspection {
    /// The model file and its SHA-256.
    pub model: ModelFile,
    /// The ONNX Runtime library in use.
    pub runtime: &'static Runtime,
    /// The classifier (input, output, scores, decisions, provider).
    pub classifier: Classifier,
    /// The preprocessing, or why it cannot be resolved.
    pub preprocessing: Result<ResolvedPreprocess>,
}

/// Inspects the model of `config` (ONNX Runtime loaded, the model probed, its preprocessing
/// resolved if it can be).
pub fn inspect(config: &EvaluatorConfig) -> Result<Inspection> {
    let (runtime, mut classifier, model) = load(config)?;
    let mut preprocessing = resolve(classifier.info(), &config.preprocess);
    if let Ok(resolved) = &mut preprocessing {
        caller_input_sources(resolved, config.input);
        record_input_decisions(&mut classifier, resolved);
    }
    Ok(Inspection {
        model,
        runtime,
        classifier,
        preprocessing,
    })
}

/// The execution providers of the ONNX Runtime library `search` finds: `imagenetx inspect
/// --providers`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Providers {
    /// The library and its version.
    pub runtime: imagenetx_infer::RuntimeReport,
    /// Every provider `--ep` knows, then any other the library has, each with whether the
    /// library has it, its place in `auto`'s order and how to get a build that has it.
    pub providers: Vec<imagenetx_infer::ProviderAvailability>,
}

/// Loads the ONNX Runtime library `search` finds (no model) and lists its execution providers.
pub fn providers(search: &imagenetx_infer::RuntimeSearch) -> Result<Providers> {
    let runtime = Runtime::find(search)?;
    Ok(Providers {
        runtime: runtime.report(),
        providers: imagenetx_infer::availability(runtime.providers()),
    })
}

/// The layout and the size the caller set for the model's input (`--layout`, `--input-size`)
/// are the caller's in the preprocessing's sources, not the model input's.
fn caller_input_sources(preprocessing: &mut ResolvedPreprocess, input: InputOverrides) {
    let sources = &mut preprocessing.sources;
    if let Some(layout) = input.layout {
        sources.layout = Source {
            layer: Layer::Caller,
            detail: format!("--layout {}", layout.to_string().to_lowercase()),
        };
    }
    if let Some((h, w)) = input.size {
        let flag = Source {
            layer: Layer::Caller,
            detail: format!("--input-size {h},{w}"),
        };
        for source in [&mut sources.crop, &mut sources.resize] {
            if source.layer == Layer::ModelInput {
                *source = flag.clone();
            }
        }
    }
}

/// Records, with the model's decisions, what the resolved preprocessing decided about its
/// input: the size of symbolic height and width dims (the crop, and where it came from), and
/// the pixel values fed (scale, mean, std, and where they came from).
fn record_input_decisions(classifier: &mut Classifier, preprocessing: &ResolvedPreprocess) {
    let (config, sources) = (&preprocessing.config, &preprocessing.sources);
    let input = &classifier.info().input;
    let mut decisions = Vec::new();
    if input.fixed_size().is_none() {
        decisions.push(Decision::new(
            "input size",
            format!("{}x{}", config.crop_height, config.crop_width),
            format!(
                "height `{}` and width `{}` are symbolic: the preprocessing's crop ({})",
                input.height, input.width, sources.crop
            ),
        ));
    }
    let scale = match config.scale {
        PixelScale::UnitInterval => "p / 255",
        PixelScale::Raw => "p",
    };
    let values = if config.mean == [0.0; 3] && config.std == [1.0; 3] {
        scale.to_owned()
    } else {
        format!("({scale} - {:?}) / {:?}", config.mean, config.std)
    };
    let origin = if sources.scale == sources.mean && sources.mean == sources.std {
        sources.scale.to_string()
    } else {
        format!(
            "scale from {}; mean from {}; std from {}",
            sources.scale, sources.mean, sources.std
        )
    };
    decisions.push(Decision::new(
        "pixel values",
        format!("{values} as {}", input.element_type),
        origin,
    ));
    for decision in decisions {
        classifier.record_decision(decision);
    }
}

/// The model's name in tables and reports: its file stem.
pub fn model_name(model: &Path) -> String {
    model
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned())
}

/// The batch size to use: `asked`, made smaller when the batch tensor of a model with a large
/// fixed input would exceed [`BATCH_BYTES`] (said in `notices`); an input whose single-image
/// tensor exceeds [`IMAGE_TENSOR_BYTES`] is refused.
pub fn batch_size_for(
    asked: usize,
    config: &PreprocessConfig,
    notices: &mut Vec<String>,
) -> Result<usize> {
    let per_image = check_image_tensor(config.crop_height, config.crop_width)?;
    let shape = format!("{}x{}", config.crop_height, config.crop_width);
    let fits = (BATCH_BYTES / per_image.max(1)).max(1);
    if asked > fits {
        notices.push(format!(
            "batch size {asked} -> {fits}: one {shape} image takes {:.1} MiB as float32, and a batch is kept under {} MiB",
            per_image as f64 / f64::from(1u32 << 20),
            BATCH_BYTES >> 20
        ));
        return Ok(fits);
    }
    Ok(asked)
}

/// The bytes of one `height × width` image as float32; an error over [`IMAGE_TENSOR_BYTES`].
fn check_image_tensor(height: u32, width: u32) -> Result<usize> {
    let per_image = 3usize
        .saturating_mul(height as usize)
        .saturating_mul(width as usize)
        .saturating_mul(std::mem::size_of::<f32>());
    if per_image > IMAGE_TENSOR_BYTES {
        return Err(Error::invalid(format!(
            "the model's input {height}x{width} needs {:.1} GiB per image (float32); imagenetx refuses inputs over {} GiB per image",
            per_image as f64 / f64::from(1u32 << 30),
            IMAGE_TENSOR_BYTES >> 30
        )));
    }
    Ok(per_image)
}

/// A path as text for messages and the run record, escaped as file names are
/// (`escape_file_name`: unchanged when it is UTF-8 without a backslash), so it can always be
/// written and read back.
pub fn path_text(path: &Path) -> String {
    escape_file_name(path.as_os_str())
}

/// The entries discovery named like images but did not read (FIFOs, devices, dangling or
/// looping links), as skipped files: listed like the images that fail to decode.
pub(crate) fn skipped_entries(entries: &[imagenetx_dataset::SkippedEntry]) -> Vec<SkippedFile> {
    entries
        .iter()
        .map(|s| SkippedFile {
            file: path_text(&s.path),
            reason: s.reason.clone(),
        })
        .collect()
}

/// The decode side of a run, shared by [`Evaluator::run`] and [`crate::Zoo::run`]: the images
/// decoded and preprocessed in parallel with one configuration, in batches, each batch handed
/// to the consumer on the calling thread.
pub(crate) struct Decode<'a> {
    pub(crate) images: &'a [ImageEntry],
    pub(crate) config: &'a PreprocessConfig,
    pub(crate) limits: ReadLimits,
    pub(crate) batch_size: usize,
    /// Decoding threads (0: one per core).
    pub(crate) threads: usize,
}

impl Decode<'_> {
    /// Decodes the images `todo` batch by batch (at most [`QUEUE_DEPTH`] batches ahead) and
    /// hands each batch, in order, to `consume`, which returns `false` to stop there. An error
    /// of `consume` stops the run and is returned. Returns where the time went.
    ///
    /// When a batch holds few images per decoding thread (under [`IMAGES_PER_THREAD`]),
    /// [`LANES`] producers decode every `LANES`-th batch each on the one pool of decoding
    /// threads, so that the threads that finish their images of one batch go on with the next
    /// batch instead of waiting for the batch's slowest image. (With many images per thread
    /// that wait is small, and a second lane only delays each batch: one lane then.)
    pub(crate) fn run(
        &self,
        todo: &[usize],
        mut consume: impl FnMut(&Batch) -> Result<bool>,
    ) -> Result<PipelineTimes> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .build()
            .map_err(|e| Error::invalid(format!("cannot start the decoding threads: {e}")))?;
        let images = self.images;
        let batch_size = self.batch_size;
        let stop = AtomicBool::new(false);
        // One preprocessor per decoding thread, kept for the whole run with its buffers.
        let workers = Workers::new(self.config, self.limits);
        let lanes = if batch_size >= IMAGES_PER_THREAD * pool.current_num_threads() {
            1
        } else {
            LANES
        };
        // Per lane: its batches, and its buffers coming back once inferred, so that no buffer
        // is allocated (and its pages faulted in and zeroed) more than once.
        let mut batches = Vec::with_capacity(lanes);
        let mut returns = Vec::with_capacity(lanes);
        // Before the producers start, so that all their decoding falls within `wall`.
        let start = Instant::now();
        std::thread::scope(|scope| {
            let stop = &stop;
            let pool = &pool;
            let workers = &workers;
            for lane in 0..lanes {
                let (sender, receiver) = sync_channel::<Batch>(QUEUE_DEPTH.div_ceil(lanes));
                let (recycle, recycled) = sync_channel::<Vec<f32>>(QUEUE_DEPTH + 2);
                batches.push(receiver);
                returns.push(recycle);
                scope.spawn(move || {
                    for chunk in todo.chunks(batch_size).skip(lane).step_by(lanes) {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let buffer = recycled.try_recv().unwrap_or_default();
                        let batch =
                            pool.install(|| preprocess_batch(chunk, images, workers, buffer));
                        if sender.send(batch).is_err() {
                            break; // The consumer stopped.
                        }
                    }
                });
            }
            let mut times = PipelineTimes {
                decode_threads: pool.current_num_threads(),
                ..PipelineTimes::default()
            };
            let result = (|| -> Result<()> {
                // Batch k comes from lane k % lanes; the first lane that has no more ends it.
                for lane in (0..lanes).cycle() {
                    let waiting = Instant::now();
                    let Ok(batch) = batches[lane].recv() else {
                        times.waiting_for_images += waiting.elapsed();
                        break;
                    };
                    let consuming = Instant::now();
                    times.waiting_for_images += consuming - waiting;
                    imagenetx_infer::pause::throttle();
                    let go_on = consume(&batch);
                    times.consuming += consuming.elapsed();
                    times.batches += 1;
                    let go_on = go_on?;
                    // A full channel only means the producer has buffers enough.
                    let _ = returns[lane].try_send(batch.data);
                    if !go_on {
                        break;
                    }
                }
                Ok(())
            })();
            // Stop the producers whatever happened; dropping the receivers unblocks them.
            stop.store(true, Ordering::Relaxed);
            drop(batches);
            times.wall = start.elapsed();
            times.decoding = workers.busy();
            result.map(|()| times)
        })
    }
}

/// Feeds one decoded batch to one model: its large-image warnings, its failed images and then
/// its predictions (an image whose inference failed, as a NaN output, skipped) go to `sink`.
pub(crate) fn feed<S: Sink>(
    classifier: &mut Classifier,
    config: &PreprocessConfig,
    images: &[ImageEntry],
    batch: &Batch,
    sink: &mut S,
    stats: &mut RunStats,
) -> Result<()> {
    for warning in &batch.large {
        sink.warning(warning);
    }
    stats.large_images += batch.large.len();
    for (index, failed) in &batch.failed {
        stats.skipped += 1;
        sink.skipped(*index, failed)?;
    }
    if batch.entries.is_empty() {
        return Ok(());
    }
    let shape = config.layout.shape(
        batch.entries.len(),
        config.crop_height as usize,
        config.crop_width as usize,
    );
    let start = Instant::now();
    let results = classifier.classify_slice(&batch.data, shape);
    stats.inference += start.elapsed();
    let results = results?;
    for ((&i, fingerprint), result) in batch.entries.iter().zip(&batch.fingerprints).zip(results) {
        let image = &images[i];
        match result {
            Ok(prediction) => {
                stats.predicted += 1;
                sink.prediction(i, image, *fingerprint, &prediction)?;
            }
            Err(err) => {
                stats.skipped += 1;
                sink.skipped(
                    i,
                    &SkippedFile {
                        file: path_text(image.path()),
                        reason: err.to_string(),
                    },
                )?;
            }
        }
    }
    Ok(())
}

/// Images of one batch, preprocessed.
pub(crate) struct Batch {
    /// Their indices in the image list.
    entries: Vec<usize>,
    fingerprints: Vec<Option<Fingerprint>>,
    data: Vec<f32>,
    failed: Vec<(usize, SkippedFile)>,
    /// Images decoded although over Pillow's warning size.
    large: Vec<String>,
}

impl Batch {
    /// The images of the batch, predicted or failed.
    pub(crate) fn len(&self) -> usize {
        self.entries.len() + self.failed.len()
    }

    /// The part of the batch whose images `wanted` (by image index) holds, or `None` when it
    /// holds them all (the batch itself is then used, without a copy). Large-image warnings
    /// stay with the images kept.
    pub(crate) fn subset(&self, wanted: &[bool], tensor_len: usize) -> Option<Batch> {
        let wants = |i: usize| wanted.get(i).copied().unwrap_or(false);
        if self.entries.iter().all(|&i| wants(i)) && self.failed.iter().all(|(i, _)| wants(*i)) {
            return None;
        }
        let mut part = Batch {
            entries: Vec::new(),
            fingerprints: Vec::new(),
            data: Vec::new(),
            failed: self
                .failed
                .iter()
                .filter(|(i, _)| wants(*i))
                .cloned()
                .collect(),
            large: Vec::new(),
        };
        for (slot, (&i, fingerprint)) in self.entries.iter().zip(&self.fingerprints).enumerate() {
            if wants(i) {
                part.entries.push(i);
                part.fingerprints.push(*fingerprint);
                part.data
                    .extend_from_slice(&self.data[slot * tensor_len..(slot + 1) * tensor_len]);
            }
        }
        Some(part)
    }
}

/// The preprocessors of a run's decoding threads: each thread makes its own the first time it
/// decodes and keeps it for the rest of the run, so its buffers (decoded image, resampling
/// scratch, crop), its JPEG decoder and its resampling coefficients are made once per thread
/// rather than once per piece of a batch that rayon splits off. (With 16 threads and batches
/// of 32, that was once per image: a fresh JPEG decoder and about 1 MB of fresh, zeroed pages
/// for each image.) Also counts the time they spend on images.
struct Workers<'a> {
    /// What every preprocessor of the run is made from.
    config: &'a PreprocessConfig,
    limits: ReadLimits,
    preprocessors: ThreadLocal<RefCell<Option<std::result::Result<Preprocessor, String>>>>,
    /// Nanoseconds spent on images, summed over the threads.
    busy: AtomicU64,
}

impl<'a> Workers<'a> {
    fn new(config: &'a PreprocessConfig, limits: ReadLimits) -> Self {
        Self {
            config,
            limits,
            preprocessors: ThreadLocal::new(),
            busy: AtomicU64::new(0),
        }
    }

    /// Time spent on images so far, summed over the threads.
    fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy.load(Ordering::Relaxed))
    }

    /// Runs `work` with this thread's preprocessor (made the first time), or with the reason
    /// it could not be made.
    fn with<T>(&self, work: impl FnOnce(std::result::Result<&mut Preprocessor, &str>) -> T) -> T {
        let make = || {
            Preprocessor::with_limits(self.config.clone(), self.limits).map_err(|e| e.to_string())
        };
        let cell = self.preprocessors.get_or(|| RefCell::new(None));
        match cell.try_borrow_mut() {
            Ok(mut slot) => work(
                slot.get_or_insert_with(make)
                    .as_mut()
                    .map_err(|e| e.as_str()),
            ),
            // Only if `work` ever ran rayon work of its own on this thread: a preprocessor of
            // its own then.
            Err(_) => work(make().as_mut().map_err(|e| e.as_str())),
        }
    }
}

/// Decodes and preprocesses the images `chunk` (indices into `images`) in parallel, each
/// straight into its slot of `buffer` (a recycled batch buffer, or empty): no per-image tensor
/// and no copy. The slots of images that failed are closed up, so `data` holds the tensors of
/// `entries` in order.
fn preprocess_batch(
    chunk: &[usize],
    images: &[ImageEntry],
    workers: &Workers<'_>,
    mut data: Vec<f32>,
) -> Batch {
    type Outcome = (
        Option<Fingerprint>,
        std::result::Result<(), String>,
        Vec<String>,
    );
    let tensor_len = workers.config.tensor_len();
    // Every value of a slot is written by the preprocessor (padding included), so a recycled
    // buffer needs no clearing; `resize` only grows it the first time.
    data.resize(chunk.len() * tensor_len, 0.0);
    let outcomes: Vec<Outcome> = data
        .par_chunks_mut(tensor_len.max(1))
        .zip(chunk.par_iter())
        .map(|(slot, &i)| {
            let start = Instant::now();
            let entry = &images[i];
            // The fingerprint is taken before reading, so a file changed while it is read is
            // predicted again by the next resume.
            // An archive member's is its archive's (see `ImageEntry::file`).
            let fingerprint = Fingerprint::read(entry.file()).ok();
            let outcome = workers.with(|preprocessor| match preprocessor {
                Ok(p) => {
                    let outcome = match entry.archive_member() {
                        None => p.preprocess_file(entry.path(), slot),
                        Some(member) => p.preprocess_read(
                            entry.path(),
                            member.size(),
                            |limit| member.read(limit),
                            slot,
                        ),
                    }
                    .map_err(|e| e.to_string());
                    let warnings = p.take_warnings().iter().map(ToString::to_string).collect();
                    (fingerprint, outcome, warnings)
                }
                Err(e) => (fingerprint, Err(e.to_owned()), Vec::new()),
            });
            let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            workers.busy.fetch_add(nanos, Ordering::Relaxed);
            outcome
        })
        .collect();
    let mut batch = Batch {
        entries: Vec::with_capacity(chunk.len()),
        fingerprints: Vec::with_capacity(chunk.len()),
        data: Vec::new(),
        failed: Vec::new(),
        large: Vec::new(),
    };
    for (slot, (&i, (fingerprint, outcome, warnings))) in chunk.iter().zip(outcomes).enumerate() {
        batch.large.extend(warnings);
        match outcome {
            Ok(()) => {
                let kept = batch.entries.len();
                if kept != slot {
                    data.copy_within(
                        slot * tensor_len..(slot + 1) * tensor_len,
                        kept * tensor_len,
                    );
                }
                batch.entries.push(i);
                batch.fingerprints.push(fingerprint);
            }
            Err(reason) => batch.failed.push((
                i,
                SkippedFile {
                    file: path_text(images[i].path()),
                    reason,
                },
            )),
        }
    }
    data.truncate(batch.entries.len() * tensor_len);
    batch.data = data;
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(size: u32) -> PreprocessConfig {
        PreprocessConfig {
            crop_height: size,
            crop_width: size,
            ..PreprocessConfig::torchvision()
        }
    }

    #[test]
    fn each_decoding_thread_keeps_one_preprocessor_for_the_run() {
        let (config, limits) = (config(224), ReadLimits::default());
        let workers = Workers::new(&config, limits);
        let address = |workers: &Workers<'_>| {
            workers.with(|p| p.ok().map(|p| p as *const Preprocessor as usize))
        };
        let first = address(&workers).unwrap();
        assert_eq!(
            address(&workers).unwrap(),
            first,
            "made again on the same thread"
        );
        let other = std::thread::scope(|s| {
            s.spawn(|| {
                let mine = address(&workers).unwrap();
                assert_eq!(address(&workers).unwrap(), mine);
                mine
            })
            .join()
            .unwrap()
        });
        assert_ne!(other, first, "two threads shared a preprocessor");
        // A configuration that cannot be used: the reason, on every image.
        let bad = PreprocessConfig {
            crop_height: 0,
            ..config.clone()
        };
        let fresh = Workers::new(&bad, limits);
        for _ in 0..2 {
            let reason = fresh.with(|p| p.err().map(str::to_owned));
            assert!(reason.is_some_and(|r| !r.is_empty()));
        }
    }

    #[test]
    fn batches_of_huge_fixed_inputs_are_made_smaller_or_refused() {
        let mut notices = Vec::new();
        assert_eq!(batch_size_for(32, &config(224), &mut notices).unwrap(), 32);
        assert!(notices.is_empty());
        // 4096 x 4096 x 3 float32 = 192 MiB per image: one fits under 256 MiB, two do not.
        assert_eq!(batch_size_for(32, &config(4096), &mut notices).unwrap(), 1);
        assert!(notices[0].starts_with("batch size 32 -> 1: one 4096x4096 image takes 192.0 MiB"));
        // 2048 x 2048: 48 MiB per image, five per batch.
        assert_eq!(batch_size_for(32, &config(2048), &mut notices).unwrap(), 5);
        assert_eq!(batch_size_for(3, &config(2048), &mut notices).unwrap(), 3);
        // 10000 x 10000 x 3 x 4 bytes = 1.1 GiB for one image: refused, saying why.
        let err = batch_size_for(1, &config(10_000), &mut notices)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("10000x10000") && err.contains("1.1 GiB"),
            "{err}"
        );
    }
}
