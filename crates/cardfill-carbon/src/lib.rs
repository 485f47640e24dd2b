//! Carbon: energy × PUE × the grid intensity of a region, from a sourced table embedded in the
//! binary (`data/`), with an opt-in live intensity source.
//!
//! Owns the `carbon.*` facts. Energy is taken from the best evidence there is: energy given on
//! the command line, then the run record's measured (NVML counters) or sampled energy, then an
//! estimate of power limit or rated board power × devices × hours × utilisation (as the ML CO2
//! Impact calculator does). Intensity comes from `--intensity`, Electricity Maps (opt-in) or the
//! table row of `--region`; PUE from `--pue`, the cloud provider's published figure, or an
//! explicit default named in `data/pue.csv`. Without a region nothing is guessed.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod hardware;
pub mod live;
pub mod table;

use std::time::Duration;

use cardfill_facts::{Facts, Source, Value, paths};

pub use table::{Region, Tables, tables};

/// Where the grid intensity comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IntensitySource {
    /// The embedded table.
    #[default]
    Table,
    /// The Electricity Maps API, falling back to the table.
    ElectricityMaps,
}

/// The kind of training written in `co2_eq_emissions.training_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainingType {
    /// Trained from scratch.
    PreTraining,
    /// Trained from a base model.
    FineTuning,
}

impl TrainingType {
    /// The Hub's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreTraining => "pre-training",
            Self::FineTuning => "fine-tuning",
        }
    }
}

/// Estimate inputs given on the command line.
#[derive(Clone, Debug, Default)]
pub struct CarbonOptions {
    /// `--hardware`: free-text hardware name.
    pub hardware: Option<String>,
    /// `--count`: number of devices.
    pub count: Option<u32>,
    /// `--hours`: hours used.
    pub hours: Option<f64>,
    /// `--region`: region key.
    pub region: Option<String>,
    /// `--pue`: power usage effectiveness.
    pub pue: Option<f64>,
    /// `--intensity`: grid intensity override, g/kWh.
    pub intensity: Option<f64>,
    /// `--utilization`: fraction of the power limit drawn (default 1.0).
    pub utilization: Option<f64>,
    /// `--energy-kwh`: energy already known, kWh.
    pub energy_kwh: Option<f64>,
    /// `--intensity-source`.
    pub intensity_source: IntensitySource,
    /// `--detect-cloud`: ask the instance metadata services for provider and region.
    pub detect_cloud: bool,
    /// `--training-type`.
    pub training_type: Option<TrainingType>,
    /// `--online`: network use allowed (live intensity).
    pub online: bool,
}

/// Why a carbon estimate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CarbonError {
    /// The region is not in the table.
    #[error("unknown region `{region}`{}; `cardfill regions` lists them all", suggest(.suggestions))]
    UnknownRegion {
        /// The region asked for.
        region: String,
        /// Close keys in the table.
        suggestions: Vec<String>,
    },
    /// The hardware name matches no row of the power table.
    #[error(
        "unknown hardware `{name}`: not in the power table; give a name such as \"A100 PCIe 40GB\" or pass --energy-kwh"
    )]
    UnknownHardware {
        /// The name given.
        name: String,
    },
    /// A flag's value is out of range.
    #[error("`{flag} {value}`: {problem}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: f64,
        /// What is wrong.
        problem: &'static str,
    },
    /// An embedded table failed to parse (a build defect).
    #[error("embedded carbon table is malformed: {0}")]
    Table(String),
}

fn suggest(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", s.join(", "))
    }
}

/// Timeout of every network request (metadata services, Electricity Maps).
const NETWORK_TIMEOUT: Duration = Duration::from_secs(2);
/// Timeout of each instance metadata request (link-local: answers fast or never).
const METADATA_TIMEOUT: Duration = Duration::from_millis(500);

/// Energy and how it was obtained.
struct Energy {
    kwh: f64,
    method: String,
    source: Source,
}

/// Rounds to `digits` decimals.
fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn check(
    flag: &'static str,
    value: Option<f64>,
    ok: fn(f64) -> bool,
    problem: &'static str,
) -> Result<(), CarbonError> {
    match value {
        Some(v) if !v.is_finite() || !ok(v) => Err(CarbonError::Invalid {
            flag,
            value: v,
            problem,
        }),
        _ => Ok(()),
    }
}

