//! ImageNet-X data: annotations, label sets, prediction files, images.
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod imaging;
