//! Fault injection: `fill` killed at random points, `fill`s racing an editor, planted links,
//! other users' cards, a full filesystem, FIFOs and `/dev/zero` for every input.
//!
//! `CARDFILL_RACE_ROUNDS` (default 60) and `CARDFILL_KILL_ROUNDS` (default 8) set how many
//! rounds the race and kill tests run; the figure is 600 raced rounds.
//! `CARDFILL_RACE_EDITOR=in-place` makes the editor truncate and write the card instead of
//! saving to a temporary file and renaming it.
#![allow(clippy::print_stderr)]

use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{RunDir, cardfill, stderr};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiny-checkpoint")
}

/// A checkpoint directory with the example's config, weights and card.
fn checkpoint() -> RunDir {
    let ex = example();
    RunDir::new()
        .file(
            "config.json",
            std::fs::read(ex.join("config.json")).unwrap(),
        )
        .file(
            "model.safetensors",
            std::fs::read(ex.join("model.safetensors")).unwrap(),
        )
        .file("README.md", std::fs::read(ex.join("README.md")).unwrap())
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| cardfill_card::write::is_temp_name(OsStr::new(n)))
        .collect()
}

fn fill(dir: &Path, extra: &[&str]) -> Output {
    cardfill()
        .arg("fill")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

/// Waits for `child` at most `limit` (a hang guard, not a timing check); kills it past that.
fn wait_guarded(mut child: Child, limit: Duration) -> Option<Output> {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A small deterministic generator (xorshift), seeded from the clock and printed.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("fault seed {seed}");
        Self(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn rounds(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn kill_9_at_random_points_leaves_the_old_card_or_the_new_one_whole() {
    let dir = checkpoint();
    let card = dir.path().join("README.md");
    // A 20 MB card: the example's text and 20 MB of human prose after it.
    let mut text = std::fs::read_to_string(&card).unwrap();
    let line = "A paragraph a person wrote, which must survive whatever happens to fill.\n";
    while text.len() < 20_000_000 {
        text.push_str(line);
    }
    std::fs::write(&card, &text).unwrap();
    let started = Instant::now();
    let out = fill(dir.path(), &["--hours", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let full = started.elapsed();
    let mut rng = Rng::new();
    let n = rounds("CARDFILL_KILL_ROUNDS", 8);
    let mut killed_mid = 0;
    for round in 0..n {
        let old = std::fs::read(&card).unwrap();
        let hours = (round + 2).to_string();
        let expect = fill(dir.path(), &["--hours", &hours, "--dry-run"]).stdout;
        assert_ne!(expect, old);
        let mut child = cardfill()
            .arg("fill")
            .arg(dir.path())
            .args(["--hours", &hours])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = rng.below(full.as_micros() as u64 + 1);
        std::thread::sleep(Duration::from_micros(delay));
        if child.try_wait().unwrap().is_none() {
            killed_mid += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        let now = std::fs::read(&card).unwrap();
        assert!(
            now == old || now == expect,
            "round {round}: after kill -9 at {delay} µs the card is neither the old nor the new one ({} bytes)",
            now.len()
        );
        let out = fill(dir.path(), &["--hours", &hours]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(std::fs::read(&card).unwrap(), expect);
        assert_eq!(
            temp_files(dir.path()),
            Vec::<String>::new(),
            "round {round}"
        );
        let bak = std::fs::read(dir.path().join("README.md.bak")).unwrap();
        assert!(bak.len() >= 20_000_000, "the backup is whole");
    }
    eprintln!("{killed_mid} of {n} fills killed while running");
}

/// An editor that reloads the card, appends a line and saves it the way editors do (a
/// temporary file renamed over the card), `rounds` times, while `fill`s run in a loop.
#[test]
fn concurrent_fills_racing_an_editor_lose_no_edit() {
    let dir = checkpoint();
    let card = dir.path().join("README.md");
    let n = rounds("CARDFILL_RACE_ROUNDS", 60);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fillers: Vec<_> = (0..2)
        .map(|k| {
            let stop = std::sync::Arc::clone(&stop);
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let mut runs = 0u64;
                let mut failures = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    runs += 1;
                    // Each run changes the card, so every run writes.
                    let hours = (runs * 2 + k).to_string();
                    let out = fill(&path, &["--hours", &hours, "--no-backup"]);
                    // Giving up on a card that keeps changing is allowed: it changes nothing.
                    let err = stderr(&out);
                    if !out.status.success() && !err.contains("kept changing") {
                        failures.push(err);
                    }
                }
                (runs, failures)
            })
        })
        .collect();
    let save = dir.path().join(".README.md.swp");
    let in_place = std::env::var("CARDFILL_RACE_EDITOR").is_ok_and(|v| v == "in-place");
    let mut rng = Rng::new();
    for i in 0..n {
        let mut text = std::fs::read_to_string(&card).unwrap();
        text.push_str(&format!("\nHuman edit number {i}.\n"));
        if in_place {
            // Truncate and write the card itself, as some editors do.
            std::fs::write(&card, &text).unwrap();
        } else {
            std::fs::write(&save, &text).unwrap();
            std::fs::rename(&save, &card).unwrap();
        }
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut runs = 0;
    for f in fillers {
        let (r, failures) = f.join().unwrap();
        runs += r;
        assert_eq!(failures, Vec::<String>::new());
    }
    let out = fill(dir.path(), &["--hours", "1", "--no-backup"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&card).unwrap();
    let lost: Vec<usize> = (0..n)
        .filter(|i| !text.contains(&format!("Human edit number {i}.\n")))
        .collect();
    eprintln!("{n} edits raced against {runs} fills: {} lost", lost.len());
    assert_eq!(lost, Vec::<usize>::new(), "edits lost");
    assert!(
        text.contains("1 hours") || text.contains("1 hour"),
        "filled"
    );
    assert_eq!(temp_files(dir.path()), Vec::<String>::new());
}

#[test]
fn two_fills_at_once_both_succeed_and_the_card_is_whole() {
    let dir = checkpoint();
    let a = cardfill()
        .args(["fill", ".", "--hours", "5"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = cardfill()
        .args(["fill", ".", "--hours", "5"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for c in [a, b] {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let expect = fill(dir.path(), &["--hours", "5", "--dry-run"]).stdout;
    assert_eq!(std::fs::read(dir.path().join("README.md")).unwrap(), expect);
}

#[test]
fn a_planted_backup_link_is_replaced_not_written_through() {
    let dir = checkpoint();
    let victim = RunDir::new().file("passwd", "root:x:0:0\n");
    let target = victim.path().join("passwd");
    std::os::unix::fs::symlink(&target, dir.path().join("README.md.bak")).unwrap();
    let old = std::fs::read(dir.path().join("README.md")).unwrap();
    let out = fill(dir.path(), &["--hours", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "root:x:0:0\n");
    let bak = dir.path().join("README.md.bak");
    assert!(!bak.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(bak).unwrap(), old);
}

#[test]
fn planted_temporary_file_links_are_never_written_through() {
    let dir = checkpoint();
    let victim = RunDir::new().file("target", "keep\n");
    let target = victim.path().join("target");
    // The names the next `fill` may pick first: its pid is not known, so plant a range
    // around this process's.
    let me = std::process::id();
    for pid in me..me + 200 {
        let name = format!(".README.md.cardfill-{pid}-0.tmp");
        std::os::unix::fs::symlink(&target, dir.path().join(name)).unwrap();
    }
    let out = fill(dir.path(), &["--hours", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
}

#[test]
fn a_card_linked_outside_the_checkpoint_is_refused_and_inside_is_followed() {
    let dir = checkpoint();
    let elsewhere = RunDir::new().file("README.md", "# someone else's card\n");
    let card = dir.path().join("README.md");
    let original = std::fs::read(&card).unwrap();
    std::fs::rename(&card, dir.path().join("CARD.md")).unwrap();

    std::os::unix::fs::symlink(elsewhere.path().join("README.md"), &card).unwrap();
    let out = fill(dir.path(), &["--hours", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("README.md` is a symlink to `"), "{err}");
    assert!(
        err.contains(&elsewhere.path().display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(elsewhere.path().join("README.md")).unwrap(),
        "# someone else's card\n"
    );

    // An explicit --card is followed.
    let out = fill(
        dir.path(),
        &["--hours", "2", "--card", &card.display().to_string()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(elsewhere.path().join("README.md"))
            .unwrap()
            .contains("someone else's card")
    );
    assert!(card.symlink_metadata().unwrap().file_type().is_symlink());

    // A link inside the checkpoint is written through, as editors do.
    std::fs::remove_file(&card).unwrap();
    std::os::unix::fs::symlink("CARD.md", &card).unwrap();
    let out = fill(dir.path(), &["--hours", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(card.symlink_metadata().unwrap().file_type().is_symlink());
    let filled = std::fs::read(dir.path().join("CARD.md")).unwrap();
    assert_ne!(filled, original);
    assert_eq!(
        std::fs::read(dir.path().join("CARD.md.bak")).unwrap(),
        original
    );
}

#[test]
fn a_card_linked_into_the_hub_cache_is_refused_with_a_hint() {
    let dir = checkpoint();
    let cache = RunDir::new().file(
        "models--org--name/blobs/0123abcd",
        "---\nlicense: mit\n---\n# Card\n",
    );
    let blob = cache.path().join("models--org--name/blobs/0123abcd");
    let card = dir.path().join("README.md");
    std::fs::remove_file(&card).unwrap();
    std::os::unix::fs::symlink(&blob, &card).unwrap();
    for extra in [&[][..], &["--card", "README.md"][..]] {
        let out = cardfill()
            .args(["fill", ".", "--hours", "2"])
            .args(extra)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("copy the snapshot"),
            "{}",
            stderr(&out)
        );
        assert_eq!(
            std::fs::read_to_string(&blob).unwrap(),
            "---\nlicense: mit\n---\n# Card\n"
        );
    }
}

#[test]
fn stale_temporary_files_of_dead_fills_are_removed() {
    let dir = checkpoint();
    // A pid that is gone: a finished child's.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = dir.path().join(format!(".README.md.cardfill-{dead}-0.tmp"));
    std::fs::write(&stale, "half a card").unwrap();
    let alive = dir
        .path()
        .join(format!(".README.md.cardfill-{}-0.tmp", std::process::id()));
    std::fs::write(&alive, "another fill's").unwrap();
    let out = fill(dir.path(), &["--hours", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stale.exists(), "a dead fill's temporary file is removed");
    assert!(alive.exists(), "a live process's file is left alone");
}

#[test]
fn a_read_only_card_is_left_alone_unless_forced() {
    let dir = checkpoint();
    let card = dir.path().join("README.md");
    let old = std::fs::read(&card).unwrap();
    std::fs::set_permissions(&card, std::fs::Permissions::from_mode(0o444)).unwrap();
    let out = fill(dir.path(), &["--hours", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&card).unwrap(), old);
    let out = fill(dir.path(), &["--hours", "2", "--strict"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(std::fs::read(&card).unwrap(), old);
    let out = fill(dir.path(), &["--hours", "2", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(std::fs::read(&card).unwrap(), old);
    let mode = std::fs::metadata(&card).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444, "the mode is kept");
}

#[test]
fn a_private_card_stays_private_and_so_does_its_backup() {
    let dir = checkpoint();
    let card = dir.path().join("README.md");
    std::fs::set_permissions(&card, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = fill(dir.path(), &["--hours", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for f in [card.clone(), dir.path().join("README.md.bak")] {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
}

#[test]
fn as_root_another_users_0640_card_keeps_its_owner_group_and_mode() {
    if !is_root() {
        eprintln!("skipped: needs root to own a card as another user");
        return;
    }
    let dir = checkpoint();
    let card = dir.path().join("README.md");
    std::fs::set_permissions(&card, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&card, Some(4321), Some(4322)).unwrap();
    let out = fill(dir.path(), &["--hours", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for f in [card.clone(), dir.path().join("README.md.bak")] {
        let m = std::fs::metadata(&f).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (4321, 4322, 0o640),
            "{}",
            f.display()
        );
    }
}

#[test]
fn as_root_a_full_tmpfs_leaves_the_card_and_no_temporary_file() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a small tmpfs");
        return;
    }
    let mnt = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "cardfill-faults"])
        .arg(mnt.path())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (no CAP_SYS_ADMIN?)");
        return;
    }
    let result = std::panic::catch_unwind(|| {
        let ck = mnt.path();
        let ex = example();
        for f in ["config.json", "model.safetensors", "README.md"] {
            std::fs::copy(ex.join(f), ck.join(f)).unwrap();
        }
        let card = ck.join("README.md");
        let old = std::fs::read(&card).unwrap();
        // Fill the filesystem up.
        let mut filler = std::fs::File::create(ck.join("filler")).unwrap();
        let block = vec![b'x'; 4096];
        while std::io::Write::write_all(&mut filler, &block).is_ok() {}
        drop(filler);
        let out = fill(ck, &["--hours", "2"]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("nothing changed"), "{}", stderr(&out));
        assert_eq!(std::fs::read(&card).unwrap(), old);
        assert_eq!(temp_files(ck), Vec::<String>::new());
        std::fs::remove_file(ck.join("filler")).unwrap();
        let out = fill(ck, &["--hours", "2"]);
        assert!(out.status.success(), "{}", stderr(&out));
    });
    let _ = Command::new("umount").arg(mnt.path()).status();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Every input cardfill reads, as a FIFO and as a link to `/dev/zero`: `inspect` and `fill`
/// finish, name the file in a warning, and never hang or fill memory.
#[test]
fn fifos_and_dev_zero_for_every_input_are_warnings() {
    let inputs = [
        "config.json",
        "README.md",
        ".cardfill/node_run.json",
        "trainer_state.json",
        "train_results.json",
        "adapter_config.json",
        "model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
        "model.gguf",
        "model_index.json",
    ];
    for input in inputs {
        for kind in ["fifo", "zero"] {
            let dir = checkpoint();
            let path = dir.path().join(input);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            let _ = std::fs::remove_file(&path);
            if kind == "fifo" {
                rustix::fs::mkfifoat(
                    rustix::fs::CWD,
                    &path,
                    rustix::fs::Mode::from_raw_mode(0o644),
                )
                .unwrap();
            } else {
                std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
            }
            let name = Path::new(input).file_name().unwrap().to_string_lossy();
            for cmd in [&["inspect", "."][..], &["fill", ".", "--dry-run"][..]] {
                let child = cardfill()
                    .args(cmd)
                    .current_dir(dir.path())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let out = wait_guarded(child, Duration::from_secs(30))
                    .unwrap_or_else(|| panic!("{cmd:?} hung on {input} as a {kind}"));
                let err = stderr(&out);
                assert!(
                    err.contains(&*name),
                    "{cmd:?} with {input} as a {kind}: no line names it: {err}"
                );
                assert_ne!(out.status.code(), None, "{input} {kind}");
                assert_ne!(out.status.code(), Some(101), "panic: {err}");
            }
        }
    }
}

/// `cardfill run` in a clean environment (no job, launcher or NVML), stdin not a terminal.
fn run_cmd(dir: &Path) -> Command {
    let mut cmd = cardfill();
    for var in [
        "SLURM_JOB_ID",
        "SLURMD_NODENAME",
        "TORCHELASTIC_RUN_ID",
        "LOCAL_RANK",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARDFILL_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1")
        .current_dir(dir)
        .stdin(Stdio::null());
    cmd
}

fn alive(pid: i32) -> bool {
    // A zombie is not alive: read its state.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// The process id written in the file at `path`.
fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Waits up to 10 s for process `pid` to be gone (or a zombie).
fn wait_gone(pid: i32) {
    let started = Instant::now();
    while alive(pid) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_survives_a_full_stderr_and_exits_with_the_childs_status() {
    let dir = RunDir::new();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    // The record cannot be written (its parent is missing): the warning goes to a full stderr.
    let out = run_cmd(dir.path())
        .args([
            "run",
            "--record",
            "missing/checkpoint",
            "--",
            "sh",
            "-c",
            "exit 3",
        ])
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = run_cmd(dir.path())
        .args(["run", "--", "sh", "-c", "kill -9 $$"])
        .stderr(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(137));
}

#[test]
fn record_dir_is_created_only_when_its_parent_exists() {
    let dir = RunDir::new();
    let out = run_cmd(dir.path())
        .args([
            "run",
            "--record",
            "missing/checkpoint",
            "--",
            "sh",
            "-c",
            "exit 4",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert_eq!(err.matches("warning:").count(), 1, "{err}");
    assert!(err.contains("missing"), "{err}");
    assert!(!dir.path().join("missing").exists());
    // The parent exists: DIR and its `.cardfill/` are created.
    let out = run_cmd(dir.path())
        .args(["run", "--record", "checkpoint", "--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("checkpoint/.cardfill").is_dir());
}

#[test]
fn odd_lock_files_are_skipped_with_a_warning() {
    for kind in ["fifo", "dir", "zero"] {
        let dir = RunDir::new();
        let rec = dir.path().join(".cardfill");
        std::fs::create_dir(&rec).unwrap();
        let lock = rec.join(".lock");
        match kind {
            "fifo" => rustix::fs::mkfifoat(
                rustix::fs::CWD,
                &lock,
                rustix::fs::Mode::from_raw_mode(0o644),
            )
            .unwrap(),
            "dir" => std::fs::create_dir(&lock).unwrap(),
            _ => std::os::unix::fs::symlink("/dev/zero", &lock).unwrap(),
        }
        let child = run_cmd(dir.path())
            .args(["run", "--", "sh", "-c", "exit 5"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_guarded(child, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("run hung on a {kind} lock"));
        assert_eq!(out.status.code(), Some(5), "{kind}: {}", stderr(&out));
        assert!(stderr(&out).contains(".lock"), "{kind}: {}", stderr(&out));
        let written = std::fs::read_dir(&rec)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".json"));
        assert!(written, "{kind}: the record is still written");
    }
}

#[test]
fn an_odd_record_file_is_replaced_with_a_warning() {
    let dir = RunDir::new();
    let rec = dir.path().join(".cardfill");
    std::fs::create_dir(&rec).unwrap();
    let record = rec.join("n1_slurm-77.json");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &record,
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .unwrap();
    let child = run_cmd(dir.path())
        .env("SLURM_JOB_ID", "77")
        .env("SLURMD_NODENAME", "n1")
        .args(["run", "--", "true"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_guarded(child, Duration::from_secs(60)).expect("run hung on a FIFO record");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("n1_slurm-77.json"),
        "{}",
        stderr(&out)
    );
    assert!(std::fs::metadata(&record).unwrap().is_file());
}

#[test]
fn workers_left_behind_get_sigterm_then_sigkill_after_the_grace_period() {
    let dir = RunDir::new();
    // One worker that exits on SIGTERM, one that ignores it.
    let script = "sleep 300 & echo $! > polite; \
                  (trap '' TERM; exec sleep 300) & echo $! > stubborn; exit 0";
    let out = run_cmd(dir.path())
        .args(["run", "--grace-period", "1", "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for name in ["polite", "stubborn"] {
        let pid = read_pid(&dir.path().join(name));
        // Reparented to init, which reaps it; allow it a moment.
        wait_gone(pid);
        assert!(!alive(pid), "{name} worker {pid} still running");
    }
}

#[test]
fn a_signal_to_run_reaches_the_workers_too() {
    let dir = RunDir::new();
    let script = "sleep 300 & echo $! > worker; wait";
    let child = run_cmd(dir.path())
        .args(["run", "--grace-period", "60", "--", "sh", "-c", script])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let worker = dir.path().join("worker");
    let started = Instant::now();
    while std::fs::read_to_string(&worker).map_or(true, |s| !s.ends_with('\n')) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "worker never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = read_pid(&worker);
    let me = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(me, rustix::process::Signal::TERM).unwrap();
    let out = wait_guarded(child, Duration::from_secs(30)).expect("run ended");
    // sh dies of SIGTERM: 128 + 15.
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    wait_gone(pid);
    assert!(!alive(pid), "the worker got the signal");
}

#[test]
fn probe_skips_an_odd_lock_file_with_a_warning() {
    let dir = RunDir::new();
    let rec = dir.path().join(".cardfill");
    std::fs::create_dir(&rec).unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        rec.join(".lock"),
        rustix::fs::Mode::from_raw_mode(0o644),
    )
    .unwrap();
    let child = run_cmd(dir.path())
        .args(["probe"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_guarded(child, Duration::from_secs(60)).expect("probe hung on a FIFO lock");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(".lock` is a FIFO"),
        "{}",
        stderr(&out)
    );
}
