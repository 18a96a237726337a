//! Which preprocessing a model gets: defaults, then the side files beside the model
//! (Hugging Face's `preprocessor_config.json`, timm's `config.json`; [`crate::sidefiles`]),
//! then the model's own `imagenetx.preprocess` metadata, then the caller's overrides, each
//! later layer winning, and for every field the layer it came from (a side file's with the
//! file and key).
//!
//! This is the one place the rule lives: the `imagenetx` command and an embedding program
//! both call [`resolve`], so they cannot disagree.
//!
//! ```
//! use imagenetx::{PreprocessSpec, Layer};
//! use imagenetx::imaging::{Interpolation, Resize};
//!
//! // A model with a dynamic 224x224 input, metadata asking for bicubic, the caller for 240.
//! let metadata = PreprocessSpec::from_metadata(r#"{"interpolation": "bicubic"}"#)?;
//! let caller = PreprocessSpec { crop: Some(240), ..PreprocessSpec::default() };
//! let resolved = imagenetx::preprocess::resolve_layers(None, Some(&metadata), &caller, imagenetx::vocab::Layout::Nchw)?;
//! assert_eq!(resolved.config.interpolation, Interpolation::Bicubic);
//! assert_eq!(resolved.sources.interpolation.layer, Layer::ModelMetadata);
//! assert_eq!((resolved.config.crop_height, resolved.sources.crop.layer), (240, Layer::Caller));
//! assert_eq!(resolved.config.resize, Resize::ShorterSide { size: 256 });
//! assert_eq!(resolved.sources.resize.layer, Layer::Default);
//! # Ok::<(), imagenetx::Error>(())
//! ```

use imagenetx_imaging::{ChannelOrder, Interpolation, PixelScale, PreprocessConfig, Resize};
use imagenetx_infer::{InputInfo, ModelInfo};
use imagenetx_vocab::Layout;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sidefiles::SideFiles;
use crate::{Error, Result};

/// The key of the preprocessing record in an ONNX model's `metadata_props` (a JSON object
/// with the fields of [`PreprocessSpec`]; see `onnx_models/README.md`).
pub const METADATA_KEY: &str = "imagenetx.preprocess";

/// The crop of a model's [`METADATA_KEY`] record, if it has a valid one (the size a model with
/// a dynamic input is probed at).
pub fn metadata_crop(metadata: &imagenetx_infer::ModelMetadata) -> Option<usize> {
    let spec = PreprocessSpec::from_metadata(metadata.custom(METADATA_KEY)?).ok()?;
    spec.crop.map(|c| c as usize)
}

/// A layer of preprocessing settings: each field that is set overrides the layers below it.
///
/// The same type describes the model's metadata ([`PreprocessSpec::from_metadata`]) and a
/// caller's overrides (the CLI's `--preset`, `--resize`, … flags). Fields are applied in the
/// order they are listed: a preset first (it sets every field), then the rest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreprocessSpec {
    /// A named preset: `torchvision`, `timm`, `inception` or `tflite`
    /// ([`PreprocessConfig::preset`]), for the crop of this layer, else the model's fixed
    /// input size, else 224.
    pub preset: Option<String>,
    /// Centre crop (the model's input size), square.
    pub crop: Option<u32>,
    /// timm-style: resize the shorter side to `floor(crop / crop_pct)`.
    pub crop_pct: Option<f64>,
    /// Resize the shorter side to this many pixels before the crop.
    pub resize: Option<u32>,
    /// Resampling filter of the resize (Pillow-exact).
    pub interpolation: Option<Interpolation>,
    /// Per-channel mean, RGB, in the units of `scale`.
    pub mean: Option<[f32; 3]>,
    /// Per-channel standard deviation, RGB.
    pub std: Option<[f32; 3]>,
    /// Pixel scale before normalisation.
    pub scale: Option<PixelScale>,
    /// Channel order of the model input.
    pub channel_order: Option<ChannelOrder>,
}

