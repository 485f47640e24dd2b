//! `fill --from-hub` and `inspect --from-hub`: models already on a Hub on 127.0.0.1, read
//! without their weights.

use std::path::Path;
use std::process::Output;

use cardfill_testkit::fakehub::{Access, FakeHub, Model, SHA};
use serde_json::Value;

use crate::util::{RunDir, cardfill, inspect_json, json_stdout, stderr};

const TOKEN: &str = "hf_TESTsecretTOKENvalue0123456789";

/// Runs cardfill against `hub`, network allowed, no token unless `token`.
fn run_against(hub: &FakeHub, token: Option<&str>, args: &[&str], cwd: &Path) -> Output {
    let home = tempfile::tempdir().expect("HF_HOME");
    let mut cmd = cardfill();
    cmd.env_remove("HF_HUB_OFFLINE")
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HOME", home.path())
        .env_remove("HF_TOKEN")
        .env("HF_HUB_DOWNLOAD_TIMEOUT", "2")
        .args(args)
        .current_dir(cwd);
    if let Some(t) = token {
        cmd.env("HF_TOKEN", t);
    }
    cmd.output().expect("run cardfill")
}

/// `inspect --from-hub REPO --format json` against `hub`, without a token, parsed.
fn inspect_from_hub(hub: &FakeHub, repo: &str) -> Value {
    let work = RunDir::new();
    json_stdout(&run_against(
        hub,
        None,
        &["inspect", "--from-hub", repo, "--format", "json"],
        work.path(),
    ))
}

/// A shared case as a local checkpoint directory (sparse, header-accurate shards).
fn case(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("case dir");
    cardfill_testkit::materialize_case(name, dir.path()).expect("materialize case");
    dir
}

/// Paths and values of the facts that come from the files, for comparing a local inspection
/// with one from the Hub.
fn file_facts(json: &Value) -> Vec<(String, Value)> {
    ["parameters", "checkpoint", "model"]
        .iter()
        .filter_map(|k| json.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

#[test]
fn a_sharded_model_on_the_hub_gives_the_facts_of_the_same_files_on_disk() {
    let local = case("mistral-7b-v0.1");
    // The `.bin` copy the Hub also holds, sparse at its true size: it must never be read.
    let sizes = cardfill_testkit::lfs_sizes("mistral-7b-v0.1").expect("sizes");
    for (name, size) in sizes.iter().filter(|(n, _)| n.ends_with(".bin")) {
        let f = std::fs::File::create(local.path().join(name)).expect("bin");
        f.set_len(*size).expect("sparse bin");
    }
    let hub = FakeHub::start().model("mistralai/Mistral-7B-v0.1", Model::from_dir(local.path()));
    let remote = inspect_from_hub(&hub, "mistralai/Mistral-7B-v0.1");
    let mut on_disk = inspect_json(local.path());
    // The local inspection counted the `.bin` files as an alternative copy; the Hub's are
    // listed, never read.
    if let Some(c) = on_disk["checkpoint"].as_object_mut() {
        c.remove("alternatives");
    }
    assert_eq!(remote["parameters"]["total"], 7_241_732_096u64);
    assert_eq!(file_facts(&remote), file_facts(&on_disk));

    // Sources name the Hub file and the commit.
    let source = remote["sources"]["parameters.total"].as_str().unwrap();
    assert!(
        source.starts_with(&format!(
            "{}/mistralai/Mistral-7B-v0.1/blob/{SHA}/model.safetensors.index.json",
            hub.url
        )),
        "{source}"
    );
    assert!(
        source.ends_with("(index downloaded, shard headers by HTTP range)"),
        "{source}"
    );
    let arch = remote["sources"]["model.architecture"].as_str().unwrap();
    assert!(
        arch.starts_with(&format!(
            "{}/mistralai/Mistral-7B-v0.1/blob/{SHA}/config.json",
            hub.url
        )),
        "{arch}"
    );
    assert_eq!(remote["hub"]["revision"], SHA);
    // The `.bin` weights: listed with their sizes, not downloaded.
    let not = remote["hub"]["not_fetched"]
        .as_array()
        .expect("not_fetched");
    assert_eq!(not.len(), 2, "{not:?}");
    assert_eq!(not[0]["bytes"], sizes["pytorch_model-00001-of-00002.bin"]);

    // What was transferred: the headers and small files only, as the Hub counted it.
    let reported = remote["hub"]["bytes_fetched"].as_u64().unwrap();
    let served = hub.served_bytes();
    assert!(served < 200_000, "served {served} bytes");
    assert!(reported >= served, "reported {reported} < served {served}");
    let requests = hub.requests();
    assert_eq!(
        remote["hub"]["requests"].as_u64().unwrap(),
        requests.len() as u64
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with(".bin")),
        "a .bin was downloaded"
    );
    for r in requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(".safetensors"))
    {
        assert!(r.header("range").is_some(), "{} without Range", r.path);
    }
}

