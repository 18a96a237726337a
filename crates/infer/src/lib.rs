//! ONNX Runtime inference for image classifiers (work in progress).
#![deny(missing_docs)]
