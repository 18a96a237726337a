//! Finding the ONNX Runtime shared library and loading it once per process.
//!
//! ONNX Runtime is loaded at run time (`ort`'s `load-dynamic` mode). [`locate_runtime`] looks,
//! in this order, at:
//!
//! 1. an explicit path (`--ort-lib PATH`);
//! 2. the `ORT_DYLIB_PATH` environment variable;
//! 3. the copy `just setup-ort` caches: `$IMAGENETX_CACHE/onnxruntime/libonnxruntime.so.1.31.1`,
//!    then the `.cache` folder of the checkout the binary runs from (found from the
//!    executable's location at run time), then the user's cache folder
//!    (`$XDG_CACHE_HOME/imagenetx`, else `~/.cache/imagenetx`) (when a GPU provider is wanted,
//!    the `onnxruntime-gpu/` copy of `just setup-gpu` is tried first in each);
//! 4. an installed Python `onnxruntime` package (`python3 -c "import onnxruntime"`);
//! 5. `libonnxruntime.so` on the system loader path.
//!
//! An explicit path or `ORT_DYLIB_PATH` that does not exist is an error, not a reason to keep
//! looking: the user asked for that file. [`Runtime::init`] then loads the library and creates
//! the process-wide ONNX Runtime environment.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The ONNX Runtime release `just setup-ort` fetches and this crate is tested against.
pub const ORT_VERSION: &str = "1.31.1";

/// File name of the cached library.
pub const ORT_LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";

/// Where a runtime library was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LibrarySource {
    /// `--ort-lib PATH`.
    Explicit,
    /// The `ORT_DYLIB_PATH` environment variable.
    EnvVar,
    /// The cache filled by `just setup-ort` / `just setup-gpu`.
    Cache,
    /// The `onnxruntime` package of a Python installation.
    PythonPackage,
    /// The system loader path.
    System,
    /// Linked at build time (a build without the `load-dynamic` feature).
    Linked,
}

impl fmt::Display for LibrarySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LibrarySource::Explicit => "--ort-lib",
            LibrarySource::EnvVar => "ORT_DYLIB_PATH",
            LibrarySource::Cache => "cache",
            LibrarySource::PythonPackage => "python package",
            LibrarySource::System => "system loader path",
            LibrarySource::Linked => "linked at build time",
        })
    }
}

/// A runtime library chosen by [`locate_runtime`], with where and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeLibrary {
    /// Path of the shared library (a bare file name for [`LibrarySource::System`]).
    pub path: PathBuf,
    /// Which rule found it.
    pub source: LibrarySource,
    /// A sentence saying why this library was taken.
    pub reason: String,
}

/// Inputs of runtime discovery. [`Discovery::from_env`] reads them from the process; tests
/// build them by hand.
///
/// [`Discovery::locate`] takes the first of: the explicit path (`--ort-lib`), `ORT_DYLIB_PATH`,
/// `onnxruntime[-gpu]/libonnxruntime.so.1.31.1` under each cache root, the `onnxruntime`
/// package of [`python`](Self::python), `libonnxruntime.so` on the loader path. An explicit
/// path or `ORT_DYLIB_PATH` naming a missing file is an error rather than a reason to go on.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// `--ort-lib PATH`.
    pub explicit: Option<PathBuf>,
    /// Value of `ORT_DYLIB_PATH`.
    pub ort_dylib_path: Option<OsString>,
    /// Cache roots to look in, in order (each holds `onnxruntime/` and maybe `onnxruntime-gpu/`).
    pub cache_roots: Vec<PathBuf>,
    /// Look in `onnxruntime-gpu/` before `onnxruntime/` inside each cache root.
    pub prefer_gpu: bool,
    /// Python interpreter to ask for its `onnxruntime` package; `None` skips that step.
    pub python: Option<OsString>,
    /// Try `libonnxruntime.so` on the system loader path.
    pub system: bool,
}

