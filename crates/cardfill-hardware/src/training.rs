//! Training records: what a training process tells cardfill through its integration (the
//! Python `cardfill` package's callbacks and `track()`).
//!
//! On train begin, local rank 0 of each node runs `cardfill probe --record DIR --begin`: a
//! record of kind `training` opens with the node's host, GPUs, Slurm job and each GPU's energy
//! counter. On train end it runs `cardfill probe --record DIR --end`, which closes that record
//! (end time, energy from the counters) and, on the main process, adds what the process knows
//! ([`TrainingInfo`], read from `--training FILE`; `--training` alone replaces it later).
//! Inside `cardfill run`, the command gets the run's key in `CARDFILL_RUN_KEY`, so both write
//! one record and nothing counts twice.

use std::collections::BTreeMap;
use std::path::Path;

use cardfill_facts::{Facts, Source, Value, paths};
use cardfill_modelconfig::{HubId, hub_id};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::HardwareError;
use crate::gpu::{GpuProbe, GpuSelection, counter_energy};
use crate::host::HostInfo;
use crate::record::{
    FoundRecord, RECORD_DIR, RecordKind, RunRecord, format_time, write_record_checked,
};
use crate::runner::{base_record, env_var, lone_key};

/// What the training process knows, as its integration writes it (`training` of a record).
/// Every field is optional; `read` says, per field, what the process read to get it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// The integration: `transformers`, `lightning` or `track`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
    /// The base model as given to `from_pretrained` (`model.name_or_path`, or the PEFT base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model: Option<String>,
    /// The live model's class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_class: Option<String>,
    /// The live model's parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters_total: Option<u64>,
    /// The live model's trainable parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters_trainable: Option<u64>,
    /// An adapter's base model's own parameters (the live model less the adapter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters_base: Option<u64>,
    /// Datasets: `{id, config, split}`; only Hub ids are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<Value>,
    /// Training arguments that differ from their defaults.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub hyperparameters: serde_json::Map<String, Value>,
    /// Evaluation results: `{task, dataset, metric, value, step}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evaluation: Vec<Value>,
    /// Processes of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world_size: Option<u64>,
    /// This process's global rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u64>,
    /// Framework name → version, as imported.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub software: BTreeMap<String, String>,
    /// Field name → what the process read for it (`TrainingArguments`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub read: BTreeMap<String, String>,
}

/// This node's record folder entry for a training run, as `--begin` and `--end` address it.
fn node_record(fallback_key: Option<String>) -> (RunRecord, bool, GpuProbe) {
    let probe = GpuProbe::open(&GpuSelection::from_env(env_var));
    let key = fallback_key.unwrap_or_else(|| lone_key(Utc::now()));
    let (mut record, writes) = base_record(RecordKind::Training, &probe, HostInfo::probe(), key);
    record.slurm = crate::current_job().map(crate::record::SlurmInfo::from);
    (record, writes, probe)
}

/// `cardfill probe --begin`: opens this node's training record in the record folder `dir`:
/// now as start, and each GPU's energy counter. Returns the record (its `run_key` is what
/// `--end` must be given in `CARDFILL_RUN_KEY` when no shared key is set) and the path
/// written (`None` on a local rank other than 0 without a shared key).
pub fn begin_training(dir: &Path) -> Result<Written, HardwareError> {
    let (mut record, writes, probe) = node_record(None);
    record.start = Some(format_time(Utc::now()));
    record.open_counters_mj = Some(probe.energy_counters());
    record.command = None;
    write(dir, record, writes)
}

/// `cardfill probe --end`: closes this node's training record in `dir` (end time, GPU energy
/// from the counters opened by `--begin`) and adds `info`. The record is found by node and
/// run key: `CARDFILL_RUN_KEY`, the Slurm job or torchelastic run, else `run_key` (the key
/// `--begin` returned). Without an open record the record has an end and `info` only.
pub fn end_training(
    dir: &Path,
    run_key: Option<String>,
    info: Option<TrainingInfo>,
) -> Result<Written, HardwareError> {
    let (mut record, writes, probe) = node_record(run_key);
    let open = read_open(&dir.join(record.file_name()));
    let now = probe.energy_counters();
    if let Some(start) = open.as_ref().and_then(|o| o.open_counters_mj.as_ref()) {
        for (i, gpu) in record.gpus.iter_mut().enumerate() {
            if let (Some(Some(s)), Some(Some(e))) = (start.get(i), now.get(i)) {
                gpu.energy = Some(counter_energy(*s, *e));
            }
        }
    }
    record.end = Some(format_time(Utc::now()));
    record.training = info;
    // The same process as `--begin`: merging must not count it twice.
    record.processes = u32::from(open.is_none());
    write(dir, record, writes)
}

