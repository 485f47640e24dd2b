//! Slurm: the job this process runs in (squeue/scontrol and `SLURM_*` variables), or a finished
//! job (sacct).
//!
//! Placeholder interface, to be implemented: the rest of the crate uses only these items.

/// What Slurm says about a job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlurmJob {
    /// The job id.
    pub job_id: String,
    /// Start time, RFC 3339.
    pub start: Option<String>,
    /// End time, RFC 3339 (absent while running).
    pub end: Option<String>,
    /// Number of nodes.
    pub nodes: Option<u32>,
    /// Node names.
    pub node_list: Vec<String>,
    /// GPUs allocated on each node.
    pub gpus_per_node: Option<u32>,
    /// Elapsed wall-clock seconds so far (or in total when finished).
    pub elapsed_s: Option<f64>,
}

/// The job this process runs in, from `SLURM_JOB_ID` and `scontrol show job`; `None` outside
/// Slurm or when Slurm's commands are unavailable.
pub fn current_job() -> Option<SlurmJob> {
    None
}
