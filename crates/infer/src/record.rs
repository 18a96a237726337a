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
    /// Path as given.
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
}

/// An image that got no prediction, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// The image path.
    pub file: PathBuf,
    /// Why (decode error, NaN output, …).
    pub reason: String,
}

/// Everything needed to reproduce or audit a predictions file; written next to it as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// This tool's version.
    pub imagenetx_version: String,
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
    pub predictions: PathBuf,
    /// Counts.
    pub counts: RunCounts,
    /// Skipped images with reasons.
    pub skipped: Vec<SkippedFile>,
}

impl RunRecord {
    /// This crate's version, for [`RunRecord::imagenetx_version`].
    pub const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    /// Writes the record as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        write_atomic(path, |out| {
            out.write_all(&json)?;
            out.write_all(b"\n")
        })
    }

    /// Reads a record written by [`RunRecord::write`].
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|err| Error::io(path, err))?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })
    }
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
    Ok(hasher
        .finalize()
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
            hex
        }))
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
}