/// `cardfill probe --training FILE` without `--end`: replaces the training facts of this
/// node's record (found as by [`end_training`]) and leaves its times and energy as they are,
/// for what the process learnt after train end (an evaluation).
pub fn update_training(
    dir: &Path,
    run_key: Option<String>,
    info: TrainingInfo,
) -> Result<Written, HardwareError> {
    let (mut record, writes, _) = node_record(run_key);
    record.training = Some(info);
    record.processes = 0;
    write(dir, record, writes)
}

/// A record, the path it was written to (`None` when this process does not write) and the
/// warnings about odd files met on the way (a FIFO lock, a directory in a record's place).
pub type Written = (RunRecord, Option<std::path::PathBuf>, Vec<String>);

fn write(dir: &Path, record: RunRecord, writes: bool) -> Result<Written, HardwareError> {
    if !writes {
        return Ok((record, None, Vec::new()));
    }
    let (written, warnings) = write_record_checked(dir, record.clone());
    Ok((record, Some(written?), warnings))
}

/// The record at `path`, when it is an open training record.
fn read_open(path: &Path) -> Option<RunRecord> {
    let text = cardfill_facts::read::read_to_string(path, cardfill_facts::read::RECORD_CAP).ok()?;
    serde_json::from_str::<RunRecord>(&text)
        .ok()
        .filter(|r| r.open_counters_mj.is_some())
}

/// Reads the training process's facts (`--training FILE`) as [`TrainingInfo`]; `name` says
/// where they came from in the error.
pub fn read_info(text: &str, name: &str) -> Result<TrainingInfo, HardwareError> {
    serde_json::from_str(text).map_err(|e| HardwareError::Record {
        path: name.into(),
        message: format!(
            "not the JSON object of a training record's `training` field ({e}); the \
             training record is left open"
        ),
    })
}

