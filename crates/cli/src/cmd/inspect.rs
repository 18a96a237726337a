//! `imagenetx inspect`: how a model will be fed and read, with the reason for every choice.

use std::io::Write;
use std::path::PathBuf;

use imagenetx_infer::{
    Classifier, ClassifierConfig, ExecutionProvider, ModelFile, ModelInfo, ProviderReport, Runtime,
    RuntimeReport, RuntimeSearch, format_shape,
};
use serde::Serialize;

use crate::Outcome;

/// Arguments of `imagenetx inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ONNX model.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Name of the output holding the class scores (default: the one with 1000 or 1001 classes).
    #[arg(long, value_name = "NAME")]
    pub output: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// ONNX Runtime shared library to load [default: ORT_DYLIB_PATH, the cache of
    /// `just setup-ort`, a Python onnxruntime package, the system library].
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Execution provider: `cuda` fails if CUDA cannot be used, `auto` falls back to CPU.
    #[arg(long, value_name = "EP", default_value = "auto", value_parser = parse_ep)]
    pub ep: ExecutionProvider,
    /// Intra-op threads for the probe run (0: ONNX Runtime's default).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
}

fn parse_ep(s: &str) -> Result<ExecutionProvider, String> {
    s.parse()
        .map_err(|err: imagenetx_infer::Error| err.to_string())
}

/// What `inspect --json` prints.
#[derive(Debug, Serialize)]
struct Inspection<'a> {
    model: ModelFile,
    runtime: RuntimeReport,
    provider: &'a ProviderReport,
    info: InfoJson<'a>,
}

/// The model info, with its `imagenetx.preprocess` metadata parsed.
#[derive(Debug, Serialize)]
struct InfoJson<'a> {
    #[serde(flatten)]
    info: &'a ModelInfo,
    preprocess_metadata: Option<serde_json::Value>,
}

/// Runs `imagenetx inspect`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let config = ClassifierConfig::new(&args.model)
        .with_provider(args.ep)
        .with_intra_threads(args.threads)
        .with_output(args.output.clone());
    config.validate()?;
    let runtime = Runtime::find(
        &RuntimeSearch::default()
            .with_library(args.ort_lib.clone())
            .with_prefer_gpu(args.ep.wants_gpu())
            .with_python_package(true),
    )?;
    let classifier = Classifier::new(runtime, &config)?;
    let inspection = Inspection {
        model: ModelFile::hash(&args.model)?,
        runtime: runtime.report(),
        provider: classifier.provider(),
        info: InfoJson {
            info: classifier.info(),
            preprocess_metadata: crate::preprocess::preprocess_metadata(classifier.info())?,
        },
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &inspection)?;
        writeln!(out)?;
    } else {
        write_text(&mut out, &inspection)?;
    }
    out.flush()?;
    Ok(Outcome::Done)
}

fn write_text(out: &mut impl Write, i: &Inspection<'_>) -> std::io::Result<()> {
    let info = i.info.info;
    writeln!(out, "model          {}", i.model.path.display())?;
    writeln!(out, "sha256         {}", i.model.sha256)?;
    writeln!(
        out,
        "runtime        ONNX Runtime {} ({}: {})",
        i.runtime.version, i.runtime.library.source, i.runtime.library.reason
    )?;
    writeln!(out, "provider       {}", i.provider)?;
    let input = &info.input;
    writeln!(
        out,
        "input          `{}` {} {} ({})",
        input.name,
        input.element_type,
        format_shape(&input.shape),
        input.layout
    )?;
    let output = &info.output;
    writeln!(
        out,
        "class output   `{}` {} {} ({} classes{}, {})",
        output.name,
        output.element_type,
        format_shape(&output.shape),
        output.classes,
        if output.background_first {
            ", background first"
        } else {
            ""
        },
        info.scores
    )?;
    for other in &info.other_outputs {
        writeln!(out, "other output   {other}")?;
    }
    match &i.info.preprocess_metadata {
        Some(value) => writeln!(out, "preprocessing  model metadata {value}")?,
        None => writeln!(out, "preprocessing  defaults (no model metadata)")?,
    }
    writeln!(out, "decisions")?;
    for decision in &info.decisions {
        writeln!(out, "  {decision}")?;
    }
    Ok(())
}
