//! The base model from the Hub cache and a Hub on 127.0.0.1; `cardfill validate`.
//!
//! The fake Hub and cache are the test kit's (`cardfill_testkit::fakehub`).

use cardfill_testkit::fakehub::{FakeCache, FakeHub, Model, SHA};
use serde_json::Value;

use crate::util::{RunDir, cardfill, fixtures, json_stdout, stderr, stdout};

const TOKEN: &str = "hf_TESTsecretTOKENvalue0123456789";

/// The card of google/vit-base-patch16-224-in21k as the cache holds it (front matter of the
/// real card).
const VIT_CARD: &str = "---\nlicense: apache-2.0\ntags:\n- vision\ndatasets:\n- imagenet-21k\ninference: false\n---\n\n# Vision Transformer (base-sized model)\n";
const LLAMA3_CARD: &str = "---\nlanguage:\n- en\npipeline_tag: text-generation\nlicense: other\nlicense_name: llama3\nlicense_link: LICENSE\n---\n# Meta Llama 3\n";

fn vit_run() -> RunDir {
    let case = fixtures().join("cases/trainer-vit-base-riego");
    let config = std::fs::read(case.join("config.json")).expect("case config");
    let state = std::fs::read(case.join("trainer_state.json")).expect("case trainer state");
    let run = RunDir::new()
        .file("config.json", config)
        .file("trainer_state.json", state);
    // full weights (one real tensor is enough to make them weights)
    let head = cardfill_testkit::TensorSpec::new("classifier.weight", "F32", &[2, 768]);
    cardfill_testkit::write_safetensors(&run.path().join("model.safetensors"), &[head])
        .expect("write weights");
    run
}

#[test]
fn a_fine_tune_inherits_its_licence_from_the_cached_base_model_offline() {
    let cache = FakeCache::new().model(
        "google/vit-base-patch16-224-in21k",
        SHA,
        &[
            ("README.md", VIT_CARD),
            ("config.json", r#"{"architectures": ["ViTModel"]}"#),
        ],
    );
    let run = vit_run();
    let out = cardfill()
        .args(["inspect", "--format", "json"])
        .arg(run.path())
        .env("HF_HUB_CACHE", cache.path())
        .output()
        .expect("run cardfill");
    let json = json_stdout(&out);
    assert_eq!(
        json["model"]["base_model"],
        "google/vit-base-patch16-224-in21k"
    );
    assert_eq!(json["model"]["license"], "apache-2.0");
    assert_eq!(json["model"]["pipeline_tag"], "image-classification");
    assert_eq!(json["model"]["library_name"], "transformers");
    assert_eq!(json["model"]["base_model_relation"], "finetune");
    let source = json["sources"]["model.license"]
        .as_str()
        .unwrap_or_default();
    assert!(
        source.contains(&format!(
            "models--google--vit-base-patch16-224-in21k/snapshots/{SHA}/README.md"
        )),
        "{source}"
    );
}

#[test]
fn an_other_licence_comes_with_its_name_and_a_link_to_the_base_repo() {
    let cache = FakeCache::new().model(
        "meta-llama/Meta-Llama-3-8B",
        SHA,
        &[("README.md", LLAMA3_CARD)],
    );
    let run = RunDir::new().file(
        "config.json",
        r#"{"_name_or_path": "meta-llama/Meta-Llama-3-8B", "architectures": ["LlamaForCausalLM"], "model_type": "llama"}"#,
    );
    let out = cardfill()
        .args(["inspect", "--format", "json"])
        .arg(run.path())
        .env("HF_HOME", cache.home())
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env_remove("HF_ENDPOINT")
        .output()
        .expect("run cardfill");
    let json = json_stdout(&out);
    assert_eq!(json["model"]["license"], "other");
    assert_eq!(json["model"]["license_name"], "llama3");
    assert_eq!(
        json["model"]["license_link"],
        "https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/LICENSE"
    );
    assert_eq!(json["model"]["language"], serde_json::json!(["en"]));
}

#[test]
fn hf_hub_offline_forbids_the_network_even_with_online() {
    let hub = FakeHub::start();
    let run = RunDir::new().file(
        "config.json",
        r#"{"_name_or_path": "org/base", "architectures": ["LlamaForCausalLM"]}"#,
    );
    let cache = FakeCache::new();
    let out = cardfill()
        .args(["inspect", "--online", "--format", "json"])
        .arg(run.path())
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HUB_CACHE", cache.path())
        .output()
        .expect("run cardfill");
    json_stdout(&out);
    let card = run.path().join("README.md");
    std::fs::write(&card, "---\nlicense: mit\n---\n").expect("card");
    let out = cardfill()
        .args(["validate", "--online"])
        .arg(&card)
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_ENDPOINT", &hub.url)
        .output()
        .expect("run cardfill");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("HF_HUB_OFFLINE"), "{}", stderr(&out));
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
}

