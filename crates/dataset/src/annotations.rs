//! The ImageNet-X annotation files and the folder that holds them.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use imagenetx_vocab::{AnnotatedImage, Annotations, Factor, FactorSet, Metaclass};
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::cache::{CacheStatus, ParseCache};
use crate::labels;
pub use crate::record::AnnotationRecord;
use crate::{Error, Result};

/// The files `just setup` fetches, with the folder name used in caches.
pub const ANNOTATION_FILES: [&str; 9] = [
    "filename_label.csv",
    "imagenet_1k_classes_to_100_metaclasses.csv",
    "imagenet_labels.txt",
    "imagenet_real_labels.jsonl",
    "imagenet_x_train_multi_factor.jsonl",
    "imagenet_x_train_top_factor.jsonl",
    "imagenet_x_val_multi_factor.jsonl",
    "imagenet_x_val_top_factor.jsonl",
    "prototypical_paths.csv",
];

/// Which annotated images: the ImageNet validation set or the annotated training subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Partition {
    /// The 50,000 validation images (48,868 annotated).
    #[default]
    Val,
    /// The ~12,000 annotated training images.
    Train,
}

impl Partition {
    /// The name used in file names and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Partition::Val => "val",
            Partition::Train => "train",
        }
    }
}

/// Which factors count for an image: the annotators' top factor, or every factor they marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    /// One factor per image (the paper's main analysis).
    #[default]
    Top,
    /// Every factor marked.
    Multi,
}

impl Selection {
    /// The name used in file names and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Selection::Top => "top",
            Selection::Multi => "multi",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord<'a> {
    #[serde(borrow)]
    file_name: Cow<'a, str>,
    class: i64,
    multiple_objects: u8,
    background: u8,
    color: u8,
    brighter: u8,
    darker: u8,
    style: u8,
    larger: u8,
    smaller: u8,
    object_blocking: u8,
    person_blocking: u8,
    partial_view: u8,
    pattern: u8,
    pose: u8,
    shape: u8,
    subcategory: u8,
    texture: u8,
    #[serde(borrow)]
    justification: Option<Cow<'a, str>>,
    #[serde(borrow)]
    one_word: Option<Cow<'a, str>>,
}

impl RawRecord<'_> {
    fn flags(&self) -> [(Factor, u8); 16] {
        [
            (Factor::Pose, self.pose),
            (Factor::Background, self.background),
            (Factor::Pattern, self.pattern),
            (Factor::Color, self.color),
            (Factor::Smaller, self.smaller),
            (Factor::Shape, self.shape),
            (Factor::PartialView, self.partial_view),
            (Factor::Subcategory, self.subcategory),
            (Factor::Texture, self.texture),
            (Factor::Larger, self.larger),
            (Factor::Darker, self.darker),
            (Factor::ObjectBlocking, self.object_blocking),
            (Factor::PersonBlocking, self.person_blocking),
            (Factor::Style, self.style),
            (Factor::Brighter, self.brighter),
            (Factor::MultipleObjects, self.multiple_objects),
        ]
    }
}

/// Reads an annotation file in the ImageNet-X JSONL schema: one JSON object per line with
/// `file_name`, `class` (0..`n_classes`), the 16 factors as 0/1, `justification` and
/// `one_word` (strings or null). Blank lines are skipped; a repeated `file_name` is an error.
pub fn read_annotation_file(path: &Path, n_classes: usize) -> Result<Vec<AnnotationRecord>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_annotation_bytes(path, &bytes, n_classes)
}

/// [`read_annotation_file`] through a [`ParseCache`]: records parsed from a file with the same
/// content before are read back from the cache instead of parsed again; freshly parsed ones are
/// stored (a failure to store is logged, not an error). Says where the records came from.
pub fn read_annotation_file_cached(
    path: &Path,
    n_classes: usize,
    cache: Option<&ParseCache>,
) -> Result<(Vec<AnnotationRecord>, CacheStatus)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let Some(cache) = cache else {
        return Ok((
            parse_annotation_bytes(path, &bytes, n_classes)?,
            CacheStatus::Disabled,
        ));
    };
    let hash = ParseCache::source_hash(&bytes);
    if let Some(records) = cache.load(hash, n_classes) {
        tracing::debug!("{}: parsed records read from the cache", path.display());
        return Ok((records, CacheStatus::Hit));
    }
    let records = parse_annotation_bytes(path, &bytes, n_classes)?;
    let status = match cache.store(hash, n_classes, &records) {
        Ok(entry) => {
            tracing::debug!(
                "{}: parsed records cached in {}",
                path.display(),
                entry.display()
            );
            CacheStatus::Stored
        }
        Err(why) => {
            tracing::debug!("{}: parsed records not cached: {why}", path.display());
            CacheStatus::NotStored
        }
    };
    Ok((records, status))
}