impl PreprocessSpec {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == PreprocessSpec::default()
    }

    /// Reads the JSON of a model's [`METADATA_KEY`] record. Accepted spellings, as in
    /// `onnx_models/README.md`: `interpolation` `bilinear`/`bicubic` (any case), `scale`
    /// `unit` (or `unit_interval`) / `raw255` (or `raw`), `channel_order` `RGB`/`BGR` (any
    /// case); unknown keys are ignored. Errors name the key and the value found.
    pub fn from_metadata(json: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| Error::invalid(format!("model metadata {METADATA_KEY}: {e}")))?;
        Self::from_metadata_value(&value)
            .map_err(|e| Error::invalid(format!("model metadata {METADATA_KEY} = {value}: {e}")))
    }

    fn from_metadata_value(value: &Value) -> std::result::Result<Self, String> {
        let Some(object) = value.as_object() else {
            return Err("expected a JSON object".to_string());
        };
        let uint = |key: &str| -> std::result::Result<Option<u32>, String> {
            object
                .get(key)
                .map(|v| {
                    v.as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| format!("{key} must be a positive integer, got {v}"))
                })
                .transpose()
        };
        let triple = |key: &str| -> std::result::Result<Option<[f32; 3]>, String> {
            object
                .get(key)
                .map(|v| {
                    serde_json::from_value::<[f32; 3]>(v.clone())
                        .map_err(|_| format!("{key} must be three numbers, got {v}"))
                })
                .transpose()
        };
        let text = |key: &str| -> std::result::Result<Option<String>, String> {
            object
                .get(key)
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("{key} must be a string, got {v}"))
                })
                .transpose()
        };
        let crop_pct = object
            .get("crop_pct")
            .map(|v| {
                v.as_f64()
                    .filter(|p| *p > 0.0 && *p <= 1.0)
                    .ok_or_else(|| format!("crop_pct must be a number in (0, 1], got {v}"))
            })
            .transpose()?;
        Ok(PreprocessSpec {
            preset: text("preset")?,
            crop: uint("crop")?,
            crop_pct,
            resize: uint("resize")?,
            interpolation: text("interpolation")?
                .map(|name| match name.to_ascii_lowercase().as_str() {
                    "bilinear" => Ok(Interpolation::Bilinear),
                    "bicubic" => Ok(Interpolation::Bicubic),
                    other => Err(format!(
                        "interpolation {other:?} is not bilinear or bicubic"
                    )),
                })
                .transpose()?,
            mean: triple("mean")?,
            std: triple("std")?,
            scale: text("scale")?
                .map(|scale| match scale.as_str() {
                    "raw255" | "raw" => Ok(PixelScale::Raw),
                    "unit" | "unit_interval" => Ok(PixelScale::UnitInterval),
                    other => Err(format!("scale {other:?} is not unit or raw255")),
                })
                .transpose()?,
            channel_order: text("channel_order")?
                .map(|order| match order.to_ascii_uppercase().as_str() {
                    "RGB" => Ok(ChannelOrder::Rgb),
                    "BGR" => Ok(ChannelOrder::Bgr),
                    other => Err(format!("channel_order {other:?} is not RGB or BGR")),
                })
                .transpose()?,
        })
    }

    /// The value of `field` as the metadata record spells it (`240`, `bilinear`,
    /// `[0.5, 0.5, 0.5]`, `raw255`, `RGB`), when this layer sets it.
    fn value_text(&self, field: Field) -> Option<String> {
        let lower = |debug: String| debug.to_lowercase();
        match field {
            Field::Preset => self.preset.clone(),
            Field::Crop => self.crop.map(|c| c.to_string()),
            Field::CropPct => self.crop_pct.map(|p| p.to_string()),
            Field::Resize => self.resize.map(|r| r.to_string()),
            Field::Interpolation => self.interpolation.map(|i| lower(format!("{i:?}"))),
            Field::Mean => self.mean.map(|m| format!("{m:?}")),
            Field::Std => self.std.map(|m| format!("{m:?}")),
            Field::Scale => self.scale.map(|scale| {
                match scale {
                    PixelScale::UnitInterval => "unit",
                    PixelScale::Raw => "raw255",
                }
                .to_string()
            }),
            Field::ChannelOrder => self.channel_order.map(|o| format!("{o:?}").to_uppercase()),
        }
    }

    /// `field` as the `imagenetx` flag that would set it (`--crop 240`, `--channel-order rgb`:
    /// flag values are lower case), when this layer sets it.
    fn flag_text(&self, field: Field) -> Option<String> {
        let value = self.value_text(field)?.to_lowercase();
        Some(format!("--{} {value}", field.key().replace('_', "-")))
    }

    /// The caller's settings as the `imagenetx` flags that would set them, in the order they
    /// are applied (`--preset timm`, `--crop 240`, …).
    fn flags(&self) -> Vec<String> {
        Field::ALL
            .into_iter()
            .filter_map(|field| self.flag_text(field))
            .collect()
    }
}

