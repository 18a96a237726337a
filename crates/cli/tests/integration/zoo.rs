//! Many models in one pass (`imagenetx evaluate A.onnx B.onnx … --out-dir DIR`) on the real
//! binary: each model's predictions CSV byte-identical to its own single-model run, the groups
//! of models that share a decode in `zoo.json`, broken models named while the others finish
//! (exit 1; exit 2 when none could run), two models of one name refused, folders of models and
//! `--models-from`, and a pass killed with SIGKILL then resumed, byte-identical again.
//!
//! Needs ONNX Runtime (`just setup-ort`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::parity_util::imagenetx;
use crate::robustness::image_folder;
use imagenetx_test_support::{fixture, temp_dir, text, workspace_root as root};

/// Good fixture models: three with the default NCHW preprocessing, one NHWC, one 160x160.
const GOOD: &[&str] = &["nchw_dynamic", "nhwc", "softmax", "two_outputs", "input160"];

fn model(name: &str) -> PathBuf {
    fixture(format!("models/{name}.onnx"))
}

fn evaluate(images: &Path) -> Command {
    let mut cmd = Command::new(imagenetx());
    cmd.arg("evaluate")
        .arg("--images")
        .arg(images)
        .args(["--ep", "cpu", "--quiet", "--batch-size", "2"])
        .env_remove("IMAGENETX_PAUSE_AT")
        .env_remove("IMAGENETX_THROTTLE_MS")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("run imagenetx")
}

fn code(output: &Output) -> Option<i32> {
    output.status.code()
}

/// The predictions CSV of a single-model run of `name` over `images`.
fn single(dir: &Path, images: &Path, name: &str) -> Vec<u8> {
    let out = dir.join("single").join(format!("{name}.predictions.csv"));
    let run = output(evaluate(images).arg(model(name)).arg("--out").arg(&out));
    assert_eq!(code(&run), Some(0), "stderr:\n{}", text(&run.stderr));
    std::fs::read(&out).expect("single CSV")
}

fn csv(out_dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(out_dir.join(format!("{name}.predictions.csv")))
        .unwrap_or_else(|e| panic!("{name}: no predictions CSV: {e}"))
}

fn pass_record(out_dir: &Path) -> serde_json::Value {
    let path = out_dir.join("zoo.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("zoo.json")).expect("JSON")
}

/// `name → group` of the models of the pass record, and their states.
fn groups(record: &serde_json::Value) -> Vec<(String, Option<u64>, String)> {
    record["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().expect("name").to_string(),
                m["group"].as_u64(),
                m["state"].as_str().expect("state").to_string(),
            )
        })
        .collect()
}

#[test]
fn every_csv_of_a_pass_is_byte_identical_to_its_single_model_run() {
    let dir = temp_dir();
    let images = image_folder(dir.path(), 7);
    let out_dir = dir.path().join("zoo");
    let mut cmd = evaluate(&images);
    for name in GOOD {
        cmd.arg(model(name));
    }
    let run = output(cmd.arg("--out-dir").arg(&out_dir));
    let stderr = text(&run.stderr);
    assert_eq!(code(&run), Some(0), "stderr:\n{stderr}");
    for name in GOOD {
        assert!(
            csv(&out_dir, name) == single(dir.path(), &images, name),
            "{name}: the CSV of the pass differs from the single-model run"
        );
        let record = out_dir.join(format!("{name}.predictions.run.json"));
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(record).expect("run record"))
                .expect("JSON");
        assert_eq!(record["state"], "complete", "{name}");
    }
    // The three NCHW 224 models share a decode; NHWC and 160x160 are groups of their own.
    let record = pass_record(&out_dir);
    let got = groups(&record);
    let group = |name: &str| got.iter().find(|g| g.0 == name).expect(name).1;
    assert_eq!(group("nchw_dynamic"), Some(0));
    assert_eq!(group("softmax"), Some(0));
    assert_eq!(group("two_outputs"), Some(0));
    assert_eq!(group("nhwc"), Some(1));
    assert_eq!(group("input160"), Some(2));
    assert_eq!(record["groups"].as_array().expect("groups").len(), 3);
    assert_eq!(record["groups"][2]["preprocessing"]["crop_height"], 160);
    assert!(
        stderr.contains(
            "group 0 (NCHW input 224x224, images decoded once): nchw_dynamic, softmax, two_outputs"
        ),
        "{stderr}"
    );
}

