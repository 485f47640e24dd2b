//! The 68 bad inputs of `shared/reference/bad-input-cases.md` (issue #16), one test each.
//!
//! Each test builds the folder of its case, runs `cardfill` as a new user would and snapshots a
//! transcript: the command, the exit code, the whole stderr (stdout where it matters) and what
//! changed on disk (files added, removed, changed, with their modes). A message changes only on
//! purpose. Cases run as `nobody` use `setpriv` when root and print `skipped: …` otherwise.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One entry of a directory tree: kind, mode and a hash of the content.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    hash: u64,
    uid: u32,
}

/// How a command is run.
#[derive(Clone, Default)]
struct How<'a> {
    env: Vec<(&'a str, &'a str)>,
    remove_env: Vec<&'a str>,
    nobody: bool,
    stdout: bool,
}

/// A case's folder and the transcript of what was run in it.
struct Case {
    root: tempfile::TempDir,
    log: String,
}

fn hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Whether this process may switch to `nobody`.
fn root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
        && Path::new("/usr/bin/setpriv").exists()
}

impl Case {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("temporary directory");
        // `nobody` must be able to enter the case folder.
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            root,
            log: String::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Self {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, contents).unwrap();
        self
    }

    fn dir(self, name: &str) -> Self {
        std::fs::create_dir_all(self.path(name)).unwrap();
        self
    }

    /// A copy of `examples/tiny-checkpoint` (its weights, config and card) as `name`.
    fn example(self, name: &str) -> Self {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiny-checkpoint");
        std::fs::create_dir_all(self.path(name)).unwrap();
        for file in ["README.md", "config.json", "model.safetensors"] {
            std::fs::copy(src.join(file), self.path(name).join(file)).unwrap();
        }
        self
    }

    /// The example checkpoint without its card, with `card` as `README.md`.
    fn example_card(self, name: &str, card: impl AsRef<[u8]>) -> Self {
        self.example(name).file(&format!("{name}/README.md"), card)
    }

    fn mode(self, name: &str, mode: u32) -> Self {
        std::fs::set_permissions(self.path(name), std::fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    fn owned_by_nobody(self, name: &str) -> Self {
        std::os::unix::fs::chown(self.path(name), Some(65534), Some(65534)).unwrap();
        self
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        std::os::unix::fs::symlink(target, self.path(name)).unwrap();
        self
    }

    fn read(&self, name: &str) -> String {
        String::from_utf8_lossy(&std::fs::read(self.path(name)).unwrap()).into_owned()
    }

    /// Every entry under the case folder, by relative path (run records by a fixed name).
    fn tree(&self) -> BTreeMap<String, Entry> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.root.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let mut rel = path
                    .strip_prefix(self.root.path())
                    .unwrap()
                    .display()
                    .to_string();
                if rel.contains(".cardfill/") && rel.ends_with(".json") {
                    rel = format!("{}[record].json", &rel[..rel.rfind('/').unwrap() + 1]);
                }
                let (kind, hash) = if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&path).unwrap();
                    ("link", hash(target.as_os_str().as_encoded_bytes()))
                } else if meta.is_dir() {
                    stack.push(path.clone());
                    ("dir", 0)
                } else {
                    ("file", std::fs::read(&path).map_or(0, |b| hash(&b)))
                };
                out.insert(
                    rel,
                    Entry {
                        kind,
                        mode: meta.mode() & 0o7777,
                        hash,
                        uid: meta.uid(),
                    },
                );
            }
        }
        out
    }

    fn run(&mut self, args: &[&str]) -> i32 {
        self.exec(args, &How::default())
    }

    fn run_json(&mut self, args: &[&str]) -> i32 {
        self.exec(
            args,
            &How {
                stdout: true,
                ..How::default()
            },
        )
    }

    fn run_as_nobody(&mut self, args: &[&str]) -> i32 {
        self.exec(
            args,
            &How {
                nobody: true,
                ..How::default()
            },
        )
    }

    /// Runs `cardfill ARGS` in the case folder (umask 022) and appends the transcript.
    fn exec(&mut self, args: &[&str], how: &How<'_>) -> i32 {
        let before = self.tree();
        let mut cmd = if how.nobody {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "--",
                "sh",
            ]);
            c
        } else {
            Command::new("sh")
        };
        cmd.args(["-c", "umask 022; exec \"$@\"", "sh"])
            .arg(env!("CARGO_BIN_EXE_cardfill"))
            .args(args)
            .current_dir(self.root.path())
            .env_remove("CARDFILL_REGION")
            .env_remove("CARDFILL_ONLINE")
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HOME", "/nonexistent/hf")
            .env("NO_COLOR", "1");
        for v in &how.remove_env {
            cmd.env_remove(v);
        }
        for (k, v) in &how.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run cardfill");
        let code = out.status.code().unwrap_or(-1);
        let after = self.tree();
        let root = self.root.path().display().to_string();
        let clean = |b: &[u8]| String::from_utf8_lossy(b).replace(&root, "[TMP]");
        let who = if how.nobody { " (as nobody)" } else { "" };
        let env: String = how.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        let _ = writeln!(self.log, "$ {env}cardfill {}{who}", args.join(" "));
        let _ = writeln!(self.log, "exit {code}");
        for line in clean(&out.stderr).lines() {
            let _ = writeln!(self.log, "  {line}");
        }
        let shown = ["co2", "validate", "regions"].contains(&args[0]) && !out.stdout.is_empty();
        if how.stdout || shown {
            let _ = writeln!(self.log, "stdout:");
            for line in clean(&out.stdout).lines() {
                let _ = writeln!(self.log, "  {line}");
            }
        }
        let mut changes = Vec::new();
        for (path, e) in &after {
            match before.get(path) {
                None => changes.push(format!("+ {path} ({} {:o})", e.kind, e.mode)),
                Some(b) if b != e => {
                    let mut what = Vec::new();
                    if b.kind != e.kind {
                        what.push(format!("{} → {}", b.kind, e.kind));
                    }
                    if b.hash != e.hash {
                        what.push("content".to_owned());
                    }
                    if b.mode != e.mode {
                        what.push(format!("mode {:o} → {:o}", b.mode, e.mode));
                    }
                    if b.uid != e.uid {
                        what.push(format!("owner {} → {}", b.uid, e.uid));
                    }
                    changes.push(format!("~ {path} ({})", what.join(", ")));
                }
                Some(_) => {}
            }
        }
        for path in before.keys().filter(|p| !after.contains_key(*p)) {
            changes.push(format!("- {path}"));
        }
        if changes.is_empty() {
            let _ = writeln!(self.log, "files: unchanged");
        } else {
            let _ = writeln!(self.log, "files:");
            for c in changes {
                let _ = writeln!(self.log, "  {c}");
            }
        }
        code
    }

    /// The transcript so far.
    fn transcript(&self) -> &str {
        &self.log
    }
}

