//! CPU and RAM power for estimates: the CPU's TDP from `data/cpu_power.csv` (CodeCarbon
//! 3.3.2's table of Intel ARK and AMD specification TDPs) and RAM at a documented W/GB figure.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::CarbonError;

/// The embedded CPU TDP table.
pub const CPU_POWER_CSV: &str = include_str!("../data/cpu_power.csv");

/// RAM power per GB: 0.3725 W/GB, Green Algorithms (Lannelongue, Grealey and Inouye 2021,
/// "Green Algorithms: Quantifying the Carbon Footprint of Computation", Advanced Science).
pub const RAM_W_PER_GB: f64 = 0.3725;
/// Where [`RAM_W_PER_GB`] comes from.
pub const RAM_W_PER_GB_SOURCE: &str = "Green Algorithms, Lannelongue et al. 2021";

/// One CPU and its TDP.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Cpu {
    /// The name as listed (`Intel Xeon Gold 6248`).
    #[serde(rename = "Name")]
    pub name: String,
    /// Thermal design power, watts.
    #[serde(rename = "TDP")]
    pub tdp_w: f64,
}

/// The embedded table, parsed on first use.
pub fn cpus() -> Result<&'static [Cpu], CarbonError> {
    static CPUS: OnceLock<Result<Vec<Cpu>, String>> = OnceLock::new();
    CPUS.get_or_init(|| crate::table::parse("cpu_power.csv", CPU_POWER_CSV))
        .as_ref()
        .map(Vec::as_slice)
        .map_err(|e| CarbonError::Table(e.clone()))
}

/// Lowercase words of a CPU brand string, without trademarks, `CPU`, `Processor`, `N-Core`
/// and the clock after `@`.
fn words(text: &str) -> Vec<String> {
    let cleaned = text
        .to_ascii_lowercase()
        .replace("(r)", " ")
        .replace("(tm)", " ")
        .replace("®", " ")
        .replace("™", " ");
    let before_clock = cleaned.split('@').next().unwrap_or_default();
    before_clock
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .filter(|w| !matches!(*w, "cpu" | "processor") && !w.ends_with("-core"))
        .map(str::to_owned)
        .collect()
}

/// The row whose words all appear in the brand string (`Intel(R) Xeon(R) Gold 6248 CPU @
/// 2.50GHz`), the longest such; `None` when none or when two different TDPs tie.
pub fn resolve(brand: &str) -> Result<Option<&'static Cpu>, CarbonError> {
    let have = words(brand);
    let mut best: Option<(usize, &'static Cpu)> = None;
    let mut tie = false;
    for cpu in cpus()? {
        let want = words(&cpu.name);
        if want.is_empty() || !want.iter().all(|w| have.contains(w)) {
            continue;
        }
        match best {
            Some((n, b)) if want.len() == n && b.tdp_w != cpu.tdp_w => tie = true,
            Some((n, _)) if want.len() <= n => {}
            _ => {
                best = Some((want.len(), cpu));
                tie = false;
            }
        }
    }
    Ok(if tie { None } else { best.map(|(_, c)| c) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brand_strings_resolve_to_their_tdp() {
        let tdp = |b: &str| resolve(b).unwrap().map(|c| c.tdp_w);
        assert_eq!(tdp("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"), Some(150.0));
        assert_eq!(
            tdp("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz"),
            Some(205.0)
        );
        assert_eq!(tdp("AMD EPYC 7763 64-Core Processor"), Some(280.0));
        assert_eq!(tdp("AMD EPYC 9654P 96-Core Processor"), Some(360.0));
        assert_eq!(tdp("Apple M9 Ultra"), None);
        assert!(cpus().unwrap().len() > 4000);
    }
}
