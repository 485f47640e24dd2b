//! The accelerator power table (`data/hardware.csv`): rated board power per device, and the
//! resolution of NVML names and free text ("A100 PCIe 40GB", "8x V100") to its rows.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::CarbonError;

/// The embedded hardware power table.
pub const HARDWARE_CSV: &str = include_str!("../data/hardware.csv");

/// One accelerator and its rated board power.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Device {
    /// Canonical name (`NVIDIA A100 PCIe 40GB`).
    pub name: String,
    /// Vendor.
    pub vendor: String,
    /// Rated board power (TDP / TGP), watts.
    pub watts: f64,
    /// Names it answers to, `;`-separated; each a list of lowercase words.
    pub aliases: String,
    /// Where the wattage comes from.
    pub source: String,
}

impl Device {
    /// The aliases, each split into words.
    pub fn alias_words(&self) -> impl Iterator<Item = Vec<&str>> {
        self.aliases
            .split(';')
            .map(|a| a.split_whitespace().collect::<Vec<_>>())
            .filter(|w| !w.is_empty())
    }
}

/// A free-text hardware name resolved to a row, with the count it stated ("8x V100").
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// The matching row.
    pub device: &'static Device,
    /// The count given in the text, if any.
    pub count: Option<u32>,
}

/// The embedded table, parsed on first use.
pub fn devices() -> Result<&'static [Device], CarbonError> {
    static DEVICES: OnceLock<Result<Vec<Device>, String>> = OnceLock::new();
    DEVICES
        .get_or_init(|| crate::table::parse("hardware.csv", HARDWARE_CSV))
        .as_ref()
        .map(Vec::as_slice)
        .map_err(|e| CarbonError::Table(e.clone()))
}

/// Splits "8x V100" / "8 × A100" into (Some(8), "V100"); text without a count is returned whole.
pub fn split_count(text: &str) -> (Option<u32>, &str) {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        let rest = t[digits..].trim_start();
        for sep in ["x", "X", "×", "*"] {
            if let Some(name) = rest.strip_prefix(sep)
                && let Ok(n) = t[..digits].parse()
            {
                return (Some(n), name.trim_start());
            }
        }
    }
    (None, t)
}

/// Lowercase words of a name, splitting on anything not alphanumeric and joining a memory
/// size written apart ("80 GB" → "80gb").
fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let w = w.to_ascii_lowercase();
        if w == "gb"
            && let Some(last) = out.last_mut()
            && last.bytes().all(|b| b.is_ascii_digit())
        {
            last.push_str("gb");
            continue;
        }
        out.push(w);
    }
    out
}

/// Resolves a device name (NVML's or free text) to a row: the row with the longest alias whose
/// words all appear in the name. `None` when no row matches.
pub fn resolve(text: &str) -> Result<Option<Resolved>, CarbonError> {
    let (count, name) = split_count(text);
    let have = words(name);
    let mut best: Option<(usize, &'static Device)> = None;
    for device in devices()? {
        for alias in device.alias_words() {
            if alias.iter().all(|a| have.iter().any(|h| h == a))
                && best.is_none_or(|(n, _)| alias.len() > n)
            {
                best = Some((alias.len(), device));
            }
        }
    }
    Ok(best.map(|(_, device)| Resolved { device, count }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watts(text: &str) -> (f64, Option<u32>) {
        let r = resolve(text)
            .unwrap()
            .unwrap_or_else(|| panic!("{text} unresolved"));
        (r.device.watts, r.count)
    }

    #[test]
    fn nvml_names_and_free_text_resolve() {
        assert_eq!(watts("A100 PCIe 40GB"), (250.0, None));
        assert_eq!(watts("NVIDIA A100 80GB PCIe"), (300.0, None));
        assert_eq!(watts("NVIDIA A100-SXM4-80GB"), (400.0, None));
        assert_eq!(watts("NVIDIA H100 80GB HBM3"), (700.0, None));
        assert_eq!(watts("NVIDIA H100 PCIe"), (350.0, None));
        assert_eq!(watts("8x V100"), (300.0, Some(8)));
        assert_eq!(watts("4 × Tesla V100-PCIE-32GB"), (250.0, Some(4)));
        assert_eq!(watts("NVIDIA GeForce RTX 3090 Ti"), (450.0, None));
        assert_eq!(watts("NVIDIA GeForce RTX 3090"), (350.0, None));
        assert_eq!(watts("Tesla T4"), (70.0, None));
        assert_eq!(watts("NVIDIA L4"), (72.0, None));
        assert_eq!(watts("NVIDIA L40S"), (350.0, None));
        assert_eq!(watts("AMD Instinct MI300X"), (750.0, None));
        assert_eq!(watts("TPU v4"), (192.0, None));
        assert_eq!(watts("Intel Gaudi 2"), (600.0, None));
        assert_eq!(watts("A100 40 GB"), (400.0, None));
    }

    #[test]
    fn unknown_names_do_not_resolve() {
        assert!(resolve("Radeon HD 4870").unwrap().is_none());
        assert!(resolve("").unwrap().is_none());
        assert!(resolve("8x").unwrap().is_none());
    }

    #[test]
    fn every_row_is_plausible_and_sourced() {
        let rows = devices().unwrap();
        assert!(rows.len() >= 60);
        for d in rows {
            assert!(d.watts >= 10.0 && d.watts <= 1500.0, "{}", d.name);
            assert!(!d.source.trim().is_empty(), "{}", d.name);
            assert!(d.alias_words().next().is_some(), "{}", d.name);
            // Every alias resolves back to its own row.
            for alias in d.alias_words() {
                let got = resolve(&alias.join(" ")).unwrap().unwrap();
                assert_eq!(got.device.name, d.name, "alias {alias:?}");
            }
        }
    }
}
