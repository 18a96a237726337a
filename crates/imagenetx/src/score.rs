//! Scoring an evaluation: labels of the evaluated images, top-1 / top-5 / ReaL accuracy, and
//! the ImageNet-X factor analysis of the annotated ones.

use std::collections::HashMap;

use imagenetx_dataset::annotations::val_index;
use imagenetx_dataset::labels::ClassNames;
use imagenetx_dataset::{AnnotatedSet, ImageEntry, align_predictions};
use imagenetx_dataset::{PredictionRow, PredictionWriter};
use imagenetx_factors::intervals::{IntervalOptions, ModelIntervals, model_intervals};
use imagenetx_factors::{AnalysisOptions, ModelAnalysis, Outcome, analyze_outcomes, outcomes};
use imagenetx_infer::{SkippedFile, TopK};
use imagenetx_vocab::Prediction;

use crate::{AnnotationOptions, Result};

/// What is known about the evaluated images: class names, a label per image, ImageNet ReaL
/// labels, and the ImageNet-X annotations that cover some of them.
#[derive(Debug)]
pub struct Truth {
    /// ImageNet class names (when the annotations folder was found).
    pub names: Option<ClassNames>,
    /// The label of each image of the list (in list order), when known: from the
    /// `image_annotations` file, else ImageNet's validation labels by file name, else the
    /// label its archive gives it (WebDataset `.cls`, parquet `label`), else the class
    /// folder's (or file name's) WordNet id.
    pub labels: Vec<Option<u16>>,
    /// ImageNet ReaL labels of the validation images, by validation index.
    real_labels: Option<Vec<Vec<u16>>>,
    /// The annotated images, when some of the evaluated images are annotated.
    pub set: Option<AnnotatedSet>,
}

impl Truth {
    /// Finds the labels and annotations of `images`. Without an annotations folder there are
    /// no names, labels or analysis: that is said once as a warning, not an error.
    pub fn load(options: &AnnotationOptions, images: &[ImageEntry]) -> Result<Truth> {
        let dir = match options.annotation_dir() {
            Ok(dir) => Some(dir),
            Err(err) => {
                tracing::warn!("no class names, labels or factor analysis: {err}");
                None
            }
        };
        let names = dir.as_ref().map(|d| d.read_class_names()).transpose()?;
        let custom_records = options.image_records()?;
        let custom: Option<HashMap<&str, u16>> = custom_records.as_ref().map(|records| {
            records
                .iter()
                .map(|r| (r.file_name.as_str(), r.class))
                .collect()
        });
        let filename_labels = dir.as_ref().map(|d| d.read_filename_labels()).transpose()?;
        let real_labels = dir.as_ref().map(|d| d.read_real_labels()).transpose()?;
        let labels = images
            .iter()
            .map(|image| {
                if let Some(classes) = &custom {
                    return classes.get(image.file_name()).copied();
                }
                if let Some(label) = filename_labels
                    .as_ref()
                    .and_then(|l| l.get(image.file_name()))
                {
                    return Some(*label);
                }
                if let Some(label) = image.label() {
                    return Some(label);
                }
                image
                    .wnid()
                    .and_then(|w| names.as_ref().and_then(|n| n.class_of_wnid(w)))
            })
            .collect();
        drop(custom);
        let set = match &dir {
            Some(dir) => {
                let set = options.load_set_with(dir, custom_records)?;
                images
                    .iter()
                    .any(|i| set.position(i.file_name()).is_some())
                    .then_some(set)
            }
            None => None,
        };
        Ok(Truth {
            names,
            labels,
            real_labels,
            set,
        })
    }

    /// The ReaL labels of an image (validation images only).
    pub fn real(&self, image: &ImageEntry) -> Option<&[u16]> {
        let index = val_index(image.file_name())?;
        self.real_labels.as_ref()?.get(index).map(Vec::as_slice)
    }

