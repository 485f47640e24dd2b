//! GPUs through NVML (nvml-wrapper, which loads `libnvidia-ml.so.1` at run time).
//!
//! Three outcomes, none of them an error: NVML is absent (no library, no driver), NVML failed
//! (it loaded but would not answer), or it answered; a function an old driver lacks is
//! recorded as unsupported and its fact stays unknown.

use std::ffi::OsString;

use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;
use serde::{Deserialize, Serialize};

/// Environment variable naming the NVML library to load instead of `libnvidia-ml.so.1`.
pub const NVML_LIBRARY_ENV: &str = "CARDFILL_NVML_LIBRARY";

/// What NVML said, as kept in a run record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NvmlReport {
    /// `ok`, `absent` (no library or driver) or `failed` (loaded but would not answer).
    pub status: NvmlStatus,
    /// Why NVML is absent or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The NVIDIA driver version (`550.54.15`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    /// The CUDA version the driver supports (`12.4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_version: Option<String>,
    /// GPUs NVML sees on the machine, used by the job or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_count: Option<u32>,
    /// How the job's GPUs were chosen (`CUDA_VISIBLE_DEVICES=0,1`, `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
}

/// The outcome of loading NVML.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NvmlStatus {
    /// NVML answered.
    Ok,
    /// No NVML library or no NVIDIA driver: not an error, the facts come from elsewhere.
    #[default]
    Absent,
    /// NVML loaded but failed.
    Failed,
}

/// One GPU the job uses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// NVML index on its machine.
    pub index: u32,
    /// `GPU-…` UUID, the identity across CUDA and NVML numbering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Product name (`NVIDIA H100 80GB HBM3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Total memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Enforced power limit in watts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_limit_w: Option<f64>,
    /// MIG mode: `enabled` or `disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_mode: Option<String>,
    /// Energy used during the run (absent in probe records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<GpuEnergy>,
    /// NVML queries this GPU or driver does not support (`total_energy_consumption`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported: Vec<String>,
    /// Power draw during the run, `[seconds since start, watts]`, thinned to at most
    /// [`POWER_SERIES_MAX`] samples ([`thin_power`]); `cardfill run` with NVML only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub power_samples: Vec<[f64; 2]>,
}

/// The most power samples a record keeps per GPU (the figure needs no more).
pub const POWER_SERIES_MAX: usize = 240;

/// Energy one GPU used during the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuEnergy {
    /// `counter` (NVML total-energy counter read at start and end) or `sampled` (power polled).
    pub method: EnergyMethod,
    /// Joules.
    pub joules: f64,
    /// Counter at the start, millijoules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter_start_mj: Option<u64>,
    /// Counter at the end, millijoules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter_end_mj: Option<u64>,
    /// The counter went backwards (driver reloaded): `joules` counts from the reset only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub counter_reset: bool,
    /// Power samples taken (sampled method).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u32>,
}

/// How a GPU's energy was obtained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnergyMethod {
    /// The NVML total-energy counter.
    #[default]
    Counter,
    /// Power polled at a low rate and integrated.
    Sampled,
}

/// Which of the machine's GPUs the job uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GpuSelection {
    /// Every GPU NVML sees.
    All,
    /// None (`CUDA_VISIBLE_DEVICES` empty or `-1`).
    None,
    /// These entries, each an index or a UUID (prefix); `var` is where they came from.
    Listed {
        /// The variable read.
        var: String,
        /// Its entries.
        entries: Vec<String>,
    },
}

