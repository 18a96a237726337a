//! `imagenetx analyze`: factor analysis of prediction CSVs, as the paper toolkit computes it
//! ([`imagenetx::analyze`]).

use std::path::PathBuf;

use imagenetx::AnalyzeOptions;

use crate::Outcome;
use crate::common::{AnnotationArgs, Format, ScoringArgs, StatsArgs};

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

/// Runs `imagenetx analyze`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let options = AnalyzeOptions {
        annotations: args.annotations.options(),
        analysis: args.scoring.options()?,
        intervals: args.stats.options()?,
        strict: args.scoring.strict,
        with_human: args.with_human,
        baseline: args.baseline.clone(),
    };
    let analysis = imagenetx::analyze(&args.predictions, &options)?;
    if let Some(out) = &args.out {
        analysis.write(out)?;
    }
    print!("{}", analysis.render(args.format.into())?);
    Ok(Outcome::Done)
}