/// The layer a resolved setting came from, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// torchvision's evaluation transform, fitted to a fixed input size.
    Default,
    /// The model's input tensor (its layout, its fixed size).
    ModelInput,
    /// A side file beside the model (`preprocessor_config.json`, `config.json`; see
    /// [`crate::sidefiles`]).
    SideFile,
    /// The model's [`METADATA_KEY`] record.
    ModelMetadata,
    /// The caller's overrides (the command's flags).
    Caller,
}

/// Where one resolved setting came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The layer.
    pub layer: Layer,
    /// What in that layer set it (`torchvision`, `fixed input 240x240`, `preset timm`,
    /// `--crop 240`, …).
    pub detail: String,
}

impl Source {
    pub(crate) fn new(layer: Layer, detail: impl Into<String>) -> Self {
        Source {
            layer,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let layer = match self.layer {
            Layer::Default => "default",
            Layer::ModelInput => "model input",
            Layer::SideFile => "side file",
            Layer::ModelMetadata => "model metadata",
            Layer::Caller => "caller",
        };
        write!(f, "{layer}: {}", self.detail)
    }
}

/// For each field of the resolved [`PreprocessConfig`], where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sources {
    /// [`PreprocessConfig::resize`].
    pub resize: Source,
    /// [`PreprocessConfig::crop_height`] and `crop_width`.
    pub crop: Source,
    /// [`PreprocessConfig::interpolation`].
    pub interpolation: Source,
    /// [`PreprocessConfig::mean`].
    pub mean: Source,
    /// [`PreprocessConfig::std`].
    pub std: Source,
    /// [`PreprocessConfig::scale`].
    pub scale: Source,
    /// [`PreprocessConfig::channel_order`].
    pub channel_order: Source,
    /// [`PreprocessConfig::layout`].
    pub layout: Source,
}

impl Sources {
    fn all(source: Source) -> Self {
        Sources {
            resize: source.clone(),
            crop: source.clone(),
            interpolation: source.clone(),
            mean: source.clone(),
            std: source.clone(),
            scale: source.clone(),
            channel_order: source.clone(),
            layout: source,
        }
    }

    /// `(field name, source)` for each field, in the order of [`PreprocessConfig`].
    pub fn fields(&self) -> [(&'static str, &Source); 8] {
        [
            ("resize", &self.resize),
            ("crop", &self.crop),
            ("interpolation", &self.interpolation),
            ("mean", &self.mean),
            ("std", &self.std),
            ("scale", &self.scale),
            ("channel_order", &self.channel_order),
            ("layout", &self.layout),
        ]
    }
}

/// The preprocessing chosen for a model, with where each part came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedPreprocess {
    /// The configuration, validated.
    pub config: PreprocessConfig,
    /// The layers that were applied, in order, in words (the run record's `decisions`).
    pub decisions: Vec<String>,
    /// Per field, the layer that set it.
    pub sources: Sources,
    /// The model's [`METADATA_KEY`] record, when it has one.
    pub metadata: Option<PreprocessSpec>,
}

/// The fields of a [`PreprocessSpec`], as they are applied.
#[derive(Debug, Clone, Copy)]
enum Field {
    Preset,
    Crop,
    CropPct,
    Resize,
    Interpolation,
    Mean,
    Std,
    Scale,
    ChannelOrder,
}

impl Field {
    /// Every field, in the order a layer applies them.
    const ALL: [Field; 9] = [
        Field::Preset,
        Field::Crop,
        Field::CropPct,
        Field::Resize,
        Field::Interpolation,
        Field::Mean,
        Field::Std,
        Field::Scale,
        Field::ChannelOrder,
    ];

    /// Its key in the metadata record (and in [`PreprocessSpec`]'s serde form).
    fn key(self) -> &'static str {
        match self {
            Field::Preset => "preset",
            Field::Crop => "crop",
            Field::CropPct => "crop_pct",
            Field::Resize => "resize",
            Field::Interpolation => "interpolation",
            Field::Mean => "mean",
            Field::Std => "std",
            Field::Scale => "scale",
            Field::ChannelOrder => "channel_order",
        }
    }
}

