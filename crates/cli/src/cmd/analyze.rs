//! `imagenetx analyze`: factor analysis of prediction CSVs, as the paper toolkit computes it.

use std::path::PathBuf;

use anyhow::Context;
use imagenetx_dataset::{
    AnnotatedSet, ParsedPredictions, PredictionFile, collect_prediction_files, parse_predictions,
};
use imagenetx_factors::compare::{Comparison, compare};
use imagenetx_factors::intervals::{IntervalOptions, ModelIntervals, model_intervals};
use imagenetx_factors::{
    AnalysisOptions, ModelAnalysis, Outcome as Scored, analyze, analyze_outcomes, outcomes,
};
use imagenetx_report::analysis as tables;
use rayon::prelude::*;
use serde_json::json;

use crate::Outcome;
use crate::common::{
    AnnotationArgs, Format, ScoringArgs, StatsArgs, ensure_dir, options_json, write_atomic,
};

/// Arguments of `imagenetx analyze`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Prediction CSV files (`file_name,predicted_class,predicted_probability`, extra columns
    /// allowed) or folders of them; each file is a model named after its file stem.
    #[arg(required = true, value_name = "PRED")]
    pub predictions: Vec<PathBuf>,
    #[command(flatten)]
    pub annotations: AnnotationArgs,
    #[command(flatten)]
    pub scoring: ScoringArgs,
    /// Add a `human` model that predicts the annotated class (as the toolkit's `aggregate`).
    #[arg(long)]
    pub with_human: bool,
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
        let files = collect_prediction_files(&args.predictions)?;
        if args.with_human && files.iter().any(|f| f.model == "human") {
            anyhow::bail!(
                "--with-human adds a model named `human`, but a predictions file is already named so"
            );
        }
        Ok(Config {
            files,
            options: args.scoring.options()?,
            with_human: args.with_human,
            strict: args.scoring.strict,
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
    // The first files are opened and their first rows parsed while the annotations load
    // (parsing needs none; at most `PARSE_AHEAD_ROWS` rows a file, all of a 50,000-row file);
    // the rest of each file streams row by row as it is matched with the annotated images.
    // Other files are opened when a thread takes them up, about one per thread at a time, so
    // memory grows neither with the model count nor with the rows of a file.
    let ahead = config.files.len().min(2 * rayon::current_num_threads());
    let (set, parsed_ahead) = rayon::join(
        || args.annotations.load_set(&dir),
        || {
            config.files[..ahead]
                .par_iter()
                .map(|file| parse_predictions(&file.path))
                .collect::<Vec<_>>()
        },
    );
    let set = set?;
    tracing::info!(
        images = set.len(),
        prototypes_removed = set.prototypes_removed,
        "annotations loaded from {}",
        dir.root().display()
    );
    if set.is_empty() {
        anyhow::bail!("no annotated images in {}", dir.root().display());
    }

    let mut parsed_ahead: Vec<Option<_>> = parsed_ahead.into_iter().map(Some).collect();
    let mut runs: Vec<ModelRun> = config
        .files
        .iter()
        .zip(
            parsed_ahead
                .iter_mut()
                .map(Option::take)
                .chain(std::iter::repeat_with(|| None)),
        )
        .par_bridge()
        .map(|(file, parsed)| {
            let parsed = match parsed {
                Some(parsed) => parsed?,
                None => parse_predictions(&file.path)?,
            };
            analyze_file(file, parsed, &set, &config)
        })
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
    parsed: ParsedPredictions,
    set: &AnnotatedSet,
    config: &Config,
) -> anyhow::Result<ModelRun> {
    let aligned = parsed.align(set, config.strict)?;
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
    let mut options = options_json(set, config.options);
    options["with_human"] = json!(config.with_human);
    json!({
        "tool": "imagenetx",
        "version": env!("CARGO_PKG_VERSION"),
        "options": options,
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
