//! `imagenetx evaluate`: run an ONNX classifier over images, write predictions, report
//! top-1 / top-5 / ReaL accuracy and, for annotated images, the factor analysis.
//!
//! Decoding and preprocessing run in parallel on a rayon pool and fill whole batches, which
//! go through a bounded queue to the one thread that owns the ONNX Runtime session; memory
//! is bounded by batch size × queue depth, not by the number of images.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;

use anyhow::{Context, bail};
use imagenetx_dataset::labels::ClassNames;
use imagenetx_dataset::{
    AnnotatedSet, ImageEntry, annotations::read_annotation_file, annotations::val_index,
    discover_images, escape_file_name, labels::N_CLASSES,
};
use imagenetx_factors::{AnalysisOptions, Prediction, analyze};
use imagenetx_imaging::{Layout, PreprocessConfig, Preprocessor, ReadLimits};
use imagenetx_infer::{
    CheckpointPolicy, Classifier, ClassifierConfig, ExecutionProvider, Fingerprint, ImageKeys,
    JournalIdentity, ModelFile, OutputLock, PredictionRow, PredictionsWriter, PriorSource,
    ResumeSummary, Rows, RunCounts, RunFiles, RunRecord, RunState, Runtime, SkippedFile,
    sha256_hex,
};
use imagenetx_report::tables;
use imagenetx_report::{Cell, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::Outcome;
use crate::cmd::report::PlotArgs;
use crate::common::{AnnotationArgs, ensure_dir, write_atomic};
use crate::preprocess::{PreprocessArgs, resolve};
use imagenetx::run_metadata;
use imagenetx_report::assemble::{ReportModel, ReportOptions, build_report};

/// Arguments of `imagenetx evaluate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ONNX model.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Images: ImageNet val (flat `ILSVRC2012_val_*.JPEG` or class folders), the ImageNet-X
    /// training subset, or any folder of images (with --image-annotations for analysis).
    #[arg(long, value_name = "DIR")]
    pub images: PathBuf,
    /// Predictions CSV to write [default: MODEL_STEM.predictions.csv]; the run record goes
    /// beside it, with the extension .run.json instead of .csv.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub annotations: AnnotationArgs,
    /// Write the factor tables (as `analyze --out`) into this folder.
    #[arg(long, value_name = "DIR")]
    pub analysis_out: Option<PathBuf>,
    /// Write a self-contained HTML report (tables with intervals, plots, a gallery of
    /// misclassified images with thumbnails) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// With --report: also write its plots as SVG and PNG files.
    #[command(flatten)]
    pub plots: PlotArgs,
    /// Continue an interrupted (or finished) run of the same --out: keep the predictions its
    /// journal holds after checking they were made by the same model and preprocessing and
    /// that their images have not changed (size, modification time); predict the rest, and
    /// again what changed. Rows of images no longer present are dropped. Each is reported.
    #[arg(long)]
    pub resume: bool,
    /// Make the journal durable (fsync) every N new predictions; a kill loses at most the rows
    /// since the last checkpoint.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub checkpoint_every: usize,
    /// ... and at least every this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub checkpoint_interval: f64,
    /// Only the first N images (in path order).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Images per inference batch.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub batch_size: usize,
    /// Decoding threads (0: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// ONNX Runtime intra-op threads (0: ONNX Runtime's default).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub intra_threads: usize,
    /// ONNX Runtime shared library [default: ORT_DYLIB_PATH, `just setup` cache, Python
    /// onnxruntime, system].
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Execution provider: `cuda` fails if CUDA cannot be used, `auto` tries CUDA then CPU.
    #[arg(long, value_name = "EP", default_value = "auto", value_parser = parse_ep)]
    pub ep: ExecutionProvider,
    /// Name of the output holding the class scores.
    #[arg(long, value_name = "NAME")]
    pub output: Option<String>,
    #[command(flatten)]
    pub preprocess: PreprocessArgs,
    /// Largest image file read, in bytes (larger files are skipped, with the reason, before
    /// any byte is read).
    #[arg(long, value_name = "BYTES", default_value_t = ReadLimits::default().max_file_bytes)]
    pub max_file_size: u64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn parse_ep(s: &str) -> Result<ExecutionProvider, String> {
    s.parse()
        .map_err(|err: imagenetx_infer::Error| err.to_string())
}

/// Images of one batch, preprocessed.
struct Batch {
    /// Their indices in the image list.
    entries: Vec<usize>,
    fingerprints: Vec<Option<Fingerprint>>,
    data: Vec<f32>,
    failed: Vec<SkippedFile>,
    /// Images decoded although over Pillow's warning size.
    large: Vec<String>,
}

/// Largest batch tensor, in bytes: a batch of a model with a huge fixed input is made smaller.
const BATCH_BYTES: usize = 256 << 20;
/// Largest tensor of one image, in bytes (a fixed input of about 9,400 × 9,400 pixels).
const IMAGE_TENSOR_BYTES: usize = 1 << 30;

/// Runs `imagenetx evaluate`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.checkpoint_every == 0 {
        bail!("--checkpoint-every must be at least 1 (rows)");
    }
    args.plots.validate()?;
    if args.plots.plots.is_some() && args.report.is_none() {
        bail!("--plots DIR writes the plots of the report: give --report FILE too");
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .model
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy());
        PathBuf::from(format!("{stem}.predictions.csv"))
    });
    // Fail early: every output is checked writable before any image is read.
    let files = RunFiles::new(&out);
    if out.is_dir() {
        bail!(
            "--out {}: is a folder; expected a CSV file path",
            out.display()
        );
    }
    ensure_dir(files.folder())?;
    let _lock = OutputLock::acquire(&files)?;
    files.remove_stale_temporaries()?;
    check_outputs_writable(&args)?;
    let list = discover_images(&args.images, args.limit)?;

    let runtime = Runtime::discover(args.ort_lib.as_deref(), args.ep.wants_gpu())?;
    let config = ClassifierConfig::new(&args.model)
        .with_provider(args.ep)
        .with_intra_threads(args.intra_threads)
        .with_output(args.output.clone());
    config.validate()?;
    let mut classifier = Classifier::new(runtime, &config)?;
    let resolved = resolve(&args.preprocess, classifier.info())?;
    for decision in &resolved.decisions {
        tracing::info!("preprocessing: {decision}");
    }
    let model_file = ModelFile::hash(&args.model)?;
    let preprocessing = serde_json::json!({
        "config": resolved.config,
        "decisions": resolved.decisions,
    });
    let identity = JournalIdentity {
        model_sha256: model_file.sha256.clone(),
        preprocessing_sha256: sha256_hex(&serde_json::to_vec(&resolved.config)?),
    };
    let tensor_len = resolved.config.tensor_len();
    let batch_size = batch_size_for(args.batch_size, tensor_len, &resolved.config)?;
    eprintln!(
        "model {} ({} classes, {} input {}), provider {}, ONNX Runtime {}",
        args.model.display(),
        classifier.info().output.classes,
        layout_name(resolved.config.layout),
        shape_text(&resolved.config),
        classifier.provider().used,
        runtime.version(),
    );

    let keys = ImageKeys::new(list.images.len(), |i| list.images[i].file_name());
    let policy = CheckpointPolicy {
        rows: args.checkpoint_every,
        interval: std::time::Duration::from_secs_f64(args.checkpoint_interval.max(0.0)),
    };
    let (mut writer, todo, resume) = if args.resume {
        resume_run(
            &files,
            identity,
            policy,
            &model_file,
            &preprocessing,
            &list.images,
            &keys,
        )?
    } else {
        // A fresh run replaces the output: an older CSV must not sit beside the new journal
        // and record as if it belonged to them.
        if files.predictions.exists() {
            tracing::info!("replacing {}", files.predictions.display());
            std::fs::remove_file(&files.predictions)
                .with_context(|| format!("cannot replace {}", files.predictions.display()))?;
        }
        let writer = PredictionsWriter::start(&files, identity, policy, keys.len())?;
        (writer, (0..list.images.len()).collect(), None)
    };
    let resumed = writer.len();
    // Entries named like images that are not regular files (FIFOs, devices, dangling or
    // looping links) are never opened; they are listed like the images that fail to decode.
    let mut skipped: Vec<SkippedFile> = list
        .skipped
        .iter()
        .map(|s| SkippedFile {
            file: path_text(&s.path),
            reason: s.reason.clone(),
        })
        .collect();
    let mut large_images = 0usize;
    let mut predicted = 0usize;
    let mut record = RunRecord {
        imagenetx_version: env!("CARGO_PKG_VERSION").to_string(),
        state: RunState::Running,
        model: model_file,
        model_info: classifier.info().clone(),
        preprocessing,
        provider: classifier.provider().clone(),
        runtime: runtime.report(),
        predictions: out.clone(),
        counts: RunCounts {
            images: list.images.len(),
            resumed,
            ..RunCounts::default()
        },
        resume,
        skipped: Vec::new(),
    };
    record.write(&files.record)?;
    imagenetx_infer::pause::point("started");

    let stop = StopSignal::install()?;
    let progress = if args.quiet {
        ProgressBar::hidden()
    } else {
        let bar =
            ProgressBar::with_draw_target(Some(todo.len() as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} images  {per_sec}  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    };

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("cannot start the decoding threads")?;
    let shape = |n: usize| match resolved.config.layout {
        Layout::Nchw => [
            n,
            3,
            resolved.config.crop_height as usize,
            resolved.config.crop_width as usize,
        ],
        Layout::Nhwc => [
            n,
            resolved.config.crop_height as usize,
            resolved.config.crop_width as usize,
            3,
        ],
    };
    const QUEUE_DEPTH: usize = 2;
    let (sender, receiver) = sync_channel::<Batch>(QUEUE_DEPTH);
    let result: anyhow::Result<()> = std::thread::scope(|scope| {
        let config = &resolved.config;
        let limits = ReadLimits {
            max_file_bytes: args.max_file_size,
            ..ReadLimits::default()
        };
        let todo = &todo;
        let images = &list.images;
        let pool = &pool;
        let stop = &stop;
        scope.spawn(move || {
            for chunk in todo.chunks(batch_size) {
                if stop.requested().is_some() {
                    break;
                }
                let batch =
                    pool.install(|| preprocess_batch(chunk, images, config, limits, tensor_len));
                if sender.send(batch).is_err() {
                    break; // The consumer stopped.
                }
            }
        });
        for batch in receiver {
            imagenetx_infer::pause::throttle();
            if stop.requested().is_some() {
                break;
            }
            let batch_failed = batch.failed.len() as u64;
            skipped.extend(batch.failed);
            for warning in &batch.large {
                tracing::warn!("{warning}");
            }
            large_images += batch.large.len();
            if !batch.entries.is_empty() {
                let results = classifier.classify_slice(&batch.data, shape(batch.entries.len()))?;
                for ((&i, fingerprint), result) in
                    batch.entries.iter().zip(&batch.fingerprints).zip(results)
                {
                    let entry = &list.images[i];
                    match result {
                        Ok(prediction) => {
                            let row = PredictionRow::new(entry.file_name(), &prediction);
                            predicted += 1;
                            if writer.push(i, &row, *fingerprint)? {
                                record.counts.predicted = predicted;
                                record.counts.skipped = skipped.len();
                                record.counts.checkpoints = writer.checkpoints();
                                record.write(&files.record)?;
                            }
                        }
                        Err(err) => skipped.push(SkippedFile {
                            file: path_text(entry.path()),
                            reason: err.to_string(),
                        }),
                    }
                }
            }
            progress.inc(batch.entries.len() as u64 + batch_failed);
        }
        Ok(())
    });
    progress.finish_and_clear();
    skipped.sort_by(|a, b| a.file.cmp(&b.file));
    record.counts.predicted = predicted;
    record.counts.skipped = skipped.len();
    record.counts.large_images = large_images;
    record.skipped = skipped.clone();

    let interrupted = stop.requested();
    if result.is_err() || interrupted.is_some() {
        // Keep every finished prediction: a last checkpoint, and a record that says so.
        let saved = writer.checkpoint();
        record.counts.checkpoints = writer.checkpoints();
        record.state = RunState::Interrupted;
        let _ = record.write(&files.record);
        let how = format!(
            "{} predictions are safe in {}; to continue, run the same command with --resume",
            writer.len(),
            files.journal.display()
        );
        result.with_context(|| how.clone())?;
        saved?;
        if let Some(signal) = interrupted {
            bail!("interrupted by {signal}: {how}");
        }
    }
    // `finish` makes the run's last checkpoint.
    record.counts.checkpoints = writer.checkpoints() + 1;
    let mut rows = writer.finish(&keys)?;
    // The rows are read by image from here on: the name index is no longer needed.
    drop(keys);
    let written = files.predictions.clone();
    record.state = RunState::Complete;
    record.write(&files.record)?;
    eprintln!(
        "wrote {} ({} predictions; run record {})",
        written.display(),
        predicted + resumed,
        files.record.display()
    );
    for s in &skipped {
        eprintln!("skipped {}: {}", s.file, s.reason);
    }

    report(&args, &list.images, &mut rows, &written)?;
    Ok(if skipped.is_empty() {
        Outcome::Done
    } else {
        Outcome::Skipped
    })
}

