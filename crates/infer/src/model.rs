//! What a model takes and returns, decided from its declared inputs and outputs.
//!
//! [`ModelInfo`] is built by [`crate::Classifier::new`]: the static part here (input layout,
//! batch, size, class output) from the declared tensor shapes, the rest (logits or
//! probabilities) from one probe batch. Every choice is kept as a [`Decision`] with its reason
//! so that `imagenetx inspect` and the run record can show why.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use imagenetx_vocab::Layout;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A model's metadata as ONNX Runtime reads it from the ONNX file: the standard fields of
/// the `ModelProto` and its graph, and the free-form `metadata_props` ([`custom`](Self::custom())).
///
/// This crate gives no meaning to any custom key: a consumer that defines one (a preprocessing
/// description, labels) reads and parses it. In JSON (run records, `inspect --json`) absent
/// fields and an empty `custom` map are left out.
///
/// ```
/// use imagenetx_infer::ModelMetadata;
///
/// let mut metadata = ModelMetadata::default();
/// metadata.custom.insert("author".into(), "me".into());
/// assert_eq!(metadata.custom("author"), Some("me"));
/// assert_eq!(metadata.custom("license"), None);
/// assert_eq!(serde_json::to_string(&metadata)?, r#"{"custom":{"author":"me"}}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelMetadata {
    /// The tool that wrote the model (`producer_name`, e.g. `pytorch`, `tf2onnx`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub producer_name: Option<String>,
    /// The model's `domain` (reverse-DNS namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The model's `doc_string`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The model's `model_version` (`None` when the model sets none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<i64>,
    /// The graph's `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_name: Option<String>,
    /// The graph's `doc_string`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_description: Option<String>,
    /// Every `metadata_props` entry, by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, String>,
}

impl ModelMetadata {
    /// The value of the custom (`metadata_props`) entry `key`, if the model has one.
    pub fn custom(&self, key: &str) -> Option<&str> {
        self.custom.get(key).map(String::as_str)
    }
}

/// One dimension of a declared tensor shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size.
    Fixed(u64),
    /// A dynamic size, with its symbolic name (empty when the model gives none).
    Dynamic(String),
}

impl Dim {
    /// The size when fixed.
    pub fn fixed(&self) -> Option<u64> {
        match self {
            Dim::Fixed(n) => Some(*n),
            Dim::Dynamic(_) => None,
        }
    }

    pub(crate) fn from_ort(size: i64, symbol: Option<&str>) -> Dim {
        match u64::try_from(size) {
            Ok(n) if n > 0 => Dim::Fixed(n),
            _ => Dim::Dynamic(symbol.unwrap_or_default().to_owned()),
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Dynamic(name) if name.is_empty() => f.write_str("?"),
            Dim::Dynamic(name) => f.write_str(name),
        }
    }
}

/// Formats a shape as `[N,3,224,224]`.
pub fn format_shape(dims: &[Dim]) -> String {
    let inner: Vec<String> = dims.iter().map(Dim::to_string).collect();
    format!("[{}]", inner.join(","))
}

/// Element type of the input or the class output.
///
/// Class outputs are f32 or f16. An image input may also be u8 or i8, the form of
/// TFLite-converted and edge models with their normalisation inside the graph: u8 takes the
/// raw pixels 0..255, i8 the pixels minus 128 (-128..127, as TFLite's int8 models expect).
/// Batches arrive as f32 holding those integers and are converted exactly (a value that is
/// not such an integer is an error, never rounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementType {
    /// 32-bit float.
    F32,
    /// 16-bit float (batches are converted from f32 before running).
    F16,
    /// Unsigned 8-bit integers (image inputs only): raw pixels 0..255.
    U8,
    /// Signed 8-bit integers (image inputs only): pixels minus 128, -128..127.
    I8,
}

impl ElementType {
    /// Whether the tensor holds integers (an image input of raw pixels).
    pub fn is_integer(self) -> bool {
        matches!(self, ElementType::U8 | ElementType::I8)
    }

