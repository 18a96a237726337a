//! Preprocessing as data: [`PreprocessConfig`] and its named presets.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use imagenetx_vocab::Layout;

/// ImageNet channel means (RGB), as torchvision and timm use them.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB), as torchvision and timm use them.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// The crop fraction torchvision's and timm's defaults use (224 / 256).
pub const DEFAULT_CROP_PCT: f64 = 0.875;
/// Largest side accepted for a resize or crop target.
pub const MAX_SIDE: u32 = 16_384;

/// The names [`PreprocessConfig::preset`] knows.
pub const PRESET_NAMES: [&str; 4] = ["torchvision", "timm", "inception", "tflite"];

/// Resampling filter, implemented exactly as Pillow's `Image.resize` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// Triangle filter (`PIL.Image.BILINEAR`, torchvision's default).
    Bilinear,
    /// Cubic convolution with a = -0.5 (`PIL.Image.BICUBIC`, timm's usual choice).
    Bicubic,
}

/// How the image is resized before the crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Resize {
    /// torchvision `Resize(size)` with an int: the shorter side becomes
    /// `size`, the longer `int(size * long / short)`.
    ShorterSide {
        /// Target length of the shorter side.
        size: u32,
    },
    /// Resize to exactly this size, ignoring the aspect ratio
    /// (torchvision `Resize((height, width))`).
    Exact {
        /// Target width.
        width: u32,
        /// Target height.
        height: u32,
    },
    /// timm's `ResizeKeepRatio((height, width), longest)`: the image is scaled by one factor
    /// so that it fits the target box. With `longest`, the side that is relatively longest
    /// matches the box (the whole image fits inside it, timm's `longest=1.0`); without it,
    /// the relatively shortest side does (the box is covered, `longest=0.0`). Each side
    /// becomes `round(side / ratio)` with Python's round-half-to-even, at least 1.
    KeepRatio {
        /// Target box width.
        width: u32,
        /// Target box height.
        height: u32,
        /// Fit the relatively longest side (`true`) or the shortest (`false`).
        longest: bool,
    },
    /// No resize; only the crop.
    None,
}

impl std::fmt::Display for Resize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Resize::ShorterSide { size } => write!(f, "shorter side to {size}"),
            Resize::Exact { width, height } => write!(f, "exactly {width}x{height}"),
            Resize::KeepRatio {
                width,
                height,
                longest: true,
            } => write!(f, "fit inside {width}x{height}, keeping the aspect ratio"),
            Resize::KeepRatio {
                width,
                height,
                longest: false,
            } => write!(f, "cover {width}x{height}, keeping the aspect ratio"),
            Resize::None => write!(f, "none"),
        }
    }
}

/// How the centre crop is placed along an axis, and where a smaller image sits in the
/// padding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CropRounding {
    /// torchvision's `center_crop` (and timm's `CenterCropOrPad`): the crop starts at
    /// `round((len - crop) / 2)`, half to even; padding puts `(crop - len) // 2` before.
    #[default]
    HalfEven,
    /// Hugging Face's `image_transforms.center_crop`: the crop starts at
    /// `(len - crop) // 2`; padding puts `ceil((crop - len) / 2)` before.
    Floor,
}

/// What a pixel value `p` in 0..=255 becomes before `(x - mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PixelScale {
    /// `x = p as f32 / 255.0` (torchvision `ToTensor`).
    UnitInterval,
    /// `x = p as f32` (TFLite-style models, e.g. mean 127, std 128).
    Raw,
}

/// Order of the three channels in the output tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChannelOrder {
    /// Red, green, blue (PyTorch and TensorFlow models).
    Rgb,
    /// Blue, green, red (Caffe-era models). `mean` and `std` stay in RGB order.
    Bgr,
}

/// Everything that turns an image file into one model input, recorded as data
/// so that every run can echo it.
///
/// The pipeline is torchvision's: decode, convert to RGB, [`Resize`], centre
/// crop to `crop_height x crop_width` (zero padding where the image is
/// smaller), then per channel `(scale(p) - mean) / std` in `f32`.
///
/// Construct it with a preset ([`PreprocessConfig::torchvision`],
/// [`PreprocessConfig::preset`], ...) or deserialize it, then call
/// [`PreprocessConfig::validate`] (the [`Preprocessor`](super::Preprocessor)
/// constructor does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessConfig {
    /// Resize step, before the crop.
    pub resize: Resize,
    /// Height of the centre crop, which is the model's input height.
    pub crop_height: u32,
    /// Width of the centre crop, which is the model's input width.
    pub crop_width: u32,
    /// Resampling filter of the resize.
    pub interpolation: Interpolation,
    /// Per-channel mean, in RGB order, in the units after `scale`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation, in RGB order, in the units after `scale`.
    pub std: [f32; 3],
    /// How pixel values are scaled before normalisation.
    pub scale: PixelScale,
    /// Channel order of the output tensor.
    pub channel_order: ChannelOrder,
    /// Layout of the output tensor.
    pub layout: Layout,
    /// How the centre crop is placed (torchvision's rounding unless a side file says
    /// otherwise); left out of the serialized form when it is the default.
    #[serde(default, skip_serializing_if = "is_default")]
    pub crop_rounding: CropRounding,
    /// The RGB colour of the padding where the resized image is smaller than the crop
    /// (black, as torchvision; timm's `border` mode fills with `round(255 * mean)`); left out
    /// of the serialized form when black.
    #[serde(default, skip_serializing_if = "is_default")]
    pub pad_fill: [u8; 3],
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        Self::torchvision()
    }
}

