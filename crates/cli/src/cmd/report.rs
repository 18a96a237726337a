//! `imagenetx report`: one self-contained HTML file (or a Markdown summary) of a factor
//! analysis: headline accuracy, error ratios with intervals, plots, and a gallery of
//! misclassified images per factor.
//!
//! [`build_report`] turns analyses already in memory into the report's plain data, so
//! `evaluate --report` can share it; [`run`] is the command.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use imagenetx_dataset::labels::ClassNames;
use imagenetx_dataset::{
    AnnotatedSet, collect_prediction_files, discover_images, parse_predictions,
};
use imagenetx_factors::compare::compare;
use imagenetx_factors::intervals::{IntervalOptions, model_intervals};
use imagenetx_factors::{Factor, ModelAnalysis, Outcome as Scored, Prediction, analyze, outcomes};
use imagenetx_imaging::{PreprocessConfig, Preprocessor};
use imagenetx_report::html::{
    self, Gallery, GalleryCard, GallerySection, ModelReport, ReportInput, Thumbnail,
};
use imagenetx_report::{markdown, raster};
use rayon::prelude::*;

use crate::Outcome;
use crate::common::{AnnotationArgs, ScoringArgs, StatsArgs, write_atomic};

/// Arguments of `imagenetx report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Prediction CSV files (the toolkit's format) or folders of them; each file is a model
    /// named after its file stem. A run record `<stem>.run.json` beside a file (written by
    /// `imagenetx evaluate`) adds the model's hash, preprocessing and provider.
    #[arg(required = true, value_name = "PRED")]
    pub predictions: Vec<PathBuf>,
    /// The file to write (HTML; with --format markdown, Markdown) [default for markdown:
    /// stdout].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// HTML report or Markdown summary.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// Folder of the images, for thumbnails in the gallery (found by file name, recursively).
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    #[command(flatten)]
    pub annotations: AnnotationArgs,
    #[command(flatten)]
    pub scoring: ScoringArgs,
    #[command(flatten)]
    pub stats: StatsArgs,
    /// Misclassified images shown per factor and model (a seeded, reproducible sample).
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub gallery_per_factor: usize,
    /// Longest side of the gallery thumbnails, in pixels.
    #[arg(long, value_name = "PX", default_value_t = 128)]
    pub thumbnail_size: u32,
    /// Title of the report.
    #[arg(long, default_value = "ImageNet-X report")]
    pub title: String,
    #[command(flatten)]
    pub plots: PlotArgs,
}

/// Where the report's plots go as files (shared with `evaluate --report`).
#[derive(Debug, Clone, clap::Args)]
pub struct PlotArgs {
    /// Also write every plot of the report into DIR, as NAME.svg and NAME.png (error_ratio,
    /// scatter_FACTOR, heatmap_MODEL, factor_distribution).
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Scale of the PNG plots relative to their SVG size (2: sharp on high-density screens).
    #[arg(long, value_name = "X", default_value_t = 2.0, requires = "plots")]
    pub png_scale: f32,
}

impl PlotArgs {
    /// Checks `--png-scale`.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(self.png_scale.is_finite() && self.png_scale > 0.0 && self.png_scale <= 16.0) {
            anyhow::bail!("--png-scale {} is not a scale in (0, 16]", self.png_scale);
        }
        Ok(())
    }

    /// Writes the report's figures when `--plots` was given.
    pub fn write(&self, figures: &[html::Figure]) -> anyhow::Result<()> {
        match &self.plots {
            Some(dir) => write_plots(dir, figures, self.png_scale),
            None => Ok(()),
        }
    }
}

/// `--format` of `imagenetx report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// One self-contained HTML file.
    Html,
    /// A Markdown summary (pull-request comment, CI job summary).
    Markdown,
}

/// How the report's gallery and intervals are made.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Page title.
    pub title: String,
    /// Cards per factor and model.
    pub gallery_per_factor: usize,
    /// Seed of the gallery sample.
    pub seed: u64,
    /// Image files by base file name, for thumbnails; empty for none.
    pub image_paths: HashMap<String, PathBuf>,
    /// Longest thumbnail side in pixels.
    pub thumbnail_size: u32,
    /// Intervals; `None` for none.
    pub intervals: Option<IntervalOptions>,
    /// Bytes of embedded thumbnails at most ([`html::THUMBNAIL_BUDGET`]).
    pub thumbnail_budget: usize,
}

