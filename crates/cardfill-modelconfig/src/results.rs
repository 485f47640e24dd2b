//! Evaluation results → `evaluation.results`, and the trainer's log → `training.log`.
//!
//! Read: `eval_results.json` (else the `eval_*` keys of `all_results.json`), written by the
//! Trainer; lm-evaluation-harness `results*.json` (its `results` and `configs`); lighteval
//! `results_*.json` (`results` and `config_tasks`). Files sit in the directory or one folder
//! below it (lm-evaluation-harness writes `<output>/<model>/results_<time>.json`). Dataset ids
//! come from the files (`dataset_path`, `hf_repo`) and only when they are Hub ids.

use std::path::Path;

use cardfill_facts::{Facts, Source, Value, paths};
use serde_json::{Map, json};

use crate::listing::Listing;
use crate::{HubId, hub_id};

const MAX_LOG: usize = 1000;

fn read_json(path: &Path) -> Option<Map<String, Value>> {
    let text = cardfill_facts::read::read_to_string(path, cardfill_facts::read::CONFIG_CAP).ok()?;
    match serde_json::from_str(&text).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Collects `evaluation.results` and `training.log` in `dir`; `state` is the directory's
/// `trainer_state.json` as the trainer collector read it (streamed, its log thinned).
pub(crate) fn collect(listing: &Listing<'_>, state: Option<&Map<String, Value>>) -> Facts {
    let dir = listing.dir();
    let mut facts = Facts::new();
    let step = state
        .and_then(|s| s.get("global_step"))
        .and_then(Value::as_u64);
    if let Some(log) = state
        .and_then(|s| s.get("log_history"))
        .and_then(Value::as_array)
    {
        let entries = thin(log);
        if !entries.is_empty() {
            facts.set(
                paths::TRAINING_LOG,
                entries,
                Source::file("trainer_state.json", "log_history (numbers)"),
            );
        }
    }
    let mut results = Vec::new();
    let mut sources = Vec::new();
    for name in ["eval_results.json", "all_results.json"] {
        if let Some(obj) = read_json(&dir.join(name)) {
            let found = trainer_results(&obj, step);
            if !found.is_empty() {
                results.extend(found);
                sources.push(format!("{name}: eval_* metrics"));
                break;
            }
        }
    }
    for (rel, obj) in result_files(listing) {
        let found = if obj.contains_key("config_general") {
            lighteval(&obj)
        } else if obj.contains_key("configs") || obj.contains_key("versions") {
            // The evaluated model, when a Hub id, names the card's `model-index` entry.
            let name = obj.get("model_name").and_then(Value::as_str).map(hub_id);
            if let Some(HubId::Id(id) | HubId::FromCache(id)) = name {
                facts.set(
                    paths::MODEL_NAME,
                    id,
                    Source::file(&rel, "model_name (lm-evaluation-harness)"),
                );
            }
            lm_eval(&obj)
        } else {
            Vec::new()
        };
        if !found.is_empty() {
            results.extend(found);
            sources.push(format!("{rel}: results"));
        }
    }
    let files: Vec<&str> = sources
        .iter()
        .map(|s| s.split_once(": ").map_or(s.as_str(), |(f, _)| f))
        .collect();
    let partial = results
        .iter()
        .filter(|r| r["task"].is_null() || r["dataset"].is_null())
        .count();
    if partial > 0 {
        facts.warn(
            "evaluation-result-partial",
            format!(
                "{partial} evaluation result(s) of `{}` name no task or no Hub dataset id: they \
                 stay in the card's Results, not in `model-index` (the Hub needs task, dataset \
                 and metric)",
                files.join("`, `")
            ),
        );
    }
    if !results.is_empty() {
        let source = match sources.as_slice() {
            [one] => {
                let (file, method) = one.split_once(": ").unwrap_or((one, ""));
                Source::file(file, method)
            }
            many => Source::derived(many.join("; ")),
        };
        facts.set(paths::EVALUATION_RESULTS, results, source);
    }
    facts
}

/// `results*.json` in `dir` and its sub-folders (not `checkpoint-*`), sorted.
fn result_files(listing: &Listing<'_>) -> Vec<(String, Map<String, Value>)> {
    let mut out = Vec::new();
    let is_results =
        |n: &str| n.starts_with("results") && n.ends_with(".json") && n != "results.json.index";
    let dir = listing.dir();
    let mut names: Vec<(String, std::path::PathBuf)> = Vec::new();
    for (i, name) in listing.names().iter().enumerate() {
        if listing.is_dir(i) && !name.starts_with("checkpoint-") && !name.starts_with('.') {
            if let Ok(sub) = std::fs::read_dir(dir.join(&**name)) {
                for s in sub.flatten() {
                    if let Ok(n) = s.file_name().into_string()
                        && is_results(&n)
                    {
                        names.push((format!("{name}/{n}"), s.path()));
                    }
                }
            }
        } else if is_results(name) {
            names.push((name.to_string(), dir.join(&**name)));
        }
    }
    names.sort();
    for (rel, path) in names {
        if let Some(obj) = read_json(&path) {
            out.push((rel, obj));
        }
    }
    out
}

fn dataset(id: Option<&str>, config: Option<&str>, split: Option<&str>) -> Value {
    match id.map(hub_id) {
        Some(HubId::Id(id) | HubId::FromCache(id)) => {
            json!({"id": id, "config": config, "split": split})
        }
        _ => Value::Null,
    }
}

/// The Trainer's `eval_*` metrics (speeds and runtimes left out).
fn trainer_results(obj: &Map<String, Value>, step: Option<u64>) -> Vec<Value> {
    obj.iter()
        .filter_map(|(k, v)| {
            let metric = k.strip_prefix("eval_")?;
            if metric == "runtime" || metric.ends_with("_per_second") {
                return None;
            }
            let value = v.as_f64()?;
            Some(json!({"task": null, "dataset": null, "metric": metric, "value": value, "step": step}))
        })
        .collect()
}

/// lm-evaluation-harness 0.4: `results.<task>.<metric>,<filter>` with the dataset of
/// `configs.<task>`; evaluated as text generation. Keys without a filter (`alias`, `name`,
/// `sample_len`) are no metrics.
fn lm_eval(obj: &Map<String, Value>) -> Vec<Value> {
    let Some(results) = obj.get("results").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (task, metrics) in results {
        let Some(metrics) = metrics.as_object() else {
            continue;
        };
        let config = obj.get("configs").and_then(|c| c.get(task));
        let s = |k: &str| config.and_then(|c| c.get(k)).and_then(Value::as_str);
        let split = s("test_split").or_else(|| s("validation_split"));
        let ds = dataset(s("dataset_path"), s("dataset_name"), split);
        for (key, v) in metrics {
            let Some((metric, _filter)) = key.split_once(',') else {
                continue;
            };
            if metric.ends_with("_stderr") {
                continue;
            }
            if let Some(value) = v.as_f64() {
                out.push(text_generation_row(&ds, metric, value, task));
            }
        }
    }
    out
}

/// One `text-generation` result row of an evaluation harness: `metric` on dataset `ds`
/// under the harness's task `name`, with no training step.
fn text_generation_row(ds: &Value, metric: &str, value: f64, name: &str) -> Value {
    json!({
        "task": "text-generation",
        "dataset": ds,
        "metric": metric,
        "value": value,
        "step": null,
        "name": name,
    })
}

/// lighteval: `results.<suite|task|shots>.<metric>` with `config_tasks.<suite|task>`.
fn lighteval(obj: &Map<String, Value>) -> Vec<Value> {
    let Some(results) = obj.get("results").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (task, metrics) in results {
        if task == "all" {
            continue;
        }
        let Some(metrics) = metrics.as_object() else {
            continue;
        };
        let key = task.rsplit_once('|').map_or(task.as_str(), |(k, _)| k);
        let config = obj.get("config_tasks").and_then(|c| c.get(key));
        let s = |k: &str| config.and_then(|c| c.get(k)).and_then(Value::as_str);
        let split = config
            .and_then(|c| c.get("evaluation_splits"))
            .and_then(|s| s.get(0))
            .and_then(Value::as_str);
        let ds = dataset(s("hf_repo"), s("hf_subset"), split);
        for (metric, v) in metrics {
            if metric.ends_with("_stderr") {
                continue;
            }
            if let Some(value) = v.as_f64() {
                out.push(text_generation_row(&ds, metric, value, key));
            }
        }
    }
    out
}

/// The log's numeric fields, thinned to at most [`MAX_LOG`] entries (evaluations kept).
fn thin(log: &[Value]) -> Vec<Value> {
    let entries: Vec<Map<String, Value>> = log
        .iter()
        .filter_map(Value::as_object)
        .map(|e| {
            e.iter()
                .filter(|(k, v)| {
                    v.is_number()
                        && (matches!(
                            k.as_str(),
                            "step" | "epoch" | "loss" | "learning_rate" | "grad_norm"
                        ) || (k.starts_with("eval_")
                            && *k != "eval_runtime"
                            && !k.ends_with("_per_second")))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<String, Value>>()
        })
        .filter(|e| e.len() > 2 || e.contains_key("loss"))
        .collect();
    let evals = entries
        .iter()
        .filter(|e| e.keys().any(|k| k.starts_with("eval_")))
        .count();
    let train = entries.len() - evals;
    let keep_every = train.div_ceil(MAX_LOG.saturating_sub(evals).max(1)).max(1);
    let mut i = 0usize;
    entries
        .into_iter()
        .filter(|e| {
            if e.keys().any(|k| k.starts_with("eval_")) {
                return true;
            }
            i += 1;
            (i - 1).is_multiple_of(keep_every)
        })
        .map(Value::Object)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The collector as `lib.rs` runs it: the state read by the trainer collector's reader.
    fn collect_dir(dir: &Path) -> Facts {
        let state = crate::trainer::read_state(&dir.join("trainer_state.json")).ok();
        collect(&crate::listing::Listing::new(dir), state.as_ref())
    }
    use crate::real;

    #[test]
    fn trainer_eval_results_and_log() {
        let figures: Value =
            serde_json::from_str(&std::fs::read_to_string(real("figures.json")).unwrap()).unwrap();
        let fig = &figures["tf5-trainer"];
        let f = collect_dir(&real("tf5-trainer"));
        let r = f
            .value(paths::EVALUATION_RESULTS)
            .unwrap()
            .as_array()
            .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["metric"], "loss");
        assert_eq!(r[0]["value"], fig["eval_loss"]);
        assert_eq!(r[0]["step"], fig["global_step"]);
        assert!(r[0]["dataset"].is_null());
        let log = f.value(paths::TRAINING_LOG).unwrap().as_array().unwrap();
        let want: Vec<&Value> = fig["log_history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e.get("loss").is_some() || e.get("eval_loss").is_some())
            .collect();
        assert_eq!(log.len(), want.len());
        for (a, b) in log.iter().zip(want) {
            assert_eq!(a["step"], b["step"]);
            assert_eq!(a.get("loss"), b.get("loss"));
            assert_eq!(a.get("eval_loss"), b.get("eval_loss"));
        }
    }

    /// lighteval's `results/<model>/results_<time>.json` layout.
    #[test]
    fn lighteval_results() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("org__model");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(
            sub.join("results_2026-12-05T19-00-00.json"),
            r#"{"config_general": {"model_name": "org/model"},
                "results": {"lighteval|arc:easy|0": {"acc": 0.61, "acc_stderr": 0.01},
                            "all": {"acc": 0.61, "acc_stderr": 0.01}},
                "config_tasks": {"lighteval|arc:easy": {"name": "arc:easy",
                    "hf_repo": "allenai/ai2_arc", "hf_subset": "ARC-Easy",
                    "evaluation_splits": ["test"]}}}"#,
        )
        .unwrap();
        let f = collect_dir(dir.path());
        let r = f.value(paths::EVALUATION_RESULTS).unwrap();
        assert_eq!(
            r,
            &json!([{"task": "text-generation", "metric": "acc", "value": 0.61, "step": null,
                     "name": "lighteval|arc:easy",
                     "dataset": {"id": "allenai/ai2_arc", "config": "ARC-Easy", "split": "test"}}])
        );
        assert!(f.warnings().is_empty());
    }

    #[test]
    fn lm_eval_results_keep_hub_datasets_only() {
        // Written by lm_eval 0.4.13 itself (generate.py); its own figures in figures.json.
        let figures: Value =
            serde_json::from_str(&std::fs::read_to_string(real("figures.json")).unwrap()).unwrap();
        let lib = &figures["lm-eval"]["results"];
        let f = collect_dir(&real("lm-eval"));
        let r = f
            .value(paths::EVALUATION_RESULTS)
            .unwrap()
            .as_array()
            .unwrap();
        let row = |task: &str, metric: &str| {
            r.iter()
                .find(|e| e["name"] == task && e["metric"] == metric)
                .unwrap_or_else(|| panic!("{task} {metric}: {r:?}"))
        };
        // Every metric the library computed, and nothing else (no `sample_len`, no stderr).
        assert_eq!(r.len(), 3, "{r:?}");
        for (task, metric) in [
            ("tiny_qa", "acc"),
            ("tiny_qa", "acc_norm"),
            ("tiny_qa_local", "acc"),
        ] {
            assert_eq!(
                row(task, metric)["value"],
                lib[task][format!("{metric},none")]
            );
            assert_eq!(row(task, metric)["task"], "text-generation");
        }
        assert_eq!(row("tiny_qa", "acc")["value"], 0.375);
        // The Hub id the task config names, with its split.
        assert_eq!(
            figures["lm-eval"]["datasets"]["tiny_qa"],
            "cardfill-test/tiny-qa"
        );
        assert_eq!(
            row("tiny_qa", "acc_norm")["dataset"],
            json!({"id": "cardfill-test/tiny-qa", "config": null, "split": "test"})
        );
        // `dataset_path: json` over a local data file is no dataset id.
        assert!(
            row("tiny_qa_local", "acc")["dataset"].is_null(),
            "a local data file is no dataset id"
        );
        assert_eq!(f.str(paths::MODEL_NAME), Some("cardfill-test/tiny-llama"));
    }
}
