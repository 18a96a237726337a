//! Prediction files in the paper toolkit's CSV format:
//! `file_name,predicted_class,predicted_probability`, extra columns allowed.

use std::path::{Path, PathBuf};

use imagenetx_factors::Prediction;
use rustc_hash::FxHashMap;

use crate::annotations::{AnnotatedSet, val_index_bytes};
use crate::labels::N_CLASSES;
use crate::{Error, Result};

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
/// The same as [`parse_predictions`] then [`ParsedPredictions::align`]; parsing needs no
/// annotations, so a caller may parse while the annotations load.
pub fn read_predictions(
    path: &Path,
    set: &AnnotatedSet,
    strict: bool,
) -> Result<AlignedPredictions> {
    parse_predictions(path)?.align(set, strict)
}

/// How a row names its image: by validation number (`ILSVRC2012_val_00000001.JPEG` → 0, the
/// common case, looked up without hashing) or by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum RowImage {
    Val(u32),
    Name(Box<str>),
}

impl RowImage {
    /// The file name as written in the file.
    fn name(&self) -> String {
        match self {
            RowImage::Val(v) => crate::annotations::val_file_name(*v as usize),
            RowImage::Name(name) => name.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Row {
    image: RowImage,
    line: u32,
    prediction: Prediction,
}

/// The rows of a predictions CSV, checked field by field but not yet matched with the
/// annotated images (see [`ParsedPredictions::align`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPredictions {
    path: PathBuf,
    rows: Vec<Row>,
}

/// Reads and checks a predictions CSV: errors, each naming `file:line`, for a missing column,
/// a row of another width, a name that is not UTF-8, a class outside 0..999 and a probability
/// that is not a number in [0, 1].
pub fn parse_predictions(path: &Path) -> Result<ParsedPredictions> {
    // Prediction files are small (1.1 MB for 50,000 rows): read at once, parsed from memory.
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(bytes.as_slice());
    let header = reader
        .byte_headers()
        .map_err(|e| Error::parse(path, 1, format!("unreadable CSV header: {e}")))?
        .clone();
    let column = |name: &str| {
        header.iter().position(|h| h == name.as_bytes()).ok_or_else(|| {
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
    let (c_name, c_class, c_prob) = (
        column("file_name")?,
        column("predicted_class")?,
        column("predicted_probability")?,
    );
    let width = header.len();

    let mut rows = Vec::with_capacity(bytes.iter().filter(|b| **b == b'\n').count());
    // First line of each image, to report a repeated one where it repeats (in file order,
    // before any later error). Validation numbers below 2^20 in a table, others hashed.
    let mut first_val: Vec<u32> = Vec::new();
    let mut first_other: FxHashMap<RowImage, u32> = FxHashMap::default();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(Error::parse(path, line, format!("malformed CSV: {e}")));
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != width {
            return Err(Error::parse(
                path,
                line,
                format!("expected {width} fields, found {}", record.len()),
            ));
        }
        let name = &record[c_name];
        // ImageNet validation names (nearly every row) become numbers; others stay names.
        let image = match val_index_bytes(name).and_then(|v| u32::try_from(v).ok()) {
            Some(v) => RowImage::Val(v),
            None => RowImage::Name(
                std::str::from_utf8(name)
                    .map_err(|_| Error::parse(path, line, "file_name is not valid UTF-8"))?
                    .into(),
            ),
        };
        let class = parse_class(&record[c_class]).ok_or_else(|| {
            Error::parse(
                path,
                line,
                format!(
                    "predicted_class {:?} is not a class in 0..{}",
                    String::from_utf8_lossy(&record[c_class]),
                    N_CLASSES - 1
                ),
            )
        })?;
        let probability = parse_probability(&record[c_prob]).ok_or_else(|| {
            Error::parse(
                path,
                line,
                format!(
                    "predicted_probability {:?} is not a number in [0, 1]",
                    String::from_utf8_lossy(&record[c_prob])
                ),
            )
        })?;
        let line32 = u32::try_from(line).unwrap_or(u32::MAX);
        let first = match image {
            RowImage::Val(v) if v < 1 << 20 => {
                let v = v as usize;
                if v >= first_val.len() {
                    first_val.resize(v + 1, 0);
                }
                let first = first_val[v];
                if first == 0 {
                    first_val[v] = line32;
                }
                (first != 0).then_some(first)
            }
            _ => first_other.insert(image.clone(), line32),
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
        rows.push(Row {
            image,
            line: line32,
            prediction: Prediction { class, probability },
        });
    }
    Ok(ParsedPredictions {
        path: path.to_path_buf(),
        rows,
    })
}

impl ParsedPredictions {
    /// Rows in the file.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the file has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Matches the rows with `set`'s images. With `strict`, annotated images without a
    /// prediction are an error. (Rows name distinct images: parsing refused repeats.)
    pub fn align(self, set: &AnnotatedSet, strict: bool) -> Result<AlignedPredictions> {
        let path = self.path.as_path();
        let mut predictions = vec![None; set.len()];
        let mut lines = vec![0u32; set.len()];
        let rows = self.rows.len();
        let mut unannotated = 0usize;
        for row in self.rows {
            let position = match &row.image {
                RowImage::Val(v) => set.val_position(*v as usize),
                RowImage::Name(name) => set.position(name),
            };
            let Some(i) = position else {
                unannotated += 1;
                continue;
            };
            // Distinct names never share a position; kept as a guard all the same.
            if lines[i] != 0 {
                return Err(Error::parse(
                    path,
                    u64::from(row.line),
                    format!(
                        "{} has a second prediction (first on line {})",
                        row.image.name(),
                        lines[i]
                    ),
                ));
            }
            lines[i] = row.line;
            predictions[i] = Some(row.prediction);
        }
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
    use imagenetx_factors::{FactorSet, Metaclass};
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
