//! The analyses of prediction files, one call each: [`analyze`] (factor analysis of one or
//! more models, with intervals and optional comparisons to a baseline), [`compare`] (a paired
//! comparison of two models), [`assemble_report`] (the data of the HTML report or Markdown summary) and
//! [`annotation_summary`] (how the annotations are distributed).
//!
//! Each takes prediction-file paths and a plain options value, loads the annotations as
//! [`AnnotationOptions`] says, and returns typed results that render themselves in the
//! command's [`Format`]s and write the toolkit's tables into a folder. [`write_tables`] writes
//! the three tables every analysis writes; [`run_metadata`] reads the run record beside a
//! predictions file for the report.

use std::path::{Path, PathBuf};

use imagenetx_dataset::labels::ClassNames;
use imagenetx_dataset::{
    AnnotatedSet, AnnotationDir, ParsedPredictions, PredictionFile, collect_prediction_files,
    discover_images_in, parse_predictions,
};
use imagenetx_factors::compare::Comparison;
use imagenetx_factors::intervals::{IntervalOptions, ModelIntervals, model_intervals};
use imagenetx_factors::{AnalysisOptions, ModelAnalysis, Outcome, analyze_outcomes, outcomes};
use imagenetx_infer::RunRecord;
use imagenetx_report::assemble::{self, ReportModel, ReportOptions};
use imagenetx_report::figures::Figure;
use imagenetx_report::model::{ReportInput, THUMBNAIL_BUDGET};
use imagenetx_report::{Table, tables};
use rayon::prelude::*;
use serde_json::{Value, json};

use crate::{AnnotationOptions, Error, Result, ResultExt};

/// How a result is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for a terminal.
    #[default]
    Table,
    /// Markdown (pull requests, CI job summaries).
    Markdown,
    /// CSV.
    Csv,
    /// JSON.
    Json,
}

/// The version written into the JSON outputs.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Writes `contents` to `path` atomically (a temporary file beside it, fsync, rename): a
/// reader sees the old file or the new one, never half.
pub fn write_file(path: &Path, contents: &[u8]) -> Result<()> {
    imagenetx_infer::write_atomic(path, |w| w.write_all(contents))?;
    Ok(())
}

/// Creates the folder `dir` (and its parents).
fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Pretty JSON with a final newline.
fn pretty(value: &Value, what: &str) -> Result<String> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::invalid(format!("cannot encode {what}: {e}")))?;
    Ok(format!("{text}\n"))
}

/// The annotation folder and the annotated images, with the first prediction files parsed
/// meanwhile by `ahead` (parsing needs no annotations).
fn load_set_with<T: Send>(
    annotations: &AnnotationOptions,
    ahead: impl FnOnce() -> T + Send,
) -> Result<(AnnotationDir, AnnotatedSet, T)> {
    let dir = annotations.annotation_dir()?;
    let (set, parsed) = rayon::join(|| annotations.load_set(&dir), ahead);
    let set = set?;
    if set.is_empty() {
        return Err(Error::invalid(format!(
            "no annotated images in {}",
            dir.root().display()
        )));
    }
    Ok((dir, set, parsed))
}

/// The annotation selection and scoring options of a run, as recorded in its JSON outputs.
fn options_json(set: &AnnotatedSet, options: AnalysisOptions) -> Value {
    json!({
        "partition": set.options.partition,
        "factors": set.options.selection,
        "keep_prototypes": set.options.keep_prototypes,
        "error_type": options.error_type,
        "skip_empty_real": options.skip_empty_real,
    })
}

/// Writes the three tables every analysis writes into `dir` (created if needed), in the
/// toolkit's CSV layouts: `accuracies_per_factor.csv`, `error_ratios.csv` and
/// `accuracies_per_factor_metaclass.csv`.
pub fn write_tables(dir: &Path, results: &[ModelAnalysis]) -> Result<()> {
    create_dir(dir)?;
    write_file(
        &dir.join("accuracies_per_factor.csv"),
        tables::accuracies(results).to_csv().as_bytes(),
    )?;
    write_file(
        &dir.join("error_ratios.csv"),
        tables::error_ratios(results).to_csv().as_bytes(),
    )?;
    write_file(
        &dir.join("accuracies_per_factor_metaclass.csv"),
        tables::metaclass_accuracies(results).to_csv().as_bytes(),
    )
}

// ---------------------------------------------------------------------------------------
// analyze

