//! `imagenetx annotations`: how often each factor is annotated, per metaclass, and how
//! factors and metaclasses co-occur ([`imagenetx::annotation_summary`]).

use std::path::PathBuf;

use crate::Outcome;
use crate::common::{AnnotationArgs, Format};

/// Arguments of `imagenetx annotations`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub annotations: AnnotationArgs,
    /// Format of the counts printed on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write `factor_counts.csv`, `metaclass_prevalence_shift.csv`,
    /// `factor_correlation.csv` and `factor_correlation_pvalues.csv` into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Runs `imagenetx annotations`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let summary = imagenetx::annotation_summary(&args.annotations.options())?;
    if let Some(out) = &args.out {
        summary.write(out)?;
    }
    print!("{}", summary.render(args.format.into())?);
    Ok(Outcome::Done)
}