#[test]
fn online_a_base_model_missing_from_the_hub_is_reported() {
    let hub = FakeHub::start();
    let run = RunDir::new().file(
        "config.json",
        r#"{"_name_or_path": "org/does-not-exist", "architectures": ["LlamaForCausalLM"]}"#,
    );
    let cache = FakeCache::new();
    let out = cardfill()
        .args(["inspect", "--online", "--format", "json"])
        .arg(run.path())
        .env_remove("HF_HUB_OFFLINE")
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HUB_CACHE", cache.path())
        .output()
        .expect("run cardfill");
    let json = json_stdout(&out);
    let warnings = json["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w["code"] == "base-model-not-on-hub"
            && w["message"]
                .as_str()
                .unwrap_or("")
                .contains("org/does-not-exist")),
        "{warnings:?}"
    );
    assert!(json["model"].get("license").is_none());
}

#[test]
fn online_the_base_card_comes_from_the_hub() {
    let hub = FakeHub::start().model(
        "org/base",
        Model {
            sha: SHA.into(),
            files: [("README.md".to_owned(), LLAMA3_CARD.as_bytes().to_vec())].into(),
            ..Model::default()
        },
    );
    let run = RunDir::new().file(
        "config.json",
        r#"{"_name_or_path": "org/base", "architectures": ["LlamaForCausalLM"]}"#,
    );
    let cache = FakeCache::new();
    let out = cardfill()
        .args(["inspect", "--online", "--format", "json"])
        .arg(run.path())
        .env_remove("HF_HUB_OFFLINE")
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HUB_CACHE", cache.path())
        .env("HF_TOKEN", TOKEN)
        .output()
        .expect("run cardfill");
    let json = json_stdout(&out);
    assert_eq!(json["model"]["license"], "other");
    assert_eq!(
        json["sources"]["model.license"],
        format!(
            "{}/org/base/resolve/main/README.md: `license` of base model org/base",
            hub.url
        )
    );
    let auth: Vec<_> = hub
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert!(
        !auth.is_empty() && auth.iter().all(|a| a == &format!("Bearer {TOKEN}")),
        "{auth:?}"
    );
    assert!(!stdout(&out).contains(TOKEN));
}

