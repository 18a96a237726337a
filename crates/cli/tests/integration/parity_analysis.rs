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

use crate::parity_util;

use std::collections::HashMap;
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
    let stderr = String::from_utf8_lossy(&output.stderr);
    let command = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    // `analyze` exits 0 when done (1 is for skipped inputs, which it has none of: an image
    // without a prediction is not skipped but warned about, below).
    assert_eq!(
        output.status.code(),
        Some(0),
        "imagenetx {command}\n--- stderr ---\n{stderr}"
    );
    // The one model with rows left out is `missing_rows` (val only): it must be named with
    // the number of annotated images of this selection that it lacks, and no other model.
    let warned: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("annotated images have no prediction"))
        .collect();
    if c.partition == "train" {
        assert!(warned.is_empty(), "imagenetx {command}: {warned:?}");
    } else {
        assert_eq!(warned.len(), 1, "imagenetx {command}: {warned:?}");
        let present: std::collections::HashSet<String> =
            Table::read(&fx.val.join("missing_rows.csv"))
                .rows
                .into_iter()
                .map(|r| r[0].clone())
                .collect();
        let names = annotated_names(c.partition, c.factors, c.keep_prototypes);
        let missing = names.iter().filter(|n| !present.contains(*n)).count();
        assert!(
            missing > 1000,
            "the generator leaves ~5% out, left {missing}"
        );
        let want = format!(
            "missing_rows: {missing} of {} annotated images",
            names.len()
        );
        // --skip-empty-real leaves images out before: the counts are of the rest.
        let want = if c.skip_empty_real {
            "missing_rows: ".to_string()
        } else {
            want
        };
        assert!(
            warned[0].contains(&want),
            "imagenetx {command}: expected {want:?} in {:?}",
            warned[0]
        );
    }
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

/// One annotated image of a selection, read straight from the annotation files.
struct Annotated {
    file_name: String,
    class: usize,
    /// Flags in the order of `factors` passed to [`read_selection`].
    factors: Vec<bool>,
}

/// The images of `imagenet_x_<partition>_<factors>_factor.jsonl`, prototypes left out unless
/// kept, each with its flags for `factor_names`.
fn read_selection(
    partition: &str,
    factors: &str,
    keep_prototypes: bool,
    factor_names: &[String],
) -> Vec<Annotated> {
    let names: std::collections::HashSet<String> =
        annotated_names(partition, factors, keep_prototypes)
            .into_iter()
            .collect();
    let path = annotations_dir().join(format!("imagenet_x_{partition}_{factors}_factor.jsonl"));
    let text = std::fs::read_to_string(&path).expect("annotations");
    let images: Vec<Annotated> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            Annotated {
                file_name: row["file_name"].as_str().expect("file_name").to_string(),
                class: row["class"].as_u64().expect("class") as usize,
                factors: factor_names
                    .iter()
                    .map(|f| {
                        row.get(f)
                            .and_then(serde_json::Value::as_u64)
                            .unwrap_or_else(|| panic!("{}: no factor {f}", path.display()))
                            > 0
                    })
                    .collect(),
            }
        })
        .filter(|a| names.contains(&a.file_name))
        .collect();
    assert_eq!(images.len(), names.len(), "{}: names", path.display());
    images
}

/// Model name (file stem) -> file_name -> predicted_class, for every CSV in `folder`.
fn read_models(folder: &Path) -> std::collections::BTreeMap<String, HashMap<String, usize>> {
    let mut models = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(folder).expect("predictions folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "csv") {
            continue;
        }
        let table = Table::read(&path);
        let (name, class) = (
            table.column("file_name").expect("file_name"),
            table.column("predicted_class").expect("predicted_class"),
        );
        let rows = table
            .rows
            .iter()
            .map(|r| (r[name].clone(), r[class].parse().expect("class")))
            .collect();
        let stem = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        models.insert(stem, rows);
    }
    assert!(
        models.len() >= 2,
        "{}: {:?}",
        folder.display(),
        models.keys()
    );
    models
}

