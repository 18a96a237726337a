//! An evaluation that loses nothing: predictions journaled as they are made, a run record
//! beside them, resumable after any interruption.
//!
//! [`RunOutput::prepare`] takes the output (one writer per output, stale temporaries
//! removed) before the model is loaded; [`RunOutput::start`] starts afresh or resumes what a
//! journal holds after checking it was made by the same model and preprocessing; the
//! [`JournalSink`] it returns receives the predictions of [`Evaluator::run`] and
//! [`JournalSink::finish`] writes the predictions CSV.

use std::path::{Path, PathBuf};

use imagenetx_dataset::ImageEntry;
use imagenetx_infer::{
    CheckpointPolicy, Fingerprint, ImageKeys, ImageListId, JournalIdentity, OutputLock,
    PredictionsWriter, PriorSource, ResumeSummary, Rows, RunCounts, RunFiles, RunRecord, RunState,
    ShardRecord, SkippedFile, TopK, sha256_hex,
};

use crate::evaluate::{Evaluator, Sink, model_name, skipped_entries};
use crate::shard::ShardedList;
use crate::{Error, Result};

/// The files of one run (predictions CSV, journal, run record), held by this process.
#[derive(Debug)]
pub struct RunOutput {
    files: RunFiles,
    /// The whole list and the slice, when the run is one shard ([`RunOutput::for_shard`]).
    sharding: Option<(ImageListId, ShardRecord)>,
    _lock: OutputLock,
}

impl RunOutput {
    /// Takes the output `predictions` (a CSV path): its folder is made, a lock on it is taken
    /// (a second run on the same output is refused, naming the holder's PID), and temporary
    /// files left by a killed run are removed.
    pub fn prepare(predictions: &Path) -> Result<Self> {
        if predictions.is_dir() {
            return Err(Error::invalid(format!(
                "--out {}: is a folder; expected a CSV file path",
                predictions.display()
            )));
        }
        let files = RunFiles::new(predictions);
        std::fs::create_dir_all(files.folder()).map_err(|e| {
            Error::invalid(format!("cannot create {}: {e}", files.folder().display()))
        })?;
        let lock = OutputLock::acquire(&files)?;
        files.remove_stale_temporaries()?;
        Ok(RunOutput {
            files,
            sharding: None,
            _lock: lock,
        })
    }

    /// Makes the run one shard of a list: the run record holds the whole list's identity and
    /// the shard's slice, and `--resume` refuses a journal of another shard or list. Give
    /// [`RunOutput::start`] the shard's images (`sharded.list`).
    pub fn for_shard(mut self, sharded: &ShardedList) -> Self {
        self.sharding = Some((sharded.image_list.clone(), sharded.shard));
        self
    }

    /// The run's files.
    pub fn files(&self) -> &RunFiles {
        &self.files
    }

