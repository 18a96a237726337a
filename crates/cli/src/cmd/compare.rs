//! `imagenetx compare`: where do two models really differ? A paired comparison per factor on
//! the images both models scored ([`imagenetx::compare`]): accuracy and error-ratio
//! differences (B − A) with paired bootstrap intervals, exact McNemar tests and Holm's
//! correction across factors.

use std::path::PathBuf;

use imagenetx::CompareOptions;

use crate::Outcome;
use crate::common::{AnnotationArgs, Format, ScoringArgs, StatsArgs};

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

/// Runs `imagenetx compare`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let options = CompareOptions {
        annotations: args.annotations.options(),
        analysis: args.scoring.options()?,
        intervals: args.stats.options()?,
        strict: args.scoring.strict,
    };
    let result = imagenetx::compare(&args.a, &args.b, &options)?;
    if let Some(out) = &args.out {
        result.write(out)?;
    }
    print!("{}", result.render(args.format.into())?);
    Ok(Outcome::Done)
}