/// Skips a case that must run as another user when this process cannot switch.
macro_rules! needs_root {
    () => {
        if !root() {
            println!("skipped: this case runs as `nobody`; it needs root and setpriv");
            return;
        }
    };
}

macro_rules! snap {
    ($case:expr) => {
        insta::assert_snapshot!($case.transcript())
    };
}

/// The YAML of a card's front matter (a block opened on the first line).
fn front(card: &str) -> Option<&str> {
    let rest = card.strip_prefix("---")?;
    let rest = rest
        .strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))?;
    let end = rest.find("\n---")?;
    Some(&rest[..end])
}

#[test]
fn case_01_missing_directory() {
    let mut c = Case::new();
    assert_eq!(c.run(&["inspect", "./nope"]), 2);
    assert_eq!(c.run(&["fill", "./nope"]), 2);
    assert_eq!(c.run_json(&["inspect", "./nope", "--format", "json"]), 2);
    snap!(c);
}

#[test]
fn case_02_a_file_for_the_directory() {
    let mut c = Case::new().file("afile", "x");
    assert_eq!(c.run(&["fill", "./afile"]), 2);
    snap!(c);
}

#[test]
fn case_03_inspect_an_empty_directory() {
    let mut c = Case::new().dir("empty");
    assert_eq!(c.run(&["inspect", "./empty"]), 0);
    assert_eq!(c.run(&["inspect", "./empty", "--strict"]), 1);
    snap!(c);
}

