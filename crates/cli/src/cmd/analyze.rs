//! `imagenetx analyze`: factor analysis of prediction CSVs, as the paper toolkit computes it.

use std::path::PathBuf;

use anyhow::Context;
use imagenetx_dataset::{AnnotatedSet, PredictionFile, collect_prediction_files, read_predictions};
use imagenetx_factors::compare::{Comparison, compare};
use imagenetx_factors::intervals::{IntervalOptions, ModelIntervals, model_intervals};
use imagenetx_factors::{
    AnalysisOptions, ErrorType, ModelAnalysis, Outcome as Scored, analyze, analyze_outcomes,
    outcomes,
};
use imagenetx_report::analysis as tables;
use rayon::prelude::*;
use serde_json::json;

use imagenetx_factors::intervals;

use crate::Outcome;
use crate::common::{AnnotationArgs, Format, ensure_dir, write_atomic};

/// Arguments of `imagenetx analyze`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Prediction CSV files (`file_name,predicted_class,predicted_probability`, extra columns
    /// allowed) or folders of them; each file is a model named after its file stem.
    #[arg(required = true, value_name = "PRED")]
    pub predictions: Vec<PathBuf>,
    #[command(flatten)]
    pub annotations: AnnotationArgs,
    /// What counts as correct: the annotated class, any class of its metaclass, or any of the
    /// image's ImageNet ReaL labels.
    #[arg(long, value_enum, default_value_t = ErrorTypeArg::Class)]
    pub error_type: ErrorTypeArg,
    /// With `--error-type real-class`: leave out images whose ReaL list is empty instead of
    /// counting them as errors (the toolkit counts them as errors).
    #[arg(long)]
    pub skip_empty_real: bool,
    /// Add a `human` model that predicts the annotated class (as the toolkit's `aggregate`).
    #[arg(long)]
    pub with_human: bool,
    /// Make annotated images without a prediction an error instead of leaving them out.
    #[arg(long)]
    pub strict: bool,
    /// Format of the error-ratio table printed on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write every table (the toolkit's CSV layouts) and summary.json into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub stats: StatsArgs,
    /// Compare every other model to this one (paired bootstrap, exact McNemar per factor,
    /// Holm-corrected); writes comparisons.csv with --out.
    #[arg(long, value_name = "MODEL")]
    pub baseline: Option<String>,
}

/// Flags of the confidence intervals and paired tests (shared with `compare`).
#[derive(Debug, Clone, clap::Args)]
pub struct StatsArgs {
    /// Bootstrap replicates for the error-ratio intervals (0: no bootstrap).
    #[arg(long, value_name = "N", default_value_t = intervals::DEFAULT_REPLICATES)]
    pub bootstrap: u32,
    /// Confidence level of every interval; 1 − it is the level of the paired tests.
    #[arg(long, value_name = "LEVEL", default_value_t = intervals::DEFAULT_CONFIDENCE)]
    pub confidence: f64,
    /// Seed of the bootstrap (same seed, same intervals, whatever the thread count).
    #[arg(long, default_value_t = intervals::DEFAULT_SEED)]
    pub seed: u64,
    /// Flag factors with fewer images than this as small samples (at 100 images a 95%
    /// interval on an accuracy near 0.8 is already about ±0.08 wide).
    #[arg(long, value_name = "N", default_value_t = intervals::DEFAULT_MIN_IMAGES)]
    pub min_images: u64,
}

impl StatsArgs {
    /// The validated interval options.
    pub fn options(&self) -> anyhow::Result<IntervalOptions> {
        Ok(IntervalOptions::new(
            self.confidence,
            self.bootstrap,
            self.seed,
            self.min_images,
        )?)
    }
}

/// `--error-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ErrorTypeArg {
    /// Correct when the predicted class is the annotated class.
    Class,
    /// Correct when the predicted class is in the annotated class's metaclass.
    Metaclass,
    /// Correct when the predicted class is one of the image's ReaL labels.
    RealClass,
}