impl Discovery {
    /// Discovery from this process: `ORT_DYLIB_PATH`, `$IMAGENETX_CACHE`, the checkout's
    /// `.cache` (found from the executable's location), the user's cache folder
    /// (`$XDG_CACHE_HOME/imagenetx`, else `~/.cache/imagenetx`),
    /// `$IMAGENETX_PYTHON` or `python3`, and the system loader.
    pub fn from_env(explicit: Option<&Path>, prefer_gpu: bool) -> Self {
        let mut cache_roots = Vec::new();
        if let Some(cache) = std::env::var_os("IMAGENETX_CACHE").filter(|v| !v.is_empty()) {
            cache_roots.push(PathBuf::from(cache));
        }
        if let Ok(exe) = std::env::current_exe() {
            // A binary under <checkout>/target/<profile>/ runs from a checkout.
            for dir in exe.ancestors().skip(1) {
                if dir.join("Cargo.toml").is_file() && dir.join("crates/infer").is_dir() {
                    cache_roots.push(dir.join(".cache"));
                    break;
                }
            }
        }
        // The user's cache folder. No path of the build machine is compiled in: a checkout is
        // found from the executable (above) or through $IMAGENETX_CACHE, which the `just`
        // recipes set.
        if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            cache_roots.push(PathBuf::from(xdg).join("imagenetx"));
        } else if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            cache_roots.push(PathBuf::from(home).join(".cache/imagenetx"));
        }
        let mut unique = Vec::new();
        for root in cache_roots {
            let key = root.canonicalize().unwrap_or_else(|_| root.clone());
            if !unique.iter().any(|(k, _): &(PathBuf, PathBuf)| *k == key) {
                unique.push((key, root));
            }
        }
        Discovery {
            explicit: explicit.map(Path::to_path_buf),
            ort_dylib_path: std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()),
            cache_roots: unique
                .into_iter()
                .map(|(key, root)| if key.exists() { key } else { root })
                .collect(),
            prefer_gpu,
            python: Some(std::env::var_os("IMAGENETX_PYTHON").unwrap_or_else(|| "python3".into())),
            system: true,
        }
    }

    /// Runs discovery: the first rule that finds a library wins.
    pub fn locate(&self) -> Result<RuntimeLibrary> {
        let mut searched = Vec::new();
        if let Some(path) = &self.explicit {
            return explicit_file(path, LibrarySource::Explicit, "given with --ort-lib");
        }
        searched.push("--ort-lib (not given)".to_owned());
        if let Some(path) = &self.ort_dylib_path {
            return explicit_file(
                Path::new(path),
                LibrarySource::EnvVar,
                "named by ORT_DYLIB_PATH",
            );
        }
        searched.push("ORT_DYLIB_PATH (not set)".to_owned());
        let folders: &[&str] = if self.prefer_gpu {
            &["onnxruntime-gpu", "onnxruntime"]
        } else {
            &["onnxruntime"]
        };
        for root in &self.cache_roots {
            for folder in folders {
                let path = root.join(folder).join(ORT_LIBRARY_FILE);
                if path.is_file() {
                    return Ok(RuntimeLibrary {
                        reason: format!(
                            "cached copy {} (from `just setup-{}`)",
                            path.display(),
                            if *folder == "onnxruntime" {
                                "ort"
                            } else {
                                "gpu"
                            }
                        ),
                        path,
                        source: LibrarySource::Cache,
                    });
                }
                searched.push(format!("{} (absent)", path.display()));
            }
        }
        if let Some(python) = &self.python {
            match python_package_library(python) {
                Ok(path) => {
                    return Ok(RuntimeLibrary {
                        reason: format!(
                            "the onnxruntime package of `{}`: {}",
                            python.to_string_lossy(),
                            path.display()
                        ),
                        path,
                        source: LibrarySource::PythonPackage,
                    });
                }
                Err(why) => searched.push(format!(
                    "python package via `{}` ({why})",
                    python.to_string_lossy()
                )),
            }
        }
        if self.system {
            let name = "libonnxruntime.so";
            // SAFETY: loading ONNX Runtime runs its static initialisers, which have no
            // preconditions; the handle is dropped at once and reopened by `ort`.
            match unsafe { libloading::Library::new(name) } {
                Ok(_) => {
                    return Ok(RuntimeLibrary {
                        path: PathBuf::from(name),
                        source: LibrarySource::System,
                        reason: format!("`{name}` on the system loader path"),
                    });
                }
                Err(_) => searched.push(format!("{name} on the loader path (not found)")),
            }
        }
        Err(Error::RuntimeNotFound {
            searched: searched.join("; "),
        })
    }
}

fn explicit_file(path: &Path, source: LibrarySource, how: &str) -> Result<RuntimeLibrary> {
    if path.is_file() {
        Ok(RuntimeLibrary {
            path: path.to_path_buf(),
            source,
            reason: format!("{} {how}", path.display()),
        })
    } else {
        Err(Error::RuntimeMissing {
            path: path.to_path_buf(),
            origin: source.to_string(),
        })
    }
}

