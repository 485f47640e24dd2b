//! The accelerator power table (`data/hardware.csv`): the maximum board power (TGP/TBP) the
//! vendor states per device, and the resolution of NVML names and free text ("A100 PCIe 40GB",
//! "8x V100", "8 16GB V100", "A100-SXM4-40GB MIG 3g.20gb") to its rows.
//!
//! Matching never guesses: form-factor and variant words (PCIe, SXM, NVL, OAM, Ti, Super,
//! Max-Q, ...) and a memory size in the name must agree with the row, or the name is refused
//! with the nearest rows. Rows without a published figure refuse with that reason.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::CarbonError;

/// The embedded hardware power table.
pub const HARDWARE_CSV: &str = include_str!("../data/hardware.csv");

/// One accelerator and its maximum board power.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Device {
    /// Canonical name (`NVIDIA A100 PCIe 40GB`).
    pub name: String,
    /// Vendor.
    pub vendor: String,
    /// Maximum board power (TGP/TBP) as the vendor states it, watts; `None` where no figure is
    /// published (the `source` says why).
    #[serde(rename = "max_board_power_w")]
    pub watts: Option<f64>,
    /// Names it answers to, `;`-separated; each a list of lowercase words.
    pub aliases: String,
    /// MIG slices of the whole GPU (7 on A100/H100, 4 on A30), where MIG exists.
    pub mig_slices: Option<u32>,
    /// Devices the system shows per package (2 for the dual-GCD MI250X/MI250): power is per
    /// package.
    pub dies_per_package: Option<u32>,
    /// The datasheet the figure comes from, or why there is none.
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

/// A MIG instance: its profile and its share of the GPU.
#[derive(Clone, Debug, PartialEq)]
pub struct MigShare {
    /// The profile as written (`3g.20gb`).
    pub profile: String,
    /// Compute slices of the instance.
    pub slices: u32,
    /// Slices of the whole GPU.
    pub of: u32,
}

impl MigShare {
    /// The instance's fraction of the GPU.
    pub fn fraction(&self) -> f64 {
        f64::from(self.slices) / f64::from(self.of)
    }
}

/// A free-text hardware name resolved to a row, with the count it stated ("8x V100").
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// The matching row.
    pub device: &'static Device,
    /// Its maximum board power, watts.
    pub watts: f64,
    /// The count given in the text, if any.
    pub count: Option<u32>,
    /// The MIG instance named, if any.
    pub mig: Option<MigShare>,
    /// Rows of another power that the name fits as well (it gives no form factor: "A100"):
    /// the match is an assumption, said as a warning.
    pub rivals: Vec<String>,
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

/// Splits a leading count from a name: "8x V100", "8 × A100", "8 16GB V100", "8 V100" give
/// (Some(8), rest); text without a count is returned whole.
pub fn split_count(text: &str) -> (Option<u32>, &str) {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return (None, t);
    }
    let rest = &t[digits..];
    let Ok(n) = t[..digits].parse::<u32>() else {
        return (None, t);
    };
    let trimmed = rest.trim_start();
    for sep in ["x", "X", "×", "*"] {
        if let Some(name) = trimmed.strip_prefix(sep) {
            // "8x V100", "8 x V100", "8xV100"; not "8xxx" words.
            let name = name.trim_start();
            if !name.is_empty() {
                return (Some(n), name);
            }
        }
    }
    // "8 V100" and "8 16GB V100": a bare number, then a space, then the name.
    if rest.starts_with(char::is_whitespace) && !trimmed.is_empty() {
        return (Some(n), trimmed);
    }
    (None, t)
}

/// A MIG profile token (`3g.20gb`, `1g.10gb+me`): its compute slices.
fn mig_profile(token: &str) -> Option<u32> {
    let (g, rest) = token.split_once("g.")?;
    let mem = rest.split('+').next()?;
    let digits = mem.strip_suffix("gb")?;
    if g.is_empty() || !g.bytes().all(|b| b.is_ascii_digit()) || digits.is_empty() {
        return None;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    g.parse().ok()
}

/// Lowercase words of a name, splitting on anything not alphanumeric, joining a memory size
/// written apart ("80 GB" → "80gb") and "Max-Q" → "maxq".
fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let w = w.to_ascii_lowercase();
        if let Some(last) = out.last_mut() {
            if w == "gb" && last.bytes().all(|b| b.is_ascii_digit()) {
                last.push_str("gb");
                continue;
            }
            if w == "q" && last == "max" {
                last.push('q');
                continue;
            }
        }
        out.push(w);
    }
    out
}

