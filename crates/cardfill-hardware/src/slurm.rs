//! Slurm: the job this process runs in (`SLURM_*` variables and `scontrol show job`), or a
//! finished job (`sacct`).
//!
//! Slurm's commands run with `SLURM_TIME_FORMAT=%s` (times as epochs, so no time zone is
//! guessed) and a short timeout; a missing or failing command means "unknown", never an error.
//! The parsers are public so that tests can feed them real output.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// How long one Slurm command may take before it is killed and treated as unavailable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Most node names a node list may expand to (a guard against absurd ranges).
const MAX_NODES: usize = 100_000;

/// What Slurm says about a job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlurmJob {
    /// The job id.
    pub job_id: String,
    /// Job state as Slurm names it (`RUNNING`, `COMPLETED`, ...), where known.
    pub state: Option<String>,
    /// Start time, RFC 3339.
    pub start: Option<String>,
    /// End time, RFC 3339 (absent while running).
    pub end: Option<String>,
    /// Start time, seconds since the Unix epoch.
    pub start_epoch: Option<i64>,
    /// End time, seconds since the Unix epoch (absent while running).
    pub end_epoch: Option<i64>,
    /// Number of nodes.
    pub nodes: Option<u32>,
    /// Node names.
    pub node_list: Vec<String>,
    /// GPUs allocated on each node (on this node, when read from the environment).
    pub gpus_per_node: Option<u32>,
    /// GPUs allocated to the whole job (`gres/gpu` of its TRES); 0 when the TRES list has none.
    pub gpus_total: Option<u32>,
    /// Elapsed wall-clock seconds so far (or in total when finished).
    pub elapsed_s: Option<f64>,
    /// Where these facts came from, for provenance (`scontrol show job 42`, `sacct -j 42`,
    /// `SLURM_* environment`).
    pub method: String,
}

impl SlurmJob {
    /// Whether the job has ended (a terminal state, or an end time).
    pub fn is_finished(&self) -> bool {
        match self.state.as_deref() {
            Some(state) => is_terminal(state),
            None => self.end.is_some(),
        }
    }

    /// Sets `start` and `end` with their epochs. A running job's end is a projection (start
    /// + time limit), not an end: it is kept only in a terminal state.
    fn with_times(mut self, start: Option<SlurmTime>, end: Option<SlurmTime>) -> Self {
        let end = end.filter(|_| self.state.as_deref().is_some_and(is_terminal));
        self.start = start.map(SlurmTime::rfc3339);
        self.end = end.map(SlurmTime::rfc3339);
        self.start_epoch = start.map(|t| t.0.timestamp());
        self.end_epoch = end.map(|t| t.0.timestamp());
        self
    }

    /// Fills the fields `self` lacks from `other` (which must describe the same job).
    fn fill_from(&mut self, other: SlurmJob) {
        self.state = self.state.take().or(other.state);
        self.start = self.start.take().or(other.start);
        self.end = self.end.take().or(other.end);
        self.start_epoch = self.start_epoch.or(other.start_epoch);
        self.end_epoch = self.end_epoch.or(other.end_epoch);
        self.nodes = self.nodes.or(other.nodes);
        if self.node_list.is_empty() {
            self.node_list = other.node_list;
        }
        self.gpus_per_node = self.gpus_per_node.or(other.gpus_per_node);
        self.gpus_total = self.gpus_total.or(other.gpus_total);
        self.elapsed_s = self.elapsed_s.or(other.elapsed_s);
        if !other.method.is_empty() {
            if self.method.is_empty() {
                self.method = other.method;
            } else {
                self.method = format!("{} and {}", self.method, other.method);
            }
        }
    }
}

/// The job this process runs in, from `SLURM_JOB_ID` and `scontrol show job` (or `sacct` when
/// the controller no longer knows the job); `None` outside Slurm. When Slurm's commands are
/// unavailable, what the `SLURM_*` variables say (no start time then). The GPU count per node
/// is this node's, from the `SLURM_*` variables.
pub fn current_job() -> Option<SlurmJob> {
    let mut env_job = job_from_env(|name| std::env::var(name).ok())?;
    let Some(queried) = job(&env_job.job_id) else {
        return Some(env_job);
    };
    // What the controller says about the job outranks the environment, except the GPUs of
    // this node, which only the environment knows.
    let gpus_here = env_job.gpus_per_node.take();
    let mut merged = queried;
    merged.fill_from(env_job);
    if gpus_here.is_some() {
        merged.gpus_per_node = gpus_here;
    }
    Some(merged)
}