#[test]
fn fill_from_hub_keeps_the_hub_readme_and_fills_it() {
    let local = case("mistral-7b-v0.1");
    let readme = std::fs::read_to_string(local.path().join("README.md")).expect("readme");
    let hub = FakeHub::start().model("mistralai/Mistral-7B-v0.1", Model::from_dir(local.path()));
    let work = RunDir::new();
    let args = [
        "fill",
        "--from-hub",
        "mistralai/Mistral-7B-v0.1",
        "--out",
        "card",
    ];
    let out = run_against(&hub, None, &args, work.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("read `mistralai/Mistral-7B-v0.1` at 0123456 from the Hub"),
        "{err}"
    );
    let card = std::fs::read_to_string(work.path().join("card/README.md")).expect("card");
    // Every human line of the Hub's README is kept.
    for line in readme
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("---"))
    {
        assert!(card.contains(line), "lost {line:?}");
    }
    assert!(card.contains("7.24B"), "{card}");
    // Again: nothing to change, and --check agrees.
    let again = run_against(&hub, None, &args, work.path());
    assert!(
        stderr(&again).contains("is up to date"),
        "{}",
        stderr(&again)
    );
    let mut check = args.to_vec();
    check.push("--check");
    let checked = run_against(&hub, None, &check, work.path());
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    // No stand-in is left behind: the card directory holds the card (and its backup) only.
    let names: Vec<String> = std::fs::read_dir(work.path().join("card"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| n.starts_with("README.md")),
        "{names:?}"
    );
}

#[test]
fn a_server_that_ignores_range_is_read_only_as_far_as_the_header() {
    let local = case("mistral-7b-v0.1");
    let hub = FakeHub::start()
        .model("mistralai/Mistral-7B-v0.1", Model::from_dir(local.path()))
        .ignore_range();
    let remote = inspect_from_hub(&hub, "mistralai/Mistral-7B-v0.1");
    assert_eq!(remote["parameters"]["total"], 7_241_732_096u64);
    // Two shards of 10 GB and 4.5 GB: the client stopped reading after their headers.
    let reported = remote["hub"]["bytes_fetched"].as_u64().unwrap();
    assert!(reported < 2_000_000, "read {reported} bytes");
    assert!(
        hub.served_bytes() < 64 << 20,
        "served {}",
        hub.served_bytes()
    );
}

#[test]
fn a_gguf_on_the_hub_is_read_from_its_header_region() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = [
        cardfill_testkit::gguf::GgufTensor::new("token_embd.weight", &[64, 1000], 0),
        cardfill_testkit::gguf::GgufTensor::new("output.weight", &[64, 1000], 1),
    ];
    use cardfill_testkit::gguf::GgufValue;
    // A vocabulary of 40k tokens: a header region of several chunks.
    let vocab: Vec<String> = (0..40_000).map(|i| format!("token_{i:05}")).collect();
    let meta = [
        ("general.architecture", GgufValue::Str("llama".into())),
        ("general.name", GgufValue::Str("Tiny Llama".into())),
        ("tokenizer.ggml.tokens", GgufValue::StrArray(vocab)),
    ];
    cardfill_testkit::gguf::write_gguf(&dir.path().join("tiny.gguf"), 3, &meta, &tensors)
        .expect("gguf");
    let hub = FakeHub::start().model("org/tiny-gguf", Model::from_dir(dir.path()));
    let remote = inspect_from_hub(&hub, "org/tiny-gguf");
    let local = inspect_json(dir.path());
    assert_eq!(remote["parameters"], local["parameters"]);
    assert_eq!(remote["parameters"]["total"], 128_000u64);
    assert_eq!(remote["model"]["name"], "Tiny Llama");
    assert_eq!(remote["checkpoint"]["format"], "gguf");
}

#[test]
fn pickled_weights_alone_are_listed_and_said_uncounted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}"#,
    )
    .unwrap();
    std::fs::File::create(dir.path().join("pytorch_model.bin"))
        .unwrap()
        .set_len(548_118_077)
        .unwrap();
    let hub = FakeHub::start().model("org/old", Model::from_dir(dir.path()));
    let work = RunDir::new();
    let args = [
        "inspect",
        "--from-hub",
        "org/old",
        "--format",
        "json",
        "--strict",
    ];
    let out = run_against(&hub, None, &args, work.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["hub"]["not_fetched"][0]["bytes"], 548_118_077u64);
    let warning = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "weights-not-fetched")
        .expect("weights-not-fetched");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("`pytorch_model.bin` (522.73 MiB)"),
        "{warning}"
    );
    assert_eq!(json["model"]["architecture"], "GPT2LMHeadModel");
}

