//! Which annotations to use, found and loaded the same way by every command and embedder.

use std::path::PathBuf;

use imagenetx_dataset::annotations::read_annotation_file;
use imagenetx_dataset::{
    AnnotatedSet, AnnotationDir, AnnotationRecord, LoadOptions, ParseCache, Partition, Selection,
};
use imagenetx_vocab::N_CLASSES;

use crate::Result;

/// Where the ImageNet-X annotations are and which of them to use.
///
/// The default finds the annotation folder as the CLI does (`$IMAGENETX_ANNOTATIONS`, else
/// `$IMAGENETX_CACHE/annotations`, else the user's cache folder; see
/// [`AnnotationDir::discover`]), takes the validation images with their top factor, leaves
/// out the prototypes as the paper does, and reads the parsed annotations through the parse
/// cache.
#[derive(Debug, Clone, Default)]
pub struct AnnotationOptions {
    /// The annotation folder; `None` to discover it.
    pub dir: Option<PathBuf>,
    /// Partition, factor selection, prototypes.
    pub load: LoadOptions,
    /// A JSONL file in the ImageNet-X schema annotating images outside ImageNet, used instead
    /// of the ImageNet-X factor files (all its images kept).
    pub image_annotations: Option<PathBuf>,
    /// Parse the annotation files every time instead of reading the parse cache.
    pub no_cache: bool,
}

impl AnnotationOptions {
    /// Options for the validation partition with `selection`.
    pub fn new(partition: Partition, selection: Selection) -> Self {
        AnnotationOptions {
            load: LoadOptions {
                partition,
                selection,
                keep_prototypes: false,
            },
            ..AnnotationOptions::default()
        }
    }

    /// The annotation folder, found as [`AnnotationOptions::dir`] says or by discovery, reading
    /// through the parse cache unless [`AnnotationOptions::no_cache`].
    pub fn annotation_dir(&self) -> Result<AnnotationDir> {
        let cache = if self.no_cache {
            None
        } else {
            ParseCache::default_location()
        };
        Ok(AnnotationDir::discover(self.dir.as_deref())?.with_parse_cache(cache))
    }

    /// The records of [`AnnotationOptions::image_annotations`], if given.
    pub fn image_records(&self) -> Result<Option<Vec<AnnotationRecord>>> {
        Ok(self
            .image_annotations
            .as_ref()
            .map(|path| read_annotation_file(path, N_CLASSES))
            .transpose()?)
    }

    /// The annotated images: those of `image_annotations` when given (all kept: prototypes
    /// are ImageNet images), else the ImageNet-X files of the partition and selection.
    pub fn load_set(&self, dir: &AnnotationDir) -> Result<AnnotatedSet> {
        let records = self.image_records()?;
        self.load_set_with(dir, records)
    }

    /// [`AnnotationOptions::load_set`] with the records of `image_annotations` already read
    /// (`None` when there are none).
    pub fn load_set_with(
        &self,
        dir: &AnnotationDir,
        image_records: Option<Vec<AnnotationRecord>>,
    ) -> Result<AnnotatedSet> {
        Ok(match image_records {
            Some(records) => {
                let options = LoadOptions {
                    keep_prototypes: true,
                    ..self.load
                };
                AnnotatedSet::build(dir, records, options)?
            }
            None => dir.load_set(self.load)?,
        })
    }
}
