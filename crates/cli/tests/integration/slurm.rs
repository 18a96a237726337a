//! Shards on a real Slurm: a one-node cluster started on this machine
//! (`scripts/slurm_local.sh`: Debian's slurmctld, slurmd and munge, installed as root when
//! missing), three shards of the fixture photos as a job array and the merge as a job that
//! depends on it, both submitted by `scripts/slurm_eval.sh` (what `just eval-slurm` runs);
//! the merged CSV must be, byte for byte, what one process writes.
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
    jobs_logs: PathBuf,
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
        if let Ok(entries) = std::fs::read_dir(&self.jobs_logs) {
            for entry in entries.flatten() {
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
fn three_shards_through_sbatch_merge_to_what_one_process_writes() {
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
        jobs_logs: out.join("logs"),
    };
    assert!(
        started.status.success(),
        "the local Slurm cluster did not start: {}",
        text(&started.stderr)
    );
    let conf = cluster_dir.join("slurm.conf");

    let model = fixture("models/nchw_dynamic.onnx");
    let submitted = Command::new(workspace_root().join("scripts/slurm_eval.sh"))
        .arg(&model)
        .arg(photos())
        .arg("3")
        .args(["--time=10", "--", "--ep", "cpu", "--no-cache"])
        .env("SLURM_CONF", &conf)
        .env("OUT", &out)
        .env("IMAGENETX_BIN", imagenetx())
        .output()
        .expect("run scripts/slurm_eval.sh");
    let stdout = text(&submitted.stdout);
    assert!(
        submitted.status.success(),
        "submission failed: {stdout}{}",
        text(&submitted.stderr)
    );
    let value = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in {stdout}"))
            .to_string()
    };
    let (array_job, merge_job, merged) = (
        value("array_job"),
        value("merge_job"),
        PathBuf::from(value("merged")),
    );

    // The merge job ends after the three shards; a failed shard cancels it.
    let deadline = Instant::now() + Duration::from_secs(300);
    let state = loop {
        let state = job_state(&conf, &merge_job);
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
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        state, "COMPLETED",
        "merge job {merge_job} ended {state}; array {array_job}"
    );
    for k in 0..3 {
        let task = format!("{array_job}_{k}");
        assert_eq!(job_state(&conf, &task), "COMPLETED", "shard task {task}");
    }

    crate::shards::assert_merged_equals_one_process(
        &model,
        &merged,
        dir.path(),
        "the merged CSV of the Slurm shards",
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.with_extension("run.json")).unwrap()).unwrap();
    assert_eq!(record["merged"].as_array().map(Vec::len), Some(3));
    drop(cluster);
}
