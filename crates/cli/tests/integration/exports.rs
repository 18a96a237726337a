//! Models as exporters and quantizers write them: every variant `python/export_variants.py`
//! makes of a fixture model and of EfficientNet-Lite0 (static QDQ and QOperator int8, dynamic
//! int8, external weights, a `[N,1000,1,1]` output, int64 class-index outputs beside the
//! probabilities, a uint8 NHWC raw-pixel input, an int8 input, Hugging Face-style symbolic
//! inputs NCHW and NHWC), each evaluated by the binary and by `python/onnx_reference.py` (PIL +
//! Python onnxruntime) on the same file with the preprocessing its exporter documents: the
//! same top-5 in the same order for every photo, probabilities within
//! `evaluate::PROBABILITY_TOLERANCE` (1e-12: both sides run the same ONNX Runtime on the same
//! input tensor, so only the f64 softmax's summation order differs).
//!
//! The variants are written at test time into `CARGO_TARGET_TMPDIR/export-variants/` (not
//! committed); they need the reference venv (`just venv`), ONNX Runtime (`just setup-ort`)
//! and, for Lite0, `just model-lite0`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use imagenetx_test_support::{fixture, python_script, run_ok, text};

use crate::evaluate::{assert_same_predictions, evaluate, lite0, photos, read_csv, reference_with};

/// Every variant the script writes.
const VARIANTS: [&str; 10] = [
    "qdq_static",
    "qop_static",
    "dynamic",
    "external",
    "nc11",
    "indices",
    "uint8_nhwc",
    "int8",
    "hf",
    "hf_nhwc",
];

/// The variants of `source`, written once per test run into `CARGO_TARGET_TMPDIR`.
fn variants(name: &str, source: &Path) -> PathBuf {
    static MADE: OnceLock<std::sync::Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let made = MADE.get_or_init(Default::default);
    let mut made = made.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = made.get(name) {
        return dir.clone();
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("export-variants")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    run_ok(
        python_script("export_variants.py")
            .arg("--model")
            .arg(source)
            .arg("--out")
            .arg(&dir)
            .arg("--name")
            .arg(name)
            .arg("--calibration-images")
            .arg(photos()),
    );
    made.insert(name.to_owned(), dir.clone());
    dir
}

/// What the exporter documents for the reference: the layout of a symbolic input.
fn reference_args(variant: &str) -> &'static [&'static str] {
    match variant {
        "hf" => &["--layout", "NCHW"],
        "hf_nhwc" => &["--layout", "NHWC"],
        _ => &[],
    }
}

/// Evaluates `model` with `flags` (ours) and runs the reference with `reference_flags` (plus
/// the model's metadata), compares them, and returns our run record.
fn compare(
    label: &str,
    model: &Path,
    flags: &[&str],
    reference_flags: &[&str],
) -> serde_json::Value {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("ours.csv");
    let run = evaluate_photos(model, &out, flags);
    assert_eq!(run.status.code(), Some(0), "{label}: {}", text(&run.stderr));
    let want = reference_with(
        model,
        &photos(),
        &tmp.path().join("ref.csv"),
        reference_flags,
    );
    let ours = read_csv(&out);
    assert_eq!(ours.len(), 5, "{label}: one row per photo");
    let diff = assert_same_predictions(label, &ours, &want);
    println!("{label}: largest top-5 probability difference from the reference {diff:e}");
    let record = std::fs::read_to_string(tmp.path().join("ours.run.json")).expect("run record");
    serde_json::from_str(&record).expect("run record JSON")
}

