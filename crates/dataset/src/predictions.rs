//! Prediction files: the paper toolkit's CSV format
//! (`file_name,predicted_class,predicted_probability`, extra columns allowed) and this
//! project's extension of it with the top-5 columns ([`rows`]).
//!
//! Two readers share the column lookup: [`read_predictions`] / [`parse_predictions`] take the
//! top-1 prediction of each row, range-checked and aligned with the annotated images, for the
//! analysis; [`read_prediction_rows`] takes whole rows with their top-k, as written by the
//! one writer, [`PredictionWriter`].

use std::collections::HashSet;
use std::fs::File;
use std::hash::BuildHasherDefault;
use std::path::{Path, PathBuf};

use imagenetx_vocab::Prediction;
use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::xxh3_64;

use crate::annotations::{AnnotatedSet, val_index_bytes};
use crate::labels::N_CLASSES;
use crate::{Error, Result};

pub mod rows;

pub use rows::{HEADER, PredictionRow, PredictionWriter, TOP_K, format_row, read_prediction_rows};

/// A predictions file and the model name it stands for (its file stem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictionFile {
    /// The model's name.
    pub model: String,
    /// The CSV file.
    pub path: PathBuf,
}

/// Expands the inputs: a file is taken as is, a folder contributes its `*.csv` files (not
/// recursive), in name order. Two files with the same stem are an error (the model name would
/// be ambiguous), as is a folder without CSV files.
pub fn collect_prediction_files(inputs: &[PathBuf]) -> Result<Vec<PredictionFile>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let entries = std::fs::read_dir(input).map_err(|e| Error::io(input, e))?;
            let mut found = Vec::new();
            for entry in entries {
                let path = entry.map_err(|e| Error::io(input, e))?.path();
                let is_csv = path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
                if is_csv && path.is_file() {
                    found.push(path);
                }
            }
            if found.is_empty() {
                return Err(Error::content(
                    input,
                    "folder holds no .csv prediction files",
                ));
            }
            found.sort();
            files.extend(found);
        } else if input.is_file() {
            files.push(input.clone());
        } else {
            return Err(Error::io(
                input,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            ));
        }
    }
    let mut by_model: FxHashMap<String, PathBuf> = FxHashMap::default();
    let mut out = Vec::with_capacity(files.len());
    for path in files {
        let model = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(other) = by_model.insert(model.clone(), path.clone()) {
            return Err(Error::content(
                &path,
                format!(
                    "model name {model:?} is also the name of {} (model names are file stems and must differ)",
                    other.display()
                ),
            ));
        }
        out.push(PredictionFile { model, path });
    }
    Ok(out)
}

/// A model's predictions aligned with the annotated images.
#[derive(Debug, Clone)]
pub struct AlignedPredictions {
    /// `predictions[i]` is the prediction for annotated image `i`.
    pub predictions: Vec<Option<Prediction>>,
    /// Rows in the file.
    pub rows: usize,
    /// Rows for images outside the annotated set (ignored by the analysis).
    pub unannotated: usize,
    /// Annotated images without a row.
    pub missing: usize,
    /// The first annotated image without a row, in annotation order.
    pub first_missing: Option<String>,
}

/// Reads a predictions CSV and aligns it with `set`. Errors, each naming `file:line`: a
/// missing column, a repeated `file_name`, a class outside 0..999, a probability that is not
/// a number in [0, 1]. With `strict`, annotated images without a prediction are an error too.
///
/// The file is read row by row: a row for an annotated image fills its slot, a row for any
/// other image is counted and dropped, so memory does not grow with the rows of unannotated
/// images. The same as [`parse_predictions`] then [`ParsedPredictions::align`].
pub fn read_predictions(
    path: &Path,
    set: &AnnotatedSet,
    strict: bool,
) -> Result<AlignedPredictions> {
    parse_predictions(path)?.align(set, strict)
}

/// Rows [`parse_predictions`] reads ahead, before the annotated set is known (about 40 bytes
/// each): all of a 50,000-row validation file, a bounded start of a larger one.
pub const PARSE_AHEAD_ROWS: usize = 1 << 17;

/// Largest validation number whose first line is kept in a table rather than hashed.
const VAL_TABLE: u32 = 1 << 20;

