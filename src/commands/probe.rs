//! `cardfill probe`.

use std::process::ExitCode;

use crate::cli::*;

/// Runs `probe`.
pub fn run(args: &ProbeArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`cardfill probe` is not available yet")
}