fn parse_annotation_bytes(
    path: &Path,
    bytes: &[u8],
    n_classes: usize,
) -> Result<Vec<AnnotationRecord>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64
            + 1;
        Error::parse(path, line, "not valid UTF-8")
    })?;
    // Lines are parsed in parallel (this file is 17 MB for the validation set); records and
    // errors keep file order.
    let lines: Vec<(u64, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i as u64 + 1, line))
        .filter(|(_, line)| !line.trim().is_empty())
        .collect();
    let parsed: Vec<Result<AnnotationRecord>> = lines
        .par_iter()
        .map(|(number, line)| parse_annotation_line(path, *number, line, n_classes))
        .collect();
    let records = parsed.into_iter().collect::<Result<Vec<_>>>()?;
    let line_numbers: Vec<u64> = lines.iter().map(|(number, _)| *number).collect();
    let mut seen: FxHashMap<&str, u64> = FxHashMap::default();
    seen.reserve(records.len());
    for (record, number) in records.iter().zip(&line_numbers) {
        if let Some(first) = seen.insert(&record.file_name, *number) {
            return Err(Error::parse(
                path,
                *number,
                format!(
                    "{} is annotated twice (first on line {first})",
                    record.file_name
                ),
            ));
        }
    }
    Ok(records)
}

fn parse_annotation_line(
    path: &Path,
    number: u64,
    line: &str,
    n_classes: usize,
) -> Result<AnnotationRecord> {
    let raw: RawRecord<'_> = serde_json::from_str(line).map_err(|e| {
        Error::parse(
            path,
            number,
            format!("expected an ImageNet-X annotation object: {e}"),
        )
    })?;
    let class = u16::try_from(raw.class)
        .ok()
        .filter(|c| usize::from(*c) < n_classes)
        .ok_or_else(|| {
            Error::parse(
                path,
                number,
                format!("class {} is outside 0..{}", raw.class, n_classes - 1),
            )
        })?;
    let mut factors = FactorSet::EMPTY;
    for (factor, value) in raw.flags() {
        match value {
            0 => {}
            1 => factors.insert(factor),
            other => {
                return Err(Error::parse(
                    path,
                    number,
                    format!("factor {factor} is {other}, expected 0 or 1"),
                ));
            }
        }
    }
    Ok(AnnotationRecord {
        file_name: raw.file_name.into_owned(),
        class,
        factors,
        justification: raw.justification.map(Cow::into_owned),
        one_word: raw.one_word.map(Cow::into_owned),
    })
}

/// What to load from the annotations folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LoadOptions {
    /// Validation or training images.
    pub partition: Partition,
    /// Top factor or every factor.
    pub selection: Selection,
    /// Keep the prototypical images the toolkit filters out by default.
    pub keep_prototypes: bool,
}

/// A folder holding the ImageNet-X annotation files (as the `imagenet-x` wheel ships them).
#[derive(Debug, Clone)]
pub struct AnnotationDir {
    root: PathBuf,
    parse_cache: Option<ParseCache>,
}

