//! Export folders through the real binary: a fixture model copied into a folder as
//! `model.onnx` beside side files the test writes, evaluated by `imagenetx evaluate FOLDER`,
//! must give the top-5 of PIL + Python onnxruntime with the exporter's documented steps
//! (`python/exporters_reference.py predict`), and not the top-5 of the default preprocessing;
//! `imagenetx inspect FOLDER` names the side file and key of each field; labels in the wrong
//! order or number and folders with several models are refused with the reason.
//!
//! Needs ONNX Runtime (`just setup-ort`), the annotations (`just setup`) and the reference
//! venv (`just venv`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::evaluate::{assert_same_predictions, evaluate, read_csv, reference};
use crate::inspect::inspect;
use crate::parity_util::annotations_dir;
use imagenetx_test_support::{fixture, python_script, run_ok, temp_dir, text};

const VIT: &str = r#"{"image_processor_type": "ViTImageProcessor", "do_resize": true,
    "size": {"height": 224, "width": 224}, "resample": 2, "do_rescale": true,
    "rescale_factor": 0.00392156862745098, "do_normalize": true,
    "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}"#;

const CONVNEXT: &str = r#"{"image_processor_type": "ConvNextImageProcessor", "do_resize": true,
    "size": {"shortest_edge": 224}, "crop_pct": 0.875, "resample": 3, "do_rescale": true,
    "rescale_factor": 0.00392156862745098, "do_normalize": true,
    "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}"#;

const TIMM_BORDER: &str = r#"{"architecture": "m", "num_classes": 1000, "pretrained_cfg": {
    "input_size": [3, 224, 224], "interpolation": "bicubic", "crop_pct": 0.9,
    "crop_mode": "border", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}"#;

/// An export folder: the shared fixture classifier as `model.onnx` and the side files given.
fn export(root: &Path, name: &str, files: &[(&str, String)]) -> PathBuf {
    let folder = root.join(name);
    std::fs::create_dir_all(&folder).expect("folder");
    std::fs::copy(
        fixture("models/nchw_dynamic.onnx"),
        folder.join("model.onnx"),
    )
    .expect("copy the fixture model");
    for (file, contents) in files {
        std::fs::write(folder.join(file), contents).expect("side file");
    }
    folder
}

/// `config.json` with Hugging Face's `id2label`: WordNet synonym lists where the class names
/// file has the first synonym (`tench, Tinca tinca`), as Hugging Face writes them.
fn id2label(swap: Option<(usize, usize)>) -> String {
    let names = std::fs::read_to_string(annotations_dir().join("imagenet_labels.txt"))
        .expect("imagenet_labels.txt");
    let mut labels: Vec<String> = names
        .lines()
        .map(|l| format!("{}, a synonym", l.split_once(',').expect("wnid,name").1))
        .collect();
    if let Some((a, b)) = swap {
        labels.swap(a, b);
    }
    let map: serde_json::Map<String, serde_json::Value> = labels
        .into_iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), l.into()))
        .collect();
    serde_json::json!({ "architectures": ["M"], "id2label": map }).to_string()
}

fn exporter_reference(folder: &Path) -> HashMap<String, (Vec<usize>, Vec<f64>)> {
    let mut photos: Vec<PathBuf> = std::fs::read_dir(fixture("photos"))
        .expect("photos")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .collect();
    photos.sort();
    let out = run_ok(
        python_script("exporters_reference.py")
            .arg("predict")
            .arg("--dir")
            .arg(folder)
            .arg("--model")
            .arg(folder.join("model.onnx"))
            .args(&photos),
    );
    text(&out.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            let classes = v["top5"]
                .as_array()
                .expect("top5")
                .iter()
                .map(|c| c.as_u64().expect("class") as usize)
                .collect();
            let probs = v["probs"]
                .as_array()
                .expect("probs")
                .iter()
                .map(|p| p.as_f64().expect("probability"))
                .collect();
            (
                v["file"].as_str().expect("file").to_string(),
                (classes, probs),
            )
        })
        .collect()
}

