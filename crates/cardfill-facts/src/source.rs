//! Provenance of a fact.

use serde::Serialize;

/// Where a fact came from: which file or probe, and which method.
///
/// Paths in [`Source::File`] are written relative to the inspected directory where they lie
/// inside it, so that output is stable across machines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Read from a file: `path`, and the key, header or method used (`architectures[0]`).
    File {
        /// The file, relative to the checkpoint directory where possible.
        path: String,
        /// What was read in it.
        method: String,
    },
    /// Read from the machine: a probe such as `nvml`, `sysinfo`, `slurm`, and how.
    Probe {
        /// The probe's name.
        probe: String,
        /// The call or command used.
        method: String,
    },
    /// Given on the command line.
    Flag {
        /// The flag, e.g. `--hours`.
        flag: String,
    },
    /// Read from an environment variable.
    Env {
        /// The variable's name.
        var: String,
    },
    /// Computed from other facts.
    Derived {
        /// The rule, e.g. `sum of parameters.by_dtype`.
        method: String,
    },
    /// An explicit default, printed so the user can override it.
    Default {
        /// What the default is and why.
        method: String,
    },
    /// Told by the training process (a cardfill integration), through its training record.
    TrainingProcess {
        /// What the process read (`TrainingArguments`, `model.name_or_path`), and the record.
        method: String,
    },
    /// Fetched over the network (only when the user allowed it).
    Network {
        /// The endpoint asked.
        url: String,
        /// What was read from the answer.
        method: String,
    },
}

impl Source {
    /// A fact read from `path` by `method`.
    pub fn file(path: impl Into<String>, method: impl Into<String>) -> Self {
        Self::File {
            path: path.into(),
            method: method.into(),
        }
    }

    /// A fact from a machine probe.
    pub fn probe(probe: impl Into<String>, method: impl Into<String>) -> Self {
        Self::Probe {
            probe: probe.into(),
            method: method.into(),
        }
    }

    /// A fact given by a command-line flag.
    pub fn flag(flag: impl Into<String>) -> Self {
        Self::Flag { flag: flag.into() }
    }

    /// A fact given by an environment variable.
    pub fn env(var: impl Into<String>) -> Self {
        Self::Env { var: var.into() }
    }

    /// A fact computed from other facts.
    pub fn derived(method: impl Into<String>) -> Self {
        Self::Derived {
            method: method.into(),
        }
    }

    /// An explicit default.
    pub fn default_value(method: impl Into<String>) -> Self {
        Self::Default {
            method: method.into(),
        }
    }

    /// A fact told by the training process: `method` says what it read.
    pub fn training_process(method: impl Into<String>) -> Self {
        Self::TrainingProcess {
            method: method.into(),
        }
    }

    /// A fact fetched from `url`.
    pub fn network(url: impl Into<String>, method: impl Into<String>) -> Self {
        Self::Network {
            url: url.into(),
            method: method.into(),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File { path, method } => write!(f, "{path}: {method}"),
            Self::Probe { probe, method } => write!(f, "probe {probe}: {method}"),
            Self::Flag { flag } => write!(f, "flag {flag}"),
            Self::Env { var } => write!(f, "environment {var}"),
            Self::Derived { method } => write!(f, "derived: {method}"),
            Self::Default { method } => write!(f, "default: {method}"),
            Self::TrainingProcess { method } => write!(f, "training process: {method}"),
            Self::Network { url, method } => write!(f, "{url}: {method}"),
        }
    }
}