/// The validated configuration of one analysis.
#[derive(Debug)]
struct Config {
    files: Vec<PredictionFile>,
    options: AnalysisOptions,
    with_human: bool,
    strict: bool,
    format: Format,
    out: Option<PathBuf>,
    intervals: IntervalOptions,
    baseline: Option<String>,
}

impl Config {
    fn from_args(args: &Args) -> anyhow::Result<Config> {
        let error_type = match args.error_type {
            ErrorTypeArg::Class => ErrorType::Class,
            ErrorTypeArg::Metaclass => ErrorType::Metaclass,
            ErrorTypeArg::RealClass => ErrorType::RealClass,
        };
        if args.skip_empty_real && error_type != ErrorType::RealClass {
            anyhow::bail!("--skip-empty-real only applies with --error-type real-class");
        }
        let files = collect_prediction_files(&args.predictions)?;
        if args.with_human && files.iter().any(|f| f.model == "human") {
            anyhow::bail!(
                "--with-human adds a model named `human`, but a predictions file is already named so"
            );
        }
        Ok(Config {
            files,
            options: AnalysisOptions {
                error_type,
                skip_empty_real: args.skip_empty_real,
            },
            with_human: args.with_human,
            strict: args.strict,
            format: args.format,
            out: args.out.clone(),
            intervals: args.stats.options()?,
            baseline: args.baseline.clone(),
        })
    }
}

/// One model's analysis with what was read to make it.
struct ModelRun {
    analysis: ModelAnalysis,
    intervals: ModelIntervals,
    outcomes: Vec<Scored>,
    file: Option<PathBuf>,
    rows: usize,
    unannotated: usize,
}

/// Runs `imagenetx analyze`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let config = Config::from_args(&args)?;
    let dir = args.annotations.dir()?;
    let load = args.annotations.load_options();
    let set = dir.load_set(load)?;
    tracing::info!(
        images = set.len(),
        prototypes_removed = set.prototypes_removed,
        "annotations loaded from {}",
        dir.root().display()
    );
    if set.is_empty() {
        anyhow::bail!("no annotated images in {}", dir.root().display());
    }

    let mut runs: Vec<ModelRun> = config
        .files
        .par_iter()
        .map(|file| analyze_file(file, &set, &config))
        .collect::<anyhow::Result<_>>()?;
    if config.with_human {
        let predictions = set.annotations.human_predictions();
        let scored = outcomes(&set.annotations, &predictions, config.options)?;
        runs.push(ModelRun {
            analysis: analyze(&set.annotations, "human", &predictions, config.options)?,
            intervals: model_intervals(&set.annotations, &scored, &config.intervals)?,
            outcomes: scored,
            file: None,
            rows: set.len(),
            unannotated: 0,
        });
    }
    runs.sort_by(|a, b| a.analysis.model.cmp(&b.analysis.model));
    for run in &runs {
        let a = &run.analysis;
        if a.missing > 0 {
            tracing::warn!(
                "{}: {} of {} annotated images have no prediction; every number of this model is computed over the other {} (--strict makes this an error)",
                a.model,
                a.missing,
                a.annotated,
                a.annotated - a.missing
            );
        }
    }
    let results: Vec<ModelAnalysis> = runs.iter().map(|r| r.analysis.clone()).collect();
    let model_intervals: Vec<ModelIntervals> = runs.iter().map(|r| r.intervals.clone()).collect();
    let comparisons = baseline_comparisons(&runs, &set, &config)?;

    let summary = summary(&runs, &comparisons, &set, &dir, &config);
    if let Some(out) = &config.out {
        ensure_dir(out)?;
        let files = [
            ("accuracies_per_factor.csv", tables::accuracies(&results)),
            (
                "accuracies_per_factor_metaclass.csv",
                tables::metaclass_accuracies(&results),
            ),
            ("error_ratios.csv", tables::error_ratios(&results)),
            ("calibration.csv", tables::calibration(&results)),
            ("prevalence_shift.csv", tables::prevalence_shift(&results)),
            (
                "prevalence_shift_metaclass.csv",
                tables::metaclass_prevalence_shift(&results),
            ),
        ];
        for (name, table) in files {
            write_atomic(&out.join(name), table.to_csv().as_bytes())?;
        }
        let named: Vec<(&str, &ModelIntervals)> = runs
            .iter()
            .map(|r| (r.analysis.model.as_str(), &r.intervals))
            .collect();
        write_atomic(
            &out.join("intervals.csv"),
            tables::intervals(&named).to_csv().as_bytes(),
        )?;
        if config.baseline.is_some() {
            write_atomic(
                &out.join("comparisons.csv"),
                tables::comparisons(&comparisons).to_csv().as_bytes(),
            )?;
        }
        let text = serde_json::to_string_pretty(&summary).context("cannot encode summary.json")?;
        write_atomic(&out.join("summary.json"), format!("{text}\n").as_bytes())?;
    }

    print!(
        "{}",
        render_stdout(
            &results,
            &model_intervals,
            &comparisons,
            &set,
            &config,
            &summary
        )?
    );
    Ok(Outcome::Done)
}

