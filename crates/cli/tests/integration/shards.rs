//! `evaluate --shard` and `imagenetx merge` through the real binary, without a cluster: the
//! merged CSV against one process over the same images (byte for byte), every refusal of
//! `merge`, `--shard auto` from the environment, and `--resume` of a shard.
//!
//! Needs ONNX Runtime (`just setup-ort`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::evaluate::{evaluate, photos};
use crate::parity_util::imagenetx;
use imagenetx_test_support::{fixture, temp_dir, text};

fn model(name: &str) -> PathBuf {
    fixture(Path::new("models").join(name))
}

/// `evaluate MODEL --images IMAGES --out OUT` plus `extra`; panics unless it exits 0.
fn run_ok(model: &Path, images: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&OsStr> = vec![
        model.as_os_str(),
        "--images".as_ref(),
        images.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let output = evaluate(&args);
    assert!(
        output.status.success(),
        "evaluate {extra:?} failed: {}",
        text(&output.stderr)
    );
    output
}

fn merge(shards: &[PathBuf], out: &Path) -> Output {
    Command::new(imagenetx())
        .arg("merge")
        .args(shards)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run imagenetx merge")
}

/// The shard CSVs of `out` (`--out out --shard K/N`).
fn shard_paths(out: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|k| {
            let stem = out.file_stem().unwrap().to_string_lossy();
            out.with_file_name(format!("{stem}.shard-{k}-of-{n}.csv"))
        })
        .collect()
}

/// Evaluates the `n` shards of the photos into `dir/s.shard-K-of-n.csv`.
fn shards(dir: &Path, n: usize, extra: &[&str]) -> Vec<PathBuf> {
    let out = dir.join("s.csv");
    for k in 0..n {
        let shard = format!("{k}/{n}");
        let mut args = vec!["--shard", shard.as_str()];
        args.extend(extra);
        run_ok(&model("nchw_dynamic.onnx"), &photos(), &out, &args);
    }
    shard_paths(&out, n)
}

fn refused(output: &Output, words: &[&str]) {
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "expected a refusal: {stderr}"
    );
    for word in words {
        assert!(stderr.contains(word), "{stderr:?} lacks {word:?}");
    }
}

#[test]
fn merged_shards_equal_one_process_byte_for_byte() {
    let dir = temp_dir();
    let single = dir.path().join("single.csv");
    run_ok(&model("nchw_dynamic.onnx"), &photos(), &single, &[]);
    // 5 images: more shards than images leaves some empty, and they still merge.
    for n in [1, 2, 3, 5, 7] {
        let sub = dir.path().join(format!("n{n}"));
        std::fs::create_dir_all(&sub).unwrap();
        let mut paths = shards(&sub, n, &[]);
        paths.reverse(); // any order
        let merged = sub.join("merged.csv");
        let output = merge(&paths, &merged);
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert_eq!(
            std::fs::read(&merged).unwrap(),
            std::fs::read(&single).unwrap(),
            "{n} shards merged differ from one process"
        );
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(sub.join("merged.run.json")).unwrap()).unwrap();
        assert_eq!(record["state"], "complete");
        assert_eq!(record["counts"]["images"], 5);
        assert_eq!(record["merged"].as_array().unwrap().len(), n);
        let single_record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("single.run.json")).unwrap())
                .unwrap();
        assert_eq!(record["image_list"], single_record["image_list"]);
        assert_eq!(record["model"]["sha256"], single_record["model"]["sha256"]);
    }
    // `analyze` reads the merged output as any run's (the model is named by the file stem, so
    // both are copied to `m.csv`).
    let analyze = |csv: &Path, name: &str| {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::copy(csv, sub.join("m.csv")).unwrap();
        let output = Command::new(imagenetx())
            .arg("analyze")
            .arg(sub.join("m.csv"))
            .arg("--image-annotations")
            .arg(photos().join("annotations.jsonl"))
            .args(["--format", "csv", "--bootstrap", "0", "--no-cache"])
            .output()
            .expect("run imagenetx analyze");
        assert!(output.status.success(), "{}", text(&output.stderr));
        output.stdout
    };
    assert_eq!(
        analyze(&dir.path().join("n3/merged.csv"), "analyze-merged"),
        analyze(&single, "analyze-single")
    );
}

