//! `imagenetx compare`: where do two models really differ? A paired comparison per factor on
//! the images both models scored: accuracy and error-ratio differences (B − A) with paired
//! bootstrap intervals, exact McNemar tests and Holm's correction across factors.

use std::path::PathBuf;

use anyhow::Context;
use imagenetx_dataset::{
    AnnotatedSet, ParsedPredictions, collect_prediction_files, parse_predictions,
};
use imagenetx_factors::compare::{Comparison, compare};
use imagenetx_factors::intervals::IntervalOptions;
use imagenetx_factors::{AnalysisOptions, Outcome as Scored, outcomes};
use imagenetx_report::analysis as tables;
use serde_json::json;

use crate::Outcome;
use crate::common::{
    AnnotationArgs, Format, ScoringArgs, StatsArgs, ensure_dir, options_json, write_atomic,
};

/// Arguments of `imagenetx compare`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Predictions of model A, the baseline (a prediction CSV; the model is named after its
    /// file stem).
    #[arg(value_name = "A")]
    pub a: PathBuf,
    /// Predictions of model B, compared to A (differences are B − A).
    #[arg(value_name = "B")]
    pub b: PathBuf,
    #[command(flatten)]
    pub annotations: AnnotationArgs,
    #[command(flatten)]
    pub scoring: ScoringArgs,
    #[command(flatten)]
    pub stats: StatsArgs,
    /// Format of the table printed on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write comparisons.csv and comparison.json into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The validated configuration of one comparison.
#[derive(Debug)]
struct Config {
    a: (String, PathBuf),
    b: (String, PathBuf),
    options: AnalysisOptions,
    intervals: IntervalOptions,
    strict: bool,
    format: Format,
    out: Option<PathBuf>,
}

fn one_file(path: &PathBuf) -> anyhow::Result<(String, PathBuf)> {
    let mut files = collect_prediction_files(std::slice::from_ref(path))?;
    if files.len() != 1 {
        anyhow::bail!(
            "{}: expected one prediction CSV, found {}",
            path.display(),
            files.len()
        );
    }
    let file = files.remove(0);
    Ok((file.model, file.path))
}

impl Config {
    fn from_args(args: &Args) -> anyhow::Result<Config> {
        let mut a = one_file(&args.a)?;
        let mut b = one_file(&args.b)?;
        if a.0 == b.0 {
            // Same stem in two folders: name them by path.
            a.0 = a.1.display().to_string();
            b.0 = b.1.display().to_string();
        }
        Ok(Config {
            a,
            b,
            options: args.scoring.options()?,
            intervals: args.stats.options()?,
            strict: args.scoring.strict,
            format: args.format,
            out: args.out.clone(),
        })
    }
}

fn scored(
    (model, path): &(String, PathBuf),
    parsed: ParsedPredictions,
    set: &AnnotatedSet,
    config: &Config,
) -> anyhow::Result<Vec<Scored>> {
    let aligned = parsed.align(set, config.strict)?;
    if aligned.missing > 0 {
        tracing::warn!(
            "{model}: {} of {} annotated images have no prediction (left out of the comparison)",
            aligned.missing,
            set.len()
        );
    }
    outcomes(&set.annotations, &aligned.predictions, config.options)
        .with_context(|| format!("scoring {}", path.display()))
}

/// Runs `imagenetx compare`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let config = Config::from_args(&args)?;
    let dir = args.annotations.dir()?;
    // Both files are opened and their first rows parsed while the annotations load; the
    // rest streams as it is matched with the annotated images.
    let (set, (parsed_a, parsed_b)) = rayon::join(
        || args.annotations.load_set(&dir),
        || {
            rayon::join(
                || parse_predictions(&config.a.1),
                || parse_predictions(&config.b.1),
            )
        },
    );
    let set = set?;
    if set.is_empty() {
        anyhow::bail!("no annotated images in {}", dir.root().display());
    }
    let (parsed_a, parsed_b) = (parsed_a?, parsed_b?);
    let (a, b) = rayon::join(
        || scored(&config.a, parsed_a, &set, &config),
        || scored(&config.b, parsed_b, &set, &config),
    );
    let (a, b) = (a?, b?);
    let started = std::time::Instant::now();
    let comparison = compare(
        &set.annotations,
        &config.a.0,
        &a,
        &config.b.0,
        &b,
        &config.intervals,
    )?;
    tracing::debug!(
        "paired comparison computed in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    if comparison.overall.images == 0 {
        anyhow::bail!(
            "{} and {} have no scored image in common",
            config.a.0,
            config.b.0
        );
    }
    let document = json!({
        "tool": "imagenetx",
        "version": env!("CARGO_PKG_VERSION"),
        "options": options_json(&set, config.options),
        "files": { "a": config.a.1, "b": config.b.1 },
        "comparison": tables::comparison_json(&comparison),
    });
    if let Some(out) = &config.out {
        ensure_dir(out)?;
        let table = tables::comparisons(std::slice::from_ref(&comparison));
        write_atomic(&out.join("comparisons.csv"), table.to_csv().as_bytes())?;
        let text =
            serde_json::to_string_pretty(&document).context("cannot encode comparison.json")?;
        write_atomic(&out.join("comparison.json"), format!("{text}\n").as_bytes())?;
    }
    print!("{}", render(&comparison, &document, &config)?);
    Ok(Outcome::Done)
}

fn legend(o: &IntervalOptions) -> String {
    format!(
        "differences are B − A; [low, high]: {}% paired bootstrap percentile interval ({} replicates, seed {}); p: exact McNemar, Holm-adjusted; {} significant at {:.3}; {} fewer than {} images",
        o.confidence() * 100.0,
        o.replicates(),
        o.seed(),
        tables::SIGNIFICANT_MARK,
        o.alpha(),
        tables::SMALL_SAMPLE_MARK,
        o.min_images()
    )
}

fn render(c: &Comparison, document: &serde_json::Value, config: &Config) -> anyhow::Result<String> {
    Ok(match config.format {
        Format::Table => format!(
            "{}\n{}\n\n{}",
            tables::comparison_summary(c),
            legend(&c.options),
            tables::comparison_view(c, 3).to_text(3)
        ),
        Format::Markdown => format!(
            "### {} vs {}\n\n{}\n\n{}\n\n{}",
            c.model_b,
            c.model_a,
            tables::comparison_summary(c),
            legend(&c.options),
            tables::comparison_view(c, 3).to_markdown(3)
        ),
        Format::Csv => tables::comparisons(std::slice::from_ref(c)).to_csv(),
        Format::Json => format!("{}\n", serde_json::to_string_pretty(document)?),
    })
}
