//! The side files exporters write beside a model: Hugging Face's `preprocessor_config.json`
//! and `config.json` (`id2label`), timm's `config.json` (`pretrained_cfg`).
//!
//! A model given as a folder is the folder's `model.onnx`, else its only `.onnx` file
//! ([`model_file`]). The side files in the model's folder are read by [`SideFiles::beside`]
//! and become the [`Layer::SideFile`] of the preprocessing
//! resolution: over the defaults, under the model's `imagenetx.preprocess` metadata and the
//! caller's flags. Each setting keeps the file and key it came from.
//!
//! What each file says, as the exporter's own library does it:
//!
//! - **`preprocessor_config.json`** (Hugging Face image processors, the slow PIL ones):
//!   `size.height`/`size.width` resize to exactly that size (ViT, DeiT, BEiT);
//!   `size.shortest_edge` resizes the shorter side (CLIP-like), then `crop_size` when
//!   `do_center_crop`; with a `crop_pct` key (ConvNeXt), `shortest_edge < 384` resizes the
//!   shorter side to `int(shortest_edge / crop_pct)` and crops `shortest_edge`, and 384 or
//!   more warps to `shortest_edge x shortest_edge` without a crop. The centre crop is
//!   Hugging Face's (`(len - crop) // 2`). `resample` is PIL's enum (2 bilinear, 3 bicubic),
//!   `do_rescale` with `rescale_factor` 1/255 (the only factor taken), `do_normalize` with
//!   `image_mean`, `image_std`. A key the file leaves out is not guessed from a library
//!   class's defaults: the layer below applies.
//! - **`config.json`** of timm (`pretrained_cfg`, or the same keys at the top level in older
//!   exports): `input_size` [3, H, W], `interpolation`, `mean`, `std`, `crop_pct`,
//!   `crop_mode` (`center`, `squash`, `border`), as timm's `transforms_imagenet_eval`.
//! - **`config.json`'s `id2label`** (or timm's `label_names`): the class count must be the
//!   model output's, and the order ImageNet-1k's ([`check_labels`]).
//!
//! ```
//! use imagenetx::sidefiles::SideFiles;
//! use imagenetx::imaging::{Interpolation, Resize};
//!
//! let vit = r#"{"image_processor_type": "ViTImageProcessor", "do_resize": true,
//!   "size": {"height": 224, "width": 224}, "resample": 2, "do_rescale": true,
//!   "rescale_factor": 0.00392156862745098, "do_normalize": true,
//!   "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}"#;
//! let side = SideFiles::from_preprocessor_config("vit/preprocessor_config.json".as_ref(), vit)?;
//! let geometry = side.geometry.expect("a size").value;
//! assert_eq!(geometry.resize, Resize::Exact { width: 224, height: 224 });
//! assert_eq!(side.interpolation.expect("resample").value, Interpolation::Bilinear);
//! # Ok::<(), imagenetx::Error>(())
//! ```

use std::path::{Path, PathBuf};

use imagenetx_dataset::labels::ClassNames;
use imagenetx_imaging::{CropRounding, Interpolation, PixelScale, Resize, scale_size};
use imagenetx_vocab::N_CLASSES;
use serde_json::{Map, Value};

use crate::preprocess::{Layer, Source};
use crate::{Error, Result};

/// Hugging Face's image processor file.
pub const PREPROCESSOR_CONFIG: &str = "preprocessor_config.json";
/// The model configuration of Hugging Face and timm exports.
pub const CONFIG: &str = "config.json";
/// The model file an export folder is expected to hold.
pub const MODEL_FILE: &str = "model.onnx";

/// Largest side edge where ConvNeXt's processor still crops (`shortest_edge < 384`).
const CONVNEXT_WARP_EDGE: u32 = 384;

/// The model file `path` names: `path` itself unless it is a folder; of a folder, its
/// `model.onnx`, else its only `.onnx` file. Several `.onnx` files and no `model.onnx` is an
/// error listing them.
pub fn model_file(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let model = path.join(MODEL_FILE);
    if model.is_file() {
        return Ok(model);
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        let entry = entry.map_err(|e| Error::io(path, e))?;
        let candidate = entry.path();
        if candidate
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
            && candidate.is_file()
        {
            found.push(candidate);
        }
    }
    found.sort();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::invalid(format!(
            "{}: the folder holds no {MODEL_FILE} and no other .onnx file",
            path.display()
        ))),
        many => Err(Error::invalid(format!(
            "{}: the folder holds no {MODEL_FILE} but {} .onnx files ({}); name the one to use",
            path.display(),
            many.len(),
            many.iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// One setting read from a side file, with the file and key it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting<T> {
    /// The value, in the terms of [`imagenetx_imaging::PreprocessConfig`].
    pub value: T,
    /// [`Layer::SideFile`] and `FILE: key` (`export/preprocessor_config.json: size`).
    pub source: Source,
}

/// The resize and crop a side file asks for (one setting: they are decided together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// The resize.
    pub resize: Resize,
    /// The crop height (the model's input height).
    pub crop_height: u32,
    /// The crop width.
    pub crop_width: u32,
    /// How the crop is centred (Hugging Face's or torchvision's).
    pub rounding: CropRounding,
    /// The padding colour where the image is smaller than the crop.
    pub pad_fill: [u8; 3],
}

/// The class labels of a `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// The file.
    pub file: PathBuf,
    /// `id2label` or `label_names`.
    pub key: &'static str,
    /// The label of each class index.
    pub names: Vec<String>,
}

