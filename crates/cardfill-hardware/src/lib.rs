//! The machine and the run: host (sysinfo), GPUs (NVML), Slurm jobs, run records written by
//! `cardfill run` and `cardfill probe`, and the hours, energy and GPU power over time of the run.
//!
//! # Run records
//!
//! `cardfill run --record DIR -- CMD…` and `cardfill probe --record DIR` write one JSON file
//! per node and run into `DIR/.cardfill/` (`DIR` itself when it is named `.cardfill`), named
//! `<node>_<run key>.json`. Several processes of one node and run (ranks under `srun`, a
//! `probe` after a `run`) merge into that one file under a lock, so a node is never counted
//! twice. Fields (absent when unknown):
//!
//! | field | meaning |
//! |---|---|
//! | `format`, `version` | `"cardfill-run-record"`, `1` |
//! | `kind` | `run` (a command was run), `probe` (the node and the job so far) or `training` (train begin to end, from a training integration) |
//! | `cardfill_version` | the writer's version |
//! | `node` | `SLURMD_NODENAME`, else the host name |
//! | `run_key` | `slurm-<job id>`, `torchelastic-<run id>`, or `<start>-<pid>` for a lone run |
//! | `start`, `end`, `wall_s` | RFC 3339 UTC; for `probe`, the job's start and the probing time |
//! | `command`, `exit_code`, `signal` | the program's name (never its arguments) and how it ended |
//! | `host` | `hostname`, `cpu`, `cpu_cores`, `cpu_threads`, `ram_bytes`, `os` |
//! | `nvml` | `status` (`ok`, `absent`, `failed`), `message`, `driver_version`, `cuda_version`, `device_count`, `selection` |
//! | `gpus[]` | `index`, `uuid`, `name`, `memory_bytes`, `power_limit_w`, `mig_mode`, `unsupported[]`, `energy`, `power_samples` |
//! | `gpus[].power_samples` | `cardfill run` with NVML: `[seconds since start, watts]` polled every 10 s, at most 240, evenly thinned |
//! | `gpus[].energy` | `method` (`counter` or `sampled`), `joules`, `counter_start_mj`, `counter_end_mj`, `counter_reset`, `samples` |
//! | `energy_j` | sum over `gpus`, present only when every GPU has a figure |
//! | `amdsmi` | AMD SMI (`CARDFILL_AMDSMI_LIBRARY` overrides `libamd_smi.so`), where NVML has no GPUs: `status`, `message`, `device_count`; its GPUs go into `gpus` |
//! | `cpu_energy` | RAPL (`powercap`) energy of the node: `method` (`rapl`), `cpu_joules` (packages), `dram_joules`, `zones`, `wraps` |
//! | `slurm` | `job_id`, `start`, `end`, `nodes`, `node_list`, `gpus_per_node`, `elapsed_s` |
//! | `launcher` | `world_size`, `local_world_size`, `node_rank`, `local_rank` (torchrun, accelerate) |
//! | `processes` | how many cardfill processes merged into the record |
//! | `training` | `training` records: what the training process knows ([`training::TrainingInfo`]) |
//! | `open_counters_mj` | a `training` record still open: each GPU's energy counter at train begin |
//!
//! [`collect`] reads every record: per run, GPUs and energy are summed over nodes and
//! GPU-hours are Σ GPUs × hours per node; runs (a resumed training) add up.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod amd;
mod evidence;
pub mod gpu;
pub mod host;
pub mod rapl;
pub mod record;
pub mod runner;
pub mod slurm;
pub mod training;
pub mod wandb;

pub use evidence::{Context, ParentProcess, assemble, is_training_process};
pub use runner::{RunOutcome, probe_node, run_command};
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
    /// `--hardware`: the GPU's name, for runs that left no record.
    pub hardware: Option<String>,
    /// `--count`: number of GPUs.
    pub count: Option<u32>,
}

/// Why the hardware collector, `run` or `probe` failed.
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
    /// A run record could not be written.
    #[error("cannot write run record `{}`: {message}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The command could not be started or waited for.
    #[error("cannot run `{program}`: {message}")]
    Spawn {
        /// The program.
        program: String,
        /// What is wrong.
        message: String,
    },
}

/// Collects `run.*` and `hardware.*` facts for the checkpoint in `dir`. `known` holds the facts
/// collected so far (trainer runtime, for instance), used as lower-trust evidence.
///
/// Order of trust for hours: flags, run records in `dir/.cardfill/`, the finished Slurm job,
/// the trainer's runtime, the running Slurm job so far, the start of the calling training
/// process. The machine itself is probed only inside a training context and without records.
pub fn collect(dir: &Path, known: &Facts, options: &RunOptions) -> Result<Facts, HardwareError> {
    let ctx = Context::observe(true);
    Ok(assemble(dir, known, options, &ctx))
}

/// [`collect`] from the flags and `dir` alone, observing nothing of this machine (no Slurm
/// job, parent process or GPUs): for a model trained elsewhere, such as one read from the Hub.
pub fn collect_elsewhere(
    dir: &Path,
    known: &Facts,
    options: &RunOptions,
) -> Result<Facts, HardwareError> {
    let ctx = Context {
        now: Some(chrono::Utc::now()),
        ..Context::default()
    };
    Ok(assemble(dir, known, options, &ctx))
}
