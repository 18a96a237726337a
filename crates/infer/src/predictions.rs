//! The predictions CSV and its incremental, checkpointed writer (see [`PredictionsWriter`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::classify::{Prediction, TOP_K};
use crate::error::{Error, Result};

/// The CSV header, in order.
pub const HEADER: [&str; 5] = [
    "file_name",
    "predicted_class",
    "predicted_probability",
    "top5_classes",
    "top5_probabilities",
];

/// One row of the predictions CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRow {
    /// Base file name of the image.
    pub file_name: String,
    /// Top-k classes, most probable first (the first is `predicted_class`).
    pub classes: Vec<usize>,
    /// Their probabilities (the first is `predicted_probability`).
    pub probabilities: Vec<f64>,
}

impl PredictionRow {
    /// A row for the image at `path` (only its base name is kept).
    pub fn new(path: &Path, prediction: &Prediction) -> Self {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.to_string_lossy().into_owned());
        PredictionRow {
            file_name,
            classes: prediction.classes.clone(),
            probabilities: prediction.probabilities.clone(),
        }
    }

    fn record(&self) -> [String; 5] {
        let join_classes = self
            .classes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        let mut probabilities = String::new();
        for (i, p) in self.probabilities.iter().enumerate() {
            if i > 0 {
                probabilities.push(' ');
            }
            let _ = write!(probabilities, "{p}");
        }
        [
            self.file_name.clone(),
            self.classes
                .first()
                .map(usize::to_string)
                .unwrap_or_default(),
            self.probabilities
                .first()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            join_classes,
            probabilities,
        ]
    }
}

/// When [`PredictionsWriter::push`] writes a checkpoint.
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

/// Writes a predictions CSV incrementally with periodic atomic checkpoints.
///
/// # Format
///
/// The ImageNet-X toolkit's columns, then the top-5:
///
/// ```text
/// file_name,predicted_class,predicted_probability,top5_classes,top5_probabilities
/// ILSVRC2012_val_00000001.JPEG,65,0.8125,65 62 58 54 63,0.8125 0.1 0.05 0.02 0.01
/// ```
///
/// `file_name` is the image's base name; classes are ImageNet indices 0..999; the top-5
/// columns are space-separated, most probable first; floats are written with Rust's `{}`
/// for `f64` (the shortest decimal that reads back to the same value).
///
/// # Incremental writing and checkpoints
///
/// [`PredictionsWriter`] keeps every row in memory, keyed and sorted by file name (so the file
/// does not depend on the order batches finish in, and a re-predicted image replaces its row).
/// [`PredictionsWriter::push`] adds rows; whenever [`CheckpointPolicy::rows`] rows or
/// [`CheckpointPolicy::interval`] have passed since the last checkpoint, the *whole* file is
/// rewritten atomically (temporary file in the same folder, fsync, rename). The file on disk
/// is therefore always a complete, valid CSV: a killed run loses at most the rows pushed since
/// the last checkpoint, and `--resume` ([`finished_files`]) skips everything in it. Rewriting
/// costs O(rows) per checkpoint (about 5 MB for the 50,000 ImageNet validation images), which
/// is small next to inference with the default policy of one checkpoint per 5,000 rows or 30 s.
/// [`PredictionsWriter::finish`] writes the final file.
#[derive(Debug)]
pub struct PredictionsWriter {
    path: PathBuf,
    rows: BTreeMap<String, PredictionRow>,
    policy: CheckpointPolicy,
    pending: usize,
    last_checkpoint: Instant,
}

impl PredictionsWriter {
    /// A writer for `path` starting empty (an existing file is replaced at the first checkpoint).
    pub fn create(path: impl Into<PathBuf>, policy: CheckpointPolicy) -> Self {
        PredictionsWriter {
            path: path.into(),
            rows: BTreeMap::new(),
            policy,
            pending: 0,
            last_checkpoint: Instant::now(),
        }
    }

