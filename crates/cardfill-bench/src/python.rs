//! The Python baselines: what people run today to count a local checkpoint's parameters.
//!
//! Each baseline is a whole `python3 -c SCRIPT DIR` process (start-up and imports included, as a
//! user runs it) that prints the parameter total, so the benchmark can check it counted the same.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A Python way of counting a sharded safetensors checkpoint.
#[derive(Clone, Copy, Debug)]
pub struct Baseline {
    /// Short label for the table.
    pub label: &'static str,
    /// Python statement that fails (ImportError) when the baseline cannot run.
    pub requires: &'static str,
    /// What to install when it cannot.
    pub install: &'static str,
    /// The script; `sys.argv[1]` is the checkpoint directory; prints the total.
    pub script: &'static str,
    /// Whether the script prints the parameter total (checked against the weights).
    pub counts: bool,
}

/// huggingface_hub's local reader (`get_local_safetensors_metadata`, huggingface_hub ≥ 1.2).
pub const HF_HUB: Baseline = Baseline {
    label: "huggingface_hub get_local_safetensors_metadata",
    requires: "from huggingface_hub import get_local_safetensors_metadata",
    install: "pip install huggingface_hub",
    script: "import sys
from huggingface_hub import get_local_safetensors_metadata
m = get_local_safetensors_metadata(sys.argv[1])
print(sum(m.parameter_count.values()))
",
    counts: true,
};

/// huggingface_hub's parse (8-byte length, JSON header, product of shapes) with the stdlib only.
pub const STDLIB_JSON: Baseline = Baseline {
    label: "python stdlib json (huggingface_hub's parse)",
    requires: "import json, struct",
    install: "python3",
    script: "import json, os, struct, sys
d = sys.argv[1]
with open(os.path.join(d, 'model.safetensors.index.json')) as f:
    index = json.load(f)
total = 0
for shard in sorted(set(index['weight_map'].values())):
    with open(os.path.join(d, shard), 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(n).decode(errors='ignore'))
    for name, t in header.items():
        if name == '__metadata__':
            continue
        count = 1
        for dim in t['shape']:
            count *= dim
        total += count
print(total)
",
    counts: true,
};

/// The `safetensors.safe_open` loop over the shards, summing each tensor's shape.
pub const SAFE_OPEN: Baseline = Baseline {
    label: "safetensors.safe_open loop",
    requires: "import safetensors, numpy",
    install: "pip install safetensors numpy",
    script: "import json, os, sys
from safetensors import safe_open
d = sys.argv[1]
with open(os.path.join(d, 'model.safetensors.index.json')) as f:
    index = json.load(f)
total = 0
for shard in sorted(set(index['weight_map'].values())):
    with safe_open(os.path.join(d, shard), framework='numpy') as st:
        for name in st.keys():
            count = 1
            for dim in st.get_slice(name).get_shape():
                count *= dim
            total += count
print(total)
",
    counts: true,
};

/// The interpreter starting and doing nothing: the floor of any Python baseline.
pub const STARTUP: Baseline = Baseline {
    label: "python3 -c pass (interpreter start-up only)",
    requires: "pass",
    install: "python3",
    script: "pass",
    counts: false,
};

/// Every safetensors baseline, in table order.
pub const SAFETENSORS_BASELINES: [Baseline; 4] = [HF_HUB, SAFE_OPEN, STDLIB_JSON, STARTUP];

/// A Python interpreter, resolved to the real executable (not a pyenv shim).
#[derive(Clone, Debug)]
pub struct Python {
    /// `sys.executable`.
    pub exe: PathBuf,
    /// `sys.version`, first word.
    pub version: String,
}

impl Python {
    /// Finds `python` (a name on PATH or a path) and asks it for its real executable.
    pub fn find(python: &Path) -> Option<Self> {
        let out = Command::new(python)
            .args([
                "-c",
                "import sys; print(sys.executable); print(sys.version.split()[0])",
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let exe = PathBuf::from(lines.next()?.trim());
        let version = lines.next().unwrap_or("").trim().to_owned();
        Some(Self { exe, version })
    }

    /// Whether `baseline` can run here.
    pub fn can_run(&self, baseline: &Baseline) -> bool {
        Command::new(&self.exe)
            .args(["-c", baseline.requires])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The command line that runs `baseline` on `dir`.
    pub fn command(&self, baseline: &Baseline, dir: &Path) -> Vec<OsString> {
        vec![
            self.exe.clone().into(),
            "-c".into(),
            baseline.script.into(),
            dir.into(),
        ]
    }
}
