//! `--from-hub` transfer: the 405B-class checkpoint (191 shards) served by the test kit's fake
//! Hub on 127.0.0.1, read by `cardfill inspect --from-hub`; prints what crossed the wire.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use cardfill_testkit::fakehub::{FakeHub, Model};

use crate::checkpoints::Checkpoint;

/// The most `--from-hub` may transfer for any model size (the "a few MB").
const GOAL_BYTES: u64 = 4 << 20;

/// Reads `checkpoint` from a fake Hub with `cardfill` and prints the bytes and requests, the
/// bytes the Hub sent, against the repository's size; the count must equal the local one.
pub fn transfer(cardfill: &Path, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let hub = FakeHub::start().model("bench/405b", Model::from_dir(&checkpoint.dir));
    let home = tempfile::tempdir()?;
    let out = Command::new(cardfill)
        .args(["inspect", "--from-hub", "bench/405b", "--format", "json"])
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HOME", home.path())
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN")
        .output()
        .context("cannot run cardfill")?;
    if !out.status.success() {
        bail!(
            "inspect --from-hub failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let facts: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let total = facts["parameters"]["total"].as_u64();
    if total != checkpoint.expected_total {
        bail!(
            "inspect --from-hub counted {total:?} parameters, expected {:?}",
            checkpoint.expected_total
        );
    }
    let fetched = facts["hub"]["bytes_fetched"].as_u64().unwrap_or(0);
    let requests = facts["hub"]["requests"].as_u64().unwrap_or(0);
    let size: u64 = walk_size(&checkpoint.dir);
    println!();
    println!(
        "## `--from-hub` transfer ({}, fake Hub on 127.0.0.1)",
        checkpoint.key
    );
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| repository size | {} |",
        cardfill_facts::human_bytes(size)
    );
    println!(
        "| received by cardfill (`hub.bytes_fetched`) | {} ({fetched} B) |",
        cardfill_facts::human_bytes(fetched)
    );
    println!(
        "| file bytes sent by the Hub | {} |",
        cardfill_facts::human_bytes(hub.served_bytes())
    );
    println!("| HTTP requests | {requests} |");
    println!(
        "| goal: at most {} | {} |",
        cardfill_facts::human_bytes(GOAL_BYTES),
        if fetched <= GOAL_BYTES {
            "PASS"
        } else {
            "FAIL"
        }
    );
    Ok(())
}

fn walk_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
