//! Parity of `imaging` with Pillow 13.0.0 + torchvision's arithmetic.
//!
//! `python/preprocess_reference.py` (run from the project venv) writes the
//! test images (synthetic, fixed seed, plus variants of `fixtures/photos/`)
//! and, for each config, the uint8 crop and float32 tensor that Pillow and
//! torchvision's formulas give. Every crop must be equal pixel for pixel and
//! every tensor value bit for bit.

use std::path::{Path, PathBuf};

use imagenetx_imaging::{
    ChannelOrder, Error, Interpolation, Layout, PreprocessConfig, Preprocessor, Resize,
};
use serde::Deserialize;

use imagenetx_test_support::{fixture, python_script};

fn run_reference(args: &[&std::ffi::OsStr]) {
    let script = "python/preprocess_reference.py";
    let out = python_script("preprocess_reference.py")
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{script} {:?} failed:\n{}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Deserialize)]
struct ManifestEntry {
    file: String,
    expect: String,
}

#[derive(Deserialize)]
struct Reference {
    index: usize,
    file: String,
    error: Option<String>,
}

fn manifest(dir: &Path) -> Vec<ManifestEntry> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest json")
}

/// Images of both sets, generated once per test binary run into `tmp`.
fn images(tmp: &Path) -> Vec<(PathBuf, String)> {
    let synth = tmp.join("synth");
    run_reference(&["synth".as_ref(), "--out".as_ref(), synth.as_os_str()]);
    let mut all: Vec<(PathBuf, String)> = manifest(&synth)
        .into_iter()
        .map(|e| (synth.join(e.file), e.expect))
        .collect();
    let photos = fixture("photos");
    assert!(
        photos.join("camera.png").is_file() && photos.join("rocket.jpg").is_file(),
        "fixtures/photos/ (camera.png, rocket.jpg, ...) is missing"
    );
    let derived = tmp.join("photos");
    run_reference(&[
        "photos".as_ref(),
        "--photos".as_ref(),
        photos.as_os_str(),
        "--out".as_ref(),
        derived.as_os_str(),
    ]);
    all.extend(
        manifest(&derived)
            .into_iter()
            .map(|e| (derived.join(e.file), e.expect)),
    );
    all
}

fn error_kind(err: &Error) -> &'static str {
    match err {
        Error::Empty { .. } => "error:empty",
        Error::Truncated { .. } => "error:truncated",
        Error::Corrupt { .. } => "error:corrupt",
        Error::UnsupportedFormat { .. } => "error:unsupported_format",
        Error::Unsupported { .. } => "error:unsupported",
        Error::Read { .. } => "error:read",
        _ => "error:other",
    }
}

