//! `cardfill fill`.

use std::process::ExitCode;

use crate::cli::*;

/// Runs `fill`.
pub fn run(args: &FillArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`cardfill fill` is not available yet")
}
