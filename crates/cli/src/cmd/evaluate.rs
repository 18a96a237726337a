//! `imagenetx evaluate`: flags → [`imagenetx::EvaluatorConfig`], a progress bar and signals
//! around [`imagenetx::Evaluator::run`] into a journaled [`imagenetx::RunOutput`], then the
//! accuracy, the factor table and the files asked for. With `--out-dir`, many models in one
//! pass ([`zoo`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use imagenetx::run::default_predictions_path;
use imagenetx::{Evaluator, EvaluatorConfig, RunOutput, ShardRequest, Sink, Truth, take_shard};
use imagenetx_dataset::{ImageEntry, discover_images_in};
use imagenetx_imaging::ReadLimits;
use imagenetx_infer::{
    CheckpointPolicy, ExecutionProvider, Fingerprint, InputOverrides, Layout, Rows, SkippedFile,
    TopK,
};
use imagenetx_report::{Cell, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Outcome;
use crate::cmd::report::PlotArgs;
use crate::common::{AnnotationArgs, ensure_dir, runtime_search};
use crate::preprocess::PreprocessArgs;

mod zoo;

/// Arguments of `imagenetx evaluate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ONNX model (or its export folder). With --out-dir, any number of models and
    /// folders of models (every `.onnx` file of a folder that is not an export folder).
    #[arg(value_name = "MODEL", required_unless_present = "models_from")]
    pub models: Vec<PathBuf>,
    /// Many models in one pass: write each model's predictions CSV and run record into DIR
    /// (`MODEL_STEM.predictions.csv`, `MODEL_STEM.run.json`) and the pass record `zoo.json`.
    /// Models with the same resolved preprocessing form a group whose images are decoded
    /// once; a model that fails is named with the reason and the others go on. With
    /// --shard K/N each model's outputs and the pass record get `.shard-K-of-N`
    /// (`zoo.shard-K-of-N.json`); `imagenetx merge --out-dir DIR` joins them.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "analysis_out", "plots"])]
    pub out_dir: Option<PathBuf>,
    /// With --out-dir: also the models listed in FILE, one path per line (relative to the
    /// file's folder; blank lines and `#` comments left out).
    #[arg(long, value_name = "FILE", requires = "out_dir")]
    pub models_from: Option<PathBuf>,
    /// With --out-dir: keep at most this many GiB of models loaded at once (each model counts
    /// what loading it added to the process's memory, at least its file size). A group whose
    /// models do not fit together is decoded in several passes, each with the models that
    /// fit [default: half of the memory available at the start].
    #[arg(long, value_name = "GIB", requires = "out_dir")]
    pub model_memory: Option<f64>,
    /// Images: ImageNet val (flat `ILSVRC2012_val_*.JPEG` or class folders), the ImageNet-X
    /// training subset, or any folder of images (with --image-annotations for analysis); or,
    /// read in place, tar archives (`ILSVRC2012_img_val.tar`, class-folder tars, WebDataset
    /// shards) and Hugging Face parquet shards: one or more files, or a pattern
    /// (`shards/val-{000000..000009}.tar`, `shards/*.tar`).
    #[arg(long, value_name = "PATH", num_args = 1.., required = true)]
    pub images: Vec<PathBuf>,
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
    /// misclassified images with thumbnails) to this file; with --out-dir, one report of
    /// every model that completed.
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
    /// Evaluate shard K of N (0-based) of the images: the contiguous slice
    /// [floor(K*n/N), floor((K+1)*n/N)) of the n images sorted by file name. `auto` takes K
    /// and N from a Slurm job array (SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT or
    /// _MIN/_MAX) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with --shards N).
    /// Outputs get `.shard-K-of-N` before `.predictions.csv`; `imagenetx merge` joins them.
    #[arg(long, value_name = "K/N|auto")]
    pub shard: Option<ShardRequest>,
    /// The number of shards, with --shard auto (required for a Kubernetes Indexed Job, checked
    /// against a Slurm array).
    #[arg(long, value_name = "N", requires = "shard")]
    pub shards: Option<usize>,
    /// Images per inference batch.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub batch_size: usize,
    /// Decoding threads (0: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// ONNX Runtime intra-op threads (0: ONNX Runtime's default).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub intra_threads: usize,
    /// Whether ONNX Runtime's intra-op threads spin while waiting for work. `off` (the
    /// default; ONNX Runtime's own is on) leaves the cores to the decoding threads.
    #[arg(long, value_name = "on|off", default_value = "off", value_parser = parse_on_off)]
    pub ort_spinning: bool,
    /// ONNX Runtime shared library [default: ORT_DYLIB_PATH, `just setup` cache, Python
    /// onnxruntime, system].
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Execution provider: auto, cpu, cuda, tensorrt, openvino, coreml, xnnpack, ...
    /// (`imagenetx inspect --providers` lists them and what the loaded runtime has). A
    /// provider named is used or the run fails (exit 2); `auto` tries the accelerators the
    /// runtime has, then the CPU, and says why it fell back.
    #[arg(long, value_name = "EP", default_value = "auto")]
    pub ep: ExecutionProvider,
    /// Name of the output holding the class scores.
    #[arg(long, value_name = "NAME")]
    pub output: Option<String>,
    #[command(flatten)]
    pub input: InputArgs,
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

/// How the model's image input is fed, over its declared shape (`evaluate` and `inspect`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InputArgs {
    /// Height and width the model's input is fed at, for symbolic height/width dims
    /// [default: the model's fixed size, else the preprocessing's crop]; one number for a
    /// square. The default preprocessing is fitted to it as to a fixed input size.
    #[arg(long, value_name = "H[,W]", value_parser = parse_input_size)]
    pub input_size: Option<(usize, usize)>,
    /// Channel position of the model's input [default: where its fixed 3 is, else where its
    /// symbolic dim names (`num_channels`, `height`, …) put the channels, else nchw].
    #[arg(long, value_enum)]
    pub layout: Option<LayoutArg>,
}