#[test]
fn shard_records_hold_the_list_and_the_slice() {
    let dir = temp_dir();
    let paths = shards(dir.path(), 3, &[]);
    // The list's identity, computed here from the names: SHA-256 over the sorted file names,
    // each followed by a NUL byte.
    let mut names: Vec<String> = std::fs::read_dir(photos())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png") || n.ends_with(".jpg"))
        .collect();
    names.sort();
    let mut bytes = Vec::new();
    for name in &names {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
    }
    let digest = imagenetx_infer::sha256_hex(&bytes);
    let mut starts = Vec::new();
    for (k, path) in paths.iter().enumerate() {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path.with_extension("run.json")).unwrap())
                .unwrap();
        assert_eq!(record["image_list"]["sha256"], digest.as_str());
        assert_eq!(record["image_list"]["images"], names.len());
        assert_eq!(record["shard"]["index"], k);
        assert_eq!(record["shard"]["count"], 3);
        // floor(K * 5 / 3): 0, 1, 3, 5.
        starts.push((
            record["shard"]["start"].as_u64().unwrap(),
            record["shard"]["end"].as_u64().unwrap(),
        ));
        // The rows are the slice of the sorted names.
        let csv = std::fs::read_to_string(path).unwrap();
        let rows: Vec<&str> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap())
            .collect();
        let (s, e) = starts[k];
        assert_eq!(rows, names[s as usize..e as usize]);
    }
    assert_eq!(starts, [(0, 1), (1, 3), (3, 5)]);
}

