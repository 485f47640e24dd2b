//! AMD Instinct GPUs through the AMD SMI library (`libamd_smi.so`, ROCm), loaded at run time
//! like NVML: names, memory, power caps and the energy accumulator, read at the start and end
//! of a run. `CARDFILL_AMDSMI_LIBRARY` overrides the library's path (tests load a C stub).
//!
//! Absent library or driver is not an error: the record says `absent`. Dual-GCD parts (MI250X,
//! MI250) show up as two processors per package; power is counted per package by the carbon
//! estimate (`dies_per_package` in its hardware table), measured energy is summed as read.

use std::ffi::{CStr, OsString, c_void};

use libloading::{Library, Symbol};
use serde::{Deserialize, Serialize};

use crate::gpu::{EnergyMethod, GpuEnergy, GpuInfo, NvmlStatus, counter_energy};

/// Environment variable naming the AMD SMI library to load instead of `libamd_smi.so`.
pub const AMDSMI_LIBRARY_ENV: &str = "CARDFILL_AMDSMI_LIBRARY";
/// Where ROCm installs the library, tried after the loader's search path.
const LIBRARY_PATHS: [&str; 2] = ["libamd_smi.so", "/opt/rocm/lib/libamd_smi.so"];

/// `AMDSMI_INIT_AMD_GPUS`.
const INIT_AMD_GPUS: u64 = 1 << 1;
/// `AMDSMI_STATUS_SUCCESS`.
const SUCCESS: u32 = 0;
/// `AMDSMI_MEM_TYPE_VRAM`.
const MEM_VRAM: u32 = 0;
/// Bytes of `amdsmi_asic_info_t` reserved (the real struct is smaller); `market_name` is its
/// first field, 256 bytes.
const ASIC_INFO_BYTES: usize = 2048;
const NAME_BYTES: usize = 256;

type Handle = *mut c_void;

/// `amdsmi_power_cap_info_t` (µW).
#[repr(C)]
#[derive(Default)]
struct PowerCapInfo {
    power_cap: u64,
    default_power_cap: u64,
    dpm_cap: u64,
    min_power_cap: u64,
    max_power_cap: u64,
}

/// What AMD SMI said, as kept in a run record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AmdSmiReport {
    /// `ok`, `absent` (no library or driver) or `failed` (loaded but would not answer).
    pub status: NvmlStatus,
    /// Why AMD SMI is absent or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// GPU processors (GCDs) AMD SMI sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_count: Option<u32>,
}

/// The AMD GPUs of this machine, opened once.
pub struct AmdProbe {
    lib: Option<Library>,
    handles: Vec<Handle>,
    /// The socket (package) of each handle.
    sockets: Vec<usize>,
    /// What AMD SMI said.
    pub report: AmdSmiReport,
    /// The GPUs, in AMD SMI order.
    pub gpus: Vec<GpuInfo>,
}

impl std::fmt::Debug for AmdProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmdProbe")
            .field("report", &self.report)
            .field("gpus", &self.gpus)
            .finish_non_exhaustive()
    }
}

impl AmdProbe {
    /// Opens `CARDFILL_AMDSMI_LIBRARY`, else the system's `libamd_smi.so`, keeping the GPUs
    /// the job sees (`ROCR_VISIBLE_DEVICES`, else `HIP_VISIBLE_DEVICES`, by index).
    pub fn open() -> Self {
        let mut probe =
            Self::open_library(std::env::var_os(AMDSMI_LIBRARY_ENV).filter(|v| !v.is_empty()));
        let listed = ["ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()));
        if let Some(list) = listed {
            probe.select(&list);
        }
        probe
    }

    /// Keeps the GPUs at the listed indices (`0,2`); a list with anything but indices (UUIDs)
    /// keeps every GPU and says so in the report.
    pub fn select(&mut self, list: &str) {
        let indices: Option<Vec<usize>> = list
            .split(',')
            .map(|e| e.trim().parse::<usize>().ok())
            .collect();
        let Some(indices) = indices else {
            self.report.message = Some(format!(
                "device list `{list}` is not indices: every GPU is counted"
            ));
            return;
        };
        let keep = |i: usize| indices.contains(&i);
        let mut n = 0;
        self.handles.retain(|_| {
            n += 1;
            keep(n - 1)
        });
        let mut n = 0;
        self.sockets.retain(|_| {
            n += 1;
            keep(n - 1)
        });
        self.gpus.retain(|g| keep(g.index as usize));
    }

    /// Opens `path` (or the system library) and reads every GPU.
    pub fn open_library(path: Option<OsString>) -> Self {
        let absent = |message: String| Self {
            lib: None,
            handles: Vec::new(),
            sockets: Vec::new(),
            report: AmdSmiReport {
                status: NvmlStatus::Absent,
                message: Some(message),
                device_count: None,
            },
            gpus: Vec::new(),
        };
        let candidates: Vec<OsString> = match path {
            Some(p) => vec![p],
            None => LIBRARY_PATHS.iter().map(OsString::from).collect(),
        };
        let mut last = String::new();
        let mut lib = None;
        for c in &candidates {
            // SAFETY: loading a shared library runs its initialisers; the AMD SMI library (or
            // the test stub) is what the user or ROCm installed for this purpose.
            match unsafe { Library::new(c) } {
                Ok(l) => {
                    lib = Some(l);
                    break;
                }
                Err(e) => last = format!("cannot load `{}`: {e}", c.to_string_lossy()),
            }
        }
        let Some(lib) = lib else {
            return absent(last);
        };
        let mut probe = Self {
            lib: Some(lib),
            handles: Vec::new(),
            sockets: Vec::new(),
            report: AmdSmiReport {
                status: NvmlStatus::Ok,
                ..AmdSmiReport::default()
            },
            gpus: Vec::new(),
        };
        if let Err(message) = probe.discover() {
            probe.report.status = NvmlStatus::Failed;
            probe.report.message = Some(message);
            probe.handles.clear();
            probe.gpus.clear();
        }
        probe
    }

    fn symbol<T>(&self, name: &[u8]) -> Result<Symbol<'_, T>, String> {
        let lib = self.lib.as_ref().ok_or("AMD SMI is not loaded")?;
        // SAFETY: each symbol is used with the signature the AMD SMI C API declares for it.
        unsafe { lib.get(name) }.map_err(|e| {
            format!(
                "`{}` missing: {e}",
                String::from_utf8_lossy(name).trim_end_matches('\0')
            )
        })
    }

