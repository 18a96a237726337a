//! Preprocessed tensors as files: what a model would be fed for each image, written as NumPy
//! `.npy` arrays (`imagenetx preprocess`), to check a pipeline against another one (a Python
//! reference, the exporter's own steps, or this tool built for another machine).
//!
//! The preprocessing is the one [`Evaluator`](crate::Evaluator) uses: with a model, its input
//! and `imagenetx.preprocess` metadata, then the caller's [`PreprocessSpec`]; without one, the
//! defaults (torchvision, NCHW), then the caller's spec. Each image becomes one `float32`
//! array of shape `[1, 3, H, W]` (NCHW) or `[1, H, W, 3]` (NHWC), little-endian, C order,
//! named after the image's file name with `.npy` appended (`cat.jpg` → `cat.jpg.npy`). A
//! model with `float16` input is still written as `float32`: the cast happens at inference.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use imagenetx_imaging::{PreprocessConfig, Preprocessor, ReadLimits};
use imagenetx_infer::{RuntimeSearch, SkippedFile};
use imagenetx_vocab::Layout;

use crate::evaluate::{EvaluatorConfig, inspect, path_text};
use crate::preprocess::{PreprocessSpec, ResolvedPreprocess, resolve_layers};
use crate::{Error, Result};

/// Where the preprocessing of the tensors comes from.
#[derive(Debug, Clone, Default)]
pub struct TensorConfig {
    /// The model whose input shape and metadata choose the preprocessing (ONNX Runtime is
    /// loaded to read them); `None`: the defaults and an NCHW layout.
    pub model: Option<PathBuf>,
    /// Where to look for ONNX Runtime when there is a model.
    pub runtime: RuntimeSearch,
    /// The caller's overrides (over the model's metadata and the defaults).
    pub preprocess: PreprocessSpec,
    /// Limits on the image files read (size, pixels, decode memory).
    pub read_limits: ReadLimits,
}

/// The preprocessing [`write_tensors`] applies for `config`, with where each field came from.
pub fn resolve_tensor_preprocessing(config: &TensorConfig) -> Result<ResolvedPreprocess> {
    match &config.model {
        Some(model) => {
            inspect(&EvaluatorConfig {
                runtime: config.runtime.clone(),
                preprocess: config.preprocess.clone(),
                read_limits: config.read_limits,
                ..EvaluatorConfig::new(model)
            })?
            .preprocessing
        }
        None => resolve_layers(None, None, &config.preprocess, Layout::Nchw),
    }
}

/// One tensor written by [`write_tensors`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenTensor {
    /// The image it was made from.
    pub image: PathBuf,
    /// The `.npy` file.
    pub file: PathBuf,
    /// Its shape: `[1, 3, H, W]` or `[1, H, W, 3]`.
    pub shape: [usize; 4],
}

/// What [`write_tensors`] did with each image, in the order given.
#[derive(Debug, Clone, Default)]
pub struct TensorsWritten {
    /// The tensors written.
    pub written: Vec<WrittenTensor>,
    /// The images that could not be read or decoded, and why (no file is written for them).
    pub skipped: Vec<SkippedFile>,
}

/// The `.npy` file name of `image` in `out_dir`: its file name with `.npy` appended.
pub fn tensor_file(image: &Path, out_dir: &Path) -> Result<PathBuf> {
    let name = image
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{} is not a file name", image.display())))?;
    let mut name = name.to_os_string();
    name.push(".npy");
    Ok(out_dir.join(name))
}