    /// Starts the run of `evaluator` over `images`: afresh (an older CSV of the output is
    /// removed), or with `resume`, continuing the output's journal. Returns the sink that
    /// receives the predictions, the images still to predict, and what to tell the user.
    pub fn start<'a>(
        &'a self,
        evaluator: &Evaluator,
        images: &'a [ImageEntry],
        skipped: &[imagenetx_dataset::SkippedEntry],
        resume: bool,
        policy: CheckpointPolicy,
    ) -> Result<Started<'a>> {
        let files = &self.files;
        let resolved = evaluator.preprocessing();
        let preprocessing = serde_json::json!({
            "config": resolved.config,
            "decisions": resolved.decisions,
            "sources": resolved.sources,
        });
        let config_json = serde_json::to_vec(&resolved.config)
            .map_err(|e| Error::invalid(format!("cannot serialise the preprocessing: {e}")))?;
        let identity = JournalIdentity {
            model_sha256: evaluator.model_file().sha256.clone(),
            preprocessing_sha256: sha256_hex(&config_json),
        };
        let keys = ImageKeys::new(images.len(), |i| images[i].file_name());
        let (image_list, shard) = match &self.sharding {
            Some((list, shard)) => (list.clone(), Some(*shard)),
            None => (
                ImageListId::of(keys.in_name_order().map(|i| keys.name(i))),
                None,
            ),
        };
        let mut messages = Vec::new();
        let mut warnings = Vec::new();
        let (writer, todo, resume) = if resume {
            check_same_shard(files, &image_list, shard)?;
            resume_run(
                files,
                identity,
                policy,
                evaluator,
                &preprocessing,
                images,
                &keys,
                &mut messages,
                &mut warnings,
            )?
        } else {
            // A fresh run replaces the output: an older CSV must not sit beside the new journal
            // and record as if it belonged to them.
            if files.predictions.exists() {
                tracing::info!("replacing {}", files.predictions.display());
                std::fs::remove_file(&files.predictions).map_err(|e| {
                    Error::invalid(format!(
                        "cannot replace {}: {e}",
                        files.predictions.display()
                    ))
                })?;
            }
            let writer = PredictionsWriter::start(files, identity, policy, keys.len())?;
            (writer, (0..images.len()).collect(), None)
        };
        let resumed = writer.len();
        let skipped = skipped_entries(skipped);
        let record = RunRecord {
            imagenetx_version: RunRecord::VERSION.to_string(),
            state: RunState::Running,
            model: evaluator.model_file().clone(),
            model_info: evaluator.info().clone(),
            preprocessing,
            provider: evaluator.provider().clone(),
            runtime: evaluator.runtime().report(),
            predictions: files.predictions.clone(),
            counts: RunCounts {
                images: images.len(),
                resumed,
                ..RunCounts::default()
            },
            resume,
            skipped: Vec::new(),
            image_list: Some(image_list),
            shard,
            merged: Vec::new(),
        };
        record.write(&files.record)?;
        imagenetx_infer::pause::point("started");
        Ok(Started {
            sink: JournalSink {
                files,
                writer,
                keys,
                record,
                skipped,
                predicted: 0,
                large_images: 0,
            },
            todo,
            messages,
            warnings,
        })
    }
}

/// A run started by [`RunOutput::start`].
pub struct Started<'a> {
    /// Receives the predictions.
    pub sink: JournalSink<'a>,
    /// The indices of the images to predict (all, or what a resumed journal lacks).
    pub todo: Vec<usize>,
    /// What the resume found, for the user (one line each).
    pub messages: Vec<String>,
    /// Warnings, for the user's log.
    pub warnings: Vec<String>,
}

/// The [`Sink`] of a run that loses nothing: every prediction goes to the journal as it is
/// made; at each checkpoint the journal is made durable and the run record updated. Skipped
/// and large images are counted from [`Sink::skipped`] and [`Sink::warning`]: a sink that
/// wraps it forwards both.
pub struct JournalSink<'a> {
    files: &'a RunFiles,
    writer: PredictionsWriter,
    keys: ImageKeys<'a>,
    record: RunRecord,
    skipped: Vec<SkippedFile>,
    predicted: usize,
    large_images: usize,
}

impl std::fmt::Debug for JournalSink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalSink")
            .field("predictions", &self.files.predictions)
            .field("rows", &self.writer.len())
            .field("predicted", &self.predicted)
            .field("skipped", &self.skipped.len())
            .finish()
    }
}

/// How a finished run ended.
#[derive(Debug)]
pub struct Finished {
    /// The predictions, by image index (read back from the journal one at a time).
    pub rows: Rows,
    /// Predictions in the CSV (made now and kept from before).
    pub predictions: usize,
    /// Images not predicted, with the reason, sorted by path.
    pub skipped: Vec<SkippedFile>,
}

