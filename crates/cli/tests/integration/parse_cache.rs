//! The parse cache of the annotation files, end to end: `imagenetx analyze` gives the same
//! output files when it parses the annotations (`--no-cache`), when it stores their parsed
//! form, when it reads that back, and when the cached entry is damaged (it is then ignored and
//! rewritten). Uses the annotations `just setup` fetches.

use crate::parity_util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use parity_util::{annotations_dir, imagenetx};

/// A model right on two images in three, with probabilities that vary, over every annotated
/// validation image (names from the top-factor file).
fn write_predictions(annotations: &Path, out: &Path) {
    let text = std::fs::read_to_string(annotations.join("imagenet_x_val_top_factor.jsonl"))
        .expect("read annotations");
    let mut csv = String::from("file_name,predicted_class,predicted_probability\n");
    for (i, line) in text.lines().enumerate() {
        let row: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        let class = row["class"].as_u64().expect("class");
        let predicted = if i % 3 == 0 {
            (class + 7) % 1000
        } else {
            class
        };
        csv.push_str(&format!(
            "{},{predicted},{}\n",
            row["file_name"].as_str().expect("file_name"),
            (i % 97) as f64 / 96.0
        ));
    }
    std::fs::write(out, csv).expect("write predictions");
}

/// Runs `imagenetx analyze` with `cache` as `$IMAGENETX_CACHE`; returns the output files by
/// name, and stdout.
fn analyze(cache: &Path, predictions: &Path, out: &Path, extra: &[&str]) -> Vec<(String, String)> {
    analyze_logged(cache, predictions, out, extra).0
}

/// The debug log line of a cache hit (crates/dataset/src/annotations.rs).
const HIT: &str = "parsed records read from the cache";

/// [`analyze`], and its stderr (the debug log).
fn analyze_logged(
    cache: &Path,
    predictions: &Path,
    out: &Path,
    extra: &[&str],
) -> (Vec<(String, String)>, String) {
    let _ = std::fs::remove_dir_all(out);
    let output: Output = Command::new(imagenetx())
        .arg("analyze")
        .arg(predictions)
        .arg("--annotations")
        .arg(annotations_dir())
        .arg("--out")
        .arg(out)
        .args(["--bootstrap", "200"])
        .args(extra)
        .env("IMAGENETX_CACHE", cache)
        .env("RUST_LOG", "debug")
        .output()
        .expect("start imagenetx");
    assert!(
        output.status.success(),
        "imagenetx analyze {extra:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut files: Vec<(String, String)> = std::fs::read_dir(out)
        .expect("out folder")
        .map(|e| {
            let path = e.expect("entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).expect("read output"))
        })
        .collect();
    files.sort();
    files.push((
        "<stdout>".into(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ));
    (files, String::from_utf8_lossy(&output.stderr).into_owned())
}

const FACTORS: &str = "--factors";

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache.join("parsed"))
        .map(|d| d.map(|e| e.expect("entry").path()).collect())
        .unwrap_or_default();
    found.sort();
    found
}

#[test]
fn cached_parse_gives_the_same_results_and_survives_damage() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let cache = tmp.path().join("cache");
    let predictions = tmp.path().join("model.csv");
    write_predictions(&annotations_dir(), &predictions);
    let out = tmp.path().join("out");

    let parsed = analyze(
        &cache,
        &predictions,
        &out,
        &[FACTORS, "multi", "--no-cache"],
    );
    assert!(entries(&cache).is_empty(), "--no-cache wrote a cache entry");
    assert!(
        parsed.len() >= 8,
        "expected the analysis files, got {parsed:?}"
    );

    let stored = analyze(&cache, &predictions, &out, &[FACTORS, "multi"]);
    let written = entries(&cache);
    assert_eq!(
        written.len(),
        1,
        "one entry for the multi-factor file: {written:?}"
    );
    let entry = &written[0];
    let good = std::fs::read(entry).expect("read entry");
    assert!(good.len() > 1_000_000, "entry of {} bytes", good.len());

    let (hit, log) = analyze_logged(&cache, &predictions, &out, &[FACTORS, "multi"]);
    assert!(
        log.contains(HIT),
        "the second run did not read the cache:\n{log}"
    );
    assert_eq!(parsed, stored, "storing changed the results");
    assert_eq!(parsed, hit, "reading the cache changed the results");

    // Damaged entries: a flipped byte in the middle, then a truncation. Both are ignored,
    // the results stay the same and the entry is rewritten whole.
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    for damaged in [flipped, good[..good.len() / 3].to_vec()] {
        std::fs::write(entry, &damaged).expect("damage entry");
        let again = analyze(&cache, &predictions, &out, &[FACTORS, "multi"]);
        assert_eq!(parsed, again, "a damaged cache entry changed the results");
        assert_eq!(
            std::fs::read(entry).expect("read entry"),
            good,
            "the damaged entry was not rewritten"
        );
    }

    // An entry of a build whose parser differs (same release, another IMAGENETX_PARSER_HASH
    // from crates/dataset/build.rs) is not read: moved to such a name, it is a miss, and
    // the records are parsed and stored again under this build's name.
    let name = entry
        .file_name()
        .expect("entry name")
        .to_string_lossy()
        .into_owned();
    let parser = name
        .split('-')
        .find(|part| {
            part.len() == 17
                && part.starts_with('p')
                && part[1..].bytes().all(|b| b.is_ascii_hexdigit())
        })
        .unwrap_or_else(|| panic!("no parser hash in the entry name {name}"));
    let older = entry.with_file_name(name.replacen(parser, "p0123456789abcdef", 1));
    assert_ne!(&older, entry);
    std::fs::rename(entry, &older).expect("rename entry");
    let (again, log) = analyze_logged(&cache, &predictions, &out, &[FACTORS, "multi"]);
    assert!(
        !log.contains(HIT),
        "an entry under another parser hash was read:\n{log}"
    );
    assert_eq!(parsed, again, "the results changed");
    assert_eq!(entries(&cache), {
        let mut both = vec![entry.clone(), older.clone()];
        both.sort();
        both
    });
    std::fs::remove_file(&older).expect("remove");

    // Another annotation file (the top factors) gets its own entry.
    analyze(&cache, &predictions, &out, &[FACTORS, "top"]);
    assert_eq!(entries(&cache).len(), 2);
}

#[test]
fn an_unwritable_cache_only_costs_the_speed_up() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // A file where the cache folder should be: nothing can be stored under it.
    let cache = tmp.path().join("cache");
    std::fs::write(&cache, b"not a folder").expect("write file");
    let predictions = tmp.path().join("model.csv");
    write_predictions(&annotations_dir(), &predictions);
    let with = analyze(&cache, &predictions, &tmp.path().join("a"), &[]);
    let without = analyze(&cache, &predictions, &tmp.path().join("b"), &["--no-cache"]);
    assert_eq!(with, without);
}
