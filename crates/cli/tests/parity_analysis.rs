//! Parity of `imagenetx analyze` and `imagenetx annotations` with the ImageNet-X toolkit
//! (PyPI `imagenet-x` 0.0.7, run from the venv of `python/requirements.txt`).
//!
//! `python/parity_analysis.py generate` writes seeded synthetic predictions (a random model, a
//! near-perfect one, a calibrated one, one with rows missing, one on the ECE bin edges, one
//! never right) into a temp folder; `python/parity_analysis.py reference` runs the toolkit's
//! own functions on them for every configuration below; the binary runs on the same files and
//! every cell of every table must agree: accuracies, metaclass accuracies, error ratios and
//! prevalence shifts to 1e-12, calibration errors to 1e-9, undefined cells empty on both sides.
//!
//! Needs `just setup venv` (or IMAGENETX_VENV / IMAGENETX_ANNOTATIONS); fails without.

mod parity_util;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use parity_util::{
    Compare, Table, annotations_dir, assert_no_problems, check_output, compare_tables,
    python_command, run_imagenetx, venv_python,
};

/// One `analyze` configuration, run by both sides.
struct Config {
    name: &'static str,
    partition: &'static str,
    factors: &'static str,
    error: &'static str,
    keep_prototypes: bool,
    human: bool,
    skip_empty_real: bool,
}

impl Config {
    const fn val(name: &'static str, factors: &'static str, error: &'static str) -> Config {
        Config {
            name,
            partition: "val",
            factors,
            error,
            keep_prototypes: false,
            human: false,
            skip_empty_real: false,
        }
    }

    /// What the toolkit's merged frame depends on.
    fn group(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.partition, self.factors, self.keep_prototypes, self.human
        )
    }

    /// `NAME=key:value,...` for `parity_analysis.py reference --config`.
    fn reference_spec(&self) -> String {
        format!(
            "{}=partition:{},factors:{},error:{},prototypes:{},human:{},skip_empty_real:{}",
            self.name,
            self.partition,
            self.factors,
            self.error,
            if self.keep_prototypes {
                "keep"
            } else {
                "filter"
            },
            u8::from(self.human),
            u8::from(self.skip_empty_real),
        )
    }
}

const CONFIGS: &[Config] = &[
    Config::val("class_top", "top", "class"),
    Config::val("class_multi", "multi", "class"),
    Config::val("metaclass_top", "top", "metaclass"),
    Config::val("metaclass_multi", "multi", "metaclass"),
    Config::val("real_top", "top", "real-class"),
    Config::val("real_multi", "multi", "real-class"),
    Config {
        keep_prototypes: true,
        ..Config::val("keep_prototypes_class_top", "top", "class")
    },
    Config {
        keep_prototypes: true,
        ..Config::val("keep_prototypes_metaclass_multi", "multi", "metaclass")
    },
    Config {
        human: true,
        ..Config::val("human_class_multi", "multi", "class")
    },
    Config {
        human: true,
        ..Config::val("human_real_top", "top", "real-class")
    },
    Config {
        skip_empty_real: true,
        ..Config::val("skip_empty_real_top", "top", "real-class")
    },
    Config {
        partition: "train",
        ..Config::val("train_class_top", "top", "class")
    },
    Config {
        partition: "train",
        human: true,
        ..Config::val("train_metaclass_multi", "multi", "metaclass")
    },
];

/// One `annotations` configuration.
struct AnnotationsConfig {
    name: &'static str,
    partition: &'static str,
    factors: &'static str,
    keep_prototypes: bool,
}

const ANNOTATION_CONFIGS: &[AnnotationsConfig] = &[
    AnnotationsConfig {
        name: "annotations_val_top",
        partition: "val",
        factors: "top",
        keep_prototypes: false,
    },
    AnnotationsConfig {
        name: "annotations_val_multi_keep",
        partition: "val",
        factors: "multi",
        keep_prototypes: true,
    },
    AnnotationsConfig {
        name: "annotations_train_multi",
        partition: "train",
        factors: "multi",
        keep_prototypes: false,
    },
];

const SEED: &str = "20221212";

/// The generated predictions and the reference tables, made once per test process.
struct Fixture {
    _dir: tempfile::TempDir,
    val: PathBuf,
    train: PathBuf,
    /// Reference roots; each configuration's tables are in `<root>/<name>/`.
    reference_roots: Vec<PathBuf>,
    notes: Vec<serde_json::Value>,
}

