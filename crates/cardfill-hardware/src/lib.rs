//! The machine and the run: host (sysinfo), GPUs (NVML), Slurm jobs, run records written by
//! `cardfill run` and `cardfill probe`, and the hours and energy of the run.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod slurm;

pub use slurm::{SlurmJob, current_job};

use std::path::{Path, PathBuf};

use cardfill_facts::Facts;

/// Evidence given on the command line about the run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `--hours`: wall-clock hours of the run.
    pub hours: Option<f64>,
    /// `--start`: RFC 3339 start time.
    pub start: Option<String>,
    /// `--end`: RFC 3339 end time.
    pub end: Option<String>,
}

/// Why the hardware collector failed.
#[derive(Debug, thiserror::Error)]
pub enum HardwareError {
    /// A run record could not be read.
    #[error("cannot read run record `{}`: {message}", path.display())]
    Record {
        /// The record.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Collects `run.*` and `hardware.*` facts for the checkpoint in `dir`. `known` holds the facts
/// collected so far (trainer runtime, for instance), used as lower-trust evidence.
pub fn collect(dir: &Path, known: &Facts, options: &RunOptions) -> Result<Facts, HardwareError> {
    let _ = (dir, known, options);
    Ok(Facts::new())
}
