//! Execution providers: what the user asks for (`--ep auto|cpu|cuda`) and what a session got.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The execution provider a user asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProvider {
    /// CUDA when it registers, otherwise CPU (the fallback is reported).
    #[default]
    Auto,
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// CUDA; failing to register it is an error, never a silent CPU fallback.
    Cuda,
}

impl ExecutionProvider {
    /// Every accepted name, for help texts.
    pub const NAMES: [&'static str; 3] = ["auto", "cpu", "cuda"];

    /// Whether this request may use a GPU build of ONNX Runtime (affects discovery).
    pub fn wants_gpu(self) -> bool {
        !matches!(self, ExecutionProvider::Cpu)
    }
}

impl fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExecutionProvider::Auto => "auto",
            ExecutionProvider::Cpu => "cpu",
            ExecutionProvider::Cuda => "cuda",
        })
    }
}

/// Parses `auto`, `cpu` or `cuda` (any case). The error, [`Error::UnknownProvider`], is
/// `Send + Sync + 'static`, so the type is a `clap` value as it is:
/// `#[arg(long, default_value = "auto")] ep: ExecutionProvider`.
impl FromStr for ExecutionProvider {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(ExecutionProvider::Auto),
            "cpu" => Ok(ExecutionProvider::Cpu),
            "cuda" => Ok(ExecutionProvider::Cuda),
            _ => Err(Error::UnknownProvider { got: s.to_owned() }),
        }
    }
}

/// The provider a session actually runs on, as reported by every run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderReport {
    /// What was asked for.
    pub requested: ExecutionProvider,
    /// ONNX Runtime's name of the provider in use (`CPUExecutionProvider`, `CUDAExecutionProvider`).
    pub used: String,
    /// Why `auto` fell back to CPU, when it did.
    pub fallback: Option<String>,
}

impl fmt::Display for ProviderReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (requested {})", self.used, self.requested)?;
        if let Some(why) = &self.fallback {
            write!(f, "; CUDA unavailable, fell back to CPU: {why}")?;
        }
        Ok(())
    }
}

/// ONNX Runtime's name of the CPU provider.
pub const CPU_PROVIDER: &str = "CPUExecutionProvider";
/// ONNX Runtime's name of the CUDA provider.
pub const CUDA_PROVIDER: &str = "CUDAExecutionProvider";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_rejects_others() {
        for name in ExecutionProvider::NAMES {
            let ep: ExecutionProvider = name.parse().expect("known name");
            assert_eq!(ep.to_string(), name);
        }
        assert_eq!(
            "CUDA".parse::<ExecutionProvider>().ok(),
            Some(ExecutionProvider::Cuda)
        );
        let err = "tensorrt"
            .parse::<ExecutionProvider>()
            .expect_err("unknown");
        assert!(
            err.to_string().contains("expected auto, cpu or cuda"),
            "{err}"
        );
    }

    #[test]
    fn from_str_results() {
        assert_eq!(
            "cuda".parse::<ExecutionProvider>().ok(),
            Some(ExecutionProvider::Cuda)
        );
        let err = "bogus".parse::<ExecutionProvider>().expect_err("unknown");
        assert_eq!(
            err.to_string(),
            r#"unknown execution provider "bogus": expected auto, cpu or cuda"#
        );
        fn error_for_clap<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
        error_for_clap(&err);
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
            parse(&["--ep", "cuda"]).expect("cuda").ep,
            ExecutionProvider::Cuda
        );
        let err = parse(&["--ep", "bogus"]).expect_err("unknown").to_string();
        assert!(
            err.contains(r#"unknown execution provider "bogus": expected auto, cpu or cuda"#),
            "{err}"
        );
    }
}
