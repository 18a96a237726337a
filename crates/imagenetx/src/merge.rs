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
//!
//! [`merge_pass`] does the same for every model of a sharded pass (`evaluate A.onnx B.onnx …
//! --out-dir DIR --shard K/N`): it reads the shards' pass records (`DIR/zoo.shard-K-of-N.json`),
//! requires all N and the same models in each, [`merge`]s each model that every shard
//! completed into `DIR/NAME.predictions.csv`, and writes the pass record `DIR/zoo.json`. A model
//! that failed in some shard, or whose shards do not merge, is failed with the reason; the
//! others are merged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use imagenetx_dataset::{PredictionWriter, read_prediction_rows};
use imagenetx_infer::{MergedShard, RunCounts, RunFiles, RunRecord, RunState, write_atomic};

use crate::run::RunOutput;
use crate::shard::Shard;
use crate::zoo::{ModelOutcome, PassRecord};
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

/// The outcome of [`merge_pass`].
#[derive(Debug)]
pub struct MergedPass {
    /// The merged pass record, as written to `DIR/zoo.json`.
    pub record: PassRecord,
    /// Where it was written.
    pub record_path: PathBuf,
    /// How many shards were merged.
    pub shards: usize,
    /// Each merged model: its name and its merged output.
    pub merged: Vec<(String, Merged)>,
}

/// Merges every model of the sharded pass in `dir` (see the [module docs](self)). An error
/// when the pass records are missing, unreadable or disagree (naming the shards); a model
/// that cannot be merged is only marked failed in the record, with the reason.
pub fn merge_pass(dir: &Path) -> Result<MergedPass> {
    let shards = pass_shards(dir)?;
    let count = shards[0].0.count;
    let records = shards
        .iter()
        .map(|(_, path)| PassRecord::read(path))
        .collect::<Result<Vec<_>>>()?;
    let first = &records[0];
    let names = |r: &PassRecord| r.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
    for ((shard, path), record) in shards.iter().zip(&records).skip(1) {
        if names(record) != names(first) {
            return Err(Error::invalid(format!(
                "merge: {} (shard {shard}) lists the models {:?}, but {} lists {:?}: the shards \
                 of one pass evaluate the same models",
                path.display(),
                names(record),
                shards[0].1.display(),
                names(first)
            )));
        }
        if record.image_list != first.image_list {
            return Err(Error::invalid(format!(
                "merge: {} (shard {shard}) and {} were cut from different image lists",
                path.display(),
                shards[0].1.display()
            )));
        }
    }
    let mut models = Vec::with_capacity(first.models.len());
    let mut merged = Vec::new();
    for (at, model) in first.models.iter().enumerate() {
        let mut outcome = ModelOutcome {
            predictions: None,
            predicted: 0,
            skipped: 0,
            reason: None,
            ..model.clone()
        };
        let states: Vec<(&str, Option<&str>)> = records
            .iter()
            .map(|r| (r.models[at].state.as_str(), r.models[at].reason.as_deref()))
            .collect();
        let not_complete: Vec<String> = states
            .iter()
            .enumerate()
            .filter(|(_, (state, _))| *state != "complete")
            .map(|(k, (state, reason))| match reason {
                Some(reason) => format!("shard {k} {state}: {reason}"),
                None => format!("shard {k} {state}"),
            })
            .collect();
        if !not_complete.is_empty() {
            let failed = states.iter().any(|(state, _)| *state == "failed");
            outcome.state = if failed { "failed" } else { "interrupted" }.into();
            outcome.reason = Some(not_complete.join("; "));
            models.push(outcome);
            continue;
        }
        let out = dir.join(format!("{}.predictions.csv", model.name));
        let csvs: Vec<PathBuf> = (0..count)
            .map(|k| Shard { index: k, count }.predictions_path(&out))
            .collect();
        match merge(&csvs, &out) {
            Ok(done) => {
                outcome.state = "complete".into();
                outcome.predictions = Some(done.files.predictions.clone());
                outcome.predicted = done.rows;
                outcome.skipped = done.record.counts.skipped;
                merged.push((model.name.clone(), done));
            }
            Err(err) => {
                outcome.state = "failed".into();
                outcome.reason = Some(err.to_string());
            }
        }
        models.push(outcome);
    }
    let record = PassRecord {
        groups: first.groups.clone(),
        models,
        image_list: first.image_list.clone(),
        shard: None,
        merged_shards: Some(count),
    };
    let record_path = PassRecord::path(dir, None);
    record.write(&record_path)?;
    Ok(MergedPass {
        record,
        record_path,
        shards: count,
        merged,
    })
}

/// The shards' pass records in `dir`, by shard: all N of one count, each once; an error
/// naming what is missing or mixed.
fn pass_shards(dir: &Path) -> Result<Vec<(Shard, PathBuf)>> {
    let mut found: Vec<(Shard, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(tag) = name
            .strip_prefix("zoo.shard-")
            .and_then(|t| t.strip_suffix(".json"))
        else {
            continue;
        };
        let Some((k, n)) = tag.split_once("-of-") else {
            continue;
        };
        if let (Ok(k), Ok(n)) = (k.parse(), n.parse()) {
            found.push((Shard::new(k, n)?, entry.path()));
        }
    }
    if found.is_empty() {
        return Err(Error::invalid(format!(
            "merge: {} holds no shard pass record (zoo.shard-K-of-N.json): expected the \
             --out-dir of `imagenetx evaluate MODELS… --out-dir DIR --shard K/N`",
            dir.display()
        )));
    }
    found.sort_by_key(|(shard, _)| (shard.count, shard.index));
    let count = found[0].0.count;
    if let Some((other, path)) = found.iter().find(|(s, _)| s.count != count) {
        return Err(Error::invalid(format!(
            "merge: {} holds shards of {count} and of {} ({}): the shards of two different \
             passes; keep one pass per folder",
            dir.display(),
            other.count,
            path.display()
        )));
    }
    let missing: Vec<String> = (0..count)
        .filter(|&k| !found.iter().any(|(s, _)| s.index == k))
        .map(|k| {
            PassRecord::path(dir, Some(Shard { index: k, count }))
                .display()
                .to_string()
        })
        .collect();
    if !missing.is_empty() {
        return Err(Error::invalid(format!(
            "merge: {} of {count} shards have no pass record: {} (not run yet, or killed before \
             it ended: run it again with --resume)",
            missing.len(),
            missing.join(", ")
        )));
    }
    Ok(found)
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