impl JournalSink<'_> {
    /// Rows in the journal (kept from a resumed run and made since).
    pub fn rows(&self) -> usize {
        self.writer.len()
    }

    /// Rows kept from the run that was resumed.
    pub fn resumed(&self) -> usize {
        self.record.counts.resumed
    }

    fn sort_skipped(&mut self) {
        self.skipped.sort_by(|a, b| a.file.cmp(&b.file));
        self.record.counts.predicted = self.predicted;
        self.record.counts.skipped = self.skipped.len();
        self.record.counts.large_images = self.large_images;
        self.record.skipped = self.skipped.clone();
    }

    /// The run stopped before its end (an error, a signal): a last checkpoint, and a run
    /// record that says `interrupted`. Returns the sentence telling the user how to go on.
    pub fn interrupt(mut self) -> (String, Result<()>) {
        self.sort_skipped();
        let saved = self.writer.checkpoint();
        self.record.counts.checkpoints = self.writer.checkpoints();
        self.record.state = RunState::Interrupted;
        let _ = self.record.write(&self.files.record);
        let how = format!(
            "{} predictions are safe in {}; to continue, run the same command with --resume",
            self.writer.len(),
            self.files.journal.display()
        );
        (how, saved.map_err(Error::from))
    }

    /// The run is complete: the CSV is written (sorted by file name, atomically), the journal
    /// compacted, the run record marked `complete`.
    pub fn finish(mut self) -> Result<Finished> {
        self.sort_skipped();
        // `finish` makes the run's last checkpoint.
        self.record.counts.checkpoints = self.writer.checkpoints() + 1;
        let predictions = self.predicted + self.record.counts.resumed;
        let rows = self.writer.finish(&self.keys)?;
        self.record.state = RunState::Complete;
        self.record.write(&self.files.record)?;
        Ok(Finished {
            rows,
            predictions,
            skipped: self.skipped,
        })
    }
}

impl Sink for JournalSink<'_> {
    fn prediction(
        &mut self,
        index: usize,
        image: &ImageEntry,
        fingerprint: Option<Fingerprint>,
        prediction: &TopK,
    ) -> Result<()> {
        let row = prediction.clone().into_row(image.file_name());
        self.predicted += 1;
        if self.writer.push(index, &row, fingerprint)? {
            self.record.counts.predicted = self.predicted;
            self.record.counts.skipped = self.skipped.len();
            self.record.counts.checkpoints = self.writer.checkpoints();
            self.record.write(&self.files.record)?;
        }
        Ok(())
    }

    fn skipped(&mut self, _index: usize, skipped: &SkippedFile) -> Result<()> {
        self.skipped.push(skipped.clone());
        Ok(())
    }

    fn warning(&mut self, message: &str) {
        tracing::warn!("{message}");
        self.large_images += 1;
    }
}

/// Resuming a shard: the earlier run (by its run record, when there is one) must be the same
/// shard of the same list, and a run that was not a shard cannot be resumed as one (nor the
/// other way round): its rows would not merge.
fn check_same_shard(
    files: &RunFiles,
    image_list: &ImageListId,
    shard: Option<ShardRecord>,
) -> Result<()> {
    let Ok(previous) = RunRecord::read(&files.record) else {
        return Ok(());
    };
    let describe = |shard: Option<ShardRecord>| match shard {
        Some(s) => format!(
            "shard {}/{} (images {}..{})",
            s.index, s.count, s.start, s.end
        ),
        None => "the whole list (no --shard)".to_string(),
    };
    if shard.is_some()
        && previous.shard.is_some()
        && let Some(previous) = &previous.image_list
        && previous != image_list
    {
        return Err(Error::invalid(format!(
            "--resume: {} is a shard of another image list ({} images, SHA-256 {}), not of \
             this one ({} images, SHA-256 {}): the images changed since, so every shard must \
             be run again without --resume",
            files.predictions.display(),
            previous.images,
            previous.sha256,
            image_list.images,
            image_list.sha256
        )));
    }
    if previous.shard != shard {
        return Err(Error::invalid(format!(
            "--resume: {} holds {}, not {}; give the --out of this shard, or start it afresh \
             without --resume",
            files.predictions.display(),
            describe(previous.shard),
            describe(shard)
        )));
    }
    Ok(())
}

