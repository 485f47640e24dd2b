//! The checkpoints measured: full-size models as sparse files (real headers, no weight data),
//! made by `cardfill-testkit` from real configs.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cardfill_testkit::TensorSpec;
use serde_json::{Value, json};

/// Llama-3.1-405B's `config.json` (meta-llama/Llama-3.1-405B), the fields that shape the weights.
const LLAMA31_405B: &str = r#"{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "hidden_act": "silu",
  "hidden_size": 16384,
  "intermediate_size": 53248,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 128,
  "num_hidden_layers": 126,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0",
  "vocab_size": 128256
}"#;

/// Llama-3-70B's `config.json` (meta-llama/Meta-Llama-3-70B).
const LLAMA3_70B: &str = r#"{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "hidden_act": "silu",
  "hidden_size": 8192,
  "intermediate_size": 28672,
  "max_position_embeddings": 8192,
  "model_type": "llama",
  "num_attention_heads": 64,
  "num_hidden_layers": 80,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.40.0.dev0",
  "vocab_size": 128256
}"#;

/// Llama-3.2-3B's `config.json` (meta-llama/Llama-3.2-3B): 254 tensors, embeddings tied.
const LLAMA32_3B: &str = r#"{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 3072,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 24,
  "num_hidden_layers": 28,
  "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0",
  "vocab_size": 128256
}"#;

/// TinyLlama-1.1B's `config.json`, the model fine-tuned in the trainer output directory.
const TINYLLAMA_1B: &str = r#"{
  "_name_or_path": "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T",
  "architectures": ["LlamaForCausalLM"],
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "intermediate_size": 5632,
  "max_position_embeddings": 2048,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 22,
  "num_key_value_heads": 4,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.46.0",
  "vocab_size": 32000
}"#;

/// Llama-2-7B-chat's `config.json`, the repository's copy of the real case.
const LLAMA2_7B: &str = include_str!("../../../tests/fixtures/cases/llama2-7b-chat-hf/config.json");

/// Small real files a Trainer leaves in each `checkpoint-N/` (from the PEFT/TinyLlama case).
const TRAINER_FILES: [(&str, &[u8]); 4] = [
    (
        "rng_state.pth",
        include_bytes!(
            "../../../tests/fixtures/cases/peft-lora-tinyllama-trainer-ckpt/rng_state.pth"
        ),
    ),
    (
        "scheduler.pt",
        include_bytes!(
            "../../../tests/fixtures/cases/peft-lora-tinyllama-trainer-ckpt/scheduler.pt"
        ),
    ),
    (
        "scaler.pt",
        include_bytes!("../../../tests/fixtures/cases/peft-lora-tinyllama-trainer-ckpt/scaler.pt"),
    ),
    (
        "training_args.bin",
        include_bytes!(
            "../../../tests/fixtures/cases/peft-lora-tinyllama-trainer-ckpt/training_args.bin"
        ),
    ),
];

/// Number of `checkpoint-N/` folders in the trainer output directory.
pub const TRAINER_CHECKPOINTS: usize = 40;
/// Steps between two trainer checkpoints.
const SAVE_STEPS: usize = 250;

/// What kind of weights a checkpoint holds (decides which baselines apply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Sharded safetensors with an index: the Python baselines apply.
    ShardedSafetensors,
    /// The 405B checkpoint again in F32: twice the weight bytes, the same files and tensors.
    WeightBytesControl,
    /// Sharded PyTorch `.bin` with an index.
    TorchBin,
    /// A Trainer output directory of `checkpoint-N/` folders.
    TrainerOutput,
    /// `config.json` alone: cardfill's fixed cost (start-up, config, card).
    ConfigOnly,
    /// Measured against the floor program only (no Python baselines).
    FloorOnly,
    /// One header with very many tensors: peak memory.
    ManyTensors,
}

