//! The committed intensity and PUE tables: every row checked.
#![allow(clippy::unwrap_used)] // test helpers

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

fn read(name: &str) -> Vec<csv::StringRecord> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader.records().map(Result::unwrap).collect()
}

fn header(name: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect()
}

#[test]
fn intensity_table_every_row_is_sourced_plausible_and_unique() {
    assert_eq!(
        header("intensity.csv"),
        [
            "key",
            "kind",
            "provider",
            "name",
            "location",
            "grid",
            "g_per_kwh",
            "source",
            "year",
            "method",
            "pue",
            "pue_source",
            "em_zone"
        ]
    );
    let rows = read("intensity.csv");
    let providers: HashSet<String> = read("pue.csv").iter().map(|r| r[0].to_owned()).collect();
    let keys: HashSet<String> = rows.iter().map(|r| r[0].to_ascii_lowercase()).collect();
    assert_eq!(keys.len(), rows.len(), "duplicate keys (case-insensitive)");
    let mut countries = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for r in &rows {
        let key = &r[0];
        let kind = &r[1];
        kinds.insert(kind.to_owned());
        let g: f64 = r[6]
            .parse()
            .unwrap_or_else(|_| panic!("{key}: g_per_kwh `{}`", &r[6]));
        assert!(g > 0.0 && g < 1500.0, "{key}: {g} g/kWh out of range");
        assert!(!r[7].trim().is_empty(), "{key}: no source");
        let year: u16 = r[8]
            .parse()
            .unwrap_or_else(|_| panic!("{key}: year `{}`", &r[8]));
        assert!((2000..=2030).contains(&year), "{key}: year {year}");
        assert!(
            !r[3].trim().is_empty() && !r[4].trim().is_empty(),
            "{key}: name/location"
        );
        assert!(
            keys.contains(&r[5].to_ascii_lowercase()),
            "{key}: grid `{}` not in table",
            &r[5]
        );
        match kind {
            "country" => {
                assert!(
                    key.len() == 2 && key.bytes().all(|b| b.is_ascii_uppercase()),
                    "{key}"
                );
                countries.insert(key.to_owned());
            }
            "subdivision" => {
                let (c, s) = key.split_once('-').unwrap_or_else(|| panic!("{key}"));
                assert!(
                    keys.contains(&c.to_ascii_lowercase()),
                    "{key}: country missing"
                );
                assert!(
                    (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()),
                    "{key}"
                );
            }
            "cloud" => {
                let (p, region) = key.split_once(':').unwrap_or_else(|| panic!("{key}"));
                assert_eq!(p, &r[2], "{key}: provider column");
                assert!(providers.contains(p), "{key}: provider not in pue.csv");
                assert!(
                    !region.is_empty() && region == region.to_ascii_lowercase(),
                    "{key}"
                );
                assert!(&r[5] != key, "{key}: a cloud region sits on a grid");
            }
            other => panic!("{key}: kind `{other}`"),
        }
        assert!(
            r[9].starts_with("CO2e ") || r[9].starts_with("CO2 "),
            "{key}: method `{}` names the gas basis",
            &r[9]
        );
        if !r[10].is_empty() {
            let pue: f64 = r[10].parse().unwrap();
            assert!((1.0..=2.0).contains(&pue), "{key}: PUE {pue}");
            assert!(
                r[11].contains(", 20"),
                "{key}: PUE source and year `{}`",
                &r[11]
            );
        }
    }
    assert!(countries.len() >= 200, "{} countries", countries.len());
    assert_eq!(
        kinds,
        ["cloud", "country", "subdivision"]
            .map(str::to_owned)
            .into()
    );
    for must in [
        "aws:us-east-1",
        "gcp:europe-west4",
        "azure:westeurope",
        "fr",
        "us-ca",
        "ca-qc",
        "cn-nx",
        "se-se3",
        "no-no4",
    ] {
        assert!(keys.contains(must), "{must} missing");
    }
    for provider in ["aws", "gcp", "azure"] {
        let n = rows.iter().filter(|r| &r[2] == provider).count();
        assert!(n >= 20, "{provider}: {n} regions");
        assert!(
            rows.iter()
                .filter(|r| &r[2] == provider)
                .all(|r| !r[10].is_empty()),
            "{provider}: PUE"
        );
    }
}

