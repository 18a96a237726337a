//! Image decoding and preprocessing (work in progress).
