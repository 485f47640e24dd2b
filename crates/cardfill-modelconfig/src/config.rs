//! `config.json`: architecture, model type, dimensions, dtype, base model.
//!
//! Each fact comes from the first key that states it, at the top level or, for multimodal
//! models whose language model is nested, in `text_config`. Nothing is defaulted: a key the
//! config lacks is an absent fact.

use std::path::Path;

use cardfill_facts::read::JsonError;
use cardfill_facts::{Facts, Source, Value, paths};
use serde_json::Map;

use crate::{ConfigError, HubId, hub_id};

const FILE: &str = "config.json";

/// Integer facts and the config keys that state them, in order of preference
/// (transformers' names first, then GPT-2, T5/Whisper and other spellings).
const INTEGERS: &[(&str, &[&str])] = &[
    (
        paths::MODEL_HIDDEN_SIZE,
        &["hidden_size", "n_embd", "d_model"],
    ),
    (
        paths::MODEL_NUM_LAYERS,
        &["num_hidden_layers", "n_layer", "num_layers"],
    ),
    (
        paths::MODEL_NUM_ATTENTION_HEADS,
        &["num_attention_heads", "n_head", "num_heads"],
    ),
    (
        paths::MODEL_NUM_KV_HEADS,
        &["num_key_value_heads", "num_kv_heads", "n_head_kv"],
    ),
    (paths::MODEL_HEAD_DIM, &["head_dim"]),
    (
        paths::MODEL_INTERMEDIATE_SIZE,
        &["intermediate_size", "n_inner", "ffn_dim", "d_ff"],
    ),
    (paths::MODEL_VOCAB_SIZE, &["vocab_size"]),
    (
        paths::MODEL_CONTEXT_LENGTH,
        &[
            "max_position_embeddings",
            "n_positions",
            "max_sequence_length",
            "seq_length",
            "n_ctx",
        ],
    ),
    (
        paths::MODEL_NUM_EXPERTS,
        &[
            "num_local_experts",
            "num_experts",
            "n_routed_experts",
            "moe_num_experts",
        ],
    ),
    (
        paths::MODEL_EXPERTS_PER_TOKEN,
        &["num_experts_per_tok", "moe_top_k"],
    ),
];

/// Collects the facts of `config.json` in `dir`; none when there is no such file.
pub fn collect(dir: &Path) -> Result<Facts, ConfigError> {
    let path = dir.join(FILE);
    let config = match cardfill_facts::read::json(&path, cardfill_facts::read::CONFIG_CAP) {
        Ok(config) => config,
        Err(JsonError::Read(e)) if e.is_not_found() => return Ok(Facts::new()),
        Err(JsonError::Read(e)) => {
            return Err(ConfigError::Read {
                path,
                source: e.into(),
            });
        }
        Err(JsonError::Malformed(e)) => {
            return Err(ConfigError::Malformed {
                path,
                message: e.to_string(),
            });
        }
    };
    let Value::Object(config) = &*config else {
        return Err(ConfigError::Malformed {
            path,
            message: "not a JSON object".into(),
        });
    };
    Ok(facts_of(config, &path))
}

/// The facts a parsed `config.json` states; `path` is only used in warnings.
fn facts_of(config: &Map<String, Value>, path: &Path) -> Facts {
    let mut facts = Facts::new();
    let text_config = config.get("text_config").and_then(Value::as_object);

    if let Some(arch) = config
        .get("architectures")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
    {
        facts.set(
            paths::MODEL_ARCHITECTURE,
            arch,
            Source::file(FILE, "architectures[0]"),
        );
    }
    if let Some(model_type) = config.get("model_type").and_then(Value::as_str) {
        facts.set(
            paths::MODEL_MODEL_TYPE,
            model_type,
            Source::file(FILE, "model_type"),
        );
    }
    for key in ["torch_dtype", "dtype"] {
        if let Some((dtype, from)) = lookup(config, text_config, key, Value::as_str) {
            facts.set(paths::MODEL_DTYPE, dtype, Source::file(FILE, from));
            break;
        }
    }
    for (fact, keys) in INTEGERS {
        if let Some((n, from)) = keys
            .iter()
            .find_map(|key| lookup(config, text_config, key, Value::as_u64))
        {
            facts.set(fact, n, Source::file(FILE, from));
        }
    }
    if let Some((tied, from)) = lookup(config, text_config, "tie_word_embeddings", Value::as_bool) {
        facts.set(paths::MODEL_TIED_EMBEDDINGS, tied, Source::file(FILE, from));
    }
    base_model(config, path, &mut facts);
    if is_transformers(config) {
        facts.set(
            paths::MODEL_LIBRARY_NAME,
            "transformers",
            Source::file(
                FILE,
                "transformers config (architectures, transformers_version)",
            ),
        );
    }
    facts
}

