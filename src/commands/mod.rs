//! One module per subcommand; each returns the process exit code.

mod co2;
mod fill;
mod inspect;
mod probe;
mod push;
mod regions;
mod run;
mod validate;

use std::process::ExitCode;

use crate::cli::{Args, Command};

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: completed, but `--strict` saw warnings or `--check` found the card out of date.
pub const EXIT_WARNINGS: u8 = 1;

/// Runs the parsed command line.
///
/// Each command's `run` is `#[inline(never)]`: inlined here, the eight made one 30 KB stack
/// frame whose every page the stack probe touched, a page fault each, whatever the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Inspect(a) => inspect::run(&a),
        Command::Fill(a) => fill::run(&a),
        Command::Run(a) => run::run(&a),
        Command::Probe(a) => probe::run(&a),
        Command::Push(a) => push::run(&a),
        Command::Co2(a) => co2::run(&a),
        Command::Regions(a) => regions::run(&a),
        Command::Validate(a) => validate::run(&a),
    }
}
