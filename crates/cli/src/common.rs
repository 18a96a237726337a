//! Flags and helpers shared by the subcommands.

use std::path::{Path, PathBuf};

use anyhow::Context;
use imagenetx::AnnotationOptions;
use imagenetx_dataset::{LoadOptions, Partition, Selection};
use imagenetx_factors::intervals::IntervalOptions;
use imagenetx_factors::{AnalysisOptions, ErrorType};

/// Where the annotations are and which of them to use.
#[derive(Debug, Clone, clap::Args)]
pub struct AnnotationArgs {
    /// Folder with the ImageNet-X annotation files [default: $IMAGENETX_ANNOTATIONS, else
    /// $IMAGENETX_CACHE/annotations (the `just` recipes set it to the checkout's .cache, which
    /// `just setup` fills), else the .cache/annotations of the checkout the binary runs from,
    /// else $XDG_CACHE_HOME/imagenetx/annotations or ~/.cache/imagenetx/annotations].
    #[arg(long, value_name = "DIR")]
    pub annotations: Option<PathBuf>,
    /// Which annotated images: the validation set or the annotated training subset.
    #[arg(long, value_enum, default_value_t = PartitionArg::Val)]
    pub partition: PartitionArg,
    /// Factor selection: the annotators' top factor per image, or every factor they marked.
    #[arg(long, value_enum, default_value_t = SelectionArg::Top)]
    pub factors: SelectionArg,
    /// Keep the prototypical images that the toolkit (and the paper) leave out.
    #[arg(long)]
    pub keep_prototypes: bool,
    /// ImageNet-X-schema JSONL annotating images outside ImageNet (e.g.
    /// fixtures/photos/annotations.jsonl); used instead of the ImageNet-X factor files.
    #[arg(long, value_name = "FILE")]
    pub image_annotations: Option<PathBuf>,
    /// Parse the annotation files every time instead of reading their parsed form from the
    /// cache ($IMAGENETX_CACHE/parsed, else $XDG_CACHE_HOME/imagenetx/parsed, else
    /// ~/.cache/imagenetx/parsed; keyed by content).
    #[arg(long)]
    pub no_cache: bool,
}

impl AnnotationArgs {
    /// The library's annotation options these flags describe.
    pub fn options(&self) -> AnnotationOptions {
        AnnotationOptions {
            dir: self.annotations.clone(),
            load: self.load_options(),
            image_annotations: self.image_annotations.clone(),
            no_cache: self.no_cache,
        }
    }

    /// What to load.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            partition: match self.partition {
                PartitionArg::Val => Partition::Val,
                PartitionArg::Train => Partition::Train,
            },
            selection: match self.factors {
                SelectionArg::Top => Selection::Top,
                SelectionArg::Multi => Selection::Multi,
            },
            keep_prototypes: self.keep_prototypes,
        }
    }
}

/// `--partition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PartitionArg {
    /// ImageNet validation images.
    Val,
    /// Annotated ImageNet training images.
    Train,
}

/// `--factors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SelectionArg {
    /// The top factor of each image.
    Top,
    /// Every factor marked for an image.
    Multi,
}

/// `--format` of what goes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text for a terminal.
    Table,
    /// A Markdown table (pull requests, CI job summaries).
    Markdown,
    /// CSV.
    Csv,
    /// JSON.
    Json,
}

impl From<Format> for imagenetx::Format {
    fn from(format: Format) -> Self {
        match format {
            Format::Table => imagenetx::Format::Table,
            Format::Markdown => imagenetx::Format::Markdown,
            Format::Csv => imagenetx::Format::Csv,
            Format::Json => imagenetx::Format::Json,
        }
    }
}

/// Where the command looks for ONNX Runtime: `--ort-lib`, then the library's default search,
/// and (unlike the library's default) a Python `onnxruntime` package.
pub fn runtime_search(ort_lib: Option<PathBuf>) -> imagenetx::RuntimeSearch {
    imagenetx::RuntimeSearch::default()
        .with_library(ort_lib)
        .with_python_package(true)
}

/// Makes the output folder.
pub fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// What counts as correct, and what to do with annotated images a model did not predict
/// (shared by `analyze`, `compare` and `report`).
#[derive(Debug, Clone, clap::Args)]
pub struct ScoringArgs {
    /// What counts as correct: the annotated class, any class of its metaclass, or any of the
    /// image's ImageNet ReaL labels.
    #[arg(long, value_enum, default_value_t = ErrorTypeArg::Class)]
    pub error_type: ErrorTypeArg,
    /// With `--error-type real-class`: leave out images whose ReaL list is empty instead of
    /// counting them as errors (the toolkit counts them as errors).
    #[arg(long)]
    pub skip_empty_real: bool,
    /// Make annotated images without a prediction an error instead of leaving them out.
    #[arg(long)]
    pub strict: bool,
}

impl ScoringArgs {
    /// The validated analysis options.
    pub fn options(&self) -> anyhow::Result<AnalysisOptions> {
        let error_type = match self.error_type {
            ErrorTypeArg::Class => ErrorType::Class,
            ErrorTypeArg::Metaclass => ErrorType::Metaclass,
            ErrorTypeArg::RealClass => ErrorType::RealClass,
        };
        if self.skip_empty_real && error_type != ErrorType::RealClass {
            anyhow::bail!("--skip-empty-real only applies with --error-type real-class");
        }
        Ok(AnalysisOptions {
            error_type,
            skip_empty_real: self.skip_empty_real,
        })
    }
}

/// `--error-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ErrorTypeArg {
    /// Correct when the predicted class is the annotated class.
    Class,
    /// Correct when the predicted class is in the annotated class's metaclass.
    Metaclass,
    /// Correct when the predicted class is one of the image's ReaL labels.
    RealClass,
}

/// Flags of the confidence intervals and paired tests (shared with `compare`).
#[derive(Debug, Clone, clap::Args)]
pub struct StatsArgs {
    /// Bootstrap replicates for the error-ratio intervals (0: no bootstrap).
    #[arg(long, value_name = "N", default_value_t = imagenetx_factors::intervals::DEFAULT_REPLICATES)]
    pub bootstrap: u32,
    /// Confidence level of every interval; 1 − it is the level of the paired tests.
    #[arg(long, value_name = "LEVEL", default_value_t = imagenetx_factors::intervals::DEFAULT_CONFIDENCE)]
    pub confidence: f64,
    /// Seed of the bootstrap (same seed, same intervals, whatever the thread count).
    #[arg(long, default_value_t = imagenetx_factors::intervals::DEFAULT_SEED)]
    pub seed: u64,
    /// Flag factors with fewer images than this as small samples (at 100 images a 95%
    /// interval on an accuracy near 0.8 is already about ±0.08 wide).
    #[arg(long, value_name = "N", default_value_t = imagenetx_factors::intervals::DEFAULT_MIN_IMAGES)]
    pub min_images: u64,
}

impl StatsArgs {
    /// The validated interval options.
    pub fn options(&self) -> anyhow::Result<IntervalOptions> {
        Ok(IntervalOptions::new(
            self.confidence,
            self.bootstrap,
            self.seed,
            self.min_images,
        )?)
    }
}