/// One generated checkpoint directory.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Short name for the table (`405B`).
    pub key: &'static str,
    /// One line saying what it is.
    pub what: String,
    /// The directory given to cardfill.
    pub dir: PathBuf,
    /// What it holds.
    pub kind: Kind,
    /// Parameter total cardfill must report (`None`: no weights).
    pub expected_total: Option<u64>,
    /// Weight files (in the inspected checkpoint).
    pub weight_files: usize,
    /// Apparent size of every file under `dir`.
    pub apparent_bytes: u64,
    /// Bytes a header-only reader must read: 8-byte lengths + JSON headers (safetensors only).
    pub header_bytes: Option<u64>,
}

/// Generates every benchmark checkpoint under `root` (sparse files: a few MB on disk).
///
/// Returns the checkpoints made and, for each that could not be, its name and why.
pub fn generate(root: &Path) -> (Vec<Checkpoint>, Vec<String>) {
    let made = [
        ("config", config_only(&root.join("config-only"))),
        (
            "405B",
            sharded_safetensors(
                &root.join("llama-3.1-405b"),
                "405B",
                "Llama-3.1-405B",
                LLAMA31_405B,
                191,
                None,
            ),
        ),
        (
            "405B F32",
            sharded_safetensors(
                &root.join("llama-3.1-405b-f32"),
                "405B F32",
                "Llama-3.1-405B",
                LLAMA31_405B,
                191,
                Some("float32"),
            ),
        ),
        (
            "70B",
            sharded_safetensors(
                &root.join("llama-3-70b"),
                "70B",
                "Llama-3-70B",
                LLAMA3_70B,
                30,
                None,
            ),
        ),
        (
            "70B F32",
            sharded_safetensors(
                &root.join("llama-3-70b-f32"),
                "70B F32",
                "Llama-3-70B",
                LLAMA3_70B,
                162,
                Some("float32"),
            )
            .map(|c| Checkpoint {
                kind: Kind::FloorOnly,
                ..c
            }),
        ),
        (
            "3B",
            sharded_safetensors(
                &root.join("llama-3.2-3b"),
                "3B",
                "Llama-3.2-3B",
                LLAMA32_3B,
                254,
                None,
            )
            .map(|c| Checkpoint {
                kind: Kind::FloorOnly,
                ..c
            }),
        ),
        ("7B single", single_file(&root.join("llama-2-7b-single"))),
        ("7B .bin", torch_bin(&root.join("llama-2-7b-bin"))),
        ("trainer", trainer_output(&root.join("trainer-output"))),
        (
            "100k",
            many_tensors(&root.join("tensors-100k"), "100k", 100_000),
        ),
        (
            "1.44M",
            many_tensors(&root.join("tensors-1.44m"), "1.44M", 1_440_000),
        ),
    ];
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (key, result) in made {
        match result {
            Ok(c) => ok.push(c),
            Err(e) => failed.push(format!("{key}: cannot generate: {e:#}")),
        }
    }
    (ok, failed)
}

fn parse(config: &str) -> anyhow::Result<Value> {
    serde_json::from_str(config).context("embedded config.json")
}

fn tensors(config: &Value) -> anyhow::Result<Vec<TensorSpec>> {
    cardfill_testkit::decoder_tensors(config)
}

fn total(tensors: &[TensorSpec]) -> u64 {
    tensors.iter().map(TensorSpec::numel).sum()
}

fn write_config(dir: &Path, config: &str) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let path = dir.join("config.json");
    fs::write(&path, config).with_context(|| format!("cannot write `{}`", path.display()))
}

fn config_only(dir: &Path) -> anyhow::Result<Checkpoint> {
    write_config(dir, LLAMA31_405B)?;
    finish(Checkpoint {
        key: "config",
        what: "config.json only (Llama-3.1-405B): fixed cost, no weights".into(),
        dir: dir.to_owned(),
        kind: Kind::ConfigOnly,
        expected_total: None,
        weight_files: 0,
        apparent_bytes: 0,
        header_bytes: None,
    })
}

