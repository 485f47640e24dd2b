//! `cardfill validate`.

use std::process::ExitCode;

use crate::cli::*;

/// Runs `validate`.
pub fn run(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("`cardfill validate` is not available yet")
}
