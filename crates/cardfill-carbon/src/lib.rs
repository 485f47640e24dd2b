//! Carbon: IT energy × PUE × the grid intensity of a region, from sourced tables embedded in
//! the binary (`data/`), with an opt-in live intensity source.
//!
//! Owns the `carbon.*` facts. Energy is taken from the best evidence there is: energy given on
//! the command line (`--energy-scope it|facility`), then the run record's measured (NVML, RAPL)
//! or sampled energy, then an estimate: power limit or maximum board power × devices × hours ×
//! utilisation, the CPU's TDP and the RAM at a W/GB figure. GPU, CPU and RAM are kept apart and
//! summed. Intensity comes from `--intensity`, Electricity Maps (opt-in) or the table row of
//! `--region`; PUE from `--pue`, the cloud provider's published figure, or the documented default
//! in `data/pue.csv` (warned). The location-based figure is the headline; market-based and
//! embodied figures are reported apart. Without a region nothing is guessed.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod cpu;
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

/// What an energy figure covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EnergyScope {
    /// The devices only (measured or estimated): the PUE is applied on top.
    #[default]
    It,
    /// The whole data centre already: no PUE is applied.
    Facility,
}

impl EnergyScope {
    /// The flag's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::It => "it",
            Self::Facility => "facility",
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
    /// `--energy-scope`: what `--energy-kwh` covers (default `it`).
    pub energy_scope: EnergyScope,
    /// `--market-intensity`: supplier factor or procured renewables, g/kWh (market-based).
    pub market_intensity: Option<f64>,
    /// `--embodied`: add the amortised manufacture of the accelerators under its own key.
    pub embodied: bool,
    /// The HTTP lookups (live intensity, cloud detection), [`live::LIVE`] in a binary that
    /// links the HTTP client; `None` leaves them out of the binary (the offline `cardfill`,
    /// which hands such runs to `cardfill-online`).
    pub live: Option<live::Live>,
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
    /// The hardware name matches no row of the power table, or a row without a figure.
    #[error(
        "hardware `{name}` refused: {why}{}",
        nearest(.suggestions)
    )]
    UnknownHardware {
        /// The name given.
        name: String,
        /// Why it was refused.
        why: String,
        /// The nearest rows.
        suggestions: Vec<String>,
    },
    /// Two options that cannot go together.
    #[error("{0}")]
    Conflict(String),
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

fn nearest(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(" (nearest rows: {})", s.join(", "))
    }
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
    /// Accelerators counted (GPU-equivalents, MIG shares included), where known.
    devices: Option<f64>,
    /// Hours they ran, where known.
    hours: Option<f64>,
    /// GPU, CPU and RAM shares, each with its source, where known apart.
    parts: Vec<(&'static str, f64, Source)>,
}

/// Embodied emissions of one accelerator: BLOOM's per-GPU figure (Luccioni et al. 2022,
/// "Estimating the Carbon Footprint of BLOOM", §4.1): 150 kg CO2eq per GPU, amortised over a
/// 6-year replacement cycle at 85% use.
pub const EMBODIED_KG_PER_GPU: f64 = 150.0;
/// Years of use over which a GPU's manufacture is amortised (BLOOM paper).
pub const EMBODIED_LIFE_YEARS: f64 = 6.0;
/// Fraction of its life a GPU is in use (BLOOM paper).
pub const EMBODIED_USE_RATE: f64 = 0.85;

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
        "--market-intensity",
        o.market_intensity,
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
        // Devices and hours still matter for the embodied share.
        let devices = o
            .count
            .map(f64::from)
            .or(known.u64(paths::HARDWARE_GPU_COUNT).map(|n| n as f64));
        return Ok(Some(Energy {
            kwh,
            method: format!(
                "measured: energy given with --energy-kwh ({} energy)",
                match o.energy_scope {
                    EnergyScope::It => "IT",
                    EnergyScope::Facility => "facility",
                }
            ),
            source: Source::flag("--energy-kwh"),
            devices,
            hours: o.hours.or(known.f64(paths::RUN_HOURS)),
            parts: Vec::new(),
        }));
    }
    if o.energy_scope == EnergyScope::Facility {
        return Err(CarbonError::Conflict(
            "--energy-scope facility describes --energy-kwh: pass the facility energy with --energy-kwh, or drop --energy-scope".into(),
        ));
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
        return Ok(Some(
            Energy {
                kwh,
                method,
                source: fact.source.clone(),
                devices: known.u64(paths::HARDWARE_GPU_COUNT).map(|n| n as f64),
                hours: known.f64(paths::RUN_HOURS),
                parts: Vec::new(),
            }
            .with_host(known, o, warnings)?,
        ));
    }
    estimate(known, o, warnings)?
        .map(|e| e.with_host(known, o, warnings))
        .transpose()
}