/// Job `job_id` as the controller knows it (`scontrol show job`), falling back to accounting
/// (`sacct`) for jobs the controller has forgotten. `None` when neither command answers.
pub fn job(job_id: &str) -> Option<SlurmJob> {
    if !is_job_id(job_id) {
        return None;
    }
    let live = run_slurm("scontrol", &["-o", "show", "job", job_id])
        .and_then(|text| parse_scontrol_job(&text, job_id));
    match live {
        Some(mut live) => {
            if live.is_finished() {
                // Accounting has the exact elapsed time of finished jobs.
                if let Some(acct) = finished_job(job_id) {
                    live.fill_from(acct);
                }
            }
            Some(live)
        }
        None => finished_job(job_id),
    }
}

/// Job `job_id` from accounting (`sacct -j ID --parsable2`): start, end, elapsed time, nodes
/// and GPUs. `None` when `sacct` is missing, accounting is disabled or the job is unknown.
pub fn finished_job(job_id: &str) -> Option<SlurmJob> {
    if !is_job_id(job_id) {
        return None;
    }
    let text = run_slurm(
        "sacct",
        &[
            "-j",
            job_id,
            "--parsable2",
            "--allocations",
            "--format=JobID,State,ElapsedRaw,Start,End,NNodes,AllocTRES,NodeList",
        ],
    )?;
    parse_sacct(&text, job_id)
}

/// The job described by `SLURM_*` variables, read through `var`; `None` without a job id.
pub fn job_from_env(var: impl Fn(&str) -> Option<String>) -> Option<SlurmJob> {
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| var(name).filter(|v| !v.trim().is_empty()))
    };
    let job_id = get(&["SLURM_JOB_ID", "SLURM_JOBID"])?.trim().to_owned();
    if !is_job_id(&job_id) {
        return None;
    }
    let nodes = get(&["SLURM_JOB_NUM_NODES", "SLURM_NNODES"]).and_then(|v| v.trim().parse().ok());
    let node_list = get(&["SLURM_JOB_NODELIST", "SLURM_NODELIST"])
        .map(|v| expand_hostlist(&v))
        .unwrap_or_default();
    // The job's GPUs on this node, then the step's, then what CUDA was told.
    let gpus_per_node = get(&["SLURM_JOB_GPUS"])
        .and_then(|v| count_devices(&v))
        .or_else(|| get(&["SLURM_GPUS_ON_NODE"]).and_then(|v| v.trim().parse().ok()))
        .or_else(|| get(&["SLURM_STEP_GPUS"]).and_then(|v| count_devices(&v)))
        .or_else(|| get(&["CUDA_VISIBLE_DEVICES"]).and_then(|v| count_devices(&v)));
    // Slurm 23.02 and later export the start (22.05 does not).
    let start = get(&["SLURM_JOB_START_TIME"]).and_then(|v| parse_time(&v));
    let job = SlurmJob {
        job_id,
        nodes,
        node_list,
        gpus_per_node,
        method: "SLURM_* environment".to_owned(),
        ..SlurmJob::default()
    };
    Some(job.with_times(start, None))
}

/// Parses `scontrol show job` output (one-line `-o` form or the indented form) for `job_id`.
pub fn parse_scontrol_job(text: &str, job_id: &str) -> Option<SlurmJob> {
    // Several records (job arrays, `-o` lines) start each with `JobId=`.
    let mut records: Vec<Vec<(&str, &str)>> = Vec::new();
    for token in text.split_whitespace() {
        let Some((key, value)) = token.split_once('=') else {
            continue;
        };
        if key == "JobId" {
            records.push(Vec::new());
        }
        if let Some(record) = records.last_mut() {
            record.push((key, value));
        }
    }
    let record = records
        .into_iter()
        .find(|r| r.iter().any(|&(k, v)| k == "JobId" && v == job_id))?;
    let field = |name: &str| {
        record
            .iter()
            .find(|&&(k, _)| k == name)
            .map(|&(_, v)| v)
            .filter(|v| !v.is_empty())
    };
    let nodes: Option<u32> = field("NumNodes").and_then(|v| v.parse().ok());
    let gpus_total = field("TRES").map(|tres| tres_gpus(tres).unwrap_or(0));
    let gpus_per_node = field("TresPerNode")
        .and_then(tres_per_node_gpus)
        .or_else(|| even_share(gpus_total, nodes));
    let job = SlurmJob {
        job_id: job_id.to_owned(),
        state: field("JobState").map(str::to_owned),
        nodes,
        node_list: field("NodeList").map(expand_hostlist).unwrap_or_default(),
        gpus_per_node,
        gpus_total,
        elapsed_s: field("RunTime").and_then(parse_duration),
        method: format!("scontrol show job {job_id}"),
        ..SlurmJob::default()
    };
    Some(job.with_times(
        field("StartTime").and_then(parse_time),
        field("EndTime").and_then(parse_time),
    ))
}

