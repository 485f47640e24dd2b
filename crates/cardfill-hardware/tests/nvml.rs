//! The real NVML loading and FFI path, against the stub `libnvidia-ml.so` in `nvml-stub/`,
//! built here with gcc.

use std::path::{Path, PathBuf};

use cardfill_hardware::gpu::{GpuProbe, GpuSelection, NvmlStatus};

/// Builds the stub into `dir` (`defines` such as `-DSTUB_OLD_DRIVER`) and returns its path.
fn build_stub(dir: &Path, defines: &[&str]) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nvml-stub/stub.c");
    let out = dir.join("libnvidia-ml.so.1");
    cardfill_testkit::build_stub_library(&source, &out, defines).expect("stub builds");
    out
}

#[test]
fn stub_gpus_are_read_through_nvml() {
    let dir = tempfile::tempdir().unwrap();
    let lib = build_stub(dir.path(), &[]);
    let probe = GpuProbe::open_library(Some(lib.into()), &GpuSelection::All);
    assert_eq!(probe.report.status, NvmlStatus::Ok, "{:?}", probe.report);
    assert_eq!(probe.report.driver_version.as_deref(), Some("550.54.15"));
    assert_eq!(probe.report.cuda_version.as_deref(), Some("12.4"));
    assert_eq!(probe.report.device_count, Some(8));
    assert_eq!(probe.gpus.len(), 8);
    let g = &probe.gpus[3];
    assert_eq!(g.name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
    assert_eq!(
        g.uuid.as_deref(),
        Some("GPU-00000000-1111-2222-3333-000000000003")
    );
    assert_eq!(g.memory_bytes, Some(85_520_809_984));
    assert_eq!(g.power_limit_w, Some(700.0));
    assert_eq!(g.mig_mode.as_deref(), Some("disabled"));
    assert!(g.unsupported.is_empty());

    // The counter advances between reads; power is readable.
    let a = probe.energy_counters();
    let b = probe.energy_counters();
    assert!(a.iter().zip(&b).all(|(a, b)| b.unwrap() > a.unwrap()));
    assert_eq!(probe.power_w()[0], Some(350.0));
}

#[test]
fn selection_by_uuid_matches_nvml_devices() {
    let dir = tempfile::tempdir().unwrap();
    let lib = build_stub(dir.path(), &[]);
    let selection = GpuSelection::Listed {
        var: "CUDA_VISIBLE_DEVICES".into(),
        entries: vec![
            "GPU-00000000-1111-2222-3333-000000000005".into(),
            "GPU-00000000-1111-2222-3333-000000000001".into(),
        ],
    };
    let probe = GpuProbe::open_library(Some(lib.into()), &selection);
    let idx: Vec<u32> = probe.gpus.iter().map(|g| g.index).collect();
    assert_eq!(idx, vec![5, 1]);
}

#[test]
fn an_old_driver_without_the_energy_counter_is_unsupported_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let lib = build_stub(dir.path(), &["-DSTUB_OLD_DRIVER"]);
    let probe = GpuProbe::open_library(Some(lib.into()), &GpuSelection::All);
    assert_eq!(probe.report.status, NvmlStatus::Ok);
    let g = &probe.gpus[0];
    assert_eq!(g.memory_bytes, None);
    assert!(
        g.unsupported
            .contains(&"total_energy_consumption".to_owned())
    );
    assert!(g.unsupported.contains(&"memory_info".to_owned()));
    assert!(probe.energy_counters().iter().all(Option::is_none));
    assert_eq!(probe.power_w()[0], Some(350.0));
}
