//! Hostile inputs: files that are not regular files, files too large to read, decompression
//! bombs in every format, link loops, non-UTF-8 names, and the shared decode budget. Each is
//! refused promptly with an error that names the file and the reason; nothing hangs, nothing
//! is read without bound.
#![cfg(unix)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use imagenetx_dataset::discover_images;
use imagenetx_imaging::{DecodeBudget, Error, PreprocessConfig, Preprocessor, ReadLimits};

fn preprocessor() -> Preprocessor {
    Preprocessor::new(PreprocessConfig::torchvision()).expect("valid config")
}

/// Runs `f` on another thread and fails the test if it takes longer than `limit` (a hang).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("finished in time (a timeout means it blocked)")
}

/// An 8-bit grey PNG of `width x height`, encoded by the `image` crate.
fn png(width: u32, height: u32) -> Vec<u8> {
    use image::ImageEncoder;
    let pixels: Vec<u8> = (0..width * height).map(|i| (i % 251) as u8).collect();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&pixels, width, height, image::ExtendedColorType::L8)
        .expect("encode png");
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// A PNG bomb: a valid header for a 1-bit grey `width x height` image and a token IDAT.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]); // 1-bit, grey, deflate, filter 0, no interlace
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A GIF with a `screen_w x screen_h` logical screen and one 1x1 (or `frame_w x frame_h`)
/// frame.
fn gif_bomb(screen: (u16, u16), frame: (u16, u16)) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&screen.0.to_le_bytes());
    out.extend_from_slice(&screen.1.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0]); // global colour table of 2 entries
    out.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    out.push(0x2C); // image descriptor
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&frame.0.to_le_bytes());
    out.extend_from_slice(&frame.1.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&[2, 2, 0x4C, 0x01, 0]); // LZW data for one pixel
    out.push(0x3B);
    out
}

/// A little-endian TIFF whose tags claim a `width x height` 8-bit grey image.
fn tiff_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    // (tag, type, value): type 3 = SHORT, 4 = LONG.
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8),
        (277, 3, 1),
        (278, 4, height),
        (279, 4, 1),
    ];
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out
}