/// Compares every image under one config; returns a list of problems.
fn check_config(
    name: &str,
    config: &PreprocessConfig,
    tmp: &Path,
    imgs: &[(PathBuf, String)],
) -> Vec<String> {
    let cfg_path = tmp.join(format!("{name}.json"));
    std::fs::write(&cfg_path, serde_json::to_string(config).expect("json")).expect("write config");
    let out = tmp.join(format!("ref_{name}"));
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "reference".as_ref(),
        "--config".as_ref(),
        cfg_path.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    args.extend(imgs.iter().map(|(p, _)| p.as_os_str()));
    run_reference(&args);
    let refs: Vec<Reference> =
        serde_json::from_str(&std::fs::read_to_string(out.join("reference.json")).expect("read"))
            .expect("json");
    assert_eq!(refs.len(), imgs.len());

    let mut pre = Preprocessor::new(config.clone()).expect("valid config");
    let mut tensor = vec![0f32; pre.tensor_len()];
    let mut problems = Vec::new();
    for (r, (path, expect)) in refs.iter().zip(imgs) {
        let label = format!("[{name}] {}", r.file);
        let ours = pre.crop_file(path);
        match (expect.as_str(), &r.error, ours) {
            ("ok", None, Ok(crop)) => {
                let want = std::fs::read(out.join(format!("{}.crop", r.index))).expect("crop");
                let got = crop.as_bytes();
                if got != want.as_slice() {
                    let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
                    let max = got
                        .iter()
                        .zip(&want)
                        .map(|(a, b)| a.abs_diff(*b))
                        .max()
                        .unwrap_or(0);
                    problems.push(format!(
                        "{label}: crop differs on {diff} of {} bytes (max {max} levels; lengths {} vs {})",
                        want.len(),
                        got.len(),
                        want.len()
                    ));
                    continue;
                }
                if let Err(e) = pre.preprocess_file(path, &mut tensor) {
                    problems.push(format!("{label}: preprocess_file failed: {e}"));
                    continue;
                }
                let want = std::fs::read(out.join(format!("{}.tensor", r.index))).expect("tensor");
                let want: Vec<u32> = want
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                let diff = tensor
                    .iter()
                    .zip(&want)
                    .filter(|(a, b)| a.to_bits() != **b)
                    .count();
                if want.len() != tensor.len() || diff != 0 {
                    problems.push(format!(
                        "{label}: tensor differs in {diff} of {} values",
                        want.len()
                    ));
                }
            }
            (kind, Some(_), Err(e)) if kind != "ok" => {
                if error_kind(&e) != kind {
                    problems.push(format!("{label}: expected {kind}, got {e}"));
                }
                let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
                if !e.to_string().contains(file_name) {
                    problems.push(format!("{label}: error does not name the file: {e}"));
                }
            }
            (kind, pil, ours) => problems.push(format!(
                "{label}: expected {kind}; Pillow: {pil:?}; ours: {:?}",
                ours.map(|c| (c.width(), c.height()))
            )),
        }
    }
    problems
}

fn configs() -> Vec<(&'static str, PreprocessConfig)> {
    let tv = PreprocessConfig::torchvision();
    let mut padded = tv.clone();
    padded.resize = Resize::None;
    let mut exact = tv.clone();
    exact.resize = Resize::Exact {
        width: 200,
        height: 160,
    };
    exact.crop_height = 150;
    exact.crop_width = 181;
    exact.interpolation = Interpolation::Bicubic;
    exact.layout = Layout::Nhwc;
    let mut bgr = PreprocessConfig::inception(299).expect("valid");
    bgr.channel_order = ChannelOrder::Bgr;
    vec![
        ("torchvision", tv),
        (
            "timm_bicubic_0_95",
            PreprocessConfig::timm(224, 0.95, Interpolation::Bicubic).expect("valid"),
        ),
        ("tflite", PreprocessConfig::tflite(224).expect("valid")),
        ("inception299_bgr", bgr),
        ("no_resize_padded", padded),
        ("exact_bicubic_nhwc", exact),
    ]
}

#[test]
fn crops_and_tensors_equal_pillow_and_torchvision() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let imgs = images(tmp.path());
    let mut problems = Vec::new();
    for (name, config) in configs() {
        problems.extend(check_config(name, &config, tmp.path(), &imgs));
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn missing_and_unreadable_files_are_errors_naming_them() {
    let mut pre = Preprocessor::new(PreprocessConfig::torchvision()).expect("valid");
    let missing = Path::new("/nonexistent/n01440764_10026.JPEG");
    let err = pre.crop_file(missing).expect_err("missing file");
    assert!(matches!(err, Error::Read { .. }), "{err}");
    assert!(err.to_string().contains("n01440764_10026.JPEG"), "{err}");
    let mut short = vec![0f32; 10];
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("x.JPEG");
    std::fs::write(&file, b"\xff\xd8\xff").expect("write");
    let err = pre
        .preprocess_file(&file, &mut short)
        .expect_err("short buffer");
    assert!(
        matches!(
            err,
            Error::OutputLength {
                expected: 150_528,
                got: 10,
                ..
            }
        ),
        "{err}"
    );
}
