//! `cardfill co2`.

use std::process::ExitCode;

use crate::cli::*;

/// Runs `co2`.
pub fn run(args: &Co2Args) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`cardfill co2` is not available yet")
}
