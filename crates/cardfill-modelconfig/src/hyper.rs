//! Training hyperparameters → `training.hyperparameters`: the pickled `TrainingArguments` of
//! `training_args.bin` (walked by cardfill's pickle reader, never executed), else the training
//! YAML configs of axolotl, LLaMA-Factory and TRL found in the directory.
//!
//! What is kept: the values the Trainer's own card always shows (learning rate, batch sizes,
//! accumulation, seed, optimizer, scheduler, length) and every other listed field whose value
//! differs from its `TrainingArguments` default; plus `total_train_batch_size` = per-device ×
//! GPUs of the process (`_n_gpu`) × accumulation × processes of the launch config (1 when none).

use std::path::Path;

use cardfill_checkpoint::pickle::{Id, Node, Pickle};
use cardfill_facts::{Facts, Source, Value, paths};
use serde_json::Map;

use crate::listing::Listing;

/// Fields always shown (as the Trainer's card does).
const CORE: [&str; 7] = [
    "learning_rate",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "seed",
    "optim",
    "lr_scheduler_type",
];

/// Fields shown when they differ from the `TrainingArguments` default (transformers 4.57/5.x).
fn default_of(field: &str) -> Option<Value> {
    Some(match field {
        "num_train_epochs" => Value::from(3.0),
        "max_steps" => Value::from(-1),
        "warmup_steps" => Value::from(0),
        "warmup_ratio" => Value::from(0.0),
        "weight_decay" => Value::from(0.0),
        "adam_beta1" => Value::from(0.9),
        "adam_beta2" => Value::from(0.999),
        "adam_epsilon" => Value::from(1e-8),
        "max_grad_norm" => Value::from(1.0),
        "label_smoothing_factor" => Value::from(0.0),
        "fp16" | "bf16" | "gradient_checkpointing" | "torch_compile" => Value::Bool(false),
        "tf32" | "neftune_noise_alpha" => Value::Null,
        _ => return None,
    })
}

const SHOWN_IF_CHANGED: [&str; 17] = [
    "num_train_epochs",
    "max_steps",
    "warmup_steps",
    "warmup_ratio",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "label_smoothing_factor",
    "fp16",
    "bf16",
    "tf32",
    "gradient_checkpointing",
    "torch_compile",
    "neftune_noise_alpha",
    "lr_scheduler_kwargs",
];

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
        _ => a == b,
    }
}

/// Collects `training.hyperparameters` from `dir`; `processes` is the launch config's process
/// count when one was found.
pub(crate) fn collect(listing: &Listing<'_>, processes: Option<u64>) -> Facts {
    let dir = listing.dir();
    let mut facts = Facts::new();
    let args = dir.join("training_args.bin");
    if !(cardfill_facts::read::may_exist(&args) && args.is_file()) {
        yaml_configs(listing, processes, &mut facts);
        if !facts.contains(paths::TRAINING_HYPERPARAMETERS) {
            deepspeed_config(listing, processes, &mut facts);
        }
        return facts;
    }
    if let Some((mut hp, n_gpu)) = training_args(dir) {
        let mut method = "pickled TrainingArguments walked, never executed".to_owned();
        if let Some(b) = Batch::of(&hp, n_gpu, processes) {
            hp.insert("total_train_batch_size".into(), b.total().into());
            method.push_str(&format!(
                "; total_train_batch_size = {} per device × {} GPU(s) per process × {} \
                 accumulation × {} process(es){}",
                b.per_device,
                b.gpus,
                b.accumulation,
                b.world,
                if processes.is_none() {
                    " (no launch config: 1 assumed)"
                } else {
                    ""
                }
            ));
        }
        facts.set(
            paths::TRAINING_HYPERPARAMETERS,
            Value::Object(hp),
            Source::file("training_args.bin", method),
        );
    }
    facts
}

/// The effective batch and its parts: per device × GPUs per process × accumulation × processes.
struct Batch {
    per_device: u64,
    gpus: u64,
    accumulation: u64,
    world: u64,
}

impl Batch {
    /// From the hyperparameters; `None` without a per-device batch size. `gpus` and a missing
    /// `processes` count as 1.
    fn of(hp: &Map<String, Value>, gpus: u64, processes: Option<u64>) -> Option<Self> {
        Some(Self {
            per_device: hp.get("per_device_train_batch_size")?.as_u64()?,
            gpus: gpus.max(1),
            accumulation: hp
                .get("gradient_accumulation_steps")
                .and_then(Value::as_u64)
                .unwrap_or(1),
            world: processes.unwrap_or(1),
        })
    }

