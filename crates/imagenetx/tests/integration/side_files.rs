//! Side files of Hugging Face and timm exports against `python/exporters_reference.py`, which
//! implements each processor family's documented steps with PIL and numpy (no transformers or
//! timm): for every family and mode, on the fixture photos, the uint8 crop must be equal
//! pixel for pixel and the float32 tensor bit for bit.
//!
//! The tensors are compared exactly: Hugging Face rescales in float64 and casts to float32
//! (`(p * 1/255).astype(float32)`), which for every p in 0..=255 is the float32 `p / 255`
//! imagenetx computes (checked here through the whole tensor), then normalises in float32
//! as timm and torchvision do.

use std::path::Path;

use imagenetx::imaging::{PreprocessConfig, Preprocessor};
use imagenetx::preprocess::resolve_with_side_files;
use imagenetx::sidefiles::SideFiles;
use imagenetx::vocab::Layout;
use imagenetx::{Layer, PreprocessSpec};
use imagenetx_test_support::{fixture, python_script, run_ok, temp_dir};

/// Every combination the side files can ask for: (name, file, contents).
const CASES: &[(&str, &str, &str)] = &[
    (
        "vit_squash_bilinear",
        "preprocessor_config.json",
        r#"{"image_processor_type": "ViTImageProcessor", "do_resize": true,
            "size": {"height": 224, "width": 224}, "resample": 2, "do_rescale": true,
            "rescale_factor": 0.00392156862745098, "do_normalize": true,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}"#,
    ),
    (
        "deit_exact_then_crop_bicubic",
        "preprocessor_config.json",
        r#"{"image_processor_type": "DeiTImageProcessor", "do_resize": true,
            "size": {"height": 256, "width": 256}, "resample": 3, "do_center_crop": true,
            "crop_size": {"height": 224, "width": 224}, "do_rescale": true,
            "rescale_factor": 0.00392156862745098, "do_normalize": true,
            "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}"#,
    ),
    (
        "convnext_crop_pct_bicubic_224",
        "preprocessor_config.json",
        r#"{"image_processor_type": "ConvNextImageProcessor", "do_resize": true,
            "size": {"shortest_edge": 224}, "crop_pct": 0.875, "resample": 3,
            "do_rescale": true, "rescale_factor": 0.00392156862745098, "do_normalize": true,
            "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}"#,
    ),
    (
        "convnext_warp_bicubic_384",
        "preprocessor_config.json",
        r#"{"image_processor_type": "ConvNextImageProcessor", "do_resize": true,
            "size": {"shortest_edge": 384}, "crop_pct": 0.875, "resample": 3,
            "do_rescale": true, "rescale_factor": 0.00392156862745098, "do_normalize": true,
            "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}"#,
    ),
    (
        "shortest_edge_then_crop_size_non_square",
        "preprocessor_config.json",
        r#"{"image_processor_type": "UnknownImageProcessor", "do_resize": true,
            "size": {"shortest_edge": 231}, "resample": 3, "do_center_crop": true,
            "crop_size": {"height": 200, "width": 227}, "do_rescale": true,
            "rescale_factor": 0.00392156862745098, "do_normalize": true,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711]}"#,
    ),
    (
        "hf_crop_larger_than_resize_pads",
        "preprocessor_config.json",
        r#"{"do_resize": true, "size": {"height": 101, "width": 150}, "resample": 2,
            "do_center_crop": true, "crop_size": {"height": 160, "width": 157},
            "do_rescale": false, "do_normalize": true,
            "image_mean": [127.5, 127.5, 127.5], "image_std": [64.0, 64.0, 64.0]}"#,
    ),
    (
        "timm_center_bicubic",
        "config.json",
        r#"{"architecture": "m", "num_classes": 1000, "pretrained_cfg": {
            "input_size": [3, 224, 224], "interpolation": "bicubic", "crop_pct": 0.9,
            "crop_mode": "center", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}"#,
    ),
    (
        "timm_center_non_square",
        "config.json",
        r#"{"architecture": "m", "pretrained_cfg": {
            "input_size": [3, 192, 256], "interpolation": "bicubic", "crop_pct": 0.95,
            "crop_mode": "center", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}"#,
    ),
    (
        "timm_squash_bilinear",
        "config.json",
        r#"{"architecture": "m", "pretrained_cfg": {
            "input_size": [3, 224, 224], "interpolation": "bilinear", "crop_pct": 0.95,
            "crop_mode": "squash", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}"#,
    ),
    (
        "timm_squash_bicubic_non_square",
        "config.json",
        r#"{"architecture": "m", "pretrained_cfg": {
            "input_size": [3, 240, 200], "interpolation": "bicubic", "crop_pct": 0.9,
            "crop_mode": "squash", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}"#,
    ),
    (
        "timm_border_bicubic",
        "config.json",
        r#"{"architecture": "m", "pretrained_cfg": {
            "input_size": [3, 224, 224], "interpolation": "bicubic", "crop_pct": 1.0,
            "crop_mode": "border", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}"#,
    ),
    (
        "timm_border_bilinear_non_square",
        "config.json",
        r#"{"architecture": "m", "pretrained_cfg": {
            "input_size": [3, 200, 256], "interpolation": "bilinear", "crop_pct": 0.9,
            "crop_mode": "border", "mean": [0.5, 0.25, 0.75], "std": [0.5, 0.5, 0.5]}}"#,
    ),
    (
        "timm_older_top_level_keys",
        "config.json",
        r#"{"architecture": "m", "input_size": [3, 240, 240], "interpolation": "bicubic",
            "crop_pct": 0.875, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}"#,
    ),
];