/// Form-factor and variant words: if the name has one, the row must have it too. SXM
/// generations count as one family.
fn variant(word: &str) -> Option<&'static str> {
    Some(match word {
        "pcie" | "pci" => "pcie",
        "sxm" | "sxm2" | "sxm3" | "sxm4" | "sxm5" | "sxm6" => "sxm",
        "nvl" => "nvl",
        "oam" => "oam",
        "ti" => "ti",
        "super" => "super",
        "maxq" => "maxq",
        "mobile" | "laptop" => "mobile",
        "xt" => "xt",
        "xtx" => "xtx",
        "server" => "server",
        _ => return None,
    })
}

/// A memory size word (`80gb`).
fn memory(word: &str) -> Option<&str> {
    let n = word.strip_suffix("gb")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(word)
}

/// Why `device` does not fit the words of a name, or `None` when it does.
fn misfit(device: &Device, have: &[String]) -> Option<String> {
    let mut known: Vec<String> = words(&device.name);
    for alias in device.alias_words() {
        known.extend(alias.iter().map(|w| (*w).to_owned()));
    }
    let families: Vec<&str> = known.iter().filter_map(|w| variant(w)).collect();
    for w in have {
        if let Some(f) = variant(w)
            && !families.contains(&f)
        {
            return Some(format!("`{w}` does not match {}", device.name));
        }
    }
    let row_memory: Vec<String> = words(&device.name)
        .into_iter()
        .filter(|w| memory(w).is_some())
        .collect();
    if let Some(m) = have.iter().find_map(|w| memory(w))
        && !row_memory.is_empty()
        && !row_memory.iter().any(|r| r == m)
    {
        return Some(format!("{m} does not match {}", device.name));
    }
    None
}

