//! `cardfill run`: runs a command with stdin, stdout, stderr, signals and the exit code passed
//! through, and records the node's hardware, times and energy; `cardfill probe`: the node's
//! record without a command.
//!
//! Overhead: one thread blocks waiting for signals, the main thread blocks in `waitid`, and
//! one thread polls the NVML GPUs' power every [`POWER_POLL_INTERVAL`]: the samples integrate
//! the energy of GPUs without an energy counter, and a thinned series of every GPU's power
//! goes into the record (the training figure draws it). Energy counters are read only at the
//! start and end, as before; AMD SMI GPUs are read only there too (no power series).

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;

use crate::gpu::{EnergyMethod, GpuEnergy, GpuProbe, GpuSelection, PowerTrace, counter_energy};
use crate::host::HostInfo;
use crate::record::{
    Launcher, RecordKind, RunRecord, SlurmInfo, format_time, write_record_checked,
};
use crate::{HardwareError, current_job};

/// How often the GPUs are polled for power.
pub const POWER_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// Signals passed on to the command.
const FORWARDED: [i32; 6] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// What `run_command` did.
#[derive(Debug)]
pub struct RunOutcome {
    /// The exit code to exit with: the command's, or 128 + the signal that killed it.
    pub exit_code: u8,
    /// The record written, if one was.
    pub record_path: Option<PathBuf>,
    /// Why no record was written, or what went wrong writing it (the command's outcome stands).
    pub problem: Option<HardwareError>,
    /// The record (also when it could not be written).
    pub record: RunRecord,
    /// Odd lock or record files skipped, a lock not taken in time.
    pub warnings: Vec<String>,
}

/// Where this process sits in the cluster: node name, run key, and whether it writes.
struct Placement {
    node: String,
    run_key: String,
    writes: bool,
}

