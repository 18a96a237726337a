//! ImageNet as distributed, on the real `imagenetx evaluate` binary: the same images in a
//! folder and in a flat tar, a tar with class folders, a tar of per-class tars, WebDataset
//! shards with `.cls` labels (given as a list, a brace range and a glob) and Hugging Face
//! parquet shards (`image{bytes,path}` + `label`, two row groups) must give a byte-identical
//! predictions CSV and the same run record counts. Resuming over a tar keeps every row.
//! Hostile archives (a truncated tar, a member that is not an image, a parquet without an
//! `image` column, a pattern matching nothing, `../x.JPEG`) end with a clear error, or with
//! the member skipped and named (exit 1), never a panic or a hang.
//!
//! The archives are written here with the `tar` and `parquet` crates; the expected output is
//! the folder run's, never the archive code's own.
//!
//! Needs ONNX Runtime (`just setup-ort`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use crate::parity_util::imagenetx;
use imagenetx_test_support::{text, workspace_root as root};

const PHOTOS: [&str; 5] = [
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "clock_motion.png",
];

fn model() -> PathBuf {
    imagenetx_test_support::fixture("models/nchw_dynamic.onnx")
}

/// `count` images (copies of the fixture photos), name → bytes, in name order.
fn images(count: usize, name: impl Fn(usize) -> String) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let photo = root()
                .join("fixtures/photos")
                .join(PHOTOS[i % PHOTOS.len()]);
            (name(i), std::fs::read(photo).expect("read photo"))
        })
        .collect()
}

fn val_name(i: usize) -> String {
    format!("ILSVRC2012_val_{:08}.JPEG", i + 1)
}

fn folder(dir: &Path, images: &[(String, Vec<u8>)]) -> PathBuf {
    let folder = dir.join("folder");
    std::fs::create_dir_all(&folder).expect("mkdir");
    for (name, bytes) in images {
        std::fs::write(folder.join(name), bytes).expect("write");
    }
    folder
}

/// A tar of `members` (name, bytes), in the order given.
fn tar_of(path: &Path, members: &[(String, Vec<u8>)]) {
    let mut builder = tar::Builder::new(std::fs::File::create(path).expect("create tar"));
    for (name, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, bytes.as_slice())
            .expect("append");
    }
    builder.into_inner().expect("finish tar");
}