fn analyze_file(
    file: &PredictionFile,
    set: &AnnotatedSet,
    config: &Config,
) -> anyhow::Result<ModelRun> {
    let aligned = read_predictions(&file.path, set, config.strict)?;
    let scored = outcomes(&set.annotations, &aligned.predictions, config.options)
        .with_context(|| format!("analysing {}", file.path.display()))?;
    drop(aligned.predictions);
    let analysis = analyze_outcomes(&set.annotations, &file.model, &scored, config.options)
        .with_context(|| format!("analysing {}", file.path.display()))?;
    let started = std::time::Instant::now();
    let intervals = model_intervals(&set.annotations, &scored, &config.intervals)
        .with_context(|| format!("analysing {}", file.path.display()))?;
    tracing::debug!(
        model = %file.model,
        replicates = config.intervals.replicates(),
        "intervals computed in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ModelRun {
        analysis,
        intervals,
        // Only comparisons need the per-image outcomes later; keeping them for every model
        // would hold ~0.7 MB per model (1.6 GB for the paper's 2,200 models).
        outcomes: if config.baseline.is_some() {
            scored
        } else {
            Vec::new()
        },
        file: Some(file.path.clone()),
        rows: aligned.rows,
        unannotated: aligned.unannotated,
    })
}

fn describe(set: &AnnotatedSet, config: &Config) -> String {
    let o = set.options;
    format!(
        "error ratio = (1 - accuracy on the factor) / (1 - accuracy); error type {}, {} factor, {} partition, {} annotated images{}",
        config.options.error_type.name(),
        o.selection.name(),
        o.partition.name(),
        set.len(),
        if o.keep_prototypes {
            " (prototypes kept)".to_string()
        } else {
            format!(" ({} prototypes left out)", set.prototypes_removed)
        }
    )
}

/// With `--baseline`: every other model compared to the baseline, in model order.
fn baseline_comparisons(
    runs: &[ModelRun],
    set: &AnnotatedSet,
    config: &Config,
) -> anyhow::Result<Vec<Comparison>> {
    let Some(name) = &config.baseline else {
        return Ok(Vec::new());
    };
    let Some(base) = runs.iter().find(|r| &r.analysis.model == name) else {
        let models: Vec<&str> = runs.iter().map(|r| r.analysis.model.as_str()).collect();
        anyhow::bail!(
            "--baseline {name}: no such model (models: {})",
            models.join(", ")
        );
    };
    runs.iter()
        .filter(|r| &r.analysis.model != name)
        .map(|r| {
            Ok(compare(
                &set.annotations,
                name,
                &base.outcomes,
                &r.analysis.model,
                &r.outcomes,
                &config.intervals,
            )?)
        })
        .collect()
}

