//! Build script: a hash of the annotation parser's sources, `IMAGENETX_PARSER_HASH`, which the
//! parse cache (`src/cache.rs`) puts in every entry's key. The crate version alone never
//! changes between commits, so without it an entry written by an older parser would keep
//! being read after a parser change (hiding a regression from every test that reads through
//! the cache).
//!
//! Hashed: the parser (`src/annotations.rs`), the class list it checks against
//! (`src/labels.rs`), its errors, the cache's own encoding (`src/cache.rs`), the record it
//! stores (`src/record.rs`), the factor vocabulary whose bit order the cache stores
//! (`imagenetx-vocab`'s `src/factor.rs`), and the
//! workspace's `Cargo.lock` (the versions of serde_json and postcard it parses and encodes
//! with). FNV-1a 64 over (path, length, bytes) of each: a cache key, not a security check.

use std::path::Path;

const PARSER_SOURCES: &[&str] = &[
    "src/annotations.rs",
    "src/labels.rs",
    "src/error.rs",
    "src/cache.rs",
    "src/record.rs",
    "../vocab/src/factor.rs",
    "../../Cargo.lock",
];

fn feed(hash: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *hash ^= u64::from(b);
        *hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

fn main() {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let dir = Path::new(&dir);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for rel in PARSER_SOURCES {
        let path = dir.join(rel);
        feed(&mut hash, rel.as_bytes());
        match std::fs::read(&path) {
            Ok(bytes) => {
                // Only existing files: cargo reruns every build for a path that is absent.
                println!("cargo:rerun-if-changed={rel}");
                feed(&mut hash, &(bytes.len() as u64).to_le_bytes());
                feed(&mut hash, &bytes);
            }
            // Outside the workspace (a packaged crate) the sibling files are not there.
            Err(_) => feed(&mut hash, b"<absent>"),
        }
    }
    println!("cargo:rustc-env=IMAGENETX_PARSER_HASH={hash:016x}");
}
