//! `imagenetx evaluate` through the real binary: predictions against the PIL + Python
//! onnxruntime reference (`python/onnx_reference.py`) for every fixture model and the real
//! EfficientNet-Lite0, bad inputs, NaN outputs, resuming.
//!
//! Needs ONNX Runtime (`just setup-ort`), the annotations (`just setup`), the reference venv
//! (`just venv`) and the Lite0 model (`just model-lite0`); each test fails, saying which,
//! when one is missing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::parity_util;
use imagenetx_test_support::{fixture, python_script, text, workspace_root as root};
use parity_util::imagenetx;

fn model(name: &str) -> PathBuf {
    fixture(Path::new("models").join(name))
}

pub(crate) fn lite0() -> PathBuf {
    let path = root().join("onnx_models/efficientnet_lite0.onnx");
    assert!(
        path.is_file(),
        "{} is missing: run `just model-lite0`",
        path.display()
    );
    path
}

pub(crate) fn photos() -> PathBuf {
    fixture("photos")
}

pub(crate) fn evaluate(args: &[&std::ffi::OsStr]) -> Output {
    if let Err(err) = imagenetx_infer::locate_runtime(None, false) {
        panic!("`imagenetx evaluate` tests need ONNX Runtime; run `just setup-ort` first.\n{err}");
    }
    Command::new(imagenetx())
        .arg("evaluate")
        // Annotations parsed by this build, never read from a persistent parse cache.
        .arg("--no-cache")
        .args(args)
        .args(["--ep", "cpu", "--quiet"])
        .output()
        .expect("run imagenetx")
}

/// file name → (top-5 classes, top-5 probabilities), from a predictions CSV.
pub(crate) fn read_csv(path: &Path) -> HashMap<String, (Vec<usize>, Vec<f64>)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{}: no column {name}", path.display()))
    };
    let (name, classes, probs, top1, top1_prob) = (
        col("file_name"),
        col("top5_classes"),
        col("top5_probabilities"),
        col("predicted_class"),
        col("predicted_probability"),
    );
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let c: Vec<usize> = fields[classes]
                .split(' ')
                .map(|x| x.parse().expect("class"))
                .collect();
            let p: Vec<f64> = fields[probs]
                .split(' ')
                .map(|x| x.parse().expect("probability"))
                .collect();
            // predicted_class and predicted_probability are the top-5's first entry.
            assert_eq!(fields[top1].parse::<usize>().ok(), c.first().copied());
            assert_eq!(fields[top1_prob].parse::<f64>().ok(), p.first().copied());
            (fields[name].to_string(), (c, p))
        })
        .collect()
}

pub(crate) fn reference(
    model: &Path,
    images: &Path,
    out: &Path,
) -> HashMap<String, (Vec<usize>, Vec<f64>)> {
    reference_with(model, images, out, &[])
}

/// [`reference`] with more arguments for `onnx_reference.py` (e.g. `--layout NHWC`).
pub(crate) fn reference_with(
    model: &Path,
    images: &Path,
    out: &Path,
    extra: &[&str],
) -> HashMap<String, (Vec<usize>, Vec<f64>)> {
    let status = python_script("onnx_reference.py")
        .args(extra)
        .arg("--model")
        .arg(model)
        .arg("--images")
        .arg(images)
        .arg("--out")
        .arg(out)
        .arg("--metadata")
        .output()
        .expect("run the reference");
    assert!(
        status.status.success(),
        "reference failed on {}: {}",
        model.display(),
        text(&status.stderr)
    );
    read_csv(out)
}

/// Largest allowed |ours - reference| of a top-5 probability. Both sides run the same ONNX
/// Runtime build on the same model and the same preprocessed pixels, so the scores agree and
/// only the softmax differs (ours: f64 sum in class order; numpy: f64 pairwise sum).
/// Measured (ONNX Runtime 1.31.1, CPU, the fixture photos through every fixture model and
/// Lite0): the largest difference is below 1e-15, f64 rounding; the tests print it. 1e-12
/// leaves room for another CPU's summation while any real difference (a wrong class, a
/// float32 softmax: ~1e-8, a one-level pixel change) fails.
const PROBABILITY_TOLERANCE: f64 = 1e-12;

