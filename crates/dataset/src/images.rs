//! Finding the images of a run: ImageNet's flat validation layout
//! (`ILSVRC2012_val_00000001.JPEG` …), the class-folder layout (`n01440764/…`), the
//! ImageNet-X training subset (`n03633091_15528.JPEG`) or any folder of images.
//!
//! Only regular files are listed as images. Symbolic links are followed (a class folder may
//! be one); entries whose name looks like an image but that are not regular files (FIFOs,
//! devices, sockets, folders, dangling links, link loops) are returned in
//! [`ImageList::skipped`] with the reason, never silently dropped and never opened.
//!
//! The images may also be inside archives, read where they are ([`crate::archives`]): a tar
//! (ImageNet's `ILSVRC2012_img_val.tar`, class-folder tars, a tar of per-class tars),
//! WebDataset shards, Hugging Face parquet shards, one file, a list of files or a pattern
//! (`shards/val-{000000..000009}.tar`, `shards/*.tar`).
//!
//! File names that are not valid UTF-8 are kept exactly: [`ImageEntry::path`] is the real
//! path, and [`ImageEntry::file_name`] is the reversible text of [`escape_file_name`].

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::path::{Path, PathBuf};

use crate::archives::{self, Listing, Member};
use crate::{Error, Result};

/// File extensions taken as images (case-insensitive). Files are decoded by content, so a PNG
/// named `.JPEG` still works; other files (README, JSON, …) are not images.
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpeg", "jpg", "png", "bmp", "gif", "tif", "tiff", "webp", "jpe",
];

/// One image of a run: its path, its file name as a key, its WordNet id, and where its bytes
/// are (a file, or a [`Member`] of an archive).
///
/// Kept compact (ImageNet's training set lists 1.28 M of them): the path is stored once, the
/// name and the WordNet id are read from it; only a name that needs escaping is stored apart.
/// Entries order by path; an archive member's path is the archive's joined with the member's
/// name, so the images of an archive sort together, by member name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    path: Box<Path>,
    /// The escaped name, when it differs from the path's last component.
    escaped: Option<Box<str>>,
    /// Where the WordNet id comes from.
    wnid: WnidFrom,
    /// Where the bytes are, when not in the file at `path`.
    member: Option<Box<Member>>,
}

/// Where an image's WordNet id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WnidFrom {
    /// Its folder's name (class-folder layout).
    Folder,
    /// Its file name's prefix (`n01440764_123.JPEG`).
    Name,
}

impl ImageEntry {
    /// The image at `path`; its WordNet id is taken from its class folder's name when
    /// `class_folder` (if that name is a WordNet id), else from its file name's prefix.
    pub fn new(path: PathBuf, class_folder: bool) -> Self {
        let escaped = match path.file_name().and_then(plain_name) {
            Some(_) => None,
            None => Some(base_name(&path).into_boxed_str()),
        };
        ImageEntry {
            path: path.into_boxed_path(),
            escaped,
            wnid: if class_folder {
                WnidFrom::Folder
            } else {
                WnidFrom::Name
            },
            member: None,
        }
    }

    /// An image inside an archive: `path` is the archive's path joined with the member's name
    /// (its last component is the image's name), `member` where its bytes are.
    pub(crate) fn member(path: PathBuf, class_folder: bool, member: Member) -> Self {
        let mut entry = ImageEntry::new(path, class_folder);
        entry.member = Some(Box::new(member));
        entry
    }

    pub(crate) fn set_label(&mut self, label: u16) {
        if let Some(member) = &mut self.member {
            member.set_label(label);
        }
    }

    /// Where it is: the real path of an image file (whatever bytes its name holds); for an
    /// archive member, the archive's path joined with the member's name
    /// (`val.tar/ILSVRC2012_val_00000001.JPEG`), which names it but cannot be opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file that holds the image: the image file itself, or its archive. Its size and
    /// modification time are what a resumed run checks (an archive rewritten since puts all
    /// its images up for prediction again).
    pub fn file(&self) -> &Path {
        match &self.member {
            Some(member) => member.archive(),
            None => &self.path,
        }
    }

