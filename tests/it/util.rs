//! Shared helpers: a temporary checkpoint directory builder and a runner for the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `cardfill` binary under test.
pub fn cardfill() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cardfill"));
    cmd.env_remove("CARDFILL_REGION")
        .env_remove("CARDFILL_ONLINE")
        .env("HF_HUB_OFFLINE", "1")
        .env("NO_COLOR", "1");
    cmd
}

/// The repository's own fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A temporary directory that tests fill with files.
pub struct RunDir {
    dir: tempfile::TempDir,
}

impl RunDir {
    /// An empty directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// Writes `contents` to `name` (parents created).
    pub fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, contents).expect("write fixture file");
        self
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `cardfill` with `args`, the directory as working directory.
    pub fn run(&self, args: &[&str]) -> Output {
        cardfill()
            .args(args)
            .current_dir(self.path())
            .output()
            .expect("run cardfill")
    }
}

/// stdout of a run, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr of a run, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The JSON object a successful run printed on stdout.
pub fn json_stdout(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", stderr(out));
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

/// `cardfill inspect --format json DIR`, parsed.
pub fn inspect_json(dir: &Path) -> serde_json::Value {
    let out = cardfill()
        .args(["inspect", "--format", "json"])
        .arg(dir)
        .output()
        .expect("run cardfill");
    json_stdout(&out)
}
