//! Per-model factor analysis: accuracy, error ratio, worst classes, calibration and
//! prevalence shift, computed as the paper's toolkit computes them.

use serde::Serialize;

use crate::calibration::{EceBins, pandas_ratio};
use crate::{Error, Result};
use imagenetx_vocab::{Annotations, Factor, Metaclass, N_FACTORS, N_METACLASSES, Prediction};

/// How many of the lowest-accuracy classes `worst_100_classes` pools.
pub const WORST_K_CLASSES: usize = 100;

/// What counts as a correct prediction (the toolkit's `error_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorType {
    /// The predicted class is the annotated class (`is_correct`).
    #[default]
    Class,
    /// The predicted class is in the annotated class's metaclass (`is_metaclass_correct`).
    Metaclass,
    /// The predicted class is one of the image's ReaL labels (`is_correct_real`).
    RealClass,
}

impl ErrorType {
    /// The name used on the command line and in outputs.
    pub fn name(self) -> &'static str {
        match self {
            ErrorType::Class => "class",
            ErrorType::Metaclass => "metaclass",
            ErrorType::RealClass => "real-class",
        }
    }
}

/// Options of one analysis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AnalysisOptions {
    /// What counts as correct.
    pub error_type: ErrorType,
    /// With [`ErrorType::RealClass`]: leave out images whose ReaL list is empty or unknown,
    /// instead of counting them as errors as the toolkit does.
    pub skip_empty_real: bool,
}

/// Number of images and how many of them were predicted correctly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Images in the group.
    pub images: u64,
    /// Images predicted correctly.
    pub correct: u64,
}

impl Counts {
    fn add(&mut self, correct: bool) {
        self.images += 1;
        self.correct += u64::from(correct);
    }

    /// `correct / images` as the toolkit computes it; `None` for an empty group.
    pub fn accuracy(&self) -> Option<f64> {
        pandas_ratio(self.correct as f64, self.images as f64)
    }
}

/// The counts of one metaclass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GroupCounts {
    /// All images of the group.
    pub overall: Counts,
    /// Images of the group with each factor, in [`Factor::ALL`] order.
    pub factors: [Counts; N_FACTORS],
}

impl GroupCounts {
    /// Accuracy on the images with `factor`.
    pub fn accuracy(&self, factor: Factor) -> Option<f64> {
        self.factors[factor.index()].accuracy()
    }

    /// Accuracy on all images of the group (the toolkit's `average`).
    pub fn average(&self) -> Option<f64> {
        self.overall.accuracy()
    }

    /// The lowest factor accuracy (the toolkit's `worst_factor`); factors without images are
    /// left out.
    pub fn worst_factor(&self) -> Option<f64> {
        Factor::ALL
            .iter()
            .filter_map(|f| self.accuracy(*f))
            .reduce(f64::min)
    }

    /// Error ratio of `factor`: (1 − accuracy on the factor) / (1 − average). `None` when
    /// the factor has no images or the group has no errors.
    pub fn error_ratio(&self, factor: Factor) -> Option<f64> {
        let accuracy = self.accuracy(factor)?;
        let average = self.average()?;
        pandas_ratio(1.0 - accuracy, 1.0 - average)
    }
}

/// The analysis of one model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelAnalysis {
    /// The model's name.
    pub model: String,
    /// What counted as correct.
    pub options: AnalysisOptions,
    /// Annotated images.
    pub annotated: usize,
    /// Annotated images the model has no prediction for (left out of every number).
    pub missing: usize,
    /// Images left out because their ReaL list is empty or unknown (`skip_empty_real`).
    pub excluded: usize,
    /// Counts over every image analysed, and per factor.
    pub counts: GroupCounts,
    /// Counts per metaclass, in [`Metaclass::ALL`] order.
    pub metaclasses: [GroupCounts; N_METACLASSES],
    /// Pooled accuracy over the 100 classes with the lowest accuracy (ties: lower class
    /// index first).
    pub worst_100_classes: Option<f64>,
    /// Expected calibration error (15 bins) per factor, in [`Factor::ALL`] order.
    pub calibration: [Option<f64>; N_FACTORS],
    /// Expected calibration error over every image analysed.
    pub calibration_average: Option<f64>,
    /// Prevalence shift of each factor among the model's errors (toolkit `prevalence.py`).
    pub prevalence_shift: [f64; N_FACTORS],
    /// Prevalence shift per metaclass, for the metaclasses the model has images of.
    pub metaclass_prevalence_shift: Vec<MetaclassShift>,
}

