//! The Kubernetes manifests of `deploy/kubernetes/` against the binary: the evaluate Job is
//! an Indexed Job whose `completions` is the `--shards` of its command and which takes its
//! shard from `JOB_COMPLETION_INDEX`; each pod's command, run here as written (its shell
//! wrapper included) with the volumes' mount paths mapped to local folders and
//! `JOB_COMPLETION_INDEX` set as Kubernetes sets it, writes its shard; the merge Job's
//! command then writes what one process writes, byte for byte. The same for the pass Jobs
//! (`evaluate-pass-job.yaml`, `merge-pass-job.yaml`: every model of the models volume in one
//! pass per pod, then `merge --out-dir`), model by model. A manifest that disagrees with the
//! command line fails here.
//!
//! Needs ONNX Runtime (`just setup-ort`): the runtime volume is mapped to its cache folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::Value;

use crate::evaluate::photos;
use crate::parity_util::imagenetx;
use imagenetx_test_support::{OrtFlavour, fixture, ort_cache_dir, temp_dir, text, workspace_root};

fn manifest(name: &str) -> Value {
    let path = workspace_root().join("deploy/kubernetes").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn get<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| {
        v.get(*key)
            .unwrap_or_else(|| panic!("no `{}` in the manifest", path.join(".")))
    })
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| {
            s.iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => panic!("not a string: {other:?}"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The one container of a Job: its command + args and environment, with every mount path
/// replaced by the local folder `mounts` maps its volume to.
fn container(
    job: &Value,
    mounts: &BTreeMap<&str, PathBuf>,
) -> (Vec<String>, Vec<(String, String)>) {
    let containers = get(job, &["spec", "template", "spec", "containers"])
        .as_sequence()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container per pod");
    let c = &containers[0];
    let mut map: Vec<(String, String)> = Vec::new();
    for mount in c["volumeMounts"].as_sequence().expect("volumeMounts") {
        let name = mount["name"].as_str().expect("volume name");
        let path = mount["mountPath"].as_str().expect("mountPath");
        let local = mounts
            .get(name)
            .unwrap_or_else(|| panic!("volume {name} is not one the README describes"));
        map.push((path.to_string(), local.display().to_string()));
    }
    let local = |s: &str| {
        map.iter()
            .fold(s.to_string(), |s, (from, to)| s.replace(from.as_str(), to))
    };
    let mut argv = strings(&c["command"]);
    argv.extend(strings(&c["args"]));
    let argv = argv.iter().map(|a| local(a)).collect();
    let env = c["env"]
        .as_sequence()
        .map(|vars| {
            vars.iter()
                .map(|v| {
                    let name = v["name"].as_str().expect("env name").to_string();
                    let value = local(v["value"].as_str().expect("env value"));
                    (name, value)
                })
                .collect()
        })
        .unwrap_or_default();
    (argv, env)
}

/// Runs a container's command with `imagenetx` on PATH (the binary under test).
fn run(argv: &[String], env: &[(String, String)], bin_dir: &Path, extra: &[(&str, String)]) {
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .env("PATH", path)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run the container's command");
    assert!(
        output.status.success(),
        "{argv:?} failed: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// Checks an Indexed Job and its merge Job, then runs every pod's command and the merge's
/// with the models volume holding `models` (fixture name, file name there). Returns the
/// temporary folder and the local outputs volume.
fn run_jobs(evaluate: &str, merge: &str, models: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let evaluate_job = manifest(evaluate);
    let merge_job = manifest(merge);
    assert_eq!(evaluate_job["kind"], "Job");
    assert_eq!(get(&evaluate_job, &["spec", "completionMode"]), "Indexed");
    let completions = get(&evaluate_job, &["spec", "completions"])
        .as_u64()
        .expect("completions") as usize;
    let parallelism = get(&evaluate_job, &["spec", "parallelism"])
        .as_u64()
        .expect("parallelism") as usize;
    assert!((1..=completions).contains(&parallelism));
    assert_eq!(merge_job["kind"], "Job");

    let dir = temp_dir();
    let models_dir = dir.path().join("models");
    let outputs = dir.path().join("outputs");
    let bin = dir.path().join("bin");
    for d in [&models_dir, &outputs, &bin] {
        std::fs::create_dir_all(d).unwrap();
    }
    for (fixture_name, file) in models {
        std::fs::copy(
            fixture(format!("models/{fixture_name}.onnx")),
            models_dir.join(file),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink(imagenetx(), bin.join("imagenetx")).unwrap();
    let runtime = ort_cache_dir(OrtFlavour::Cpu);
    let mounts = BTreeMap::from([
        ("images", photos()),
        ("models", models_dir),
        ("runtime", runtime),
        ("outputs", outputs.clone()),
    ]);

    let (argv, env) = container(&evaluate_job, &mounts);
    // The shard comes from Kubernetes' index, N from --shards = completions.
    let at = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
            .unwrap_or_else(|| panic!("no {flag} VALUE in {argv:?}"))
            .clone()
    };
    assert_eq!(at("--shard"), "auto");
    assert_eq!(at("--shards"), completions.to_string());
    assert!(
        env.iter().all(|(k, _)| k != "JOB_COMPLETION_INDEX"),
        "Kubernetes sets JOB_COMPLETION_INDEX; the manifest must not"
    );
    for index in 0..completions {
        run(
            &argv,
            &env,
            &bin,
            &[
                ("JOB_COMPLETION_INDEX", index.to_string()),
                (
                    "IMAGENETX_CACHE",
                    dir.path().join("no-cache").display().to_string(),
                ),
            ],
        );
    }
    let (merge_argv, merge_env) = container(&merge_job, &mounts);
    run(&merge_argv, &merge_env, &bin, &[]);
    (dir, outputs)
}

#[test]
fn indexed_job_and_merge_job_run_as_the_cli_expects() {
    let (dir, outputs) = run_jobs(
        "evaluate-job.yaml",
        "merge-job.yaml",
        &[("nchw_dynamic", "model.onnx")],
    );
    crate::shards::assert_merged_equals_one_process(
        &fixture("models/nchw_dynamic.onnx"),
        &outputs.join("model.predictions.csv"),
        dir.path(),
        "the merge Job's CSV",
    );
}

#[test]
fn the_pass_jobs_merge_every_model_as_one_process_writes_it() {
    let names = ["nchw_dynamic", "softmax", "input160"];
    let models: Vec<(&str, String)> = names.iter().map(|n| (*n, format!("{n}.onnx"))).collect();
    let models: Vec<(&str, &str)> = models.iter().map(|(n, f)| (*n, f.as_str())).collect();
    let (dir, outputs) = run_jobs("evaluate-pass-job.yaml", "merge-pass-job.yaml", &models);
    let pass = outputs.join("pass");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pass.join("zoo.json")).expect("zoo.json"))
            .expect("JSON");
    assert_eq!(record["merged_shards"], 4, "{record}");
    for name in names {
        crate::shards::assert_merged_equals_one_process(
            &fixture(format!("models/{name}.onnx")),
            &pass.join(format!("{name}.predictions.csv")),
            dir.path(),
            &format!("{name}: the pass merge Job's CSV"),
        );
    }
}

/// Copies the files of `from` (not its folders) into `to`.
fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The image of `scripts/build_image.sh`, unpacked as a container runtime unpacks it
/// (`umoci unpack`), runs both manifests' commands as written: each pod's in the image's root
/// (chroot), with only the manifest's environment, the volumes' contents at their mount paths;
/// the merged CSV must be what one process writes on this machine. Needs root (chroot) and
/// umoci and busybox-static (`scripts/ensure_build_tools.sh image`); skipped, with the reason,
/// only where they are missing, never under `CI`.
#[test]
fn the_container_image_runs_the_manifests_commands() {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| text(&o.stdout).trim() == "0");
    // chroot is in /usr/sbin, which a test's PATH may lack.
    let chroot = ["/usr/sbin/chroot", "/sbin/chroot", "/usr/bin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("chroot");
    let tools = ["umoci", "busybox", "strip"].iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !(root.unwrap_or(false) && tools) {
        assert!(
            !ci,
            "under CI the image test must run: root, umoci and busybox-static needed"
        );
        eprintln!(
            "SKIPPED: the image test needs root, umoci and busybox-static (scripts/ensure_build_tools.sh image)"
        );
        return;
    }
    let dir = temp_dir();
    let archive = dir.path().join("imagenetx.tar");
    let built = Command::new(workspace_root().join("scripts/build_image.sh"))
        .arg(imagenetx())
        .arg(&archive)
        .env(
            "ORT_DYLIB_PATH",
            ort_cache_dir(OrtFlavour::Cpu).join("libonnxruntime.so.1.31.1"),
        )
        .output()
        .expect("run scripts/build_image.sh");
    assert!(built.status.success(), "{}", text(&built.stderr));
    let layout = dir.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    let untar = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-xf")
        .arg(&archive)
        .status()
        .expect("tar");
    assert!(untar.success());
    let bundle = dir.path().join("bundle");
    let unpacked = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle)
        .output()
        .expect("umoci unpack");
    assert!(unpacked.status.success(), "{}", text(&unpacked.stderr));
    let rootfs = bundle.join("rootfs");
    // The image's own configuration: the binary on PATH.
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let env: Vec<String> = config["process"]["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(
        env.iter().any(|e| e == "PATH=/usr/local/bin:/bin"),
        "{env:?}"
    );

    // The volumes, at their mount paths in the image's root.
    copy_files(&photos(), &rootfs.join("imagenetx/images"));
    let models = rootfs.join("imagenetx/models");
    std::fs::create_dir_all(&models).unwrap();
    let model = fixture("models/nchw_dynamic.onnx");
    std::fs::copy(&model, models.join("model.onnx")).unwrap();
    copy_files(
        &ort_cache_dir(OrtFlavour::Cpu),
        &rootfs.join("imagenetx/runtime"),
    );
    std::fs::create_dir_all(rootfs.join("imagenetx/outputs")).unwrap();
    let mounts = BTreeMap::from(
        ["images", "models", "runtime", "outputs"]
            .map(|v| (v, PathBuf::from(format!("/imagenetx/{v}")))),
    );
    let in_image = |argv: &[String], env: &[(String, String)], extra: &[(&str, String)]| {
        let output = Command::new(chroot)
            .arg(&rootfs)
            .args(argv)
            .env_clear()
            .env("PATH", "/usr/local/bin:/bin")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .envs(extra.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("chroot");
        assert!(
            output.status.success(),
            "{argv:?} in the image failed: {}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
    };
    let evaluate_job = manifest("evaluate-job.yaml");
    let completions = get(&evaluate_job, &["spec", "completions"])
        .as_u64()
        .expect("completions") as usize;
    let (argv, env) = container(&evaluate_job, &mounts);
    for index in 0..completions {
        in_image(&argv, &env, &[("JOB_COMPLETION_INDEX", index.to_string())]);
    }
    let (merge_argv, merge_env) = container(&manifest("merge-job.yaml"), &mounts);
    in_image(&merge_argv, &merge_env, &[]);
    crate::shards::assert_merged_equals_one_process(
        &model,
        &rootfs.join("imagenetx/outputs/model.predictions.csv"),
        dir.path(),
        "the image's merged CSV",
    );
}
