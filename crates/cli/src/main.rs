//! `imagenetx`: evaluate image classifiers on ImageNet and explain their failures with the
//! ImageNet-X factor annotations.
//!
//! Exit codes: 0 done, 1 done but some inputs were skipped (they are listed), 2 fatal.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cmd;
mod common;
mod preprocess;

/// Why does your image classifier fail? ImageNet-X factor analysis for ONNX models.
#[derive(Debug, Parser)]
#[command(name = "imagenetx", version, about, long_about = None)]
struct Cli {
    /// Log verbosity on stderr (error, warn, info, debug, trace). Overrides RUST_LOG.
    #[arg(long, global = true, value_name = "LEVEL")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Factor analysis of prediction CSVs: accuracy and error ratio per factor of variation.
    Analyze(cmd::analyze::Args),
    /// Counts of each factor and metaclass in the annotations.
    Annotations(cmd::annotations::Args),
    /// Explain how an ONNX model will be fed and read: input, layout, classes, preprocessing.
    Inspect(cmd::inspect::Args),
    /// Run an ONNX classifier over images, write predictions, report accuracy and factors.
    Evaluate(Box<cmd::evaluate::Args>),
    /// Join the predictions of the shards of one evaluation (`evaluate --shard`), checked.
    Merge(cmd::merge::Args),
    /// Paired comparison of two models per factor: differences, intervals, McNemar tests.
    Compare(cmd::compare::Args),
    /// A self-contained HTML report: tables with intervals, plots, a gallery of failures.
    Report(cmd::report::Args),
    /// Write the tensors a model would be fed as .npy files (to check a pipeline against another).
    Preprocess(cmd::preprocess::Args),
}

/// What a command reports when it finishes without a fatal error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything was processed.
    Done,
    /// Finished, but some inputs were skipped (and listed).
    Skipped,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log.as_deref());
    let result = match cli.command {
        Command::Analyze(args) => cmd::analyze::run(args),
        Command::Annotations(args) => cmd::annotations::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Evaluate(args) => cmd::evaluate::run(*args),
        Command::Merge(args) => cmd::merge::run(args),
        Command::Compare(args) => cmd::compare::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Preprocess(args) => cmd::preprocess::run(args),
    };
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Skipped) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(level) => EnvFilter::new(level),
        // The SVG rasteriser's notes on shapes it skips (zero-height bars) are not the
        // user's concern.
        None => EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new("warn,usvg=error,resvg=error")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(log_colours())
        .init();
}

/// Colours in the log only on a terminal, and never with `NO_COLOR` set to anything
/// non-empty (<https://no-color.org>): a log written to a file or a CI job stays plain text.
fn log_colours() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