/// A tar member named `name` without the path checks of `append_data` (for `../x.JPEG`).
fn raw_member(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(bytes);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// A Hugging Face-style parquet file: `image` (struct of `bytes`, `path`) and `label`, the
/// rows split over two row groups, snappy-compressed as pyarrow writes by default.
fn parquet_of(path: &Path, rows: &[(String, Vec<u8>, Option<i64>)], with_image: bool) {
    use parquet::basic::Compression;
    use parquet::column::writer::ColumnWriter;
    use parquet::data_type::ByteArray;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    let schema = if with_image {
        "message schema { optional group image { optional binary bytes; \
         optional binary path (STRING); } optional int64 label; }"
    } else {
        "message schema { optional binary picture; optional int64 label; }"
    };
    let schema = Arc::new(parquet::schema::parser::parse_message_type(schema).expect("schema"));
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let file = std::fs::File::create(path).expect("create parquet");
    let mut writer = SerializedFileWriter::new(file, schema, props).expect("writer");
    let half = rows.len().div_ceil(2);
    for group in [&rows[..half], &rows[half..]] {
        let mut rg = writer.next_row_group().expect("row group");
        let mut column = 0;
        while let Some(mut col) = rg.next_column().expect("column") {
            match col.untyped() {
                ColumnWriter::ByteArrayColumnWriter(w) => {
                    let values: Vec<ByteArray> = group
                        .iter()
                        .map(|(name, bytes, _)| {
                            if column == 0 {
                                ByteArray::from(bytes.clone())
                            } else {
                                ByteArray::from(format!("some/dir/{name}").as_str())
                            }
                        })
                        .collect();
                    let level = if with_image { 2 } else { 1 };
                    w.write_batch(&values, Some(&vec![level; group.len()]), None)
                        .expect("write");
                }
                ColumnWriter::Int64ColumnWriter(w) => {
                    let values: Vec<i64> = group.iter().filter_map(|r| r.2).collect();
                    let defs: Vec<i16> = group.iter().map(|r| i16::from(r.2.is_some())).collect();
                    w.write_batch(&values, Some(&defs), None).expect("write");
                }
                _ => unreachable!("the schema has byte arrays and an int64"),
            }
            col.close().expect("close column");
            column += 1;
        }
        rg.close().expect("close row group");
    }
    writer.close().expect("close parquet");
}

fn evaluate(images: &[&Path], out: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(imagenetx());
    cmd.arg("evaluate").arg(model()).arg("--images");
    cmd.args(images);
    cmd.arg("--out")
        .arg(out)
        .args([
            "--ep",
            "cpu",
            "--quiet",
            "--batch-size",
            "3",
            "--threads",
            "2",
        ])
        .args(extra)
        .env_remove("IMAGENETX_PAUSE_AT")
        .env_remove("IMAGENETX_THROTTLE_MS")
        .stdin(Stdio::null());
    cmd.output().expect("run imagenetx")
}

fn code(output: &Output) -> Option<i32> {
    output.status.code()
}

fn ok(output: &Output) {
    assert_eq!(code(output), Some(0), "stderr:\n{}", text(&output.stderr));
}

fn counts(csv: &Path) -> serde_json::Value {
    let record = csv.with_extension("run.json");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).expect("run record")).expect("json");
    json["counts"].clone()
}

/// Evaluates the folder and each source, requiring the same CSV bytes and counts.
fn same_as_folder(dir: &Path, folder: &Path, sources: &[(&str, Vec<PathBuf>)]) {
    let expected = dir.join("folder.csv");
    ok(&evaluate(&[folder], &expected, &[]));
    let want = std::fs::read(&expected).expect("folder csv");
    assert!(
        text(&want).lines().count() > 1,
        "the folder run predicted nothing"
    );
    for (what, paths) in sources {
        let out = dir.join(format!("{what}.csv"));
        let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let output = evaluate(&paths, &out, &[]);
        ok(&output);
        let got = std::fs::read(&out).expect("archive csv");
        assert!(
            got == want,
            "{what}: the predictions differ from the folder's\nfolder:\n{}\n{what}:\n{}",
            text(&want),
            text(&got)
        );
        assert_eq!(counts(&out), counts(&expected), "{what}: run record counts");
    }
}

