//! The Hub collector against a fake cache and a Hub on 127.0.0.1.

use std::time::Duration;

use cardfill_facts::{Facts, Source, paths};
use cardfill_hub::{HubOptions, collect};
use cardfill_testkit::fakehub::{FakeCache, FakeHub, Model, SHA};

const BASE_CARD: &str = "---\nlicense: other\nlicense_name: llama3\nlicense_link: LICENSE\nlanguage:\n- en\n- de\npipeline_tag: text-generation\nlibrary_name: transformers\n---\n# Base\n";
const BASE_CONFIG: &str = r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}"#;

fn known(base: &str, arch: &str) -> Facts {
    let mut f = Facts::new();
    f.set(
        paths::MODEL_BASE_MODEL,
        base,
        Source::file("config.json", "_name_or_path"),
    );
    f.set(
        paths::MODEL_ARCHITECTURE,
        arch,
        Source::file("config.json", "architectures[0]"),
    );
    f
}

fn offline(cache: &FakeCache) -> HubOptions {
    HubOptions {
        online: false,
        cache_dir: Some(cache.path()),
        endpoint: Some("https://huggingface.co".into()),
        ..HubOptions::default()
    }
}

fn online(cache: &FakeCache, hub: &FakeHub) -> HubOptions {
    HubOptions {
        online: true,
        cache_dir: Some(cache.path()),
        endpoint: Some(hub.url.clone()),
        timeout: Some(Duration::from_millis(500)),
        ..HubOptions::default()
    }
}

fn codes(f: &Facts) -> Vec<&str> {
    f.warnings().iter().map(|w| w.code.as_str()).collect()
}

#[test]
fn licence_language_and_task_come_from_the_cached_base_card() {
    let cache = FakeCache::new().model(
        "org/base",
        SHA,
        &[("README.md", BASE_CARD), ("config.json", BASE_CONFIG)],
    );
    let out = collect(&known("org/base", "LlamaForCausalLM"), &offline(&cache)).unwrap();
    assert_eq!(out.str(paths::MODEL_LICENSE), Some("other"));
    assert_eq!(out.str(paths::MODEL_LICENSE_NAME), Some("llama3"));
    assert_eq!(
        out.str(paths::MODEL_LICENSE_LINK),
        Some("https://huggingface.co/org/base/blob/main/LICENSE")
    );
    assert_eq!(
        out.value(paths::MODEL_LANGUAGE),
        Some(&serde_json::json!(["en", "de"]))
    );
    assert_eq!(out.str(paths::MODEL_PIPELINE_TAG), Some("text-generation"));
    let source = out.get(paths::MODEL_LICENSE).unwrap().source.to_string();
    assert!(
        source.contains(&format!("models--org--base/snapshots/{SHA}/README.md")),
        "{source}"
    );
    assert!(
        source.contains("`license` of base model org/base"),
        "{source}"
    );
    assert!(out.warnings().is_empty(), "{:?}", out.warnings());
}

#[test]
fn known_values_are_never_replaced() {
    let cache = FakeCache::new().model(
        "org/base",
        SHA,
        &[("README.md", "---\nlicense: mit\nlanguage: fr\n---\n")],
    );
    let mut k = known("org/base", "LlamaForCausalLM");
    k.set(
        paths::MODEL_LICENSE,
        "apache-2.0",
        Source::flag("--license"),
    );
    let out = collect(&k, &offline(&cache)).unwrap();
    assert!(!out.contains(paths::MODEL_LICENSE));
    assert_eq!(out.str(paths::MODEL_LANGUAGE), Some("fr"));
}

#[test]
fn a_different_head_keeps_its_own_task() {
    let cache = FakeCache::new().model(
        "org/base",
        SHA,
        &[("README.md", BASE_CARD), ("config.json", BASE_CONFIG)],
    );
    let out = collect(
        &known("org/base", "LlamaForSequenceClassification"),
        &offline(&cache),
    )
    .unwrap();
    assert_eq!(
        out.str(paths::MODEL_PIPELINE_TAG),
        Some("text-classification")
    );
    assert_eq!(out.str(paths::MODEL_LICENSE), Some("other"));
}

#[test]
fn offline_without_cache_warns_and_asks_nobody() {
    let hub = FakeHub::start().model("org/base", Model::default());
    let cache = FakeCache::new();
    let mut options = online(&cache, &hub);
    options.online = false;
    let out = collect(&known("org/base", "LlamaForCausalLM"), &options).unwrap();
    assert!(!out.contains(paths::MODEL_LICENSE));
    assert_eq!(codes(&out), ["base-model-not-cached"]);
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
}