/// `--layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    /// Channels first: [N, 3, H, W].
    Nchw,
    /// Channels last: [N, H, W, 3].
    Nhwc,
}

impl InputArgs {
    /// The library's input overrides these flags describe.
    pub fn overrides(&self) -> InputOverrides {
        InputOverrides {
            layout: self.layout.map(|layout| match layout {
                LayoutArg::Nchw => Layout::Nchw,
                LayoutArg::Nhwc => Layout::Nhwc,
            }),
            size: self.input_size,
        }
    }
}

fn parse_input_size(s: &str) -> Result<(usize, usize), String> {
    let sides = s
        .split(',')
        .map(|p| match p.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{p:?} is not a positive number of pixels")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    match sides.as_slice() {
        [side] => Ok((*side, *side)),
        [h, w] => Ok((*h, *w)),
        _ => Err(format!("expected H or H,W, got {s:?}")),
    }
}

/// Runs `imagenetx evaluate`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let policy = checkpoint_policy(&args)?;
    if let Some(out_dir) = args.out_dir.clone() {
        return zoo::run(&args, &out_dir, policy);
    }
    let model = match args.models.as_slice() {
        [model] => model.clone(),
        _ => bail!(
            "{} models given: give --out-dir DIR to evaluate several models in one pass",
            args.models.len()
        ),
    };
    args.plots.validate()?;
    if args.plots.plots.is_some() && args.report.is_none() {
        bail!("--plots DIR writes the plots of the report: give --report FILE too");
    }
    let shard = args
        .shard
        .map(|request| request.resolve(args.shards))
        .transpose()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_predictions_path(&model));
    let out = match shard {
        Some(shard) => shard.predictions_path(&out),
        None => out,
    };
    // Fail early: every output is checked writable before any image is read.
    let mut output = RunOutput::prepare(&out)?;
    check_outputs_writable(&args)?;
    let mut list = discover_images_in(&args.images, args.limit)?;
    if let Some(shard) = shard {
        let sharded = take_shard(list, shard);
        print_shard(&sharded);
        output = output.for_shard(&sharded);
        list = sharded.list;
    }

    let mut evaluator = Evaluator::new(evaluator_config(&args, model.clone()))?;
    for decision in &evaluator.preprocessing().decisions {
        tracing::info!("preprocessing: {decision}");
    }
    for notice in evaluator.notices() {
        eprintln!("{notice}");
    }
    let config = &evaluator.preprocessing().config;
    eprintln!(
        "model {} ({} classes, {} input {}x{}), provider {}, ONNX Runtime {}",
        model.display(),
        evaluator.info().output.classes,
        config.layout,
        config.crop_height,
        config.crop_width,
        evaluator.provider().used,
        evaluator.runtime().version(),
    );

    let started = output.start(&evaluator, &list.images, &list.skipped, args.resume, policy)?;
    for warning in &started.warnings {
        tracing::warn!("{warning}");
    }
    for message in &started.messages {
        eprintln!("{message}");
    }
    let progress = progress_bar(args.quiet, started.todo.len());
    let stop = StopSignal::install()?;
    let mut sink = CliSink {
        journal: Some(started.sink),
        progress: &progress,
        stop: &stop,
    };
    let result = evaluator.run(&list.images, &started.todo, &mut sink);
    progress.finish_and_clear();
    let journal = sink.journal.take().context("the run's journal")?;
    let interrupted = stop.requested();
    let stats = match result {
        Ok(stats) if interrupted.is_none() => stats,
        result => {
            // Keep every finished prediction: a last checkpoint, and a record that says so.
            let (how, saved) = journal.interrupt();
            result.with_context(|| how.clone())?;
            saved?;
            bail!(
                "interrupted by {}: {how}",
                interrupted.unwrap_or("a stop request")
            );
        }
    };
    let finished = journal.finish()?;
    let files = output.files();
    print_finished(files, &finished, "");
    print_pipeline(args.quiet, &stats, "");
    let mut rows = finished.rows;
    report(&args, &model, &list.images, &mut rows, &files.predictions)?;
    Ok(if finished.skipped.is_empty() {
        Outcome::Done
    } else {
        Outcome::Skipped
    })
}