#[test]
fn merge_refuses_shards_that_do_not_belong_together() {
    let dir = temp_dir();
    let d = dir.path();
    let paths = shards(d, 3, &[]);
    let out = d.join("merged.csv");

    // A missing shard is named.
    refused(&merge(&paths[..2], &out), &["missing shard 2 of 3"]);
    refused(&merge(&paths[1..2], &out), &["missing shards 0, 2 of 3"]);
    // A shard given twice.
    let copy = d.join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for ext in ["csv", "run.json"] {
        std::fs::copy(
            paths[1].with_extension(ext),
            copy.join(format!("s.shard-1-of-3.{ext}")),
        )
        .unwrap();
    }
    let twice = vec![
        paths[0].clone(),
        paths[1].clone(),
        copy.join("s.shard-1-of-3.csv"),
        paths[2].clone(),
    ];
    refused(&merge(&twice, &out), &["shard 1/3 is given twice"]);

    // Another model, other preprocessing, another image list, another N.
    let other = |name: &str, model_name: &str, images: &Path, extra: &[&str]| {
        let sub = d.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let mut args = vec!["--shard", "2/3"];
        args.extend(extra);
        run_ok(&model(model_name), images, &sub.join("s.csv"), &args);
        vec![
            paths[0].clone(),
            paths[1].clone(),
            sub.join("s.shard-2-of-3.csv"),
        ]
    };
    refused(
        &merge(&other("model", "softmax.onnx", &photos(), &[]), &out),
        &["different models", "s.shard-2-of-3.csv"],
    );
    refused(
        &merge(
            &other(
                "pre",
                "nchw_dynamic.onnx",
                &photos(),
                &["--interpolation", "bicubic"],
            ),
            &out,
        ),
        &["different preprocessing"],
    );
    let more = d.join("more-images");
    std::fs::create_dir_all(&more).unwrap();
    for entry in std::fs::read_dir(photos()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), more.join(entry.file_name())).unwrap();
    }
    std::fs::copy(photos().join("rocket.jpg"), more.join("rocket2.jpg")).unwrap();
    refused(
        &merge(&other("list", "nchw_dynamic.onnx", &more, &[]), &out),
        &["different image lists", "6 images"],
    );
    let four = d.join("four");
    std::fs::create_dir_all(&four).unwrap();
    let four = shards(&four, 4, &[]);
    refused(
        &merge(&[paths[0].clone(), paths[1].clone(), four[3].clone()], &out),
        &["different shard counts"],
    );
    // A run without --shard.
    let whole = d.join("whole.csv");
    run_ok(&model("nchw_dynamic.onnx"), &photos(), &whole, &[]);
    refused(&merge(&[whole], &out), &["not a shard run"]);

    // An unfinished shard (its record says it is still running, as after a kill).
    let record_path = paths[1].with_extension("run.json");
    let saved = std::fs::read(&record_path).unwrap();
    let mut record: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    record["state"] = "interrupted".into();
    std::fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();
    refused(
        &merge(&paths, &out),
        &["shard 1/3", "not finished", "interrupted", "--resume"],
    );
    std::fs::write(&record_path, &saved).unwrap();

    // Rows that break the rule: an image twice, overlapping shards.
    let csv = |p: &Path| std::fs::read_to_string(p).unwrap();
    let (first, second, third) = (csv(&paths[0]), csv(&paths[1]), csv(&paths[2]));
    let row = |text: &str, i: usize| text.lines().nth(i + 1).unwrap().to_string();
    let header = first.lines().next().unwrap().to_string();
    let write_rows = |p: &Path, rows: &[String]| {
        std::fs::write(p, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    };
    write_rows(&paths[1], &[row(&first, 0), row(&second, 1)]);
    refused(
        &merge(&paths, &out),
        &["image camera.png is twice", "shard 0/3", "shard 1/3"],
    );
    write_rows(&paths[1], &[row(&second, 0), row(&second, 1)]);
    write_rows(&paths[2], &[row(&second, 0), row(&third, 1)]);
    refused(&merge(&paths, &out), &["shards overlap", "chelsea.png"]);
    std::fs::write(&paths[2], &third).unwrap();

    // Nothing was written by the refusals; the shards as they were merge.
    assert!(!out.exists());
    let output = merge(&paths, &out);
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn shard_auto_reads_the_cluster_environment() {
    let dir = temp_dir();
    let out = dir.path().join("s.csv");
    let run = |vars: &[(&str, &str)], extra: &[&str]| {
        let mut command = Command::new(imagenetx());
        command
            .arg("evaluate")
            .arg(model("nchw_dynamic.onnx"))
            .arg("--images")
            .arg(photos())
            .arg("--out")
            .arg(&out)
            .args(["--shard", "auto", "--ep", "cpu", "--quiet", "--no-cache"])
            .args(extra);
        for name in [
            "SLURM_ARRAY_TASK_ID",
            "SLURM_ARRAY_TASK_COUNT",
            "SLURM_ARRAY_TASK_MIN",
            "SLURM_ARRAY_TASK_MAX",
            "JOB_COMPLETION_INDEX",
        ] {
            command.env_remove(name);
        }
        command.envs(vars.iter().copied());
        command.output().expect("run imagenetx")
    };
    refused(
        &run(&[], &[]),
        &["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"],
    );
    refused(
        &run(&[("JOB_COMPLETION_INDEX", "1")], &[]),
        &["JOB_COMPLETION_INDEX=1", "--shards N"],
    );
    refused(
        &run(&[("SLURM_ARRAY_TASK_ID", "1")], &[]),
        &["SLURM_ARRAY_TASK_COUNT"],
    );
    let output = run(&[("JOB_COMPLETION_INDEX", "1")], &["--shards", "2"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(dir.path().join("s.shard-1-of-2.csv").is_file());
    let output = run(
        &[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_MIN", "3"),
            ("SLURM_ARRAY_TASK_MAX", "5"),
        ],
        &[],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(dir.path().join("s.shard-1-of-3.csv").is_file());
}

#[test]
fn resume_of_a_shard_refuses_another_shard_or_list() {
    let dir = temp_dir();
    let d = dir.path();
    let out = d.join("s.csv");
    run_ok(
        &model("nchw_dynamic.onnx"),
        &photos(),
        &out,
        &["--shard", "1/3"],
    );
    // The same shard resumes (nothing left to predict) and keeps its bytes.
    let before = std::fs::read(d.join("s.shard-1-of-3.csv")).unwrap();
    run_ok(
        &model("nchw_dynamic.onnx"),
        &photos(),
        &out,
        &["--shard", "1/3", "--resume"],
    );
    assert_eq!(std::fs::read(d.join("s.shard-1-of-3.csv")).unwrap(), before);
    // Another list: the shard's images are no longer the same slice.
    let more = d.join("more");
    std::fs::create_dir_all(&more).unwrap();
    for entry in std::fs::read_dir(photos()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), more.join(entry.file_name())).unwrap();
    }
    std::fs::copy(photos().join("camera.png"), more.join("aaa.png")).unwrap();
    let resume = |images: &Path, out: &Path| {
        let m = model("nchw_dynamic.onnx");
        evaluate(&[
            m.as_os_str(),
            "--images".as_ref(),
            images.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--shard".as_ref(),
            "1/3".as_ref(),
            "--resume".as_ref(),
        ])
    };
    refused(&resume(&more, &out), &["another image list", "6 images"]);
    // A whole-list run's output resumed as a shard.
    let whole = d.join("w.shard-1-of-3.csv");
    run_ok(&model("nchw_dynamic.onnx"), &photos(), &whole, &[]);
    refused(
        &resume(&photos(), &d.join("w.csv")),
        &["the whole list", "shard 1/3"],
    );
}

/// Requires `merged` to hold, byte for byte, what one `imagenetx evaluate MODEL` process
/// writes over the fixture photos (run into `dir/single.csv`); `what` names the merge.
pub(crate) fn assert_merged_equals_one_process(
    model: &Path,
    merged: &Path,
    dir: &Path,
    what: &str,
) {
    let single = dir.join("single.csv");
    let output = evaluate(&[
        model.as_os_str(),
        "--images".as_ref(),
        photos().as_os_str(),
        "--out".as_ref(),
        single.as_os_str(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        std::fs::read(merged).unwrap_or_else(|e| panic!("{}: {e}", merged.display())),
        std::fs::read(&single).unwrap(),
        "{what} differs from one process's"
    );
}
