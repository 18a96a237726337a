//! Execution providers: what a user asks for (`--ep NAME`), what the loaded ONNX Runtime
//! offers, and what a session got.
//!
//! Every provider `ort` can register on a session that applies to image classifiers is
//! known here, once, in [`PROVIDERS`]: its command-line name, ONNX Runtime's name, whether
//! `auto` tries it, and how to get an ONNX Runtime build that has it. A provider asked for by
//! name is registered with `error_on_failure`: it is used or the run stops, never a silent
//! fallback. `auto` tries the accelerators the loaded runtime offers in [`AUTO_ORDER`], then
//! the CPU, and records why each one it skipped could not be used.

use std::fmt;
use std::str::FromStr;

use ort::ep::ExecutionProviderDispatch;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The execution provider a user asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
#[non_exhaustive]
pub enum ExecutionProvider {
    /// The first accelerator of [`AUTO_ORDER`] that the loaded runtime offers and that
    /// registers, otherwise the CPU (the reasons are reported).
    #[default]
    Auto,
    /// ONNX Runtime's CPU provider (with its memory arena).
    Cpu,
    /// NVIDIA CUDA.
    Cuda,
    /// NVIDIA TensorRT (builds an engine per model and input shape; unsupported nodes go to
    /// CUDA or the CPU).
    TensorRt,
    /// NVIDIA TensorRT for RTX.
    NvTensorRtRtx,
    /// Intel OpenVINO (CPUs, integrated GPUs, NPUs).
    OpenVino,
    /// Apple Core ML (macOS, iOS).
    CoreMl,
    /// XNNPACK, optimised CPU kernels (ARM and x86).
    Xnnpack,
    /// DirectML (Windows GPUs).
    DirectMl,
    /// AMD ROCm.
    Rocm,
    /// AMD MIGraphX.
    MiGraphX,
    /// Qualcomm QNN (Snapdragon NPUs).
    Qnn,
    /// Intel oneDNN (DNNL) CPU kernels.
    OneDnn,
    /// Arm Compute Library.
    Acl,
    /// Android NNAPI.
    Nnapi,
    /// Huawei Ascend CANN.
    Cann,
    /// WebGPU (Dawn) outside the browser.
    WebGpu,
}

/// What is known about one execution provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderInfo {
    /// The provider.
    pub provider: ExecutionProvider,
    /// The name `--ep` takes (lowercase).
    pub name: &'static str,
    /// ONNX Runtime's name (`CUDAExecutionProvider`), as `GetAvailableProviders` lists it.
    pub ort_name: &'static str,
    /// How to get an ONNX Runtime build that has it.
    pub how_to_get: &'static str,
}

/// Every provider `--ep` accepts (besides `auto`), in the order help texts list them.
pub const PROVIDERS: [ProviderInfo; 16] = [
    info(
        ExecutionProvider::Cpu,
        "cpu",
        CPU_PROVIDER,
        "every ONNX Runtime build has it",
    ),
    info(
        ExecutionProvider::Cuda,
        "cuda",
        CUDA_PROVIDER,
        "`just setup-gpu` (onnxruntime-gpu 1.31.1, Linux x86_64; needs CUDA 13 and cuDNN 9 on \
         the loader path), then --ort-lib .cache/onnxruntime-gpu/libonnxruntime.so.1.31.1",
    ),
    info(
        ExecutionProvider::TensorRt,
        "tensorrt",
        "TensorrtExecutionProvider",
        "`just setup-gpu` (onnxruntime-gpu has it; it also needs TensorRT 10, libnvinfer.so.10, \
         on the loader path)",
    ),
    info(
        ExecutionProvider::NvTensorRtRtx,
        "nv-tensorrt-rtx",
        "NvTensorRTRTXExecutionProvider",
        "an ONNX Runtime built with --use_nv_tensorrt_rtx (NVIDIA RTX GPUs)",
    ),
    info(
        ExecutionProvider::OpenVino,
        "openvino",
        "OpenVINOExecutionProvider",
        "the library of the onnxruntime-openvino wheel (Intel CPUs, GPUs and NPUs), with \
         OpenVINO's libraries on the loader path",
    ),
    info(
        ExecutionProvider::CoreMl,
        "coreml",
        "CoreMLExecutionProvider",
        "the macOS or iOS ONNX Runtime (the onnxruntime wheel for macOS has it)",
    ),
    info(
        ExecutionProvider::Xnnpack,
        "xnnpack",
        "XnnpackExecutionProvider",
        "an ONNX Runtime built with --use_xnnpack (the Android and iOS packages have it)",
    ),
    info(
        ExecutionProvider::DirectMl,
        "directml",
        "DmlExecutionProvider",
        "the onnxruntime-directml build (Windows)",
    ),
    info(
        ExecutionProvider::Rocm,
        "rocm",
        "ROCMExecutionProvider",
        "an ONNX Runtime built with --use_rocm (AMD GPUs), with ROCm on the loader path",
    ),
    info(
        ExecutionProvider::MiGraphX,
        "migraphx",
        "MIGraphXExecutionProvider",
        "the onnxruntime-migraphx build (AMD GPUs), with MIGraphX on the loader path",
    ),
    info(
        ExecutionProvider::Qnn,
        "qnn",
        "QNNExecutionProvider",
        "the onnxruntime-qnn build (Qualcomm Snapdragon)",
    ),
    info(
        ExecutionProvider::OneDnn,
        "dnnl",
        "DnnlExecutionProvider",
        "an ONNX Runtime built with --use_dnnl",
    ),
    info(
        ExecutionProvider::Acl,
        "acl",
        "ACLExecutionProvider",
        "an ONNX Runtime built with --use_acl (Arm Compute Library)",
    ),
    info(
        ExecutionProvider::Nnapi,
        "nnapi",
        "NnapiExecutionProvider",
        "the Android ONNX Runtime package",
    ),
    info(
        ExecutionProvider::Cann,
        "cann",
        "CANNExecutionProvider",
        "an ONNX Runtime built with --use_cann (Huawei Ascend)",
    ),
    info(
        ExecutionProvider::WebGpu,
        "webgpu",
        "WebGpuExecutionProvider",
        "an ONNX Runtime built with --use_webgpu",
    ),
];