#[test]
fn broken_models_are_named_and_the_others_finish() {
    let dir = temp_dir();
    let images = image_folder(dir.path(), 3);
    let out_dir = dir.path().join("zoo");
    let run = output(
        evaluate(&images)
            .arg(model("not_onnx"))
            .arg(model("nchw_dynamic"))
            .arg(model("no_class_output"))
            .arg(model("input160"))
            .arg("--out-dir")
            .arg(&out_dir),
    );
    let stderr = text(&run.stderr);
    assert_eq!(code(&run), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains("not_onnx.onnx failed:") && stderr.contains("expected an ONNX model"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no_class_output.onnx failed:") && stderr.contains("no class output"),
        "{stderr}"
    );
    assert!(stderr.contains("2 of 4 models failed"), "{stderr}");
    for name in ["nchw_dynamic", "input160"] {
        assert!(
            csv(&out_dir, name) == single(dir.path(), &images, name),
            "{name}"
        );
    }
    assert!(!out_dir.join("not_onnx.predictions.csv").exists());
    let record = pass_record(&out_dir);
    let got = groups(&record);
    assert_eq!(
        got,
        vec![
            ("not_onnx".into(), None, "failed".into()),
            ("nchw_dynamic".into(), Some(0), "complete".into()),
            ("no_class_output".into(), None, "failed".into()),
            ("input160".into(), Some(1), "complete".into()),
        ]
    );
    assert!(
        record["models"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not_onnx.onnx")),
        "{record}"
    );

    // Nothing that can run: exit 2, every model named.
    let run = output(
        evaluate(&images)
            .arg(model("not_onnx"))
            .arg(model("no_class_output"))
            .arg("--out-dir")
            .arg(dir.path().join("none")),
    );
    let stderr = text(&run.stderr);
    assert_eq!(code(&run), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("no model could run (2 given"), "{stderr}");
}

#[test]
fn models_of_one_name_are_refused_and_folders_and_lists_are_read() {
    let dir = temp_dir();
    let images = image_folder(dir.path(), 2);
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::copy(model("softmax"), other.join("softmax.onnx")).expect("copy");
    let run = output(
        evaluate(&images)
            .arg(model("softmax"))
            .arg(other.join("softmax.onnx"))
            .arg("--out-dir")
            .arg(dir.path().join("dup")),
    );
    let stderr = text(&run.stderr);
    assert_eq!(code(&run), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("have the same name `softmax`") && stderr.contains("other/softmax.onnx"),
        "{stderr}"
    );
    assert!(!dir.path().join("dup").join("zoo.json").exists());

    // A folder of models, and a list file (relative to its folder, with a comment).
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).expect("mkdir");
    for name in ["nchw_dynamic", "nhwc"] {
        std::fs::copy(model(name), models.join(format!("{name}.onnx"))).expect("copy");
    }
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "# more models\nother/softmax.onnx\n\n").expect("list");
    let out_dir = dir.path().join("zoo");
    let run = output(
        evaluate(&images)
            .arg(&models)
            .arg("--models-from")
            .arg(&list)
            .arg("--out-dir")
            .arg(&out_dir),
    );
    assert_eq!(code(&run), Some(0), "stderr:\n{}", text(&run.stderr));
    let names: Vec<String> = groups(&pass_record(&out_dir))
        .into_iter()
        .map(|g| g.0)
        .collect();
    assert_eq!(names, ["nchw_dynamic", "nhwc", "softmax"]);

    // Several models without --out-dir: refused, saying what to give.
    let run = output(evaluate(&images).arg(model("softmax")).arg(model("nhwc")));
    assert_eq!(code(&run), Some(2));
    assert!(text(&run.stderr).contains("give --out-dir DIR"));
}

