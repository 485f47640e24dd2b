//! `cardfill run`.

use std::process::ExitCode;

use crate::cli::*;

/// Runs `run`.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`cardfill run` is not available yet")
}