/// What [`analyze`] does.
#[derive(Debug, Clone, Default)]
pub struct AnalyzeOptions {
    /// Which annotations.
    pub annotations: AnnotationOptions,
    /// What counts as correct.
    pub analysis: AnalysisOptions,
    /// Intervals and paired tests.
    pub intervals: IntervalOptions,
    /// Make annotated images without a prediction an error instead of leaving them out.
    pub strict: bool,
    /// Add a `human` model that predicts the annotated class (as the toolkit's `aggregate`).
    pub with_human: bool,
    /// Compare every other model to the model of this name.
    pub baseline: Option<String>,
}

/// One model's analysis with what was read to make it.
#[derive(Debug, Clone)]
pub struct ModelRun {
    /// The analysis.
    pub analysis: ModelAnalysis,
    /// Its intervals.
    pub intervals: ModelIntervals,
    /// The predictions file (`None` for the `human` model).
    pub file: Option<PathBuf>,
    /// Rows in the file.
    pub rows: usize,
    /// Rows of images that are not annotated.
    pub unannotated: usize,
    /// Per-image outcomes, kept only when comparisons need them.
    outcomes: Vec<Outcome>,
}

/// The result of [`analyze`].
#[derive(Debug)]
pub struct Analysis {
    /// The options it was made with.
    pub options: AnalyzeOptions,
    /// The annotation folder.
    pub annotation_root: PathBuf,
    /// The annotated images.
    pub set: AnnotatedSet,
    /// The models, sorted by name.
    pub models: Vec<ModelRun>,
    /// With a baseline: every other model compared to it, in model order.
    pub comparisons: Vec<Comparison>,
}

/// Models over which the text and Markdown tables show a model's intervals in their own
/// columns; more models get one column each.
const MAX_MODEL_COLUMNS: usize = 6;

/// Analyses the prediction files (CSV files or folders of them; a model per file, named after
/// its stem): per-model accuracies and error ratios per factor and metaclass, intervals, and
/// with [`AnalyzeOptions::baseline`] paired comparisons. Files stream row by row; the first
/// ones are parsed while the annotations load.
pub fn analyze(predictions: &[PathBuf], options: &AnalyzeOptions) -> Result<Analysis> {
    let files = collect_prediction_files(predictions)?;
    if options.with_human && files.iter().any(|f| f.model == "human") {
        return Err(Error::invalid(
            "--with-human adds a model named `human`, but a predictions file is already named so",
        ));
    }
    // The first files are opened and their first rows parsed while the annotations load
    // (at most `PARSE_AHEAD_ROWS` rows a file); the rest of each file streams row by row as it
    // is matched with the annotated images. Other files are opened when a thread takes them
    // up, about one per thread at a time, so memory grows neither with the model count nor
    // with the rows of a file.
    let ahead = files.len().min(2 * rayon::current_num_threads());
    let (dir, set, parsed_ahead) = load_set_with(&options.annotations, || {
        files[..ahead]
            .par_iter()
            .map(|file| parse_predictions(&file.path))
            .collect::<Vec<_>>()
    })?;
    tracing::info!(
        images = set.len(),
        prototypes_removed = set.prototypes_removed,
        "annotations loaded from {}",
        dir.root().display()
    );

    let mut parsed_ahead: Vec<Option<_>> = parsed_ahead.into_iter().map(Some).collect();
    let mut models: Vec<ModelRun> = files
        .iter()
        .zip(
            parsed_ahead
                .iter_mut()
                .map(Option::take)
                .chain(std::iter::repeat_with(|| None)),
        )
        .par_bridge()
        .map(|(file, parsed)| {
            let parsed = match parsed {
                Some(parsed) => parsed?,
                None => parse_predictions(&file.path)?,
            };
            analyze_file(file, parsed, &set, options)
        })
        .collect::<Result<_>>()?;
    if options.with_human {
        let predictions = set.annotations.human_predictions();
        let scored = outcomes(&set.annotations, &predictions, options.analysis)?;
        models.push(ModelRun {
            analysis: imagenetx_factors::analyze(
                &set.annotations,
                "human",
                &predictions,
                options.analysis,
            )?,
            intervals: model_intervals(&set.annotations, &scored, &options.intervals)?,
            outcomes: scored,
            file: None,
            rows: set.len(),
            unannotated: 0,
        });
    }
    models.sort_by(|a, b| a.analysis.model.cmp(&b.analysis.model));
    for run in &models {
        let a = &run.analysis;
        if a.missing > 0 {
            tracing::warn!(
                "{}: {} of {} annotated images have no prediction; every number of this model is computed over the other {} (--strict makes this an error)",
                a.model,
                a.missing,
                a.annotated,
                a.annotated - a.missing
            );
        }
    }
    let comparisons = baseline_comparisons(&models, &set, options)?;
    Ok(Analysis {
        options: options.clone(),
        annotation_root: dir.root().to_path_buf(),
        set,
        models,
        comparisons,
    })
}

