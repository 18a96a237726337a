//! Choosing the preprocessing of a model: defaults, then the model's `imagenetx.preprocess`
//! metadata, then command-line flags, each later source winning; every choice recorded.

use anyhow::{Context, bail};
use imagenetx_imaging::{
    ChannelOrder, Interpolation, Layout, PixelScale, PreprocessConfig, Resize,
};
use imagenetx_infer::{Layout as ModelLayout, ModelInfo};
use serde_json::Value;

/// The model's `imagenetx.preprocess` metadata entry, parsed as JSON (`None`: the model has
/// none).
pub fn preprocess_metadata(info: &ModelInfo) -> anyhow::Result<Option<Value>> {
    info.metadata
        .custom(METADATA_KEY)
        .map(|raw| {
            serde_json::from_str(raw).with_context(|| {
                format!(
                    "metadata entry `{METADATA_KEY}` of {} is not valid JSON",
                    info.path.display()
                )
            })
        })
        .transpose()
}

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

/// The metadata key of our preprocessing record in an ONNX model's `metadata_props`.
pub const METADATA_KEY: &str = "imagenetx.preprocess";

/// The preprocessing chosen for a model, with the reason for each choice.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The configuration.
    pub config: PreprocessConfig,
    /// Where each part came from, in order.
    pub decisions: Vec<String>,
}

/// Chooses the preprocessing for `info`: defaults (torchvision, or resize floor(S / 0.875)
/// and crop S for a fixed input size S), then the model's metadata, then the flags.
pub fn resolve(args: &PreprocessArgs, info: &ModelInfo) -> anyhow::Result<Resolved> {
    let fixed = info.input.fixed_size().map(|(h, w)| (h as u32, w as u32));
    let mut decisions = Vec::new();
    let mut config = match fixed {
        Some((h, w)) if h == w => {
            decisions.push(format!(
                "default: model input is fixed at {h}x{w}: resize shorter side to floor({h} / 0.875), centre crop {h}, bilinear, ImageNet mean/std"
            ));
            PreprocessConfig::for_input_size(h)?
        }
        Some((h, w)) => {
            decisions.push(format!(
                "default: torchvision with a {h}x{w} crop (fixed input)"
            ));
            let mut c = PreprocessConfig::torchvision();
            (c.crop_height, c.crop_width) = (h, w);
            c
        }
        None => {
            decisions.push(
                "default: torchvision (resize 256, centre crop 224, bilinear, ImageNet mean/std)"
                    .to_string(),
            );
            PreprocessConfig::torchvision()
        }
    };
    if let Some(meta) = &preprocess_metadata(info)? {
        apply_metadata(&mut config, meta, fixed)
            .with_context(|| format!("model metadata {METADATA_KEY} = {meta}"))?;
        decisions.push(format!("model metadata {METADATA_KEY}: {meta}"));
    }
    apply_flags(&mut config, args, fixed, &mut decisions)?;
    config.layout = match info.input.layout {
        ModelLayout::Nchw => Layout::Nchw,
        ModelLayout::Nhwc => Layout::Nhwc,
    };
    if let Some((h, w)) = fixed
        && (config.crop_height, config.crop_width) != (h, w)
    {
        bail!(
            "the crop is {}x{}, but the model's input is fixed at {h}x{w}",
            config.crop_height,
            config.crop_width
        );
    }
    config.validate()?;
    Ok(Resolved { config, decisions })
}