fn validate(o: &CarbonOptions) -> Result<(), CarbonError> {
    check(
        "--hours",
        o.hours,
        |v| v >= 0.0,
        "hours must be zero or more",
    )?;
    check(
        "--pue",
        o.pue,
        |v| (1.0..=5.0).contains(&v),
        "PUE must be between 1.0 and 5.0",
    )?;
    check(
        "--intensity",
        o.intensity,
        |v| (0.0..=2000.0).contains(&v),
        "intensity must be between 0 and 2000 g/kWh",
    )?;
    check(
        "--utilization",
        o.utilization,
        |v| v > 0.0 && v <= 1.0,
        "utilisation must be in (0, 1]",
    )?;
    check(
        "--energy-kwh",
        o.energy_kwh,
        |v| v >= 0.0,
        "energy must be zero or more",
    )?;
    Ok(())
}

/// Energy from the best evidence available, or `None` when there is none.
fn energy(
    known: &Facts,
    o: &CarbonOptions,
    warnings: &mut Facts,
) -> Result<Option<Energy>, CarbonError> {
    if let Some(kwh) = o.energy_kwh {
        return Ok(Some(Energy {
            kwh,
            method: "measured: energy given with --energy-kwh".into(),
            source: Source::flag("--energy-kwh"),
        }));
    }
    if let Some(fact) = known.get(paths::RUN_ENERGY_KWH)
        && let Some(kwh) = fact.value.as_f64().filter(|v| v.is_finite() && *v >= 0.0)
    {
        let method = match known.str(paths::RUN_ENERGY_METHOD) {
            Some("sampled") => "sampled: power readings of the run record".to_owned(),
            Some("measured") | None => {
                "measured: NVML energy counters of the run record".to_owned()
            }
            Some(other) => format!("{other}: energy of the run record"),
        };
        return Ok(Some(Energy {
            kwh,
            method,
            source: fact.source.clone(),
        }));
    }
    estimate(known, o, warnings)
}

/// Power × devices × hours × utilisation.
fn estimate(
    known: &Facts,
    o: &CarbonOptions,
    warnings: &mut Facts,
) -> Result<Option<Energy>, CarbonError> {
    // Watts per device, the device, what the watts are and their source, and the count.
    let (watts, device, what, cite, count, count_note) = if let Some(name) = &o.hardware {
        let resolved = hardware::resolve(name)?
            .ok_or_else(|| CarbonError::UnknownHardware { name: name.clone() })?;
        // --count, else the count in the name ("8x V100"), else the record's.
        let (count, note) = o
            .count
            .or(resolved.count)
            .map(f64::from)
            .or(known.u64(paths::HARDWARE_GPU_COUNT).map(|n| n as f64))
            .map_or((1.0, " (one device: no --count)"), |n| (n, ""));
        let d = resolved.device;
        (
            d.watts,
            d.name.clone(),
            "rated board power",
            d.source.clone(),
            count,
            note,
        )
    } else {
        let gpus = known
            .value(paths::HARDWARE_GPUS)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if gpus.is_empty() {
            return Ok(None);
        }
        let limits: Vec<f64> = gpus
            .iter()
            .filter_map(|g| g.get("power_limit_w").and_then(Value::as_f64))
            .filter(|w| *w > 0.0)
            .collect();
        let name = gpus
            .iter()
            .find_map(|g| g.get("name").and_then(Value::as_str))
            .unwrap_or("GPU")
            .to_owned();
        let (watts, device, what, cite) = if limits.len() == gpus.len() {
            (
                limits.iter().sum::<f64>() / limits.len() as f64,
                name.clone(),
                "power limit",
                "hardware.gpus[].power_limit_w of the run record".to_owned(),
            )
        } else {
            match hardware::resolve(&name)? {
                Some(r) => (
                    r.device.watts,
                    r.device.name.clone(),
                    "rated board power",
                    r.device.source.clone(),
                ),
                None => {
                    warnings.warn("carbon-hardware-unknown", format!("GPU `{name}` has no power limit in the record and is not in the power table: energy not estimated; pass --hardware or --energy-kwh"));
                    return Ok(None);
                }
            }
        };
        let count = o
            .count
            .map(f64::from)
            .or(known.u64(paths::HARDWARE_GPU_COUNT).map(|n| n as f64))
            .unwrap_or(gpus.len() as f64);
        (watts, device, what, cite, count, "")
    };
    let Some(hours) = o.hours.or(known.f64(paths::RUN_HOURS)) else {
        warnings.warn(
            "carbon-hours-missing",
            "hardware known but hours unknown: energy not estimated; pass --hours",
        );
        return Ok(None);
    };
    let utilization = o.utilization.unwrap_or(1.0);
    let kwh = watts * count * hours * utilization / 1000.0;
    let method = format!(
        "estimated: {count} × {device} at {watts} W {what}{count_note} × {hours} h × utilisation {utilization:.2}"
    );
    Ok(Some(Energy {
        kwh,
        method,
        source: Source::derived(format!(
            "power × devices × hours × utilisation; {what}: {cite}"
        )),
    }))
}

