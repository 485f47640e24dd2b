//! The README is the front door: its commands must exist and its flags must be real.

use std::collections::BTreeSet;
use std::path::Path;

use crate::util::{cardfill, stdout};

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md at the repository root")
}

/// Every `cardfill SUB … --flag` line in the README's code blocks, as (SUB, flags).
fn documented_invocations(text: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let line = line.trim_start_matches("$ ").trim();
        let Some(pos) = line.find("cardfill ") else {
            continue;
        };
        let words: Vec<&str> = line[pos + "cardfill ".len()..].split_whitespace().collect();
        let Some(sub) = words.first() else { continue };
        if sub.starts_with('-') {
            continue;
        }
        let flags = words
            .iter()
            .take_while(|w| **w != "--" && !w.starts_with('#'))
            .filter(|w| w.starts_with("--") && w.len() > 2)
            .map(|w| w.split('=').next().unwrap_or(w).to_string())
            .collect();
        found.push(((*sub).to_string(), flags));
    }
    found
}

#[test]
fn every_documented_subcommand_and_flag_exists() {
    let text = readme();
    let invocations = documented_invocations(&text);
    assert!(
        invocations.len() >= 7,
        "the README shows every subcommand; found {invocations:?}"
    );
    let subs: BTreeSet<&str> = invocations.iter().map(|(s, _)| s.as_str()).collect();
    for sub in [
        "inspect", "fill", "run", "probe", "co2", "regions", "validate",
    ] {
        assert!(subs.contains(sub), "README never shows `cardfill {sub}`");
    }
    for (sub, flags) in &invocations {
        let out = cardfill().args([sub.as_str(), "--help"]).output().unwrap();
        assert!(out.status.success(), "`cardfill {sub} --help` failed");
        let help = stdout(&out);
        for flag in flags {
            assert!(
                help.contains(flag.as_str()),
                "README uses `cardfill {sub} {flag}` but `--help` does not list it"
            );
        }
    }
}

#[test]
fn the_quick_start_command_fills_the_shipped_example() {
    let text = readme();
    assert!(
        text.contains("cargo run --release -- fill examples/tiny-checkpoint --dry-run"),
        "the README's first command fills the shipped example"
    );
    assert!(text.contains("cargo test --workspace"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let before = std::fs::read(root.join("examples/tiny-checkpoint/README.md")).unwrap();
    let out = cardfill()
        .args(["fill", "examples/tiny-checkpoint", "--dry-run"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let card = stdout(&out);
    assert!(card.starts_with("---"), "a card with front matter:\n{card}");
    assert!(card.contains("params"), "parameter count filled:\n{card}");
    let after = std::fs::read(root.join("examples/tiny-checkpoint/README.md")).unwrap();
    assert_eq!(before, after, "--dry-run writes nothing");
}

#[test]
fn ci_runs_the_readme_test_command() {
    let ci =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run")).unwrap();
    assert!(ci.contains("cargo test --workspace"));
    assert!(ci.contains("cargo fmt --check"));
    assert!(ci.contains("cargo clippy --all-targets -- -D warnings"));
}

/// Splits a shell command line into words (double and single quotes, no escapes).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// Every `$ cardfill …` line of a README code block that is followed by its output, with it.
fn shown_outputs(text: &str) -> Vec<(Vec<String>, String)> {
    let mut found: Vec<(Vec<String>, String)> = Vec::new();
    let mut in_code = false;
    let mut current: Option<(Vec<String>, String)> = None;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            found.extend(current.take().filter(|(_, out)| !out.is_empty()));
            continue;
        }
        if !in_code {
            continue;
        }
        if let Some(cmd) = line.strip_prefix("$ ") {
            found.extend(current.take().filter(|(_, out)| !out.is_empty()));
            current = cmd
                .strip_prefix("cardfill ")
                .map(|rest| (words(rest), String::new()));
        } else if let Some((_, out)) = current.as_mut() {
            out.push_str(line);
            out.push('\n');
        }
    }
    found
}

#[test]
fn every_shown_output_is_what_the_program_prints() {
    let shown = shown_outputs(&readme());
    assert!(
        !shown.is_empty(),
        "the README shows at least one command with its output"
    );
    for (args, expected) in shown {
        let out = cardfill().args(&args).output().unwrap();
        assert!(out.status.success(), "`cardfill {}` failed", args.join(" "));
        assert_eq!(
            stdout(&out),
            expected,
            "the README's output of `cardfill {}` is not what it prints",
            args.join(" ")
        );
    }
}

#[test]
fn rust_version_covers_every_locked_dependency() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // This machine's packages only: those are the ones a build has already downloaded.
    let rustc = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .unwrap();
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host");
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = |v: &str| -> Vec<u64> {
        let mut parts: Vec<u64> = v.split('.').map(|p| p.parse().unwrap()).collect();
        parts.resize(3, 0);
        parts
    };
    let packages = meta["packages"].as_array().unwrap();
    let ours = packages
        .iter()
        .find(|p| p["name"] == "cardfill")
        .and_then(|p| p["rust_version"].as_str())
        .expect("cardfill declares rust-version");
    for p in packages {
        if let Some(needed) = p["rust_version"].as_str() {
            assert!(
                version(ours) >= version(needed),
                "rust-version {ours} is lower than {} {}'s {needed}",
                p["name"],
                p["version"]
            );
        }
    }
    assert!(
        readme().contains(&format!("Rust {ours} or newer")),
        "the README states rust-version {ours}"
    );
}

#[test]
fn every_subcommand_help_ends_with_examples() {
    for sub in [
        "inspect", "fill", "run", "probe", "co2", "regions", "validate",
    ] {
        let out = cardfill().args([sub, "--help"]).output().unwrap();
        let help = stdout(&out);
        let examples = help
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("`cardfill {sub} --help` has no examples:\n{help}"));
        let lines: Vec<&str> = examples.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            (2..=3).contains(&lines.len()),
            "`cardfill {sub} --help` ends with two or three examples: {lines:?}"
        );
        for line in lines {
            let line = line.trim();
            assert!(
                line.starts_with("cardfill ") || line.starts_with("srun "),
                "{sub}: {line}"
            );
        }
    }
}