impl Fixture {
    fn reference(&self, name: &str) -> PathBuf {
        self.reference_roots
            .iter()
            .map(|r| r.join(name))
            .find(|p| p.is_dir())
            .unwrap_or_else(|| panic!("no reference tables for {name}"))
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Result<Fixture, String>> = OnceLock::new();
    // Checked outside the cell so that a missing set-up fails every test with its message.
    venv_python();
    annotations_dir();
    match FIXTURE.get_or_init(build_fixture) {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    }
}

fn build_fixture() -> Result<Fixture, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let annotations = annotations_dir();
    let ann = annotations
        .to_str()
        .ok_or("annotations path is not UTF-8")?;
    let val = dir.path().join("val");
    let train = dir.path().join("train");
    let (val_s, train_s) = (val.to_str().unwrap_or(""), train.to_str().unwrap_or(""));

    let gen_val = python_command(&[
        "generate",
        "--out",
        val_s,
        "--annotations",
        ann,
        "--seed",
        SEED,
    ])
    .stderr(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn();
    let gen_train = python_command(&[
        "generate",
        "--out",
        train_s,
        "--annotations",
        ann,
        "--partition",
        "train",
        "--seed",
        SEED,
    ])
    .output();
    check_output("parity_analysis.py generate --partition train", gen_train)?;
    check_output(
        "parity_analysis.py generate",
        gen_val.and_then(|c| c.wait_with_output()),
    )?;

    // Two reference processes (the toolkit is single-threaded), about equal work each.
    let roots = vec![dir.path().join("ref_a"), dir.path().join("ref_b")];
    let mut children = Vec::new();
    for (part, root) in roots.iter().enumerate() {
        let mut args: Vec<String> = vec![
            "reference".into(),
            "--annotations".into(),
            ann.into(),
            "--preds".into(),
            val_s.into(),
            "--train-preds".into(),
            train_s.into(),
            "--out".into(),
            root.to_string_lossy().into_owned(),
        ];
        if part == 0 {
            args.push("--check-loader".into());
        }
        // Configurations with the same selection share the toolkit's merged frame: keep
        // each such group in one process, groups alternating between the two.
        let mut groups: Vec<String> = Vec::new();
        for c in CONFIGS {
            let g = c.group();
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        for c in CONFIGS {
            let g = groups.iter().position(|g| *g == c.group()).unwrap_or(0);
            if g % 2 == part {
                args.push("--config".into());
                args.push(c.reference_spec());
            }
        }
        for (i, c) in ANNOTATION_CONFIGS.iter().enumerate() {
            if i % 2 != part {
                args.push("--annotations-config".into());
                args.push(format!(
                    "{}=partition:{},factors:{},prototypes:{}",
                    c.name,
                    c.partition,
                    c.factors,
                    if c.keep_prototypes { "keep" } else { "filter" }
                ));
            }
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = python_command(&argv)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        children.push((child, args.join(" ")));
    }
    for (child, what) in children {
        check_output(
            &format!("parity_analysis.py {what}"),
            child.and_then(|c| c.wait_with_output()),
        )?;
    }
    let mut notes = Vec::new();
    for root in &roots {
        let path = root.join("notes.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        notes.push(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    Ok(Fixture {
        _dir: dir,
        val,
        train,
        reference_roots: roots,
        notes,
    })
}

fn config(name: &str) -> &'static Config {
    CONFIGS
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no configuration {name}"))
}

/// Runs `imagenetx analyze` for a configuration into a fresh folder.
fn run_analyze(fx: &Fixture, c: &Config, out: &Path) {
    let preds = if c.partition == "train" {
        &fx.train
    } else {
        &fx.val
    };
    let mut args: Vec<std::ffi::OsString> = vec![
        "analyze".into(),
        preds.into(),
        "--annotations".into(),
        annotations_dir().into(),
        "--partition".into(),
        c.partition.into(),
        "--factors".into(),
        c.factors.into(),
        "--error-type".into(),
        c.error.into(),
        "--out".into(),
        out.into(),
    ];
    if c.keep_prototypes {
        args.push("--keep-prototypes".into());
    }
    if c.human {
        args.push("--with-human".into());
    }
    if c.skip_empty_real {
        args.push("--skip-empty-real".into());
    }
    let output = run_imagenetx(&args);
    // 1 = done, some inputs skipped: `missing_rows` lacks images, which may count as that.
    let code = output.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "imagenetx {} exited with {:?}\n--- stderr ---\n{}",
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        code,
        String::from_utf8_lossy(&output.stderr)
    );
}

const MODEL: &[&str] = &["model"];
const MODEL_METACLASS: &[&str] = &["model", "metaclass"];

/// Compares every table of one `analyze` configuration with the reference.
fn check_config(name: &str) {
    let fx = fixture();
    let c = config(name);
    let reference = fx.reference(name);
    let out = tempfile::tempdir().expect("temp dir");
    run_analyze(fx, c, out.path());

    let mut problems = Vec::new();
    let mut compare = |file: &str, keys: &'static [&'static str], tolerance: f64, same_order| {
        let expected = Table::read(&reference.join(file));
        let got_path = out.path().join(file);
        if !got_path.is_file() {
            problems.push(format!("{file}: not written"));
            return;
        }
        let got = Table::read(&got_path);
        problems.extend(compare_tables(
            &expected,
            &got,
            Compare {
                keys,
                tolerance,
                same_order,
                skip_diagonal: false,
            },
        ));
    };
    compare("accuracies_per_factor.csv", MODEL, 1e-12, true);
    compare(
        "accuracies_per_factor_metaclass.csv",
        MODEL_METACLASS,
        1e-12,
        true,
    );
    compare("error_ratios.csv", MODEL, 1e-12, false);
    compare("calibration.csv", MODEL, 1e-9, false);
    if !c.skip_empty_real {
        compare("prevalence_shift.csv", MODEL, 1e-12, false);
        compare(
            "prevalence_shift_metaclass.csv",
            MODEL_METACLASS,
            1e-12,
            false,
        );
    }

