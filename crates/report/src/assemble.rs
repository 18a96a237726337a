//! A report assembled from analyses already in memory: per-model numbers with intervals,
//! metaclass heatmap cells, the factor distribution, a gallery of each model's misclassified
//! images per factor with thumbnails decoded from the image files, and the paired
//! differences between the models ([`build_report`], [`model_differences`]); the report's
//! plots written as SVG and PNG files ([`write_plots`]).
//!
//! Everything here takes plain configuration ([`ReportOptions`]) and the annotated images
//! ([`AnnotatedSet`]); nothing reads flags or prints.

use std::collections::HashMap;
use std::path::Path;

use imagenetx_dataset::labels::ClassNames;
use imagenetx_dataset::{AnnotatedSet, ImageEntry};
use imagenetx_factors::compare::compare;
use imagenetx_factors::intervals::{IntervalOptions, model_intervals};
use imagenetx_factors::{Factor, ModelAnalysis, Outcome, Prediction, outcomes};
use imagenetx_imaging::ReadLimits;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::figures::Figure;
use crate::model::{
    Difference, Gallery, GalleryCard, GallerySection, ModelReport, ReportInput, THUMBNAIL_BUDGET,
    Thumbnail, differences, limit_thumbnails, metaclass_names, sample_indices,
};
#[cfg(feature = "png")]
use crate::raster;

/// How the report's gallery and intervals are made.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Page title.
    pub title: String,
    /// Cards per factor and model.
    pub gallery_per_factor: usize,
    /// Seed of the gallery sample.
    pub seed: u64,
    /// The images by base file name (files, or members of archives), for thumbnails; empty
    /// for none.
    pub images: HashMap<String, ImageEntry>,
    /// Longest thumbnail side in pixels.
    pub thumbnail_size: u32,
    /// Intervals; `None` for none.
    pub intervals: Option<IntervalOptions>,
    /// Bytes of embedded thumbnails at most ([`THUMBNAIL_BUDGET`]).
    pub thumbnail_budget: usize,
}

impl Default for ReportOptions {
    /// The command's defaults: 12 cards per factor, seed 0, no thumbnails, 128-pixel
    /// thumbnails when paths are given, default intervals, [`THUMBNAIL_BUDGET`].
    fn default() -> Self {
        ReportOptions {
            title: "ImageNet-X report".into(),
            gallery_per_factor: 12,
            seed: 0,
            images: HashMap::new(),
            thumbnail_size: 128,
            intervals: Some(IntervalOptions::default()),
            thumbnail_budget: THUMBNAIL_BUDGET,
        }
    }
}

/// One model to report.
#[derive(Debug)]
pub struct ReportModel<'a> {
    /// Its analysis.
    pub analysis: ModelAnalysis,
    /// Its predictions, aligned with the set's images.
    pub predictions: &'a [Option<Prediction>],
    /// Run metadata rows.
    pub metadata: Vec<(String, String)>,
}

/// The error of `context` about a statistics call.
fn analysis_error(context: String) -> impl FnOnce(imagenetx_factors::Error) -> Error {
    move |error| Error::Analysis { context, error }
}