    fn discover(&mut self) -> Result<(), String> {
        let init: Symbol<unsafe extern "C" fn(u64) -> u32> = self.symbol(b"amdsmi_init\0")?;
        // SAFETY: amdsmi_init takes the init flags by value.
        let status = unsafe { init(INIT_AMD_GPUS) };
        if status != SUCCESS {
            return Err(format!("amdsmi_init failed with status {status}"));
        }
        type Sockets = unsafe extern "C" fn(*mut u32, *mut Handle) -> u32;
        type Processors = unsafe extern "C" fn(Handle, *mut u32, *mut Handle) -> u32;
        let sockets: Symbol<Sockets> = self.symbol(b"amdsmi_get_socket_handles\0")?;
        let processors: Symbol<Processors> = self.symbol(b"amdsmi_get_processor_handles\0")?;
        let mut n = 0u32;
        // SAFETY: a null array asks for the count only.
        let status = unsafe { sockets(&raw mut n, std::ptr::null_mut()) };
        if status != SUCCESS {
            return Err(format!(
                "amdsmi_get_socket_handles failed with status {status}"
            ));
        }
        let mut socket_handles: Vec<Handle> = vec![std::ptr::null_mut(); n as usize];
        // SAFETY: the array holds `n` handles.
        let status = unsafe { sockets(&raw mut n, socket_handles.as_mut_ptr()) };
        if status != SUCCESS {
            return Err(format!(
                "amdsmi_get_socket_handles failed with status {status}"
            ));
        }
        socket_handles.truncate(n as usize);
        let mut handles = Vec::new();
        let mut sockets = Vec::new();
        for (socket_index, socket) in socket_handles.into_iter().enumerate() {
            let mut m = 0u32;
            // SAFETY: a null array asks for the count only.
            let status = unsafe { processors(socket, &raw mut m, std::ptr::null_mut()) };
            if status != SUCCESS {
                return Err(format!(
                    "amdsmi_get_processor_handles failed with status {status}"
                ));
            }
            let mut list: Vec<Handle> = vec![std::ptr::null_mut(); m as usize];
            // SAFETY: the array holds `m` handles.
            let status = unsafe { processors(socket, &raw mut m, list.as_mut_ptr()) };
            if status != SUCCESS {
                return Err(format!(
                    "amdsmi_get_processor_handles failed with status {status}"
                ));
            }
            list.truncate(m as usize);
            sockets.extend(std::iter::repeat_n(socket_index, list.len()));
            handles.extend(list);
        }
        self.report.device_count = u32::try_from(handles.len()).ok();
        let mut gpus = Vec::new();
        for (i, h) in handles.iter().enumerate() {
            let mut gpu = GpuInfo {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                ..GpuInfo::default()
            };
            match self.name(*h) {
                Some(n) => gpu.name = Some(n),
                None => gpu.unsupported.push("asic_info".into()),
            }
            match self.memory(*h) {
                Some(m) => gpu.memory_bytes = Some(m),
                None => gpu.unsupported.push("memory_total".into()),
            }
            match self.power_cap_w(*h) {
                Some(w) => gpu.power_limit_w = Some(w),
                None => gpu.unsupported.push("power_cap_info".into()),
            }
            if self.energy_uj(*h).is_none() {
                gpu.unsupported.push("energy_count".into());
            }
            gpus.push(gpu);
        }
        self.handles = handles;
        self.sockets = sockets;
        self.gpus = gpus;
        Ok(())
    }