/// How a row names its image: by validation number (`ILSVRC2012_val_00000001.JPEG` → 0, the
/// common case, looked up without hashing) or by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowImage<'a> {
    Val(u32),
    Name(&'a str),
}

impl RowImage<'_> {
    /// The file name as written in the file.
    fn name(&self) -> String {
        match self {
            RowImage::Val(v) => crate::annotations::val_file_name(*v as usize),
            RowImage::Name(name) => (*name).to_string(),
        }
    }
}

/// A row read ahead of the annotated set (see [`PARSE_AHEAD_ROWS`]).
#[derive(Debug, Clone, PartialEq)]
enum AheadImage {
    Val(u32),
    Name(Box<str>),
}

#[derive(Debug, Clone, PartialEq)]
struct AheadRow {
    image: AheadImage,
    line: u32,
    prediction: Prediction,
}

/// A `u64` that is already a hash, used as its own hash.
#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// The row-by-row reader of a predictions CSV: checks each row's fields and that no image
/// has two rows.
struct RowReader {
    path: PathBuf,
    csv: csv::Reader<File>,
    record: csv::ByteRecord,
    c_name: usize,
    c_class: usize,
    c_prob: usize,
    width: usize,
    rows: usize,
    /// First line of each validation number below [`VAL_TABLE`] (0: not seen yet).
    first_val: Vec<u32>,
    /// 64-bit hashes of the other names seen: 9 bytes a name or so (about 150 MB for 12
    /// million names) instead of the names. A hash seen twice is confirmed against the file
    /// itself ([`first_line_of`]) before it is reported, so a hash collision costs a re-read,
    /// never a wrong error.
    seen: HashSet<u64, BuildHasherDefault<Prehashed>>,
    /// The file's size in bytes.
    size: u64,
}

/// Most names [`RowReader::reserve_for_rest`] makes room for at once (about 1.2 GB).
const MAX_RESERVE: u64 = 1 << 27;

/// The CSV settings of every read of a predictions file.
fn csv_reader(file: File) -> csv::Reader<File> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(file)
}

impl RowReader {
    fn open(path: &Path) -> Result<RowReader> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut csv = csv_reader(file);
        let header = csv
            .byte_headers()
            .map_err(|e| Error::parse(path, 1, format!("unreadable CSV header: {e}")))?
            .clone();
        let columns = rows::header_columns(&header);
        let column = |i: usize| {
            let name = HEADER[i];
            columns[i].ok_or_else(|| {
                Error::parse(
                    path,
                    1,
                    format!(
                        "missing column {name:?}: expected a header with file_name,predicted_class,predicted_probability, got {}",
                        header
                            .iter()
                            .map(String::from_utf8_lossy)
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                )
            })
        };
        Ok(RowReader {
            c_name: column(0)?,
            c_class: column(1)?,
            c_prob: column(2)?,
            width: header.len(),
            path: path.to_path_buf(),
            csv,
            record: csv::ByteRecord::new(),
            rows: 0,
            first_val: Vec::new(),
            seen: HashSet::default(),
            size,
        })
    }