#[test]
fn a_gated_model_needs_a_token_and_a_missing_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
    let hub = FakeHub::start()
        .model(
            "org/gated",
            Model {
                gated: true,
                ..Model::from_dir(dir.path())
            },
        )
        .token(TOKEN, Access::Read);
    let work = RunDir::new();
    let args = ["inspect", "--from-hub", "org/gated", "--format", "json"];

    let denied = run_against(&hub, None, &args, work.path());
    assert_eq!(denied.status.code(), Some(2));
    let err: Value = serde_json::from_slice(&denied.stdout).unwrap();
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`org/gated` needs a token (HTTP 401"),
        "{message}"
    );
    assert!(message.contains("HF_TOKEN"), "{message}");

    let allowed = run_against(&hub, Some(TOKEN), &args, work.path());
    let json = json_stdout(&allowed);
    assert_eq!(json["model"]["model_type"], "llama");
    assert!(!stderr(&allowed).contains(TOKEN));
    assert!(!String::from_utf8_lossy(&allowed.stdout).contains(TOKEN));

    let missing = run_against(
        &hub,
        None,
        &["inspect", "--from-hub", "org/nope"],
        work.path(),
    );
    assert_eq!(missing.status.code(), Some(2));
    let line = stderr(&missing);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("no repository `org/nope` (HTTP 404)"),
        "{line}"
    );

    let revision = run_against(
        &hub,
        Some(TOKEN),
        &["inspect", "--from-hub", "org/gated", "--revision", "v9"],
        work.path(),
    );
    assert_eq!(revision.status.code(), Some(2));
    assert!(
        stderr(&revision).contains("no revision `v9`"),
        "{}",
        stderr(&revision)
    );
}

#[test]
fn a_slow_hub_is_a_one_line_timeout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    let hub = FakeHub::start().model(
        "org/slow",
        Model {
            delay: Some(std::time::Duration::from_secs(8)),
            ..Model::from_dir(dir.path())
        },
    );
    let work = RunDir::new();
    let started = std::time::Instant::now();
    let out = run_against(
        &hub,
        None,
        &["inspect", "--from-hub", "org/slow"],
        work.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let line = stderr(&out);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("timed out"), "{line}");
    assert!(
        started.elapsed().as_secs() < 8,
        "waited for the slow answer"
    );
}

#[test]
fn from_hub_refuses_what_is_not_a_model_id_and_offline() {
    let work = RunDir::new();
    let out = work.run(&["fill", "--from-hub", "../etc", "--out", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not a Hub model id"),
        "{}",
        stderr(&out)
    );
    assert!(!work.path().join("x").exists());
    // HF_HUB_OFFLINE=1 (the test default) forbids it: nothing is created.
    let out = work.run(&["fill", "--from-hub", "org/model", "--out", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("HF_HUB_OFFLINE"), "{}", stderr(&out));
    let out = work.run(&["fill", "--out", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_shared_case_counts_the_same_from_the_hub_as_on_disk() {
    for name in [
        "gemma-2b-it",
        "llama2-7b-chat-hf",
        "sd-v1-5-diffusers",
        "peft-lora-tinyllama-trainer-ckpt",
        "trainer-vit-base-riego",
    ] {
        let local = case(name);
        let hub = FakeHub::start().model("org/case", Model::from_dir(local.path()));
        let remote = inspect_from_hub(&hub, "org/case");
        let on_disk = inspect_json(local.path());
        for key in ["parameters", "model", "training", "evaluation"] {
            assert_eq!(remote[key], on_disk[key], "{name}: {key}");
        }
        assert!(remote["model"].is_object(), "{name}: no model facts");
        if name == "gemma-2b-it" {
            assert_eq!(remote["parameters"]["total"], 2_506_172_416u64);
        }
        assert!(
            remote["hub"]["bytes_fetched"].as_u64().unwrap() < 4 << 20,
            "{name}"
        );
    }
}

#[test]
fn a_hostile_listing_writes_nothing_outside_and_the_stand_in_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = FakeHub::start().model(
        "org/hostile",
        Model {
            sha: SHA.into(),
            files: [
                (
                    "config.json".to_owned(),
                    br#"{"model_type": "llama"}"#.to_vec(),
                ),
                ("../evil.json".to_owned(), b"{}".to_vec()),
                ("sub/../../evil2.json".to_owned(), b"{}".to_vec()),
            ]
            .into(),
            ..Model::default()
        },
    );
    let home = tempfile::tempdir().unwrap();
    let out = cardfill()
        .env_remove("HF_HUB_OFFLINE")
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HOME", home.path())
        .env("TMPDIR", tmp.path())
        .args(["inspect", "--from-hub", "org/hostile", "--format", "json"])
        .output()
        .unwrap();
    let json = json_stdout(&out);
    assert_eq!(json["model"]["model_type"], "llama");
    // The temporary stand-in is gone, and nothing was written beside it.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!hub.requests().iter().any(|r| r.path.contains("evil")));
}

#[test]
fn a_hub_readme_that_cannot_be_filled_is_an_error_and_nothing_is_written() {
    let hub = FakeHub::start().model(
        "org/latin1",
        Model {
            sha: SHA.into(),
            files: [("README.md".to_owned(), b"# Mod\xe8le\n".to_vec())].into(),
            ..Model::default()
        },
    );
    let work = RunDir::new();
    let out = run_against(
        &hub,
        None,
        &["fill", "--from-hub", "org/latin1", "--out", "card"],
        work.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("is not UTF-8 text (invalid byte at offset 5)"),
        "{err}"
    );
    assert!(!work.path().join("card").exists());
}
