//! Run records: the JSON files `cardfill run` and `cardfill probe` leave in `.cardfill/`, one
//! per node and run. The format is described in the crate documentation.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::gpu::{GpuEnergy, GpuInfo, NvmlReport, NvmlStatus, counter_energy};
use crate::host::HostInfo;
use crate::{HardwareError, SlurmJob};

/// Name of the folder that holds run records, inside the checkpoint directory.
pub const RECORD_DIR: &str = ".cardfill";
/// Value of a record's `format` field.
pub const RECORD_FORMAT: &str = "cardfill-run-record";
/// Version of the record format this crate writes.
pub const RECORD_VERSION: u32 = 1;

/// The folder records go in for `--record DIR`: `DIR` itself when it is named `.cardfill`,
/// else `DIR/.cardfill` (so `--record` takes the checkpoint directory).
pub fn record_dir(dir: &Path) -> PathBuf {
    if dir.file_name().is_some_and(|n| n == RECORD_DIR) {
        dir.to_path_buf()
    } else {
        dir.join(RECORD_DIR)
    }
}

/// What wrote a record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// `cardfill run`: the command's start and end.
    #[default]
    Run,
    /// `cardfill probe`: the node's hardware and the job so far.
    Probe,
    /// A training process's integration (`probe --begin`/`--end`): train begin to train end,
    /// and what the process knows (`training`).
    Training,
}

/// The Slurm job as seen by the node, at the time of the record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlurmInfo {
    /// Job id.
    pub job_id: String,
    /// Job start, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Job end, RFC 3339, when finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Nodes in the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u32>,
    /// Node names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_list: Vec<String>,
    /// GPUs per node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus_per_node: Option<u32>,
    /// Elapsed seconds when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_s: Option<f64>,
}

impl From<SlurmJob> for SlurmInfo {
    fn from(job: SlurmJob) -> Self {
        Self {
            job_id: job.job_id,
            start: job.start,
            end: job.end,
            nodes: job.nodes,
            node_list: job.node_list,
            gpus_per_node: job.gpus_per_node,
            elapsed_s: job.elapsed_s,
        }
    }
}

/// torchrun / accelerate / Lightning variables of the process that wrote the record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launcher {
    /// `WORLD_SIZE`: processes in the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world_size: Option<u32>,
    /// `LOCAL_WORLD_SIZE`: processes on this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_world_size: Option<u32>,
    /// `NODE_RANK` (or torchrun's `GROUP_RANK`): this node's rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_rank: Option<u32>,
    /// `LOCAL_RANK`: the process's rank on this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_rank: Option<u32>,
}

impl Launcher {
    /// Reads the variables; `None` when none is set.
    pub fn from_env(get: &impl Fn(&str) -> Option<String>) -> Option<Self> {
        let num = |k: &str| get(k).and_then(|v| v.trim().parse::<u32>().ok());
        let l = Self {
            world_size: num("WORLD_SIZE"),
            local_world_size: num("LOCAL_WORLD_SIZE"),
            node_rank: num("NODE_RANK").or_else(|| num("GROUP_RANK")),
            local_rank: num("LOCAL_RANK"),
        };
        (l != Self::default()).then_some(l)
    }

    /// Nodes implied by `WORLD_SIZE / LOCAL_WORLD_SIZE`.
    pub fn nodes(&self) -> Option<u32> {
        match (self.world_size, self.local_world_size) {
            (Some(w), Some(l)) if l > 0 && w.is_multiple_of(l) => Some(w / l),
            _ => None,
        }
    }
}