    fn total(&self) -> u64 {
        self.per_device * self.gpus * self.accumulation * self.world
    }
}

/// Keys of axolotl, LLaMA-Factory and TRL configs → `TrainingArguments` names.
const ALIASES: [(&str, &str); 6] = [
    ("micro_batch_size", "per_device_train_batch_size"),
    ("eval_batch_size", "per_device_eval_batch_size"),
    ("num_epochs", "num_train_epochs"),
    ("lr_scheduler", "lr_scheduler_type"),
    ("optimizer", "optim"),
    ("sequence_len", "max_seq_length"),
];

/// The regular files of the listing whose names end with one of `suffixes` and that hold at
/// most 1 MiB of UTF-8 text, as (name, text) sorted by name; unreadable ones are left out.
/// Weight indexes (`*.index.json`) are never configs: not read.
fn small_files(listing: &Listing<'_>, suffixes: &[&str]) -> Vec<(String, String)> {
    let dir = listing.dir();
    listing
        .names()
        .iter()
        // Last bytes first: most names (weight shards) end otherwise, and are then left
        // without a slice comparison.
        .filter(|n| {
            suffixes
                .iter()
                .any(|s| n.as_bytes().last() == s.as_bytes().last() && n.ends_with(s))
                && !n.ends_with(".index.json")
        })
        .filter_map(|name| {
            let path = dir.join(&**name);
            let text = cardfill_facts::read::read_to_string(&path, cardfill_facts::read::SMALL_CAP)
                .ok()?;
            Some((name.to_string(), text))
        })
        .collect()
}

/// A training YAML config in `dir`: axolotl (`micro_batch_size`, `datasets[].path`),
/// LLaMA-Factory (`stage`, `finetuning_type`) or TRL (`dataset_name`).
fn yaml_configs(listing: &Listing<'_>, processes: Option<u64>, facts: &mut Facts) {
    for (name, text) in small_files(listing, &[".yaml", ".yml"]) {
        let Ok(Value::Object(cfg)) = serde_norway::from_str::<Value>(&text) else {
            continue;
        };
        let kind = if cfg.contains_key("micro_batch_size") || cfg.contains_key("base_model") {
            "axolotl"
        } else if cfg.contains_key("stage") && cfg.contains_key("finetuning_type") {
            "LLaMA-Factory"
        } else if cfg.contains_key("dataset_name") && cfg.contains_key("model_name_or_path") {
            "TRL"
        } else {
            continue;
        };
        let mut hp = Map::new();
        for (k, v) in &cfg {
            let k = ALIASES
                .iter()
                .find(|(from, _)| from == k)
                .map_or(k.as_str(), |(_, to)| to);
            let keep = CORE.contains(&k)
                || k == "num_train_epochs"
                || k == "max_seq_length"
                || SHOWN_IF_CHANGED.contains(&k) && default_of(k).is_none_or(|d| !same(v, &d));
            if keep && !v.is_null() && !v.is_object() && !v.is_array() {
                hp.insert(k.to_owned(), v.clone());
            }
        }
        if let Some(b) = Batch::of(&hp, 1, processes) {
            hp.insert("total_train_batch_size".into(), b.total().into());
        }
        if !hp.is_empty() {
            facts.set(
                paths::TRAINING_HYPERPARAMETERS,
                Value::Object(hp),
                Source::file(&name, format!("{kind} training config")),
            );
        }
        let hub = |v: Option<&Value>| match v.and_then(Value::as_str).map(crate::hub_id) {
            Some(crate::HubId::Id(id) | crate::HubId::FromCache(id)) => Some(id),
            _ => None,
        };
        let base = hub(cfg.get("base_model")).or_else(|| hub(cfg.get("model_name_or_path")));
        if let Some(id) = base {
            facts.set_if_absent(
                paths::MODEL_BASE_MODEL,
                id,
                Source::file(&name, format!("{kind} base model")),
            );
        }
        let mut datasets = Vec::new();
        let s = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
        if let Some(list) = cfg.get("datasets").and_then(Value::as_array) {
            for d in list {
                if let Some(id) = hub(d.get("path")) {
                    datasets.push(serde_json::json!({
                        "id": id, "config": s(d, "name"), "split": s(d, "split"),
                    }));
                }
            }
        }
        if let Some(id) = hub(cfg.get("dataset_name")) {
            let c = Value::Object(cfg.clone());
            datasets.push(serde_json::json!({
                "id": id, "config": s(&c, "dataset_config"), "split": s(&c, "dataset_train_split"),
            }));
        }
        if !datasets.is_empty() {
            facts.set_if_absent(
                paths::TRAINING_DATASETS,
                datasets,
                Source::file(&name, format!("{kind} datasets (Hub ids only)")),
            );
        }
        return;
    }
}