/// What the side files beside a model say, field by field (`None`: the file does not say).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SideFiles {
    /// Resize and crop.
    pub geometry: Option<Setting<Geometry>>,
    /// The resampling filter.
    pub interpolation: Option<Setting<Interpolation>>,
    /// Per-channel mean, RGB, in the units of the scale.
    pub mean: Option<Setting<[f32; 3]>>,
    /// Per-channel standard deviation.
    pub std: Option<Setting<[f32; 3]>>,
    /// Pixel scale before normalisation.
    pub scale: Option<Setting<PixelScale>>,
    /// The class labels, when `config.json` has them.
    pub labels: Option<Labels>,
    /// What was read, in words (the run record's decisions).
    pub decisions: Vec<String>,
}

fn key_error(file: &Path, key: &str, problem: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{}: key `{key}`: {problem}", file.display()))
}

fn source(file: &Path, key: &str) -> Source {
    Source::new(Layer::SideFile, format!("{} {key}", file.display()))
}

fn setting<T>(file: &Path, key: &str, value: T) -> Setting<T> {
    Setting {
        value,
        source: source(file, key),
    }
}

/// Typed access to a JSON object's keys, errors naming the file and key.
struct Keys<'a> {
    file: &'a Path,
    object: &'a Map<String, Value>,
}

impl<'a> Keys<'a> {
    fn new(file: &'a Path, value: &'a Value) -> Result<Self> {
        let object = value
            .as_object()
            .ok_or_else(|| Error::invalid(format!("{}: expected a JSON object", file.display())))?;
        Ok(Keys { file, object })
    }

    /// The key's value, `null` read as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key).filter(|v| !v.is_null())
    }

    fn error(&self, key: &str, problem: impl std::fmt::Display) -> Error {
        key_error(self.file, key, problem)
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| self.error(key, format!("expected true or false, got {v}")))
            })
            .transpose()
    }

    fn side(&self, key: &str, v: &Value) -> Result<u32> {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=imagenetx_imaging::MAX_SIDE).contains(n))
            .ok_or_else(|| {
                self.error(
                    key,
                    format!(
                        "expected a whole number of pixels in 1..={}, got {v}",
                        imagenetx_imaging::MAX_SIDE
                    ),
                )
            })
    }

    fn number(&self, key: &str) -> Result<Option<f64>> {
        self.get(key)
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| self.error(key, format!("expected a number, got {v}")))
            })
            .transpose()
    }

    fn text(&self, key: &str) -> Result<Option<&'a str>> {
        self.get(key)
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| self.error(key, format!("expected a string, got {v}")))
            })
            .transpose()
    }

    /// Three numbers (or one, for all three channels, as Hugging Face allows).
    fn triple(&self, key: &str) -> Result<Option<[f32; 3]>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let bad = || self.error(key, format!("expected three numbers, got {v}"));
        if let Some(x) = v.as_f64() {
            return Ok(Some([x as f32; 3]));
        }
        let items = v.as_array().ok_or_else(bad)?;
        match items.iter().map(Value::as_f64).collect::<Option<Vec<_>>>() {
            Some(n) if n.len() == 3 => Ok(Some([n[0] as f32, n[1] as f32, n[2] as f32])),
            _ => Err(bad()),
        }
    }

    /// `crop_pct` in (0, 1].
    fn crop_pct(&self, key: &str) -> Result<Option<f64>> {
        let pct = self.number(key)?;
        if let Some(p) = pct
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(self.error(key, format!("expected a number in (0, 1], got {p}")));
        }
        Ok(pct)
    }
}

/// Reads a side file as JSON, naming it when it is not.
fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_json(path, &text)
}

fn parse_json(path: &Path, text: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("{}: not valid JSON: {e}", path.display())))
}

/// A Hugging Face `size` or `crop_size`.
enum HfSize {
    Exact { height: u32, width: u32 },
    ShortestEdge(u32),
}

