//! `imagenetx inspect` through the real binary, on every fixture model.
//!
//! Needs ONNX Runtime (`just setup-ort`); fails, saying so, when it cannot be found.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use imagenetx_test_support::text;

fn fixture(name: &str) -> PathBuf {
    imagenetx_test_support::fixture(Path::new("models").join(name))
}

pub(crate) fn inspect(args: &[&str]) -> Output {
    if let Err(err) = imagenetx_infer::locate_runtime(None, false) {
        panic!("`imagenetx inspect` tests need ONNX Runtime; run `just setup-ort` first.\n{err}");
    }
    Command::new(parity_util::imagenetx())
        .arg("inspect")
        .args(args)
        .output()
        .expect("run imagenetx")
}

fn json_of(model: &str) -> serde_json::Value {
    let path = fixture(model);
    let out = inspect(&[path.to_str().expect("utf-8 path"), "--json", "--ep", "cpu"]);
    assert_eq!(out.status.code(), Some(0), "{model}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("{model}: not JSON ({err}): {}", text(&out.stdout)))
}

#[test]
fn every_good_fixture_is_explained() {
    // (file, layout, fixed batch, input size, output, classes, scores, element type)
    let table = [
        (
            "nchw_dynamic.onnx",
            "NCHW",
            None,
            224,
            "logits",
            1000,
            "logits",
            "f32",
        ),
        (
            "nchw_batch1.onnx",
            "NCHW",
            Some(1),
            224,
            "logits",
            1000,
            "logits",
            "f32",
        ),
        (
            "nhwc.onnx",
            "NHWC",
            None,
            224,
            "logits",
            1000,
            "logits",
            "f32",
        ),
        (
            "classes1001.onnx",
            "NCHW",
            None,
            224,
            "logits",
            1001,
            "logits",
            "f32",
        ),
        (
            "softmax.onnx",
            "NCHW",
            None,
            224,
            "probabilities",
            1000,
            "probabilities",
            "f32",
        ),
        (
            "two_outputs.onnx",
            "NCHW",
            None,
            224,
            "logits",
            1000,
            "logits",
            "f32",
        ),
        (
            "input160.onnx",
            "NCHW",
            None,
            160,
            "logits",
            1000,
            "logits",
            "f32",
        ),
        (
            "float16.onnx",
            "NCHW",
            None,
            224,
            "logits",
            1000,
            "logits",
            "f16",
        ),
    ];
    for (model, layout, batch, size, output, classes, scores, element) in table {
        let json = json_of(model);
        let info = &json["info"];
        assert_eq!(info["input"]["layout"], layout, "{model}");
        assert_eq!(info["input"]["batch"].as_u64(), batch, "{model}");
        assert_eq!(info["input"]["height"], size, "{model}");
        assert_eq!(info["input"]["width"], size, "{model}");
        assert_eq!(info["input"]["element_type"], element, "{model}");
        assert_eq!(info["output"]["name"], output, "{model}");
        assert_eq!(info["output"]["classes"], classes, "{model}");
        assert_eq!(
            info["output"]["background_first"],
            classes == 1001,
            "{model}"
        );
        assert_eq!(info["scores"], scores, "{model}");
        assert_eq!(json["provider"]["used"], "CPUExecutionProvider", "{model}");
        assert_eq!(json["runtime"]["version"], "1.31.1", "{model}");
        assert_eq!(
            json["model"]["sha256"].as_str().map(str::len),
            Some(64),
            "{model}"
        );
        // The model's own record, typed, beside the preprocessing resolved from it.
        assert_eq!(
            json["preprocessing"]["metadata"].is_object(),
            model == "input160.onnx",
            "{model}"
        );
        assert_eq!(
            info["metadata"]["custom"]["imagenetx.preprocess"].is_string(),
            model == "input160.onnx",
            "{model}"
        );
        let crop = &json["preprocessing"]["sources"]["crop"];
        let layer = if model == "input160.onnx" {
            "model_metadata"
        } else {
            "model_input"
        };
        assert_eq!(crop["layer"], layer, "{model}: {crop}");
    }
}

#[test]
fn text_output_gives_each_decision_with_its_reason() {
    let out = inspect(&[
        fixture("nchw_dynamic.onnx").to_str().expect("utf-8"),
        "--ep",
        "cpu",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for line in [
        "layout NCHW: input dim 1 is 3",
        "batch dynamic: input dim 0 is `N`",
        "class output `logits`: the only output, [N,1000], has a 1000-class dimension",
        "provider       CPUExecutionProvider (requested cpu)",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert!(stdout.contains("scores logits: the probe"), "{stdout}");
}

#[test]
fn output_flag_picks_the_class_output() {
    let model = fixture("two_outputs.onnx");
    let out = inspect(&[
        model.to_str().expect("utf-8"),
        "--ep",
        "cpu",
        "--output",
        "logits",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("class output `logits`: named with --output"));
    let out = inspect(&[
        model.to_str().expect("utf-8"),
        "--ep",
        "cpu",
        "--output",
        "features",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("expected [N,1000] or [N,1001]"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_models_exit_2_saying_what_was_expected() {
    let cases = [
        ("not_onnx.onnx", "expected an ONNX model file"),
        (
            "no_image_input.onnx",
            "no image-like input: expected [N,3,H,W] or [N,H,W,3], got `input` [N,10]",
        ),
        (
            "no_class_output.onnx",
            "no class output: expected an output shaped [N,1000] or [N,1001]",
        ),
    ];
    for (model, needle) in cases {
        let out = inspect(&[fixture(model).to_str().expect("utf-8"), "--ep", "cpu"]);
        assert_eq!(out.status.code(), Some(2), "{model}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(needle), "{model}: {stderr}");
        assert!(
            stderr.contains(model),
            "{model}: the error should name the file: {stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "{model}: nothing on stdout on failure"
        );
    }
}

#[test]
fn nan_model_is_inspectable() {
    let json = json_of("nan_output.onnx");
    assert_eq!(json["info"]["scores"], "logits");
    let decisions = json["info"]["decisions"].as_array().expect("decisions");
    assert!(decisions.iter().any(
        |d| d["subject"] == "scores" && d["reason"].as_str().is_some_and(|r| r.contains("NaN"))
    ));
}

#[test]
fn cuda_is_an_error_and_auto_says_it_fell_back() {
    let model = fixture("nchw_dynamic.onnx");
    let model = model.to_str().expect("utf-8");
    let out = inspect(&[model, "--ep", "cuda"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--ep cuda on a machine without CUDA must fail"
    );
    assert!(
        text(&out.stderr)
            .contains("execution provider cuda (CUDAExecutionProvider) is not in ONNX Runtime"),
        "{}",
        text(&out.stderr)
    );

    let out = inspect(&[model, "--ep", "auto", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["provider"]["used"], "CPUExecutionProvider");
    assert!(
        json["provider"]["fallback"].is_string(),
        "{}",
        json["provider"]
    );

    let out = inspect(&[model, "--ep", "tpu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("expected one of auto, cpu, cuda, tensorrt"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn missing_runtime_path_is_a_clear_error() {
    let model = fixture("nchw_dynamic.onnx");
    let out = inspect(&[
        model.to_str().expect("utf-8"),
        "--ort-lib",
        "/nonexistent/libonnxruntime.so",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("/nonexistent/libonnxruntime.so (from --ort-lib) does not exist"),
        "{}",
        text(&out.stderr)
    );
}

use crate::parity_util;

/// Builds, with the reference venv's `onnx` package, a one-node model that parses as ONNX
/// but that ONNX Runtime cannot run, into `dir`: `kind` is `domain` (an operator of a
/// made-up domain), `op` (an unknown operator of the standard domain), `ir99` (IR version 99)
/// or `opset99` (standard opset 99).
fn unsupported_model(dir: &Path, kind: &str) -> PathBuf {
    const SCRIPT: &str = r#"
import sys
import onnx
from onnx import TensorProto, helper
kind, out = sys.argv[1], sys.argv[2]
domain = "com.example.madeup" if kind == "domain" else ""
op = "Identity" if kind in ("ir99", "opset99") else "Frobnicate"
opsets = [helper.make_opsetid("", 99 if kind == "opset99" else 13)]
if domain:
    opsets.append(helper.make_opsetid(domain, 1))
graph = helper.make_graph(
    [helper.make_node(op, ["x"], ["y"], domain=domain)],
    "g",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 224, 224])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1000])],
)
model = helper.make_model(graph, opset_imports=opsets)
model.ir_version = 99 if kind == "ir99" else 8
onnx.save(model, out)
"#;
    let path = dir.join(format!("unsupported_{kind}.onnx"));
    let out = Command::new(parity_util::venv_python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(kind)
        .arg(&path)
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "building {kind} model: {}",
        text(&out.stderr)
    );
    path
}

/// A valid ONNX file the runtime cannot run says what it lacks (ONNX Runtime's own message
/// kept), not that the file is not an ONNX model.
#[test]
fn unsupported_models_say_what_is_unsupported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "domain",
            "operator `Frobnicate` of domain `com.example.madeup` is not available",
        ),
        (
            "op",
            "operator `Frobnicate` (opset 13) is not available in this ONNX Runtime",
        ),
        (
            "ir99",
            "the model's IR version 99 is not supported by this ONNX Runtime",
        ),
        (
            "opset99",
            "the model's opset 99 is not supported by this ONNX Runtime",
        ),
    ];
    for (kind, needle) in cases {
        let model = unsupported_model(dir.path(), kind);
        let out = inspect(&[model.to_str().expect("utf-8"), "--ep", "cpu"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{kind}: {stderr}");
        assert!(stderr.contains(needle), "{kind}: {stderr}");
        assert!(stderr.contains("ONNX Runtime says:"), "{kind}: {stderr}");
        assert!(
            !stderr.contains("expected an ONNX model file"),
            "{kind}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("unsupported_{kind}.onnx")),
            "{kind}: the error should name the file: {stderr}"
        );
    }
}

/// `inspect --providers` lists what the loaded library was built with: the same set Python's
/// `onnxruntime.get_available_providers()` gives for the same wheel (the venv's), each known
/// provider once, and the CPU provider first in nothing but its own row.
#[test]
fn providers_are_listed_as_the_runtime_has_them() {
    let out = inspect(&["--providers", "--json", "--ep", "cpu"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = json["providers"].as_array().expect("providers");
    let ours: std::collections::BTreeSet<String> = rows
        .iter()
        .filter(|r| r["in_runtime"] == true)
        .map(|r| r["ort_name"].as_str().expect("name").to_owned())
        .collect();
    let python = imagenetx_test_support::run_ok(
        Command::new(imagenetx_test_support::venv_python()).args([
            "-c",
            "import onnxruntime as o; print(o.__version__); print('\\n'.join(o.get_available_providers()))",
        ]),
    );
    let python = text(&python.stdout);
    let mut lines = python.lines();
    let version = lines.next().expect("version");
    assert_eq!(
        json["runtime"]["version"], version,
        "the venv's wheel is the same release"
    );
    let theirs: std::collections::BTreeSet<String> = lines.map(str::to_owned).collect();
    assert_eq!(ours, theirs);
    for name in imagenetx_infer::ExecutionProvider::names().skip(1) {
        assert_eq!(
            rows.iter().filter(|r| r["name"] == name).count(),
            1,
            "{name} listed once"
        );
    }
    let cuda = rows.iter().find(|r| r["name"] == "cuda").expect("cuda row");
    assert_eq!(cuda["in_runtime"], false);
    assert_eq!(cuda["auto_rank"], 1);
    assert!(
        cuda["how_to_get"]
            .as_str()
            .is_some_and(|h| h.contains("just setup-gpu")),
        "{cuda}"
    );

    let out = inspect(&["--providers"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("ONNX Runtime 1.31.1"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("cpu ") && l.contains(" yes ")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("openvino ") && l.contains(" no ")),
        "{table}"
    );

    let model = fixture("nchw_dynamic.onnx");
    let out = inspect(&["--providers", model.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "a model and --providers");
}

/// A provider asked for by name that the library lacks stops `evaluate` before any image is
/// read (exit 2, no output files), naming the library and how to get a build with it; the
/// run record of a run names the provider used and what the library offered.
#[test]
fn a_missing_named_provider_is_fatal_and_the_record_names_the_one_used() {
    let tmp = imagenetx_test_support::temp_dir();
    let model = fixture("nchw_dynamic.onnx");
    let photos = imagenetx_test_support::fixture("photos");
    let out_csv = tmp.path().join("p.csv");
    let run = |ep: &str| {
        Command::new(parity_util::imagenetx())
            .args(["evaluate", model.to_str().expect("utf-8"), "--images"])
            .arg(&photos)
            .arg("--out")
            .arg(&out_csv)
            .args(["--ep", ep, "--quiet"])
            .output()
            .expect("run imagenetx")
    };
    for ep in ["openvino", "tensorrt", "xnnpack"] {
        let out = run(ep);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{ep}: {stderr}");
        assert!(
            stderr.contains(&format!("execution provider {ep} (")),
            "{stderr}"
        );
        assert!(stderr.contains("libonnxruntime"), "{stderr}");
        assert!(stderr.contains("to get a build that has it"), "{stderr}");
        assert!(!out_csv.exists(), "{ep}: nothing written");
    }
    let out = run("cpu");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("p.run.json")).expect("run record"),
    )
    .expect("JSON");
    assert_eq!(record["provider"]["used"], "CPUExecutionProvider");
    assert_eq!(record["provider"]["requested"], "cpu");
    assert!(
        record["provider"]["available"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p == "CPUExecutionProvider")),
        "{}",
        record["provider"]
    );
}