    // summary.json: valid JSON with a `models` array, one entry per model.
    let expected_models = Table::read(&reference.join("accuracies_per_factor.csv"))
        .rows
        .len();
    match std::fs::read_to_string(out.path().join("summary.json")) {
        Err(e) => problems.push(format!("summary.json: {e}")),
        Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Err(e) => problems.push(format!("summary.json: not JSON: {e}")),
            Ok(v) => match v.get("models").and_then(|m| m.as_array()) {
                None => problems.push("summary.json: no `models` array".into()),
                Some(m) if m.len() != expected_models => problems.push(format!(
                    "summary.json: `models` has {} entries, expected {expected_models}",
                    m.len()
                )),
                Some(_) => {}
            },
        },
    }
    assert_no_problems(
        &format!("analyze {} (args: {})", name, c.reference_spec()),
        &problems,
    );
}

#[test]
fn class_top() {
    check_config("class_top");
}

#[test]
fn class_multi() {
    check_config("class_multi");
}

#[test]
fn metaclass_top() {
    check_config("metaclass_top");
}

#[test]
fn metaclass_multi() {
    check_config("metaclass_multi");
}

#[test]
fn real_class_top() {
    check_config("real_top");
}

#[test]
fn real_class_multi() {
    check_config("real_multi");
}

#[test]
fn keep_prototypes_class_top() {
    check_config("keep_prototypes_class_top");
}

#[test]
fn keep_prototypes_metaclass_multi() {
    check_config("keep_prototypes_metaclass_multi");
}

#[test]
fn with_human_class_multi() {
    check_config("human_class_multi");
}

#[test]
fn with_human_real_class_top() {
    check_config("human_real_top");
}

/// `--skip-empty-real` has no toolkit switch: the reference drops the images with an empty
/// ReaL list from the toolkit's augmented frame and runs the toolkit's functions on the rest.
#[test]
fn skip_empty_real_top() {
    check_config("skip_empty_real_top");
}

#[test]
fn train_class_top() {
    check_config("train_class_top");
}

#[test]
fn train_metaclass_multi_with_human() {
    check_config("train_metaclass_multi");
}