impl SideFiles {
    /// Reads the side files in the folder of `model` (a model file): `preprocessor_config.json`
    /// and `config.json`, whichever are there. `None` when neither is.
    pub fn beside(model: &Path) -> Result<Option<Self>> {
        let dir = match model.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let preprocessor = dir.join(PREPROCESSOR_CONFIG);
        let config = dir.join(CONFIG);
        let (has_preprocessor, has_config) = (preprocessor.is_file(), config.is_file());
        if !has_preprocessor && !has_config {
            return Ok(None);
        }
        let config_value = has_config.then(|| read_json(&config)).transpose()?;
        let mut side = if has_preprocessor {
            let value = read_json(&preprocessor)?;
            let mut side = Self::from_preprocessor_value(&preprocessor, &value)?;
            if let Some(value) = &config_value
                && timm_cfg(value).is_some()
            {
                side.decisions.push(format!(
                    "{}: timm's pretrained_cfg not used ({PREPROCESSOR_CONFIG} is beside it)",
                    config.display()
                ));
            }
            side
        } else {
            SideFiles::default()
        };
        if let Some(value) = &config_value {
            let from_config = Self::from_config_value(&config, value)?;
            if !has_preprocessor {
                side = SideFiles {
                    labels: None,
                    ..from_config.clone()
                };
            }
            side.labels = from_config.labels;
        }
        Ok(Some(side))
    }

    /// Reads the text of a Hugging Face `preprocessor_config.json`; `path` names it in errors
    /// and sources.
    pub fn from_preprocessor_config(path: &Path, json: &str) -> Result<Self> {
        Self::from_preprocessor_value(path, &parse_json(path, json)?)
    }

    /// Reads the text of a `config.json` (timm's preprocessing and the class labels); `path`
    /// names it in errors and sources.
    pub fn from_config(path: &Path, json: &str) -> Result<Self> {
        Self::from_config_value(path, &parse_json(path, json)?)
    }