#[test]
fn export_folders_match_the_exporters_steps_not_the_defaults() {
    let tmp = temp_dir();
    let defaults = reference(
        &fixture("models/nchw_dynamic.onnx"),
        &fixture("photos"),
        &tmp.path().join("defaults.csv"),
    );
    for (name, files) in [
        ("vit", vec![("preprocessor_config.json", VIT.to_string())]),
        (
            "convnext",
            vec![
                ("preprocessor_config.json", CONVNEXT.to_string()),
                ("config.json", id2label(None)),
            ],
        ),
        (
            "timm_border",
            vec![("config.json", TIMM_BORDER.to_string())],
        ),
    ] {
        let folder = export(tmp.path(), name, &files);
        let csv = tmp.path().join(format!("{name}.csv"));
        let out = evaluate(&[
            folder.as_os_str(),
            "--images".as_ref(),
            fixture("photos").as_os_str(),
            "--out".as_ref(),
            csv.as_os_str(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        let ours = read_csv(&csv);
        let want = exporter_reference(&folder);
        let worst = assert_same_predictions(name, &ours, &want);
        println!("{name}: largest probability difference {worst:e}");
        assert!(
            defaults
                .iter()
                .any(|(file, (classes, _))| &ours[file].0 != classes),
            "{name}: the side files changed no top-5 on the photos, so this test could not fail"
        );
        let record = std::fs::read_to_string(tmp.path().join(format!("{name}.run.json")))
            .expect("run record");
        assert!(
            record.contains("side_file"),
            "{name}: run record without the side file layer"
        );
    }
}

#[test]
fn inspect_names_the_side_file_and_key_of_each_field() {
    let tmp = temp_dir();
    let folder = export(
        tmp.path(),
        "vit",
        &[("preprocessor_config.json", VIT.to_string())],
    );
    let out = inspect(&[folder.to_str().expect("utf-8"), "--ep", "cpu"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let file = folder.join("preprocessor_config.json");
    for (field, key) in [
        ("resize", "size"),
        ("crop", "size"),
        ("interpolation", "resample"),
        ("mean", "image_mean"),
        ("std", "image_std"),
        ("scale", "rescale_factor"),
    ] {
        let want = format!("side file: {} {key}", file.display());
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(field) && l.ends_with(&want)),
            "no `{field}` line ending in `{want}`:\n{stdout}"
        );
    }
    // Flags still win over the side file.
    let out = inspect(&[
        folder.to_str().expect("utf-8"),
        "--ep",
        "cpu",
        "--mean",
        "0.4,0.4,0.4",
    ]);
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("mean") && l.contains("caller")),
        "{stdout}"
    );
}

#[test]
fn wrong_labels_and_ambiguous_folders_are_refused_with_the_reason() {
    let tmp = temp_dir();
    let photos = fixture("photos");
    let run = |folder: &Path| {
        evaluate(&[
            folder.as_os_str(),
            "--images".as_ref(),
            photos.as_os_str(),
            "--out".as_ref(),
            tmp.path().join("out.csv").as_os_str(),
        ])
    };
    let swapped = export(
        tmp.path(),
        "swapped",
        &[
            ("preprocessor_config.json", VIT.to_string()),
            ("config.json", id2label(Some((1, 2)))),
        ],
    );
    let out = run(&swapped);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("id2label is not in ImageNet-1k's class order: index 1 is \"great white shark, a synonym\", ImageNet class 1 is \"goldfish\""),
        "{stderr}"
    );
    let few = export(
        tmp.path(),
        "few",
        &[(
            "config.json",
            r#"{"id2label": {"0": "cat", "1": "dog"}}"#.to_string(),
        )],
    );
    let out = run(&few);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("id2label has 2 classes, but the model's output has 1000"),
        "{stderr}"
    );
    let bad = export(
        tmp.path(),
        "bad_resample",
        &[(
            "preprocessor_config.json",
            VIT.replace("\"resample\": 2", "\"resample\": 0"),
        )],
    );
    let out = run(&bad);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("preprocessor_config.json: key `resample`: 0 is not supported"),
        "{stderr}"
    );
    let two = tmp.path().join("two");
    std::fs::create_dir_all(&two).expect("folder");
    for name in ["a.onnx", "b.onnx"] {
        std::fs::copy(fixture("models/nchw_dynamic.onnx"), two.join(name)).expect("copy");
    }
    let out = run(&two);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("2 .onnx files (a.onnx, b.onnx)"),
        "{stderr}"
    );
}

/// The Hugging Face (Optimum) export of a model as it is found in the wild: `model.onnx` with
/// input `pixel_values` [batch_size, num_channels, height, width], every dim symbolic, beside
/// `preprocessor_config.json` (here a ViT-style processor at 192x192, bicubic, mean = std =
/// 0.5) and `config.json`'s `id2label`. The folder alone must be enough: the layout comes from
/// the dim names, the size from the processor, and the predictions are those of PIL + Python
/// onnxruntime with the processor's steps.
#[test]
fn an_optimum_folder_with_symbolic_dims_runs_at_its_processors_size() {
    let tmp = temp_dir();
    let variants = tmp.path().join("variants");
    run_ok(
        python_script("export_variants.py")
            .arg("--model")
            .arg(crate::evaluate::lite0())
            .arg("--out")
            .arg(&variants)
            .args(["--name", "lite0", "--only", "hf"]),
    );
    let processor = r#"{"image_processor_type": "ViTImageProcessor", "do_resize": true,
        "size": {"height": 192, "width": 192}, "resample": 3, "do_rescale": true,
        "rescale_factor": 0.00392156862745098, "do_normalize": true,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}"#;
    let folder = tmp.path().join("optimum");
    std::fs::create_dir_all(&folder).expect("folder");
    // An Optimum export carries no `imagenetx.preprocess` record (Lite0's would outrank the
    // side files): the copy drops it.
    run_ok(
        std::process::Command::new(imagenetx_test_support::venv_python())
            .args([
                "-c",
                "import onnx, sys; m = onnx.load(sys.argv[1]); del m.metadata_props[:]; onnx.save(m, sys.argv[2])",
            ])
            .arg(variants.join("lite0_hf.onnx"))
            .arg(folder.join("model.onnx")),
    );
    std::fs::write(folder.join("preprocessor_config.json"), processor).expect("processor");
    std::fs::write(folder.join("config.json"), id2label(None)).expect("config");

    let csv = tmp.path().join("optimum.csv");
    let out = evaluate(&[
        folder.as_os_str(),
        "--images".as_ref(),
        fixture("photos").as_os_str(),
        "--out".as_ref(),
        csv.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let worst = assert_same_predictions("optimum", &read_csv(&csv), &exporter_reference(&folder));
    println!("optimum folder: largest probability difference {worst:e}");

    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("optimum.run.json")).expect("run record"),
    )
    .expect("JSON");
    let config = &record["preprocessing"]["config"];
    assert_eq!(
        (
            config["crop_height"].as_u64(),
            config["crop_width"].as_u64()
        ),
        (Some(192), Some(192))
    );
    assert_eq!(config["layout"], "NCHW");
    let decisions = record["model_info"]["decisions"].to_string();
    assert!(decisions.contains("192x192"), "{decisions}");
    assert!(
        record["preprocessing"]["sources"]
            .to_string()
            .contains("preprocessor_config.json"),
        "{}",
        record["preprocessing"]["sources"]
    );
}