/// A DeepSpeed config's own values (those not left to the Trainer as `"auto"`):
/// micro batch, accumulation, optimizer, learning rate, scheduler, gradient clipping.
fn deepspeed_config(listing: &Listing<'_>, processes: Option<u64>, facts: &mut Facts) {
    for (name, text) in small_files(listing, &[".json"]) {
        if !text.contains("zero_optimization") && !text.contains("train_micro_batch_size_per_gpu") {
            continue;
        }
        let Ok(ds) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let given = |v: Option<&Value>| {
            v.filter(|v| v.is_number() || (v.is_string() && *v != "auto"))
                .cloned()
        };
        let mut hp = Map::new();
        for (key, value) in [
            (
                "per_device_train_batch_size",
                given(ds.get("train_micro_batch_size_per_gpu")),
            ),
            (
                "gradient_accumulation_steps",
                given(ds.get("gradient_accumulation_steps")),
            ),
            ("optim", given(ds.pointer("/optimizer/type"))),
            ("learning_rate", given(ds.pointer("/optimizer/params/lr"))),
            (
                "weight_decay",
                given(ds.pointer("/optimizer/params/weight_decay")),
            ),
            ("lr_scheduler_type", given(ds.pointer("/scheduler/type"))),
            (
                "warmup_steps",
                given(ds.pointer("/scheduler/params/warmup_num_steps")),
            ),
            ("max_grad_norm", given(ds.get("gradient_clipping"))),
        ] {
            if let Some(v) = value {
                hp.insert(key.to_owned(), v);
            }
        }
        let total = given(ds.get("train_batch_size"))
            .and_then(|v| v.as_u64())
            .or_else(|| {
                let b = hp.get("per_device_train_batch_size")?.as_u64()?;
                let a = hp
                    .get("gradient_accumulation_steps")
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                Some(b * a * processes?)
            });
        if let Some(t) = total {
            hp.insert("total_train_batch_size".into(), t.into());
        }
        if !hp.is_empty() {
            facts.set(
                paths::TRAINING_HYPERPARAMETERS,
                Value::Object(hp),
                Source::file(&name, "DeepSpeed config (values not left as \"auto\")"),
            );
            return;
        }
    }
}

/// The hyperparameters of `training_args.bin` and its `_n_gpu`.
fn training_args(dir: &Path) -> Option<(Map<String, Value>, u64)> {
    let path = dir.join("training_args.bin");
    if !cardfill_facts::read::may_exist(&path) {
        return None;
    }
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > (16 << 20) {
        return None;
    }
    let tf = cardfill_checkpoint::pytorch::read(&path, Path::new("training_args.bin")).ok()?;
    let pk = &tf.pickle;
    let class = pk.class_of(pk.root)?;
    // TrainingArguments and its subclasses (Seq2SeqTrainingArguments, TRL's SFTConfig, ...).
    if !(class.contains("TrainingArguments") || class.contains("Config")) {
        return None;
    }
    let field = |name: &str| pk.get(pk.root, name).and_then(|id| plain(pk, id, 0));
    let mut hp = Map::new();
    for name in CORE {
        if let Some(v) = field(name).filter(|v| !v.is_null()) {
            hp.insert(name.to_owned(), v);
        }
    }
    for name in SHOWN_IF_CHANGED {
        let Some(v) = field(name) else { continue };
        let changed = match default_of(name) {
            Some(d) => !same(&v, &d),
            None => !(v.is_null() || v.as_object().is_some_and(Map::is_empty)),
        };
        if changed {
            hp.insert(name.to_owned(), v);
        }
    }
    // `max_steps` wins over epochs when set: the epoch count is then not what was run.
    if hp.contains_key("max_steps") {
        hp.remove("num_train_epochs");
    } else if let Some(e) = field("num_train_epochs") {
        hp.insert("num_train_epochs".into(), e);
    }
    let n_gpu = field("_n_gpu").and_then(|v| v.as_u64()).unwrap_or(1);
    Some((hp, n_gpu))
}