/// An extended WebP (VP8X) whose canvas is `width x height`, holding a 1x1 lossless image.
fn webp_canvas_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut vp8x = vec![0u8; 4];
    vp8x.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    let vp8l = [0x2F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(4 + 8 + 10 + 8 + vp8l.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WEBPVP8X");
    out.extend_from_slice(&10u32.to_le_bytes());
    out.extend_from_slice(&vp8x);
    out.extend_from_slice(b"VP8L");
    out.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
    out.extend_from_slice(&vp8l);
    out
}

/// A lossless WebP (VP8L) whose header claims `width x height` (each at most 16383: the
/// `image-webp` decoder reads 16384 as 0).
fn webp_bomb(width: u32, height: u32) -> Vec<u8> {
    let bits = (width - 1) | (height - 1) << 14;
    let mut vp8l = vec![0x2F];
    vp8l.extend_from_slice(&bits.to_le_bytes());
    vp8l.extend_from_slice(&[0; 7]);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(4 + 8 + vp8l.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WEBPVP8L");
    out.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
    out.extend_from_slice(&vp8l);
    out
}

fn assert_names(err: &impl std::fmt::Display, name: &str, reason: &str) {
    let text = err.to_string();
    assert!(text.contains(name), "names the file {name}: {text}");
    assert!(text.contains(reason), "gives the reason {reason:?}: {text}");
}

#[test]
fn bombs_in_every_format_are_refused_from_their_header() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, Vec<u8>, &str); 8] = [
        (
            "png_bomb.png",
            png_bomb(23_000, 23_000),
            "PNG image of 23000x23000 = 529000000 pixels exceeds 178956970 \
             (Pillow's decompression-bomb limit)",
        ),
        (
            "gif_screen.gif",
            gif_bomb((65_535, 65_535), (1, 1)),
            "GIF image of 65535x65535 = 4294836225 pixels exceeds 178956970",
        ),
        (
            "gif_frame.gif",
            gif_bomb((10, 10), (65_535, 65_535)),
            "GIF image of 65535x65535 = 4294836225 pixels exceeds 178956970",
        ),
        (
            "tiff_bomb.tif",
            tiff_bomb(100_000, 100_000),
            "TIFF image of 100000x100000 = 10000000000 pixels exceeds 178956970",
        ),
        (
            "tiff_huge.tif",
            tiff_bomb(u32::MAX, u32::MAX),
            "TIFF image of 4294967295x4294967295 = 18446744065119617025 pixels exceeds",
        ),
        (
            "webp_bomb.webp",
            webp_bomb(16_383, 16_383),
            "WebP image of 16383x16383 = 268402689 pixels exceeds 178956970",
        ),
        (
            "webp_canvas.webp",
            webp_canvas_bomb(20_000, 20_000),
            "WebP image of 20000x20000 = 400000000 pixels exceeds 178956970",
        ),
        (
            "jpeg_named.JPEG",
            png_bomb(20_000, 9_000),
            "PNG image of 20000x9000 = 180000000 pixels exceeds 178956970",
        ),
    ];
    for (name, bytes, reason) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).expect("write");
        assert!(bytes.len() < 200, "{name} is tiny: {} bytes", bytes.len());
        let started = Instant::now();
        let err = within(Duration::from_secs(20), move || {
            let mut out = vec![0f32; preprocessor().tensor_len()];
            preprocessor()
                .preprocess_file(&path, &mut out)
                .expect_err("a bomb is refused")
        });
        assert!(
            matches!(err, Error::TooManyPixels { .. }),
            "{name}: {err:?}"
        );
        assert_names(&err, name, reason);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} refused fast"
        );
    }
}

#[test]
fn images_over_the_warning_size_decode_with_a_warning() {
    // Pillow's sizes scaled down: warn over 1000 pixels, refuse over 2000.
    let limits = ReadLimits {
        warn_pixels: 1_000,
        max_pixels: 2_000,
        ..ReadLimits::default()
    };
    let mut pre = Preprocessor::with_limits(PreprocessConfig::torchvision(), limits).expect("ok");
    let dir = tempfile::tempdir().expect("temp dir");
    let small = dir.path().join("small.png");
    let warned = dir.path().join("warned.png");
    let refused = dir.path().join("refused.png");
    std::fs::write(&small, png(30, 30)).expect("write");
    std::fs::write(&warned, png(40, 40)).expect("write");
    std::fs::write(&refused, png(50, 50)).expect("write");
    let mut out = vec![0f32; pre.tensor_len()];
    pre.preprocess_file(&small, &mut out).expect("decodes");
    assert!(pre.take_warnings().is_empty());
    pre.preprocess_file(&warned, &mut out).expect("decodes");
    let warnings = pre.take_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!((warnings[0].width, warnings[0].height), (40, 40));
    assert_names(
        &warnings[0],
        "warned.png",
        "40x40 = 1600 pixels exceeds 1000 (Pillow's DecompressionBombWarning limit)",
    );
    assert!(pre.take_warnings().is_empty(), "taking empties the list");
    let err = pre
        .preprocess_file(&refused, &mut out)
        .expect_err("refused");
    assert_names(&err, "refused.png", "50x50 = 2500 pixels exceeds 2000");
    // JPEG goes through the same limits.
    let jpeg = dir.path().join("warned.JPEG");
    let pixels = vec![128u8; 40 * 40 * 3];
    let image = turbojpeg::Image {
        pixels: pixels.as_slice(),
        width: 40,
        pitch: 40 * 3,
        height: 40,
        format: turbojpeg::PixelFormat::RGB,
    };
    let encoded = turbojpeg::compress(image, 90, turbojpeg::Subsamp::Sub2x2).expect("encode");
    std::fs::write(&jpeg, &*encoded).expect("write");
    pre.preprocess_file(&jpeg, &mut out).expect("decodes");
    assert_eq!(pre.take_warnings().len(), 1);
}