/// The legend of the interval tables.
fn legend(o: &IntervalOptions) -> String {
    let level = o.confidence() * 100.0;
    let ratio = if o.replicates() == 0 {
        "no bootstrap (--bootstrap 0): error ratios without intervals".to_string()
    } else {
        format!(
            "[low, high]: {level}% bootstrap percentile interval ({} replicates over images, seed {})",
            o.replicates(),
            o.seed()
        )
    };
    format!(
        "{ratio}; accuracy: {level}% Wilson interval; {} fewer than {} images (small sample)",
        tables::SMALL_SAMPLE_MARK,
        o.min_images()
    )
}

fn render_stdout(
    results: &[ModelAnalysis],
    intervals: &[ModelIntervals],
    comparisons: &[Comparison],
    set: &AnnotatedSet,
    config: &Config,
    summary: &serde_json::Value,
) -> anyhow::Result<String> {
    const MAX_MODEL_COLUMNS: usize = 6;
    let wide = results.len() > MAX_MODEL_COLUMNS;
    Ok(match config.format {
        Format::Table => {
            let table = if wide {
                tables::error_ratio_view(results, MAX_MODEL_COLUMNS).to_text(6)
            } else {
                tables::error_ratio_interval_view(results, intervals, 6).to_text(6)
            };
            let mut text = format!(
                "{}\n{}\n\n{table}",
                describe(set, config),
                legend(&config.intervals)
            );
            for c in comparisons {
                text.push_str(&format!(
                    "\n{}\n\n{}",
                    tables::comparison_summary(c),
                    tables::comparison_view(c, 3).to_text(3)
                ));
            }
            text
        }
        Format::Markdown => {
            let table = if wide {
                tables::error_ratio_view(results, MAX_MODEL_COLUMNS).to_markdown(3)
            } else {
                tables::error_ratio_interval_view(results, intervals, 3).to_markdown(3)
            };
            let mut text = format!(
                "### ImageNet-X error ratios\n\n{}\n\n{}\n\n{table}",
                describe(set, config),
                legend(&config.intervals)
            );
            for c in comparisons {
                text.push_str(&format!(
                    "\n### {} vs {}\n\n{}\n\n{}",
                    c.model_b,
                    c.model_a,
                    tables::comparison_summary(c),
                    tables::comparison_view(c, 3).to_markdown(3)
                ));
            }
            text
        }
        Format::Csv => tables::error_ratios_with_intervals(results, intervals).to_csv(),
        Format::Json => format!("{}\n", serde_json::to_string_pretty(summary)?),
    })
}

fn summary(
    runs: &[ModelRun],
    comparisons: &[Comparison],
    set: &AnnotatedSet,
    dir: &imagenetx_dataset::AnnotationDir,
    config: &Config,
) -> serde_json::Value {
    let models: Vec<serde_json::Value> = runs
        .iter()
        .map(|run| {
            let mut model = tables::model_json(&run.analysis);
            tables::add_intervals_json(&mut model, &run.intervals);
            if let Some(object) = model.as_object_mut() {
                object.insert("file".into(), json!(run.file));
                object.insert("rows".into(), json!(run.rows));
                object.insert("unannotated_rows".into(), json!(run.unannotated));
            }
            model
        })
        .collect();
    json!({
        "tool": "imagenetx",
        "version": env!("CARGO_PKG_VERSION"),
        "options": {
            "partition": set.options.partition,
            "factors": set.options.selection,
            "keep_prototypes": set.options.keep_prototypes,
            "error_type": config.options.error_type,
            "skip_empty_real": config.options.skip_empty_real,
            "with_human": config.with_human,
        },
        "annotations": {
            "folder": dir.root(),
            "images": set.len(),
            "prototypes_removed": set.prototypes_removed,
        },
        "intervals": tables::interval_settings_json(&config.intervals),
        "models": models,
        "comparisons": comparisons.iter().map(tables::comparison_json).collect::<Vec<_>>(),
    })
}
