//! Crash-safe predictions output: an append-only journal beside the predictions CSV, one writer
//! per output, and what a resumed run finds on disk.
//!
//! # Files of one output
//!
//! For `--out NAME.csv` ([`RunFiles::new`]):
//!
//! | file | written | holds |
//! |---|---|---|
//! | `NAME.csv` | once, atomically, when the run finishes | the predictions, sorted by file name |
//! | `NAME.run.json` | before the first image, at every checkpoint, at the end | the run record |
//! | `NAME.journal` | appended while the run goes; rewritten compacted at the start and end | every prediction with its image's size and mtime |
//! | `.NAME.csv.lock` | created once, kept | an advisory lock and the PID of the run holding it |
//!
//! # The journal
//!
//! ```text
//! #imagenetx-journal 1 <model SHA-256> <preprocessing SHA-256>
//! file_name,size,mtime_ns,predicted_class,predicted_probability,top5_classes,top5_probabilities,check
//! ```
//!
//! The first line says which model and preprocessing made the rows. Every following record is
//! a CSV record (the predictions CSV's columns with the image's size in bytes and modification
//! time in nanoseconds since the epoch after the name) ending in `check`: eight hex digits of
//! the FNV-1a hash of the record's bytes before it. Records are appended as images finish and
//! flushed to disk with `fdatasync` at every checkpoint ([`CheckpointPolicy`]), so a checkpoint
//! costs the rows since the last one, not the whole file. A record cut short by a kill or a
//! full disk fails its check: it and everything after it are dropped on resume
//! ([`Prior::load`]) and those images are predicted again. When an image appears twice the
//! later record wins (an image changed on disk and predicted again).
//!
//! At the end, [`PredictionsWriter::finish`] sorts the rows by file name and writes the CSV
//! atomically, so an interrupted and resumed run ends with the same bytes as an uninterrupted
//! one; the journal is then rewritten compacted (one record per image) and kept: it is what a
//! later `--resume` checks the image folder against.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::classify::TOP_K;
use crate::error::{Error, Result};
use crate::predictions::{HEADER, PredictionRow};

/// The first word of a journal.
const MAGIC: &str = "#imagenetx-journal";
/// The journal format's version.
const VERSION: u32 = 1;
/// Longest journal record accepted (a record with a newline in its name spans lines).
const MAX_RECORD: usize = 64 * 1024;

/// The files that belong to one predictions output (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFiles {
    /// The predictions CSV.
    pub predictions: PathBuf,
    /// The run record, `NAME.run.json`.
    pub record: PathBuf,
    /// The journal, `NAME.journal`.
    pub journal: PathBuf,
    /// The lock file, `.NAME.csv.lock` (hidden, kept between runs).
    pub lock: PathBuf,
}

impl RunFiles {
    /// The files of the output `predictions`.
    pub fn new(predictions: impl Into<PathBuf>) -> Self {
        let predictions = predictions.into();
        let name = predictions
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "predictions.csv".into());
        let mut lock_name = std::ffi::OsString::from(".");
        lock_name.push(&name);
        lock_name.push(".lock");
        RunFiles {
            record: predictions.with_extension("run.json"),
            journal: predictions.with_extension("journal"),
            lock: predictions.with_file_name(lock_name),
            predictions,
        }
    }

    /// The folder holding them (`.` for a bare file name).
    pub fn folder(&self) -> &Path {
        match self.predictions.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    /// Removes temporary files that a killed atomic write of one of these files left
    /// (`.NAME.*.tmp`, see [`write_atomic`]); returns how many. Call it holding the lock.
    pub fn remove_stale_temporaries(&self) -> Result<usize> {
        let prefixes: Vec<String> = [&self.predictions, &self.record, &self.journal]
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| format!(".{}.", n.to_string_lossy()))
            .collect();
        let folder = self.folder();
        let entries = match std::fs::read_dir(folder) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(err) => return Err(Error::io(folder, err)),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|err| Error::io(folder, err))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") && prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(|err| Error::io(&path, err))?;
                tracing::info!("removed {}, left by an interrupted write", path.display());
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// An advisory lock on an output: one run writes it at a time. Released when dropped (and by
/// the operating system when the process dies, however it dies).
#[derive(Debug)]
pub struct OutputLock {
    _file: File,
    path: PathBuf,
}

