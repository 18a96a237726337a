//! `imagenetx merge`: the shard runs' predictions → [`imagenetx::merge()`] → one predictions
//! CSV and run record, byte for byte what one process over the whole list writes.

use std::path::PathBuf;

use crate::Outcome;

/// Arguments of `imagenetx merge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The predictions CSVs of every shard of one evaluation (`evaluate --shard`), in any
    /// order; each one's run record is read from beside it.
    #[arg(value_name = "SHARD_CSV", required = true)]
    pub shards: Vec<PathBuf>,
    /// The merged predictions CSV to write; its run record goes beside it (.run.json).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Runs `imagenetx merge`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let merged = imagenetx::merge(&args.shards, &args.out)?;
    eprintln!(
        "merged {} shards: wrote {} ({} predictions, {} skipped; run record {})",
        merged.record.merged.len(),
        merged.files.predictions.display(),
        merged.rows,
        merged.record.counts.skipped,
        merged.files.record.display()
    );
    Ok(Outcome::Done)
}
