//! Pure statistics over ImageNet-X annotations and model predictions.
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
