//! Helpers shared by the integration tests of the imagenetx workspace.
//!
//! Where things are: the workspace root ([`workspace_root`]), its committed fixtures
//! ([`fixture`]), the set-up cache ([`cache_dir`], `IMAGENETX_CACHE`) with the ONNX Runtime
//! copies ([`ort_cache_dir`]) and the reference Python venv ([`venv_python`],
//! `IMAGENETX_VENV`). How to run things: a reference script of `python/` with the venv's
//! interpreter ([`python_script`], [`python`]), a command that must succeed ([`run_ok`],
//! [`check_output`]), the binary under test ([`binary`], `IMAGENETX_BIN`). And a temp folder
//! ([`temp_dir`]).
//!
//! A helper that needs something set up panics with the `just` recipe that sets it up: a
//! missing reference fails the test, it never skips it.
//!
//! This crate is a path-only dev-dependency (no version), so `cargo package` drops it from
//! the published manifests; the tests that use it reach outside their crate and are not
//! packaged either.
//!
//! ```no_run
//! use imagenetx_test_support::{fixture, python_script, run_ok};
//!
//! let model = fixture("models/nchw_dynamic.onnx");
//! let out = run_ok(python_script("onnx_reference.py").arg("--model").arg(&model));
//! assert!(!out.stdout.is_empty());
//! ```

#![deny(missing_docs)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root: `IMAGENETX_WORKSPACE` when set and not empty (a test binary copied to
/// another machine, e.g. a GPU machine without cargo, beside a copy of the checkout), else two
/// levels above this crate's manifest; canonical when it can be.
pub fn workspace_root() -> PathBuf {
    let root = std::env::var_os("IMAGENETX_WORKSPACE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(".."));
    root.canonicalize().unwrap_or(root)
}

/// `fixtures/<relative>` of the workspace; panics when it does not exist.
pub fn fixture(relative: impl AsRef<Path>) -> PathBuf {
    let path = workspace_root().join("fixtures").join(relative);
    assert!(
        path.exists(),
        "fixture {} is missing (the models are written by fixtures/models/generate.py)",
        path.display()
    );
    path
}

/// The set-up cache: `IMAGENETX_CACHE` when set and not empty (as `just` sets it), else the
/// workspace's `.cache`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("IMAGENETX_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache"))
}

/// Which ONNX Runtime build of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrtFlavour {
    /// The CPU build (`just setup-ort`).
    Cpu,
    /// The CUDA build (`just setup-gpu`).
    Gpu,
}

/// The folder of the cache that holds an ONNX Runtime build's library:
/// `<cache>/onnxruntime` or `<cache>/onnxruntime-gpu`. Not checked: the caller names the
/// library file and says which recipe fetches it.
pub fn ort_cache_dir(flavour: OrtFlavour) -> PathBuf {
    cache_dir().join(match flavour {
        OrtFlavour::Cpu => "onnxruntime",
        OrtFlavour::Gpu => "onnxruntime-gpu",
    })
}

/// The reference venv: `IMAGENETX_VENV` when set, else `<cache>/venv` ([`cache_dir`]).
pub fn venv_dir() -> PathBuf {
    std::env::var_os("IMAGENETX_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("venv"))
}

/// The reference venv's Python interpreter ([`venv_dir`]); panics with the set-up command
/// when it is missing.
pub fn venv_python() -> PathBuf {
    let python = venv_dir().join("bin").join("python");
    assert!(
        python.is_file(),
        "the reference venv is missing: no {}; run `just venv` (or set IMAGENETX_VENV)",
        python.display()
    );
    python
}

/// `script` run by the venv's interpreter, with `PYTHONHASHSEED=0` so that its output does
/// not depend on the run; add the arguments and run it.
pub fn python(script: impl AsRef<Path>) -> Command {
    let script = script.as_ref();
    assert!(
        script.is_file(),
        "the reference script {} is missing",
        script.display()
    );
    let mut command = Command::new(venv_python());
    command.arg(script).env("PYTHONHASHSEED", "0");
    command
}

/// The reference script `python/<name>` of the workspace, as [`python`] runs it.
pub fn python_script(name: &str) -> Command {
    python(workspace_root().join("python").join(name))
}

/// A finished command's output when it exited 0, else an error that says `what` failed, how,
/// and holds its stderr.
pub fn check_output(what: &str, output: std::io::Result<Output>) -> Result<Output, String> {
    let output = output.map_err(|e| format!("{what}: could not start: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{what}: {}\n--- stderr ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Runs `command` to the end; panics with the command line and its stderr unless it exits 0.
pub fn run_ok(command: &mut Command) -> Output {
    let what = format!("{command:?}");
    check_output(&what, command.output()).unwrap_or_else(|e| panic!("{e}"))
}

/// The binary under test: `IMAGENETX_BIN` when set (an installed binary, or another build),
/// else `built`, the path cargo gives an integration test as `env!("CARGO_BIN_EXE_<name>")`.
pub fn binary(built: impl AsRef<OsStr>) -> PathBuf {
    std::env::var_os("IMAGENETX_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(built.as_ref()))
}

/// A new temp folder, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temp folder")
}

/// Bytes (a child's stdout or stderr) as text, invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_is_the_workspace() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml"))
            .expect("the workspace manifest");
        assert!(manifest.contains("[workspace]"), "{manifest}");
        assert!(fixture("models").is_dir());
    }

    #[test]
    #[should_panic(expected = "fixture")]
    fn a_missing_fixture_panics() {
        fixture("no-such-fixture");
    }

    #[test]
    fn check_output_keeps_the_failure_and_its_stderr() {
        let failed = Command::new("sh")
            .args(["-c", "echo broken >&2; exit 3"])
            .output();
        let err = check_output("sh", failed).expect_err("exit 3 is a failure");
        assert!(err.starts_with("sh: "), "{err}");
        assert!(err.contains('3') && err.contains("broken"), "{err}");
        let fine = check_output("sh", Command::new("sh").args(["-c", "echo ok"]).output())
            .expect("exit 0");
        assert_eq!(text(&fine.stdout), "ok\n");
        let missing = check_output("x", Command::new("/nonexistent/program").output());
        assert!(
            missing
                .expect_err("not started")
                .contains("could not start")
        );
    }

    #[test]
    fn ort_cache_dirs_sit_in_the_cache() {
        assert_eq!(
            ort_cache_dir(OrtFlavour::Cpu),
            cache_dir().join("onnxruntime")
        );
        assert_eq!(
            ort_cache_dir(OrtFlavour::Gpu),
            cache_dir().join("onnxruntime-gpu")
        );
    }
}