impl OutputLock {
    /// Takes the lock of `files`, creating the folder's lock file. Fails at once with
    /// [`Error::Locked`] (naming the holder's PID) when another run holds it, and with
    /// [`Error::Io`] when the folder cannot be written — so an unwritable output is found
    /// before any work is done.
    pub fn acquire(files: &RunFiles) -> Result<Self> {
        let path = files.lock.clone();
        let io = |err| Error::io(&path, err);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(Error::Locked {
                    output: files.predictions.clone(),
                    lock: path.clone(),
                    holder: holder.trim().to_string(),
                });
            }
            Err(std::fs::TryLockError::Error(err)) => return Err(io(err)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(OutputLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What identifies an image file's version: its size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch (negative before it).
    pub mtime_ns: i64,
}

impl Fingerprint {
    /// The fingerprint of a file's metadata.
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        let mtime_ns =
            metadata
                .modified()
                .ok()
                .map_or(0, |t| match t.duration_since(std::time::UNIX_EPOCH) {
                    Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
                    Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
                });
        Fingerprint {
            size: metadata.len(),
            mtime_ns,
        }
    }

    /// The fingerprint of the file at `path` (symbolic links followed).
    pub fn read(path: &Path) -> std::io::Result<Self> {
        std::fs::metadata(path).map(|m| Fingerprint::of(&m))
    }
}

/// Which model and preprocessing made a journal's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalIdentity {
    /// SHA-256 of the model file.
    pub model_sha256: String,
    /// SHA-256 of the resolved preprocessing (its canonical JSON).
    pub preprocessing_sha256: String,
}

impl JournalIdentity {
    fn header(&self) -> String {
        format!(
            "{MAGIC} {VERSION} {} {}\n",
            self.model_sha256, self.preprocessing_sha256
        )
    }
}

/// One stored prediction, kept compact (a resumed ImageNet training set holds 1.28 M).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    /// The image's file name (the key).
    pub file_name: Box<str>,
    /// The image's size and mtime when it was predicted; `None` for rows read from a
    /// predictions CSV without a journal.
    pub fingerprint: Option<Fingerprint>,
    len: u8,
    classes: [u32; TOP_K],
    probabilities: [f64; TOP_K],
}

impl StoredRow {
    /// A stored row; `None` when the row has no class, more than [`TOP_K`], or a class index
    /// beyond `u32`.
    pub fn new(row: &PredictionRow, fingerprint: Option<Fingerprint>) -> Option<Self> {
        let len = row.classes.len();
        if len == 0 || len > TOP_K || row.probabilities.len() != len {
            return None;
        }
        let mut classes = [0u32; TOP_K];
        let mut probabilities = [0f64; TOP_K];
        for i in 0..len {
            classes[i] = u32::try_from(row.classes[i]).ok()?;
            probabilities[i] = row.probabilities[i];
        }
        Some(StoredRow {
            file_name: row.file_name.as_str().into(),
            fingerprint,
            len: len as u8,
            classes,
            probabilities,
        })
    }

    /// The classes, most probable first.
    pub fn classes(&self) -> &[u32] {
        &self.classes[..usize::from(self.len)]
    }

    /// Their probabilities.
    pub fn probabilities(&self) -> &[f64] {
        &self.probabilities[..usize::from(self.len)]
    }

    /// The row as written to the predictions CSV.
    pub fn to_row(&self) -> PredictionRow {
        let n = usize::from(self.len);
        PredictionRow {
            file_name: self.file_name.to_string(),
            classes: self.classes[..n].iter().map(|&c| c as usize).collect(),
            probabilities: self.probabilities[..n].to_vec(),
        }
    }

    fn csv_fields(&self) -> [String; 5] {
        let n = usize::from(self.len);
        let mut classes = String::new();
        let mut probabilities = String::new();
        for i in 0..n {
            if i > 0 {
                classes.push(' ');
                probabilities.push(' ');
            }
            let _ = write!(classes, "{}", self.classes[i]);
            let _ = write!(probabilities, "{}", self.probabilities[i]);
        }
        [
            self.file_name.to_string(),
            self.classes[0].to_string(),
            self.probabilities[0].to_string(),
            classes,
            probabilities,
        ]
    }
}

/// Where a resumed run's earlier rows came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PriorSource {
    /// Nothing on disk: a fresh run.
    Nothing,
    /// The journal (rows with fingerprints).
    Journal,
    /// Only a predictions CSV (an older run, or its journal was deleted): rows without
    /// fingerprints, which cannot be checked against the images.
    PredictionsCsv,
}