#[test]
fn tars_flat_class_folders_and_per_class_tars_predict_as_the_folder() {
    let dir = imagenetx_test_support::temp_dir();
    let dir = dir.path();
    let flat = images(11, val_name);
    let folder_path = folder(dir, &flat);
    // The official validation tar: flat members, in an order that is not the names'.
    let mut shuffled = flat.clone();
    shuffled.reverse();
    tar_of(&dir.join("val.tar"), &shuffled);
    // Class folders: the same base names under WordNet-id folders.
    let wnids = ["n01440764", "n01443537", "n01484850"];
    let classed: Vec<(String, Vec<u8>)> = flat
        .iter()
        .enumerate()
        .map(|(i, (name, bytes))| (format!("{}/{name}", wnids[i % 3]), bytes.clone()))
        .collect();
    tar_of(&dir.join("classes.tar"), &classed);
    // A tar of per-class tars (the training tar's layout).
    let mut inner = Vec::new();
    for (k, wnid) in wnids.iter().enumerate() {
        let path = dir.join(format!("{wnid}.tar"));
        let members: Vec<(String, Vec<u8>)> = flat
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == k)
            .map(|(_, m)| m.clone())
            .collect();
        tar_of(&path, &members);
        inner.push((format!("{wnid}.tar"), std::fs::read(&path).expect("inner")));
    }
    tar_of(&dir.join("train_like.tar"), &inner);
    same_as_folder(
        dir,
        &folder_path,
        &[
            ("flat", vec![dir.join("val.tar")]),
            ("classes", vec![dir.join("classes.tar")]),
            ("nested", vec![dir.join("train_like.tar")]),
        ],
    );
    // Resume over a tar keeps every prediction, and the CSV stays the same.
    let out = dir.join("flat.csv");
    let first = std::fs::read(&out).expect("csv");
    let resumed = evaluate(&[&dir.join("val.tar")], &out, &["--resume"]);
    ok(&resumed);
    assert!(
        text(&resumed.stderr).contains("11 predictions kept, 0 images to predict"),
        "{}",
        text(&resumed.stderr)
    );
    assert_eq!(std::fs::read(&out).expect("csv"), first);
    // The archive rewritten (new mtime): its images are predicted again.
    let mtime = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(dir.join("val.tar"))
        .and_then(|f| f.set_modified(mtime))
        .expect("touch");
    let again = evaluate(&[&dir.join("val.tar")], &out, &["--resume"]);
    ok(&again);
    assert!(
        text(&again.stderr).contains("11 images changed"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(std::fs::read(&out).expect("csv"), first);
}

#[test]
fn webdataset_shards_as_list_range_and_glob_with_cls_labels() {
    let dir = imagenetx_test_support::temp_dir();
    let dir = dir.path();
    let samples = images(10, |i| format!("sample_{i:04}.jpg"));
    let folder_path = folder(dir, &samples);
    let shards = dir.join("shards");
    std::fs::create_dir_all(&shards).expect("mkdir");
    let mut paths = Vec::new();
    for (s, chunk) in samples.chunks(4).enumerate() {
        let mut members = Vec::new();
        for (name, bytes) in chunk {
            let key = name.trim_end_matches(".jpg");
            let class = key[7..].parse::<usize>().expect("index") * 7;
            members.push((name.clone(), bytes.clone()));
            members.push((format!("{key}.cls"), class.to_string().into_bytes()));
            members.push((format!("{key}.json"), b"{}".to_vec()));
        }
        let path = shards.join(format!("val-{s:06}.tar"));
        tar_of(&path, &members);
        paths.push(path);
    }
    let range = PathBuf::from(format!("{}/val-{{000000..000002}}.tar", shards.display()));
    let glob = PathBuf::from(format!("{}/*.tar", shards.display()));
    same_as_folder(
        dir,
        &folder_path,
        &[
            ("list", paths.clone()),
            ("range", vec![range]),
            ("glob", vec![glob]),
            ("shards folder", vec![shards.clone()]),
        ],
    );
    // The .cls labels are the images' labels: accuracy over all 10 (the folder has none).
    let output = evaluate(&[&paths[0], &paths[1], &paths[2]], &dir.join("l.csv"), &[]);
    ok(&output);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("/10) over the labelled images"), "{stdout}");
}

#[test]
fn parquet_shards_predict_as_the_folder_with_names_from_path() {
    let dir = imagenetx_test_support::temp_dir();
    let dir = dir.path();
    let flat = images(9, val_name);
    let folder_path = folder(dir, &flat);
    let rows: Vec<(String, Vec<u8>, Option<i64>)> = flat
        .iter()
        .enumerate()
        .map(|(i, (n, b))| (n.clone(), b.clone(), Some(i as i64 * 3)))
        .collect();
    parquet_of(&dir.join("val-00000-of-00002.parquet"), &rows[..5], true);
    parquet_of(&dir.join("val-00001-of-00002.parquet"), &rows[5..], true);
    let pattern = PathBuf::from(format!("{}/val-*-of-00002.parquet", dir.display()));
    same_as_folder(dir, &folder_path, &[("parquet", vec![pattern])]);
}

