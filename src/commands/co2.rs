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
#[inline(never)]
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
        energy_scope: match args.energy_scope {
            EnergyScope::It => cardfill_carbon::EnergyScope::It,
            EnergyScope::Facility => cardfill_carbon::EnergyScope::Facility,
        },
        market_intensity: args.market_intensity,
        embodied: args.embodied,
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
        Format::Text if args.explain => explain(&mut out, &facts)?,
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

/// Where the grid intensity comes from, with its method after a `; ` when known.
fn intensity_basis(f: &Facts) -> String {
    let mut basis = f
        .str(paths::CARBON_INTENSITY_SOURCE)
        .unwrap_or_default()
        .to_owned();
    if let Some(m) = f.str(paths::CARBON_INTENSITY_METHOD) {
        basis.push_str(&format!("; {m}"));
    }
    basis
}

/// One line per quantity, with where it came from.
fn write_text(out: &mut impl Write, f: &Facts) -> std::io::Result<()> {
    let num = |p: &str| f.f64(p).unwrap_or_default();
    let source = |p: &str| f.get(p).map(|x| x.source.to_string()).unwrap_or_default();
    let (facility, g, grams) = (
        num(paths::CARBON_FACILITY_ENERGY_KWH),
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
    let method = f.str(paths::CARBON_METHOD).unwrap_or_default().to_owned();
    match f.f64(paths::CARBON_ENERGY_KWH) {
        Some(kwh) => rows.push(("energy", format!("{kwh} kWh"), method)),
        None => rows.push(("energy", format!("{facility} kWh"), method)),
    }
    if let Some(pue) = f.f64(paths::CARBON_PUE) {
        rows.push(("pue", format!("{pue:.2}"), source(paths::CARBON_PUE)));
    }
    rows.push((
        "facility",
        format!("{facility} kWh"),
        if f.str(paths::CARBON_ENERGY_SCOPE) == Some("facility") {
            "given as facility energy (--energy-scope facility): no PUE on top".to_owned()
        } else {
            "energy × PUE".to_owned()
        },
    ));
    let intensity_note = intensity_basis(f);
    rows.push(("intensity", format!("{g} g CO2eq/kWh"), intensity_note));
    rows.push((
        "co2",
        format!("{} CO2eq", mass(grams)),
        format!("location-based: {facility} kWh × {g} g/kWh"),
    ));
    if let Some(m) = f.f64(paths::CARBON_CO2_MARKET_GRAMS) {
        rows.push((
            "co2 market",
            format!("{} CO2eq", mass(m)),
            format!(
                "market-based: {facility} kWh × {} g/kWh (--market-intensity)",
                num(paths::CARBON_MARKET_INTENSITY)
            ),
        ));
    }
    if let Some(e) = f.f64(paths::CARBON_EMBODIED_GRAMS) {
        rows.push((
            "embodied",
            format!("{} CO2eq", mass(e)),
            format!(
                "not in co2: {}",
                f.str(paths::CARBON_EMBODIED_METHOD).unwrap_or_default()
            ),
        ));
    }
    let w1 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w2 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    for (name, value, note) in rows {
        let pad = w2 - value.chars().count();
        writeln!(out, "{name:<w1$}  {value}{:pad$}  {note}", "")?;
    }
    Ok(())
}

/// The working, step by step: each input with its source, then each product.
fn explain(out: &mut impl Write, f: &Facts) -> std::io::Result<()> {
    let num = |p: &str| f.f64(p).unwrap_or_default();
    let source = |p: &str| f.get(p).map(|x| x.source.to_string()).unwrap_or_default();
    let mut steps: Vec<String> = Vec::new();
    let facility = num(paths::CARBON_FACILITY_ENERGY_KWH);
    let method = f.str(paths::CARBON_METHOD).unwrap_or_default();
    let facility_given = f.str(paths::CARBON_ENERGY_SCOPE) == Some("facility");
    if facility_given {
        steps.push(format!(
            "facility energy: {facility} kWh, {method} (source: {})",
            source(paths::CARBON_FACILITY_ENERGY_KWH)
        ));
        if let (Some(it), Some(pue)) = (f.f64(paths::CARBON_ENERGY_KWH), f.f64(paths::CARBON_PUE)) {
            steps.push(format!(
                "IT energy: {facility} kWh ÷ PUE {pue:.2} = {it} kWh (for the record; the figure uses facility energy)"
            ));
        }
    } else {
        let it = num(paths::CARBON_ENERGY_KWH);
        steps.push(format!(
            "IT energy: {it} kWh, {} (source: {})",
            method,
            source(paths::CARBON_ENERGY_KWH)
        ));
        let pue = num(paths::CARBON_PUE);
        steps.push(format!("PUE: {pue:.2} ({})", source(paths::CARBON_PUE)));
        steps.push(format!(
            "facility energy: {it} kWh × PUE {pue:.2} = {facility} kWh"
        ));
    }
    let g = num(paths::CARBON_INTENSITY);
    let mut place = String::new();
    if let Some(r) = f.str(paths::CARBON_REGION) {
        place = match f.str(paths::CARBON_LOCATION) {
            Some(l) => format!(" for {r} ({l})"),
            None => format!(" for {r}"),
        };
    }
    let basis = intensity_basis(f);
    steps.push(format!("grid intensity: {g} g CO2eq/kWh{place}: {basis}"));
    let grams = num(paths::CARBON_CO2_GRAMS);
    steps.push(format!(
        "location-based emissions (the headline figure, co2_eq_emissions.emissions): {facility} kWh × {g} g/kWh = {grams} g = {} CO2eq",
        mass(grams)
    ));
    if let Some(m) = f.f64(paths::CARBON_CO2_MARKET_GRAMS) {
        let mi = num(paths::CARBON_MARKET_INTENSITY);
        steps.push(format!(
            "market-based emissions (--market-intensity, reported apart): {facility} kWh × {mi} g/kWh = {m} g = {} CO2eq",
            mass(m)
        ));
    }
    if let Some(e) = f.f64(paths::CARBON_EMBODIED_GRAMS) {
        steps.push(format!(
            "embodied emissions (--embodied, never added to the headline): {} = {e} g = {} CO2eq",
            f.str(paths::CARBON_EMBODIED_METHOD).unwrap_or_default(),
            mass(e)
        ));
    }
    for (i, step) in steps.iter().enumerate() {
        writeln!(out, "{}. {step}", i + 1)?;
    }
    Ok(())
}