/// Ours against the reference, image by image: the same images, `predicted_class` and the
/// top-5 classes in the same order, exactly; each probability within
/// [`PROBABILITY_TOLERANCE`]. Ties (equal reference probabilities) are not loosened: both
/// sides break them by the lower class index, which is checked explicitly so a failure says
/// so. Returns the largest probability difference seen (printed by the callers).
pub(crate) fn assert_same_predictions(
    label: &str,
    ours: &HashMap<String, (Vec<usize>, Vec<f64>)>,
    want: &HashMap<String, (Vec<usize>, Vec<f64>)>,
) -> f64 {
    assert_eq!(
        ours.keys().collect::<std::collections::BTreeSet<_>>(),
        want.keys().collect::<std::collections::BTreeSet<_>>(),
        "{label}: different images"
    );
    assert!(!want.is_empty(), "{label}: no predictions to compare");
    let mut worst = 0.0f64;
    for (file, (classes, probs)) in want {
        let (our_classes, our_probs) = &ours[file];
        assert_eq!(
            classes.len(),
            5,
            "{label} {file}: reference top-5 {classes:?}"
        );
        assert_eq!(probs.len(), classes.len(), "{label} {file}: reference");
        assert_eq!(our_probs.len(), our_classes.len(), "{label} {file}: ours");
        // Equal reference probabilities must be listed by ascending class (the rule of both).
        for i in 1..classes.len() {
            if probs[i] == probs[i - 1] {
                assert!(
                    classes[i - 1] < classes[i],
                    "{label} {file}: the reference breaks a tie at {} against the lower class index: {classes:?}",
                    probs[i]
                );
            }
        }
        let tied = probs.windows(2).any(|w| w[0] == w[1]);
        assert_eq!(
            our_classes,
            classes,
            "{label} {file}: top-5 (in order) {our_classes:?} {our_probs:?}, reference {classes:?} {probs:?}{}",
            if tied {
                " (the reference has tied probabilities; both break ties by the lower class index)"
            } else {
                ""
            }
        );
        for (i, (class, p)) in classes.iter().zip(probs).enumerate() {
            let diff = (our_probs[i] - p).abs();
            worst = worst.max(diff);
            assert!(
                diff <= PROBABILITY_TOLERANCE,
                "{label} {file}: class {class} probability {} vs reference {p} (diff {diff:e})",
                our_probs[i]
            );
        }
    }
    worst
}

#[test]
fn every_fixture_model_matches_the_python_reference() {
    let tmp = tempfile::tempdir().expect("temp dir");
    for name in [
        "nchw_dynamic.onnx",
        "nchw_batch1.onnx",
        "nhwc.onnx",
        "classes1001.onnx",
        "softmax.onnx",
        "two_outputs.onnx",
        "input160.onnx",
        "float16.onnx",
    ] {
        let out = tmp.path().join(format!("{name}.csv"));
        let run = evaluate(&[
            model(name).as_os_str(),
            "--images".as_ref(),
            photos().as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--batch-size".as_ref(),
            "3".as_ref(),
        ]);
        assert_eq!(run.status.code(), Some(0), "{name}: {}", text(&run.stderr));
        let want = reference(
            &model(name),
            &photos(),
            &tmp.path().join(format!("{name}.ref.csv")),
        );
        let diff = assert_same_predictions(name, &read_csv(&out), &want);
        println!("{name}: largest top-5 probability difference from the reference {diff:e}");
        assert_eq!(read_csv(&out).len(), 5, "{name}: one row per photo");
    }
}