#[test]
fn online_the_base_card_is_downloaded_and_the_id_confirmed() {
    let hub = FakeHub::start().model(
        "org/base",
        Model {
            sha: SHA.into(),
            files: [
                ("README.md".to_owned(), BASE_CARD.as_bytes().to_vec()),
                ("config.json".to_owned(), BASE_CONFIG.as_bytes().to_vec()),
            ]
            .into(),
            ..Model::default()
        },
    );
    let cache = FakeCache::new();
    let out = collect(
        &known("org/base", "LlamaForCausalLM"),
        &online(&cache, &hub),
    )
    .unwrap();
    assert_eq!(out.str(paths::MODEL_LICENSE), Some("other"));
    assert_eq!(
        out.str(paths::MODEL_LICENSE_LINK),
        Some(format!("{}/org/base/blob/main/LICENSE", hub.url).as_str())
    );
    let source = out.get(paths::MODEL_LICENSE).unwrap().source.to_string();
    assert_eq!(
        source,
        format!(
            "{}/org/base/resolve/main/README.md: `license` of base model org/base",
            hub.url
        )
    );
    let paths_asked: Vec<String> = hub.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        paths_asked
            .iter()
            .any(|p| p.starts_with("/api/models/org/base")),
        "{paths_asked:?}"
    );
    assert!(
        paths_asked
            .iter()
            .any(|p| p == "/org/base/resolve/main/README.md"),
        "{paths_asked:?}"
    );
    // nothing was written into the user's cache
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
}

#[test]
fn online_a_cached_base_is_still_confirmed() {
    let hub = FakeHub::start();
    let cache = FakeCache::new().model("org/gone", SHA, &[("README.md", BASE_CARD)]);
    let out = collect(
        &known("org/gone", "LlamaForCausalLM"),
        &online(&cache, &hub),
    )
    .unwrap();
    assert_eq!(codes(&out), ["base-model-not-on-hub"]);
    assert!(out.warnings()[0].message.contains("org/gone"));
    assert!(!out.contains(paths::MODEL_LICENSE));
}

#[test]
fn a_slow_hub_times_out_into_a_warning() {
    let hub = FakeHub::start().model(
        "org/slow",
        Model {
            sha: SHA.into(),
            files: [("README.md".to_owned(), BASE_CARD.as_bytes().to_vec())].into(),
            delay: Some(Duration::from_secs(5)),
            ..Model::default()
        },
    );
    let cache = FakeCache::new();
    let mut options = online(&cache, &hub);
    options.timeout = Some(Duration::from_millis(200));
    let out = collect(&known("org/slow", "LlamaForCausalLM"), &options).unwrap();
    assert!(!out.contains(paths::MODEL_LICENSE));
    let c = codes(&out);
    assert!(c.contains(&"hub-unreachable"), "{:?}", out.warnings());
    let message = &out.warnings()[0].message;
    assert!(
        message.contains("timed out") || message.contains("timeout"),
        "{message}"
    );
}

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (name, contents) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("create parent");
        std::fs::write(p, contents).expect("write file");
    }
    dir
}

fn infer(known: &Facts, dir: &tempfile::TempDir) -> Facts {
    let cache = FakeCache::new();
    let mut options = offline(&cache);
    options.dir = Some(dir.path().to_path_buf());
    collect(known, &options).expect("collect")
}

