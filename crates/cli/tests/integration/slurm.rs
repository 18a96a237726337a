//! Shards on a real Slurm: a one-node cluster started on this machine
//! (`scripts/slurm_local.sh`: Debian's slurmctld, slurmd and munge, installed as root when
//! missing), three shards of the fixture photos as a job array and the merge as a job that
//! depends on it, both submitted by `scripts/slurm_eval.sh` (what `just eval-slurm` runs);
//! the merged CSV must be, byte for byte, what one process writes. Then a pass of three models
//! (a folder of models) in three shards, one task pre-empted mid-run (`scontrol requeue`:
//! SIGTERM, back to the queue, run again): it must resume from its journals, and each model's
//! merged CSV must be what one process's pass writes, byte for byte.
//!
//! Skipped, with the reason printed, only where the machine cannot run the cluster (not
//! root, or no apt-get to install Slurm); with `CI` set it must run. The daemons are stopped
//! at the end, and their logs and the jobs' logs are printed when the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::evaluate::photos;
use crate::parity_util::imagenetx;
use imagenetx_test_support::{fixture, temp_dir, text, workspace_root};

/// The cluster of a folder; stopped when dropped, its logs printed first when the test
/// failed.
struct Cluster {
    dir: PathBuf,
    /// The jobs' log folders.
    jobs_logs: Vec<PathBuf>,
}

impl Cluster {
    fn script(action: &str, dir: &Path) -> Command {
        let mut command = Command::new(workspace_root().join("scripts/slurm_local.sh"));
        command.arg(action).arg(dir);
        command
    }

    fn print_logs(&self) {
        if let Ok(output) = Cluster::script("logs", &self.dir).output() {
            eprintln!("{}", text(&output.stderr));
        }
        for logs in &self.jobs_logs {
            for entry in std::fs::read_dir(logs).into_iter().flatten().flatten() {
                let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
                eprintln!("===== {}\n{log}", entry.path().display());
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        let _ = Cluster::script("stop", &self.dir).status();
    }
}

/// `JobState` of a job, from `scontrol show job -o`.
fn job_state(conf: &Path, job: &str) -> String {
    let output = Command::new("scontrol")
        .env("SLURM_CONF", conf)
        .args(["show", "job", "-o", job])
        .output()
        .expect("run scontrol");
    text(&output.stdout)
        .split_whitespace()
        .find_map(|field| field.strip_prefix("JobState="))
        .unwrap_or("UNKNOWN")
        .to_string()
}

#[test]
fn shards_and_a_preempted_pass_through_sbatch_merge_to_what_one_process_writes() {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let dir = temp_dir();
    let cluster_dir = dir.path().join("cluster");
    let out = dir.path().join("out");
    // Two ports nobody listens on now (both held until read, so they differ), so that the
    // cluster does not meet another one.
    let listeners: Vec<std::net::TcpListener> = (0..2)
        .map(|_| std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a free port"))
        .collect();
    let ports: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().expect("its address").port().to_string())
        .collect();
    drop(listeners);
    let started = Cluster::script("start", &cluster_dir)
        .env("SLURM_LOCAL_CTLD_PORT", &ports[0])
        .env("SLURM_LOCAL_SLURMD_PORT", &ports[1])
        .output()
        .expect("run scripts/slurm_local.sh");
    if started.status.code() == Some(3) && !ci {
        eprintln!(
            "SKIPPED: the Slurm test needs a machine that can run a local cluster: {}",
            text(&started.stderr).trim()
        );
        return;
    }
    let cluster = Cluster {
        dir: cluster_dir.clone(),
        jobs_logs: vec![out.join("logs"), dir.path().join("pass/logs")],
    };
    assert!(
        started.status.success(),
        "the local Slurm cluster did not start: {}",
        text(&started.stderr)
    );
    let conf = cluster_dir.join("slurm.conf");

    let model = fixture("models/nchw_dynamic.onnx");
    let [array_job, merge_job, merged] = submit(
        Command::new(workspace_root().join("scripts/slurm_eval.sh"))
            .arg(&model)
            .arg(photos())
            .arg("3")
            .args(["--time=10", "--", "--ep", "cpu", "--no-cache"])
            .env("SLURM_CONF", &conf)
            .env("OUT", &out)
            .env("IMAGENETX_BIN", imagenetx()),
    );
    let merged = PathBuf::from(merged);

    wait_completed(&conf, &array_job, &merge_job);

    crate::shards::assert_merged_equals_one_process(
        &model,
        &merged,
        dir.path(),
        "the merged CSV of the Slurm shards",
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.with_extension("run.json")).unwrap()).unwrap();
    assert_eq!(record["merged"].as_array().map(Vec::len), Some(3));

    a_preempted_pass_resumes_and_merges(&conf, dir.path());
    drop(cluster);
}

/// Runs `slurm_eval.sh` and returns its `array_job=`, `merge_job=` and `merged=` values.
fn submit(command: &mut Command) -> [String; 3] {
    let submitted = command.output().expect("run scripts/slurm_eval.sh");
    let stdout = text(&submitted.stdout);
    assert!(
        submitted.status.success(),
        "submission failed: {stdout}{}",
        text(&submitted.stderr)
    );
    ["array_job", "merge_job", "merged"].map(|key| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in {stdout}"))
            .to_string()
    })
}

