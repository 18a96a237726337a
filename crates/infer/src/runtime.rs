//! Finding the ONNX Runtime shared library and loading it once per process.
//!
//! ONNX Runtime is loaded at run time (`ort`'s `load-dynamic` mode). Where to look is a value,
//! [`RuntimeSearch`] (its docs give the order); nothing is looked for, and no program is run,
//! unless the search says so. [`Runtime::find`] runs the search, then [`Runtime::init`] loads
//! the library and creates the process-wide ONNX Runtime environment.

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

/// A runtime library chosen by [`RuntimeSearch::locate`], with where and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeLibrary {
    /// Path of the shared library (a bare file name for [`LibrarySource::System`]).
    pub path: PathBuf,
    /// Which rule found it.
    pub source: LibrarySource,
    /// A sentence saying why this library was taken.
    pub reason: String,
}

/// Where to look for the ONNX Runtime shared library: a configuration, read by
/// [`RuntimeSearch::locate`] and [`Runtime::find`].
///
/// The search takes the first of, in this order:
///
/// 1. [`library`](Self::library), an explicit path (`--ort-lib PATH`);
/// 2. the file named by the `ORT_DYLIB_PATH` environment variable, when
///    [`use_env`](Self::use_env) is set;
/// 3. `onnxruntime/libonnxruntime.so.1.31.1` (the copy `just setup-ort` caches) under each of
///    [`cache_dirs`](Self::cache_dirs), in order; with [`prefer_gpu`](Self::prefer_gpu),
///    `onnxruntime-gpu/` (the copy of `just setup-gpu`) first in each;
/// 4. the `onnxruntime` package of the Python interpreter [`python`](Self::python), when one is
///    set (this runs `PYTHON -c "import onnxruntime"`);
/// 5. `libonnxruntime.so` on the system loader path, when [`system`](Self::system) is set.
///
/// An explicit path or an `ORT_DYLIB_PATH` naming a missing file is an error, not a reason to
/// keep looking: the user asked for that file. When nothing is found the error lists every
/// place looked at, with why it did not match.
///
/// [`RuntimeSearch::default`] reads `ORT_DYLIB_PATH`, looks in the cache folders named by the
/// environment at run time ([`default_cache_dirs`](Self::default_cache_dirs)) and on the
/// system loader path, and runs no program: the Python package is searched only when asked
/// for ([`with_python_package`](Self::with_python_package)). No path of the machine the code
/// was built on is part of any search.
///
/// ```
/// use imagenetx_infer::{LibrarySource, RuntimeSearch};
///
/// let dir = tempfile::tempdir()?;
/// std::fs::create_dir(dir.path().join("onnxruntime"))?;
/// std::fs::write(dir.path().join("onnxruntime/libonnxruntime.so.1.31.1"), b"")?;
/// let search = RuntimeSearch::empty().with_cache_dirs(vec![dir.path().to_path_buf()]);
/// let found = search.locate()?;
/// assert_eq!(found.source, LibrarySource::Cache);
///
/// // The command-line tool's search: the default, with `--ort-lib` and the Python package.
/// let cli = RuntimeSearch::default().with_library(None).with_python_package(true);
/// assert!(cli.python.is_some() && cli.system);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSearch {
    /// An explicit library (`--ort-lib PATH`); it must exist.
    pub library: Option<PathBuf>,
    /// Take the file named by `ORT_DYLIB_PATH` (read when the search runs).
    pub use_env: bool,
    /// Cache roots to look in, in order (each may hold `onnxruntime/` and `onnxruntime-gpu/`).
    pub cache_dirs: Vec<PathBuf>,
    /// Look in `onnxruntime-gpu/` before `onnxruntime/` inside each cache root.
    pub prefer_gpu: bool,
    /// Python interpreter to ask for its `onnxruntime` package; `None` skips that step (and
    /// runs no program).
    pub python: Option<OsString>,
    /// Try `libonnxruntime.so` on the system loader path.
    pub system: bool,
}

