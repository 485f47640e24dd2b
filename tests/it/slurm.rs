//! See `main.rs` for what this module covers.
//! A real Slurm cluster on localhost (`tests/slurm/cluster.sh`: munge, MariaDB, slurmdbd,
//! slurmctld, two slurmd as nodes n1 and n2 with two fake GPUs each) runs
//! `examples/slurm_job.sbatch` with cardfill, and the figures cardfill aggregates are checked
//! against sacct. Without root, Debian or the Slurm packages the test skips with a message.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cardfill_hardware::slurm::{SlurmJob, parse_sacct, parse_scontrol_job};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Says why a test did nothing, on the real stderr (libtest captures `eprintln!`).
fn skip(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {reason}");
}

/// Why the cluster cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"));
    if !root {
        return Some("the Slurm cluster needs root".into());
    }
    if !Path::new("/etc/debian_version").exists() {
        return Some("the Slurm cluster needs Debian's packages".into());
    }
    let tools = [
        "munged",
        "mariadbd",
        "slurmdbd",
        "slurmctld",
        "slurmd",
        "sbatch",
        "sacct",
    ];
    let missing: Vec<&str> = tools
        .into_iter()
        .filter(|tool| {
            !Command::new("bash")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "{} not installed (.ci/install-deps installs them)",
            missing.join(", ")
        ));
    }
    None
}

/// A temporary directory others (mysql, the job) may enter.
fn open_tempdir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("open the temporary directory to other users");
    dir
}

/// The running cluster; stopped on drop, also when an assertion fails.
struct Cluster {
    base: tempfile::TempDir,
    conf: PathBuf,
    _lock: MachineLock,
}

/// One cluster per machine (fixed ports, the global munge key): test runs in other processes
/// wait for this lock, held by a `flock` child until it is dropped.
struct MachineLock(Child);

impl MachineLock {
    fn acquire() -> Self {
        let mut child = Command::new("flock")
            .args(["-w", "150", "/tmp/cardfill-slurm.lock", "sh", "-c"])
            .arg("echo locked; exec cat >/dev/null")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run flock");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("flock's stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read from flock");
        assert_eq!(
            line.trim(),
            "locked",
            "another Slurm test run holds the machine"
        );
        Self(child)
    }
}

impl Drop for MachineLock {
    fn drop(&mut self) {
        drop(self.0.stdin.take()); // `cat` ends, the lock is released
        let _ = self.0.wait();
    }
}

impl Cluster {
    fn start() -> Self {
        let lock = MachineLock::acquire();
        let base = open_tempdir("cardfill-slurm-");
        let out = Command::new("timeout")
            .args(["100", "bash"])
            .arg(repo().join("tests/slurm/cluster.sh"))
            .arg("up")
            .arg(base.path())
            .output()
            .expect("run tests/slurm/cluster.sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let conf = stdout
            .lines()
            .find_map(|l| l.strip_prefix("SLURM_CONF="))
            .map(PathBuf::from);
        match conf {
            Some(conf) if out.status.success() => Self {
                base,
                conf,
                _lock: lock,
            },
            _ => panic!(
                "the Slurm cluster did not start: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                logs(base.path())
            ),
        }
    }

    /// A Slurm client command for this cluster, with epoch times.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.args(["20", program])
            .env("SLURM_CONF", &self.conf)
            .env("SLURM_TIME_FORMAT", "%s");
        for var in ["SLURM_JOB_ID", "SLURM_JOBID", "SLURMD_NODENAME"] {
            cmd.env_remove(var);
        }
        cmd
    }