#[test]
fn files_over_the_size_cap_are_refused_without_reading() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sparse = dir.path().join("sparse.JPEG");
    std::fs::File::create(&sparse)
        .and_then(|f| f.set_len(4 << 30))
        .expect("4 GB sparse file");
    let list = discover_images(dir.path(), None).expect("listed");
    assert_eq!(list.images.len(), 1, "a regular file is an image entry");
    let started = Instant::now();
    let err = preprocessor().decode_file(&sparse).expect_err("too large");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused before reading"
    );
    assert!(matches!(err, Error::FileTooLarge { .. }), "{err:?}");
    assert_names(
        &err,
        "sparse.JPEG",
        "file is 4294967296 bytes, over the limit of 268435456 bytes (raise it with \
         --max-file-size)",
    );
    // A lower cap applies to small files too.
    let small = dir.path().join("small.png");
    std::fs::write(&small, png(8, 8)).expect("write");
    let limits = ReadLimits {
        max_file_bytes: 10,
        ..ReadLimits::default()
    };
    let mut pre = Preprocessor::with_limits(PreprocessConfig::torchvision(), limits).expect("ok");
    let err = pre.decode_file(&small).expect_err("over 10 bytes");
    assert_names(&err, "small.png", "over the limit of 10 bytes");
}

#[test]
fn fifos_and_devices_are_skipped_and_never_block() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("x.JPEG");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
    let zero = dir.path().join("zero.JPEG");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
    std::fs::write(dir.path().join("good.png"), png(8, 8)).expect("write");
    let _socket =
        std::os::unix::net::UnixListener::bind(dir.path().join("socket.png")).expect("socket");

    let root = dir.path().to_owned();
    let list = within(Duration::from_secs(10), move || {
        discover_images(&root, None)
    })
    .expect("listed");
    let names: Vec<&str> = list.images.iter().map(|i| i.file_name()).collect();
    assert_eq!(names, ["good.png"]);
    let skipped: Vec<(&str, &str)> = list
        .skipped
        .iter()
        .map(|s| (s.file_name.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("socket.png", "not a regular file: socket"),
            ("x.JPEG", "not a regular file: FIFO (named pipe)"),
            ("zero.JPEG", "not a regular file: character device"),
        ]
    );

    // The reader, opened directly on them (as if swapped in after discovery).
    for (path, kind) in [
        (fifo, "not a regular file: FIFO (named pipe)"),
        (zero, "not a regular file: character device"),
    ] {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let err = within(Duration::from_secs(5), move || {
            preprocessor().decode_file(&path).expect_err("refused")
        });
        assert!(matches!(err, Error::NotRegularFile { .. }), "{err:?}");
        assert_names(&err, &name, kind);
    }
}