/// Asks `python` where its `onnxruntime` package is and returns its `capi/libonnxruntime.so*`.
fn python_package_library(python: &std::ffi::OsStr) -> std::result::Result<PathBuf, String> {
    let output = Command::new(python)
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|err| format!("cannot run it: {err}"))?;
    if !output.status.success() {
        return Err("no onnxruntime package".to_owned());
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("capi");
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|err| format!("{}: {err}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    // Prefer the fully versioned name (`libonnxruntime.so.1.31.1`) over symlinks.
    candidates.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    candidates
        .into_iter()
        .next()
        .ok_or_else(|| format!("no libonnxruntime.so* in {}", dir.display()))
}

/// Finds the ONNX Runtime library for this process (see [`Discovery`] for the order).
///
/// `prefer_gpu` makes the cache's `onnxruntime-gpu/` copy win over the CPU one.
pub fn locate_runtime(explicit: Option<&Path>, prefer_gpu: bool) -> Result<RuntimeLibrary> {
    Discovery::from_env(explicit, prefer_gpu).locate()
}

/// The loaded ONNX Runtime and its process-wide environment.
///
/// There is one per process (ONNX Runtime allows one environment); [`Runtime::init`] returns
/// the same `'static` value to every caller that asks for the same library.
#[derive(Debug)]
pub struct Runtime {
    library: RuntimeLibrary,
    version: String,
    pub(crate) env: ort::environment::Environment,
}

static RUNTIME: Mutex<Option<&'static Runtime>> = Mutex::new(None);

impl Runtime {
    /// Loads `library` and creates the ONNX Runtime environment, once per process.
    ///
    /// A second call with the same library returns the first runtime; with a different one it
    /// fails with [`Error::RuntimeAlreadyLoaded`].
    pub fn init(library: RuntimeLibrary) -> Result<&'static Runtime> {
        let mut slot = RUNTIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(runtime) = *slot {
            if runtime.library.path == library.path {
                return Ok(runtime);
            }
            return Err(Error::RuntimeAlreadyLoaded {
                loaded: runtime.library.path.clone(),
                requested: library.path,
            });
        }
        let (version, env) = load(&library)?;
        tracing::info!(
            "ONNX Runtime {version} loaded from {} ({})",
            library.path.display(),
            library.reason
        );
        let runtime: &'static Runtime = Box::leak(Box::new(Runtime {
            library,
            version,
            env,
        }));
        *slot = Some(runtime);
        Ok(runtime)
    }

    /// [`locate_runtime`] then [`Runtime::init`].
    ///
    /// In a build without the `load-dynamic` feature (ONNX Runtime linked at build time, e.g.
    /// with `download-binaries`) there is nothing to discover: the linked library is used and
    /// an explicit path is an error.
    pub fn discover(explicit: Option<&Path>, prefer_gpu: bool) -> Result<&'static Runtime> {
        #[cfg(feature = "load-dynamic")]
        {
            Runtime::init(locate_runtime(explicit, prefer_gpu)?)
        }
        #[cfg(not(feature = "load-dynamic"))]
        {
            let _ = prefer_gpu;
            if let Some(path) = explicit {
                return Err(Error::RuntimeLoad {
                    path: path.to_path_buf(),
                    message:
                        "this build links ONNX Runtime at build time (no `load-dynamic` feature); \
                              loading a library at run time needs a default build"
                            .to_owned(),
                });
            }
            Runtime::init(RuntimeLibrary {
                path: PathBuf::from("libonnxruntime (linked)"),
                source: LibrarySource::Linked,
                reason: "linked at build time (built without the `load-dynamic` feature)"
                    .to_owned(),
            })
        }
    }

    /// The library in use, with where it was found.
    pub fn library(&self) -> &RuntimeLibrary {
        &self.library
    }

    /// The library's version string (`1.31.1`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// What to record about the runtime in outputs.
    pub fn report(&self) -> RuntimeReport {
        RuntimeReport {
            version: self.version.clone(),
            library: self.library.clone(),
        }
    }
}

/// The runtime as recorded in run records and `inspect --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeReport {
    /// ONNX Runtime version string.
    pub version: String,
    /// The library and how it was found.
    pub library: RuntimeLibrary,
}

/// Loads the library (load-dynamic builds) and creates the environment.
#[cfg(feature = "load-dynamic")]
fn load(library: &RuntimeLibrary) -> Result<(String, ort::environment::Environment)> {
    let version = probe_version(&library.path)?;
    let load_error = |message: String| Error::RuntimeLoad {
        path: library.path.clone(),
        message,
    };
    let env = ort::init_from(&library.path)
        .map_err(|err| load_error(err.to_string()))?
        .with_name("imagenetx")
        .with_telemetry(false)
        .build()
        .map_err(|err| load_error(err.to_string()))?;
    Ok((version, env))
}

/// Creates the environment of the linked library (builds without `load-dynamic`).
#[cfg(not(feature = "load-dynamic"))]
fn load(library: &RuntimeLibrary) -> Result<(String, ort::environment::Environment)> {
    // SAFETY: the linked library exports `OrtGetApiBase`, which takes no arguments and returns
    // a pointer to a static struct.
    let base = unsafe { ort::sys::OrtGetApiBase() };
    let version = version_from_base(base).map_err(|message| Error::RuntimeLoad {
        path: library.path.clone(),
        message,
    })?;
    let env = ort::init()
        .with_name("imagenetx")
        .with_telemetry(false)
        .build()
        .map_err(|err| Error::RuntimeLoad {
            path: library.path.clone(),
            message: err.to_string(),
        })?;
    Ok((version, env))
}

