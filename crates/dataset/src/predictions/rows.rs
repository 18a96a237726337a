//! The predictions CSV row by row: [`HEADER`], [`PredictionRow`], the one writer
//! ([`PredictionWriter`], [`format_row`]) and the reader of whole rows
//! ([`read_prediction_rows`]).
//!
//! # Format
//!
//! The ImageNet-X toolkit's columns, then the top-5:
//!
//! ```text
//! file_name,predicted_class,predicted_probability,top5_classes,top5_probabilities
//! ILSVRC2012_val_00000001.JPEG,65,0.8125,65 62 58 54 63,0.8125 0.1 0.05 0.02 0.01
//! ```
//!
//! `file_name` is the image's base name (escaped when it is not UTF-8, see
//! [`crate::escape_file_name`]); classes are ImageNet indices 0..999; the top-5 columns are
//! space-separated, most probable first; floats are written with Rust's `{}` for `f64` (the
//! shortest decimal that reads back to the same value). A writer that wants a file that does
//! not depend on the order images finished in writes the rows sorted by file name.

use std::fmt::{Display, Write as _};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The CSV header, in order.
pub const HEADER: [&str; 5] = [
    "file_name",
    "predicted_class",
    "predicted_probability",
    "top5_classes",
    "top5_probabilities",
];

/// Most classes one row holds (the `top5_*` columns).
pub const TOP_K: usize = 5;

/// The position of each [`HEADER`] column in a header record (`None`: absent). The one
/// column lookup of both readers of the format: [`read_prediction_rows`] and the toolkit
/// reader [`crate::parse_predictions`].
pub(crate) fn header_columns(header: &csv::ByteRecord) -> [Option<usize>; 5] {
    HEADER.map(|name| header.iter().position(|h| h == name.as_bytes()))
}

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
    /// The row for the image named `file_name` (its key: the base name, escaped when it is not
    /// UTF-8): its classes, most probable first, and their probabilities.
    pub fn new(file_name: impl Into<String>, classes: Vec<usize>, probabilities: Vec<f64>) -> Self {
        PredictionRow {
            file_name: file_name.into(),
            classes,
            probabilities,
        }
    }

    /// The row's five CSV fields (see [`format_row`]).
    pub fn fields(&self) -> [String; 5] {
        format_row(&self.file_name, &self.classes, &self.probabilities)
    }
}

/// The five CSV fields of a row, in [`HEADER`] order: the name, the first class and
/// probability, then all classes and all probabilities space-separated. Classes are written
/// as integers, probabilities with `{}` (shortest round-trip decimal). A row without classes
/// gets empty class and probability fields (which no reader accepts).
pub fn format_row<C: Display>(
    file_name: &str,
    classes: &[C],
    probabilities: &[f64],
) -> [String; 5] {
    let mut all_classes = String::new();
    let mut all_probabilities = String::new();
    for (i, class) in classes.iter().enumerate() {
        if i > 0 {
            all_classes.push(' ');
        }
        let _ = write!(all_classes, "{class}");
    }
    for (i, probability) in probabilities.iter().enumerate() {
        if i > 0 {
            all_probabilities.push(' ');
        }
        let _ = write!(all_probabilities, "{probability}");
    }
    [
        file_name.to_owned(),
        classes.first().map(ToString::to_string).unwrap_or_default(),
        probabilities
            .first()
            .map(ToString::to_string)
            .unwrap_or_default(),
        all_classes,
        all_probabilities,
    ]
}

/// The writer of predictions CSVs: the header on creation, then one record per row (see the
/// [module docs](self) for the format). It writes rows in the order given.
///
/// ```
/// use imagenetx_dataset::{PredictionRow, PredictionWriter};
///
/// let mut writer = PredictionWriter::new(Vec::new())?;
/// writer.write(&PredictionRow::new("a.JPEG", vec![3, 7], vec![0.75, 0.25]))?;
/// let bytes = writer.finish()?;
/// assert_eq!(
///     String::from_utf8_lossy(&bytes),
///     "file_name,predicted_class,predicted_probability,top5_classes,top5_probabilities\n\
///      a.JPEG,3,0.75,3 7,0.75 0.25\n"
/// );
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PredictionWriter<W: std::io::Write> {
    csv: csv::Writer<W>,
}

impl<W: std::io::Write> PredictionWriter<W> {
    /// A writer to `out`; writes the header.
    pub fn new(out: W) -> std::io::Result<Self> {
        let mut csv = csv::Writer::from_writer(out);
        csv.write_record(HEADER)?;
        Ok(PredictionWriter { csv })
    }

    /// Writes `row`.
    pub fn write(&mut self, row: &PredictionRow) -> std::io::Result<()> {
        self.write_parts(&row.file_name, &row.classes, &row.probabilities)
    }

    /// Writes the row of `file_name` from its parts (as [`format_row`] formats them).
    pub fn write_parts<C: Display>(
        &mut self,
        file_name: &str,
        classes: &[C],
        probabilities: &[f64],
    ) -> std::io::Result<()> {
        self.csv
            .write_record(format_row(file_name, classes, probabilities))?;
        Ok(())
    }