/// A sharded safetensors checkpoint of `config`; with `torch_dtype`, the config's dtype is
/// replaced (same tensors, other weight bytes: the control for "cost follows headers").
fn sharded_safetensors(
    dir: &Path,
    key: &'static str,
    model: &str,
    config: &str,
    shards: usize,
    torch_dtype: Option<&str>,
) -> anyhow::Result<Checkpoint> {
    let mut config = parse(config)?;
    if let Some(dtype) = torch_dtype {
        config["torch_dtype"] = dtype.into();
    }
    write_config(dir, &serde_json::to_string_pretty(&config)?)?;
    let specs = tensors(&config)?;
    cardfill_testkit::write_sharded_safetensors(dir, &specs, None, shards)?;
    let dtype = specs.first().map_or("?", |t| t.dtype.as_str());
    finish(Checkpoint {
        key,
        what: format!(
            "{model} dims, {dtype}, {} tensors in {shards} safetensors shards + index",
            specs.len()
        ),
        dir: dir.to_owned(),
        kind: if torch_dtype.is_some() {
            Kind::WeightBytesControl
        } else {
            Kind::ShardedSafetensors
        },
        expected_total: Some(total(&specs)),
        weight_files: shards,
        apparent_bytes: 0,
        header_bytes: None,
    })
}

/// Llama-2-7B as one `model.safetensors` (FP16, 291 tensors).
fn single_file(dir: &Path) -> anyhow::Result<Checkpoint> {
    write_config(dir, LLAMA2_7B)?;
    let specs = tensors(&parse(LLAMA2_7B)?)?;
    cardfill_testkit::write_safetensors(&dir.join("model.safetensors"), &specs)?;
    finish(Checkpoint {
        key: "7B single",
        what: format!(
            "Llama-2-7B-chat config, {} tensors in one model.safetensors",
            specs.len()
        ),
        dir: dir.to_owned(),
        kind: Kind::FloorOnly,
        expected_total: Some(total(&specs)),
        weight_files: 1,
        apparent_bytes: 0,
        header_bytes: None,
    })
}