    /// The next row, checked (`None` at the end of the file). The image borrows from the
    /// reader: a caller keeps what it needs before asking for the next row.
    fn next_row(&mut self) -> Result<Option<(RowImage<'_>, u32, Prediction)>> {
        let path = self.path.as_path();
        match self.csv.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                let line = e
                    .position()
                    .map_or_else(|| self.csv.position().line(), |p| p.line());
                return Err(Error::parse(path, line, format!("malformed CSV: {e}")));
            }
        }
        let record = &self.record;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != self.width {
            return Err(Error::parse(
                path,
                line,
                format!("expected {} fields, found {}", self.width, record.len()),
            ));
        }
        let name = &record[self.c_name];
        // ImageNet validation names (nearly every row) become numbers; others stay names.
        let image = match val_index_bytes(name).and_then(|v| u32::try_from(v).ok()) {
            Some(v) => RowImage::Val(v),
            None => RowImage::Name(
                std::str::from_utf8(name)
                    .map_err(|_| Error::parse(path, line, "file_name is not valid UTF-8"))?,
            ),
        };
        let class = parse_class(&record[self.c_class]).ok_or_else(|| {
            Error::parse(
                path,
                line,
                format!(
                    "predicted_class {:?} is not a class in 0..{}",
                    String::from_utf8_lossy(&record[self.c_class]),
                    N_CLASSES - 1
                ),
            )
        })?;
        let probability = parse_probability(&record[self.c_prob]).ok_or_else(|| {
            Error::parse(
                path,
                line,
                format!(
                    "predicted_probability {:?} is not a number in [0, 1]",
                    String::from_utf8_lossy(&record[self.c_prob])
                ),
            )
        })?;
        let line32 = u32::try_from(line).unwrap_or(u32::MAX);
        // The first line of an image seen before, to report a repeat where it repeats (in
        // file order, before any later error).
        let first = match image {
            RowImage::Val(v) if v < VAL_TABLE => {
                let v = v as usize;
                if v >= self.first_val.len() {
                    self.first_val.resize(v + 1, 0);
                }
                let first = self.first_val[v];
                if first == 0 {
                    self.first_val[v] = line32;
                }
                (first != 0).then_some(u64::from(first))
            }
            _ => {
                if self.seen.insert(xxh3_64(name)) {
                    None
                } else {
                    first_line_of(path, self.c_name, name, line)?
                }
            }
        };
        if let Some(first) = first {
            return Err(Error::parse(
                path,
                line,
                format!(
                    "{} has a second prediction (first on line {first})",
                    image.name()
                ),
            ));
        }
        self.rows += 1;
        Ok(Some((image, line32, Prediction { class, probability })))
    }
}

impl RowReader {
    /// Makes room in the set of name hashes for the names the rest of the file will likely
    /// bring, estimated from the `rows` read so far (`names` of them hashed): grown once to
    /// its size, the set never holds its old and new storage at once (1.5 times its size,
    /// 75 MB more at 12 million names). An estimate that is off only means growing as usual.
    fn reserve_for_rest(&mut self, rows: u64, names: u64) {
        let read = self.csv.position().byte();
        if rows == 0 || names == 0 || read == 0 || read >= self.size {
            return;
        }
        let rest_rows = u128::from(self.size - read) * u128::from(rows) / u128::from(read);
        let rest_names = rest_rows * u128::from(names) / u128::from(rows);
        let additional = u64::try_from(rest_names)
            .unwrap_or(u64::MAX)
            .min(MAX_RESERVE);
        if let Ok(additional) = usize::try_from(additional) {
            // Failing to reserve is no error: the set grows as it needs.
            let _ = self.seen.try_reserve(additional);
        }
    }
}

/// The first line before `before` whose `file_name` is `name`, read afresh from the file
/// (its rows up to there were already checked). Called only when a name's hash was seen
/// before: rarely, and once per file at most unless hashes collide.
fn first_line_of(path: &Path, c_name: usize, name: &[u8], before: u64) -> Result<Option<u64>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut csv = csv_reader(file);
    let mut record = csv::ByteRecord::new();
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                let line = e.position().map_or(before, |p| p.line());
                return Err(Error::parse(path, line, format!("malformed CSV: {e}")));
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        if line >= before {
            return Ok(None);
        }
        if record.get(c_name) == Some(name) {
            return Ok(Some(line));
        }
    }
}

/// A predictions CSV opened with its header and first rows checked, not yet matched with the
/// annotated images: [`ParsedPredictions::align`] reads the rest as it matches.
pub struct ParsedPredictions {
    reader: RowReader,
    ahead: Vec<AheadRow>,
    /// Whether `ahead` holds every row of the file.
    complete: bool,
}

impl std::fmt::Debug for ParsedPredictions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedPredictions")
            .field("path", &self.reader.path)
            .field("rows_ahead", &self.ahead.len())
            .field("complete", &self.complete)
            .finish()
    }
}