/// The batch size to use: `asked`, made smaller when the batch tensor of a model with a large
/// fixed input would exceed [`BATCH_BYTES`] (said on stderr); an input whose single-image
/// tensor exceeds [`IMAGE_TENSOR_BYTES`] is refused.
fn batch_size_for(
    asked: usize,
    tensor_len: usize,
    config: &PreprocessConfig,
) -> anyhow::Result<usize> {
    let per_image = tensor_len.saturating_mul(std::mem::size_of::<f32>());
    if per_image > IMAGE_TENSOR_BYTES {
        bail!(
            "the model's input {} needs {:.1} GiB per image (float32); imagenetx refuses inputs over {} GiB per image",
            shape_text(config),
            per_image as f64 / f64::from(1u32 << 30),
            IMAGE_TENSOR_BYTES >> 30
        );
    }
    let fits = (BATCH_BYTES / per_image.max(1)).max(1);
    if asked > fits {
        eprintln!(
            "batch size {asked} -> {fits}: one {} image takes {:.1} MiB as float32, and a batch is kept under {} MiB",
            shape_text(config),
            per_image as f64 / f64::from(1u32 << 20),
            BATCH_BYTES >> 20
        );
        return Ok(fits);
    }
    Ok(asked)
}

/// Checks, before any work, that the report, plots and analysis folders can be written.
fn check_outputs_writable(args: &Args) -> anyhow::Result<()> {
    let mut folders: Vec<PathBuf> = Vec::new();
    if let Some(dir) = &args.analysis_out {
        folders.push(dir.clone());
    }
    if let Some(report) = &args.report {
        if report.is_dir() {
            bail!(
                "--report {}: is a folder; expected an HTML file path",
                report.display()
            );
        }
        folders.push(match report.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        });
    }
    if let Some(dir) = &args.plots.plots {
        folders.push(dir.clone());
    }
    for dir in folders {
        ensure_dir(&dir)?;
        tempfile::Builder::new()
            .prefix(".imagenetx-write-check.")
            .tempfile_in(&dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
    }
    Ok(())
}

