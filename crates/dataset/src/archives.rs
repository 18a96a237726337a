//! Images inside archives, read where they are: tar files (ImageNet's
//! `ILSVRC2012_img_val.tar`, class-folder tars, a tar of per-class tars like
//! `ILSVRC2012_img_train.tar`), WebDataset shards (tars of `{key}.jpg` with an optional
//! `{key}.cls` label) and Hugging Face parquet shards (an `image` struct of `bytes` and
//! `path`, and a `label` column).
//!
//! Nothing is extracted and no archive is held in memory. Listing reads only what names the
//! images: tar headers (the data of each member is skipped by seeking, except `.cls` labels
//! of a few bytes), a parquet file's `image.path` and `label` columns. Each image is an
//! [`ImageEntry`] whose [`Member`] says where its bytes are: a tar member's data offset and
//! size (read with one positioned read), a parquet row (its row group and row). The bytes of
//! one image are read when it is decoded, so decoding stays parallel and in any order.
//!
//! An image's name ([`ImageEntry::file_name`]) is its member's base name (tar) or the base
//! name of its `image.path` (parquet): what ImageNet-X's annotations key on
//! (`ILSVRC2012_val_00000001.JPEG`). Its [`ImageEntry::path`] is the archive's path joined
//! with the member's name (`val.tar/n01440764/x.JPEG`), which orders the entries and names
//! them in messages; [`ImageEntry::file`] is the archive itself.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::images::{FolderLayout, ImageEntry, SkippedEntry, is_image_name};
use crate::{Error, Result};

/// Largest `.cls` member read as a label (a class index as text).
const MAX_LABEL_BYTES: u64 = 64;

/// Where the bytes of an image inside an archive are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    archive: Arc<Path>,
    location: Location,
    label: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    /// A tar member's data: `size` bytes at `offset` of the archive file.
    Tar { offset: u64, size: u64 },
    /// Row `row` of row group `row_group`, in leaf column `column` (`image.bytes`).
    Parquet {
        row_group: u32,
        row: u32,
        column: u32,
    },
}

impl Member {
    pub(crate) fn set_label(&mut self, label: u16) {
        self.label = Some(label);
    }

    /// The archive file that holds the image.
    pub fn archive(&self) -> &Path {
        &self.archive
    }

    /// The class index the archive gives the image (a WebDataset `.cls` member, a parquet
    /// `label` column), if any.
    pub fn label(&self) -> Option<u16> {
        self.label
    }

    /// The image's size in bytes, when it is known before reading (tar members).
    pub fn size(&self) -> Option<u64> {
        match self.location {
            Location::Tar { size, .. } => Some(size),
            Location::Parquet { .. } => None,
        }
    }

    /// Where the image is, for messages: `offset 1536, 110 KiB` or `row group 2, row 17`.
    pub fn location(&self) -> String {
        match self.location {
            Location::Tar { offset, size } => {
                format!("tar member at offset {offset}, {size} bytes")
            }
            Location::Parquet { row_group, row, .. } => {
                format!("parquet row group {row_group}, row {row}")
            }
        }
    }

    /// Reads the image's bytes, at most `max_bytes` (a larger image is an error of kind
    /// `InvalidData`, raised before its bytes are read when the size is known).
    ///
    /// A tar member is one positioned read. A parquet image is reached by skipping rows in its
    /// row group; each thread keeps its place (one column reader, holding at most a page and
    /// the parquet file open), so the images of a row group read in row order on a thread
    /// cost one pass over it, not a pass from its start each.
    pub fn read(&self, max_bytes: u64) -> std::io::Result<Vec<u8>> {
        thread_local! {
            static READER: std::cell::RefCell<MemberReader> =
                std::cell::RefCell::new(MemberReader::default());
        }
        if matches!(self.location, Location::Tar { .. }) {
            return MemberReader::default().read(self, max_bytes);
        }
        READER.with(|reader| match reader.try_borrow_mut() {
            Ok(mut reader) => reader.read(self, max_bytes),
            Err(_) => MemberReader::default().read(self, max_bytes),
        })
    }
}

/// Reads archive members, keeping its place in a parquet row group: a later row of the same
/// row group is reached by skipping only the rows in between.
#[derive(Default)]
struct MemberReader {
    cursor: Option<ParquetCursor>,
}

