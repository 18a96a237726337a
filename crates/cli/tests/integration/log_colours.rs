//! Logs carry no ANSI colour codes when stderr is not a terminal. Needs the annotations
//! (`IMAGENETX_ANNOTATIONS`, default `<workspace>/.cache/annotations`; `just setup` fetches
//! them).

use crate::parity_util;
use parity_util::{annotations_dir, imagenetx, run_imagenetx};

/// A warning written to a pipe (a file, a CI log) carries no ANSI colour codes, with or
/// without `NO_COLOR`.
#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("one_row.csv");
    // One annotated image of 50,000: the others have no prediction, which is a warning.
    std::fs::write(
        &csv,
        "file_name,predicted_class,predicted_probability\nILSVRC2012_val_00000001.JPEG,65,0.9\n",
    )
    .expect("write predictions");
    for no_color in [false, true] {
        let annotations = annotations_dir();
        let args: Vec<&std::ffi::OsStr> = vec![
            "analyze".as_ref(),
            csv.as_os_str(),
            "--annotations".as_ref(),
            annotations.as_os_str(),
            "--bootstrap".as_ref(),
            "0".as_ref(),
            "--log".as_ref(),
            "info".as_ref(),
        ];
        let out = if no_color {
            std::process::Command::new(imagenetx())
                .args(&args)
                .env("NO_COLOR", "1")
                .output()
                .expect("run imagenetx")
        } else {
            run_imagenetx(&args)
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("WARN") && stderr.contains("have no prediction"),
            "expected a warning: {stderr}"
        );
        assert!(
            !stderr.contains("\x1b["),
            "colour codes in a piped log (NO_COLOR {no_color}): {stderr:?}"
        );
    }
}