impl AnnotationDir {
    /// Uses `root`, which must be a folder.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        if !root.is_dir() {
            return Err(Error::AnnotationsNotFound {
                message: format!(
                    "{}: not a folder; expected the ImageNet-X annotations ({}).{}",
                    root.display(),
                    ANNOTATION_FILES.join(", "),
                    HOW_TO_GET
                ),
            });
        }
        Ok(AnnotationDir {
            root,
            parse_cache: None,
        })
    }

    /// Finds the annotations: `explicit` (`--annotations`), else `$IMAGENETX_ANNOTATIONS`,
    /// else `$IMAGENETX_CACHE/annotations` (the `just` recipes set it to the checkout's
    /// `.cache`, what `just setup` fills), else the `.cache/annotations` folder of the source
    /// checkout the binary runs from (found from the executable's location at run time), else
    /// `$XDG_CACHE_HOME/imagenetx/annotations` or `~/.cache/imagenetx/annotations`.
    pub fn discover(explicit: Option<&Path>) -> Result<Self> {
        if let Some(path) = explicit {
            return AnnotationDir::new(path);
        }
        if let Some(path) = std::env::var_os("IMAGENETX_ANNOTATIONS") {
            return AnnotationDir::new(PathBuf::from(path));
        }
        let candidates = default_locations();
        for candidate in &candidates {
            if candidate.join("imagenet_labels.txt").is_file() {
                return AnnotationDir::new(candidate.clone());
            }
        }
        let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        Err(Error::AnnotationsNotFound {
            message: format!(
                "no ImageNet-X annotations found (looked in --annotations, $IMAGENETX_ANNOTATIONS, {}).{}",
                tried.join(", "),
                HOW_TO_GET
            ),
        })
    }

    /// Reads the factor annotations through `cache` (see [`ParseCache`]); `None` parses them
    /// every time (the default).
    pub fn with_parse_cache(mut self, cache: Option<ParseCache>) -> Self {
        self.parse_cache = cache;
        self
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of one of the files.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Path of the factor annotations of a partition and selection.
    pub fn factor_file(&self, partition: Partition, selection: Selection) -> PathBuf {
        self.file(&format!(
            "imagenet_x_{}_{}_factor.jsonl",
            partition.name(),
            selection.name()
        ))
    }

    /// The factor annotations, in file order (through the parse cache, if one is set).
    pub fn read_annotations(
        &self,
        partition: Partition,
        selection: Selection,
    ) -> Result<Vec<AnnotationRecord>> {
        let (records, _) = read_annotation_file_cached(
            &self.factor_file(partition, selection),
            labels::N_CLASSES,
            self.parse_cache.as_ref(),
        )?;
        Ok(records)
    }

    /// The prototypical images the toolkit leaves out by default.
    pub fn read_prototypes(&self) -> Result<HashSet<String>> {
        labels::read_prototypes(&self.file("prototypical_paths.csv"))
    }

    /// The metaclass of each of the 1,000 classes (16 named ones kept, the rest `other`).
    pub fn read_class_metaclasses(&self) -> Result<Vec<Metaclass>> {
        labels::read_class_metaclasses(&self.file("imagenet_1k_classes_to_100_metaclasses.csv"))
    }

    /// The ImageNet ReaL label lists of the 50,000 validation images.
    pub fn read_real_labels(&self) -> Result<Vec<Vec<u16>>> {
        labels::read_real_labels(&self.file("imagenet_real_labels.jsonl"))
    }

    /// The WordNet ids and names of the 1,000 classes.
    pub fn read_class_names(&self) -> Result<labels::ClassNames> {
        labels::ClassNames::read(&self.file("imagenet_labels.txt"))
    }

    /// The ImageNet validation labels by file name.
    pub fn read_filename_labels(&self) -> Result<FxHashMap<String, u16>> {
        labels::read_filename_labels(&self.file("filename_label.csv"))
    }

    /// Loads the annotated images the analysis runs on: the factor annotations of the
    /// partition and selection, prototypes removed unless kept, with their metaclasses and
    /// (for validation images) ReaL labels.
    pub fn load_set(&self, options: LoadOptions) -> Result<AnnotatedSet> {
        let records = self.read_annotations(options.partition, options.selection)?;
        AnnotatedSet::build(self, records, options)
    }
}

const HOW_TO_GET: &str = " Run `just setup` in the imagenetx checkout (it fetches them from the \
PyPI wheel imagenet-x==0.0.7, CC BY-NC 4.0), or point --annotations / $IMAGENETX_ANNOTATIONS at \
a folder holding them (e.g. the imagenet_x/annotations folder of that wheel).";

fn default_locations() -> Vec<PathBuf> {
    let mut places = Vec::new();
    if let Some(cache) = std::env::var_os("IMAGENETX_CACHE").filter(|v| !v.is_empty()) {
        places.push(PathBuf::from(cache).join("annotations"));
    }
    // A binary under <checkout>/target/<profile>/ runs from a checkout: found at run time from
    // the executable's location, so no path of the build machine is compiled in.
    if let Some(checkout) = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors()
            .skip(1)
            .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("crates/dataset").is_dir())
            .map(Path::to_path_buf)
    }) {
        places.push(checkout.join(".cache/annotations"));
    }
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        places.push(PathBuf::from(xdg).join("imagenetx/annotations"));
    } else if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        places.push(PathBuf::from(home).join(".cache/imagenetx/annotations"));
    }
    places.dedup();
    places
}