#[test]
fn links_loops_and_folders_named_like_images_are_skipped_with_their_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("images");
    let class = root.join("n01440764");
    std::fs::create_dir_all(&class).expect("mkdir");
    std::fs::write(class.join("real.png"), png(8, 8)).expect("write");
    // A class folder that is a link to a folder elsewhere: followed.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    std::fs::write(elsewhere.join("linked.png"), png(8, 8)).expect("write");
    std::os::unix::fs::symlink(&elsewhere, root.join("n01443537")).expect("symlink");
    // A class folder that loops back to the top folder.
    std::os::unix::fs::symlink(&root, root.join("n99999999")).expect("symlink");
    // Entries: a link loop, a dangling link, a folder named like an image.
    std::os::unix::fs::symlink(class.join("b.JPEG"), class.join("a.JPEG")).expect("symlink");
    std::os::unix::fs::symlink(class.join("a.JPEG"), class.join("b.JPEG")).expect("symlink");
    std::os::unix::fs::symlink(class.join("gone"), class.join("dangling.JPEG")).expect("symlink");
    std::fs::create_dir(class.join("folder.JPEG")).expect("mkdir");

    let list = discover_images(&root, None).expect("listed");
    let names: Vec<(&str, Option<&str>)> = list
        .images
        .iter()
        .map(|i| (i.file_name(), i.wnid()))
        .collect();
    assert_eq!(
        names,
        [
            ("real.png", Some("n01440764")),
            ("linked.png", Some("n01443537"))
        ]
    );
    let skipped: Vec<(&str, &str)> = list
        .skipped
        .iter()
        .map(|s| (s.file_name.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 5, "{skipped:?}");
    assert_eq!(skipped[0], ("a.JPEG", "symbolic link loop"));
    assert_eq!(skipped[1], ("b.JPEG", "symbolic link loop"));
    assert_eq!(skipped[2], ("dangling.JPEG", "dangling symbolic link"));
    assert_eq!(skipped[3], ("folder.JPEG", "not a regular file: directory"));
    assert_eq!(skipped[4].0, "n99999999");
    assert!(
        skipped[4].1.starts_with("symbolic link loop"),
        "{skipped:?}"
    );
}

#[test]
fn read_errors_give_the_os_reason_once() {
    // Tests run as root, who may read any file whatever its permissions: a dangling link
    // and a folder stand in for unreadable files.
    let dir = tempfile::tempdir().expect("temp dir");
    let dangling = dir.path().join("dangling.JPEG");
    std::os::unix::fs::symlink(dir.path().join("gone"), &dangling).expect("symlink");
    let err = preprocessor().decode_file(&dangling).expect_err("missing");
    let text = err.to_string();
    assert!(
        text.ends_with(
            "dangling.JPEG: cannot read image file: No such file or directory (os error 2)"
        ),
        "{text}"
    );
    assert!(
        std::error::Error::source(&err).is_none(),
        "no second copy as a source"
    );
    let folder = dir.path().join("folder.JPEG");
    std::fs::create_dir(&folder).expect("mkdir");
    let err = preprocessor().decode_file(&folder).expect_err("a folder");
    assert_names(&err, "folder.JPEG", "not a regular file: directory");
    // The dataset crate's own I/O errors likewise.
    let err = discover_images(&dir.path().join("absent"), None).expect_err("absent");
    let text = err.to_string();
    assert_eq!(
        text.matches("No such file or directory").count(),
        1,
        "{text}"
    );
    assert!(std::error::Error::source(&err).is_none());
}

#[test]
fn names_that_are_not_utf8_are_kept_and_never_collide() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = dir.path().join(OsStr::from_bytes(b"a\xff.png"));
    let b = dir.path().join(OsStr::from_bytes(b"a\xfe.png"));
    std::fs::write(&a, png(8, 8)).expect("write");
    std::fs::write(&b, png(9, 9)).expect("write");
    let list = discover_images(dir.path(), None).expect("two distinct names");
    let found: Vec<(&str, &Path)> = list
        .images
        .iter()
        .map(|i| (i.file_name(), i.path()))
        .collect();
    assert_eq!(
        found,
        [("a\\xfe.png", b.as_path()), ("a\\xff.png", a.as_path())]
    );
    let mut pre = preprocessor();
    for entry in &list.images {
        pre.decode_file(entry.path())
            .expect("decodes by its real path");
        let back = imagenetx_dataset::unescape_file_name(entry.file_name()).expect("reversible");
        assert_eq!(Some(back.as_os_str()), entry.path().file_name());
    }
}