/// The version string behind an `OrtApiBase` pointer, checked against what `ort` needs.
fn version_from_base(base: *const ort::sys::OrtApiBase) -> std::result::Result<String, String> {
    if base.is_null() {
        return Err("`OrtGetApiBase` returned null".to_owned());
    }
    // SAFETY: `base` is non-null and points at the library's static `OrtApiBase`, whose
    // `GetVersionString` returns a static NUL-terminated string.
    let version = unsafe { std::ffi::CStr::from_ptr(((*base).GetVersionString)()) }
        .to_string_lossy()
        .into_owned();
    let minor: u32 = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if minor < ort::MINOR_VERSION {
        return Err(format!(
            "version {version} is too old: expected 1.{}.0 or newer (`just setup-ort` fetches {ORT_VERSION})",
            ort::MINOR_VERSION
        ));
    }
    Ok(version)
}

/// Reads the version string of the library at `path` through its `OrtGetApiBase` export.
#[cfg(feature = "load-dynamic")]
fn probe_version(path: &Path) -> Result<String> {
    let fail = |message: String| Error::RuntimeLoad {
        path: path.to_path_buf(),
        message,
    };
    // SAFETY: `path` is an ONNX Runtime library (or we fail below); loading runs its
    // initialisers, which have no preconditions.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|err| fail(err.to_string()))?;
    type GetApiBase = unsafe extern "C" fn() -> *const ort::sys::OrtApiBase;
    // SAFETY: `OrtGetApiBase` has this signature in every ONNX Runtime release.
    let get_base = unsafe { lib.get::<GetApiBase>(b"OrtGetApiBase") }.map_err(|_| {
        fail("not an ONNX Runtime library: it does not export `OrtGetApiBase`".to_owned())
    })?;
    // SAFETY: the function takes no arguments and returns a pointer to a static struct.
    let base = unsafe { get_base() };
    version_from_base(base).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare() -> Discovery {
        Discovery {
            python: None,
            system: false,
            ..Discovery::default()
        }
    }

    #[test]
    fn explicit_path_wins_and_must_exist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lib = dir.path().join("libonnxruntime.so");
        std::fs::write(&lib, b"x").expect("write");
        let mut discovery = bare();
        discovery.explicit = Some(lib.clone());
        discovery.ort_dylib_path = Some(dir.path().join("other.so").into_os_string());
        let found = discovery.locate().expect("found");
        assert_eq!(found.path, lib);
        assert_eq!(found.source, LibrarySource::Explicit);

        discovery.explicit = Some(dir.path().join("missing.so"));
        let err = discovery.locate().expect_err("missing");
        assert!(matches!(err, Error::RuntimeMissing { .. }), "{err}");
        assert!(err.to_string().contains("--ort-lib"), "{err}");
    }

    #[test]
    fn env_var_then_cache_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for root in [&a, &b] {
            std::fs::create_dir_all(root.join("onnxruntime")).expect("mkdir");
        }
        std::fs::create_dir_all(b.join("onnxruntime-gpu")).expect("mkdir");
        std::fs::write(b.join("onnxruntime").join(ORT_LIBRARY_FILE), b"x").expect("write");
        std::fs::write(b.join("onnxruntime-gpu").join(ORT_LIBRARY_FILE), b"x").expect("write");
        let mut discovery = bare();
        discovery.cache_roots = vec![a.clone(), b.clone()];
        let found = discovery.locate().expect("found");
        assert_eq!(found.path, b.join("onnxruntime").join(ORT_LIBRARY_FILE));
        assert_eq!(found.source, LibrarySource::Cache);

        discovery.prefer_gpu = true;
        let found = discovery.locate().expect("found");
        assert_eq!(found.path, b.join("onnxruntime-gpu").join(ORT_LIBRARY_FILE));

        let env_lib = dir.path().join("env.so");
        std::fs::write(&env_lib, b"x").expect("write");
        discovery.ort_dylib_path = Some(env_lib.clone().into_os_string());
        let found = discovery.locate().expect("found");
        assert_eq!((found.path, found.source), (env_lib, LibrarySource::EnvVar));
    }

    #[test]
    fn nothing_found_says_how_to_get_one() {
        let mut discovery = bare();
        discovery.cache_roots = vec![PathBuf::from("/nonexistent/cache")];
        discovery.python = Some("/nonexistent/python3".into());
        let err = discovery.locate().expect_err("nothing");
        let message = err.to_string();
        for needle in [
            "just setup-ort",
            "pip install onnxruntime",
            "--ort-lib",
            "/nonexistent/cache",
        ] {
            assert!(
                message.contains(needle),
                "{needle:?} missing from {message}"
            );
        }
    }
}