/// The file name of validation image `index` (0-based), as ReaL and the toolkit name it.
pub fn val_file_name(index: usize) -> String {
    format!("ILSVRC2012_val_{:08}.JPEG", index + 1)
}

/// The 0-based index of a validation file name (`ILSVRC2012_val_00000001.JPEG` → 0).
pub fn val_index(file_name: &str) -> Option<usize> {
    val_index_bytes(file_name.as_bytes())
}

/// [`val_index`] of a name given as bytes (a name that is not UTF-8 is not a validation name).
pub fn val_index_bytes(file_name: &[u8]) -> Option<usize> {
    let digits = file_name
        .strip_prefix(b"ILSVRC2012_val_")?
        .strip_suffix(b".JPEG")?;
    if digits.len() != 8 {
        return None;
    }
    let mut number = 0usize;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        number = number * 10 + usize::from(b - b'0');
    }
    number.checked_sub(1)
}

/// Annotated images ready for analysis, with their records and a file-name index.
#[derive(Debug, Clone)]
pub struct AnnotatedSet {
    /// What was loaded.
    pub options: LoadOptions,
    /// The annotation records, in file order (after prototype filtering).
    pub records: Vec<AnnotationRecord>,
    /// The same images for the analysis crate.
    pub annotations: Annotations,
    /// Prototypes left out.
    pub prototypes_removed: usize,
    index: FxHashMap<String, u32>,
    /// Position by validation index, for the common ImageNet val names (`u32::MAX`: absent);
    /// spares a hash of every name when aligning 50,000-row prediction files.
    val_positions: Vec<u32>,
}

impl AnnotatedSet {
    /// Builds the set from annotation records: prototypes are removed unless
    /// `options.keep_prototypes`, metaclasses and ReaL labels are attached.
    pub fn build(
        dir: &AnnotationDir,
        mut records: Vec<AnnotationRecord>,
        options: LoadOptions,
    ) -> Result<Self> {
        let before = records.len();
        // The three small files are independent: read side by side.
        let (prototypes, (real, class_metaclass)) = rayon::join(
            || {
                (!options.keep_prototypes)
                    .then(|| dir.read_prototypes())
                    .transpose()
            },
            || rayon::join(|| dir.read_real_labels(), || dir.read_class_metaclasses()),
        );
        if let Some(prototypes) = prototypes? {
            records.retain(|r| !prototypes.contains(&r.file_name));
        }
        Self::from_parts(records, class_metaclass?, &real?, options, before)
    }

    /// Builds the set from parts already in memory.
    pub fn from_parts(
        records: Vec<AnnotationRecord>,
        class_metaclass: Vec<Metaclass>,
        real_labels: &[Vec<u16>],
        options: LoadOptions,
        before_filtering: usize,
    ) -> Result<Self> {
        let images = records
            .iter()
            .map(|r| AnnotatedImage {
                class: r.class,
                factors: r.factors,
                real: val_index(&r.file_name)
                    .and_then(|i| real_labels.get(i))
                    .map(|labels| labels.clone().into_boxed_slice()),
            })
            .collect();
        let annotations =
            Annotations::new(images, class_metaclass).map_err(|e| Error::AnnotationsNotFound {
                message: format!("annotations do not fit the class mapping: {e}"),
            })?;
        // Validation names are found through `val_positions`; only other names are hashed.
        let index = records
            .iter()
            .enumerate()
            .filter(|(_, r)| val_index(&r.file_name).is_none())
            .map(|(i, r)| (r.file_name.clone(), i as u32))
            .collect();
        let mut val_positions = Vec::new();
        for (position, record) in records.iter().enumerate() {
            if let Some(v) = val_index(&record.file_name) {
                if v >= val_positions.len() {
                    val_positions.resize(v + 1, u32::MAX);
                }
                val_positions[v] = position as u32;
            }
        }
        Ok(AnnotatedSet {
            options,
            prototypes_removed: before_filtering - records.len(),
            records,
            annotations,
            index,
            val_positions,
        })
    }

    /// Position of an image by base file name.
    pub fn position(&self, file_name: &str) -> Option<usize> {
        match val_index(file_name) {
            Some(v) => self.val_position(v),
            None => self.index.get(file_name).map(|i| *i as usize),
        }
    }