struct ParquetCursor {
    archive: Arc<Path>,
    row_group: u32,
    column: u32,
    /// The row the reader is at.
    next_row: u32,
    reader: parquet::column::reader::ColumnReaderImpl<parquet::data_type::ByteArrayType>,
}

impl std::fmt::Debug for MemberReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberReader")
            .field(
                "at",
                &self
                    .cursor
                    .as_ref()
                    .map(|c| (&c.archive, c.row_group, c.next_row)),
            )
            .finish()
    }
}

impl MemberReader {
    /// Reads `member`'s bytes, at most `max_bytes` (as [`Member::read`]).
    fn read(&mut self, member: &Member, max_bytes: u64) -> std::io::Result<Vec<u8>> {
        match member.location {
            Location::Tar { offset, size } => {
                if size > max_bytes {
                    return Err(too_large(size, max_bytes));
                }
                let file = File::open(&member.archive)?;
                let len = file.metadata()?.len();
                if offset.saturating_add(size) > len {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "the archive ends inside the member ({len} bytes, the member's data ends at {})",
                            offset.saturating_add(size)
                        ),
                    ));
                }
                let mut bytes = Vec::new();
                bytes
                    .try_reserve_exact(usize::try_from(size).unwrap_or(usize::MAX))
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::OutOfMemory, e))?;
                bytes.resize(size as usize, 0);
                read_exact_at(&file, &mut bytes, offset)?;
                Ok(bytes)
            }
            Location::Parquet {
                row_group,
                row,
                column,
            } => self
                .read_parquet(&member.archive, row_group, row, column, max_bytes)
                .map_err(|e| {
                    // A failed read leaves the reader's place unknown: start afresh next time.
                    self.cursor = None;
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
                }),
        }
    }

    /// Reads one value of a byte-array column: from the cursor when it is in the same row
    /// group before the row, else from a column reader opened at the row group's start.
    fn read_parquet(
        &mut self,
        path: &Arc<Path>,
        row_group: u32,
        row: u32,
        column: u32,
        max_bytes: u64,
    ) -> std::result::Result<Vec<u8>, String> {
        let reusable = self.cursor.as_ref().is_some_and(|c| {
            Arc::ptr_eq(&c.archive, path)
                && c.row_group == row_group
                && c.column == column
                && c.next_row <= row
        });
        if !reusable {
            self.cursor = None;
            self.cursor = Some(ParquetCursor {
                archive: path.clone(),
                row_group,
                column,
                next_row: 0,
                reader: open_byte_array_column(path, row_group, column)?,
            });
        }
        let Some(cursor) = self.cursor.as_mut() else {
            return Err("no column reader".into());
        };
        let gap = (row - cursor.next_row) as usize;
        let skipped = cursor.reader.skip_records(gap).map_err(|e| e.to_string())?;
        if skipped != gap {
            return Err(format!("row {row} is past the row group's end"));
        }
        let (mut defs, mut values) = (Vec::new(), Vec::new());
        let (records, _, _) = cursor
            .reader
            .read_records(1, Some(&mut defs), None, &mut values)
            .map_err(|e| e.to_string())?;
        if records != 1 {
            return Err(format!("row {row} is past the row group's end"));
        }
        cursor.next_row = row + 1;
        let value = match values.pop() {
            Some(v) => v,
            None => return Err("image.bytes is null".into()),
        };
        let len = value.len() as u64;
        if len > max_bytes {
            return Err(format!("{len} bytes, over the limit of {max_bytes}"));
        }
        Ok(value.data().to_vec())
    }
}

fn too_large(size: u64, limit: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{size} bytes, over the limit of {limit}"),
    )
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// The kind of archive a file is, from its first bytes (parquet's `PAR1`, the tar magic at
/// byte 257), else from its extension (`.tar`, for a tar without the POSIX magic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArchiveKind {
    Tar,
    Parquet,
}