/// The accelerators `auto` tries, in this order, when the loaded runtime offers them; then
/// the CPU. Providers that compile an engine per model before the first image (TensorRT) or
/// that are CPU kernels themselves (XNNPACK, oneDNN, ACL) are used only when asked
/// for by name.
pub const AUTO_ORDER: [ExecutionProvider; 8] = [
    ExecutionProvider::Cuda,
    ExecutionProvider::Rocm,
    ExecutionProvider::MiGraphX,
    ExecutionProvider::DirectMl,
    ExecutionProvider::CoreMl,
    ExecutionProvider::OpenVino,
    ExecutionProvider::Qnn,
    ExecutionProvider::Cann,
];

const fn info(
    provider: ExecutionProvider,
    name: &'static str,
    ort_name: &'static str,
    how_to_get: &'static str,
) -> ProviderInfo {
    ProviderInfo {
        provider,
        name,
        ort_name,
        how_to_get,
    }
}

/// Names `--ep` also accepts for a provider.
const ALIASES: [(&str, ExecutionProvider); 2] = [
    ("onednn", ExecutionProvider::OneDnn),
    ("trt", ExecutionProvider::TensorRt),
];

impl ExecutionProvider {
    /// What is known about this provider; `None` for [`ExecutionProvider::Auto`].
    pub fn info(self) -> Option<&'static ProviderInfo> {
        PROVIDERS.iter().find(|p| p.provider == self)
    }

    /// The name `--ep` takes.
    pub fn name(self) -> &'static str {
        self.info().map_or("auto", |p| p.name)
    }

    /// Every accepted name (`auto` first), for help texts.
    pub fn names() -> impl Iterator<Item = &'static str> {
        std::iter::once("auto").chain(PROVIDERS.iter().map(|p| p.name))
    }

    /// Whether this request may use a GPU build of ONNX Runtime (it affects which copy of the
    /// library the runtime search prefers).
    pub fn wants_gpu(self) -> bool {
        matches!(
            self,
            ExecutionProvider::Auto | ExecutionProvider::Cuda | ExecutionProvider::TensorRt
        )
    }

    /// The provider as `ort` registers it, failing the session on failure.
    pub(crate) fn dispatch(self) -> ExecutionProviderDispatch {
        use ort::ep;
        let dispatch = match self {
            // ONNX Runtime's own default (`ort` turns the arena off): without it, every run
            // allocates its activations afresh, about 40% slower on batches of 32.
            ExecutionProvider::Auto | ExecutionProvider::Cpu => {
                ep::CPU::default().with_arena_allocator(true).build()
            }
            ExecutionProvider::Cuda => ep::CUDA::default().build(),
            ExecutionProvider::TensorRt => ep::TensorRT::default().build(),
            ExecutionProvider::NvTensorRtRtx => ep::NVRTX::default().build(),
            ExecutionProvider::OpenVino => ep::OpenVINO::default().build(),
            ExecutionProvider::CoreMl => ep::CoreML::default().build(),
            ExecutionProvider::Xnnpack => ep::XNNPACK::default().build(),
            ExecutionProvider::DirectMl => ep::DirectML::default().build(),
            ExecutionProvider::Rocm => ep::ROCm::default().build(),
            ExecutionProvider::MiGraphX => ep::MIGraphX::default().build(),
            ExecutionProvider::Qnn => ep::QNN::default().build(),
            ExecutionProvider::OneDnn => ep::OneDNN::default().build(),
            ExecutionProvider::Acl => ep::ACL::default().build(),
            ExecutionProvider::Nnapi => ep::NNAPI::default().build(),
            ExecutionProvider::Cann => ep::CANN::default().build(),
            ExecutionProvider::WebGpu => ep::WebGPU::default().build(),
        };
        dispatch.error_on_failure()
    }
}