/// Chooses the preprocessing for the model `info` describes: defaults (torchvision; for a
/// fixed input size S, resize `floor(S / 0.875)` and crop S), then the model's
/// [`METADATA_KEY`] record, then `overrides`. The layout is the model input's; a size the
/// caller gave the input ([`imagenetx_infer::InputOverrides`]) counts as fixed. An integer
/// input takes raw pixels: the scale, mean and std no layer set are raw255, 0 (i8: 128, for
/// `p - 128`) and 1, and a normalisation the type cannot hold is an error naming the tensor.
pub fn resolve(info: &ModelInfo, overrides: &PreprocessSpec) -> Result<ResolvedPreprocess> {
    let fixed = info.input.fixed_size().map(|(h, w)| (h as u32, w as u32));
    let value = info
        .metadata
        .custom(METADATA_KEY)
        .map(|raw| {
            serde_json::from_str::<Value>(raw).map_err(|e| {
                Error::invalid(format!(
                    "metadata entry `{METADATA_KEY}` of {} is not valid JSON: {e}",
                    info.path.display()
                ))
            })
        })
        .transpose()?;
    let metadata = value
        .as_ref()
        .map(|value| {
            PreprocessSpec::from_metadata_value(value).map_err(|e| {
                Error::invalid(format!("model metadata {METADATA_KEY} = {value}: {e}"))
            })
        })
        .transpose()?;
    let metadata_text = value.as_ref().map(Value::to_string);
    let side = SideFiles::beside(&info.path)?;
    let labels = side
        .as_ref()
        .map(|side| {
            // The ImageNet class names of the annotation folder found as usual, if any.
            let names = imagenetx_dataset::AnnotationDir::discover(None)
                .ok()
                .and_then(|dir| dir.read_class_names().ok());
            side.check_labels(
                info.output.classes,
                info.output.background_first,
                names.as_ref(),
            )
        })
        .transpose()?
        .flatten();
    // A size the caller gave a symbolic input is not the model's own: say so when it clashes.
    let fixed_by = if info.input.size.is_some() {
        "--input-size sets the model's input to"
    } else {
        MODEL_FIXES
    };
    let mut resolved = resolve_inner(
        (fixed, fixed_by),
        side.as_ref(),
        metadata.as_ref().zip(metadata_text.as_deref()),
        overrides,
        info.input.layout,
    )?;
    resolved.decisions.extend(labels);
    resolved.metadata = metadata;
    integer_input(&mut resolved, &info.input, &info.path.display().to_string())?;
    Ok(resolved)
}

/// For an integer input (u8 or i8, raw-pixel models with their normalisation inside the
/// graph): the pixel scale, mean and std that no layer set become raw255, the type's pixel
/// offset (u8: 0; i8: 128, so it gets `p - 128`) and 1, from the model input. Then the
/// result must be representable in the type exactly (raw255, that mean, std 1): otherwise an
/// error naming the tensor and where each setting came from.
fn integer_input(resolved: &mut ResolvedPreprocess, input: &InputInfo, model: &str) -> Result<()> {
    let element = input.element_type;
    let Some(offset) = element.pixel_offset() else {
        return Ok(());
    };
    let takes = if offset == 0.0 {
        "raw pixels 0..255".to_owned()
    } else {
        format!("pixels - {offset}")
    };
    let what = format!("{element} input: {takes}");
    let (config, sources) = (&mut resolved.config, &mut resolved.sources);
    let mut set = Vec::new();
    if sources.scale.layer == Layer::Default {
        config.scale = PixelScale::Raw;
        sources.scale = Source::new(Layer::ModelInput, what.clone());
        set.push("scale raw255");
    }
    if sources.mean.layer == Layer::Default {
        config.mean = [offset; 3];
        sources.mean = Source::new(Layer::ModelInput, what.clone());
        set.push("mean");
    }
    if sources.std.layer == Layer::Default {
        config.std = [1.0; 3];
        sources.std = Source::new(Layer::ModelInput, what.clone());
        set.push("std 1");
    }
    if !set.is_empty() {
        resolved.decisions.push(format!(
            "model input `{}` is {element}: {takes}, no normalisation ({} from the input type)",
            input.name,
            set.join(", ")
        ));
    }
    if config.scale != PixelScale::Raw || config.mean != [offset; 3] || config.std != [1.0; 3] {
        return Err(Error::invalid(format!(
            "input `{}` of {model} is {element}: it takes {takes} (scale raw255, mean {offset}, \
             std 1); the preprocessing asks for scale {} ({}), mean {:?} ({}), std {:?} ({}), \
             which {element} cannot represent",
            input.name,
            match config.scale {
                PixelScale::UnitInterval => "unit",
                PixelScale::Raw => "raw255",
            },
            sources.scale,
            config.mean,
            sources.mean,
            config.std,
            sources.std,
        )));
    }
    Ok(())
}