impl GpuSelection {
    /// Reads `CUDA_VISIBLE_DEVICES`, else Slurm's `SLURM_STEP_GPUS` / `SLURM_JOB_GPUS`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        for var in ["CUDA_VISIBLE_DEVICES", "SLURM_STEP_GPUS", "SLURM_JOB_GPUS"] {
            let Some(value) = get(var) else { continue };
            let value = value.trim();
            if value.is_empty() || value == "-1" || value == "NoDevFiles" {
                return Self::None;
            }
            let entries = value
                .split(',')
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .collect();
            return Self::Listed {
                var: var.to_owned(),
                entries,
            };
        }
        Self::All
    }

    fn describe(&self) -> String {
        match self {
            Self::All => "all".to_owned(),
            Self::None => "none".to_owned(),
            Self::Listed { var, entries } => format!("{var}={}", entries.join(",")),
        }
    }

    /// The NVML indices chosen among `devices` (index, UUID). UUIDs match by prefix, as CUDA
    /// allows; a number is taken as the NVML index (CUDA numbers the same way when
    /// `CUDA_DEVICE_ORDER=PCI_BUS_ID`, and on a machine of identical GPUs). Entries that match
    /// nothing are skipped; when none matches, all GPUs are used.
    pub fn choose(&self, devices: &[(u32, Option<String>)]) -> Vec<u32> {
        let all = || devices.iter().map(|(i, _)| *i).collect::<Vec<_>>();
        let entries = match self {
            Self::All => return all(),
            Self::None => return Vec::new(),
            Self::Listed { entries, .. } => entries,
        };
        let mut chosen = Vec::new();
        for entry in entries {
            let found = if entry.starts_with("GPU-") || entry.starts_with("MIG-") {
                devices
                    .iter()
                    .find(|(_, uuid)| uuid.as_deref().is_some_and(|u| u.starts_with(entry)))
                    .map(|(i, _)| *i)
            } else {
                entry
                    .parse::<u32>()
                    .ok()
                    .filter(|n| devices.iter().any(|(i, _)| i == n))
            };
            if let Some(i) = found.filter(|i| !chosen.contains(i)) {
                chosen.push(i);
            }
        }
        if chosen.is_empty() { all() } else { chosen }
    }
}

/// NVML opened on this machine, and the GPUs the job uses.
pub struct GpuProbe {
    nvml: Option<Nvml>,
    /// What NVML said.
    pub report: NvmlReport,
    /// The job's GPUs, without energy.
    pub gpus: Vec<GpuInfo>,
}

impl std::fmt::Debug for GpuProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuProbe")
            .field("report", &self.report)
            .field("gpus", &self.gpus)
            .finish()
    }
}

fn unsupported(err: &NvmlError) -> bool {
    matches!(
        err,
        NvmlError::NotSupported | NvmlError::FailedToLoadSymbol(_) | NvmlError::FunctionNotFound
    )
}

impl GpuProbe {
    /// Loads NVML (from `CARDFILL_NVML_LIBRARY` when set) and reads the chosen GPUs.
    pub fn open(selection: &GpuSelection) -> Self {
        let library = std::env::var_os(NVML_LIBRARY_ENV).filter(|p| !p.is_empty());
        Self::open_library(library, selection)
    }

    /// Loads NVML from `library` (the default name when `None`) and reads the chosen GPUs.
    pub fn open_library(library: Option<OsString>, selection: &GpuSelection) -> Self {
        let mut builder = Nvml::builder();
        if let Some(path) = &library {
            builder.lib_path(path);
        }
        let mut report = NvmlReport {
            selection: Some(selection.describe()),
            ..NvmlReport::default()
        };
        let nvml = match builder.init() {
            Ok(nvml) => nvml,
            Err(err) => {
                report.status = match err {
                    NvmlError::LibloadingError(_)
                    | NvmlError::DriverNotLoaded
                    | NvmlError::LibraryNotFound => NvmlStatus::Absent,
                    _ => NvmlStatus::Failed,
                };
                report.message = Some(err.to_string());
                return Self {
                    nvml: None,
                    report,
                    gpus: Vec::new(),
                };
            }
        };
        report.status = NvmlStatus::Ok;
        report.driver_version = nvml.sys_driver_version().ok();
        report.cuda_version = nvml.sys_cuda_driver_version().ok().map(|v| {
            format!(
                "{}.{}",
                nvml_wrapper::cuda_driver_version_major(v),
                nvml_wrapper::cuda_driver_version_minor(v)
            )
        });
        let count = match nvml.device_count() {
            Ok(n) => n,
            Err(err) => {
                report.status = NvmlStatus::Failed;
                report.message = Some(format!("nvmlDeviceGetCount: {err}"));
                return Self {
                    nvml: Some(nvml),
                    report,
                    gpus: Vec::new(),
                };
            }
        };
        report.device_count = Some(count);
        let devices: Vec<(u32, Option<String>)> = (0..count)
            .filter_map(|i| {
                let device = nvml.device_by_index(i).ok()?;
                Some((i, device.uuid().ok()))
            })
            .collect();
        let gpus = selection
            .choose(&devices)
            .into_iter()
            .filter_map(|i| read_gpu(&nvml, i))
            .collect();
        Self {
            nvml: Some(nvml),
            report,
            gpus,
        }
    }