    /// For an integer input, how far its pixel values sit below the raw pixels 0..255: 0 for
    /// u8, 128 for i8 (`p - 128`); `None` for float types.
    pub fn pixel_offset(self) -> Option<f32> {
        match self {
            ElementType::U8 => Some(0.0),
            ElementType::I8 => Some(128.0),
            ElementType::F32 | ElementType::F16 => None,
        }
    }

    /// The range of values it holds, for an integer type.
    pub fn integer_range(self) -> Option<(f32, f32)> {
        match self {
            ElementType::U8 => Some((0.0, 255.0)),
            ElementType::I8 => Some((-128.0, 127.0)),
            ElementType::F32 | ElementType::F16 => None,
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElementType::F32 => "f32",
            ElementType::F16 => "f16",
            ElementType::U8 => "u8",
            ElementType::I8 => "i8",
        })
    }
}

/// Whether the class output holds probabilities or logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreKind {
    /// Rows are non-negative and sum to 1: used as they are.
    Probabilities,
    /// Anything else: softmax is applied.
    Logits,
}

impl fmt::Display for ScoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScoreKind::Probabilities => "probabilities",
            ScoreKind::Logits => "logits",
        })
    }
}

/// One choice made about the model, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// What was decided (`layout`, `batch`, `class output`, …).
    pub subject: String,
    /// The choice (`NCHW`, `dynamic`, `logits`, …).
    pub choice: String,
    /// Why (`input dim 1 is 3`).
    pub reason: String,
}

impl Decision {
    /// A decision about `subject`: `choice`, because `reason`.
    pub fn new(subject: &str, choice: impl fmt::Display, reason: impl Into<String>) -> Self {
        Decision {
            subject: subject.to_owned(),
            choice: choice.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.subject, self.choice, self.reason)
    }
}

/// The image input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputInfo {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub element_type: ElementType,
    /// Declared shape.
    pub shape: Vec<Dim>,
    /// Channel position.
    pub layout: Layout,
    /// Batch dimension (fixed models are fed in chunks of that size, the last one padded).
    pub batch: Dim,
    /// Height dimension.
    pub height: Dim,
    /// Width dimension.
    pub width: Dim,
    /// `(height, width)` the input is fed at when the model fixes both or the caller set it
    /// ([`InputOverrides::size`]); `None`: the preprocessing's crop decides. Run records
    /// written before it was recorded read the model's fixed dims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<(usize, usize)>,
}

impl InputInfo {
    /// The batch size when the model fixes it.
    pub fn fixed_batch(&self) -> Option<usize> {
        self.batch.fixed().and_then(|b| usize::try_from(b).ok())
    }

    /// `(height, width)` when the model fixes both or the caller set the input size.
    pub fn fixed_size(&self) -> Option<(usize, usize)> {
        self.size.or_else(|| {
            let h = usize::try_from(self.height.fixed()?).ok()?;
            let w = usize::try_from(self.width.fixed()?).ok()?;
            Some((h, w))
        })
    }
}

/// What the caller says about the image input, over what the model declares (the
/// `--layout` and `--input-size` flags). A value that contradicts a fixed dimension of the
/// model is an error naming the tensor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputOverrides {
    /// Channel position.
    pub layout: Option<Layout>,
    /// `(height, width)` for symbolic height and width dimensions.
    pub size: Option<(usize, usize)>,
}

/// The output holding the class scores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputInfo {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub element_type: ElementType,
    /// Declared shape.
    pub shape: Vec<Dim>,
    /// Scores per image as produced (1000, or 1001 with a background class first).
    pub classes: usize,
    /// Column 0 is a background class, dropped before ranking (1001-class models).
    pub background_first: bool,
}

/// Everything decided about how a model is fed and read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The model file.
    pub path: PathBuf,
    /// The image input.
    pub input: InputInfo,
    /// The class output.
    pub output: OutputInfo,
    /// Logits or probabilities (decided by a probe batch).
    pub scores: ScoreKind,
    /// Every other output's name and shape, for the record.
    pub other_outputs: Vec<String>,
    /// The model's metadata (producer, description, custom entries). Run records written
    /// before it was recorded read as empty metadata.
    #[serde(default)]
    pub metadata: ModelMetadata,
    /// Every decision, in the order it was made, with its reason.
    pub decisions: Vec<Decision>,
}

