//! The carbon formula against the ML CO2 Impact calculator and published model figures, and the
//! order of evidence.
#![allow(clippy::unwrap_used)] // test helpers

use cardfill_carbon::{CarbonOptions, TrainingType, collect};
use cardfill_facts::{Facts, Source, paths};
use serde_json::json;

fn opts() -> CarbonOptions {
    CarbonOptions::default()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs()
}

#[test]
fn matches_the_ml_co2_impact_calculator() {
    // mlco2/impact: kWh = TDP × hours / 1000; kg = kWh × impact / 1000, no PUE.
    // Their data: gpus.csv "Tesla V100-SXM2-32GB" 300 W; impact.csv gcp europe-west1 impact 267.
    // 100 hours → 30 kWh → 8.01 kg.
    let f = collect(
        &Facts::new(),
        &CarbonOptions {
            hardware: Some("Tesla V100-SXM2-32GB".into()),
            hours: Some(100.0),
            intensity: Some(267.0),
            pue: Some(1.0),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(f.f64(paths::CARBON_ENERGY_KWH), Some(30.0));
    assert_eq!(f.f64(paths::CARBON_CO2_GRAMS), Some(8010.0));
    assert!(
        f.str(paths::CARBON_METHOD)
            .unwrap()
            .starts_with("estimated: 1 × NVIDIA V100 SXM2 32GB at 300 W maximum board power")
    );
}

#[test]
fn published_v100_card_is_consistent_with_its_region() {
    // tests/fixtures/cases/hub-readmes/co2_structured_v100*.md: 2930 g, "1 v100 GPU", Belgium,
    // from the ML CO2 calculator. With a 300 W V100 and our table's Belgian intensity the
    // published figure corresponds to a plausible run length for 12,000 whisper-medium steps.
    let be = cardfill_carbon::tables()
        .unwrap()
        .region("BE")
        .unwrap()
        .g_per_kwh;
    let f = collect(
        &Facts::new(),
        &CarbonOptions {
            hardware: Some("1x v100".into()),
            hours: Some(1.0),
            region: Some("BE".into()),
            pue: Some(1.0),
            ..opts()
        },
    )
    .unwrap();
    let per_hour = f.f64(paths::CARBON_CO2_GRAMS).unwrap();
    assert!(close(per_hour, 0.3 * be, 0.001));
    let hours = 2930.0 / per_hour;
    assert!((10.0..200.0).contains(&hours), "{hours} h");
}

#[test]
fn measured_energy_wins_over_estimates() {
    let mut known = Facts::new();
    known.set(
        paths::RUN_ENERGY_KWH,
        12.5,
        Source::file(".cardfill/run.json", "energy_mj"),
    );
    known.set(
        paths::RUN_ENERGY_METHOD,
        "measured",
        Source::file(".cardfill/run.json", "energy_method"),
    );
    known.set(
        paths::RUN_HOURS,
        10.0,
        Source::file(".cardfill/run.json", "start/end"),
    );
    known.set(
        paths::HARDWARE_GPUS,
        json!([{"name": "NVIDIA A100-SXM4-80GB", "power_limit_w": 400}]),
        Source::probe("nvml", "device"),
    );
    let f = collect(
        &known,
        &CarbonOptions {
            hardware: Some("8x H100".into()),
            hours: Some(100.0),
            region: Some("fr".into()),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(f.f64(paths::CARBON_ENERGY_KWH), Some(12.5));
    assert!(f.str(paths::CARBON_METHOD).unwrap().starts_with("measured"));
    assert_eq!(
        f.get(paths::CARBON_ENERGY_KWH).unwrap().source,
        Source::file(".cardfill/run.json", "energy_mj")
    );
    // FR: no provider PUE → the printed default from data/pue.csv.
    let pue = f.get(paths::CARBON_PUE).unwrap();
    assert_eq!(pue.value, json!(1.56));
    assert!(
        matches!(pue.source, Source::Default { .. }),
        "{:?}",
        pue.source
    );
    assert_eq!(
        f.f64(paths::CARBON_CO2_GRAMS),
        Some((12.5 * 1.56 * 56.0_f64 * 10.0).round() / 10.0)
    );

    // Sampled energy says so.
    known.set(
        paths::RUN_ENERGY_METHOD,
        "sampled",
        Source::file(".cardfill/run.json", "energy_method"),
    );
    let f = collect(
        &known,
        &CarbonOptions {
            region: Some("FR".into()),
            ..opts()
        },
    )
    .unwrap();
    assert!(f.str(paths::CARBON_METHOD).unwrap().starts_with("sampled"));
}

#[test]
fn power_limits_from_the_record_drive_the_estimate() {
    let mut known = Facts::new();
    known.set(
        paths::RUN_HOURS,
        2.0,
        Source::file(".cardfill/run.json", "start/end"),
    );
    known.set(paths::HARDWARE_GPU_COUNT, 4, Source::probe("nvml", "count"));
    known.set(
        paths::HARDWARE_GPUS,
        json!([{"name": "NVIDIA A10G", "power_limit_w": 300}]),
        Source::probe("nvml", "device"),
    );
    known.set(
        paths::MODEL_BASE_MODEL,
        "openai/whisper-medium",
        Source::file("README.md", "base_model"),
    );
    let f = collect(
        &known,
        &CarbonOptions {
            region: Some("aws:us-east-1".into()),
            utilization: Some(0.5),
            ..opts()
        },
    )
    .unwrap();
    // 300 W × 4 × 2 h × 0.5 = 1.2 kWh; × AWS PUE 1.15 × 244.8 g/kWh (eGRID2023 Virginia CO2e,
    // 539.599 lbs/MWh × 0.45359237).
    assert_eq!(f.f64(paths::CARBON_ENERGY_KWH), Some(1.2));
    assert_eq!(f.f64(paths::CARBON_PUE), Some(1.15));
    assert_eq!(
        f.f64(paths::CARBON_CO2_GRAMS),
        Some((1.2 * 1.15 * 244.8_f64 * 10.0).round() / 10.0)
    );
    assert_eq!(f.str(paths::CARBON_PROVIDER), Some("AWS"));
    assert_eq!(f.str(paths::CARBON_REGION), Some("aws:us-east-1"));
    assert_eq!(
        f.str(paths::CARBON_LOCATION),
        Some("Ashburn, Virginia, United States")
    );
    assert_eq!(
        f.str(paths::CARBON_INTENSITY_SOURCE),
        Some("US EPA eGRID2023 state CO2e output rate (STC2ERTA) (grid US-VA), 2023")
    );
    assert_eq!(f.str(paths::CARBON_TRAINING_TYPE), Some("fine-tuning"));
    assert!(f.str(paths::CARBON_METHOD).unwrap().contains("power limit"));

    let f = collect(
        &known,
        &CarbonOptions {
            region: Some("aws:us-east-1".into()),
            training_type: Some(TrainingType::PreTraining),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(f.str(paths::CARBON_TRAINING_TYPE), Some("pre-training"));
}

#[test]
fn without_a_region_nothing_is_guessed() {
    let f = collect(
        &Facts::new(),
        &CarbonOptions {
            hardware: Some("A100 SXM4 40GB".into()),
            hours: Some(3.0),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(f.f64(paths::CARBON_ENERGY_KWH), Some(1.2));
    for p in [
        paths::CARBON_CO2_GRAMS,
        paths::CARBON_PUE,
        paths::CARBON_INTENSITY,
        paths::CARBON_REGION,
    ] {
        assert!(!f.contains(p), "{p}");
    }
    assert_eq!(f.warnings()[0].code, "carbon-region-missing");
    // And no evidence at all: no facts, no warnings.
    let f = collect(&Facts::new(), &opts()).unwrap();
    assert!(f.is_empty() && f.warnings().is_empty());
}

#[test]
fn bad_input_is_a_one_line_error() {
    let err = collect(
        &Facts::new(),
        &CarbonOptions {
            region: Some("aws:us-east-9".into()),
            ..opts()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`aws:us-east-9`") && err.contains("aws:us-east-1"),
        "{err}"
    );
    assert!(!err.contains('\n'));
    let err = collect(
        &Facts::new(),
        &CarbonOptions {
            hardware: Some("Voodoo 3".into()),
            hours: Some(1.0),
            ..opts()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`Voodoo 3`"), "{err}");
    let err = collect(
        &Facts::new(),
        &CarbonOptions {
            pue: Some(0.5),
            ..opts()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("--pue 0.5"), "{err}");
}

#[test]
fn cpu_tdp_and_ram_are_estimated_apart_and_summed() {
    let mut known = Facts::new();
    let host = || Source::file(".cardfill/run.json", "host");
    known.set(paths::RUN_HOURS, 10.0, Source::flag("--hours"));
    known.set(paths::RUN_NODES, 2, Source::derived("nodes counted"));
    known.set(
        paths::HARDWARE_CPU,
        "AMD EPYC 7763 64-Core Processor",
        host(),
    );
    known.set(paths::HARDWARE_RAM_BYTES, 512_000_000_000u64, host());
    let f = collect(
        &known,
        &CarbonOptions {
            hardware: Some("A100 SXM4 80GB".into()),
            count: Some(8),
            intensity: Some(100.0),
            pue: Some(1.0),
            ..opts()
        },
    )
    .unwrap();
    // GPU 8 × 400 W × 10 h = 32 kWh; CPU 280 W TDP (cpu_power.csv) × 10 h × 2 nodes = 5.6 kWh;
    // RAM 512 GB × 0.3725 W/GB × 10 h × 2 nodes = 3.814 kWh.
    assert_eq!(f.f64(paths::CARBON_ENERGY_GPU_KWH), Some(32.0));
    assert_eq!(f.f64(paths::CARBON_ENERGY_CPU_KWH), Some(5.6));
    assert_eq!(f.f64(paths::CARBON_ENERGY_RAM_KWH), Some(3.814));
    assert_eq!(f.f64(paths::CARBON_ENERGY_KWH), Some(41.414));
    let cpu = &f.get(paths::CARBON_ENERGY_CPU_KWH).unwrap().source;
    assert!(cpu.to_string().contains("AMD EPYC 7763 280 W"), "{cpu}");
    let ram = &f.get(paths::CARBON_ENERGY_RAM_KWH).unwrap().source;
    assert!(ram.to_string().contains("Green Algorithms"), "{ram}");

    // A CPU the table lacks is said so, and only the GPU counts.
    known.set(paths::HARDWARE_CPU, "Imaginary CPU 9000", host());
    known.set(paths::HARDWARE_RAM_BYTES, 0u64, host());
    let f = collect(
        &known,
        &CarbonOptions {
            hardware: Some("A100 SXM4 80GB".into()),
            count: Some(8),
            intensity: Some(100.0),
            ..opts()
        },
    )
    .unwrap();
    assert!(f.warnings().iter().any(|w| w.code == "carbon-cpu-unknown"));
    assert_eq!(f.f64(paths::CARBON_ENERGY_CPU_KWH), None);
}

#[test]
fn dual_die_packages_are_counted_as_packages() {
    // MI250X: the system shows 8 devices for 4 packages; power is per package (560 W).
    let mut known = Facts::new();
    known.set(paths::RUN_HOURS, 1.0, Source::flag("--hours"));
    known.set(
        paths::HARDWARE_GPU_COUNT,
        8,
        Source::probe("amdsmi", "count"),
    );
    known.set(
        paths::HARDWARE_GPUS,
        json!([{"name": "AMD Instinct MI250X"}]),
        Source::probe("amdsmi", "device"),
    );
    let f = collect(
        &known,
        &CarbonOptions {
            intensity: Some(100.0),
            pue: Some(1.0),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(f.f64(paths::CARBON_ENERGY_KWH), Some(2.24));
    assert!(
        f.str(paths::CARBON_METHOD)
            .unwrap()
            .contains("8 devices = 4 packages of 2 dies"),
        "{:?}",
        f.str(paths::CARBON_METHOD)
    );
}
