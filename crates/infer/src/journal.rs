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
//! ([`PredictionsWriter::resume`]) and those images are predicted again. When an image appears
//! twice the later record wins (an image changed on disk and predicted again).
//!
//! At the end, [`PredictionsWriter::finish`] writes the CSV atomically, rows sorted by file
//! name, so an interrupted and resumed run ends with the same bytes as an uninterrupted one;
//! the journal is then rewritten compacted (one record per image, in name order) and kept: it
//! is what a later `--resume` checks the image folder against.
//!
//! # Memory
//!
//! No row is held in memory: the writer keeps the offset of each image's latest record
//! (8 bytes an image), a resume scans the journal for them, and the CSV is written by reading
//! the records back in name order. Resuming a run over ImageNet's 1.28 M training images takes
//! 257 MiB in all (BENCHMARKS.md).

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use imagenetx_dataset::{PredictionRow, PredictionWriter, TOP_K, format_row};
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};

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

    /// The prediction it stores, as inference gave it (for scoring a run read back).
    pub fn top_k(&self) -> crate::TopK {
        crate::TopK {
            classes: self.classes().iter().map(|&c| c as usize).collect(),
            probabilities: self.probabilities().to_vec(),
        }
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
        format_row(&self.file_name, self.classes(), self.probabilities())
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

/// Marks an image without a journal record.
const NONE: u64 = u64::MAX;

/// The images of a run as the journal sees them: a function giving each image's name (the key
/// of predictions) by its index in the caller's list, and the indices sorted by name — to find
/// an image by name, and to write rows sorted. Four bytes an image.
pub struct ImageKeys<'a> {
    len: usize,
    name: Box<dyn Fn(usize) -> &'a str + Send + Sync + 'a>,
    sorted: Vec<u32>,
}

impl std::fmt::Debug for ImageKeys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageKeys")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<'a> ImageKeys<'a> {
    /// The keys of `len` images, image `i` named `name(i)` (names must be distinct, as image
    /// discovery guarantees; of equal names the first is found).
    pub fn new(len: usize, name: impl Fn(usize) -> &'a str + Send + Sync + 'a) -> Self {
        let mut sorted: Vec<u32> = (0..len as u32).collect();
        sorted.sort_unstable_by(|&a, &b| name(a as usize).cmp(name(b as usize)).then(a.cmp(&b)));
        ImageKeys {
            len,
            name: Box::new(name),
            sorted,
        }
    }

    /// How many images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The name of image `i`.
    pub fn name(&self, i: usize) -> &'a str {
        (self.name)(i)
    }

    /// The image named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        let at = self
            .sorted
            .partition_point(|&i| (self.name)(i as usize) < name);
        let i = *self.sorted.get(at)? as usize;
        ((self.name)(i) == name).then_some(i)
    }

    /// The images in name order.
    pub fn in_name_order(&self) -> impl Iterator<Item = usize> + '_ {
        self.sorted.iter().map(|&i| i as usize)
    }
}

/// Reads journal records one at a time, sequentially or at an offset.
struct JournalReader {
    path: PathBuf,
    reader: BufReader<File>,
    total: u64,
    /// Offset of the next record.
    offset: u64,
    /// Line of the next record.
    line: u64,
    record: Vec<u8>,
    chunk: Vec<u8>,
}

/// What [`JournalReader::next`] found.
enum Next {
    Record { offset: u64, row: StoredRow },
    End,
    Cut(CutTail),
}

