//! Runs every collector on a checkpoint directory and merges their facts.
//!
//! Collectors are independent: one that fails becomes a warning and the others still run.
//! Order is order of trust for the paths two collectors share: flags, then the run, then
//! files, then what the Hub says.

use std::path::Path;

use cardfill_facts::{Facts, Source};

use crate::cli::EvidenceArgs;
use crate::report::{fatal, io_words};

/// Errors when `dir` is missing, not a directory, or cannot be listed.
pub fn check_dir(dir: &Path) -> anyhow::Result<()> {
    check_is_dir(dir)?;
    check_listable(dir)
}

/// Errors when `dir` is missing or not a directory.
fn check_is_dir(dir: &Path) -> anyhow::Result<()> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(fatal(
                "not-a-directory",
                Some(dir),
                format!("`{shown}` is not a directory: pass the checkpoint directory"),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fatal(
                "dir-missing",
                Some(dir),
                format!("`{shown}` does not exist: pass an existing checkpoint directory"),
            ));
        }
        Err(e) => {
            return Err(fatal(
                "dir-unreadable",
                Some(dir),
                format!(
                    "cannot read `{shown}`: {}: check the path and its permissions",
                    io_words(&e)
                ),
            ));
        }
    }
    Ok(())
}

/// Errors when `dir` cannot be listed.
fn check_listable(dir: &Path) -> anyhow::Result<()> {
    let shown = dir.display();
    std::fs::read_dir(dir).map_err(|e| {
        fatal(
            "dir-unreadable",
            Some(dir),
            format!(
                "cannot list `{shown}`: {}: give read access to the directory (chmod a+r) or run as its owner",
                io_words(&e)
            ),
        )
    })?;
    Ok(())
}

/// Collects every fact about the checkpoint in `dir`, trained on this machine or one whose
/// records `dir` holds.
///
/// Errors only when `dir` itself is unusable; collector failures are warnings in the facts.
pub fn collect(dir: &Path, evidence: &EvidenceArgs) -> anyhow::Result<Facts> {
    collect_in(dir, evidence, true)
}

/// [`collect`] for a checkpoint trained elsewhere (read from the Hub): this machine, its Slurm
/// job and its training processes are not evidence.
pub fn collect_elsewhere(dir: &Path, evidence: &EvidenceArgs) -> anyhow::Result<Facts> {
    collect_in(dir, evidence, false)
}

