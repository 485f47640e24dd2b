//! CPU package and DRAM energy from Linux RAPL, through the `powercap` counters
//! (`/sys/class/powercap/intel-rapl:*/energy_uj`; AMD Zen exposes the same interface), read at
//! the start and end of a run like the NVML energy counter. A counter that went down wrapped
//! at its `max_energy_range_uj`.
//!
//! The root is overridable with `CARDFILL_POWERCAP_ROOT` (tests use a fake tree). Since Linux
//! 5.10 the counters are readable by root only: then nothing is recorded and the record says
//! why.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The variable that overrides the powercap root.
pub const POWERCAP_ROOT_VAR: &str = "CARDFILL_POWERCAP_ROOT";
/// Where the kernel exposes powercap zones.
pub const POWERCAP_ROOT: &str = "/sys/class/powercap";

/// What a RAPL zone measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// A CPU package (`package-N`): cores, caches, uncore.
    Package,
    /// The memory attached to a package (`dram`).
    Dram,
}

/// One RAPL zone counted.
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    /// Its directory (`…/intel-rapl:0`).
    pub path: PathBuf,
    /// The directory's name (`intel-rapl:0:2`).
    pub id: String,
    /// Package or DRAM.
    pub domain: Domain,
    /// Where the counter wraps, µJ.
    pub max_range_uj: u64,
}

/// The RAPL zones of this machine, opened once.
#[derive(Clone, Debug, Default)]
pub struct RaplProbe {
    /// The zones counted (packages and their DRAM; core, uncore and psys are inside or
    /// overlap them).
    pub zones: Vec<Zone>,
    /// Why nothing can be read, where that is so.
    pub problem: Option<String>,
}

/// CPU and DRAM energy of a run on one node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RaplEnergy {
    /// Always `rapl`.
    pub method: String,
    /// Energy of the CPU packages, joules.
    pub cpu_joules: f64,
    /// Energy of the DRAM, joules, where the machine has DRAM zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dram_joules: Option<f64>,
    /// The zones read (`intel-rapl:0`, `intel-rapl:0:2`).
    pub zones: Vec<String>,
    /// Counters that wrapped during the run.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wraps: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn read_trimmed(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path).map(|s| s.trim().to_owned())
}

impl RaplProbe {
    /// The zones under `CARDFILL_POWERCAP_ROOT`, else `/sys/class/powercap`.
    pub fn open() -> Self {
        let root = std::env::var_os(POWERCAP_ROOT_VAR)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(POWERCAP_ROOT), PathBuf::from);
        Self::open_at(&root)
    }

    /// The zones under `root`.
    pub fn open_at(root: &Path) -> Self {
        let entries = match std::fs::read_dir(root) {
            Ok(e) => e,
            Err(e) => {
                return Self {
                    zones: Vec::new(),
                    problem: Some(format!("no powercap at `{}`: {e}", root.display())),
                };
            }
        };
        let mut zones = Vec::new();
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if !id.starts_with("intel-rapl:") {
                continue;
            }
            let path = entry.path();
            let Ok(name) = read_trimmed(&path.join("name")) else {
                continue;
            };
            let domain = if name.starts_with("package") {
                Domain::Package
            } else if name == "dram" {
                Domain::Dram
            } else {
                continue;
            };
            let max_range_uj = read_trimmed(&path.join("max_energy_range_uj"))
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            zones.push(Zone {
                path,
                id,
                domain,
                max_range_uj,
            });
        }
        zones.sort_by(|a, b| a.id.cmp(&b.id));
        let problem = if zones.is_empty() {
            Some(format!("no RAPL package zone under `{}`", root.display()))
        } else {
            // Root-only since Linux 5.10: say so once instead of recording nothing silently.
            zones.iter().find_map(|z| {
                std::fs::read_to_string(z.path.join("energy_uj"))
                    .err()
                    .map(|e| {
                        format!(
                            "cannot read `{}`: {e} (RAPL counters are root-only on Linux 5.10 and newer)",
                            z.path.join("energy_uj").display()
                        )
                    })
            })
        };
        Self { zones, problem }
    }

    /// Each zone's counter now, µJ (`None` where unreadable).
    pub fn read(&self) -> Vec<Option<u64>> {
        self.zones
            .iter()
            .map(|z| {
                read_trimmed(&z.path.join("energy_uj"))
                    .ok()
                    .and_then(|s| s.parse().ok())
            })
            .collect()
    }

    /// The energy between two readings, or `None` when a counter could not be read.
    pub fn energy(&self, start: &[Option<u64>], end: &[Option<u64>]) -> Option<RaplEnergy> {
        if self.zones.is_empty() || self.problem.is_some() {
            return None;
        }
        let mut out = RaplEnergy {
            method: "rapl".into(),
            ..RaplEnergy::default()
        };
        for (i, zone) in self.zones.iter().enumerate() {
            let (s, e) = (
                start.get(i).copied().flatten()?,
                end.get(i).copied().flatten()?,
            );
            let (uj, wrapped) = delta_uj(s, e, zone.max_range_uj);
            out.wraps += u32::from(wrapped);
            let joules = uj as f64 / 1e6;
            match zone.domain {
                Domain::Package => out.cpu_joules += joules,
                Domain::Dram => *out.dram_joules.get_or_insert(0.0) += joules,
            }
            out.zones.push(zone.id.clone());
        }
        Some(out)
    }
}

