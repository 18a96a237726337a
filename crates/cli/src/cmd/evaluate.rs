//! `imagenetx evaluate` (not yet implemented).

use crate::Outcome;

/// Arguments of `imagenetx evaluate`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `imagenetx evaluate`.
pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("`imagenetx evaluate` is not implemented yet")
}