/// Whether the user forbade the network (`HF_HUB_OFFLINE`).
fn offline_forced() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Intensity from Electricity Maps for `row`'s grid, or a warning and `None`.
fn live_intensity(
    known: &Facts,
    o: &CarbonOptions,
    row: &Region,
    warnings: &mut Facts,
) -> Option<(f64, String, Source)> {
    let fallback = |warnings: &mut Facts, why: String| {
        warnings.warn(
            "carbon-live-intensity-unavailable",
            format!("{why}; using the table ({})", row.intensity_source()),
        );
        None
    };
    if !o.online || offline_forced() {
        return fallback(
            warnings,
            "live intensity needs --online (and no HF_HUB_OFFLINE)".into(),
        );
    }
    let Some(token) = std::env::var(live::ELECTRICITYMAPS_TOKEN_VAR)
        .ok()
        .filter(|t| !t.is_empty())
    else {
        return fallback(
            warnings,
            format!("{} is not set", live::ELECTRICITYMAPS_TOKEN_VAR),
        );
    };
    if row.em_zone.is_empty() {
        return fallback(
            warnings,
            format!("no Electricity Maps zone known for `{}`", row.grid),
        );
    }
    let base = std::env::var(live::ELECTRICITYMAPS_URL_VAR)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| live::ELECTRICITYMAPS_URL.to_owned());
    let window = known.str(paths::RUN_START).zip(known.str(paths::RUN_END));
    match live::electricitymaps(&base, &token, &row.em_zone, window, NETWORK_TIMEOUT) {
        Ok(found) => {
            let when = match window {
                Some((s, e)) => format!("mean of {} hourly values {s} to {e}", found.points),
                None => "latest value".to_owned(),
            };
            let text = format!("Electricity Maps zone {}, {when}", row.em_zone);
            let source = Source::network(found.url, format!("carbonIntensity, {when}"));
            Some((found.g_per_kwh, text, source))
        }
        Err(e) => fallback(warnings, format!("Electricity Maps failed: {e}")),
    }
}

/// The table row of the region the instance metadata services name, with its source; a
/// warning in `facts` and `None` when no service answers or the region is not in the table.
fn detected_region(facts: &mut Facts) -> Result<Option<(&'static Region, Source)>, CarbonError> {
    let found = match live::detect_cloud(&live::MetadataEndpoints::from_env(), METADATA_TIMEOUT) {
        Ok(found) => found,
        Err(errors) => {
            let why = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            facts.warn(
                "carbon-cloud-not-detected",
                format!("--detect-cloud: no metadata service answered ({why})"),
            );
            return Ok(None);
        }
    };
    match tables()?.region(&found.key()) {
        Ok(row) => Ok(Some((
            row,
            Source::network(found.url, "instance metadata region"),
        ))),
        Err(e) => {
            facts.warn(
                "carbon-cloud-region-unknown",
                format!("--detect-cloud: {e}"),
            );
            Ok(None)
        }
    }
}