/// The checkpoint policy of the flags (and the checks of the numbers every run needs).
fn checkpoint_policy(args: &Args) -> anyhow::Result<CheckpointPolicy> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.checkpoint_every == 0 {
        bail!("--checkpoint-every must be at least 1 (rows)");
    }
    let policy = CheckpointPolicy {
        rows: args.checkpoint_every,
        interval: std::time::Duration::try_from_secs_f64(args.checkpoint_interval.max(0.0))
            .map_err(|_| {
                anyhow::anyhow!(
                    "--checkpoint-interval {}: expected a number of seconds",
                    args.checkpoint_interval
                )
            })?,
    };
    Ok(policy)
}

/// The library's evaluation settings of the flags, for `model`.
pub(crate) fn evaluator_config(args: &Args, model: PathBuf) -> EvaluatorConfig {
    EvaluatorConfig {
        model,
        runtime: runtime_search(args.ort_lib.clone()),
        provider: args.ep,
        intra_threads: args.intra_threads,
        intra_spinning: args.ort_spinning,
        output: args.output.clone(),
        input: args.input.overrides(),
        preprocess: args.preprocess.spec(),
        batch_size: args.batch_size,
        threads: args.threads,
        read_limits: ReadLimits {
            max_file_bytes: args.max_file_size,
            ..ReadLimits::default()
        },
    }
}