impl JournalReader {
    /// Opens a journal and checks its header (and, with `identity`, that it was made by that
    /// model and preprocessing). `None` when there is no journal.
    fn open(path: &Path, identity: Option<&JournalIdentity>) -> Result<Option<Self>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(Error::io(path, err)),
        };
        let total = file.metadata().map_err(|err| Error::io(path, err))?.len();
        // 16 KiB: records are read in order, and sometimes at random (a journal of several
        // resumed runs), where a large buffer would be refilled for each record.
        let mut reader = BufReader::with_capacity(1 << 14, file);
        let mut header = Vec::new();
        reader
            .by_ref()
            .take(4096)
            .read_until(b'\n', &mut header)
            .map_err(|err| Error::io(path, err))?;
        check_header(path, &header, identity)?;
        Ok(Some(JournalReader {
            path: path.to_path_buf(),
            reader,
            total,
            offset: header.len() as u64,
            line: 2,
            record: Vec::new(),
            chunk: Vec::new(),
        }))
    }

    /// Opens a journal this run wrote or must read (its absence is an error).
    fn existing(path: &Path, identity: &JournalIdentity) -> Result<Self> {
        Self::open(path, Some(identity))?
            .ok_or_else(|| Error::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)))
    }

    /// The next record; a record that is cut short or fails its check ends the journal.
    fn next(&mut self) -> Result<Next> {
        let start = self.offset;
        let line = self.line;
        self.record.clear();
        loop {
            self.chunk.clear();
            let n = self
                .reader
                .by_ref()
                .take(MAX_RECORD as u64)
                .read_until(b'\n', &mut self.chunk)
                .map_err(|err| Error::io(&self.path, err))?;
            if n == 0 {
                break;
            }
            self.offset += n as u64;
            self.line += 1;
            self.record.extend_from_slice(&self.chunk);
            if !self.chunk.ends_with(b"\n") || self.record.len() > MAX_RECORD {
                break;
            }
            if let Some(row) = verified(&self.record) {
                return Ok(Next::Record { offset: start, row });
            }
        }
        if self.record.is_empty() {
            Ok(Next::End)
        } else {
            Ok(Next::Cut(CutTail {
                line,
                bytes: self.total.saturating_sub(start),
            }))
        }
    }

    /// The record at `offset` (one this process found or wrote); anything else there is an
    /// error naming the journal.
    fn at(&mut self, offset: u64) -> Result<StoredRow> {
        // Relative, so that a record already in the buffer (the next one, when records are
        // read in file order) costs no system call.
        let delta = i64::try_from(offset).unwrap_or(i64::MAX)
            - i64::try_from(self.offset).unwrap_or(i64::MAX);
        self.reader
            .seek_relative(delta)
            .map_err(|err| Error::io(&self.path, err))?;
        self.offset = offset;
        match self.next()? {
            Next::Record { row, .. } => Ok(row),
            Next::End | Next::Cut(_) => Err(Error::Csv {
                path: self.path.clone(),
                line: 0,
                message: format!(
                    "the record at byte {offset} reads back damaged (was the journal changed by another program?)"
                ),
            }),
        }
    }
}

/// Checks a journal's first line.
fn check_header(path: &Path, header: &[u8], identity: Option<&JournalIdentity>) -> Result<()> {
    let bad_header = |message: String| Error::Csv {
        path: path.to_path_buf(),
        line: 1,
        message,
    };
    let text = String::from_utf8_lossy(header);
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
        for (what, recorded, now) in [
            ("model", words[2], &identity.model_sha256),
            ("preprocessing", words[3], &identity.preprocessing_sha256),
        ] {
            if recorded != now {
                return Err(Error::Mismatch {
                    path: path.to_path_buf(),
                    what,
                    recorded: recorded.to_string(),
                    now: now.clone(),
                });
            }
        }
    }
    Ok(())
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
    // Most records need no CSV quoting: split them directly (a CSV reader per record costs
    // more than the rest of the parsing).
    if !body.contains(&b'"') {
        let text = std::str::from_utf8(body).ok()?;
        let fields: Vec<&str> = text.split(',').collect();
        return if fields.len() == 7 {
            parse_fields(&fields)
        } else {
            None
        };
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body);
    let record = reader.records().next()?.ok()?;
    let fields: Vec<&str> = record.iter().collect();
    if fields.len() != 7 {
        return None;
    }
    parse_fields(&fields)
}

