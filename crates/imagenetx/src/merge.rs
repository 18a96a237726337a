//! Putting the shards of one evaluation back together ([`merge`]).
//!
//! Each shard run ([`crate::shard`]) wrote a predictions CSV and a run record. [`merge`]
//! checks, before writing anything, that they belong together and are complete:
//!
//! - every run finished (state `complete`; an `interrupted` or `running` shard is refused,
//!   naming it: resume it first);
//! - all share the model's SHA-256, the preprocessing, the image list's identity and the
//!   shard count N;
//! - together they are shards 0..N exactly once (missing shards and shards given twice are
//!   named), each with the slice the rule gives;
//! - their rows are in name order across shards, no image twice (a duplicated image is named
//!   with the shards that hold it; rows out of order mean overlapping shards).
//!
//! It then writes the merged predictions CSV with the one predictions writer of
//! `imagenetx-dataset`, rows in shard order — byte for byte what one process over the whole
//! list writes — and a merged run record: counts summed, skipped files listed once, each
//! shard listed under `merged`. The merged output has no journal: a stale one beside it is
//! removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use imagenetx_dataset::{PredictionWriter, read_prediction_rows};
use imagenetx_infer::{MergedShard, RunCounts, RunFiles, RunRecord, RunState, write_atomic};

use crate::run::RunOutput;
use crate::shard::Shard;
use crate::{Error, Result};

/// The outcome of [`merge`].
#[derive(Debug)]
pub struct Merged {
    /// The merged output's files (predictions CSV and run record).
    pub files: RunFiles,
    /// The merged run record, as written.
    pub record: RunRecord,
    /// Rows of the merged CSV.
    pub rows: usize,
}

/// One shard given to [`merge`], with its run record.
struct ShardRun {
    predictions: PathBuf,
    record: RunRecord,
    shard: Shard,
}

/// Merges the shard runs whose predictions CSVs are `shards` (any order) into `out` (see the
/// [module docs](self)). Refusals are errors naming the shard files and what differs.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<Merged> {
    if shards.is_empty() {
        return Err(Error::invalid("merge: no shard predictions CSV given"));
    }
    let runs = shards
        .iter()
        .map(|csv| read_shard(csv))
        .collect::<Result<Vec<_>>>()?;
    let runs = check_together(runs)?;
    for run in &runs {
        if same_file(&run.predictions, out) {
            return Err(Error::invalid(format!(
                "merge: --out {} is one of the shards' CSVs; write the merged CSV elsewhere",
                out.display()
            )));
        }
    }
    // Every row read and checked before the output is touched.
    let mut rows_per_shard = Vec::with_capacity(runs.len());
    let mut last: Option<(String, usize)> = None;
    for (at, run) in runs.iter().enumerate() {
        let rows = read_prediction_rows(&run.predictions)?;
        let slice = run.shard.bounds(image_count(&runs[0]));
        if rows.len() > slice.len() {
            return Err(Error::invalid(format!(
                "merge: {} has {} rows, but shard {} holds {} images",
                run.predictions.display(),
                rows.len(),
                run.shard,
                slice.len()
            )));
        }
        for row in &rows {
            if let Some((previous, from)) = &last {
                let earlier = &runs[*from];
                if row.file_name == *previous {
                    return Err(Error::invalid(format!(
                        "merge: image {} is twice: in shard {} ({}) and shard {} ({})",
                        row.file_name,
                        earlier.shard,
                        earlier.predictions.display(),
                        run.shard,
                        run.predictions.display()
                    )));
                }
                if row.file_name < *previous {
                    return Err(Error::invalid(format!(
                        "merge: shards overlap: {} in shard {} ({}) sorts before {} of shard {} ({}); \
                         shards must be contiguous slices of the name order",
                        row.file_name,
                        run.shard,
                        run.predictions.display(),
                        previous,
                        earlier.shard,
                        earlier.predictions.display()
                    )));
                }
            }
            last = Some((row.file_name.clone(), at));
        }
        rows_per_shard.push(rows.len());
    }

    let output = RunOutput::prepare(out)?;
    let files = output.files().clone();
    let mut total = 0;
    write_atomic(&files.predictions, |w| {
        let mut csv = PredictionWriter::new(w)?;
        for run in &runs {
            let rows = read_prediction_rows(&run.predictions).map_err(std::io::Error::other)?;
            for row in &rows {
                csv.write(row)?;
            }
            total += rows.len();
        }
        csv.flush()
    })?;
    if total != rows_per_shard.iter().sum::<usize>() {
        return Err(Error::invalid(
            "merge: a shard's CSV changed while it was being merged; merge again",
        ));
    }
    if files.journal.exists() {
        std::fs::remove_file(&files.journal).map_err(|e| Error::io(&files.journal, e))?;
    }
    let record = merged_record(&runs, &rows_per_shard, &files.predictions);
    record.write(&files.record)?;
    Ok(Merged {
        files,
        record,
        rows: total,
    })
}

