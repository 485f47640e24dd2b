//! `cardfill probe`: this node's hardware and the job so far, written as a run record
//! (one per node, e.g. `srun --ntasks-per-node=1 cardfill probe --record DIR`).
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use cardfill_hardware::record::{RunRecord, record_dir};

use super::EXIT_OK;
use crate::cli::{Format, ProbeArgs};

/// Runs `probe`.
#[inline(never)]
pub fn run(args: &ProbeArgs) -> anyhow::Result<ExitCode> {
    let dir = record_dir(args.record.as_deref().unwrap_or(Path::new(".")));
    let (record, _path, warnings) = if args.begin {
        cardfill_hardware::training::begin_training(&dir)?
    } else if args.end {
        let info = match &args.training {
            Some(file) => Some(read_training(file)?),
            None => None,
        };
        cardfill_hardware::training::end_training(&dir, None, info)?
    } else if let Some(file) = &args.training {
        cardfill_hardware::training::update_training(&dir, None, read_training(file)?)?
    } else {
        cardfill_hardware::probe_node(&dir)?
    };
    for message in warnings {
        crate::report::warning(&cardfill_facts::Warning {
            code: "run-record-file-skipped".to_owned(),
            message,
        });
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        Some(Format::Json) => {
            serde_json::to_writer_pretty(&mut out, &record)?;
            writeln!(out)?;
        }
        Some(Format::Text) => write_text(&mut out, &record)?,
        None => {}
    }
    out.flush()?;
    Ok(ExitCode::from(EXIT_OK))
}

/// `--training FILE`: the training process's facts (`-`: standard input).
fn read_training(file: &Path) -> anyhow::Result<cardfill_hardware::training::TrainingInfo> {
    let text = if file == Path::new("-") {
        std::io::read_to_string(std::io::stdin().lock())
            .context("cannot read --training from standard input")?
    } else {
        fs_err::read_to_string(file).context("cannot read --training")?
    };
    Ok(cardfill_hardware::training::read_info(
        &text,
        &format!("--training {}", file.display()),
    )?)
}

/// A few readable lines: node, GPUs, NVML, job.
fn write_text(out: &mut impl Write, r: &RunRecord) -> std::io::Result<()> {
    writeln!(out, "node      {}", r.node)?;
    let mut names: Vec<(String, usize)> = Vec::new();
    for g in &r.gpus {
        let name = g.name.clone().unwrap_or_else(|| "unknown GPU".to_owned());
        match names.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => names.push((name, 1)),
        }
    }
    let gpus = if names.is_empty() {
        "none".to_owned()
    } else {
        names
            .iter()
            .map(|(n, c)| format!("{c} × {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(out, "gpus      {gpus}")?;
    let nvml = serde_json::to_value(r.nvml.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match &r.nvml.message {
        Some(m) => writeln!(out, "nvml      {nvml}: {m}")?,
        None => writeln!(out, "nvml      {nvml}")?,
    }
    if let Some(v) = &r.nvml.driver_version {
        writeln!(out, "driver    {v}")?;
    }
    if let Some(cpu) = &r.host.cpu {
        writeln!(out, "cpu       {cpu}")?;
    }
    if let Some(job) = &r.slurm {
        writeln!(out, "slurm job {}", job.job_id)?;
    }
    Ok(())
}