/// A row from a record's seven fields.
fn parse_fields(record: &[&str]) -> Option<StoredRow> {
    let fingerprint = match (record[1], record[2]) {
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
///
/// Rows are not held in memory: the writer keeps, per image, the offset of its latest journal
/// record (8 bytes an image), and reads the records back to write the CSV.
#[derive(Debug)]
pub struct PredictionsWriter {
    files: RunFiles,
    identity: JournalIdentity,
    journal: BufWriter<File>,
    /// Where the next record goes.
    position: u64,
    /// Per image: the offset of its latest record, or [`NONE`].
    offsets: Vec<u64>,
    rows: usize,
    policy: CheckpointPolicy,
    pending: usize,
    last_checkpoint: Instant,
    checkpoints: u64,
}

impl PredictionsWriter {
    /// Starts a fresh run of `files` over `images` images: the journal is replaced,
    /// atomically, by an empty one (its header).
    pub fn start(
        files: &RunFiles,
        identity: JournalIdentity,
        policy: CheckpointPolicy,
        images: usize,
    ) -> Result<Self> {
        let header = identity.header();
        write_atomic(&files.journal, |out: &mut dyn Write| {
            out.write_all(header.as_bytes())
        })?;
        Self::open(files, identity, policy, vec![NONE; images], 0)
    }

    fn open(
        files: &RunFiles,
        identity: JournalIdentity,
        policy: CheckpointPolicy,
        offsets: Vec<u64>,
        rows: usize,
    ) -> Result<Self> {
        let file = OpenOptions::new()
            .append(true)
            .open(&files.journal)
            .map_err(|err| Error::io(&files.journal, err))?;
        let position = file
            .metadata()
            .map_err(|err| Error::io(&files.journal, err))?
            .len();
        Ok(PredictionsWriter {
            files: files.clone(),
            identity,
            journal: BufWriter::with_capacity(1 << 16, file),
            position,
            offsets,
            rows,
            policy,
            pending: 0,
            last_checkpoint: Instant::now(),
            checkpoints: 0,
        })
    }

    /// What an earlier run of `files` left: a journal, only a predictions CSV (an older run,
    /// or a deleted journal), or nothing.
    pub fn prior_source(files: &RunFiles) -> PriorSource {
        if files.journal.exists() {
            PriorSource::Journal
        } else if files.predictions.exists() {
            PriorSource::PredictionsCsv
        } else {
            PriorSource::Nothing
        }
    }

    /// Continues an earlier run of `files` over the images `keys`: reads what it left (the
    /// journal, else the predictions CSV, whose rows have no fingerprints; a journal of
    /// another model or preprocessing is an error naming both), keeps the latest row of each
    /// image whose file is unchanged (`fingerprint(i)`, the image's size and mtime now, equals
    /// the recorded one), and replaces the journal, atomically, by one holding just those rows
    /// in name order. Returns the writer, what was found, and per image whether it must be
    /// predicted. Memory: 8 bytes an image, whatever the journal's size.
    pub fn resume(
        files: &RunFiles,
        identity: JournalIdentity,
        policy: CheckpointPolicy,
        keys: &ImageKeys<'_>,
        fingerprint: impl Fn(usize) -> Option<Fingerprint>,
    ) -> Result<(Self, ResumePlan, Vec<bool>)> {
        let source = Self::prior_source(files);
        let mut plan = ResumePlan {
            source,
            ..ResumePlan::default()
        };
        if source == PriorSource::Nothing {
            let writer = Self::start(files, identity, policy, keys.len())?;
            return Ok((writer, plan, vec![true; keys.len()]));
        }
        if source == PriorSource::PredictionsCsv {
            csv_to_journal(files, &identity)?;
        }
        // Pass 1: the latest record of each image; rows of images no longer there.
        let mut latest = vec![NONE; keys.len()];
        let mut removed = std::collections::BTreeSet::new();
        let mut reader = JournalReader::existing(&files.journal, &identity)?;
        loop {
            match reader.next()? {
                Next::Record { offset, row } => match keys.find(&row.file_name) {
                    Some(i) => latest[i] = offset,
                    None => {
                        removed.insert(row.file_name.to_string());
                    }
                },
                Next::End => break,
                Next::Cut(cut) => {
                    plan.cut = Some(cut);
                    break;
                }
            }
        }
        plan.removed = removed.into_iter().collect();
        // Pass 2: unchanged images keep their rows, written in name order to the new journal.
        let mut todo = vec![true; keys.len()];
        let offsets = write_compacted(
            &files.journal,
            &identity,
            keys,
            &mut reader,
            &latest,
            |i, row| {
                match row.fingerprint {
                    None => plan.unchecked += 1,
                    Some(then) if Some(then) == fingerprint(i) => {}
                    Some(_) => {
                        plan.changed.push(row.file_name.to_string());
                        return false;
                    }
                }
                todo[i] = false;
                plan.kept += 1;
                true
            },
        )?;
        plan.new = todo.iter().filter(|&&t| t).count() - plan.changed.len();
        let kept = plan.kept;
        let writer = Self::open(files, identity, policy, offsets, kept)?;
        Ok((writer, plan, todo))
    }

    /// The output's files.
    pub fn files(&self) -> &RunFiles {
        &self.files
    }

    /// Rows in the journal (kept and new).
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

    /// Appends the row of image `image` to the journal; makes a checkpoint when the policy
    /// says so and returns whether it did. A row whose classes do not fit the predictions CSV
    /// is an error.
    pub fn push(
        &mut self,
        image: usize,
        row: &PredictionRow,
        fingerprint: Option<Fingerprint>,
    ) -> Result<bool> {
        let stored = StoredRow::new(row, fingerprint).ok_or_else(|| Error::Csv {
            path: self.files.journal.clone(),
            line: 0,
            message: format!(
                "{}: expected 1 to {TOP_K} classes below 2^32 with as many probabilities",
                row.file_name
            ),
        })?;
        let Some(slot) = self.offsets.get_mut(image) else {
            return Err(Error::Csv {
                path: self.files.journal.clone(),
                line: 0,
                message: format!(
                    "{}: image {image} is not one of the run's images",
                    row.file_name
                ),
            });
        };
        let bytes = journal_record(&stored);
        self.journal
            .write_all(&bytes)
            .map_err(|err| Error::io(&self.files.journal, err))?;
        if *slot == NONE {
            self.rows += 1;
        }
        *slot = self.position;
        self.position += bytes.len() as u64;
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

    /// Finishes: a last checkpoint, the predictions CSV written atomically (each image's
    /// latest row, sorted by file name; `keys` are the images the writer was made for), then
    /// the journal rewritten compacted. Returns the rows, readable by image.
    pub fn finish(mut self, keys: &ImageKeys<'_>) -> Result<Rows> {
        self.checkpoint()?;
        let mut reader = JournalReader::existing(&self.files.journal, &self.identity)?;
        let offsets = &self.offsets;
        write_atomic(&self.files.predictions, |out: &mut dyn Write| {
            let mut csv = PredictionWriter::new(out)?;
            for i in keys.in_name_order() {
                if offsets[i] != NONE {
                    let row = reader.at(offsets[i]).map_err(std::io::Error::other)?;
                    csv.write_parts(&row.file_name, row.classes(), row.probabilities())?;
                }
            }
            csv.flush()?;
            crate::pause::point("final-csv");
            Ok(())
        })?;
        crate::pause::point("after-csv");
        let compacted = write_compacted(
            &self.files.journal,
            &self.identity,
            keys,
            &mut reader,
            offsets,
            |_, _| true,
        )?;
        crate::pause::point("after-journal");
        let reader = JournalReader::existing(&self.files.journal, &self.identity)?;
        Ok(Rows {
            reader,
            offsets: compacted,
        })
    }
}

/// The rows of a finished run, read by image from the compacted journal (8 bytes an image in
/// memory).
#[derive(Debug)]
pub struct Rows {
    reader: JournalReader,
    offsets: Vec<u64>,
}

impl std::fmt::Debug for JournalReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Rows {
    /// The row of image `i`, if it has one.
    pub fn get(&mut self, i: usize) -> Result<Option<StoredRow>> {
        match self.offsets.get(i) {
            Some(&offset) if offset != NONE => self.reader.at(offset).map(Some),
            _ => Ok(None),
        }
    }

    /// How many images have a row.
    pub fn len(&self) -> usize {
        self.offsets.iter().filter(|&&o| o != NONE).count()
    }

    /// Whether no image has a row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Replaces the journal at `path`, atomically, by one holding the records at `offsets` (read
/// through `reader`, [`NONE`] for none) that `keep` accepts, in name order; returns their
/// offsets in the new journal.
fn write_compacted(
    path: &Path,
    identity: &JournalIdentity,
    keys: &ImageKeys<'_>,
    reader: &mut JournalReader,
    offsets: &[u64],
    mut keep: impl FnMut(usize, &StoredRow) -> bool,
) -> Result<Vec<u64>> {
    let mut compacted = vec![NONE; offsets.len()];
    let header = identity.header();
    write_atomic(path, |out: &mut dyn Write| {
        out.write_all(header.as_bytes())?;
        let mut position = header.len() as u64;
        for i in keys.in_name_order() {
            if offsets[i] == NONE {
                continue;
            }
            let row = reader.at(offsets[i]).map_err(std::io::Error::other)?;
            if keep(i, &row) {
                let bytes = journal_record(&row);
                out.write_all(&bytes)?;
                compacted[i] = position;
                position += bytes.len() as u64;
            }
        }
        Ok(())
    })?;
    Ok(compacted)
}

/// Turns an older run's predictions CSV (no journal) into a journal whose rows have no
/// fingerprints.
fn csv_to_journal(files: &RunFiles, identity: &JournalIdentity) -> Result<()> {
    let rows = imagenetx_dataset::read_prediction_rows(&files.predictions)?;
    let header = identity.header();
    let mut bad = None;
    write_atomic(&files.journal, |out: &mut dyn Write| {
        out.write_all(header.as_bytes())?;
        for (i, row) in rows.iter().enumerate() {
            match StoredRow::new(row, None) {
                Some(stored) => out.write_all(&journal_record(&stored))?,
                None => {
                    bad = Some((i as u64 + 2, format!("{:?}", row.classes)));
                    return Err(std::io::Error::other("bad row"));
                }
            }
        }
        Ok(())
    })
    .map_err(|err| match bad.take() {
        Some((line, classes)) => Error::Csv {
            path: files.predictions.clone(),
            line,
            message: format!("expected 1 to {TOP_K} classes below 2^32, got {classes}"),
        },
        None => err,
    })
}

/// What `--resume` found: how the rows an earlier run left relate to the images now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePlan {
    /// Where the rows came from.
    pub source: PriorSource,
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
    /// The journal's records cut short by the interruption (dropped, predicted again).
    pub cut: Option<CutTail>,
}

impl Default for ResumePlan {
    fn default() -> Self {
        ResumePlan {
            source: PriorSource::Nothing,
            kept: 0,
            unchecked: 0,
            changed: Vec::new(),
            new: 0,
            removed: Vec::new(),
            cut: None,
        }
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
    const OTHER: Option<Fingerprint> = Some(Fingerprint {
        size: 11,
        mtime_ns: -5,
    });

    fn policy(rows: usize) -> CheckpointPolicy {
        CheckpointPolicy {
            rows,
            interval: Duration::from_secs(3600),
        }
    }

    /// Resumes over `names` with every image's fingerprint `FP` except those in `changed`.
    fn resume(
        files: &RunFiles,
        names: &[&str],
        changed: &[&str],
    ) -> Result<(PredictionsWriter, ResumePlan, Vec<bool>)> {
        let names = names.to_vec();
        let keys = ImageKeys::new(names.len(), |i| names[i]);
        PredictionsWriter::resume(files, identity(), policy(1000), &keys, |i| {
            if changed.contains(&names[i]) {
                OTHER
            } else {
                FP
            }
        })
    }

    #[test]
    fn files_of_an_output() {
        let files = RunFiles::new("out/m.predictions.csv");
        assert_eq!(files.record, Path::new("out/m.predictions.run.json"));
        assert_eq!(files.journal, Path::new("out/m.predictions.journal"));
        assert_eq!(files.lock, Path::new("out/.m.predictions.csv.lock"));
        assert_eq!(RunFiles::new("p.csv").folder(), Path::new("."));
    }

    #[test]
    fn keys_find_by_name_and_list_in_name_order() {
        let names = ["c", "a", "b"];
        let keys = ImageKeys::new(3, |i| names[i]);
        assert_eq!(keys.find("b"), Some(2));
        assert_eq!(keys.find("a"), Some(1));
        assert_eq!(keys.find("d"), None);
        assert_eq!(keys.find(""), None);
        assert_eq!(keys.in_name_order().collect::<Vec<_>>(), [1, 2, 0]);
    }

    #[test]
    fn killed_runs_resume_and_cut_records_are_redone() {
        let dir = tempfile::tempdir().unwrap();
        let files = RunFiles::new(dir.path().join("p.csv"));
        let names = ["b,\"odd\"\nname.JPEG", "a.JPEG", "c.JPEG"];
        let mut writer = PredictionsWriter::start(&files, identity(), policy(2), 3).unwrap();
        assert!(!writer.push(0, &row(names[0], 1), FP).unwrap());
        assert!(writer.push(1, &row(names[1], 2), FP).unwrap());
        writer.push(2, &row(names[2], 3), FP).unwrap();
        drop(writer); // killed: c was never checkpointed (BufWriter's drop still wrote it)
        let bytes = std::fs::read(&files.journal).unwrap();
        let (_, plan, todo) = resume(&files, &names, &[]).unwrap();
        assert_eq!((plan.kept, plan.cut), (3, None));
        assert_eq!(todo, [false, false, false]);
        // Cut inside the last record (c's), wherever: it is redone, the others kept.
        for cut in [bytes.len() - 1, bytes.len() - 3, bytes.len() - 12] {
            std::fs::write(&files.journal, &bytes[..cut]).unwrap();
            let (_, plan, todo) = resume(&files, &names, &[]).unwrap();
            assert_eq!(plan.kept, 2, "cut at {cut}");
            assert_eq!(todo, [false, false, true], "cut at {cut}");
            assert_eq!(
                plan.cut.expect("cut").line,
                5,
                "the first name spans two lines"
            );
        }
        // A flipped byte fails the record's check.
        let mut flipped = bytes.clone();
        let at = flipped.len() - 15;
        flipped[at] ^= 1;
        std::fs::write(&files.journal, &flipped).unwrap();
        let (_, plan, _) = resume(&files, &names, &[]).unwrap();
        assert_eq!(plan.kept, 2);
    }

    #[test]
    fn finish_sorts_keeps_the_latest_and_compacts() {
        let dir = tempfile::tempdir().unwrap();
        let files = RunFiles::new(dir.path().join("p.csv"));
        let names = ["z.JPEG", "a.JPEG", "m.JPEG"];
        let keys = ImageKeys::new(3, |i| names[i]);
        let mut writer = PredictionsWriter::start(&files, identity(), policy(1000), 3).unwrap();
        writer.push(0, &row("z.JPEG", 1), FP).unwrap();
        writer.push(1, &row("a.JPEG", 2), FP).unwrap();
        writer.push(0, &row("z.JPEG", 7), FP).unwrap();
        assert_eq!(writer.len(), 2);
        let mut rows = writer.finish(&keys).unwrap();
        let text = std::fs::read_to_string(&files.predictions).unwrap();
        assert_eq!(
            text,
            "file_name,predicted_class,predicted_probability,top5_classes,top5_probabilities\n\
             a.JPEG,2,0.5,2 2 3 4 5,0.5 0.2 0.1 0.30000000000000004 0.00000000000000000001\n\
             z.JPEG,7,0.5,7 2 3 4 5,0.5 0.2 0.1 0.30000000000000004 0.00000000000000000001\n"
        );
        let journal = std::fs::read_to_string(&files.journal).unwrap();
        assert_eq!(journal.lines().count(), 3, "{journal}");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.get(0).unwrap().unwrap().to_row(), row("z.JPEG", 7));
        assert_eq!(rows.get(1).unwrap().unwrap().to_row(), row("a.JPEG", 2));
        assert_eq!(rows.get(2).unwrap(), None);
        assert_eq!(
            imagenetx_dataset::read_prediction_rows(&files.predictions).unwrap()[1],
            row("z.JPEG", 7)
        );
    }

    #[test]
    fn other_model_or_preprocessing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = RunFiles::new(dir.path().join("p.csv"));
        PredictionsWriter::start(&files, identity(), policy(1000), 0).unwrap();
        let mut other = identity();
        other.preprocessing_sha256 = "cc".into();
        let keys = ImageKeys::new(0, |_| "");
        let err = PredictionsWriter::resume(&files, other, policy(1), &keys, |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("preprocessing") && err.contains("bb") && err.contains("cc"),
            "{err}"
        );
        std::fs::write(&files.journal, "not a journal\n").unwrap();
        let err = resume(&files, &[], &[]).unwrap_err().to_string();
        assert!(
            err.contains("p.journal:1: expected a journal header"),
            "{err}"
        );
    }

    #[test]
    fn resume_keeps_unchanged_redoes_changed_and_drops_removed() {
        let dir = tempfile::tempdir().unwrap();
        let files = RunFiles::new(dir.path().join("p.csv"));
        let before = ["keep.JPEG", "changed.JPEG", "gone.JPEG"];
        let mut writer = PredictionsWriter::start(&files, identity(), policy(1000), 3).unwrap();
        for (i, name) in before.iter().enumerate() {
            writer.push(i, &row(name, i), FP).unwrap();
        }
        writer.finish(&ImageKeys::new(3, |i| before[i])).unwrap();
        let now = ["new.JPEG", "changed.JPEG", "keep.JPEG"];
        let (writer, plan, todo) = resume(&files, &now, &["changed.JPEG"]).unwrap();
        assert_eq!(plan.source, PriorSource::Journal);
        assert_eq!(plan.kept, 1);
        assert_eq!(plan.changed, ["changed.JPEG"]);
        assert_eq!(plan.removed, ["gone.JPEG"]);
        assert_eq!(plan.new, 1);
        assert_eq!(todo, [true, true, false]);
        assert_eq!(writer.len(), 1);
        // The journal now holds the kept row only.
        let journal = std::fs::read_to_string(&files.journal).unwrap();
        assert_eq!(journal.lines().count(), 2, "{journal}");
        assert!(journal.contains("keep.JPEG"));
    }

    #[test]
    fn an_older_runs_csv_is_resumed_without_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        let files = RunFiles::new(dir.path().join("p.csv"));
        std::fs::write(
            &files.predictions,
            "file_name,predicted_class,predicted_probability,top5_classes,top5_probabilities\n\
             a.JPEG,2,0.5,2 2 3 4 5,0.5 0.2 0.1 0.30000000000000004 0.00000000000000000001\n",
        )
        .unwrap();
        let (_, plan, todo) = resume(&files, &["b.JPEG", "a.JPEG"], &["a.JPEG"]).unwrap();
        assert_eq!(plan.source, PriorSource::PredictionsCsv);
        assert_eq!((plan.kept, plan.unchecked), (1, 1));
        assert_eq!(todo, [true, false]);
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

        const NAMES: [&str; 3] = ["a.JPEG", "b,c.JPEG", "d\"e\nf.JPEG"];

        fn valid_journal() -> Vec<u8> {
            let mut bytes = identity().header().into_bytes();
            for (i, name) in NAMES.iter().enumerate() {
                let stored = StoredRow::new(&row(name, i), FP).unwrap();
                bytes.extend_from_slice(&journal_record(&stored));
            }
            bytes
        }

        /// Resumes over NAMES from a journal holding `bytes`; returns the rows it kept.
        fn kept(bytes: &[u8]) -> Result<Vec<PredictionRow>> {
            let dir = tempfile::tempdir().unwrap();
            let files = RunFiles::new(dir.path().join("p.csv"));
            std::fs::write(&files.journal, bytes).unwrap();
            let keys = ImageKeys::new(NAMES.len(), |i| NAMES[i]);
            let (writer, _, _) =
                PredictionsWriter::resume(&files, identity(), policy(1000), &keys, |_| FP)?;
            let mut rows = writer.finish(&keys)?;
            Ok((0..NAMES.len())
                .filter_map(|i| rows.get(i).unwrap().map(|r| r.to_row()))
                .collect())
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
                match kept(&bytes) {
                    Ok(rows) => {
                        prop_assert!(with_header);
                        prop_assert!(rows.is_empty());
                    }
                    Err(err) => {
                        prop_assert!(!with_header, "{}", err);
                        let text = err.to_string();
                        prop_assert!(text.contains("p.journal:1:"), "{}", text);
                    }
                }
            }

            /// A valid journal cut anywhere, or with a byte changed or inserted, never panics
            /// and never yields a row that was not written.
            #[test]
            fn damaged_journals_yield_only_written_rows(
                cut in 0usize..400,
                at in 0usize..400,
                byte in any::<u8>(),
                insert in any::<bool>(),
            ) {
                let original = valid_journal();
                let good: Vec<PredictionRow> =
                    NAMES.iter().enumerate().map(|(i, n)| row(n, i)).collect();
                prop_assert_eq!(kept(&original).unwrap(), good.clone());
                let mut bytes = original.clone();
                let at = at % bytes.len();
                if insert { bytes.insert(at, byte) } else { bytes[at] = byte }
                bytes.truncate(cut.max(1).min(bytes.len()));
                if let Ok(rows) = kept(&bytes) {
                    for r in &rows {
                        prop_assert!(good.contains(r), "{:?} was never written", r);
                    }
                }
            }
        }
    }
}