#[test]
fn case_04_fill_an_empty_directory() {
    let mut c = Case::new().dir("empty");
    assert_eq!(c.run(&["fill", "./empty", "--strict"]), 1);
    let mode = std::fs::metadata(c.path("empty/README.md")).unwrap().mode();
    assert_eq!(mode & 0o777, 0o644, "a new card is 0666 less the umask");
    snap!(c);
}

#[test]
fn case_05_inspect_a_directory_with_only_a_card() {
    let mut c = Case::new().file("onlyreadme/README.md", "# My model\n");
    assert_eq!(c.run(&["inspect", "./onlyreadme"]), 0);
    snap!(c);
}

#[test]
fn case_06_fill_a_directory_with_only_a_card() {
    let mut c = Case::new().file("onlyreadme/README.md", "# My model\n");
    assert_eq!(c.run(&["fill", "./onlyreadme", "--strict"]), 1);
    snap!(c);
}

#[test]
fn case_07_inspect_an_unreadable_directory() {
    needs_root!();
    let mut c = Case::new().example("noread").mode("noread", 0o000);
    assert_eq!(c.run_as_nobody(&["inspect", "./noread"]), 2);
    snap!(c);
}

#[test]
fn case_08_inspect_an_unreadable_directory_as_json() {
    needs_root!();
    let mut c = Case::new().example("noread").mode("noread", 0o000);
    let code = c.exec(
        &["inspect", "./noread", "--format", "json"],
        &How {
            nobody: true,
            stdout: true,
            ..How::default()
        },
    );
    assert_eq!(code, 2);
    snap!(c);
}

#[test]
fn case_09_fill_an_unreadable_directory() {
    needs_root!();
    let mut c = Case::new().example("noread").mode("noread", 0o000);
    assert_eq!(c.run_as_nobody(&["fill", "./noread"]), 2);
    assert!(!c.transcript().contains("--card"));
    snap!(c);
}

#[test]
fn case_10_fill_a_directory_that_cannot_be_listed() {
    needs_root!();
    let mut c = Case::new().example("ck").mode("ck", 0o311);
    assert_eq!(c.run_as_nobody(&["fill", "./ck"]), 2);
    snap!(c);
}

#[test]
fn case_11_fill_a_read_only_card_as_its_owner() {
    needs_root!();
    let mut c = Case::new()
        .example("ck")
        .owned_by_nobody("ck")
        .owned_by_nobody("ck/README.md")
        .mode("ck/README.md", 0o444);
    assert_eq!(c.run_as_nobody(&["fill", "./ck"]), 0);
    assert_eq!(c.run_as_nobody(&["fill", "./ck", "--strict"]), 1);
    snap!(c);
}

#[test]
fn case_12_fill_a_read_only_card_as_root() {
    let mut c = Case::new().example("ck").mode("ck/README.md", 0o444);
    assert_eq!(c.run(&["fill", "./ck"]), 0);
    snap!(c);
}

#[test]
fn case_13_fill_in_a_read_only_directory() {
    needs_root!();
    let mut c = Case::new().example("rodir");
    assert_eq!(c.run_as_nobody(&["fill", "./rodir"]), 2);
    snap!(c);
}

#[test]
fn case_14_fill_in_a_read_only_directory_without_backup() {
    needs_root!();
    let mut c = Case::new().example("rodir");
    assert_eq!(c.run_as_nobody(&["fill", "./rodir", "--no-backup"]), 2);
    assert!(!c.transcript().contains(".tmp"), "no temporary path leaks");
    snap!(c);
}

const LATIN1: &[u8] = b"---\nlicense: mit\n---\n# Mod\xe8le\n\nCr\xe9\xe9 par nous.\n";

#[test]
fn case_15_fill_a_latin1_card() {
    let mut c = Case::new().example_card("latin1", LATIN1);
    assert_eq!(c.run(&["fill", "./latin1"]), 2);
    assert!(!c.transcript().contains("trainer-file-unreadable"));
    snap!(c);
}

#[test]
fn case_16_inspect_a_latin1_card() {
    let mut c = Case::new().example_card("latin1", LATIN1);
    assert_eq!(c.run(&["inspect", "./latin1"]), 0);
    assert!(!c.transcript().contains("trainer-file-unreadable"));
    snap!(c);
}

