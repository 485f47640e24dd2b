//! The collector: run records, flags, the Slurm job, trainer runtime and the calling process,
//! weighed in order of trust into `run.*` and `hardware.*` facts.

use std::collections::BTreeMap;
use std::path::Path;

use cardfill_facts::{Facts, Source, Value, paths};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use crate::gpu::{EnergyMethod, GpuInfo, GpuProbe, GpuSelection, NvmlReport, NvmlStatus};
use crate::host::HostInfo;
use crate::record::{
    FoundRecord, Launcher, RECORD_DIR, RecordKind, RunRecord, parse_time, read_records,
};
use crate::{RunOptions, SlurmJob};

/// The process that started cardfill, when it looks like the training process itself.
#[derive(Clone, Debug, PartialEq)]
pub struct ParentProcess {
    /// Its name (`python3.11`).
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// When it started.
    pub start: DateTime<Utc>,
}

/// A machine's host, NVML report and the job's GPUs on it.
type Machine = (HostInfo, NvmlReport, Vec<GpuInfo>);

/// What the machine says now, besides the files: gathered once by [`crate::collect`], given
/// explicitly in tests.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The Slurm job cardfill runs in.
    pub slurm: Option<SlurmJob>,
    /// The training process, when it called cardfill.
    pub parent: Option<ParentProcess>,
    /// Probes this machine's host and GPUs: set only inside a training context (Slurm job,
    /// launcher variables or a training parent process), called only without run records.
    pub live: Option<fn() -> Machine>,
    /// Now.
    pub now: Option<DateTime<Utc>>,
    /// Looks up a job by id in Slurm (`scontrol`, then `sacct`), for records written by
    /// `probe` before the job ended; `None` in tests.
    pub lookup_job: Option<fn(&str) -> Option<SlurmJob>>,
}

impl Context {
    /// Observes this machine: the Slurm job, the parent process, and (when inside a training
    /// context and `probe_live`) the host and GPUs.
    pub fn observe(probe_live: bool) -> Self {
        let slurm = crate::current_job();
        let parent = training_parent();
        let launcher = Launcher::from_env(&|k: &str| std::env::var(k).ok());
        let training = slurm.is_some() || parent.is_some() || launcher.is_some();
        Self {
            slurm,
            parent,
            live: (probe_live && training).then_some(probe_machine),
            now: Some(Utc::now()),
            lookup_job: Some(crate::slurm::job),
        }
    }
}

/// This machine's host, NVML report and the job's GPUs.
fn probe_machine() -> Machine {
    let probe = GpuProbe::open(&GpuSelection::from_env(|k| std::env::var(k).ok()));
    (HostInfo::probe(), probe.report, probe.gpus)
}

/// Whether a process is a training process: Python (or a launcher) that has loaded a deep
/// learning framework, judged from its name and its memory maps (`/proc/PID/maps`).
pub fn is_training_process(name: &str, maps: &str) -> bool {
    let python = is_python_like(name);
    let framework = ["libtorch", "libcudart", "xla_extension", "libtensorflow"]
        .iter()
        .any(|lib| maps.contains(lib));
    python && framework
}

/// Whether a process name is Python or a launcher (the first half of the test above).
fn is_python_like(name: &str) -> bool {
    let name = name.rsplit('/').next().unwrap_or(name);
    name.starts_with("python")
        || matches!(
            name,
            "torchrun" | "accelerate" | "deepspeed" | "pt_main_thread"
        )
}