/// [`resolve`] from its inputs: the model's fixed input size (height, width) if any, its
/// metadata record if any, the caller's overrides and the model input's layout (no side
/// files; [`resolve_with_side_files`] adds them).
pub fn resolve_layers(
    fixed: Option<(u32, u32)>,
    metadata: Option<&PreprocessSpec>,
    overrides: &PreprocessSpec,
    layout: Layout,
) -> Result<ResolvedPreprocess> {
    resolve_with_side_files(fixed, None, metadata, overrides, layout)
}

/// [`resolve_layers`] with the side files beside the model (read by
/// [`SideFiles::beside`]) as the layer between the defaults and the model's metadata.
pub fn resolve_with_side_files(
    fixed: Option<(u32, u32)>,
    side: Option<&SideFiles>,
    metadata: Option<&PreprocessSpec>,
    overrides: &PreprocessSpec,
    layout: Layout,
) -> Result<ResolvedPreprocess> {
    let text = metadata.map(|m| serde_json::to_string(m).unwrap_or_default());
    resolve_inner(
        (fixed, MODEL_FIXES),
        side,
        metadata.zip(text.as_deref()),
        overrides,
        layout,
    )
}

/// How a clash with a size the model fixes is worded.
const MODEL_FIXES: &str = "the model's input is fixed at";

/// The layers resolved; `fixed`: the input's fixed size, and how to word a clash with it.
fn resolve_inner(
    (fixed, fixed_by): (Option<(u32, u32)>, &str),
    side: Option<&SideFiles>,
    metadata: Option<(&PreprocessSpec, &str)>,
    overrides: &PreprocessSpec,
    layout: Layout,
) -> Result<ResolvedPreprocess> {
    let mut decisions = Vec::new();
    let (mut config, mut sources) = match fixed {
        Some((h, w)) if h == w => {
            decisions.push(format!(
                "default: model input is fixed at {h}x{w}: resize shorter side to floor({h} / 0.875), centre crop {h}, bilinear, ImageNet mean/std"
            ));
            let mut sources = Sources::all(Source::new(Layer::Default, "torchvision"));
            let fitted = Source::new(Layer::ModelInput, format!("fixed input {h}x{w}"));
            (sources.resize, sources.crop) = (fitted.clone(), fitted);
            (PreprocessConfig::for_input_size(h)?, sources)
        }
        Some((h, w)) => {
            decisions.push(format!(
                "default: torchvision with a {h}x{w} crop (fixed input)"
            ));
            let mut c = PreprocessConfig::torchvision();
            (c.crop_height, c.crop_width) = (h, w);
            let mut sources = Sources::all(Source::new(Layer::Default, "torchvision"));
            sources.crop = Source::new(Layer::ModelInput, format!("fixed input {h}x{w}"));
            (c, sources)
        }
        None => {
            decisions.push(
                "default: torchvision (resize 256, centre crop 224, bilinear, ImageNet mean/std)"
                    .to_string(),
            );
            (
                PreprocessConfig::torchvision(),
                Sources::all(Source::new(Layer::Default, "torchvision")),
            )
        }
    };
    if let Some(side) = side {
        apply_side_files(&mut config, &mut sources, side);
        decisions.extend(side.decisions.iter().cloned());
    }
    if let Some((spec, text)) = metadata {
        apply(&mut config, &mut sources, spec, fixed, |field| {
            let value = spec.value_text(field).unwrap_or_default();
            Source::new(Layer::ModelMetadata, format!("{} {value}", field.key()))
        })
        .map_err(|e| e.context(format!("model metadata {METADATA_KEY} = {text}")))?;
        decisions.push(format!("model metadata {METADATA_KEY}: {text}"));
    }
    apply(&mut config, &mut sources, overrides, fixed, |field| {
        Source::new(
            Layer::Caller,
            overrides.flag_text(field).unwrap_or_default(),
        )
    })?;
    decisions.extend(overrides.flags());
    // The metadata's crop_pct ties the resize to the crop: a crop the caller changes (without
    // a resize, crop_pct or preset of its own) keeps that ratio.
    if let Some((spec, _)) = metadata
        && let Some(pct) = spec.crop_pct
        && overrides.crop.is_some()
        && overrides.resize.is_none()
        && overrides.crop_pct.is_none()
        && overrides.preset.is_none()
    {
        let timm = PreprocessConfig::timm(config.crop_height, pct, config.interpolation)?;
        config.resize = timm.resize;
        sources.resize = Source::new(
            Layer::ModelMetadata,
            format!("crop_pct {pct} of the caller's crop {}", config.crop_height),
        );
        decisions.push(format!(
            "model metadata crop_pct {pct} applied to the crop {}",
            config.crop_height
        ));
    }
    config.layout = layout;
    sources.layout = Source::new(Layer::ModelInput, format!("{layout} input"));
    if let Some((h, w)) = fixed
        && (config.crop_height, config.crop_width) != (h, w)
    {
        let from = match sources.crop.layer {
            Layer::SideFile => format!(" (crop from {})", sources.crop.detail),
            Layer::ModelMetadata | Layer::Caller => format!(" (crop from {})", sources.crop),
            Layer::Default | Layer::ModelInput => String::new(),
        };
        return Err(Error::invalid(format!(
            "the crop is {}x{}, but {fixed_by} {h}x{w}{from}",
            config.crop_height, config.crop_width
        )));
    }
    config.validate()?;
    Ok(ResolvedPreprocess {
        config,
        decisions,
        sources,
        metadata: metadata.map(|(spec, _)| spec.clone()),
    })
}

