//! `cardfill-bench`: measures the release `cardfill` binary on full-size sparse checkpoints
//! (Llama-3.1-405B, Llama-3-70B, Llama-2-7B as `.bin`, a Trainer output directory) beside the
//! Python tools people use today, and `cardfill run`'s overhead; prints one table and the goals
//! of issues 7 and 14 with PASS/FAIL, each figure beside its floor.
//!
//! Run: `cargo run --release -p cardfill-bench` (`-- --help` for options). Not part of
//! `cargo test`: timings are machine-dependent and belong in a report, not an assertion.
#![deny(missing_docs)]
// A report tool: stdout is the report, stderr its progress.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod checkpoints;
mod hub;
mod measure;
mod memory;
mod python;
mod report;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};

const HELP: &str = "\
cardfill-bench: cardfill on full-size sparse checkpoints, beside the Python baselines

USAGE: cargo run --release -p cardfill-bench [-- OPTIONS]

OPTIONS:
  --cardfill PATH     the cardfill binary to measure [default: $CARDFILL_BIN, else
                      `cargo build --release -p cardfill` in this workspace]
  --runs N            runs per cardfill figure [default: 21]
  --python-runs N     runs per Python figure [default: 5]
  --python PATH       Python interpreter [default: python3]
  --no-python         skip the Python baselines
  --no-run            skip the `cardfill run` overhead figures (they take ~25 s)
  --no-memory         skip issue 12's memory table (big inputs, ~1 GB on disk for a while)
  --memory-only       only the memory table
  --keep DIR          generate the checkpoints in DIR and keep them (sparse: a few MB on disk)
  -h, --help          this text
";

/// Command-line options.
#[derive(Debug)]
struct Options {
    cardfill: Option<PathBuf>,
    runs: usize,
    python_runs: usize,
    python: PathBuf,
    no_python: bool,
    no_run: bool,
    keep: Option<PathBuf>,
    no_memory: bool,
    memory_only: bool,
}

fn parse_options(args: impl Iterator<Item = OsString>) -> anyhow::Result<Option<Options>> {
    let mut o = Options {
        cardfill: std::env::var_os("CARDFILL_BIN").map(PathBuf::from),
        runs: 21,
        python_runs: 5,
        python: PathBuf::from("python3"),
        no_python: false,
        no_run: false,
        keep: None,
        no_memory: false,
        memory_only: false,
    };
    let mut args = args;
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy().into_owned();
        let mut value = |name: &str| {
            args.next()
                .with_context(|| format!("{name} needs a value (see --help)"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--cardfill" => o.cardfill = Some(value("--cardfill")?.into()),
            "--runs" => o.runs = value("--runs")?.to_string_lossy().parse()?,
            "--python-runs" => o.python_runs = value("--python-runs")?.to_string_lossy().parse()?,
            "--python" => o.python = value("--python")?.into(),
            "--no-python" => o.no_python = true,
            "--no-run" => o.no_run = true,
            "--no-memory" => o.no_memory = true,
            "--memory-only" => o.memory_only = true,
            "--keep" => o.keep = Some(value("--keep")?.into()),
            other => bail!("unknown option `{other}` (see --help)"),
        }
    }
    Ok(Some(o))
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let first = args.next();
    // Hidden helper modes used by the measurement itself (see `measure`).
    match first.as_deref().and_then(|a| a.to_str()) {
        Some("__measure") => {
            let rest: Vec<OsString> = args.skip_while(|a| a == "--").collect();
            return measure::launcher_main(&rest);
        }
        Some("__stamp") => {
            return match args.next() {
                Some(file) => measure::stamp_main(&file),
                None => ExitCode::from(2),
            };
        }
        _ => {}
    }
    let options = match parse_options(first.into_iter().chain(args)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("cardfill-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cardfill-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(o: &Options) -> anyhow::Result<()> {
    let cardfill = match &o.cardfill {
        Some(p) => p.clone(),
        None => build_cardfill()?,
    };
    let meter = measure::Meter::new()?;
    let python = if o.no_python {
        None
    } else {
        python::Python::find(&o.python)
    };

    let temp;
    let root = match &o.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("cardfill-bench")
                .tempdir()?;
            temp.path().to_owned()
        }
    };
    if o.memory_only {
        return memory::run(&meter, &cardfill, &root, 1.0);
    }
    eprintln!("generating sparse checkpoints in {} …", root.display());
    let t = std::time::Instant::now();
    let (checkpoints, not_made) = checkpoints::generate(&root);
    eprintln!("generated in {:.1} s", t.elapsed().as_secs_f64());

    build_floors()?;
    let mut bench = report::Bench::new(&meter, &cardfill, o.runs, o.python_runs, &root);
    bench.header(python.as_ref(), &checkpoints, &not_made)?;
    for c in &checkpoints {
        bench.cardfill_rows(c)?;
        if c.kind == checkpoints::Kind::ShardedSafetensors && c.key == "405B" {
            for b in python::SAFETENSORS_BASELINES {
                bench.python_row(c, python.as_ref(), &b, o.no_python)?;
            }
        }
    }
    bench.version_rows()?;
    bench.measure()?;
    bench.print_table();
    bench.issue14_extras(&checkpoints)?;
    if !o.no_run {
        bench.run_overhead()?;
    }
    bench.goals(&checkpoints);
    println!();
    bench.goals14();
    if let Some(c) = checkpoints.iter().find(|c| c.key == "405B") {
        hub::transfer(&cardfill, c)?;
    }
    if !o.no_memory {
        memory::run(&meter, &cardfill, &root, 1.0)?;
    }
    Ok(())
}

/// Builds the floor programs beside this executable, with its profile, when they are missing
/// (`cargo run -p cardfill-bench` builds only the bench itself).
fn build_floors() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the bench executable")?;
    let dir = exe
        .parent()
        .context("the bench executable has no directory")?;
    if ["floor", "floor-version"]
        .iter()
        .all(|b| dir.join(b).is_file())
    {
        return Ok(());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-p",
        "cardfill-bench",
        "--bin",
        "floor",
        "--bin",
        "floor-version",
    ]);
    if dir.ends_with("release") {
        cmd.arg("--release");
    }
    eprintln!("building the floor programs …");
    let status = cmd
        .arg("--manifest-path")
        .arg(&manifest)
        .stdin(Stdio::null())
        .status()
        .context("cannot run cargo to build the floor programs")?;
    if !status.success() {
        bail!("building the floor programs failed");
    }
    Ok(())
}

/// Builds the release `cardfill` of this workspace and returns its path.
fn build_cardfill() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    eprintln!("building the release cardfill (cargo build --release -p cardfill --bins) …");
    // Both executables: `inspect --from-hub` runs in `cardfill-online`.
    let out = Command::new(cargo)
        .args(["build", "--release", "-p", "cardfill", "--bins"])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo (or pass --cardfill PATH)")?;
    if !out.status.success() {
        bail!("`cargo build --release -p cardfill` failed");
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" || msg["target"]["name"] != "cardfill" {
            continue;
        }
        if let Some(exe) = msg["executable"].as_str() {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo built no `cardfill` executable (pass --cardfill PATH)")
}