/// `key` at the top level, else in `text_config`, read by `read`; with the key's dotted name.
fn lookup<'a, T>(
    config: &'a Map<String, Value>,
    text_config: Option<&'a Map<String, Value>>,
    key: &str,
    read: impl Fn(&'a Value) -> Option<T>,
) -> Option<(T, String)> {
    if let Some(v) = config.get(key).and_then(&read) {
        return Some((v, key.to_owned()));
    }
    let v = text_config?.get(key).and_then(&read)?;
    Some((v, format!("text_config.{key}")))
}

/// `_name_or_path` as `model.base_model` when it is a Hub id or a cache path naming one; a
/// local path is dropped with a warning (the Hub rejects a card whose base model is a path).
fn base_model(config: &Map<String, Value>, path: &Path, facts: &mut Facts) {
    let Some(name) = config
        .get("_name_or_path")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return;
    };
    match hub_id(name) {
        HubId::Id(id) => facts.set(
            paths::MODEL_BASE_MODEL,
            id,
            Source::file(FILE, "_name_or_path"),
        ),
        HubId::FromCache(id) => facts.set(
            paths::MODEL_BASE_MODEL,
            id,
            Source::file(FILE, "_name_or_path (Hugging Face cache path)"),
        ),
        HubId::LocalPath => facts.warn(
            "base-model-local-path",
            format!(
                "`{}`: _name_or_path `{name}` is a local path, not a Hub id: base_model left unset (pass the Hub id if there is one)",
                path.display()
            ),
        ),
    }
}