    /// Position of validation image `index` (0-based; see [`val_index`]).
    pub fn val_position(&self, index: usize) -> Option<usize> {
        self.val_positions
            .get(index)
            .filter(|p| **p != u32::MAX)
            .map(|p| *p as usize)
    }

    /// Number of annotated images.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(file: &str, class: i64, pose: u8) -> String {
        format!(
            r#"{{"file_name":"{file}","class":{class},"multiple_objects":0,"background":0,"color":0,"brighter":0,"darker":0,"style":0,"larger":0,"smaller":0,"object_blocking":0,"person_blocking":0,"partial_view":0,"pattern":0,"pose":{pose},"shape":0,"subcategory":0,"texture":0,"justification":null,"one_word":"x"}}"#
        )
    }

    fn write(lines: &[String]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        for l in lines {
            writeln!(f, "{l}").expect("write");
        }
        f
    }

    #[test]
    fn reads_records() {
        let f = write(&[line("a.JPEG", 3, 1), String::new(), line("b.JPEG", 999, 0)]);
        let records = read_annotation_file(f.path(), 1000).expect("valid");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].class, 3);
        assert!(records[0].factors.contains(Factor::Pose));
        assert!(records[1].factors.is_empty());
        assert_eq!(records[0].justification, None);
        assert_eq!(records[0].one_word.as_deref(), Some("x"));
    }

    #[test]
    fn errors_name_file_and_line() {
        let f = write(&[line("a.JPEG", 3, 1), line("b.JPEG", 1000, 0)]);
        let err = read_annotation_file(f.path(), 1000)
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2: class 1000 is outside 0..999"), "{err}");
        let f = write(&[line("a.JPEG", 3, 2)]);
        let err = read_annotation_file(f.path(), 1000)
            .unwrap_err()
            .to_string();
        assert!(err.contains(":1: factor pose is 2"), "{err}");
        let f = write(&[line("a.JPEG", 3, 1), line("a.JPEG", 3, 1)]);
        let err = read_annotation_file(f.path(), 1000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":2: a.JPEG is annotated twice (first on line 1)"),
            "{err}"
        );
        let f = write(&["{\"file_name\": \"a\"}".to_string()]);
        let err = read_annotation_file(f.path(), 1000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":1: expected an ImageNet-X annotation object: missing field"),
            "{err}"
        );
    }

    #[test]
    fn cached_reads_say_where_the_records_came_from() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ParseCache::new(dir.path().join("parsed"));
        let f = write(&[line("a.JPEG", 3, 1), line("b.JPEG", 7, 0)]);
        let direct = read_annotation_file(f.path(), 1000).expect("valid");
        let read = |cache: Option<&ParseCache>| {
            read_annotation_file_cached(f.path(), 1000, cache).expect("valid")
        };
        assert_eq!(read(None), (direct.clone(), CacheStatus::Disabled));
        assert_eq!(read(Some(&cache)), (direct.clone(), CacheStatus::Stored));
        assert_eq!(read(Some(&cache)), (direct.clone(), CacheStatus::Hit));
        // A cache folder that cannot be made: parsed, not stored.
        let blocked = ParseCache::new(f.path().join("sub"));
        assert_eq!(read(Some(&blocked)), (direct, CacheStatus::NotStored));
        // A file that does not parse is an error and leaves no entry.
        let bad = write(&[line("a.JPEG", 1000, 0)]);
        let before = std::fs::read_dir(cache.dir()).expect("ls").count();
        assert!(read_annotation_file_cached(bad.path(), 1000, Some(&cache)).is_err());
        assert_eq!(std::fs::read_dir(cache.dir()).expect("ls").count(), before);
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let mut f = write(&[line("a.JPEG", 3, 1)]);
        f.write_all(b"{\"file_name\": \"\xff\"}\n").expect("write");
        let err = read_annotation_file(f.path(), 1000)
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2: not valid UTF-8"), "{err}");
    }

    #[test]
    fn val_names_and_indices() {
        assert_eq!(val_file_name(0), "ILSVRC2012_val_00000001.JPEG");
        assert_eq!(val_index("ILSVRC2012_val_00050000.JPEG"), Some(49_999));
        assert_eq!(val_index("ILSVRC2012_val_00000000.JPEG"), None);
        assert_eq!(val_index("n03633091_15528.JPEG"), None);
    }
}