fn photos() -> Vec<std::path::PathBuf> {
    let mut photos: Vec<_> = std::fs::read_dir(fixture("photos"))
        .expect("fixtures/photos")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .collect();
    photos.sort();
    assert!(photos.len() >= 5, "the fixture photos are missing");
    photos
}

fn resolved(folder: &Path) -> PreprocessConfig {
    let side = SideFiles::beside(&folder.join("model.onnx"))
        .expect("side files read")
        .expect("side files found");
    let r = resolve_with_side_files(
        None,
        Some(&side),
        None,
        &PreprocessSpec::default(),
        Layout::Nchw,
    )
    .expect("resolves");
    assert_eq!(r.sources.resize.layer, Layer::SideFile, "{:?}", r.sources);
    assert_eq!(r.sources.crop.layer, Layer::SideFile);
    r.config
}

#[test]
fn every_family_matches_its_documented_steps() {
    let tmp = temp_dir();
    let photos = photos();
    for (name, file, json) in CASES {
        let folder = tmp.path().join(name);
        std::fs::create_dir_all(&folder).expect("folder");
        std::fs::write(folder.join(file), json).expect("side file");
        let out = tmp.path().join(format!("{name}.reference"));
        run_ok(
            python_script("exporters_reference.py")
                .arg("tensors")
                .arg("--dir")
                .arg(&folder)
                .arg("--out")
                .arg(&out)
                .args(&photos),
        );
        let config = resolved(&folder);
        let mut pre = Preprocessor::new(config.clone()).expect("valid config");
        for (i, photo) in photos.iter().enumerate() {
            let label = format!("{name} {}", photo.display());
            let crop = pre.crop_file(photo).expect("decodes");
            let want_crop = std::fs::read(out.join(format!("{i}.crop"))).expect("reference crop");
            assert_eq!(
                (crop.height(), crop.width()),
                (config.crop_height, config.crop_width),
                "{label}"
            );
            assert_eq!(crop.as_bytes().len(), want_crop.len(), "{label}: crop size");
            let differing = crop
                .as_bytes()
                .iter()
                .zip(&want_crop)
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(differing, 0, "{label}: {differing} crop bytes differ");
            let mut tensor = vec![0f32; pre.tensor_len()];
            pre.write_tensor(&crop, &mut tensor).expect("tensor");
            let want: Vec<f32> = std::fs::read(out.join(format!("{i}.tensor")))
                .expect("reference tensor")
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            assert_eq!(want.len(), tensor.len(), "{label}: tensor length");
            let differing = tensor
                .iter()
                .zip(&want)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(differing, 0, "{label}: {differing} tensor values differ");
        }
    }
}