fn analyze_file(
    file: &PredictionFile,
    parsed: ParsedPredictions,
    set: &AnnotatedSet,
    options: &AnalyzeOptions,
) -> Result<ModelRun> {
    let context = || format!("analysing {}", file.path.display());
    let aligned = parsed.align(set, options.strict)?;
    let scored =
        outcomes(&set.annotations, &aligned.predictions, options.analysis).context_with(context)?;
    drop(aligned.predictions);
    let analysis = analyze_outcomes(&set.annotations, &file.model, &scored, options.analysis)
        .context_with(context)?;
    let started = std::time::Instant::now();
    let intervals =
        model_intervals(&set.annotations, &scored, &options.intervals).context_with(context)?;
    tracing::debug!(
        model = %file.model,
        replicates = options.intervals.replicates(),
        "intervals computed in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ModelRun {
        analysis,
        intervals,
        // Only comparisons need the per-image outcomes later; keeping them for every model
        // would hold ~0.7 MB per model (1.6 GB for the paper's 2,200 models).
        outcomes: if options.baseline.is_some() {
            scored
        } else {
            Vec::new()
        },
        file: Some(file.path.clone()),
        rows: aligned.rows,
        unannotated: aligned.unannotated,
    })
}

/// With a baseline: every other model compared to the baseline, in model order.
fn baseline_comparisons(
    models: &[ModelRun],
    set: &AnnotatedSet,
    options: &AnalyzeOptions,
) -> Result<Vec<Comparison>> {
    let Some(name) = &options.baseline else {
        return Ok(Vec::new());
    };
    let Some(base) = models.iter().find(|r| &r.analysis.model == name) else {
        let names: Vec<&str> = models.iter().map(|r| r.analysis.model.as_str()).collect();
        return Err(Error::invalid(format!(
            "--baseline {name}: no such model (models: {})",
            names.join(", ")
        )));
    };
    models
        .iter()
        .filter(|r| &r.analysis.model != name)
        .map(|r| {
            Ok(imagenetx_factors::compare::compare(
                &set.annotations,
                name,
                &base.outcomes,
                &r.analysis.model,
                &r.outcomes,
                &options.intervals,
            )?)
        })
        .collect()
}

impl Analysis {
    /// The models' analyses, in model order.
    pub fn analyses(&self) -> Vec<ModelAnalysis> {
        self.models.iter().map(|r| r.analysis.clone()).collect()
    }

    /// One line on what was analysed.
    pub fn description(&self) -> String {
        let o = self.set.options;
        format!(
            "error ratio = (1 - accuracy on the factor) / (1 - accuracy); error type {}, {} factor, {} partition, {} annotated images{}",
            self.options.analysis.error_type.name(),
            o.selection.name(),
            o.partition.name(),
            self.set.len(),
            if o.keep_prototypes {
                " (prototypes kept)".to_string()
            } else {
                format!(" ({} prototypes left out)", self.set.prototypes_removed)
            }
        )
    }

    /// The legend of the interval tables.
    pub fn legend(&self) -> String {
        let o = &self.options.intervals;
        let level = o.confidence() * 100.0;
        let ratio = if o.replicates() == 0 {
            "no bootstrap (--bootstrap 0): error ratios without intervals".to_string()
        } else {
            format!(
                "[low, high]: {level}% bootstrap percentile interval ({} replicates over images, seed {})",
                o.replicates(),
                o.seed()
            )
        };
        format!(
            "{ratio}; accuracy: {level}% Wilson interval; {} fewer than {} images (small sample)",
            tables::SMALL_SAMPLE_MARK,
            o.min_images()
        )
    }