/// A progress bar over `len` images (hidden with --quiet).
pub(crate) fn progress_bar(quiet: bool, len: usize) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  ETA {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The journal, with a progress bar and the signals that stop a run. Without a journal (a
/// model of a pass whose output could not be started) it only counts.
pub(crate) struct CliSink<'a, 'b> {
    pub(crate) journal: Option<imagenetx::JournalSink<'a>>,
    pub(crate) progress: &'b ProgressBar,
    pub(crate) stop: &'b StopSignal,
}

impl Sink for CliSink<'_, '_> {
    fn prediction(
        &mut self,
        index: usize,
        image: &ImageEntry,
        fingerprint: Option<Fingerprint>,
        prediction: &TopK,
    ) -> imagenetx::Result<()> {
        match &mut self.journal {
            Some(journal) => journal.prediction(index, image, fingerprint, prediction),
            None => Ok(()),
        }
    }

    fn skipped(&mut self, index: usize, skipped: &SkippedFile) -> imagenetx::Result<()> {
        match &mut self.journal {
            Some(journal) => journal.skipped(index, skipped),
            None => Ok(()),
        }
    }

    fn batch_done(&mut self, images: usize) -> imagenetx::Result<()> {
        self.progress.inc(images as u64);
        Ok(())
    }

    fn warning(&mut self, message: &str) {
        if let Some(journal) = &mut self.journal {
            journal.warning(message);
        }
    }

    fn should_stop(&mut self) -> bool {
        self.stop.requested().is_some()
    }
}

/// Checks, before any work, that the report, plots and analysis folders can be written.
pub(crate) fn check_outputs_writable(args: &Args) -> anyhow::Result<()> {
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

/// SIGINT and SIGTERM ask the run to stop after the batch in hand; a second SIGINT ends the
/// process at once.
pub(crate) struct StopSignal {
    int: Arc<AtomicBool>,
    term: Arc<AtomicBool>,
}

impl StopSignal {
    pub(crate) fn install() -> anyhow::Result<Self> {
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
    pub(crate) fn requested(&self) -> Option<&'static str> {
        if self.term.load(Ordering::Relaxed) {
            Some("SIGTERM")
        } else if self.int.load(Ordering::Relaxed) {
            Some("SIGINT")
        } else {
            None
        }
    }
}

/// Writes the self-contained HTML report of `input` to `path` and says so; returns its
/// figures (for `--plots`).
pub(crate) fn write_html_report(
    path: &std::path::Path,
    input: &imagenetx_report::model::ReportInput,
) -> anyhow::Result<Vec<imagenetx_report::figures::Figure>> {
    let figures = imagenetx_report::figures::figures(input);
    imagenetx::write_file(
        path,
        imagenetx_report::html::render_with_figures(input, &figures).as_bytes(),
    )?;
    eprintln!("wrote the report {}", path.display());
    Ok(figures)
}

/// Says which slice of the image list a shard run takes.
pub(crate) fn print_shard(sharded: &imagenetx::ShardedList) {
    eprintln!(
        "shard {}/{}: images {}..{} of {} sorted by file name ({} images)",
        sharded.shard.index,
        sharded.shard.count,
        sharded.shard.start,
        sharded.shard.end,
        sharded.image_list.images,
        sharded.list.images.len()
    );
}

/// Says what a finished run wrote, and each image it skipped (`prefix`: the model, in a pass
/// of several).
pub(crate) fn print_finished(
    files: &imagenetx_infer::RunFiles,
    finished: &imagenetx::Finished,
    prefix: &str,
) {
    eprintln!(
        "wrote {} ({} predictions; run record {})",
        files.predictions.display(),
        finished.predictions,
        files.record.display()
    );
    for s in &finished.skipped {
        eprintln!("{prefix}skipped {}: {}", s.file, s.reason);
    }
}

/// Where the run's time went, in one line (not with --quiet, nor when no image was left to do).
pub(crate) fn print_pipeline(quiet: bool, stats: &imagenetx::RunStats, prefix: &str) {
    let images = stats.predicted + stats.skipped;
    if !quiet && images > 0 {
        let line = stats.pipeline.summary(images, stats.inference);
        eprintln!("{prefix}pipeline: {line}");
    }
}

fn report(
    args: &Args,
    model: &std::path::Path,
    images: &[ImageEntry],
    rows: &mut Rows,
    predictions_path: &std::path::Path,
) -> anyhow::Result<()> {
    let truth = Truth::load(&args.annotations.options(), images)?;
    const LIST_LIMIT: usize = 25;
    let mut table = Table::new([
        "image",
        "true class",
        "prediction",
        "probability",
        "top-5 classes",
    ]);
    let model = imagenetx::evaluate::model_name(model);
    // One pass over the rows (read back from the journal, one at a time).
    let scores = truth.score(&model, images, |i| {
        let Some(row) = rows.get(i)? else {
            return Ok(None);
        };
        let prediction = row.top_k();
        if images.len() <= LIST_LIMIT {
            let label = truth.labels[i];
            let shown = prediction.classes.first().copied().unwrap_or(0);
            let mark = match label {
                Some(l) if usize::from(l) == shown => " ✓",
                Some(_) => " ✗",
                None => "",
            };
            table.push(vec![
                Cell::text(images[i].file_name()),
                Cell::text(label.map_or("—".to_string(), |l| {
                    format!("{l} {}", truth.class_name(usize::from(l)))
                })),
                Cell::text(format!("{shown} {}{mark}", truth.class_name(shown))),
                Cell::Num(prediction.probabilities.first().copied()),
                Cell::text(
                    prediction
                        .classes
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            ]);
        }
        Ok(Some(prediction))
    })?;
    let accuracy = scores.accuracy;
    let (labelled, top1, top5, real_n, real_ok) = (
        accuracy.labelled,
        accuracy.top1,
        accuracy.top5,
        accuracy.real_images,
        accuracy.real_correct,
    );
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

    if let (Some(set), Some(analysis)) = (&truth.set, &scores.analysis) {
        let covered = analysis.counts.overall.images;
        println!(
            "\nImageNet-X factors ({} factor, {covered} of {} annotated images predicted); error ratio = (1 - accuracy on the factor) / (1 - accuracy)\n",
            set.options.selection.name(),
            set.len()
        );
        println!("{}", factor_view(analysis).to_text(4));
        if let Some(path) = &args.report
            && let Some(input) = truth.report(&model, images, &scores, predictions_path)?
        {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                ensure_dir(parent)?;
            }
            let figures = write_html_report(path, &input)?;
            args.plots.write(&figures)?;
        }
        if let Some(dir) = &args.analysis_out {
            imagenetx::write_tables(dir, std::slice::from_ref(analysis))?;
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

/// `on` / `off` (also `true` / `false`, `1` / `0`).
fn parse_on_off(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(format!("expected on or off, got {other:?}")),
    }
}