impl Default for ReportOptions {
    /// The command's defaults: 12 cards per factor, seed 0, no thumbnails, 128-pixel
    /// thumbnails when paths are given, default intervals, [`html::THUMBNAIL_BUDGET`].
    fn default() -> Self {
        ReportOptions {
            title: "ImageNet-X report".into(),
            gallery_per_factor: 12,
            seed: 0,
            image_paths: HashMap::new(),
            thumbnail_size: 128,
            intervals: Some(IntervalOptions::default()),
            thumbnail_budget: html::THUMBNAIL_BUDGET,
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

/// Runs `imagenetx report`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let intervals = args.stats.options()?;
    args.plots.validate()?;
    if args.format == ReportFormat::Html && args.out.is_none() {
        anyhow::bail!("--out FILE is required for the HTML report");
    }
    let files = collect_prediction_files(&args.predictions)?;
    let dir = args.annotations.dir()?;
    // The first file is opened and its first rows parsed while the annotations load; every
    // file streams row by row as it is matched with the annotated images.
    let (set, mut first) = rayon::join(
        || args.annotations.load_set(&dir),
        || files.first().map(|file| parse_predictions(&file.path)),
    );
    let set = set?;
    if set.is_empty() {
        anyhow::bail!("no annotated images in {}", dir.root().display());
    }
    let names = dir.read_class_names().ok();
    let options = args.scoring.options()?;
    let mut loaded = Vec::with_capacity(files.len());
    for file in &files {
        let parsed = match first.take() {
            Some(parsed) => parsed?,
            None => parse_predictions(&file.path)?,
        };
        let aligned = parsed.align(&set, args.scoring.strict)?;
        let analysis = analyze(&set.annotations, &file.model, &aligned.predictions, options)
            .with_context(|| format!("analysing {}", file.path.display()))?;
        let mut metadata = vec![("predictions".to_string(), file.path.display().to_string())];
        metadata.extend(run_metadata(&file.path));
        loaded.push((analysis, aligned.predictions, metadata));
    }
    let image_paths = match &args.images {
        Some(root) => discover_images(root, None)?
            .images
            .into_iter()
            .map(|e| (e.file_name().to_string(), e.path().to_path_buf()))
            .collect(),
        None => HashMap::new(),
    };
    let report_options = ReportOptions {
        title: args.title.clone(),
        gallery_per_factor: args.gallery_per_factor,
        seed: args.stats.seed,
        image_paths,
        thumbnail_size: args.thumbnail_size,
        intervals: Some(intervals),
        thumbnail_budget: html::THUMBNAIL_BUDGET,
    };
    let models: Vec<ReportModel<'_>> = loaded
        .iter()
        .map(|(analysis, predictions, metadata)| ReportModel {
            analysis: analysis.clone(),
            predictions,
            metadata: metadata.clone(),
        })
        .collect();
    let mut input = build_report(&set, names.as_ref(), &models, &report_options)?;
    let mut differences = Vec::new();
    if let Some((first, others)) = models.split_first() {
        let base = outcomes(&set.annotations, first.predictions, first.analysis.options)?;
        for other in others {
            let scored = outcomes(&set.annotations, other.predictions, other.analysis.options)?;
            let comparison = compare(
                &set.annotations,
                &first.analysis.model,
                &base,
                &other.analysis.model,
                &scored,
                &intervals,
            )?;
            differences.extend(markdown::differences(&comparison));
        }
    }
    input.differences = differences;
    // Drawn once, for the HTML and for --plots.
    let figures = if args.format == ReportFormat::Html || args.plots.plots.is_some() {
        html::figures(&input)
    } else {
        Vec::new()
    };
    let text = match args.format {
        ReportFormat::Html => html::render_with_figures(&input, &figures),
        ReportFormat::Markdown => markdown::summary(&markdown::Summary {
            title: input.title.clone(),
            description: input.description.clone(),
            models: input.models.clone(),
            worst: 5,
            differences: input.differences.clone(),
            interval_note: input.interval_note.clone(),
        }),
    };
    match &args.out {
        Some(out) => {
            write_atomic(out, text.as_bytes())?;
            eprintln!("wrote {} ({} bytes)", out.display(), text.len());
        }
        None => print!("{text}"),
    }
    // After the report: a plot that cannot be written costs the plots, not the report.
    args.plots.write(&figures)?;
    Ok(Outcome::Done)
}

/// Writes each figure as `<name>.svg` and `<name>.png` (rasterised at `scale`) into `dir`,
/// one at a time (a pixmap at a large scale can take hundreds of MB).
pub fn write_plots(dir: &Path, figures: &[html::Figure], scale: f32) -> anyhow::Result<()> {
    crate::common::ensure_dir(dir)?;
    let written: Vec<String> = figures
        .iter()
        .map(|figure| {
            let png = raster::svg_to_png(&figure.svg, scale)
                .with_context(|| format!("rasterising plot {}", figure.name))?;
            write_atomic(
                &dir.join(format!("{}.svg", figure.name)),
                figure.svg.as_bytes(),
            )?;
            write_atomic(&dir.join(format!("{}.png", figure.name)), &png)?;
            Ok(figure.name.clone())
        })
        .collect::<anyhow::Result<_>>()?;
    eprintln!(
        "wrote {} plots (SVG and PNG) to {}: {}",
        written.len(),
        dir.display(),
        written.join(", ")
    );
    Ok(())
}

/// Metadata rows from the run record `<predictions stem>.run.json` beside `predictions`, when
/// there is one and it parses; nothing otherwise.
pub fn run_metadata(predictions: &Path) -> Vec<(String, String)> {
    let path = predictions.with_extension("run.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let record: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("{}: not a run record: {e}", path.display());
            return Vec::new();
        }
    };
    let text_of = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut rows = Vec::new();
    let mut push = |key: &str, pointer: &str| {
        if let Some(v) = record.pointer(pointer).filter(|v| !v.is_null()) {
            rows.push((key.to_string(), text_of(v)));
        }
    };
    push("model", "/model/path");
    push("model sha256", "/model/sha256");
    push("preprocessing", "/preprocessing/config");
    push("provider", "/provider/used");
    push("provider requested", "/provider/requested");
    push("provider fallback", "/provider/fallback");
    push("ONNX Runtime", "/runtime/version");
    push("imagenetx", "/imagenetx_version");
    push("images", "/counts/images");
    push("predicted", "/counts/predicted");
    push("skipped", "/counts/skipped");
    rows.insert(0, ("run record".to_string(), path.display().to_string()));
    rows
}

/// Builds the report's data: per-model numbers with intervals, metaclass heatmap cells,
/// the factor distribution and a gallery of each model's misclassified images per factor
/// (`options.gallery_per_factor` sampled with `options.seed`, thumbnails when
/// `options.image_paths` has the files).
pub fn build_report(
    set: &AnnotatedSet,
    names: Option<&ClassNames>,
    models: &[ReportModel<'_>],
    options: &ReportOptions,
) -> anyhow::Result<ReportInput> {
    let mut reports = Vec::with_capacity(models.len());
    let mut scored = Vec::with_capacity(models.len());
    for model in models {
        let mut report = ModelReport::from_analysis(&model.analysis);
        report.metadata = model.metadata.clone();
        let outcome = outcomes(&set.annotations, model.predictions, model.analysis.options)
            .with_context(|| format!("scoring {}", model.analysis.model))?;
        if let Some(interval_options) = &options.intervals {
            let iv = model_intervals(&set.annotations, &outcome, interval_options)
                .with_context(|| format!("intervals of {}", model.analysis.model))?;
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
                    matches!(o, Scored::Scored { correct: false, .. })
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
            let picks = html::sample_indices(&keys, per_factor, options.seed);
            let cards = picks
                .iter()
                .map(|&p| {
                    let i = wrong[p];
                    let record = &set.records[i];
                    wanted.push(record.file_name.as_str());
                    let prediction = model.predictions[i];
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
    let dropped = html::limit_thumbnails(&mut galleries, options.thumbnail_budget);
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
        metaclasses: html::metaclass_names(),
        factor_counts,
        galleries,
        differences: Vec::new(),
    })
}

/// Thumbnails of the files named, decoded in parallel; files that are not found or do not
/// decode get none (with a warning).
fn thumbnails(wanted: &[&str], options: &ReportOptions) -> HashMap<String, Thumbnail> {
    if options.image_paths.is_empty() {
        return HashMap::new();
    }
    let mut unique: Vec<&str> = wanted.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let missing = unique
        .iter()
        .filter(|f| !options.image_paths.contains_key(**f))
        .count();
    if missing > 0 {
        tracing::warn!("gallery: {missing} images not found in --images; shown without thumbnail");
    }
    unique
        .par_iter()
        .filter_map(|file| options.image_paths.get(*file).map(|p| (*file, p)))
        .map_init(
            || Preprocessor::new(PreprocessConfig::torchvision()).ok(),
            |decoder, (file, path)| {
                let image = decoder.as_mut()?.decode_file(path);
                match image {
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
            },
        )
        .flatten()
        .collect()
}