#[test]
fn the_token_never_appears_in_output_even_when_the_hub_echoes_it() {
    let hub = FakeHub::start().echo_auth().validate(
        400,
        r#"{"errors": [{"message": "\"license\" rejected for AUTH"}], "warnings": [{"message": "seen AUTH"}]}"#,
    );
    let run = RunDir::new()
        .file(
            "config.json",
            r#"{"_name_or_path": "org/missing", "architectures": ["LlamaForCausalLM"]}"#,
        )
        .file("README.md", "---\nlicense: mit\n---\n# x\n");
    let cache = FakeCache::new();
    let mut all = String::new();
    for args in [
        vec!["inspect", "--online"],
        vec!["inspect", "--online", "--format", "json"],
    ] {
        let out = cardfill()
            .args(&args)
            .arg(run.path())
            .env_remove("HF_HUB_OFFLINE")
            .env("HF_ENDPOINT", &hub.url)
            .env("HF_HUB_CACHE", cache.path())
            .env("HF_TOKEN", TOKEN)
            .output()
            .expect("run cardfill");
        all.push_str(&stdout(&out));
        all.push_str(&stderr(&out));
    }
    let out = cardfill()
        .args(["validate", "--online"])
        .arg(run.path().join("README.md"))
        .env_remove("HF_HUB_OFFLINE")
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_TOKEN", TOKEN)
        .output()
        .expect("run cardfill");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    all.push_str(&stdout(&out));
    all.push_str(&stderr(&out));
    // the echoes reached the output, redacted
    assert!(all.contains("Bearer ***"), "{all}");
    assert!(!all.contains(TOKEN), "{all}");
    assert!(
        hub.requests()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );
}

// ---- validate ----

/// Runs `cardfill validate` on `card` written to README.md.
fn validate(card: &str) -> (Option<i32>, String) {
    let run = RunDir::new().file("README.md", card);
    let out = run.run(&["validate", "README.md"]);
    (out.status.code(), stdout(&out) + &stderr(&out))
}

/// Asserts that `card` is rejected, with a line naming `key` and containing `fix`.
fn rejected(card: &str, key: &str, fix: &str) {
    let (code, text) = validate(card);
    assert_eq!(code, Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains(&format!("error: {key}:")))
        .unwrap_or_else(|| panic!("no error for `{key}` in:\n{text}"));
    assert!(line.starts_with("README.md:"), "{line}");
    assert!(line.contains(fix), "`{fix}` not in: {line}");
}

#[test]
fn the_shared_hub_cards_are_valid() {
    for entry in std::fs::read_dir(fixtures().join("cases/hub-readmes")).expect("cases") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        let out = cardfill().arg("validate").arg(&path).output().expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}{}",
            path.display(),
            stdout(&out),
            stderr(&out)
        );
    }
}

#[test]
fn a_licence_that_is_not_a_hub_id_is_rejected() {
    rejected(
        "---\nlicense: Apache 2.0\n---\n# x\n",
        "license",
        "apache-2.0",
    );
    rejected("---\nlicense: MIT\n---\n", "license", "use `mit`");
}

#[test]
fn a_licence_name_or_link_without_other_is_rejected() {
    rejected(
        "---\nlicense: apache-2.0\nlicense_link: LICENSE\n---\n",
        "license_link",
        "license: other",
    );
    rejected(
        "---\nlicense_name: llama3\n---\n",
        "license_name",
        "license: other",
    );
}

#[test]
fn other_without_name_and_link_is_a_warning() {
    let (code, text) = validate("---\nlicense: other\n---\n");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("warning: license_name:"), "{text}");
    assert!(text.contains("warning: license_link:"), "{text}");
}

#[test]
fn a_pipeline_tag_the_hub_does_not_know_is_rejected() {
    rejected(
        "---\npipeline_tag: text2text-generation\n---\n",
        "pipeline_tag",
        "remove the key",
    );
    rejected(
        "---\npipeline_tag: Text_Generation\n---\n",
        "pipeline_tag",
        "use `text-generation`",
    );
}

#[test]
fn language_values_rejected_in_practice_are_rejected() {
    // the values espnet_model_zoo #102 shows the Hub refusing
    rejected("---\nlanguage: noinfo\n---\n", "language", "ISO 639");
    rejected(
        "---\nlanguage:\n- es-ES\n---\n",
        "language[0]",
        "use the ISO 639 code `es`",
    );
    rejected(
        "---\nlanguage: zh-CN\n---\n",
        "language",
        "use the ISO 639 code `zh`",
    );
    rejected("---\nlanguage: en_unnorm\n---\n", "language", "`en`");
    rejected(
        "---\nlanguage:\n---\n",
        "language",
        "give it a value or remove the key",
    );
}