    /// A writer that keeps the rows already in `path` (for `--resume`); a missing file is empty.
    pub fn resume(path: impl Into<PathBuf>, policy: CheckpointPolicy) -> Result<Self> {
        let mut writer = PredictionsWriter::create(path, policy);
        if writer.path.exists() {
            for row in read_predictions(&writer.path)? {
                writer.rows.insert(row.file_name.clone(), row);
            }
        }
        Ok(writer)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows held (including resumed ones).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether a row for `file_name` is held.
    pub fn contains(&self, file_name: &str) -> bool {
        self.rows.contains_key(file_name)
    }

    /// Adds a row (replacing an earlier row for the same file); writes a checkpoint when the
    /// policy says so. Returns whether it did.
    pub fn push(&mut self, row: PredictionRow) -> Result<bool> {
        self.rows.insert(row.file_name.clone(), row);
        self.pending += 1;
        if self.pending >= self.policy.rows
            || self.last_checkpoint.elapsed() >= self.policy.interval
        {
            self.checkpoint()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Writes every row now, atomically.
    pub fn checkpoint(&mut self) -> Result<()> {
        let rows = &self.rows;
        write_atomic(&self.path, |out: &mut dyn Write| {
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(HEADER)?;
            for row in rows.values() {
                csv.write_record(row.record())?;
            }
            csv.flush()
        })?;
        self.pending = 0;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// Writes the final file and returns its path.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.checkpoint()?;
        Ok(self.path)
    }
}

/// Reads a predictions CSV written by [`PredictionsWriter`]. The top-5 columns are optional,
/// so the ImageNet-X toolkit's three-column files read too.
pub fn read_predictions(path: &Path) -> Result<Vec<PredictionRow>> {
    let csv_error = |line: u64, message: String| Error::Csv {
        path: path.to_path_buf(),
        line,
        message,
    };
    let file = std::fs::File::open(path).map_err(|err| Error::io(path, err))?;
    let mut reader = csv::Reader::from_reader(std::io::BufReader::new(file));
    let headers = reader
        .headers()
        .map_err(|err| csv_error(1, err.to_string()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (Some(file_col), Some(class_col), Some(prob_col)) =
        (column(HEADER[0]), column(HEADER[1]), column(HEADER[2]))
    else {
        return Err(csv_error(
            1,
            format!(
                "expected columns {}, got {}",
                HEADER[..3].join(","),
                headers.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    };
    let top_cols = (column(HEADER[3]), column(HEADER[4]));
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|err| {
            let line = err.position().map_or(0, |p| p.line());
            csv_error(line, err.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or("");
        let class: usize = field(class_col).parse().map_err(|_| {
            csv_error(
                line,
                format!(
                    "predicted_class: expected a class index, got {:?}",
                    field(class_col)
                ),
            )
        })?;
        let probability: f64 = field(prob_col).parse().map_err(|_| {
            csv_error(
                line,
                format!(
                    "predicted_probability: expected a number, got {:?}",
                    field(prob_col)
                ),
            )
        })?;
        let (classes, probabilities) = match top_cols {
            (Some(c), Some(p)) => {
                let classes = field(c)
                    .split_whitespace()
                    .map(str::parse)
                    .collect::<std::result::Result<Vec<usize>, _>>()
                    .map_err(|_| {
                        csv_error(
                            line,
                            format!("top5_classes: expected class indices, got {:?}", field(c)),
                        )
                    })?;
                let probabilities = field(p)
                    .split_whitespace()
                    .map(str::parse)
                    .collect::<std::result::Result<Vec<f64>, _>>()
                    .map_err(|_| {
                        csv_error(
                            line,
                            format!("top5_probabilities: expected numbers, got {:?}", field(p)),
                        )
                    })?;
                if classes.len() != probabilities.len()
                    || classes.len() > TOP_K
                    || classes.first() != Some(&class)
                {
                    return Err(csv_error(
                        line,
                        format!(
                            "top5 columns: expected up to {TOP_K} classes and as many probabilities, starting with predicted_class {class}; got {:?} and {:?}",
                            field(c),
                            field(p)
                        ),
                    ));
                }
                (classes, probabilities)
            }
            _ => (vec![class], vec![probability]),
        };
        rows.push(PredictionRow {
            file_name: field(file_col).to_owned(),
            classes,
            probabilities,
        });
    }
    Ok(rows)
}

/// File names already predicted in `path` (empty when the file does not exist), for `--resume`.
pub fn finished_files(path: &Path) -> Result<BTreeSet<String>> {
    if !path.exists() {
        return Ok(BTreeSet::new());
    }
    Ok(read_predictions(path)?
        .into_iter()
        .map(|row| row.file_name)
        .collect())
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

    #[test]
    fn writes_toolkit_columns_and_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("predictions.csv");
        let mut writer = PredictionsWriter::create(&path, CheckpointPolicy::default());
        let p = Prediction {
            classes: vec![7, 2, 3, 4, 5],
            probabilities: vec![0.5, 0.2, 0.1, 0.1 + 0.2, 1e-20],
        };
        writer
            .push(PredictionRow::new(
                Path::new("/data/val/n01440764/b.JPEG"),
                &p,
            ))
            .expect("push");
        writer.push(row("a,comma.JPEG", 1)).expect("push");
        writer.finish().expect("finish");
        let text = std::fs::read_to_string(&path).expect("read");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(HEADER.join(",").as_str()));
        assert_eq!(
            lines.next(),
            Some(
                "\"a,comma.JPEG\",1,0.5,1 2 3 4 5,0.5 0.2 0.1 0.30000000000000004 0.00000000000000000001"
            )
        );
        assert_eq!(
            lines.next(),
            Some("b.JPEG,7,0.5,7 2 3 4 5,0.5 0.2 0.1 0.30000000000000004 0.00000000000000000001")
        );
        let back = read_predictions(&path).expect("read back");
        assert_eq!(
            back,
            vec![
                row("a,comma.JPEG", 1),
                PredictionRow::new(Path::new("b.JPEG"), &p)
            ]
        );
        let done = finished_files(&path).expect("finished");
        assert!(done.contains("b.JPEG") && done.contains("a,comma.JPEG"));
    }

    #[test]
    fn checkpoints_by_rows_and_resumes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.csv");
        let policy = CheckpointPolicy {
            rows: 2,
            interval: Duration::from_secs(3600),
        };
        let mut writer = PredictionsWriter::create(&path, policy);
        assert!(!writer.push(row("1.JPEG", 1)).expect("push"));
        assert!(!path.exists());
        assert!(writer.push(row("2.JPEG", 2)).expect("push"));
        assert!(!writer.push(row("3.JPEG", 3)).expect("push"));
        drop(writer); // a killed run: row 3 was never checkpointed
        assert_eq!(finished_files(&path).expect("read").len(), 2);

        let mut resumed = PredictionsWriter::resume(&path, policy).expect("resume");
        assert!(resumed.contains("1.JPEG") && !resumed.contains("3.JPEG"));
        resumed.push(row("3.JPEG", 3)).expect("push");
        resumed.finish().expect("finish");
        assert_eq!(read_predictions(&path).expect("read").len(), 3);
    }

    #[test]
    fn toolkit_three_column_files_read_and_bad_rows_name_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.csv");
        std::fs::write(
            &path,
            "file_name,predicted_class,predicted_probability\nx.JPEG,3,0.25\n",
        )
        .expect("write");
        let rows = read_predictions(&path).expect("read");
        assert_eq!(rows[0].classes, vec![3]);
        std::fs::write(
            &path,
            "file_name,predicted_class,predicted_probability\nx.JPEG,cat,0.25\n",
        )
        .expect("write");
        let err = read_predictions(&path).expect_err("bad");
        assert!(
            err.to_string()
                .contains("p.csv:2: predicted_class: expected a class index"),
            "{err}"
        );
        std::fs::write(&path, "name,class\n").expect("write");
        let err = read_predictions(&path).expect_err("bad header");
        assert!(
            err.to_string()
                .contains("expected columns file_name,predicted_class,predicted_probability"),
            "{err}"
        );
    }
}
