//! End-to-end checks of the interval and comparison outputs: `imagenetx analyze` with
//! `--baseline` and `imagenetx compare`, on two synthetic prediction files made from the
//! annotations (`IMAGENETX_ANNOTATIONS`, default `<workspace>/.cache/annotations`; `just
//! setup` fetches them).
//!
//! Model A is right on three images in four; model B is A except that it is right on every
//! image whose only factor is `color`. So the models differ on `color` and nowhere else.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

mod parity_util;
use parity_util::{annotations_dir, run_imagenetx, run_imagenetx_ok};

/// Writes A.csv and B.csv into `dir`.
fn write_predictions(dir: &Path) {
    let text = std::fs::read_to_string(annotations_dir().join("imagenet_x_val_top_factor.jsonl"))
        .expect("read annotations");
    let (mut a, mut b) = (String::new(), String::new());
    for out in [&mut a, &mut b] {
        out.push_str("file_name,predicted_class,predicted_probability\n");
    }
    for (i, line) in text.lines().enumerate() {
        let row: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        let name = row["file_name"].as_str().expect("file_name");
        let class = row["class"].as_u64().expect("class");
        let marked: Vec<&str> = row
            .as_object()
            .expect("object")
            .iter()
            .filter(|(k, v)| *k != "class" && v.as_u64() == Some(1))
            .map(|(k, _)| k.as_str())
            .collect();
        let a_right = i % 4 != 0;
        let b_right = a_right || marked == ["color"];
        let wrong = (class + 1) % 1000;
        a.push_str(&format!(
            "{name},{},0.5\n",
            if a_right { class } else { wrong }
        ));
        b.push_str(&format!(
            "{name},{},0.5\n",
            if b_right { class } else { wrong }
        ));
    }
    std::fs::write(dir.join("A.csv"), a).expect("write A.csv");
    std::fs::write(dir.join("B.csv"), b).expect("write B.csv");
}

/// `imagenetx ARGS --annotations DIR`.
fn with_annotations(args: &[&str]) -> Vec<std::ffi::OsString> {
    let mut all: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
    all.push("--annotations".into());
    all.push(annotations_dir().into());
    all
}

fn imagenetx(args: &[&str]) -> Output {
    run_imagenetx(&with_annotations(args))
}

fn ok_stdout(args: &[&str]) -> String {
    String::from_utf8(run_imagenetx_ok(&with_annotations(args)).stdout).expect("UTF-8 stdout")
}

/// A CSV without quoted cells as rows of column → value.
fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("read CSV");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn num(row: &BTreeMap<String, String>, key: &str) -> f64 {
    row[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key} = {:?}", row[key]))
}

#[test]
fn analyze_with_baseline_and_compare_agree_and_find_the_one_difference() {
    let tmp = tempfile::tempdir().expect("temp dir");
    write_predictions(tmp.path());
    let (a, b) = (tmp.path().join("A.csv"), tmp.path().join("B.csv"));
    let (a, b) = (a.to_str().expect("path"), b.to_str().expect("path"));
    let out = tmp.path().join("out");
    let out_s = out.to_str().expect("path");

    let started = std::time::Instant::now();
    let stdout = ok_stdout(&[
        "analyze",
        a,
        b,
        "--out",
        out_s,
        "--baseline",
        "A",
        "--seed",
        "9",
    ]);
    println!(
        "analyze (2 models, 2000 replicates) took {:.2?}",
        started.elapsed()
    );
    assert!(stdout.contains("B vs A"), "{stdout}");
    assert!(stdout.contains("Factors where they differ"), "{stdout}");

    // intervals.csv: 16 rows per model, consistent with the toolkit tables.
    let intervals = read_csv(&out.join("intervals.csv"));
    assert_eq!(intervals.len(), 32);
    let accuracies = read_csv(&out.join("accuracies_per_factor.csv"));
    let ratios = read_csv(&out.join("error_ratios.csv"));
    for row in &intervals {
        let model = &row["model"];
        let factor = &row["factor"];
        let toolkit = accuracies
            .iter()
            .find(|r| &r["model"] == model)
            .expect("model row");
        assert_eq!(
            row["accuracy"],
            toolkit[factor.as_str()],
            "{model} {factor}"
        );
        let toolkit = ratios
            .iter()
            .find(|r| &r["model"] == model)
            .expect("model row");
        assert_eq!(
            row["error_ratio"],
            toolkit[factor.as_str()],
            "{model} {factor}"
        );
        let (acc, lo, hi) = (
            num(row, "accuracy"),
            num(row, "accuracy_low"),
            num(row, "accuracy_high"),
        );
        assert!(lo <= acc && acc <= hi, "{row:?}");
        let (er, lo, hi) = (
            num(row, "error_ratio"),
            num(row, "error_ratio_low"),
            num(row, "error_ratio_high"),
        );
        assert!(lo <= er && er <= hi, "{row:?}");
        // A factor without errors has a degenerate interval at 0; others a proper one.
        assert_eq!(lo < hi, row["correct"] != row["images"], "{row:?}");
        assert_eq!(row["small_sample"] == "true", num(row, "images") < 100.0);
    }

    // comparisons.csv: B − A, significant on color only.
    let comparisons = read_csv(&out.join("comparisons.csv"));
    assert_eq!(comparisons.len(), 16);
    for row in &comparisons {
        assert_eq!(
            (row["model_a"].as_str(), row["model_b"].as_str()),
            ("A", "B")
        );
        let color = row["factor"] == "color";
        assert_eq!(row["significant"] == "true", color, "{row:?}");
        if color {
            assert_eq!(num(row, "a_only_correct"), 0.0);
            assert!(num(row, "accuracy_diff_low") > 0.0, "{row:?}");
        } else {
            assert_eq!(num(row, "accuracy_diff"), 0.0, "{row:?}");
            assert_eq!(num(row, "p_value"), 1.0, "{row:?}");
        }
    }

    // summary.json keeps its keys and gains the interval fields.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("read"))
            .expect("JSON");
    let pose = &summary["models"][0]["factors"]["pose"];
    for key in [
        "images",
        "accuracy",
        "error_ratio",
        "accuracy_low",
        "accuracy_high",
        "error_ratio_low",
        "error_ratio_high",
        "small_sample",
    ] {
        assert!(
            pose.get(key).is_some(),
            "summary.json pose lacks {key}: {pose}"
        );
    }

    // `compare` with the same seed gives the same table as `analyze --baseline`.
    let out2 = tmp.path().join("out2");
    let csv = ok_stdout(&[
        "compare",
        a,
        b,
        "--seed",
        "9",
        "--format",
        "csv",
        "--out",
        out2.to_str().expect("path"),
    ]);
    let from_analyze = std::fs::read_to_string(out.join("comparisons.csv")).expect("read");
    assert_eq!(csv, from_analyze);
    assert_eq!(
        std::fs::read_to_string(out2.join("comparisons.csv")).expect("read"),
        from_analyze
    );
}

#[test]
fn invalid_statistics_flags_are_fatal() {
    let tmp = tempfile::tempdir().expect("temp dir");
    write_predictions(tmp.path());
    let a = tmp.path().join("A.csv");
    let a = a.to_str().expect("path");
    let output = imagenetx(&["analyze", a, "--confidence", "1.5"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("confidence"));
    let output = imagenetx(&["analyze", a, "--baseline", "nope", "--bootstrap", "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--baseline nope"));
}