/// Records of a journal dropped because a kill or a full disk cut them short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutTail {
    /// Line of the first bad record (1-based).
    pub line: u64,
    /// Bytes dropped from there to the end.
    pub bytes: u64,
}

/// What an earlier run of an output left, read for `--resume`.
#[derive(Debug, Clone)]
pub struct Prior {
    /// Its rows, one per file name (the latest), sorted by file name.
    pub rows: Vec<StoredRow>,
    /// Where they came from.
    pub source: PriorSource,
    /// The journal's cut-short tail, when it had one.
    pub cut: Option<CutTail>,
}

impl Prior {
    /// Reads what the output `files` holds. The journal is preferred; without one, the
    /// predictions CSV (rows without fingerprints). A journal made by another model or
    /// preprocessing than `identity` is an error naming both.
    pub fn load(files: &RunFiles, identity: &JournalIdentity) -> Result<Prior> {
        match File::open(&files.journal) {
            Ok(file) => {
                let (rows, cut) = read_journal(&files.journal, file, Some(identity))?;
                Ok(Prior {
                    rows: latest_sorted(rows),
                    source: PriorSource::Journal,
                    cut,
                })
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if !files.predictions.exists() {
                    return Ok(Prior {
                        rows: Vec::new(),
                        source: PriorSource::Nothing,
                        cut: None,
                    });
                }
                let mut rows = Vec::new();
                for (i, row) in crate::predictions::read_predictions(&files.predictions)?
                    .into_iter()
                    .enumerate()
                {
                    rows.push(StoredRow::new(&row, None).ok_or_else(|| Error::Csv {
                        path: files.predictions.clone(),
                        line: i as u64 + 2,
                        message: format!(
                            "expected 1 to {TOP_K} classes below 2^32, got {:?}",
                            row.classes
                        ),
                    })?);
                }
                Ok(Prior {
                    rows: latest_sorted(rows),
                    source: PriorSource::PredictionsCsv,
                    cut: None,
                })
            }
            Err(err) => Err(Error::io(&files.journal, err)),
        }
    }

    #[cfg(test)]
    fn load_rows_for_test(bytes: &[u8]) -> Vec<StoredRow> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.journal");
        std::fs::write(&path, bytes).expect("write");
        let file = File::open(&path).expect("open");
        read_journal(&path, file, None).expect("valid journal").0
    }

    /// An empty prior (a fresh run).
    pub fn nothing() -> Prior {
        Prior {
            rows: Vec::new(),
            source: PriorSource::Nothing,
            cut: None,
        }
    }
}

