//! The split between `cardfill` (no network code linked) and `cardfill-online` (the network
//! half), and the hand-over between them.

use std::path::Path;

use crate::util::{cardfill, fixtures, stderr};

/// How many code and data symbols of `exe` belong to Rust crate `krate` (the legacy and v0
/// manglings both spell a crate root as its length then its name).
#[cfg(target_os = "linux")]
fn symbols_of(exe: &Path, krate: &str) -> usize {
    use object::{Object, ObjectSymbol};
    let data = std::fs::read(exe).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let rust = format!("{}{krate}", krate.len());
    let legacy = format!("_ZN{rust}");
    let (v0, v0_plain) = (format!("_{rust}"), format!("C{rust}"));
    file.symbols()
        .filter(|s| {
            matches!(
                s.kind(),
                object::SymbolKind::Text | object::SymbolKind::Data
            )
        })
        .filter_map(|s| s.name().ok())
        .filter(|name| {
            name.starts_with(&legacy)
                || (name.starts_with("_R") && (name.contains(&v0) || name.contains(&v0_plain)))
        })
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn the_offline_executable_links_no_network_code() {
    let offline = Path::new(env!("CARGO_BIN_EXE_cardfill"));
    let online = Path::new(env!("CARGO_BIN_EXE_cardfill-online"));
    for krate in [
        "hf_hub",
        "reqwest",
        "hyper",
        "h2",
        "tokio",
        "rustls",
        "aws_lc_rs",
    ] {
        assert!(
            symbols_of(online, krate) > 0,
            "cardfill-online should carry {krate}: has the check gone stale?"
        );
        assert_eq!(
            symbols_of(offline, krate),
            0,
            "cardfill links {krate}: something outside `network::ONLINE` names network code"
        );
    }
}

/// `cardfill` alone in a directory: offline commands run; those that need the network say
/// which file is missing and how to get it back, exit 2.
#[test]
fn a_lone_cardfill_runs_offline_and_names_the_missing_helper() {
    let bin = tempfile::tempdir().unwrap();
    let lone = bin.path().join("cardfill");
    std::fs::copy(env!("CARGO_BIN_EXE_cardfill"), &lone).unwrap();
    let checkpoint = fixtures().join("cases/peft-lora-tinyllama-trainer-ckpt");
    // The environment every other test runs in.
    let run = |args: &[&str]| {
        let env = cardfill();
        std::process::Command::new(&lone)
            .args(args)
            .envs(env.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .env_remove("CARDFILL_REGION")
            .env_remove("CARDFILL_ONLINE")
            .output()
            .unwrap()
    };
    let dir = checkpoint.to_str().unwrap();

    let offline = run(&["inspect", dir, "--format", "json"]);
    assert!(offline.status.success(), "{}", stderr(&offline));

    let helper = bin.path().join("cardfill-online");
    for args in [
        vec!["inspect", dir, "--online"],
        vec!["fill", "--from-hub", "org/model", "--out", "card"],
        vec!["push", dir, "--repo", "org/model"],
        vec!["validate", "README.md", "--online"],
        vec!["inspect", dir, "--detect-cloud"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(&format!("`{}`", helper.display())) && err.contains("reinstall cardfill"),
            "{args:?}: {err}"
        );
    }
    let json = run(&["inspect", dir, "--online", "--format", "json"]);
    let error: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(error["error"]["code"], "network-helper-missing", "{error}");
}

/// Handed over, the command line is the helper's: its output, warnings and exit status.
#[test]
fn cardfill_hands_the_network_command_line_to_cardfill_online() {
    let checkpoint = fixtures().join("cases/llama2-7b-chat-hf");
    let dir = checkpoint.to_str().unwrap();
    let direct = std::process::Command::new(env!("CARGO_BIN_EXE_cardfill-online"))
        .args(["inspect", dir, "--online", "--format", "json"])
        .envs(cardfill().get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .output()
        .unwrap();
    let handed = cardfill()
        .args(["inspect", dir, "--online", "--format", "json"])
        .output()
        .unwrap();
    assert!(handed.status.success(), "{}", stderr(&handed));
    assert_eq!(handed.status.code(), direct.status.code());
    assert_eq!(handed.stdout, direct.stdout);
    assert_eq!(handed.stderr, direct.stderr);
    // HF_HUB_OFFLINE is set for every test: the helper said so, not the offline binary.
    let facts = String::from_utf8_lossy(&handed.stdout);
    assert!(facts.contains("HF_HUB_OFFLINE is set"), "{facts}");
}
