//! `cardfill run` and `cardfill probe`: exit codes, signals and streams passed through, and the
//! run record written with the stub NVML library (built here with gcc) so the real FFI path
//! runs; `inspect` aggregating node records.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::util::{RunDir, cardfill, stderr, stdout};

/// The stub `libnvidia-ml.so.1`, built once per test binary.
fn stub_nvml() -> &'static Path {
    static STUB: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = STUB.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crates/cardfill-hardware/tests/nvml-stub/stub.c");
        let out = dir.path().join("libnvidia-ml.so.1");
        cardfill_testkit::build_stub_library(&source, &out, &[]).expect("stub builds");
        (dir, out)
    });
    path
}

/// `cardfill` with the stub NVML and no job, launcher or GPU variables from the outside.
fn isolated(nvml: Option<&Path>) -> Command {
    let mut cmd = cardfill();
    for var in [
        "CUDA_VISIBLE_DEVICES",
        "SLURM_JOB_ID",
        "SLURM_JOBID",
        "SLURMD_NODENAME",
        "SLURM_STEP_GPUS",
        "SLURM_JOB_GPUS",
        "TORCHELASTIC_RUN_ID",
        "LOCAL_RANK",
        "WORLD_SIZE",
        "LOCAL_WORLD_SIZE",
        "NODE_RANK",
        "GROUP_RANK",
    ] {
        cmd.env_remove(var);
    }
    cmd.env(
        "CARDFILL_NVML_LIBRARY",
        nvml.unwrap_or(Path::new("/nonexistent/libnvidia-ml.so.1")),
    );
    cmd
}

