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
pub fn collect(dir: &Path, processes: Option<u64>) -> Facts {
    let mut facts = Facts::new();
    if let Some((mut hp, n_gpu)) = training_args(dir) {
        let world = processes.unwrap_or(1);
        let per_device = hp
            .get("per_device_train_batch_size")
            .and_then(Value::as_u64);
        let accumulation = hp
            .get("gradient_accumulation_steps")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let mut method = "pickled TrainingArguments walked, never executed".to_owned();
        if let Some(b) = per_device {
            let total = b * n_gpu.max(1) * accumulation * world;
            hp.insert("total_train_batch_size".into(), total.into());
            method.push_str(&format!(
                "; total_train_batch_size = {b} per device × {} GPU(s) per process × {accumulation} \
                 accumulation × {world} process(es){}",
                n_gpu.max(1),
                if processes.is_none() { " (no launch config: 1 assumed)" } else { "" }
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

/// The hyperparameters of `training_args.bin` and its `_n_gpu`.
fn training_args(dir: &Path) -> Option<(Map<String, Value>, u64)> {
    let path = dir.join("training_args.bin");
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
