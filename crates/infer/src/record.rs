//! The run record: a JSON sidecar saying exactly how a predictions file was made.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::model::ModelInfo;
use crate::provider::ProviderReport;
use crate::runtime::RuntimeReport;

/// The model file and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFile {
    /// Path as given (for reading only: a path that is not UTF-8 is written lossily; the
    /// SHA-256 identifies the model).
    #[serde(with = "lossy_path")]
    pub path: PathBuf,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
}

impl ModelFile {
    /// Hashes the model at `path`.
    pub fn hash(path: &Path) -> Result<Self> {
        Ok(ModelFile {
            path: path.to_path_buf(),
            sha256: sha256_file(path)?,
        })
    }
}

/// Counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    /// Images found.
    pub images: usize,
    /// Images predicted in this run.
    pub predicted: usize,
    /// Images taken from an earlier run's file (`--resume`).
    pub resumed: usize,
    /// Images skipped (listed in [`RunRecord::skipped`]).
    pub skipped: usize,
    /// Images decoded despite being over Pillow's warning size (89,478,485 pixels; Pillow's
    /// `DecompressionBombWarning`).
    #[serde(default)]
    pub large_images: usize,
    /// Journal checkpoints made in this run.
    #[serde(default)]
    pub checkpoints: u64,
}

/// Where a run stands; the record is written before the first image, at every checkpoint and
/// at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Going on, or killed without a chance to say so: the journal holds what was done.
    Running,
    /// Stopped by a signal (SIGINT, SIGTERM) or an error after a last checkpoint; continue it
    /// with `--resume`.
    Interrupted,
    /// Finished: the predictions CSV is complete.
    #[default]
    Complete,
}

/// What `--resume` found and did (names listed up to [`ResumeSummary::MAX_NAMES`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeSummary {
    /// Where the earlier rows came from: `journal`, `predictions-csv` or `nothing`.
    pub source: String,
    /// Rows kept.
    pub kept: usize,
    /// Kept rows without a fingerprint to check (from a predictions CSV without journal).
    pub unchecked: usize,
    /// Images changed since (size or mtime): predicted again.
    pub changed: usize,
    /// Rows of images no longer among the images: dropped.
    pub removed: usize,
    /// The first names of changed images.
    pub changed_names: Vec<String>,
    /// The first names of removed images.
    pub removed_names: Vec<String>,
    /// Records of the journal cut short by the interruption, dropped and redone: the line of
    /// the first one and the bytes dropped.
    pub cut_line: Option<u64>,
    /// Bytes dropped with the cut records.
    pub cut_bytes: Option<u64>,
}

impl ResumeSummary {
    /// How many names of each list are kept.
    pub const MAX_NAMES: usize = 100;
}

/// An image that got no prediction, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// The image path, as text (escaped where it is not UTF-8, as file names are).
    pub file: String,
    /// Why (decode error, NaN output, …).
    pub reason: String,
}

/// Everything needed to reproduce or audit a predictions file; written next to it as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// This tool's version.
    pub imagenetx_version: String,
    /// Where the run stands.
    #[serde(default)]
    pub state: RunState,
    /// The model file and its SHA-256.
    pub model: ModelFile,
    /// What was decided about the model, with reasons.
    pub model_info: ModelInfo,
    /// The preprocessing actually used (the preprocessing crate's config, as JSON).
    pub preprocessing: serde_json::Value,
    /// The execution provider used.
    pub provider: ProviderReport,
    /// The ONNX Runtime library and version.
    pub runtime: RuntimeReport,
    /// The predictions CSV this record describes.
    #[serde(with = "lossy_path")]
    pub predictions: PathBuf,
    /// Counts.
    pub counts: RunCounts,
    /// What `--resume` found, when the run resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeSummary>,
    /// Skipped images with reasons.
    pub skipped: Vec<SkippedFile>,
    /// The whole image list the run was given (before any shard was taken): how many images
    /// and their digest. Absent in records of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_list: Option<ImageListId>,
    /// The slice of the image list this run predicted, when it is one shard of several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardRecord>,
    /// The shard runs a merged record was made from, in shard order (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<MergedShard>,
}