impl Default for RuntimeSearch {
    /// `ORT_DYLIB_PATH`, [`default_cache_dirs`](Self::default_cache_dirs), the system loader
    /// path; no explicit library, no Python package, the CPU copy first.
    fn default() -> Self {
        RuntimeSearch {
            library: None,
            use_env: true,
            cache_dirs: RuntimeSearch::default_cache_dirs(),
            prefer_gpu: false,
            python: None,
            system: true,
        }
    }
}

impl RuntimeSearch {
    /// A search that looks nowhere: add what it should look at with the `with_*` methods.
    pub fn empty() -> Self {
        RuntimeSearch {
            library: None,
            use_env: false,
            cache_dirs: Vec::new(),
            prefer_gpu: false,
            python: None,
            system: false,
        }
    }

    /// The cache roots the environment names now, in order, without repeats:
    /// `$IMAGENETX_CACHE`, then the user's cache folder (`$XDG_CACHE_HOME/imagenetx`, else
    /// `$HOME/.cache/imagenetx`). Unset or empty variables are skipped.
    pub fn default_cache_dirs() -> Vec<PathBuf> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let mut roots = Vec::new();
        if let Some(cache) = var("IMAGENETX_CACHE") {
            roots.push(PathBuf::from(cache));
        }
        if let Some(xdg) = var("XDG_CACHE_HOME") {
            roots.push(PathBuf::from(xdg).join("imagenetx"));
        } else if let Some(home) = var("HOME") {
            roots.push(PathBuf::from(home).join(".cache/imagenetx"));
        }
        let mut unique: Vec<(PathBuf, PathBuf)> = Vec::new();
        for root in roots {
            let key = root.canonicalize().unwrap_or_else(|_| root.clone());
            if !unique.iter().any(|(k, _)| *k == key) {
                unique.push((key, root));
            }
        }
        unique
            .into_iter()
            .map(|(key, root)| if key.exists() { key } else { root })
            .collect()
    }

    /// Sets the explicit library (`None`: none).
    #[must_use]
    pub fn with_library(mut self, library: Option<PathBuf>) -> Self {
        self.library = library;
        self
    }

    /// Whether `ORT_DYLIB_PATH` is read.
    #[must_use]
    pub fn with_env(mut self, use_env: bool) -> Self {
        self.use_env = use_env;
        self
    }

    /// Sets the cache roots, in order.
    #[must_use]
    pub fn with_cache_dirs(mut self, dirs: Vec<PathBuf>) -> Self {
        self.cache_dirs = dirs;
        self
    }

    /// Whether the GPU build (`onnxruntime-gpu/`) is tried first in each cache root (for a
    /// provider that may use CUDA, see [`crate::ExecutionProvider::wants_gpu`]).
    #[must_use]
    pub fn with_prefer_gpu(mut self, prefer_gpu: bool) -> Self {
        self.prefer_gpu = prefer_gpu;
        self
    }

    /// Whether a Python `onnxruntime` package is searched for: `true` asks the interpreter
    /// named by `$IMAGENETX_PYTHON`, else `python3`; `false` skips the step.
    #[must_use]
    pub fn with_python_package(mut self, enabled: bool) -> Self {
        self.python = enabled.then(|| {
            std::env::var_os("IMAGENETX_PYTHON")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "python3".into())
        });
        self
    }

    /// Searches the `onnxruntime` package of this interpreter (`None`: skip the step).
    #[must_use]
    pub fn with_python(mut self, interpreter: Option<OsString>) -> Self {
        self.python = interpreter;
        self
    }

    /// Whether `libonnxruntime.so` is tried on the system loader path.
    #[must_use]
    pub fn with_system(mut self, system: bool) -> Self {
        self.system = system;
        self
    }

    /// Runs the search: the first step that finds a library wins (see the type's docs).
    pub fn locate(&self) -> Result<RuntimeLibrary> {
        let mut searched = Vec::new();
        if let Some(path) = &self.library {
            return explicit_file(path, LibrarySource::Explicit, "given with --ort-lib");
        }
        searched.push("--ort-lib (not given)".to_owned());
        if self.use_env {
            if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
                return explicit_file(
                    Path::new(&path),
                    LibrarySource::EnvVar,
                    "named by ORT_DYLIB_PATH",
                );
            }
            searched.push("ORT_DYLIB_PATH (not set)".to_owned());
        } else {
            searched.push("ORT_DYLIB_PATH (not read)".to_owned());
        }
        let folders: &[&str] = if self.prefer_gpu {
            &["onnxruntime-gpu", "onnxruntime"]
        } else {
            &["onnxruntime"]
        };
        for root in &self.cache_dirs {
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
        match &self.python {
            Some(python) => match python_package_library(python) {
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
            },
            None => searched.push("python package (not searched)".to_owned()),
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

/// The library [`RuntimeSearch::default`] finds, with `explicit` as its explicit library and
/// `prefer_gpu` as its [`prefer_gpu`](RuntimeSearch::prefer_gpu): a shorthand for
/// `RuntimeSearch::default().with_library(..).with_prefer_gpu(..).locate()`.
pub fn locate_runtime(explicit: Option<&Path>, prefer_gpu: bool) -> Result<RuntimeLibrary> {
    RuntimeSearch::default()
        .with_library(explicit.map(Path::to_path_buf))
        .with_prefer_gpu(prefer_gpu)
        .locate()
}

/// The loaded ONNX Runtime and its process-wide environment.
///
/// There is one per process (ONNX Runtime allows one environment); [`Runtime::init`] returns
/// the same `'static` value to every caller that asks for the same library.
#[derive(Debug)]
pub struct Runtime {
    library: RuntimeLibrary,
    version: String,
    providers: Vec<String>,
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
        let providers = available_providers().map_err(|message| Error::RuntimeLoad {
            path: library.path.clone(),
            message: format!("cannot list its execution providers: {message}"),
        })?;
        tracing::info!(
            "ONNX Runtime {version} loaded from {} ({})",
            library.path.display(),
            library.reason
        );
        let runtime: &'static Runtime = Box::leak(Box::new(Runtime {
            library,
            version,
            providers,
            env,
        }));
        *slot = Some(runtime);
        Ok(runtime)
    }

    /// [`RuntimeSearch::locate`] then [`Runtime::init`].
    ///
    /// In a build without the `load-dynamic` feature (ONNX Runtime linked at build time, e.g.
    /// with `download-binaries`) there is nothing to search: the linked library is used and
    /// an explicit library is an error.
    pub fn find(search: &RuntimeSearch) -> Result<&'static Runtime> {
        #[cfg(feature = "load-dynamic")]
        {
            Runtime::init(search.locate()?)
        }
        #[cfg(not(feature = "load-dynamic"))]
        {
            if let Some(path) = &search.library {
                return Err(Error::RuntimeLoad {
                    path: path.clone(),
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

    /// The execution providers the library was built with, ONNX Runtime's names in its own
    /// order (`CUDAExecutionProvider`, ..., `CPUExecutionProvider`). Being listed does not
    /// promise that one registers: the libraries and the device it needs may be missing.
    pub fn providers(&self) -> &[String] {
        &self.providers
    }

    /// What to record about the runtime in outputs.
    pub fn report(&self) -> RuntimeReport {
        RuntimeReport {
            version: self.version.clone(),
            library: self.library.clone(),
        }
    }
}

/// ONNX Runtime's `GetAvailableProviders`: the providers the loaded library was built with.
fn available_providers() -> std::result::Result<Vec<String>, String> {
    use std::ffi::{CStr, c_char, c_int};

    let api = ort::api();
    // Turns a status into its message, releasing it.
    let check = |status: ort::sys::OrtStatusPtr| -> std::result::Result<(), String> {
        if status.0.is_null() {
            return Ok(());
        }
        // SAFETY: a non-null status from the API holds a NUL-terminated message until it is
        // released, which happens once, here.
        let message = unsafe {
            let text = CStr::from_ptr((api.GetErrorMessage)(status.0))
                .to_string_lossy()
                .into_owned();
            (api.ReleaseStatus)(status.0);
            text
        };
        Err(message)
    };
    let mut list: *mut *mut c_char = std::ptr::null_mut();
    let mut count: c_int = 0;
    // SAFETY: both out-pointers are valid; on success the API hands over an array of `count`
    // NUL-terminated strings that stays valid until ReleaseAvailableProviders.
    check(unsafe { (api.GetAvailableProviders)(&mut list, &mut count) })?;
    if list.is_null() {
        return Ok(Vec::new());
    }
    let names = (0..usize::try_from(count).unwrap_or(0))
        // SAFETY: `i < count` indexes the array the API returned; each entry is a C string.
        .map(|i| {
            unsafe { CStr::from_ptr(*list.add(i)) }
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    // SAFETY: the array and count the API returned, released once.
    check(unsafe { (api.ReleaseAvailableProviders)(list, count) })?;
    Ok(names)
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

    #[test]
    fn explicit_path_wins_and_must_exist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lib = dir.path().join("libonnxruntime.so");
        std::fs::write(&lib, b"x").expect("write");
        let search = RuntimeSearch::empty()
            .with_library(Some(lib.clone()))
            .with_env(true);
        let found = search.locate().expect("found");
        assert_eq!(found.path, lib);
        assert_eq!(found.source, LibrarySource::Explicit);

        let search = search.with_library(Some(dir.path().join("missing.so")));
        let err = search.locate().expect_err("missing");
        assert!(matches!(err, Error::RuntimeMissing { .. }), "{err}");
        assert!(err.to_string().contains("--ort-lib"), "{err}");
    }

    #[test]
    fn cache_dirs_in_order_gpu_copy_first_when_preferred() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for root in [&a, &b] {
            std::fs::create_dir_all(root.join("onnxruntime")).expect("mkdir");
        }
        std::fs::create_dir_all(b.join("onnxruntime-gpu")).expect("mkdir");
        std::fs::write(b.join("onnxruntime").join(ORT_LIBRARY_FILE), b"x").expect("write");
        std::fs::write(b.join("onnxruntime-gpu").join(ORT_LIBRARY_FILE), b"x").expect("write");
        let search = RuntimeSearch::empty().with_cache_dirs(vec![a.clone(), b.clone()]);
        let found = search.locate().expect("found");
        assert_eq!(found.path, b.join("onnxruntime").join(ORT_LIBRARY_FILE));
        assert_eq!(found.source, LibrarySource::Cache);

        let found = search.with_prefer_gpu(true).locate().expect("found");
        assert_eq!(found.path, b.join("onnxruntime-gpu").join(ORT_LIBRARY_FILE));
    }

    #[test]
    fn nothing_found_says_where_it_looked_and_how_to_get_one() {
        let search = RuntimeSearch::empty()
            .with_cache_dirs(vec![PathBuf::from("/nonexistent/cache")])
            .with_python(Some("/nonexistent/python3".into()));
        let message = search.locate().expect_err("nothing").to_string();
        for needle in [
            "just setup-ort",
            "pip install onnxruntime",
            "--ort-lib (not given)",
            "ORT_DYLIB_PATH (not read)",
            "/nonexistent/cache/onnxruntime/libonnxruntime.so.1.31.1 (absent)",
            "python package via `/nonexistent/python3` (cannot run it: ",
        ] {
            assert!(
                message.contains(needle),
                "{needle:?} missing from {message}"
            );
        }
    }

    /// The default runs no program: the Python step is off until asked for.
    #[test]
    fn the_default_runs_no_python() {
        let search = RuntimeSearch::default();
        assert_eq!(search.python, None);
        assert!(search.use_env && search.system && search.library.is_none());
        let message = search
            .with_env(false)
            .with_system(false)
            .with_cache_dirs(Vec::new())
            .locate()
            .expect_err("nothing")
            .to_string();
        assert!(
            message.contains("python package (not searched)"),
            "{message}"
        );
        let asked = RuntimeSearch::default().with_python_package(true);
        assert!(asked.python.is_some());
        assert_eq!(asked.with_python_package(false).python, None);
    }
}