#[test]
fn diffusers_and_sentence_transformers_are_recognised_by_their_files() {
    let sd = dir_with(&[(
        "model_index.json",
        r#"{"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.6.0"}"#,
    )]);
    let out = infer(&Facts::new(), &sd);
    assert_eq!(out.str(paths::MODEL_LIBRARY_NAME), Some("diffusers"));
    assert_eq!(out.str(paths::MODEL_PIPELINE_TAG), Some("text-to-image"));

    let st = dir_with(&[
        (
            "modules.json",
            r#"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]"#,
        ),
        ("config.json", r#"{"architectures": ["BertModel"]}"#),
    ]);
    // the config collector saw a transformers config.json; modules.json is more specific
    let mut k = Facts::new();
    k.set(
        paths::MODEL_LIBRARY_NAME,
        "transformers",
        Source::file("config.json", "transformers config"),
    );
    let out = infer(&k, &st);
    assert_eq!(
        out.str(paths::MODEL_LIBRARY_NAME),
        Some("sentence-transformers")
    );
    assert_eq!(
        out.str(paths::MODEL_PIPELINE_TAG),
        Some("sentence-similarity")
    );
}

#[test]
fn a_peft_adapter_is_peft_with_its_task() {
    let dir = dir_with(&[(
        "adapter_config.json",
        r#"{"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "meta-llama/Llama-3.2-3B-Instruct"}"#,
    )]);
    let mut k = Facts::new();
    k.set(
        paths::MODEL_BASE_MODEL,
        "meta-llama/Llama-3.2-3B-Instruct",
        Source::file("adapter_config.json", "base_model_name_or_path"),
    );
    let out = infer(&k, &dir);
    assert_eq!(out.str(paths::MODEL_LIBRARY_NAME), Some("peft"));
    assert_eq!(out.str(paths::MODEL_PIPELINE_TAG), Some("text-generation"));
    assert_eq!(out.str(paths::MODEL_BASE_MODEL_RELATION), Some("adapter"));
}

#[test]
fn a_relation_already_known_is_kept() {
    let dir = dir_with(&[("adapter_config.json", r#"{"task_type": "CAUSAL_LM"}"#)]);
    let mut k = Facts::new();
    k.set(paths::MODEL_BASE_MODEL, "org/base", Source::flag("--x"));
    k.set(
        paths::MODEL_BASE_MODEL_RELATION,
        "quantized",
        Source::flag("--x"),
    );
    let out = infer(&k, &dir);
    assert!(!out.contains(paths::MODEL_BASE_MODEL_RELATION));
}

#[test]
fn a_mergekit_output_lists_its_models() {
    let dir = dir_with(&[
        (
            "mergekit_config.yml",
            "slices:\n  - sources:\n      - model: mistralai/Mistral-7B-v0.1\n        layer_range: [0, 32]\n      - model: HuggingFaceH4/zephyr-7b-beta\n        layer_range: [0, 32]\nmerge_method: slerp\nbase_model: mistralai/Mistral-7B-v0.1\ndtype: bfloat16\n",
        ),
        (
            "config.json",
            r#"{"architectures": ["MistralForCausalLM"]}"#,
        ),
    ]);
    let mut k = Facts::new();
    k.set(
        paths::MODEL_BASE_MODEL,
        "mistralai/Mistral-7B-v0.1",
        Source::file("config.json", "_name_or_path"),
    );
    let out = infer(&k, &dir);
    assert_eq!(
        out.value(paths::MODEL_BASE_MODEL),
        Some(&serde_json::json!([
            "mistralai/Mistral-7B-v0.1",
            "HuggingFaceH4/zephyr-7b-beta"
        ]))
    );
    assert_eq!(out.str(paths::MODEL_BASE_MODEL_RELATION), Some("merge"));
    assert_eq!(out.str(paths::MODEL_LIBRARY_NAME), Some("transformers"));
    assert_eq!(out.str(paths::MODEL_PIPELINE_TAG), Some("text-generation"));
}

#[test]
fn full_weights_trained_from_a_base_are_a_finetune() {
    let dir = dir_with(&[
        (
            "config.json",
            r#"{"architectures": ["ViTForImageClassification"]}"#,
        ),
        ("trainer_state.json", r#"{"global_step": 10}"#),
    ]);
    let mut k = known(
        "google/vit-base-patch16-224-in21k",
        "ViTForImageClassification",
    );
    k.set(
        paths::CHECKPOINT_FORMAT,
        "safetensors",
        Source::file("model.safetensors", "header"),
    );
    let out = infer(&k, &dir);
    assert_eq!(out.str(paths::MODEL_BASE_MODEL_RELATION), Some("finetune"));
    assert_eq!(
        out.str(paths::MODEL_PIPELINE_TAG),
        Some("image-classification")
    );

    // the same weights without trainer outputs: a copy, not clearly a fine-tune
    let copy = dir_with(&[("config.json", r#"{"architectures": ["LlamaForCausalLM"]}"#)]);
    let out = infer(&k, &copy);
    assert!(!out.contains(paths::MODEL_BASE_MODEL_RELATION));
}

#[test]
fn the_snapshot_named_in_name_or_path_is_read_wherever_the_cache_is() {
    // the run used a cache elsewhere; HF_HUB_CACHE now points at an empty one
    let used = FakeCache::new().model("org/base", SHA, &[("README.md", BASE_CARD)]);
    let snapshot = used.repo_dir("org/base").join("snapshots").join(SHA);
    let config = serde_json::json!({
        "_name_or_path": snapshot.display().to_string(),
        "architectures": ["LlamaForCausalLM"],
    });
    let dir = dir_with(&[("config.json", &config.to_string())]);
    let k = known("org/base", "LlamaForCausalLM");
    let out = infer(&k, &dir);
    assert_eq!(out.str(paths::MODEL_LICENSE), Some("other"));
    let source = out
        .get(paths::MODEL_LICENSE)
        .expect("licence")
        .source
        .to_string();
    assert!(
        source.starts_with(&snapshot.join("README.md").display().to_string()),
        "{source}"
    );
    assert!(out.warnings().is_empty(), "{:?}", out.warnings());
}
