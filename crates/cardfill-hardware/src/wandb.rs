//! Weights & Biases run metadata (`wandb/<run>/files/wandb-metadata.json`): the GPUs, CPU
//! count, memory, OS and host that wandb saw, as lower-trust hardware evidence.
//!
//! Key names of the wandb SDK 0.12–0.16 writer (`gpu`, `gpu_count`, `gpu_devices[{name,
//! memory_total}]`, `cpu_count`, `memory{total}`, `os`, `host`, `startedAt`) and of the newer
//! one (`gpu_nvidia[{name, memoryTotal, uuid}]`, `cpu{count}`, `memory{total}` as a string).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::gpu::GpuInfo;
use crate::host::HostInfo;

/// What a wandb metadata file says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WandbMetadata {
    /// The file, relative to the checkpoint directory.
    pub file: String,
    /// Host facts.
    pub host: HostInfo,
    /// GPUs, one entry each.
    pub gpus: Vec<GpuInfo>,
    /// `gpu_count`.
    pub gpu_count: Option<u32>,
    /// `startedAt`, as written (UTC without zone).
    pub started_at: Option<String>,
}

/// The metadata file of the latest wandb run under `dir`: `wandb/latest-run`, else the last
/// `wandb/run-*` (names sort by time), else `dir/wandb-metadata.json`.
pub fn find(dir: &Path) -> Option<PathBuf> {
    let wandb = dir.join("wandb");
    let flat = dir.join("wandb-metadata.json");
    let flat = || (cardfill_facts::read::may_exist(&flat) && flat.is_file()).then_some(flat);
    if !cardfill_facts::read::may_exist(&wandb) {
        return flat();
    }
    let in_run = |run: &Path| run.join("files").join("wandb-metadata.json");
    let latest = in_run(&wandb.join("latest-run"));
    if latest.is_file() {
        return Some(latest);
    }
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&wandb)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("run-") || n.starts_with("offline-run-"))
        })
        .map(|p| in_run(&p))
        .filter(|p| p.is_file())
        .collect();
    runs.sort_by_key(|p| {
        // `offline-run-20261127_…` and `run-20261127_…` sort by their time stamp.
        p.parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .map(|n| {
                n.to_string_lossy()
                    .trim_start_matches("offline-")
                    .to_owned()
            })
    });
    runs.pop().or_else(flat)
}

fn num(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// `memory.total`: GiB as a number in the old SDK, bytes as a string in the new one.
fn ram_bytes(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|g| *g > 0.0 && *g < 1e7)
            .map(|g| (g * 1024.0 * 1024.0 * 1024.0).round() as u64),
        _ => num(v),
    }
}

/// Parses a metadata file; `Err` holds the problem.
pub fn parse(text: &str, file: String) -> Result<WandbMetadata, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if !v.is_object() {
        return Err("not a JSON object".to_owned());
    }
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let cpu_cores = v
        .get("cpu_count")
        .and_then(num)
        .or_else(|| v.pointer("/cpu/count").and_then(num))
        .and_then(|n| u32::try_from(n).ok());
    let cpu_threads = v
        .get("cpu_count_logical")
        .and_then(num)
        .or_else(|| v.pointer("/cpu/countLogical").and_then(num))
        .and_then(|n| u32::try_from(n).ok());
    let host = HostInfo {
        hostname: s("host"),
        cpu: None,
        cpu_cores,
        cpu_threads,
        ram_bytes: v.pointer("/memory/total").and_then(ram_bytes),
        os: s("os"),
    };
    let gpu = |d: &Value, memory_key: &str| GpuInfo {
        name: d.get("name").and_then(Value::as_str).map(str::to_owned),
        memory_bytes: d.get(memory_key).and_then(num),
        uuid: d.get("uuid").and_then(Value::as_str).map(str::to_owned),
        ..GpuInfo::default()
    };
    let mut gpus: Vec<GpuInfo> = v
        .get("gpu_nvidia")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|d| gpu(d, "memoryTotal")).collect())
        .unwrap_or_default();
    if gpus.is_empty() {
        gpus = v
            .get("gpu_devices")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|d| gpu(d, "memory_total")).collect())
            .unwrap_or_default();
    }
    for (i, g) in gpus.iter_mut().enumerate() {
        g.index = u32::try_from(i).unwrap_or(u32::MAX);
    }
    Ok(WandbMetadata {
        file,
        host,
        gpus,
        gpu_count: v
            .get("gpu_count")
            .and_then(num)
            .and_then(|n| u32::try_from(n).ok()),
        started_at: s("startedAt"),
    })
}