    /// The total-energy counter of each chosen GPU, millijoules (`None` where unsupported).
    pub fn energy_counters(&self) -> Vec<Option<u64>> {
        self.each(|d| d.total_energy_consumption().ok())
    }

    /// The power draw of each chosen GPU, watts (`None` where unsupported).
    pub fn power_w(&self) -> Vec<Option<f64>> {
        self.each(|d| d.power_usage().ok().map(|mw| f64::from(mw) / 1000.0))
    }

    fn each<T>(&self, f: impl Fn(&nvml_wrapper::Device<'_>) -> Option<T>) -> Vec<Option<T>> {
        self.gpus
            .iter()
            .map(|g| {
                let nvml = self.nvml.as_ref()?;
                let device = nvml.device_by_index(g.index).ok()?;
                f(&device)
            })
            .collect()
    }
}

fn read_gpu(nvml: &Nvml, index: u32) -> Option<GpuInfo> {
    let device = nvml.device_by_index(index).ok()?;
    let mut gpu = GpuInfo {
        index,
        ..GpuInfo::default()
    };
    let mut note = |what: &str, err: &NvmlError| {
        if unsupported(err) {
            gpu.unsupported.push(what.to_owned());
        }
    };
    let name = device.name().map_err(|e| note("name", &e)).ok();
    let uuid = device.uuid().map_err(|e| note("uuid", &e)).ok();
    let memory = device
        .memory_info()
        .map_err(|e| note("memory_info", &e))
        .ok()
        .map(|m| m.total);
    let limit = device
        .enforced_power_limit()
        .or_else(|_| device.power_management_limit())
        .map_err(|e| note("power_limit", &e))
        .ok()
        .map(|mw| f64::from(mw) / 1000.0);
    let mig = device
        .mig_mode()
        .map_err(|e| note("mig_mode", &e))
        .ok()
        .map(|m| {
            if m.current == 1 {
                "enabled"
            } else {
                "disabled"
            }
            .to_owned()
        });
    let energy = device.total_energy_consumption();
    if let Err(e) = &energy {
        note("total_energy_consumption", e);
    }
    gpu.name = name;
    gpu.uuid = uuid;
    gpu.memory_bytes = memory;
    gpu.power_limit_w = limit;
    gpu.mig_mode = mig;
    Some(gpu)
}

/// Energy from counter readings at start and end, millijoules → joules. A counter that went
/// backwards was reset (driver reload): the energy since the reset is what it now reads.
pub fn counter_energy(start_mj: u64, end_mj: u64) -> GpuEnergy {
    let (mj, reset) = if end_mj >= start_mj {
        (end_mj - start_mj, false)
    } else {
        (end_mj, true)
    };
    GpuEnergy {
        method: EnergyMethod::Counter,
        joules: mj as f64 / 1000.0,
        counter_start_mj: Some(start_mj),
        counter_end_mj: Some(end_mj),
        counter_reset: reset,
        samples: None,
    }
}

/// One GPU's power samples as they arrive, in bounded memory however long the run: every
/// sample is integrated into the energy (trapezoid rule, as [`integrate_power`]), and an evenly
/// spaced subset of at most `2 × POWER_SERIES_MAX` is kept for the record's series.
#[derive(Clone, Debug, Default)]
pub struct PowerTrace {
    /// Samples taken.
    pub count: u64,
    /// Joules over every sample.
    pub joules: f64,
    last: Option<(f64, f64)>,
    kept: Vec<(f64, f64)>,
    /// Samples whose index is a multiple of `stride` are kept (0 before the first halving).
    stride: u64,
}

impl PowerTrace {
    /// Adds a sample: `t` seconds since the start, `w` watts.
    pub fn push(&mut self, t: f64, w: f64) {
        if let Some((t0, w0)) = self.last {
            self.joules += (t - t0).max(0.0) * (w0 + w) / 2.0;
        }
        let stride = self.stride.max(1);
        if self.count.is_multiple_of(stride) {
            self.kept.push((t, w));
            if self.kept.len() >= 2 * POWER_SERIES_MAX {
                // Full: keep every other sample from now on.
                let mut n = 0;
                self.kept.retain(|_| {
                    n += 1;
                    (n - 1) % 2 == 0
                });
                self.stride = stride * 2;
            }
        }
        self.last = Some((t, w));
        self.count += 1;
    }