/// Opens a predictions CSV, checks its header and reads up to [`PARSE_AHEAD_ROWS`] rows
/// ahead (a caller may do this while the annotations load: it needs none). Errors, each
/// naming `file:line`: a missing column, a row of another width, a name that is not UTF-8, a
/// class outside 0..999, a probability that is not a number in [0, 1], an image with a
/// second row. Errors in rows beyond those read ahead come from [`ParsedPredictions::align`].
pub fn parse_predictions(path: &Path) -> Result<ParsedPredictions> {
    let mut reader = RowReader::open(path)?;
    let mut ahead = Vec::new();
    let mut complete = false;
    while ahead.len() < PARSE_AHEAD_ROWS {
        let Some((image, line, prediction)) = reader.next_row()? else {
            complete = true;
            break;
        };
        let image = match image {
            RowImage::Val(v) => AheadImage::Val(v),
            RowImage::Name(name) => AheadImage::Name(name.into()),
        };
        ahead.push(AheadRow {
            image,
            line,
            prediction,
        });
    }
    if !complete {
        let hashed = ahead
            .iter()
            .filter(|row| match row.image {
                AheadImage::Val(v) => v >= VAL_TABLE,
                AheadImage::Name(_) => true,
            })
            .count();
        reader.reserve_for_rest(ahead.len() as u64, hashed as u64);
    }
    Ok(ParsedPredictions {
        reader,
        ahead,
        complete,
    })
}

impl ParsedPredictions {
    /// The predictions file.
    pub fn path(&self) -> &Path {
        &self.reader.path
    }

    /// Rows read so far (all of them once the file is read to its end).
    pub fn rows_read(&self) -> usize {
        self.reader.rows
    }

    /// Whether every row of the file has been read.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Matches the rows with `set`'s images, reading the rest of the file row by row: rows
    /// for annotated images fill their slots, others are counted and dropped. With `strict`,
    /// annotated images without a prediction are an error.
    pub fn align(self, set: &AnnotatedSet, strict: bool) -> Result<AlignedPredictions> {
        let ParsedPredictions {
            mut reader,
            ahead,
            complete,
        } = self;
        let mut aligner = Aligner::new(set);
        for row in ahead {
            let image = match &row.image {
                AheadImage::Val(v) => RowImage::Val(*v),
                AheadImage::Name(name) => RowImage::Name(name),
            };
            aligner.place(&reader.path, image, row.line, row.prediction)?;
        }
        if !complete {
            let path = reader.path.clone();
            while let Some((image, line, prediction)) = reader.next_row()? {
                aligner.place(&path, image, line, prediction)?;
            }
        }
        let rows = reader.rows;
        aligner.finish(&reader.path, rows, strict)
    }
}

/// Aligns named top-1 predictions (`(file name, prediction)`, e.g. made in memory by an
/// evaluation) with `set` by the rule [`ParsedPredictions::align`] applies to a CSV's rows:
/// a name fills the slot of its annotated image, other names are counted as unannotated.
/// `source` names where the rows came from in errors (a name given twice is one, naming both
/// rows, counted from 1).
pub fn align_predictions<'a>(
    set: &AnnotatedSet,
    rows: impl IntoIterator<Item = (&'a str, Prediction)>,
    source: &Path,
) -> Result<AlignedPredictions> {
    let mut aligner = Aligner::new(set);
    let mut count = 0usize;
    for (name, prediction) in rows {
        count += 1;
        let line = u32::try_from(count).unwrap_or(u32::MAX);
        aligner.place(source, RowImage::Name(name), line, prediction)?;
    }
    aligner.finish(source, count, false)
}

/// The predictions of the annotated images, filled row by row.
struct Aligner<'s> {
    set: &'s AnnotatedSet,
    predictions: Vec<Option<Prediction>>,
    lines: Vec<u32>,
    unannotated: usize,
}

impl<'s> Aligner<'s> {
    fn new(set: &'s AnnotatedSet) -> Self {
        Aligner {
            set,
            predictions: vec![None; set.len()],
            lines: vec![0u32; set.len()],
            unannotated: 0,
        }
    }

    /// The aligned predictions of `rows` rows read from `path`; with `strict`, annotated
    /// images without a prediction are an error.
    fn finish(self, path: &Path, rows: usize, strict: bool) -> Result<AlignedPredictions> {
        let Aligner {
            set,
            predictions,
            unannotated,
            ..
        } = self;
        let missing = predictions.iter().filter(|p| p.is_none()).count();
        let first_missing = predictions
            .iter()
            .position(Option::is_none)
            .map(|i| set.records[i].file_name.clone());
        if strict && missing > 0 {
            return Err(Error::MissingPredictions {
                path: path.to_path_buf(),
                missing,
                annotated: set.len(),
                first: first_missing.unwrap_or_default(),
            });
        }
        Ok(AlignedPredictions {
            predictions,
            rows,
            unannotated,
            missing,
            first_missing,
        })
    }

