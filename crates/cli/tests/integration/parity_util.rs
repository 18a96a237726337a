//! Shared helpers of the binary's tests: the annotations, the paper's predictions, running
//! `python/parity_analysis.py` and the `imagenetx` binary, and comparing CSV tables cell by
//! cell. What every crate's tests need (paths, the venv, the binary's path) comes from
//! `imagenetx-test-support`.

#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use imagenetx_test_support::{check_output, venv_python, workspace_root};

/// The `imagenetx` binary under test: `IMAGENETX_BIN` when set (an installed or another
/// build), else the one cargo built for this test.
pub fn imagenetx() -> PathBuf {
    imagenetx_test_support::binary(env!("CARGO_BIN_EXE_imagenetx"))
}

const SETUP_HINT: &str = "run `just setup venv` (or set IMAGENETX_VENV / IMAGENETX_ANNOTATIONS)";

/// The ImageNet-X annotations folder (`IMAGENETX_ANNOTATIONS`, default
/// `$IMAGENETX_CACHE/annotations`, else `<workspace>/.cache/annotations`). Panics with the
/// set-up command when it is missing.
pub fn annotations_dir() -> PathBuf {
    let dir = std::env::var_os("IMAGENETX_ANNOTATIONS")
        .map(PathBuf::from)
        .unwrap_or_else(|| imagenetx_test_support::cache_dir().join("annotations"));
    for name in [
        "imagenet_labels.txt",
        "imagenet_1k_classes_to_100_metaclasses.csv",
        "imagenet_x_val_top_factor.jsonl",
        "imagenet_x_val_multi_factor.jsonl",
        "imagenet_x_train_top_factor.jsonl",
        "prototypical_paths.csv",
        "imagenet_real_labels.jsonl",
    ] {
        assert!(
            dir.join(name).is_file(),
            "the ImageNet-X annotations are missing: no {}; {SETUP_HINT}",
            dir.join(name).display()
        );
    }
    dir
}

/// The folder of the ImageNet-X paper's published predictions (`README.md`, `ResNet50.csv`,
/// `DINO.csv`; CC BY-NC 4.0 data of a third party, not redistributed here), from
/// `IMAGENETX_PAPER_PREDICTIONS`.
///
/// The tests that use it are `#[ignore]`d, so a plain `cargo test` lists them as ignored
/// instead of passing them unchecked; `just test` runs them with `--ignored` when it finds the
/// folder (CI always does: `.ci/run` sets the variable and fails without the folder). Once a
/// test runs, a missing variable or file is a failure, never a skip.
pub fn paper_predictions_dir() -> PathBuf {
    let dir = std::env::var_os("IMAGENETX_PAPER_PREDICTIONS")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "this test needs IMAGENETX_PAPER_PREDICTIONS: the folder of the paper's published \
                 predictions (not redistributed); `just test` sets it from ../shared/paper-predictions"
            )
        });
    for name in ["README.md", "ResNet50.csv", "DINO.csv"] {
        assert!(
            dir.join(name).is_file(),
            "IMAGENETX_PAPER_PREDICTIONS={}: no {name} there",
            dir.display()
        );
    }
    dir
}

/// Starts `python/parity_analysis.py ARGS` with the venv's interpreter.
pub fn python_command(args: &[&str]) -> Command {
    let mut cmd = imagenetx_test_support::python_script("parity_analysis.py");
    cmd.args(args);
    cmd
}

/// The subcommands that read the annotation files (they take `--no-cache`).
pub const ANNOTATION_COMMANDS: &[&str] =
    &["analyze", "annotations", "compare", "evaluate", "report"];

/// Runs `imagenetx ARGS`. A subcommand of [`ANNOTATION_COMMANDS`] gets `--no-cache`: these
/// tests check the parser itself, so they never read parsed annotations from the persistent
/// cache, where an entry written by an older build could hide a parser regression (the cache
/// is covered by `parse_cache`).
pub fn run_imagenetx<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let mut command = Command::new(imagenetx());
    match args.split_first() {
        Some((first, rest))
            if ANNOTATION_COMMANDS
                .iter()
                .any(|c| first.as_ref() == std::ffi::OsStr::new(c)) =>
        {
            command.arg(first).arg("--no-cache").args(rest)
        }
        _ => command.args(args),
    };
    command
        .env_remove("RUST_LOG")
        .output()
        .expect("could not start the imagenetx binary")
}