/// The reference side did its own checks: the toolkit's loader reads the one file in its
/// required order exactly as the reference loader does, and pandas parsed every probability
/// to the correctly rounded value. Prints how often the toolkit's quicksort tie order in
/// `worst_k_class_acc` changes `worst_100_classes` (the tables use the stable order).
#[test]
fn reference_self_checks() {
    let fx = fixture();
    let readable: Vec<String> = fx
        .notes
        .iter()
        .filter_map(|n| n.get("loader").and_then(|v| v.as_object()))
        .flat_map(|folders| folders.values())
        .filter_map(|f| f.get("toolkit_loader_reads").and_then(|v| v.as_array()))
        .flatten()
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect();
    assert!(
        readable.iter().any(|m| m == "zero_correct"),
        "the loader check did not run, or the toolkit's load_model_predictions did not read zero_correct.csv: {readable:?}"
    );
    let mut differing = 0;
    let mut total = 0;
    for n in &fx.notes {
        if let Some(map) = n
            .get("worst_100_tie_order_differs")
            .and_then(|v| v.as_object())
        {
            for (config, models) in map {
                total += 1;
                if let Some(models) = models.as_object() {
                    for (model, d) in models {
                        differing += 1;
                        println!("worst_100_classes tie order: {config}/{model}: {d}");
                    }
                }
            }
        }
    }
    println!(
        "worst_100_classes: the toolkit's quicksort order differs from the stable order in {differing} model cell(s) over {total} configurations"
    );
    assert_eq!(
        total,
        CONFIGS.len(),
        "tie notes missing for some configurations"
    );
}

fn check_annotations(name: &str) {
    let fx = fixture();
    let c = ANNOTATION_CONFIGS
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no configuration {name}"));
    let reference = fx.reference(name);
    let out = tempfile::tempdir().expect("temp dir");
    let mut args: Vec<std::ffi::OsString> = vec![
        "annotations".into(),
        "--annotations".into(),
        annotations_dir().into(),
        "--partition".into(),
        c.partition.into(),
        "--factors".into(),
        c.factors.into(),
        "--out".into(),
        out.path().into(),
    ];
    if c.keep_prototypes {
        args.push("--keep-prototypes".into());
    }
    parity_util::run_imagenetx_ok(&args);

    let mut problems = Vec::new();
    for (file, keys, tolerance, same_order, diag) in [
        ("factor_counts.csv", &["metaclass"][..], 0.0, true, false),
        (
            "metaclass_prevalence_shift.csv",
            &["metaclass"][..],
            1e-12,
            false,
            false,
        ),
        ("factor_correlation.csv", &["factor"][..], 1e-12, true, true),
    ] {
        let got_path = out.path().join(file);
        if !got_path.is_file() {
            problems.push(format!("{file}: not written"));
            continue;
        }
        let got = Table::read(&got_path);
        let expected = Table::read(&reference.join(file));
        problems.extend(compare_tables(
            &expected,
            &got,
            Compare {
                keys,
                tolerance,
                same_order,
                skip_diagonal: diag,
            },
        ));
        if diag {
            // The toolkit's squareform leaves 0 on the diagonal; ours holds 1.
            for row in &got.rows {
                if let Some(i) = got.column(&row[0])
                    && row[i].parse::<f64>().ok() != Some(1.0)
                {
                    problems.push(format!(
                        "{file}: diagonal {}: expected 1, got {:?}",
                        row[0], row[i]
                    ));
                }
            }
        }
    }
    assert_no_problems(&format!("annotations {name}"), &problems);
}

#[test]
fn annotations_val_top() {
    check_annotations("annotations_val_top");
}

#[test]
fn annotations_val_multi_keep_prototypes() {
    check_annotations("annotations_val_multi_keep");
}

#[test]
fn annotations_train_multi() {
    check_annotations("annotations_train_multi");
}

/// Annotated file names of a selection, read straight from the annotation files.
fn annotated_names(partition: &str, factors: &str, keep_prototypes: bool) -> Vec<String> {
    let dir = annotations_dir();
    let text =
        std::fs::read_to_string(dir.join(format!("imagenet_x_{partition}_{factors}_factor.jsonl")))
            .expect("annotations");
    let prototypes: std::collections::HashSet<String> = if keep_prototypes {
        Default::default()
    } else {
        std::fs::read_to_string(dir.join("prototypical_paths.csv"))
            .expect("prototypes")
            .lines()
            .skip(1)
            .map(|l| l.trim().to_string())
            .collect()
    };
    text.lines()
        .filter_map(|line| {
            let start = line.find("\"file_name\":\"")? + "\"file_name\":\"".len();
            let end = start + line[start..].find('"')?;
            Some(line[start..end].to_string())
        })
        .filter(|n| !prototypes.contains(n))
        .collect()
}