#[test]
fn lite0_matches_the_reference_and_recognises_the_photos() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("lite0.csv");
    let html = tmp.path().join("report/lite0.html");
    let run = evaluate(&[
        lite0().as_os_str(),
        "--images".as_ref(),
        photos().as_os_str(),
        "--image-annotations".as_ref(),
        photos().join("annotations.jsonl").as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--report".as_ref(),
        html.as_os_str(),
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let ours = read_csv(&out);
    let diff = assert_same_predictions(
        "lite0",
        &ours,
        &reference(&lite0(), &photos(), &tmp.path().join("ref.csv")),
    );
    println!("lite0: largest top-5 probability difference from the reference {diff:e}");
    // The true classes of fixtures/photos/annotations.jsonl: each in the top 5, and the
    // unambiguous photos at top 1 (chelsea's tabby vs tiger cat is a known confusion; the
    // motion-blurred clock is hard by design).
    for (file, class, top1) in [
        ("camera.png", 872, true),
        ("coffee.png", 967, true),
        ("rocket.jpg", 657, true),
        ("chelsea.png", 281, false),
        ("clock_motion.png", 892, false),
    ] {
        let (classes, _) = &ours[file];
        assert!(
            classes.contains(&class),
            "{file}: {class} not in top-5 {classes:?}"
        );
        if top1 {
            assert_eq!(classes[0], class, "{file}: top-1");
        }
    }
    let (chelsea, _) = &ours["chelsea.png"];
    assert!(
        (281..=285).contains(&chelsea[0]),
        "chelsea: top-1 {} is not a cat",
        chelsea[0]
    );
    let stdout = text(&run.stdout);
    assert!(stdout.contains("967 espresso"), "{stdout}");
    assert!(stdout.contains("top-1 accuracy 0.6000 (3/5)"), "{stdout}");
    assert!(stdout.contains("ImageNet-X factors"), "{stdout}");
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("lite0.run.json")).expect("run record"),
    )
    .expect("JSON");
    assert_eq!(record["preprocessing"]["config"]["scale"], "raw");
    assert_eq!(record["provider"]["used"], "CPUExecutionProvider");
    assert_eq!(record["counts"]["predicted"], 5);
    assert_eq!(record["model"]["sha256"].as_str().map(str::len), Some(64));
    // --report: one self-contained page with the plots and the two misclassified photos.
    let page = std::fs::read_to_string(&html).expect("the report was written");
    assert!(page.contains("<svg"), "no plot in the report");
    assert_eq!(
        page.matches("data:image/jpeg;base64,").count(),
        2,
        "gallery thumbnails"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "network reference"
    );
}

#[test]
fn bad_images_are_listed_and_the_rest_kept() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).expect("mkdir");
    let rocket = std::fs::read(photos().join("rocket.jpg")).expect("rocket");
    std::fs::copy(photos().join("coffee.png"), images.join("good.png")).expect("copy");
    std::fs::copy(photos().join("chelsea.png"), images.join("png_named.JPEG")).expect("copy");
    std::fs::write(images.join("empty.JPEG"), b"").expect("write");
    std::fs::write(images.join("truncated.JPEG"), &rocket[..rocket.len() / 3]).expect("write");
    std::fs::write(
        images.join("corrupt.JPEG"),
        b"\xff\xd8\xff\xe0 this is not a jpeg at all",
    )
    .expect("write");
    std::os::unix::fs::symlink(
        tmp.path().join("nowhere.JPEG"),
        images.join("unreadable.JPEG"),
    )
    .expect("symlink");
    let out = tmp.path().join("p.csv");
    let run = evaluate(&[
        model("nchw_dynamic.onnx").as_os_str(),
        "--images".as_ref(),
        images.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    let rows = read_csv(&out);
    let mut kept: Vec<&str> = rows.keys().map(String::as_str).collect();
    kept.sort_unstable();
    assert_eq!(kept, ["good.png", "png_named.JPEG"]);
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("p.run.json")).expect("record"),
    )
    .expect("JSON");
    let skipped: Vec<String> = record["skipped"]
        .as_array()
        .expect("skipped list")
        .iter()
        .map(|s| {
            let file = s["file"].as_str().expect("file");
            let reason = s["reason"].as_str().expect("reason");
            assert!(!reason.is_empty(), "{file}: no reason");
            Path::new(file)
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        skipped,
        [
            "corrupt.JPEG",
            "empty.JPEG",
            "truncated.JPEG",
            "unreadable.JPEG"
        ],
        "{record}"
    );
    for name in [
        "corrupt.JPEG",
        "empty.JPEG",
        "truncated.JPEG",
        "unreadable.JPEG",
    ] {
        assert!(
            stderr.contains(name),
            "stderr does not list {name}: {stderr}"
        );
    }
}