/// Runs `imagenetx ARGS` and panics with its stderr unless it exits 0.
pub fn run_imagenetx_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let output = run_imagenetx(args);
    assert!(
        output.status.success(),
        "imagenetx {} exited with {}\n--- stderr ---\n{}",
        args.iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A CSV file read as text.
#[derive(Debug, Clone)]
pub struct Table {
    /// The file it came from (for messages).
    pub path: PathBuf,
    /// Column names.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

/// Splits one CSV line (RFC 4180 quoting, no embedded newlines).
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

impl Table {
    /// Reads a CSV file; panics with the path when it is missing or ragged.
    pub fn read(path: &Path) -> Table {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let mut lines = text.lines().filter(|l| !l.is_empty());
        let header = split_csv_line(
            lines
                .next()
                .unwrap_or_else(|| panic!("{} is empty", path.display())),
        );
        let mut rows = Vec::new();
        for (i, line) in lines.enumerate() {
            let row = split_csv_line(line.trim_end_matches('\r'));
            assert_eq!(
                row.len(),
                header.len(),
                "{}:{}: {} fields, the header has {}",
                path.display(),
                i + 2,
                row.len(),
                header.len()
            );
            rows.push(row);
        }
        Table {
            path: path.to_path_buf(),
            header: header
                .into_iter()
                .map(|h| h.trim_end_matches('\r').to_string())
                .collect(),
            rows,
        }
    }

    /// The index of a column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }
}

/// How two tables are compared.
#[derive(Debug, Clone, Copy)]
pub struct Compare<'a> {
    /// Leading columns that identify a row (compared as text).
    pub keys: &'a [&'a str],
    /// Largest allowed |expected - got| of a numeric cell.
    pub tolerance: f64,
    /// Require the rows in the same order as well.
    pub same_order: bool,
    /// Skip cells whose row key equals their column name (correlation diagonals).
    pub skip_diagonal: bool,
}

fn parse_cell(text: &str) -> Option<f64> {
    match text {
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => text.parse::<f64>().ok(),
    }
}