#[test]
fn the_budget_never_lets_two_large_images_in_at_once() {
    let budget = DecodeBudget::new(100);
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (budget, inside, most) = (budget.clone(), inside.clone(), most.clone());
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let permit = budget.reserve(60);
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    assert!(budget.in_use() <= budget.capacity());
                    std::thread::sleep(Duration::from_micros(200));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no panic");
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "never both at once");
    assert_eq!(budget.in_use(), 0);
    // A request over the whole budget still completes, alone.
    let held = budget.reserve(1_000);
    assert_eq!(held.bytes(), 100);
    drop(held);

    // Preprocessors on several threads with a budget smaller than one image: each image
    // runs alone, none waits forever.
    let dir = tempfile::tempdir().expect("temp dir");
    let paths: Vec<PathBuf> = (0..6)
        .map(|i| {
            let path = dir.path().join(format!("{i}.png"));
            std::fs::write(&path, png(64 + i, 48)).expect("write");
            path
        })
        .collect();
    let small = DecodeBudget::new(1_000);
    let paths = Arc::new(paths);
    let done = within(Duration::from_secs(60), move || {
        let threads: Vec<_> = (0..3)
            .map(|t| {
                let (paths, small) = (paths.clone(), small.clone());
                std::thread::spawn(move || {
                    let mut pre = preprocessor().with_budget(small);
                    let mut out = vec![0f32; pre.tensor_len()];
                    for path in paths.iter().skip(t).step_by(3) {
                        pre.preprocess_file(path, &mut out).expect("decodes");
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .map(std::thread::JoinHandle::join)
            .filter(Result::is_err)
            .count()
            == 0
    });
    assert!(done);
}

/// The peak memory of decoding a folder of hostile images, for BENCHMARKS.md. Not run by
/// default; run it (release build) as
/// `IMAGENETX_HOSTILE_DIR=DIR IMAGENETX_THREADS=8 cargo test --release -p imagenetx-dataset
/// --test integration -- --ignored --nocapture hostile::peak_memory`; `IMAGENETX_BUDGET=off` gives each
/// image an unbounded budget, for comparison. Skipped entries (FIFOs, devices, …) are read
/// too, as if swapped in after discovery.
#[test]
#[ignore = "measurement: needs IMAGENETX_HOSTILE_DIR"]
fn peak_memory_of_a_hostile_folder() {
    let Some(dir) = std::env::var_os("IMAGENETX_HOSTILE_DIR") else {
        return;
    };
    let threads: usize = std::env::var("IMAGENETX_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let budget = match std::env::var("IMAGENETX_BUDGET").as_deref() {
        Ok("off") => DecodeBudget::new(u64::MAX),
        _ => DecodeBudget::global().clone(),
    };
    let list = discover_images(Path::new(&dir), None).expect("listed");
    let mut paths: Vec<PathBuf> = list.images.iter().map(|i| i.path().to_path_buf()).collect();
    paths.extend(list.skipped.iter().map(|s| s.path.clone()));
    let paths = Arc::new(paths);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (paths, next, budget) = (paths.clone(), next.clone(), budget.clone());
            std::thread::spawn(move || {
                let mut pre = preprocessor().with_budget(budget);
                let mut out = vec![0f32; pre.tensor_len()];
                let mut lines = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(path) = paths.get(i) else { break };
                    let t = Instant::now();
                    let result = pre.preprocess_file(path, &mut out);
                    lines.push(format!(
                        "{:>6.2}s {}",
                        t.elapsed().as_secs_f64(),
                        match result {
                            Ok(()) => format!("ok {}", path.display()),
                            Err(e) => format!("refused {e}"),
                        }
                    ));
                }
                lines.extend(pre.take_warnings().iter().map(|w| format!("warning {w}")));
                lines
            })
        })
        .collect();
    for worker in workers {
        for line in worker.join().expect("worker") {
            println!("{line}");
        }
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?");
    println!(
        "threads {threads}, budget {}: {} images, {} skipped, {:.1}s, peak RSS {peak}",
        std::env::var("IMAGENETX_BUDGET").unwrap_or_else(|_| "default (512 MiB)".into()),
        list.images.len(),
        list.skipped.len(),
        started.elapsed().as_secs_f64()
    );
}