/// Applies the side files' layer: each setting they make, with its file and key.
fn apply_side_files(config: &mut PreprocessConfig, sources: &mut Sources, side: &SideFiles) {
    if let Some(g) = &side.geometry {
        config.resize = g.value.resize;
        (config.crop_height, config.crop_width) = (g.value.crop_height, g.value.crop_width);
        config.crop_rounding = g.value.rounding;
        config.pad_fill = g.value.pad_fill;
        sources.resize = g.source.clone();
        sources.crop = g.source.clone();
    }
    if let Some(s) = &side.interpolation {
        config.interpolation = s.value;
        sources.interpolation = s.source.clone();
    }
    if let Some(s) = &side.mean {
        config.mean = s.value;
        sources.mean = s.source.clone();
    }
    if let Some(s) = &side.std {
        config.std = s.value;
        sources.std = s.source.clone();
    }
    if let Some(s) = &side.scale {
        config.scale = s.value;
        sources.scale = s.source.clone();
    }
}

/// Applies one layer: its preset first (every field), then crop, crop_pct, resize,
/// interpolation, mean, std, scale, channel order.
fn apply(
    config: &mut PreprocessConfig,
    sources: &mut Sources,
    spec: &PreprocessSpec,
    fixed: Option<(u32, u32)>,
    source: impl Fn(Field) -> Source,
) -> Result<()> {
    if let Some(preset) = &spec.preset {
        let layout = config.layout;
        *config = PreprocessConfig::preset(preset, spec.crop.or(fixed.map(|f| f.0)))?;
        config.layout = layout;
        let layout_source = sources.layout.clone();
        *sources = Sources::all(source(Field::Preset));
        sources.layout = layout_source;
    }
    if let Some(crop) = spec.crop {
        (config.crop_height, config.crop_width) = (crop, crop);
        sources.crop = source(Field::Crop);
    }
    if let Some(pct) = spec.crop_pct {
        let mut timm = PreprocessConfig::timm(config.crop_height, pct, config.interpolation)?;
        (
            timm.mean,
            timm.std,
            timm.scale,
            timm.channel_order,
            timm.layout,
        ) = (
            config.mean,
            config.std,
            config.scale,
            config.channel_order,
            config.layout,
        );
        timm.crop_width = config.crop_width;
        *config = timm;
        sources.resize = source(Field::CropPct);
    }
    if let Some(resize) = spec.resize {
        config.resize = Resize::ShorterSide { size: resize };
        sources.resize = source(Field::Resize);
    }
    if let Some(interpolation) = spec.interpolation {
        config.interpolation = interpolation;
        sources.interpolation = source(Field::Interpolation);
    }
    if let Some(mean) = spec.mean {
        config.mean = mean;
        sources.mean = source(Field::Mean);
    }
    if let Some(std) = spec.std {
        config.std = std;
        sources.std = source(Field::Std);
    }
    if let Some(scale) = spec.scale {
        config.scale = scale;
        sources.scale = source(Field::Scale);
    }
    if let Some(order) = spec.channel_order {
        config.channel_order = order;
        sources.channel_order = source(Field::ChannelOrder);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        fixed: Option<(u32, u32)>,
        metadata: Option<&str>,
        overrides: &PreprocessSpec,
    ) -> Result<ResolvedPreprocess> {
        let spec = metadata.map(PreprocessSpec::from_metadata).transpose()?;
        resolve_layers(fixed, spec.as_ref(), overrides, Layout::Nchw)
    }

    #[test]
    fn defaults_follow_a_fixed_input_size() {
        let r = resolve(Some((240, 240)), None, &PreprocessSpec::default()).unwrap();
        assert_eq!(r.config.resize, Resize::ShorterSide { size: 274 });
        assert_eq!(r.config.crop_height, 240);
        assert_eq!(r.sources.crop.layer, Layer::ModelInput);
        assert_eq!(r.sources.mean.layer, Layer::Default);
        let r = resolve(None, None, &PreprocessSpec::default()).unwrap();
        assert_eq!(r.config, PreprocessConfig::torchvision());
    }

    #[test]
    fn metadata_then_caller_each_win_and_are_recorded() {
        let caller = PreprocessSpec {
            mean: Some([0.5; 3]),
            interpolation: Some(Interpolation::Bilinear),
            ..PreprocessSpec::default()
        };
        let r = resolve(
            None,
            Some(r#"{"preset": "timm", "crop": 240, "std": [0.5, 0.5, 0.5]}"#),
            &caller,
        )
        .unwrap();
        // timm at 240: floor(240 / 0.875) = 274, bicubic; the caller's bilinear wins.
        assert_eq!(r.config.resize, Resize::ShorterSide { size: 274 });
        assert_eq!(r.config.interpolation, Interpolation::Bilinear);
        assert_eq!(r.config.mean, [0.5; 3]);
        assert_eq!(r.config.std, [0.5; 3]);
        assert_eq!(r.sources.resize.detail, "preset timm");
        assert_eq!(
            r.sources.std,
            Source::new(Layer::ModelMetadata, "std [0.5, 0.5, 0.5]")
        );
        assert_eq!(
            r.sources.mean,
            Source::new(Layer::Caller, "--mean [0.5, 0.5, 0.5]")
        );
        assert_eq!(
            r.sources.interpolation,
            Source::new(Layer::Caller, "--interpolation bilinear")
        );
        assert_eq!(r.decisions.len(), 4, "{:?}", r.decisions);
    }

    #[test]
    fn crop_pct_and_layout() {
        let caller = PreprocessSpec {
            crop_pct: Some(0.95),
            ..PreprocessSpec::default()
        };
        let spec = PreprocessSpec::from_metadata(r#"{"preset": "tflite"}"#).unwrap();
        let r = resolve_layers(Some((224, 224)), Some(&spec), &caller, Layout::Nchw).unwrap();
        // floor(224 / 0.95) = 235; the layout is the model input's, not the preset's NHWC.
        assert_eq!(r.config.resize, Resize::ShorterSide { size: 235 });
        assert_eq!(r.config.layout, Layout::Nchw);
        assert_eq!(r.config.mean, [127.0; 3]);
        assert_eq!(r.sources.layout.layer, Layer::ModelInput);
    }

    #[test]
    fn a_metadata_crop_pct_follows_the_callers_crop() {
        let caller = PreprocessSpec {
            crop: Some(288),
            ..PreprocessSpec::default()
        };
        let r = resolve(
            None,
            Some(r#"{"preset": "timm", "crop_pct": 0.9}"#),
            &caller,
        )
        .unwrap();
        // floor(288 / 0.9) = 320, not the 248 of the metadata's own 224 crop.
        assert_eq!(r.config.resize, Resize::ShorterSide { size: 320 });
        assert_eq!(r.config.crop_height, 288);
        assert_eq!(r.sources.resize.layer, Layer::ModelMetadata);
        // Without the caller's crop, the metadata's ratio of its own crop.
        let r = resolve(
            None,
            Some(r#"{"preset": "timm", "crop_pct": 0.9}"#),
            &PreprocessSpec::default(),
        )
        .unwrap();
        assert_eq!(r.config.resize, Resize::ShorterSide { size: 248 });
        // The caller's own resize wins.
        let caller = PreprocessSpec {
            crop: Some(288),
            resize: Some(300),
            ..PreprocessSpec::default()
        };
        let r = resolve(None, Some(r#"{"crop_pct": 0.9}"#), &caller).unwrap();
        assert_eq!(r.config.resize, Resize::ShorterSide { size: 300 });
    }

    #[test]
    fn bad_metadata_names_the_key_and_the_value() {
        for (json, expect) in [
            (r#"{"crop": -3}"#, "crop must be a positive integer, got -3"),
            (r#"{"mean": [1, 2]}"#, "mean must be three numbers"),
            (
                r#"{"scale": "percent"}"#,
                "scale \"percent\" is not unit or raw255",
            ),
            (r#"[1]"#, "expected a JSON object"),
            (
                r#"{"crop_pct": 1.5}"#,
                "crop_pct must be a number in (0, 1]",
            ),
            ("{", "model metadata imagenetx.preprocess: EOF"),
        ] {
            let err = PreprocessSpec::from_metadata(json).unwrap_err().to_string();
            assert!(err.contains(expect), "{json}: {err}");
            assert!(err.contains(METADATA_KEY), "{err}");
        }
    }

    #[test]
    fn a_crop_that_does_not_fit_a_fixed_input_is_refused() {
        let caller = PreprocessSpec {
            crop: Some(256),
            ..PreprocessSpec::default()
        };
        let err = resolve(Some((224, 224)), None, &caller)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the crop is 256x256, but the model's input is fixed at 224x224 (crop from caller: --crop 256)"
        );
    }

    fn integer(element: imagenetx_infer::ElementType) -> InputInfo {
        use imagenetx_infer::Dim;
        InputInfo {
            name: "image".into(),
            element_type: element,
            shape: vec![
                Dim::Dynamic("N".into()),
                Dim::Fixed(224),
                Dim::Fixed(224),
                Dim::Fixed(3),
            ],
            layout: Layout::Nhwc,
            batch: Dim::Dynamic("N".into()),
            height: Dim::Fixed(224),
            width: Dim::Fixed(224),
            size: Some((224, 224)),
        }
    }

    #[test]
    fn integer_inputs_default_to_raw_pixels_and_refuse_what_they_cannot_hold() {
        use imagenetx_infer::ElementType;
        let fixed = Some((224, 224));
        let mut r = resolve(fixed, None, &PreprocessSpec::default()).unwrap();
        integer_input(&mut r, &integer(ElementType::U8), "m.onnx").unwrap();
        assert_eq!(
            (r.config.scale, r.config.mean, r.config.std),
            (PixelScale::Raw, [0.0; 3], [1.0; 3])
        );
        assert_eq!(
            r.sources.mean,
            Source::new(Layer::ModelInput, "u8 input: raw pixels 0..255")
        );
        // Resize, crop and interpolation keep their layers.
        assert_eq!(r.sources.interpolation.layer, Layer::Default);
        let mut r = resolve(fixed, None, &PreprocessSpec::default()).unwrap();
        integer_input(&mut r, &integer(ElementType::I8), "m.onnx").unwrap();
        assert_eq!((r.config.mean, r.config.std), ([128.0; 3], [1.0; 3]));
        // Metadata that says raw pixels is representable; the same for a float input is left.
        let mut r = resolve(
            fixed,
            Some(r#"{"scale": "raw255", "mean": [0, 0, 0]}"#),
            &PreprocessSpec::default(),
        )
        .unwrap();
        integer_input(&mut r, &integer(ElementType::U8), "m.onnx").unwrap();
        assert_eq!(r.sources.mean.layer, Layer::ModelMetadata);
        let mut r = resolve(fixed, None, &PreprocessSpec::default()).unwrap();
        let before = r.clone();
        integer_input(&mut r, &integer(ElementType::F32), "m.onnx").unwrap();
        assert_eq!(r, before);
        // A normalisation the type cannot hold, from the caller or the metadata: named.
        for (metadata, caller) in [
            (
                None,
                PreprocessSpec {
                    preset: Some("tflite".into()),
                    ..PreprocessSpec::default()
                },
            ),
            (
                None,
                PreprocessSpec {
                    std: Some([2.0; 3]),
                    ..PreprocessSpec::default()
                },
            ),
            (Some(r#"{"scale": "unit"}"#), PreprocessSpec::default()),
        ] {
            let mut r = resolve(fixed, metadata, &caller).unwrap();
            let err = integer_input(&mut r, &integer(ElementType::U8), "m.onnx")
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("input `image` of m.onnx is u8: it takes raw pixels 0..255")
                    && err.ends_with("which u8 cannot represent"),
                "{err}"
            );
        }
    }

    #[test]
    fn unknown_presets_are_named() {
        let caller = PreprocessSpec {
            preset: Some("vgg".into()),
            ..PreprocessSpec::default()
        };
        let err = resolve(None, None, &caller).unwrap_err().to_string();
        assert!(err.contains("vgg"), "{err}");
    }
}
