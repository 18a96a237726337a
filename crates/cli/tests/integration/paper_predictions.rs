//! Real-data check: the published predictions of two models of the ImageNet-X paper.
//!
//! The files cannot be committed (CC BY-NC 4.0 data of a third party), so they are read from
//! the folder named by `IMAGENETX_PAPER_PREDICTIONS`. The tests are `#[ignore]`d (listed as
//! such by a plain `cargo test`); `just test` runs them with `--ignored` when it finds the
//! folder, and CI always has it (`.ci/run`). Once running, missing data is a failure.
//!
//! 1. every error ratio of `imagenetx analyze <folder>` must equal, to 6 decimals, the table
//!    in the folder's README (the toolkit's published numbers, parsed at test time), and each
//!    model's `average` the README's overall top-1 accuracy;
//! 2. with the reference venv (`just venv`; required once the data is there), every cell of
//!    every table must equal what the toolkit computes on the same files, for each error type.

use crate::parity_util;

use std::collections::BTreeMap;

use parity_util::{
    Compare, Table, annotations_dir, assert_no_problems, check_output, compare_tables,
    paper_predictions_dir, python_command, run_imagenetx_ok,
};

/// The README's markdown table: model -> factor -> printed value.
fn readme_ratios(readme: &str) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let mut header: Option<Vec<String>> = None;
    let mut rows = BTreeMap::new();
    for line in readme.lines() {
        let line = line.trim();
        if !line.starts_with('|') {
            continue;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        if cells.first().map(String::as_str) == Some("model") {
            header = Some(cells);
        } else if cells
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        } else if header.is_some() {
            rows.insert(cells[0].clone(), cells[1..].to_vec());
        }
    }
    let header = header.expect("README: no `| model | ...` table");
    (header[1..].to_vec(), rows)
}

/// The README's "Overall top-1 accuracy ...: DINO 0.754283, ResNet50 0.746693." sentence.
fn readme_accuracies(readme: &str, models: &[String]) -> BTreeMap<String, String> {
    let start = readme
        .find("Overall top-1 accuracy")
        .expect("README: no `Overall top-1 accuracy` sentence");
    let paragraph = readme[start..].split("\n\n").next().unwrap_or_default();
    let words: Vec<&str> = paragraph
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = BTreeMap::new();
    for m in models {
        let at = words
            .iter()
            .position(|w| w == m)
            .unwrap_or_else(|| panic!("README: no accuracy for {m}"));
        out.insert(m.clone(), words[at + 1].trim_end_matches('.').to_string());
    }
    out
}

#[test]
#[ignore = "needs IMAGENETX_PAPER_PREDICTIONS (published predictions, not redistributed); `just test` runs it"]
fn error_ratios_match_the_published_table() {
    let dir = paper_predictions_dir();
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README.md");
    let (factors, published) = readme_ratios(&readme);
    assert_eq!(factors.len(), 16, "README table: {factors:?}");
    assert_eq!(
        published.len(),
        2,
        "README table: models {:?}",
        published.keys()
    );
    for (model, values) in &published {
        assert_eq!(values.len(), factors.len(), "README table: row {model}");
    }
    let models: Vec<String> = published.keys().cloned().collect();
    let accuracies = readme_accuracies(&readme, &models);

    let out = tempfile::tempdir().expect("temp dir");
    run_imagenetx_ok(&[
        "analyze".as_ref(),
        dir.as_os_str(),
        "--annotations".as_ref(),
        annotations_dir().as_os_str(),
        "--out".as_ref(),
        out.path().as_os_str(),
    ]);
    let ratios = Table::read(&out.path().join("error_ratios.csv"));
    let acc = Table::read(&out.path().join("accuracies_per_factor.csv"));
    let mut problems = Vec::new();
    let got_models: Vec<&String> = ratios.rows.iter().map(|r| &r[0]).collect();
    if got_models != models.iter().collect::<Vec<_>>() {
        problems.push(format!(
            "error_ratios.csv: models {got_models:?}, README {models:?}"
        ));
    }
    for (model, values) in &published {
        let Some(row) = ratios.rows.iter().find(|r| &r[0] == model) else {
            continue;
        };
        for (factor, want) in factors.iter().zip(values) {
            let Some(col) = ratios.column(factor) else {
                problems.push(format!("error_ratios.csv: no column {factor}"));
                continue;
            };
            let got = row[col].parse::<f64>().map(|v| format!("{v:.6}"));
            if got.as_deref() != Ok(want.as_str()) {
                problems.push(format!(
                    "error_ratios.csv: {model}/{factor}: README {want}, got {} (to 6 decimals: {got:?})",
                    row[col]
                ));
            }
        }
        let avg_col = acc
            .column("average")
            .expect("accuracies_per_factor.csv: average");
        match acc.rows.iter().find(|r| &r[0] == model) {
            None => problems.push(format!("accuracies_per_factor.csv: no row {model}")),
            Some(row) => {
                let got = row[avg_col].parse::<f64>().map(|v| format!("{v:.6}"));
                if got.as_deref() != Ok(accuracies[model].as_str()) {
                    problems.push(format!(
                        "accuracies_per_factor.csv: {model}/average: README {}, got {}",
                        accuracies[model], row[avg_col]
                    ));
                }
            }
        }
    }
    assert_no_problems("paper predictions vs the README", &problems);
}

