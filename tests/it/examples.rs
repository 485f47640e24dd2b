//! See `main.rs` for what this module covers.
//! The scripts of `examples/` run against fake `cardfill`, `srun`, `torchrun`, `accelerate`
//! and `transformers` that log how they were called.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// Says why a test did nothing, on the real stderr (libtest captures `eprintln!`).
fn skip(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {reason}");
}

fn has(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Writes an executable script `name` into `dir`.
fn fake(dir: &Path, name: &str, script: &str) {
    let path = dir.join(name);
    std::fs::write(&path, script).expect("write fake script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("make fake script executable");
}

/// A fake `cardfill` that logs `<node> <args>` to `$CARDFILL_LOG` and, for `run`, runs the
/// command after `--` and exits with its status; other subcommands exit `$FAKE_EXIT`.
const FAKE_CARDFILL: &str = r#"#!/bin/bash
echo "${SLURMD_NODENAME:--} $*" >> "$CARDFILL_LOG"
if [[ $1 == run ]]; then
    while [[ $# -gt 0 && $1 != -- ]]; do shift; done
    shift
    "$@"
    exit $?
fi
exit "${FAKE_EXIT:-0}"
"#;

/// Fake bin directory with `cardfill`, a PATH that puts it first, and the log file.
struct Fakes {
    dir: tempfile::TempDir,
}

impl Fakes {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(dir.path().join("bin")).expect("create bin/");
        fake(&dir.path().join("bin"), "cardfill", FAKE_CARDFILL);
        Self { dir }
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn command(&self, program: &str) -> Command {
        let path = format!(
            "{}:{}",
            self.bin().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(program);
        cmd.env("PATH", path)
            .env("CARDFILL_LOG", self.dir.path().join("log"))
            .env("OUTPUT_DIR", self.out())
            .env_remove("CARDFILL")
            .current_dir(self.dir.path());
        cmd
    }
}

fn check(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn shell_examples_are_valid_bash() {
    for name in ["slurm_job.sbatch", "torchrun_launch.sh"] {
        let out = Command::new("bash")
            .arg("-n")
            .arg(example(name))
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", check(&out));
    }
}

#[test]
fn slurm_batch_script_runs_training_probes_each_node_then_fills() {
    let fakes = Fakes::new();
    // srun: the command once per node, as `--ntasks-per-node=1` on two nodes does.
    fake(
        &fakes.bin(),
        "srun",
        "#!/bin/bash\nwhile [[ $1 == -* ]]; do shift; done\n\
         for n in n1 n2; do SLURMD_NODENAME=$n \"$@\" || exit $?; done\n",
    );
    let run = |train: &str, fake_exit: &str| {
        fakes
            .command("bash")
            .arg(example("slurm_job.sbatch"))
            .env("TRAIN_CMD", train)
            .env("FAKE_EXIT", fake_exit)
            .env("SLURM_JOB_ID", "42")
            .env("SLURM_JOB_NUM_NODES", "2")
            .env("SLURM_JOB_NODELIST", "n[1-2]")
            .env_remove("SLURMD_NODENAME")
            .output()
            .unwrap()
    };
    let out = run("echo training on $SLURM_JOB_NUM_NODES nodes", "0");
    assert_eq!(out.status.code(), Some(0), "{}", check(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("training on 2 nodes"));
    let dir = fakes.out().display().to_string();
    assert_eq!(
        fakes.log(),
        [
            format!("- run --record {dir} -- bash -c echo training on $SLURM_JOB_NUM_NODES nodes"),
            format!("n1 probe --record {dir}"),
            format!("n2 probe --record {dir}"),
            format!("- fill {dir}"),
        ]
    );

    // The job's status is the training's, whatever cardfill's probe and fill do.
    let out = run("exit 3", "1");
    assert_eq!(out.status.code(), Some(3), "{}", check(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cardfill probe failed"), "{stderr}");
    assert!(stderr.contains("cardfill fill failed"), "{stderr}");
    let out = run("true", "1");
    assert_eq!(out.status.code(), Some(0), "{}", check(&out));
}

#[test]
fn torchrun_and_accelerate_launches_run_under_cardfill() {
    let fakes = Fakes::new();
    for launcher in ["torchrun", "accelerate"] {
        fake(
            &fakes.bin(),
            launcher,
            &format!("#!/bin/bash\necho \"{launcher} $*\" >> \"$CARDFILL_LOG\"\nexit 0\n"),
        );
    }
    let dir = fakes.out().display().to_string();
    let out = fakes
        .command("bash")
        .arg(example("torchrun_launch.sh"))
        .args(["train.py", "--lr", "3e-5"])
        .env("NPROC", "2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", check(&out));
    let torchrun = "torchrun --nnodes=1 --node-rank=0 --nproc-per-node=2 \
                    --master-addr=127.0.0.1 --master-port=29500";
    assert_eq!(
        fakes.log(),
        [
            format!("- run --record {dir} -- {torchrun} train.py --lr 3e-5 --output_dir {dir}"),
            format!("{torchrun} train.py --lr 3e-5 --output_dir {dir}"),
            format!("- fill {dir}"),
        ]
    );

    // accelerate on the second of two machines: no fill there.
    std::fs::remove_file(fakes.dir.path().join("log")).unwrap();
    let out = fakes
        .command("bash")
        .arg(example("torchrun_launch.sh"))
        .arg("train.py")
        .envs([
            ("LAUNCHER", "accelerate"),
            ("NPROC", "4"),
            ("NNODES", "2"),
            ("NODE_RANK", "1"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", check(&out));
    let log = fakes.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log[1].starts_with("accelerate launch --num_machines=2 --machine_rank=1 --num_processes=8"),
        "{log:?}"
    );

    // No script: usage, exit 2, nothing run.
    let out = fakes
        .command("bash")
        .arg(example("torchrun_launch.sh"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn trainer_callback_records_fills_on_the_main_process_and_never_raises() {
    if !has("python3") {
        return skip("python3 is not installed");
    }
    let fakes = Fakes::new();
    let site = fakes.dir.path().join("site");
    std::fs::create_dir_all(site.join("transformers")).unwrap();
    std::fs::write(
        site.join("transformers/__init__.py"),
        "class TrainerCallback:\n    pass\n",
    )
    .unwrap();
    let driver = r#"
import dataclasses, json, os, sys
sys.path[:0] = [os.environ["SITE"], os.environ["EXAMPLES"], os.environ["PYPKG"]]
from hf_trainer_callback import CardfillCallback

@dataclasses.dataclass
class Args:
    output_dir: str = os.environ["OUTPUT_DIR"]
    learning_rate: float = 5e-5
    seed: int = 42
    train_batch_size = 8
    gradient_accumulation_steps = 1
    world_size = 1

class State:
    is_world_process_zero = True
    log_history = [{"eval_loss": 1.5, "step": 7}]
    def save_to_json(self, path):
        with open(path, "w") as f:
            json.dump({"global_step": 7, "log_history": []}, f)

class Control:
    pass

control = Control()
callback = CardfillCallback(fill_args=["--region", "FR"])
assert callback.on_train_begin(Args(learning_rate=1e-4), State(), control) is control
assert callback.on_train_end(Args(learning_rate=1e-4), State(), control) is control
# Another rank on another node: its node's record only, no card.
os.environ.update(RANK="1", LOCAL_RANK="0")
other_rank = State()
other_rank.is_world_process_zero = False
CardfillCallback().on_train_end(Args(), other_rank, control)
# A rank beside the node's first: nothing.
os.environ.update(RANK="2", LOCAL_RANK="1")
CardfillCallback().on_train_end(Args(), other_rank, control)
del os.environ["RANK"], os.environ["LOCAL_RANK"]
os.environ["FAKE_EXIT"] = "3"
failing = CardfillCallback()
failing.on_train_begin(Args(), State(), control)
failing.on_train_end(Args(), State(), control)
CardfillCallback(executable="no-such-cardfill").on_train_end(Args(), State(), control)
del os.environ["FAKE_EXIT"]
class Broken(State):
    def save_to_json(self, path):
        raise OSError("disk full")
assert CardfillCallback().on_train_end(Args(), Broken(), control) is control
print("training went on")
"#;
    let out = fakes
        .command("python3")
        .args(["-c", driver])
        .env("SITE", &site)
        .env("EXAMPLES", example(""))
        .env(
            "PYPKG",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("python"),
        )
        .env_remove("RANK")
        .env_remove("LOCAL_RANK")
        .env_remove("CARDFILL_RUN_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", check(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "training went on\n");
    let dir = fakes.out().display().to_string();
    let begin = format!("- probe --record {dir} --begin --format json");
    let end = format!("- probe --record {dir} --end --training -");
    assert_eq!(
        fakes.log(),
        [
            // The main process: open, close with what it knows, fill.
            begin.clone(),
            end.clone(),
            format!("- fill {dir} --region FR"),
            // Another node's first rank closes its node's record, without training facts.
            format!("- probe --record {dir} --end"),
            // The failing binary: tried once per step, one warning.
            begin,
            end.clone(),
            format!("- fill {dir}"),
            // Broken state: the record is closed, the card is not filled.
            end,
        ]
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("exited with 3").count(), 1, "{stderr}");
    assert!(stderr.contains("no-such-cardfill"), "{stderr}");
    assert!(stderr.contains("disk full"), "{stderr}");

    // The state it saved is what cardfill reads.
    let inspect = crate::util::cardfill()
        .args(["inspect", &dir, "--format", "json"])
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", check(&inspect));
    let facts: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(facts["training"]["steps"], 7, "{facts}");
}
