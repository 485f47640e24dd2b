//! Issue 12's memory table: big but valid inputs (built by `cardfill_testkit::big`, never
//! committed), each read once by `cardfill inspect --format json`; prints peak memory and wall
//! time against the goal (≤ 256 MiB, ≤ 10 s) and checks the facts it must report.

use std::ffi::OsString;
use std::path::Path;

use anyhow::Context;

use crate::measure::Meter;

/// Peak RSS goal (MiB) and wall-time goal (s).
const GOAL_MIB: f64 = 256.0;
const GOAL_S: f64 = 10.0;

/// Builds the inputs under `root` at `scale` and measures `cardfill` on each.
pub fn run(meter: &Meter, cardfill: &Path, root: &Path, scale: f64) -> anyhow::Result<()> {
    eprintln!(
        "building the memory-table inputs (scale {scale}) in {} …",
        root.display()
    );
    let cases = cardfill_testkit::big::all(root, scale)?;
    println!();
    println!(
        "| input | bytes | peak MiB | wall s | facts | goal (≤ {GOAL_MIB} MiB, ≤ {GOAL_S} s) |"
    );
    println!("|---|---:|---:|---:|---|---|");
    for (dir, case) in cases {
        let cmd: Vec<OsString> = vec![
            cardfill.into(),
            "inspect".into(),
            "--format".into(),
            "json".into(),
            dir.clone().into(),
        ];
        let sample = meter.once(&cmd, root)?;
        let out = std::process::Command::new(cardfill)
            .args(["inspect", "--format", "json"])
            .arg(&dir)
            .output()
            .context("cannot run cardfill")?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let facts_ok = case.expect.iter().all(|(path, want)| {
            let got = json
                .get(*path)
                .or_else(|| path.split('.').try_fold(&json, |v, k| v.get(k)));
            got.and_then(serde_json::Value::as_f64) == want.as_f64()
        });
        let mib = sample.maxrss_kib as f64 / 1024.0;
        let secs = sample.wall_ms() / 1000.0;
        let pass = mib <= GOAL_MIB && secs <= GOAL_S && sample.code == Some(0) && facts_ok;
        println!(
            "| {} | {} | {mib:.1} | {secs:.2} | {} | {} |",
            case.what,
            case.bytes,
            if facts_ok { "right" } else { "WRONG" },
            if pass { "PASS" } else { "FAIL" }
        );
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}