/// One node's record of a run (or of the job so far, for `probe`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Always `cardfill-run-record`.
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// `run` or `probe`.
    pub kind: RecordKind,
    /// Version of the cardfill that wrote it.
    pub cardfill_version: String,
    /// Node name: `SLURMD_NODENAME`, else the host name.
    pub node: String,
    /// What ties the records of one run together: `slurm-<job id>`,
    /// `torchelastic-<run id>`, or the start time and process id of a lone run.
    pub run_key: String,
    /// Start, RFC 3339 UTC: the command's start (`run`), the job's start (`probe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End, RFC 3339 UTC: the command's end (`run`), the time of probing (`probe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Wall-clock seconds from `start` to `end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_s: Option<f64>,
    /// The program run (its name only, never its arguments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The command's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// The host.
    #[serde(default)]
    pub host: HostInfo,
    /// What NVML said.
    #[serde(default)]
    pub nvml: NvmlReport,
    /// The GPUs the run used on this node.
    #[serde(default)]
    pub gpus: Vec<GpuInfo>,
    /// Energy of all `gpus`, joules; absent unless every GPU has a figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_j: Option<f64>,
    /// What AMD SMI said, where it loaded (AMD GPUs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amdsmi: Option<crate::amd::AmdSmiReport>,
    /// CPU package and DRAM energy from RAPL (`cardfill run`, where the counters are readable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_energy: Option<crate::rapl::RaplEnergy>,
    /// The Slurm job, when inside one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmInfo>,
    /// torchrun / accelerate variables, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launcher: Option<Launcher>,
    /// cardfill processes merged into this record (several ranks on one node write one).
    #[serde(default = "one")]
    pub processes: u32,
    /// What the training process knows (`training` records of the main process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<crate::training::TrainingInfo>,
    /// Each GPU's energy counter (mJ) at train begin, in `gpus` order, while a `training`
    /// record is open (between `probe --begin` and `probe --end`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_counters_mj: Option<Vec<Option<u64>>>,
}

fn one() -> u32 {
    1
}

/// RFC 3339 UTC with milliseconds, as records store times.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses RFC 3339, or a zone-less `YYYY-MM-DDTHH:MM:SS` as local time (Slurm's format).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok()?;
    naive
        .and_local_timezone(chrono::Local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

impl RunRecord {
    /// An empty record of `kind` for `node` and `run_key`.
    pub fn new(kind: RecordKind, node: String, run_key: String) -> Self {
        Self {
            format: RECORD_FORMAT.to_owned(),
            version: RECORD_VERSION,
            kind,
            cardfill_version: env!("CARGO_PKG_VERSION").to_owned(),
            node,
            run_key,
            processes: 1,
            ..Self::default()
        }
    }

    /// Start time, parsed.
    pub fn start_time(&self) -> Option<DateTime<Utc>> {
        self.start.as_deref().and_then(parse_time)
    }

    /// End time, parsed.
    pub fn end_time(&self) -> Option<DateTime<Utc>> {
        self.end.as_deref().and_then(parse_time)
    }

    /// Sets `wall_s` from `start` and `end` and `energy_j` from the GPUs.
    pub fn finish(&mut self) {
        self.wall_s = match (self.start_time(), self.end_time()) {
            (Some(s), Some(e)) if e >= s => Some((e - s).num_milliseconds() as f64 / 1000.0),
            _ => None,
        };
        self.energy_j = if self.gpus.is_empty() {
            None
        } else {
            self.gpus
                .iter()
                .map(|g| g.energy.as_ref().map(|e| e.joules))
                .sum()
        };
    }

    /// The file name of this record inside the record folder: `<node>_<run key>.json`.
    pub fn file_name(&self) -> String {
        let clean = |s: &str| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        };
        format!("{}_{}.json", clean(&self.node), clean(&self.run_key))
    }

    /// Folds `other` (another process of the same node and run) into `self`.
    pub fn merge(&mut self, other: RunRecord) {
        let closes = other.end.is_some() && other.open_counters_mj.is_none();
        if other.kind == RecordKind::Run
            || (other.kind == RecordKind::Training && self.kind == RecordKind::Probe)
        {
            self.kind = other.kind;
        }
        self.start = pick(self.start.take(), other.start, |a, b| {
            parse_time(a) <= parse_time(b)
        });
        self.end = pick(self.end.take(), other.end, |a, b| {
            parse_time(a) >= parse_time(b)
        });
        if self.exit_code.is_none_or(|c| c == 0) && other.exit_code.is_some() {
            self.exit_code = other.exit_code;
            self.signal = other.signal;
        }
        self.command = self.command.take().or(other.command);
        if self.nvml.status != NvmlStatus::Ok && other.nvml.status == NvmlStatus::Ok {
            self.nvml = other.nvml;
        }
        if self.host == HostInfo::default() {
            self.host = other.host;
        }
        for gpu in other.gpus {
            let same = self.gpus.iter_mut().find(|g| match (&g.uuid, &gpu.uuid) {
                (Some(a), Some(b)) => a == b,
                _ => g.index == gpu.index,
            });
            match same {
                Some(known) => {
                    known.energy = merge_energy(known.energy.take(), gpu.energy);
                    // Two processes polled the same GPU: the longer series.
                    if gpu.power_samples.len() > known.power_samples.len() {
                        known.power_samples = gpu.power_samples;
                    }
                }
                None => self.gpus.push(gpu),
            }
        }
        self.gpus.sort_by_key(|g| g.index);
        self.amdsmi = self.amdsmi.take().or(other.amdsmi);
        // RAPL counts the whole node: every process saw the same counters; keep the widest.
        self.cpu_energy = match (self.cpu_energy.take(), other.cpu_energy) {
            (Some(a), Some(b)) => Some(if b.cpu_joules > a.cpu_joules { b } else { a }),
            (a, b) => a.or(b),
        };
        self.slurm = other.slurm.or(self.slurm.take());
        self.launcher = self.launcher.take().or(other.launcher);
        self.processes += other.processes;
        // A record that ended closes an open training record; the later training info wins.
        if closes {
            self.open_counters_mj = None;
        } else if other.open_counters_mj.is_some() {
            self.open_counters_mj = other.open_counters_mj;
        }
        self.training = other.training.or(self.training.take());
        self.finish();
    }
}

