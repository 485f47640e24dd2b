//! Big but valid inputs of issue 12's memory table, written at a chosen scale (1.0 = the
//! issue's size): a deeply nested pickle, a flat-list pickle, a `trainer_state.json`, a GGUF
//! with a million tensors and a run record. Each builder writes one checkpoint directory and
//! returns what `inspect` must report for it. They are built by tests and the benchmark,
//! never committed.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;

use crate::gguf::{GgufTensor, write_gguf};
use crate::torch::{PickleWriter, write_torch_zip};

/// One memory case: its name and what a correct `inspect --format json` holds.
#[derive(Clone, Debug)]
pub struct MemoryCase {
    /// Short name (`nested-pickle`, …).
    pub name: &'static str,
    /// The issue's description of the input.
    pub what: &'static str,
    /// `(dotted path, value)` the facts must hold.
    pub expect: Vec<(&'static str, serde_json::Value)>,
    /// Bytes of the big file.
    pub bytes: u64,
}

fn scaled(n: u64, scale: f64) -> u64 {
    ((n as f64 * scale) as u64).max(1)
}

fn config(dir: &Path) -> anyhow::Result<()> {
    fs_err::write(
        dir.join("config.json"),
        r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "float32"}"#,
    )?;
    Ok(())
}

/// A state-dict pickle with one tensor `w` (2×3 F32) and, under `extra`, what `body` writes.
fn state_dict_with(body: impl FnOnce(&mut PickleWriter)) -> Vec<u8> {
    let mut p = PickleWriter::new();
    p.ordered_dict();
    p.op(b'(');
    p.str("w");
    p.tensor("FloatStorage", "0", 6, &[2, 3]);
    p.str("extra");
    body(&mut p);
    p.op(b'u');
    p.stop()
}

/// `pytorch_model.bin` whose pickle holds a tensor and a value nested ~19 M levels deep
/// (`TUPLE1` over and over: one byte a level) at scale 1.
pub fn nested_pickle(dir: &Path, scale: f64) -> anyhow::Result<MemoryCase> {
    config(dir)?;
    let levels = scaled(19_000_000, scale);
    let pkl = state_dict_with(|p| {
        p.op(b'N');
        p.out.extend(std::iter::repeat_n(0x85u8, levels as usize));
    });
    let bytes = pkl.len() as u64;
    write_torch_zip(&dir.join("pytorch_model.bin"), &pkl, &[("0".into(), 24)])?;
    Ok(MemoryCase {
        name: "nested-pickle",
        what: "a 19 MB deeply nested pickle",
        expect: vec![],
        bytes,
    })
}

/// `pytorch_model.bin` whose pickle holds a tensor and a flat list of ~19 M small integers
/// (38 MB) at scale 1.
pub fn flat_list_pickle(dir: &Path, scale: f64) -> anyhow::Result<MemoryCase> {
    config(dir)?;
    let items = scaled(19_000_000, scale);
    let pkl = state_dict_with(|p| {
        p.op(b']');
        let mut left = items;
        while left > 0 {
            let batch = left.min(1000);
            p.op(b'(');
            for i in 0..batch {
                p.out.extend([b'K', (i % 251) as u8]);
            }
            p.op(b'e');
            left -= batch;
        }
    });
    let bytes = pkl.len() as u64;
    write_torch_zip(&dir.join("pytorch_model.bin"), &pkl, &[("0".into(), 24)])?;
    Ok(MemoryCase {
        name: "flat-list-pickle",
        what: "a 38 MB flat-list pickle",
        expect: vec![("parameters.total", 6.into())],
        bytes,
    })
}