    /// The name of class `class` (`?` when unknown).
    pub fn class_name(&self, class: usize) -> &str {
        self.names
            .as_ref()
            .and_then(|n| n.name(u16::try_from(class).ok()?))
            .unwrap_or("?")
    }

    /// Scores the predictions of `images` (`prediction(i)` gives image `i`'s, or `None`),
    /// reading each once: accuracy over the labelled images, ReaL accuracy over the
    /// validation images with a ReaL label, and the factor analysis of the annotated ones
    /// (aligned by file name as `imagenetx analyze` aligns a predictions CSV).
    pub fn score(
        &self,
        model: &str,
        images: &[ImageEntry],
        mut prediction: impl FnMut(usize) -> Result<Option<TopK>>,
    ) -> Result<Scores> {
        if images.len() != self.labels.len() {
            return Err(crate::Error::invalid(format!(
                "{} images to score, but the labels were loaded for {}",
                images.len(),
                self.labels.len()
            )));
        }
        let mut accuracy = Accuracy::default();
        let mut top1: Vec<(usize, Prediction)> = Vec::new();
        for (i, (image, label)) in images.iter().zip(&self.labels).enumerate() {
            let Some(p) = prediction(i)? else {
                continue;
            };
            let first = p.classes.first().copied();
            if let Some(label) = label {
                accuracy.labelled += 1;
                accuracy.top1 += u64::from(first == Some(usize::from(*label)));
                accuracy.top5 +=
                    u64::from(p.classes.iter().take(5).any(|c| *c == usize::from(*label)));
            }
            if let (Some(real), Some(first)) = (self.real(image), first)
                && !real.is_empty()
            {
                accuracy.real_images += 1;
                accuracy.real_correct += u64::from(real.iter().any(|r| usize::from(*r) == first));
            }
            if let (Some(class), Some(probability)) = (
                first.and_then(|c| u16::try_from(c).ok()),
                p.probabilities.first(),
            ) {
                top1.push((
                    i,
                    Prediction {
                        class,
                        probability: *probability,
                    },
                ));
            }
        }
        let (predictions, outcomes, analysis) = match &self.set {
            Some(set) => {
                let aligned = align_predictions(
                    set,
                    top1.iter().map(|(i, p)| (images[*i].file_name(), *p)),
                    std::path::Path::new(model),
                )?;
                // Scored once: the analysis and its intervals both read the outcomes.
                let scored = outcomes(
                    &set.annotations,
                    &aligned.predictions,
                    AnalysisOptions::default(),
                )?;
                let analysis =
                    analyze_outcomes(&set.annotations, model, &scored, AnalysisOptions::default())?;
                (aligned.predictions, scored, Some(analysis))
            }
            None => (Vec::new(), Vec::new(), None),
        };
        Ok(Scores {
            accuracy,
            predictions,
            analysis,
            outcomes,
        })
    }
}

impl Truth {
    /// Confidence intervals of the accuracies and error ratios of `scores` (Wilson intervals
    /// per factor, bootstrap intervals of the error ratios, as `imagenetx analyze` computes
    /// them); `None` when no evaluated image is annotated.
    pub fn intervals(
        &self,
        scores: &Scores,
        options: &IntervalOptions,
    ) -> Result<Option<ModelIntervals>> {
        let Some(set) = &self.set else {
            return Ok(None);
        };
        Ok(Some(model_intervals(
            &set.annotations,
            &scores.outcomes,
            options,
        )?))
    }