impl fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses `auto` or a provider's name (any case; `onednn` and `trt` are accepted
/// too). The error, [`Error::UnknownProvider`], is `Send + Sync + 'static`, so the type is a
/// `clap` value as it is: `#[arg(long, default_value = "auto")] ep: ExecutionProvider`.
impl FromStr for ExecutionProvider {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let lower = s.trim().to_ascii_lowercase().replace('_', "-");
        if lower == "auto" {
            return Ok(ExecutionProvider::Auto);
        }
        PROVIDERS
            .iter()
            .map(|p| (p.name, p.provider))
            .chain(ALIASES)
            .find(|(name, _)| *name == lower)
            .map(|(_, provider)| provider)
            .ok_or_else(|| Error::UnknownProvider {
                got: s.to_owned(),
                expected: ExecutionProvider::names().collect::<Vec<_>>().join(", "),
            })
    }
}

impl From<ExecutionProvider> for String {
    fn from(provider: ExecutionProvider) -> Self {
        provider.name().to_owned()
    }
}

impl TryFrom<String> for ExecutionProvider {
    type Error = Error;

    fn try_from(name: String) -> Result<Self, Error> {
        name.parse()
    }
}

/// The provider a session actually runs on, as reported by every run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderReport {
    /// What was asked for.
    pub requested: ExecutionProvider,
    /// ONNX Runtime's name of the provider in use (`CPUExecutionProvider`, `CUDAExecutionProvider`).
    pub used: String,
    /// Why `auto` ended on the CPU, when it did: each accelerator it tried and why it could
    /// not be used, or that the runtime offers none.
    pub fallback: Option<String>,
    /// What the loaded ONNX Runtime offers (ONNX Runtime's names, its own order).
    #[serde(default)]
    pub available: Vec<String>,
}

impl fmt::Display for ProviderReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (requested {})", self.used, self.requested)?;
        if let Some(why) = &self.fallback {
            write!(f, "; no accelerator used, fell back to CPU: {why}")?;
        }
        Ok(())
    }
}

/// One line of `imagenetx inspect --providers`: a known provider and the loaded runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderAvailability {
    /// The name `--ep` takes (`None` for a provider the runtime has and this tool does not
    /// know).
    pub name: Option<&'static str>,
    /// ONNX Runtime's name.
    pub ort_name: String,
    /// Whether the loaded runtime was built with it (registering may still fail, e.g. for a
    /// missing CUDA library).
    pub in_runtime: bool,
    /// Its place in `auto`'s order (1 = tried first), if `auto` tries it.
    pub auto_rank: Option<usize>,
    /// How to get a build that has it.
    pub how_to_get: Option<&'static str>,
}

/// Every known provider, then any other one the runtime offers, each with whether the
/// runtime `available` (ONNX Runtime's names, from [`crate::Runtime::providers`]) has it.
pub fn availability(available: &[String]) -> Vec<ProviderAvailability> {
    let mut rows: Vec<ProviderAvailability> = PROVIDERS
        .iter()
        .map(|p| ProviderAvailability {
            name: Some(p.name),
            ort_name: p.ort_name.to_owned(),
            in_runtime: available.iter().any(|a| a == p.ort_name),
            auto_rank: AUTO_ORDER
                .iter()
                .position(|&a| a == p.provider)
                .map(|i| i + 1),
            how_to_get: Some(p.how_to_get),
        })
        .collect();
    for other in available {
        if !PROVIDERS.iter().any(|p| p.ort_name == other) {
            rows.push(ProviderAvailability {
                name: None,
                ort_name: other.clone(),
                in_runtime: true,
                auto_rank: None,
                how_to_get: None,
            });
        }
    }
    rows
}