/// A declared tensor as read from the session (element type kept as ORT's name).
#[derive(Debug, Clone)]
pub(crate) struct TensorDesc {
    pub name: String,
    pub element: Option<ElementType>,
    pub element_name: String,
    pub dims: Vec<Dim>,
}

impl TensorDesc {
    fn describe(&self) -> String {
        format!(
            "`{}` {} {}",
            self.name,
            self.element_name,
            format_shape(&self.dims)
        )
    }
}

fn describe_all(tensors: &[TensorDesc]) -> String {
    if tensors.is_empty() {
        return "none".to_owned();
    }
    tensors
        .iter()
        .map(TensorDesc::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The element type of the input (f32, f16, u8, i8) or the class output (f32, f16).
fn element_of(path: &Path, role: &'static str, tensor: &TensorDesc) -> Result<ElementType> {
    let input = role == "input";
    tensor
        .element
        .filter(|e| input || !e.is_integer())
        .ok_or_else(|| Error::UnsupportedElementType {
            path: path.to_path_buf(),
            role,
            tensor: tensor.name.clone(),
            got: tensor.element_name.clone(),
            expected: if input {
                "f32, f16, u8 or i8"
            } else {
                "f32 or f16"
            },
        })
}

/// Whether an output can hold class scores (f32 or f16: not an index output).
fn holds_scores(tensor: &TensorDesc) -> bool {
    tensor.element.is_some_and(|e| !e.is_integer())
}

/// Whether a symbolic dimension's name says it holds the channels (`channels`,
/// `num_channels`, `C`, …).
fn names_channels(dim: &Dim) -> bool {
    names(dim, &["c", "ch", "channel", "channels"], "channels")
}

/// Whether a symbolic dimension's name says it is the height (`height`, `H`, …).
fn names_height(dim: &Dim) -> bool {
    names(dim, &["h", "height"], "height")
}

/// Whether a symbolic dimension's name says it is the width (`width`, `W`, …).
fn names_width(dim: &Dim) -> bool {
    names(dim, &["w", "width"], "width")
}

/// A symbolic name equal to one of `exact` or ending in `suffix` (`num_channels`,
/// `image_height`), case and separators ignored.
fn names(dim: &Dim, exact: &[&str], suffix: &str) -> bool {
    let Dim::Dynamic(name) = dim else {
        return false;
    };
    let name = name.to_ascii_lowercase().replace('-', "_");
    exact.contains(&name.as_str()) || name.ends_with(suffix)
}

/// The channel position of a 4-d input `[batch, d1, d2, d3]`, with the reason, or `None`
/// when it is not an image batch: a fixed 3 at dim 1 or 3, else the dims' symbolic names,
/// else (dims 1 and 3 both symbolic, unnamed) NCHW.
fn detect_layout(d1: &Dim, d2: &Dim, d3: &Dim) -> Option<(Layout, String)> {
    let three = Dim::Fixed(3);
    let symbolic = |d: &Dim| d.fixed().is_none();
    Some(match (*d1 == three, *d3 == three) {
        (true, false) => (Layout::Nchw, "input dim 1 is 3".to_owned()),
        (true, true) => (
            Layout::Nchw,
            "input dim 1 is 3 (the last dim is 3 too; channels-first assumed)".to_owned(),
        ),
        (false, true) => (
            Layout::Nhwc,
            format!("input dim 1 is {d1}, the last dim is 3"),
        ),
        (false, false) if symbolic(d1) && names_channels(d1) => (
            Layout::Nchw,
            format!("input dim 1 is named `{d1}`: the channels"),
        ),
        (false, false) if symbolic(d3) && names_channels(d3) => (
            Layout::Nhwc,
            format!("the last input dim is named `{d3}`: the channels"),
        ),
        (false, false) if names_height(d1) && names_width(d2) && symbolic(d3) => (
            Layout::Nhwc,
            format!("input dims 1 and 2 are named `{d1}` and `{d2}`: height and width"),
        ),
        (false, false) if symbolic(d1) && names_height(d2) && names_width(d3) => (
            Layout::Nchw,
            format!("input dims 2 and 3 are named `{d2}` and `{d3}`: height and width"),
        ),
        (false, false) if symbolic(d1) && symbolic(d3) => (
            Layout::Nchw,
            "default: input dims 1 and 3 are both symbolic and their names do not say which \
             holds the channels (--layout chooses)"
                .to_owned(),
        ),
        (false, false) => return None,
    })
}

/// Decides element type, layout, batch and size from the model's inputs and the caller's
/// [`InputOverrides`].
pub(crate) fn analyse_input(
    path: &Path,
    inputs: &[TensorDesc],
    overrides: InputOverrides,
    decisions: &mut Vec<Decision>,
) -> Result<InputInfo> {
    let [input] = inputs else {
        return Err(Error::InputCount {
            path: path.to_path_buf(),
            count: inputs.len(),
            inputs: describe_all(inputs),
        });
    };
    let no_image = || Error::NoImageInput {
        path: path.to_path_buf(),
        tensor: input.name.clone(),
        shape: format_shape(&input.dims),
    };
    let [batch, d1, d2, d3] = input.dims.as_slice() else {
        return Err(no_image());
    };
    let (layout, reason) = match overrides.layout {
        Some(layout) => {
            let channels = match layout {
                Layout::Nchw => d1,
                Layout::Nhwc => d3,
            };
            if channels.fixed().is_some_and(|c| c != 3) {
                return Err(Error::InputOverride {
                    path: path.to_path_buf(),
                    tensor: input.name.clone(),
                    shape: format_shape(&input.dims),
                    asked: format!("--layout {}", layout.to_string().to_lowercase()),
                    why: format!("its channel dim would be {channels}, not 3"),
                });
            }
            (layout, "set with --layout".to_owned())
        }
        None => detect_layout(d1, d2, d3).ok_or_else(no_image)?,
    };
    let (height, width) = match layout {
        Layout::Nchw => (d2, d3),
        Layout::Nhwc => (d1, d2),
    };
    let element_type = element_of(path, "input", input)?;
    decisions.push(Decision::new(
        "input",
        format!("`{}`", input.name),
        format!(
            "the model's only input, {} {}",
            input.element_name,
            format_shape(&input.dims)
        ),
    ));
    decisions.push(Decision::new(
        "element type",
        element_type,
        match element_type {
            ElementType::F32 => "input is float32".to_owned(),
            ElementType::F16 => "input is float16: f32 batches are converted to f16".to_owned(),
            ElementType::U8 => "input is uint8: it takes raw pixels 0..255 (normalisation, if \
                                any, is inside the graph), fed exactly"
                .to_owned(),
            ElementType::I8 => "input is int8: it takes pixels minus 128 (-128..127, TFLite's \
                                int8 convention), fed exactly"
                .to_owned(),
        },
    ));
    decisions.push(Decision::new("layout", layout, reason));
    decisions.push(match batch {
        Dim::Fixed(1) => Decision::new(
            "batch",
            "fixed 1",
            "input dim 0 is 1: images are run one at a time",
        ),
        Dim::Fixed(n) => Decision::new(
            "batch",
            format!("fixed {n}"),
            format!("input dim 0 is {n}: images are run in chunks of {n}, the last one padded"),
        ),
        Dim::Dynamic(_) => Decision::new("batch", "dynamic", format!("input dim 0 is `{batch}`")),
    });
    let declared = match (height, width) {
        (Dim::Fixed(h), Dim::Fixed(w)) => usize::try_from(*h).ok().zip(usize::try_from(*w).ok()),
        _ => None,
    };
    let size = match overrides.size {
        Some((h, w)) => {
            for (dim, asked, which) in [(height, h, "height"), (width, w, "width")] {
                if dim.fixed().is_some_and(|d| d != asked as u64) {
                    return Err(Error::InputOverride {
                        path: path.to_path_buf(),
                        tensor: input.name.clone(),
                        shape: format_shape(&input.dims),
                        asked: format!("--input-size {h},{w}"),
                        why: format!("its {which} is fixed at {dim}"),
                    });
                }
            }
            decisions.push(Decision::new(
                "input size",
                format!("{h}x{w}"),
                format!("set with --input-size (the model's height is `{height}`, width `{width}`): preprocessing must produce it"),
            ));
            Some((h, w))
        }
        None => {
            decisions.push(match declared {
                Some((h, w)) => Decision::new(
                    "input size",
                    format!("{h}x{w}"),
                    "fixed by the model's input shape: preprocessing must produce it",
                ),
                None => Decision::new(
                    "input size",
                    "dynamic",
                    format!(
                        "height `{height}` and width `{width}` are not both fixed: the \
                         preprocessing's crop decides"
                    ),
                ),
            });
            declared
        }
    };
    Ok(InputInfo {
        name: input.name.clone(),
        element_type,
        shape: input.dims.clone(),
        layout,
        batch: batch.clone(),
        height: height.clone(),
        width: width.clone(),
        size,
    })
}

/// The class count of an output shaped `[N, C]` or `[N, C, 1, 1]`-like, when C is 1000 or 1001.
pub(crate) fn class_dimension(dims: &[Dim]) -> Option<usize> {
    let rest = dims.get(1..).filter(|rest| !rest.is_empty())?;
    let mut classes = None;
    for dim in rest {
        match dim {
            Dim::Fixed(1) => {}
            Dim::Fixed(n @ (1000 | 1001)) if classes.is_none() => classes = Some(*n as usize),
            _ => return None,
        }
    }
    classes
}

/// The chosen class output before the probe; `classes` is `None` when only running tells.
#[derive(Debug)]
pub(crate) struct OutputChoice {
    pub index: usize,
    pub element_type: ElementType,
    pub classes: Option<usize>,
}

/// Picks the output holding the classes (`--output NAME` or the one with a class dimension).
pub(crate) fn choose_output(
    path: &Path,
    outputs: &[TensorDesc],
    requested: Option<&str>,
    decisions: &mut Vec<Decision>,
) -> Result<OutputChoice> {
    let (index, classes) = if let Some(name) = requested {
        let index =
            outputs
                .iter()
                .position(|o| o.name == name)
                .ok_or_else(|| Error::UnknownOutput {
                    path: path.to_path_buf(),
                    name: name.to_owned(),
                    outputs: describe_all(outputs),
                })?;
        let dims = &outputs[index].dims;
        let classes = class_dimension(dims);
        let classes_fixed = dims.len() >= 2 && dims.iter().skip(1).all(|d| d.fixed().is_some());
        if classes.is_none() && (classes_fixed || dims.len() < 2) {
            return Err(Error::ClassShape {
                path: path.to_path_buf(),
                tensor: name.to_owned(),
                got: format_shape(dims),
            });
        }
        decisions.push(Decision::new(
            "class output",
            format!("`{name}`"),
            "named with --output",
        ));
        (index, classes)
    } else {
        let candidates: Vec<(usize, usize)> = outputs
            .iter()
            .enumerate()
            .filter(|(_, o)| holds_scores(o))
            .filter_map(|(i, o)| class_dimension(&o.dims).map(|c| (i, c)))
            .collect();
        let Some(&(index, classes)) = candidates.first() else {
            return Err(Error::NoClassOutput {
                path: path.to_path_buf(),
                outputs: describe_all(outputs),
            });
        };
        let shape = format_shape(&outputs[index].dims);
        let indices = outputs.iter().filter(|o| !holds_scores(o)).count();
        let reason = if candidates.len() == 1 && outputs.len() == 1 {
            format!("the only output, {shape}, has a {classes}-class dimension")
        } else if candidates.len() == 1 && indices > 0 {
            format!(
                "the only one of {} outputs with a 1000/1001-class dimension ({shape}) and \
                 float scores ({indices} integer output(s), e.g. class indices, left out)",
                outputs.len()
            )
        } else if candidates.len() == 1 {
            format!(
                "the only one of {} outputs with a 1000/1001-class dimension ({shape})",
                outputs.len()
            )
        } else {
            format!(
                "the first of {} outputs with a 1000/1001-class dimension ({shape}); pass --output to pick another",
                candidates.len()
            )
        };
        decisions.push(Decision::new(
            "class output",
            format!("`{}`", outputs[index].name),
            reason,
        ));
        (index, Some(classes))
    };
    let element_type = element_of(path, "output", &outputs[index])?;
    Ok(OutputChoice {
        index,
        element_type,
        classes,
    })
}

/// Records what the class count means.
pub(crate) fn class_decision(classes: usize, how: &str) -> Decision {
    if classes == 1001 {
        Decision::new(
            "classes",
            "1001",
            format!(
                "{how}: column 0 is a background class, dropped; the rest are ImageNet classes 0..999"
            ),
        )
    } else {
        Decision::new(
            "classes",
            classes,
            format!("{how}: ImageNet classes 0..999"),
        )
    }
}

/// Tolerance on row sums when deciding that outputs are probabilities.
pub const PROBABILITY_TOLERANCE: f64 = 1e-3;

/// Decides logits vs probabilities from probe rows (`classes` scores each).
pub(crate) fn decide_scores(rows: &[f32], classes: usize, probe: &str) -> (ScoreKind, Decision) {
    let decided = |kind: ScoreKind, reason: String| (kind, Decision::new("scores", kind, reason));
    let mut worst_sum: Option<f64> = None;
    let mut negative = false;
    for row in rows.chunks(classes.max(1)) {
        if row.iter().any(|v| v.is_nan()) {
            return decided(
                ScoreKind::Logits,
                format!(
                    "the probe ({probe}) gave NaN, so it cannot tell; treated as logits \
                     (NaN rows are reported per image)"
                ),
            );
        }
        negative |= row.iter().any(|&v| v < 0.0);
        let sum: f64 = row.iter().map(|&v| f64::from(v)).sum();
        if worst_sum.is_none_or(|w| (w - 1.0).abs() < (sum - 1.0).abs()) {
            worst_sum = Some(sum);
        }
    }
    let sum = worst_sum.unwrap_or(0.0);
    if !negative && (sum - 1.0).abs() <= PROBABILITY_TOLERANCE {
        decided(
            ScoreKind::Probabilities,
            format!(
                "the probe ({probe}) gave non-negative rows summing to 1 within \
                 {PROBABILITY_TOLERANCE} (worst {sum}); used as given"
            ),
        )
    } else if negative {
        decided(
            ScoreKind::Logits,
            format!("the probe ({probe}) gave negative scores: softmax is applied"),
        )
    } else {
        decided(
            ScoreKind::Logits,
            format!("the probe ({probe}) gave a row summing to {sum}, not 1: softmax is applied"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(name: &str, dims: &[i64]) -> TensorDesc {
        TensorDesc {
            name: name.to_owned(),
            element: Some(ElementType::F32),
            element_name: "f32".to_owned(),
            dims: dims.iter().map(|&d| Dim::from_ort(d, Some("N"))).collect(),
        }
    }

    #[test]
    fn layouts_and_reasons() {
        let path = Path::new("m.onnx");
        let mut d = Vec::new();
        let nchw =
            analyse_input(path, &[desc("x", &[-1, 3, 224, 224])], none(), &mut d).expect("nchw");
        assert_eq!(nchw.layout, Layout::Nchw);
        assert_eq!(nchw.fixed_size(), Some((224, 224)));
        assert_eq!(nchw.fixed_batch(), None);
        assert!(
            d.iter()
                .any(|x| x.to_string() == "layout NCHW: input dim 1 is 3"),
            "{d:?}"
        );

        let nhwc =
            analyse_input(path, &[desc("x", &[1, 160, 128, 3])], none(), &mut d).expect("nhwc");
        assert_eq!(nhwc.layout, Layout::Nhwc);
        assert_eq!(nhwc.fixed_size(), Some((160, 128)));
        assert_eq!(nhwc.fixed_batch(), Some(1));

        let err =
            analyse_input(path, &[desc("x", &[-1, 10])], none(), &mut d).expect_err("not image");
        let message = err.to_string();
        assert!(
            message
                .contains("no image-like input: expected [N,3,H,W] or [N,H,W,3], got `x` [N,10]"),
            "{message}"
        );

        let err = analyse_input(
            path,
            &[desc("a", &[1, 3, 8, 8]), desc("b", &[1])],
            none(),
            &mut d,
        )
        .expect_err("two inputs");
        assert!(matches!(err, Error::InputCount { count: 2, .. }), "{err}");
    }

    #[test]
    fn unsupported_element_type_is_named() {
        let mut input = desc("x", &[1, 3, 8, 8]);
        input.element = None;
        input.element_name = "u8".to_owned();
        input.element_name = "i64".to_owned();
        let err =
            analyse_input(Path::new("m.onnx"), &[input], none(), &mut Vec::new()).expect_err("i64");
        assert!(
            err.to_string()
                .contains("element type i64: expected f32, f16, u8 or i8"),
            "{err}"
        );
        let mut input = desc("x", &[1, 3, 8, 8]);
        input.element = Some(ElementType::U8);
        let info = analyse_input(Path::new("m.onnx"), &[input], none(), &mut Vec::new())
            .expect("u8 is an image input");
        assert_eq!(info.element_type, ElementType::U8);
    }

    fn none() -> InputOverrides {
        InputOverrides::default()
    }

    fn symbolic(name: &str, dims: &[&str]) -> TensorDesc {
        TensorDesc {
            name: name.to_owned(),
            element: Some(ElementType::F32),
            element_name: "f32".to_owned(),
            dims: dims
                .iter()
                .map(|d| match d.parse::<u64>() {
                    Ok(n) => Dim::Fixed(n),
                    Err(_) => Dim::Dynamic((*d).to_owned()),
                })
                .collect(),
        }
    }

    #[test]
    fn symbolic_dims_are_read_by_name() {
        let path = Path::new("m.onnx");
        let layout = |dims: &[&str], overrides: InputOverrides| {
            let mut d = Vec::new();
            let info = analyse_input(path, &[symbolic("pixel_values", dims)], overrides, &mut d)
                .map_err(|e| e.to_string())?;
            let reason = d
                .iter()
                .find(|x| x.subject == "layout")
                .map(|x| x.reason.clone())
                .unwrap_or_default();
            Ok::<_, String>((info.layout, info.fixed_size(), reason))
        };
        let hf = ["batch_size", "num_channels", "height", "width"];
        let (l, size, why) = layout(&hf, none()).unwrap();
        assert_eq!((l, size), (Layout::Nchw, None));
        assert_eq!(why, "input dim 1 is named `num_channels`: the channels");
        let (l, _, why) = layout(&["N", "height", "width", "channels"], none()).unwrap();
        assert_eq!(l, Layout::Nhwc, "{why}");
        let (l, _, why) = layout(&["N", "H", "W", "?x"], none()).unwrap();
        assert_eq!(l, Layout::Nhwc, "{why}");
        assert!(why.contains("height and width"), "{why}");
        let (l, _, why) = layout(&["N", "a", "b", "c2"], none()).unwrap();
        assert_eq!(l, Layout::Nchw);
        assert!(why.starts_with("default"), "{why}");
        // --layout and --input-size win over the names.
        let flags = InputOverrides {
            layout: Some(Layout::Nhwc),
            size: Some((192, 160)),
        };
        let (l, size, why) = layout(&hf, flags).unwrap();
        assert_eq!((l, size), (Layout::Nhwc, Some((192, 160))));
        assert_eq!(why, "set with --layout");
        // ... but never over a fixed dim that contradicts them.
        let err = layout(&["N", "3", "224", "224"], flags).unwrap_err();
        assert!(
            err.starts_with("--layout nhwc does not fit input `pixel_values` [N,3,224,224]")
                && err.ends_with("its channel dim would be 224, not 3"),
            "{err}"
        );
        let size_only = InputOverrides {
            size: Some((160, 160)),
            ..none()
        };
        let err = layout(&["N", "3", "224", "width"], size_only).unwrap_err();
        assert!(
            err.starts_with("--input-size 160,160 does not fit")
                && err.ends_with("its height is fixed at 224"),
            "{err}"
        );
        let (_, size, _) = layout(&["N", "3", "160", "width"], size_only).unwrap();
        assert_eq!(size, Some((160, 160)));
        // A fixed channel dim other than 3 is not an image batch.
        assert!(layout(&["N", "1", "28", "28"], none()).is_err());
    }

    #[test]
    fn class_dimensions() {
        let dims = |v: &[i64]| {
            v.iter()
                .map(|&d| Dim::from_ort(d, None))
                .collect::<Vec<_>>()
        };
        assert_eq!(class_dimension(&dims(&[-1, 1000])), Some(1000));
        assert_eq!(class_dimension(&dims(&[1, 1001])), Some(1001));
        assert_eq!(class_dimension(&dims(&[-1, 1000, 1, 1])), Some(1000));
        assert_eq!(class_dimension(&dims(&[-1, 512])), None);
        assert_eq!(class_dimension(&dims(&[-1, 1000, 1000])), None);
        assert_eq!(class_dimension(&dims(&[1000])), None);
        assert_eq!(class_dimension(&dims(&[-1, -1])), None);
    }

    #[test]
    fn output_choice() {
        let path = Path::new("m.onnx");
        let mut indices = desc("indices", &[-1, 1000]);
        indices.element = None;
        indices.element_name = "i64".to_owned();
        let (choice, reason) = {
            let mut d = Vec::new();
            let outputs = [indices, desc("probabilities", &[-1, 1000])];
            let choice = choose_output(path, &outputs, None, &mut d).expect("found");
            (choice, d[0].reason.clone())
        };
        assert_eq!(choice.index, 1, "integer outputs hold no scores");
        assert!(reason.contains("1 integer output(s)"), "{reason}");
        let outputs = [desc("features", &[-1, 512]), desc("logits", &[-1, 1000])];
        let mut d = Vec::new();
        let choice = choose_output(path, &outputs, None, &mut d).expect("found");
        assert_eq!((choice.index, choice.classes), (1, Some(1000)));

        let err = choose_output(path, &outputs, Some("nope"), &mut d).expect_err("unknown");
        assert!(err.to_string().contains("no output named `nope`"), "{err}");
        let err = choose_output(path, &outputs, Some("features"), &mut d).expect_err("512");
        assert!(
            err.to_string().contains("expected [N,1000] or [N,1001]"),
            "{err}"
        );

        let err = choose_output(path, &outputs[..1], None, &mut d).expect_err("none");
        assert!(err.to_string().contains("`features` f32 [N,512]"), "{err}");
    }

    #[test]
    fn score_kind_from_probe() {
        let probs = [0.25f32, 0.25, 0.5, 0.0];
        let (kind, d) = decide_scores(&probs, 4, "zeros");
        assert_eq!(
            (kind, d.choice.as_str()),
            (ScoreKind::Probabilities, "probabilities")
        );
        let logits = [1.0f32, -2.0, 0.5, 0.0];
        assert_eq!(decide_scores(&logits, 4, "zeros").0, ScoreKind::Logits);
        let not_one = [0.5f32, 0.6, 0.0, 0.0];
        assert_eq!(decide_scores(&not_one, 4, "zeros").0, ScoreKind::Logits);
        // Two rows: one sums to 1, the other does not.
        let mixed = [0.5f32, 0.5, 0.5, 0.6];
        assert_eq!(decide_scores(&mixed, 2, "zeros").0, ScoreKind::Logits);
        let nan = [f32::NAN, 0.0, 0.0, 0.0];
        let (kind, d) = decide_scores(&nan, 4, "zeros");
        assert_eq!(kind, ScoreKind::Logits);
        assert!(d.reason.contains("NaN"));
    }
}