/// `imagenetx evaluate MODEL --images fixtures/photos --out OUT FLAGS...`.
fn evaluate_photos(model: &Path, out: &Path, flags: &[&str]) -> std::process::Output {
    let photos = photos();
    let mut args: Vec<&std::ffi::OsStr> = vec![
        model.as_os_str(),
        "--images".as_ref(),
        photos.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    args.extend(flags.iter().map(std::ffi::OsStr::new));
    evaluate(&args)
}

fn every_variant_matches_the_reference(name: &str, source: &Path) {
    let dir = variants(name, source);
    for variant in VARIANTS {
        let model = dir.join(format!("{name}_{variant}.onnx"));
        let mut reference = vec!["--metadata"];
        reference.extend(reference_args(variant));
        compare(&format!("{name}_{variant}"), &model, &[], &reference);
    }
}

#[test]
fn fixture_model_exports_match_the_reference() {
    every_variant_matches_the_reference("fixture", &fixture("models/nchw_dynamic.onnx"));
}

#[test]
fn lite0_exports_match_the_reference() {
    every_variant_matches_the_reference("lite0", &lite0());
}

/// Symbolic height and width are fed at the preprocessing's crop, or at `--input-size`; Lite0
/// is fully convolutional, so 192 is a size it runs at.
#[test]
fn symbolic_sizes_follow_the_crop_or_the_flag() {
    let dir = variants("lite0", &lite0());
    let hf = dir.join("lite0_hf.onnx");
    let record = compare(
        "lite0_hf --crop 192",
        &hf,
        &["--crop", "192"],
        &["--metadata", "--layout", "NCHW", "--crop", "192"],
    );
    let decisions = &record["model_info"]["decisions"];
    let size = find_decision(decisions, "input size", "192x192");
    assert!(
        size.contains("symbolic") && size.contains("--crop 192"),
        "{size}"
    );
    let hf_nhwc = dir.join("lite0_hf_nhwc.onnx");
    let record = compare(
        "lite0_hf_nhwc --input-size 192",
        &hf_nhwc,
        &["--input-size", "192", "--crop", "192", "--layout", "nhwc"],
        &["--metadata", "--layout", "NHWC", "--crop", "192"],
    );
    let decisions = &record["model_info"]["decisions"];
    assert!(find_decision(decisions, "input size", "192x192").contains("--input-size"));
    assert_eq!(
        find_decision(decisions, "layout", "NHWC"),
        "set with --layout"
    );
    let sources = &record["preprocessing"]["sources"];
    assert_eq!(sources["layout"]["detail"], "--layout nhwc", "{sources}");
    // The caller's crop wins over the size's fitted default; the resize is the metadata's.
    assert_eq!(sources["crop"]["detail"], "--crop 192", "{sources}");
    assert_eq!(sources["resize"]["layer"], "model_metadata", "{sources}");
    // A crop that contradicts the caller's --input-size says that the size is the flag's.
    let clash = Command::new(crate::parity_util::imagenetx())
        .arg("inspect")
        .arg(&hf_nhwc)
        .args(["--input-size", "192", "--crop", "224", "--layout", "nhwc"])
        .output()
        .expect("run imagenetx inspect");
    // `inspect` shows the refusal in its resolved row (exit 0: it reports, it does not run).
    let said = format!("{}{}", text(&clash.stdout), text(&clash.stderr));
    assert!(
        said.contains(
            "the crop is 224x224, but --input-size sets the model's input to 192x192 (crop from caller: --crop 224)"
        ),
        "{said}"
    );
}

/// The reason of the decision on `subject` whose choice is `choice`; panics listing them all
/// when there is none.
fn find_decision(decisions: &serde_json::Value, subject: &str, choice: &str) -> String {
    decisions
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["subject"] == subject && d["choice"] == choice)
        .and_then(|d| d["reason"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no decision `{subject} {choice}` in {decisions:#}"))
}

fn inspect_json(model: &Path, flags: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(crate::parity_util::imagenetx())
        .arg("inspect")
        .arg(model)
        .args(["--json", "--ep", "cpu"])
        .args(flags)
        .output()
        .expect("run imagenetx");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("inspect JSON")
}

#[test]
fn inspect_explains_integer_and_symbolic_inputs() {
    let dir = variants("fixture", &fixture("models/nchw_dynamic.onnx"));
    let json = inspect_json(&dir.join("fixture_uint8_nhwc.onnx"), &[]);
    let info = &json["info"];
    assert_eq!(info["input"]["element_type"], "u8");
    assert_eq!(info["input"]["layout"], "NHWC");
    let decisions = &info["decisions"];
    assert!(find_decision(decisions, "element type", "u8").contains("raw pixels 0..255"));
    assert_eq!(
        find_decision(decisions, "pixel values", "p as u8"),
        "model input: u8 input: raw pixels 0..255"
    );
    let sources = &json["preprocessing"]["sources"];
    for field in ["scale", "mean", "std"] {
        assert_eq!(sources[field]["layer"], "model_input", "{field}: {sources}");
    }
    assert_eq!(
        json["preprocessing"]["config"]["mean"],
        serde_json::json!([0.0, 0.0, 0.0])
    );

    let json = inspect_json(&dir.join("fixture_int8.onnx"), &[]);
    let decisions = &json["info"]["decisions"];
    assert_eq!(
        find_decision(
            decisions,
            "pixel values",
            "(p - [128.0, 128.0, 128.0]) / [1.0, 1.0, 1.0] as i8"
        ),
        "model input: i8 input: pixels - 128"
    );

    for (variant, layout, why) in [
        (
            "hf",
            "NCHW",
            "input dim 1 is named `num_channels`: the channels",
        ),
        (
            "hf_nhwc",
            "NHWC",
            "the last input dim is named `num_channels`: the channels",
        ),
    ] {
        let json = inspect_json(&dir.join(format!("fixture_{variant}.onnx")), &[]);
        let decisions = &json["info"]["decisions"];
        assert_eq!(find_decision(decisions, "layout", layout), why, "{variant}");
        assert_eq!(
            find_decision(decisions, "input size", "224x224"),
            "height `height` and width `width` are symbolic: the preprocessing's crop \
             (default: torchvision)",
            "{variant}"
        );
    }
    // --input-size: the size of the symbolic dims, and the crop and resize fitted to it.
    let json = inspect_json(&dir.join("fixture_hf.onnx"), &["--input-size", "224"]);
    assert!(
        find_decision(&json["info"]["decisions"], "input size", "224x224").contains("--input-size")
    );
    let p = &json["preprocessing"];
    for field in ["crop", "resize"] {
        assert_eq!(
            p["sources"][field]["detail"], "--input-size 224,224",
            "{field}: {p}"
        );
    }
    assert_eq!(
        p["config"]["resize"],
        serde_json::json!({"mode": "shorter_side", "size": 256}),
        "{p}"
    );
    // The indices variant: the probabilities, not the int64 outputs.
    let json = inspect_json(&dir.join("fixture_indices.onnx"), &[]);
    assert_eq!(json["info"]["output"]["name"], "probabilities");
    assert_eq!(json["info"]["scores"], "probabilities");
}

#[test]
fn what_an_input_cannot_take_is_refused_naming_it() {
    let dir = variants("fixture", &fixture("models/nchw_dynamic.onnx"));
    let uint8 = dir.join("fixture_uint8_nhwc.onnx");
    let nchw = fixture("models/nchw_dynamic.onnx");
    for (model, flags, expect) in [
        (
            &uint8,
            &["--preset", "torchvision"][..],
            "input `image` of ",
        ),
        (
            &uint8,
            &["--mean", "1,2,3"][..],
            "which u8 cannot represent",
        ),
        (
            &nchw,
            &["--layout", "nhwc"][..],
            "--layout nhwc does not fit input `input` [N,3,224,224]",
        ),
        (
            &nchw,
            &["--input-size", "160"][..],
            "--input-size 160,160 does not fit input `input` [N,3,224,224]",
        ),
    ] {
        let tmp = tempfile::tempdir().expect("temp dir");
        let run = evaluate_photos(model, &tmp.path().join("out.csv"), flags);
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(expect), "{flags:?}: {stderr}");
    }
}
