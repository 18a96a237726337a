//! The library and the command cannot disagree: `examples/embed_evaluate` (a 30-line program
//! on the `imagenetx` crate) and `imagenetx evaluate`, on the fixture photos with
//! EfficientNet-Lite0 and every good fixture model, write byte-identical predictions CSVs;
//! `examples/embed_analyze` on that CSV writes the factor tables `evaluate --analysis-out`
//! writes, byte for byte; the error ratios the example prints are the tables' numbers.
//!
//! The examples are built by `just test` (`cargo build --release -p embed_evaluate -p
//! embed_analyze`) next to this test's binary; the test fails, saying so, when they are not.

use std::path::{Path, PathBuf};
use std::process::Command;

use imagenetx_test_support::{binary, run_ok as run, temp_dir, workspace_root as root};

/// An example binary of the workspace, in the profile folder this test runs from.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = profile.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the examples first (`cargo build --release -p embed_evaluate -p embed_analyze`; `just test` does)",
        path.display()
    );
    path
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn the_library_example_and_the_command_give_identical_predictions_and_tables() {
    let photos = root().join("fixtures/photos");
    let annotations = photos.join("annotations.jsonl");
    let mut models: Vec<PathBuf> = [
        "nchw_dynamic",
        "nchw_batch1",
        "nhwc",
        "classes1001",
        "softmax",
        "two_outputs",
        "input160",
        "float16",
    ]
    .iter()
    .map(|m| root().join(format!("fixtures/models/{m}.onnx")))
    .collect();
    let lite0 = root().join("onnx_models/efficientnet_lite0.onnx");
    assert!(
        lite0.is_file(),
        "{} is missing: run `just model-lite0`",
        lite0.display()
    );
    models.push(lite0);
    let tmp = temp_dir();
    for model in &models {
        let stem = model
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let dir = tmp.path().join(&stem);
        let cli_csv = dir.join("cli").join(format!("{stem}.csv"));
        let cli_tables = dir.join("cli-tables");
        run(Command::new(binary(env!("CARGO_BIN_EXE_imagenetx")))
            .arg("evaluate")
            .arg(model)
            .arg("--images")
            .arg(&photos)
            .arg("--image-annotations")
            .arg(&annotations)
            .arg("--out")
            .arg(&cli_csv)
            .arg("--analysis-out")
            .arg(&cli_tables)
            .args(["--quiet", "--no-cache"]));
        let lib_csv = dir.join("lib").join(format!("{stem}.csv"));
        std::fs::create_dir_all(lib_csv.parent().expect("folder")).expect("mkdir");
        let printed = run(Command::new(example("embed_evaluate"))
            .arg(model)
            .arg(&photos)
            .arg(&annotations)
            .arg(&lib_csv));
        assert!(
            read(&cli_csv) == read(&lib_csv),
            "{stem}: the example's predictions differ from the command's:\n--- imagenetx evaluate\n{}\n--- embed_evaluate\n{}",
            String::from_utf8_lossy(&read(&cli_csv)),
            String::from_utf8_lossy(&read(&lib_csv))
        );
        let lib_tables = dir.join("lib-tables");
        std::fs::create_dir_all(&lib_tables).expect("mkdir");
        run(Command::new(example("embed_analyze"))
            .arg(&lib_tables)
            .arg(&lib_csv)
            .arg("--image-annotations")
            .arg(&annotations));
        for table in [
            "accuracies_per_factor.csv",
            "error_ratios.csv",
            "accuracies_per_factor_metaclass.csv",
        ] {
            assert!(
                read(&cli_tables.join(table)) == read(&lib_tables.join(table)),
                "{stem}: {table} differs between `evaluate --analysis-out` and embed_analyze"
            );
        }
        // The printed error ratios are the table's: `factor Some(x)` / `factor None` lines.
        let printed = String::from_utf8(printed.stdout).expect("utf-8");
        let ratios = String::from_utf8(read(&cli_tables.join("error_ratios.csv"))).expect("utf-8");
        let header: Vec<&str> = ratios.lines().next().expect("header").split(',').collect();
        let values: Vec<&str> = ratios
            .lines()
            .nth(1)
            .expect("one model")
            .split(',')
            .collect();
        let mut compared = 0;
        for line in printed.lines().skip(1) {
            let (factor, value) = line.split_once(' ').expect("factor value");
            let value = value.trim();
            let Some(at) = header.iter().position(|h| *h == factor) else {
                panic!("{stem}: factor {factor} is not a column of error_ratios.csv: {header:?}");
            };
            let table = values[at];
            match value
                .strip_prefix("Some(")
                .and_then(|v| v.strip_suffix(')'))
            {
                Some(v) => {
                    let (v, t): (f64, f64) =
                        (v.parse().expect("number"), table.parse().expect("number"));
                    assert_eq!(v, t, "{stem}: {factor}: printed {v}, table {t}");
                }
                None => assert!(
                    table.is_empty() || table == "nan",
                    "{stem}: {factor}: printed None, table {table:?}"
                ),
            }
            compared += 1;
        }
        assert_eq!(compared, 16, "{stem}: 16 factors printed:\n{printed}");
    }
}
