//! Prediction files are read row by row: rows for images outside the annotated set change
//! nothing but the counts, wherever they are in the file, and errors past the rows read ahead
//! still name the file and line. Needs the annotations (`IMAGENETX_ANNOTATIONS`, default
//! `<workspace>/.cache/annotations`; `just setup` fetches them).

use std::fmt::Write as _;
use std::path::Path;

use crate::parity_util;
use parity_util::{annotations_dir, run_imagenetx, run_imagenetx_ok};

/// Rows of unannotated images mixed in: more than `PARSE_AHEAD_ROWS` (131,072), so most of
/// them stream after the annotations are loaded.
const EXTRA_ROWS: usize = 200_000;

/// The annotated validation images with a prediction each: right on three in four.
fn annotated_rows() -> Vec<String> {
    let text = std::fs::read_to_string(annotations_dir().join("imagenet_x_val_top_factor.jsonl"))
        .expect("read annotations");
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let row: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            let name = row["file_name"].as_str().expect("file_name");
            let class = row["class"].as_u64().expect("class");
            let predicted = if i % 4 == 0 {
                (class + 1) % 1000
            } else {
                class
            };
            format!("{name},{predicted},0.{}\n", 1 + i % 9)
        })
        .collect()
}

/// Writes the rows, with `EXTRA_ROWS` rows of unannotated images spread among them when
/// `mixed`.
fn write(path: &Path, rows: &[String], mixed: bool) {
    let mut text = String::from("file_name,predicted_class,predicted_probability\n");
    let mut extra = 0;
    for (i, row) in rows.iter().enumerate() {
        let until = if mixed {
            (i + 1) * EXTRA_ROWS / rows.len()
        } else {
            0
        };
        while extra < until {
            writeln!(text, "n00000000/unannotated_{extra:08}.JPEG,7,0.5").expect("write");
            extra += 1;
        }
        text.push_str(row);
    }
    std::fs::write(path, text).expect("write predictions");
}

fn analyze(files: &[&Path]) -> (String, serde_json::Value) {
    let annotations = annotations_dir();
    let mut args: Vec<&std::ffi::OsStr> = files.iter().map(|f| f.as_os_str()).collect();
    args.extend([
        "--annotations".as_ref(),
        annotations.as_os_str(),
        "--format".as_ref(),
        "csv".as_ref(),
        "--bootstrap".as_ref(),
        "20".as_ref(),
    ]);
    let mut all = vec!["analyze".as_ref()];
    all.extend(args.iter().copied());
    let csv = String::from_utf8(run_imagenetx_ok(&all).stdout).expect("utf-8");
    let json_args: Vec<&std::ffi::OsStr> = all
        .iter()
        .map(|a| if *a == "csv" { "json".as_ref() } else { *a })
        .collect();
    let json = serde_json::from_slice(&run_imagenetx_ok(&json_args).stdout).expect("JSON");
    (csv, json)
}

#[test]
fn unannotated_rows_change_only_the_counts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rows = annotated_rows();
    let plain = dir.path().join("plain").join("model.csv");
    let mixed = dir.path().join("mixed").join("model.csv");
    for path in [&plain, &mixed] {
        std::fs::create_dir_all(path.parent().expect("folder")).expect("mkdir");
    }
    write(&plain, &rows, false);
    write(&mixed, &rows, true);
    let (plain_csv, plain_json) = analyze(&[&plain]);
    let (mixed_csv, mixed_json) = analyze(&[&mixed]);
    assert_eq!(plain_csv, mixed_csv);
    let (p, m) = (&plain_json["models"][0], &mixed_json["models"][0]);
    assert_eq!(p["rows"], rows.len());
    let count = |model: &serde_json::Value, key: &str| model[key].as_u64().expect(key);
    assert_eq!(count(m, "rows"), count(p, "rows") + EXTRA_ROWS as u64);
    // Prototypes are left out of the annotated set: their rows are unannotated in both.
    assert_eq!(
        count(m, "unannotated_rows"),
        count(p, "unannotated_rows") + EXTRA_ROWS as u64
    );
    // Everything else in the summary is the same.
    let without_counts = |model: &serde_json::Value| {
        let mut model = model.clone();
        let object = model.as_object_mut().expect("object");
        for key in ["rows", "unannotated_rows", "file"] {
            object.remove(key);
        }
        model
    };
    assert_eq!(without_counts(p), without_counts(m));

    // `compare` reads the same way: the two files are the same model.
    let annotations = annotations_dir();
    let out = run_imagenetx_ok(&[
        "compare".as_ref(),
        plain.as_os_str(),
        mixed.as_os_str(),
        "--annotations".as_ref(),
        annotations.as_os_str(),
        "--bootstrap".as_ref(),
        "20".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let c = &json["comparison"];
    assert_eq!(c["a_only_correct"], 0, "{c}");
    assert_eq!(c["b_only_correct"], 0, "{c}");
    assert_eq!(c["accuracy_a"], c["accuracy_b"], "{c}");
    assert_eq!(c["images"], p["images"], "{c}\n{p}");
    assert_eq!(c["accuracy_a"], p["average"], "{c}\n{p}");
}

#[test]
fn a_repeat_past_the_rows_read_ahead_names_both_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rows = annotated_rows();
    let path = dir.path().join("model.csv");
    write(&path, &rows, true);
    let mut text = std::fs::read_to_string(&path).expect("read back");
    let lines = text.lines().count();
    // An unannotated name from near the start, and an annotated one, again at the end.
    let unannotated = "n00000000/unannotated_00000002.JPEG";
    let first_unannotated = text
        .lines()
        .position(|l| l.starts_with(unannotated))
        .expect("row")
        + 1;
    text.push_str(&format!("{unannotated},1,0.5\n"));
    std::fs::write(&path, &text).expect("write");
    let annotations = annotations_dir();
    let args: [&std::ffi::OsStr; 4] = [
        "analyze".as_ref(),
        path.as_os_str(),
        "--annotations".as_ref(),
        annotations.as_os_str(),
    ];
    let out = run_imagenetx(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let want = format!(
        "{}:{}: {unannotated} has a second prediction (first on line {first_unannotated})",
        path.display(),
        lines + 1
    );
    assert!(stderr.contains(&want), "want {want:?}: {stderr}");
}