impl PreprocessConfig {
    /// torchvision's ImageNet evaluation transform: `Resize(256)`,
    /// `CenterCrop(224)`, bilinear, `ToTensor()`, `Normalize(IMAGENET_MEAN,
    /// IMAGENET_STD)`, RGB, NCHW.
    pub fn torchvision() -> Self {
        Self {
            resize: Resize::ShorterSide { size: 256 },
            crop_height: 224,
            crop_width: 224,
            interpolation: Interpolation::Bilinear,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            scale: PixelScale::UnitInterval,
            channel_order: ChannelOrder::Rgb,
            layout: Layout::Nchw,
            crop_rounding: CropRounding::HalfEven,
            pad_fill: [0; 3],
        }
    }

    /// The torchvision transform for a model with a fixed square input of
    /// `size`: resize the shorter side to `floor(size / 0.875)`, crop `size`.
    pub fn for_input_size(size: u32) -> Result<Self> {
        Self::timm(size, DEFAULT_CROP_PCT, Interpolation::Bilinear)
    }

    /// timm's evaluation transform: shorter side to `floor(size / crop_pct)`
    /// (Python's `math.floor` on an `f64` quotient), centre crop `size`, the
    /// given filter (timm models mostly use [`Interpolation::Bicubic`]),
    /// ImageNet mean and std.
    pub fn timm(size: u32, crop_pct: f64, interpolation: Interpolation) -> Result<Self> {
        let resize = scale_size(size, crop_pct)?;
        let config = Self {
            resize: Resize::ShorterSide { size: resize },
            crop_height: size,
            crop_width: size,
            interpolation,
            ..Self::torchvision()
        };
        config.validate()?;
        Ok(config)
    }

    /// Inception-style normalisation (mean = std = 0.5, so values in [-1, 1])
    /// with the resize and crop of [`PreprocessConfig::for_input_size`].
    pub fn inception(size: u32) -> Result<Self> {
        Ok(Self {
            mean: [0.5; 3],
            std: [0.5; 3],
            ..Self::for_input_size(size)?
        })
    }

    /// TFLite-style input: `(p - 127) / 128` on raw pixel values, NHWC, with
    /// the resize and crop of [`PreprocessConfig::for_input_size`].
    pub fn tflite(size: u32) -> Result<Self> {
        Ok(Self {
            mean: [127.0; 3],
            std: [128.0; 3],
            scale: PixelScale::Raw,
            layout: Layout::Nhwc,
            ..Self::for_input_size(size)?
        })
    }

    /// A preset by name (one of [`PRESET_NAMES`]) for a square input of
    /// `size` (224 when `None`). `timm` uses crop_pct 0.875 and bicubic.
    pub fn preset(name: &str, size: Option<u32>) -> Result<Self> {
        let size = size.unwrap_or(224);
        match name {
            "torchvision" => Self::for_input_size(size),
            "timm" => Self::timm(size, DEFAULT_CROP_PCT, Interpolation::Bicubic),
            "inception" => Self::inception(size),
            "tflite" => Self::tflite(size),
            _ => Err(Error::UnknownPreset {
                name: name.to_owned(),
                known: PRESET_NAMES.join(", "),
            }),
        }
    }

    /// Number of `f32` values one preprocessed image occupies.
    pub fn tensor_len(&self) -> usize {
        3 * self.crop_height as usize * self.crop_width as usize
    }

    /// Checks every field; a config that passes never makes preprocessing
    /// panic.
    pub fn validate(&self) -> Result<()> {
        fn side(field: &'static str, value: u32) -> Result<()> {
            if value == 0 || value > MAX_SIDE {
                return Err(Error::InvalidConfig {
                    field,
                    problem: format!("is {value}, must be in 1..={MAX_SIDE}"),
                });
            }
            Ok(())
        }
        match self.resize {
            Resize::ShorterSide { size } => side("resize.size", size)?,
            Resize::Exact { width, height } => {
                side("resize.width", width)?;
                side("resize.height", height)?;
            }
            Resize::KeepRatio { width, height, .. } => {
                side("resize.width", width)?;
                side("resize.height", height)?;
            }
            Resize::None => {}
        }
        side("crop_height", self.crop_height)?;
        side("crop_width", self.crop_width)?;
        for c in 0..3 {
            if !self.mean[c].is_finite() {
                return Err(Error::InvalidConfig {
                    field: "mean",
                    problem: format!("channel {c} is {}, must be finite", self.mean[c]),
                });
            }
            if !self.std[c].is_finite() || self.std[c] == 0.0 {
                return Err(Error::InvalidConfig {
                    field: "std",
                    problem: format!(
                        "channel {c} is {}, must be finite and non-zero",
                        self.std[c]
                    ),
                });
            }
        }
        Ok(())
    }
}