/// Whether the config was written by transformers (diffusers configs have `_class_name`).
fn is_transformers(config: &Map<String, Value>) -> bool {
    let diffusers = config.contains_key("_diffusers_version") || config.contains_key("_class_name");
    !diffusers
        && (config.contains_key("transformers_version") || config.contains_key("architectures"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(json: &str) -> Facts {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), json).unwrap();
        collect(dir.path()).unwrap()
    }

    fn case(name: &str) -> Facts {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/cases")
            .join(name);
        collect(&dir).unwrap()
    }

    #[test]
    fn gemma_states_its_dimensions_and_no_base_model() {
        let f = case("gemma-2b-it");
        assert_eq!(f.str(paths::MODEL_ARCHITECTURE), Some("GemmaForCausalLM"));
        assert_eq!(f.str(paths::MODEL_MODEL_TYPE), Some("gemma"));
        assert_eq!(f.str(paths::MODEL_DTYPE), Some("bfloat16"));
        assert_eq!(f.u64(paths::MODEL_HIDDEN_SIZE), Some(2048));
        assert_eq!(f.u64(paths::MODEL_NUM_LAYERS), Some(18));
        assert_eq!(f.u64(paths::MODEL_NUM_ATTENTION_HEADS), Some(8));
        assert_eq!(f.u64(paths::MODEL_NUM_KV_HEADS), Some(1));
        assert_eq!(f.u64(paths::MODEL_HEAD_DIM), Some(256));
        assert_eq!(f.u64(paths::MODEL_INTERMEDIATE_SIZE), Some(16384));
        assert_eq!(f.u64(paths::MODEL_VOCAB_SIZE), Some(256000));
        assert_eq!(f.u64(paths::MODEL_CONTEXT_LENGTH), Some(8192));
        // Not stated in the config: absent, not guessed.
        assert!(!f.contains(paths::MODEL_TIED_EMBEDDINGS));
        assert!(!f.contains(paths::MODEL_BASE_MODEL));
        assert!(!f.contains(paths::MODEL_NUM_EXPERTS));
        assert_eq!(f.str(paths::MODEL_LIBRARY_NAME), Some("transformers"));
        assert!(f.warnings().is_empty());
        assert_eq!(
            f.get(paths::MODEL_HEAD_DIM).unwrap().source.to_string(),
            "config.json: head_dim"
        );
    }

    #[test]
    fn llama_and_vit_base_models_are_hub_ids() {
        let f = case("llama2-7b-chat-hf");
        assert_eq!(
            f.str(paths::MODEL_BASE_MODEL),
            Some("meta-llama/Llama-2-7b-chat-hf")
        );
        assert_eq!(f.bool(paths::MODEL_TIED_EMBEDDINGS), Some(false));
        assert_eq!(f.u64(paths::MODEL_NUM_KV_HEADS), Some(32));
        let f = case("trainer-vit-base-riego");
        assert_eq!(
            f.str(paths::MODEL_BASE_MODEL),
            Some("google/vit-base-patch16-224-in21k")
        );
        assert_eq!(f.str(paths::MODEL_DTYPE), Some("float32"));
        let f = case("mistral-7b-v0.1");
        assert!(!f.contains(paths::MODEL_BASE_MODEL));
        assert!(f.warnings().is_empty());
    }

    #[test]
    fn whisper_spells_dimensions_its_own_way() {
        let f = case("trainer-whisper-tiny-nob");
        assert_eq!(
            f.str(paths::MODEL_ARCHITECTURE),
            Some("WhisperForConditionalGeneration")
        );
        assert_eq!(f.u64(paths::MODEL_HIDDEN_SIZE), Some(384));
        assert_eq!(
            f.get(paths::MODEL_HIDDEN_SIZE).unwrap().source.to_string(),
            "config.json: d_model"
        );
    }

    #[test]
    fn local_paths_are_dropped_with_a_warning_and_cache_paths_mapped() {
        let f =
            facts(r#"{"_name_or_path": "/scratch/run7/checkpoint-900", "model_type": "llama"}"#);
        assert!(!f.contains(paths::MODEL_BASE_MODEL));
        assert_eq!(f.warnings().len(), 1);
        assert_eq!(f.warnings()[0].code, "base-model-local-path");
        assert!(
            f.warnings()[0]
                .message
                .contains("`/scratch/run7/checkpoint-900`")
        );

        let f = facts(
            r#"{"_name_or_path": "/root/.cache/huggingface/hub/models--Qwen--Qwen2-0.5B/snapshots/91d2"}"#,
        );
        assert_eq!(f.str(paths::MODEL_BASE_MODEL), Some("Qwen/Qwen2-0.5B"));
        assert!(f.warnings().is_empty());

        let f = facts(r#"{"_name_or_path": null}"#);
        assert!(!f.contains(paths::MODEL_BASE_MODEL));
        assert!(f.warnings().is_empty());
    }

    #[test]
    fn text_config_fills_what_the_top_level_lacks() {
        let f = facts(
            r#"{"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
                "vocab_size": 32064, "dtype": "float16",
                "text_config": {"hidden_size": 4096, "num_hidden_layers": 32, "vocab_size": 1,
                                "num_local_experts": 8, "num_experts_per_tok": 2,
                                "tie_word_embeddings": true}}"#,
        );
        assert_eq!(f.u64(paths::MODEL_VOCAB_SIZE), Some(32064));
        assert_eq!(f.u64(paths::MODEL_HIDDEN_SIZE), Some(4096));
        assert_eq!(f.u64(paths::MODEL_NUM_EXPERTS), Some(8));
        assert_eq!(f.u64(paths::MODEL_EXPERTS_PER_TOKEN), Some(2));
        assert_eq!(f.bool(paths::MODEL_TIED_EMBEDDINGS), Some(true));
        assert_eq!(f.str(paths::MODEL_DTYPE), Some("float16"));
        assert_eq!(
            f.get(paths::MODEL_NUM_LAYERS).unwrap().source.to_string(),
            "config.json: text_config.num_hidden_layers"
        );
    }

    #[test]
    fn diffusers_configs_are_not_transformers() {
        let f = facts(r#"{"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.6.0"}"#);
        assert!(!f.contains(paths::MODEL_LIBRARY_NAME));
    }

    #[test]
    fn malformed_or_missing_config() {
        let dir = tempfile::tempdir().unwrap();
        assert!(collect(dir.path()).unwrap().is_empty());
        std::fs::write(dir.path().join(FILE), "{\"a\": ").unwrap();
        let err = collect(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("config.json` is not valid: EOF while parsing"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }
}