/// The records in `dir/.cardfill/`.
fn records(dir: &Path) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(".cardfill"))
        .map(|rd| rd.map(|e| e.expect("directory entry").path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
        .iter()
        .map(|p| {
            serde_json::from_str(&std::fs::read_to_string(p).expect("read record"))
                .expect("record is JSON")
        })
        .collect()
}

fn run_in(dir: &RunDir, cmd: &mut Command, args: &[&str]) -> std::process::Output {
    cmd.arg("run")
        .arg("--record")
        .arg(dir.path())
        .arg("--")
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("run cardfill")
}

#[test]
fn exit_codes_pass_through_and_the_record_is_written_anyway() {
    for (script, code) in [("exit 0", 0), ("exit 3", 3), ("kill -KILL $$", 137)] {
        let dir = RunDir::new();
        let out = run_in(&dir, &mut isolated(None), &["sh", "-c", script]);
        assert_eq!(out.status.code(), Some(code), "{script}: {}", stderr(&out));
        let recs = records(dir.path());
        assert_eq!(recs.len(), 1, "{script}");
        let r = &recs[0];
        assert_eq!(r["format"], "cardfill-run-record");
        assert_eq!(r["kind"], "run");
        assert_eq!(r["command"], "sh");
        if code == 137 {
            assert_eq!(r["signal"], 9);
        } else {
            assert_eq!(r["exit_code"], code);
        }
    }
}

#[test]
fn a_missing_command_exits_127_without_a_record() {
    let dir = RunDir::new();
    let out = run_in(&dir, &mut isolated(None), &["/nonexistent/train"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).contains("/nonexistent/train"),
        "{}",
        stderr(&out)
    );
    assert!(records(dir.path()).is_empty());
}

#[test]
fn stdin_stdout_and_stderr_pass_through_untouched() {
    let dir = RunDir::new();
    let mut child = isolated(None)
        .args(["run", "--record"])
        .arg(dir.path())
        .args(["--", "sh", "-c", "cat; echo to-stderr >&2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"line one\nline two\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out), "line one\nline two\n");
    assert_eq!(stderr(&out), "to-stderr\n");
}

#[test]
fn sigterm_to_cardfill_reaches_the_command_and_the_record_is_written() {
    let dir = RunDir::new();
    let script = "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done";
    let mut child = isolated(None)
        .args(["run", "--record"])
        .arg(dir.path())
        .args(["--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(lines.next().unwrap().unwrap(), "got-term");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    let recs = records(dir.path());
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["exit_code"], 7);
}

#[test]
fn record_with_stub_nvml_has_eight_gpus_and_measured_energy() {
    let dir = RunDir::new();
    let out = run_in(&dir, &mut isolated(Some(stub_nvml())), &["true"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = &records(dir.path())[0];
    assert_eq!(r["nvml"]["status"], "ok");
    assert_eq!(r["nvml"]["driver_version"], "550.54.15");
    assert_eq!(r["nvml"]["cuda_version"], "12.4");
    let gpus = r["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 8);
    for g in gpus {
        assert_eq!(g["name"], "NVIDIA H100 80GB HBM3");
        assert_eq!(g["memory_bytes"], 85_520_809_984u64);
        assert_eq!(g["power_limit_w"], 700.0);
        assert_eq!(g["energy"]["method"], "counter");
        // The stub's counter gains 1 000 000 mJ per read; start and end are one read apart.
        assert_eq!(g["energy"]["joules"], 1000.0);
    }
    assert_eq!(r["energy_j"], 8000.0);
    assert!(r["start"].as_str().unwrap() <= r["end"].as_str().unwrap());

    // inspect turns the record into facts.
    let out = dir.run(&["inspect", ".", "--format", "json"]);
    let facts: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(facts["hardware"]["gpu_count"], 8);
    assert_eq!(facts["run"]["nodes"], 1);
    assert_eq!(facts["run"]["energy_method"], "measured");
    let kwh = facts["run"]["energy_kwh"].as_f64().unwrap();
    assert!((kwh - 8000.0 / 3.6e6).abs() < 1e-12, "{kwh}");
    assert_eq!(facts["hardware"]["driver_version"], "550.54.15");
    assert!(
        facts["sources"]["run.energy_kwh"]
            .as_str()
            .unwrap()
            .starts_with(".cardfill")
    );
}

#[test]
fn cuda_visible_devices_picks_gpus_by_index_and_by_uuid() {
    for visible in [
        "1,3",
        "GPU-00000000-1111-2222-3333-000000000003,GPU-00000000-1111-2222-3333-000000000001",
    ] {
        let dir = RunDir::new();
        let mut cmd = isolated(Some(stub_nvml()));
        cmd.env("CUDA_VISIBLE_DEVICES", visible);
        let out = run_in(&dir, &mut cmd, &["true"]);
        assert!(out.status.success());
        let r = &records(dir.path())[0];
        let mut idx: Vec<u64> = r["gpus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["index"].as_u64().unwrap())
            .collect();
        idx.sort();
        assert_eq!(idx, vec![1, 3], "{visible}");
        assert_eq!(r["energy_j"], 2000.0);
    }
}

#[test]
fn a_counter_reset_is_flagged_and_warned() {
    let dir = RunDir::new();
    let mut cmd = isolated(Some(stub_nvml()));
    cmd.env("CARDFILL_STUB_NVML_RESET_AFTER", "2")
        .env("CARDFILL_STUB_NVML_COUNT", "2");
    let out = run_in(&dir, &mut cmd, &["true"]);
    assert!(out.status.success());
    let r = &records(dir.path())[0];
    let e = &r["gpus"][0]["energy"];
    assert_eq!(e["counter_reset"], true);
    assert!(e["counter_end_mj"].as_u64() < e["counter_start_mj"].as_u64());
    assert_eq!(e["joules"], 1000.0);
    let out = dir.run(&["inspect", ".", "--format", "json"]);
    let facts: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let codes: Vec<&str> = facts["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"energy-counter-reset"), "{codes:?}");
}

#[test]
fn gpus_without_the_counter_are_sampled() {
    let dir = RunDir::new();
    let mut cmd = isolated(Some(stub_nvml()));
    cmd.env("CARDFILL_STUB_NVML_NO_ENERGY", "1")
        .env("CARDFILL_STUB_NVML_COUNT", "1");
    let out = run_in(&dir, &mut cmd, &["true"]);
    assert!(out.status.success());
    let r = &records(dir.path())[0];
    let g = &r["gpus"][0];
    assert_eq!(g["energy"]["method"], "sampled");
    assert!(g["energy"]["samples"].as_u64().unwrap() >= 2);
    assert!(
        g["unsupported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("total_energy_consumption"))
    );
}

#[test]
fn every_gpu_is_polled_for_power_and_the_counters_still_give_the_energy() {
    let dir = RunDir::new();
    let mut cmd = isolated(Some(stub_nvml()));
    cmd.env("CARDFILL_STUB_NVML_COUNT", "2")
        .env("CARDFILL_STUB_NVML_POWER_MW", "412345");
    let out = run_in(&dir, &mut cmd, &["sleep", "0.2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = &records(dir.path())[0];
    for g in r["gpus"].as_array().unwrap() {
        // A sample when the command starts and one when it ends, rounded to 0.1 W.
        let samples = g["power_samples"].as_array().unwrap();
        assert!(samples.len() >= 2, "{g}");
        assert!(samples.iter().all(|s| s[1] == 412.3), "{g}");
        assert_eq!(samples[0][0], 0.0);
        assert!(
            samples
                .windows(2)
                .all(|w| w[0][0].as_f64() <= w[1][0].as_f64())
        );
        // Polling reads power only: the counter, read at start and end, gives the energy.
        assert_eq!(g["energy"]["method"], "counter");
        assert_eq!(g["energy"]["joules"], 1000.0);
    }
    let out = dir.run(&["inspect", ".", "--format", "json"]);
    let facts: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(facts["run"]["power"][1]["gpu"], "GPU 1");
    assert_eq!(facts["run"]["energy_method"], "measured");
}

#[test]
fn no_nvml_library_gives_a_record_without_gpus_and_no_error() {
    let dir = RunDir::new();
    let out = run_in(&dir, &mut isolated(None), &["true"]);
    assert!(out.status.success());
    assert_eq!(stderr(&out), "");
    let r = &records(dir.path())[0];
    assert_eq!(r["nvml"]["status"], "absent");
    assert_eq!(r["gpus"].as_array().unwrap().len(), 0);
    assert!(r.get("energy_j").is_none());
    assert!(r["host"]["ram_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn ranks_of_one_run_on_one_node_write_one_record() {
    let dir = RunDir::new();
    for gpu in ["0", "1"] {
        let mut cmd = isolated(Some(stub_nvml()));
        cmd.env("TORCHELASTIC_RUN_ID", "job-1")
            .env("CUDA_VISIBLE_DEVICES", gpu)
            .env("LOCAL_RANK", gpu);
        assert!(run_in(&dir, &mut cmd, &["true"]).status.success());
    }
    let recs = records(dir.path());
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["processes"], 2);
    assert_eq!(recs[0]["gpus"].as_array().unwrap().len(), 2);
    assert_eq!(recs[0]["run_key"], "torchelastic-job-1");
}

#[test]
fn probe_prints_and_writes_the_node_record() {
    let dir = RunDir::new();
    let out = isolated(Some(stub_nvml()))
        .args(["probe", "--format", "json", "--record"])
        .arg(dir.path().join(".cardfill"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(printed["kind"], "probe");
    assert_eq!(printed["gpus"].as_array().unwrap().len(), 8);
    assert_eq!(records(dir.path()), vec![printed]);
}

/// A node record as `cardfill run` writes it, `n` GPUs of 3.6 MJ each.
fn node_record(node: &str, start: &str, end: &str, n: usize) -> String {
    let gpus: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "index": i, "uuid": format!("GPU-{node}-{i}"), "name": "NVIDIA A100-SXM4-80GB",
                "memory_bytes": 85_899_345_920u64, "power_limit_w": 400.0,
                "energy": {"method": "counter", "joules": 3_600_000.0,
                           "counter_start_mj": 0, "counter_end_mj": 3_600_000_000u64}
            })
        })
        .collect();
    serde_json::json!({
        "format": "cardfill-run-record", "version": 1, "kind": "run",
        "cardfill_version": "0.1.0", "node": node, "run_key": "slurm-77",
        "start": start, "end": end, "command": "python", "exit_code": 0,
        "host": {"cpu": "AMD EPYC 7763 64-Core Processor", "cpu_cores": 64, "ram_bytes": 1_081_000_000_000u64},
        "nvml": {"status": "ok", "driver_version": "535.104.05", "cuda_version": "12.2"},
        "gpus": gpus, "energy_j": 3_600_000.0 * n as f64,
        "slurm": {"job_id": "77", "nodes": 2},
        "processes": 1
    })
    .to_string()
}

#[test]
fn inspect_aggregates_node_records_and_flags_win_on_hours() {
    let dir = RunDir::new()
        .file(
            ".cardfill/n1_slurm-77.json",
            node_record("n1", "2026-11-27T08:00:00Z", "2026-11-27T10:00:00Z", 8),
        )
        .file(
            ".cardfill/n2_slurm-77.json",
            node_record("n2", "2026-11-27T08:00:00Z", "2026-11-27T09:00:00Z", 8),
        );
    let out = isolated(None)
        .args(["inspect", ".", "--format", "json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let f: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(f["run"]["nodes"], 2);
    assert_eq!(f["hardware"]["gpu_count"], 16);
    assert_eq!(f["hardware"]["gpus"].as_array().unwrap().len(), 16);
    assert_eq!(f["hardware"]["gpus"][0]["name"], "NVIDIA A100-SXM4-80GB");
    assert_eq!(f["run"]["hours"], 2.0);
    assert_eq!(f["run"]["gpu_hours"], 24.0);
    // 16 GPUs × 3.6 MJ = 16 kWh
    assert_eq!(f["run"]["energy_kwh"], 16.0);
    assert_eq!(f["run"]["start"], "2026-11-27T08:00:00Z");
    assert_eq!(f["hardware"]["cpu"], "AMD EPYC 7763 64-Core Processor");

    let out = isolated(None)
        .args(["inspect", ".", "--format", "json", "--hours", "3"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let f: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(f["run"]["hours"], 3.0);
    assert_eq!(f["sources"]["run.hours"], "flag --hours");
    assert_eq!(f["run"]["gpu_hours"], 48.0);
}

#[test]
fn a_broken_record_is_a_warning_not_a_failure() {
    let dir = RunDir::new().file(".cardfill/n1_x.json", "{ half a record");
    let out = isolated(None)
        .args(["inspect", ".", "--format", "json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let f: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let w = f["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "run-record-malformed")
        .expect("a run-record-malformed warning");
    assert!(
        w["message"]
            .as_str()
            .unwrap()
            .contains("`.cardfill/n1_x.json`")
    );
}

/// `probe --begin` then `probe --end` in another process, as the Python integrations run them.
fn begin_and_end(dir: &Path, end_base_mj: &str, training: Option<&str>) -> Value {
    let out = isolated(Some(stub_nvml()))
        .args(["probe", "--format", "json", "--begin", "--record"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let begun: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(begun["kind"], "training");
    let key = begun["run_key"].as_str().unwrap();
    let mut end = isolated(Some(stub_nvml()));
    end.args(["probe", "--end", "--record"])
        .arg(dir)
        .env("CARDFILL_RUN_KEY", key)
        .env("CARDFILL_STUB_NVML_BASE_MJ", end_base_mj)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if training.is_some() {
        end.args(["--training", "-"]);
    }
    let mut child = end.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(training.unwrap_or("").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    begun
}

#[test]
fn a_training_record_measures_train_begin_to_end_and_carries_the_process_facts() {
    let dir = RunDir::new();
    let training = r#"{"integration": "track", "base_model": "tiny-org/tiny-llama",
        "hyperparameters": {"learning_rate": 0.001}, "world_size": 1,
        "datasets": [{"id": "tiny-org/tiny-stories", "config": null, "split": "train"},
                     {"id": "./local.jsonl", "config": null, "split": "train"}],
        "read": {"base_model": "model.name_or_path"}}"#;
    // The end process reads each counter 3.6 MJ (1 kWh) past where the begin process did.
    begin_and_end(dir.path(), "3600000000", Some(training));
    let recs = records(dir.path());
    assert_eq!(recs.len(), 1, "{recs:?}");
    let r = &recs[0];
    assert_eq!(r["kind"], "training");
    assert_eq!(r["processes"], 1);
    assert!(r.get("open_counters_mj").is_none(), "{r}");
    assert_eq!(r["energy_j"], 8.0 * 3.6e6);
    assert_eq!(r["training"]["base_model"], "tiny-org/tiny-llama");

    let out = dir.run(&["inspect", ".", "--format", "json"]);
    let facts: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(facts["run"]["energy_kwh"], 8.0);
    assert_eq!(facts["hardware"]["gpu_count"], 8);
    assert_eq!(facts["model"]["base_model"], "tiny-org/tiny-llama");
    assert_eq!(
        facts["training"]["datasets"],
        serde_json::json!([{"id": "tiny-org/tiny-stories", "config": null, "split": "train"}])
    );
    let source = facts["sources"]["model.base_model"].as_str().unwrap();
    assert!(
        source.starts_with("training process: track: model.name_or_path (.cardfill/"),
        "{source}"
    );
}

#[test]
fn a_training_inside_cardfill_run_is_counted_once() {
    let dir = RunDir::new();
    let bin = env!("CARGO_BIN_EXE_cardfill");
    // The training opens and closes its record (2 kWh per GPU between its two readings)
    // inside `cardfill run`, which hands it its run key.
    let script = format!(
        "{bin} probe --begin --record . && \
         CARDFILL_STUB_NVML_BASE_MJ=7200000000 {bin} probe --end --record ."
    );
    let out = run_in(
        &dir,
        &mut isolated(Some(stub_nvml())),
        &["sh", "-c", &script],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let recs = records(dir.path());
    assert_eq!(recs.len(), 1, "one node, one run, one record: {recs:?}");
    let r = &recs[0];
    assert_eq!(r["kind"], "run");
    assert_eq!(r["processes"], 2);
    // The widest counter span of each GPU, once: 7.2 MJ, not 7.2 MJ + the run's own.
    for g in r["gpus"].as_array().unwrap() {
        assert_eq!(g["energy"]["joules"], 7.2e6, "{g}");
    }
    let out = dir.run(&["inspect", ".", "--format", "json"]);
    let facts: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(facts["run"]["energy_kwh"], 16.0);
}

#[test]
fn training_facts_need_no_begin_and_valid_json() {
    let dir = RunDir::new();
    let out = isolated(None)
        .args(["probe", "--begin", "--training", "x.json", "--record", "."])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let mut child = isolated(None)
        .args(["probe", "--end", "--training", "-", "--record", "."])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"{oops").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("--training -"), "{err}");
    assert!(
        records(dir.path()).is_empty(),
        "nothing written on bad input"
    );
}
