//! The parsed form of one annotation line, shared by the parser ([`crate::annotations`]) and
//! the parse cache ([`crate::cache`]), which both depend on this module and not on each other.

use imagenetx_vocab::FactorSet;
use serde::Serialize;

/// One line of an `imagenet_x_*_factor.jsonl` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnnotationRecord {
    /// Base file name of the image (`ILSVRC2012_val_00004487.JPEG`).
    pub file_name: String,
    /// The ImageNet-1k class index.
    pub class: u16,
    /// The factors marked.
    pub factors: FactorSet,
    /// The annotator's free-text justification, when given.
    pub justification: Option<String>,
    /// The annotator's one-word summary, when given.
    pub one_word: Option<String>,
}
