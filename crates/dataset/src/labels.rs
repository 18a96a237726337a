//! Label sets: class names, the class → metaclass mapping, ReaL labels, validation labels,
//! prototypes.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use imagenetx_vocab::Metaclass;
use rustc_hash::FxHashMap;

use crate::{Error, Result};

/// Number of ImageNet-1k classes.
pub const N_CLASSES: usize = 1000;
/// Number of ImageNet validation images.
pub const N_VAL_IMAGES: usize = 50_000;

/// Opens a CSV file whose header must start with `columns`.
fn csv_reader(path: &Path, columns: &[&str]) -> Result<csv::Reader<File>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new().from_reader(file);
    let header = reader
        .headers()
        .map_err(|e| Error::parse(path, 1, format!("unreadable CSV header: {e}")))?;
    let got: Vec<&str> = header.iter().collect();
    if got.len() < columns.len() || got[..columns.len()] != *columns {
        return Err(Error::parse(
            path,
            1,
            format!(
                "expected the header {}, got {}",
                columns.join(","),
                got.join(",")
            ),
        ));
    }
    Ok(reader)
}

fn record_line(record: &csv::StringRecord) -> u64 {
    record.position().map_or(0, |p| p.line())
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    Error::parse(path, line, format!("malformed CSV: {e}"))
}

/// Reads `prototypical_paths.csv`: a `file_name` column.
pub fn read_prototypes(path: &Path) -> Result<HashSet<String>> {
    let mut reader = csv_reader(path, &["file_name"])?;
    let mut names = HashSet::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, e))?;
        names.insert(record[0].to_string());
    }
    Ok(names)
}

/// Reads `imagenet_1k_classes_to_100_metaclasses.csv` (`wnid,name,metaclass`, one row per
/// class in index order) into the metaclass of each class: the 16 kept names, else `other`.
pub fn read_class_metaclasses(path: &Path) -> Result<Vec<Metaclass>> {
    let mut reader = csv_reader(path, &["wnid", "name"])?;
    let mut metaclasses = Vec::with_capacity(N_CLASSES);
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, e))?;
        metaclasses.push(Metaclass::from_mapping_name(&record[1]));
    }
    if metaclasses.len() != N_CLASSES {
        return Err(Error::content(
            path,
            format!(
                "expected {N_CLASSES} class rows, found {}",
                metaclasses.len()
            ),
        ));
    }
    Ok(metaclasses)
}

/// Reads `imagenet_real_labels.jsonl`: one JSON array holding, for each of the 50,000
/// validation images in order, the list of its ReaL labels (possibly empty).
pub fn read_real_labels(path: &Path) -> Result<Vec<Vec<u16>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let lists: Vec<Vec<i64>> = serde_json::from_str(&text).map_err(|e| {
        Error::parse(
            path,
            e.line() as u64,
            format!("expected one JSON array of label lists: {e}"),
        )
    })?;
    if lists.len() != N_VAL_IMAGES {
        return Err(Error::content(
            path,
            format!("expected {N_VAL_IMAGES} label lists, found {}", lists.len()),
        ));
    }
    lists
        .into_iter()
        .enumerate()
        .map(|(image, labels)| {
            labels
                .into_iter()
                .map(|label| {
                    u16::try_from(label)
                        .ok()
                        .filter(|l| usize::from(*l) < N_CLASSES)
                        .ok_or_else(|| {
                            Error::content(
                                path,
                                format!("image {image}: label {label} is outside 0..999"),
                            )
                        })
                })
                .collect()
        })
        .collect()
}

/// Reads `filename_label.csv` (`file_name,label`): the validation labels.
pub fn read_filename_labels(path: &Path) -> Result<FxHashMap<String, u16>> {
    let mut reader = csv_reader(path, &["file_name", "label"])?;
    let mut labels = FxHashMap::default();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, e))?;
        let line = record_line(&record);
        let label = record[1]
            .parse::<u16>()
            .ok()
            .filter(|l| usize::from(*l) < N_CLASSES)
            .ok_or_else(|| {
                Error::parse(
                    path,
                    line,
                    format!("label {:?} is not a class in 0..999", &record[1]),
                )
            })?;
        labels.insert(record[0].to_string(), label);
    }
    Ok(labels)
}

/// The WordNet id and readable name of each class (`imagenet_labels.txt`: `wnid,name`).
#[derive(Debug, Clone)]
pub struct ClassNames {
    entries: Vec<(String, String)>,
}

impl ClassNames {
    /// Reads `imagenet_labels.txt`: 1,000 lines `wnid,name` in class order.
    pub fn read(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut entries = Vec::with_capacity(N_CLASSES);
        for (number, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| Error::io(path, e))?;
            let (wnid, name) = line
                .split_once(',')
                .ok_or_else(|| Error::parse(path, number as u64 + 1, "expected `wnid,name`"))?;
            entries.push((wnid.to_string(), name.to_string()));
        }
        if entries.len() != N_CLASSES {
            return Err(Error::content(
                path,
                format!("expected {N_CLASSES} classes, found {}", entries.len()),
            ));
        }
        Ok(ClassNames { entries })
    }

    /// The readable name of a class (`tench`), if it exists.
    pub fn name(&self, class: u16) -> Option<&str> {
        self.entries.get(usize::from(class)).map(|e| e.1.as_str())
    }

    /// The WordNet id of a class (`n01440764`), if it exists.
    pub fn wnid(&self, class: u16) -> Option<&str> {
        self.entries.get(usize::from(class)).map(|e| e.0.as_str())
    }

    /// The class of a WordNet id.
    pub fn class_of_wnid(&self, wnid: &str) -> Option<u16> {
        self.entries
            .iter()
            .position(|e| e.0 == wnid)
            .and_then(|i| u16::try_from(i).ok())
    }
}