/// Parses `sacct --parsable2` output with its header line; reads the job's allocation row
/// (`JobID` equal to `job_id`, not one of its steps). Known columns: `JobID`, `State`,
/// `ElapsedRaw` or `Elapsed`, `Start`, `End`, `NNodes`, `AllocTRES`, `NodeList`.
pub fn parse_sacct(text: &str, job_id: &str) -> Option<SlurmJob> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split('|').collect();
    let col = |row: &[&'_ str], name: &str| -> Option<String> {
        let i = header.iter().position(|h| h.trim() == name)?;
        row.get(i)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    // Requeued jobs appear more than once: the last row is the latest run.
    let row: Vec<&str> = lines
        .map(|l| l.split('|').collect::<Vec<_>>())
        .rfind(|r| col(r, "JobID").as_deref() == Some(job_id))?;
    let state = col(&row, "State").map(|s| {
        // `CANCELLED by 0` → `CANCELLED`.
        s.split_whitespace().next().unwrap_or_default().to_owned()
    });
    let nodes: Option<u32> = col(&row, "NNodes").and_then(|v| v.parse().ok());
    let gpus_total = col(&row, "AllocTRES").map(|tres| tres_gpus(&tres).unwrap_or(0));
    let elapsed_s = col(&row, "ElapsedRaw")
        .and_then(|v| v.parse::<f64>().ok())
        .or_else(|| col(&row, "Elapsed").and_then(|v| parse_duration(&v)));
    let job = SlurmJob {
        job_id: job_id.to_owned(),
        state,
        nodes,
        node_list: col(&row, "NodeList")
            .map(|v| expand_hostlist(&v))
            .unwrap_or_default(),
        gpus_per_node: even_share(gpus_total, nodes),
        gpus_total,
        elapsed_s,
        method: format!("sacct -j {job_id}"),
        ..SlurmJob::default()
    };
    Some(job.with_times(
        col(&row, "Start").and_then(|v| parse_time(&v)),
        col(&row, "End").and_then(|v| parse_time(&v)),
    ))
}

/// Expands a Slurm host list: `n[1-2],gpu[01-03,07],login` → `n1 n2 gpu01 gpu02 gpu03 gpu07
/// login`. Zero padding is kept. A malformed entry is kept as written.
pub fn expand_hostlist(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in split_top_level(list.trim()) {
        if entry.is_empty() || entry == "(null)" || entry == "None" || entry == "None assigned" {
            continue;
        }
        expand_entry(entry, &mut out);
        if out.len() > MAX_NODES {
            out.truncate(MAX_NODES);
            break;
        }
    }
    out
}

/// Splits at commas outside brackets.
fn split_top_level(list: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in list.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    parts
}

/// Expands one `prefix[ranges]suffix` entry (recursively, for several bracket groups).
fn expand_entry(entry: &str, out: &mut Vec<String>) {
    let (Some(open), Some(close)) = (entry.find('['), entry.find(']')) else {
        out.push(entry.to_owned());
        return;
    };
    if close < open {
        out.push(entry.to_owned());
        return;
    }
    let (prefix, ranges, suffix) = (&entry[..open], &entry[open + 1..close], &entry[close + 1..]);
    for range in ranges.split(',') {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let (Ok(a), Ok(b)) = (lo.parse::<u64>(), hi.parse::<u64>()) else {
            out.push(entry.to_owned());
            return;
        };
        if b < a || (b - a) as usize > MAX_NODES {
            out.push(entry.to_owned());
            return;
        }
        let width = lo.len();
        for n in a..=b {
            expand_entry(&format!("{prefix}{n:0width$}{suffix}"), out);
            if out.len() > MAX_NODES {
                return;
            }
        }
    }
}