/// Sorts by file name and keeps the last row of each name (stable sort: journal order), in
/// place.
fn latest_sorted(mut rows: Vec<StoredRow>) -> Vec<StoredRow> {
    rows.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    // `dedup_by` keeps the first of equal neighbours; swapping keeps the contents of the last.
    rows.dedup_by(|later, kept| {
        let same = later.file_name == kept.file_name;
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
    rows
}

fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// One journal record, with its check field and newline.
fn journal_record(row: &StoredRow) -> Vec<u8> {
    let [name, class, probability, classes, probabilities] = row.csv_fields();
    let fp = row.fingerprint.unwrap_or(Fingerprint {
        size: 0,
        mtime_ns: 0,
    });
    let (size, mtime) = match row.fingerprint {
        Some(_) => (fp.size.to_string(), fp.mtime_ns.to_string()),
        None => (String::new(), String::new()),
    };
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = writer.write_record([
        name.as_str(),
        &size,
        &mtime,
        &class,
        &probability,
        &classes,
        &probabilities,
    ]);
    let mut bytes = writer.into_inner().unwrap_or_default();
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    let check = fnv1a(&bytes);
    let _ = writeln!(VecWriter(&mut bytes), ",{check:08x}");
    bytes
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Parses one record (without its check field and newline).
fn parse_record(body: &[u8]) -> Option<StoredRow> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body);
    let record = reader.records().next()?.ok()?;
    if record.len() != 7 {
        return None;
    }
    let fingerprint = match (&record[1], &record[2]) {
        ("", "") => None,
        (size, mtime) => Some(Fingerprint {
            size: size.parse().ok()?,
            mtime_ns: mtime.parse().ok()?,
        }),
    };
    let class: usize = record[3].parse().ok()?;
    let probability: f64 = record[4].parse().ok()?;
    let classes = record[5]
        .split(' ')
        .map(str::parse)
        .collect::<std::result::Result<Vec<usize>, _>>()
        .ok()?;
    let probabilities = record[6]
        .split(' ')
        .map(str::parse)
        .collect::<std::result::Result<Vec<f64>, _>>()
        .ok()?;
    if classes.first() != Some(&class) || probabilities.first() != Some(&probability) {
        return None;
    }
    StoredRow::new(
        &PredictionRow {
            file_name: record[0].to_string(),
            classes,
            probabilities,
        },
        fingerprint,
    )
}

/// Reads a journal: its rows in file order and the cut-short tail, if any. With `identity`,
/// a journal of another model or preprocessing is an error.
fn read_journal(
    path: &Path,
    file: File,
    identity: Option<&JournalIdentity>,
) -> Result<(Vec<StoredRow>, Option<CutTail>)> {
    let total = file.metadata().map_err(|err| Error::io(path, err))?.len();
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut header = Vec::new();
    reader
        .by_ref()
        .take(4096)
        .read_until(b'\n', &mut header)
        .map_err(|err| Error::io(path, err))?;
    let bad_header = |message: String| Error::Csv {
        path: path.to_path_buf(),
        line: 1,
        message,
    };
    let text = String::from_utf8_lossy(&header);
    let words: Vec<&str> = text.split_whitespace().collect();
    if !header.ends_with(b"\n") || words.len() != 4 || words[0] != MAGIC {
        return Err(bad_header(format!(
            "expected a journal header `{MAGIC} {VERSION} MODEL_SHA256 PREPROCESSING_SHA256`, got {:?}",
            text.trim_end()
        )));
    }
    if words[1] != VERSION.to_string() {
        return Err(bad_header(format!(
            "journal format version {}, this imagenetx reads version {VERSION}",
            words[1]
        )));
    }
    if let Some(identity) = identity {
        if words[2] != identity.model_sha256 {
            return Err(Error::Mismatch {
                path: path.to_path_buf(),
                what: "model",
                recorded: words[2].to_string(),
                now: identity.model_sha256.clone(),
            });
        }
        if words[3] != identity.preprocessing_sha256 {
            return Err(Error::Mismatch {
                path: path.to_path_buf(),
                what: "preprocessing",
                recorded: words[3].to_string(),
                now: identity.preprocessing_sha256.clone(),
            });
        }
    }
    let mut offset = header.len() as u64;
    let mut line = 2u64;
    let mut rows: Vec<StoredRow> = Vec::new();
    let mut record = Vec::new();
    let mut chunk = Vec::new();
    loop {
        let record_start = offset;
        let record_line = line;
        record.clear();
        let complete = loop {
            chunk.clear();
            let n = reader
                .by_ref()
                .take(MAX_RECORD as u64)
                .read_until(b'\n', &mut chunk)
                .map_err(|err| Error::io(path, err))?;
            if n == 0 {
                break None;
            }
            offset += n as u64;
            line += 1;
            record.extend_from_slice(&chunk);
            if !chunk.ends_with(b"\n") || record.len() > MAX_RECORD {
                break None;
            }
            if let Some(row) = verified(&record) {
                break Some(row);
            }
        };
        match complete {
            Some(row) => {
                if rows.is_empty() {
                    // Records are of similar length: reserve for the whole file at once
                    // rather than doubling (a resumed ImageNet training run holds 1.28 M).
                    let estimate = total.saturating_sub(offset) / (offset - record_start).max(1);
                    rows.reserve(
                        usize::try_from(estimate).unwrap_or(0).saturating_mul(11) / 10 + 1,
                    );
                }
                rows.push(row);
            }
            None if record.is_empty() => return Ok((rows, None)),
            None => {
                return Ok((
                    rows,
                    Some(CutTail {
                        line: record_line,
                        bytes: total.saturating_sub(record_start),
                    }),
                ));
            }
        }
    }
}

/// The row of a complete record (`body,check\n`) whose check matches.
fn verified(record: &[u8]) -> Option<StoredRow> {
    let body = record.strip_suffix(b"\n")?;
    let comma = body.iter().rposition(|&b| b == b',')?;
    let (body, check) = (&body[..comma], &body[comma + 1..]);
    if check.len() != 8 {
        return None;
    }
    let check = u32::from_str_radix(std::str::from_utf8(check).ok()?, 16).ok()?;
    if check != fnv1a(body) {
        return None;
    }
    parse_record(body)
}

/// When [`PredictionsWriter::push`] makes a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Checkpoint after this many new rows.
    pub rows: usize,
    /// Checkpoint when this much time has passed since the last one (and a row is new).
    pub interval: Duration,
}