    /// Flushes what was written to the underlying writer.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.csv.flush()
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> std::io::Result<W> {
        self.csv
            .into_inner()
            .map_err(|err| std::io::Error::other(err.error().to_string()))
    }
}

/// Reads a predictions CSV as written by [`PredictionWriter`], every row with its top-k
/// classes. The top-5 columns are optional, so the ImageNet-X toolkit's three-column files
/// read too (each row then holds its one predicted class). Classes and probabilities are not
/// range-checked here (the toolkit reader [`crate::read_predictions`] does that); the top-5
/// columns must hold up to [`TOP_K`] classes, as many probabilities, and start with
/// `predicted_class`. Errors name the file and line.
pub fn read_prediction_rows(path: &Path) -> Result<Vec<PredictionRow>> {
    let csv_error = |line: u64, message: String| Error::parse(path, line, message);
    let file = std::fs::File::open(path).map_err(|err| Error::io(path, err))?;
    let mut reader = csv::Reader::from_reader(std::io::BufReader::new(file));
    let headers = reader
        .headers()
        .map_err(|err| csv_error(1, err.to_string()))?
        .clone();
    let [
        file_col,
        class_col,
        prob_col,
        top_classes,
        top_probabilities,
    ] = header_columns(headers.as_byte_record());
    let (Some(file_col), Some(class_col), Some(prob_col)) = (file_col, class_col, prob_col) else {
        return Err(csv_error(
            1,
            format!(
                "expected columns {}, got {}",
                HEADER[..3].join(","),
                headers.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    };
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
        let (classes, probabilities) = match (top_classes, top_probabilities) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolkit_three_column_files_read_and_bad_rows_name_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.csv");
        std::fs::write(
            &path,
            "file_name,predicted_class,predicted_probability\nx.JPEG,3,0.25\n",
        )
        .expect("write");
        let rows = read_prediction_rows(&path).expect("read");
        assert_eq!(rows[0].classes, vec![3]);
        std::fs::write(
            &path,
            "file_name,predicted_class,predicted_probability\nx.JPEG,cat,0.25\n",
        )
        .expect("write");
        let err = read_prediction_rows(&path).expect_err("bad");
        assert!(
            err.to_string()
                .contains("p.csv:2: predicted_class: expected a class index"),
            "{err}"
        );
        std::fs::write(&path, "name,class\n").expect("write");
        let err = read_prediction_rows(&path).expect_err("bad header");
        assert!(
            err.to_string()
                .contains("p.csv:1: expected columns file_name,predicted_class,predicted_probability, got name,class"),
            "{err}"
        );
    }

    /// Rows written by the writer read back equal, in any column order of the file.
    #[test]
    fn written_rows_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.csv");
        let rows = vec![
            PredictionRow::new("a,b \"q\".JPEG", vec![1, 2, 999], vec![0.5, 0.3, 0.1 + 0.2]),
            PredictionRow::new("c.JPEG", vec![7], vec![1.0]),
        ];
        let mut writer = PredictionWriter::new(Vec::new()).expect("header");
        for row in &rows {
            writer.write(row).expect("row");
        }
        std::fs::write(&path, writer.finish().expect("finish")).expect("write");
        assert_eq!(read_prediction_rows(&path).expect("read"), rows);

        std::fs::write(
            &path,
            "top5_probabilities,top5_classes,predicted_probability,predicted_class,file_name\n0.5 0.25,4 2,0.5,4,x.JPEG\n",
        )
        .expect("write");
        assert_eq!(
            read_prediction_rows(&path).expect("read"),
            [PredictionRow::new("x.JPEG", vec![4, 2], vec![0.5, 0.25])]
        );
    }

    #[test]
    fn top5_columns_must_agree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.csv");
        let header = HEADER.join(",");
        for (row, want) in [
            ("x,4,0.5,2 4,0.5 0.25", "starting with predicted_class 4"),
            ("x,4,0.5,4 2,0.5", "as many probabilities"),
            ("x,4,0.5,4 1 2 3 5 6,0.5 0 0 0 0 0", "up to 5 classes"),
            (
                "x,4,0.5,4 q,0.5 0.1",
                "top5_classes: expected class indices, got \"4 q\"",
            ),
        ] {
            std::fs::write(&path, format!("{header}\n{row}\n")).expect("write");
            let err = read_prediction_rows(&path).expect_err(row).to_string();
            assert!(
                err.contains("p.csv:2: ") && err.contains(want),
                "{row}: {err}"
            );
        }
    }

    #[test]
    fn rows_without_classes_format_empty_fields() {
        assert_eq!(
            format_row::<usize>("x", &[], &[]),
            ["x", "", "", "", ""].map(String::from)
        );
        assert_eq!(
            PredictionRow::new("y", vec![3, 1], vec![0.1 + 0.2, 1e-20]).fields(),
            [
                "y",
                "3",
                "0.30000000000000004",
                "3 1",
                "0.30000000000000004 0.00000000000000000001"
            ]
            .map(String::from)
        );
    }
}