fn pick(
    a: Option<String>,
    b: Option<String>,
    keep_a: impl Fn(&str, &str) -> bool,
) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if keep_a(&a, &b) { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Two processes measured the same GPU: the widest counter span, else the larger figure.
fn merge_energy(a: Option<GpuEnergy>, b: Option<GpuEnergy>) -> Option<GpuEnergy> {
    match (a, b) {
        (Some(a), Some(b)) => {
            if let (Some(s1), Some(e1), Some(s2), Some(e2)) = (
                a.counter_start_mj,
                a.counter_end_mj,
                b.counter_start_mj,
                b.counter_end_mj,
            ) && !a.counter_reset
                && !b.counter_reset
            {
                return Some(counter_energy(s1.min(s2), e1.max(e2)));
            }
            Some(if a.joules >= b.joules { a } else { b })
        }
        (a, b) => a.or(b),
    }
}

/// How long a writer waits for another rank's lock before writing without it.
pub const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Writes `record` into `dir` (the record folder, created if missing). A record already
/// there for the same node and run, written by another rank, is merged, under a lock.
/// Returns the path written.
pub fn write_record(dir: &Path, record: RunRecord) -> Result<PathBuf, HardwareError> {
    write_record_checked(dir, record).0
}

/// Opens `path` without blocking or following a link; `create`: create it if missing.
fn open_plain(path: &Path, create: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOFOLLOW;
    std::fs::OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .truncate(false)
        .custom_flags(flags.bits() as i32)
        .mode(0o644)
        .open(path)
}

/// Creates the record folder `dir` (`<DIR>/.cardfill`): `<DIR>` itself only when its parent
/// exists.
fn make_record_dir(dir: &Path) -> Result<(), HardwareError> {
    let fail = |path: &Path, message: String| HardwareError::Write {
        path: path.to_path_buf(),
        message,
    };
    if dir.is_dir() {
        return Ok(());
    }
    let target = if dir.file_name().is_some_and(|n| n == RECORD_DIR) {
        dir.parent().filter(|p| !p.as_os_str().is_empty())
    } else {
        None
    };
    if let Some(target) = target
        && !target.is_dir()
    {
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(fail(
                target,
                format!(
                    "`{}` does not exist, so the record folder is not created: create it or pass another --record",
                    parent.display()
                ),
            ));
        }
        std::fs::create_dir(target).or_else(|e| {
            if target.is_dir() {
                Ok(())
            } else {
                Err(fail(target, e.to_string()))
            }
        })?;
    }
    std::fs::create_dir(dir).or_else(|e| {
        if dir.is_dir() {
            Ok(())
        } else {
            Err(fail(dir, e.to_string()))
        }
    })
}

/// [`write_record`], also returning warnings: an odd lock or record file skipped, a lock not
/// taken in [`LOCK_TIMEOUT`].
pub fn write_record_checked(
    dir: &Path,
    record: RunRecord,
) -> (Result<PathBuf, HardwareError>, Vec<String>) {
    let mut warnings = Vec::new();
    let result = write_inner(dir, record, &mut warnings);
    (result, warnings)
}