impl Default for CheckpointPolicy {
    /// Every 5,000 rows or 30 seconds.
    fn default() -> Self {
        CheckpointPolicy {
            rows: 5_000,
            interval: Duration::from_secs(30),
        }
    }
}

/// Writes predictions through the journal and, at the end, the sorted predictions CSV (see
/// the [module docs](self)). Hold the output's [`OutputLock`] while using it.
#[derive(Debug)]
pub struct PredictionsWriter {
    files: RunFiles,
    identity: JournalIdentity,
    journal: BufWriter<File>,
    rows: usize,
    policy: CheckpointPolicy,
    pending: usize,
    last_checkpoint: Instant,
    checkpoints: u64,
}

impl PredictionsWriter {
    /// Starts writing `files` for a run that keeps the rows `kept` (empty for a fresh run):
    /// the journal is replaced, atomically, by one holding its header and `kept`; new rows are
    /// appended to it. Rows are not held in memory: the journal is read back at the end.
    pub fn start(
        files: &RunFiles,
        identity: JournalIdentity,
        policy: CheckpointPolicy,
        kept: Vec<StoredRow>,
    ) -> Result<Self> {
        write_journal(&files.journal, &identity, &kept)?;
        let rows = kept.len();
        drop(kept);
        let file = OpenOptions::new()
            .append(true)
            .open(&files.journal)
            .map_err(|err| Error::io(&files.journal, err))?;
        Ok(PredictionsWriter {
            files: files.clone(),
            identity,
            journal: BufWriter::with_capacity(1 << 16, file),
            rows,
            policy,
            pending: 0,
            last_checkpoint: Instant::now(),
            checkpoints: 0,
        })
    }

    /// The output's files.
    pub fn files(&self) -> &RunFiles {
        &self.files
    }

    /// Rows in the journal (kept and new; an image predicted twice counts twice).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether the journal holds no row.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Checkpoints made so far.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints
    }

    /// Appends a row to the journal; makes a checkpoint when the policy says so and returns
    /// whether it did. A row whose classes do not fit the predictions CSV is an error.
    pub fn push(&mut self, row: &PredictionRow, fingerprint: Option<Fingerprint>) -> Result<bool> {
        let stored = StoredRow::new(row, fingerprint).ok_or_else(|| Error::Csv {
            path: self.files.journal.clone(),
            line: 0,
            message: format!(
                "{}: expected 1 to {TOP_K} classes below 2^32 with as many probabilities",
                row.file_name
            ),
        })?;
        self.journal
            .write_all(&journal_record(&stored))
            .map_err(|err| Error::io(&self.files.journal, err))?;
        self.rows += 1;
        self.pending += 1;
        if self.pending >= self.policy.rows
            || self.last_checkpoint.elapsed() >= self.policy.interval
        {
            self.checkpoint()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Makes every row pushed so far durable: flushes the journal and syncs it to disk.
    pub fn checkpoint(&mut self) -> Result<()> {
        let io = |err| Error::io(&self.files.journal, err);
        self.journal.flush().map_err(io)?;
        self.journal.get_ref().sync_data().map_err(io)?;
        self.pending = 0;
        self.last_checkpoint = Instant::now();
        self.checkpoints += 1;
        crate::pause::point("checkpoint");
        Ok(())
    }

    /// Finishes: a last checkpoint, the journal read back, the predictions CSV written
    /// atomically (rows sorted by file name, the last row of each image), then the journal
    /// rewritten compacted. Returns the rows as written.
    pub fn finish(mut self) -> Result<Vec<StoredRow>> {
        self.checkpoint()?;
        let file =
            File::open(&self.files.journal).map_err(|err| Error::io(&self.files.journal, err))?;
        let (rows, cut) = read_journal(&self.files.journal, file, Some(&self.identity))?;
        if let Some(cut) = cut {
            // Only another process could have changed the journal under the lock.
            return Err(Error::Csv {
                path: self.files.journal.clone(),
                line: cut.line,
                message: "a record written by this run reads back damaged".into(),
            });
        }
        let rows = latest_sorted(rows);
        write_predictions(&self.files.predictions, &rows)?;
        crate::pause::point("after-csv");
        write_journal(&self.files.journal, &self.identity, &rows)?;
        crate::pause::point("after-journal");
        Ok(rows)
    }
}

/// Writes the predictions CSV of `rows` (already sorted) atomically.
fn write_predictions(path: &Path, rows: &[StoredRow]) -> Result<()> {
    write_atomic(path, |out: &mut dyn Write| {
        let mut csv = csv::Writer::from_writer(out);
        csv.write_record(HEADER)?;
        for row in rows {
            csv.write_record(row.csv_fields())?;
        }
        csv.flush()?;
        crate::pause::point("final-csv");
        Ok(())
    })
}

/// Replaces the journal by one holding `rows`, atomically.
fn write_journal(path: &Path, identity: &JournalIdentity, rows: &[StoredRow]) -> Result<()> {
    write_atomic(path, |out: &mut dyn Write| {
        out.write_all(identity.header().as_bytes())?;
        for row in rows {
            out.write_all(&journal_record(row))?;
        }
        Ok(())
    })
}

/// How the images of a resumed run relate to the rows an earlier run left.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePlan {
    /// Rows kept: the image is unchanged (or has no fingerprint to check, see `unchecked`).
    pub kept: usize,
    /// Kept rows that had no fingerprint (from a predictions CSV without journal).
    pub unchecked: usize,
    /// Images whose size or mtime changed since they were predicted: predicted again.
    pub changed: Vec<String>,
    /// Images without a row: predicted now.
    pub new: usize,
    /// Rows of images that are no longer among the images: dropped.
    pub removed: Vec<String>,
}

