//! Tables for ImageNet-X factor analyses.
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]
