//! Keeps values the Hub rejects out of the facts `fill` writes: each is removed with a warning
//! naming the value and the fix.

use cardfill_facts::{Facts, Value, paths};
use serde_json::Map;

use crate::lists;
use crate::rules::{self, RepoRef, repo_ref};

const CODE: &str = "hub-rejects-value";

fn drop(facts: &mut Facts, path: &str, why: &str) {
    if let Some(fact) = facts.remove(path) {
        facts.warn(
            CODE,
            format!(
                "`{path}` {} is left out of the card: {why}",
                rules::show(&fact.value)
            ),
        );
    }
}

/// Keeps the entries of a string-or-list fact that pass `ok`; warns about the others.
fn filter_list(facts: &mut Facts, path: &str, ok: impl Fn(&str) -> bool, why: &str) {
    let Some(fact) = facts.get(path).cloned() else {
        return;
    };
    match &fact.value {
        Value::String(s) if ok(s) => {}
        Value::Array(list) => {
            let (good, bad): (Vec<Value>, Vec<Value>) = list
                .iter()
                .cloned()
                .partition(|v| v.as_str().is_some_and(&ok));
            if bad.is_empty() {
                return;
            }
            for v in &bad {
                facts.warn(
                    CODE,
                    format!(
                        "`{path}` entry {} is left out of the card: {why}",
                        rules::show(v)
                    ),
                );
            }
            if good.is_empty() {
                facts.remove(path);
            } else {
                facts.set(path, Value::Array(good), fact.source.clone());
            }
        }
        _ => drop(facts, path, why),
    }
}

/// Removes from `facts` every value that would make the Hub reject the card `fill` writes
/// (a local path as base model, a licence, pipeline tag, language or library the Hub does not
/// know, `license: other` without its name and link, a negative or non-numeric CO2 figure),
/// with a warning (`hub-rejects-value`) for each. Call it on the merged facts before rendering.
pub fn sanitize(facts: &mut Facts) {
    filter_list(
        facts,
        paths::MODEL_BASE_MODEL,
        |s| repo_ref(s) == RepoRef::Id,
        "the Hub accepts only model ids (`org/name`) in `base_model`, never local paths",
    );
    if let Some(rel) = facts.str(paths::MODEL_BASE_MODEL_RELATION) {
        if !matches!(rel, "adapter" | "merge" | "quantized" | "finetune") {
            drop(
                facts,
                paths::MODEL_BASE_MODEL_RELATION,
                "use `adapter`, `merge`, `quantized` or `finetune`",
            );
        } else if !facts.contains(paths::MODEL_BASE_MODEL) {
            // Say what the real problem is when the base model was a local path.
            let local = facts
                .warnings()
                .iter()
                .any(|w| w.code == "base-model-local-path");
            let why = if local {
                "the base model is a local path, and the Hub accepts only model ids (`org/name`) \
                 in `base_model`; pass the base model's Hub id (`org/name`) to keep it"
            } else {
                "`base_model_relation` needs a `base_model`"
            };
            drop(facts, paths::MODEL_BASE_MODEL_RELATION, why);
        }
    }
    sanitize_license(facts);
    filter_list(
        facts,
        paths::MODEL_LANGUAGE,
        lists::is_language,
        "not an ISO 639 language code the Hub accepts",
    );
    if let Some(tag) = facts.str(paths::MODEL_PIPELINE_TAG) {
        if !lists::is_pipeline_tag(tag) {
            drop(
                facts,
                paths::MODEL_PIPELINE_TAG,
                "not one of the Hub's pipeline tags",
            );
        }
    } else if facts.contains(paths::MODEL_PIPELINE_TAG) {
        drop(
            facts,
            paths::MODEL_PIPELINE_TAG,
            "a pipeline tag is one string",
        );
    }
    if facts.contains(paths::MODEL_LIBRARY_NAME)
        && !facts
            .str(paths::MODEL_LIBRARY_NAME)
            .is_some_and(lists::is_library_name)
    {
        drop(
            facts,
            paths::MODEL_LIBRARY_NAME,
            "not a library the Hub knows",
        );
    }
    if let Some(v) = facts.value(paths::CARBON_CO2_GRAMS)
        && !v.as_f64().is_some_and(|g| g.is_finite() && g >= 0.0)
    {
        drop(
            facts,
            paths::CARBON_CO2_GRAMS,
            "`co2_eq_emissions` must be a number of grams, ≥ 0",
        );
    }
    if let Some(t) = facts.value(paths::CARBON_TRAINING_TYPE)
        && !matches!(t.as_str(), Some("pre-training" | "fine-tuning"))
    {
        drop(
            facts,
            paths::CARBON_TRAINING_TYPE,
            "use `pre-training` or `fine-tuning`",
        );
    }
}