#[test]
fn hostile_archives_are_refused_or_skipped_with_the_reason() {
    let dir = imagenetx_test_support::temp_dir();
    let dir = dir.path();
    let flat = images(4, val_name);
    // A truncated tar: cut inside the last member's data.
    let full = dir.join("full.tar");
    tar_of(&full, &flat);
    let bytes = std::fs::read(&full).expect("tar");
    let last = flat.last().expect("images").1.len();
    let cut = dir.join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() - 1024 - last / 2]).expect("write");
    let output = evaluate(&[&cut], &dir.join("cut.csv"), &[]);
    assert_eq!(code(&output), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("ILSVRC2012_val_00000004.JPEG") && stderr.contains("truncated"),
        "{stderr}"
    );
    // Cut inside a header: a clear error naming the archive.
    let cut_header = dir.join("cut_header.tar");
    std::fs::write(
        &cut_header,
        &bytes[..512 + flat[0].1.len().div_ceil(512) * 512 + 100],
    )
    .expect("write");
    let output = evaluate(&[&cut_header], &dir.join("ch.csv"), &[]);
    let stderr = text(&output.stderr);
    assert!(
        matches!(code(&output), Some(1) | Some(2)) && stderr.contains("cut_header.tar"),
        "{stderr}"
    );
    // A member that is not an image, and a member named `../x.JPEG`.
    let mut members = flat.clone();
    members.push((
        "ILSVRC2012_val_00000099.JPEG".into(),
        b"not an image".to_vec(),
    ));
    let odd = dir.join("odd.tar");
    tar_of(&odd, &members);
    let mut raw = std::fs::read(&odd).expect("tar");
    let end = raw.len() - 1024; // before the two zero blocks
    raw.truncate(end);
    raw.extend(raw_member("../ILSVRC2012_val_00000098.JPEG", &flat[0].1));
    raw.extend(vec![0u8; 1024]);
    std::fs::write(&odd, raw).expect("write");
    let output = evaluate(&[&odd], &dir.join("odd.csv"), &[]);
    assert_eq!(code(&output), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("ILSVRC2012_val_00000099.JPEG") && stderr.contains("unsafe member name"),
        "{stderr}"
    );
    let csv = text(&std::fs::read(dir.join("odd.csv")).expect("csv"));
    assert_eq!(csv.lines().count(), 5, "{csv}");
    // A parquet without an `image` column.
    let rows: Vec<(String, Vec<u8>, Option<i64>)> = flat
        .iter()
        .map(|(n, b)| (n.clone(), b.clone(), None))
        .collect();
    let bare = dir.join("bare.parquet");
    parquet_of(&bare, &rows, false);
    let output = evaluate(&[&bare], &dir.join("bare.csv"), &[]);
    let stderr = text(&output.stderr);
    assert!(
        code(&output) == Some(2) && stderr.contains("no `image.bytes` column"),
        "{stderr}"
    );
    // A compressed tar: refused, saying why.
    let gz = dir.join("val.tar.gz");
    let mut packed = vec![0x1f, 0x8b, 8, 0];
    packed.extend_from_slice(&bytes[..600]);
    std::fs::write(&gz, packed).expect("write");
    let output = evaluate(&[&gz], &dir.join("gz.csv"), &[]);
    let stderr = text(&output.stderr);
    assert!(
        code(&output) == Some(2) && stderr.contains("a compressed tar"),
        "{stderr}"
    );
    // A pattern that matches nothing.
    let none = PathBuf::from(format!("{}/nothing-*.tar", dir.display()));
    let output = evaluate(&[&none], &dir.join("none.csv"), &[]);
    let stderr = text(&output.stderr);
    assert!(
        code(&output) == Some(2) && stderr.contains("matches no files"),
        "{stderr}"
    );
}