/// Prevalence shift of the factors among a model's errors within one metaclass.
#[derive(Debug, Clone, Serialize)]
pub struct MetaclassShift {
    /// The metaclass.
    pub metaclass: Metaclass,
    /// Shift per factor, in [`Factor::ALL`] order.
    pub shift: [f64; N_FACTORS],
    /// The model's accuracy on the metaclass.
    pub accuracy: Option<f64>,
}

impl ModelAnalysis {
    /// Accuracy on the images with `factor`.
    pub fn accuracy(&self, factor: Factor) -> Option<f64> {
        self.counts.accuracy(factor)
    }

    /// Accuracy over every image analysed (the toolkit's `average`).
    pub fn average(&self) -> Option<f64> {
        self.counts.average()
    }

    /// The lowest factor accuracy (the toolkit's `worst_factor`).
    pub fn worst_factor(&self) -> Option<f64> {
        self.counts.worst_factor()
    }

    /// Error ratio of `factor`.
    pub fn error_ratio(&self, factor: Factor) -> Option<f64> {
        self.counts.error_ratio(factor)
    }

    /// The highest per-factor calibration error (the toolkit's calibration `worst_factor`).
    pub fn calibration_worst(&self) -> Option<f64> {
        self.calibration.iter().flatten().copied().reduce(f64::max)
    }
}

/// What became of one annotated image in an analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The model has no prediction for it: left out.
    Missing,
    /// Left out by the options (an empty ReaL list with `skip_empty_real`).
    Excluded,
    /// Scored.
    Scored {
        /// Whether the prediction counts as correct under the error type.
        correct: bool,
        /// The model's probability for its prediction.
        probability: f64,
    },
}

impl Outcome {
    /// `Some(correct)` for a scored image, `None` for one left out.
    pub fn correct(self) -> Option<bool> {
        match self {
            Outcome::Scored { correct, .. } => Some(correct),
            _ => None,
        }
    }
}

/// Scores each annotated image: whether the model's prediction counts as correct under
/// `options.error_type` (the toolkit's `is_correct`, `is_metaclass_correct`,
/// `is_correct_real`), or why the image is left out. Every statistic of the crate is built on
/// these outcomes.
pub fn outcomes(
    annotations: &Annotations,
    predictions: &[Option<Prediction>],
    options: AnalysisOptions,
) -> Result<Vec<Outcome>> {
    if predictions.len() != annotations.len() {
        return Err(Error::Misaligned {
            model: String::new(),
            predictions: predictions.len(),
            images: annotations.len(),
        });
    }
    let n_classes = annotations.n_classes();
    let mut out = Vec::with_capacity(predictions.len());
    for (index, (image, prediction)) in annotations.images().iter().zip(predictions).enumerate() {
        let Some(prediction) = prediction else {
            out.push(Outcome::Missing);
            continue;
        };
        let predicted_metaclass = annotations.class_metaclass(prediction.class).ok_or(
            imagenetx_vocab::Error::ClassOutOfRange {
                what: "prediction",
                index,
                class: prediction.class,
                classes: n_classes,
            },
        )?;
        let correct = match options.error_type {
            ErrorType::Class => prediction.class == image.class,
            ErrorType::Metaclass => predicted_metaclass == annotations.metaclass_of(index),
            ErrorType::RealClass => match image.real.as_deref() {
                Some(labels) if !labels.is_empty() => labels.contains(&prediction.class),
                _ if options.skip_empty_real => {
                    out.push(Outcome::Excluded);
                    continue;
                }
                _ => false,
            },
        };
        out.push(Outcome::Scored {
            correct,
            probability: prediction.probability,
        });
    }
    Ok(out)
}

