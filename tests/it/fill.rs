//! See `main.rs` for what this module covers.
//!
//! `cardfill fill` over every real card in `tests/fixtures/cases`: human bytes survive, a
//! second run changes nothing, `--check` and `--dry-run` write nothing, writes are atomic.
#![allow(clippy::unwrap_used)] // helpers of tests, not only `#[test]` functions

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::util::{RunDir, cardfill, fixtures, stderr, stdout};

/// Every file under `dir`, relative path → bytes.
fn listing(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for (rel, bytes) in listing(from) {
        let dest = to.join(rel);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::write(dest, bytes).unwrap();
    }
}

/// Each case with a card: a checkpoint folder with its README, or a Hub README alone.
fn cases() -> Vec<(String, RunDir)> {
    let root = fixtures().join("cases");
    let mut out = Vec::new();
    for entry in fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.join("README.md").is_file() {
            let dir = RunDir::new();
            copy_dir(&path, dir.path());
            out.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                dir,
            ));
        }
    }
    for entry in fs::read_dir(root.join("hub-readmes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            let dir = RunDir::new().file("README.md", fs::read(&path).unwrap());
            out.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                dir,
            ));
        }
    }
    assert!(out.len() >= 11, "cases missing: {}", out.len());
    out
}

/// Splits into lines that keep their endings.
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// Whether a line of the original card is one cardfill may own (a placeholder value).
fn placeholder(line: &str) -> bool {
    let value = line
        .split_once(":**")
        .map_or(line, |(_, v)| v)
        .split("<!--")
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches('.');
    !line.trim().is_empty()
        && (value.eq_ignore_ascii_case("[more information needed]")
            || value.eq_ignore_ascii_case("more information needed"))
}

/// Every human line of `orig` is in `new`, byte for byte and in order.
fn assert_human_lines_survive(name: &str, orig: &str, new: &str) {
    let new_lines = lines(new);
    let orig_lines = lines(orig);
    let mut at = 0;
    for (i, line) in orig_lines.iter().enumerate() {
        if placeholder(line) {
            continue;
        }
        let last = i + 1 == orig_lines.len() && !line.ends_with('\n');
        match new_lines[at..]
            .iter()
            .position(|n| n == line || (last && n.trim_end_matches(['\r', '\n']) == *line))
        {
            Some(p) => at += p + 1,
            None => panic!("{name}: human line {i} lost: {line:?}"),
        }
    }
}

fn fill(dir: &Path, extra: &[&str]) -> std::process::Output {
    cardfill()
        .arg("fill")
        .arg(dir)
        .args(extra)
        .output()
        .expect("run cardfill")
}