#[test]
fn nan_outputs_are_reported_not_ranked() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("nan.csv");
    let run = evaluate(&[
        model("nan_output.onnx").as_os_str(),
        "--images".as_ref(),
        photos().as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        read_csv(&out).is_empty(),
        "a NaN output was sorted into a class"
    );
    let record = std::fs::read_to_string(tmp.path().join("nan.run.json")).expect("record");
    assert!(record.to_lowercase().contains("nan"), "{record}");
}

#[test]
fn bad_models_are_fatal_with_a_reason() {
    let tmp = tempfile::tempdir().expect("temp dir");
    for (name, want) in [
        ("not_onnx.onnx", "not_onnx.onnx"),
        ("no_image_input.onnx", "image"),
        ("no_class_output.onnx", "1000"),
    ] {
        let run = evaluate(&[
            model(name).as_os_str(),
            "--images".as_ref(),
            photos().as_os_str(),
            "--out".as_ref(),
            tmp.path().join("x.csv").as_os_str(),
        ]);
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(want), "{name}: {stderr}");
    }
}

/// How many images the fixture photos folder lists.
fn photo_count() -> usize {
    imagenetx_dataset::discover_images(&photos(), None)
        .expect("photos")
        .images
        .len()
}

#[test]
fn a_run_says_where_its_time_went_unless_quiet() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let count = photo_count();
    let run = |extra: &[&str], out: &str| {
        let output = Command::new(imagenetx())
            .args(["evaluate", "--no-cache", "--ep", "cpu", "--threads", "2"])
            .arg(model("nchw_dynamic.onnx"))
            .arg("--images")
            .arg(photos())
            .args(extra)
            .arg("--out")
            .arg(tmp.path().join(out))
            .env_remove("IMAGENETX_THROTTLE_MS")
            .output()
            .expect("run imagenetx");
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        stderr
    };
    let stderr = run(&[], "one.csv");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("pipeline: "))
        .unwrap_or_else(|| panic!("no pipeline line: {stderr}"));
    assert!(
        line.starts_with(&format!("pipeline: {count} images in ")),
        "{line}"
    );
    assert!(line.contains("; 2 decoding threads busy "), "{line}");
    assert!(
        line.contains("%: decoding limits this run")
            || line.contains("%: the model limits this run"),
        "{line}"
    );
    assert!(!run(&["--quiet"], "quiet.csv").contains("pipeline:"));
    // Nothing left to do (a finished run resumed): no line, rather than a verdict on nothing.
    assert!(!run(&["--resume"], "one.csv").contains("pipeline:"));
    // A pass: a line for each model.
    let pass = Command::new(imagenetx())
        .args(["evaluate", "--no-cache", "--ep", "cpu"])
        .arg(model("nchw_dynamic.onnx"))
        .arg(model("softmax.onnx"))
        .arg("--images")
        .arg(photos())
        .arg("--out-dir")
        .arg(tmp.path().join("pass"))
        .output()
        .expect("run imagenetx");
    let stderr = text(&pass.stderr);
    assert_eq!(pass.status.code(), Some(0), "{stderr}");
    for name in ["nchw_dynamic", "softmax"] {
        assert!(
            stderr.contains(&format!("{name}: pipeline: {count} images in ")),
            "{name}: {stderr}"
        );
    }
}

