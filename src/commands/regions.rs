//! `cardfill regions`.

use std::process::ExitCode;

use crate::cli::*;

/// Runs `regions`.
pub fn run(args: &RegionsArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`cardfill regions` is not available yet")
}
