//! Output sizes and crop offsets, computed as torchvision computes them.

use crate::config::Resize;

/// Size after the resize step, as `(width, height)`.
///
/// For [`Resize::ShorterSide`] this is torchvision's
/// `_compute_resized_output_size`: the shorter side becomes `size`, the
/// longer one `int(size * long / short)` (an `f64` quotient, truncated). A
/// square image stays square.
pub fn resized_size(width: u32, height: u32, resize: Resize) -> (u32, u32) {
    match resize {
        Resize::ShorterSide { size } => {
            let (short, long) = if width <= height {
                (width, height)
            } else {
                (height, width)
            };
            if short == 0 {
                return (width, height);
            }
            // Python: int(requested_new_short * long / short); the product is an
            // exact integer, the division is a correctly rounded f64 division.
            let new_long = (u64::from(size) * u64::from(long)) as f64 / f64::from(short);
            let new_long = new_long as u32;
            if width <= height {
                (size, new_long)
            } else {
                (new_long, size)
            }
        }
        Resize::Exact { width, height } => (width, height),
        Resize::None => (width, height),
    }
}

/// Where a centre crop of `crop` pixels lies along one axis of `len` pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropSpan {
    /// First source pixel copied.
    pub src_start: u32,
    /// First destination pixel written (non-zero only when padding).
    pub dst_start: u32,
    /// Number of pixels copied.
    pub len: u32,
}

/// torchvision's `center_crop` along one axis.
///
/// When `len >= crop` the crop starts at `int(round((len - crop) / 2.0))`
/// with Python's round-half-to-even. When `len < crop` torchvision first pads
/// with zeros, `(crop - len) // 2` before and the rest after, and the whole
/// axis is kept.
pub fn center_crop_span(len: u32, crop: u32) -> CropSpan {
    if len < crop {
        return CropSpan {
            src_start: 0,
            dst_start: (crop - len) / 2,
            len,
        };
    }
    let diff = len - crop;
    let half = diff / 2;
    // (diff / 2.0) is k + 0.5 when diff is odd; round half to even.
    let start = if diff % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    };
    CropSpan {
        src_start: start,
        dst_start: 0,
        len: crop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorter_side_truncates_the_long_side() {
        let r = Resize::ShorterSide { size: 256 };
        // 256 * 500 / 375 = 341.33 -> 341.
        assert_eq!(resized_size(500, 375, r), (341, 256));
        assert_eq!(resized_size(375, 500, r), (256, 341));
        // 256 * 333 / 500 is the short side case: 500x333 -> 384.38 -> 384.
        assert_eq!(resized_size(500, 333, r), (384, 256));
        assert_eq!(resized_size(256, 256, r), (256, 256));
        assert_eq!(resized_size(1, 1, r), (256, 256));
        // 256 * 1000 / 10 = 25600 exactly.
        assert_eq!(resized_size(1000, 10, r), (25600, 256));
        // 256 * 640 / 427 = 383.70 -> 383.
        assert_eq!(resized_size(640, 427, r), (383, 256));
        // 256 * 3 / 2 = 384 exactly (no float error).
        assert_eq!(resized_size(3, 2, r), (384, 256));
        assert_eq!(resized_size(7, 9, Resize::None), (7, 9));
        assert_eq!(
            resized_size(
                7,
                9,
                Resize::Exact {
                    width: 4,
                    height: 5
                }
            ),
            (4, 5)
        );
    }

    #[test]
    fn crop_offsets_round_half_to_even() {
        // round(0.5) = 0, round(1.5) = 2, round(2.5) = 2, round(3.5) = 4.
        assert_eq!(center_crop_span(225, 224).src_start, 0);
        assert_eq!(center_crop_span(227, 224).src_start, 2);
        assert_eq!(center_crop_span(229, 224).src_start, 2);
        assert_eq!(center_crop_span(231, 224).src_start, 4);
        // Even differences: exact halves. 341 - 224 = 117 -> 58.5 -> 58.
        assert_eq!(center_crop_span(256, 224).src_start, 16);
        assert_eq!(center_crop_span(341, 224).src_start, 58);
        assert_eq!(
            center_crop_span(224, 224),
            CropSpan {
                src_start: 0,
                dst_start: 0,
                len: 224
            }
        );
    }

    #[test]
    fn small_axes_are_zero_padded_left_floor() {
        // Pad (224 - 101) // 2 = 61 before, 62 after.
        assert_eq!(
            center_crop_span(101, 224),
            CropSpan {
                src_start: 0,
                dst_start: 61,
                len: 101
            }
        );
        assert_eq!(
            center_crop_span(1, 2),
            CropSpan {
                src_start: 0,
                dst_start: 0,
                len: 1
            }
        );
    }
}
