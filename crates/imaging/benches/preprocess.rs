//! Decode + preprocess throughput on one core: `just bench-preprocess`.
//!
//! Reads every `*.JPEG` in `$IMAGENETX_BENCH_DIR`, then times
//! `Preprocessor::preprocess_file` (read, decode, resize, crop, normalise into
//! a reused buffer) over all of them, `$IMAGENETX_BENCH_REPS` times (default
//! 5), single-threaded, with the torchvision preset. Prints one JSON object:
//! `{"impl": ..., "images": n, "rates": [images per second per repetition]}`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Instant;

use imagenetx_imaging::{PreprocessConfig, Preprocessor};

fn main() {
    let Some(dir) = std::env::var_os("IMAGENETX_BENCH_DIR") else {
        eprintln!(
            "set IMAGENETX_BENCH_DIR to a folder of JPEGs (see `just bench-preprocess`); skipping"
        );
        return;
    };
    let reps: usize = std::env::var("IMAGENETX_BENCH_REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "JPEG"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.JPEG in {}",
        PathBuf::from(dir).display()
    );
    let mut pre = Preprocessor::new(PreprocessConfig::torchvision()).unwrap();
    let mut out = vec![0f32; pre.tensor_len()];
    // Warm-up pass: page cache, allocator, coefficient cache.
    for f in &files {
        pre.preprocess_file(f, &mut out).unwrap();
    }
    let mut rates = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        for f in &files {
            pre.preprocess_file(f, &mut out).unwrap();
        }
        rates.push(files.len() as f64 / start.elapsed().as_secs_f64());
    }
    // Decode only, for the breakdown (stderr).
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let start = Instant::now();
    for (b, f) in bytes.iter().zip(&files) {
        std::hint::black_box(pre.decode_bytes(b, f).unwrap());
    }
    let decode = files.len() as f64 / start.elapsed().as_secs_f64();
    eprintln!("decode only (from memory): {decode:.1} images/s");
    // Resize + crop only, for the breakdown (stderr).
    let decoded = pre.decode_bytes(&bytes[0], &files[0]).unwrap();
    let start = Instant::now();
    for _ in 0..files.len() {
        std::hint::black_box(pre.resize_crop(&decoded));
    }
    let resize = files.len() as f64 / start.elapsed().as_secs_f64();
    eprintln!("resize + crop only: {resize:.1} images/s");
    let rates: Vec<String> = rates.iter().map(|r| format!("{r:.1}")).collect();
    println!(
        r#"{{"impl": "imagenetx imaging (libjpeg-turbo + Pillow resample in Rust)", "images": {}, "rates": [{}]}}"#,
        files.len(),
        rates.join(", ")
    );
}
