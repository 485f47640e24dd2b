//! `cardfill push` against a Hub on 127.0.0.1: one commit with the card and its figure, a pull
//! request's URL, validation first, the token's problems named, retries, nothing sent on a
//! dry run.

use std::path::Path;
use std::process::Output;

use cardfill_testkit::fakehub::{Access, FakeHub, Model, SHA};

use crate::util::{cardfill, json_stdout, stderr, stdout};

const TOKEN: &str = "hf_TESTwriteTOKEN0123456789abcdef";
const READ_TOKEN: &str = "hf_TESTreadTOKEN0123456789abcdef";

fn push(hub_url: &str, token: Option<&str>, args: &[&str], cwd: &Path) -> Output {
    let home = tempfile::tempdir().expect("HF_HOME");
    let mut cmd = cardfill();
    cmd.env_remove("HF_HUB_OFFLINE")
        .env("HF_ENDPOINT", hub_url)
        .env("HF_HOME", home.path())
        .env_remove("HF_TOKEN")
        .arg("push")
        .args(args)
        .current_dir(cwd);
    if let Some(t) = token {
        cmd.env("HF_TOKEN", t);
    }
    cmd.output().expect("run cardfill")
}

fn hub() -> FakeHub {
    FakeHub::start()
        .model(
            "org/model",
            Model {
                sha: SHA.into(),
                ..Model::default()
            },
        )
        .token(TOKEN, Access::Write)
        .token(READ_TOKEN, Access::Read)
}

/// A Trainer's output directory filled by cardfill: its card links the training figure.
fn filled_trainer() -> tempfile::TempDir {
    let dir = crate::real::copy("tf5-trainer");
    let out = cardfill().arg("fill").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join(cardfill_card::FIGURE_FILE).is_file());
    dir
}

#[test]
fn a_trainer_card_goes_as_a_pull_request_with_its_figure_byte_for_byte() {
    let dir = filled_trainer();
    let hub = hub();
    let out = push(
        &hub.url,
        Some(TOKEN),
        &[
            ".",
            "--repo",
            "org/model",
            "--create-pr",
            "--message",
            "Fill the card",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The PR's URL, found although the Hub names it `pullRequestUrl` and hf-hub reads `prUrl`.
    assert_eq!(
        stdout(&out),
        format!("{}/org/model/discussions/1\n", hub.url)
    );
    let commits = hub.commits();
    assert_eq!(commits.len(), 1);
    let commit = &commits[0];
    assert!(commit.create_pr);
    assert_eq!(commit.repo, "org/model");
    assert_eq!(commit.summary(), Some("Fill the card"));
    let files = commit.files();
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["README.md", cardfill_card::FIGURE_FILE]
    );
    assert_eq!(
        files["README.md"],
        std::fs::read(dir.path().join("README.md")).unwrap()
    );
    assert_eq!(
        files[cardfill_card::FIGURE_FILE],
        std::fs::read(dir.path().join(cardfill_card::FIGURE_FILE)).unwrap()
    );
    // The token went to the endpoint, and nowhere in the output.
    assert!(
        hub.requests()
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );
    assert!(!stderr(&out).contains(TOKEN) && !stdout(&out).contains(TOKEN));
}

#[test]
fn a_dry_run_lists_the_commit_and_sends_nothing() {
    let dir = filled_trainer();
    let hub = hub();
    let out = push(
        &hub.url,
        None,
        &[".", "--repo", "org/model", "--dry-run", "--format", "json"],
        dir.path(),
    );
    let json = json_stdout(&out);
    assert_eq!(json["message"], "Update the model card with cardfill");
    let paths: Vec<&str> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["README.md", cardfill_card::FIGURE_FILE]);
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
    let text = push(
        &hub.url,
        None,
        &[".", "--repo", "org/model", "--dry-run"],
        dir.path(),
    );
    assert!(
        stdout(&text).starts_with(
            "would commit to `org/model` (branch main), sending nothing:\n  README.md  "
        ),
        "{}",
        stdout(&text)
    );
    assert!(hub.requests().is_empty());
}

#[test]
fn token_problems_say_what_is_missing() {
    let dir = filled_trainer();
    let hub = hub();
    let args = [".", "--repo", "org/model"];
    let cases = [
        (None, "no token: set HF_TOKEN"),
        (
            Some(READ_TOKEN),
            "may not write to `org/model` (HTTP 403): a read-only token",
        ),
        (Some("hf_wrong"), "refused the token (HTTP 401)"),
    ];
    for (token, expected) in cases {
        let out = push(&hub.url, token, &args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{token:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{token:?}: {err}");
        assert!(
            !err.contains(READ_TOKEN) && !err.contains("hf_wrong"),
            "{err}"
        );
    }
    assert!(hub.commits().is_empty());
    let missing = push(
        &hub.url,
        Some(TOKEN),
        &[".", "--repo", "org/absent"],
        dir.path(),
    );
    assert!(
        stderr(&missing).contains("no repository `org/absent` (HTTP 404)"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn a_card_the_hub_rejects_is_not_sent_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("README.md"),
        "---\nlicense: my-own-licence\n---\n# Model\n",
    )
    .unwrap();
    let hub = hub();
    let out = push(
        &hub.url,
        Some(TOKEN),
        &[".", "--repo", "org/model"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("would be rejected by the Hub: license:"),
        "{err}"
    );
    assert!(err.contains("pass --force"), "{err}");
    assert!(hub.requests().is_empty());
    let forced = push(
        &hub.url,
        Some(TOKEN),
        &[".", "--repo", "org/model", "--force"],
        dir.path(),
    );
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(hub.commits().len(), 1);
}

#[test]
fn transient_failures_are_retried_and_an_unreachable_hub_is_one_line() {
    let dir = filled_trainer();
    let hub = hub().failing_commits(2);
    let out = push(
        &hub.url,
        Some(TOKEN),
        &[".", "--repo", "org/model"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(hub.commits().len(), 1);
    let tries = hub
        .requests()
        .iter()
        .filter(|r| r.path.contains("/commit/"))
        .count();
    assert_eq!(tries, 3);

    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = push(
        &format!("http://127.0.0.1:{port}"),
        Some(TOKEN),
        &[".", "--repo", "org/model"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("could not reach it (connection refused)"),
        "{err}"
    );
}

#[test]
fn from_hub_then_push_proposes_the_filled_card() {
    let source = crate::real::copy("tf5-trainer");
    let hub = FakeHub::start()
        .model("org/trained", Model::from_dir(source.path()))
        .token(TOKEN, Access::Write);
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let fill = cardfill()
        .env_remove("HF_HUB_OFFLINE")
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HOME", home.path())
        .env("HF_TOKEN", TOKEN)
        .args(["fill", "--from-hub", "org/trained", "--out", "card"])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(fill.status.success(), "{}", stderr(&fill));
    let out = push(
        &hub.url,
        Some(TOKEN),
        &["card", "--repo", "org/trained", "--create-pr"],
        work.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).ends_with("/org/trained/discussions/1\n"),
        "{}",
        stdout(&out)
    );
    let commit = &hub.commits()[0];
    let files = commit.files();
    let card = std::fs::read_to_string(work.path().join("card/README.md")).unwrap();
    assert_eq!(files["README.md"], card.as_bytes());
    // The figure drawn from the Hub's trainer_state.json went with it.
    assert!(
        files.contains_key(cardfill_card::FIGURE_FILE),
        "{:?}",
        files.keys()
    );
}