/// ONNX Runtime's name of the CPU provider.
pub const CPU_PROVIDER: &str = "CPUExecutionProvider";
/// ONNX Runtime's name of the CUDA provider.
pub const CUDA_PROVIDER: &str = "CUDAExecutionProvider";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_and_others_are_refused() {
        for name in ExecutionProvider::names() {
            let ep: ExecutionProvider = name.parse().expect("known name");
            assert_eq!(ep.to_string(), name);
            assert_eq!(ep.name(), name);
        }
        assert_eq!(ExecutionProvider::names().count(), PROVIDERS.len() + 1);
        assert_eq!(
            "CUDA".parse::<ExecutionProvider>().ok(),
            Some(ExecutionProvider::Cuda)
        );
        assert_eq!(
            "OneDNN".parse::<ExecutionProvider>().ok(),
            Some(ExecutionProvider::OneDnn)
        );
        assert_eq!(
            "nv_tensorrt_rtx".parse::<ExecutionProvider>().ok(),
            Some(ExecutionProvider::NvTensorRtRtx)
        );
        let err = "bogus".parse::<ExecutionProvider>().expect_err("unknown");
        let text = err.to_string();
        assert!(
            text.starts_with(
                r#"unknown execution provider "bogus": expected one of auto, cpu, cuda, tensorrt"#
            ),
            "{text}"
        );
        fn error_for_clap<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
        error_for_clap(&err);
    }

    #[test]
    fn the_table_is_consistent() {
        let mut names: Vec<_> = PROVIDERS.iter().map(|p| p.name).collect();
        let mut ort_names: Vec<_> = PROVIDERS.iter().map(|p| p.ort_name).collect();
        names.sort_unstable();
        names.dedup();
        ort_names.sort_unstable();
        ort_names.dedup();
        assert_eq!(names.len(), PROVIDERS.len(), "duplicate --ep name");
        assert_eq!(
            ort_names.len(),
            PROVIDERS.len(),
            "duplicate ONNX Runtime name"
        );
        for p in PROVIDERS {
            assert_eq!(p.provider.info(), Some(&p));
            // The dispatch registers under the same ONNX Runtime name.
            assert_eq!(p.provider.dispatch().name(), p.ort_name, "{}", p.name);
        }
        for a in AUTO_ORDER {
            assert!(a.info().is_some() && a != ExecutionProvider::Cpu);
        }
        assert!(ExecutionProvider::Auto.info().is_none());
    }

    #[test]
    fn availability_marks_the_runtime_and_keeps_unknown_ones() {
        let available = vec![
            CUDA_PROVIDER.to_owned(),
            "FancyExecutionProvider".to_owned(),
            CPU_PROVIDER.to_owned(),
        ];
        let rows = availability(&available);
        assert_eq!(rows.len(), PROVIDERS.len() + 1);
        let cuda = rows.iter().find(|r| r.name == Some("cuda")).expect("cuda");
        assert!(cuda.in_runtime);
        assert_eq!(cuda.auto_rank, Some(1));
        let trt = rows
            .iter()
            .find(|r| r.name == Some("tensorrt"))
            .expect("trt");
        assert!(!trt.in_runtime);
        assert_eq!(trt.auto_rank, None);
        let last = rows.last().expect("unknown one");
        assert_eq!(
            (last.name, last.ort_name.as_str(), last.in_runtime),
            (None, "FancyExecutionProvider", true)
        );
    }

    #[test]
    fn serializes_as_its_name() {
        let json = serde_json::to_string(&ExecutionProvider::TensorRt).expect("json");
        assert_eq!(json, r#""tensorrt""#);
        let back: ExecutionProvider = serde_json::from_str(r#""cuda""#).expect("parse");
        assert_eq!(back, ExecutionProvider::Cuda);
        let report: ProviderReport = serde_json::from_str(
            r#"{"requested":"auto","used":"CPUExecutionProvider","fallback":null}"#,
        )
        .expect("a record written before `available` existed");
        assert!(report.available.is_empty());
    }

    /// The type is a clap argument without a hand-written value parser.
    #[test]
    fn parses_as_a_clap_value() {
        use clap::Parser;

        #[derive(Debug, Parser)]
        struct Args {
            #[arg(long, default_value = "auto")]
            ep: ExecutionProvider,
        }
        let parse =
            |args: &[&str]| Args::try_parse_from(std::iter::once("x").chain(args.iter().copied()));
        assert_eq!(parse(&[]).expect("default").ep, ExecutionProvider::Auto);
        assert_eq!(
            parse(&["--ep", "openvino"]).expect("openvino").ep,
            ExecutionProvider::OpenVino
        );
        let err = parse(&["--ep", "bogus"]).expect_err("unknown").to_string();
        assert!(
            err.contains(r#"unknown execution provider "bogus": expected one of auto, cpu"#),
            "{err}"
        );
    }
}