/// `trainer_state.json` of ~200 MB at scale 1: a long `log_history` and two `train()` calls.
pub fn trainer_state(dir: &Path, scale: f64) -> anyhow::Result<MemoryCase> {
    config(dir)?;
    let path = dir.join("trainer_state.json");
    let mut w = BufWriter::new(fs_err::File::create(&path)?);
    let target = scaled(200_000_000, scale);
    write!(
        w,
        "{{\"best_metric\": null, \"epoch\": 3.0, \"global_step\": 123456, \"total_flos\": 1.5e18, \"log_history\": ["
    )?;
    let mut written = 0u64;
    let mut step = 0u64;
    while written < target {
        let line = format!(
            "{{\"epoch\": {:.4}, \"grad_norm\": 0.8125, \"learning_rate\": 1.9e-05, \"loss\": 1.2345, \"step\": {step}}},\n",
            step as f64 / 100_000.0
        );
        written += line.len() as u64;
        w.write_all(line.as_bytes())?;
        step += 1;
        if step == 10 {
            w.write_all(
                b"{\"step\": 10, \"train_runtime\": 1000.0, \"train_samples_per_second\": 1.0},\n",
            )?;
        }
    }
    w.write_all(
        b"{\"step\": 123456, \"train_runtime\": 2500.5, \"train_samples_per_second\": 9.5, \"train_steps_per_second\": 0.5}]}",
    )?;
    w.flush()?;
    let bytes = fs_err::metadata(&path)?.len();
    Ok(MemoryCase {
        name: "trainer-state",
        what: "a 200 MB trainer_state.json",
        expect: vec![
            ("training.steps", 123456.into()),
            ("training.runtime_s", 3500.5.into()),
            ("training.samples_per_second", 9.5.into()),
        ],
        bytes,
    })
}

/// `model.gguf` with ~1 M tensors (F32, 4 × 8 each) at scale 1.
pub fn gguf_tensors(dir: &Path, scale: f64) -> anyhow::Result<MemoryCase> {
    let n = scaled(1_000_000, scale);
    let tensors: Vec<GgufTensor> = (0..n)
        .map(|i| GgufTensor::new(format!("blk.{}.t{}.weight", i / 100, i % 100), &[4, 8], 0))
        .collect();
    let path = dir.join("model.gguf");
    let bytes = write_gguf(&path, 3, &[], &tensors).context("write the GGUF")?;
    Ok(MemoryCase {
        name: "gguf-1m",
        what: "a GGUF with 1 M tensors",
        expect: vec![("parameters.total", (n * 32).into())],
        bytes,
    })
}

/// A run record in `.cardfill/` of ~300 MB at scale 1: a real record plus a large field this
/// version does not know (a newer writer's power samples).
pub fn run_record(dir: &Path, scale: f64) -> anyhow::Result<MemoryCase> {
    config(dir)?;
    let rec = dir.join(".cardfill");
    fs_err::create_dir_all(&rec)?;
    let path = rec.join("node1_slurm-7.json");
    let mut w = BufWriter::new(fs_err::File::create(&path)?);
    write!(
        w,
        "{{\"format\": \"cardfill-run-record\", \"version\": 1, \"kind\": \"run\", \"cardfill_version\": \"0.1.0\", \"node\": \"node1\", \"run_key\": \"slurm-7\", \"start\": \"2026-01-01T00:00:00.000Z\", \"end\": \"2026-01-01T10:00:00.000Z\", \"wall_s\": 36000.0, \"power_samples\": ["
    )?;
    let target = scaled(300_000_000, scale);
    let mut written = 0u64;
    let mut first = true;
    while written < target {
        let s = if first {
            "[0.0, 301.25]"
        } else {
            ", [10.0, 299.5]"
        };
        first = false;
        written += s.len() as u64;
        w.write_all(s.as_bytes())?;
    }
    w.write_all(b"]}")?;
    w.flush()?;
    let bytes = fs_err::metadata(&path)?.len();
    Ok(MemoryCase {
        name: "run-record",
        what: "a 300 MB run record",
        expect: vec![("run.hours", 10.0.into())],
        bytes,
    })
}

/// Every case, each in its own sub-directory of `root`.
pub fn all(root: &Path, scale: f64) -> anyhow::Result<Vec<(std::path::PathBuf, MemoryCase)>> {
    type Builder = fn(&Path, f64) -> anyhow::Result<MemoryCase>;
    let builders: [(&str, Builder); 5] = [
        ("nested-pickle", nested_pickle),
        ("flat-list-pickle", flat_list_pickle),
        ("trainer-state", trainer_state),
        ("gguf-1m", gguf_tensors),
        ("run-record", run_record),
    ];
    let mut out = Vec::new();
    for (name, build) in builders {
        let dir = root.join(name);
        fs_err::create_dir_all(&dir)?;
        out.push((dir.clone(), build(&dir, scale)?));
    }
    Ok(out)
}