/// Resuming: checks how the earlier run was made (from older runs without a journal, by their
/// run record), continues it ([`PredictionsWriter::resume`]: rows of unchanged images kept,
/// changed ones redone, removed ones dropped), and says what it found.
#[allow(clippy::too_many_arguments)]
fn resume_run(
    files: &RunFiles,
    identity: JournalIdentity,
    policy: CheckpointPolicy,
    evaluator: &Evaluator,
    preprocessing: &serde_json::Value,
    images: &[ImageEntry],
    keys: &ImageKeys<'_>,
    messages: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<(PredictionsWriter, Vec<usize>, Option<ResumeSummary>)> {
    let model = evaluator.model_file();
    let source = PredictionsWriter::prior_source(files);
    if source == PriorSource::PredictionsCsv {
        let previous = RunRecord::read(&files.record).map_err(|e| {
            Error::from(e).context(format!(
                "--resume: {} has no journal ({}), so its run record is needed to check how it was made",
                files.predictions.display(),
                files.journal.display()
            ))
        })?;
        if previous.model.sha256 != model.sha256 {
            return Err(Error::invalid(format!(
                "--resume: {} was made with a different model (SHA-256 {}), not {}",
                files.predictions.display(),
                previous.model.sha256,
                model.sha256
            )));
        }
        if previous.preprocessing.get("config") != preprocessing.get("config") {
            return Err(Error::invalid(format!(
                "--resume: {} was made with other preprocessing: {}",
                files.predictions.display(),
                previous.preprocessing
            )));
        }
    }
    if source == PriorSource::Nothing {
        messages.push(format!(
            "--resume: nothing to resume at {}; starting from the beginning",
            files.predictions.display()
        ));
    }
    let (writer, plan, mask) = PredictionsWriter::resume(files, identity, policy, keys, |i| {
        Fingerprint::read(images[i].file()).ok()
    })?;
    let todo: Vec<usize> = mask
        .iter()
        .enumerate()
        .filter(|(_, t)| **t)
        .map(|(i, _)| i)
        .collect();
    drop(mask);
    let cut = plan.cut;
    if let Some(cut) = cut {
        messages.push(format!(
            "--resume: {}:{}: the journal's last {} bytes were cut short by the interruption; those images are predicted again",
            files.journal.display(),
            cut.line,
            cut.bytes
        ));
    }
    if plan.unchecked > 0 {
        warnings.push(format!(
            "--resume: {} rows of {} have no journal to check the images against (an older run); kept as they are",
            plan.unchecked,
            files.predictions.display()
        ));
    }
    let sample = |names: &[String]| {
        let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
        let more = names.len().saturating_sub(shown.len());
        if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        }
    };
    if !plan.changed.is_empty() {
        messages.push(format!(
            "--resume: {} images changed since they were predicted (size or modification time), predicted again: {}",
            plan.changed.len(),
            sample(&plan.changed)
        ));
    }
    if !plan.removed.is_empty() {
        messages.push(format!(
            "--resume: {} predicted images are no longer among the images, their rows dropped: {}",
            plan.removed.len(),
            sample(&plan.removed)
        ));
    }
    messages.push(format!(
        "--resume: {} predictions kept, {} images to predict",
        plan.kept,
        todo.len()
    ));
    let summary = ResumeSummary {
        source: match source {
            PriorSource::Nothing => "nothing",
            PriorSource::Journal => "journal",
            PriorSource::PredictionsCsv => "predictions-csv",
        }
        .to_string(),
        kept: plan.kept,
        unchecked: plan.unchecked,
        changed: plan.changed.len(),
        removed: plan.removed.len(),
        changed_names: plan
            .changed
            .iter()
            .take(ResumeSummary::MAX_NAMES)
            .cloned()
            .collect(),
        removed_names: plan
            .removed
            .iter()
            .take(ResumeSummary::MAX_NAMES)
            .cloned()
            .collect(),
        cut_line: cut.map(|c| c.line),
        cut_bytes: cut.map(|c| c.bytes),
    };
    Ok((writer, todo, Some(summary)))
}

/// The default predictions CSV of `model`: `MODEL_STEM.predictions.csv` in the working folder.
pub fn default_predictions_path(model: &Path) -> PathBuf {
    PathBuf::from(format!("{}.predictions.csv", model_name(model)))
}