    /// Where the bytes are when the image is inside an archive (`None` for an image file).
    pub fn archive_member(&self) -> Option<&Member> {
        self.member.as_deref()
    }

    /// The class index its archive gives it (a WebDataset `.cls`, a parquet `label`).
    pub fn label(&self) -> Option<u16> {
        self.member.as_ref().and_then(|m| m.label())
    }

    /// Its base file name as text ([`escape_file_name`]: unchanged for UTF-8 names without a
    /// backslash): the key of predictions and annotations.
    pub fn file_name(&self) -> &str {
        match &self.escaped {
            Some(name) => name,
            None => self
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default(),
        }
    }

    /// The WordNet id its folder or name gives (`n01440764/…` or `n01440764_123.JPEG`).
    pub fn wnid(&self) -> Option<&str> {
        match self.wnid {
            WnidFrom::Folder => self
                .path
                .parent()
                .and_then(Path::file_name)
                .and_then(|n| n.to_str())
                .filter(|n| is_wnid(n)),
            WnidFrom::Name => wnid_of_name(self.file_name()),
        }
    }
}

/// An entry that looks like an image (by its name) but is not read: not a regular file, or
/// not reachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// Where it is.
    pub path: PathBuf,
    /// Its base file name, as [`escape_file_name`] writes it.
    pub file_name: String,
    /// Why it is skipped, e.g. `not a regular file: FIFO (named pipe)` or
    /// `dangling symbolic link`.
    pub reason: String,
}

/// How the images are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FolderLayout {
    /// Images directly in the folder.
    Flat,
    /// One sub-folder per class (named by WordNet id, or anything else).
    ClassFolders,
    /// Tar archives of images, flat (`ILSVRC2012_img_val.tar`).
    Tar,
    /// Tar archives with class folders (`n01440764/…`) or per-class tars
    /// (`ILSVRC2012_img_train.tar`).
    TarClassFolders,
    /// WebDataset shards: tars of `{key}.jpg` with `{key}.cls` labels.
    WebDataset,
    /// Hugging Face parquet shards (`image.bytes`, `image.path`, `label`).
    Parquet,
}

/// The images found, in path order.
#[derive(Debug, Clone)]
pub struct ImageList {
    /// The layout detected.
    pub layout: FolderLayout,
    /// The images: regular files (after following symbolic links).
    pub images: Vec<ImageEntry>,
    /// Entries named like images that are not read (FIFOs, devices, sockets, folders,
    /// dangling links, link loops, entries that cannot be inspected), in path order. A
    /// caller should list them and fail, so that nothing is left out unnoticed.
    pub skipped: Vec<SkippedEntry>,
}

/// The text of a file name: valid UTF-8 names without a backslash are unchanged; otherwise
/// each `\` becomes `\\` and each byte that is not part of valid UTF-8 becomes `\xHH`
/// (lowercase hex). The mapping is one-to-one, and [`unescape_file_name`] reverses it, so two
/// distinct names never share a text. (On Windows the bytes are the OS string's WTF-8
/// encoding.)
pub fn escape_file_name(name: &OsStr) -> String {
    if let Some(text) = plain_name(name) {
        return text.to_owned();
    }
    let bytes = name.as_encoded_bytes();
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The name as it is, when [`escape_file_name`] leaves it unchanged (UTF-8 without a
/// backslash).
fn plain_name(name: &OsStr) -> Option<&str> {
    name.to_str().filter(|text| !text.contains('\\'))
}

/// Reverses [`escape_file_name`]. `None` when `text` is not one of its outputs: a backslash
/// not followed by `\` or `x` and two lowercase hex digits, or (on Windows) bytes that are
/// not a valid OS string.
pub fn unescape_file_name(text: &str) -> Option<OsString> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b != b'\\' {
            bytes.push(b);
            rest = tail;
            continue;
        }
        match tail {
            [b'\\', more @ ..] => {
                bytes.push(b'\\');
                rest = more;
            }
            [b'x', hi, lo, more @ ..] => {
                let digit = |d: u8| match d {
                    b'0'..=b'9' => Some(d - b'0'),
                    b'a'..=b'f' => Some(d - b'a' + 10),
                    _ => None,
                };
                bytes.push(digit(*hi)? << 4 | digit(*lo)?);
                rest = more;
            }
            _ => return None,
        }
    }
    let name = bytes_to_os_string(bytes)?;
    // Only canonical texts: an escaped byte that is part of valid UTF-8 is not one.
    (escape_file_name(&name) == text).then_some(name)
}

