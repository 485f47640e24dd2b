//! `cardfill co2`: the carbon calculator (hardware × hours, or energy, × PUE × grid intensity).
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::process::ExitCode;

use cardfill_carbon::CarbonOptions;
use cardfill_facts::{Facts, paths};

use super::EXIT_OK;
use crate::cli::*;
use crate::report;

/// Runs `co2`.
pub fn run(args: &Co2Args) -> anyhow::Result<ExitCode> {
    let options = CarbonOptions {
        hardware: args.hardware.clone(),
        count: args.count,
        hours: args.hours,
        region: args.region.clone(),
        pue: args.pue,
        intensity: args.intensity,
        utilization: args.utilization,
        energy_kwh: args.energy_kwh,
        ..CarbonOptions::default()
    };
    crate::plausible::check(args.hours, args.count, args.energy_kwh)?;
    if options.energy_kwh.is_none() && options.hardware.is_some() && options.hours.is_none() {
        anyhow::bail!("--hardware needs --hours (or give --energy-kwh)");
    }
    let mut facts = cardfill_carbon::collect(&Facts::new(), &options)?;
    // A calculator knows nothing of the model: no training type.
    facts.remove(paths::CARBON_TRAINING_TYPE);
    if !facts.contains(paths::CARBON_CO2_GRAMS) {
        let why = facts.warnings().first().map_or_else(
            || {
                "nothing to estimate: pass --hardware and --hours (or --energy-kwh), and --region \
                 (or --intensity)"
                    .to_owned()
            },
            |w| match w.code.as_str() {
                // The run-record hint is for `fill`; a calculator needs its inputs.
                "carbon-energy-missing" => {
                    "no energy to estimate from: pass --hardware and --hours, or --energy-kwh"
                        .to_owned()
                }
                _ => w.message.clone(),
            },
        );
        anyhow::bail!(why);
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &facts.to_json())?;
            writeln!(out)?;
        }
        Format::Text => write_text(&mut out, &facts)?,
    }
    out.flush()?;
    for w in facts.warnings() {
        report::warning(w);
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// Grams as a readable mass: g below 1 kg, kg below 1 t, else t.
pub fn mass(grams: f64) -> String {
    if grams < 1_000.0 {
        format!("{grams:.1} g")
    } else if grams < 1_000_000.0 {
        format!("{:.1} kg", grams / 1_000.0)
    } else {
        format!("{:.2} t", grams / 1_000_000.0)
    }
}

/// One line per quantity, with where it came from.
fn write_text(out: &mut impl Write, f: &Facts) -> std::io::Result<()> {
    let num = |p: &str| f.f64(p).unwrap_or_default();
    let source = |p: &str| f.get(p).map(|x| x.source.to_string()).unwrap_or_default();
    let (kwh, pue, g, grams) = (
        num(paths::CARBON_ENERGY_KWH),
        num(paths::CARBON_PUE),
        num(paths::CARBON_INTENSITY),
        num(paths::CARBON_CO2_GRAMS),
    );
    let mut rows: Vec<(&str, String, String)> = Vec::new();
    if let Some(region) = f.str(paths::CARBON_REGION) {
        let place = [paths::CARBON_PROVIDER, paths::CARBON_LOCATION]
            .iter()
            .filter_map(|p| f.str(p))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(("region", region.to_owned(), place));
    }
    rows.push((
        "energy",
        format!("{kwh} kWh"),
        f.str(paths::CARBON_METHOD).unwrap_or_default().to_owned(),
    ));
    rows.push(("pue", format!("{pue:.2}"), source(paths::CARBON_PUE)));
    rows.push((
        "intensity",
        format!("{g} g CO2eq/kWh"),
        f.str(paths::CARBON_INTENSITY_SOURCE)
            .unwrap_or_default()
            .to_owned(),
    ));
    rows.push((
        "co2",
        format!("{} CO2eq", mass(grams)),
        format!("{kwh} kWh × PUE {pue:.2} × {g} g/kWh"),
    ));
    let w1 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w2 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    for (name, value, note) in rows {
        let pad = w2 - value.chars().count();
        writeln!(out, "{name:<w1$}  {value}{:pad$}  {note}", "")?;
    }
    Ok(())
}
