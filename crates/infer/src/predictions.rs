//! The predictions CSV and its reader.
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
//! `file_name` is the image's base name (escaped when it is not UTF-8); classes are ImageNet
//! indices 0..999; the top-5 columns are space-separated, most probable first; floats are
//! written with Rust's `{}` for `f64` (the shortest decimal that reads back to the same value);
//! rows are sorted by file name. [`crate::PredictionsWriter`] writes it, crash-safely.

use std::path::Path;

use serde::{Deserialize, Serialize};

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
    /// The row of `prediction` for the image named `file_name` (its key: the base name, escaped
    /// when it is not UTF-8).
    pub fn new(file_name: impl Into<String>, prediction: &Prediction) -> Self {
        PredictionRow {
            file_name: file_name.into(),
            classes: prediction.classes.clone(),
            probabilities: prediction.probabilities.clone(),
        }
    }
}

/// Reads a predictions CSV written by [`crate::PredictionsWriter`]. The top-5 columns are optional,
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
