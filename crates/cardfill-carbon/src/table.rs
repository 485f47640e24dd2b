//! The grid intensity table (`data/intensity.csv`) and provider PUE table (`data/pue.csv`),
//! embedded in the binary and parsed once.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::CarbonError;

/// The embedded intensity table, as committed (built by `data/build_table.py`).
pub const INTENSITY_CSV: &str = include_str!("../data/intensity.csv");
/// The embedded provider PUE table.
pub const PUE_CSV: &str = include_str!("../data/pue.csv");

/// One row of the intensity table: a country, a subdivision or a cloud region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// The key `--region` takes: `FR`, `US-CA`, `aws:us-east-1`.
    pub key: String,
    /// `country`, `subdivision` or `cloud`.
    pub kind: String,
    /// Cloud provider short name (`aws`, `gcp`, `azure`, ...), empty for grids.
    pub provider: String,
    /// Readable name.
    pub name: String,
    /// Human location (`Ashburn, Virginia, United States`).
    pub location: String,
    /// Key of the grid the row sits on (itself for grids).
    pub grid: String,
    /// Grid intensity, g CO2eq per kWh.
    pub g_per_kwh: f64,
    /// Where the intensity comes from.
    pub source: String,
    /// Year of the intensity figure.
    pub year: u16,
    /// Gas basis, scope of the factors and generation or consumption
    /// (`CO2e combustion, generation (total output rate)`).
    pub method: String,
    /// The provider's published PUE, where known.
    pub pue: Option<f64>,
    /// Source and year of the PUE.
    pub pue_source: String,
    /// The Electricity Maps zone of the grid, where known.
    pub em_zone: String,
}

impl Region {
    /// "source, year" of the intensity.
    pub fn intensity_source(&self) -> String {
        format!("{}, {}", self.source, self.year)
    }
}

/// A row of the PUE table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ProviderPue {
    /// Provider short name, or `default`.
    pub provider: String,
    /// Provider display name.
    pub provider_name: String,
    /// Published PUE, where known.
    pub pue: Option<f64>,
    /// Where the PUE comes from.
    pub source: String,
    /// Year of the figure.
    pub year: Option<u16>,
}

/// Both embedded tables.
#[derive(Debug)]
pub struct Tables {
    /// Intensity rows, in file order.
    pub regions: Vec<Region>,
    /// Provider PUE rows.
    pub pue: Vec<ProviderPue>,
}

/// Rows of an embedded CSV table; an error names the file and row.
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(
    name: &str,
    text: &str,
) -> Result<Vec<T>, String> {
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.map_err(|e| format!("`data/{name}` row {}: {e}", i + 1)))
        .collect()
}

/// The embedded tables, parsed on first use.
pub fn tables() -> Result<&'static Tables, CarbonError> {
    static TABLES: OnceLock<Result<Tables, String>> = OnceLock::new();
    TABLES
        .get_or_init(|| {
            Ok(Tables {
                regions: parse("intensity.csv", INTENSITY_CSV)?,
                pue: parse("pue.csv", PUE_CSV)?,
            })
        })
        .as_ref()
        .map_err(|e| CarbonError::Table(e.clone()))
}

impl Tables {
    /// The row for `key` (case-insensitive), or an error listing close matches.
    pub fn region(&self, key: &str) -> Result<&Region, CarbonError> {
        let wanted = key.trim();
        if let Some(row) = self
            .regions
            .iter()
            .find(|r| r.key.eq_ignore_ascii_case(wanted))
        {
            return Ok(row);
        }
        Err(CarbonError::UnknownRegion {
            region: wanted.to_owned(),
            suggestions: self.close_matches(wanted),
        })
    }

    /// Up to five keys closest to `query` (edit distance on keys, then substring of names).
    pub fn close_matches(&self, query: &str) -> Vec<String> {
        let q = query.to_ascii_lowercase();
        let mut scored: Vec<(f64, &str)> = self
            .regions
            .iter()
            .map(|r| {
                let key = r.key.to_ascii_lowercase();
                let region_part = key.split_once(':').map_or(key.as_str(), |(_, r)| r);
                let q_part = q.split_once(':').map_or(q.as_str(), |(_, r)| r);
                let mut score = strsim::jaro_winkler(&q, &key)
                    .max(strsim::jaro_winkler(q_part, region_part) - 0.05);
                if q.len() >= 3 && r.name.to_ascii_lowercase().contains(&q) {
                    score = score.max(0.95);
                }
                (score, r.key.as_str())
            })
            .filter(|(s, _)| *s >= 0.8)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        scored
            .into_iter()
            .take(5)
            .map(|(_, k)| k.to_owned())
            .collect()
    }

    /// Rows whose key, name or location contains `query` (case-insensitive); all without one.
    pub fn search(&self, query: Option<&str>) -> Vec<&Region> {
        let Some(q) = query.map(str::to_lowercase) else {
            return self.regions.iter().collect();
        };
        // A short query (`FR`, `va`) is a code: whole words only, so `FR` finds France and
        // the regions on its grid, not "Africa" or "Frankfurt". A longer one is a substring.
        let code = q.chars().count() <= 3 && q.chars().all(char::is_alphanumeric);
        let hit = |text: &str| {
            let text = text.to_lowercase();
            if code {
                text.split(|c: char| !c.is_alphanumeric()).any(|w| w == q)
            } else {
                text.contains(&q)
            }
        };
        self.regions
            .iter()
            .filter(|r| {
                r.grid.to_lowercase() == q || hit(&r.key) || hit(&r.name) || hit(&r.location)
            })
            .collect()
    }

    /// The PUE row of `provider` (or `default`).
    pub fn provider(&self, provider: &str) -> Option<&ProviderPue> {
        self.pue.iter().find(|p| p.provider == provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_resolve_case_insensitively() {
        let t = tables().unwrap();
        assert_eq!(t.region("AWS:US-EAST-1").unwrap().key, "aws:us-east-1");
        assert_eq!(t.region("ca-qc").unwrap().location, "Quebec, Canada");
        assert_eq!(t.region("fr").unwrap().kind, "country");
    }

    #[test]
    fn unknown_region_suggests_close_keys() {
        let t = tables().unwrap();
        let Err(CarbonError::UnknownRegion { suggestions, .. }) = t.region("aws:us-east-9") else {
            panic!("expected an unknown region");
        };
        assert!(
            suggestions.contains(&"aws:us-east-1".to_owned()),
            "{suggestions:?}"
        );
        let Err(CarbonError::UnknownRegion { suggestions, .. }) = t.region("westeurope") else {
            panic!("expected an unknown region");
        };
        assert!(
            suggestions.contains(&"azure:westeurope".to_owned()),
            "{suggestions:?}"
        );
    }
}
