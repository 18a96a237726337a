//! The HTML report of the fixture run, rendered in a real browser (headless Chromium).
//!
//! Runs `imagenetx evaluate` with EfficientNet-Lite0 on `fixtures/photos`, then
//! `imagenetx report` with thumbnails, loads the file in Chromium from disk, and checks the
//! DOM Chromium built: the tables, the inline SVG plots and the gallery images with `data:`
//! URIs. A screenshot and the page go to `test-artifacts/` in cargo's target folder
//! (`target/`, or `$CARGO_TARGET_DIR`); the test prints the path.
//!
//! Needs Chromium (`scripts/ensure_chromium.sh`, or `IMAGENETX_CHROMIUM`), ONNX Runtime
//! (`just setup-ort`), the annotations (`just setup`) and the Lite0 model
//! (`just model-lite0`); fails, saying which, when one is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::parity_util;
use parity_util::{annotations_dir, run_imagenetx_ok, workspace_root as root};

fn chromium() -> PathBuf {
    if let Some(explicit) = std::env::var_os("IMAGENETX_CHROMIUM") {
        let path = PathBuf::from(explicit);
        assert!(
            path.is_file(),
            "IMAGENETX_CHROMIUM={} is not a file: point it at a Chromium binary or unset it (scripts/ensure_chromium.sh installs one)",
            path.display()
        );
        return path;
    }
    let paths = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(path) = std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
        {
            return path;
        }
    }
    panic!(
        "Chromium is missing: the report's browser test needs it. Run `scripts/ensure_chromium.sh` \
         (apt-get install -y chromium) or set IMAGENETX_CHROMIUM to a Chromium binary."
    );
}

/// Runs Chromium with `args` on `page`, killed after `timeout`.
fn run_chromium(browser: &Path, args: &[String], page: &Path, timeout: Duration) -> Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Drain the pipes on threads so a chatty browser cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut buf).ok();
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut buf).ok();
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait chromium") {
            break status;
        }
        if start.elapsed() > timeout {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium did not finish within {timeout:?} ({args:?})");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    assert!(
        output.status.success(),
        "chromium {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn fixture_report_renders_in_chromium() {
    let browser = chromium();
    let annotations = annotations_dir();
    let model = root().join("onnx_models/efficientnet_lite0.onnx");
    assert!(
        model.is_file(),
        "{} is missing: run `just model-lite0`",
        model.display()
    );
    if let Err(err) = imagenetx_infer::locate_runtime(None, false) {
        panic!(
            "the report's browser test evaluates a model and needs ONNX Runtime; run `just setup-ort`.\n{err}"
        );
    }
    let photos = root().join("fixtures/photos");
    let tmp = tempfile::tempdir().expect("tempdir");
    let predictions = tmp.path().join("lite0.csv");
    let annotations_file = photos.join("annotations.jsonl");
    run_imagenetx_ok(&[
        "evaluate".as_ref(),
        model.as_os_str(),
        "--images".as_ref(),
        photos.as_os_str(),
        "--image-annotations".as_ref(),
        annotations_file.as_os_str(),
        "--annotations".as_ref(),
        annotations.as_os_str(),
        "--out".as_ref(),
        predictions.as_os_str(),
        "--ep".as_ref(),
        "cpu".as_ref(),
        "--quiet".as_ref(),
    ]);
    let report = tmp.path().join("report.html");
    run_imagenetx_ok(&[
        "report".as_ref(),
        predictions.as_os_str(),
        "--images".as_ref(),
        photos.as_os_str(),
        "--image-annotations".as_ref(),
        annotations_file.as_os_str(),
        "--annotations".as_ref(),
        annotations.as_os_str(),
        "--out".as_ref(),
        report.as_os_str(),
    ]);
    let html = std::fs::read_to_string(&report).expect("read report");
    // The file itself: no reference that would reach the network.
    for needle in ["http:", "https:", "src=\"//", "@import", "url("] {
        assert!(!html.contains(needle), "the report refers to {needle}");
    }

    let dom = run_chromium(
        &browser,
        &[
            "--dump-dom".to_string(),
            "--virtual-time-budget=5000".to_string(),
        ],
        &report,
        Duration::from_secs(90),
    );
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert!(dom.contains("<table"), "no table in the DOM:\n{dom:.2000}");
    assert!(dom.contains("<th>error ratio</th>"));
    assert!(dom.contains("efficientnet") || dom.contains("lite0"));
    // The error-ratio table has one row per factor with images; the run record's SHA-256
    // is shown.
    assert!(dom.contains("partial_view") && dom.contains("texture"));
    let record = std::fs::read_to_string(tmp.path().join("lite0.run.json")).expect("run record");
    let sha = record
        .split("\"sha256\": \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("model sha256 in the run record");
    assert_eq!(sha.len(), 64);
    assert!(
        dom.contains(sha),
        "the model's SHA-256 is not in the report"
    );
    // Plots: error ratio, a heatmap, the distribution.
    let svgs = dom.matches("<svg").count();
    assert!(svgs >= 3, "{svgs} svg elements in the DOM");
    // Gallery: the two misclassified photos (tabby → tiger cat, wall clock → bubble) with
    // thumbnails as data: URIs.
    let images = dom.matches("<img src=\"data:image/jpeg;base64,").count();
    assert_eq!(images, 2, "gallery images in the DOM");
    assert!(dom.contains("tiger cat") && dom.contains("bubble"));
    assert!(dom.contains("face close up") && dom.contains("motion blurred"));

    // Cargo's target folder, wherever it is (CARGO_TARGET_DIR, a config): the parent of the
    // `tmp` folder cargo gives integration tests.
    let target_tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let artifacts = target_tmp
        .parent()
        .unwrap_or(target_tmp)
        .join("test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifact dir");
    let shot = artifacts.join("report.png");
    std::fs::remove_file(&shot).ok();
    run_chromium(
        &browser,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".to_string(),
            "--virtual-time-budget=5000".to_string(),
        ],
        &report,
        Duration::from_secs(90),
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "screenshot is not a PNG");
    // 1280 x 2000, from the IHDR chunk.
    let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    let height = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
    assert_eq!((width, height), (1280, 2000));
    std::fs::copy(&report, artifacts.join("report.html")).expect("keep the report");
    println!(
        "screenshot: {}; page: {}",
        shot.display(),
        artifacts.join("report.html").display()
    );
}
