//! `cardfill run`: runs the training command, passing everything through, and records the
//! node's hardware, times and energy in the checkpoint directory's `.cardfill/`.

use std::path::Path;
use std::process::ExitCode;

use cardfill_facts::Warning;
use cardfill_hardware::record::record_dir;

use crate::cli::RunArgs;
use crate::report;

/// Exit status when the command cannot be started (as a shell's "command not found").
const EXIT_CANNOT_RUN: u8 = 127;

/// Runs `run`: exits with the command's own exit code (128 + signal when a signal killed it).
#[inline(never)]
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let dir = record_dir(args.record.as_deref().unwrap_or(Path::new(".")));
    let grace = std::time::Duration::try_from_secs_f64(args.grace_period.max(0.0))
        .unwrap_or(std::time::Duration::from_secs(30));
    match cardfill_hardware::run_command(&args.command, &dir, grace) {
        Ok(outcome) => {
            for message in outcome.warnings {
                report::warning(&Warning {
                    code: "run-record-file-skipped".to_owned(),
                    message,
                });
            }
            if let Some(problem) = outcome.problem {
                report::warning(&Warning {
                    code: "run-record-not-written".to_owned(),
                    message: problem.to_string(),
                });
            }
            Ok(ExitCode::from(outcome.exit_code))
        }
        Err(err) => {
            report::error(&anyhow::Error::new(err), false);
            Ok(ExitCode::from(EXIT_CANNOT_RUN))
        }
    }
}