/// `--resume`: checks how the earlier run was made (from older runs without a journal, by their
/// run record), continues it ([`PredictionsWriter::resume`]: rows of unchanged images kept,
/// changed ones redone, removed ones dropped), reports what it found, and returns the writer,
/// the images to predict and the summary for the run record.
#[allow(clippy::too_many_arguments)]
fn resume_run(
    files: &RunFiles,
    identity: JournalIdentity,
    policy: CheckpointPolicy,
    model: &ModelFile,
    preprocessing: &serde_json::Value,
    images: &[ImageEntry],
    keys: &ImageKeys<'_>,
) -> anyhow::Result<(PredictionsWriter, Vec<usize>, Option<ResumeSummary>)> {
    let source = PredictionsWriter::prior_source(files);
    if source == PriorSource::PredictionsCsv {
        let previous = RunRecord::read(&files.record).with_context(|| {
            format!(
                "--resume: {} has no journal ({}), so its run record is needed to check how it was made",
                files.predictions.display(),
                files.journal.display()
            )
        })?;
        if previous.model.sha256 != model.sha256 {
            bail!(
                "--resume: {} was made with a different model (SHA-256 {}), not {}",
                files.predictions.display(),
                previous.model.sha256,
                model.sha256
            );
        }
        if previous.preprocessing.get("config") != preprocessing.get("config") {
            bail!(
                "--resume: {} was made with other preprocessing: {}",
                files.predictions.display(),
                previous.preprocessing
            );
        }
    }
    if source == PriorSource::Nothing {
        eprintln!(
            "--resume: nothing to resume at {}; starting from the beginning",
            files.predictions.display()
        );
    }
    let (writer, plan, mask) = PredictionsWriter::resume(files, identity, policy, keys, |i| {
        Fingerprint::read(images[i].path()).ok()
    })?;
    let todo: Vec<usize> = mask
        .iter()
        .enumerate()
        .filter(|(_, t)| **t)
        .map(|(i, _)| i)
        .collect();
    drop(mask);
    let cut = plan.cut;
    if let Some(cut) = cut {
        eprintln!(
            "--resume: {}:{}: the journal's last {} bytes were cut short by the interruption; those images are predicted again",
            files.journal.display(),
            cut.line,
            cut.bytes
        );
    }
    if plan.unchecked > 0 {
        tracing::warn!(
            "--resume: {} rows of {} have no journal to check the images against (an older run); kept as they are",
            plan.unchecked,
            files.predictions.display()
        );
    }
    let sample = |names: &[String]| {
        let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
        let more = names.len().saturating_sub(shown.len());
        if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        }
    };
    if !plan.changed.is_empty() {
        eprintln!(
            "--resume: {} images changed since they were predicted (size or modification time), predicted again: {}",
            plan.changed.len(),
            sample(&plan.changed)
        );
    }
    if !plan.removed.is_empty() {
        eprintln!(
            "--resume: {} predicted images are no longer among the images, their rows dropped: {}",
            plan.removed.len(),
            sample(&plan.removed)
        );
    }
    eprintln!(
        "--resume: {} predictions kept, {} images to predict",
        plan.kept,
        todo.len()
    );
    let summary = ResumeSummary {
        source: match source {
            PriorSource::Nothing => "nothing",
            PriorSource::Journal => "journal",
            PriorSource::PredictionsCsv => "predictions-csv",
        }
        .to_string(),
        kept: plan.kept,
        unchecked: plan.unchecked,
        changed: plan.changed.len(),
        removed: plan.removed.len(),
        changed_names: plan
            .changed
            .iter()
            .take(ResumeSummary::MAX_NAMES)
            .cloned()
            .collect(),
        removed_names: plan
            .removed
            .iter()
            .take(ResumeSummary::MAX_NAMES)
            .cloned()
            .collect(),
        cut_line: cut.map(|c| c.line),
        cut_bytes: cut.map(|c| c.bytes),
    };
    Ok((writer, todo, Some(summary)))
}

