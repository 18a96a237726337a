//! A cache of parsed annotation files.
//!
//! Parsing the 17 MB validation annotations (46,110 JSON lines) is a large share of a short
//! `imagenetx analyze` run. The parsed records are kept in a binary file named after an
//! XXH3-128 hash of the source file's *content*, the class count, this format's version, the
//! imagenetx version and a hash of the parser's own sources (`IMAGENETX_PARSER_HASH`, made by
//! `build.rs`), so an entry cannot be stale: a changed annotation file, another release or a
//! changed parser (even at the same version) simply has another name. The source is still
//! read and hashed on every run (a few milliseconds); only the JSON parse is skipped. A cache
//! file that is truncated, corrupt or from another format is ignored and rewritten; a cache
//! folder that cannot be written only costs the speed-up.
//!
//! The checksum guards against damage, not against tampering: the folder is created private
//! (0700) and, on Unix, entries owned by another user are ignored.

use std::io::Write;
use std::path::{Path, PathBuf};

use imagenetx_vocab::FactorSet;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use crate::record::AnnotationRecord;

/// First bytes of a cache file.
const MAGIC: &[u8; 8] = b"IMXPARSE";
/// Bumped whenever the encoding or the meaning of a record changes.
const FORMAT_VERSION: u32 = 2;
/// The release whose parser checked the cached records.
const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
/// A hash of the parser's sources (see `build.rs`): a parser changed between two builds of the
/// same release does not read the other's entries.
const PARSER_HASH: &str = env!("IMAGENETX_PARSER_HASH");

/// Where parsed annotation files are cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseCache {
    dir: PathBuf,
    /// The parser hash in the key: [`PARSER_HASH`], another only in tests.
    parser: String,
}

/// What happened when a parsed file was looked up in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// The records came from the cache.
    Hit,
    /// The source was parsed and the records were stored.
    Stored,
    /// The source was parsed; the records could not be stored (the reason was logged).
    NotStored,
    /// No cache was used.
    Disabled,
}

impl ParseCache {
    /// A cache in `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ParseCache {
            dir: dir.into(),
            parser: PARSER_HASH.to_owned(),
        }
    }

    /// The default place: `$IMAGENETX_CACHE/parsed`, else `$XDG_CACHE_HOME/imagenetx/parsed`,
    /// else `~/.cache/imagenetx/parsed`; `None` when none of those variables is set.
    pub fn default_location() -> Option<Self> {
        let dir = if let Some(cache) = std::env::var_os("IMAGENETX_CACHE") {
            PathBuf::from(cache).join("parsed")
        } else if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME") {
            PathBuf::from(xdg).join("imagenetx/parsed")
        } else {
            PathBuf::from(std::env::var_os("HOME")?).join(".cache/imagenetx/parsed")
        };
        Some(ParseCache::new(dir))
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache file for a source with content hash `hash` parsed for `n_classes` classes.
    fn entry(&self, hash: u128, n_classes: usize) -> PathBuf {
        self.dir.join(format!(
            "annotations-{hash:032x}-c{n_classes}-v{FORMAT_VERSION}-p{}-{TOOL_VERSION}.bin",
            self.parser
        ))
    }

    /// The key of a source: the XXH3-128 hash of its bytes.
    pub(crate) fn source_hash(source: &[u8]) -> u128 {
        xxh3_128(source)
    }

    /// The records cached for a source with this [`ParseCache::source_hash`], if a sound
    /// entry exists.
    pub(crate) fn load(&self, hash: u128, n_classes: usize) -> Option<Vec<AnnotationRecord>> {
        let path = self.entry(hash, n_classes);
        if !owned_by_us(&path) {
            tracing::debug!("ignoring parse cache {}: not ours", path.display());
            return None;
        }
        let bytes = std::fs::read(&path).ok()?;
        match decode(&bytes, hash, n_classes, &self.parser) {
            Ok(records) => Some(records),
            Err(why) => {
                tracing::debug!("ignoring parse cache {}: {why}", path.display());
                None
            }
        }
    }

    /// Stores the records parsed from a source with this [`ParseCache::source_hash`]; says
    /// why not on failure.
    pub(crate) fn store(
        &self,
        hash: u128,
        n_classes: usize,
        records: &[AnnotationRecord],
    ) -> Result<PathBuf, String> {
        let path = self.entry(hash, n_classes);
        let bytes = encode(records, hash, n_classes, &self.parser)?;
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        // A temporary file in the same folder, renamed over the entry: a reader sees the whole
        // entry or none, and concurrent writers of the same entry write the same bytes.
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .map_err(|e| format!("cannot create a file in {}: {e}", self.dir.display()))?;
        tmp.write_all(&bytes)
            .map_err(|e| format!("cannot write {}: {e}", tmp.path().display()))?;
        tmp.persist(&path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }
}

