//! The host: CPU, RAM, OS and name (sysinfo).

use serde::{Deserialize, Serialize};
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// What sysinfo says about this machine. Every field is optional: unknown stays absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Host name (kept out of the card unless asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// CPU model (`AMD EPYC 7763 64-Core Processor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Physical CPU cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<u32>,
    /// Logical CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_threads: Option<u32>,
    /// RAM in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ram_bytes: Option<u64>,
    /// Operating system (`Linux (Debian GNU/Linux 12)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
}

impl HostInfo {
    /// Probes this machine.
    pub fn probe() -> Self {
        let refresh = RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram());
        let system = System::new_with_specifics(refresh).ok();
        let cpus = system.as_ref().map(|s| s.cpus()).unwrap_or_default();
        let cpu = cpus
            .iter()
            .map(|c| c.brand().trim())
            .find(|b| !b.is_empty())
            .map(str::to_owned);
        let ram = system.as_ref().map(System::total_memory).filter(|&m| m > 0);
        Self {
            hostname: System::host_name().ok().filter(|h| !h.is_empty()),
            cpu,
            cpu_cores: System::physical_core_count()
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n > 0),
            cpu_threads: u32::try_from(cpus.len()).ok().filter(|&n| n > 0),
            ram_bytes: ram,
            os: System::long_os_version().ok().filter(|s| !s.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_finds_this_machine() {
        let host = HostInfo::probe();
        // Linux CI machines always expose RAM and a host name.
        assert!(host.ram_bytes.unwrap() > 0);
        assert!(!host.hostname.unwrap().is_empty());
    }
}
