//! The real AMD SMI loading and FFI path, against the stub `libamd_smi.so` in `amdsmi-stub/`,
//! built here with gcc.

use std::path::{Path, PathBuf};

use cardfill_hardware::amd::AmdProbe;
use cardfill_hardware::gpu::NvmlStatus;

fn build_stub(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/amdsmi-stub/stub.c");
    let out = dir.join("libamd_smi.so");
    cardfill_testkit::build_stub_library(&source, &out, &[]).expect("stub builds");
    out
}

/// The probe report's message; panics when there is none.
fn message(probe: &AmdProbe) -> &str {
    probe.report.message.as_deref().expect("a message")
}

#[test]
fn stub_gpus_are_read_through_amd_smi() {
    let dir = tempfile::tempdir().unwrap();
    let lib = build_stub(dir.path());
    let probe = AmdProbe::open_library(Some(lib.into()));
    assert_eq!(probe.report.status, NvmlStatus::Ok, "{:?}", probe.report);
    // Four MI250X packages: eight GCDs, each its own processor.
    assert_eq!(probe.report.device_count, Some(8));
    assert_eq!(probe.gpus.len(), 8);
    let g = &probe.gpus[2];
    assert_eq!(g.index, 2);
    assert_eq!(g.name.as_deref(), Some("AMD Instinct MI250X"));
    assert_eq!(g.memory_bytes, Some(68_702_699_520));
    assert_eq!(g.power_limit_w, Some(560.0));
    assert!(g.unsupported.is_empty(), "{:?}", g.unsupported);
    // The second die of a package reports no energy.
    assert_eq!(probe.gpus[3].unsupported, ["energy_count"]);

    // The accumulator advances between reads: 10^8 counts × 15.3 µJ = 1530 J per read.
    let a = probe.energy_counters();
    let b = probe.energy_counters();
    assert_eq!(a[3], None);
    let gpus = probe.gpus_with_energy(&a, &b);
    let e = gpus[0].energy.as_ref().unwrap();
    assert!((e.joules - 1530.0).abs() < 1.0, "{e:?}");
    // The second die is counted on the first: 0 J of its own, and said so.
    assert_eq!(gpus[1].energy.as_ref().unwrap().joules, 0.0);
    assert!(gpus[1].unsupported[0].contains("other die"));
    let total: f64 = gpus.iter().map(|g| g.energy.as_ref().unwrap().joules).sum();
    assert!((total - 4.0 * 1530.0).abs() < 4.0, "{total}");
}

#[test]
fn a_failing_or_missing_library_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let probe = AmdProbe::open_library(Some(dir.path().join("libamd_smi.so").into()));
    assert_eq!(probe.report.status, NvmlStatus::Absent);
    assert!(message(&probe).contains("cannot load"));
    assert!(probe.gpus.is_empty());
}

#[test]
fn the_job_s_visible_devices_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let lib = build_stub(dir.path());
    let mut probe = AmdProbe::open_library(Some(lib.into()));
    probe.select("0,1,4");
    let idx: Vec<u32> = probe.gpus.iter().map(|g| g.index).collect();
    assert_eq!(idx, [0, 1, 4]);
    let a = probe.energy_counters();
    assert_eq!(a.len(), 3);
    // GCD 1 is counted on its package's GCD 0; GCD 4 has its own counter.
    let gpus = probe.gpus_with_energy(&a, &probe.energy_counters());
    assert!(gpus.iter().all(|g| g.energy.is_some()));
    probe.select("GPU-1234");
    assert!(message(&probe).contains("not indices"));
}
