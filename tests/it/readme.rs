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