/// A path as text for messages and the run record, escaped as file names are
/// (`escape_file_name`: unchanged when it is UTF-8 without a backslash), so it can always be
/// written and read back.
fn path_text(path: &std::path::Path) -> String {
    escape_file_name(path.as_os_str())
}

/// SIGINT and SIGTERM ask the run to stop after the batch in hand; a second SIGINT ends the
/// process at once.
struct StopSignal {
    int: Arc<AtomicBool>,
    term: Arc<AtomicBool>,
}

impl StopSignal {
    fn install() -> anyhow::Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let int = Arc::new(AtomicBool::new(false));
        let term = Arc::new(AtomicBool::new(false));
        // The second SIGINT (the first set `int`) exits at once with 130.
        signal_hook::flag::register_conditional_shutdown(SIGINT, 130, Arc::clone(&int))
            .context("cannot install the SIGINT handler")?;
        signal_hook::flag::register(SIGINT, Arc::clone(&int))
            .context("cannot install the SIGINT handler")?;
        signal_hook::flag::register(SIGTERM, Arc::clone(&term))
            .context("cannot install the SIGTERM handler")?;
        Ok(StopSignal { int, term })
    }

    /// The signal received, if any.
    fn requested(&self) -> Option<&'static str> {
        if self.term.load(Ordering::Relaxed) {
            Some("SIGTERM")
        } else if self.int.load(Ordering::Relaxed) {
            Some("SIGINT")
        } else {
            None
        }
    }
}