fn write_inner(
    dir: &Path,
    record: RunRecord,
    warnings: &mut Vec<String>,
) -> Result<PathBuf, HardwareError> {
    let io = |path: &Path, e: std::io::Error| HardwareError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    make_record_dir(dir)?;
    let lock_path = dir.join(".lock");
    let lock = match open_plain(&lock_path, true) {
        Ok(f) if f.metadata().is_ok_and(|m| m.is_file()) => Some(f),
        Ok(f) => {
            let what = f
                .metadata()
                .map(|m| cardfill_facts::read::describe(m.file_type()))
                .unwrap_or("not a regular file");
            warnings.push(format!(
                "`{}` is {what}: written without the lock (remove it)",
                lock_path.display()
            ));
            None
        }
        Err(e) => {
            warnings.push(format!(
                "cannot open the lock `{}`: {e}: written without it",
                lock_path.display()
            ));
            None
        }
    };
    if let Some(lock) = &lock {
        let started = std::time::Instant::now();
        loop {
            match rustix::fs::flock(lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::WOULDBLOCK | rustix::io::Errno::INTR)
                    if started.elapsed() < LOCK_TIMEOUT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(rustix::io::Errno::WOULDBLOCK | rustix::io::Errno::INTR) => {
                    warnings.push(format!(
                        "`{}` stayed locked for {} s: written without the lock",
                        lock_path.display(),
                        LOCK_TIMEOUT.as_secs()
                    ));
                    break;
                }
                // Some shared filesystems refuse locks; write without one rather than not at all.
                Err(_) => break,
            }
        }
    }

    let path = dir.join(record.file_name());
    let mut record = record;
    match read_record(&path) {
        Ok(earlier) => {
            let mut merged = earlier;
            merged.merge(record);
            record = merged;
        }
        Err(RecordReadError::Read(e)) if e.is_not_found() => {}
        Err(e) => warnings.push(format!("{e}: replaced by this run's record")),
    }
    let text = serde_json::to_string_pretty(&record).map_err(|e| HardwareError::Write {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let tmp = dir.join(format!(".{}.tmp{}", record.file_name(), std::process::id()));
    let create = || {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .mode(0o644)
            .open(&tmp)
    };
    let mut file = match create() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // A leftover of this pid's earlier life, or planted: never written through.
            std::fs::remove_file(&tmp).map_err(|e| io(&tmp, e))?;
            create()
        }
        other => other,
    }
    .map_err(|e| io(&tmp, e))?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&path, e));
    }
    drop(lock);
    Ok(path)
}

/// Why one record file was not read.
#[derive(Debug)]
enum RecordReadError {
    Read(cardfill_facts::read::ReadError),
    Json(PathBuf, String),
}

impl std::fmt::Display for RecordReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(e) => e.fmt(f),
            Self::Json(p, m) => write!(f, "`{}` is not a run record: {m}", p.display()),
        }
    }
}

/// Reads one record, streamed (regular files only, at most
/// [`cardfill_facts::read::RECORD_CAP`] bytes; fields it does not know are skipped unread).
fn read_record(path: &Path) -> Result<RunRecord, RecordReadError> {
    let cap = cardfill_facts::read::RECORD_CAP;
    let (file, _) = cardfill_facts::read::open(path, cap).map_err(RecordReadError::Read)?;
    let reader = std::io::BufReader::with_capacity(1 << 16, std::io::Read::take(file, cap));
    serde_json::from_reader(reader)
        .map_err(|e| RecordReadError::Json(path.to_path_buf(), e.to_string()))
}

/// A record read from disk, with the file it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct FoundRecord {
    /// File name inside the record folder.
    pub file: String,
    /// The record.
    pub record: RunRecord,
}

