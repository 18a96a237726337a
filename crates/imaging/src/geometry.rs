//! Output sizes and crop offsets, computed as torchvision computes them.

use crate::config::{CropRounding, Resize};

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
        Resize::KeepRatio {
            width: target_w,
            height: target_h,
            longest,
        } => {
            if width == 0 || height == 0 {
                return (width, height);
            }
            // timm's ResizeKeepRatio.get_params: ratio = max(rh, rw) * longest
            // + min(rh, rw) * (1 - longest), with longest 1.0 or 0.0 (exact), then
            // round(side * 1.0 / ratio) per side, half to even.
            let ratio_h = f64::from(height) / f64::from(target_h);
            let ratio_w = f64::from(width) / f64::from(target_w);
            let ratio = if longest {
                ratio_h.max(ratio_w)
            } else {
                ratio_h.min(ratio_w)
            };
            let side = |len: u32| (f64::from(len) / ratio).round_ties_even().max(1.0) as u32;
            (side(width), side(height))
        }
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

/// A centre crop along one axis, torchvision's `center_crop` or Hugging Face's.
///
/// [`CropRounding::HalfEven`] (torchvision): when `len >= crop` the crop starts at
/// `int(round((len - crop) / 2.0))` with Python's round-half-to-even; when `len < crop`
/// torchvision first pads, `(crop - len) // 2` before and the rest after, and the whole
/// axis is kept. [`CropRounding::Floor`] (Hugging Face): the crop starts at
/// `(len - crop) // 2`; padding puts `ceil((crop - len) / 2)` before.
pub fn center_crop_span(len: u32, crop: u32, rounding: CropRounding) -> CropSpan {
    if len < crop {
        let before = match rounding {
            CropRounding::HalfEven => (crop - len) / 2,
            CropRounding::Floor => (crop - len).div_ceil(2),
        };
        return CropSpan {
            src_start: 0,
            dst_start: before,
            len,
        };
    }
    let diff = len - crop;
    let half = diff / 2;
    // (diff / 2.0) is k + 0.5 when diff is odd; round half to even.
    let start = if rounding == CropRounding::HalfEven && diff % 2 == 1 && half % 2 == 1 {
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

    const HE: CropRounding = CropRounding::HalfEven;

    #[test]
    fn keep_ratio_rounds_half_to_even() {
        // 500x375 into 235x235, longest: ratio = max(375/235, 500/235) = 500/235;
        // 500 / ratio = 235, 375 / ratio = 176.25 -> 176.
        let fit = Resize::KeepRatio {
            width: 235,
            height: 235,
            longest: true,
        };
        assert_eq!(resized_size(500, 375, fit), (235, 176));
        // 10x3 into 5x5: ratio 2, 3 / 2 = 1.5 -> 2 (half to even); 10x5 into 4x4: 5 / 2.5 = 2.
        let small = Resize::KeepRatio {
            width: 5,
            height: 5,
            longest: true,
        };
        assert_eq!(resized_size(10, 3, small), (5, 2));
        assert_eq!(resized_size(10, 7, small), (5, 4)); // 7 / 2 = 3.5 -> 4
        assert_eq!(resized_size(1000, 1, small), (5, 1)); // 0.005 -> at least 1
        // Cover (shortest): 500x375 into 256x288: ratios 500/256 = 1.953, 375/288 = 1.302;
        // min -> 375 / 1.302 = 288, 500 / 1.302 = 384.
        let cover = Resize::KeepRatio {
            width: 256,
            height: 288,
            longest: false,
        };
        assert_eq!(resized_size(500, 375, cover), (384, 288));
    }

    #[test]
    fn floor_rounding_is_hugging_faces() {
        let fl = CropRounding::Floor;
        // 227 - 224 = 3 -> 1 (HalfEven: 2); padding 101 -> 224: 62 before (HalfEven: 61).
        assert_eq!(center_crop_span(227, 224, fl).src_start, 1);
        assert_eq!(center_crop_span(231, 224, fl).src_start, 3);
        assert_eq!(center_crop_span(101, 224, fl).dst_start, 62);
        assert_eq!(center_crop_span(102, 224, fl).dst_start, 61);
    }

    #[test]
    fn crop_offsets_round_half_to_even() {
        // round(0.5) = 0, round(1.5) = 2, round(2.5) = 2, round(3.5) = 4.
        assert_eq!(center_crop_span(225, 224, HE).src_start, 0);
        assert_eq!(center_crop_span(227, 224, HE).src_start, 2);
        assert_eq!(center_crop_span(229, 224, HE).src_start, 2);
        assert_eq!(center_crop_span(231, 224, HE).src_start, 4);
        // Even differences: exact halves. 341 - 224 = 117 -> 58.5 -> 58.
        assert_eq!(center_crop_span(256, 224, HE).src_start, 16);
        assert_eq!(center_crop_span(341, 224, HE).src_start, 58);
        assert_eq!(
            center_crop_span(224, 224, HE),
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
            center_crop_span(101, 224, HE),
            CropSpan {
                src_start: 0,
                dst_start: 61,
                len: 101
            }
        );
        assert_eq!(
            center_crop_span(1, 2, HE),
            CropSpan {
                src_start: 0,
                dst_start: 0,
                len: 1
            }
        );
    }
}