/// Waits for the merge job to end (after the three shards; a failed shard cancels it) and
/// requires it and every shard task to have completed.
fn wait_completed(conf: &Path, array_job: &str, merge_job: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    let state = loop {
        let state = job_state(conf, merge_job);
        if !matches!(
            state.as_str(),
            "PENDING" | "CONFIGURING" | "RUNNING" | "COMPLETING"
        ) {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "the merge job {merge_job} is still {state} after 300 s (array {array_job})"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        state, "COMPLETED",
        "merge job {merge_job} ended {state}; array {array_job}"
    );
    for k in 0..3 {
        let task = format!("{array_job}_{k}");
        assert_eq!(job_state(conf, &task), "COMPLETED", "shard task {task}");
    }
}

fn scontrol(conf: &Path, args: &[&str]) {
    let output = Command::new("scontrol")
        .env("SLURM_CONF", conf)
        .args(args)
        .output()
        .expect("run scontrol");
    assert!(
        output.status.success(),
        "scontrol {args:?}: {}",
        text(&output.stderr)
    );
}

/// A pass of three models (two preprocessing groups) given as a folder, in three shards;
/// task 1 is requeued once it has journaled predictions, as a pre-emption does.
fn a_preempted_pass_resumes_and_merges(conf: &Path, dir: &Path) {
    let names = ["input160", "nchw_dynamic", "softmax"];
    let models = dir.join("models");
    std::fs::create_dir_all(&models).expect("mkdir");
    for name in names {
        let file = format!("{name}.onnx");
        std::fs::copy(fixture(format!("models/{file}")), models.join(&file)).expect("copy");
    }
    let images = crate::robustness::image_folder(dir, 24);
    let out = dir.join("pass");
    let [array_job, merge_job, merged] = submit(
        Command::new(workspace_root().join("scripts/slurm_eval.sh"))
            .arg(&models)
            .arg(&images)
            .arg("3")
            .args([
                "--time=10",
                "--",
                "--ep",
                "cpu",
                "--no-cache",
                "--batch-size",
                "2",
            ])
            .args(["--checkpoint-every", "1"])
            .env("SLURM_CONF", conf)
            .env("OUT", &out)
            .env("IMAGENETX_BIN", imagenetx())
            // Slow batches, so that the task is caught mid-run.
            .env("IMAGENETX_THROTTLE_MS", "300"),
    );
    assert_eq!(PathBuf::from(&merged), out);

    // Pre-empt task 1 once its first model has journaled a prediction: SIGTERM, the task
    // saves its journals and goes back to the queue (Slurm holds it ~2 minutes; released
    // at once here).
    let task = format!("{array_job}_1");
    let journal = out.join("input160.shard-1-of-3.predictions.journal");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first_size = None;
    loop {
        let size = std::fs::metadata(&journal).map(|m| m.len()).ok();
        match (first_size, size) {
            (None, Some(size)) => first_size = Some(size),
            (Some(first), Some(size)) if size > first => break,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "task {task} journaled no prediction in 120 s (state {})",
            job_state(conf, &task)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(job_state(conf, &task), "RUNNING");
    scontrol(conf, &["requeue", &task]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while job_state(conf, &task) != "PENDING" {
        assert!(Instant::now() < deadline, "task {task} was not requeued");
        std::thread::sleep(Duration::from_millis(100));
    }
    scontrol(conf, &["update", &format!("JobId={task}"), "StartTime=now"]);
    wait_completed(conf, &array_job, &merge_job);

    let output = Command::new("scontrol")
        .env("SLURM_CONF", conf)
        .args(["show", "job", "-o", &task])
        .output()
        .expect("run scontrol");
    assert!(
        text(&output.stdout).contains("Restarts=1"),
        "task {task} did not run twice: {}",
        text(&output.stdout)
    );
    // The second run of the task continued from the journal of the first.
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("input160.shard-1-of-3.predictions.run.json")).expect("record"),
    )
    .expect("JSON");
    assert_eq!(record["resume"]["source"], "journal", "{record}");
    assert!(
        record["resume"]["kept"].as_u64() > Some(0),
        "the requeued task kept nothing: {record}"
    );
    let log = std::fs::read_to_string(out.join("logs").join(format!("{array_job}_1.log")))
        .expect("the task's log");
    assert!(log.contains("interrupted by SIGTERM"), "{log}");

    // One process's pass over the same images and models, to compare with.
    let whole = dir.join("whole");
    let run = Command::new(imagenetx())
        .arg("evaluate")
        .arg(&models)
        .arg("--images")
        .arg(&images)
        .args(["--ep", "cpu", "--no-cache", "--quiet", "--out-dir"])
        .arg(&whole)
        .env_remove("IMAGENETX_THROTTLE_MS")
        .output()
        .expect("run imagenetx");
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    for name in names {
        let csv = format!("{name}.predictions.csv");
        assert!(
            std::fs::read(out.join(&csv)).expect("merged CSV")
                == std::fs::read(whole.join(&csv)).expect("one-process CSV"),
            "{name}: the merged pass differs from one process's"
        );
    }
    let pass: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("zoo.json")).expect("zoo.json"))
            .expect("JSON");
    assert_eq!(pass["merged_shards"], 3, "{pass}");
}