#[test]
fn every_case_card_keeps_human_bytes_and_is_idempotent() {
    for (name, dir) in cases() {
        let card = dir.path().join("README.md");
        let orig = fs::read_to_string(&card).unwrap();
        let out = fill(dir.path(), &["--no-backup"]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        let first = fs::read_to_string(&card).unwrap();
        assert_human_lines_survive(&name, &orig, &first);

        let before = listing(dir.path());
        let out = fill(dir.path(), &["--no-backup"]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert_eq!(
            listing(dir.path()),
            before,
            "{name}: second run changed the directory"
        );
        assert!(
            stderr(&out).contains("is up to date"),
            "{name}: {}",
            stderr(&out)
        );

        let out = fill(dir.path(), &["--check"]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert_eq!(listing(dir.path()), before, "{name}: --check wrote");
    }
}

#[test]
fn crlf_cards_stay_crlf() {
    for (name, dir) in cases() {
        let card = dir.path().join("README.md");
        let orig = fs::read_to_string(&card)
            .unwrap()
            .replace("\r\n", "\n")
            .replace('\n', "\r\n");
        fs::write(&card, &orig).unwrap();
        let out = fill(dir.path(), &["--no-backup"]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        let new = fs::read_to_string(&card).unwrap();
        assert!(
            !new.replace("\r\n", "").contains('\n'),
            "{name}: a line without CRLF"
        );
        assert_human_lines_survive(&name, &orig, &new);
    }
}

#[test]
fn dry_run_and_check_leave_the_directory_exactly_as_it_was() {
    let (name, dir) = cases()
        .into_iter()
        .find(|(n, _)| n == "trainer-vit-base-riego")
        .unwrap();
    let before = listing(dir.path());
    let dry = fill(dir.path(), &["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{name}: {}", stderr(&dry));
    assert_eq!(listing(dir.path()), before);

    let check = fill(dir.path(), &["--check"]);
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    assert!(stderr(&check).contains("is out of date"));
    assert_eq!(listing(dir.path()), before);

    // What --dry-run printed is what fill writes; the old card is kept as a backup.
    let out = fill(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let card = dir.path().join("README.md");
    assert_eq!(fs::read_to_string(&card).unwrap(), stdout(&dry));
    assert_eq!(
        fs::read(dir.path().join("README.md.bak")).unwrap(),
        before[Path::new("README.md")]
    );
    // Beside the backup, only the training figure the card links (the trainer log draws it).
    let files: Vec<_> = listing(dir.path()).into_keys().collect();
    assert!(files.contains(&PathBuf::from("cardfill-training.png")));
    assert_eq!(files.len(), before.len() + 2, "a stray file: {files:?}");
    // The figure gets a new file's permissions, as a file the user makes there would.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let probe = dir.path().join("probe-new-file");
        fs::File::create(&probe).unwrap();
        assert_eq!(
            mode(&dir.path().join("cardfill-training.png")),
            mode(&probe)
        );
        fs::remove_file(probe).unwrap();
    }
}

#[test]
fn a_directory_without_a_card_gets_a_new_one() {
    let dir = RunDir::new().file(
        "config.json",
        r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16}"#,
    );
    let out = dir.run(&["fill", "."]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let card = fs::read_to_string(dir.path().join("README.md")).unwrap();
    assert!(card.contains("## Environmental Impact"), "{card}");
    assert!(!dir.path().join("README.md.bak").exists());
    let again = dir.run(&["fill", ".", "--check"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
}

#[test]
fn huggingface_hub_template_renders_through_template_flag() {
    let dir = RunDir::new().file(
        "template.md",
        fs::read(fixtures().join("hf-modelcard-template.md")).unwrap(),
    );
    let ckpt = dir.path().join("ckpt");
    fs::create_dir(&ckpt).unwrap();
    let out = cardfill()
        .arg("fill")
        .arg(&ckpt)
        .arg("--template")
        .arg(dir.path().join("template.md"))
        .arg("--dry-run")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let card = stdout(&out);
    assert!(card.contains("# Model Card for Model ID\n"), "{card}");
    assert!(card.contains("- **Hours used:** "), "{card}");
    assert!(!ckpt.join("README.md").exists());
}

#[test]
fn errors_are_one_line_naming_the_file() {
    let dir = RunDir::new().file("README.md", "---\nlicense: [mit\n---\n# Card\n");
    let out = dir.run(&["fill", "."]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    // The error comes first; warnings follow it.
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: `./README.md` has front matter"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("README.md")).unwrap(),
        "---\nlicense: [mit\n---\n# Card\n"
    );

    let out = dir.run(&["fill", ".", "--template", "missing.md"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read template `missing.md`"),
        "{}",
        stderr(&out)
    );

    let out = dir.run(&["fill", "no-such-dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no-such-dir"), "{}", stderr(&out));
}

#[test]
fn human_values_are_kept_and_reported_and_force_replaces_them() {
    let card = "# Card\n\n## Model Details\n\n### Model Description\n\n- **Model type:** a small test model\n";
    let dir = RunDir::new().file("README.md", card).file(
        "config.json",
        r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}"#,
    );
    let out = dir.run(&["fill", ".", "--no-backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let new = fs::read_to_string(dir.path().join("README.md")).unwrap();
    assert!(new.contains("- **Model type:** a small test model\n"));
    assert!(
        stderr(&out).contains("note: kept model_type as written (`a small test model`)"),
        "{}",
        stderr(&out)
    );
    let out = dir.run(&["fill", ".", "--no-backup", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("note: replaced model_type `a small test model`"),
        "{}",
        stderr(&out)
    );
    let new = fs::read_to_string(dir.path().join("README.md")).unwrap();
    assert!(
        new.contains("- **Model type:** llama (LlamaForCausalLM) <!-- cardfill:model_type -->\n"),
        "{new}"
    );
}

#[test]
fn strict_fails_on_warnings_but_still_writes() {
    let dir = RunDir::new().file("config.json", "{ not json");
    let out = dir.run(&["fill", ".", "--strict"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning:"), "{}", stderr(&out));
    assert!(dir.path().join("README.md").is_file());
}

#[test]
fn the_example_checkpoint_is_filled() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiny-checkpoint");
    let dir = RunDir::new();
    copy_dir(&example, dir.path());
    let orig = fs::read_to_string(dir.path().join("README.md")).unwrap();
    let out = fill(dir.path(), &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let card = stdout(&out);
    assert_human_lines_survive("example", &orig, &card);
    assert!(
        card.contains("- **Model type:** llama (LlamaForCausalLM) <!-- cardfill:model_type -->"),
        "{card}"
    );
    assert!(card.contains("- **License:** MIT\n"));
    assert!(
        card.contains("- **Parameters:** 5.71k params (5,712)"),
        "{card}"
    );
    assert!(
        card.contains("- **Checkpoint size:** 13.20 KiB (13,512 bytes) in 1 safetensors file"),
        "{card}"
    );
}