/// Preprocesses each of `images` with `config` and writes its tensor into `out_dir` (made if
/// missing) as [`tensor_file`]. Two images with the same file name are refused before any is
/// read; an image that cannot be read or decoded is skipped (and listed), a file that cannot
/// be written is an error.
pub fn write_tensors(
    config: &PreprocessConfig,
    read_limits: ReadLimits,
    images: &[PathBuf],
    out_dir: &Path,
) -> Result<TensorsWritten> {
    let mut seen: HashMap<PathBuf, &Path> = HashMap::new();
    let mut files = Vec::with_capacity(images.len());
    for image in images {
        let file = tensor_file(image, out_dir)?;
        if let Some(first) = seen.insert(file.clone(), image) {
            return Err(Error::invalid(format!(
                "{} and {} would both be written to {}: give images with distinct file names",
                first.display(),
                image.display(),
                file.display()
            )));
        }
        files.push(file);
    }
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let mut preprocessor = Preprocessor::with_limits(config.clone(), read_limits)?;
    let shape = match config.layout {
        Layout::Nchw => [
            1,
            3,
            config.crop_height as usize,
            config.crop_width as usize,
        ],
        Layout::Nhwc => [
            1,
            config.crop_height as usize,
            config.crop_width as usize,
            3,
        ],
    };
    let mut tensor = vec![0f32; preprocessor.tensor_len()];
    let mut result = TensorsWritten::default();
    for (image, file) in images.iter().zip(files) {
        if let Err(error) = preprocessor.preprocess_file(image, &mut tensor) {
            result.skipped.push(SkippedFile {
                file: path_text(image),
                reason: error.to_string(),
            });
            continue;
        }
        for warning in preprocessor.take_warnings() {
            tracing::warn!("{warning}");
        }
        write_npy(&file, &shape, &tensor)?;
        result.written.push(WrittenTensor {
            image: image.clone(),
            file,
            shape,
        });
    }
    Ok(result)
}

/// Writes `data` as a NumPy `.npy` file (format 1.0): `float32` little-endian, C order, of
/// `shape` (whose product must be `data.len()`).
///
/// Written here rather than with `ndarray-npy`: its 0.10 (ndarray 0.17), even without default
/// features, brings `pest` and `pest_derive`, `py_literal`, `num-bigint` and `stacker`/`psm`
/// (a C build) into every build to write this one header; the tests read our files with
/// NumPy.
pub fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    if shape.iter().product::<usize>() != data.len() {
        return Err(Error::invalid(format!(
            "{}: shape {shape:?} does not hold {} values",
            path.display(),
            data.len()
        )));
    }
    let bytes = npy_bytes(shape, data);
    let mut file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    file.write_all(&bytes).map_err(|e| Error::io(path, e))
}

/// The bytes of a `.npy` file: magic, version 1.0, header length, the header dictionary
/// (padded with spaces and a newline so that the data starts at a multiple of 64), the data.
fn npy_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    // A one-dimensional shape is written `(n,)`, as Python's tuple syntax needs.
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // 6 bytes of magic, 2 of version, 2 of header length.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + 4 * data.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    // The header of a few dimensions is far below u16::MAX bytes.
    let len = u16::try_from(header.len()).unwrap_or(u16::MAX);
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for value in data {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_describes_the_data() {
        let bytes = npy_bytes(&[1, 3, 2, 2], &[0.5; 12]);
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
        assert!(
            header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 2, 2), }")
        );
        assert!(header.ends_with('\n'));
        assert_eq!(bytes.len(), 10 + len + 48);
        assert_eq!(&bytes[10 + len..10 + len + 4], &0.5f32.to_le_bytes());
        let one = npy_bytes(&[3], &[1.0; 3]);
        assert!(one.windows(4).any(|w| w == b"(3,)"));
    }

    #[test]
    fn a_shape_that_does_not_fit_the_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_npy(&dir.path().join("x.npy"), &[2, 2], &[0.0; 3]).unwrap_err();
        assert!(err.to_string().contains("does not hold 3 values"), "{err}");
    }

    #[test]
    fn images_with_the_same_file_name_are_refused_before_any_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let images = [PathBuf::from("a/cat.jpg"), PathBuf::from("b/cat.jpg")];
        let err = write_tensors(
            &PreprocessConfig::torchvision(),
            ReadLimits::default(),
            &images,
            dir.path(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("a/cat.jpg and b/cat.jpg"), "{err}");
    }
}
