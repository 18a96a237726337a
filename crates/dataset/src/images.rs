//! Finding the images of a run: ImageNet's flat validation layout
//! (`ILSVRC2012_val_00000001.JPEG` …), the class-folder layout (`n01440764/…`), the
//! ImageNet-X training subset (`n03633091_15528.JPEG`) or any folder of images.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// File extensions taken as images (case-insensitive). Files are decoded by content, so a PNG
/// named `.JPEG` still works; other files (README, JSON, …) are not images.
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpeg", "jpg", "png", "bmp", "gif", "tif", "tiff", "webp", "jpe",
];

/// One image of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    /// Where it is.
    pub path: PathBuf,
    /// Its base file name: the key of predictions and annotations.
    pub file_name: String,
    /// The WordNet id its folder or name gives (`n01440764/…` or `n01440764_123.JPEG`).
    pub wnid: Option<String>,
}

/// How the folder is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Images directly in the folder.
    Flat,
    /// One sub-folder per class (named by WordNet id, or anything else).
    ClassFolders,
}

/// The images found, in path order.
#[derive(Debug, Clone)]
pub struct ImageList {
    /// The layout detected.
    pub layout: Layout,
    /// The images.
    pub images: Vec<ImageEntry>,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn is_wnid(s: &str) -> bool {
    s.len() == 9 && s.starts_with('n') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

fn wnid_of_name(file_name: &str) -> Option<String> {
    let (prefix, _) = file_name.split_once('_')?;
    is_wnid(prefix).then(|| prefix.to_string())
}

/// Lists the images under `root`: its image files, and those of its immediate sub-folders
/// (class-folder layout). A single image file is a list of one. `limit` keeps the first N in
/// path order. Two images with the same base file name are an error (names are keys).
pub fn discover_images(root: &Path, limit: Option<usize>) -> Result<ImageList> {
    if root.is_file() {
        let file_name = base_name(root);
        return Ok(ImageList {
            layout: Layout::Flat,
            images: vec![ImageEntry {
                wnid: wnid_of_name(&file_name),
                file_name,
                path: root.to_path_buf(),
            }],
        });
    }
    let mut files = Vec::new();
    let mut folders = Vec::new();
    for entry in read_dir(root)? {
        if entry.is_dir() {
            folders.push(entry);
        } else if is_image(&entry) {
            files.push(entry);
        }
    }
    let mut images: Vec<ImageEntry> = files
        .into_iter()
        .map(|path| {
            let file_name = base_name(&path);
            ImageEntry {
                wnid: wnid_of_name(&file_name),
                file_name,
                path,
            }
        })
        .collect();
    let layout = if images.is_empty() && !folders.is_empty() {
        Layout::ClassFolders
    } else {
        Layout::Flat
    };
    if layout == Layout::ClassFolders {
        for folder in folders {
            let folder_name = base_name(&folder);
            let wnid = is_wnid(&folder_name).then_some(folder_name);
            for path in read_dir(&folder)? {
                if path.is_file() && is_image(&path) {
                    images.push(ImageEntry {
                        file_name: base_name(&path),
                        wnid: wnid.clone(),
                        path,
                    });
                }
            }
        }
    }
    images.sort_by(|a, b| a.path.cmp(&b.path));
    if images.is_empty() {
        return Err(Error::content(
            root,
            format!(
                "no images found (looked for {} files in the folder and its class folders)",
                IMAGE_EXTENSIONS.join("/")
            ),
        ));
    }
    let mut seen = std::collections::HashMap::new();
    for image in &images {
        if let Some(other) = seen.insert(image.file_name.as_str(), &image.path) {
            return Err(Error::content(
                &image.path,
                format!(
                    "same file name as {} (file names identify images in predictions and annotations)",
                    other.display()
                ),
            ));
        }
    }
    if let Some(limit) = limit {
        images.truncate(limit);
    }
    Ok(ImageList { layout, images })
}

fn base_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
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
        assert_eq!(list.layout, Layout::Flat);
        let names: Vec<&str> = list.images.iter().map(|i| i.file_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ILSVRC2012_val_00000001.JPEG",
                "ILSVRC2012_val_00000002.JPEG",
                "n01440764_1.JPEG"
            ]
        );
        assert_eq!(list.images[2].wnid.as_deref(), Some("n01440764"));
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
        assert_eq!(list.layout, Layout::ClassFolders);
        assert_eq!(list.images[1].wnid.as_deref(), Some("n01443537"));
        touch(&dir.path().join("n01443537/a.JPEG"));
        let err = discover_images(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("same file name"), "{err}");
        let empty = tempfile::tempdir().expect("temp dir");
        assert!(discover_images(empty.path(), None).is_err());
    }
}