fn training_parent() -> Option<ParentProcess> {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
    // The usual parent is a shell: its name (one small read) rules it out before the
    // process table, its memory maps and its start time are read.
    #[cfg(target_os = "linux")]
    {
        let comm = std::fs::read_to_string(format!(
            "/proc/{}/comm",
            std::os::unix::process::parent_id()
        ))
        .ok()?;
        if !is_python_like(comm.trim_end()) {
            return None;
        }
    }
    let me = Pid::from_u32(std::process::id());
    let mut sys = System::new().ok()?;
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[me]),
        true,
        ProcessRefreshKind::nothing(),
    );
    let parent = sys.process(me)?.parent()?;
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[parent]),
        true,
        ProcessRefreshKind::nothing(),
    );
    let p = sys.process(parent)?;
    let name = p.name().to_string_lossy().into_owned();
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", parent.as_u32())).ok()?;
    if !is_training_process(&name, &maps) {
        return None;
    }
    let start = DateTime::<Utc>::from_timestamp(i64::try_from(p.start_time()).ok()?, 0)?;
    Some(ParentProcess {
        name,
        pid: parent.as_u32(),
        start,
    })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn hours_between(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<f64> {
    (end >= start).then(|| (end - start).num_milliseconds() as f64 / 3_600_000.0)
}

/// Rounds to 4 decimals (0.36 s): enough for hours and kWh, stable in JSON.
fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// One run, from the records sharing its key.
struct RunSummary {
    files: Vec<String>,
    nodes: usize,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    gpus: Vec<GpuInfo>,
    gpu_hours: Option<f64>,
    energy_j: Option<f64>,
    sampled: bool,
    counter_reset: bool,
    expected_nodes: Option<u32>,
    /// GPUs Slurm allocated on nodes whose record has no NVML GPUs, summed.
    slurm_gpus: u32,
    /// RAPL CPU package and DRAM joules, summed over the nodes that had them.
    cpu_j: Option<f64>,
    dram_j: Option<f64>,
    /// Each GPU's power samples: label, `[seconds since the run's start, watts]`.
    power: Vec<(String, Vec<[f64; 2]>)>,
}

fn summarise(records: &[&FoundRecord]) -> RunSummary {
    let mut s = RunSummary {
        files: records.iter().map(|r| r.file.clone()).collect(),
        nodes: records
            .iter()
            .map(|r| r.record.node.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        start: records.iter().filter_map(|r| r.record.start_time()).min(),
        end: records.iter().filter_map(|r| r.record.end_time()).max(),
        gpus: Vec::new(),
        gpu_hours: Some(0.0),
        energy_j: Some(0.0),
        sampled: false,
        counter_reset: false,
        expected_nodes: None,
        slurm_gpus: 0,
        cpu_j: None,
        dram_j: None,
        power: Vec::new(),
    };
    for found in records {
        let r: &RunRecord = &found.record;
        let node_hours = match (r.start_time(), r.end_time()) {
            (Some(a), Some(b)) => hours_between(a, b),
            _ => None,
        };
        // Without NVML GPUs in the record, Slurm's allocation says how many the node had.
        let n = if r.gpus.is_empty() {
            let slurm_n = r.slurm.as_ref().and_then(|j| j.gpus_per_node).unwrap_or(0);
            s.slurm_gpus += slurm_n;
            f64::from(slurm_n)
        } else {
            r.gpus.len() as f64
        };
        s.gpu_hours = match (s.gpu_hours, node_hours) {
            (Some(sum), Some(h)) => Some(sum + n * h),
            (Some(sum), None) if n == 0.0 => Some(sum),
            _ => None,
        };
        s.energy_j = match (s.energy_j, r.energy_j) {
            (Some(sum), Some(e)) => Some(sum + e),
            (Some(sum), None) if r.gpus.is_empty() => Some(sum),
            _ => None,
        };
        for g in &r.gpus {
            if let Some(e) = &g.energy {
                s.sampled |= e.method == EnergyMethod::Sampled;
                s.counter_reset |= e.counter_reset;
            }
        }
        if let Some(c) = &r.cpu_energy {
            *s.cpu_j.get_or_insert(0.0) += c.cpu_joules;
            if let Some(d) = c.dram_joules {
                *s.dram_j.get_or_insert(0.0) += d;
            }
        }
        // Node clocks differ a little: each node's samples count from its own start.
        let offset = match (r.start_time(), s.start) {
            (Some(a), Some(b)) if a >= b => (a - b).num_milliseconds() as f64 / 1000.0,
            _ => 0.0,
        };
        for g in r.gpus.iter().filter(|g| !g.power_samples.is_empty()) {
            let label = if s.nodes > 1 {
                format!("{} GPU {}", r.node, g.index)
            } else {
                format!("GPU {}", g.index)
            };
            let samples = g
                .power_samples
                .iter()
                .map(|&[t, w]| [((t + offset) * 10.0).round() / 10.0, w])
                .collect();
            s.power.push((label, samples));
        }
        s.gpus.extend(r.gpus.iter().cloned());
        let expected = r
            .slurm
            .as_ref()
            .and_then(|j| j.nodes)
            .or_else(|| r.launcher.as_ref().and_then(Launcher::nodes));
        s.expected_nodes = s.expected_nodes.max(expected);
    }
    if s.gpus.is_empty() {
        s.energy_j = None;
    }
    s
}

fn gpu_json(gpus: &[GpuInfo]) -> Value {
    Value::Array(
        gpus.iter()
            .map(|g| {
                let mut o = serde_json::Map::new();
                if let Some(v) = &g.name {
                    o.insert("name".into(), json!(v));
                }
                if let Some(v) = g.memory_bytes {
                    o.insert("memory_bytes".into(), json!(v));
                }
                if let Some(v) = g.power_limit_w {
                    o.insert("power_limit_w".into(), json!(v));
                }
                if let Some(v) = &g.uuid {
                    o.insert("uuid".into(), json!(v));
                }
                Value::Object(o)
            })
            .collect(),
    )
}

fn set_host(facts: &mut Facts, host: &HostInfo, nvml: Option<&NvmlReport>, source: &Source) {
    let s = || source.clone();
    if let Some(v) = &host.cpu {
        facts.set(paths::HARDWARE_CPU, v.as_str(), s());
    }
    if let Some(v) = host.cpu_cores {
        facts.set(paths::HARDWARE_CPU_CORES, v, s());
    }
    if let Some(v) = host.ram_bytes {
        facts.set(paths::HARDWARE_RAM_BYTES, v, s());
    }
    if let Some(v) = &host.os {
        facts.set(paths::HARDWARE_OS, v.as_str(), s());
    }
    if let Some(v) = &host.hostname {
        facts.set(paths::HARDWARE_HOSTNAME, v.as_str(), s());
    }
    if let Some(n) = nvml.filter(|n| n.status == NvmlStatus::Ok) {
        if let Some(v) = &n.driver_version {
            facts.set(paths::HARDWARE_DRIVER_VERSION, v.as_str(), s());
        }
        if let Some(v) = &n.cuda_version {
            facts.set(paths::HARDWARE_CUDA_VERSION, v.as_str(), s());
        }
    }
}

fn slurm_method(ctx: &Context, what: &str) -> String {
    match ctx.slurm.as_ref().map(|j| j.method.as_str()) {
        Some(m) if !m.is_empty() => format!("{what} ({m})"),
        _ => what.to_owned(),
    }
}

/// Records written by `probe` end when they were written, often at the start of the job: their
/// end is the job's end once it finished, or now while it runs (this very job).
fn extend_probe_records(records: &mut [FoundRecord], ctx: &Context) {
    for found in records.iter_mut() {
        let r = &mut found.record;
        if r.kind != RecordKind::Probe {
            continue;
        }
        let Some(id) = r.slurm.as_ref().map(|j| j.job_id.clone()) else {
            continue;
        };
        let job = match &ctx.slurm {
            Some(j) if j.job_id == id => Some(j.clone()),
            _ => ctx.lookup_job.and_then(|lookup| lookup(&id)),
        };
        let Some(job) = job else { continue };
        let end = if job.is_finished() {
            job.end.as_deref().and_then(parse_time)
        } else {
            ctx.now
        };
        if let Some(end) = end.filter(|e| r.end_time().is_none_or(|old| *e > old)) {
            r.end = Some(crate::record::format_time(end));
            if r.start.is_none() {
                r.start = job.start.clone();
            }
            r.finish();
        }
    }
}

/// Hours evidence of one level of trust.
struct Hours {
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    hours: f64,
    source: Source,
}

/// Weighs everything into facts. Pure: the machine is observed in `ctx`.
pub fn assemble(dir: &Path, known: &Facts, options: &RunOptions, ctx: &Context) -> Facts {
    let mut facts = Facts::new();
    let record_dir = dir.join(RECORD_DIR);
    let (mut records, problems) = read_records(&record_dir);
    extend_probe_records(&mut records, ctx);
    for (file, problem) in problems {
        facts.warn(
            "run-record-malformed",
            format!("`{RECORD_DIR}/{file}` is not a cardfill run record: {problem}"),
        );
    }

    // Records grouped by run; the run with most GPUs describes the hardware.
    let mut by_run: BTreeMap<&str, Vec<&FoundRecord>> = BTreeMap::new();
    for r in &records {
        by_run.entry(r.record.run_key.as_str()).or_default().push(r);
    }
    let runs: Vec<RunSummary> = by_run.values().map(|rs| summarise(rs)).collect();
    let record_source = |what: &str| match records.as_slice() {
        [one] => Source::file(format!("{RECORD_DIR}/{}", one.file), what),
        many => {
            let files = many
                .iter()
                .map(|r| r.file.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            Source::file(
                RECORD_DIR,
                format!("{what}, {} run records ({files})", many.len()),
            )
        }
    };

    // ---- GPUs and host ----
    let flag_gpus = options.hardware.as_ref().map(|name| {
        let n = options.count.unwrap_or(1);
        (0..n)
            .map(|_| GpuInfo {
                name: Some(name.clone()),
                ..GpuInfo::default()
            })
            .collect::<Vec<_>>()
    });
    let biggest = runs.iter().max_by_key(|r| r.gpus.len());
    let mut gpu_count: Option<u32> = None;
    if let Some(gpus) = flag_gpus {
        gpu_count = u32::try_from(gpus.len()).ok();
        facts.set(
            paths::HARDWARE_GPUS,
            gpu_json(&gpus),
            Source::flag("--hardware"),
        );
        let src = if options.count.is_some() {
            "--count"
        } else {
            "--hardware"
        };
        facts.set(
            paths::HARDWARE_GPU_COUNT,
            gpus.len() as u64,
            Source::flag(src),
        );
    } else if let Some(count) = options.count {
        gpu_count = Some(count);
        facts.set(paths::HARDWARE_GPU_COUNT, count, Source::flag("--count"));
    } else if let Some(run) = biggest.filter(|r| !r.gpus.is_empty()) {
        gpu_count = u32::try_from(run.gpus.len()).ok();
        facts.set(
            paths::HARDWARE_GPUS,
            gpu_json(&run.gpus),
            record_source("NVML GPUs, summed over nodes"),
        );
        facts.set(
            paths::HARDWARE_GPU_COUNT,
            run.gpus.len() as u64,
            record_source("NVML GPUs, summed over nodes"),
        );
    } else if let Some(n) = runs.iter().map(|r| r.slurm_gpus).max().filter(|&n| n > 0) {
        gpu_count = Some(n);
        facts.set(
            paths::HARDWARE_GPU_COUNT,
            n,
            record_source("Slurm GPUs per node, summed over nodes"),
        );
    }
    if let Some(first) = records.first() {
        let nvml = records
            .iter()
            .map(|r| &r.record.nvml)
            .find(|n| n.status == NvmlStatus::Ok);
        set_host(&mut facts, &first.record.host, nvml, &record_source("host"));
    }
    match crate::wandb::read(dir) {
        Some(Ok(w)) => {
            let src = |what: &str| Source::file(w.file.as_str(), what);
            // Without records no host fact is set yet.
            if records.is_empty() {
                set_host(&mut facts, &w.host, None, &src("wandb run metadata"));
            }
            if gpu_count.is_none() {
                let n = w
                    .gpu_count
                    .or_else(|| u32::try_from(w.gpus.len()).ok())
                    .filter(|&n| n > 0);
                if let Some(n) = n {
                    gpu_count = Some(n);
                    facts.set(paths::HARDWARE_GPU_COUNT, n, src("gpu_count"));
                }
                if !w.gpus.is_empty() {
                    facts.set(paths::HARDWARE_GPUS, gpu_json(&w.gpus), src("gpu devices"));
                }
            }
        }
        Some(Err((file, problem))) => facts.warn(
            "wandb-metadata-malformed",
            format!("`{file}` is not wandb run metadata: {problem}"),
        ),
        None => {}
    }
    let slurm_gpus = ctx.slurm.as_ref().and_then(|j| {
        j.gpus_total
            .filter(|&n| n > 0)
            .or_else(|| Some(j.nodes.unwrap_or(1) * j.gpus_per_node?))
    });
    if gpu_count.is_none()
        && let Some(n) = slurm_gpus.filter(|&n| n > 0)
    {
        gpu_count = Some(n);
        facts.set(
            paths::HARDWARE_GPU_COUNT,
            n,
            Source::probe("slurm", slurm_method(ctx, "GPUs of the job")),
        );
    }
    if records.is_empty()
        && let Some(probe) = ctx.live
    {
        let (host, nvml, gpus) = &probe();
        let src = Source::probe("sysinfo", "this machine, inside the training job");
        set_host(&mut facts, host, Some(nvml), &src);
        if !gpus.is_empty() {
            let nvml_src = Source::probe("nvml", "GPUs of this machine used by the job");
            if !facts.contains(paths::HARDWARE_GPUS) {
                facts.set(paths::HARDWARE_GPUS, gpu_json(gpus), nvml_src.clone());
            }
            if gpu_count.is_none() {
                gpu_count = u32::try_from(gpus.len()).ok();
                facts.set(paths::HARDWARE_GPU_COUNT, gpus.len() as u64, nvml_src);
            }
        }
        if let Some(v) = &nvml.driver_version {
            facts.set(
                paths::HARDWARE_DRIVER_VERSION,
                v.as_str(),
                Source::probe("nvml", "nvmlSystemGetDriverVersion"),
            );
        }
    }

    // ---- nodes ----
    if let Some(n) = runs.iter().map(|r| r.nodes).max().filter(|&n| n > 0) {
        facts.set(paths::RUN_NODES, n as u64, record_source("nodes counted"));
        for run in &runs {
            if let Some(expected) = run.expected_nodes.filter(|&e| (e as usize) > run.nodes) {
                facts.warn(
                    "run-records-missing-nodes",
                    format!(
                        "`{RECORD_DIR}`: the run of {} has records from {} of {expected} nodes; \
                         GPUs, GPU-hours and energy count only those",
                        run.files.join(", "),
                        run.nodes
                    ),
                );
            }
        }
    } else if let Some(n) = ctx.slurm.as_ref().and_then(|j| j.nodes) {
        facts.set(
            paths::RUN_NODES,
            n,
            Source::probe("slurm", slurm_method(ctx, "nodes of the job")),
        );
    }

    // ---- hours, in order of trust ----
    let flag_start = options.start.as_deref().map(|s| (s, parse_time(s)));
    let flag_end = options.end.as_deref().map(|s| (s, parse_time(s)));
    for (flag, value) in [("--start", &flag_start), ("--end", &flag_end)] {
        if let Some((text, None)) = value {
            facts.warn(
                "flag-time-invalid",
                format!("{flag} `{text}` is not an RFC 3339 time (2026-11-27T08:00:00Z)"),
            );
        }
    }
    let fs = flag_start.and_then(|(_, t)| t);
    let fe = flag_end.and_then(|(_, t)| t);
    let mut levels: Vec<Hours> = Vec::new();
    if let Some(h) = options.hours {
        levels.push(Hours {
            start: fs,
            end: fe,
            hours: h,
            source: Source::flag("--hours"),
        });
    } else if let (Some(a), Some(b)) = (fs, fe)
        && let Some(h) = hours_between(a, b)
    {
        levels.push(Hours {
            start: Some(a),
            end: Some(b),
            hours: h,
            source: Source::flag("--start/--end"),
        });
    }
    let flags_gave_hours = !levels.is_empty();
    let record_hours: Vec<f64> = runs
        .iter()
        .filter_map(|r| hours_between(r.start?, r.end?))
        .collect();
    if !record_hours.is_empty() {
        levels.push(Hours {
            start: runs.iter().filter_map(|r| r.start).min(),
            end: runs.iter().filter_map(|r| r.end).max(),
            hours: record_hours.iter().sum(),
            source: record_source("start to end, summed over runs"),
        });
    }
    let job = ctx.slurm.as_ref();
    let job_start = job.and_then(|j| j.start.as_deref()).and_then(parse_time);
    let job_end = job.and_then(|j| j.end.as_deref()).and_then(parse_time);
    if let Some(j) = job.filter(|j| j.is_finished()) {
        let hours = j
            .elapsed_s
            .map(|s| s / 3600.0)
            .or_else(|| hours_between(job_start?, job_end?));
        if let Some(hours) = hours {
            levels.push(Hours {
                start: job_start,
                end: job_end,
                hours,
                source: Source::probe("slurm", format!("elapsed time of job {}", j.job_id)),
            });
        }
    }
    if let Some(fact) = known.get(paths::TRAINING_RUNTIME_S)
        && let Some(s) = fact.value.as_f64().filter(|s| *s > 0.0)
    {
        levels.push(Hours {
            start: None,
            end: None,
            hours: s / 3600.0,
            source: Source::derived(format!("training.runtime_s ({})", fact.source)),
        });
    }
    if let Some(j) = job.filter(|j| !j.is_finished()) {
        let so_far = j
            .elapsed_s
            .map(|s| s / 3600.0)
            .or_else(|| hours_between(job_start?, ctx.now?));
        if let Some(hours) = so_far {
            levels.push(Hours {
                start: job_start,
                end: None,
                hours,
                source: Source::probe("slurm", format!("hours so far of running job {}", j.job_id)),
            });
        }
    }
    if let Some(p) = &ctx.parent
        && let Some(hours) = ctx.now.and_then(|now| hours_between(p.start, now))
    {
        levels.push(Hours {
            start: Some(p.start),
            end: None,
            hours,
            source: Source::probe(
                "process",
                format!("start time of the calling process `{}` ({})", p.name, p.pid),
            ),
        });
    }

    if let Some(best) = levels.first() {
        facts.set(paths::RUN_HOURS, round4(best.hours), best.source.clone());
        let start = fs.or(best.start);
        let end = fe.or(best.end);
        let src = |flag: Option<DateTime<Utc>>, name: &str| {
            if flag.is_some() {
                Source::flag(name)
            } else {
                best.source.clone()
            }
        };
        if let Some(t) = start {
            facts.set(paths::RUN_START, rfc3339(t), src(fs, "--start"));
        }
        if let Some(t) = end {
            facts.set(paths::RUN_END, rfc3339(t), src(fe, "--end"));
        }
        // GPU-hours: per node from the records when they gave the hours, else hours × GPUs.
        let from_records = !record_hours.is_empty()
            && !flags_gave_hours
            && options.count.is_none()
            && options.hardware.is_none();
        let record_gpu_hours: Option<f64> = runs.iter().map(|r| r.gpu_hours).sum();
        if from_records && let Some(gh) = record_gpu_hours.filter(|g| *g > 0.0) {
            facts.set(
                paths::RUN_GPU_HOURS,
                round4(gh),
                record_source("Σ GPUs × hours per node"),
            );
        } else if let Some(n) = gpu_count.filter(|&n| n > 0) {
            facts.set(
                paths::RUN_GPU_HOURS,
                round4(best.hours * f64::from(n)),
                Source::derived("run.hours × hardware.gpu_count"),
            );
        }
    }

    // ---- energy ----
    let cpu_j: Option<f64> = runs.iter().filter_map(|r| r.cpu_j).reduce(|a, b| a + b);
    let dram_j: Option<f64> = runs.iter().filter_map(|r| r.dram_j).reduce(|a, b| a + b);
    if let Some(j) = cpu_j {
        facts.set(
            paths::RUN_CPU_ENERGY_KWH,
            j / 3_600_000.0,
            record_source("RAPL package counters (powercap), summed over nodes"),
        );
    }
    if let Some(j) = dram_j {
        facts.set(
            paths::RUN_RAM_ENERGY_KWH,
            j / 3_600_000.0,
            record_source("RAPL DRAM counters (powercap), summed over nodes"),
        );
    }
    // ---- power over time: the run with most sampled GPUs (the latest of equals) ----
    if let Some(run) = runs
        .iter()
        .filter(|r| !r.power.is_empty())
        .max_by_key(|r| (r.power.len(), r.start))
    {
        let series: Vec<Value> = run
            .power
            .iter()
            .map(|(gpu, samples)| json!({ "gpu": gpu, "samples": samples }))
            .collect();
        facts.set(
            paths::RUN_POWER,
            series,
            record_source("NVML power samples of each GPU"),
        );
    }
    if runs.iter().any(|r| !r.gpus.is_empty()) {
        let total: Option<f64> = runs
            .iter()
            .filter(|r| !r.gpus.is_empty())
            .map(|r| r.energy_j)
            .sum();
        match total {
            Some(j) => {
                let sampled = runs.iter().any(|r| r.sampled);
                let method = if sampled { "sampled" } else { "measured" };
                let how = if sampled {
                    "GPU power sampled by NVML, summed over GPUs and nodes"
                } else {
                    "NVML energy counters, summed over GPUs and nodes"
                };
                facts.set(paths::RUN_ENERGY_KWH, j / 3_600_000.0, record_source(how));
                facts.set(paths::RUN_ENERGY_METHOD, method, record_source(how));
            }
            None => facts.warn(
                "energy-incomplete",
                format!(
                    "`{RECORD_DIR}`: some GPUs have no energy figure (probe records, or no \
                     counter and no power reading); energy is left to the estimate"
                ),
            ),
        }
        if runs.iter().any(|r| r.counter_reset) {
            facts.warn(
                "energy-counter-reset",
                format!(
                    "`{RECORD_DIR}`: a GPU energy counter was reset during the run (driver \
                     reload); its energy counts from the reset only"
                ),
            );
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::counter_energy;
    use crate::record::{RecordKind, SlurmInfo, write_record};

    fn gpus(n: u32, node: &str, joules: f64) -> Vec<GpuInfo> {
        (0..n)
            .map(|i| GpuInfo {
                index: i,
                uuid: Some(format!("GPU-{node}-{i}")),
                name: Some("NVIDIA H100 80GB HBM3".into()),
                memory_bytes: Some(85_520_809_984),
                power_limit_w: Some(700.0),
                energy: Some(counter_energy(0, (joules * 1000.0) as u64)),
                ..GpuInfo::default()
            })
            .collect()
    }

    fn node_record(
        node: &str,
        key: &str,
        start: &str,
        end: &str,
        n: u32,
        joules: f64,
    ) -> RunRecord {
        let mut r = RunRecord::new(RecordKind::Run, node.into(), key.into());
        r.start = Some(start.into());
        r.end = Some(end.into());
        r.gpus = gpus(n, node, joules);
        r.host.cpu = Some("AMD EPYC 7763 64-Core Processor".into());
        r.host.ram_bytes = Some(2_000_000_000_000);
        r.nvml.status = NvmlStatus::Ok;
        r.nvml.driver_version = Some("550.54.15".into());
        r.nvml.cuda_version = Some("12.4".into());
        r.finish();
        r
    }

    fn ckpt_with(records: Vec<RunRecord>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for r in records {
            write_record(&dir.path().join(RECORD_DIR), r).unwrap();
        }
        dir
    }

    /// The facts of a checkpoint holding `records`, with no other evidence.
    fn facts_of(records: Vec<RunRecord>) -> Facts {
        let dir = ckpt_with(records);
        assemble(
            dir.path(),
            &Facts::new(),
            &RunOptions::default(),
            &Context::default(),
        )
    }

    fn runtime(seconds: f64) -> Facts {
        let mut known = Facts::new();
        known.set(
            paths::TRAINING_RUNTIME_S,
            seconds,
            Source::file("trainer_state.json", "train_runtime"),
        );
        known
    }

    #[test]
    fn power_samples_become_one_series_per_gpu_on_the_run_clock() {
        let mut a = node_record(
            "n1",
            "slurm-9",
            "2026-11-27T08:00:00Z",
            "2026-11-27T08:00:20Z",
            2,
            7000.0,
        );
        a.gpus[0].power_samples = vec![[0.0, 300.0], [10.0, 350.0], [20.0, 340.0]];
        // GPU 1 has no samples (no power reading): no series.
        let mut b = node_record(
            "n2",
            "slurm-9",
            "2026-11-27T08:00:05Z",
            "2026-11-27T08:00:25Z",
            1,
            7000.0,
        );
        b.gpus[0].power_samples = vec![[0.0, 200.0], [20.0, 250.0]];
        let f = facts_of(vec![a, b]);
        assert_eq!(
            f.value(paths::RUN_POWER),
            Some(&json!([
                {"gpu": "n1 GPU 0", "samples": [[0.0, 300.0], [10.0, 350.0], [20.0, 340.0]]},
                // n2 started 5 s after the run.
                {"gpu": "n2 GPU 0", "samples": [[5.0, 200.0], [25.0, 250.0]]},
            ]))
        );
        // Energy still comes from the counters.
        assert_eq!(f.str(paths::RUN_ENERGY_METHOD), Some("measured"));
        let none = facts_of(vec![node_record(
            "n1",
            "slurm-9",
            "2026-11-27T08:00:00Z",
            "2026-11-27T09:00:00Z",
            1,
            1.0,
        )]);
        assert!(!none.contains(paths::RUN_POWER));
    }

    #[test]
    fn two_nodes_are_summed() {
        let mut a = node_record(
            "n1",
            "slurm-9",
            "2026-11-27T08:00:00Z",
            "2026-11-27T10:00:00Z",
            8,
            3.6e6,
        );
        a.slurm = Some(SlurmInfo {
            job_id: "9".into(),
            nodes: Some(2),
            ..SlurmInfo::default()
        });
        let b = node_record(
            "n2",
            "slurm-9",
            "2026-11-27T08:00:00Z",
            "2026-11-27T09:00:00Z",
            4,
            1.8e6,
        );
        let f = facts_of(vec![a, b]);
        assert_eq!(f.u64(paths::RUN_NODES), Some(2));
        assert_eq!(f.u64(paths::HARDWARE_GPU_COUNT), Some(12));
        assert_eq!(f.f64(paths::RUN_HOURS), Some(2.0));
        assert_eq!(f.f64(paths::RUN_GPU_HOURS), Some(8.0 * 2.0 + 4.0 * 1.0));
        // (8 × 3.6 MJ + 4 × 1.8 MJ) = 36 MJ = 10 kWh
        assert_eq!(f.f64(paths::RUN_ENERGY_KWH), Some(10.0));
        assert_eq!(f.str(paths::RUN_ENERGY_METHOD), Some("measured"));
        assert_eq!(f.str(paths::RUN_START), Some("2026-11-27T08:00:00Z"));
        assert_eq!(f.str(paths::RUN_END), Some("2026-11-27T10:00:00Z"));
        assert_eq!(f.str(paths::HARDWARE_DRIVER_VERSION), Some("550.54.15"));
        assert_eq!(
            f.value(paths::HARDWARE_GPUS)
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            12
        );
        assert!(f.warnings().is_empty(), "{:?}", f.warnings());
        assert!(matches!(
            f.get(paths::RUN_HOURS).unwrap().source,
            Source::File { .. }
        ));
    }

    #[test]
    fn a_missing_node_is_a_warning() {
        let mut a = node_record(
            "n1",
            "slurm-9",
            "2026-11-27T08:00:00Z",
            "2026-11-27T09:00:00Z",
            2,
            1.0,
        );
        a.slurm = Some(SlurmInfo {
            job_id: "9".into(),
            nodes: Some(2),
            ..SlurmInfo::default()
        });
        let f = facts_of(vec![a]);
        assert_eq!(f.warnings()[0].code, "run-records-missing-nodes");
    }

    #[test]
    fn resumed_runs_add_hours() {
        let a = node_record(
            "n1",
            "slurm-1",
            "2026-11-27T00:00:00Z",
            "2026-11-27T03:00:00Z",
            8,
            1.0,
        );
        let b = node_record(
            "n1",
            "slurm-2",
            "2026-11-28T00:00:00Z",
            "2026-11-28T01:00:00Z",
            8,
            1.0,
        );
        let f = facts_of(vec![a, b]);
        assert_eq!(f.f64(paths::RUN_HOURS), Some(4.0));
        assert_eq!(f.f64(paths::RUN_GPU_HOURS), Some(32.0));
        assert_eq!(f.u64(paths::HARDWARE_GPU_COUNT), Some(8));
        assert_eq!(f.u64(paths::RUN_NODES), Some(1));
    }

    #[test]
    fn flags_beat_records_which_beat_slurm_which_beats_the_trainer() {
        let rec = node_record(
            "n1",
            "k",
            "2026-11-27T08:00:00Z",
            "2026-11-27T10:00:00Z",
            2,
            1.0,
        );
        let dir = ckpt_with(vec![rec]);
        let finished_job = Context {
            slurm: Some(SlurmJob {
                job_id: "5".into(),
                start: Some("2026-11-27T07:00:00Z".into()),
                end: Some("2026-11-27T12:00:00Z".into()),
                nodes: Some(1),
                gpus_per_node: Some(4),
                elapsed_s: Some(18_000.0),
                ..SlurmJob::default()
            }),
            ..Context::default()
        };
        let known = runtime(3600.0);
        let flags = RunOptions {
            hours: Some(7.5),
            ..RunOptions::default()
        };
        let f = assemble(dir.path(), &known, &flags, &finished_job);
        assert_eq!(f.f64(paths::RUN_HOURS), Some(7.5));
        assert_eq!(
            f.get(paths::RUN_HOURS).unwrap().source,
            Source::flag("--hours")
        );
        assert_eq!(f.f64(paths::RUN_GPU_HOURS), Some(15.0));

        let f = assemble(dir.path(), &known, &RunOptions::default(), &finished_job);
        assert_eq!(f.f64(paths::RUN_HOURS), Some(2.0));

        let empty = tempfile::tempdir().unwrap();
        let f = assemble(empty.path(), &known, &RunOptions::default(), &finished_job);
        assert_eq!(f.f64(paths::RUN_HOURS), Some(5.0));
        assert_eq!(f.u64(paths::HARDWARE_GPU_COUNT), Some(4));
        assert_eq!(f.f64(paths::RUN_GPU_HOURS), Some(20.0));
        assert_eq!(f.str(paths::RUN_START), Some("2026-11-27T07:00:00Z"));

        let f = assemble(
            empty.path(),
            &known,
            &RunOptions::default(),
            &Context::default(),
        );
        assert_eq!(f.f64(paths::RUN_HOURS), Some(1.0));
        assert!(matches!(
            f.get(paths::RUN_HOURS).unwrap().source,
            Source::Derived { .. }
        ));
        assert!(!f.contains(paths::RUN_GPU_HOURS));
    }

    #[test]
    fn trainer_beats_a_running_job_which_beats_the_parent_process() {
        let now = parse_time("2026-11-27T10:00:00Z");
        let running = Context {
            slurm: Some(SlurmJob {
                job_id: "5".into(),
                start: Some("2026-11-27T08:00:00Z".into()),
                ..SlurmJob::default()
            }),
            parent: Some(ParentProcess {
                name: "python3".into(),
                pid: 4,
                start: parse_time("2026-11-27T09:30:00Z").unwrap(),
            }),
            now,
            ..Context::default()
        };
        let empty = tempfile::tempdir().unwrap();
        let f = assemble(
            empty.path(),
            &runtime(1800.0),
            &RunOptions::default(),
            &running,
        );
        assert_eq!(f.f64(paths::RUN_HOURS), Some(0.5));
        let f = assemble(
            empty.path(),
            &Facts::new(),
            &RunOptions::default(),
            &running,
        );
        assert_eq!(f.f64(paths::RUN_HOURS), Some(2.0));
        assert!(!f.contains(paths::RUN_END));
        let parent_only = Context {
            slurm: None,
            ..running
        };
        let f = assemble(
            empty.path(),
            &Facts::new(),
            &RunOptions::default(),
            &parent_only,
        );
        assert_eq!(f.f64(paths::RUN_HOURS), Some(0.5));
        assert_eq!(f.str(paths::RUN_START), Some("2026-11-27T09:30:00Z"));
        let f = assemble(
            empty.path(),
            &Facts::new(),
            &RunOptions::default(),
            &Context::default(),
        );
        assert!(!f.contains(paths::RUN_HOURS));
    }

    #[test]
    fn start_and_end_flags_give_hours_and_bad_ones_warn() {
        let empty = tempfile::tempdir().unwrap();
        let flags = RunOptions {
            start: Some("2026-11-27T08:00:00+01:00".into()),
            end: Some("2026-11-27T09:30:00Z".into()),
            count: Some(8),
            ..RunOptions::default()
        };
        let f = assemble(empty.path(), &Facts::new(), &flags, &Context::default());
        assert_eq!(f.f64(paths::RUN_HOURS), Some(2.5));
        assert_eq!(f.f64(paths::RUN_GPU_HOURS), Some(20.0));
        assert_eq!(f.str(paths::RUN_START), Some("2026-11-27T07:00:00Z"));
        let bad = RunOptions {
            start: Some("monday".into()),
            ..RunOptions::default()
        };
        let f = assemble(empty.path(), &Facts::new(), &bad, &Context::default());
        assert_eq!(f.warnings()[0].code, "flag-time-invalid");
    }

    #[test]
    fn wandb_metadata_names_the_gpus_when_nothing_better_does() {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("wandb/run-20261127_080000-x/files");
        std::fs::create_dir_all(&files).unwrap();
        std::fs::write(
            files.join("wandb-metadata.json"),
            r#"{"gpu_count": 2, "cpu_count": 48, "host": "dcs4722",
                "gpu_devices": [{"name": "NVIDIA A100-SXM4-80GB", "memory_total": 85899345920},
                                {"name": "NVIDIA A100-SXM4-80GB", "memory_total": 85899345920}]}"#,
        )
        .unwrap();
        let f = assemble(
            dir.path(),
            &runtime(7200.0),
            &RunOptions::default(),
            &Context::default(),
        );
        assert_eq!(f.u64(paths::HARDWARE_GPU_COUNT), Some(2));
        assert_eq!(f.u64(paths::HARDWARE_CPU_CORES), Some(48));
        assert_eq!(f.f64(paths::RUN_GPU_HOURS), Some(4.0));
        assert_eq!(
            f.get(paths::HARDWARE_GPU_COUNT).unwrap().source,
            Source::file(
                "wandb/run-20261127_080000-x/files/wandb-metadata.json",
                "gpu_count"
            )
        );
        // A run record outranks it.
        let rec = node_record(
            "n1",
            "k",
            "2026-11-27T08:00:00Z",
            "2026-11-27T09:00:00Z",
            8,
            1.0,
        );
        write_record(&dir.path().join(RECORD_DIR), rec).unwrap();
        let f = assemble(
            dir.path(),
            &Facts::new(),
            &RunOptions::default(),
            &Context::default(),
        );
        assert_eq!(f.u64(paths::HARDWARE_GPU_COUNT), Some(8));
        assert_eq!(f.str(paths::HARDWARE_HOSTNAME), None);
    }

    #[test]
    fn probe_records_end_with_the_job() {
        let mut r = node_record(
            "n1",
            "slurm-5",
            "2026-11-27T08:00:00Z",
            "2026-11-27T08:00:05Z",
            4,
            0.0,
        );
        r.kind = RecordKind::Probe;
        for g in &mut r.gpus {
            g.energy = None;
        }
        r.slurm = Some(SlurmInfo {
            job_id: "5".into(),
            ..SlurmInfo::default()
        });
        r.finish();
        let dir = ckpt_with(vec![r]);
        let running = Context {
            slurm: Some(SlurmJob {
                job_id: "5".into(),
                state: Some("RUNNING".into()),
                start: Some("2026-11-27T08:00:00Z".into()),
                ..SlurmJob::default()
            }),
            now: parse_time("2026-11-27T11:00:00Z"),
            ..Context::default()
        };
        let f = assemble(dir.path(), &Facts::new(), &RunOptions::default(), &running);
        assert_eq!(f.f64(paths::RUN_HOURS), Some(3.0));
        assert_eq!(f.f64(paths::RUN_GPU_HOURS), Some(12.0));
        assert!(!f.contains(paths::RUN_ENERGY_KWH));

        fn finished(id: &str) -> Option<SlurmJob> {
            Some(SlurmJob {
                job_id: id.into(),
                state: Some("COMPLETED".into()),
                end: Some("2026-11-27T10:00:00Z".into()),
                ..SlurmJob::default()
            })
        }
        let after = Context {
            lookup_job: Some(finished),
            ..Context::default()
        };
        let f = assemble(dir.path(), &Facts::new(), &RunOptions::default(), &after);
        assert_eq!(f.f64(paths::RUN_HOURS), Some(2.0));
        assert_eq!(f.str(paths::RUN_END), Some("2026-11-27T10:00:00Z"));
    }

    #[test]
    fn training_processes_are_recognised() {
        let torch = "7f00-7f01 r-xp 0 08:01 12 /venv/lib/python3.11/site-packages/torch/lib/libtorch_cpu.so";
        assert!(is_training_process("python3.11", torch));
        assert!(is_training_process("torchrun", torch));
        assert!(!is_training_process(
            "python3",
            "7f00-7f01 r-xp 0 08:01 12 /usr/lib/libc.so.6"
        ));
        assert!(!is_training_process("bash", torch));
    }
}