/// timm's `scale_size = math.floor(img_size / crop_pct)`, checked to be in
/// `1..=`[`MAX_SIDE`] (`crop_pct` in (0, 1]).
pub fn scale_size(size: u32, crop_pct: f64) -> Result<u32> {
    if !(crop_pct.is_finite() && crop_pct > 0.0 && crop_pct <= 1.0) {
        return Err(Error::InvalidConfig {
            field: "crop_pct",
            problem: format!("is {crop_pct}, must be in (0, 1]"),
        });
    }
    let scaled = (f64::from(size) / crop_pct).floor();
    if !(1.0..=f64::from(MAX_SIDE)).contains(&scaled) {
        return Err(Error::InvalidConfig {
            field: "crop_pct",
            problem: format!(
                "gives a resize of {scaled} for size {size}, must be in 1..={MAX_SIDE}"
            ),
        });
    }
    // In range and integral: the cast is exact.
    Ok(scaled as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_input_sizes_follow_crop_pct_0_875() {
        // floor(S / 0.875) by hand: 224 -> 256, 299 -> 341.71 -> 341, 384 -> 438.86 -> 438.
        for (size, want) in [(224, 256), (299, 341), (384, 438), (240, 274)] {
            let c = PreprocessConfig::for_input_size(size).expect("valid");
            assert_eq!(c.resize, Resize::ShorterSide { size: want }, "size {size}");
            assert_eq!((c.crop_height, c.crop_width), (size, size));
        }
        // timm with crop_pct 0.95 at 224: 235.79 -> 235; crop_pct 1.0 -> no margin.
        let c = PreprocessConfig::timm(224, 0.95, Interpolation::Bicubic).expect("valid");
        assert_eq!(c.resize, Resize::ShorterSide { size: 235 });
        let c = PreprocessConfig::timm(224, 1.0, Interpolation::Bicubic).expect("valid");
        assert_eq!(c.resize, Resize::ShorterSide { size: 224 });
    }

    #[test]
    fn default_is_torchvision() {
        let c = PreprocessConfig::default();
        assert_eq!(
            c,
            PreprocessConfig::preset("torchvision", None).expect("valid")
        );
        assert_eq!(c.tensor_len(), 3 * 224 * 224);
    }

    #[test]
    fn invalid_configs_are_typed_errors() {
        let mut c = PreprocessConfig::torchvision();
        c.std[1] = 0.0;
        assert!(matches!(
            c.validate(),
            Err(Error::InvalidConfig { field: "std", .. })
        ));
        let mut c = PreprocessConfig::torchvision();
        c.crop_width = 0;
        assert!(matches!(
            c.validate(),
            Err(Error::InvalidConfig {
                field: "crop_width",
                ..
            })
        ));
        assert!(matches!(
            PreprocessConfig::timm(224, 0.0, Interpolation::Bilinear),
            Err(Error::InvalidConfig {
                field: "crop_pct",
                ..
            })
        ));
        assert!(matches!(
            PreprocessConfig::timm(224, f64::NAN, Interpolation::Bilinear),
            Err(Error::InvalidConfig {
                field: "crop_pct",
                ..
            })
        ));
        assert!(matches!(
            PreprocessConfig::preset("caffe", None),
            Err(Error::UnknownPreset { .. })
        ));
    }

    #[test]
    fn serde_round_trip_and_names() {
        let c = PreprocessConfig::tflite(224).expect("valid");
        let json = serde_json::to_string(&c).expect("serialize");
        assert!(json.contains(r#""layout":"NHWC""#), "{json}");
        assert!(
            json.contains(r#""resize":{"mode":"shorter_side","size":256}"#),
            "{json}"
        );
        let back: PreprocessConfig = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, c);
        // The crop rounding and padding colour appear only when not torchvision's, so records
        // written before they existed read back, and are written as before.
        assert!(
            !json.contains("crop_rounding") && !json.contains("pad_fill"),
            "{json}"
        );
        let border = PreprocessConfig {
            resize: Resize::KeepRatio {
                width: 248,
                height: 248,
                longest: true,
            },
            crop_rounding: CropRounding::Floor,
            pad_fill: [124, 116, 104],
            ..c.clone()
        };
        let text = serde_json::to_string(&border).expect("serialize");
        assert!(
            text.contains(r#""crop_rounding":"floor","pad_fill":[124,116,104]"#),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<PreprocessConfig>(&text).expect("deserialize"),
            border
        );
        let bad = json.replace("\"scale\"", "\"scael\"");
        assert!(serde_json::from_str::<PreprocessConfig>(&bad).is_err());
    }
}