/// Shards cut an archive's sorted list as they cut a folder's: three shards of a flat tar
/// and three WebDataset shards, merged, are byte for byte the whole folder's run.
#[test]
fn shards_of_archives_merge_into_the_folders_run() {
    let dir = imagenetx_test_support::temp_dir();
    let photos = images(11, val_name);
    let folder = folder(dir.path(), &photos);
    let whole = dir.path().join("folder.csv");
    ok(&evaluate(&[&folder], &whole, &[]));
    let tar = dir.path().join("val.tar");
    tar_of(&tar, &photos);
    let wds: Vec<PathBuf> = photos
        .chunks(4)
        .enumerate()
        .map(|(i, chunk)| {
            let path = dir.path().join(format!("wds-{i:06}.tar"));
            tar_of(&path, chunk);
            path
        })
        .collect();
    for (what, sources) in [("tar", vec![tar.clone()]), ("wds", wds)] {
        let sources: Vec<&Path> = sources.iter().map(PathBuf::as_path).collect();
        let out = dir.path().join(format!("{what}.csv"));
        let mut shards = Vec::new();
        for k in 0..3 {
            ok(&evaluate(&sources, &out, &["--shard", &format!("{k}/3")]));
            shards.push(dir.path().join(format!("{what}.shard-{k}-of-3.csv")));
        }
        let merged = dir.path().join(format!("{what}.merged.csv"));
        let output = Command::new(imagenetx())
            .arg("merge")
            .args(&shards)
            .arg("--out")
            .arg(&merged)
            .output()
            .expect("run imagenetx merge");
        ok(&output);
        assert!(
            std::fs::read(&merged).expect("merged") == std::fs::read(&whole).expect("whole"),
            "{what}: merged shards differ from the folder's run"
        );
    }
}

/// The gallery's thumbnails of a report, in page order.
fn thumbnails(html: &Path) -> Vec<String> {
    let page = std::fs::read_to_string(html).expect("the report");
    page.split("data:image/jpeg;base64,")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn reports_of_archived_images_have_the_folders_thumbnails() {
    let dir = imagenetx_test_support::temp_dir();
    let photos = root().join("fixtures/photos");
    let annotations = photos.join("annotations.jsonl");
    let members = images(PHOTOS.len(), |i| PHOTOS[i].to_string());
    let tar = dir.path().join("photos.tar");
    tar_of(&tar, &members);
    let parquet = dir.path().join("photos.parquet");
    let rows: Vec<(String, Vec<u8>, Option<i64>)> = members
        .iter()
        .map(|(name, bytes)| (format!("photos/{name}"), bytes.clone(), None))
        .collect();
    parquet_of(&parquet, &rows, true);

    let report_of = |what: &str, source: &Path| {
        let html = dir.path().join(format!("{what}.html"));
        let out = dir.path().join(format!("{what}.csv"));
        let flags = [
            "--image-annotations",
            annotations.to_str().expect("UTF-8 path"),
            "--report",
            html.to_str().expect("UTF-8 path"),
        ];
        ok(&evaluate(&[source], &out, &flags));
        (out, thumbnails(&html))
    };
    let (folder_csv, want) = report_of("folder", &photos);
    assert!(!want.is_empty(), "the folder's report has no thumbnail");
    for (what, source) in [("tar", &tar), ("parquet", &parquet)] {
        let (_, got) = report_of(what, source);
        assert_eq!(
            got, want,
            "{what}: the report's thumbnails differ from the folder's"
        );
    }
    // `imagenetx report --images ARCHIVE` finds them too.
    let html = dir.path().join("report-tar.html");
    let run = Command::new(imagenetx())
        .arg("report")
        .arg(&folder_csv)
        .arg("--image-annotations")
        .arg(&annotations)
        .arg("--images")
        .arg(&tar)
        .arg("--out")
        .arg(&html)
        .output()
        .expect("run imagenetx report");
    ok(&run);
    assert_eq!(thumbnails(&html), want, "report --images TAR");
}