fn preprocess_batch(
    chunk: &[usize],
    images: &[ImageEntry],
    config: &PreprocessConfig,
    limits: ReadLimits,
    tensor_len: usize,
) -> Batch {
    type Outcome = (
        Vec<f32>,
        Option<Fingerprint>,
        Result<(), String>,
        Vec<String>,
    );
    let outcomes: Vec<Outcome> = chunk
        .par_iter()
        .map_init(
            || Preprocessor::with_limits(config.clone(), limits).map_err(|e| e.to_string()),
            |preprocessor, &i| {
                let entry = &images[i];
                // The fingerprint is taken before reading, so a file changed while it is read
                // is predicted again by the next --resume.
                let fingerprint = Fingerprint::read(entry.path()).ok();
                let mut tensor = vec![0f32; tensor_len];
                let (outcome, warnings) = match preprocessor {
                    Ok(p) => {
                        let outcome = p
                            .preprocess_file(entry.path(), &mut tensor)
                            .map_err(|e| e.to_string());
                        let warnings = p.take_warnings().iter().map(ToString::to_string).collect();
                        (outcome, warnings)
                    }
                    Err(e) => (Err(e.clone()), Vec::new()),
                };
                (tensor, fingerprint, outcome, warnings)
            },
        )
        .collect();
    let mut batch = Batch {
        entries: Vec::with_capacity(chunk.len()),
        fingerprints: Vec::with_capacity(chunk.len()),
        data: Vec::with_capacity(chunk.len() * tensor_len),
        failed: Vec::new(),
        large: Vec::new(),
    };
    for (&i, (tensor, fingerprint, outcome, warnings)) in chunk.iter().zip(outcomes) {
        batch.large.extend(warnings);
        let entry = &images[i];
        match outcome {
            Ok(()) => {
                batch.entries.push(i);
                batch.fingerprints.push(fingerprint);
                batch.data.extend_from_slice(&tensor);
            }
            Err(reason) => batch.failed.push(SkippedFile {
                file: path_text(entry.path()),
                reason,
            }),
        }
    }
    batch
}

