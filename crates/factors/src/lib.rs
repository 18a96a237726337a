//! Pure statistics over ImageNet-X annotations and model predictions.
//!
//! This crate reads no files and runs no models: it takes annotated images and predictions
//! in memory and returns the numbers of the ImageNet-X paper's toolkit (PyPI `imagenet-x`
//! 0.0.7), computed in the same order so they agree to the last bit:
//! accuracy per factor of variation, `worst_factor`, `average`, `worst_100_classes`, error
//! ratios, the per-metaclass table, expected calibration error, prevalence shift and the
//! Spearman correlation between factors.
//!
//! Where the toolkit would produce NaN or an infinity (a factor without images, a model
//! without errors), the value here is `None`.
//!
//! ```
//! use imagenetx_factors::{analyze, AnalysisOptions, AnnotatedImage, Annotations, Factor,
//!     FactorSet, Metaclass, Prediction};
//!
//! let image = |class, factor| AnnotatedImage {
//!     class,
//!     factors: FactorSet::from_iter([factor]),
//!     real: None,
//! };
//! let annotations = Annotations::new(
//!     vec![image(0, Factor::Pose), image(0, Factor::Pose), image(1, Factor::Style), image(1, Factor::Style)],
//!     vec![Metaclass::Dog, Metaclass::Other],
//! )?;
//! let p = |class| Some(Prediction { class, probability: 0.9 });
//! let result = analyze(&annotations, "my-model", &[p(0), p(1), p(1), p(1)], AnalysisOptions::default())?;
//! assert_eq!(result.average(), Some(0.75));
//! assert_eq!(result.accuracy(Factor::Pose), Some(0.5));
//! assert_eq!(result.error_ratio(Factor::Pose), Some(2.0)); // (1 - 0.5) / (1 - 0.75)
//! assert_eq!(result.error_ratio(Factor::Background), None); // no images
//! # Ok::<(), imagenetx_factors::Error>(())
//! ```
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod analysis;
pub mod calibration;
pub mod compare;
pub mod correlation;
pub mod intervals;

pub use analysis::{
    AnalysisOptions, Counts, ErrorType, GroupCounts, MetaclassShift, ModelAnalysis, Outcome,
    WORST_K_CLASSES, analyze, analyze_outcomes, outcomes, prevalence_shift,
};
pub use imagenetx_vocab::{
    AnnotatedImage, Annotations, Factor, FactorSet, Metaclass, N_FACTORS, N_METACLASSES,
    Prediction, UnknownName,
};

/// Errors of the analysis: inputs that do not fit together.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A class outside the class → metaclass mapping (of an annotated image or a
    /// prediction).
    #[error(transparent)]
    Classes(#[from] imagenetx_vocab::Error),
    /// Predictions not aligned with the annotated images.
    #[error("model {model}: {predictions} prediction slots for {images} annotated images")]
    Misaligned {
        /// The model.
        model: String,
        /// Slots given.
        predictions: usize,
        /// Images annotated.
        images: usize,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
