//! `imagenetx analyze`.

use crate::Outcome;

/// Arguments of `imagenetx analyze`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `imagenetx analyze`.
pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("todo")
}