/// The images of the whole list the shards were cut from.
fn image_count(run: &ShardRun) -> usize {
    run.record.image_list.as_ref().map_or(0, |l| l.images)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Reads a shard's run record and checks it is a finished shard run.
fn read_shard(csv: &Path) -> Result<ShardRun> {
    let files = RunFiles::new(csv);
    let record = RunRecord::read(&files.record).map_err(|e| {
        Error::from(e).context(format!(
            "merge: shard {}: cannot read its run record",
            csv.display()
        ))
    })?;
    let Some(shard) = record.shard else {
        return Err(Error::invalid(format!(
            "merge: {} is not a shard run: its run record {} has no `shard` (made without --shard)",
            csv.display(),
            files.record.display()
        )));
    };
    if record.state != RunState::Complete {
        let state = match record.state {
            RunState::Running => "still running, or killed",
            RunState::Interrupted => "interrupted",
            RunState::Complete => "complete",
        };
        return Err(Error::invalid(format!(
            "merge: shard {}/{} ({}) is not finished: its run record {} says it is {state}; \
             finish it with the same `imagenetx evaluate` command plus --resume, then merge",
            shard.index,
            shard.count,
            csv.display(),
            files.record.display()
        )));
    }
    if record.image_list.is_none() {
        return Err(Error::invalid(format!(
            "merge: {}: its run record {} has no `image_list`",
            csv.display(),
            files.record.display()
        )));
    }
    let shard = Shard::new(shard.index, shard.count)
        .map_err(|e| Error::invalid(format!("merge: {}: {e}", files.record.display())))?;
    Ok(ShardRun {
        predictions: csv.to_path_buf(),
        record,
        shard,
    })
}

/// Checks the shards belong to one evaluation and cover it exactly once; returns them in
/// shard order.
fn check_together(runs: Vec<ShardRun>) -> Result<Vec<ShardRun>> {
    let first = &runs[0];
    let name = |run: &ShardRun| format!("{} (shard {})", run.predictions.display(), run.shard);
    for run in &runs[1..] {
        let differs = |what: &str, a: &dyn std::fmt::Display, b: &dyn std::fmt::Display| {
            Error::invalid(format!(
                "merge: {} and {} were made with different {what}: {a} vs {b}",
                name(first),
                name(run)
            ))
        };
        if run.record.model.sha256 != first.record.model.sha256 {
            return Err(differs(
                "models (SHA-256)",
                &first.record.model.sha256,
                &run.record.model.sha256,
            ));
        }
        let (a, b) = (
            first.record.preprocessing.get("config"),
            run.record.preprocessing.get("config"),
        );
        if a != b {
            let show = |v: Option<&serde_json::Value>| v.map_or("none".into(), |v| v.to_string());
            return Err(differs("preprocessing", &show(a), &show(b)));
        }
        if let (Some(a), Some(b)) = (&first.record.image_list, &run.record.image_list)
            && a != b
        {
            return Err(differs(
                "image lists (images, SHA-256 of the sorted names)",
                &format!("{} images, {}", a.images, a.sha256),
                &format!("{} images, {}", b.images, b.sha256),
            ));
        }
        if run.shard.count != first.shard.count {
            return Err(differs(
                "shard counts N",
                &first.shard.count,
                &run.shard.count,
            ));
        }
    }
    let count = first.shard.count;
    let images = image_count(first);
    let mut by_index: BTreeMap<usize, ShardRun> = BTreeMap::new();
    for run in runs {
        let expected = run.shard.record(images);
        if run.record.shard != Some(expected) {
            return Err(Error::invalid(format!(
                "merge: {} records the slice {:?}, but shard {} of a list of {images} images is {}..{}",
                run.predictions.display(),
                run.record.shard,
                run.shard,
                expected.start,
                expected.end
            )));
        }
        if let Some(other) = by_index.get(&run.shard.index) {
            return Err(Error::invalid(format!(
                "merge: shard {} is given twice: {} and {}",
                run.shard,
                other.predictions.display(),
                run.predictions.display()
            )));
        }
        by_index.insert(run.shard.index, run);
    }
    let missing: Vec<String> = (0..count)
        .filter(|k| !by_index.contains_key(k))
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::invalid(format!(
            "merge: missing shard{} {} of {count} (0-based): give every shard's predictions CSV",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    }
    Ok(by_index.into_values().collect())
}

/// The merged run record: the first shard's model, preprocessing and runtime, counts summed,
/// skipped files listed once (sorted), each shard listed.
fn merged_record(runs: &[ShardRun], rows: &[usize], predictions: &Path) -> RunRecord {
    let first = &runs[0].record;
    let mut counts = RunCounts::default();
    let mut skipped = Vec::new();
    let mut merged = Vec::with_capacity(runs.len());
    for (run, &rows) in runs.iter().zip(rows) {
        let c = run.record.counts;
        counts.images += c.images;
        counts.predicted += c.predicted;
        counts.resumed += c.resumed;
        counts.large_images += c.large_images;
        counts.checkpoints += c.checkpoints;
        skipped.extend(run.record.skipped.iter().cloned());
        merged.push(MergedShard {
            shard: run.shard.record(image_count(&runs[0])),
            predictions: run.predictions.clone(),
            rows,
            provider: run.record.provider.used.clone(),
        });
    }
    skipped.sort_by(|a, b| a.file.cmp(&b.file).then(a.reason.cmp(&b.reason)));
    skipped.dedup_by(|a, b| a.file == b.file);
    counts.skipped = skipped.len();
    RunRecord {
        imagenetx_version: RunRecord::VERSION.to_string(),
        state: RunState::Complete,
        model: first.model.clone(),
        model_info: first.model_info.clone(),
        preprocessing: first.preprocessing.clone(),
        provider: first.provider.clone(),
        runtime: first.runtime.clone(),
        predictions: predictions.to_path_buf(),
        counts,
        resume: None,
        skipped,
        image_list: first.image_list.clone(),
        shard: None,
        merged,
    }
}