/// Resolves a device name (NVML's or free text) to a row: of the rows with an alias whose
/// words all appear in the name, the longest alias whose row fits the name's variant and
/// memory words. Refused, with the nearest rows, when none fits or the row has no published
/// figure.
pub fn resolve(text: &str) -> Result<Resolved, CarbonError> {
    let (count, name) = split_count(text);
    // A MIG profile is taken out before the words, so its memory is not the GPU's.
    let lower = name.to_ascii_lowercase();
    let mut mig_slices = None;
    let mut rest = Vec::new();
    for token in lower.split_whitespace() {
        match mig_profile(token) {
            Some(g) if mig_slices.is_none() => mig_slices = Some((token.to_owned(), g)),
            _ => rest.push(token),
        }
    }
    let mut have = words(&rest.join(" "));
    let said_mig = have.iter().any(|w| w == "mig");
    have.retain(|w| w != "mig");
    let refuse = |why: String, near: Vec<String>| CarbonError::UnknownHardware {
        name: text.trim().to_owned(),
        why,
        suggestions: near,
    };
    if said_mig && mig_slices.is_none() {
        return Err(refuse(
            "a MIG instance without its profile (such as 3g.20gb): its share of the GPU is unknown"
                .into(),
            Vec::new(),
        ));
    }

    let mut candidates: Vec<(usize, &'static Device)> = Vec::new();
    for device in devices()? {
        let longest = device
            .alias_words()
            .filter(|alias| alias.iter().all(|a| have.iter().any(|h| h == a)))
            .map(|alias| alias.len())
            .max();
        if let Some(n) = longest {
            candidates.push((n, device));
        }
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let Some(device) = candidates
        .iter()
        .map(|(_, d)| *d)
        .find(|d| misfit(d, &have).is_none())
    else {
        let near: Vec<String> = if candidates.is_empty() {
            nearest(&have)?
        } else {
            candidates.iter().map(|(_, d)| label(d)).take(5).collect()
        };
        let why = match candidates.first() {
            Some((_, d)) => misfit(d, &have).unwrap_or_default(),
            None => "not in the power table".to_owned(),
        };
        let why = format!(
            "{why}; give a name the table has, such as \"A100 PCIe 40GB\", or pass --energy-kwh"
        );
        return Err(refuse(why, near));
    };
    let Some(watts) = device.watts else {
        return Err(refuse(device.source.clone(), Vec::new()));
    };
    let rivals = rivals(device, &have, &candidates)?;
    let mig = match mig_slices {
        None => None,
        Some((profile, slices)) => {
            let Some(of) = device.mig_slices else {
                return Err(refuse(
                    format!("{} has no MIG partitions", device.name),
                    Vec::new(),
                ));
            };
            if slices == 0 || slices > of {
                return Err(refuse(
                    format!("MIG profile {profile}: {} has {of} slices", device.name),
                    Vec::new(),
                ));
            }
            Some(MigShare {
                profile,
                slices,
                of,
            })
        }
    };
    Ok(Resolved {
        device,
        watts,
        count,
        mig,
        rivals,
    })
}

/// Rows of another power that a name without form-factor words ("A100", "A100 80GB") fits as
/// well as `device`: their aliases, less their form-factor words, are as long as the alias
/// that matched and all in the name.
fn rivals(
    device: &'static Device,
    have: &[String],
    candidates: &[(usize, &'static Device)],
) -> Result<Vec<String>, CarbonError> {
    if have.iter().any(|w| variant(w).is_some()) {
        return Ok(Vec::new());
    }
    let matched = candidates
        .iter()
        .find(|(_, d)| std::ptr::eq(*d, device))
        .map_or(0, |c| c.0);
    Ok(devices()?
        .iter()
        .filter(|d| !std::ptr::eq(*d, device) && d.watts.is_some() && d.watts != device.watts)
        .filter(|d| {
            d.alias_words().any(|alias| {
                let plain: Vec<&str> = alias
                    .iter()
                    .copied()
                    .filter(|w| variant(w).is_none())
                    .collect();
                plain.len() < alias.len()
                    && !plain.is_empty()
                    && plain.len() >= matched
                    && plain.iter().all(|p| have.iter().any(|h| h == p))
            })
        })
        .map(label)
        .collect())
}

/// A row as a suggestion: name and power.
pub fn label(d: &Device) -> String {
    match d.watts {
        Some(w) => format!("{} ({w} W)", d.name),
        None => format!("{} (no published power)", d.name),
    }
}

/// Up to five rows sharing a word with the name, closest first.
fn nearest(have: &[String]) -> Result<Vec<String>, CarbonError> {
    let joined = have.join(" ");
    let mut scored: Vec<(f64, &Device)> = devices()?
        .iter()
        .filter_map(|d| {
            let best = d
                .alias_words()
                .map(|a| strsim::jaro_winkler(&joined, &a.join(" ")))
                .fold(0.0, f64::max);
            (best >= 0.8).then_some((best, d))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(scored.into_iter().take(5).map(|(_, d)| label(d)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watts(text: &str) -> (f64, Option<u32>) {
        let r = resolve(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (r.watts, r.count)
    }

    fn refused(text: &str) -> String {
        match resolve(text) {
            Err(e) => e.to_string(),
            Ok(r) => panic!("{text} resolved to {}", r.device.name),
        }
    }

    #[test]
    fn a_name_without_form_factor_says_which_rows_it_could_be() {
        let rivals = |n: &str| resolve(n).unwrap().rivals;
        assert!(rivals("A100").iter().any(|r| r.contains("A100 PCIe 40GB")));
        assert!(
            rivals("8 16GB V100")
                .iter()
                .any(|r| r.contains("V100 PCIe"))
        );
        for exact in [
            "A100 PCIe 40GB",
            "NVIDIA A100-SXM4-40GB",
            "NVIDIA H100 80GB HBM3",
        ] {
            assert_eq!(rivals(exact), Vec::<String>::new(), "{exact}");
        }
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
    fn count_and_memory_prefix_parse() {
        // DistilGPT2's card: "8 16GB V100".
        let r = resolve("8 16GB V100").unwrap();
        assert_eq!(
            (r.count, r.device.name.as_str()),
            (Some(8), "NVIDIA V100 SXM2 16GB")
        );
        assert_eq!(split_count("8 V100"), (Some(8), "V100"));
        assert_eq!(split_count("8xV100"), (Some(8), "V100"));
        assert_eq!(split_count("V100"), (None, "V100"));
        assert_eq!(split_count("80GB A100"), (None, "80GB A100"));
    }

    #[test]
    fn variant_words_must_match_or_the_name_is_refused() {
        // Each was matched to the wrong row before (issue 13).
        assert_eq!(watts("NVIDIA A800 PCIe 80GB"), (300.0, None));
        assert_eq!(watts("H800 PCIe"), (350.0, None));
        assert_eq!(watts("Gaudi 3 PCIe"), (600.0, None));
        assert_eq!(watts("Gaudi 3"), (900.0, None));
        assert_eq!(watts("RTX 3060 Ti"), (200.0, None));
        assert_eq!(watts("RTX PRO 6000 Blackwell Max-Q"), (300.0, None));
        assert_eq!(watts("RTX PRO 6000 Blackwell"), (600.0, None));
        let e = refused("RTX 4080 Super");
        assert!(e.contains("super") && e.contains("RTX 4080 (320 W)"), "{e}");
        let e = refused("Gaudi 2 PCIe");
        assert!(e.contains("pcie") && e.contains("Gaudi 2"), "{e}");
        let e = refused("A100 96GB");
        assert!(e.contains("96gb"), "{e}");
        assert!(refused("Radeon HD 4870").contains("not in the power table"));
        assert!(resolve("").is_err());
        assert!(resolve("8x").is_err());
    }

    #[test]
    fn rows_without_a_published_figure_refuse_with_the_reason() {
        for name in [
            "TPU v5e",
            "TPU v5p",
            "TPU v6e",
            "Trainium2",
            "NVIDIA H20",
            "NVIDIA A10G",
        ] {
            let e = refused(name);
            assert!(e.contains("not published"), "{name}: {e}");
        }
    }

    #[test]
    fn mig_instances_are_their_share_of_the_gpu() {
        let r = resolve("NVIDIA A100-SXM4-40GB MIG 3g.20gb").unwrap();
        assert_eq!(r.device.name, "NVIDIA A100 SXM4 40GB");
        let mig = r.mig.unwrap();
        assert_eq!((mig.slices, mig.of), (3, 7));
        assert!((mig.fraction() - 3.0 / 7.0).abs() < 1e-12);
        let r = resolve("NVIDIA H100 80GB HBM3 MIG 1g.10gb").unwrap();
        assert_eq!(r.mig.unwrap().of, 7);
        assert_eq!(
            resolve("NVIDIA A30 MIG 2g.12gb").unwrap().mig.unwrap().of,
            4
        );
        assert!(refused("NVIDIA A100 MIG").contains("profile"));
        assert!(refused("Tesla T4 MIG 1g.5gb").contains("no MIG"));
        assert!(refused("A100 MIG 8g.80gb").contains("7 slices"));
    }

    #[test]
    fn every_row_is_plausible_and_sourced() {
        let rows = devices().unwrap();
        assert!(rows.len() >= 80);
        for d in rows {
            match d.watts {
                Some(w) => assert!((10.0..=1500.0).contains(&w), "{}", d.name),
                None => assert!(d.source.starts_with("not published:"), "{}", d.name),
            }
            assert!(!d.source.trim().is_empty(), "{}", d.name);
            assert!(d.alias_words().next().is_some(), "{}", d.name);
            // Every alias resolves back to its own row (or its refusal).
            for alias in d.alias_words() {
                let text = alias.join(" ");
                match resolve(&text) {
                    Ok(got) => assert_eq!(got.device.name, d.name, "alias {alias:?}"),
                    Err(e) => assert!(d.watts.is_none(), "alias {alias:?}: {e}"),
                }
            }
        }
    }
}