pub(crate) fn archive_kind(path: &Path) -> Result<Option<ArchiveKind>> {
    let mut head = [0u8; 263];
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    let head = &head[..got];
    let name = path.to_string_lossy().to_ascii_lowercase();
    let compressed = [
        &b"\x1f\x8b"[..],
        b"\x28\xb5\x2f\xfd",
        b"\xfd7zXZ\x00",
        b"BZh",
    ]
    .iter()
    .any(|magic| head.starts_with(magic));
    if compressed && (name.contains(".tar") || name.ends_with(".tgz")) {
        return Err(Error::content(
            path,
            "a compressed tar: images are read in place by their offsets, which needs an \
             uncompressed tar (decompress it first, e.g. `gunzip` or `zstd -d`)",
        ));
    }
    if head.starts_with(b"PAR1") {
        return Ok(Some(ArchiveKind::Parquet));
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Ok(Some(ArchiveKind::Tar));
    }
    let ext = path.extension().and_then(OsStr::to_str).unwrap_or("");
    Ok(if ext.eq_ignore_ascii_case("tar") {
        Some(ArchiveKind::Tar)
    } else if ext.eq_ignore_ascii_case("parquet") {
        Some(ArchiveKind::Parquet)
    } else {
        None
    })
}

/// Whether a file is named like an archive (`.tar`, `.parquet`).
pub(crate) fn has_archive_extension(path: &Path) -> bool {
    path.extension()
        .and_then(OsStr::to_str)
        .is_some_and(|e| e.eq_ignore_ascii_case("tar") || e.eq_ignore_ascii_case("parquet"))
}

/// What the archives of a run hold.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub images: Vec<ImageEntry>,
    pub skipped: Vec<SkippedEntry>,
    /// Some member had a WebDataset `.cls` label.
    pub webdataset: bool,
    /// Some image was in a class folder or a per-class tar.
    pub class_folders: bool,
    pub parquet: bool,
}

impl Listing {
    pub fn layout(&self) -> FolderLayout {
        if self.parquet {
            FolderLayout::Parquet
        } else if self.webdataset {
            FolderLayout::WebDataset
        } else if self.class_folders {
            FolderLayout::TarClassFolders
        } else {
            FolderLayout::Tar
        }
    }
}

/// Lists the images of one archive file into `out`.
pub(crate) fn list_archive(path: &Path, kind: ArchiveKind, out: &mut Listing) -> Result<()> {
    match kind {
        ArchiveKind::Tar => list_tar(path, out),
        ArchiveKind::Parquet => list_parquet(path, out),
    }
}

/// A window `[start, start + len)` of a file, read and sought as a file of its own: a tar
/// inside a tar.
struct Window {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

fn list_tar(path: &Path, out: &mut Listing) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let archive: Arc<Path> = Arc::from(path);
    let window = Window {
        file,
        start: 0,
        len,
        pos: 0,
    };
    list_tar_window(&archive, window, path.to_path_buf(), true, out)
}

/// Lists a tar (the whole file, or a member tar of it: `window`), naming members under
/// `prefix`. Per-class tars inside are listed when `nested` is allowed (one level).
fn list_tar_window(
    archive: &Arc<Path>,
    window: Window,
    prefix: PathBuf,
    nested: bool,
    out: &mut Listing,
) -> Result<()> {
    let (start, len) = (window.start, window.len);
    let inner_file = window.file.try_clone().map_err(|e| Error::io(&prefix, e))?;
    let mut tar = tar::Archive::new(window);
    let entries = tar
        .entries_with_seek()
        .map_err(|e| Error::content(&prefix, format!("not a readable tar archive: {e}")))?;
    let mut labels: HashMap<PathBuf, u16> = HashMap::new();
    let first_image = out.images.len();
    for (members, entry) in entries.enumerate() {
        let mut entry = entry.map_err(|e| {
            Error::content(
                &prefix,
                format!("not a readable tar archive after {members} members (truncated or damaged?): {e}"),
            )
        })?;
        let raw = entry.path_bytes().into_owned();
        let name = bytes_to_path(&raw);
        let safe = safe_member_name(&name);
        // `./x.JPEG` is `x.JPEG`.
        let name: PathBuf = name
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        let offset = start + entry.raw_file_position();
        let size = entry.size();
        let kind = entry.header().entry_type();
        let shown = prefix.join(&name);
        let is_tar = name
            .extension()
            .and_then(OsStr::to_str)
            .is_some_and(|e| e.eq_ignore_ascii_case("tar"));
        let is_label = name
            .extension()
            .and_then(OsStr::to_str)
            .is_some_and(|e| e.eq_ignore_ascii_case("cls"));
        let image = is_image_name(&name);
        if !(image || is_tar || is_label) || kind.is_dir() {
            continue;
        }
        if !safe {
            if image || is_tar {
                out.skipped.push(skipped(
                    shown,
                    "unsafe member name (absolute, or climbs out of the archive with `..`)",
                ));
            }
            continue;
        }
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            if image || is_tar {
                out.skipped.push(skipped(
                    shown,
                    format!("not a regular file: tar member of type {kind:?}"),
                ));
            }
            continue;
        }
        if offset.saturating_add(size) > start + len {
            out.skipped.push(skipped(
                shown,
                format!(
                    "truncated: the archive ends inside this member (its {size} bytes would end at {}, the archive has {})",
                    offset.saturating_add(size),
                    start + len
                ),
            ));
            continue;
        }
        if is_tar {
            if !nested {
                out.skipped.push(skipped(
                    shown,
                    "a tar inside a tar inside a tar is not read",
                ));
                continue;
            }
            let inner = Window {
                file: inner_file.try_clone().map_err(|e| Error::io(&prefix, e))?,
                start: offset,
                len: size,
                pos: 0,
            };
            list_tar_window(archive, inner, shown, false, out)?;
            out.class_folders = true;
            continue;
        }
        if is_label {
            if size <= MAX_LABEL_BYTES {
                let mut text = String::new();
                let label = entry
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse::<u16>().ok())
                    .filter(|&c| usize::from(c) < imagenetx_vocab::N_CLASSES);
                if let Some(label) = label {
                    labels.insert(webdataset_key(&name), label);
                }
            }
            continue;
        }
        let class_folder = name
            .parent()
            .and_then(Path::file_name)
            .and_then(OsStr::to_str)
            .is_some_and(crate::images::is_wnid);
        out.class_folders |= class_folder;
        out.images.push(ImageEntry::member(
            shown,
            class_folder,
            Member {
                archive: archive.clone(),
                location: Location::Tar { offset, size },
                label: None,
            },
        ));
    }
    if !labels.is_empty() {
        out.webdataset = true;
        for image in &mut out.images[first_image..] {
            let key = image
                .path()
                .strip_prefix(&prefix)
                .map(webdataset_key)
                .unwrap_or_default();
            if let Some(&label) = labels.get(&key) {
                image.set_label(label);
            }
        }
    }
    Ok(())
}