fn layout_name(layout: Layout) -> &'static str {
    match layout {
        Layout::Nchw => "NCHW",
        Layout::Nhwc => "NHWC",
    }
}

fn shape_text(config: &PreprocessConfig) -> String {
    format!("{}x{}", config.crop_height, config.crop_width)
}

/// Labels and annotations of the evaluated images.
struct Truth {
    names: Option<ClassNames>,
    labels: Vec<Option<u16>>,
    /// ImageNet ReaL labels of the validation images, by validation index.
    real_labels: Option<Vec<Vec<u16>>>,
    set: Option<AnnotatedSet>,
}

impl Truth {
    /// The ReaL labels of an image (validation images only).
    fn real(&self, image: &ImageEntry) -> Option<&[u16]> {
        let index = val_index(image.file_name())?;
        self.real_labels.as_ref()?.get(index).map(Vec::as_slice)
    }
}

fn truth(args: &Args, images: &[ImageEntry]) -> anyhow::Result<Truth> {
    let dir = match args.annotations.dir() {
        Ok(dir) => Some(dir),
        Err(err) => {
            tracing::warn!("no class names, labels or factor analysis: {err}");
            None
        }
    };
    let names = dir.as_ref().map(|d| d.read_class_names()).transpose()?;
    let custom_records = args
        .annotations
        .image_annotations
        .as_ref()
        .map(|path| read_annotation_file(path, N_CLASSES))
        .transpose()?;
    let custom: Option<std::collections::HashMap<&str, u16>> =
        custom_records.as_ref().map(|records| {
            records
                .iter()
                .map(|r| (r.file_name.as_str(), r.class))
                .collect()
        });
    let filename_labels = dir.as_ref().map(|d| d.read_filename_labels()).transpose()?;
    let real_labels = dir.as_ref().map(|d| d.read_real_labels()).transpose()?;
    let labels = images
        .iter()
        .map(|image| {
            if let Some(classes) = &custom {
                return classes.get(image.file_name()).copied();
            }
            if let Some(label) = filename_labels
                .as_ref()
                .and_then(|l| l.get(image.file_name()))
            {
                return Some(*label);
            }
            image
                .wnid()
                .and_then(|w| names.as_ref().and_then(|n| n.class_of_wnid(w)))
        })
        .collect();
    drop(custom);
    let set = match &dir {
        Some(dir) => {
            let set = args.annotations.load_set_with(dir, custom_records)?;
            images
                .iter()
                .any(|i| set.position(i.file_name()).is_some())
                .then_some(set)
        }
        None => None,
    };
    Ok(Truth {
        names,
        labels,
        real_labels,
        set,
    })
}

