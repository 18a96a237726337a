//! Flags and helpers shared by the subcommands.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use imagenetx_dataset::{AnnotationDir, LoadOptions, Partition, Selection};

/// Where the annotations are and which of them to use.
#[derive(Debug, Clone, clap::Args)]
pub struct AnnotationArgs {
    /// Folder with the ImageNet-X annotation files [default: $IMAGENETX_ANNOTATIONS, else the
    /// folder `just setup` fills].
    #[arg(long, value_name = "DIR")]
    pub annotations: Option<PathBuf>,
    /// Which annotated images: the validation set or the annotated training subset.
    #[arg(long, value_enum, default_value_t = PartitionArg::Val)]
    pub partition: PartitionArg,
    /// Factor selection: the annotators' top factor per image, or every factor they marked.
    #[arg(long, value_enum, default_value_t = SelectionArg::Top)]
    pub factors: SelectionArg,
    /// Keep the prototypical images that the toolkit (and the paper) leave out.
    #[arg(long)]
    pub keep_prototypes: bool,
}

impl AnnotationArgs {
    /// The annotations folder, found as `--annotations` says or by discovery.
    pub fn dir(&self) -> anyhow::Result<AnnotationDir> {
        Ok(AnnotationDir::discover(self.annotations.as_deref())?)
    }

    /// What to load.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            partition: match self.partition {
                PartitionArg::Val => Partition::Val,
                PartitionArg::Train => Partition::Train,
            },
            selection: match self.factors {
                SelectionArg::Top => Selection::Top,
                SelectionArg::Multi => Selection::Multi,
            },
            keep_prototypes: self.keep_prototypes,
        }
    }
}

/// `--partition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PartitionArg {
    /// ImageNet validation images.
    Val,
    /// Annotated ImageNet training images.
    Train,
}

/// `--factors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SelectionArg {
    /// The top factor of each image.
    Top,
    /// Every factor marked for an image.
    Multi,
}

/// `--format` of what goes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text for a terminal.
    Table,
    /// A Markdown table (pull requests, CI job summaries).
    Markdown,
    /// CSV.
    Csv,
    /// JSON.
    Json,
}

/// Writes `contents` to `path` atomically: a temporary file in the same folder, flushed and
/// synced, then renamed over `path`. A reader sees the old file or the new one, never half.
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(contents)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Makes the output folder.
pub fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
