//! sentence-transformers models: `modules.json` lists the pipeline's modules (Transformer at
//! the root, `1_Pooling`, `2_Normalize`, `2_Dense`, ...). A module whose folder is missing is
//! a warning; the module list and the pooling mode go to `checkpoint.sentence_transformers`.

use std::path::{Component, Path};

use cardfill_facts::{Facts, Source, Value, paths};

/// Records the sentence-transformers modules of `dir`, if it has `modules.json`.
pub fn record(dir: &Path, facts: &mut Facts) {
    let file = "modules.json";
    let Some(text) = crate::read_small(&dir.join(file)) else {
        return;
    };
    let modules = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(m)) => m,
        Ok(_) => {
            facts.warn(
                "modules-json-invalid",
                format!("`{file}` is not a JSON list"),
            );
            return;
        }
        Err(e) => {
            facts.warn(
                "modules-json-invalid",
                format!("`{file}` is not valid JSON: {e}"),
            );
            return;
        }
    };
    let mut list = Vec::new();
    for m in &modules {
        let name = m.get("name").and_then(Value::as_str).unwrap_or("");
        let path = m.get("path").and_then(Value::as_str).unwrap_or("");
        let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
        let rel = Path::new(path);
        let safe =
            !rel.is_absolute() && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !path.is_empty() && (!safe || !dir.join(rel).is_dir()) {
            facts.warn(
                "sentence-transformers-module-missing",
                format!("`{file}`: module `{name}` ({ty}) names folder `{path}`, which is missing"),
            );
        }
        let mut entry = serde_json::json!({ "name": name, "path": path, "type": ty });
        if ty.ends_with("Pooling")
            && safe
            && let Some(mode) = pooling_mode(&dir.join(rel).join("config.json"))
        {
            entry["pooling"] = mode.into();
        }
        list.push(entry);
    }
    let mut obj = serde_json::Map::new();
    obj.insert("modules".into(), Value::Array(list));
    if let Some(v) = crate::read_small(&dir.join("sentence_bert_config.json"))
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|j| j.get("max_seq_length").cloned())
    {
        obj.insert("max_seq_length".into(), v);
    }
    facts.set(
        paths::CHECKPOINT_SENTENCE_TRANSFORMERS,
        Value::Object(obj),
        Source::file(file, "module list"),
    );
    facts.set_if_absent(
        paths::MODEL_LIBRARY_NAME,
        "sentence-transformers",
        Source::file(file, "a sentence-transformers module list"),
    );
}

/// The pooling mode set to true in a `1_Pooling/config.json` (`mean_tokens`, `cls_token`).
fn pooling_mode(path: &Path) -> Option<String> {
    let json: Value = serde_json::from_str(&crate::read_small(path)?).ok()?;
    json.as_object()?.iter().find_map(|(k, v)| {
        (v.as_bool() == Some(true))
            .then(|| k.strip_prefix("pooling_mode_").map(str::to_owned))
            .flatten()
    })
}
