//! The shared words of imagenetx, at the bottom of its crates: the 16 ImageNet-X
//! [`Factor`]s of variation and 17 [`Metaclass`]es, ImageNet-1k class ids ([`N_CLASSES`]),
//! [`AnnotatedImage`]s and their [`Annotations`], a model's top-1 [`Prediction`], and the
//! [`Layout`] of an image tensor.
//!
//! It reads no files and depends on no statistics, image or inference library: the crates
//! that do (`imagenetx-dataset`, `imagenetx-imaging`, `imagenetx-infer`,
//! `imagenetx-factors`) all speak these types.
//!
//! ```
//! use imagenetx_vocab::{AnnotatedImage, Annotations, Factor, FactorSet, Metaclass};
//!
//! let factors: FactorSet = ["pose", "background"].iter().map(|n| n.parse::<Factor>()).collect::<Result<_, _>>()?;
//! let image = AnnotatedImage { class: 207, factors, real: None };
//! let mut classes = vec![Metaclass::Other; imagenetx_vocab::N_CLASSES];
//! classes[207] = Metaclass::Dog;
//! let annotations = Annotations::new(vec![image], classes)?;
//! assert_eq!(annotations.metaclass_of(0), Metaclass::Dog);
//! assert_eq!(annotations.factor_totals()[Factor::Pose.index()], 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod annotations;
mod factor;
mod files;
mod layout;

pub use annotations::{AnnotatedImage, Annotations, N_FACTORS, N_METACLASSES, Prediction};
pub use factor::{Factor, FactorSet, Metaclass, UnknownName};
pub use files::file_kind;
pub use layout::Layout;

/// Number of ImageNet-1k classes.
pub const N_CLASSES: usize = 1000;

/// Annotations that do not fit together.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A class index outside the class → metaclass mapping.
    #[error("{what} {index} has class {class}, but the class mapping has {classes} classes")]
    ClassOutOfRange {
        /// What held the class ("annotated image", "prediction").
        what: &'static str,
        /// Its position.
        index: usize,
        /// The class found.
        class: u16,
        /// Number of classes known.
        classes: usize,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