    /// The summary document (`summary.json`, and the JSON format).
    pub fn summary_json(&self) -> Value {
        let models: Vec<Value> = self
            .models
            .iter()
            .map(|run| {
                let mut model = tables::model_json(&run.analysis);
                tables::add_intervals_json(&mut model, &run.intervals);
                if let Some(object) = model.as_object_mut() {
                    object.insert("file".into(), json!(run.file));
                    object.insert("rows".into(), json!(run.rows));
                    object.insert("unannotated_rows".into(), json!(run.unannotated));
                }
                model
            })
            .collect();
        let mut options = options_json(&self.set, self.options.analysis);
        options["with_human"] = json!(self.options.with_human);
        json!({
            "tool": "imagenetx",
            "version": VERSION,
            "options": options,
            "annotations": {
                "folder": self.annotation_root,
                "images": self.set.len(),
                "prototypes_removed": self.set.prototypes_removed,
            },
            "intervals": tables::interval_settings_json(&self.options.intervals),
            "models": models,
            "comparisons": self.comparisons.iter().map(tables::comparison_json).collect::<Vec<_>>(),
        })
    }

    /// Writes every table (the toolkit's CSV layouts), `intervals.csv`, with a baseline
    /// `comparisons.csv`, and `summary.json` into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let results = self.analyses();
        let summary = pretty(&self.summary_json(), "summary.json")?;
        create_dir(dir)?;
        let files = [
            ("accuracies_per_factor.csv", tables::accuracies(&results)),
            (
                "accuracies_per_factor_metaclass.csv",
                tables::metaclass_accuracies(&results),
            ),
            ("error_ratios.csv", tables::error_ratios(&results)),
            ("calibration.csv", tables::calibration(&results)),
            ("prevalence_shift.csv", tables::prevalence_shift(&results)),
            (
                "prevalence_shift_metaclass.csv",
                tables::metaclass_prevalence_shift(&results),
            ),
        ];
        for (name, table) in files {
            write_file(&dir.join(name), table.to_csv().as_bytes())?;
        }
        let named: Vec<(&str, &ModelIntervals)> = self
            .models
            .iter()
            .map(|r| (r.analysis.model.as_str(), &r.intervals))
            .collect();
        write_file(
            &dir.join("intervals.csv"),
            tables::intervals(&named).to_csv().as_bytes(),
        )?;
        if self.options.baseline.is_some() {
            write_file(
                &dir.join("comparisons.csv"),
                tables::comparisons(&self.comparisons).to_csv().as_bytes(),
            )?;
        }
        write_file(&dir.join("summary.json"), summary.as_bytes())
    }

    /// The error-ratio table (with intervals for up to six models) and the comparisons, as
    /// `format` says.
    pub fn render(&self, format: Format) -> Result<String> {
        let results = self.analyses();
        let intervals: Vec<ModelIntervals> =
            self.models.iter().map(|r| r.intervals.clone()).collect();
        let wide = results.len() > MAX_MODEL_COLUMNS;
        Ok(match format {
            Format::Table => {
                let table = if wide {
                    tables::error_ratio_view(&results, MAX_MODEL_COLUMNS).to_text(6)
                } else {
                    tables::error_ratio_interval_view(&results, &intervals, 6).to_text(6)
                };
                let mut text = format!("{}\n{}\n\n{table}", self.description(), self.legend());
                for c in &self.comparisons {
                    text.push_str(&format!(
                        "\n{}\n\n{}",
                        tables::comparison_summary(c),
                        tables::comparison_view(c, 3).to_text(3)
                    ));
                }
                text
            }
            Format::Markdown => {
                let table = if wide {
                    tables::error_ratio_view(&results, MAX_MODEL_COLUMNS).to_markdown(3)
                } else {
                    tables::error_ratio_interval_view(&results, &intervals, 3).to_markdown(3)
                };
                let mut text = format!(
                    "### ImageNet-X error ratios\n\n{}\n\n{}\n\n{table}",
                    self.description(),
                    self.legend()
                );
                for c in &self.comparisons {
                    text.push_str(&format!(
                        "\n### {} vs {}\n\n{}\n\n{}",
                        c.model_b,
                        c.model_a,
                        tables::comparison_summary(c),
                        tables::comparison_view(c, 3).to_markdown(3)
                    ));
                }
                text
            }
            Format::Csv => tables::error_ratios_with_intervals(&results, &intervals).to_csv(),
            Format::Json => pretty(&self.summary_json(), "the summary")?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// compare

/// What [`compare`] does.
#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// Which annotations.
    pub annotations: AnnotationOptions,
    /// What counts as correct.
    pub analysis: AnalysisOptions,
    /// Intervals and paired tests.
    pub intervals: IntervalOptions,
    /// Make annotated images without a prediction an error instead of leaving them out.
    pub strict: bool,
}

/// The result of [`compare`].
#[derive(Debug)]
pub struct ComparisonResult {
    /// The comparison (B − A).
    pub comparison: Comparison,
    /// The predictions file of model A.
    pub file_a: PathBuf,
    /// The predictions file of model B.
    pub file_b: PathBuf,
    /// The annotated images.
    pub set: AnnotatedSet,
    /// What counted as correct.
    pub analysis: AnalysisOptions,
}

/// The one prediction CSV `path` names, as (model, path).
fn one_file(path: &Path) -> Result<(String, PathBuf)> {
    let mut files = collect_prediction_files(&[path.to_path_buf()])?;
    if files.len() != 1 {
        return Err(Error::invalid(format!(
            "{}: expected one prediction CSV, found {}",
            path.display(),
            files.len()
        )));
    }
    let file = files.remove(0);
    Ok((file.model, file.path))
}

fn scored(
    (model, path): &(String, PathBuf),
    parsed: ParsedPredictions,
    set: &AnnotatedSet,
    options: &CompareOptions,
) -> Result<Vec<Outcome>> {
    let aligned = parsed.align(set, options.strict)?;
    if aligned.missing > 0 {
        tracing::warn!(
            "{model}: {} of {} annotated images have no prediction (left out of the comparison)",
            aligned.missing,
            set.len()
        );
    }
    outcomes(&set.annotations, &aligned.predictions, options.analysis)
        .context_with(|| format!("scoring {}", path.display()))
}

/// Where do two models really differ? A paired comparison per factor on the images both
/// models scored (`a` is the baseline; models are named after the file stems, or by path when
/// the stems are equal): accuracy and error-ratio differences (B − A) with paired bootstrap
/// intervals, exact McNemar tests and Holm's correction across factors.
pub fn compare(a: &Path, b: &Path, options: &CompareOptions) -> Result<ComparisonResult> {
    let mut a = one_file(a)?;
    let mut b = one_file(b)?;
    if a.0 == b.0 {
        // Same stem in two folders: name them by path.
        a.0 = a.1.display().to_string();
        b.0 = b.1.display().to_string();
    }
    // Both files are opened and their first rows parsed while the annotations load; the
    // rest streams as it is matched with the annotated images.
    let (_, set, (parsed_a, parsed_b)) = load_set_with(&options.annotations, || {
        rayon::join(|| parse_predictions(&a.1), || parse_predictions(&b.1))
    })?;
    let (parsed_a, parsed_b) = (parsed_a?, parsed_b?);
    let (scored_a, scored_b) = rayon::join(
        || scored(&a, parsed_a, &set, options),
        || scored(&b, parsed_b, &set, options),
    );
    let (scored_a, scored_b) = (scored_a?, scored_b?);
    let started = std::time::Instant::now();
    let comparison = imagenetx_factors::compare::compare(
        &set.annotations,
        &a.0,
        &scored_a,
        &b.0,
        &scored_b,
        &options.intervals,
    )?;
    tracing::debug!(
        "paired comparison computed in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    if comparison.overall.images == 0 {
        return Err(Error::invalid(format!(
            "{} and {} have no scored image in common",
            a.0, b.0
        )));
    }
    Ok(ComparisonResult {
        comparison,
        file_a: a.1,
        file_b: b.1,
        set,
        analysis: options.analysis,
    })
}

impl ComparisonResult {
    /// The comparison document (`comparison.json`, and the JSON format).
    pub fn document(&self) -> Value {
        json!({
            "tool": "imagenetx",
            "version": VERSION,
            "options": options_json(&self.set, self.analysis),
            "files": { "a": self.file_a, "b": self.file_b },
            "comparison": tables::comparison_json(&self.comparison),
        })
    }

    /// The legend of the comparison table.
    pub fn legend(&self) -> String {
        let o = &self.comparison.options;
        format!(
            "differences are B − A; [low, high]: {}% paired bootstrap percentile interval ({} replicates, seed {}); p: exact McNemar, Holm-adjusted; {} significant at {:.3}; {} fewer than {} images",
            o.confidence() * 100.0,
            o.replicates(),
            o.seed(),
            tables::SIGNIFICANT_MARK,
            o.alpha(),
            tables::SMALL_SAMPLE_MARK,
            o.min_images()
        )
    }

    /// Writes `comparisons.csv` and `comparison.json` into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let document = pretty(&self.document(), "comparison.json")?;
        create_dir(dir)?;
        let table = tables::comparisons(std::slice::from_ref(&self.comparison));
        write_file(&dir.join("comparisons.csv"), table.to_csv().as_bytes())?;
        write_file(&dir.join("comparison.json"), document.as_bytes())
    }

    /// The comparison as `format` says.
    pub fn render(&self, format: Format) -> Result<String> {
        let c = &self.comparison;
        Ok(match format {
            Format::Table => format!(
                "{}\n{}\n\n{}",
                tables::comparison_summary(c),
                self.legend(),
                tables::comparison_view(c, 3).to_text(3)
            ),
            Format::Markdown => format!(
                "### {} vs {}\n\n{}\n\n{}\n\n{}",
                c.model_b,
                c.model_a,
                tables::comparison_summary(c),
                self.legend(),
                tables::comparison_view(c, 3).to_markdown(3)
            ),
            Format::Csv => tables::comparisons(std::slice::from_ref(c)).to_csv(),
            Format::Json => pretty(&self.document(), "the comparison")?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// report

/// What [`assemble_report`] does.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// Which annotations.
    pub annotations: AnnotationOptions,
    /// What counts as correct.
    pub analysis: AnalysisOptions,
    /// Intervals and paired tests (their seed also seeds the gallery sample).
    pub intervals: IntervalOptions,
    /// Make annotated images without a prediction an error instead of leaving them out.
    pub strict: bool,
    /// The images, for thumbnails in the gallery (found by file name): what `evaluate
    /// --images` takes (folders, searched recursively, tar/WebDataset/parquet archives, read in
    /// place, patterns); empty for none.
    pub images: Vec<PathBuf>,
    /// Misclassified images shown per factor and model.
    pub gallery_per_factor: usize,
    /// Longest side of the gallery thumbnails, in pixels.
    pub thumbnail_size: u32,
    /// Title of the report.
    pub title: String,
}

impl Default for ReportRequest {
    /// The command's defaults (see [`ReportOptions::default`]).
    fn default() -> Self {
        let report = ReportOptions::default();
        ReportRequest {
            annotations: AnnotationOptions::default(),
            analysis: AnalysisOptions::default(),
            intervals: IntervalOptions::default(),
            strict: false,
            images: Vec::new(),
            gallery_per_factor: report.gallery_per_factor,
            thumbnail_size: report.thumbnail_size,
            title: report.title,
        }
    }
}

/// The report of the prediction files (CSV files or folders of them; a model per file, named
/// after its stem; a run record `<stem>.run.json` beside a file adds its metadata): the data
/// of the HTML report and the Markdown summary, with the paired differences of the first
/// model against each other one. Render it with [`imagenetx_report::html`] or
/// [`imagenetx_report::markdown`].
pub fn assemble_report(predictions: &[PathBuf], request: &ReportRequest) -> Result<ReportInput> {
    let files = collect_prediction_files(predictions)?;
    // The first file is opened and its first rows parsed while the annotations load; every
    // file streams row by row as it is matched with the annotated images.
    let (dir, set, mut first) = load_set_with(&request.annotations, || {
        files.first().map(|file| parse_predictions(&file.path))
    })?;
    let names: Option<ClassNames> = dir.read_class_names().ok();
    let mut predictions_of = Vec::with_capacity(files.len());
    let mut described = Vec::with_capacity(files.len());
    for file in &files {
        let parsed = match first.take() {
            Some(parsed) => parsed?,
            None => parse_predictions(&file.path)?,
        };
        let aligned = parsed.align(&set, request.strict)?;
        let analysis = imagenetx_factors::analyze(
            &set.annotations,
            &file.model,
            &aligned.predictions,
            request.analysis,
        )
        .context_with(|| format!("analysing {}", file.path.display()))?;
        let mut metadata = vec![("predictions".to_string(), file.path.display().to_string())];
        metadata.extend(run_metadata(&file.path));
        predictions_of.push(aligned.predictions);
        described.push((analysis, metadata));
    }
    let images = if request.images.is_empty() {
        Default::default()
    } else {
        discover_images_in(&request.images, None)?
            .images
            .into_iter()
            .map(|e| (e.file_name().to_string(), e))
            .collect()
    };
    let options = ReportOptions {
        title: request.title.clone(),
        gallery_per_factor: request.gallery_per_factor,
        seed: request.intervals.seed(),
        images,
        thumbnail_size: request.thumbnail_size,
        intervals: Some(request.intervals),
        thumbnail_budget: THUMBNAIL_BUDGET,
    };
    let models: Vec<ReportModel<'_>> = described
        .into_iter()
        .zip(&predictions_of)
        .map(|((analysis, metadata), predictions)| ReportModel {
            analysis,
            predictions,
            metadata,
        })
        .collect();
    let mut input = assemble::build_report(&set, names.as_ref(), &models, &options)?;
    input.differences = assemble::model_differences(&set, &models, &request.intervals)?;
    Ok(input)
}

/// Metadata rows from the run record `<predictions stem>.run.json` beside `predictions`, when
/// there is one and it reads; nothing otherwise (a record that does not read is logged).
pub fn run_metadata(predictions: &Path) -> Vec<(String, String)> {
    let path = predictions.with_extension("run.json");
    if !path.exists() {
        return Vec::new();
    }
    let record = match RunRecord::read(&path) {
        Ok(record) => record,
        Err(e) => {
            tracing::warn!("not a run record: {e}");
            return Vec::new();
        }
    };
    record_rows(&path, &record)
}

/// The rows the report shows for `record`, read from `path`.
fn record_rows(path: &Path, record: &RunRecord) -> Vec<(String, String)> {
    let mut rows = vec![("run record".to_string(), path.display().to_string())];
    let mut push = |key: &str, value: String| rows.push((key.to_string(), value));
    push("model", record.model.path.to_string_lossy().into_owned());
    push("model sha256", record.model.sha256.clone());
    match record.preprocessing.get("config") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => push("preprocessing", s.clone()),
        Some(other) => push("preprocessing", other.to_string()),
    }
    push("provider", record.provider.used.clone());
    push("provider requested", record.provider.requested.to_string());
    if let Some(fallback) = &record.provider.fallback {
        push("provider fallback", fallback.clone());
    }
    push("ONNX Runtime", record.runtime.version.clone());
    push("imagenetx", record.imagenetx_version.clone());
    push("images", record.counts.images.to_string());
    push("predicted", record.counts.predicted.to_string());
    push("skipped", record.counts.skipped.to_string());
    rows
}

/// Writes each figure as `<name>.svg` and `<name>.png` (rasterised at `scale`, in (0, 16])
/// into `dir` (created if needed), each file atomically. Returns the names written.
pub fn write_plots(dir: &Path, figures: &[Figure], scale: f32) -> Result<Vec<String>> {
    assemble::write_plots(dir, figures, scale, write_file)
}

// ---------------------------------------------------------------------------------------
// annotations

/// The result of [`annotation_summary`]: how often each factor is annotated, per metaclass,
/// and how factors and metaclasses co-occur.
#[derive(Debug)]
pub struct AnnotationSummary {
    /// The annotated images.
    pub set: AnnotatedSet,
    /// Images with each factor per metaclass, then `all` ([`tables::annotation_counts`]).
    pub counts: Table,
}

/// Loads the annotations as `options` says and counts their factors.
pub fn annotation_summary(options: &AnnotationOptions) -> Result<AnnotationSummary> {
    let dir = options.annotation_dir()?;
    let set = options.load_set(&dir)?;
    let counts = tables::annotation_counts(&set.annotations);
    Ok(AnnotationSummary { set, counts })
}

impl AnnotationSummary {
    /// Writes `factor_counts.csv`, `metaclass_prevalence_shift.csv`,
    /// `factor_correlation.csv` and `factor_correlation_pvalues.csv` into `dir` (created if
    /// needed).
    pub fn write(&self, dir: &Path) -> Result<()> {
        create_dir(dir)?;
        write_file(
            &dir.join("factor_counts.csv"),
            self.counts.to_csv().as_bytes(),
        )?;
        write_file(
            &dir.join("metaclass_prevalence_shift.csv"),
            tables::annotation_metaclass_prevalence_shift(&self.set.annotations)
                .to_csv()
                .as_bytes(),
        )?;
        let (rho, p) = tables::factor_correlations(&self.set.annotations);
        write_file(&dir.join("factor_correlation.csv"), rho.to_csv().as_bytes())?;
        write_file(
            &dir.join("factor_correlation_pvalues.csv"),
            p.to_csv().as_bytes(),
        )
    }

    /// The title of the counts table: partition, selection, images.
    pub fn title(&self) -> String {
        let o = self.set.options;
        format!(
            "images annotated with each factor ({} partition, {} factor, {} images{})",
            o.partition.name(),
            o.selection.name(),
            self.set.len(),
            if o.keep_prototypes {
                ", prototypes kept".to_string()
            } else {
                format!(", {} prototypes left out", self.set.prototypes_removed)
            }
        )
    }

    /// The counts as `format` says (factors as rows in the text and Markdown formats).
    pub fn render(&self, format: Format) -> Result<String> {
        let view = tables::factors_as_rows(&self.counts);
        Ok(match format {
            Format::Table => format!("{}\n\n{}", self.title(), view.to_text(0)),
            Format::Markdown => format!("{}\n\n{}", self.title(), view.to_markdown(0)),
            Format::Csv => self.counts.to_csv(),
            Format::Json => pretty(&self.counts.to_json(), "the counts")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run record as `evaluate` writes it (the fields the report shows, and the rest).
    fn record_json() -> Value {
        json!({
            "imagenetx_version": "0.1.0",
            "state": "complete",
            "model": { "path": "models/m.onnx", "sha256": "ab12" },
            "model_info": {
                "path": "models/m.onnx",
                "input": {
                    "name": "input", "element_type": "f32", "shape": ["N", 3, 224, 224],
                    "layout": "NCHW", "batch": "N", "height": 224, "width": 224
                },
                "output": {
                    "name": "logits", "element_type": "f32", "shape": ["N", 1000],
                    "classes": 1000, "background_first": false
                },
                "scores": "logits",
                "other_outputs": [],
                // A record of an older version (metadata not recorded) still reads.
                "preprocess_metadata": null,
                "decisions": []
            },
            "preprocessing": {
                "config": { "layout": "NCHW", "crop_height": 224 },
                "decisions": []
            },
            "provider": { "requested": "cuda", "used": "CPUExecutionProvider", "fallback": "no GPU" },
            "runtime": {
                "version": "1.31.1",
                "library": { "path": "/lib/libonnxruntime.so", "source": "cache", "reason": "cached" }
            },
            "predictions": "m.csv",
            "counts": { "images": 5, "predicted": 4, "resumed": 0, "skipped": 1 },
            "skipped": [{ "file": "x.JPEG", "reason": "truncated" }]
        })
    }

    #[test]
    fn run_metadata_shows_the_records_fields_as_text() {
        let dir = tempfile::tempdir().expect("temp folder");
        let predictions = dir.path().join("m.csv");
        let record = dir.path().join("m.run.json");
        std::fs::write(&record, record_json().to_string()).expect("write");
        let rows = run_metadata(&predictions);
        let expected = [
            ("run record", record.display().to_string()),
            ("model", "models/m.onnx".to_string()),
            ("model sha256", "ab12".to_string()),
            (
                "preprocessing",
                r#"{"crop_height":224,"layout":"NCHW"}"#.to_string(),
            ),
            ("provider", "CPUExecutionProvider".to_string()),
            ("provider requested", "cuda".to_string()),
            ("provider fallback", "no GPU".to_string()),
            ("ONNX Runtime", "1.31.1".to_string()),
            ("imagenetx", "0.1.0".to_string()),
            ("images", "5".to_string()),
            ("predicted", "4".to_string()),
            ("skipped", "1".to_string()),
        ];
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(rows, expected);

        // Without a fallback there is no fallback row.
        let mut json = record_json();
        json["provider"]["fallback"] = Value::Null;
        std::fs::write(&record, json.to_string()).expect("write");
        let rows = run_metadata(&predictions);
        assert!(rows.iter().all(|(k, _)| k != "provider fallback"));
        assert_eq!(rows.len(), expected.len() - 1);
    }

    #[test]
    fn run_metadata_is_empty_without_a_readable_record() {
        let dir = tempfile::tempdir().expect("temp folder");
        let predictions = dir.path().join("m.csv");
        assert!(run_metadata(&predictions).is_empty());
        std::fs::write(dir.path().join("m.run.json"), "{ not json").expect("write");
        assert!(run_metadata(&predictions).is_empty());
    }
}