/// Reads the latest wandb metadata under `dir`: `None` without one, `Some(Err((file,
/// problem)))` when it is unreadable.
pub fn read(dir: &Path) -> Option<Result<WandbMetadata, (String, String)>> {
    let path = find(dir)?;
    let rel = path
        .strip_prefix(dir)
        .unwrap_or(&path)
        .to_string_lossy()
        .into_owned();
    Some(
        cardfill_facts::read::read_to_string(&path, cardfill_facts::read::CONFIG_CAP)
            .map_err(|e| e.reason())
            .and_then(|t| parse(&t, rel.clone()))
            .map_err(|e| (rel, e)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key set of `wandb_issue4609` / `wandb_issue5256` (tests/fixtures/cases/
    /// wandb-metadata-samples), written as the JSON file wandb saves.
    const OLD_SDK: &str = r#"{
        "os": "Linux-5.15.0-56-generic-x86_64-with-glibc2.10", "python": "3.8.15",
        "heartbeatAt": "2022-12-12T10:41:13.349116", "startedAt": "2022-12-12T10:41:12.803347",
        "host": "dcs4722", "cpu_count": 48, "cpu_count_logical": 96,
        "gpu": "NVIDIA A100-SXM4-80GB", "gpu_count": 2,
        "gpu_devices": [{"name": "NVIDIA A100-SXM4-80GB", "memory_total": 85899345920},
                        {"name": "NVIDIA A100-SXM4-80GB", "memory_total": 85899345920}],
        "memory": {"total": 1007.7}
    }"#;

    #[test]
    fn old_sdk_metadata() {
        let m = parse(OLD_SDK, "wandb-metadata.json".into()).unwrap();
        assert_eq!(m.host.cpu_cores, Some(48));
        assert_eq!(m.host.cpu_threads, Some(96));
        assert_eq!(m.host.hostname.as_deref(), Some("dcs4722"));
        assert_eq!(m.host.ram_bytes, Some(1_082_009_636_045));
        assert_eq!(m.gpu_count, Some(2));
        assert_eq!(m.gpus.len(), 2);
        assert_eq!(m.gpus[1].memory_bytes, Some(85_899_345_920));
        assert_eq!(m.started_at.as_deref(), Some("2022-12-12T10:41:12.803347"));
    }

    #[test]
    fn new_sdk_metadata_and_latest_run() {
        let dir = tempfile::tempdir().unwrap();
        let write = |run: &str, body: &str| {
            let p = dir.path().join("wandb").join(run).join("files");
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("wandb-metadata.json"), body).unwrap();
        };
        write("run-20261126_080000-aaaa", r#"{"gpu_count": 1}"#);
        write(
            "run-20261127_080000-bbbb",
            r#"{"gpu_count": 8, "cpu": {"count": 64, "countLogical": 128},
                "memory": {"total": "2164203339776"},
                "gpu_nvidia": [{"name": "NVIDIA H100 80GB HBM3", "memoryTotal": "85520809984",
                                "uuid": "GPU-1"}]}"#,
        );
        let m = read(dir.path()).unwrap().unwrap();
        assert_eq!(
            m.file,
            "wandb/run-20261127_080000-bbbb/files/wandb-metadata.json"
        );
        assert_eq!(m.gpu_count, Some(8));
        assert_eq!(m.host.cpu_cores, Some(64));
        assert_eq!(m.host.ram_bytes, Some(2_164_203_339_776));
        assert_eq!(m.gpus[0].uuid.as_deref(), Some("GPU-1"));
        assert_eq!(m.gpus[0].memory_bytes, Some(85_520_809_984));
    }

    #[test]
    fn python_repr_is_a_problem_not_a_panic() {
        let text = include_str!(
            "../../../tests/fixtures/cases/wandb-metadata-samples/wandb_issue5256__wandb-metadata_pprint_excerpt.txt"
        );
        assert!(parse(text, "x".into()).is_err());
    }
}
