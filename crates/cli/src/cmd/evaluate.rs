//! `imagenetx evaluate`: run an ONNX classifier over images, write predictions, report
//! top-1 / top-5 / ReaL accuracy and, for annotated images, the factor analysis.
//!
//! Decoding and preprocessing run in parallel on a rayon pool and fill whole batches, which
//! go through a bounded queue to the one thread that owns the ONNX Runtime session; memory
//! is bounded by batch size × queue depth, not by the number of images.

use std::path::PathBuf;
use std::sync::mpsc::sync_channel;

use anyhow::{Context, bail};
use imagenetx_dataset::imaging::{Layout, PreprocessConfig, Preprocessor};
use imagenetx_dataset::labels::ClassNames;
use imagenetx_dataset::{
    AnnotatedSet, ImageEntry, annotations::read_annotation_file, annotations::val_index,
    discover_images, labels::N_CLASSES,
};
use imagenetx_factors::{AnalysisOptions, Prediction, analyze};
use imagenetx_infer::{
    CheckpointPolicy, Classifier, ClassifierConfig, ExecutionProvider, ModelFile, PredictionRow,
    PredictionsWriter, RunCounts, RunRecord, Runtime, SkippedFile,
};
use imagenetx_report::analysis as tables;
use imagenetx_report::{Cell, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::Outcome;
use crate::cmd::report::{PlotArgs, ReportModel, ReportOptions, build_report, run_metadata};
use crate::common::{AnnotationArgs, ensure_dir, write_atomic};
use crate::preprocess::{PreprocessArgs, resolve};

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
    /// Continue an interrupted run: keep the predictions already in --out (after checking the
    /// run record names the same model and preprocessing) and do only the rest.
    #[arg(long)]
    pub resume: bool,
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
    entries: Vec<ImageEntry>,
    data: Vec<f32>,
    failed: Vec<SkippedFile>,
}

