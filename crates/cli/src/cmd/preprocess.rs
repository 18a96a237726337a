//! `imagenetx preprocess`: the tensors a model would be fed, as `.npy` files.

use std::path::PathBuf;

use imagenetx::TensorConfig;
use imagenetx_imaging::ReadLimits;

use crate::Outcome;
use crate::common::runtime_search;
use crate::preprocess::PreprocessArgs;

/// Arguments of `imagenetx preprocess`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image files; each tensor is written as OUT/FILE_NAME.npy (e.g. cat.jpg.npy).
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<PathBuf>,
    /// Folder for the .npy files (made if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Preprocess as `evaluate` would for this ONNX model (its input size, layout and
    /// `imagenetx.preprocess` metadata, then the flags) [default: the torchvision defaults
    /// and the flags, NCHW].
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// ONNX Runtime shared library to load to read --model [default: ORT_DYLIB_PATH, the
    /// cache of `just setup-ort`, a Python onnxruntime package, the system library].
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Largest image file read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = ReadLimits::default().max_file_bytes)]
    pub max_file_size: u64,
    #[command(flatten)]
    pub preprocess: PreprocessArgs,
}

/// Runs `imagenetx preprocess`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let config = TensorConfig {
        model: args.model,
        runtime: runtime_search(args.ort_lib),
        preprocess: args.preprocess.spec(),
        read_limits: ReadLimits {
            max_file_bytes: args.max_file_size,
            ..ReadLimits::default()
        },
    };
    let resolved = imagenetx::resolve_tensor_preprocessing(&config)?;
    let done = imagenetx::write_tensors(
        &resolved.config,
        config.read_limits,
        &args.images,
        &args.out,
    )?;
    for decision in &resolved.decisions {
        eprintln!("{decision}");
    }
    for tensor in &done.written {
        println!(
            "{}\t{}\t{:?}",
            tensor.image.display(),
            tensor.file.display(),
            tensor.shape
        );
    }
    if done.skipped.is_empty() {
        return Ok(Outcome::Done);
    }
    eprintln!(
        "skipped {} of {} images:",
        done.skipped.len(),
        args.images.len()
    );
    for skipped in &done.skipped {
        eprintln!("  {}: {}", skipped.file, skipped.reason);
    }
    Ok(Outcome::Skipped)
}