#[cfg(unix)]
fn bytes_to_os_string(bytes: Vec<u8>) -> Option<OsString> {
    use std::os::unix::ffi::OsStringExt;
    Some(OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn bytes_to_os_string(bytes: Vec<u8>) -> Option<OsString> {
    String::from_utf8(bytes).ok().map(OsString::from)
}

/// Whether a name has an image extension ([`IMAGE_EXTENSIONS`]).
pub(crate) fn is_image_name(path: &Path) -> bool {
    is_image(path)
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

pub(crate) fn is_wnid(s: &str) -> bool {
    s.len() == 9 && s.starts_with('n') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

fn wnid_of_name(file_name: &str) -> Option<&str> {
    let (prefix, _) = file_name.split_once('_')?;
    is_wnid(prefix).then_some(prefix)
}

/// What an entry is, symbolic links followed.
enum EntryKind {
    File,
    Dir(Metadata),
    /// Not readable as an image, and why.
    Other(String),
}

fn classify(path: &Path) -> EntryKind {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => EntryKind::File,
        Ok(meta) if meta.is_dir() => EntryKind::Dir(meta),
        Ok(meta) => EntryKind::Other(format!(
            "not a regular file: {}",
            imagenetx_vocab::file_kind(&meta.file_type())
        )),
        Err(error) => {
            let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            let reason = if is_link && error.kind() == std::io::ErrorKind::NotFound {
                "dangling symbolic link".to_owned()
            } else if is_link && is_loop_error(&error) {
                "symbolic link loop".to_owned()
            } else {
                format!("cannot inspect: {error}")
            };
            EntryKind::Other(reason)
        }
    }
}

#[cfg(unix)]
fn is_loop_error(error: &std::io::Error) -> bool {
    error.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
}

#[cfg(not(unix))]
fn is_loop_error(_: &std::io::Error) -> bool {
    false
}

/// A folder's identity, to notice a folder reached twice through symbolic links.
#[cfg(unix)]
fn identity(meta: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(_: &Metadata) -> Option<(u64, u64)> {
    None
}

fn skipped(path: PathBuf, reason: impl Into<String>) -> SkippedEntry {
    SkippedEntry {
        file_name: base_name(&path),
        path,
        reason: reason.into(),
    }
}

/// Lists the images under `root`: its image files, and those of its immediate sub-folders
/// (class-folder layout). A single image file is a list of one. `limit` keeps the first N in
/// path order (and the skipped entries up to the last image kept). Two images with the same
/// base file name are an error (names are keys).
///
/// Symbolic links are followed, files and class folders alike; a class folder that is the
/// top folder or another class folder again (a link loop) is listed once, and the link is
/// returned in [`ImageList::skipped`]. Entries named like images that are not regular files
/// are returned there too, with the reason; they are never opened.
///
/// A folder with neither images nor sub-folders but archive files (`.tar`, `.parquet`) is the
/// list of those archives. `root` may also be an archive ([`crate::archives`]: a tar, a WebDataset shard, a parquet
/// shard, recognised by content) or a pattern of them (`shards/val-{000000..000009}.tar`,
/// `shards/*.tar`, used as a pattern when no such file exists; see [`expand_pattern`](crate::expand_pattern)).
pub fn discover_images(root: &Path, limit: Option<usize>) -> Result<ImageList> {
    if archives::is_pattern(root) {
        let text = root.to_str().unwrap_or_default();
        return discover_images_in(&archives::expand_pattern(text)?, limit);
    }
    let meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
    if !meta.is_dir() {
        if !meta.is_file() {
            return Err(Error::content(
                root,
                format!(
                    "not a regular file or folder: {}",
                    imagenetx_vocab::file_kind(&meta.file_type())
                ),
            ));
        }
        if let Some(kind) = archives::archive_kind(root)? {
            let mut listing = Listing::default();
            archives::list_archive(root, kind, &mut listing)?;
            return finish(
                root,
                listing.layout(),
                listing.images,
                listing.skipped,
                limit,
            );
        }
        return Ok(ImageList {
            layout: FolderLayout::Flat,
            images: vec![ImageEntry::new(root.to_path_buf(), false)],
            skipped: Vec::new(),
        });
    }
    let mut visited = HashSet::new();
    visited.extend(identity(&meta));
    let mut images = Vec::new();
    let mut skipped_entries = Vec::new();
    let mut folders = Vec::new();
    let mut archive_files = Vec::new();
    for path in read_dir(root)? {
        match classify(&path) {
            EntryKind::Dir(meta) => folders.push((path, meta)),
            EntryKind::File if is_image(&path) => images.push(ImageEntry::new(path, false)),
            EntryKind::File if archives::has_archive_extension(&path) => archive_files.push(path),
            EntryKind::Other(reason) if is_image(&path) => {
                skipped_entries.push(skipped(path, reason));
            }
            EntryKind::File | EntryKind::Other(_) => {}
        }
    }
    // A folder of archives only (WebDataset shards, a Hugging Face `data/` folder of parquet
    // files): their images.
    if images.is_empty() && folders.is_empty() && !archive_files.is_empty() {
        archive_files.sort();
        return discover_images_in(&archive_files, limit);
    }
    let layout = if images.is_empty() && !folders.is_empty() {
        FolderLayout::ClassFolders
    } else {
        FolderLayout::Flat
    };
    if layout == FolderLayout::ClassFolders {
        folders.sort_by(|a, b| a.0.cmp(&b.0));
        let mut listings = Vec::with_capacity(folders.len());
        for (folder, meta) in folders {
            if let Some(id) = identity(&meta)
                && !visited.insert(id)
            {
                skipped_entries.push(skipped(
                    folder,
                    "symbolic link loop: this folder is the top folder or another class \
                     folder again",
                ));
                continue;
            }
            let mut files = Vec::new();
            for path in read_dir(&folder)? {
                if !is_image(&path) {
                    continue;
                }
                match classify(&path) {
                    EntryKind::File => files.push(path),
                    EntryKind::Dir(_) => {
                        skipped_entries.push(skipped(path, "not a regular file: directory"));
                    }
                    EntryKind::Other(reason) => skipped_entries.push(skipped(path, reason)),
                }
            }
            listings.push(files);
        }
        // Sized once: a vector doubling its way to ImageNet's 1.28 M training images holds
        // three times the memory while it copies.
        images.reserve_exact(listings.iter().map(Vec::len).sum());
        for files in listings {
            images.extend(files.into_iter().map(|path| ImageEntry::new(path, true)));
        }
    }
    finish(root, layout, images, skipped_entries, limit)
}

/// The images of several files: archives (or patterns of them, see [`expand_pattern`](crate::expand_pattern)) and
/// image files, together in one list in path order. One path is [`discover_images`].
pub fn discover_images_in(paths: &[PathBuf], limit: Option<usize>) -> Result<ImageList> {
    if let [one] = paths {
        return discover_images(one, limit);
    }
    let mut files = Vec::new();
    for path in paths {
        if archives::is_pattern(path) {
            files.extend(archives::expand_pattern(path.to_str().unwrap_or_default())?);
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    files.dedup();
    let Some(first) = files.first().cloned() else {
        return Err(Error::content("--images", "no files given"));
    };
    let mut listing = Listing::default();
    let mut loose = false;
    for path in &files {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(Error::content(
                path,
                format!(
                    "one of several image sources must be an archive or image file, not a {}",
                    imagenetx_vocab::file_kind(&meta.file_type())
                ),
            ));
        }
        match archives::archive_kind(path)? {
            Some(kind) => archives::list_archive(path, kind, &mut listing)?,
            None if is_image(path) => {
                loose = true;
                listing.images.push(ImageEntry::new(path.clone(), false));
            }
            None => {
                return Err(Error::content(
                    path,
                    "neither an archive (tar, parquet) nor an image file",
                ));
            }
        }
    }
    let layout = if loose && listing.images.iter().all(|i| i.member.is_none()) {
        FolderLayout::Flat
    } else {
        listing.layout()
    };
    finish(&first, layout, listing.images, listing.skipped, limit)
}

/// Sorts the images found under `root` by path, checks that there are some and that their
/// names are distinct, and keeps the first `limit`.
fn finish(
    root: &Path,
    layout: FolderLayout,
    mut images: Vec<ImageEntry>,
    mut skipped_entries: Vec<SkippedEntry>,
    limit: Option<usize>,
) -> Result<ImageList> {
    images.sort_by(|a, b| a.path.cmp(&b.path));
    // The vector doubled while growing: give back the spare room (58 MB for ImageNet's
    // 1.28 M training images).
    images.shrink_to_fit();
    skipped_entries.sort_by(|a, b| a.path.cmp(&b.path));
    if images.is_empty() {
        let skipped_note = match skipped_entries.first() {
            Some(first) => format!(
                "; {} entries named like images skipped, first {}: {}",
                skipped_entries.len(),
                first.path.display(),
                first.reason
            ),
            None => String::new(),
        };
        return Err(Error::content(
            root,
            format!(
                "no images found (looked for {} files in the folder and its class folders, or the members of the archives{skipped_note})",
                IMAGE_EXTENSIONS.join("/")
            ),
        ));
    }
    // Names are keys: the first image (in path order) whose name an earlier image has is an
    // error. Found by sorting indices by name (4 bytes an image, not a hash map of them).
    let mut order: Vec<u32> = (0..images.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| {
        images[a as usize]
            .file_name()
            .cmp(images[b as usize].file_name())
            .then(a.cmp(&b))
    });
    let repeat = order
        .windows(2)
        .filter(|w| images[w[0] as usize].file_name() == images[w[1] as usize].file_name())
        .min_by_key(|w| w[1]);
    if let Some(w) = repeat {
        let (first, again) = (&images[w[0] as usize], &images[w[1] as usize]);
        return Err(Error::content(
            again.path(),
            format!(
                "same file name as {} (file names identify images in predictions and annotations)",
                first.path.display()
            ),
        ));
    }
    drop(order);
    if let Some(limit) = limit
        && limit < images.len()
    {
        images.truncate(limit);
        match images.last() {
            Some(last) => skipped_entries.retain(|s| s.path.as_path() <= last.path()),
            None => skipped_entries.clear(),
        }
    }
    Ok(ImageList {
        layout,
        images,
        skipped: skipped_entries,
    })
}

fn base_name(path: &Path) -> String {
    path.file_name().map(escape_file_name).unwrap_or_default()
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut paths = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(|e| Error::io(dir, e))?.path());
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, b"x").expect("write");
    }

    #[test]
    fn flat_folder_in_path_order_with_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in [
            "ILSVRC2012_val_00000002.JPEG",
            "ILSVRC2012_val_00000001.JPEG",
            "notes.txt",
            "n01440764_1.JPEG",
        ] {
            touch(&dir.path().join(name));
        }
        let list = discover_images(dir.path(), None).expect("images");
        assert_eq!(list.layout, FolderLayout::Flat);
        let names: Vec<&str> = list.images.iter().map(|i| i.file_name()).collect();
        assert_eq!(
            names,
            [
                "ILSVRC2012_val_00000001.JPEG",
                "ILSVRC2012_val_00000002.JPEG",
                "n01440764_1.JPEG"
            ]
        );
        assert_eq!(list.images[2].wnid(), Some("n01440764"));
        assert_eq!(
            discover_images(dir.path(), Some(1))
                .expect("images")
                .images
                .len(),
            1
        );
    }

    #[test]
    fn class_folders_give_wnids_and_clashing_names_fail() {
        let dir = tempfile::tempdir().expect("temp dir");
        touch(&dir.path().join("n01440764/a.JPEG"));
        touch(&dir.path().join("n01443537/b.png"));
        let list = discover_images(dir.path(), None).expect("images");
        assert_eq!(list.layout, FolderLayout::ClassFolders);
        assert_eq!(list.images[1].wnid(), Some("n01443537"));
        touch(&dir.path().join("n01443537/a.JPEG"));
        let err = discover_images(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("same file name"), "{err}");
        let empty = tempfile::tempdir().expect("temp dir");
        assert!(discover_images(empty.path(), None).is_err());
    }

    #[cfg(unix)]
    fn os(bytes: &[u8]) -> OsString {
        use std::os::unix::ffi::OsStrExt;
        OsStr::from_bytes(bytes).to_owned()
    }

    #[cfg(unix)]
    #[test]
    fn escaped_names_by_hand() {
        let cases: [(&[u8], &str); 6] = [
            (
                b"ILSVRC2012_val_00000001.JPEG",
                "ILSVRC2012_val_00000001.JPEG",
            ),
            ("caf\u{e9}.png".as_bytes(), "caf\u{e9}.png"),
            (b"a\\b.png", "a\\\\b.png"),
            (b"a\xff.png", "a\\xff.png"),
            (b"\xff", "\\xff"),
            (b"\xc3\x28\\x.png", "\\xc3(\\\\x.png"),
        ];
        for (name, text) in cases {
            assert_eq!(escape_file_name(&os(name)), text);
            assert_eq!(unescape_file_name(text), Some(os(name)));
        }
        // Not outputs of the escape: lone backslash, uppercase hex, escaped valid UTF-8.
        for text in ["a\\", "a\\q", "\\xFF", "\\x41", "\\x4"] {
            assert_eq!(unescape_file_name(text), None, "{text}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn names_differing_in_invalid_bytes_are_both_found() {
        let dir = tempfile::tempdir().expect("temp dir");
        touch(&dir.path().join(os(b"n01440764_1\xff.JPEG")));
        touch(&dir.path().join(os(b"n01440764_1\xfe.JPEG")));
        let list = discover_images(dir.path(), None).expect("no clash");
        let names: Vec<&str> = list.images.iter().map(|i| i.file_name()).collect();
        assert_eq!(names, ["n01440764_1\\xfe.JPEG", "n01440764_1\\xff.JPEG"]);
        assert_eq!(list.images[0].wnid(), Some("n01440764"));
    }

    #[cfg(unix)]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn escaping_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
                let name = os(&bytes);
                let text = escape_file_name(&name);
                prop_assert_eq!(unescape_file_name(&text), Some(name));
            }

            #[test]
            fn distinct_names_never_collide(
                a in proptest::collection::vec(any::<u8>(), 0..12),
                b in proptest::collection::vec(any::<u8>(), 0..12),
            ) {
                prop_assume!(a != b);
                prop_assert_ne!(escape_file_name(&os(&a)), escape_file_name(&os(&b)));
            }

            #[test]
            fn utf8_names_without_backslash_are_unchanged(name in "[^\\\\]{0,30}") {
                prop_assert_eq!(escape_file_name(OsStr::new(&name)), name);
            }

            #[test]
            fn near_collisions_stay_apart(prefix in "[a-z\\\\]{0,4}", byte in 0x80u8..=0xff) {
                // A name with an invalid byte and one spelling its escape in text.
                let mut raw = prefix.clone().into_bytes();
                raw.push(byte);
                let spelled = format!("{prefix}\\x{byte:02x}");
                prop_assert_ne!(escape_file_name(&os(&raw)), escape_file_name(OsStr::new(&spelled)));
            }
        }
    }
}
