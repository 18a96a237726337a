//! `imagenetx annotations`.

use crate::Outcome;

/// Arguments of `imagenetx annotations`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `imagenetx annotations`.
pub fn run(_args: Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("todo")
}