    fn text(&self, program: &str, args: &[&str]) -> String {
        let out = self.command(program).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls every 0.2 s until `found` returns something, or panics after `limit`.
    fn poll<T>(&self, limit: Duration, what: &str, mut found: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = found() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                logs(self.base.path())
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("timeout")
            .args(["60", "bash"])
            .arg(repo().join("tests/slurm/cluster.sh"))
            .arg("down")
            .arg(self.base.path())
            .output();
    }
}

/// The last lines of the cluster's logs, for failure messages.
fn logs(base: &Path) -> String {
    let mut text = String::new();
    if let Ok(entries) = std::fs::read_dir(base.join("log")) {
        for entry in entries.flatten() {
            let body = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let tail: Vec<&str> = body.lines().rev().take(15).collect();
            text.push_str(&format!("--- {}\n", entry.path().display()));
            for line in tail.into_iter().rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const SACCT_FORMAT: &str = "--format=JobID,State,ElapsedRaw,Start,End,NNodes,AllocTRES,NodeList";

#[test]
fn two_nodes_two_gpus_each_match_sacct() {
    if let Some(reason) = missing_prerequisite() {
        return skip(&reason);
    }
    let cluster = Cluster::start();

    // A trainer output directory that every node sees.
    let out_dir = open_tempdir("cardfill-slurm-run-");
    let case = crate::util::fixtures().join("cases/trainer-vit-base-riego");
    for name in [
        "config.json",
        "train_results.json",
        "trainer_state.json",
        "README.md",
    ] {
        std::fs::copy(case.join(name), out_dir.path().join(name)).unwrap();
    }
    let card_before = std::fs::read_to_string(out_dir.path().join("README.md")).unwrap();
    let job_log = out_dir.path().join("job.log");

    let submit = cluster
        .command("sbatch")
        .args(["--parsable", "--time=5", "--output"])
        .arg(&job_log)
        .arg("--chdir")
        .arg(out_dir.path())
        .arg(repo().join("examples/slurm_job.sbatch"))
        .env("OUTPUT_DIR", out_dir.path())
        .env("CARDFILL", env!("CARGO_BIN_EXE_cardfill"))
        .env("TRAIN_CMD", "sleep 3")
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("CARDFILL_REGION")
        .env_remove("CARDFILL_ONLINE")
        .output()
        .unwrap();
    assert!(submit.status.success(), "sbatch: {}", show(&submit));
    let job_id = String::from_utf8_lossy(&submit.stdout).trim().to_owned();

    // The controller's view, until the job ends (it stays in memory: MinJobAge).
    let live: SlurmJob = cluster.poll(Duration::from_secs(60), "the job to end", || {
        let text = cluster.text("scontrol", &["-o", "show", "job", &job_id]);
        parse_scontrol_job(&text, &job_id).filter(SlurmJob::is_finished)
    });
    let job_output = std::fs::read_to_string(&job_log).unwrap_or_default();
    assert_eq!(
        live.state.as_deref(),
        Some("COMPLETED"),
        "job output:\n{job_output}"
    );
    // Accounting rows arrive asynchronously.
    let acct: SlurmJob = cluster.poll(Duration::from_secs(30), "sacct's row", || {
        let text = cluster.text(
            "sacct",
            &["-j", &job_id, "--parsable2", "--allocations", SACCT_FORMAT],
        );
        parse_sacct(&text, &job_id).filter(|j| j.state.as_deref() == Some("COMPLETED"))
    });

    // slurm.rs reads both views alike.
    assert_eq!(acct.nodes, Some(2));
    assert_eq!(acct.node_list, ["n1", "n2"]);
    assert_eq!(acct.gpus_total, Some(4));
    assert_eq!(acct.gpus_per_node, Some(2));
    assert_eq!(
        (live.nodes, live.gpus_total, live.gpus_per_node),
        (Some(2), Some(4), Some(2))
    );
    assert_eq!(live.start_epoch, acct.start_epoch);
    assert_eq!(live.end_epoch, acct.end_epoch);
    let elapsed = acct.elapsed_s.unwrap();
    assert!(elapsed >= 3.0, "the job slept 3 s, sacct says {elapsed} s");

    // One record per node, written by the probe step on each; what each says about the job
    // is `current_job()` read inside the job (environment and scontrol).
    let record_dir = out_dir.path().join(".cardfill");
    let mut records: Vec<(String, serde_json::Value)> = std::fs::read_dir(&record_dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .map(|n| {
                    let text = std::fs::read_to_string(record_dir.join(&n)).unwrap();
                    (n, serde_json::from_str(&text).unwrap())
                })
                .collect()
        })
        .unwrap_or_default();
    records.sort_by(|a, b| a.0.cmp(&b.0));
    let nodes: Vec<&str> = records
        .iter()
        .map(|(_, r)| r["node"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(nodes, ["n1", "n2"], "job output:\n{job_output}");
    for (name, record) in &records {
        let slurm = &record["slurm"];
        assert_eq!(slurm["job_id"], job_id.as_str(), "{name}: {record:#}");
        assert_eq!(slurm["nodes"], 2, "{name}: {record:#}");
        assert_eq!(slurm["gpus_per_node"], 2, "{name}: {record:#}");
        assert_eq!(slurm["node_list"], serde_json::json!(["n1", "n2"]));
        assert_eq!(slurm["start"].as_str(), acct.start.as_deref(), "{name}");
    }

    // fill ran at the end of the job and changed the card.
    assert!(
        !job_output.contains("cardfill fill failed"),
        "job output:\n{job_output}"
    );
    let card_after = std::fs::read_to_string(out_dir.path().join("README.md")).unwrap();
    assert_ne!(card_after, card_before, "fill left the card unchanged");

    // The aggregated figures against sacct, read afterwards on the "login node" (this
    // process, with the cluster's configuration but outside the job). The hours run from the
    // job's start to the probes, or to the job's end where Slurm still knows it: between the
    // 3 s of training and sacct's elapsed time (1 s resolution).
    let inspect = crate::util::cardfill()
        .arg("inspect")
        .arg(out_dir.path())
        .args(["--format", "json"])
        .env("SLURM_CONF", &cluster.conf)
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", show(&inspect));
    let facts: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(facts["run"]["nodes"], acct.nodes.unwrap(), "{facts:#}");
    assert_eq!(
        facts["hardware"]["gpu_count"],
        acct.gpus_total.unwrap(),
        "{facts:#}"
    );
    assert_eq!(facts["run"]["start"].as_str(), acct.start.as_deref());
    let seconds = facts["run"]["hours"].as_f64().unwrap() * 3600.0;
    assert!(
        (3.0 - 0.5..=elapsed + 1.0 + 0.5).contains(&seconds),
        "run.hours is {seconds} s; the job slept 3 s and sacct says it took {elapsed} s\n{facts:#}"
    );
    let gpu_hours = facts["run"]["gpu_hours"].as_f64().unwrap();
    let expected = 4.0 * facts["run"]["hours"].as_f64().unwrap();
    assert!(
        (gpu_hours - expected).abs() <= 0.0005,
        "run.gpu_hours {gpu_hours}, expected 4 GPUs × run.hours = {expected}\n{facts:#}"
    );
}