fn placement(
    host: &HostInfo,
    get: &impl Fn(&str) -> Option<String>,
    fallback_key: String,
) -> Placement {
    let set = |k: &str| {
        get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let node = set("SLURMD_NODENAME")
        .or_else(|| host.hostname.clone())
        .unwrap_or_else(|| "localhost".to_owned());
    // `cardfill run` hands its key to the command, so a training integration inside it
    // writes into the same record (no double count).
    let shared = set(RUN_KEY_VAR)
        .or_else(|| set("SLURM_JOB_ID").map(|id| format!("slurm-{id}")))
        .or_else(|| {
            set("TORCHELASTIC_RUN_ID")
                .filter(|id| id != "none")
                .map(|id| format!("torchelastic-{id}"))
        });
    match shared {
        Some(run_key) => Placement {
            node,
            run_key,
            writes: true,
        },
        // Without a key shared by the ranks, only local rank 0 writes.
        None => Placement {
            node,
            run_key: fallback_key,
            writes: set("LOCAL_RANK").is_none_or(|r| r == "0"),
        },
    }
}

/// The run key `cardfill run` passes to its command (and `probe --end` reads).
pub const RUN_KEY_VAR: &str = "CARDFILL_RUN_KEY";

pub(crate) fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// A record of this node now: host, GPUs and Slurm job, without a command.
pub(crate) fn base_record(
    kind: RecordKind,
    probe: &GpuProbe,
    host: HostInfo,
    fallback_key: String,
) -> (RunRecord, bool) {
    let place = placement(&host, &env_var, fallback_key);
    let mut record = RunRecord::new(kind, place.node, place.run_key);
    record.host = host;
    record.nvml = probe.report.clone();
    record.gpus = probe.gpus.clone();
    record.launcher = Launcher::from_env(&env_var);
    (record, place.writes)
}

pub(crate) fn lone_key(start: chrono::DateTime<Utc>) -> String {
    format!("{}-{}", start.format("%Y%m%dT%H%M%SZ"), std::process::id())
}

/// `cardfill probe`: writes this node's record (hardware, and the Slurm job so far) into the
/// record folder `dir` (unless another local rank writes it). Also returns warnings: odd lock
/// or record files skipped, a lock not taken in time.
pub fn probe_node(dir: &Path) -> Result<(RunRecord, Option<PathBuf>, Vec<String>), HardwareError> {
    let now = Utc::now();
    let probe = GpuProbe::open(&GpuSelection::from_env(env_var));
    let (mut record, writes) =
        base_record(RecordKind::Probe, &probe, HostInfo::probe(), lone_key(now));
    let job = current_job().map(SlurmInfo::from);
    record.start = job.as_ref().and_then(|j| j.start.clone());
    record.end = Some(format_time(now));
    record.slurm = job;
    record.finish();
    if !writes {
        return Ok((record, None, Vec::new()));
    }
    let (written, warnings) = write_record_checked(dir, record.clone());
    Ok((record, Some(written?), warnings))
}

/// Shared between the waiting thread and the signal thread, so that a signal is never sent to
/// a process id that was reaped and reused.
#[derive(Default)]
struct ChildState {
    pid: Option<rustix::process::Pid>,
    /// The command leads its own process group: signals go to the whole group.
    group: bool,
    done: bool,
    pending: Vec<i32>,
}

fn send(state: &mut ChildState, sig: i32) {
    match state.pid {
        Some(pid) if !state.done => {
            if let Some(sig) = rustix::process::Signal::from_named_raw(sig) {
                let sent = if state.group {
                    rustix::process::kill_process_group(pid, sig)
                } else {
                    Err(rustix::io::Errno::SRCH)
                };
                if sent.is_err() {
                    let _ = rustix::process::kill_process(pid, sig);
                }
            }
        }
        Some(_) => {}
        None => state.pending.push(sig),
    }
}

/// Signals ignored by this process (`SigIgn` of `/proc/self/status`): left alone so the
/// command inherits them ignored, as under `nohup`.
fn ignored_signals() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Runs `command` (program and arguments) and writes the node's run record into the record
/// folder `dir` when it ends, however it ends. Fails only when the command cannot start.
///
/// Without a terminal on stdin the command leads its own process group: forwarded signals
/// reach its workers too, and when it exits, members of the group still running get SIGTERM,
/// then SIGKILL after `grace`. On a terminal the command stays in the terminal's foreground
/// group, which the terminal signals whole.
pub fn run_command(
    command: &[OsString],
    dir: &Path,
    grace: Duration,
) -> Result<RunOutcome, HardwareError> {
    let Some((program, args)) = command.split_first() else {
        return Err(HardwareError::Spawn {
            program: String::new(),
            message: "no command given".to_owned(),
        });
    };
    let group = !std::io::IsTerminal::is_terminal(&std::io::stdin());
    let state = Arc::new(Mutex::new(ChildState {
        group,
        ..ChildState::default()
    }));

    let ignored = ignored_signals();
    let watched: Vec<i32> = FORWARDED
        .iter()
        .copied()
        .filter(|s| ignored & (1u64 << (s - 1)) == 0)
        .collect();
    let signals = SignalsInfo::<WithOrigin>::new(&watched).map_err(|e| HardwareError::Spawn {
        program: program.to_string_lossy().into_owned(),
        message: format!("cannot watch signals: {e}"),
    })?;
    let handle = signals.handle();
    let forwarder = {
        let state = Arc::clone(&state);
        let mut signals = signals;
        std::thread::spawn(move || {
            for origin in signals.forever() {
                // A terminal's ^C reaches the whole foreground process group, the command
                // included; sending it again would deliver it twice.
                if !group && matches!(origin.cause, Cause::Kernel) {
                    continue;
                }
                if let Ok(mut s) = state.lock() {
                    send(&mut s, origin.signal);
                }
            }
        })
    };

    // RAPL is a few sysfs reads: read it before the command starts.
    let rapl = crate::rapl::RaplProbe::open();
    let rapl_start = rapl.read();
    let start = Utc::now();
    let started = Instant::now();
    let run_key = placement(&HostInfo::default(), &env_var, lone_key(start)).run_key;
    let mut cmd = Command::new(program);
    cmd.args(args).env(RUN_KEY_VAR, &run_key);
    if group {
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    }
    let spawned = cmd.spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            handle.close();
            let _ = forwarder.join();
            return Err(HardwareError::Spawn {
                program: program.to_string_lossy().into_owned(),
                message: e.to_string(),
            });
        }
    };
    let pid = rustix::process::Pid::from_raw(child.id() as i32);
    if let Ok(mut s) = state.lock() {
        s.pid = pid;
        for sig in std::mem::take(&mut s.pending) {
            send(&mut s, sig);
        }
    }

    // Probe after the command started: it must not wait for NVML.
    let probe = GpuProbe::open(&GpuSelection::from_env(env_var));
    let counters_start = probe.energy_counters();
    // AMD GPUs through AMD SMI, where NVML has none.
    let amd = probe.gpus.is_empty().then(crate::amd::AmdProbe::open);
    let amd_start = amd
        .as_ref()
        .map(|a| a.energy_counters())
        .unwrap_or_default();
    let polled = !probe.gpus.is_empty();

    let (status, samples) = std::thread::scope(|scope| {
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let poller = polled.then(|| {
            let probe = &probe;
            scope.spawn(move || {
                let mut samples = vec![PowerTrace::default(); probe.gpus.len()];
                // One sample every interval, and a last one once the command ended.
                let mut stopped = false;
                loop {
                    let t = started.elapsed().as_secs_f64();
                    for (i, w) in probe.power_w().into_iter().enumerate() {
                        if let Some(w) = w {
                            samples[i].push(t, w);
                        }
                    }
                    if stopped {
                        return samples;
                    }
                    stopped = !matches!(
                        stop_rx.recv_timeout(POWER_POLL_INTERVAL),
                        Err(mpsc::RecvTimeoutError::Timeout)
                    );
                }
            })
        });
        let status = wait_child(&mut child, pid, &state, group.then_some(grace));
        drop(stop_tx);
        let samples = poller.and_then(|p| p.join().ok()).unwrap_or_default();
        (status, samples)
    });
    let end = Utc::now();
    let counters_end = probe.energy_counters();
    let rapl_end = rapl.read();
    let amd_end = amd
        .as_ref()
        .map(|a| a.energy_counters())
        .unwrap_or_default();
    handle.close();
    let _ = forwarder.join();

    let (mut record, writes) = base_record(RecordKind::Run, &probe, HostInfo::probe(), run_key);
    for (i, gpu) in record.gpus.iter_mut().enumerate() {
        gpu.power_samples = samples.get(i).map(PowerTrace::series).unwrap_or_default();
        // The counter where it was read at both ends; the samples only without one.
        gpu.energy = match (
            counters_start.get(i).copied().flatten(),
            counters_end.get(i).copied().flatten(),
        ) {
            (Some(s), Some(e)) => Some(counter_energy(s, e)),
            _ => samples.get(i).filter(|s| s.count >= 2).map(|s| GpuEnergy {
                method: EnergyMethod::Sampled,
                joules: s.joules,
                samples: u32::try_from(s.count).ok(),
                ..GpuEnergy::default()
            }),
        };
    }
    record.cpu_energy = rapl.energy(&rapl_start, &rapl_end);
    if let Some(amd) = amd.filter(|a| a.report.status != crate::gpu::NvmlStatus::Absent) {
        if record.gpus.is_empty() {
            record.gpus = amd.gpus_with_energy(&amd_start, &amd_end);
        }
        record.amdsmi = Some(amd.report.clone());
    }
    record.start = Some(format_time(start));
    record.end = Some(format_time(end));
    record.command = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let exit_code = match &status {
        Ok(st) => match (st.code(), st.signal()) {
            (Some(code), _) => {
                record.exit_code = Some(code);
                u8::try_from(code & 0xff).unwrap_or(1)
            }
            (None, Some(sig)) => {
                record.signal = Some(sig);
                u8::try_from((128 + sig) & 0xff).unwrap_or(1)
            }
            (None, None) => 1,
        },
        Err(_) => 1,
    };
    record.slurm = current_job().map(SlurmInfo::from);
    record.finish();

    let mut warnings = Vec::new();
    let (record_path, problem) = if let Err(e) = status {
        (None, Some(e))
    } else if writes {
        let (written, w) = write_record_checked(dir, record.clone());
        warnings = w;
        match written {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    Ok(RunOutcome {
        exit_code,
        record_path,
        problem,
        record,
        warnings,
    })
}

/// Waits for the child without reaping it, marks it done, ends what is left of its process
/// group (SIGTERM, then SIGKILL after `grace`; only when it leads its own group), then reaps
/// it. The unreaped child keeps its pid, and so the group's id, from being reused.
fn wait_child(
    child: &mut std::process::Child,
    pid: Option<rustix::process::Pid>,
    state: &Mutex<ChildState>,
    grace: Option<Duration>,
) -> Result<std::process::ExitStatus, HardwareError> {
    if let Some(pid) = pid {
        use rustix::process::{WaitId, WaitIdOptions, waitid};
        // Interrupted by a signal (forwarded meanwhile): wait again.
        while let Err(rustix::io::Errno::INTR) = waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {}
    }
    if let Ok(mut s) = state.lock() {
        s.done = true;
    }
    if let (Some(pid), Some(grace)) = (pid, grace) {
        end_group(pid, grace);
    }
    child.wait().map_err(|e| HardwareError::Spawn {
        program: format!("pid {}", child.id()),
        message: format!("cannot wait for the command: {e}"),
    })
}

/// Members of the process group `pgid` still running: SIGTERM, then SIGKILL after `grace`.
fn end_group(pgid: rustix::process::Pid, grace: Duration) {
    use rustix::process::{Signal, kill_process_group, test_kill_process_group};
    // The leader is a zombie: the group "exists" while any member does, the zombie included;
    // a signal to a group of zombies alone is harmless.
    if kill_process_group(pgid, Signal::TERM).is_err() {
        return;
    }
    let started = Instant::now();
    while started.elapsed() < grace {
        if !group_has_live_members(pgid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if test_kill_process_group(pgid).is_ok() {
        let _ = kill_process_group(pgid, Signal::KILL);
    }
}

/// Whether a process other than a zombie is in the group `pgid` (`/proc`; when it cannot
/// tell, assume so).
fn group_has_live_members(pgid: rustix::process::Pid) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    let want = pgid.as_raw_nonzero().get();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`: comm may hold spaces and parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|f| f.parse::<i32>().ok());
        if pgrp == Some(want) && state != Some("Z") {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostInfo {
        HostInfo {
            hostname: Some("gpu-box".into()),
            ..HostInfo::default()
        }
    }

    #[test]
    fn slurm_ranks_share_one_record_per_node() {
        let env = |k: &str| match k {
            "SLURMD_NODENAME" => Some("n2".to_owned()),
            "SLURM_JOB_ID" => Some("42".to_owned()),
            "LOCAL_RANK" => Some("3".to_owned()),
            _ => None,
        };
        let p = placement(&host(), &env, "lone".into());
        assert_eq!(
            (p.node.as_str(), p.run_key.as_str(), p.writes),
            ("n2", "slurm-42", true)
        );
    }

    #[test]
    fn without_a_shared_key_only_local_rank_zero_writes() {
        let rank = |r: &'static str| move |k: &str| (k == "LOCAL_RANK").then(|| r.to_owned());
        let p = placement(&host(), &rank("1"), "lone".into());
        assert!(!p.writes);
        let p = placement(&host(), &rank("0"), "lone".into());
        assert!(p.writes);
        assert_eq!((p.node.as_str(), p.run_key.as_str()), ("gpu-box", "lone"));
    }

    #[test]
    fn torchelastic_run_id_ties_ranks_together() {
        let env = |k: &str| (k == "TORCHELASTIC_RUN_ID").then(|| "abc".to_owned());
        let p = placement(&host(), &env, "lone".into());
        assert_eq!(p.run_key, "torchelastic-abc");
    }
}