/// Reads every record in the record folder `dir`. Missing folder: none. Files that are not
/// records are skipped and reported as `(file, problem)`.
pub fn read_records(dir: &Path) -> (Vec<FoundRecord>, Vec<(String, String)>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    if !cardfill_facts::read::may_exist(dir) {
        return (found, problems);
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (found, problems);
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let parsed = read_record(&path).map_err(|e| match e {
            RecordReadError::Read(e) => e.reason(),
            RecordReadError::Json(_, m) => m,
        });
        match parsed {
            Ok(record) if record.format == RECORD_FORMAT => {
                found.push(FoundRecord { file: name, record })
            }
            Ok(record) => problems.push((name, format!("format is `{}`", record.format))),
            Err(message) => problems.push((name, message)),
        }
    }
    (found, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::EnergyMethod;

    fn gpu(index: u32, uuid: &str, energy: Option<(u64, u64)>) -> GpuInfo {
        GpuInfo {
            index,
            uuid: Some(uuid.to_owned()),
            name: Some("NVIDIA H100 80GB HBM3".to_owned()),
            energy: energy.map(|(s, e)| counter_energy(s, e)),
            ..GpuInfo::default()
        }
    }

    fn record(start: &str, end: &str, gpus: Vec<GpuInfo>) -> RunRecord {
        let mut r = RunRecord::new(RecordKind::Run, "n1".into(), "slurm-7".into());
        r.start = Some(start.into());
        r.end = Some(end.into());
        r.gpus = gpus;
        r.finish();
        r
    }

    #[test]
    fn record_dir_takes_the_checkpoint_or_the_folder_itself() {
        assert_eq!(record_dir(Path::new("out")), Path::new("out/.cardfill"));
        assert_eq!(
            record_dir(Path::new("out/.cardfill")),
            Path::new("out/.cardfill")
        );
    }

    #[test]
    fn two_ranks_on_one_node_write_one_record() {
        let dir = tempfile::tempdir().unwrap();
        let a = record(
            "2026-11-27T08:00:00Z",
            "2026-11-27T10:00:00Z",
            vec![gpu(0, "GPU-a", Some((1_000, 3_601_000)))],
        );
        let b = record(
            "2026-11-27T08:00:01Z",
            "2026-11-27T10:00:02Z",
            vec![
                gpu(1, "GPU-b", Some((0, 7_200_000))),
                gpu(0, "GPU-a", Some((500, 3_600_000))),
            ],
        );
        let p1 = write_record(dir.path(), a).unwrap();
        let p2 = write_record(dir.path(), b).unwrap();
        assert_eq!(p1, p2);
        let (found, problems) = read_records(dir.path());
        assert!(problems.is_empty());
        assert_eq!(found.len(), 1);
        let r = &found[0].record;
        assert_eq!(r.processes, 2);
        assert_eq!(r.gpus.len(), 2);
        assert_eq!(r.start.as_deref(), Some("2026-11-27T08:00:00Z"));
        assert_eq!(r.end.as_deref(), Some("2026-11-27T10:00:02Z"));
        assert_eq!(r.wall_s, Some(7202.0));
        // GPU-a: widest span 500 → 3_601_000 mJ; GPU-b: 7_200 J.
        assert_eq!(r.gpus[0].energy.as_ref().unwrap().joules, 3600.5);
        assert_eq!(r.energy_j, Some(3600.5 + 7200.0));
        assert_eq!(
            r.gpus[0].energy.as_ref().unwrap().method,
            EnergyMethod::Counter
        );
    }

    #[test]
    fn energy_is_absent_unless_every_gpu_has_it() {
        let r = record(
            "2026-11-27T08:00:00Z",
            "2026-11-27T09:00:00Z",
            vec![gpu(0, "GPU-a", Some((0, 1000))), gpu(1, "GPU-b", None)],
        );
        assert_eq!(r.energy_j, None);
    }

    #[test]
    fn foreign_and_broken_files_are_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), "{not json").unwrap();
        std::fs::write(
            dir.path().join("b.json"),
            r#"{"format":"other","version":1}"#,
        )
        .unwrap();
        let (found, problems) = read_records(dir.path());
        assert!(found.is_empty());
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].0, "a.json");
    }

    #[test]
    fn slurm_times_without_zone_parse_as_local_time() {
        assert!(parse_time("2026-11-27T05:00:25").is_some());
        assert_eq!(
            parse_time("2026-11-27T05:00:25+01:00"),
            parse_time("2026-11-27T04:00:25Z")
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn launcher_nodes_from_world_sizes() {
        let env = |k: &str| match k {
            "WORLD_SIZE" => Some("16".to_owned()),
            "LOCAL_WORLD_SIZE" => Some("8".to_owned()),
            "GROUP_RANK" => Some("1".to_owned()),
            _ => None,
        };
        let l = Launcher::from_env(&env).unwrap();
        assert_eq!(l.nodes(), Some(2));
        assert_eq!(l.node_rank, Some(1));
        assert_eq!(Launcher::from_env(&|_: &str| None), None);
    }
}