/// The counter's advance from `start` to `end`, µJ, and whether it wrapped (at `max_range`).
pub fn delta_uj(start: u64, end: u64, max_range: u64) -> (u64, bool) {
    if end >= start {
        (end - start, false)
    } else if max_range > start {
        (max_range - start + end, true)
    } else {
        // No usable range: count from the wrap only.
        (end, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(root: &Path, id: &str, name: &str, uj: u64) {
        let dir = root.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("name"), format!("{name}\n")).unwrap();
        std::fs::write(dir.join("energy_uj"), format!("{uj}\n")).unwrap();
        std::fs::write(dir.join("max_energy_range_uj"), "1000000\n").unwrap();
    }

    #[test]
    fn packages_and_dram_are_counted_core_and_psys_are_not() {
        let root = tempfile::tempdir().unwrap();
        zone(root.path(), "intel-rapl:0", "package-0", 100);
        zone(root.path(), "intel-rapl:1", "package-1", 200);
        zone(root.path(), "intel-rapl:0:0", "core", 5);
        zone(root.path(), "intel-rapl:2", "psys", 9);
        std::fs::create_dir_all(root.path().join("other:0")).unwrap();
        let probe = RaplProbe::open_at(root.path());
        assert_eq!(probe.problem, None);
        let ids: Vec<&str> = probe.zones.iter().map(|z| z.id.as_str()).collect();
        assert_eq!(ids, ["intel-rapl:0", "intel-rapl:1"]);
        let start = probe.read();
        std::fs::write(root.path().join("intel-rapl:1/energy_uj"), "2000200").unwrap();
        std::fs::write(root.path().join("intel-rapl:0/energy_uj"), "50").unwrap();
        let e = probe.energy(&start, &probe.read()).unwrap();
        // 2,000,000 µJ on package 1; package 0 wrapped: 999,900 + 50 µJ.
        assert!((e.cpu_joules - (2.0 + 0.99995)).abs() < 1e-9, "{e:?}");
        assert_eq!((e.dram_joules, e.wraps), (None, 1));
    }

    #[test]
    fn no_powercap_is_a_reason_not_an_error() {
        let root = tempfile::tempdir().unwrap();
        let probe = RaplProbe::open_at(root.path());
        assert!(probe.problem.unwrap().contains("no RAPL package zone"));
        let probe = RaplProbe::open_at(&root.path().join("absent"));
        assert!(probe.problem.as_deref().unwrap().contains("no powercap"));
        assert!(probe.energy(&[], &[]).is_none());
    }

    #[test]
    fn wrap_around_uses_the_range() {
        assert_eq!(delta_uj(100, 250, 1000), (150, false));
        assert_eq!(delta_uj(900, 50, 1000), (150, true));
        assert_eq!(delta_uj(900, 50, 0), (50, true));
    }
}