    /// The HTML report's input for one evaluated model: its `analysis` and aligned
    /// `predictions` ([`Scores`]), the run record beside `predictions_csv`, and thumbnails of
    /// the annotated images among `images`.
    pub fn report(
        &self,
        model: &str,
        images: &[ImageEntry],
        scores: &Scores,
        predictions_csv: &std::path::Path,
    ) -> Result<Option<imagenetx_report::model::ReportInput>> {
        let (Some(set), Some(analysis)) = (&self.set, &scores.analysis) else {
            return Ok(None);
        };
        let options = imagenetx_report::assemble::ReportOptions {
            title: format!("ImageNet-X report: {model}"),
            // Thumbnails of the annotated images (files or archive members).
            images: images
                .iter()
                .filter(|i| set.position(i.file_name()).is_some())
                .map(|i| (i.file_name().to_string(), i.clone()))
                .collect(),
            ..imagenetx_report::assemble::ReportOptions::default()
        };
        let input = imagenetx_report::assemble::build_report(
            set,
            self.names.as_ref(),
            &[imagenetx_report::assemble::ReportModel {
                analysis: analysis.clone(),
                predictions: &scores.predictions,
                metadata: crate::analyses::run_metadata(predictions_csv),
            }],
            &options,
        )?;
        Ok(Some(input))
    }
}

/// Top-1, top-5 and ReaL accuracy counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accuracy {
    /// Predicted images with a label.
    pub labelled: u64,
    /// ... whose top-1 class is the label.
    pub top1: u64,
    /// ... whose top-5 classes hold the label.
    pub top5: u64,
    /// Predicted validation images with a non-empty ReaL label set.
    pub real_images: u64,
    /// ... whose top-1 class is one of them.
    pub real_correct: u64,
}

impl Accuracy {
    /// Top-1 accuracy over the labelled images (`None` without labels).
    pub fn top1_rate(&self) -> Option<f64> {
        (self.labelled > 0).then(|| self.top1 as f64 / self.labelled as f64)
    }

    /// Top-5 accuracy over the labelled images.
    pub fn top5_rate(&self) -> Option<f64> {
        (self.labelled > 0).then(|| self.top5 as f64 / self.labelled as f64)
    }

    /// ReaL accuracy over the images with a ReaL label.
    pub fn real_rate(&self) -> Option<f64> {
        (self.real_images > 0).then(|| self.real_correct as f64 / self.real_images as f64)
    }
}

/// The scores of one model's predictions.
#[derive(Debug, Clone)]
pub struct Scores {
    /// Accuracy counts.
    pub accuracy: Accuracy,
    /// The top-1 predictions aligned with the annotated images (`predictions[i]` for
    /// annotated image `i`); empty when no evaluated image is annotated.
    pub predictions: Vec<Option<Prediction>>,
    /// The factor analysis (error ratios, per-metaclass accuracy, calibration …), when some
    /// evaluated images are annotated.
    pub analysis: Option<ModelAnalysis>,
    /// Each annotated image scored (correct, wrong, missing), for the intervals.
    outcomes: Vec<Outcome>,
}

/// The result of [`Evaluator::evaluate`](crate::Evaluator::evaluate).
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The model's name (its file stem).
    pub model: String,
    /// The predictions, one row per predicted image, sorted by file name (the rows of the
    /// predictions CSV).
    pub rows: Vec<PredictionRow>,
    /// Accuracy and factor analysis.
    pub scores: Scores,
    /// Confidence intervals of the factor accuracies and error ratios (default
    /// [`IntervalOptions`]: 95%, 1,000 bootstrap replicates, fixed seed), when some evaluated
    /// images are annotated.
    pub intervals: Option<ModelIntervals>,
    /// Images that were not predicted, with the reason, sorted by path.
    pub skipped: Vec<SkippedFile>,
}

impl Evaluation {
    /// The factor analysis, when some evaluated images are annotated.
    pub fn analysis(&self) -> Option<&ModelAnalysis> {
        self.scores.analysis.as_ref()
    }

    /// Writes the predictions CSV (the columns and rows `imagenetx evaluate` writes),
    /// atomically.
    pub fn write_predictions(&self, path: &std::path::Path) -> Result<()> {
        imagenetx_infer::write_atomic(path, |out| {
            let mut writer = PredictionWriter::new(out)?;
            for row in &self.rows {
                writer.write(row)?;
            }
            writer.flush()
        })?;
        Ok(())
    }
}