/// A pickled value as JSON: numbers, strings, booleans, None, enums (their value), and small
/// dicts and lists of those.
fn plain(pk: &Pickle, id: Id, depth: u32) -> Option<Value> {
    if depth > 4 {
        return None;
    }
    Some(match pk.node(id) {
        Node::None => Value::Null,
        Node::Bool(b) => Value::Bool(*b),
        Node::Int(i) => Value::from(*i),
        Node::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number)?,
        Node::Str(s) => Value::String(s.clone()),
        // An enum member: `SchedulerType('cosine')`.
        Node::Call { args, .. } => match pk.node(*args) {
            Node::Tuple(items) if items.len() == 1 => match pk.node(items[0]) {
                Node::Str(s) => Value::String(s.clone()),
                _ => return None,
            },
            _ => return None,
        },
        Node::Dict(entries) if entries.len() <= 32 => {
            let mut m = Map::new();
            for (k, v) in entries {
                m.insert(pk.str(*k)?.to_owned(), plain(pk, *v, depth + 1)?);
            }
            Value::Object(m)
        }
        Node::List(items) | Node::Tuple(items) if items.len() <= 32 => Value::Array(
            items
                .iter()
                .map(|i| plain(pk, *i, depth + 1))
                .collect::<Option<Vec<_>>>()?,
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The collector on `dir`, listed afresh.
    fn collect(dir: &Path, processes: Option<u64>) -> Facts {
        super::collect(&Listing::new(dir), processes)
    }

    /// An axolotl config (the shape of its `examples/llama-3/lora-1b.yml`): hyperparameters
    /// under TrainingArguments' names, Hub datasets only, the base model.
    #[test]
    fn axolotl_yaml_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.yml"),
            "base_model: NousResearch/Llama-3.2-1B\n\nload_in_8bit: true\nadapter: lora\n\
             datasets:\n  - path: teknium/GPT4-LLM-Cleaned\n    type: alpaca\n  - path: ./data/local.jsonl\n    type: alpaca\n\
             sequence_len: 2048\nmicro_batch_size: 2\ngradient_accumulation_steps: 4\nnum_epochs: 1\n\
             optimizer: adamw_8bit\nlr_scheduler: cosine\nlearning_rate: 0.0002\nwarmup_steps: 10\n\
             weight_decay: 0.0\nbf16: auto\n",
        )
        .unwrap();
        let f = collect(dir.path(), Some(8));
        let hp = f.value(paths::TRAINING_HYPERPARAMETERS).unwrap();
        assert_eq!(hp["per_device_train_batch_size"], 2);
        assert_eq!(hp["total_train_batch_size"], 64);
        assert_eq!(hp["optim"], "adamw_8bit");
        assert_eq!(hp["lr_scheduler_type"], "cosine");
        assert_eq!(hp["num_train_epochs"], 1);
        assert!(hp.get("weight_decay").is_none(), "a default is not shown");
        assert_eq!(
            f.value(paths::TRAINING_DATASETS),
            Some(
                &serde_json::json!([{"id": "teknium/GPT4-LLM-Cleaned", "config": null, "split": null}])
            )
        );
        assert_eq!(
            f.str(paths::MODEL_BASE_MODEL),
            Some("NousResearch/Llama-3.2-1B")
        );
    }

    /// A DeepSpeed config with its own batch and optimizer (values left as "auto" skipped).
    #[test]
    fn deepspeed_config_values() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ds_config.json"),
            r#"{"train_batch_size": 64, "train_micro_batch_size_per_gpu": 4,
                "gradient_accumulation_steps": 2,
                "optimizer": {"type": "AdamW", "params": {"lr": 3e-5, "weight_decay": "auto"}},
                "scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": 100}},
                "gradient_clipping": 1.0, "zero_optimization": {"stage": 2}}"#,
        )
        .unwrap();
        let f = collect(dir.path(), None);
        let hp = f.value(paths::TRAINING_HYPERPARAMETERS).unwrap();
        assert_eq!(hp["per_device_train_batch_size"], 4);
        assert_eq!(hp["total_train_batch_size"], 64);
        assert_eq!(hp["learning_rate"], 3e-5);
        assert_eq!(hp["optim"], "AdamW");
        assert!(hp.get("weight_decay").is_none());
    }

    /// transformers 5.25's `training_args.bin`: the values the generator passed, equal to the
    /// figures it recorded.
    #[test]
    fn real_training_args_give_the_hyperparameters() {
        let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/real");
        let figures: Value =
            serde_json::from_str(&std::fs::read_to_string(real.join("figures.json")).unwrap())
                .unwrap();
        for case in ["tf5-trainer", "tf5-peft-trainer"] {
            let f = collect(&real.join(case), None);
            let hp = f.value(paths::TRAINING_HYPERPARAMETERS).unwrap();
            for (k, v) in figures[case]["hyperparameters"].as_object().unwrap() {
                assert!(same(&hp[k], v), "{case} {k}: {} vs {v}", hp[k]);
            }
            assert!(hp.get("output_dir").is_none());
            assert!(hp.get("adam_beta1").is_none(), "a default is not shown");
        }
    }
}