/// Identifies an image list: its length and the SHA-256 of its sorted file names (each name,
/// as written in the predictions CSV, followed by a NUL byte; names are sorted by their
/// bytes). Two lists with the same identity hold the same images in the same order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageListId {
    /// Images in the list.
    pub images: usize,
    /// SHA-256 of the sorted names, lowercase hex.
    pub sha256: String,
}

impl ImageListId {
    /// The identity of the list whose names, sorted by their bytes, are `sorted_names`.
    pub fn of<'a>(sorted_names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut hasher = Sha256::new();
        let mut images = 0;
        for name in sorted_names {
            hasher.update(name.as_bytes());
            hasher.update([0u8]);
            images += 1;
        }
        ImageListId {
            images,
            sha256: hex(&hasher.finalize()),
        }
    }
}

/// One shard of an image list: shard `index` of `count` holds the images `start..end` of the
/// list sorted by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// The shard, 0-based.
    pub index: usize,
    /// How many shards the list is cut into.
    pub count: usize,
    /// First image of the slice (position in the list sorted by file name).
    pub start: usize,
    /// One past the last image of the slice.
    pub end: usize,
}

/// A shard run that went into a merged record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedShard {
    /// The shard.
    pub shard: ShardRecord,
    /// Its predictions CSV.
    #[serde(with = "lossy_path")]
    pub predictions: PathBuf,
    /// Rows it contributed.
    pub rows: usize,
    /// The execution provider it ran on.
    pub provider: String,
}

impl RunRecord {
    /// This crate's version, for [`RunRecord::imagenetx_version`].
    pub const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    /// Writes the record as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|error| Error::Json {
            path: path.to_path_buf(),
            error,
        })?;
        write_atomic(path, |out| {
            out.write_all(&json)?;
            out.write_all(b"\n")
        })
    }

    /// Reads a record written by [`RunRecord::write`].
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|err| Error::io(path, err))?;
        serde_json::from_slice(&bytes).map_err(|error| Error::Json {
            path: path.to_path_buf(),
            error,
        })
    }
}

/// Paths written as text (lossily where they are not UTF-8, which JSON cannot hold), so that a
/// record can always be written.
mod lossy_path {
    use std::path::{Path, PathBuf};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&path.to_string_lossy())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
        String::deserialize(deserializer).map(PathBuf::from)
    }
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|err| Error::io(path, err))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|err| Error::io(path, err))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").expect("write");
        // FIPS 180-2 test vector.
        assert_eq!(
            sha256_file(&path).expect("hash"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn image_list_digest_is_sha256_of_nul_terminated_names() {
        let id = ImageListId::of(["a.JPEG", "b.JPEG"]);
        assert_eq!(id.images, 2);
        assert_eq!(id.sha256, sha256_hex(b"a.JPEG\0b.JPEG\0"));
        // The terminator keeps ["ab", "c"] and ["a", "bc"] apart.
        assert_ne!(ImageListId::of(["ab", "c"]), ImageListId::of(["a", "bc"]));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Arbitrary bytes never panic the run-record reader; an error names the file and
            /// a line (serde_json's position).
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("r.run.json");
                std::fs::write(&path, &bytes).unwrap();
                if let Err(err) = RunRecord::read(&path) {
                    let text = err.to_string();
                    prop_assert!(text.contains("r.run.json") && text.contains("line"), "{}", text);
                }
            }

            /// A real record cut anywhere never panics and names file and line.
            #[test]
            fn cut_records_name_file_and_line(cut in 0usize..2000) {
                let json = serde_json::json!({
                    "imagenetx_version": "0.1.0", "state": "running",
                    "model": {"path": "m.onnx", "sha256": "ab"},
                    "counts": {"images": 3, "predicted": 1, "resumed": 0, "skipped": 0},
                    "skipped": [{"file": "x\\xff.JPEG", "reason": "truncated"}]
                });
                let text = serde_json::to_string_pretty(&json).unwrap();
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("r.run.json");
                std::fs::write(&path, &text.as_bytes()[..cut.min(text.len())]).unwrap();
                let err = RunRecord::read(&path).expect_err("incomplete record");
                let message = err.to_string();
                prop_assert!(message.contains("r.run.json") && message.contains("line"), "{}", message);
            }
        }
    }
}