impl ResumePlan {
    /// Matches `prior` against the images now: `names[i]` and `fingerprints[i]` of image `i`
    /// (a fingerprint is `None` when the file cannot be read: it is predicted again, and the
    /// read reports why). Returns the plan, the rows to keep (sorted by file name), and for
    /// each image whether it must be predicted.
    pub fn make(
        prior: Prior,
        names: &[&str],
        fingerprints: &[Option<Fingerprint>],
    ) -> (ResumePlan, Vec<StoredRow>, Vec<bool>) {
        assert_eq!(names.len(), fingerprints.len(), "one fingerprint per name");
        let mut plan = ResumePlan::default();
        let mut todo = vec![true; names.len()];
        // Images in file-name order, merged with the rows (sorted by file name).
        let mut order: Vec<u32> = (0..names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| names[a as usize].cmp(names[b as usize]));
        let mut next = order.iter().peekable();
        let mut rows = prior.rows;
        rows.retain(|row| {
            while next
                .peek()
                .is_some_and(|&&i| names[i as usize] < &*row.file_name)
            {
                next.next();
            }
            let Some(&&i) = next
                .peek()
                .filter(|&&&i| names[i as usize] == &*row.file_name)
            else {
                plan.removed.push(row.file_name.to_string());
                return false;
            };
            let i = i as usize;
            match (row.fingerprint, fingerprints[i]) {
                (None, _) => plan.unchecked += 1,
                (Some(then), Some(now)) if then == now => {}
                _ => {
                    plan.changed.push(row.file_name.to_string());
                    return false;
                }
            }
            plan.kept += 1;
            todo[i] = false;
            true
        });
        plan.new = todo.iter().filter(|&&t| t).count() - plan.changed.len();
        (plan, rows, todo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, first: usize) -> PredictionRow {
        PredictionRow {
            file_name: name.to_owned(),
            classes: vec![first, 2, 3, 4, 5],
            probabilities: vec![0.5, 0.2, 0.1, 0.1 + 0.2, 1e-20],
        }
    }

    fn identity() -> JournalIdentity {
        JournalIdentity {
            model_sha256: "aa".into(),
            preprocessing_sha256: "bb".into(),
        }
    }

    const FP: Option<Fingerprint> = Some(Fingerprint {
        size: 10,
        mtime_ns: -5,
    });

    #[test]
    fn files_of_an_output() {
        let files = RunFiles::new("out/m.predictions.csv");
        assert_eq!(files.record, Path::new("out/m.predictions.run.json"));
        assert_eq!(files.journal, Path::new("out/m.predictions.journal"));
        assert_eq!(files.lock, Path::new("out/.m.predictions.csv.lock"));
        assert_eq!(RunFiles::new("p.csv").folder(), Path::new("."));
    }

    #[test]
    fn journal_round_trips_and_cut_records_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let files = RunFiles::new(dir.path().join("p.csv"));
        let policy = CheckpointPolicy {
            rows: 2,
            interval: Duration::from_secs(3600),
        };
        let mut writer = PredictionsWriter::start(&files, identity(), policy, vec![]).unwrap();
        assert!(!writer.push(&row("b,\"odd\"\nname.JPEG", 1), FP).unwrap());
        assert!(writer.push(&row("a.JPEG", 2), None).unwrap());
        writer.push(&row("c.JPEG", 3), FP).unwrap();
        drop(writer); // killed: c was never checkpointed (it may or may not be on disk)
        let prior = Prior::load(&files, &identity()).unwrap();
        assert_eq!(prior.source, PriorSource::Journal);
        let names: Vec<&str> = prior.rows.iter().map(|r| &*r.file_name).collect();
        assert!(
            names.starts_with(&["a.JPEG", "b,\"odd\"\nname.JPEG"]),
            "{names:?}"
        );
        assert_eq!(prior.rows[1].fingerprint, FP);
        assert_eq!(prior.rows[0].to_row(), row("a.JPEG", 2));

        // Cut inside the last number of the last record: that record is dropped.
        let bytes = std::fs::read(&files.journal).unwrap();
        let full = bytes.len();
        for cut in [full - 1, full - 3, full - 12] {
            std::fs::write(&files.journal, &bytes[..cut]).unwrap();
            let prior = Prior::load(&files, &identity()).unwrap();
            let names: Vec<&str> = prior.rows.iter().map(|r| &*r.file_name).collect();
            assert_eq!(names, ["a.JPEG", "b,\"odd\"\nname.JPEG"], "cut at {cut}");
            let tail = prior.cut.expect("cut tail");
            assert_eq!(tail.line, 5, "the name spans two lines");
        }
        // A flipped byte in a record fails its check.
        let mut flipped = bytes.clone();
        let at = flipped.len() - 15;
        flipped[at] ^= 1;
        std::fs::write(&files.journal, &flipped).unwrap();
        assert_eq!(Prior::load(&files, &identity()).unwrap().rows.len(), 2);
    }