#[test]
fn embedded_tables_are_the_committed_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    assert_eq!(
        cardfill_carbon::table::INTENSITY_CSV,
        std::fs::read_to_string(dir.join("intensity.csv")).unwrap()
    );
    assert_eq!(
        cardfill_carbon::table::PUE_CSV,
        std::fs::read_to_string(dir.join("pue.csv")).unwrap()
    );
    let t = cardfill_carbon::tables().unwrap();
    assert_eq!(t.regions.len(), read("intensity.csv").len());
}

#[test]
fn pue_table_has_a_sourced_default() {
    let rows = read("pue.csv");
    let default = rows
        .iter()
        .find(|r| &r[0] == "default")
        .expect("default row");
    let pue: f64 = default[2].parse().unwrap();
    assert!((1.0..=2.0).contains(&pue));
    assert!(!default[3].is_empty() && default[4].parse::<u16>().is_ok());
    for r in &rows {
        if !r[2].is_empty() {
            assert!(
                !r[3].is_empty() && r[4].parse::<u16>().is_ok(),
                "{}: PUE source/year",
                &r[0]
            );
        }
    }
}

#[test]
fn known_figures_match_their_sources() {
    let t = cardfill_carbon::tables().unwrap();
    // OWID 2023 (README of the shared data): FRA 56.0, USA 369.5, SWE 40.7.
    assert_eq!(t.region("FR").unwrap().g_per_kwh, 56.0);
    assert_eq!(t.region("US").unwrap().g_per_kwh, 369.5);
    assert_eq!(t.region("SE").unwrap().g_per_kwh, 40.7);
    // eGRID2023 Virginia CO2e 539.599 lbs/MWh × 0.45359237 = 244.8 g/kWh (codecarbon 3.3.2's
    // usa_emissions.json, STC2ERTA); AWS us-east-1 and Azure eastus sit on it.
    let va = t.region("US-VA").unwrap();
    assert!((va.g_per_kwh - 244.8).abs() < 0.05);
    assert_eq!(
        (va.year, va.method.as_str()),
        (2023, "CO2e combustion, generation (total output rate)")
    );
    for cloud in ["aws:us-east-1", "azure:eastus"] {
        let row = t.region(cloud).unwrap();
        assert_eq!((row.grid.as_str(), row.g_per_kwh), ("US-VA", va.g_per_kwh));
        assert_eq!(row.year, 2023);
    }
    assert_eq!(
        t.region("aws:us-east-1").unwrap().location,
        "Ashburn, Virginia, United States"
    );
    // Oregon 364.963 lbs/MWh → 165.5 g/kWh; us-west-2 (Boardman) sits on it.
    let or = t.region("aws:us-west-2").unwrap();
    assert_eq!((or.grid.as_str(), or.g_per_kwh), ("US-OR", 165.5));
    // China 2023 provincial factors (MEE/NBS), CO2 only: Ningxia 618.7, Beijing 555.4.
    let nx = t.region("aws:cn-northwest-1").unwrap();
    assert_eq!((nx.grid.as_str(), nx.g_per_kwh), ("CN-NX", 618.7));
    assert!(nx.method.starts_with("CO2 only"));
    assert_eq!(t.region("azure:chinanorth").unwrap().g_per_kwh, 555.4);
    // Nordic bidding zones (ENTSO-E 2025): SE3 27.0 under Stockholm and Gävle, NO4 51.7.
    assert_eq!(t.region("aws:eu-north-1").unwrap().grid, "SE-SE3");
    assert_eq!(t.region("azure:swedencentral").unwrap().g_per_kwh, 27.0);
    assert_eq!(t.region("NO-NO4").unwrap().g_per_kwh, 51.7);
    assert_eq!(t.region("azure:norwayeast").unwrap().grid, "NO-NO1");
    // Google's own figure for europe-west4 (Eemshaven).
    assert_eq!(t.region("gcp:europe-west4").unwrap().g_per_kwh, 236.0);
}
