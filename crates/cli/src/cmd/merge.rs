//! `imagenetx merge`: the shard runs' predictions → [`imagenetx::merge()`] → one predictions
//! CSV and run record, byte for byte what one process over the whole list writes; or, with
//! `--out-dir`, every model of a sharded pass → [`imagenetx::merge_pass()`].
//!
//! Exit code: 0 when everything was merged (images the shards skipped were reported by them and
//! are listed in the merged run records); 1 when some model of a pass could not be merged (each
//! named with the reason); 2 when nothing could be merged.

use std::path::PathBuf;

use anyhow::bail;
use imagenetx::ReportRequest;

use crate::Outcome;
use crate::common::AnnotationArgs;

/// Arguments of `imagenetx merge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The predictions CSVs of every shard of one evaluation (`evaluate --shard`), in any
    /// order; each one's run record is read from beside it.
    #[arg(
        value_name = "SHARD_CSV",
        required_unless_present = "out_dir",
        conflicts_with = "out_dir"
    )]
    pub shards: Vec<PathBuf>,
    /// The merged predictions CSV to write; its run record goes beside it (.run.json).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "out_dir",
        conflicts_with = "out_dir"
    )]
    pub out: Option<PathBuf>,
    /// Merge every model of the sharded pass in DIR (`evaluate MODELS… --out-dir DIR --shard
    /// K/N`): each model's shards into DIR/NAME.predictions.csv, the shards' pass records
    /// (zoo.shard-K-of-N.json, all N required) into DIR/zoo.json. A model that failed in some
    /// shard is named with the reason; the others are merged.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// With --out-dir: also write one HTML report of every merged model.
    #[arg(long, value_name = "FILE", requires = "out_dir")]
    pub report: Option<PathBuf>,
    /// With --report: the images, for the gallery's thumbnails (as `evaluate --images` takes
    /// them: folders, archives, patterns).
    #[arg(long, value_name = "PATH", num_args = 1.., requires = "report")]
    pub images: Vec<PathBuf>,
    #[command(flatten)]
    pub annotations: AnnotationArgs,
}

/// Runs `imagenetx merge`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    if let Some(dir) = &args.out_dir {
        return merge_pass(&args, dir);
    }
    let Some(out) = &args.out else {
        bail!("give --out FILE (or --out-dir DIR for a pass of several models)");
    };
    let merged = imagenetx::merge(&args.shards, out)?;
    eprintln!(
        "merged {} shards: wrote {} ({} predictions, {} skipped; run record {})",
        merged.record.merged.len(),
        merged.files.predictions.display(),
        merged.rows,
        merged.record.counts.skipped,
        merged.files.record.display()
    );
    // Skipped images were reported (exit 1) by the shards that skipped them, and are listed
    // in the merged run record: merging them is done.
    Ok(Outcome::Done)
}

/// `merge --out-dir DIR`: every model of a sharded pass.
fn merge_pass(args: &Args, dir: &std::path::Path) -> anyhow::Result<Outcome> {
    let pass = imagenetx::merge_pass(dir)?;
    let mut incomplete = 0;
    for model in &pass.record.models {
        match &model.predictions {
            Some(csv) if model.state == "complete" => {
                eprintln!(
                    "{}: merged {} shards into {} ({} predictions, {} skipped)",
                    model.name,
                    pass.shards,
                    csv.display(),
                    model.predicted,
                    model.skipped
                );
            }
            _ => {
                incomplete += 1;
                eprintln!(
                    "{}: not merged ({}): {}",
                    model.name,
                    model.state,
                    model.reason.as_deref().unwrap_or("no reason recorded")
                );
            }
        }
    }
    eprintln!("wrote the pass record {}", pass.record_path.display());
    if pass.merged.is_empty() {
        bail!(
            "no model of the pass in {} could be merged ({} models, each named above with the reason)",
            dir.display(),
            pass.record.models.len()
        );
    }
    if let Some(path) = &args.report {
        let predictions: Vec<PathBuf> = pass
            .merged
            .iter()
            .map(|(_, merged)| merged.files.predictions.clone())
            .collect();
        let request = ReportRequest {
            annotations: args.annotations.options(),
            images: args.images.clone(),
            ..ReportRequest::default()
        };
        let input = imagenetx::assemble_report(&predictions, &request)?;
        super::evaluate::write_html_report(path, &input)?;
    }
    if incomplete > 0 {
        eprintln!(
            "{incomplete} of {} models could not be merged (named above)",
            pass.record.models.len()
        );
    }
    Ok(if incomplete > 0 {
        Outcome::Skipped
    } else {
        Outcome::Done
    })
}