fn report(
    args: &Args,
    images: &[ImageEntry],
    rows: &mut Rows,
    predictions_path: &std::path::Path,
) -> anyhow::Result<()> {
    let truth = truth(args, images)?;
    let name_of = |class: usize| {
        truth
            .names
            .as_ref()
            .and_then(|n| n.name(u16::try_from(class).ok()?))
            .unwrap_or("?")
            .to_string()
    };
    const LIST_LIMIT: usize = 25;
    let mut table = Table::new([
        "image",
        "true class",
        "prediction",
        "probability",
        "top-5 classes",
    ]);
    let mut predictions: Vec<Option<Prediction>> =
        vec![None; truth.set.as_ref().map_or(0, AnnotatedSet::len)];
    // One pass over the rows (read back from the journal, one at a time).
    let (mut labelled, mut top1, mut top5, mut real_n, mut real_ok) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for (i, (image, label)) in images.iter().zip(&truth.labels).enumerate() {
        let real = truth.real(image);
        let Some(row) = rows.get(i)? else {
            continue;
        };
        let classes = row.classes();
        let first = classes.first().copied();
        if images.len() <= LIST_LIMIT {
            let shown = first.map_or(0, |c| c as usize);
            let mark = match label {
                Some(l) if usize::from(*l) == shown => " ✓",
                Some(_) => " ✗",
                None => "",
            };
            table.push(vec![
                Cell::text(image.file_name()),
                Cell::text(label.map_or("—".to_string(), |l| {
                    format!("{l} {}", name_of(usize::from(l)))
                })),
                Cell::text(format!("{shown} {}{mark}", name_of(shown))),
                Cell::Num(row.probabilities().first().copied()),
                Cell::text(
                    classes
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            ]);
        }
        if let Some(label) = label {
            labelled += 1;
            top1 += u64::from(first == Some(u32::from(*label)));
            top5 += u64::from(classes.iter().take(5).any(|c| *c == u32::from(*label)));
        }
        if let (Some(real), Some(first)) = (real, first)
            && !real.is_empty()
        {
            real_n += 1;
            real_ok += u64::from(real.iter().any(|r| u32::from(*r) == first));
        }
        if let (Some(set), Some(class), Some(p)) = (
            truth.set.as_ref(),
            first.and_then(|c| u16::try_from(c).ok()),
            row.probabilities().first(),
        ) && let Some(at) = set.position(image.file_name())
        {
            predictions[at] = Some(Prediction {
                class,
                probability: *p,
            });
        }
    }
    if images.len() <= LIST_LIMIT {
        println!("{}", table.to_text(4));
    }
    if labelled > 0 {
        println!(
            "top-1 accuracy {:.4} ({top1}/{labelled}), top-5 accuracy {:.4} ({top5}/{labelled}) over the labelled images",
            top1 as f64 / labelled as f64,
            top5 as f64 / labelled as f64
        );
    } else {
        println!("no labels for these images: accuracy not computed");
    }
    if real_n > 0 {
        println!(
            "ReaL accuracy {:.4} ({real_ok}/{real_n}, images with a ReaL label)",
            real_ok as f64 / real_n as f64
        );
    }

    if let Some(set) = &truth.set {
        let model = args
            .model
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned());
        let analysis = analyze(
            &set.annotations,
            &model,
            &predictions,
            AnalysisOptions::default(),
        )?;
        let covered = analysis.counts.overall.images;
        println!(
            "\nImageNet-X factors ({} factor, {covered} of {} annotated images predicted); error ratio = (1 - accuracy on the factor) / (1 - accuracy)\n",
            set.options.selection.name(),
            set.len()
        );
        println!("{}", factor_view(&analysis).to_text(4));
        if let Some(path) = &args.report {
            let options = ReportOptions {
                title: format!("ImageNet-X report: {model}"),
                // Thumbnails are of annotated images only.
                image_paths: images
                    .iter()
                    .filter(|i| set.position(i.file_name()).is_some())
                    .map(|i| (i.file_name().to_string(), i.path().to_path_buf()))
                    .collect(),
                ..ReportOptions::default()
            };
            let input = build_report(
                set,
                truth.names.as_ref(),
                &[ReportModel {
                    analysis: analysis.clone(),
                    predictions: &predictions,
                    metadata: run_metadata(predictions_path),
                }],
                &options,
            )?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                ensure_dir(parent)?;
            }
            let figures = imagenetx_report::figures::figures(&input);
            write_atomic(
                path,
                imagenetx_report::html::render_with_figures(&input, &figures).as_bytes(),
            )?;
            eprintln!("wrote the report {}", path.display());
            args.plots.write(&figures)?;
        }
        let results = [analysis];
        if let Some(dir) = &args.analysis_out {
            ensure_dir(dir)?;
            write_atomic(
                &dir.join("accuracies_per_factor.csv"),
                tables::accuracies(&results).to_csv().as_bytes(),
            )?;
            write_atomic(
                &dir.join("error_ratios.csv"),
                tables::error_ratios(&results).to_csv().as_bytes(),
            )?;
            write_atomic(
                &dir.join("accuracies_per_factor_metaclass.csv"),
                tables::metaclass_accuracies(&results).to_csv().as_bytes(),
            )?;
        }
    }
    Ok(())
}