/// `scripts/bench_threads.sh`, which a many-core machine runs without cargo: its table, from
/// the runs' own lines, and a clear refusal of a missing model.
#[test]
fn the_thread_benchmark_script_prints_its_table() {
    let script = root().join("scripts/bench_threads.sh");
    let count = photo_count();
    let output = Command::new("bash")
        .arg(&script)
        .arg(imagenetx())
        .arg(model("nchw_dynamic.onnx"))
        .arg(photos())
        .args(["1 2", "1", "100", "--", "--ep", "cpu", "--no-cache"])
        .output()
        .expect("run bash");
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert!(
        rows[1].starts_with("| 1 | ") && rows[1].contains("| 1.00x | "),
        "{stdout}"
    );
    assert!(rows[2].starts_with("| 2 | "), "{stdout}");
    for row in &rows[1..] {
        assert!(row.contains(&format!("| {count} images in ")), "{row}");
    }
    let missing = Command::new("bash")
        .arg(&script)
        .arg(imagenetx())
        .arg("/nonexistent/model.onnx")
        .arg(photos())
        .args(["1", "1", "10"])
        .output()
        .expect("run bash");
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("/nonexistent/model.onnx: no such file"));
}

#[test]
fn resume_finishes_an_interrupted_run_and_refuses_another_model() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("r.csv");
    let run = |model_path: PathBuf, extra: &[&str]| {
        let mut args: Vec<std::ffi::OsString> = vec![
            model_path.into(),
            "--images".into(),
            photos().into(),
            "--out".into(),
            out.clone().into(),
        ];
        args.extend(extra.iter().map(Into::into));
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        evaluate(&refs)
    };
    let first = run(model("nchw_dynamic.onnx"), &["--limit", "2"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let partial = read_csv(&out);
    assert_eq!(partial.len(), 2);
    let second = run(model("nchw_dynamic.onnx"), &["--resume"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    let full = read_csv(&out);
    assert_eq!(full.len(), 5);
    for (file, row) in &partial {
        assert_eq!(&full[file], row, "{file} changed on resume");
    }
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("r.run.json")).expect("record"),
    )
    .expect("JSON");
    assert_eq!(record["counts"]["resumed"], 2);
    assert_eq!(record["counts"]["predicted"], 3);
    let other = run(model("nhwc.onnx"), &["--resume"]);
    assert_eq!(other.status.code(), Some(2));
    assert!(
        text(&other.stderr).contains("different model"),
        "{}",
        text(&other.stderr)
    );
}

#[test]
fn compare_two_fixture_runs_prints_corrected_tests() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let annotations = photos().join("annotations.jsonl");
    for (model_path, name) in [(model("nchw_dynamic.onnx"), "tiny"), (lite0(), "lite0")] {
        let out = tmp.path().join(format!("{name}.csv"));
        let run = evaluate(&[
            model_path.as_os_str(),
            "--images".as_ref(),
            photos().as_os_str(),
            "--image-annotations".as_ref(),
            annotations.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        assert_eq!(run.status.code(), Some(0), "{name}: {}", text(&run.stderr));
    }
    let run = Command::new(imagenetx())
        .arg("compare")
        .arg("--no-cache")
        .arg(tmp.path().join("tiny.csv"))
        .arg(tmp.path().join("lite0.csv"))
        .arg("--image-annotations")
        .arg(&annotations)
        .args(["--format", "csv"])
        .output()
        .expect("run imagenetx compare");
    let stdout = text(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let header = stdout.lines().next().expect("header");
    for column in [
        "factor",
        "accuracy_diff",
        "p_value",
        "p_holm",
        "significant",
    ] {
        assert!(
            header.split(',').any(|c| c == column),
            "no {column}: {header}"
        );
    }
    // One row per factor; pose holds one photo (coffee), right for Lite0 only.
    assert_eq!(stdout.lines().count(), 1 + 16, "{stdout}");
    let pose = stdout
        .lines()
        .find(|l| l.split(',').any(|c| c == "pose"))
        .expect("pose row");
    assert!(pose.contains(",1,"), "{pose}");
}