/// A WebDataset sample's key: the member's folder and its base name up to the first dot.
fn webdataset_key(name: &Path) -> PathBuf {
    let base = name
        .file_name()
        .map(|n| {
            let bytes = n.as_encoded_bytes();
            let end = bytes.iter().position(|&b| b == b'.').unwrap_or(bytes.len());
            bytes_to_path(&bytes[..end])
        })
        .unwrap_or_default();
    match name.parent() {
        Some(parent) => parent.join(base),
        None => base,
    }
}

/// A member name that stays inside the archive: relative, no `..`.
fn safe_member_name(name: &Path) -> bool {
    name.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && name.file_name().is_some()
}

#[cfg(unix)]
fn bytes_to_path(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn bytes_to_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

fn skipped(path: PathBuf, reason: impl Into<String>) -> SkippedEntry {
    SkippedEntry {
        file_name: path
            .file_name()
            .map(crate::escape_file_name)
            .unwrap_or_default(),
        path,
        reason: reason.into(),
    }
}

mod pq {
    pub use parquet::column::reader::ColumnReader;
    pub use parquet::data_type::ByteArray;
    pub use parquet::file::reader::FileReader;
    pub use parquet::file::serialized_reader::SerializedFileReader;
}

/// The leaf columns of a Hugging Face image dataset's parquet file.
struct ParquetColumns {
    bytes: usize,
    path: usize,
    label: Option<usize>,
}

fn parquet_columns(path: &Path, reader: &pq::SerializedFileReader<File>) -> Result<ParquetColumns> {
    use pq::FileReader;
    let schema = reader.metadata().file_metadata().schema_descr();
    let names: Vec<String> = (0..schema.num_columns())
        .map(|i| schema.column(i).path().string())
        .collect();
    let find = |want: &str| names.iter().position(|n| n == want);
    let missing = |want: &str| {
        Error::content(
            path,
            format!(
                "no `{want}` column: a Hugging Face image dataset has an `image` struct of \
                 `bytes` and `path` (and a `label`); this file has {}",
                names.join(", ")
            ),
        )
    };
    Ok(ParquetColumns {
        bytes: find("image.bytes").ok_or_else(|| missing("image.bytes"))?,
        path: find("image.path").ok_or_else(|| missing("image.path"))?,
        label: find("label"),
    })
}

fn list_parquet(path: &Path, out: &mut Listing) -> Result<()> {
    use pq::FileReader;
    out.parquet = true;
    let bad = |e: parquet::errors::ParquetError| {
        Error::content(path, format!("not a readable parquet file: {e}"))
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = pq::SerializedFileReader::new(file).map_err(bad)?;
    let columns = parquet_columns(path, &reader)?;
    let archive: Arc<Path> = Arc::from(path);
    for group in 0..reader.num_row_groups() {
        let rows = reader.get_row_group(group).map_err(bad)?;
        let n = usize::try_from(rows.metadata().num_rows()).unwrap_or(0);
        let names = read_byte_arrays(rows.get_column_reader(columns.path).map_err(bad)?, n)
            .map_err(|e| Error::content(path, format!("column image.path: {e}")))?;
        let labels = match columns.label {
            Some(c) => read_labels(rows.get_column_reader(c).map_err(bad)?, n)
                .map_err(|e| Error::content(path, format!("column label: {e}")))?,
            None => vec![None; n],
        };
        for (row, (name, label)) in names.into_iter().zip(labels).enumerate() {
            let shown_row = || path.join(format!("row-group-{group}-row-{row}"));
            let Some(name) = name else {
                out.skipped.push(skipped(
                    shown_row(),
                    "no image.path: an image's name comes from its path",
                ));
                continue;
            };
            let base = bytes_to_path(name.data());
            let Some(base) = base.file_name() else {
                out.skipped
                    .push(skipped(shown_row(), "image.path has no file name"));
                continue;
            };
            let location = Location::Parquet {
                row_group: u32::try_from(group).unwrap_or(u32::MAX),
                row: u32::try_from(row).unwrap_or(u32::MAX),
                column: u32::try_from(columns.bytes).unwrap_or(u32::MAX),
            };
            out.images.push(ImageEntry::member(
                path.join(base),
                false,
                Member {
                    archive: archive.clone(),
                    location,
                    label: label.filter(|&c| usize::from(c) < imagenetx_vocab::N_CLASSES),
                },
            ));
        }
    }
    Ok(())
}

/// The values of an optional byte-array column (`None` where null), `rows` of them.
fn read_byte_arrays(
    column: pq::ColumnReader,
    rows: usize,
) -> std::result::Result<Vec<Option<pq::ByteArray>>, String> {
    let pq::ColumnReader::ByteArrayColumnReader(reader) = column else {
        return Err("expected a byte array (string) column".into());
    };
    let (defs, values) = read_column(reader, rows)?;
    Ok(align(defs, values, rows))
}

/// Up to `rows` records of a column: their definition levels and the non-null values.
fn read_column<T: parquet::data_type::DataType>(
    mut reader: parquet::column::reader::ColumnReaderImpl<T>,
    rows: usize,
) -> std::result::Result<(Vec<i16>, Vec<T::T>), String> {
    let (mut defs, mut values) = (Vec::new(), Vec::new());
    let mut read = 0;
    while read < rows {
        let (records, _, _) = reader
            .read_records(rows - read, Some(&mut defs), None, &mut values)
            .map_err(|e| e.to_string())?;
        if records == 0 {
            break;
        }
        read += records;
    }
    Ok((defs, values))
}

/// Values with their definition levels: a value where the level is the highest seen.
fn align<T>(defs: Vec<i16>, values: Vec<T>, rows: usize) -> Vec<Option<T>> {
    if defs.is_empty() {
        let mut out: Vec<Option<T>> = values.into_iter().map(Some).collect();
        out.resize_with(rows, || None);
        return out;
    }
    let max = defs.iter().copied().max().unwrap_or(0);
    let mut values = values.into_iter();
    let mut out: Vec<Option<T>> = defs
        .iter()
        .map(|&d| if d == max { values.next() } else { None })
        .collect();
    out.resize_with(rows, || None);
    out
}

fn read_labels(
    column: pq::ColumnReader,
    rows: usize,
) -> std::result::Result<Vec<Option<u16>>, String> {
    let to_u16 = |v: i64| u16::try_from(v).ok();
    Ok(match column {
        pq::ColumnReader::Int64ColumnReader(r) => {
            let (defs, values) = read_column(r, rows)?;
            align(defs, values, rows)
                .into_iter()
                .map(|v| v.and_then(to_u16))
                .collect()
        }
        pq::ColumnReader::Int32ColumnReader(r) => {
            let (defs, values) = read_column(r, rows)?;
            align(defs, values, rows)
                .into_iter()
                .map(|v| v.and_then(|v| to_u16(i64::from(v))))
                .collect()
        }
        _ => return Err("expected an integer class index".into()),
    })
}

/// A reader of leaf column `column` of row group `row_group`, at its first row.
fn open_byte_array_column(
    path: &Path,
    row_group: u32,
    column: u32,
) -> std::result::Result<
    parquet::column::reader::ColumnReaderImpl<parquet::data_type::ByteArrayType>,
    String,
> {
    use pq::FileReader;
    let file = File::open(path).map_err(|e| e.to_string())?;
    let reader = pq::SerializedFileReader::new(file).map_err(|e| e.to_string())?;
    let group = reader
        .get_row_group(row_group as usize)
        .map_err(|e| e.to_string())?;
    match group
        .get_column_reader(column as usize)
        .map_err(|e| e.to_string())?
    {
        pq::ColumnReader::ByteArrayColumnReader(reader) => Ok(reader),
        _ => Err("image.bytes is not a byte array column".into()),
    }
}

/// Expands a pattern of archive (or image) files: brace alternatives and numeric ranges
/// (`val-{000000..000009}.tar`, `{train,val}.tar`), then glob wildcards (`*`, `?`, `[…]`).
/// The files are returned sorted, without repeats; a pattern that matches nothing is an
/// error naming it.
///
/// Brace expansion is done here (the `glob` crate has no braces, and `globset` matches names
/// without listing files or expanding ranges): a range `{A..B}` counts from A to B, padded
/// to the width of A when A has leading zeros, as the shell does.
pub fn expand_pattern(pattern: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for candidate in expand_braces(pattern)
        .map_err(|m| Error::content(pattern, format!("bad brace pattern: {m}")))?
    {
        if candidate.contains(['*', '?', '[']) {
            let paths = glob::glob(&candidate)
                .map_err(|e| Error::content(pattern, format!("bad glob pattern: {e}")))?;
            for path in paths {
                files.push(path.map_err(|e| {
                    let at = e.path().to_path_buf();
                    Error::io(at, e.into())
                })?);
            }
        } else if Path::new(&candidate).exists() {
            files.push(PathBuf::from(candidate));
        } else {
            return Err(Error::io(
                &candidate,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no such file (from the pattern {pattern})"),
                ),
            ));
        }
    }
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(Error::content(pattern, "the pattern matches no files"));
    }
    Ok(files)
}