#[test]
fn a_local_path_as_base_model_is_rejected() {
    // what PEFT writes when the base was loaded from disk (peft #2124)
    rejected(
        "---\nbase_model: /root/autodl-tmp/models/Llama-3-8B\nlibrary_name: peft\n---\n",
        "base_model",
        "Hub id",
    );
    rejected(
        "---\nbase_model:\n- ./output/checkpoint-500\n---\n",
        "base_model[0]",
        "Hub id",
    );
}

#[test]
fn a_local_path_in_datasets_is_rejected() {
    // autotrain-advanced #648
    rejected(
        "---\ndatasets:\n- /var/hf/images/\n---\n",
        "datasets[0]",
        "Hub id",
    );
}

#[test]
fn a_null_dataset_is_rejected() {
    rejected(
        "---\ndatasets:\n- null\n---\n",
        "datasets[0]",
        "remove the entry",
    );
}

#[test]
fn co2_with_units_in_the_value_is_rejected() {
    // distilgpt2 before its fix
    rejected(
        "---\nco2_eq_emissions: 149200 g\n---\n",
        "co2_eq_emissions",
        "`149200`",
    );
    rejected(
        "---\nco2_eq_emissions:\n  emissions: 0.15 kg\n  source: codecarbon\n---\n",
        "co2_eq_emissions.emissions",
        "grams",
    );
    rejected(
        "---\nco2_eq_emissions:\n  source: codecarbon\n---\n",
        "co2_eq_emissions.emissions",
        "add `emissions:`",
    );
}

#[test]
fn model_index_without_required_fields_is_rejected() {
    let card = "---\nmodel-index:\n- name: m\n  results:\n  - task:\n      name: Text Classification\n    metrics:\n    - name: Accuracy\n      value: 0.9\n---\n";
    rejected(card, "model-index[0].results[0].task.type", "add it");
    rejected(card, "model-index[0].results[0].dataset", "add it");
    rejected(card, "model-index[0].results[0].metrics[0].type", "add it");
}

#[test]
fn model_index_config_that_is_not_a_string_is_rejected() {
    let card = "---\nmodel-index:\n- name: m\n  results:\n  - task:\n      type: text-classification\n    dataset:\n      type: glue\n      name: GLUE\n      config: 2021\n    metrics:\n    - type: accuracy\n      value: 0.9\n---\n";
    rejected(card, "model-index[0].results[0].dataset.config", "quote it");
}

#[test]
fn model_index_source_needs_a_url() {
    let card = "---\nmodel-index:\n- name: m\n  results:\n  - task:\n      type: text-classification\n    dataset:\n      type: glue\n      name: GLUE\n    metrics:\n    - type: accuracy\n      value: 0.9\n    source:\n      name: Open LLM Leaderboard\n---\n";
    rejected(card, "model-index[0].results[0].source.url", "add it");
}

#[test]
fn a_widget_that_is_not_a_list_is_rejected() {
    rejected(
        "---\nwidget:\n  text: I love AutoTrain\n---\n",
        "widget",
        "list entry",
    );
}

#[test]
fn an_empty_key_is_rejected() {
    rejected(
        "---\nlicense:\ntags:\n- a\n---\n",
        "license",
        "remove the key",
    );
}

#[test]
fn metadata_that_is_not_a_mapping_is_rejected() {
    rejected(
        "---\n- license: mit\n---\n",
        "metadata",
        "`key: value` lines",
    );
    rejected("---\njust text\n---\n", "metadata", "`key: value` lines");
}

#[test]
fn yaml_that_does_not_parse_is_rejected() {
    rejected(
        "---\nlicense: [mit\n---\n",
        "metadata",
        "fix the YAML syntax",
    );
}