#[test]
fn a_pass_killed_mid_run_resumes_to_byte_identical_csvs() {
    let dir = temp_dir();
    let images = image_folder(dir.path(), 24);
    let names = ["nchw_dynamic", "softmax", "input160"];
    let out_dir = dir.path().join("zoo");
    let pass = |extra: &[&str]| {
        let mut cmd = evaluate(&images);
        for name in names {
            cmd.arg(model(name));
        }
        cmd.arg("--out-dir")
            .arg(&out_dir)
            .args(["--checkpoint-every", "2"])
            .args(extra);
        cmd
    };
    // Slowed down, killed once some rows of the first group are durable.
    let mut child = pass(&[])
        .env("IMAGENETX_THROTTLE_MS", "40")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn imagenetx");
    let stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let journal = out_dir.join("softmax.predictions.journal");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read(&journal).map_or(0, |j| j.iter().filter(|&&b| b == b'\n').count()) < 6 {
        assert!(Instant::now() < deadline, "no rows journaled in 60 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    let _ = reader.join();
    assert!(
        !out_dir.join("input160.predictions.csv").exists(),
        "the pass finished before it was killed"
    );
    let run = output(&mut pass(&["--resume"]));
    let stderr = text(&run.stderr);
    assert_eq!(code(&run), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("softmax: --resume:"), "{stderr}");
    for name in names {
        assert!(
            csv(&out_dir, name) == single(dir.path(), &images, name),
            "{name}: the resumed CSV differs from the single-model run"
        );
    }
}

#[test]
fn one_report_covers_every_model_that_completed() {
    let dir = temp_dir();
    let photos = root().join("fixtures/photos");
    let out_dir = dir.path().join("zoo");
    let html = dir.path().join("report.html");
    let run = output(
        evaluate(&photos)
            .arg(model("nchw_dynamic"))
            .arg(model("input160"))
            .arg(model("not_onnx"))
            .arg("--image-annotations")
            .arg(photos.join("annotations.jsonl"))
            .arg("--out-dir")
            .arg(&out_dir)
            .arg("--report")
            .arg(&html),
    );
    let stderr = text(&run.stderr);
    assert_eq!(code(&run), Some(1), "stderr:\n{stderr}");
    let report = std::fs::read_to_string(&html).expect("the report");
    for name in ["nchw_dynamic", "input160"] {
        assert!(report.contains(name), "{name} is not in the report");
    }
    assert!(
        !report.contains("not_onnx"),
        "a failed model is in the report"
    );
    // The table on stdout: every model, its group and state.
    let stdout = text(&run.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("input160") && l.contains("complete")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("not_onnx") && l.contains("failed")),
        "{stdout}"
    );
}

fn merge_pass(out_dir: &Path) -> Output {
    output(
        Command::new(imagenetx())
            .args(["merge", "--out-dir"])
            .arg(out_dir)
            .stdin(Stdio::null()),
    )
}

#[test]
fn a_sharded_pass_merges_into_the_one_process_pass_byte_for_byte() {
    let dir = temp_dir();
    let images = root().join("fixtures/photos");
    // Two groups (NCHW 224, 160x160) and a model that cannot load.
    let names = ["nchw_dynamic", "softmax", "input160"];
    let with_models = |cmd: &mut Command| {
        for name in names {
            cmd.arg(model(name));
        }
        cmd.arg(model("not_onnx"));
    };
    let whole = dir.path().join("whole");
    let mut cmd = evaluate(&images);
    with_models(&mut cmd);
    let run = output(cmd.arg("--out-dir").arg(&whole));
    assert_eq!(code(&run), Some(1), "stderr:\n{}", text(&run.stderr));

    let shards = dir.path().join("shards");
    for k in 0..3 {
        let mut cmd = evaluate(&images);
        with_models(&mut cmd);
        // One shard takes its index from Slurm's array variables, as a job array task does.
        if k == 1 {
            cmd.args(["--shard", "auto"])
                .env("SLURM_ARRAY_TASK_ID", "1")
                .env("SLURM_ARRAY_TASK_COUNT", "3");
        } else {
            cmd.arg("--shard").arg(format!("{k}/3"));
        }
        let run = output(cmd.arg("--out-dir").arg(&shards));
        assert_eq!(code(&run), Some(1), "shard {k}:\n{}", text(&run.stderr));
        let record = shards.join(format!("zoo.shard-{k}-of-3.json"));
        assert!(record.is_file(), "shard {k}: no {}", record.display());
        for name in names {
            let csv = shards.join(format!("{name}.shard-{k}-of-3.predictions.csv"));
            assert!(csv.is_file(), "shard {k}: no {}", csv.display());
        }
        // Before every shard ran, the pass does not merge, and says which shard is missing.
        if k == 1 {
            let early = merge_pass(&shards);
            assert_eq!(code(&early), Some(2), "{}", text(&early.stderr));
            assert!(
                text(&early.stderr).contains("zoo.shard-2-of-3.json"),
                "{}",
                text(&early.stderr)
            );
            assert!(!shards.join("zoo.json").exists());
        }
    }
    let merged = merge_pass(&shards);
    let stderr = text(&merged.stderr);
    // One model never loaded: named, and the exit says something is missing.
    assert_eq!(code(&merged), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains("not_onnx: not merged (failed): shard 0 failed:"),
        "{stderr}"
    );
    for name in names {
        assert!(
            csv(&shards, name) == csv(&whole, name),
            "{name}: the merged shards differ from the one-process pass"
        );
        let record: serde_json::Value = serde_json::from_slice(
            &std::fs::read(shards.join(format!("{name}.predictions.run.json"))).expect("record"),
        )
        .expect("JSON");
        assert_eq!(
            record["merged"].as_array().expect("merged").len(),
            3,
            "{name}"
        );
    }
    let record = pass_record(&shards);
    assert_eq!(record["merged_shards"], 3);
    assert_eq!(record["image_list"]["images"], 5);
    assert_eq!(record["image_list"], pass_record(&whole)["image_list"]);
    assert_eq!(
        groups(&record),
        groups(&pass_record(&whole)),
        "the merged pass record's models, groups and states"
    );
    for m in record["models"].as_array().expect("models") {
        if m["state"] == "complete" {
            assert_eq!(m["predicted"], 5, "{m}");
        }
    }
    // The merged CSVs are runs as any: `analyze` and `report` read them.
    let report = dir.path().join("report.html");
    let run = output(
        Command::new(imagenetx())
            .args(["merge", "--out-dir"])
            .arg(&shards)
            .arg("--report")
            .arg(&report)
            .arg("--images")
            .arg(&images)
            .arg("--image-annotations")
            .arg(fixture("photos/annotations.jsonl"))
            .stdin(Stdio::null()),
    );
    assert_eq!(code(&run), Some(1), "stderr:\n{}", text(&run.stderr));
    let html = std::fs::read_to_string(&report).expect("report");
    for name in names {
        assert!(html.contains(name), "the report lacks {name}");
    }

    // Shards of another cut in the same folder are refused, naming both counts.
    let mut cmd = evaluate(&images);
    with_models(&mut cmd);
    let run = output(cmd.args(["--shard", "0/2", "--out-dir"]).arg(&shards));
    assert_eq!(code(&run), Some(1), "{}", text(&run.stderr));
    let mixed = merge_pass(&shards);
    assert_eq!(code(&mixed), Some(2));
    assert!(
        text(&mixed.stderr).contains("holds shards of 2 and of 3"),
        "{}",
        text(&mixed.stderr)
    );
}

#[test]
fn models_over_the_memory_budget_run_in_several_passes_with_the_same_csvs() {
    let dir = temp_dir();
    let images = image_folder(dir.path(), 5);
    let out_dir = dir.path().join("zoo");
    let names = ["nchw_dynamic", "softmax", "two_outputs", "input160"];
    let mut cmd = evaluate(&images);
    for name in names {
        cmd.arg(model(name));
    }
    // A budget below any model: every model is opened alone, for a decode pass of its own.
    let run = output(
        cmd.args(["--model-memory", "0.000001", "--out-dir"])
            .arg(&out_dir),
    );
    let stderr = text(&run.stderr);
    assert_eq!(code(&run), Some(0), "stderr:\n{stderr}");
    assert!(
        stderr.contains("images decoded in 3 passes: together the models pass --model-memory"),
        "{stderr}"
    );
    for name in names {
        assert!(
            csv(&out_dir, name) == single(dir.path(), &images, name),
            "{name}: the CSV of the pass differs from the single-model run"
        );
    }
    let bad = output(
        evaluate(&images)
            .arg(model("softmax"))
            .args(["--model-memory", "0", "--out-dir"])
            .arg(dir.path().join("bad")),
    );
    assert_eq!(code(&bad), Some(2));
    assert!(
        text(&bad.stderr).contains("--model-memory 0: expected a positive number of GiB"),
        "{}",
        text(&bad.stderr)
    );
}