#[test]
fn strict_names_the_missing_count() {
    let fx = fixture();
    let file = fx.val.join("missing_rows.csv");
    let present: std::collections::HashSet<String> = std::fs::read_to_string(&file)
        .expect("missing_rows.csv")
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next().map(str::to_string))
        .collect();
    let missing = annotated_names("val", "top", false)
        .iter()
        .filter(|n| !present.contains(*n))
        .count();
    assert!(
        missing > 1000,
        "the generator should leave ~5% out, left {missing}"
    );

    let out = tempfile::tempdir().expect("temp dir");
    let output = run_imagenetx(&[
        "analyze".as_ref(),
        file.as_os_str(),
        "--annotations".as_ref(),
        annotations_dir().as_os_str(),
        "--strict".as_ref(),
        "--out".as_ref(),
        out.path().as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "--strict with {missing} annotated images missing should be fatal\n--- stderr ---\n{stderr}"
    );
    assert!(
        stderr.contains(&missing.to_string()) && stderr.contains("missing_rows.csv"),
        "stderr should name the file and the {missing} missing images (annotated, prototypes filtered)\n--- stderr ---\n{stderr}"
    );

    // The complete files pass --strict.
    let ok = run_imagenetx(&[
        "analyze".as_ref(),
        fx.val.join("near_perfect.csv").as_os_str(),
        "--annotations".as_ref(),
        annotations_dir().as_os_str(),
        "--strict".as_ref(),
        "--out".as_ref(),
        out.path().join("ok").as_os_str(),
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "--strict on a complete file\n--- stderr ---\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// Writes `name` with a valid header and rows, with `bad` spliced in at 1-based line `line`,
/// runs `analyze` on it and requires exit code 2 and `name:line` on stderr.
fn bad_input(name: &str, header: &str, bad: &str, line: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    let mut lines = vec![header.to_string()];
    for i in 1..=6 {
        lines.push(format!("ILSVRC2012_val_{i:08}.JPEG,{},0.5", i * 7));
    }
    lines.insert(line - 1, bad.to_string());
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");
    let output = run_imagenetx(&[
        "analyze".as_ref(),
        path.as_os_str(),
        "--annotations".as_ref(),
        annotations_dir().as_os_str(),
        "--out".as_ref(),
        dir.path().join("out").as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let want = format!("{name}:{line}");
    assert_eq!(
        output.status.code(),
        Some(2),
        "{name}: bad line {line} ({bad:?}) should be fatal\n--- stderr ---\n{stderr}"
    );
    assert!(
        stderr.contains(&want),
        "{name}: stderr should name {want}\n--- stderr ---\n{stderr}"
    );
}

const HEADER: &str = "file_name,predicted_class,predicted_probability";

#[test]
fn bad_input_duplicate_row() {
    // Line 2 is ILSVRC2012_val_00000001; line 5 repeats it.
    bad_input("dup.csv", HEADER, "ILSVRC2012_val_00000001.JPEG,3,0.25", 5);
}

#[test]
fn bad_input_class_1000() {
    bad_input(
        "class1000.csv",
        HEADER,
        "ILSVRC2012_val_00000100.JPEG,1000,0.5",
        3,
    );
}

#[test]
fn bad_input_negative_class() {
    bad_input(
        "class-1.csv",
        HEADER,
        "ILSVRC2012_val_00000100.JPEG,-1,0.5",
        4,
    );
}

#[test]
fn bad_input_nan_probability() {
    bad_input("nan.csv", HEADER, "ILSVRC2012_val_00000100.JPEG,5,NaN", 3);
}

#[test]
fn bad_input_probability_above_one() {
    bad_input("p15.csv", HEADER, "ILSVRC2012_val_00000100.JPEG,5,1.5", 6);
}

#[test]
fn bad_input_negative_probability() {
    bad_input(
        "pneg.csv",
        HEADER,
        "ILSVRC2012_val_00000100.JPEG,5,-0.25",
        2,
    );
}

#[test]
fn bad_input_missing_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nocol.csv");
    std::fs::write(
        &path,
        "file_name,predicted_class\nILSVRC2012_val_00000001.JPEG,65\n",
    )
    .expect("write");
    let output = run_imagenetx(&[
        "analyze".as_ref(),
        path.as_os_str(),
        "--annotations".as_ref(),
        annotations_dir().as_os_str(),
        "--out".as_ref(),
        dir.path().join("out").as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "--- stderr ---\n{stderr}");
    assert!(
        stderr.contains("nocol.csv:1") && stderr.contains("predicted_probability"),
        "stderr should name nocol.csv:1 and the missing column\n--- stderr ---\n{stderr}"
    );
}