/// The toolkit's one accident that the reference repairs (`fill_zero_correct` in
/// python/parity_analysis.py): a group (model, or model x metaclass) with no correct
/// prediction gets NaN for every factor instead of 0. The reference counts the cells it
/// fills per configuration (`zero_correct_cells_filled`); this recounts them from the
/// prediction files and the annotation files alone: for each group without a correct
/// prediction, the factors that have at least one image in it. Only the factor and metaclass
/// *names* come from the reference tables (the toolkit's vocabularies).
#[test]
fn reference_zero_correct_fills_match_the_data() {
    let fx = fixture();
    let mut filled: HashMap<String, u64> = HashMap::new();
    for n in &fx.notes {
        let map = n
            .get("zero_correct_cells_filled")
            .and_then(|v| v.as_object())
            .expect("notes.json: no zero_correct_cells_filled");
        for (k, v) in map {
            filled.insert(k.clone(), v.as_u64().expect("a count"));
        }
    }
    let ann = annotations_dir();
    // class -> metaclass name, "other" outside the toolkit's METACLASSES (utils.to_metaclass).
    let mapping = Table::read(&ann.join("imagenet_1k_classes_to_100_metaclasses.csv"));
    let name_col = mapping.column("name").expect("name");
    let real: Vec<Vec<usize>> = serde_json::from_str(
        &std::fs::read_to_string(ann.join("imagenet_real_labels.jsonl")).expect("ReaL labels"),
    )
    .expect("ReaL labels JSON");
    let val_index = |file: &str| -> usize {
        file.strip_prefix("ILSVRC2012_val_")
            .and_then(|r| r.strip_suffix(".JPEG"))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("not a val image: {file}"))
            - 1
    };
    let val_models = read_models(&fx.val);
    let train_models = read_models(&fx.train);
    let mut problems = Vec::new();
    let mut total = 0;
    for c in CONFIGS {
        let reference = fx.reference(c.name);
        let header = Table::read(&reference.join("accuracies_per_factor.csv")).header;
        let factor_names: Vec<String> = header[1..]
            .iter()
            .filter(|h| !["worst_factor", "average", "worst_100_classes"].contains(&h.as_str()))
            .cloned()
            .collect();
        assert_eq!(factor_names.len(), 16, "{}: {header:?}", c.name);
        let metaclasses: std::collections::BTreeSet<String> =
            Table::read(&reference.join("accuracies_per_factor_metaclass.csv"))
                .rows
                .iter()
                .map(|r| r[1].clone())
                .collect();
        let metaclass_of: Vec<String> = mapping
            .rows
            .iter()
            .map(|r| {
                if metaclasses.contains(&r[name_col]) {
                    r[name_col].clone()
                } else {
                    "other".to_string()
                }
            })
            .collect();
        let mut images = read_selection(c.partition, c.factors, c.keep_prototypes, &factor_names);
        if c.skip_empty_real {
            images.retain(|a| !real[val_index(&a.file_name)].is_empty());
        }
        let mut models: Vec<(String, HashMap<String, usize>)> = if c.partition == "train" {
            &train_models
        } else {
            &val_models
        }
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
        if c.human {
            let human = images
                .iter()
                .map(|a| (a.file_name.clone(), a.class))
                .collect();
            models.push(("human".into(), human));
        }
        // group -> (correct, images per factor)
        let (mut by_model, mut by_metaclass) = (0u64, 0u64);
        for (model, predictions) in &models {
            let mut groups: HashMap<Option<&str>, (u64, Vec<u64>)> = HashMap::new();
            for a in &images {
                let Some(&predicted) = predictions.get(&a.file_name) else {
                    continue;
                };
                let correct = match c.error {
                    "class" => predicted == a.class,
                    "metaclass" => metaclass_of[predicted] == metaclass_of[a.class],
                    "real-class" => real[val_index(&a.file_name)].contains(&predicted),
                    other => panic!("error type {other}"),
                };
                for key in [None, Some(metaclass_of[a.class].as_str())] {
                    let g = groups.entry(key).or_insert_with(|| (0, vec![0; 16]));
                    g.0 += u64::from(correct);
                    for (n, &flag) in g.1.iter_mut().zip(&a.factors) {
                        *n += u64::from(flag);
                    }
                }
            }
            assert!(
                groups.contains_key(&None),
                "{}: {model} has no rows",
                c.name
            );
            for (key, (correct, per_factor)) in &groups {
                if *correct == 0 {
                    let cells = per_factor.iter().filter(|&&n| n > 0).count() as u64;
                    match key {
                        None => by_model += cells,
                        Some(_) => by_metaclass += cells,
                    }
                }
            }
        }
        for (name, want) in [
            (c.name.to_string(), by_model),
            (format!("{}/metaclass", c.name), by_metaclass),
        ] {
            total += want;
            match filled.get(&name) {
                None => problems.push(format!("notes: no zero_correct_cells_filled for {name}")),
                Some(&got) if got != want => problems.push(format!(
                    "{name}: the reference filled {got} cells, the data has {want} (group without a correct prediction x factor with images)"
                )),
                Some(_) => println!("{name}: {want} cells filled"),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The `zero_correct` model (never right) guarantees the adjustment is exercised.
    assert!(
        total >= 16,
        "only {total} cells filled over all configurations"
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