/// Analyses one model. `predictions[i]` is the model's prediction for annotated image `i`
/// (`None` when the model has none).
pub fn analyze(
    annotations: &Annotations,
    model: &str,
    predictions: &[Option<Prediction>],
    options: AnalysisOptions,
) -> Result<ModelAnalysis> {
    if predictions.len() != annotations.len() {
        return Err(Error::Misaligned {
            model: model.to_string(),
            predictions: predictions.len(),
            images: annotations.len(),
        });
    }
    let scored = outcomes(annotations, predictions, options)?;
    analyze_outcomes(annotations, model, &scored, options)
}

/// Analyses one model from its per-image [`outcomes`] (computed with the same `options`):
/// what [`analyze`] does after scoring, for callers that keep the outcomes for intervals or
/// comparisons.
pub fn analyze_outcomes(
    annotations: &Annotations,
    model: &str,
    scored: &[Outcome],
    options: AnalysisOptions,
) -> Result<ModelAnalysis> {
    if scored.len() != annotations.len() {
        return Err(Error::Misaligned {
            model: model.to_string(),
            predictions: scored.len(),
            images: annotations.len(),
        });
    }
    let n_classes = annotations.n_classes();
    let mut counts = GroupCounts::default();
    let mut metaclasses = [GroupCounts::default(); N_METACLASSES];
    let mut classes = vec![Counts::default(); n_classes];
    let mut ece_all = EceBins::default();
    let mut ece_factor = [EceBins::default(); N_FACTORS];
    // Per-factor counts over the model's wrong predictions, overall and per metaclass.
    let mut wrong_factor = [0u64; N_FACTORS];
    let mut wrong_metaclass = [[0u64; N_FACTORS]; N_METACLASSES];
    let (mut missing, mut excluded) = (0, 0);

    for (index, (image, outcome)) in annotations.images().iter().zip(scored).enumerate() {
        let (correct, probability) = match outcome {
            Outcome::Missing => {
                missing += 1;
                continue;
            }
            Outcome::Excluded => {
                excluded += 1;
                continue;
            }
            Outcome::Scored {
                correct,
                probability,
            } => (*correct, *probability),
        };
        let metaclass = annotations.metaclass_of(index);
        let group = &mut metaclasses[metaclass.index()];
        counts.overall.add(correct);
        group.overall.add(correct);
        classes[usize::from(image.class)].add(correct);
        ece_all.add(probability, correct);
        for factor in image.factors.iter() {
            let f = factor.index();
            counts.factors[f].add(correct);
            group.factors[f].add(correct);
            ece_factor[f].add(probability, correct);
            if !correct {
                wrong_factor[f] += 1;
                wrong_metaclass[metaclass.index()][f] += 1;
            }
        }
    }

    let all_factor_totals = counts.factors.map(|c| c.images);
    let overall_shift = prevalence_shift(&wrong_factor, &all_factor_totals);
    let annotation_prevalence = annotations.metaclass_factor_totals();
    let metaclass_prevalence_shift = Metaclass::ALL
        .iter()
        .filter(|m| metaclasses[m.index()].overall.images > 0)
        .map(|m| MetaclassShift {
            metaclass: *m,
            shift: prevalence_shift(
                &wrong_metaclass[m.index()],
                &annotation_prevalence[m.index()],
            ),
            accuracy: metaclasses[m.index()].average(),
        })
        .collect();

    Ok(ModelAnalysis {
        model: model.to_string(),
        options,
        annotated: annotations.len(),
        missing,
        excluded,
        counts,
        metaclasses,
        worst_100_classes: worst_k_classes(&classes, WORST_K_CLASSES),
        calibration: ece_factor.map(|bins| bins.ece()),
        calibration_average: ece_all.ece(),
        prevalence_shift: overall_shift,
        metaclass_prevalence_shift,
    })
}