    fn from_preprocessor_value(file: &Path, value: &Value) -> Result<Self> {
        let keys = Keys::new(file, value)?;
        let kind = keys
            .text("image_processor_type")?
            .or(keys.text("feature_extractor_type")?)
            .unwrap_or("an image processor without a type");
        let mut side = SideFiles::default();
        side.decisions
            .push(format!("side file {}: {kind}", file.display()));
        // Geometry.
        let do_resize = keys.bool("do_resize")?.unwrap_or(true);
        let do_center_crop = keys.bool("do_center_crop")?.unwrap_or(false);
        let crop_pct = keys.crop_pct("crop_pct")?;
        // Legacy files give `size` as one number: a shortest edge for the processors that
        // resize that way (ConvNeXt, CLIP), else a square.
        let int_is_edge = kind.starts_with("ConvNext") || kind.starts_with("CLIP");
        let size = |key: &str| -> Result<Option<HfSize>> {
            let Some(v) = keys.get(key) else {
                return Ok(None);
            };
            if v.is_u64() {
                let n = keys.side(key, v)?;
                return Ok(Some(if int_is_edge && key == "size" {
                    HfSize::ShortestEdge(n)
                } else {
                    HfSize::Exact {
                        height: n,
                        width: n,
                    }
                }));
            }
            let Some(object) = v.as_object() else {
                return Err(keys.error(
                    key,
                    format!("expected {{\"height\", \"width\"}} or {{\"shortest_edge\"}}, got {v}"),
                ));
            };
            let field = |name: &str| {
                object
                    .get(name)
                    .map(|n| keys.side(&format!("{key}.{name}"), n))
                    .transpose()
            };
            if object.contains_key("longest_edge") {
                return Err(keys.error(
                    key,
                    format!("`longest_edge` is not supported (only height/width or shortest_edge), got {v}"),
                ));
            }
            match (field("height")?, field("width")?, field("shortest_edge")?) {
                (Some(height), Some(width), None) => Ok(Some(HfSize::Exact { height, width })),
                (None, None, Some(edge)) => Ok(Some(HfSize::ShortestEdge(edge))),
                _ => Err(keys.error(
                    key,
                    format!("expected {{\"height\", \"width\"}} or {{\"shortest_edge\"}}, got {v}"),
                )),
            }
        };
        let crop = if do_center_crop {
            match size("crop_size")? {
                Some(HfSize::Exact { height, width }) => Some((height, width)),
                Some(HfSize::ShortestEdge(_)) => {
                    return Err(keys.error(
                        "crop_size",
                        "expected {\"height\", \"width\"}, got a shortest_edge",
                    ));
                }
                None => {
                    return Err(keys.error("crop_size", "missing, but do_center_crop is true"));
                }
            }
        } else {
            None
        };
        // ConvNeXt's rule: its processor, or any with a crop_pct and no centre crop.
        let convnext = kind.starts_with("ConvNext") || crop_pct.is_some();
        let floor = |resize: Resize, (crop_height, crop_width): (u32, u32)| Geometry {
            resize,
            crop_height,
            crop_width,
            rounding: CropRounding::Floor,
            pad_fill: [0; 3],
        };
        let geometry = match (do_resize, size("size")?) {
            (true, Some(HfSize::Exact { height, width })) => {
                let resize = Resize::Exact { width, height };
                Some(setting(
                    file,
                    if crop.is_some() {
                        "size, crop_size"
                    } else {
                        "size"
                    },
                    floor(resize, crop.unwrap_or((height, width))),
                ))
            }
            (true, Some(HfSize::ShortestEdge(edge))) if convnext && crop.is_none() => {
                // ConvNeXt: below 384, shorter side to int(edge / crop_pct), crop edge; at 384
                // or more, warp to edge x edge.
                let pct = crop_pct.unwrap_or(imagenetx_imaging::DEFAULT_CROP_PCT);
                let resize = if edge < CONVNEXT_WARP_EDGE {
                    let short = (f64::from(edge) / pct).trunc();
                    if !(1.0..=f64::from(imagenetx_imaging::MAX_SIDE)).contains(&short) {
                        return Err(keys.error(
                            "crop_pct",
                            format!("gives a resize of {short} for shortest_edge {edge}"),
                        ));
                    }
                    Resize::ShorterSide { size: short as u32 }
                } else {
                    Resize::Exact {
                        width: edge,
                        height: edge,
                    }
                };
                Some(setting(
                    file,
                    "size.shortest_edge, crop_pct",
                    floor(resize, (edge, edge)),
                ))
            }
            (true, Some(HfSize::ShortestEdge(edge))) => {
                let Some(crop) = crop else {
                    return Err(keys.error(
                        "size",
                        "a shortest_edge without a centre crop (do_center_crop, crop_size) or a crop_pct: the input size would vary with the image",
                    ));
                };
                Some(setting(
                    file,
                    "size.shortest_edge, crop_size",
                    floor(Resize::ShorterSide { size: edge }, crop),
                ))
            }
            (true, None) => return Err(keys.error("size", "missing, but do_resize is true")),
            (false, _) => match crop {
                Some(crop) => Some(setting(file, "crop_size", floor(Resize::None, crop))),
                None => {
                    return Err(keys.error(
                        "do_resize",
                        "false, and no centre crop either: the input size would vary with the image",
                    ));
                }
            },
        };
        side.geometry = geometry;
        if let Some(v) = keys.get("resample") {
            let interpolation = match v.as_u64() {
                Some(2) => Interpolation::Bilinear,
                Some(3) => Interpolation::Bicubic,
                _ => {
                    return Err(keys.error(
                        "resample",
                        format!("{v} is not supported: 2 (PIL bilinear) or 3 (PIL bicubic)"),
                    ));
                }
            };
            side.interpolation = Some(setting(file, "resample", interpolation));
        }
        if keys.bool("do_rescale")?.unwrap_or(true) {
            if let Some(factor) = keys.number("rescale_factor")? {
                if factor != 1.0 / 255.0 {
                    return Err(keys.error(
                        "rescale_factor",
                        format!("{factor} is not supported: only 1/255 (0.00392156862745098)"),
                    ));
                }
                side.scale = Some(setting(file, "rescale_factor", PixelScale::UnitInterval));
            }
        } else {
            side.scale = Some(setting(file, "do_rescale", PixelScale::Raw));
        }
        if keys.bool("do_normalize")?.unwrap_or(true) {
            side.mean = keys
                .triple("image_mean")?
                .map(|m| setting(file, "image_mean", m));
            side.std = keys
                .triple("image_std")?
                .map(|s| setting(file, "image_std", s));
        } else {
            side.mean = Some(setting(file, "do_normalize", [0.0; 3]));
            side.std = Some(setting(file, "do_normalize", [1.0; 3]));
        }
        Ok(side)
    }

