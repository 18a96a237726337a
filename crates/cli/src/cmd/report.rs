//! `imagenetx report`: one self-contained HTML file (or a Markdown summary) of a factor
//! analysis: headline accuracy, error ratios with intervals, plots, and a gallery of
//! misclassified images per factor. The report is assembled by [`imagenetx::assemble_report`]; this
//! command renders and writes it.

use std::path::PathBuf;

use imagenetx::ReportRequest;
use imagenetx_report::figures::{Figure, figures};
use imagenetx_report::{html, markdown};

use crate::Outcome;
use crate::common::{AnnotationArgs, ScoringArgs, StatsArgs};

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
    /// The images, for thumbnails in the gallery (found by file name): folders (searched
    /// recursively), or what `evaluate --images` reads in place (tar, WebDataset and parquet
    /// archives, patterns).
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub images: Vec<PathBuf>,
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
        imagenetx_report::assemble::check_png_scale(self.png_scale)?;
        Ok(())
    }

    /// Writes the report's figures when `--plots` was given.
    pub fn write(&self, figures: &[Figure]) -> anyhow::Result<()> {
        let Some(dir) = &self.plots else {
            return Ok(());
        };
        let written = imagenetx::write_plots(dir, figures, self.png_scale)?;
        let formats = if imagenetx_report::assemble::PNG_PLOTS {
            "SVG and PNG"
        } else {
            "SVG; this build leaves PNG out"
        };
        eprintln!(
            "wrote {} plots ({formats}) to {}: {}",
            written.len(),
            dir.display(),
            written.join(", ")
        );
        Ok(())
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

/// Runs `imagenetx report`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let request = ReportRequest {
        annotations: args.annotations.options(),
        analysis: args.scoring.options()?,
        intervals: args.stats.options()?,
        strict: args.scoring.strict,
        images: args.images.clone(),
        gallery_per_factor: args.gallery_per_factor,
        thumbnail_size: args.thumbnail_size,
        title: args.title.clone(),
    };
    args.plots.validate()?;
    if args.format == ReportFormat::Html && args.out.is_none() {
        anyhow::bail!("--out FILE is required for the HTML report");
    }
    let input = imagenetx::assemble_report(&args.predictions, &request)?;
    // Drawn once, for the HTML and for --plots.
    let figures = if args.format == ReportFormat::Html || args.plots.plots.is_some() {
        figures(&input)
    } else {
        Vec::new()
    };
    let text = match args.format {
        ReportFormat::Html => html::render_with_figures(&input, &figures),
        ReportFormat::Markdown => markdown::summary(&markdown::Summary::of_report(&input, 5)),
    };
    match &args.out {
        Some(out) => {
            imagenetx::write_file(out, text.as_bytes())?;
            eprintln!("wrote {} ({} bytes)", out.display(), text.len());
        }
        None => print!("{text}"),
    }
    // After the report: a plot that cannot be written costs the plots, not the report.
    args.plots.write(&figures)?;
    Ok(Outcome::Done)
}