    fn place(
        &mut self,
        path: &Path,
        image: RowImage<'_>,
        line: u32,
        prediction: Prediction,
    ) -> Result<()> {
        let position = match image {
            RowImage::Val(v) => self.set.val_position(v as usize),
            RowImage::Name(name) => self.set.position(name),
        };
        let Some(i) = position else {
            self.unannotated += 1;
            return Ok(());
        };
        // Distinct names never share a position (the reader refuses repeats); kept as a
        // guard all the same.
        if self.lines[i] != 0 {
            return Err(Error::parse(
                path,
                u64::from(line),
                format!(
                    "{} has a second prediction (first on line {})",
                    image.name(),
                    self.lines[i]
                ),
            ));
        }
        self.lines[i] = line;
        self.predictions[i] = Some(prediction);
        Ok(())
    }
}

fn parse_class(field: &[u8]) -> Option<u16> {
    let class: u16 = std::str::from_utf8(field).ok()?.trim().parse().ok()?;
    (usize::from(class) < N_CLASSES).then_some(class)
}

fn parse_probability(field: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(field).ok()?.trim();
    let p: f64 = text.parse().ok()?;
    (0.0..=1.0).contains(&p).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::{AnnotationRecord, LoadOptions};
    use imagenetx_vocab::{FactorSet, Metaclass};
    use std::io::Write;

    fn set() -> AnnotatedSet {
        let records = ["a.JPEG", "b.JPEG", "c.JPEG"]
            .iter()
            .map(|name| AnnotationRecord {
                file_name: name.to_string(),
                class: 1,
                factors: FactorSet::EMPTY,
                justification: None,
                one_word: None,
            })
            .collect();
        AnnotatedSet::from_parts(
            records,
            vec![Metaclass::Other; N_CLASSES],
            &[],
            LoadOptions::default(),
            3,
        )
        .expect("valid set")
    }

    fn csv(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn aligns_rows_and_counts_missing() {
        let f = csv(
            "file_name,predicted_class,predicted_probability,extra\nb.JPEG,1,0.5,x\nz.JPEG,3,1,y\na.JPEG,999,0,z\n",
        );
        let got = read_predictions(f.path(), &set(), false).expect("valid");
        assert_eq!(got.rows, 3);
        assert_eq!(got.unannotated, 1);
        assert_eq!(got.missing, 1);
        assert_eq!(got.first_missing.as_deref(), Some("c.JPEG"));
        assert_eq!(
            got.predictions[0],
            Some(Prediction {
                class: 999,
                probability: 0.0
            })
        );
        let err = read_predictions(f.path(), &set(), true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1 of 3 annotated images have no prediction (first: c.JPEG)"),
            "{err}"
        );
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        let cases = [
            (
                "file_name,predicted_class\na.JPEG,1\n",
                ":1: missing column \"predicted_probability\"",
            ),
            (
                "file_name,predicted_class,predicted_probability\na.JPEG,1,0.5\na.JPEG,2,0.5\n",
                ":3: a.JPEG has a second prediction (first on line 2)",
            ),
            (
                "file_name,predicted_class,predicted_probability\nq.JPEG,1,0.5\nq.JPEG,2,0.5\n",
                ":3: q.JPEG has a second prediction",
            ),
            (
                "file_name,predicted_class,predicted_probability\nILSVRC2012_val_00000007.JPEG,1,0.5\na.JPEG,1,0.5\nILSVRC2012_val_00000007.JPEG,2,0.5\n",
                ":4: ILSVRC2012_val_00000007.JPEG has a second prediction (first on line 2)",
            ),
            (
                // The first problem in file order is the one reported.
                "file_name,predicted_class,predicted_probability\nb.JPEG,1,0.5\nb.JPEG,1,0.5\nc.JPEG,1,7\n",
                ":3: b.JPEG has a second prediction (first on line 2)",
            ),
            (
                "file_name,predicted_class,predicted_probability\nILSVRC2012_val_99999999.JPEG,1,0.5\nILSVRC2012_val_99999999.JPEG,1,0.5\n",
                ":3: ILSVRC2012_val_99999999.JPEG has a second prediction (first on line 2)",
            ),
            (
                "file_name,predicted_class,predicted_probability\na.JPEG,1000,0.5\n",
                ":2: predicted_class \"1000\" is not a class in 0..999",
            ),
            (
                "file_name,predicted_class,predicted_probability\na.JPEG,-1,0.5\n",
                ":2: predicted_class \"-1\"",
            ),
            (
                "file_name,predicted_class,predicted_probability\na.JPEG,1,nan\n",
                ":2: predicted_probability \"nan\" is not a number in [0, 1]",
            ),
            (
                "file_name,predicted_class,predicted_probability\na.JPEG,1,1.5\n",
                ":2: predicted_probability \"1.5\"",
            ),
            (
                "file_name,predicted_class,predicted_probability\na.JPEG,1\n",
                ":2: expected 3 fields, found 2",
            ),
        ];
        for (text, want) in cases {
            let f = csv(text);
            let err = read_predictions(f.path(), &set(), false)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.starts_with(&f.path().display().to_string()), "{err}");
        }
    }

    /// A file longer than what is read ahead: the rest streams through `align`, rows of
    /// unannotated images are counted, and a repeat far apart is found with its first line.
    #[test]
    fn streams_past_the_rows_read_ahead() {
        let extra = PARSE_AHEAD_ROWS + 1000;
        let mut text = String::from("file_name,predicted_class,predicted_probability\n");
        text.push_str("a.JPEG,1,0.5\n");
        for i in 0..extra {
            text.push_str(&format!("other_{i}.JPEG,2,0.25\n"));
        }
        text.push_str("ILSVRC2012_val_00000003.JPEG,3,1\nb.JPEG,4,0.75\n");
        let f = csv(&text);
        let parsed = parse_predictions(f.path()).expect("header and first rows");
        assert!(!parsed.is_complete());
        assert_eq!(parsed.rows_read(), PARSE_AHEAD_ROWS);
        let got = parsed.align(&set(), false).expect("valid");
        assert_eq!(got.rows, extra + 3);
        assert_eq!(got.unannotated, extra + 1);
        assert_eq!(got.missing, 1);
        assert_eq!(
            got.predictions[1],
            Some(Prediction {
                class: 4,
                probability: 0.75
            })
        );

        // The same name again after the rows read ahead, and an annotated one again.
        for (repeat, first) in [("other_5.JPEG", 8), ("a.JPEG", 2)] {
            let f = csv(&format!("{text}{repeat},1,0.5\n"));
            let err = read_predictions(f.path(), &set(), false)
                .unwrap_err()
                .to_string();
            let line = extra + 5;
            assert!(
                err.contains(&format!(
                    ":{line}: {repeat} has a second prediction (first on line {first})"
                )),
                "{err}"
            );
        }
    }

    /// A hash seen before is checked against the file: a name that is not in it before the
    /// line (a hash collision) is no repeat.
    #[test]
    fn a_repeat_is_confirmed_in_the_file() {
        let f =
            csv("file_name,predicted_class,predicted_probability\nx.JPEG,1,0.5\ny.JPEG,1,0.5\n");
        assert_eq!(
            first_line_of(f.path(), 0, b"y.JPEG", 4).expect("read"),
            Some(3)
        );
        assert_eq!(
            first_line_of(f.path(), 0, b"y.JPEG", 3).expect("read"),
            None
        );
        assert_eq!(
            first_line_of(f.path(), 0, b"z.JPEG", 4).expect("read"),
            None
        );
    }

    #[test]
    fn collects_folders_and_rejects_clashing_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["b.csv", "a.csv", "notes.txt"] {
            std::fs::write(dir.path().join(name), "x").expect("write");
        }
        let files = collect_prediction_files(&[dir.path().to_path_buf()]).expect("valid");
        let models: Vec<&str> = files.iter().map(|f| f.model.as_str()).collect();
        assert_eq!(models, ["a", "b"]);
        let err = collect_prediction_files(&[dir.path().to_path_buf(), dir.path().join("a.csv")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("model name \"a\""), "{err}");
        let empty = tempfile::tempdir().expect("temp dir");
        assert!(collect_prediction_files(&[empty.path().to_path_buf()]).is_err());
    }
}