/// Facts from the training records in `dir/.cardfill/`: the latest record that carries
/// [`TrainingInfo`] gives them. `known` holds the facts of the files: the live model's
/// parameter counts are kept only where the files gave none, with a warning when they differ.
pub fn collect(dir: &Path, known: &Facts) -> Facts {
    let (records, _) = crate::record::read_records(&dir.join(RECORD_DIR));
    let mut facts = Facts::new();
    let Some((file, info)) = latest(&records) else {
        return facts;
    };
    let src = |field: &str, default: &str| {
        let what = info.read.get(field).map_or(default, String::as_str);
        let who = info.integration.as_deref().unwrap_or("cardfill");
        Source::training_process(format!("{who}: {what} ({RECORD_DIR}/{file})"))
    };

    if let Some(name) = info.base_model.as_deref().filter(|s| !s.trim().is_empty()) {
        match hub_id(name) {
            HubId::Id(id) => facts.set(
                paths::MODEL_BASE_MODEL,
                id,
                src("base_model", "model.name_or_path"),
            ),
            HubId::FromCache(id) => facts.set(
                paths::MODEL_BASE_MODEL,
                id,
                src("base_model", "model.name_or_path (Hugging Face cache path)"),
            ),
            HubId::LocalPath => facts.warn(
                "base-model-local-path",
                format!(
                    "`{RECORD_DIR}/{file}`: the training process loaded its model from the local \
                     path `{name}`, not a Hub id: base_model left unset (pass the Hub id if \
                     there is one)"
                ),
            ),
        }
    }
    if let Some(class) = &info.model_class {
        facts.set(
            paths::MODEL_CLASS,
            class.as_str(),
            src("model_class", "type(model)"),
        );
    }
    for (path, live, field) in [
        (paths::PARAMETERS_TOTAL, info.parameters_total, "total"),
        (
            paths::PARAMETERS_TRAINABLE,
            info.parameters_trainable,
            "trainable",
        ),
    ] {
        let Some(live) = live else { continue };
        // An adapter's files count the adapter only; the live model holds the base model too.
        if path == paths::PARAMETERS_TOTAL && known.contains(paths::MODEL_ADAPTER) {
            continue;
        }
        match known.get(path) {
            None => facts.set(
                path,
                live,
                src("parameters", "model.parameters(), counted live"),
            ),
            Some(fact) if fact.value.as_u64().is_some_and(|n| n != live) => facts.warn(
                "parameters-disagree",
                format!(
                    "the training process counted {live} {field} parameters in the live model \
                     but {} says {}: the files' count is kept (were the saved weights a \
                     different model?)",
                    fact.source, fact.value
                ),
            ),
            Some(_) => {}
        }
    }
    if let Some(base) = info.parameters_base
        && !known.contains(paths::PARAMETERS_BASE)
    {
        facts.set(
            paths::PARAMETERS_BASE,
            base,
            src(
                "parameters_base",
                "the PEFT model's parameters less the adapter's",
            ),
        );
    }
    let datasets: Vec<Value> = info.datasets.iter().filter_map(dataset).collect();
    if !datasets.is_empty() {
        facts.set(
            paths::TRAINING_DATASETS,
            Value::Array(datasets),
            src("datasets", "the datasets' info"),
        );
    }
    if !info.hyperparameters.is_empty() {
        facts.set(
            paths::TRAINING_HYPERPARAMETERS,
            Value::Object(info.hyperparameters.clone()),
            src(
                "hyperparameters",
                "training arguments that differ from their defaults",
            ),
        );
    }
    let results: Vec<Value> = info.evaluation.iter().filter_map(evaluation).collect();
    if !results.is_empty() {
        facts.set(
            paths::EVALUATION_RESULTS,
            Value::Array(results),
            src("evaluation", "evaluation metrics of the log history"),
        );
    }
    if let Some(n) = info.world_size {
        facts.set(
            paths::TRAINING_WORLD_SIZE,
            n,
            src("world_size", "world size"),
        );
    }
    if !info.software.is_empty() {
        // The process's versions, and those only the files name.
        let mut software = serde_json::Map::new();
        for (k, v) in &info.software {
            software.insert(k.clone(), Value::String(v.clone()));
        }
        if let Some(Value::Object(files)) = known.value(paths::TRAINING_SOFTWARE) {
            for (k, v) in files {
                if !software.contains_key(k) {
                    software.insert(k.clone(), v.clone());
                }
            }
        }
        facts.set(
            paths::TRAINING_SOFTWARE,
            Value::Object(software),
            src("software", "versions of the imported modules"),
        );
    }
    facts
}

/// The newest record with training info: its file and the info.
fn latest(records: &[FoundRecord]) -> Option<(&str, &TrainingInfo)> {
    records
        .iter()
        .filter_map(|r| Some((r, r.record.training.as_ref()?)))
        .max_by_key(|(r, _)| r.record.end_time().or(r.record.start_time()))
        .map(|(r, info)| (r.file.as_str(), info))
}

/// `{id, config, split}` when `id` is a Hub id; anything else is dropped.
fn dataset(value: &Value) -> Option<Value> {
    let (id, config, split) = match value {
        Value::String(id) => (id.as_str(), None, None),
        Value::Object(o) => (
            o.get("id")?.as_str()?,
            o.get("config").and_then(Value::as_str),
            o.get("split").and_then(Value::as_str),
        ),
        _ => return None,
    };
    match hub_id(id) {
        HubId::Id(id) | HubId::FromCache(id) => Some(serde_json::json!({
            "id": id, "config": config, "split": split,
        })),
        HubId::LocalPath => None,
    }
}