/// One `model.safetensors` whose header holds `count` one-byte tensors with short names
/// (1.44 M of them make a 98 MB header, near the format's 100 MB limit): peak memory.
fn many_tensors(dir: &Path, key: &'static str, count: usize) -> anyhow::Result<Checkpoint> {
    use std::io::Write;
    fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let mut json = String::with_capacity(count * 70);
    json.push_str(r#"{"__metadata__":{"format":"pt"}"#);
    for i in 0..count {
        json.push_str(&format!(
            r#","{i}":{{"dtype":"U8","shape":[1],"data_offsets":[{i},{}]}}"#,
            i + 1
        ));
    }
    json.push('}');
    while !json.len().is_multiple_of(8) {
        json.push(' ');
    }
    let path = dir.join("model.safetensors");
    let mut file = fs::File::create(&path)?;
    file.write_all(&(json.len() as u64).to_le_bytes())?;
    file.write_all(json.as_bytes())?;
    file.set_len(8 + json.len() as u64 + count as u64)?;
    finish(Checkpoint {
        key,
        what: format!(
            "{count} tensors in one header of {:.1} MB",
            json.len() as f64 / 1e6
        ),
        dir: dir.to_owned(),
        kind: Kind::ManyTensors,
        expected_total: Some(count as u64),
        weight_files: 1,
        apparent_bytes: 0,
        header_bytes: None,
    })
}

fn torch_bin(dir: &Path) -> anyhow::Result<Checkpoint> {
    write_config(dir, LLAMA2_7B)?;
    let specs = tensors(&parse(LLAMA2_7B)?)?;
    cardfill_testkit::torch::write_sharded_torch(dir, &specs, 7)?;
    finish(Checkpoint {
        key: "7B .bin",
        what: format!(
            "Llama-2-7B-chat config, {} tensors in 7 PyTorch .bin shards + index",
            specs.len()
        ),
        dir: dir.to_owned(),
        kind: Kind::TorchBin,
        expected_total: Some(total(&specs)),
        weight_files: 7,
        apparent_bytes: 0,
        header_bytes: None,
    })
}

fn trainer_output(dir: &Path) -> anyhow::Result<Checkpoint> {
    let config = parse(TINYLLAMA_1B)?;
    let specs = tensors(&config)?;
    for i in 1..=TRAINER_CHECKPOINTS {
        let step = i * SAVE_STEPS;
        let ckpt = dir.join(format!("checkpoint-{step}"));
        write_config(&ckpt, TINYLLAMA_1B)?;
        cardfill_testkit::write_safetensors(&ckpt.join("model.safetensors"), &specs)?;
        for (name, bytes) in TRAINER_FILES {
            fs::write(ckpt.join(name), bytes)?;
        }
        let state = trainer_state(step);
        fs::write(
            ckpt.join("trainer_state.json"),
            serde_json::to_string_pretty(&state)?,
        )?;
    }
    finish(Checkpoint {
        key: "trainer",
        what: format!(
            "Trainer output: {TRAINER_CHECKPOINTS} checkpoint-N/ folders (TinyLlama-1.1B \
             model.safetensors, trainer_state.json, rng/scheduler/scaler/args), no root weights"
        ),
        dir: dir.to_owned(),
        kind: Kind::TrainerOutput,
        expected_total: Some(total(&specs)),
        weight_files: 1,
        apparent_bytes: 0,
        header_bytes: None,
    })
}

/// A `trainer_state.json` as the Trainer writes it at `step` (a log entry every 10 steps).
fn trainer_state(step: usize) -> Value {
    let log: Vec<Value> = (1..=step / 10)
        .map(|k| {
            let s = k * 10;
            json!({
                "epoch": s as f64 / 10_000.0,
                "grad_norm": 0.5 + (s % 7) as f64 / 10.0,
                "learning_rate": 2e-5 * (1.0 - s as f64 / 10_000.0),
                "loss": 2.0 - s as f64 / 10_000.0,
                "step": s
            })
        })
        .collect();
    json!({
        "best_metric": null,
        "best_model_checkpoint": null,
        "epoch": step as f64 / 10_000.0,
        "eval_steps": 500,
        "global_step": step,
        "is_hyper_param_search": false,
        "is_local_process_zero": true,
        "is_world_process_zero": true,
        "log_history": log,
        "logging_steps": 10,
        "max_steps": TRAINER_CHECKPOINTS * SAVE_STEPS,
        "num_input_tokens_seen": 0,
        "num_train_epochs": 1,
        "save_steps": SAVE_STEPS,
        "total_flos": 1.234e17 * step as f64,
        "train_batch_size": 8,
        "trial_name": null,
        "trial_params": null
    })
}

/// Fills in the sizes measured on disk.
fn finish(mut c: Checkpoint) -> anyhow::Result<Checkpoint> {
    let mut apparent = 0;
    let mut headers = 0;
    let mut any_header = false;
    walk(&c.dir, &mut |path, len| {
        apparent += len;
        if path.extension().is_some_and(|e| e == "safetensors") {
            let mut n = [0u8; 8];
            fs::File::open(path)?.read_exact(&mut n)?;
            headers += 8 + u64::from_le_bytes(n);
            any_header = true;
        }
        Ok(())
    })?;
    c.apparent_bytes = apparent;
    if any_header {
        c.header_bytes = Some(headers);
    }
    Ok(c)
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path, u64) -> std::io::Result<()>) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            walk(&entry.path(), f)?;
        } else {
            f(&entry.path(), meta.len())
                .with_context(|| format!("cannot read `{}`", entry.path().display()))?;
        }
    }
    Ok(())
}