/// Prevalence of each factor within `counts` (share of all factor annotations).
fn prevalence(counts: &[u64; N_FACTORS]) -> [f64; N_FACTORS] {
    let sum = counts.iter().sum::<u64>() as f64;
    counts.map(|c| c as f64 / sum)
}

/// The toolkit's prevalence shift: (prevalence among errors − prevalence) / prevalence, with
/// undefined values (no errors, absent factor) set to 0 as its `fillna(0)` does.
pub fn prevalence_shift(wrong: &[u64; N_FACTORS], all: &[u64; N_FACTORS]) -> [f64; N_FACTORS] {
    let among_wrong = prevalence(wrong);
    let overall = prevalence(all);
    std::array::from_fn(|f| {
        let shift = (among_wrong[f] - overall[f]) / overall[f];
        if shift.is_nan() { 0.0 } else { shift }
    })
}

/// Pooled accuracy over the `k` classes with the lowest accuracy, ties broken by class index;
/// classes without images are not candidates.
fn worst_k_classes(classes: &[Counts], k: usize) -> Option<f64> {
    let mut ranked: Vec<(f64, usize)> = classes
        .iter()
        .enumerate()
        .filter_map(|(class, counts)| Some((counts.accuracy()?, class)))
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut pooled = Counts::default();
    for (_, class) in ranked.iter().take(k) {
        pooled.images += classes[*class].images;
        pooled.correct += classes[*class].correct;
    }
    pooled.accuracy()
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagenetx_vocab::AnnotatedImage;

    fn image(class: u16, factors: &[Factor]) -> AnnotatedImage {
        AnnotatedImage {
            class,
            factors: factors.iter().copied().collect(),
            real: Some(vec![class].into_boxed_slice()),
        }
    }

    fn toy() -> Annotations {
        // Classes 0,1 are dogs, 2 is "other".
        let images = vec![
            image(0, &[Factor::Pose]),
            image(0, &[Factor::Pose, Factor::Background]),
            image(1, &[Factor::Background]),
            image(2, &[Factor::Style]),
        ];
        Annotations::new(
            images,
            vec![Metaclass::Dog, Metaclass::Dog, Metaclass::Other],
        )
        .expect("valid toy annotations")
    }

    fn pred(class: u16, probability: f64) -> Option<Prediction> {
        Some(Prediction { class, probability })
    }

    #[test]
    fn accuracies_and_error_ratios_by_hand() {
        let a = toy();
        let preds = [pred(0, 0.9), pred(1, 0.6), pred(1, 0.8), None];
        let r = analyze(&a, "m", &preds, AnalysisOptions::default()).expect("aligned");
        assert_eq!(r.missing, 1);
        // Images analysed: 0 (ok), 1 (wrong), 2 (ok).
        assert_eq!(r.average(), Some(2.0 / 3.0));
        assert_eq!(r.accuracy(Factor::Pose), Some(0.5));
        assert_eq!(r.accuracy(Factor::Background), Some(0.5));
        assert_eq!(r.accuracy(Factor::Style), None);
        assert_eq!(r.worst_factor(), Some(0.5));
        assert_eq!(r.error_ratio(Factor::Pose), Some(0.5 / (1.0 - 2.0 / 3.0)));
        assert_eq!(r.error_ratio(Factor::Style), None);
        // Worst classes: class 0 (1/2) then class 1 (1/1); pooled 2/3.
        assert_eq!(r.worst_100_classes, Some(2.0 / 3.0));
    }

    #[test]
    fn metaclass_error_type_accepts_a_sibling_class() {
        let a = toy();
        let preds = [pred(1, 0.5), pred(1, 0.5), pred(0, 0.5), pred(0, 0.5)];
        let options = AnalysisOptions {
            error_type: ErrorType::Metaclass,
            ..Default::default()
        };
        let r = analyze(&a, "m", &preds, options).expect("aligned");
        assert_eq!(
            r.counts.overall,
            Counts {
                images: 4,
                correct: 3
            }
        );
        assert_eq!(r.metaclasses[Metaclass::Other.index()].average(), Some(0.0));
    }

    #[test]
    fn real_class_counts_empty_lists_as_errors_unless_skipped() {
        let mut images = vec![image(0, &[Factor::Pose]), image(1, &[Factor::Pose])];
        images[1].real = Some(Box::new([]));
        let a = Annotations::new(images, vec![Metaclass::Dog; 2]).expect("valid");
        let preds = [pred(0, 1.0), pred(1, 1.0)];
        let mut options = AnalysisOptions {
            error_type: ErrorType::RealClass,
            skip_empty_real: false,
        };
        let r = analyze(&a, "m", &preds, options).expect("aligned");
        assert_eq!(r.average(), Some(0.5));
        options.skip_empty_real = true;
        let r = analyze(&a, "m", &preds, options).expect("aligned");
        assert_eq!((r.average(), r.excluded), (Some(1.0), 1));
        // No errors: the error ratio is undefined, not NaN or infinite.
        assert_eq!(r.error_ratio(Factor::Pose), None);
    }

    #[test]
    fn misaligned_or_out_of_range_predictions_are_errors() {
        let a = toy();
        assert!(analyze(&a, "m", &[None], AnalysisOptions::default()).is_err());
        let preds = [pred(7, 0.5), None, None, None];
        let err = analyze(&a, "m", &preds, AnalysisOptions::default()).unwrap_err();
        assert!(err.to_string().contains("class 7"), "{err}");
    }

    #[test]
    fn worst_classes_break_ties_by_class_index() {
        // Class 0 is the worst (0/1); classes 1 (2/4) and 3 (1/2) tie at 0.5 but differ in
        // size, so the class that fills the second place changes the pooled accuracy:
        // class 1 first gives (0 + 2) / (1 + 4) = 0.4, class 3 first would give 1/3.
        let mut classes = vec![Counts::default(); 5];
        classes[0] = Counts {
            images: 1,
            correct: 0,
        };
        classes[1] = Counts {
            images: 4,
            correct: 2,
        };
        classes[3] = Counts {
            images: 2,
            correct: 1,
        };
        classes[2] = Counts {
            images: 3,
            correct: 3,
        };
        assert_eq!(worst_k_classes(&classes, 1), Some(0.0));
        assert_eq!(worst_k_classes(&classes, 2), Some(2.0 / 5.0));
        // Swapping the two tied classes' counts swaps the winner: class 1 (now 1/2) first.
        classes.swap(1, 3);
        assert_eq!(worst_k_classes(&classes, 2), Some(1.0 / 3.0));
        // Both tied classes, then the perfect one; classes without images are no candidates.
        assert_eq!(worst_k_classes(&classes, 3), Some(3.0 / 7.0));
        assert_eq!(worst_k_classes(&classes, 10), Some(6.0 / 10.0));
        assert_eq!(worst_k_classes(&[], 2), None);
    }

    #[test]
    fn prevalence_shift_matches_its_definition() {
        let mut wrong = [0u64; N_FACTORS];
        let mut all = [0u64; N_FACTORS];
        wrong[0] = 3;
        wrong[1] = 1;
        all[0] = 10;
        all[1] = 10;
        let shift = prevalence_shift(&wrong, &all);
        assert_eq!(shift[0], (0.75 - 0.5) / 0.5);
        assert_eq!(shift[1], (0.25 - 0.5) / 0.5);
        assert_eq!(shift[2], 0.0);
        assert_eq!(prevalence_shift(&[0; N_FACTORS], &all)[0], 0.0);
    }
}
