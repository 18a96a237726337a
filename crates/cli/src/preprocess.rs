//! The preprocessing flags: the caller's layer of [`imagenetx::PreprocessSpec`] (the library
//! resolves defaults → model metadata → these flags).

use imagenetx::PreprocessSpec;
use imagenetx_imaging::{ChannelOrder, Interpolation, PixelScale};

/// Preprocessing flags (each overrides the model's metadata and the defaults).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PreprocessArgs {
    /// Preset: torchvision (resize 256, crop 224, bilinear, ImageNet mean/std), timm
    /// (bicubic, --crop-pct), inception (mean = std = 0.5) or tflite ((p − 127) / 128).
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// Resize the shorter side to this many pixels before the crop.
    #[arg(long, value_name = "PIXELS")]
    pub resize: Option<u32>,
    /// Centre crop (the model input size).
    #[arg(long, value_name = "PIXELS")]
    pub crop: Option<u32>,
    /// timm-style: resize the shorter side to floor(crop / crop_pct).
    #[arg(long, value_name = "FRACTION")]
    pub crop_pct: Option<f64>,
    /// Resampling filter of the resize (PIL-exact).
    #[arg(long, value_enum)]
    pub interpolation: Option<InterpolationArg>,
    /// Per-channel mean, RGB, comma-separated (in the units of --scale).
    #[arg(long, value_name = "R,G,B", value_parser = parse_triple)]
    pub mean: Option<[f32; 3]>,
    /// Per-channel standard deviation, RGB, comma-separated.
    #[arg(long, value_name = "R,G,B", value_parser = parse_triple)]
    pub std: Option<[f32; 3]>,
    /// Pixel scale before normalisation: `unit` (p / 255) or `raw255` (p).
    #[arg(long, value_enum)]
    pub scale: Option<ScaleArg>,
    /// Channel order of the model input.
    #[arg(long, value_enum)]
    pub channel_order: Option<ChannelOrderArg>,
}

/// `--interpolation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InterpolationArg {
    /// PIL bilinear (torchvision's default).
    Bilinear,
    /// PIL bicubic (timm's usual choice).
    Bicubic,
}

/// `--scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScaleArg {
    /// p / 255, torchvision's ToTensor.
    Unit,
    /// p in 0..255 as is.
    Raw255,
}

/// `--channel-order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChannelOrderArg {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red.
    Bgr,
}

fn parse_triple(s: &str) -> Result<[f32; 3], String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let values: Vec<f32> = parts
        .iter()
        .map(|p| p.parse::<f32>().map_err(|e| format!("{p:?}: {e}")))
        .collect::<Result<_, _>>()?;
    <[f32; 3]>::try_from(values)
        .map_err(|_| format!("expected three comma-separated numbers, got {s:?}"))
}

impl PreprocessArgs {
    /// The library's overrides these flags describe (resolved over the model's metadata and
    /// the defaults by [`imagenetx::preprocess::resolve`]).
    pub fn spec(&self) -> PreprocessSpec {
        PreprocessSpec {
            preset: self.preset.clone(),
            crop: self.crop,
            crop_pct: self.crop_pct,
            resize: self.resize,
            interpolation: self.interpolation.map(|i| match i {
                InterpolationArg::Bilinear => Interpolation::Bilinear,
                InterpolationArg::Bicubic => Interpolation::Bicubic,
            }),
            mean: self.mean,
            std: self.std,
            scale: self.scale.map(|s| match s {
                ScaleArg::Unit => PixelScale::UnitInterval,
                ScaleArg::Raw255 => PixelScale::Raw,
            }),
            channel_order: self.channel_order.map(|o| match o {
                ChannelOrderArg::Rgb => ChannelOrder::Rgb,
                ChannelOrderArg::Bgr => ChannelOrder::Bgr,
            }),
        }
    }
}