/// Builds the report's data: per-model numbers with intervals, metaclass heatmap cells,
/// the factor distribution and a gallery of each model's misclassified images per factor
/// (`options.gallery_per_factor` sampled with `options.seed`, thumbnails when
/// `options.images` has the images). [`ReportInput::differences`] is left empty (see
/// [`model_differences`]).
pub fn build_report(
    set: &AnnotatedSet,
    names: Option<&ClassNames>,
    models: &[ReportModel<'_>],
    options: &ReportOptions,
) -> Result<ReportInput> {
    let mut reports = Vec::with_capacity(models.len());
    let mut scored = Vec::with_capacity(models.len());
    for model in models {
        let mut report = ModelReport::from_analysis(&model.analysis);
        report.metadata = model.metadata.clone();
        let outcome = outcomes(&set.annotations, model.predictions, model.analysis.options)
            .map_err(analysis_error(format!("scoring {}", model.analysis.model)))?;
        if let Some(interval_options) = &options.intervals {
            let iv = model_intervals(&set.annotations, &outcome, interval_options).map_err(
                analysis_error(format!("intervals of {}", model.analysis.model)),
            )?;
            report.accuracy_interval = iv.average_interval.map(|i| (i.low, i.high));
            for (stats, f) in report.factors.iter_mut().zip(iv.factors.iter()) {
                stats.accuracy_interval = f.accuracy_interval.map(|i| (i.low, i.high));
                stats.error_ratio_interval = f.error_ratio_interval.map(|i| (i.low, i.high));
                stats.small_sample = f.small_sample;
            }
        }
        reports.push(report);
        scored.push(outcome);
    }

    let per_factor = options.gallery_per_factor;
    let class_name = |class: u16| -> String {
        names
            .and_then(|n| n.name(class))
            .map_or_else(|| class.to_string(), |n| format!("{n} ({class})"))
    };
    let mut galleries = Vec::with_capacity(models.len());
    let mut wanted: Vec<&str> = Vec::new();
    for (model, outcome) in models.iter().zip(&scored) {
        let mut sections = Vec::new();
        for factor in Factor::ALL {
            let wrong: Vec<usize> = outcome
                .iter()
                .enumerate()
                .filter(|(i, o)| {
                    matches!(o, Outcome::Scored { correct: false, .. })
                        && set.records[*i].factors.contains(factor)
                })
                .map(|(i, _)| i)
                .collect();
            if wrong.is_empty() {
                continue;
            }
            let keys: Vec<&str> = wrong
                .iter()
                .map(|&i| set.records[i].file_name.as_str())
                .collect();
            let picks = sample_indices(&keys, per_factor, options.seed);
            let cards = picks
                .iter()
                .map(|&p| {
                    let i = wrong[p];
                    let record = &set.records[i];
                    wanted.push(record.file_name.as_str());
                    let prediction = model.predictions.get(i).copied().flatten();
                    GalleryCard {
                        file_name: record.file_name.clone(),
                        true_class: class_name(record.class),
                        predicted_class: prediction
                            .map_or_else(|| "—".to_string(), |p| class_name(p.class)),
                        probability: prediction.map(|p| p.probability),
                        one_word: record.one_word.clone(),
                        justification: record.justification.clone(),
                        thumbnail: None,
                    }
                })
                .collect();
            sections.push(GallerySection {
                factor: factor.name().to_string(),
                errors: wrong.len() as u64,
                cards,
            });
        }
        galleries.push(Gallery {
            model: model.analysis.model.clone(),
            sections,
        });
    }
    let thumbnails = thumbnails(&wanted, options);
    for card in galleries
        .iter_mut()
        .flat_map(|g| g.sections.iter_mut())
        .flat_map(|s| s.cards.iter_mut())
    {
        card.thumbnail = thumbnails.get(card.file_name.as_str()).cloned();
    }
    let dropped = limit_thumbnails(&mut galleries, options.thumbnail_budget);
    if dropped > 0 {
        tracing::warn!(
            "gallery: {dropped} thumbnails left out to keep the report small (--thumbnail-size or --gallery-per-factor lower it)"
        );
    }

    let factor_counts = Factor::ALL
        .iter()
        .map(|f| {
            let n = set
                .records
                .iter()
                .filter(|r| r.factors.contains(*f))
                .count();
            (f.name().to_string(), n as u64)
        })
        .collect();
    let o = set.options;
    let error_type = models
        .first()
        .map_or("class", |m| m.analysis.options.error_type.name());
    let interval_note = options.intervals.map(|iv| {
        format!(
            "Intervals at {:.0}%: Wilson score for accuracies, bootstrap percentile ({} replicates, seed {}) for error ratios; factors with fewer than {} images are flagged †.",
            iv.confidence() * 100.0,
            iv.replicates(),
            iv.seed(),
            iv.min_images()
        )
    });
    Ok(ReportInput {
        title: options.title.clone(),
        description: format!(
            "Error type {error_type}, {} factor, {} partition, {} annotated images{}.",
            o.selection.name(),
            o.partition.name(),
            set.len(),
            if o.keep_prototypes {
                String::new()
            } else {
                format!(" ({} prototypes left out)", set.prototypes_removed)
            }
        ),
        generator: format!("imagenetx {}", env!("CARGO_PKG_VERSION")),
        interval_note,
        models: reports,
        metaclasses: metaclass_names(),
        factor_counts,
        galleries,
        differences: Vec::new(),
    })
}

/// The paired differences of the first model against each other one (see
/// [`differences`]), in model order; none for fewer than two models.
pub fn model_differences(
    set: &AnnotatedSet,
    models: &[ReportModel<'_>],
    intervals: &IntervalOptions,
) -> Result<Vec<Difference>> {
    let mut out = Vec::new();
    let Some((first, others)) = models.split_first() else {
        return Ok(out);
    };
    let score = |model: &ReportModel<'_>| {
        outcomes(&set.annotations, model.predictions, model.analysis.options)
            .map_err(analysis_error(format!("scoring {}", model.analysis.model)))
    };
    let base = score(first)?;
    for other in others {
        let scored = score(other)?;
        let comparison = compare(
            &set.annotations,
            &first.analysis.model,
            &base,
            &other.analysis.model,
            &scored,
            intervals,
        )
        .map_err(analysis_error(format!(
            "comparing {} with {}",
            other.analysis.model, first.analysis.model
        )))?;
        out.extend(differences(&comparison));
    }
    Ok(out)
}

/// Thumbnails of the files named, decoded in parallel; files that are not found or do not
/// decode get none (with a warning).
fn thumbnails(wanted: &[&str], options: &ReportOptions) -> HashMap<String, Thumbnail> {
    if options.images.is_empty() {
        return HashMap::new();
    }
    let mut unique: Vec<&str> = wanted.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let missing = unique
        .iter()
        .filter(|f| !options.images.contains_key(**f))
        .count();
    if missing > 0 {
        tracing::warn!("gallery: {missing} images not found in --images; shown without thumbnail");
    }
    unique
        .par_iter()
        .filter_map(|file| options.images.get(*file).map(|e| (*file, e)))
        .filter_map(|(file, entry)| {
            let decoded = match entry.archive_member() {
                None => imagenetx_imaging::decode_file(entry.path(), ReadLimits::default()),
                Some(member) => imagenetx_imaging::decode_read(
                    entry.path(),
                    member.size(),
                    |limit| member.read(limit),
                    ReadLimits::default(),
                ),
            };
            match decoded {
                Ok(image) => Thumbnail::jpeg_from_rgb(
                    image.width(),
                    image.height(),
                    image.as_bytes(),
                    options.thumbnail_size,
                )
                .map(|t| (file.to_string(), t)),
                Err(e) => {
                    tracing::warn!("gallery: {e}");
                    None
                }
            }
        })
        .collect()
}

/// Largest scale of the PNG plots relative to their SVG size.
pub const MAX_PNG_SCALE: f32 = 16.0;

/// Checks a scale of the PNG plots: finite, in (0, [`MAX_PNG_SCALE`]].
pub fn check_png_scale(scale: f32) -> Result<()> {
    if scale.is_finite() && scale > 0.0 && scale <= MAX_PNG_SCALE {
        Ok(())
    } else {
        Err(Error::PngScale(scale))
    }
}

/// Whether this build writes the plots as PNG files too (the `png` feature).
pub const PNG_PLOTS: bool = cfg!(feature = "png");

/// Writes each figure as `<name>.svg` and, with the `png` feature ([`PNG_PLOTS`]),
/// `<name>.png` (rasterised at `scale`) into `dir`
/// (created if needed), one at a time (a pixmap at a large scale can take hundreds of MB),
/// each file through `write(path, bytes)`. Returns the names written, in order.
pub fn write_plots<E: From<Error>>(
    dir: &Path,
    figures: &[Figure],
    scale: f32,
    mut write: impl FnMut(&Path, &[u8]) -> std::result::Result<(), E>,
) -> std::result::Result<Vec<String>, E> {
    check_png_scale(scale)?;
    std::fs::create_dir_all(dir).map_err(|error| Error::CreateDir {
        path: dir.to_path_buf(),
        error,
    })?;
    let mut written = Vec::with_capacity(figures.len());
    for figure in figures {
        #[cfg(feature = "png")]
        let png = raster::svg_to_png(&figure.svg, scale).map_err(|error| Error::Raster {
            name: figure.name.clone(),
            error,
        })?;
        write(
            &dir.join(format!("{}.svg", figure.name)),
            figure.svg.as_bytes(),
        )?;
        #[cfg(feature = "png")]
        write(&dir.join(format!("{}.png", figure.name)), &png)?;
        written.push(figure.name.clone());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_scales_outside_the_range_are_refused() {
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY, 16.5] {
            assert!(
                matches!(check_png_scale(bad), Err(Error::PngScale(_))),
                "{bad}"
            );
        }
        for good in [0.5, 2.0, 16.0] {
            assert!(check_png_scale(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn plots_are_written_as_svg_and_png_in_order() {
        let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"8\"><rect width=\"10\" height=\"8\" fill=\"red\"/></svg>".to_string();
        let figures = vec![
            Figure {
                name: "b".into(),
                caption: String::new(),
                svg: svg.clone(),
            },
            Figure {
                name: "a".into(),
                caption: String::new(),
                svg,
            },
        ];
        let dir = tempfile::tempdir().expect("temp folder");
        let mut files = Vec::new();
        let names = write_plots(&dir.path().join("plots"), &figures, 2.0, |path, bytes| {
            files.push((path.to_path_buf(), bytes.len()));
            Ok::<(), Error>(())
        })
        .expect("written");
        assert_eq!(names, ["b", "a"]);
        let names: Vec<String> = files
            .iter()
            .map(|(p, _)| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["b.svg", "b.png", "a.svg", "a.png"]);
        assert!(dir.path().join("plots").is_dir());
    }
}