/// A link to `from` at `to` (a copy where links are not available); both in a temp folder.
fn link_or_copy(from: &std::path::Path, to: &std::path::Path) {
    #[cfg(unix)]
    let linked = std::os::unix::fs::symlink(from, to).is_ok();
    #[cfg(not(unix))]
    let linked = false;
    if !linked {
        std::fs::copy(from, to).expect("copy into the temp folder");
    }
}

#[test]
#[ignore = "needs IMAGENETX_PAPER_PREDICTIONS (published predictions, not redistributed); `just test` runs it"]
fn every_table_matches_the_toolkit_on_the_paper_predictions() {
    let dir = paper_predictions_dir();
    let ann = annotations_dir();
    let work = tempfile::tempdir().expect("temp dir");
    let reference = work.path().join("reference");
    // The toolkit's load_model_predictions raises on any non-CSV file in the folder (the
    // README): give it a folder of links to the CSV files alone.
    let csvs = work.path().join("csvs");
    std::fs::create_dir(&csvs).expect("temp dir");
    for entry in std::fs::read_dir(&dir).expect("paper predictions folder") {
        let path = entry.expect("paper predictions folder").path();
        if path.extension().is_some_and(|e| e == "csv") {
            let name = path.file_name().expect("file name");
            link_or_copy(&path, &csvs.join(name));
        }
    }
    let configs = [
        ("class", "top", false),
        ("metaclass", "multi", false),
        ("real-class", "top", true),
    ];
    let mut args: Vec<String> = vec![
        "reference".into(),
        "--annotations".into(),
        ann.to_string_lossy().into_owned(),
        "--preds".into(),
        csvs.to_string_lossy().into_owned(),
        "--out".into(),
        reference.to_string_lossy().into_owned(),
        "--check-loader".into(),
    ];
    for (error, factors, human) in configs {
        args.push("--config".into());
        args.push(format!(
            "{error}_{factors}=error:{error},factors:{factors},human:{}",
            u8::from(human)
        ));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    check_output(
        "parity_analysis.py reference",
        python_command(&argv).output(),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let mut problems = Vec::new();
    for (error, factors, human) in configs {
        let name = format!("{error}_{factors}");
        let out = work.path().join(&name);
        let mut cli: Vec<std::ffi::OsString> = vec![
            "analyze".into(),
            dir.clone().into(),
            "--annotations".into(),
            ann.clone().into(),
            "--error-type".into(),
            error.into(),
            "--factors".into(),
            factors.into(),
            "--out".into(),
            out.clone().into(),
        ];
        if human {
            cli.push("--with-human".into());
        }
        run_imagenetx_ok(&cli);
        for (file, keys, tolerance, same_order) in [
            ("accuracies_per_factor.csv", &["model"][..], 1e-12, true),
            (
                "accuracies_per_factor_metaclass.csv",
                &["model", "metaclass"][..],
                1e-12,
                true,
            ),
            ("error_ratios.csv", &["model"][..], 1e-12, false),
            ("calibration.csv", &["model"][..], 1e-9, false),
            ("prevalence_shift.csv", &["model"][..], 1e-12, false),
            (
                "prevalence_shift_metaclass.csv",
                &["model", "metaclass"][..],
                1e-12,
                false,
            ),
        ] {
            let got_path = out.join(file);
            if !got_path.is_file() {
                problems.push(format!("{name}/{file}: not written"));
                continue;
            }
            let expected = Table::read(&reference.join(&name).join(file));
            problems.extend(
                compare_tables(
                    &expected,
                    &Table::read(&got_path),
                    Compare {
                        keys,
                        tolerance,
                        same_order,
                        skip_diagonal: false,
                    },
                )
                .into_iter()
                .map(|p| format!("{name}/{p}")),
            );
        }
    }
    assert_no_problems("paper predictions vs the toolkit", &problems);
}