    fn name(&self, h: Handle) -> Option<String> {
        type Asic = unsafe extern "C" fn(Handle, *mut c_void) -> u32;
        let f: Symbol<Asic> = self.symbol(b"amdsmi_get_gpu_asic_info\0").ok()?;
        let mut buf = vec![0u8; ASIC_INFO_BYTES];
        // SAFETY: the buffer is larger than `amdsmi_asic_info_t`.
        if unsafe { f(h, buf.as_mut_ptr().cast()) } != SUCCESS {
            return None;
        }
        buf[NAME_BYTES - 1] = 0;
        let name = CStr::from_bytes_until_nul(&buf[..NAME_BYTES]).ok()?;
        let name = name.to_string_lossy().trim().to_owned();
        (!name.is_empty()).then_some(name)
    }

    fn memory(&self, h: Handle) -> Option<u64> {
        type Memory = unsafe extern "C" fn(Handle, u32, *mut u64) -> u32;
        let f: Symbol<Memory> = self.symbol(b"amdsmi_get_gpu_memory_total\0").ok()?;
        let mut total = 0u64;
        // SAFETY: one u64 out-parameter.
        (unsafe { f(h, MEM_VRAM, &raw mut total) } == SUCCESS && total > 0).then_some(total)
    }

    fn power_cap_w(&self, h: Handle) -> Option<f64> {
        type Cap = unsafe extern "C" fn(Handle, u32, *mut PowerCapInfo) -> u32;
        let f: Symbol<Cap> = self.symbol(b"amdsmi_get_power_cap_info\0").ok()?;
        let mut info = PowerCapInfo::default();
        // SAFETY: `info` has the layout of `amdsmi_power_cap_info_t`.
        (unsafe { f(h, 0, &raw mut info) } == SUCCESS && info.power_cap > 0)
            .then(|| info.power_cap as f64 / 1e6)
    }

    /// The energy accumulator of one GPU, µJ.
    fn energy_uj(&self, h: Handle) -> Option<u64> {
        type Energy = unsafe extern "C" fn(Handle, *mut u64, *mut f32, *mut u64) -> u32;
        let f: Symbol<Energy> = self.symbol(b"amdsmi_get_energy_count\0").ok()?;
        let (mut count, mut resolution, mut timestamp) = (0u64, 0f32, 0u64);
        // SAFETY: three out-parameters of the declared types.
        let status = unsafe { f(h, &raw mut count, &raw mut resolution, &raw mut timestamp) };
        (status == SUCCESS && resolution > 0.0)
            .then(|| (count as f64 * f64::from(resolution)) as u64)
    }

    /// Each GPU's energy counter now, millijoules (`None` where unsupported).
    pub fn energy_counters(&self) -> Vec<Option<u64>> {
        self.handles
            .iter()
            .map(|h| self.energy_uj(*h).map(|uj| uj / 1000))
            .collect()
    }

    /// The GPUs with their energy between two readings of [`AmdProbe::energy_counters`]. A
    /// die without a counter whose package has one on another die (the second GCD of an
    /// MI250X) is counted there: 0 J of its own.
    pub fn gpus_with_energy(&self, start: &[Option<u64>], end: &[Option<u64>]) -> Vec<GpuInfo> {
        let read = |i: usize| {
            start
                .get(i)
                .copied()
                .flatten()
                .zip(end.get(i).copied().flatten())
        };
        let mut gpus: Vec<GpuInfo> = self
            .gpus
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let mut g = g.clone();
                g.energy = read(i).map(|(s, e)| counter_energy(s, e));
                g
            })
            .collect();
        for i in 0..gpus.len() {
            let socket = self.sockets.get(i);
            let mate_counts = (0..gpus.len())
                .any(|j| j != i && self.sockets.get(j) == socket && read(j).is_some());
            if gpus[i].energy.is_none() && mate_counts {
                gpus[i].energy = Some(GpuEnergy {
                    method: EnergyMethod::Counter,
                    joules: 0.0,
                    ..GpuEnergy::default()
                });
                gpus[i].unsupported.retain(|u| u != "energy_count");
                gpus[i]
                    .unsupported
                    .push("energy_count (counted on its package's other die)".into());
            }
        }
        gpus
    }
}

impl Drop for AmdProbe {
    fn drop(&mut self) {
        if self.report.status == NvmlStatus::Ok
            && let Ok(f) = self.symbol::<unsafe extern "C" fn() -> u32>(b"amdsmi_shut_down\0")
        {
            // SAFETY: no arguments; called once, after the last use of the handles.
            unsafe {
                f();
            }
        }
    }
}