    #[test]
    fn finish_sorts_keeps_the_latest_and_compacts() {
        let dir = tempfile::tempdir().unwrap();
        let files = RunFiles::new(dir.path().join("p.csv"));
        let mut writer =
            PredictionsWriter::start(&files, identity(), CheckpointPolicy::default(), vec![])
                .unwrap();
        writer.push(&row("z.JPEG", 1), FP).unwrap();
        writer.push(&row("a.JPEG", 2), FP).unwrap();
        writer.push(&row("z.JPEG", 7), FP).unwrap();
        writer.finish().unwrap();
        let text = std::fs::read_to_string(&files.predictions).unwrap();
        assert_eq!(
            text,
            "file_name,predicted_class,predicted_probability,top5_classes,top5_probabilities\n\
             a.JPEG,2,0.5,2 2 3 4 5,0.5 0.2 0.1 0.30000000000000004 0.00000000000000000001\n\
             z.JPEG,7,0.5,7 2 3 4 5,0.5 0.2 0.1 0.30000000000000004 0.00000000000000000001\n"
        );
        let journal = std::fs::read_to_string(&files.journal).unwrap();
        assert_eq!(journal.lines().count(), 3, "{journal}");
        assert_eq!(
            crate::predictions::read_predictions(&files.predictions).unwrap()[1],
            row("z.JPEG", 7)
        );
    }

