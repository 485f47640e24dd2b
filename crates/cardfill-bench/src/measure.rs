//! Timing and peak memory of whole processes.
//!
//! Peak memory comes from `wait4`'s `ru_maxrss`. Linux folds the memory of the image a process
//! replaces at `exec` into that figure, so a child spawned straight from this (larger) process
//! would report at least our own peak. Each measured command is therefore started by a fresh,
//! small copy of this binary (`cardfill-bench __measure -- CMD…`) that spawns it, reaps it with
//! `wait4` and prints one line: spawn and reap times (monotonic ns), wait status, peak RSS (KiB),
//! user and system CPU (µs). The `__measure` floor (spawning `true`) is printed beside the results.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};

/// One measured run of a command.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Monotonic time just before the spawn (ns).
    pub start_ns: u64,
    /// Monotonic time just after `wait4` returned (ns).
    pub end_ns: u64,
    /// Peak resident set size (KiB).
    pub maxrss_kib: u64,
    /// User plus system CPU time of the process and the children it reaped (µs).
    pub cpu_us: u64,
    /// Exit code, or `None` when a signal ended it.
    pub code: Option<i32>,
    /// Blocks read from storage (`ru_inblock`, 512-byte units): 0 from a warm cache.
    pub inblock: u64,
}

impl Sample {
    /// Wall time in milliseconds.
    pub fn wall_ms(&self) -> f64 {
        (self.end_ns.saturating_sub(self.start_ns)) as f64 / 1e6
    }
}

/// Monotonic clock (the same clock in every process of this machine), in ns.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `__measure -- CMD ARGS…`: runs CMD with null stdio, reaps it, prints the sample line.
#[allow(clippy::print_stdout)]
pub fn launcher_main(cmd: &[OsString]) -> ExitCode {
    let Some((program, args)) = cmd.split_first() else {
        println!("error no command");
        return ExitCode::from(2);
    };
    let start_ns = now_ns();
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            println!("error cannot start `{}`: {e}", program.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped; the pointers are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            println!("error wait4: {err}");
            return ExitCode::from(2);
        }
    }
    let end_ns = now_ns();
    let tv_us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    println!(
        "ok {start_ns} {end_ns} {code} {} {} {}",
        ru.ru_maxrss,
        tv_us(ru.ru_utime) + tv_us(ru.ru_stime),
        ru.ru_inblock
    );
    ExitCode::SUCCESS
}

/// `__stamp FILE`: appends the monotonic time to FILE (marks when a wrapped command ran).
pub fn stamp_main(file: &OsStr) -> ExitCode {
    use std::io::Write;
    let t = now_ns();
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| writeln!(f, "{t}"));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(2),
    }
}

/// Runs commands through the `__measure` launcher.
#[derive(Clone, Debug)]
pub struct Meter {
    /// This benchmark's own executable (the launcher).
    pub launcher: PathBuf,
}

impl Meter {
    /// A meter using the running executable as launcher.
    pub fn new() -> anyhow::Result<Self> {
        let launcher = std::env::current_exe().context("cannot find the benchmark's executable")?;
        Ok(Self { launcher })
    }

    /// Measures one run of `cmd` in `cwd`.
    pub fn once(&self, cmd: &[OsString], cwd: &Path) -> anyhow::Result<Sample> {
        let out = Command::new(&self.launcher)
            .arg("__measure")
            .arg("--")
            .args(cmd)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .output()
            .context("cannot start the measuring launcher")?;
        let line = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["ok", start, end, code, rss, cpu, inblock] => {
                let code: i32 = code.parse()?;
                Ok(Sample {
                    start_ns: start.parse()?,
                    end_ns: end.parse()?,
                    maxrss_kib: rss.parse()?,
                    cpu_us: cpu.parse()?,
                    code: (code >= 0).then_some(code),
                    inblock: inblock.parse()?,
                })
            }
            _ => bail!("launcher failed: {}", line.trim()),
        }
    }

    /// Measures `runs` runs of `cmd` in `cwd`.
    pub fn repeat(&self, cmd: &[OsString], cwd: &Path, runs: usize) -> anyhow::Result<Vec<Sample>> {
        (0..runs.max(1)).map(|_| self.once(cmd, cwd)).collect()
    }
}

/// The median of `values` (mean of the middle two for an even count); 0 when empty.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Summary of repeated runs.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// Median wall time (ms).
    pub median_ms: f64,
    /// Fastest run (ms).
    pub min_ms: f64,
    /// Slowest run (ms).
    pub max_ms: f64,
    /// Highest peak RSS over the runs (MB, 10^6 bytes).
    pub peak_mb: f64,
    /// Median CPU time, user + system (ms).
    pub cpu_ms: f64,
}

impl Summary {
    /// Summarises samples.
    pub fn of(samples: &[Sample]) -> Self {
        let walls = || samples.iter().map(Sample::wall_ms);
        Self {
            median_ms: median(walls()),
            min_ms: walls().fold(f64::INFINITY, f64::min),
            max_ms: walls().fold(0.0, f64::max),
            peak_mb: samples.iter().map(|s| s.maxrss_kib).max().unwrap_or(0) as f64 * 1024.0 / 1e6,
            cpu_ms: median(samples.iter().map(|s| s.cpu_us as f64 / 1e3)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median([]), 0.0);
    }
}
