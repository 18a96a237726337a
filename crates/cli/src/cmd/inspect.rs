//! `imagenetx inspect`: how a model will be fed and read, with the reason for every choice.

use std::io::Write;
use std::path::PathBuf;

use imagenetx::{EvaluatorConfig, ResolvedPreprocess};
use imagenetx_imaging::PixelScale;
use imagenetx_infer::{
    ExecutionProvider, ModelFile, ModelInfo, ProviderReport, RuntimeReport, format_shape,
};
use serde::Serialize;

use crate::Outcome;
use crate::cmd::evaluate::InputArgs;
use crate::common::runtime_search;
use crate::preprocess::PreprocessArgs;

/// Arguments of `imagenetx inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ONNX model.
    #[arg(value_name = "MODEL", required_unless_present = "providers")]
    pub model: Option<PathBuf>,
    /// List the execution providers of the ONNX Runtime library that would be loaded (each
    /// `--ep` name, whether the library has it, `auto`'s order, how to get a build with it),
    /// instead of inspecting a model.
    #[arg(long, conflicts_with = "model")]
    pub providers: bool,
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
    /// Execution provider: auto, cpu, cuda, tensorrt, openvino, coreml, xnnpack, ... (see
    /// `--providers`). A provider named is used or the command fails; `auto` tries the
    /// accelerators the runtime has, then the CPU.
    #[arg(long, value_name = "EP", default_value = "auto")]
    pub ep: ExecutionProvider,
    /// Intra-op threads for the probe run (0: ONNX Runtime's default).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    #[command(flatten)]
    pub input: InputArgs,
    /// The preprocessing `evaluate` would use with these flags is shown, field by field,
    /// with where each value came from.
    #[command(flatten)]
    pub preprocess: PreprocessArgs,
}

/// What `inspect --json` prints.
#[derive(Debug, Serialize)]
struct Inspection<'a> {
    model: ModelFile,
    runtime: RuntimeReport,
    provider: &'a ProviderReport,
    info: &'a ModelInfo,
    /// `null` when it cannot be resolved; then `preprocessing_error` says why.
    preprocessing: Option<&'a ResolvedPreprocess>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preprocessing_error: Option<String>,
}

/// Runs `imagenetx inspect`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let Some(model) = &args.model else {
        return list_providers(&args);
    };
    let inspected = imagenetx::evaluate::inspect(&EvaluatorConfig {
        runtime: runtime_search(args.ort_lib.clone()),
        provider: args.ep,
        intra_threads: args.threads,
        output: args.output.clone(),
        input: args.input.overrides(),
        preprocess: args.preprocess.spec(),
        ..EvaluatorConfig::new(model)
    })?;
    let inspection = Inspection {
        model: inspected.model.clone(),
        runtime: inspected.runtime.report(),
        provider: inspected.classifier.provider(),
        info: inspected.classifier.info(),
        preprocessing: inspected.preprocessing.as_ref().ok(),
        preprocessing_error: inspected
            .preprocessing
            .as_ref()
            .err()
            .map(ToString::to_string),
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

/// `inspect --providers`: the runtime's execution providers, as text or JSON.
fn list_providers(args: &Args) -> anyhow::Result<Outcome> {
    let search = runtime_search(args.ort_lib.clone()).with_prefer_gpu(args.ep.wants_gpu());
    let listed = imagenetx::providers(&search)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &listed)?;
        writeln!(out)?;
    } else {
        let runtime = &listed.runtime;
        writeln!(
            out,
            "runtime  ONNX Runtime {} ({}: {})",
            runtime.version,
            runtime.library.path.display(),
            runtime.library.reason
        )?;
        writeln!(
            out,
            "{:<16} {:<32} {:<8} {:<5} how to get a build with it",
            "--ep", "ONNX Runtime name", "here", "auto"
        )?;
        for p in &listed.providers {
            writeln!(
                out,
                "{:<16} {:<32} {:<8} {:<5} {}",
                p.name.unwrap_or("-"),
                p.ort_name,
                if p.in_runtime { "yes" } else { "no" },
                p.auto_rank.map_or("-".to_owned(), |r| r.to_string()),
                if p.in_runtime {
                    ""
                } else {
                    p.how_to_get.unwrap_or("")
                }
            )?;
        }
        writeln!(
            out,
            "(\"here\": the library was built with it; using it may still need its own libraries \
             and a device. auto tries the numbered ones in order, then cpu.)"
        )?;
    }
    out.flush()?;
    Ok(Outcome::Done)
}

fn write_text(out: &mut impl Write, i: &Inspection<'_>) -> std::io::Result<()> {
    let info = i.info;
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
    match info.metadata.custom(imagenetx::preprocess::METADATA_KEY) {
        Some(value) => writeln!(out, "preprocessing  model metadata {value}")?,
        None => writeln!(out, "preprocessing  defaults (no model metadata)")?,
    }
    let p = match (i.preprocessing, &i.preprocessing_error) {
        (Some(p), _) => p,
        (None, error) => {
            writeln!(
                out,
                "resolved       error: {}",
                error.as_deref().unwrap_or("unknown")
            )?;
            writeln!(out, "decisions")?;
            for decision in &info.decisions {
                writeln!(out, "  {decision}")?;
            }
            return Ok(());
        }
    };
    let c = &p.config;
    let values = [
        c.resize.to_string(),
        format!("{}x{}", c.crop_height, c.crop_width),
        format!("{:?}", c.interpolation).to_lowercase(),
        format!("{:?}", c.mean),
        format!("{:?}", c.std),
        match c.scale {
            PixelScale::UnitInterval => "unit (p / 255)".to_string(),
            PixelScale::Raw => "raw255 (p)".to_string(),
        },
        format!("{:?}", c.channel_order).to_uppercase(),
        c.layout.to_string(),
    ];
    writeln!(
        out,
        "resolved (defaults, then side files, then model metadata, then flags):"
    )?;
    for ((field, source), value) in p.sources.fields().into_iter().zip(values) {
        writeln!(out, "  {field:<14} {value:<28} {source}")?;
    }
    writeln!(out, "decisions")?;
    for decision in &info.decisions {
        writeln!(out, "  {decision}")?;
    }
    Ok(())
}