/// Whether the entry at `path` (if any) belongs to this process's user: an entry planted in a
/// shared cache folder by someone else is not trusted. Always true off Unix.
fn owned_by_us(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(path) {
            Ok(meta) => meta.uid() == rustix::process::geteuid().as_raw(),
            Err(_) => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        true
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    format_version: u32,
    tool_version: String,
    parser_hash: String,
    source_hash: u128,
    n_classes: u64,
    records: Vec<CachedRecord>,
}

#[derive(Serialize, Deserialize)]
struct CachedRecord {
    file_name: String,
    class: u16,
    factors: u16,
    justification: Option<String>,
    one_word: Option<String>,
}

/// `MAGIC`, the postcard-encoded envelope, then the XXH3-128 of the envelope (little endian).
fn encode(
    records: &[AnnotationRecord],
    hash: u128,
    n_classes: usize,
    parser: &str,
) -> Result<Vec<u8>, String> {
    let envelope = Envelope {
        format_version: FORMAT_VERSION,
        tool_version: TOOL_VERSION.into(),
        parser_hash: parser.into(),
        source_hash: hash,
        n_classes: n_classes as u64,
        records: records
            .iter()
            .map(|r| CachedRecord {
                file_name: r.file_name.clone(),
                class: r.class,
                factors: r.factors.bits(),
                justification: r.justification.clone(),
                one_word: r.one_word.clone(),
            })
            .collect(),
    };
    let mut bytes = MAGIC.to_vec();
    bytes = postcard::to_extend(&envelope, bytes).map_err(|e| format!("cannot encode: {e}"))?;
    let checksum = xxh3_128(&bytes[MAGIC.len()..]);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    Ok(bytes)
}

fn decode(
    bytes: &[u8],
    hash: u128,
    n_classes: usize,
    parser: &str,
) -> Result<Vec<AnnotationRecord>, String> {
    let body = bytes.strip_prefix(MAGIC).ok_or("not a parse cache file")?;
    let (payload, checksum) = body.split_last_chunk::<16>().ok_or("truncated")?;
    if xxh3_128(payload) != u128::from_le_bytes(*checksum) {
        return Err("checksum mismatch (truncated or corrupt)".into());
    }
    let envelope: Envelope =
        postcard::from_bytes(payload).map_err(|e| format!("cannot decode: {e}"))?;
    if envelope.format_version != FORMAT_VERSION
        || envelope.tool_version != TOOL_VERSION
        || envelope.parser_hash != parser
        || envelope.source_hash != hash
        || envelope.n_classes != n_classes as u64
    {
        return Err("written for another source, class count, parser or format".into());
    }
    envelope
        .records
        .into_iter()
        .map(|r| {
            if usize::from(r.class) >= n_classes {
                return Err(format!("class {} is out of range", r.class));
            }
            Ok(AnnotationRecord {
                file_name: r.file_name,
                class: r.class,
                factors: FactorSet::from_bits(r.factors),
                justification: r.justification,
                one_word: r.one_word,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagenetx_vocab::Factor;

    fn h(source: &[u8]) -> u128 {
        ParseCache::source_hash(source)
    }

    fn records() -> Vec<AnnotationRecord> {
        vec![
            AnnotationRecord {
                file_name: "ILSVRC2012_val_00000001.JPEG".into(),
                class: 65,
                factors: [Factor::Pose, Factor::MultipleObjects]
                    .into_iter()
                    .collect(),
                justification: Some("a snake, coiled".into()),
                one_word: None,
            },
            AnnotationRecord {
                file_name: "x.JPEG".into(),
                class: 999,
                factors: FactorSet::EMPTY,
                justification: None,
                one_word: Some("\u{e9}t\u{e9}".into()),
            },
        ]
    }

    #[test]
    fn round_trips_and_is_keyed_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ParseCache::new(dir.path().join("parsed"));
        assert_eq!(cache.load(h(b"source"), 1000), None);
        let path = cache.store(h(b"source"), 1000, &records()).unwrap();
        assert!(path.starts_with(cache.dir()));
        assert_eq!(cache.load(h(b"source"), 1000), Some(records()));
        assert_eq!(cache.load(h(b"sourcf"), 1000), None, "other content");
        assert_eq!(cache.load(h(b"source"), 999), None, "other class count");
    }

    #[test]
    fn another_parser_misses() {
        assert_eq!(PARSER_HASH.len(), 16, "build.rs: {PARSER_HASH:?}");
        assert!(PARSER_HASH.bytes().all(|b| b.is_ascii_hexdigit()));
        let dir = tempfile::tempdir().unwrap();
        let ours = ParseCache::new(dir.path());
        let older = ParseCache {
            parser: "0123456789abcdef".into(),
            ..ours.clone()
        };
        let path = older.store(h(b"source"), 1000, &records()).unwrap();
        assert_eq!(older.load(h(b"source"), 1000), Some(records()));
        assert_eq!(
            ours.load(h(b"source"), 1000),
            None,
            "another parser's entry"
        );
        // Under our entry's name too, the envelope's parser hash refuses it.
        let name = ours.entry(h(b"source"), 1000);
        assert_ne!(name, path);
        std::fs::copy(&path, &name).unwrap();
        assert_eq!(
            ours.load(h(b"source"), 1000),
            None,
            "another parser's envelope"
        );
        ours.store(h(b"source"), 1000, &records()).unwrap();
        assert_eq!(ours.load(h(b"source"), 1000), Some(records()));
    }

    #[cfg(unix)]
    #[test]
    fn the_folder_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = ParseCache::new(dir.path().join("a/parsed"));
        cache.store(h(b"source"), 1000, &records()).unwrap();
        let mode = std::fs::metadata(cache.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "group/other access: {mode:o}");
    }

    #[test]
    fn damaged_entries_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ParseCache::new(dir.path());
        let path = cache.store(h(b"source"), 1000, &records()).unwrap();
        let good = std::fs::read(&path).unwrap();
        let mut flipped = good.clone();
        flipped[20] ^= 1;
        for damaged in [&good[..good.len() - 1], &good[..10], &flipped[..], b""] {
            std::fs::write(&path, damaged).unwrap();
            assert_eq!(cache.load(h(b"source"), 1000), None);
        }
        // A class that does not fit the count it claims is refused even with a sound checksum.
        let bytes = encode(&records(), xxh3_128(b"source"), 1000, PARSER_HASH).unwrap();
        assert!(decode(&bytes, xxh3_128(b"source"), 1000, PARSER_HASH).is_ok());
        let mut envelope: Envelope = postcard::from_bytes(&bytes[8..bytes.len() - 16]).unwrap();
        envelope.n_classes = 500;
        let mut forged = MAGIC.to_vec();
        forged = postcard::to_extend(&envelope, forged).unwrap();
        let checksum = xxh3_128(&forged[8..]);
        forged.extend_from_slice(&checksum.to_le_bytes());
        assert!(
            decode(&forged, xxh3_128(b"source"), 500, PARSER_HASH)
                .unwrap_err()
                .contains("class 999")
        );
    }
}