fn sanitize_license(facts: &mut Facts) {
    let mut meta = Map::new();
    for (path, key) in [
        (paths::MODEL_LICENSE, "license"),
        (paths::MODEL_LICENSE_NAME, "license_name"),
        (paths::MODEL_LICENSE_LINK, "license_link"),
    ] {
        if let Some(v) = facts.value(path) {
            meta.insert(key.to_owned(), v.clone());
        }
    }
    if meta.is_empty() {
        return;
    }
    let problems: Vec<_> = meta
        .iter()
        .flat_map(|(k, v)| rules::check_key(&meta, k, v))
        .filter(rules::Problem::is_error)
        .collect();
    if problems.is_empty() {
        return;
    }
    let why = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    // a bad id: the licence goes with its name and link; a stray name or link goes alone
    let license_bad = problems
        .iter()
        .any(|p| p.key == "license" || p.key.starts_with("license["));
    if license_bad {
        drop(facts, paths::MODEL_LICENSE, &why);
        drop(facts, paths::MODEL_LICENSE_NAME, &why);
        drop(facts, paths::MODEL_LICENSE_LINK, &why);
    } else {
        for p in &problems {
            let path = if p.key == "license_name" {
                paths::MODEL_LICENSE_NAME
            } else {
                paths::MODEL_LICENSE_LINK
            };
            drop(facts, path, &p.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use cardfill_facts::Source;

    use super::*;

    fn src() -> Source {
        Source::flag("--test")
    }

    #[test]
    fn rejected_values_are_removed_with_a_warning_each() {
        let mut f = Facts::new();
        f.set(paths::MODEL_BASE_MODEL, "/data/ckpt/llama", src());
        f.set(paths::MODEL_BASE_MODEL_RELATION, "finetune", src());
        f.set(paths::MODEL_LICENSE, "Apache 2.0", src());
        f.set(
            paths::MODEL_LANGUAGE,
            serde_json::json!(["en", "es-ES"]),
            src(),
        );
        f.set(paths::MODEL_PIPELINE_TAG, "text2text-generation", src());
        f.set(paths::MODEL_LIBRARY_NAME, "transformers", src());
        f.set(paths::CARBON_CO2_GRAMS, 12.5, src());
        sanitize(&mut f);
        assert!(!f.contains(paths::MODEL_BASE_MODEL));
        assert!(!f.contains(paths::MODEL_BASE_MODEL_RELATION));
        assert!(!f.contains(paths::MODEL_LICENSE));
        assert_eq!(
            f.value(paths::MODEL_LANGUAGE),
            Some(&serde_json::json!(["en"]))
        );
        assert!(!f.contains(paths::MODEL_PIPELINE_TAG));
        assert_eq!(f.str(paths::MODEL_LIBRARY_NAME), Some("transformers"));
        assert_eq!(f.f64(paths::CARBON_CO2_GRAMS), Some(12.5));
        assert_eq!(f.warnings().len(), 5, "{:#?}", f.warnings());
        assert!(f.warnings().iter().all(|w| w.code == CODE));
        assert!(f.warnings()[0].message.contains("/data/ckpt/llama"));
    }

    #[test]
    fn other_needs_name_and_link() {
        // `other` alone is accepted (with a warning in `validate`): kept
        let mut f = Facts::new();
        f.set(paths::MODEL_LICENSE, "other", src());
        f.set(paths::MODEL_LICENSE_NAME, "llama3", src());
        sanitize(&mut f);
        assert_eq!(f.str(paths::MODEL_LICENSE), Some("other"));
        assert!(f.warnings().is_empty());

        let mut ok = Facts::new();
        ok.set(paths::MODEL_LICENSE, "other", src());
        ok.set(paths::MODEL_LICENSE_NAME, "llama3", src());
        ok.set(
            paths::MODEL_LICENSE_LINK,
            "https://example.org/LICENSE",
            src(),
        );
        let before = ok.clone();
        sanitize(&mut ok);
        assert_eq!(ok, before);

        let mut stray = Facts::new();
        stray.set(paths::MODEL_LICENSE, "mit", src());
        stray.set(paths::MODEL_LICENSE_LINK, "LICENSE", src());
        sanitize(&mut stray);
        assert_eq!(stray.str(paths::MODEL_LICENSE), Some("mit"));
        assert!(!stray.contains(paths::MODEL_LICENSE_LINK));
    }
}