/// Per factor: images, correct, accuracy, error ratio (factors without images left out).
fn factor_view(analysis: &imagenetx_factors::ModelAnalysis) -> Table {
    let mut table = Table::new(["factor", "images", "correct", "accuracy", "error ratio"]);
    for factor in imagenetx_factors::Factor::ALL {
        let counts = analysis.counts.factors[factor.index()];
        if counts.images == 0 {
            continue;
        }
        table.push(vec![
            Cell::text(factor.name()),
            Cell::Int(counts.images),
            Cell::Int(counts.correct),
            Cell::Num(analysis.accuracy(factor)),
            Cell::Num(analysis.error_ratio(factor)),
        ]);
    }
    table.push(vec![
        Cell::text("all"),
        Cell::Int(analysis.counts.overall.images),
        Cell::Int(analysis.counts.overall.correct),
        Cell::Num(analysis.average()),
        Cell::Num(None),
    ]);
    table
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
    fn batches_of_huge_fixed_inputs_are_made_smaller_or_refused() {
        let c = config(224);
        assert_eq!(batch_size_for(32, c.tensor_len(), &c).unwrap(), 32);
        // 4096 x 4096 x 3 float32 = 192 MiB per image: one fits under 256 MiB, two do not.
        let c = config(4096);
        assert_eq!(batch_size_for(32, c.tensor_len(), &c).unwrap(), 1);
        // 2048 x 2048: 48 MiB per image, five per batch.
        let c = config(2048);
        assert_eq!(batch_size_for(32, c.tensor_len(), &c).unwrap(), 5);
        assert_eq!(batch_size_for(3, c.tensor_len(), &c).unwrap(), 3);
        // 10000 x 10000 x 3 x 4 bytes = 1.1 GiB for one image: refused, saying why.
        let c = config(10_000);
        let err = batch_size_for(1, c.tensor_len(), &c)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("10000x10000") && err.contains("1.1 GiB"),
            "{err}"
        );
    }
}