    #[test]
    fn other_model_or_preprocessing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = RunFiles::new(dir.path().join("p.csv"));
        PredictionsWriter::start(&files, identity(), CheckpointPolicy::default(), vec![]).unwrap();
        let mut other = identity();
        other.preprocessing_sha256 = "cc".into();
        let err = Prior::load(&files, &other).unwrap_err().to_string();
        assert!(
            err.contains("preprocessing") && err.contains("bb") && err.contains("cc"),
            "{err}"
        );
        std::fs::write(&files.journal, "not a journal\n").unwrap();
        let err = Prior::load(&files, &identity()).unwrap_err().to_string();
        assert!(
            err.contains("p.journal:1: expected a journal header"),
            "{err}"
        );
    }

    #[test]
    fn plan_keeps_unchanged_redoes_changed_and_drops_removed() {
        let keep = StoredRow::new(&row("keep.JPEG", 1), FP).unwrap();
        let changed = StoredRow::new(&row("changed.JPEG", 1), FP).unwrap();
        let gone = StoredRow::new(&row("gone.JPEG", 1), FP).unwrap();
        let unchecked = StoredRow::new(&row("old.JPEG", 1), None).unwrap();
        let prior = Prior {
            // Sorted by file name, as `Prior::load` returns them.
            rows: vec![changed, gone, keep.clone(), unchecked],
            source: PriorSource::Journal,
            cut: None,
        };
        let other = Some(Fingerprint {
            size: 11,
            mtime_ns: -5,
        });
        let names = ["keep.JPEG", "changed.JPEG", "new.JPEG", "old.JPEG"];
        let fingerprints = [FP, other, FP, FP];
        let (plan, kept, todo) = ResumePlan::make(prior, &names, &fingerprints);
        assert_eq!(plan.kept, 2);
        assert_eq!(plan.unchecked, 1);
        assert_eq!(plan.changed, ["changed.JPEG"]);
        assert_eq!(plan.removed, ["gone.JPEG"]);
        assert_eq!(plan.new, 1);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0], keep);
        assert_eq!(todo, [false, true, true, false]);
    }

    #[test]
    fn second_lock_names_the_holder_and_stale_temporaries_go() {
        let dir = tempfile::tempdir().unwrap();
        let files = RunFiles::new(dir.path().join("p.csv"));
        let lock = OutputLock::acquire(&files).unwrap();
        let err = OutputLock::acquire(&files).unwrap_err().to_string();
        assert!(
            err.contains(&format!("PID {}", std::process::id())) && err.contains("p.csv"),
            "{err}"
        );
        drop(lock);
        let again = OutputLock::acquire(&files).unwrap();
        std::fs::write(dir.path().join(".p.csv.abc123.tmp"), "x").unwrap();
        std::fs::write(dir.path().join(".p.journal.abc123.tmp"), "x").unwrap();
        std::fs::write(dir.path().join(".other.csv.abc123.tmp"), "x").unwrap();
        assert_eq!(files.remove_stale_temporaries().unwrap(), 2);
        assert!(dir.path().join(".other.csv.abc123.tmp").exists());
        drop(again);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn valid_journal() -> Vec<u8> {
            let mut bytes = identity().header().into_bytes();
            for (i, name) in ["a.JPEG", "b,c.JPEG", "d\"e\nf.JPEG"].iter().enumerate() {
                let stored = StoredRow::new(&row(name, i), FP).unwrap();
                bytes.extend_from_slice(&journal_record(&stored));
            }
            bytes
        }

        fn load(bytes: &[u8]) -> Result<Prior> {
            let dir = tempfile::tempdir().unwrap();
            let files = RunFiles::new(dir.path().join("p.csv"));
            std::fs::write(&files.journal, bytes).unwrap();
            Prior::load(&files, &identity())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Arbitrary bytes never panic. Behind a valid header they are never an error
            /// (damaged records are a cut tail, predicted again); without one, the error names
            /// the journal and line 1.
            #[test]
            fn arbitrary_bytes_never_panic(
                with_header in any::<bool>(),
                body in proptest::collection::vec(any::<u8>(), 0..400),
            ) {
                let mut bytes = if with_header { identity().header().into_bytes() } else { Vec::new() };
                bytes.extend_from_slice(&body);
                match load(&bytes) {
                    Ok(prior) => {
                        prop_assert!(with_header);
                        prop_assert_eq!(prior.rows.is_empty(), true);
                        prop_assert_eq!(prior.cut.is_some(), !body.is_empty());
                    }
                    Err(err) => {
                        prop_assert!(!with_header, "{}", err);
                        let text = err.to_string();
                        prop_assert!(text.contains("p.journal:1:"), "{}", text);
                    }
                }
            }

            /// A valid journal cut anywhere, or with a byte changed or inserted, never panics and
            /// never yields a row that was not written: every row read is one of the originals.
            #[test]
            fn damaged_journals_yield_only_written_rows(
                cut in 0usize..400,
                at in 0usize..400,
                byte in any::<u8>(),
                insert in any::<bool>(),
            ) {
                let original = valid_journal();
                let good = Prior::load_rows_for_test(&original);
                let mut bytes = original.clone();
                let at = at % bytes.len();
                if insert { bytes.insert(at, byte) } else { bytes[at] = byte }
                bytes.truncate(cut.max(1).min(bytes.len()));
                if let Ok(prior) = load(&bytes) {
                    for row in &prior.rows {
                        prop_assert!(good.contains(row), "{:?} was never written", row);
                    }
                }
            }
        }
    }
}
