//! The front matter of the card already in the directory (`README.md`, often the Trainer's or
//! PEFT's own card): its `base_model` when no config names one (transformers ≥ 4.57 saves no
//! `_name_or_path`), and its `datasets`. Hub ids only; a local path is never used.

use std::path::Path;

use cardfill_facts::{Facts, Source, Value, paths};

use crate::{ConfigError, HubId, hub_id};

const FILE: &str = "README.md";
const MAX_BYTES: u64 = 1 << 20;

/// Reads `base_model` and `datasets` from the front matter of `dir/README.md`.
pub fn collect(dir: &Path) -> Result<Facts, ConfigError> {
    let mut facts = Facts::new();
    let path = dir.join(FILE);
    let Ok(text) = cardfill_facts::read::read_to_string(&path, MAX_BYTES) else {
        return Ok(facts);
    };
    let Some(yaml) = front_matter(&text) else {
        return Ok(facts);
    };
    // The card collector reports malformed front matter; here it only gives no facts.
    let Ok(Value::Object(map)) = serde_norway::from_str::<Value>(yaml) else {
        return Ok(facts);
    };
    let ids = |v: &Value| -> Vec<String> {
        let items: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            one => vec![one],
        };
        items
            .into_iter()
            .filter_map(Value::as_str)
            .filter_map(|s| match hub_id(s.trim()) {
                HubId::Id(id) | HubId::FromCache(id) => Some(id),
                HubId::LocalPath => None,
            })
            .collect()
    };
    if let Some(v) = map.get("base_model") {
        match ids(v).as_slice() {
            [] => {}
            [one] => facts.set(
                paths::MODEL_BASE_MODEL,
                one.as_str(),
                Source::file(FILE, "front matter base_model"),
            ),
            many => facts.set(
                paths::MODEL_BASE_MODEL,
                many.to_vec(),
                Source::file(FILE, "front matter base_model"),
            ),
        }
    }
    if let Some(v) = map.get("datasets") {
        let list: Vec<Value> = ids(v)
            .into_iter()
            .map(|id| serde_json::json!({"id": id, "config": null, "split": null}))
            .collect();
        if !list.is_empty() {
            facts.set(
                paths::TRAINING_DATASETS,
                list,
                Source::file(FILE, "front matter datasets"),
            );
        }
    }
    Ok(facts)
}

/// The YAML between a leading `---` line and the next `---` line.
fn front_matter(text: &str) -> Option<&str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text
        .strip_prefix("---\r\n")
        .or_else(|| text.strip_prefix("---\n"))?;
    let mut at = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Some(&rest[..at]);
        }
        at += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::real;

    /// transformers 5.25's Trainer saves no `_name_or_path`; its card names the base model.
    #[test]
    fn trainer_card_names_the_base_model_and_datasets() {
        let f = collect(&real("tf5-trainer")).unwrap();
        assert_eq!(
            f.str(paths::MODEL_BASE_MODEL),
            Some("cardfill-test/tiny-llama")
        );
        assert_eq!(
            f.get(paths::MODEL_BASE_MODEL).unwrap().source.to_string(),
            "README.md: front matter base_model"
        );
        assert_eq!(
            f.value(paths::TRAINING_DATASETS),
            Some(
                &serde_json::json!([{"id": "cardfill-test/tiny-text", "config": null, "split": null}])
            )
        );
    }

    #[test]
    fn local_paths_are_not_ids() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE),
            "---\nbase_model: /data/models/llama\ndatasets:\n- ./data/train.jsonl\n---\n# m\n",
        )
        .unwrap();
        let f = collect(dir.path()).unwrap();
        assert!(f.value(paths::MODEL_BASE_MODEL).is_none());
        assert!(f.value(paths::TRAINING_DATASETS).is_none());
    }
}