/// Runs `imagenetx evaluate`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
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
    let record_path = out.with_extension("run.json");
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
    eprintln!(
        "model {} ({} classes, {} input {}), provider {}, ONNX Runtime {}",
        args.model.display(),
        classifier.info().output.classes,
        layout_name(resolved.config.layout),
        shape_text(&resolved.config),
        classifier.provider().used,
        runtime.version(),
    );

    let mut writer = if args.resume && out.exists() {
        let previous = RunRecord::read(&record_path).with_context(|| {
            format!(
                "--resume needs the run record {} of the interrupted run",
                record_path.display()
            )
        })?;
        if previous.model.sha256 != model_file.sha256 {
            bail!(
                "--resume: {} was made with a different model (SHA-256 {}), not {}",
                out.display(),
                previous.model.sha256,
                model_file.sha256
            );
        }
        if previous.preprocessing.get("config") != preprocessing.get("config") {
            bail!(
                "--resume: {} was made with other preprocessing: {}",
                out.display(),
                previous.preprocessing
            );
        }
        PredictionsWriter::resume(&out, CheckpointPolicy::default())?
    } else {
        PredictionsWriter::create(&out, CheckpointPolicy::default())
    };
    let resumed = writer.len();
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure_dir(parent)?;
    }
    let todo: Vec<ImageEntry> = list
        .images
        .iter()
        .filter(|e| !writer.contains(&e.file_name))
        .cloned()
        .collect();

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
    let tensor_len = resolved.config.tensor_len();
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
    // Entries named like images that are not regular files (FIFOs, devices, dangling or
    // looping links) are never opened; they are listed like the images that fail to decode.
    let mut skipped: Vec<SkippedFile> = list
        .skipped
        .iter()
        .map(|s| SkippedFile {
            file: s.path.clone(),
            reason: s.reason.clone(),
        })
        .collect();
    let mut predicted = 0usize;
    let result: anyhow::Result<()> = std::thread::scope(|scope| {
        let config = &resolved.config;
        let todo = &todo;
        let pool = &pool;
        scope.spawn(move || {
            for chunk in todo.chunks(args.batch_size) {
                let batch = pool.install(|| preprocess_batch(chunk, config, tensor_len));
                if sender.send(batch).is_err() {
                    break; // The consumer stopped on an error.
                }
            }
        });
        for batch in receiver {
            let batch_failed = batch.failed.len() as u64;
            skipped.extend(batch.failed);
            if !batch.entries.is_empty() {
                let results = classifier.classify_slice(&batch.data, shape(batch.entries.len()))?;
                for (entry, result) in batch.entries.iter().zip(results) {
                    match result {
                        Ok(prediction) => {
                            writer.push(PredictionRow::new(&entry.path, &prediction))?;
                            predicted += 1;
                        }
                        Err(err) => skipped.push(SkippedFile {
                            file: entry.path.clone(),
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
    // Keep every finished prediction, even when the run stopped on an error.
    let written = writer.finish()?;
    result?;

    skipped.sort_by(|a, b| a.file.cmp(&b.file));
    let record = RunRecord {
        imagenetx_version: env!("CARGO_PKG_VERSION").to_string(),
        model: model_file,
        model_info: classifier.info().clone(),
        preprocessing,
        provider: classifier.provider().clone(),
        runtime: runtime.report(),
        predictions: written.clone(),
        counts: RunCounts {
            images: list.images.len(),
            predicted,
            resumed,
            skipped: skipped.len(),
        },
        skipped: skipped.clone(),
    };
    record.write(&record_path)?;
    eprintln!(
        "wrote {} ({} predictions; run record {})",
        written.display(),
        predicted + resumed,
        record_path.display()
    );
    for s in &skipped {
        eprintln!("skipped {}: {}", s.file.display(), s.reason);
    }

    let rows = imagenetx_infer::read_predictions(&written)?;
    report(&args, &list.images, &rows, &written)?;
    Ok(if skipped.is_empty() {
        Outcome::Done
    } else {
        Outcome::Skipped
    })
}

fn preprocess_batch(chunk: &[ImageEntry], config: &PreprocessConfig, tensor_len: usize) -> Batch {
    let outcomes: Vec<(Vec<f32>, Result<(), String>)> = chunk
        .par_iter()
        .map_init(
            || Preprocessor::new(config.clone()).map_err(|e| e.to_string()),
            |preprocessor, entry| {
                let mut tensor = vec![0f32; tensor_len];
                let outcome = match preprocessor {
                    Ok(p) => p
                        .preprocess_file(&entry.path, &mut tensor)
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.clone()),
                };
                (tensor, outcome)
            },
        )
        .collect();
    let mut batch = Batch {
        entries: Vec::with_capacity(chunk.len()),
        data: Vec::with_capacity(chunk.len() * tensor_len),
        failed: Vec::new(),
    };
    for (entry, (tensor, outcome)) in chunk.iter().zip(outcomes) {
        match outcome {
            Ok(()) => {
                batch.entries.push(entry.clone());
                batch.data.extend_from_slice(&tensor);
            }
            Err(reason) => batch.failed.push(SkippedFile {
                file: entry.path.clone(),
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
    real: Vec<Option<Vec<u16>>>,
    set: Option<AnnotatedSet>,
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
                return classes.get(image.file_name.as_str()).copied();
            }
            if let Some(label) = filename_labels
                .as_ref()
                .and_then(|l| l.get(&image.file_name))
            {
                return Some(*label);
            }
            image
                .wnid
                .as_deref()
                .and_then(|w| names.as_ref().and_then(|n| n.class_of_wnid(w)))
        })
        .collect();
    let real = images
        .iter()
        .map(|image| {
            let index = val_index(&image.file_name)?;
            real_labels.as_ref()?.get(index).cloned()
        })
        .collect();
    drop(custom);
    let set = match &dir {
        Some(dir) => {
            let set = args.annotations.load_set_with(dir, custom_records)?;
            images
                .iter()
                .any(|i| set.position(&i.file_name).is_some())
                .then_some(set)
        }
        None => None,
    };
    Ok(Truth {
        names,
        labels,
        real,
        set,
    })
}

fn report(
    args: &Args,
    images: &[ImageEntry],
    rows: &[PredictionRow],
    predictions_path: &std::path::Path,
) -> anyhow::Result<()> {
    let truth = truth(args, images)?;
    let by_name: std::collections::HashMap<&str, &PredictionRow> =
        rows.iter().map(|r| (r.file_name.as_str(), r)).collect();
    let name_of = |class: usize| {
        truth
            .names
            .as_ref()
            .and_then(|n| n.name(u16::try_from(class).ok()?))
            .unwrap_or("?")
            .to_string()
    };
    const LIST_LIMIT: usize = 25;
    if images.len() <= LIST_LIMIT {
        let mut table = Table::new([
            "image",
            "true class",
            "prediction",
            "probability",
            "top-5 classes",
        ]);
        for (image, label) in images.iter().zip(&truth.labels) {
            let Some(row) = by_name.get(image.file_name.as_str()) else {
                continue;
            };
            let top1 = row.classes.first().copied().unwrap_or(0);
            let mark = match label {
                Some(l) if usize::from(*l) == top1 => " ✓",
                Some(_) => " ✗",
                None => "",
            };
            table.push(vec![
                Cell::text(&image.file_name),
                Cell::text(label.map_or("—".to_string(), |l| {
                    format!("{l} {}", name_of(usize::from(l)))
                })),
                Cell::text(format!("{top1} {}{mark}", name_of(top1))),
                Cell::Num(row.probabilities.first().copied()),
                Cell::text(
                    row.classes
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            ]);
        }
        println!("{}", table.to_text(4));
    }

    let (mut labelled, mut top1, mut top5, mut real_n, mut real_ok) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for ((image, label), real) in images.iter().zip(&truth.labels).zip(&truth.real) {
        let Some(row) = by_name.get(image.file_name.as_str()) else {
            continue;
        };
        if let Some(label) = label {
            labelled += 1;
            top1 += u64::from(row.classes.first() == Some(&usize::from(*label)));
            top5 += u64::from(
                row.classes
                    .iter()
                    .take(5)
                    .any(|c| *c == usize::from(*label)),
            );
        }
        if let (Some(real), Some(first)) = (real, row.classes.first())
            && !real.is_empty()
        {
            real_n += 1;
            real_ok += u64::from(real.iter().any(|r| usize::from(*r) == *first));
        }
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
        let mut predictions: Vec<Option<Prediction>> = vec![None; set.len()];
        for row in rows {
            if let (Some(i), Some(class), Some(p)) = (
                set.position(&row.file_name),
                row.classes.first().and_then(|c| u16::try_from(*c).ok()),
                row.probabilities.first(),
            ) {
                predictions[i] = Some(Prediction {
                    class,
                    probability: *p,
                });
            }
        }
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
                image_paths: images
                    .iter()
                    .map(|i| (i.file_name.clone(), i.path.clone()))
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
            let figures = imagenetx_report::html::figures(&input);
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
