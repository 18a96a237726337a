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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementType {
    /// 32-bit float.
    F32,
    /// 16-bit float (batches are converted from f32 before running).
    F16,
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElementType::F32 => "f32",
            ElementType::F16 => "f16",
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
    pub(crate) fn new(subject: &str, choice: impl fmt::Display, reason: impl Into<String>) -> Self {
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
}

impl InputInfo {
    /// The batch size when the model fixes it.
    pub fn fixed_batch(&self) -> Option<usize> {
        self.batch.fixed().and_then(|b| usize::try_from(b).ok())
    }

    /// `(height, width)` when the model fixes both.
    pub fn fixed_size(&self) -> Option<(usize, usize)> {
        let h = usize::try_from(self.height.fixed()?).ok()?;
        let w = usize::try_from(self.width.fixed()?).ok()?;
        Some((h, w))
    }
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

fn element_of(path: &Path, role: &'static str, tensor: &TensorDesc) -> Result<ElementType> {
    tensor.element.ok_or_else(|| Error::UnsupportedElementType {
        path: path.to_path_buf(),
        role,
        tensor: tensor.name.clone(),
        got: tensor.element_name.clone(),
    })
}

/// Decides layout, batch and size from the model's inputs.
pub(crate) fn analyse_input(
    path: &Path,
    inputs: &[TensorDesc],
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
    let three = Dim::Fixed(3);
    let (layout, reason, height, width) = match (*d1 == three, *d3 == three) {
        (true, false) => (Layout::Nchw, "input dim 1 is 3".to_owned(), d2, d3),
        (true, true) => (
            Layout::Nchw,
            "input dim 1 is 3 (the last dim is 3 too; channels-first assumed)".to_owned(),
            d2,
            d3,
        ),
        (false, true) => (
            Layout::Nhwc,
            format!("input dim 1 is {d1}, the last dim is 3"),
            d1,
            d2,
        ),
        (false, false) => return Err(no_image()),
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
    decisions.push(match (height, width) {
        (Dim::Fixed(h), Dim::Fixed(w)) => Decision::new(
            "input size",
            format!("{h}x{w}"),
            "fixed by the model's input shape: preprocessing must produce it",
        ),
        _ => Decision::new(
            "input size",
            "dynamic",
            format!(
                "height `{height}` and width `{width}` are not both fixed: preprocessing decides"
            ),
        ),
    });
    Ok(InputInfo {
        name: input.name.clone(),
        element_type,
        shape: input.dims.clone(),
        layout,
        batch: batch.clone(),
        height: height.clone(),
        width: width.clone(),
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
            .filter_map(|(i, o)| class_dimension(&o.dims).map(|c| (i, c)))
            .collect();
        let Some(&(index, classes)) = candidates.first() else {
            return Err(Error::NoClassOutput {
                path: path.to_path_buf(),
                outputs: describe_all(outputs),
            });
        };
        let shape = format_shape(&outputs[index].dims);
        let reason = if candidates.len() == 1 && outputs.len() == 1 {
            format!("the only output, {shape}, has a {classes}-class dimension")
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
        let nchw = analyse_input(path, &[desc("x", &[-1, 3, 224, 224])], &mut d).expect("nchw");
        assert_eq!(nchw.layout, Layout::Nchw);
        assert_eq!(nchw.fixed_size(), Some((224, 224)));
        assert_eq!(nchw.fixed_batch(), None);
        assert!(
            d.iter()
                .any(|x| x.to_string() == "layout NCHW: input dim 1 is 3"),
            "{d:?}"
        );

        let nhwc = analyse_input(path, &[desc("x", &[1, 160, 128, 3])], &mut d).expect("nhwc");
        assert_eq!(nhwc.layout, Layout::Nhwc);
        assert_eq!(nhwc.fixed_size(), Some((160, 128)));
        assert_eq!(nhwc.fixed_batch(), Some(1));

        let err = analyse_input(path, &[desc("x", &[-1, 10])], &mut d).expect_err("not image");
        let message = err.to_string();
        assert!(
            message
                .contains("no image-like input: expected [N,3,H,W] or [N,H,W,3], got `x` [N,10]"),
            "{message}"
        );

        let err = analyse_input(path, &[desc("a", &[1, 3, 8, 8]), desc("b", &[1])], &mut d)
            .expect_err("two inputs");
        assert!(matches!(err, Error::InputCount { count: 2, .. }), "{err}");
    }

    #[test]
    fn unsupported_element_type_is_named() {
        let mut input = desc("x", &[1, 3, 8, 8]);
        input.element = None;
        input.element_name = "u8".to_owned();
        let err = analyse_input(Path::new("m.onnx"), &[input], &mut Vec::new()).expect_err("u8");
        assert!(
            err.to_string()
                .contains("element type u8: expected f32 or f16"),
            "{err}"
        );
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
