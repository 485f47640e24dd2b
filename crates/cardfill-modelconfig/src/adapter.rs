//! `adapter_config.json` (PEFT): adapter type, rank, alpha, target modules, task, base model.
//!
//! The base model goes through the Hub-id rule ([`crate::hub_id`]): a local path or a null
//! `base_model_name_or_path` is a warning, never a `model.base_model`.

use std::path::Path;

use cardfill_facts::{Facts, Source, Value, paths};
use serde_json::{Map, json};

use crate::{ConfigError, HubId, hub_id};

const FILE: &str = "adapter_config.json";

/// Collects the facts of `adapter_config.json` in `dir`, if present.
pub fn collect(dir: &Path) -> Result<Facts, ConfigError> {
    let mut facts = Facts::new();
    let path = dir.join(FILE);
    let text = match cardfill_facts::read::read_to_string(&path, cardfill_facts::read::CONFIG_CAP) {
        Ok(text) => text,
        Err(e) if e.is_not_found() => return Ok(facts),
        Err(e) => {
            return Err(ConfigError::Read {
                path: FILE.into(),
                source: e.into(),
            });
        }
    };
    let config: Value = serde_json::from_str(&text).map_err(|e| ConfigError::Malformed {
        path: FILE.into(),
        message: e.to_string(),
    })?;
    let Some(obj) = config.as_object() else {
        return Err(ConfigError::Malformed {
            path: FILE.into(),
            message: "not a JSON object".into(),
        });
    };

    let mut adapter = Map::new();
    let fields = [
        ("type", "peft_type"),
        ("r", "r"),
        ("alpha", "lora_alpha"),
        ("target_modules", "target_modules"),
        ("task_type", "task_type"),
        ("dropout", "lora_dropout"),
        ("use_dora", "use_dora"),
        ("use_rslora", "use_rslora"),
        ("modules_to_save", "modules_to_save"),
    ];
    for (name, key) in fields {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => {
                adapter.insert(name.into(), v.clone());
            }
        }
    }
    // A regex string for target_modules stays a string; a list stays a list.
    if !adapter.is_empty() {
        facts.set(
            paths::MODEL_ADAPTER,
            Value::Object(adapter),
            Source::file(FILE, "peft_type, r, lora_alpha, target_modules, task_type"),
        );
    }
    facts.set(
        paths::MODEL_BASE_MODEL_RELATION,
        "adapter",
        Source::file(FILE, "a PEFT adapter config"),
    );
    facts.set(
        paths::MODEL_LIBRARY_NAME,
        "peft",
        Source::file(FILE, "a PEFT adapter config"),
    );
    match obj.get("base_model_name_or_path").and_then(Value::as_str) {
        None => facts.warn(
            "base-model-unknown",
            format!("`{FILE}`: `base_model_name_or_path` is empty; pass the base model's Hub id to name it"),
        ),
        Some(value) => match hub_id(value) {
            HubId::Id(id) => facts.set(
                paths::MODEL_BASE_MODEL,
                json!(id),
                Source::file(FILE, "base_model_name_or_path"),
            ),
            HubId::FromCache(id) => facts.set(
                paths::MODEL_BASE_MODEL,
                json!(id),
                Source::file(FILE, "base_model_name_or_path (Hugging Face cache path)"),
            ),
            HubId::LocalPath => facts.warn(
                "base-model-local-path",
                format!(
                    "`{FILE}`: base_model_name_or_path `{value}` is a local path, not a Hub id; not used as base_model"
                ),
            ),
        },
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/cases")
            .join(name)
    }

    #[test]
    fn llamafactory_adapter() {
        let f = collect(&case("peft-default-card-llamafactory-ckpt900")).unwrap();
        assert_eq!(
            f.str(paths::MODEL_BASE_MODEL),
            Some("meta-llama/Llama-3.2-3B-Instruct")
        );
        assert_eq!(f.str(paths::MODEL_BASE_MODEL_RELATION), Some("adapter"));
        let a = f.value(paths::MODEL_ADAPTER).unwrap();
        assert_eq!(a["type"], "LORA");
        assert_eq!(a["r"], 8);
        assert_eq!(a["alpha"], 16);
        assert_eq!(a["target_modules"].as_array().unwrap().len(), 7);
        assert_eq!(a["task_type"], "CAUSAL_LM");
        assert!(f.warnings().is_empty());
    }

    #[test]
    fn null_base_model_is_a_warning_not_a_guess() {
        let f = collect(&case("peft-lora-tinyllama-trainer-ckpt")).unwrap();
        assert!(!f.contains(paths::MODEL_BASE_MODEL));
        assert_eq!(f.value(paths::MODEL_ADAPTER).unwrap()["alpha"], 32);
        assert_eq!(f.warnings()[0].code, "base-model-unknown");
    }

    #[test]
    fn local_and_cache_paths() {
        let dir = tempfile::tempdir().unwrap();
        let write = |v: &str| {
            std::fs::write(
                dir.path().join(FILE),
                json!({"peft_type": "LORA", "base_model_name_or_path": v}).to_string(),
            )
            .unwrap()
        };
        write("/data/models/llama");
        let f = collect(dir.path()).unwrap();
        assert!(!f.contains(paths::MODEL_BASE_MODEL));
        assert_eq!(f.warnings()[0].code, "base-model-local-path");
        write("/home/u/.cache/huggingface/hub/models--Qwen--Qwen2-7B/snapshots/abc");
        let f = collect(dir.path()).unwrap();
        assert_eq!(f.str(paths::MODEL_BASE_MODEL), Some("Qwen/Qwen2-7B"));
        std::fs::write(dir.path().join(FILE), "{not json").unwrap();
        let e = collect(dir.path()).unwrap_err().to_string();
        assert!(e.starts_with("`adapter_config.json` is not valid"), "{e}");
    }
}