/// Collects `carbon.*` facts from the run facts in `known` and the options.
///
/// Errors on an unknown region or hardware name and on out-of-range flags; missing evidence is
/// a warning in the facts.
pub fn collect(known: &Facts, options: &CarbonOptions) -> Result<Facts, CarbonError> {
    validate(options)?;
    // The embedded tables are parsed on first use only: most runs never need them.
    let mut facts = Facts::new();

    // Region: --region, else the metadata services when asked.
    let located = match &options.region {
        Some(key) => Some((tables()?.region(key)?, Source::flag("--region"))),
        None if options.detect_cloud => detected_region(&mut facts)?,
        None => None,
    };
    let row = located.as_ref().map(|(row, _)| *row);
    if let Some((row, region_source)) = located {
        facts.set(
            paths::CARBON_REGION,
            row.key.as_str(),
            region_source.clone(),
        );
        facts.set(
            paths::CARBON_LOCATION,
            row.location.as_str(),
            Source::derived(format!("intensity table row `{}`", row.key)),
        );
        if !row.provider.is_empty() {
            let name = tables()?
                .provider(&row.provider)
                .map_or(row.provider.as_str(), |p| p.provider_name.as_str());
            facts.set(paths::CARBON_PROVIDER, name, region_source);
        }
    }

    // Intensity: --intensity, else live (opt-in), else the table.
    let intensity = if let Some(g) = options.intensity {
        Some((
            g,
            "given with --intensity".to_owned(),
            Source::flag("--intensity"),
        ))
    } else if let Some(row) = row {
        let live = match options.intensity_source {
            IntensitySource::ElectricityMaps => live_intensity(known, options, row, &mut facts),
            IntensitySource::Table => None,
        };
        live.or_else(|| {
            Some((
                row.g_per_kwh,
                row.intensity_source(),
                Source::derived(format!(
                    "intensity table row `{}`: {}",
                    row.key,
                    row.intensity_source()
                )),
            ))
        })
    } else {
        None
    };
    if let Some((g, text, source)) = &intensity {
        facts.set(paths::CARBON_INTENSITY, round(*g, 1), source.clone());
        facts.set(
            paths::CARBON_INTENSITY_SOURCE,
            text.as_str(),
            source.clone(),
        );
    }

    let energy = energy(known, options, &mut facts)?;
    let Some(energy) = energy else {
        if options.region.is_some() || options.intensity.is_some() {
            facts.warn("carbon-energy-missing", "no energy evidence: CO2 not estimated; pass --hardware and --hours, --energy-kwh, or wrap the run with `cardfill run`");
        }
        return Ok(facts);
    };
    facts.set(
        paths::CARBON_ENERGY_KWH,
        round(energy.kwh, 3),
        energy.source.clone(),
    );
    facts.set(paths::CARBON_METHOD, energy.method.as_str(), energy.source);

    let Some((g, _, _)) = intensity else {
        facts.warn("carbon-region-missing", "no --region: CO2 not estimated; pass --region (e.g. aws:us-east-1, gcp:europe-west4, FR, US-CA) or --intensity; `cardfill regions` lists them");
        return Ok(facts);
    };

    // PUE: --pue, else the provider's published figure, else the printed default.
    let (pue, pue_source) = match (options.pue, row.and_then(|r| r.pue.map(|p| (p, r)))) {
        (Some(p), _) => (p, Source::flag("--pue")),
        (None, Some((p, r))) => (
            p,
            Source::derived(format!("published PUE of {}: {}", r.provider, r.pue_source)),
        ),
        (None, None) => {
            let d = tables()?
                .provider("default")
                .and_then(|d| d.pue.map(|p| (p, d)))
                .ok_or_else(|| CarbonError::Table("`data/pue.csv` has no `default` row".into()))?;
            let year = d.1.year.map(|y| format!(", {y}")).unwrap_or_default();
            (
                d.0,
                Source::default_value(format!(
                    "PUE {} ({}{year}): no provider figure for this region; set --pue",
                    d.0, d.1.source
                )),
            )
        }
    };
    facts.set(paths::CARBON_PUE, pue, pue_source);
    let grams = energy.kwh * pue * g;
    facts.set(
        paths::CARBON_CO2_GRAMS,
        round(grams, 1),
        Source::derived("energy_kwh × pue × intensity_g_per_kwh"),
    );

    let (training, source) = match options.training_type {
        Some(t) => (t, Source::flag("--training-type")),
        None if known.contains(paths::MODEL_BASE_MODEL) => (
            TrainingType::FineTuning,
            Source::derived("model.base_model is known"),
        ),
        None => (
            TrainingType::PreTraining,
            Source::derived("no model.base_model"),
        ),
    };
    facts.set(paths::CARBON_TRAINING_TYPE, training.as_str(), source);
    Ok(facts)
}
