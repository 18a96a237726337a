//! End-to-end checks of the interval and comparison outputs: `imagenetx analyze` with
//! `--baseline` and `imagenetx compare`, on two synthetic prediction files made from the
//! annotations (`IMAGENETX_ANNOTATIONS`, default `<workspace>/.cache/annotations`; `just
//! setup` fetches them).
//!
//! Model A is right on three images in four; model B is A except that it is right on every
//! image whose only factor is `color`. So the models differ on `color` and nowhere else.
//!
//! Also: the fixture photos' two annotation files (`fixtures/photos/annotations.jsonl`, top
//! factor, and `annotations_multi.jsonl`, every factor marked) through `analyze
//! --image-annotations`, against per-factor counts made here from the JSONL.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use crate::parity_util;
use parity_util::{annotations_dir, run_imagenetx, run_imagenetx_ok, workspace_root};

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

/// `analyze --image-annotations` with each of the fixture photos' annotation files, for a
/// model right on three photos (camera, coffee, rocket) and wrong on two: every factor's
/// accuracy must be (right photos marked with it) / (photos marked with it), counted here
/// from the JSONL, and empty where no photo is marked. The multi-factor file marks more
/// factors than the top-factor one, so the two runs must differ; both give 3/5 overall.
#[test]
fn photo_annotations_top_and_multi_give_the_counted_accuracies() {
    let photos = workspace_root().join("fixtures/photos");
    let tmp = tempfile::tempdir().expect("temp dir");
    let right = ["camera.png", "coffee.png", "rocket.jpg"];
    let mut per_file: Vec<BTreeMap<String, Option<f64>>> = Vec::new();
    for file in ["annotations.jsonl", "annotations_multi.jsonl"] {
        let jsonl = photos.join(file);
        let text = std::fs::read_to_string(&jsonl).expect("read the photo annotations");
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .expect("JSON line")
                    .as_object()
                    .expect("object")
                    .clone()
            })
            .collect();
        assert_eq!(rows.len(), 5, "{file}: one line per photo");
        let mut csv = String::from("file_name,predicted_class,predicted_probability\n");
        // factor -> (marked, right among marked)
        let mut counts: BTreeMap<String, (u32, u32)> = BTreeMap::new();
        for row in &rows {
            let name = row["file_name"].as_str().expect("file_name");
            let class = row["class"].as_u64().expect("class");
            let ok = right.contains(&name);
            let predicted = if ok { class } else { (class + 1) % 1000 };
            csv.push_str(&format!("{name},{predicted},0.5\n"));
            for (key, value) in row {
                if ["file_name", "class", "justification", "one_word"].contains(&key.as_str()) {
                    continue;
                }
                let marked = value.as_u64().unwrap_or_else(|| panic!("{file}: {key}"));
                let entry = counts.entry(key.clone()).or_default();
                entry.0 += u32::from(marked == 1);
                entry.1 += u32::from(marked == 1 && ok);
            }
        }
        assert_eq!(counts.len(), 16, "{file}: factors {:?}", counts.keys());
        let predictions = tmp.path().join(format!("{file}.photos.csv"));
        std::fs::write(&predictions, csv).expect("write predictions");
        let out = tmp.path().join(format!("{file}.out"));
        let predictions_arg = predictions.to_string_lossy().into_owned();
        let jsonl_arg = jsonl.to_string_lossy().into_owned();
        let out_arg = out.to_string_lossy().into_owned();
        ok_stdout(&[
            "analyze",
            &predictions_arg,
            "--image-annotations",
            &jsonl_arg,
            "--out",
            &out_arg,
        ]);
        let table = read_csv(&out.join("accuracies_per_factor.csv"));
        assert_eq!(table.len(), 1, "{file}: one model");
        let row = &table[0];
        let mut got = BTreeMap::new();
        for (factor, &(marked, ok)) in &counts {
            let cell = row
                .get(factor)
                .unwrap_or_else(|| panic!("{file}: no column {factor}"));
            let want = (marked > 0).then(|| f64::from(ok) / f64::from(marked));
            let have = (!cell.is_empty()).then(|| cell.parse::<f64>().expect("a number"));
            assert_eq!(
                have, want,
                "{file}: {factor}: {ok} right of {marked} marked"
            );
            got.insert(factor.clone(), have);
        }
        assert_eq!(
            row["average"].parse::<f64>().ok(),
            Some(3.0 / 5.0),
            "{file}"
        );
        per_file.push(got);
    }
    let differing: Vec<&String> = per_file[0]
        .keys()
        .filter(|f| per_file[0][*f] != per_file[1][*f])
        .collect();
    assert!(
        !differing.is_empty(),
        "annotations_multi.jsonl gives the same factor accuracies as annotations.jsonl"
    );
    println!("top vs multi factors differ on {differing:?}");
}