impl Energy {
    /// Adds the CPU and RAM energy: RAPL of the run records, else the CPU's TDP and the RAM at
    /// a W/GB figure × hours × nodes. GPU, CPU and RAM each keep their source.
    fn with_host(
        mut self,
        known: &Facts,
        o: &CarbonOptions,
        warnings: &mut Facts,
    ) -> Result<Self, CarbonError> {
        let hours = o.hours.or(known.f64(paths::RUN_HOURS));
        let nodes = known.u64(paths::RUN_NODES).unwrap_or(1).max(1) as f64;
        let mut extra: Vec<(&'static str, f64, Source, String)> = Vec::new();
        if let Some(f) = known.get(paths::RUN_CPU_ENERGY_KWH) {
            if let Some(kwh) = f.value.as_f64() {
                extra.push((
                    paths::CARBON_ENERGY_CPU_KWH,
                    kwh,
                    f.source.clone(),
                    "CPU measured (RAPL)".into(),
                ));
            }
        } else if let (Some(brand), Some(h)) = (known.str(paths::HARDWARE_CPU), hours) {
            match cpu::resolve(brand)? {
                Some(row) => {
                    let kwh = row.tdp_w * h * nodes / 1000.0;
                    extra.push((
                        paths::CARBON_ENERGY_CPU_KWH,
                        kwh,
                        Source::derived(format!(
                            "TDP × hours × nodes; TDP of {} {} W from cpu_power.csv (CodeCarbon 3.3.2, Intel ARK / AMD specifications)",
                            row.name, row.tdp_w
                        )),
                        format!("CPU estimated: {} at {} W TDP × {h} h × {nodes} nodes", row.name, row.tdp_w),
                    ));
                }
                None => warnings.warn(
                    "carbon-cpu-unknown",
                    format!(
                        "CPU `{brand}` is not in the CPU power table: its energy is not counted"
                    ),
                ),
            }
        }
        if let Some(f) = known.get(paths::RUN_RAM_ENERGY_KWH) {
            if let Some(kwh) = f.value.as_f64() {
                extra.push((
                    paths::CARBON_ENERGY_RAM_KWH,
                    kwh,
                    f.source.clone(),
                    "RAM measured (RAPL DRAM)".into(),
                ));
            }
        } else if let (Some(bytes), Some(h)) = (known.u64(paths::HARDWARE_RAM_BYTES), hours) {
            let gb = bytes as f64 / 1e9;
            let kwh = gb * cpu::RAM_W_PER_GB * h * nodes / 1000.0;
            extra.push((
                paths::CARBON_ENERGY_RAM_KWH,
                kwh,
                Source::derived(format!(
                    "GB × {} W/GB ({}) × hours × nodes",
                    cpu::RAM_W_PER_GB,
                    cpu::RAM_W_PER_GB_SOURCE
                )),
                format!(
                    "RAM estimated: {} GB × {} W/GB × {h} h × {nodes} nodes",
                    round(gb, 1),
                    cpu::RAM_W_PER_GB
                ),
            ));
        }
        if extra.is_empty() {
            return Ok(self);
        }
        self.parts
            .push((paths::CARBON_ENERGY_GPU_KWH, self.kwh, self.source.clone()));
        let mut method = format!("{} (GPU {} kWh)", self.method, round(self.kwh, 3));
        for (path, kwh, source, text) in extra {
            self.kwh += kwh;
            method.push_str(&format!(" + {} kWh {text}", round(kwh, 3)));
            self.parts.push((path, kwh, source));
        }
        self.method = method;
        self.source = Source::derived("GPU + CPU + RAM energy, each with its own source");
        Ok(self)
    }
}

/// Power × devices × hours × utilisation.
fn estimate(
    known: &Facts,
    o: &CarbonOptions,
    warnings: &mut Facts,
) -> Result<Option<Energy>, CarbonError> {
    // Watts per device, the device, what the watts are and their source, the count, a note on
    // the count.
    let (watts, device, what, cite, count, count_note) = if let Some(name) = &o.hardware {
        let resolved = hardware::resolve(name)?;
        if !resolved.rivals.is_empty() {
            warnings.warn(
                "hardware-form-factor-assumed",
                format!(
                    "`{name}` names no form factor: took {}; it could also be {}: give the full name (PCIe, SXM, …)",
                    hardware::label(resolved.device),
                    resolved.rivals.join(", ")
                ),
            );
        }
        // --count, else the count in the name ("8x V100"), else the record's.
        let (count, note) = o
            .count
            .or(resolved.count)
            .map(f64::from)
            .or(known.u64(paths::HARDWARE_GPU_COUNT).map(|n| n as f64))
            .map_or((1.0, " (one device: no --count)".to_owned()), |n| {
                (n, String::new())
            });
        let d = resolved.device;
        let (watts, note) = match &resolved.mig {
            Some(m) => (
                resolved.watts * m.fraction(),
                format!(
                    "{note} (MIG {}: {} of {} slices of a {} W GPU)",
                    m.profile, m.slices, m.of, resolved.watts
                ),
            ),
            None => (resolved.watts, note),
        };
        (
            watts,
            d.name.clone(),
            "maximum board power",
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
        let resolved = hardware::resolve(&name);
        let count = o
            .count
            .map(f64::from)
            .or(known.u64(paths::HARDWARE_GPU_COUNT).map(|n| n as f64))
            .unwrap_or(gpus.len() as f64);
        let (watts, device, what, cite, mut note) = if limits.len() == gpus.len() {
            (
                limits.iter().sum::<f64>() / limits.len() as f64,
                name.clone(),
                "power limit",
                "hardware.gpus[].power_limit_w of the run record".to_owned(),
                String::new(),
            )
        } else {
            match &resolved {
                Ok(r) => {
                    let (w, note) = match &r.mig {
                        Some(m) => (
                            r.watts * m.fraction(),
                            format!(
                                " (MIG {}: {} of {} slices of a {} W GPU)",
                                m.profile, m.slices, m.of, r.watts
                            ),
                        ),
                        None => (r.watts, String::new()),
                    };
                    (
                        w,
                        r.device.name.clone(),
                        "maximum board power",
                        r.device.source.clone(),
                        note,
                    )
                }
                Err(e) => {
                    warnings.warn(
                        "carbon-hardware-unknown",
                        format!("GPU `{name}` has no power limit in the record: {e}; energy not estimated"),
                    );
                    return Ok(None);
                }
            }
        };
        // Dual-die packages (MI250X) show up as two devices: power is per package.
        let dies = resolved
            .as_ref()
            .ok()
            .and_then(|r| r.device.dies_per_package)
            .filter(|d| *d > 1 && o.count.is_none());
        let count = match dies {
            Some(d) => {
                note.push_str(&format!(
                    " ({count} devices = {} packages of {d} dies)",
                    count / f64::from(d)
                ));
                count / f64::from(d)
            }
            None => count,
        };
        (watts, device, what, cite, count, note)
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
    let watts_text = cardfill_facts::trimmed(watts, 1);
    let method = format!(
        "estimated: {count} × {device} at {watts_text} W {what}{count_note} × {hours} h × utilisation {utilization:.2}"
    );
    Ok(Some(Energy {
        kwh,
        method,
        source: Source::derived(format!(
            "power × devices × hours × utilisation; {what}: {cite}"
        )),
        devices: Some(count),
        hours: Some(hours),
        parts: Vec::new(),
    }))
}

/// The text of a source (the method of a default).
fn pue_source_text(s: &Source) -> String {
    match s {
        Source::Default { method } => method
            .split_once(": ")
            .map_or(method.as_str(), |(head, _)| head)
            .to_owned(),
        other => other.to_string(),
    }
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
    let Some(net) = o.live else {
        return fallback(warnings, live::NOT_LINKED.into());
    };
    match (net.electricitymaps)(&base, &token, &row.em_zone, window, NETWORK_TIMEOUT) {
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
fn detected_region(
    facts: &mut Facts,
    net: Option<live::Live>,
) -> Result<Option<(&'static Region, Source)>, CarbonError> {
    let found = match net.map_or(
        Err(vec![live::LiveError::Client(live::NOT_LINKED.into())]),
        |net| (net.detect_cloud)(&live::MetadataEndpoints::from_env(), METADATA_TIMEOUT),
    ) {
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
        None if options.detect_cloud => detected_region(&mut facts, options.live)?,
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
        // The table's year and method, where the figure is the table's.
        if let Some(row) = row.filter(|r| text.starts_with(r.source.as_str())) {
            facts.set(paths::CARBON_INTENSITY_YEAR, row.year, source.clone());
            facts.set(
                paths::CARBON_INTENSITY_METHOD,
                row.method.as_str(),
                source.clone(),
            );
        }
    }

    let energy = energy(known, options, &mut facts)?;
    let Some(energy) = energy else {
        if options.region.is_some() || options.intensity.is_some() {
            facts.warn("carbon-energy-missing", "no energy evidence: CO2 not estimated; pass --hardware and --hours, --energy-kwh, or wrap the run with `cardfill run`");
        }
        return Ok(facts);
    };
    facts.set(
        paths::CARBON_METHOD,
        energy.method.as_str(),
        energy.source.clone(),
    );
    for (path, kwh, source) in &energy.parts {
        facts.set(path, round(*kwh, 3), source.clone());
    }
    if intensity.is_none() {
        // No grid: no CO2, and no PUE guessed for a place nobody named.
        let path = match options.energy_scope {
            EnergyScope::It => paths::CARBON_ENERGY_KWH,
            EnergyScope::Facility => paths::CARBON_FACILITY_ENERGY_KWH,
        };
        facts.set(path, round(energy.kwh, 3), energy.source.clone());
        facts.warn("carbon-region-missing", "no --region: CO2 not estimated; pass --region (e.g. aws:us-east-1, gcp:europe-west4, FR, US-CA) or --intensity; `cardfill regions` lists them");
        return Ok(facts);
    }

    // PUE: --pue, else the provider's published figure, else the documented default (warned).
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
    let (it_kwh, facility_kwh) = match options.energy_scope {
        EnergyScope::It => {
            if matches!(pue_source, Source::Default { .. }) {
                facts.warn(
                    "carbon-pue-default",
                    format!(
                        "no PUE known for this data centre: the default {} was applied; pass --pue, or --energy-scope facility if the energy already includes the data centre",
                        pue_source_text(&pue_source)
                    ),
                );
            }
            facts.set(paths::CARBON_PUE, pue, pue_source);
            (Some(energy.kwh), energy.kwh * pue)
        }
        EnergyScope::Facility => {
            // The figure includes the data centre: no PUE on top. With --pue the IT share is
            // known too.
            let it = options.pue.map(|p| {
                facts.set(paths::CARBON_PUE, p, Source::flag("--pue"));
                energy.kwh / p
            });
            (it, energy.kwh)
        }
    };
    facts.set(
        paths::CARBON_ENERGY_SCOPE,
        options.energy_scope.as_str(),
        match options.energy_scope {
            EnergyScope::It if options.energy_kwh.is_none() => {
                Source::derived("device energy (measured or estimated) is IT energy")
            }
            EnergyScope::It => Source::default_value("--energy-scope it"),
            EnergyScope::Facility => Source::flag("--energy-scope"),
        },
    );
    if let Some(it) = it_kwh {
        facts.set(
            paths::CARBON_ENERGY_KWH,
            round(it, 3),
            energy.source.clone(),
        );
    }
    facts.set(
        paths::CARBON_FACILITY_ENERGY_KWH,
        round(facility_kwh, 3),
        match options.energy_scope {
            EnergyScope::It => Source::derived("energy_kwh × pue"),
            EnergyScope::Facility => energy.source.clone(),
        },
    );

    // Embodied emissions: never part of the headline figure.
    if options.embodied {
        match (energy.devices, energy.hours) {
            (Some(devices), Some(hours)) => {
                let life_hours = EMBODIED_LIFE_YEARS * 8760.0 * EMBODIED_USE_RATE;
                let grams = devices * hours / life_hours * EMBODIED_KG_PER_GPU * 1000.0;
                facts.set(
                    paths::CARBON_EMBODIED_GRAMS,
                    round(grams, 1),
                    Source::derived("devices × hours ÷ (life × use rate) × kg CO2eq per GPU"),
                );
                facts.set(
                    paths::CARBON_EMBODIED_METHOD,
                    format!(
                        "{devices} GPUs × {hours} h ÷ ({EMBODIED_LIFE_YEARS} years × 8760 h × {EMBODIED_USE_RATE} use) × {EMBODIED_KG_PER_GPU} kg CO2eq per GPU (Luccioni et al. 2022, BLOOM; GPUs only, servers excluded)"
                    ),
                    Source::derived("BLOOM paper method"),
                );
            }
            _ => facts.warn(
                "carbon-embodied-missing",
                "--embodied needs the number of GPUs and the hours: pass --count and --hours",
            ),
        }
    }

    let Some((g, _, _)) = intensity else {
        return Ok(facts);
    };
    let grams = facility_kwh * g;
    facts.set(
        paths::CARBON_CO2_GRAMS,
        round(grams, 1),
        Source::derived(match options.energy_scope {
            EnergyScope::It => "energy_kwh × pue × intensity_g_per_kwh",
            EnergyScope::Facility => "facility_energy_kwh × intensity_g_per_kwh",
        }),
    );
    if let Some(m) = options.market_intensity {
        facts.set(
            paths::CARBON_MARKET_INTENSITY,
            m,
            Source::flag("--market-intensity"),
        );
        facts.set(
            paths::CARBON_CO2_MARKET_GRAMS,
            round(facility_kwh * m, 1),
            Source::derived("facility_energy_kwh × market_intensity_g_per_kwh"),
        );
    }

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