fn apply_metadata(
    config: &mut PreprocessConfig,
    meta: &Value,
    fixed: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    let Some(object) = meta.as_object() else {
        bail!("expected a JSON object");
    };
    let uint = |key: &str| -> anyhow::Result<Option<u32>> {
        object
            .get(key)
            .map(|v| {
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .with_context(|| format!("{key} must be a positive integer, got {v}"))
            })
            .transpose()
    };
    let triple = |key: &str| -> anyhow::Result<Option<[f32; 3]>> {
        object
            .get(key)
            .map(|v| {
                serde_json::from_value::<[f32; 3]>(v.clone())
                    .with_context(|| format!("{key} must be three numbers, got {v}"))
            })
            .transpose()
    };
    let text = |key: &str| -> anyhow::Result<Option<String>> {
        object
            .get(key)
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .with_context(|| format!("{key} must be a string, got {v}"))
            })
            .transpose()
    };
    let crop = uint("crop")?;
    if let Some(preset) = text("preset")? {
        *config = PreprocessConfig::preset(&preset, crop.or(fixed.map(|f| f.0)))?;
    }
    if let Some(crop) = crop {
        (config.crop_height, config.crop_width) = (crop, crop);
    }
    if let Some(resize) = uint("resize")? {
        config.resize = Resize::ShorterSide { size: resize };
    }
    if let Some(name) = text("interpolation")? {
        config.interpolation = match name.to_ascii_lowercase().as_str() {
            "bilinear" => Interpolation::Bilinear,
            "bicubic" => Interpolation::Bicubic,
            other => bail!("interpolation {other:?} is not bilinear or bicubic"),
        };
    }
    if let Some(mean) = triple("mean")? {
        config.mean = mean;
    }
    if let Some(std) = triple("std")? {
        config.std = std;
    }
    if let Some(scale) = text("scale")? {
        config.scale = match scale.as_str() {
            "raw255" | "raw" => PixelScale::Raw,
            "unit" | "unit_interval" => PixelScale::UnitInterval,
            other => bail!("scale {other:?} is not unit or raw255"),
        };
    }
    if let Some(order) = text("channel_order")? {
        config.channel_order = match order.to_ascii_uppercase().as_str() {
            "RGB" => ChannelOrder::Rgb,
            "BGR" => ChannelOrder::Bgr,
            other => bail!("channel_order {other:?} is not RGB or BGR"),
        };
    }
    Ok(())
}

fn apply_flags(
    config: &mut PreprocessConfig,
    args: &PreprocessArgs,
    fixed: Option<(u32, u32)>,
    decisions: &mut Vec<String>,
) -> anyhow::Result<()> {
    if let Some(preset) = &args.preset {
        *config = PreprocessConfig::preset(preset, args.crop.or(fixed.map(|f| f.0)))?;
        decisions.push(format!("--preset {preset}"));
    }
    if let Some(crop) = args.crop {
        (config.crop_height, config.crop_width) = (crop, crop);
        decisions.push(format!("--crop {crop}"));
    }
    if let Some(pct) = args.crop_pct {
        let interpolation = config.interpolation;
        let mut timm = PreprocessConfig::timm(config.crop_height, pct, interpolation)?;
        (timm.mean, timm.std, timm.scale, timm.channel_order) =
            (config.mean, config.std, config.scale, config.channel_order);
        timm.crop_width = config.crop_width;
        *config = timm;
        decisions.push(format!("--crop-pct {pct}"));
    }
    if let Some(resize) = args.resize {
        config.resize = Resize::ShorterSide { size: resize };
        decisions.push(format!("--resize {resize}"));
    }
    if let Some(interpolation) = args.interpolation {
        config.interpolation = match interpolation {
            InterpolationArg::Bilinear => Interpolation::Bilinear,
            InterpolationArg::Bicubic => Interpolation::Bicubic,
        };
        decisions.push(format!("--interpolation {interpolation:?}").to_lowercase());
    }
    if let Some(mean) = args.mean {
        config.mean = mean;
        decisions.push(format!("--mean {mean:?}"));
    }
    if let Some(std) = args.std {
        config.std = std;
        decisions.push(format!("--std {std:?}"));
    }
    if let Some(scale) = args.scale {
        config.scale = match scale {
            ScaleArg::Unit => PixelScale::UnitInterval,
            ScaleArg::Raw255 => PixelScale::Raw,
        };
        decisions.push(format!("--scale {scale:?}").to_lowercase());
    }
    if let Some(order) = args.channel_order {
        config.channel_order = match order {
            ChannelOrderArg::Rgb => ChannelOrder::Rgb,
            ChannelOrderArg::Bgr => ChannelOrder::Bgr,
        };
        decisions.push(format!("--channel-order {order:?}").to_lowercase());
    }
    Ok(())
}