    /// The series the record keeps ([`thin_power`] of the kept samples and the last one).
    pub fn series(&self) -> Vec<[f64; 2]> {
        let mut all = self.kept.clone();
        if let Some(last) = self.last.filter(|l| all.last() != Some(l)) {
            all.push(last);
        }
        thin_power(&all)
    }
}

/// The power samples `(seconds since start, watts)` a record keeps: at most
/// [`POWER_SERIES_MAX`], evenly spread over the run (first and last kept), rounded to 0.1 s and
/// 0.1 W. Only the record's series is thinned: energy is integrated over every sample.
pub fn thin_power(samples: &[(f64, f64)]) -> Vec<[f64; 2]> {
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let n = samples.len();
    let keep = n.min(POWER_SERIES_MAX);
    (0..keep)
        .filter_map(|k| {
            // Index k of `keep` evenly spaced over 0..n (exact integer arithmetic).
            let i = if keep > 1 {
                k * (n - 1) / (keep - 1)
            } else {
                0
            };
            samples.get(i).map(|&(t, w)| [round(t), round(w)])
        })
        .collect()
}

/// Integrates power samples `(seconds since start, watts)` by the trapezoid rule, joules.
pub fn integrate_power(samples: &[(f64, f64)]) -> f64 {
    samples
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).max(0.0) * (w[0].1 + w[1].1) / 2.0)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_series_is_bounded_and_keeps_both_ends() {
        let long: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (f64::from(i) * 10.0, 300.0 + f64::from(i % 7)))
            .collect();
        let kept = thin_power(&long);
        assert_eq!(kept.len(), POWER_SERIES_MAX);
        assert_eq!(kept[0], [0.0, 300.0]);
        assert_eq!(
            kept[POWER_SERIES_MAX - 1],
            [99_990.0, 300.0 + f64::from(9_999 % 7)]
        );
        assert!(kept.windows(2).all(|w| w[0][0] < w[1][0]));
        // Short series are kept whole, rounded to 0.1 s and 0.1 W.
        assert_eq!(
            thin_power(&[(0.012, 350.04), (9.96, 351.06)]),
            vec![[0.0, 350.0], [10.0, 351.1]]
        );
        assert!(thin_power(&[]).is_empty());
    }

    #[test]
    fn a_trace_integrates_every_sample_and_keeps_a_bounded_even_series() {
        let samples: Vec<(f64, f64)> = (0..100_003)
            .map(|i| (f64::from(i) * 10.0, 250.0 + f64::from(i % 13) * 7.5))
            .collect();
        let mut trace = PowerTrace::default();
        for &(t, w) in &samples {
            trace.push(t, w);
        }
        // The energy is the one of the whole series, to the bit; the count is every sample.
        assert_eq!(trace.joules, integrate_power(&samples));
        assert_eq!(trace.count, 100_003);
        assert!(trace.kept.len() < 2 * POWER_SERIES_MAX);
        let series = trace.series();
        assert_eq!(series.len(), POWER_SERIES_MAX);
        assert_eq!(series[0], [0.0, 250.0]);
        assert_eq!(
            series[POWER_SERIES_MAX - 1][0],
            1_000_020.0,
            "the last sample"
        );
        // Evenly spread: no gap more than twice the mean.
        let gaps: Vec<f64> = series.windows(2).map(|w| w[1][0] - w[0][0]).collect();
        let mean = 1_000_020.0 / (POWER_SERIES_MAX - 1) as f64;
        assert!(gaps.iter().all(|g| *g > 0.0 && *g < 2.0 * mean), "{gaps:?}");
        // A short run keeps every sample.
        let mut short = PowerTrace::default();
        short.push(0.0, 100.0);
        short.push(10.0, 300.0);
        assert_eq!(short.series(), vec![[0.0, 100.0], [10.0, 300.0]]);
        assert_eq!(short.joules, 2000.0);
    }

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn devices() -> Vec<(u32, Option<String>)> {
        (0..4)
            .map(|i| {
                (
                    i,
                    Some(format!("GPU-0000000{i}-aaaa-bbbb-cccc-dddddddddddd")),
                )
            })
            .collect()
    }

    #[test]
    fn cuda_visible_devices_by_index_and_uuid_prefix() {
        let s = GpuSelection::from_env(env(&[("CUDA_VISIBLE_DEVICES", "2,0")]));
        assert_eq!(s.choose(&devices()), vec![2, 0]);
        let s = GpuSelection::from_env(env(&[(
            "CUDA_VISIBLE_DEVICES",
            "GPU-00000003,GPU-00000001-aaaa-bbbb-cccc-dddddddddddd",
        )]));
        assert_eq!(s.choose(&devices()), vec![3, 1]);
    }

    #[test]
    fn empty_or_minus_one_means_no_gpu_and_unset_means_all() {
        for v in ["", "-1"] {
            let s = GpuSelection::from_env(env(&[("CUDA_VISIBLE_DEVICES", v)]));
            assert!(s.choose(&devices()).is_empty());
        }
        assert_eq!(
            GpuSelection::from_env(env(&[])).choose(&devices()),
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn slurm_gpus_when_cuda_is_unset_and_unknown_entries_fall_back_to_all() {
        let s = GpuSelection::from_env(env(&[("SLURM_JOB_GPUS", "1,3")]));
        assert_eq!(s.choose(&devices()), vec![1, 3]);
        let s = GpuSelection::from_env(env(&[("CUDA_VISIBLE_DEVICES", "7")]));
        assert_eq!(s.choose(&devices()), vec![0, 1, 2, 3]);
    }

    #[test]
    fn counter_energy_handles_reset() {
        let e = counter_energy(10_000, 25_000);
        assert_eq!(e.joules, 15.0);
        assert!(!e.counter_reset);
        let e = counter_energy(10_000, 4_000);
        assert_eq!(e.joules, 4.0);
        assert!(e.counter_reset);
    }

    #[test]
    fn trapezoid_integration() {
        assert_eq!(
            integrate_power(&[(0.0, 100.0), (10.0, 300.0), (20.0, 300.0)]),
            5000.0
        );
        assert_eq!(integrate_power(&[(0.0, 100.0)]), 0.0);
    }

    #[test]
    fn missing_library_is_absent_not_an_error() {
        let probe = GpuProbe::open_library(
            Some("/nonexistent/libnvidia-ml.so.1".into()),
            &GpuSelection::All,
        );
        assert_eq!(probe.report.status, NvmlStatus::Absent);
        assert!(probe.gpus.is_empty());
        assert!(probe.report.message.is_some());
        assert!(probe.energy_counters().is_empty());
    }
}