/// A point in time read from Slurm.
#[derive(Clone, Copy, Debug)]
struct SlurmTime(DateTime<Utc>);

impl SlurmTime {
    fn rfc3339(self) -> String {
        self.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// Reads an epoch (`SLURM_TIME_FORMAT=%s`) or Slurm's default local `2021-08-09T14:30:18`
/// (local time of the machine that runs the command); `Unknown`, `None`, `N/A` and 0 are no
/// time.
fn parse_time(value: &str) -> Option<SlurmTime> {
    let value = value.trim();
    if let Ok(epoch) = value.parse::<i64>() {
        if epoch <= 0 {
            return None;
        }
        return DateTime::from_timestamp(epoch, 0).map(SlurmTime);
    }
    crate::record::parse_time(value).map(SlurmTime)
}

/// Reads Slurm's `[D-]HH:MM:SS` (also `MM:SS` and `MM:SS.mmm`) into seconds.
fn parse_duration(value: &str) -> Option<f64> {
    let value = value.trim();
    if matches!(
        value,
        "" | "UNLIMITED" | "INVALID" | "N/A" | "Partition_Limit"
    ) {
        return None;
    }
    let (days, clock) = match value.split_once('-') {
        Some((d, rest)) => (d.parse::<f64>().ok()?, rest),
        None => (0.0, value),
    };
    let parts: Vec<f64> = clock
        .split(':')
        .map(|p| p.parse::<f64>().ok())
        .collect::<Option<_>>()?;
    let clock_s = match parts.as_slice() {
        [h, m, s] => h * 3600.0 + m * 60.0 + s,
        [m, s] => m * 60.0 + s,
        [s] => *s,
        _ => return None,
    };
    let total = days * 86_400.0 + clock_s;
    total.is_finite().then_some(total)
}

/// `gres/gpu=N` (or `gres/gpu:type=N` alone) in a TRES list, summed over GPU types only when no
/// untyped total is given.
fn tres_gpus(tres: &str) -> Option<u32> {
    let mut total = None;
    let mut typed = 0u32;
    let mut any_typed = false;
    for item in tres.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        let Ok(count) = value.trim().parse::<u32>() else {
            continue;
        };
        if key == "gres/gpu" {
            total = Some(count);
        } else if key.starts_with("gres/gpu:") {
            any_typed = true;
            typed = typed.saturating_add(count);
        }
    }
    total.or(any_typed.then_some(typed))
}

/// GPUs per node from `TresPerNode`: `gres:gpu:2`, `gres/gpu:a100:1`, `gres:gpu` (1).
fn tres_per_node_gpus(value: &str) -> Option<u32> {
    value.split(',').find_map(|item| {
        let item = item.trim().strip_prefix("gres")?;
        let rest = item.strip_prefix(':').or_else(|| item.strip_prefix('/'))?;
        let rest = rest.strip_prefix("gpu")?;
        if rest.is_empty() {
            return Some(1);
        }
        rest.strip_prefix(':')?.rsplit(':').next()?.parse().ok()
    })
}

/// `total / nodes` when it divides evenly (a homogeneous allocation).
fn even_share(total: Option<u32>, nodes: Option<u32>) -> Option<u32> {
    match (total, nodes) {
        (Some(t), Some(n)) if n > 0 && t.is_multiple_of(n) => Some(t / n),
        _ => None,
    }
}

/// Counts a device list such as `0,1` or `GPU-uuid,GPU-uuid`; `NoDevFiles` and empty are none.
fn count_devices(list: &str) -> Option<u32> {
    let list = list.trim();
    if list == "NoDevFiles" {
        return Some(0);
    }
    if list.is_empty() {
        return None;
    }
    u32::try_from(list.split(',').filter(|d| !d.trim().is_empty()).count()).ok()
}

fn is_terminal(state: &str) -> bool {
    let state = state.split_whitespace().next().unwrap_or_default();
    matches!(
        state,
        "COMPLETED"
            | "FAILED"
            | "CANCELLED"
            | "TIMEOUT"
            | "NODE_FAIL"
            | "OUT_OF_MEMORY"
            | "PREEMPTED"
            | "BOOT_FAIL"
            | "DEADLINE"
    )
}

/// Job ids: digits, with `_` (array task) or `+` (het component).
fn is_job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_digit() || c == '_' || c == '+')
}