    fn from_config_value(file: &Path, value: &Value) -> Result<Self> {
        let mut side = SideFiles {
            labels: labels(file, value)?,
            ..SideFiles::default()
        };
        let Some((cfg, prefix)) = timm_cfg(value) else {
            return Ok(side);
        };
        let keys = Keys::new(file, cfg)?;
        let key = |name: &str| format!("{prefix}{name}");
        side.decisions.push(format!(
            "side file {}: timm {}",
            file.display(),
            if prefix.is_empty() {
                "configuration (top-level keys)"
            } else {
                "pretrained_cfg"
            }
        ));
        let (height, width) = match keys.get("input_size") {
            None => (224, 224),
            Some(v) => {
                let dims = v.as_array().filter(|d| d.len() == 3).ok_or_else(|| {
                    keys.error(&key("input_size"), format!("expected [3, H, W], got {v}"))
                })?;
                if dims[0].as_u64() != Some(3) {
                    return Err(keys.error(
                        &key("input_size"),
                        format!("expected 3 channels first, got {v}"),
                    ));
                }
                (
                    keys.side(&key("input_size"), &dims[1])?,
                    keys.side(&key("input_size"), &dims[2])?,
                )
            }
        };
        let pct = keys
            .crop_pct("crop_pct")?
            .unwrap_or(imagenetx_imaging::DEFAULT_CROP_PCT);
        let scaled = |side: u32| scale_size(side, pct).map_err(|e| keys.error(&key("crop_pct"), e));
        let (scale_h, scale_w) = (scaled(height)?, scaled(width)?);
        let mode = keys.text("crop_mode")?.unwrap_or("center");
        let interpolation = match keys.text("interpolation")? {
            None => None,
            Some("bilinear") => Some(Interpolation::Bilinear),
            Some("bicubic") => Some(Interpolation::Bicubic),
            Some(other) => {
                return Err(keys.error(
                    &key("interpolation"),
                    format!("{other:?} is not supported: bilinear or bicubic"),
                ));
            }
        };
        let mean = keys.triple("mean")?;
        let std = keys.triple("std")?;
        let mut pad_fill = [0u8; 3];
        let resize = match mode {
            "center" if scale_h == scale_w => Resize::ShorterSide { size: scale_h },
            "center" => {
                // timm's ResizeKeepRatio(scale_size) here is built without the interpolation
                // argument: bilinear, whatever the configuration says.
                side.interpolation = Some(setting(
                    file,
                    &format!(
                        "{} (crop_mode center, non-square: timm's ResizeKeepRatio is bilinear)",
                        key("input_size")
                    ),
                    Interpolation::Bilinear,
                ));
                Resize::KeepRatio {
                    width: scale_w,
                    height: scale_h,
                    longest: false,
                }
            }
            "squash" => Resize::Exact {
                width: scale_w,
                height: scale_h,
            },
            "border" => {
                let m = mean.unwrap_or(imagenetx_imaging::IMAGENET_MEAN);
                // round(255 * v) on the configuration's own (f64) numbers, half to even.
                let exact = keys
                    .get("mean")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<_>>>());
                for c in 0..3 {
                    let v = exact.as_ref().map_or(f64::from(m[c]), |e| e[c]);
                    pad_fill[c] = (255.0 * v).round_ties_even().clamp(0.0, 255.0) as u8;
                }
                Resize::KeepRatio {
                    width: scale_w,
                    height: scale_h,
                    longest: true,
                }
            }
            other => {
                return Err(keys.error(
                    &key("crop_mode"),
                    format!("{other:?} is not supported: center, squash or border"),
                ));
            }
        };
        side.geometry = Some(setting(
            file,
            &format!(
                "{}, {}, {} {mode}",
                key("input_size"),
                key("crop_pct"),
                key("crop_mode")
            ),
            Geometry {
                resize,
                crop_height: height,
                crop_width: width,
                rounding: CropRounding::HalfEven,
                pad_fill,
            },
        ));
        if side.interpolation.is_none() {
            side.interpolation = interpolation.map(|i| setting(file, &key("interpolation"), i));
        }
        side.mean = mean.map(|m| setting(file, &key("mean"), m));
        side.std = std.map(|s| setting(file, &key("std"), s));
        Ok(side)
    }

    /// Checks [`SideFiles::labels`] against the model's class output: `classes` scores per
    /// image (1001 with a background class first), and, when `names` are given, ImageNet-1k's
    /// order ([`check_labels`]). Returns what was checked, in words.
    pub fn check_labels(
        &self,
        classes: usize,
        background_first: bool,
        names: Option<&ClassNames>,
    ) -> Result<Option<String>> {
        self.labels
            .as_ref()
            .map(|labels| check_labels(labels, classes, background_first, names))
            .transpose()
    }
}

/// The timm preprocessing object of a `config.json` and the prefix of its keys in messages:
/// `pretrained_cfg`, or the top level of older exports (recognised by `input_size` or
/// `crop_pct` there).
fn timm_cfg(value: &Value) -> Option<(&Value, &'static str)> {
    if let Some(cfg) = value.get("pretrained_cfg").filter(|v| !v.is_null()) {
        return Some((cfg, "pretrained_cfg."));
    }
    let top = value.as_object()?;
    (top.contains_key("input_size") || top.contains_key("crop_pct")).then_some((value, ""))
}