#[test]
fn front_matter_the_hub_does_not_see_is_a_warning() {
    for (card, why) in [
        ("--- \nlicense: mit\n---\n", "trailing spaces"),
        ("\u{feff}---\nlicense: mit\n---\n", "byte order mark"),
        ("---\n---\nlicense: mit\n", "an empty line"),
        ("---\nlicense: mit\n", "not closed"),
        ("# Model\n\nNo metadata.\n", "no metadata block"),
    ] {
        let (code, text) = validate(card);
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("warning: metadata:"), "{text}");
        assert!(text.contains(why), "`{why}` not in {text}");
    }
}

#[test]
fn an_unreadable_card_exits_2() {
    let run = RunDir::new();
    let out = run.run(&["validate", "missing.md"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.md"), "{}", stderr(&out));
}

#[test]
fn online_the_hubs_errors_and_warnings_are_shown() {
    let hub = FakeHub::start().validate(
        400,
        r#"{"errors": [{"message": "\"model-index[0].results[0].dataset.config\" must be a string"}], "warnings": [{"message": "empty or missing yaml metadata"}]}"#,
    );
    let run = RunDir::new().file("README.md", "---\nlicense: mit\n---\n");
    let out = cardfill()
        .args(["validate", "--online", "README.md"])
        .current_dir(run.path())
        .env_remove("HF_HUB_OFFLINE")
        .env("HF_ENDPOINT", &hub.url)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "error: the Hub says: \"model-index[0].results[0].dataset.config\" must be a string"
        ),
        "{text}"
    );
    assert!(
        text.contains("warning: the Hub says: empty or missing yaml metadata"),
        "{text}"
    );
    let requests = hub.requests();
    assert_eq!(requests.len(), 1);
    let body: Value = serde_json::from_str(&requests[0].body).expect("JSON body");
    assert_eq!(body["content"], "---\nlicense: mit\n---\n");
    assert_eq!(body["repoType"], "model");
}

#[test]
fn online_a_valid_card_passes() {
    let hub = FakeHub::start().validate(200, r#"{"warnings": []}"#);
    let run = RunDir::new().file("README.md", "---\nlicense: mit\n---\n");
    let out = cardfill()
        .args(["validate", "--online", "README.md"])
        .current_dir(run.path())
        .env_remove("HF_HUB_OFFLINE")
        .env("HF_ENDPOINT", &hub.url)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(hub.requests().len(), 1);
}

#[test]
fn fill_writes_metadata_the_hub_accepts_for_every_shared_case() {
    let cases = fixtures().join("cases");
    let mut names: Vec<String> = std::fs::read_dir(&cases)
        .expect("cases")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let run = RunDir::new();
        cardfill_testkit::materialize_case(&name, run.path()).expect("materialize case");
        let cache = FakeCache::new();
        let out = cardfill()
            .args(["fill", "--dry-run"])
            .arg(run.path())
            .env("HF_HUB_CACHE", cache.path())
            .output()
            .expect("run fill");
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let card = run.path().join("filled.md");
        std::fs::write(&card, &out.stdout).expect("write filled card");
        let check = cardfill()
            .arg("validate")
            .arg(&card)
            .output()
            .expect("run validate");
        assert_eq!(
            check.status.code(),
            Some(0),
            "{name}: {}{}",
            stdout(&check),
            stderr(&check)
        );
    }
}

#[test]
fn the_token_file_of_hf_home_is_used_when_hf_token_is_unset() {
    let hub = FakeHub::start().validate(200, r#"{"warnings": []}"#);
    let cache = FakeCache::new();
    std::fs::write(cache.home().join("token"), format!("{TOKEN}\n")).expect("token file");
    let run = RunDir::new().file("README.md", "---\nlicense: mit\n---\n");
    let out = cardfill()
        .args(["validate", "--online", "README.md"])
        .current_dir(run.path())
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN")
        .env_remove("HF_TOKEN_PATH")
        .env("HF_HOME", cache.home())
        .env("HF_ENDPOINT", &hub.url)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let auth = hub.requests()[0].header("authorization").map(str::to_owned);
    assert_eq!(auth, Some(format!("Bearer {TOKEN}")));
    assert!(!(stdout(&out) + &stderr(&out)).contains(TOKEN));
}