/// Runs a Slurm command with epoch times and a timeout; its stdout when it exits 0.
fn run_slurm(program: &str, args: &[&str]) -> Option<String> {
    let mut child = Command::new(program)
        .args(args)
        .env("SLURM_TIME_FORMAT", "%s")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let read = stdout.read_to_string(&mut text).map(|_| text);
        let _ = tx.send(read);
    });
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let status = status?;
    let remaining = deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(100);
    let text = rx.recv_timeout(remaining).ok()?.ok()?;
    status.success().then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Local, NaiveDateTime, TimeZone};

    fn fixture(rel: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/cases/slurm-scripts-and-scontrol")
            .join(rel);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn real_scontrol_dump_of_a_cpu_job() {
        let text = fixture("scontrol/GooseSLURM_issue32__scontrol_show_job_cpu.txt");
        let job = parse_scontrol_job(&text, "10804568").unwrap();
        assert_eq!(job.state.as_deref(), Some("RUNNING"));
        assert_eq!(job.nodes, Some(1));
        assert_eq!(job.node_list, ["f006"]);
        assert_eq!(job.gpus_total, Some(0));
        assert_eq!(job.gpus_per_node, Some(0));
        assert_eq!(job.elapsed_s, Some(20.0 * 3600.0 + 27.0 * 60.0 + 30.0));
        // Printed in local time without an offset: read as this machine's local time.
        let local = Local
            .from_local_datetime(
                &NaiveDateTime::parse_from_str("2021-08-09T14:30:18", "%Y-%m-%dT%H:%M:%S").unwrap(),
            )
            .earliest()
            .unwrap();
        assert_eq!(job.start_epoch, Some(local.timestamp()));
        // Running: the printed EndTime is a projection, not an end.
        assert_eq!(job.end, None);
        assert!(!job.is_finished());
        assert!(parse_scontrol_job(&text, "1").is_none());
    }

    #[test]
    fn one_line_scontrol_of_a_finished_gpu_job_with_epoch_times() {
        let text = "JobId=7 JobName=t UserId=root(0) JobState=COMPLETED Reason=None \
            RunTime=00:00:04 TimeLimit=UNLIMITED StartTime=1795765537 EndTime=1795765541 \
            AllocNode:Sid=localhost:1 NodeList=n[1-2] NumNodes=2 NumCPUs=2 \
            TRES=cpu=2,node=2,billing=2,gres/gpu=4 Power= TresPerNode=gres:gpu:2\n";
        let job = parse_scontrol_job(text, "7").unwrap();
        assert_eq!(job.start.as_deref(), Some("2026-11-27T07:45:37Z"));
        assert_eq!(job.end.as_deref(), Some("2026-11-27T07:45:41Z"));
        assert_eq!(job.end_epoch, Some(1795765541));
        assert_eq!(job.nodes, Some(2));
        assert_eq!(job.node_list, ["n1", "n2"]);
        assert_eq!(job.gpus_total, Some(4));
        assert_eq!(job.gpus_per_node, Some(2));
        assert_eq!(job.elapsed_s, Some(4.0));
        assert!(job.is_finished());
    }

    #[test]
    fn sacct_allocation_row_not_steps() {
        let text = "JobID|State|ElapsedRaw|Start|End|NNodes|AllocTRES|NodeList\n\
            12|COMPLETED|3725|1795765537|1795769262|2|billing=2,cpu=2,gres/gpu=8,node=2|gpu[07-08]\n\
            12.batch|COMPLETED|3725|1795765537|1795769262|1|cpu=1,gres/gpu=4,mem=0,node=1|gpu07\n\
            12.0|COMPLETED|3700|1795765540|1795769240|2|cpu=2,gres/gpu=8,mem=0,node=2|gpu[07-08]\n";
        let job = parse_sacct(text, "12").unwrap();
        assert_eq!(job.elapsed_s, Some(3725.0));
        assert_eq!(job.nodes, Some(2));
        assert_eq!(job.gpus_total, Some(8));
        assert_eq!(job.gpus_per_node, Some(4));
        assert_eq!(job.node_list, ["gpu07", "gpu08"]);
        assert_eq!(job.end_epoch, Some(1795769262));
        assert!(parse_sacct(text, "13").is_none());
        let cancelled = "JobID|State|Elapsed|Start|End|NNodes|AllocTRES\n\
            5|CANCELLED by 0|1-02:00:00|Unknown|Unknown|1|cpu=1,node=1\n";
        let job = parse_sacct(cancelled, "5").unwrap();
        assert_eq!(job.state.as_deref(), Some("CANCELLED"));
        assert_eq!(job.elapsed_s, Some(26.0 * 3600.0));
        assert_eq!((job.start, job.end, job.gpus_total), (None, None, Some(0)));
        // Accounting disabled: a message, no header.
        assert!(parse_sacct("Slurm accounting storage is disabled\n", "5").is_none());
    }

    #[test]
    fn environment_of_a_batch_script() {
        let vars = [
            ("SLURM_JOB_ID", "1"),
            ("SLURM_JOB_NUM_NODES", "2"),
            ("SLURM_JOB_NODELIST", "n[1-2]"),
            ("SLURM_GPUS_ON_NODE", "2"),
            ("SLURM_JOB_GPUS", "0,1"),
            ("CUDA_VISIBLE_DEVICES", "0,1"),
            ("SLURM_JOB_START_TIME", "1795765537"),
        ];
        let get = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let job = job_from_env(get).unwrap();
        assert_eq!(job.job_id, "1");
        assert_eq!(job.nodes, Some(2));
        assert_eq!(job.node_list, ["n1", "n2"]);
        assert_eq!(job.gpus_per_node, Some(2));
        assert_eq!(job.start.as_deref(), Some("2026-11-27T07:45:37Z"));
        // A step given one GPU: no SLURM_JOB_GPUS.
        let step = |k: &str| match k {
            "SLURM_JOBID" => Some("9".to_owned()),
            "SLURM_STEP_GPUS" => Some("3".to_owned()),
            _ => None,
        };
        assert_eq!(job_from_env(step).unwrap().gpus_per_node, Some(1));
        assert!(job_from_env(|_| None).is_none());
        assert!(job_from_env(|k| (k == "SLURM_JOB_ID").then(|| "1; rm".to_owned())).is_none());
    }

    #[test]
    fn host_lists_expand_with_padding() {
        assert_eq!(
            expand_hostlist("gpu[01-03,07],login,n[8-9]x"),
            ["gpu01", "gpu02", "gpu03", "gpu07", "login", "n8x", "n9x"]
        );
        assert_eq!(expand_hostlist("rack[1-2]-n[1-2]").len(), 4);
        assert_eq!(expand_hostlist("bad[a-b]"), ["bad[a-b]"]);
        assert!(expand_hostlist("(null)").is_empty());
        assert_eq!(
            expand_hostlist("big[0-99999999999]"),
            ["big[0-99999999999]"]
        );
    }

    #[test]
    fn durations_and_tres() {
        assert_eq!(parse_duration("2-00:00:00"), Some(172_800.0));
        assert_eq!(parse_duration("05:07"), Some(307.0));
        assert_eq!(parse_duration("UNLIMITED"), None);
        assert_eq!(parse_duration("x:1"), None);
        assert_eq!(tres_gpus("cpu=2,gres/gpu:a100=2,gres/gpu:v100=1"), Some(3));
        assert_eq!(tres_gpus("cpu=2,gres/gpu=4,gres/gpu:a100=4"), Some(4));
        assert_eq!(tres_gpus("cpu=1,mem=4G"), None);
        assert_eq!(tres_per_node_gpus("gres/gpu:a100:1"), Some(1));
        assert_eq!(tres_per_node_gpus("gres:gpu:2"), Some(2));
        assert_eq!(tres_per_node_gpus("gres:gpu"), Some(1));
        assert_eq!(count_devices("GPU-a,GPU-b"), Some(2));
        assert_eq!(count_devices("NoDevFiles"), Some(0));
    }

    #[test]
    fn missing_commands_are_unknown() {
        assert_eq!(run_slurm("cardfill-no-such-command", &[]), None);
        assert!(job("not an id").is_none());
    }
}