/// An evaluation result with a metric name and a numeric value; its dataset checked as above.
fn evaluation(value: &Value) -> Option<Value> {
    let o = value.as_object()?;
    let metric = o.get("metric")?.as_str()?;
    let v = o.get("value").filter(|v| v.is_number())?;
    Some(serde_json::json!({
        "task": o.get("task").and_then(Value::as_str),
        "dataset": o.get("dataset").and_then(dataset),
        "metric": metric,
        "value": v,
        "step": o.get("step").and_then(Value::as_u64),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::write_record;

    fn info() -> TrainingInfo {
        serde_json::from_value(serde_json::json!({
            "integration": "transformers",
            "base_model": "/root/.cache/huggingface/hub/models--tiny-org--tiny-llama/snapshots/abc",
            "model_class": "LlamaForCausalLM",
            "parameters_total": 5760,
            "parameters_trainable": 5760,
            "datasets": [
                {"id": "tiny-org/tiny-stories", "config": "default", "split": "train"},
                {"id": "/data/local.json", "config": null, "split": "train"}
            ],
            "hyperparameters": {"learning_rate": 0.001, "total_train_batch_size": 8},
            "evaluation": [
                {"task": "text-generation", "dataset": {"id": "tiny-org/tiny-stories",
                 "config": "default", "split": "validation"}, "metric": "loss", "value": 4.1,
                 "step": 4},
                {"metric": "broken", "value": "high"}
            ],
            "world_size": 1,
            "software": {"python": "3.11.7", "torch": "2.15.0"},
            "read": {"hyperparameters": "TrainingArguments fields that differ from their defaults"}
        }))
        .unwrap()
    }

    fn closed(dir: &Path, info: TrainingInfo) {
        let mut r = RunRecord::new(RecordKind::Training, "n1".into(), "k".into());
        r.start = Some("2026-11-27T08:00:00Z".into());
        r.end = Some("2026-11-27T09:00:00Z".into());
        r.training = Some(info);
        r.finish();
        write_record(&dir.join(RECORD_DIR), r).unwrap();
    }

    #[test]
    fn training_info_becomes_facts_with_the_process_as_source() {
        let dir = tempfile::tempdir().unwrap();
        closed(dir.path(), info());
        let mut known = Facts::new();
        known.set(
            paths::TRAINING_SOFTWARE,
            serde_json::json!({"transformers": "5.25.0", "torch": "2.0"}),
            Source::file("config.json", "transformers_version"),
        );
        let f = collect(dir.path(), &known);
        assert_eq!(f.str(paths::MODEL_BASE_MODEL), Some("tiny-org/tiny-llama"));
        assert_eq!(f.str(paths::MODEL_CLASS), Some("LlamaForCausalLM"));
        assert_eq!(f.u64(paths::PARAMETERS_TOTAL), Some(5760));
        assert_eq!(
            f.value(paths::TRAINING_DATASETS),
            Some(&serde_json::json!([
                {"id": "tiny-org/tiny-stories", "config": "default", "split": "train"}
            ]))
        );
        let results = f.value(paths::EVALUATION_RESULTS).unwrap();
        assert_eq!(results.as_array().unwrap().len(), 1);
        assert_eq!(results[0]["dataset"]["split"], "validation");
        assert_eq!(results[0]["step"], 4);
        assert_eq!(f.u64(paths::TRAINING_WORLD_SIZE), Some(1));
        let software = f.value(paths::TRAINING_SOFTWARE).unwrap();
        assert_eq!(software["torch"], "2.15.0");
        assert_eq!(software["transformers"], "5.25.0");
        let source = f
            .get(paths::TRAINING_HYPERPARAMETERS)
            .unwrap()
            .source
            .to_string();
        assert_eq!(
            source,
            "training process: transformers: TrainingArguments fields that differ from their \
             defaults (.cardfill/n1_k.json)"
        );
        assert!(f.warnings().is_empty(), "{:?}", f.warnings());
    }

    #[test]
    fn live_parameters_that_disagree_with_the_files_warn() {
        let dir = tempfile::tempdir().unwrap();
        closed(dir.path(), info());
        let mut known = Facts::new();
        known.set(
            paths::PARAMETERS_TOTAL,
            9000u64,
            Source::file("model.safetensors", "header"),
        );
        let f = collect(dir.path(), &known);
        assert!(!f.contains(paths::PARAMETERS_TOTAL));
        assert_eq!(f.u64(paths::PARAMETERS_TRAINABLE), Some(5760));
        let w = &f.warnings()[0];
        assert_eq!(w.code, "parameters-disagree");
        assert!(w.message.contains("5760 total"), "{}", w.message);
    }

    #[test]
    fn an_adapter_is_compared_on_its_trainable_parameters_only() {
        let dir = tempfile::tempdir().unwrap();
        closed(dir.path(), info());
        let mut known = Facts::new();
        let src = || Source::file("adapter_model.safetensors", "header");
        known.set(
            paths::MODEL_ADAPTER,
            serde_json::json!({"type": "LORA"}),
            src(),
        );
        known.set(paths::PARAMETERS_TOTAL, 128u64, src());
        known.set(paths::PARAMETERS_TRAINABLE, 5760u64, src());
        let f = collect(dir.path(), &known);
        assert!(f.warnings().is_empty(), "{:?}", f.warnings());
        assert!(!f.contains(paths::PARAMETERS_TOTAL));
    }

    #[test]
    fn a_local_base_model_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut i = info();
        i.base_model = Some("./my-model".into());
        closed(dir.path(), i);
        let f = collect(dir.path(), &Facts::new());
        assert!(!f.contains(paths::MODEL_BASE_MODEL));
        assert_eq!(f.warnings()[0].code, "base-model-local-path");
    }

    #[test]
    fn begin_then_end_closes_one_record_without_counting_twice() {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join(RECORD_DIR);
        let (begun, path, _) = begin_training(&rec).unwrap();
        let path = path.unwrap();
        assert!(begun.open_counters_mj.is_some());
        assert!(begun.end.is_none());
        let (_, closed_path, _) =
            end_training(&rec, Some(begun.run_key.clone()), Some(info())).unwrap();
        assert_eq!(closed_path.as_deref(), Some(path.as_path()));
        let (found, problems) = crate::record::read_records(&rec);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(found.len(), 1);
        let r = &found[0].record;
        assert_eq!(r.kind, RecordKind::Training);
        assert_eq!(r.processes, 1);
        assert!(r.open_counters_mj.is_none());
        assert_eq!(r.start, begun.start);
        assert!(r.end.is_some() && r.wall_s.is_some());
        assert_eq!(r.training, Some(info()));
    }

    #[test]
    fn an_update_replaces_the_facts_and_keeps_the_times() {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join(RECORD_DIR);
        let (begun, _, _) = begin_training(&rec).unwrap();
        let key = Some(begun.run_key.clone());
        end_training(&rec, key.clone(), Some(info())).unwrap();
        let before = crate::record::read_records(&rec).0[0].record.clone();
        let mut later = info();
        later
            .hyperparameters
            .insert("num_train_epochs".into(), 2.into());
        update_training(&rec, key, later.clone()).unwrap();
        let (found, _) = crate::record::read_records(&rec);
        assert_eq!(found.len(), 1);
        let r = &found[0].record;
        assert_eq!(r.training.as_ref(), Some(&later));
        assert_eq!(
            (&r.start, &r.end, r.processes),
            (&before.start, &before.end, 1)
        );
    }

    #[test]
    fn a_run_record_of_the_same_key_absorbs_the_training_record() {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join(RECORD_DIR);
        let (begun, _, _) = begin_training(&rec).unwrap();
        end_training(&rec, Some(begun.run_key.clone()), Some(info())).unwrap();
        // `cardfill run` around the training ends later, under the key it handed down.
        let mut run = RunRecord::new(RecordKind::Run, begun.node.clone(), begun.run_key.clone());
        run.start = Some("2000-01-01T00:00:00Z".into());
        run.end = Some(format_time(Utc::now() + chrono::Duration::seconds(5)));
        run.finish();
        write_record(&rec, run).unwrap();
        let (found, _) = crate::record::read_records(&rec);
        assert_eq!(found.len(), 1, "one node, one run: one record");
        let r = &found[0].record;
        assert_eq!(r.kind, RecordKind::Run);
        assert_eq!(r.start.as_deref(), Some("2000-01-01T00:00:00Z"));
        assert!(r.training.is_some());
        assert_eq!(r.processes, 2);
    }
}