/// `id2label` (Hugging Face, an object from index to name) or `label_names` (timm, a list).
fn labels(file: &Path, value: &Value) -> Result<Option<Labels>> {
    let Some(object) = value.as_object() else {
        return Err(Error::invalid(format!(
            "{}: expected a JSON object",
            file.display()
        )));
    };
    if let Some(v) = object.get("id2label").filter(|v| !v.is_null()) {
        let map = v
            .as_object()
            .ok_or_else(|| key_error(file, "id2label", format!("expected an object, got {v}")))?;
        let mut names = vec![None; map.len()];
        for (index, name) in map {
            let i = index
                .parse::<usize>()
                .ok()
                .filter(|i| *i < map.len())
                .ok_or_else(|| {
                    key_error(
                        file,
                        "id2label",
                        format!("key {index:?} is not a class index in 0..{}", map.len()),
                    )
                })?;
            let name = name.as_str().ok_or_else(|| {
                key_error(
                    file,
                    &format!("id2label.{index}"),
                    format!("expected a string, got {name}"),
                )
            })?;
            names[i] = Some(name.to_string());
        }
        // Keys are distinct indices below the count: every slot is filled.
        let names = names.into_iter().map(Option::unwrap_or_default).collect();
        return Ok(Some(Labels {
            file: file.to_path_buf(),
            key: "id2label",
            names,
        }));
    }
    if let Some(v) = object.get("label_names").filter(|v| !v.is_null()) {
        let names = v
            .as_array()
            .and_then(|a| {
                a.iter()
                    .map(|n| n.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| key_error(file, "label_names", "expected a list of strings"))?;
        return Ok(Some(Labels {
            file: file.to_path_buf(),
            key: "label_names",
            names,
        }));
    }
    Ok(None)
}

/// A label as compared: lower case, `_` as a space, spaces collapsed.
fn normalised(text: &str) -> String {
    text.to_lowercase()
        .replace('_', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `label` names ImageNet class `wnid` / `name`. A label matches when, compared
/// case-insensitively with `_` read as a space, it is the WordNet id, the name, or one of its
/// comma-separated synonyms is the name (Hugging Face's labels are WordNet's synonym lists:
/// `tench, Tinca tinca` for `tench`).
pub fn label_matches(label: &str, wnid: &str, name: &str) -> bool {
    let label = normalised(label);
    let name = normalised(name);
    label == normalised(wnid)
        || label == name
        || label.split(',').any(|synonym| synonym.trim() == name)
}

/// Checks `labels` against a class output of `classes` scores (1001 with a background class
/// first): the count must match, and each label must name the ImageNet-1k class of its index
/// ([`label_matches`]) when `names` are given. Placeholder labels (`LABEL_0`, …, what Hugging
/// Face writes when it has none) are counted but not compared.
pub fn check_labels(
    labels: &Labels,
    classes: usize,
    background_first: bool,
    names: Option<&ClassNames>,
) -> Result<String> {
    let what = format!("{} {}", labels.file.display(), labels.key);
    let count = labels.names.len();
    let skip = usize::from(background_first && count == classes);
    if count != classes && !(background_first && count + 1 == classes) {
        return Err(Error::invalid(format!(
            "{what} has {count} classes, but the model's output has {classes}"
        )));
    }
    let ours = &labels.names[skip..];
    if ours
        .iter()
        .enumerate()
        .all(|(i, l)| l.eq_ignore_ascii_case(&format!("label_{i}")))
    {
        return Ok(format!(
            "{what}: {count} classes, placeholder names (order not checked)"
        ));
    }
    let Some(names) = names else {
        return Ok(format!(
            "{what}: {count} classes (order not checked: no ImageNet class names found)"
        ));
    };
    if ours.len() != N_CLASSES {
        return Err(Error::invalid(format!(
            "{what} has {} classes, not ImageNet-1k's {N_CLASSES}",
            ours.len()
        )));
    }
    for (i, label) in ours.iter().enumerate() {
        let class = u16::try_from(i).unwrap_or(u16::MAX);
        let (wnid, name) = (
            names.wnid(class).unwrap_or_default(),
            names.name(class).unwrap_or_default(),
        );
        if !label_matches(label, wnid, name) {
            return Err(Error::invalid(format!(
                "{what} is not in ImageNet-1k's class order: index {} is {label:?}, ImageNet class {i} is {name:?} ({wnid})",
                i + skip
            )));
        }
    }
    Ok(format!(
        "{what}: the {N_CLASSES} ImageNet-1k classes, in order"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PreprocessSpec;
    use crate::preprocess::resolve_with_side_files;
    use imagenetx_vocab::Layout;

    fn hf(json: &str) -> Result<SideFiles> {
        SideFiles::from_preprocessor_config(Path::new("x/preprocessor_config.json"), json)
    }

    fn timm(json: &str) -> Result<SideFiles> {
        SideFiles::from_config(Path::new("x/config.json"), json)
    }

    fn geometry(side: &SideFiles) -> Geometry {
        side.geometry.as_ref().expect("geometry").value
    }

    #[test]
    fn hugging_face_families() {
        let deit = hf(
            r#"{"image_processor_type": "DeiTImageProcessor", "do_resize": true,
            "size": {"height": 256, "width": 256}, "resample": 3, "do_center_crop": true,
            "crop_size": {"height": 224, "width": 224}, "do_rescale": true,
            "rescale_factor": 0.00392156862745098, "do_normalize": true,
            "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}"#,
        )
        .unwrap();
        let g = geometry(&deit);
        assert_eq!(
            g.resize,
            Resize::Exact {
                width: 256,
                height: 256
            }
        );
        assert_eq!(
            (g.crop_height, g.crop_width, g.rounding),
            (224, 224, CropRounding::Floor)
        );
        assert_eq!(deit.interpolation.unwrap().value, Interpolation::Bicubic);
        assert_eq!(deit.scale.unwrap().value, PixelScale::UnitInterval);
        // ConvNeXt below 384: int(224 / 0.875) = 256, crop 224; at 384: warp, no crop.
        let convnext = |edge: u32| {
            hf(&format!(
                r#"{{"image_processor_type": "ConvNextImageProcessor", "size": {{"shortest_edge": {edge}}},
                "crop_pct": 0.875, "resample": 3}}"#
            ))
            .unwrap()
        };
        let g = geometry(&convnext(224));
        assert_eq!(g.resize, Resize::ShorterSide { size: 256 });
        assert_eq!((g.crop_height, g.crop_width), (224, 224));
        let g = geometry(&convnext(384));
        assert_eq!(
            g.resize,
            Resize::Exact {
                width: 384,
                height: 384
            }
        );
        assert_eq!((g.crop_height, g.crop_width), (384, 384));
        // shortest_edge + crop_size (CLIP-like), an unknown type working by its keys.
        let clip = hf(r#"{"image_processor_type": "SomethingNewImageProcessor",
            "size": {"shortest_edge": 224}, "do_center_crop": true,
            "crop_size": {"height": 224, "width": 224}, "do_normalize": false}"#)
        .unwrap();
        assert_eq!(geometry(&clip).resize, Resize::ShorterSide { size: 224 });
        assert_eq!(clip.mean.unwrap().value, [0.0; 3]);
        assert_eq!(clip.std.unwrap().value, [1.0; 3]);
        assert!(clip.interpolation.is_none(), "left to the layer below");
    }

    #[test]
    fn bad_keys_name_the_file_key_and_value() {
        for (json, expect) in [
            (
                r#"{"size": {"height": 224, "width": 224}, "resample": 1}"#,
                "x/preprocessor_config.json: key `resample`: 1 is not supported",
            ),
            (
                r#"{"size": {"height": "224", "width": 224}}"#,
                "key `size.height`: expected a whole number",
            ),
            (
                r#"{"size": {"height": 224, "width": 224}, "do_resize": "yes"}"#,
                "key `do_resize`: expected true or false, got \"yes\"",
            ),
            (
                r#"{"size": {"height": 224, "width": 224}, "image_mean": [0.5, 0.5]}"#,
                "key `image_mean`: expected three numbers",
            ),
            (
                r#"{"size": {"height": 224, "width": 224}, "rescale_factor": 0.5}"#,
                "key `rescale_factor`: 0.5 is not supported",
            ),
            (
                r#"{"size": {"shortest_edge": 224}}"#,
                "key `size`: a shortest_edge without a centre crop",
            ),
            ("{", "x/preprocessor_config.json: not valid JSON"),
        ] {
            let err = hf(json).unwrap_err().to_string();
            assert!(err.contains(expect), "{json}: {err}");
        }
        for (json, expect) in [
            (
                r#"{"pretrained_cfg": {"interpolation": "nearest"}}"#,
                "x/config.json: key `pretrained_cfg.interpolation`: \"nearest\" is not supported",
            ),
            (
                r#"{"pretrained_cfg": {"crop_mode": "zoom"}}"#,
                "key `pretrained_cfg.crop_mode`: \"zoom\" is not supported",
            ),
            (
                r#"{"pretrained_cfg": {"input_size": [224, 224]}}"#,
                "key `pretrained_cfg.input_size`: expected [3, H, W]",
            ),
            (
                r#"{"input_size": [3, 224, 224], "crop_pct": 2}"#,
                "key `crop_pct`",
            ),
        ] {
            let err = timm(json).unwrap_err().to_string();
            assert!(err.contains(expect), "{json}: {err}");
        }
    }

    #[test]
    fn timm_modes() {
        let cfg = |mode: &str, size: &str| {
            timm(&format!(
                r#"{{"architecture": "x", "pretrained_cfg": {{"input_size": {size},
                "interpolation": "bicubic", "crop_pct": 0.9, "crop_mode": "{mode}",
                "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}}}"#
            ))
            .unwrap()
        };
        // floor(224 / 0.9) = 248.
        let center = cfg("center", "[3, 224, 224]");
        assert_eq!(geometry(&center).resize, Resize::ShorterSide { size: 248 });
        assert_eq!(center.interpolation.unwrap().value, Interpolation::Bicubic);
        let squash = cfg("squash", "[3, 224, 224]");
        assert_eq!(
            geometry(&squash).resize,
            Resize::Exact {
                width: 248,
                height: 248
            }
        );
        // round(255 * 0.5) = 127.5 -> 128 (half to even).
        let border = cfg("border", "[3, 224, 224]");
        let g = geometry(&border);
        assert_eq!(g.pad_fill, [128; 3]);
        assert!(matches!(g.resize, Resize::KeepRatio { longest: true, .. }));
        // Non-square centre: ResizeKeepRatio, bilinear whatever the file says.
        // floor(256 / 0.9) = 284, floor(192 / 0.9) = 213.
        let wide = cfg("center", "[3, 192, 256]");
        let g = geometry(&wide);
        assert_eq!(
            g.resize,
            Resize::KeepRatio {
                width: 284,
                height: 213,
                longest: false
            }
        );
        assert_eq!((g.crop_height, g.crop_width), (192, 256));
        assert_eq!(wide.interpolation.unwrap().value, Interpolation::Bilinear);
        // Older exports: the keys at the top level.
        let old = timm(
            r#"{"input_size": [3, 240, 240], "crop_pct": 0.875, "interpolation": "bilinear"}"#,
        )
        .unwrap();
        assert_eq!(geometry(&old).resize, Resize::ShorterSide { size: 274 });
        assert!(
            old.geometry
                .unwrap()
                .source
                .detail
                .contains("x/config.json input_size")
        );
    }

    #[test]
    fn side_files_sit_between_defaults_and_metadata() {
        let side = hf(r#"{"size": {"height": 224, "width": 224}, "resample": 3,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}"#)
        .unwrap();
        let metadata = PreprocessSpec::from_metadata(r#"{"interpolation": "bilinear"}"#).unwrap();
        let caller = PreprocessSpec {
            std: Some([0.25; 3]),
            ..PreprocessSpec::default()
        };
        let r = resolve_with_side_files(
            Some((224, 224)),
            Some(&side),
            Some(&metadata),
            &caller,
            Layout::Nchw,
        )
        .unwrap();
        assert_eq!(r.sources.resize.layer, Layer::SideFile);
        assert_eq!(r.sources.resize.detail, "x/preprocessor_config.json size");
        assert_eq!(r.config.crop_rounding, CropRounding::Floor);
        assert_eq!(r.sources.mean.layer, Layer::SideFile);
        assert_eq!(r.config.interpolation, Interpolation::Bilinear);
        assert_eq!(r.sources.interpolation.layer, Layer::ModelMetadata);
        assert_eq!(
            (r.config.std, r.sources.std.layer),
            ([0.25; 3], Layer::Caller)
        );
        assert_eq!(r.sources.scale.layer, Layer::Default);
        // A side file's crop that the fixed input cannot take names the file.
        let err = resolve_with_side_files(
            Some((160, 160)),
            Some(&side),
            None,
            &PreprocessSpec::default(),
            Layout::Nchw,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("fixed at 160x160 (crop from x/preprocessor_config.json size)"),
            "{err}"
        );
    }

    #[test]
    fn labels_are_counted_and_ordered() {
        let labels = |names: &[&str]| Labels {
            file: "x/config.json".into(),
            key: "id2label",
            names: names.iter().map(|s| s.to_string()).collect(),
        };
        let err = check_labels(&labels(&["a", "b"]), 1000, false, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "x/config.json id2label has 2 classes, but the model's output has 1000"
        );
        let placeholders: Vec<String> = (0..1000).map(|i| format!("LABEL_{i}")).collect();
        let refs: Vec<&str> = placeholders.iter().map(String::as_str).collect();
        let said = check_labels(&labels(&refs), 1001, true, None).unwrap();
        assert!(said.contains("placeholder"), "{said}");
        assert!(label_matches("tench, Tinca tinca", "n01440764", "tench"));
        assert!(label_matches("n01440764", "n01440764", "tench"));
        assert!(label_matches(
            "Great_White_Shark",
            "n01484850",
            "great white shark"
        ));
        assert!(label_matches("maillot, tank suit", "n03710721", "maillot"));
        assert!(!label_matches(
            "goldfish, Carassius auratus",
            "n01440764",
            "tench"
        ));
    }

    #[test]
    fn export_folders_name_their_model() {
        let dir = tempfile::tempdir().unwrap();
        let err = model_file(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("no model.onnx and no other .onnx file"),
            "{err}"
        );
        std::fs::write(dir.path().join("b.onnx"), b"x").unwrap();
        assert_eq!(model_file(dir.path()).unwrap(), dir.path().join("b.onnx"));
        std::fs::write(dir.path().join("a.onnx"), b"x").unwrap();
        let err = model_file(dir.path()).unwrap_err().to_string();
        assert!(err.contains("2 .onnx files (a.onnx, b.onnx)"), "{err}");
        std::fs::write(dir.path().join("model.onnx"), b"x").unwrap();
        assert_eq!(
            model_file(dir.path()).unwrap(),
            dir.path().join("model.onnx")
        );
        let file = dir.path().join("a.onnx");
        assert_eq!(model_file(&file).unwrap(), file);
    }
}