#[test]
fn case_17_validate_a_latin1_card() {
    let mut c = Case::new().file("README.md", LATIN1);
    assert_eq!(c.run(&["validate", "README.md"]), 2);
    snap!(c);
}

const BAD_YAML: &str = "---\nlicense: mit\nlanguage: en\ntags: [a, b\n---\n# Model\n";

#[test]
fn case_18_fill_broken_yaml() {
    let mut c = Case::new().example_card("badyaml", BAD_YAML);
    assert_eq!(c.run(&["fill", "./badyaml"]), 2);
    snap!(c);
}

#[test]
fn case_19_validate_broken_yaml() {
    let mut c = Case::new().file("badyaml/README.md", BAD_YAML);
    assert_eq!(c.run(&["validate", "./badyaml/README.md"]), 1);
    snap!(c);
}

#[test]
fn case_20_fill_unclosed_front_matter() {
    let mut c = Case::new().example_card("ck", "---\nlicense: mit\n\n# Model\n\nText.\n");
    assert_eq!(c.run(&["fill", "./ck"]), 2);
    assert_eq!(c.run(&["validate", "./ck/README.md"]), 0);
    snap!(c);
}

#[test]
fn case_21_fill_empty_front_matter() {
    let mut c = Case::new().example_card("ck", "---\n---\n# Model\n\nText.\n");
    assert_eq!(c.run(&["fill", "./ck"]), 0);
    let card = c.read("ck/README.md");
    let meta = front(&card).expect("one front matter block");
    assert!(meta.contains("library_name"), "{card}");
    assert_eq!(card.matches("\n---\n").count(), 1, "{card}");
    assert_eq!(c.run(&["validate", "./ck/README.md"]), 0);
    snap!(c);
}

#[test]
fn case_22_fill_a_repeated_key() {
    let mut c = Case::new().example_card(
        "ck",
        "---\nlicense: mit\nlanguage: en\nlicense: mit\n---\n# Model\n",
    );
    assert_eq!(c.run(&["fill", "./ck"]), 2);
    assert_eq!(c.run(&["validate", "./ck/README.md"]), 1);
    snap!(c);
}

const META: &str = "license: apache-2.0\nlanguage:\n- fr\ntags:\n- mine\n";

fn assert_metadata_kept(card: &str, crlf: bool) {
    let card = card.strip_prefix('\u{feff}').expect("the BOM stays first");
    let le = if crlf { "\r\n" } else { "\n" };
    let meta = front(card).expect("the person's block is still the front matter");
    let want = META.replace('\n', le);
    assert!(meta.starts_with(&want), "{card}");
    assert!(meta.contains("library_name"), "{card}");
    assert_eq!(card.matches('\u{feff}').count(), 0);
}

#[test]
fn case_23_fill_a_crlf_card_with_a_bom() {
    let card = format!("\u{feff}---\n{META}---\n# Model\n\nText.\n").replace('\n', "\r\n");
    let mut c = Case::new().example_card("ck", card);
    assert_eq!(c.run(&["fill", "./ck"]), 0);
    assert_metadata_kept(&c.read("ck/README.md"), true);
    assert_eq!(c.run(&["fill", "./ck"]), 0, "a second run changes nothing");
    snap!(c);
}

#[test]
fn case_24_fill_a_card_with_a_bom() {
    let mut c = Case::new().example_card("ck", format!("\u{feff}---\n{META}---\n# Model\n"));
    assert_eq!(c.run(&["fill", "./ck"]), 0);
    assert_metadata_kept(&c.read("ck/README.md"), false);
    snap!(c);
}

#[test]
fn case_25_fill_a_crlf_card() {
    let card = format!("---\n{META}---\n# Model\n\nText.\n").replace('\n', "\r\n");
    let mut c = Case::new().example_card("ck", card);
    assert_eq!(c.run(&["fill", "./ck"]), 0);
    let out = c.read("ck/README.md");
    assert_eq!(out.matches('\n').count(), out.matches("\r\n").count());
    snap!(c);
}

#[test]
fn case_26_fill_a_card_that_is_a_symlink_elsewhere() {
    let c = Case::new()
        .example("ck")
        .file("cards/shared-card.md", "# Shared\n");
    std::fs::remove_file(c.path("ck/README.md")).unwrap();
    let mut c = c.symlink("ck/README.md", "../cards/shared-card.md");
    assert_eq!(c.run(&["fill", "./ck"]), 2);
    snap!(c);
}