fn collect_in(dir: &Path, evidence: &EvidenceArgs, here: bool) -> anyhow::Result<Facts> {
    // A flag is a promise: a value no run can have is an error before anything is read.
    crate::plausible::check(evidence.hours, evidence.count, None)?;
    check_is_dir(dir)?;

    let mut facts = Facts::new();
    // The directory is listed once, for the checkpoint and the config readers; when it cannot
    // be, the error says why.
    let listing = cardfill_checkpoint::Listing::of(dir);
    if listing.is_err() {
        check_listable(dir)?;
    }
    // While the collectors run, that listing answers their probes for files that are not
    // there, and a config several of them read is read once.
    let _listed = listing
        .as_ref()
        .ok()
        .filter(|l| l.complete)
        .map(|l| cardfill_facts::read::ListedScope::new(dir, l.names()));
    let checkpoint = match &listing {
        Ok(listed) => cardfill_checkpoint::collect_listed(dir, listed),
        Err(_) => cardfill_checkpoint::collect(dir),
    };
    // A trainer output without root weights is inspected at its last `checkpoint-N/`.
    let inspected = checkpoint.as_ref().ok().and_then(|f| {
        f.str(cardfill_facts::paths::CHECKPOINT_INSPECTED_DIR)
            .map(|s| dir.join(s))
    });
    absorb(&mut facts, "checkpoint", checkpoint);
    let config = match &listing {
        Ok(listed) => cardfill_modelconfig::collect_listed(dir, listed),
        Err(_) => cardfill_modelconfig::collect(dir),
    };
    absorb(&mut facts, "config", config);
    if let Some(sub) = inspected {
        absorb(&mut facts, "config", cardfill_modelconfig::collect(&sub));
    }

    // `--hardware "8x V100"` carries its own count; `--count` wins over it.
    let (hardware_count, hardware_name) = match evidence.hardware.as_deref() {
        Some(text) => {
            let (count, name) = cardfill_carbon::hardware::split_count(text);
            (count, Some(name.to_owned()))
        }
        None => (None, None),
    };
    let run_options = cardfill_hardware::RunOptions {
        hours: evidence.hours,
        start: evidence.start.clone(),
        end: evidence.end.clone(),
        hardware: hardware_name,
        count: evidence.count.or(hardware_count),
    };
    let run = if here {
        cardfill_hardware::collect(dir, &facts, &run_options)
    } else {
        cardfill_hardware::collect_elsewhere(dir, &facts, &run_options)
    };
    overlay(&mut facts, "hardware", run);
    // What the training process told its record; it weighs the files' facts itself.
    let training = cardfill_hardware::training::collect(dir, &facts);
    facts.overlay(training);
    if !facts.iter().any(|(_, f)| {
        matches!(
            f.source,
            Source::File { .. } | Source::TrainingProcess { .. }
        )
    }) {
        facts.warn(
            "no-evidence",
            format!(
                "no weights, configs, trainer files or run records in `{}`: only what flags give is known; check the directory",
                dir.display()
            ),
        );
    }

    let hub_options = cardfill_hub::HubOptions {
        online: evidence.online,
        dir: Some(dir.to_path_buf()),
        ..Default::default()
    };
    // The Hub collector sets only paths still unknown (and a merge's list of base models).
    let hub = match crate::network::get() {
        Some(net) => (net.hub_collect)(&facts, &hub_options),
        None => cardfill_hub::collect_offline(&facts, &hub_options),
    };
    overlay(&mut facts, "hub", hub);

    let carbon_options = cardfill_carbon::CarbonOptions {
        hardware: evidence.hardware.clone(),
        count: evidence.count,
        hours: evidence.hours,
        region: evidence.region.clone(),
        pue: evidence.pue,
        intensity: evidence.intensity,
        utilization: evidence.utilization,
        energy_kwh: None,
        intensity_source: match evidence.intensity_source {
            crate::cli::IntensitySource::Table => cardfill_carbon::IntensitySource::Table,
            crate::cli::IntensitySource::Electricitymaps => {
                cardfill_carbon::IntensitySource::ElectricityMaps
            }
        },
        detect_cloud: evidence.detect_cloud,
        training_type: evidence.training_type.map(|t| match t {
            crate::cli::TrainingType::PreTraining => cardfill_carbon::TrainingType::PreTraining,
            crate::cli::TrainingType::FineTuning => cardfill_carbon::TrainingType::FineTuning,
        }),
        online: evidence.online,
        market_intensity: evidence.market_intensity,
        embodied: evidence.embodied,
        live: crate::network::get().map(|net| net.live),
        ..Default::default()
    };
    // An unknown --region or --hardware, or a value out of range, is the user's mistake:
    // an error, as `co2` makes it, not a card without its carbon section.
    let carbon = cardfill_carbon::collect(&facts, &carbon_options)?;
    facts.overlay(carbon);
    Ok(facts)
}

/// Adds a collector's facts beneath those already known.
fn absorb<E: std::fmt::Display>(facts: &mut Facts, name: &str, result: Result<Facts, E>) {
    match result {
        Ok(found) => facts.absorb(found),
        Err(err) => facts.warn(&format!("{name}-collector-failed"), err.to_string()),
    }
}

/// Adds a collector's facts over those already known (it weighed them itself).
fn overlay<E: std::fmt::Display>(facts: &mut Facts, name: &str, result: Result<Facts, E>) {
    match result {
        Ok(found) => facts.overlay(found),
        Err(err) => facts.warn(&format!("{name}-collector-failed"), err.to_string()),
    }
}