/// Whether a path given for images is a pattern to expand (it does not exist and has
/// wildcards or braces).
pub(crate) fn is_pattern(path: &Path) -> bool {
    !path.exists()
        && path
            .to_str()
            .is_some_and(|s| s.contains(['*', '?', '[', '{']))
}

/// Most names a brace pattern may expand to.
const MAX_EXPANSION: usize = 1_000_000;

fn expand_braces(pattern: &str) -> std::result::Result<Vec<String>, String> {
    let Some(open) = pattern.find('{') else {
        return Ok(vec![pattern.to_owned()]);
    };
    let close = pattern[open..]
        .find('}')
        .map(|i| open + i)
        .ok_or_else(|| format!("`{{` at byte {open} is not closed"))?;
    let (head, body, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let choices: Vec<String> = match body.split_once("..") {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => {
            let (start, end) = (
                a.parse::<u64>()
                    .map_err(|_| format!("`{a}` is not a number"))?,
                b.parse::<u64>()
                    .map_err(|_| format!("`{b}` is not a number"))?,
            );
            if end < start {
                return Err(format!("the range {{{body}}} counts down"));
            }
            if end - start >= MAX_EXPANSION as u64 {
                return Err(format!(
                    "the range {{{body}}} has over {MAX_EXPANSION} values"
                ));
            }
            let width = if a.len() > 1 && a.starts_with('0') {
                a.len()
            } else {
                0
            };
            (start..=end).map(|n| format!("{n:0width$}")).collect()
        }
        _ => body.split(',').map(str::to_owned).collect(),
    };
    let rest = expand_braces(tail)?;
    if choices.len().saturating_mul(rest.len()) > MAX_EXPANSION {
        return Err(format!("expands to over {MAX_EXPANSION} names"));
    }
    let mut out = Vec::with_capacity(choices.len() * rest.len());
    for choice in &choices {
        for r in &rest {
            out.push(format!("{head}{choice}{r}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_expand_ranges_with_padding_and_alternatives() {
        assert_eq!(
            expand_braces("s/val-{000..002}.tar").unwrap(),
            ["s/val-000.tar", "s/val-001.tar", "s/val-002.tar"]
        );
        assert_eq!(
            expand_braces("{a,b}-{8..10}").unwrap(),
            ["a-8", "a-9", "a-10", "b-8", "b-9", "b-10"]
        );
        assert_eq!(expand_braces("plain.tar").unwrap(), ["plain.tar"]);
        assert!(expand_braces("a{1..").is_err());
        assert!(expand_braces("a{3..1}").is_err());
        assert!(expand_braces("a{x..2}").is_err());
    }

    #[test]
    fn webdataset_keys_stop_at_the_first_dot() {
        assert_eq!(
            webdataset_key(Path::new("d/ILSVRC2012_val_00000001.jpg")),
            Path::new("d/ILSVRC2012_val_00000001")
        );
        assert_eq!(webdataset_key(Path::new("a.b.cls")), Path::new("a"));
    }

    /// A parquet file of `image{bytes,path}` + `label` rows, in row groups of 3.
    fn write_parquet(path: &Path, rows: &[(Vec<u8>, String)]) {
        use parquet::column::writer::ColumnWriter;
        use parquet::data_type::ByteArray;
        use parquet::file::writer::SerializedFileWriter;
        let schema = parquet::schema::parser::parse_message_type(
            "message m { optional group image { optional binary bytes; \
             optional binary path (STRING); } optional int64 label; }",
        )
        .unwrap();
        let file = File::create(path).unwrap();
        let mut writer =
            SerializedFileWriter::new(file, Arc::new(schema), Default::default()).unwrap();
        for group in rows.chunks(3) {
            let mut rg = writer.next_row_group().unwrap();
            let mut column = 0;
            while let Some(mut col) = rg.next_column().unwrap() {
                match col.untyped() {
                    ColumnWriter::ByteArrayColumnWriter(w) => {
                        let values: Vec<ByteArray> = group
                            .iter()
                            .map(|(b, p)| {
                                ByteArray::from(if column == 0 {
                                    b.clone()
                                } else {
                                    p.as_bytes().to_vec()
                                })
                            })
                            .collect();
                        w.write_batch(&values, Some(&vec![2; group.len()]), None)
                            .unwrap();
                    }
                    ColumnWriter::Int64ColumnWriter(w) => {
                        let labels: Vec<i64> = (0..group.len() as i64).collect();
                        w.write_batch(&labels, Some(&vec![1; group.len()]), None)
                            .unwrap();
                    }
                    _ => unreachable!(),
                }
                col.close().unwrap();
                column += 1;
            }
            rg.close().unwrap();
        }
        writer.close().unwrap();
    }

    #[test]
    fn parquet_rows_read_back_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.parquet");
        let rows: Vec<(Vec<u8>, String)> = (0..8u8)
            .map(|i| (vec![i; 10 + usize::from(i)], format!("d/img_{i}.JPEG")))
            .collect();
        write_parquet(&path, &rows);
        let mut listing = Listing::default();
        list_parquet(&path, &mut listing).unwrap();
        let names: Vec<&str> = listing.images.iter().map(|i| i.file_name()).collect();
        assert_eq!(names[0], "img_0.JPEG");
        assert_eq!(names.len(), 8);
        assert_eq!(listing.images[4].label(), Some(1)); // row 1 of the second row group
        // Forward, backward, across row groups, again: each read gives its row's bytes.
        for i in [0, 2, 1, 5, 3, 4, 7, 6, 0, 7] {
            let member = listing.images[i].archive_member().unwrap();
            assert_eq!(member.read(1 << 20).unwrap(), rows[i].0, "row {i}");
        }
        let member = listing.images[7].archive_member().unwrap();
        assert!(member.read(5).is_err(), "over the byte limit");
        assert_eq!(member.read(1 << 20).unwrap(), rows[7].0);
    }

    #[test]
    fn member_names_must_stay_inside() {
        assert!(safe_member_name(Path::new("n01440764/x.JPEG")));
        assert!(safe_member_name(Path::new("./x.JPEG")));
        assert!(!safe_member_name(Path::new("../x.JPEG")));
        assert!(!safe_member_name(Path::new("/etc/x.JPEG")));
        assert!(!safe_member_name(Path::new("a/../../x.JPEG")));
    }
}