#[test]
fn case_27_fill_a_dangling_card_symlink() {
    let c = Case::new().example("ck");
    std::fs::remove_file(c.path("ck/README.md")).unwrap();
    let mut c = c.symlink("ck/README.md", "../cards/gone.md");
    c.run(&["fill", "./ck"]);
    assert!(
        std::fs::symlink_metadata(c.path("ck/README.md"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    snap!(c);
}

#[test]
fn case_28_fill_a_hard_linked_card() {
    let mut c = Case::new().example("ck");
    std::fs::hard_link(c.path("ck/README.md"), c.path("other.md")).unwrap();
    let before = c.read("other.md");
    assert_eq!(c.run(&["fill", "./ck"]), 0);
    // The card is replaced whole (a rename); the other name keeps the old text, not a byte lost.
    assert_eq!(c.read("other.md"), before);
    assert_ne!(c.read("ck/README.md"), before);
    snap!(c);
}

#[test]
fn case_29_fill_as_root_a_card_owned_by_nobody() {
    needs_root!();
    let mut c = Case::new().example("ck").owned_by_nobody("ck/README.md");
    assert_eq!(c.run(&["fill", "./ck"]), 0);
    assert_eq!(
        std::fs::metadata(c.path("ck/README.md")).unwrap().uid(),
        65534
    );
    snap!(c);
}

#[test]
fn case_30_fill_a_large_card() {
    let mut card = String::from("---\nlicense: mit\n---\n# Model\n\n");
    let para = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\n\n";
    while card.len() < 8 << 20 {
        card.push_str(para);
    }
    let mut c = Case::new().example_card("ck", card);
    let out = Command::new(env!("CARGO_BIN_EXE_cardfill"))
        .args(["fill", "./ck", "--dry-run"])
        .current_dir(c.root.path())
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", "/nonexistent/hf")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.len() > 8 << 20);
    assert_eq!(c.run(&["fill", "./ck", "--check"]), 1);
    assert_eq!(c.run(&["fill", "./ck"]), 0);
    assert_eq!(c.run(&["fill", "./ck"]), 0);
    snap!(c);
}

const A100: [&str; 6] = [
    "--hardware",
    "A100 PCIe 40GB",
    "--count",
    "8",
    "--hours",
    "10",
];

#[test]
fn case_31_fill_an_unknown_region() {
    let mut c = Case::new().example("ck");
    let mut args = vec!["fill", "./ck", "--region", "aws:us-eats-1"];
    args.extend(A100);
    assert_eq!(c.run(&args), 2);
    snap!(c);
}

#[test]
fn case_32_inspect_an_unknown_region_as_json() {
    let mut c = Case::new().example("ck");
    let args = [
        "inspect",
        "./ck",
        "--region",
        "aws:us-eats-1",
        "--format",
        "json",
    ];
    assert_eq!(c.run_json(&args), 2);
    snap!(c);
}

#[test]
fn case_33_co2_an_unknown_region() {
    let mut c = Case::new();
    let mut args = vec!["co2", "--region", "aws:us-eats-1"];
    args.extend(A100);
    assert_eq!(c.run(&args), 2);
    args.extend(["--format", "json"]);
    assert_eq!(c.run_json(&args), 2);
    snap!(c);
}

#[test]
fn case_34_co2_a_country_name_and_lower_case() {
    let mut c = Case::new();
    let mut args = vec!["co2", "--region", "France"];
    args.extend(A100);
    assert_eq!(c.run(&args), 2);
    args[2] = "fr";
    assert_eq!(c.run_json(&args), 0);
    snap!(c);
}

#[test]
fn case_35_an_unknown_region_from_the_environment() {
    let mut c = Case::new().example("ck");
    let how = How {
        env: vec![("CARDFILL_REGION", "us-eats-1")],
        ..How::default()
    };
    assert_eq!(c.exec(&["inspect", "./ck"], &how), 2);
    snap!(c);
}

#[test]
fn case_36_negative_hours_after_a_space() {
    let mut c = Case::new();
    let args = [
        "co2",
        "--hours",
        "-5",
        "--hardware",
        "V100",
        "--region",
        "FR",
    ];
    assert_eq!(c.run(&args), 2);
    snap!(c);
}

#[test]
fn case_37_negative_energy_after_a_space() {
    let mut c = Case::new();
    assert_eq!(
        c.run(&["co2", "--energy-kwh", "-37.5", "--region", "FR"]),
        2
    );
    snap!(c);
}

#[test]
fn case_38_negative_values_after_an_equals_sign() {
    let mut c = Case::new();
    for args in [
        ["co2", "--hours=-5", "--hardware", "V100", "--region", "FR"],
        ["co2", "--energy-kwh=-37.5", "--region", "FR", "", ""],
        ["co2", "--energy-kwh", "1", "--intensity=-100", "", ""],
    ] {
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        assert_eq!(c.run(&args), 2);
    }
    snap!(c);
}

#[test]
fn case_39_zero_count_and_zero_values() {
    let mut c = Case::new();
    let base = ["--hardware", "V100", "--region", "FR"];
    let mut zero_count = vec!["co2", "--count", "0", "--hours", "10"];
    zero_count.extend(base);
    assert_eq!(c.run(&zero_count), 2);
    let mut zero_hours = vec!["co2", "--hours", "0"];
    zero_hours.extend(base);
    assert_eq!(c.run(&zero_hours), 0);
    assert_eq!(c.run(&["co2", "--energy-kwh", "0", "--region", "FR"]), 0);
    assert_eq!(c.run(&["co2", "--energy-kwh", "1", "--intensity", "0"]), 0);
    snap!(c);
}

#[test]
fn case_40_negative_count() {
    let mut c = Case::new();
    let tail = ["--hours", "10", "--hardware", "V100", "--region", "FR"];
    let mut spaced = vec!["co2", "--count", "-1"];
    spaced.extend(tail);
    assert_eq!(c.run(&spaced), 2);
    let mut equals = vec!["co2", "--count=-1"];
    equals.extend(tail);
    assert_eq!(c.run(&equals), 2);
    snap!(c);
}

#[test]
fn case_41_absurd_hours_and_counts() {
    let mut c = Case::new();
    let tail = ["--hardware", "A100 PCIe 40GB", "--region", "FR"];
    let mut hours = vec!["co2", "--hours", "1e12"];
    hours.extend(tail);
    assert_eq!(c.run(&hours), 2);
    let mut count = vec!["co2", "--count", "4294967295", "--hours", "1e6"];
    count.extend(tail);
    assert_eq!(c.run(&count), 2);
    let mut both = vec!["co2", "--count", "1000000", "--hours", "2000"];
    both.extend(tail);
    assert_eq!(c.run(&both), 2);
    snap!(c);
}

#[test]
fn case_42_absurd_energy() {
    let mut c = Case::new();
    assert_eq!(
        c.run(&["co2", "--energy-kwh", "1e300", "--region", "FR"]),
        2
    );
    snap!(c);
}

#[test]
fn case_43_hours_that_are_not_numbers() {
    let mut c = Case::new();
    for h in ["NaN", "inf"] {
        let args = ["co2", "--hours", h, "--hardware", "V100", "--region", "FR"];
        assert_eq!(c.run(&args), 2);
    }
    snap!(c);
}

#[test]
fn case_44_out_of_range_pue_intensity_utilization() {
    let mut c = Case::new();
    for (flag, value) in [
        ("--pue", "0"),
        ("--pue", "50"),
        ("--intensity", "1e9"),
        ("--utilization", "5"),
        ("--utilization", "0"),
    ] {
        let args = ["co2", "--energy-kwh", "10", "--region", "FR", flag, value];
        assert_eq!(c.run(&args), 2);
    }
    snap!(c);
}

#[test]
fn case_45_unknown_hardware() {
    let mut c = Case::new();
    let args = [
        "co2",
        "--hardware",
        "Banana GPU 9000",
        "--hours",
        "10",
        "--region",
        "FR",
    ];
    assert_eq!(c.run(&args), 2);
    snap!(c);
}

#[test]
fn case_46_hardware_without_a_form_factor() {
    let mut c = Case::new();
    let args = [
        "co2",
        "--hardware",
        "A100",
        "--hours",
        "10",
        "--region",
        "FR",
    ];
    // A bare name takes the table's base row, named in the working, with a warning naming
    // the rows it could also be.
    assert_eq!(c.run(&args), 0);
    assert!(c.transcript().contains("NVIDIA A100 SXM4 40GB at 400 W"));
    assert!(
        c.transcript()
            .contains("could also be NVIDIA A100 PCIe 40GB (250 W)")
    );
    snap!(c);
}

#[test]
fn case_47_co2_without_enough_to_estimate() {
    let mut c = Case::new();
    assert_eq!(c.run(&["co2"]), 2);
    assert_eq!(c.run(&["co2", "--region", "FR"]), 2);
    assert_eq!(c.run(&["co2", "--energy-kwh", "37.5"]), 2);
    assert!(!c.transcript().contains("cardfill run"));
    snap!(c);
}

#[test]
fn case_48_fill_negative_hours() {
    let mut c = Case::new().example("ck");
    let args = [
        "fill",
        "./ck",
        "--hours=-5",
        "--hardware",
        "A100 PCIe 40GB",
        "--count",
        "8",
        "--region",
        "FR",
    ];
    assert_eq!(c.run(&args), 2);
    snap!(c);
}

#[test]
fn case_49_refill_with_other_hardware() {
    let mut c = Case::new().example("ck");
    let mut first = vec!["fill", "./ck", "--region", "FR"];
    first.extend(A100);
    assert_eq!(c.run(&first), 0);
    assert!(c.read("ck/README.md").contains("8 × NVIDIA A100"));
    let zero = [
        "fill",
        "./ck",
        "--count",
        "0",
        "--hardware",
        "A100 PCIe 40GB",
        "--hours",
        "10",
        "--region",
        "FR",
    ];
    assert_eq!(c.run(&zero), 2);
    let other = [
        "fill",
        "./ck",
        "--hardware",
        "V100",
        "--count",
        "2",
        "--hours",
        "10",
        "--region",
        "FR",
    ];
    assert_eq!(c.run(&other), 0);
    let card = c.read("ck/README.md");
    assert!(
        !card.contains("A100"),
        "every line follows the new hardware: {card}"
    );
    assert!(card.contains("2 × NVIDIA"), "{card}");
    // Other hours and no hardware now: the CO2 figure of the old hours goes, front matter too.
    let hours = ["fill", "./ck", "--hours", "20", "--region", "FR"];
    assert_eq!(c.run(&hours), 0);
    let card = c.read("ck/README.md");
    assert!(
        card.contains("- **Carbon Emitted:** [More Information Needed] <!--"),
        "{card}"
    );
    assert!(!card.contains("co2_eq_emissions"), "{card}");
    assert_eq!(c.run(&hours), 0, "a second run changes nothing");
    snap!(c);
}

#[test]
fn case_50_run_a_missing_command() {
    let mut c = Case::new().example("ck");
    assert_eq!(
        c.run(&["run", "--record", "./ck", "--", "no-such-command", "--flag"]),
        127
    );
    snap!(c);
}

#[test]
fn case_51_run_without_the_double_dash() {
    let mut c = Case::new().example("ck");
    assert_eq!(c.run(&["run", "--record", "./ck", "sh", "-c", "exit 0"]), 0);
    snap!(c);
}

#[test]
fn case_52_run_without_a_command() {
    let mut c = Case::new();
    assert_eq!(c.run(&["run"]), 2);
    snap!(c);
}

#[test]
fn case_53_run_with_a_record_directory_that_does_not_exist() {
    let mut c = Case::new();
    assert_eq!(
        c.run(&["run", "--record", "./does-not-exist", "--", "true"]),
        0
    );
    snap!(c);
}

#[test]
fn case_54_run_with_a_file_as_record_directory() {
    let mut c = Case::new().file("afile", "x");
    assert_eq!(c.run(&["run", "--record", "./afile", "--", "true"]), 0);
    snap!(c);
}

#[test]
fn case_55_run_exit_codes_pass_through() {
    let mut c = Case::new().file("afile", "x").dir("ck");
    assert_eq!(
        c.run(&["run", "--record", "./ck", "--", "sh", "-c", "exit 7"]),
        7
    );
    assert_eq!(c.run(&["run", "--record", "./ck", "--", "./afile"]), 127);
    assert_eq!(c.run(&["run", "--record", "./ck", "--", "/tmp"]), 127);
    snap!(c);
}

#[test]
fn case_56_validate_a_missing_card() {
    let mut c = Case::new();
    assert_eq!(c.run(&["validate", "./nope/README.md"]), 2);
    snap!(c);
}

#[test]
fn case_57_validate_a_directory() {
    let mut c = Case::new().dir("dir");
    assert_eq!(c.run(&["validate", "./dir"]), 2);
    snap!(c);
}

#[test]
fn case_58_validate_a_card_without_metadata() {
    let mut c = Case::new().file("README.md", "# Model\n\nText.\n");
    // Not a regular file: refused, as every input is.
    assert_eq!(c.run(&["validate", "/dev/null"]), 2);
    assert_eq!(c.run(&["validate", "README.md"]), 0);
    assert!(!c.transcript().contains("accepts"));
    snap!(c);
}

#[test]
fn case_59_validate_a_card_with_a_bom() {
    let mut c = Case::new().file("README.md", format!("\u{feff}---\n{META}---\n# Model\n"));
    assert_eq!(c.run(&["validate", "README.md"]), 0);
    assert!(!c.transcript().contains("accepts"));
    snap!(c);
}

#[test]
fn case_60_fill_a_card_in_a_missing_directory() {
    let mut c = Case::new().example("ck");
    assert_eq!(c.run(&["fill", "./ck", "--card", "./nodir/README.md"]), 2);
    assert!(!c.transcript().contains("created"));
    snap!(c);
}

#[test]
fn case_61_check_without_a_card() {
    let mut c = Case::new().example("chk");
    std::fs::remove_file(c.path("chk/README.md")).unwrap();
    assert_eq!(c.run(&["fill", "./chk", "--check"]), 1);
    assert!(!c.transcript().contains("created"));
    snap!(c);
}

#[test]
fn case_62_a_missing_template() {
    let mut c = Case::new().example("ck");
    assert_eq!(c.run(&["fill", "./ck", "--template", "./nope.j2"]), 2);
    snap!(c);
}

#[test]
fn case_63_a_template_with_a_syntax_error() {
    let mut c = Case::new()
        .example("ck")
        .file("broken.j2", "# {{ model_id \n");
    assert_eq!(c.run(&["fill", "./ck", "--template", "./broken.j2"]), 2);
    snap!(c);
}

#[test]
fn case_64_a_directory_as_card() {
    let mut c = Case::new().example("ck").dir("somedir");
    assert_eq!(c.run(&["fill", "./ck", "--card", "./somedir"]), 2);
    snap!(c);
}

#[test]
fn case_65_inspect_online_without_a_network() {
    let mut c = Case::new().example("ck");
    let how = How {
        env: vec![("HF_ENDPOINT", "http://127.0.0.1:9")],
        remove_env: vec!["HF_HUB_OFFLINE"],
        ..How::default()
    };
    assert_eq!(c.exec(&["inspect", "./ck", "--online"], &how), 0);
    assert!(!c.transcript().contains("pass --online"));
    assert!(!c.transcript().contains("answered"));
    snap!(c);
}

#[test]
fn case_66_detect_cloud_off_cloud() {
    let mut c = Case::new().example("ck");
    let how = How {
        env: vec![
            ("CARDFILL_AWS_IMDS_URL", "http://127.0.0.1:9"),
            ("CARDFILL_GCP_METADATA_URL", "http://127.0.0.1:9"),
            ("CARDFILL_AZURE_IMDS_URL", "http://127.0.0.1:9"),
        ],
        ..How::default()
    };
    assert_eq!(c.exec(&["inspect", "./ck", "--detect-cloud"], &how), 0);
    snap!(c);
}

#[test]
fn case_67_regions_without_a_match() {
    let mut c = Case::new();
    assert_eq!(c.run(&["regions", "zzzz"]), 2);
    assert_eq!(c.run_json(&["regions", "zzzz", "--format", "json"]), 2);
    snap!(c);
}

#[test]
fn case_68_regions_of_a_country_code() {
    let mut c = Case::new();
    assert_eq!(c.run_json(&["regions", "FR"]), 0);
    snap!(c);
}
