//! `imagenetx inspect` (not yet implemented).

use crate::Outcome;

/// Arguments of `imagenetx inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `imagenetx inspect`.
pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("`imagenetx inspect` is not implemented yet")
}
