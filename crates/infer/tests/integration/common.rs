//! Shared helpers of the integration tests: the runtime, fixtures, the Python reference.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use imagenetx_infer::{Runtime, RuntimeSearch};
pub use imagenetx_test_support::{venv_python, workspace_root as workspace};

/// A model of `fixtures/models/`.
pub fn fixture(name: &str) -> PathBuf {
    imagenetx_test_support::fixture(Path::new("models").join(name))
}

/// The ONNX Runtime the default search finds; fails the test when absent.
pub fn runtime() -> &'static Runtime {
    match Runtime::find(&RuntimeSearch::default()) {
        Ok(runtime) => runtime,
        Err(err) => panic!("these tests need ONNX Runtime; run `just setup-ort` first.\n{err}"),
    }
}

/// A seeded pseudo-random tensor (splitmix64, uniform in [-2.5, 2.5)): the golden
/// "preprocessed" input, so inference is tested apart from decoding.
pub fn golden_tensor(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 5.0 - 2.5
        })
        .collect()
}

/// One image's reference result.
#[derive(Debug, Clone, PartialEq)]
pub enum Reference {
    /// Top-5 classes and probabilities.
    Top5(Vec<usize>, Vec<f64>),
    /// The scores held NaN.
    Nan,
}

/// Runs `tests/ort_reference.py` (Python onnxruntime) on `data` shaped `shape`.
pub fn reference(
    model: &Path,
    data: &[f32],
    shape: [usize; 4],
    output: &str,
    probabilities: bool,
    background: bool,
) -> Vec<Reference> {
    let dir = imagenetx_test_support::temp_dir();
    let tensor = dir.path().join("golden.f32");
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&tensor, bytes).expect("write golden tensor");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ort_reference.py");
    let shape_arg = shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut cmd = imagenetx_test_support::python(&script);
    cmd.arg(model)
        .arg(&tensor)
        .arg(shape_arg)
        .args(["--output", output]);
    if probabilities {
        cmd.arg("--probabilities");
    }
    if background {
        cmd.arg("--background");
    }
    let out = cmd.output().expect("run the Python reference");
    assert!(
        out.status.success(),
        "reference failed on {}: {}",
        model.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("reference JSON");
    json["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|image| {
            if image.as_str() == Some("nan") {
                return Reference::Nan;
            }
            let classes = image["classes"]
                .as_array()
                .expect("classes")
                .iter()
                .map(|c| c.as_u64().expect("class") as usize)
                .collect();
            let probs = image["probabilities"]
                .as_array()
                .expect("probabilities")
                .iter()
                .map(|p| p.as_f64().expect("prob"))
                .collect();
            Reference::Top5(classes, probs)
        })
        .collect()
}
