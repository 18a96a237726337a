//! No search path of the machine the binary was built on is compiled into it: annotations
//! and ONNX Runtime are looked for at run time.

use std::path::Path;

use crate::parity_util;
use parity_util::{imagenetx, workspace_root};

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every crate folder of the workspace (`crates/*` holding a `Cargo.toml`), relative to `root`.
fn crate_dirs(root: &Path) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(root.join("crates"))
        .expect("read the crates folder")
        .map(|entry| entry.expect("crates entry").path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .map(|path| {
            let name = path.file_name().expect("crate folder name");
            format!("crates/{}", name.to_string_lossy())
        })
        .collect();
    dirs.sort();
    dirs
}

/// The run-time search paths (annotations, ONNX Runtime) are found at run time: from the
/// environment or the user's cache folder. None of the checkout's absolute folders may be
/// compiled in as a string, as `env!("CARGO_MANIFEST_DIR")` did: not the checkout, not its
/// `.cache`, not any crate's manifest folder.
///
/// Only these search-path strings are checked: debug line tables and panic locations name
/// source files too (relative to the workspace, or absolute under the compile directory), and
/// are about where the code was built, not where the binary looks.
#[test]
fn no_search_path_of_the_build_machine_is_compiled_in() {
    let binary = imagenetx();
    let bytes = std::fs::read(&binary).expect("read the imagenetx binary");
    let root = workspace_root();
    let crates = crate_dirs(&root);
    // Every library the binary is made of, and the binary's own crate.
    for expected in [
        "crates/cli",
        "crates/dataset",
        "crates/infer",
        "crates/imaging",
    ] {
        assert!(
            crates.iter().any(|c| c == expected),
            "{expected} not found among {crates:?}"
        );
    }
    let mut roots = vec![root.clone()];
    // The path as cargo spelled it (it may differ from the canonical one by symlinks).
    let manifest_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    roots.push(manifest_root);
    for root in roots {
        let root = root.to_string_lossy().into_owned();
        let mut suffixes = vec!["/.cache".to_owned()];
        for crate_dir in &crates {
            suffixes.push(format!("/{crate_dir}\0"));
            suffixes.push(format!("/{crate_dir}/../../.cache"));
        }
        for suffix in suffixes {
            let needle = format!("{root}{suffix}");
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{} contains the build machine's path {needle:?}",
                binary.display()
            );
        }
        // Rust string literals are not NUL-terminated: a manifest folder compiled in is
        // followed directly by the next literal, so look for the bare folder and check what
        // follows each hit.
        for crate_dir in &crates {
            let needle = format!("{root}/{crate_dir}");
            let mut start = 0;
            while let Some(at) = bytes[start..]
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
            {
                let end = start + at + needle.len();
                // A source path in debug info continues with `/src/…`; a bare manifest folder
                // does not.
                let next = &bytes[end..bytes.len().min(end + 5)];
                assert!(
                    next.starts_with(b"/src/")
                        || next.starts_with(b"/benc")
                        || next.starts_with(b"/test"),
                    "{} contains the manifest folder {needle:?} (followed by {:?})",
                    binary.display(),
                    String::from_utf8_lossy(next)
                );
                start = end;
            }
        }
    }
}
