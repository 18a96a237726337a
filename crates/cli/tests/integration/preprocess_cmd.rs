//! `imagenetx preprocess`: the `.npy` tensors it writes are what Pillow + the torchvision steps
//! (`python/preprocess_reference.py reference`) give, bit for bit, and NumPy reads them with
//! the shape of the model's layout. The expected configurations are the documented ones (the
//! flags given; `input160.onnx`'s metadata and `nhwc.onnx`'s layout from
//! fixtures/models/README.md), not the command's own resolution.
//!
//! Needs the reference venv (`just venv`) and, for the model cases, ONNX Runtime.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use imagenetx_test_support::{fixture, python_script, run_ok, temp_dir, text};
use serde_json::json;

use crate::parity_util::run_imagenetx;

fn photos() -> Vec<PathBuf> {
    [
        "camera.png",
        "chelsea.png",
        "clock_motion.png",
        "coffee.png",
        "rocket.jpg",
    ]
    .iter()
    .map(|name| fixture(Path::new("photos").join(name)))
    .collect()
}

/// The data of a `.npy` file (after its header) and the header's text.
fn npy(path: &Path) -> (String, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "{}", path.display());
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8(bytes[10..10 + len].to_vec()).expect("ASCII header");
    (header, bytes[10 + len..].to_vec())
}

/// Runs `imagenetx preprocess` on the photos with `args`, then the reference with `config`,
/// and compares every tensor; NumPy must read each file with `shape`.
fn check(label: &str, args: &[&str], config: serde_json::Value, shape: &str) {
    let dir = temp_dir();
    let ours = dir.path().join("ours");
    let mut command: Vec<String> = vec!["preprocess".into()];
    command.extend(photos().iter().map(|p| p.display().to_string()));
    command.extend(["--out".into(), ours.display().to_string()]);
    command.extend(args.iter().map(|a| a.to_string()));
    let out = run_imagenetx(&command);
    assert_eq!(out.status.code(), Some(0), "{label}: {}", text(&out.stderr));

    let config_file = dir.path().join("config.json");
    std::fs::write(&config_file, config.to_string()).expect("write config");
    let reference = dir.path().join("reference");
    run_ok(
        python_script("preprocess_reference.py")
            .arg("reference")
            .arg("--config")
            .arg(&config_file)
            .arg("--out")
            .arg(&reference)
            .args(photos()),
    );
    let mut files = Vec::new();
    for (index, photo) in photos().iter().enumerate() {
        let name = photo.file_name().expect("file name").to_string_lossy();
        let file = ours.join(format!("{name}.npy"));
        let (header, data) = npy(&file);
        assert!(
            header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': "),
            "{label}: {name}: header {header:?}"
        );
        let want = std::fs::read(reference.join(format!("{index}.tensor"))).expect("reference");
        assert_eq!(data.len(), want.len(), "{label}: {name}: tensor length");
        let differ = data.chunks(4).zip(want.chunks(4)).position(|(a, b)| a != b);
        assert!(
            differ.is_none(),
            "{label}: {name}: the tensor differs from Pillow's from value {}",
            differ.unwrap_or_default()
        );
        files.push(file.display().to_string());
    }
    // NumPy, an independent reader of the format, sees the layout's shape and float32.
    let read = run_ok(
        python_script("compare_targets.py")
            .arg("--describe")
            .args(&files),
    );
    for line in text(&read.stdout).lines() {
        assert!(
            line.ends_with(&format!("float32 {shape}")),
            "{label}: {line}"
        );
    }
    assert_eq!(text(&read.stdout).lines().count(), files.len(), "{label}");
}

#[test]
fn flags_without_a_model_give_pillows_tensors() {
    check(
        "flags",
        &[
            "--resize",
            "230",
            "--crop",
            "200",
            "--interpolation",
            "bicubic",
            "--scale",
            "raw255",
            "--mean",
            "123.675,116.28,103.53",
            "--std",
            "58.395,57.12,57.375",
            "--channel-order",
            "bgr",
        ],
        json!({
            "resize": {"mode": "shorter_side", "size": 230},
            "crop_height": 200,
            "crop_width": 200,
            "interpolation": "bicubic",
            "mean": [123.675, 116.28, 103.53],
            "std": [58.395, 57.12, 57.375],
            "scale": "raw",
            "channel_order": "BGR",
            "layout": "NCHW",
        }),
        "[1, 3, 200, 200]",
    );
}

#[test]
fn a_models_metadata_and_layout_give_pillows_tensors() {
    if let Err(err) = imagenetx_infer::locate_runtime(None, false) {
        panic!(
            "`imagenetx preprocess --model` needs ONNX Runtime; run `just setup-ort` first.\n{err}"
        );
    }
    let torchvision = |resize: u32, crop: u32, layout: &str| {
        json!({
            "resize": {"mode": "shorter_side", "size": resize},
            "crop_height": crop,
            "crop_width": crop,
            "interpolation": "bilinear",
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "scale": "unit_interval",
            "channel_order": "RGB",
            "layout": layout,
        })
    };
    let model = |name: &str| {
        fixture(Path::new("models").join(name))
            .display()
            .to_string()
    };
    check(
        "input160.onnx",
        &["--model", &model("input160.onnx")],
        torchvision(182, 160, "NCHW"),
        "[1, 3, 160, 160]",
    );
    check(
        "nhwc.onnx",
        &["--model", &model("nhwc.onnx")],
        torchvision(256, 224, "NHWC"),
        "[1, 224, 224, 3]",
    );
}

#[test]
fn an_unreadable_image_is_skipped_and_named() {
    let dir = temp_dir();
    let broken = dir.path().join("broken.jpg");
    std::fs::write(&broken, b"not an image").expect("write");
    let good = fixture("photos/rocket.jpg");
    let out_dir = dir.path().join("out");
    let out = run_imagenetx(&[
        OsStr::new("preprocess"),
        good.as_os_str(),
        broken.as_os_str(),
        OsStr::new("--out"),
        out_dir.as_os_str(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("broken.jpg"), "{stderr}");
    assert!(out_dir.join("rocket.jpg.npy").is_file());
    assert!(!out_dir.join("broken.jpg.npy").exists());
}
