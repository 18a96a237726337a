//! The memory layout of an image tensor.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Memory layout of the image tensor a model takes (one image, or a batch with `N` first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Layout {
    /// `[N, 3, H, W]`: channels, then rows, then columns (PyTorch, most ONNX exports).
    Nchw,
    /// `[N, H, W, 3]`: rows, then columns, then channels (TensorFlow, TFLite).
    Nhwc,
}

impl Layout {
    /// `"NCHW"` or `"NHWC"`.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Nchw => "NCHW",
            Layout::Nhwc => "NHWC",
        }
    }

    /// The shape of `n` images of `height × width` with 3 channels in this layout.
    pub fn shape(self, n: usize, height: usize, width: usize) -> [usize; 4] {
        match self {
            Layout::Nchw => [n, 3, height, width],
            Layout::Nhwc => [n, height, width, 3],
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_shapes() {
        assert_eq!(Layout::Nchw.to_string(), "NCHW");
        assert_eq!(Layout::Nhwc.shape(2, 5, 7), [2, 5, 7, 3]);
        assert_eq!(Layout::Nchw.shape(2, 5, 7), [2, 3, 5, 7]);
    }
}
