//! The memory table of issue 12: big but valid inputs, built here (never committed), read by
//! `inspect` under a 256 MiB data limit (`prlimit --data`): an allocation past it aborts the
//! run and fails the test. `CARDFILL_MEMORY_SCALE` (default 0.25; 1 = the sizes) sets
//! their size; the benchmark prints the peak memory of the full-size ones.
#![allow(clippy::print_stderr)]

use std::path::Path;
use std::process::Command;

use crate::util::stderr;

const LIMIT: u64 = 256 << 20;

fn scale() -> f64 {
    std::env::var("CARDFILL_MEMORY_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.25)
}

fn inspect_limited(dir: &Path) -> std::process::Output {
    Command::new("prlimit")
        .arg(format!("--data={LIMIT}"))
        .arg(env!("CARGO_BIN_EXE_cardfill"))
        .args(["inspect", "--format", "json"])
        .arg(dir)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("prlimit runs (util-linux)")
}

fn get<'a>(json: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    json.get(path)
        .or_else(|| path.split('.').try_fold(json, |v, k| v.get(k)))
}

#[test]
fn memory_table_inputs_are_read_within_256_mib() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("skipped: prlimit (util-linux) is not installed");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let cases = cardfill_testkit::big::all(root.path(), scale()).unwrap();
    for (dir, case) in cases {
        let out = inspect_limited(&dir);
        assert!(
            out.status.success(),
            "{} ({} bytes): {}",
            case.what,
            case.bytes,
            stderr(&out)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for (path, want) in &case.expect {
            let got =
                get(&json, path).unwrap_or_else(|| panic!("{}: no `{path}` in {json}", case.name));
            assert_eq!(got.as_f64(), want.as_f64(), "{}: `{path}`", case.name);
        }
        eprintln!(
            "{}: {} bytes read within {LIMIT} bytes of data",
            case.name, case.bytes
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