/// Compares `got` against `expected` cell by cell, returning one line per difference:
/// row and column sets, order if asked, then every cell (`|diff| <= tolerance`, or both
/// empty = undefined).
pub fn compare_tables(expected: &Table, got: &Table, how: Compare<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    let file = got
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let exp_cols: BTreeSet<&String> = expected.header.iter().collect();
    let got_cols: BTreeSet<&String> = got.header.iter().collect();
    if expected.header != got.header {
        let missing: Vec<_> = exp_cols.difference(&got_cols).collect();
        let extra: Vec<_> = got_cols.difference(&exp_cols).collect();
        if missing.is_empty() && extra.is_empty() {
            problems.push(format!(
                "{file}: columns in another order: expected {:?}, got {:?}",
                expected.header, got.header
            ));
        } else {
            problems.push(format!(
                "{file}: column sets differ: missing {missing:?}, unexpected {extra:?}"
            ));
        }
    }
    let key_idx = |t: &Table| -> Vec<usize> {
        how.keys
            .iter()
            .map(|k| {
                t.column(k)
                    .unwrap_or_else(|| panic!("{}: no key column {k}", t.path.display()))
            })
            .collect()
    };
    let (ek, gk) = (key_idx(expected), key_idx(got));
    let key_of = |row: &[String], idx: &[usize]| -> String {
        idx.iter()
            .map(|&i| row[i].as_str())
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut got_rows: HashMap<String, &Vec<String>> = HashMap::new();
    for row in &got.rows {
        let key = key_of(row, &gk);
        if got_rows.insert(key.clone(), row).is_some() {
            problems.push(format!("{file}: row {key} appears twice"));
        }
    }
    let exp_keys: Vec<String> = expected.rows.iter().map(|r| key_of(r, &ek)).collect();
    let got_keys: Vec<String> = got.rows.iter().map(|r| key_of(r, &gk)).collect();
    let exp_set: BTreeSet<&String> = exp_keys.iter().collect();
    let got_set: BTreeSet<&String> = got_keys.iter().collect();
    let missing: Vec<_> = exp_set.difference(&got_set).collect();
    let extra: Vec<_> = got_set.difference(&exp_set).collect();
    if !missing.is_empty() || !extra.is_empty() {
        problems.push(format!(
            "{file}: row sets differ: missing {missing:?}, unexpected {extra:?}"
        ));
    } else if how.same_order && exp_keys != got_keys {
        let at = exp_keys
            .iter()
            .zip(&got_keys)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        problems.push(format!(
            "{file}: rows in another order: first difference at data row {}: expected {}, got {}",
            at + 1,
            exp_keys[at],
            got_keys[at]
        ));
    }
    for (erow, key) in expected.rows.iter().zip(&exp_keys) {
        let Some(grow) = got_rows.get(key) else {
            continue;
        };
        for (ci, column) in expected.header.iter().enumerate() {
            if how.keys.contains(&column.as_str()) {
                continue;
            }
            if how.skip_diagonal && key == column {
                continue;
            }
            let Some(gi) = got.column(column) else {
                continue;
            };
            let (e, g) = (erow[ci].as_str(), grow[gi].as_str());
            let ok = match (e.is_empty(), g.is_empty()) {
                (true, true) => true,
                (true, false) | (false, true) => false,
                (false, false) => match (parse_cell(e), parse_cell(g)) {
                    (Some(x), Some(y)) => {
                        (x.is_infinite() && x == y) || (x - y).abs() <= how.tolerance
                    }
                    _ => e == g,
                },
            };
            if !ok {
                let diff = match (parse_cell(e), parse_cell(g)) {
                    (Some(x), Some(y)) => format!(" (diff {:e})", y - x),
                    _ => String::new(),
                };
                problems.push(format!(
                    "{file}: row {key}, column {column}: expected {}, got {}{diff}",
                    if e.is_empty() { "<empty>" } else { e },
                    if g.is_empty() { "<empty>" } else { g },
                ));
            }
        }
    }
    problems
}

/// Panics listing the problems when there are any: cell differences grouped by row (up to
/// four cells shown per row), at most 60 rows, then a count per file.
pub fn assert_no_problems(context: &str, problems: &[String]) {
    if problems.is_empty() {
        return;
    }
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut per_file: Vec<(String, usize)> = Vec::new();
    for p in problems {
        let (head, cell) = match p.split_once(", column ") {
            Some((head, cell)) => (head.to_string(), format!("column {cell}")),
            None => (p.clone(), String::new()),
        };
        let file = head.split(':').next().unwrap_or_default().to_string();
        match per_file.iter_mut().find(|(f, _)| *f == file) {
            Some((_, n)) => *n += 1,
            None => per_file.push((file, 1)),
        }
        match rows.iter_mut().find(|(h, _)| *h == head) {
            Some((_, cells)) => cells.push(cell),
            None => rows.push((head, vec![cell])),
        }
    }
    let mut text = String::new();
    for (head, cells) in rows.iter().take(60) {
        let cells: Vec<&String> = cells.iter().filter(|c| !c.is_empty()).collect();
        if cells.is_empty() {
            text.push_str(&format!("\n  {head}"));
        } else {
            let shown: Vec<&str> = cells.iter().take(4).map(|c| c.as_str()).collect();
            text.push_str(&format!(
                "\n  {head}: {} cell(s): {}{}",
                cells.len(),
                shown.join("; "),
                if cells.len() > 4 { "; ..." } else { "" }
            ));
        }
    }
    if rows.len() > 60 {
        text.push_str(&format!("\n  ... {} more rows", rows.len() - 60));
    }
    let counts: Vec<String> = per_file.iter().map(|(f, n)| format!("{f}: {n}")).collect();
    panic!(
        "{context}: {} difference(s) from the reference ({}):{text}",
        problems.len(),
        counts.join(", ")
    );
}
