//! Trainer outputs: `trainer_state.json`, `train_results.json`, `all_results.json`, the
//! precision flags of `training_args.bin`, accelerate and DeepSpeed configs, and framework
//! versions → `training.*` facts.
//!
//! Rules: a streaming run's `num_train_epochs` (`i64::MAX`) is no epoch count; the runtimes of
//! several `train()` calls recorded in one `log_history` (a resumed run) are summed; the
//! training regime is only stated from evidence of mixed precision (or its absence) and is
//! phrased as the model card template does. `training_args.bin` is a pickle: it is scanned for
//! two booleans, never executed.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use cardfill_facts::{Facts, Source, Value, paths};
use serde_json::Map;

use crate::ConfigError;
use crate::listing::Listing;

/// Files larger than this are not configs (a stray dataset, weights): skipped.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// `num_train_epochs` at or above this is the streaming sentinel (`i64::MAX` as a float).
const STREAMING_EPOCHS: f64 = 1e15;

/// Collects the `training.*` facts of the trainer outputs in `dir`.
///
/// Each file is independent: a malformed one becomes a warning and the others are still read.
///
/// Also returns the directory's own `trainer_state.json`, read once here, for the results
/// collector (`None` when the state came from a `checkpoint-N` or could not be read).
pub(crate) fn collect(
    listing: &Listing<'_>,
) -> Result<(Facts, Option<Map<String, Value>>), ConfigError> {
    let mut files = Files {
        dir: listing.dir(),
        warnings: Facts::new(),
        listing,
    };
    let state = files.trainer_state();
    let results: Vec<(String, Map<String, Value>)> = ["train_results.json", "all_results.json"]
        .into_iter()
        .filter_map(|name| files.json_object(name).map(|o| (name.to_owned(), o)))
        .collect();
    let mut facts = Facts::new();
    run_figures(
        &mut facts,
        state.as_ref().map(|(p, o)| (p.as_str(), o)),
        &results,
    );
    if let Some((phrase, source)) = regime(&mut files, &mut facts) {
        facts.set(paths::TRAINING_REGIME, phrase, source);
    }
    if let Some((versions, source)) = software(&files) {
        facts.set(paths::TRAINING_SOFTWARE, Value::Object(versions), source);
    }
    facts.absorb(files.warnings);
    let own_state = state.and_then(|(name, state)| (name == "trainer_state.json").then_some(state));
    Ok((facts, own_state))
}

/// Reads files of `dir`, turning problems into warnings.
struct Files<'a, 'l> {
    dir: &'a Path,
    /// Warnings only: problems met reading.
    warnings: Facts,
    /// The directory's entries, listed once for every collector.
    listing: &'a Listing<'l>,
}

impl Files<'_, '_> {
    /// `name` as a JSON object, if it exists and is small enough; malformed → warning.
    fn json_object(&mut self, name: &str) -> Option<Map<String, Value>> {
        self.json_object_limited(name, MAX_CONFIG_BYTES)
    }

    fn json_object_limited(&mut self, name: &str, limit: u64) -> Option<Map<String, Value>> {
        let text = self.text(name, limit)?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(obj)) => Some(obj),
            Ok(_) => {
                self.malformed(name, "not a JSON object");
                None
            }
            Err(e) => {
                self.malformed(name, &e.to_string());
                None
            }
        }
    }

    /// The text of `name` (relative to the directory), if it is a file of at most `limit` bytes.
    fn text(&mut self, name: &str, limit: u64) -> Option<String> {
        match small_text(&self.dir.join(name), limit)? {
            Ok(text) => Some(text),
            Err(source) => {
                let err = ConfigError::Read {
                    path: PathBuf::from(name),
                    source,
                };
                self.warnings
                    .warn("trainer-file-unreadable", err.to_string());
                None
            }
        }
    }

    fn malformed(&mut self, name: &str, message: &str) {
        let err = ConfigError::Malformed {
            path: PathBuf::from(name),
            message: message.to_owned(),
        };
        self.warnings
            .warn("trainer-file-malformed", err.to_string());
    }

    /// `trainer_state.json` of the directory, else of its latest `checkpoint-N`.
    fn trainer_state(&mut self) -> Option<(String, Map<String, Value>)> {
        let here = self.dir.join("trainer_state.json");
        let name = if cardfill_facts::read::may_exist(&here) && here.symlink_metadata().is_ok() {
            "trainer_state.json".to_owned()
        } else {
            let latest = latest_checkpoint(self.dir, self.names())?;
            format!("{latest}/trainer_state.json")
        };
        let path = self.dir.join(&name);
        match read_state(&path) {
            Ok(state) => Some((name, state)),
            Err(StateError::Read(e)) if e.is_not_found() => None,
            Err(StateError::Read(e)) => {
                let err = ConfigError::Read {
                    path: PathBuf::from(&name),
                    source: e.into(),
                };
                self.warnings
                    .warn("trainer-file-unreadable", err.to_string());
                None
            }
            Err(StateError::Json(message)) => {
                self.malformed(&name, &message);
                None
            }
        }
    }

    /// Top-level files of the directory with one of `extensions`, sorted.
    fn names_with(&self, extensions: &[&str]) -> Vec<String> {
        self.names()
            .iter()
            .filter(|n| {
                // `stem.x` with a non-empty stem (the extensions have no dot of their own).
                // Last bytes first: most names (weight shards) end otherwise, and are then
                // left without a slice comparison.
                extensions.iter().any(|x| {
                    n.as_bytes().last() == x.as_bytes().last()
                        && n.strip_suffix(x)
                            .and_then(|head| head.strip_suffix('.'))
                            .is_some_and(|stem| !stem.is_empty())
                })
            })
            .map(|n| n.to_string())
            .collect()
    }

    /// Every entry of the directory (UTF-8 names), sorted.
    fn names(&self) -> &[Cow<'_, str>] {
        self.listing.names()
    }
}

/// The `checkpoint-N` sub-directory with the largest N among `names`.
fn latest_checkpoint(dir: &Path, names: &[Cow<'_, str>]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| {
            let step: u64 = n.strip_prefix("checkpoint-")?.parse().ok()?;
            dir.join(&**n)
                .join("trainer_state.json")
                .is_file()
                .then_some((step, n))
        })
        .max()
        .map(|(_, n)| n.to_string())
}

/// Runtime, speeds, steps, epochs, FLOs and best checkpoint.
fn run_figures(
    facts: &mut Facts,
    state: Option<(&str, &Map<String, Value>)>,
    results: &[(String, Map<String, Value>)],
) {
    let num = |obj: &Map<String, Value>, key: &str| obj.get(key).and_then(Value::as_f64);

    // Each completed train() call appends one entry with `train_runtime` to log_history.
    let sessions: Vec<&Map<String, Value>> = state
        .and_then(|(_, s)| s.get("log_history"))
        .and_then(Value::as_array)
        .map(|log| {
            log.iter()
                .filter_map(Value::as_object)
                .filter(|e| num(e, "train_runtime").is_some())
                .collect()
        })
        .unwrap_or_default();

    let mut runtime_set = false;
    if let (Some((state_path, _)), true) = (state, sessions.len() > 1) {
        let total: f64 = sessions
            .iter()
            .filter_map(|e| num(e, "train_runtime"))
            .sum();
        facts.set(
            paths::TRAINING_RUNTIME_S,
            total,
            Source::file(
                state_path,
                format!(
                    "sum of train_runtime over {} train() calls in log_history (resumed run)",
                    sessions.len()
                ),
            ),
        );
        runtime_set = true;
    }
    // The last train() call: speeds, and the runtime when it was the only one.
    let last: Option<(String, &Map<String, Value>)> = results
        .iter()
        .find(|(_, o)| num(o, "train_runtime").is_some())
        .map(|(p, o)| (p.clone(), o))
        .or_else(|| {
            let (path, _) = state?;
            sessions
                .last()
                .map(|e| (format!("{path} (log_history)"), *e))
        });
    if let Some((path, obj)) = last {
        if !runtime_set && let Some(v) = num(obj, "train_runtime") {
            facts.set(
                paths::TRAINING_RUNTIME_S,
                v,
                Source::file(&path, "train_runtime"),
            );
        }
        for (fact, key) in [
            (
                paths::TRAINING_SAMPLES_PER_SECOND,
                "train_samples_per_second",
            ),
            (paths::TRAINING_STEPS_PER_SECOND, "train_steps_per_second"),
        ] {
            if let Some(v) = num(obj, key) {
                facts.set(fact, v, Source::file(&path, key));
            }
        }
    }

    let streaming = state
        .is_some_and(|(_, s)| num(s, "num_train_epochs").is_some_and(|e| e >= STREAMING_EPOCHS));
    if let Some((path, s)) = state {
        if let Some(step) = s.get("global_step").and_then(Value::as_u64) {
            facts.set(
                paths::TRAINING_STEPS,
                step,
                Source::file(path, "global_step"),
            );
        }
        if !streaming && let Some(epoch) = num(s, "epoch") {
            facts.set(paths::TRAINING_EPOCHS, epoch, Source::file(path, "epoch"));
        }
        if let Some(flos) = num(s, "total_flos") {
            facts.set(paths::TRAINING_FLOS, flos, Source::file(path, "total_flos"));
        }
        if let Some(best) = s.get("best_model_checkpoint").and_then(Value::as_str) {
            // A path on the training machine: its last component names the checkpoint.
            let name = best
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(best);
            if !name.is_empty() && name != "." {
                facts.set(
                    paths::TRAINING_BEST_CHECKPOINT,
                    name,
                    Source::file(path, "best_model_checkpoint"),
                );
            }
        }
    }
    // Without a trainer state, the results files still give epochs and FLOs.
    if state.is_none()
        && let Some((path, obj)) = results.first()
    {
        if let Some(epoch) = num(obj, "epoch") {
            facts.set(paths::TRAINING_EPOCHS, epoch, Source::file(path, "epoch"));
        }
        if let Some(flos) = num(obj, "total_flos") {
            facts.set(paths::TRAINING_FLOS, flos, Source::file(path, "total_flos"));
        }
    }
}

/// Mixed precision as one piece of evidence says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mixed {
    Fp16,
    Bf16,
    Fp8,
    /// Evidence that no mixed precision was used: the regime follows the weights' dtype.
    No,
}

impl Mixed {
    fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "fp16" => Some(Self::Fp16),
            "bf16" => Some(Self::Bf16),
            "fp8" => Some(Self::Fp8),
            "no" | "none" | "fp32" => Some(Self::No),
            _ => None,
        }
    }
}

/// The training regime in the template's phrasing, from the strongest evidence found.
///
/// The launch configs read on the way also give the distributed setup, set into `setup`.
fn regime(files: &mut Files<'_, '_>, setup: &mut Facts) -> Option<(String, Source)> {
    let mut evidence: Vec<(Mixed, String, String)> = Vec::new(); // (mixed, file, method)
    if let Some(found) = training_args_flags(files.dir) {
        evidence.push(found);
    }
    accelerate_evidence(files, &mut evidence, setup);
    deepspeed_evidence(files, &mut evidence, setup);
    // A card that is not UTF-8 is reported by `fill` itself; one that is no regular file or too
    // large is said here too, since `inspect` reads no card of its own.
    if let Some(text) = files.card_text() {
        // Written by transformers' Trainer into its card when `fp16` was on.
        for line in text.lines() {
            let line = line.trim().trim_start_matches(['-', '*']).trim();
            if let Some(value) = line.strip_prefix("mixed_precision_training:") {
                let value = value.trim();
                if value == "Native AMP" || value.starts_with("Apex") {
                    evidence.push((
                        Mixed::Fp16,
                        "README.md".into(),
                        format!("mixed_precision_training: {value}"),
                    ));
                }
            }
        }
    }
    for name in files.names_with(&["sh", "sbatch", "slurm"]) {
        if let Some(text) = files.text(&name, MAX_CONFIG_BYTES)
            && let Some((mixed, flag)) = launch_flag(&text)
        {
            evidence.push((mixed, name, format!("{flag} on the command line")));
        }
    }
    let scaler = files.dir.join("scaler.pt");
    if cardfill_facts::read::may_exist(&scaler) && scaler.is_file() {
        // The Trainer saves a gradient scaler only for fp16 mixed precision.
        evidence.push((
            Mixed::Fp16,
            "scaler.pt".into(),
            "gradient scaler saved".into(),
        ));
    }

    let (mixed, file, method) = evidence.first()?.clone();
    if let Some((other, other_file, _)) = evidence.iter().find(|(m, ..)| *m != mixed) {
        files.warnings.warn(
            "training-regime-conflict",
            format!("`{file}` says {mixed:?} but `{other_file}` says {other:?}; kept `{file}`"),
        );
    }
    let phrase = match mixed {
        Mixed::Fp16 => "fp16 mixed precision",
        Mixed::Bf16 => "bf16 mixed precision",
        Mixed::Fp8 => "fp8 mixed precision",
        Mixed::No => {
            // Without mixed precision the regime is the dtype of the trained weights: the
            // config's (`dtype` from transformers 5, `torch_dtype` before), else a PEFT
            // adapter's own tensors.
            let (dtype, from) = match files.json_object("config.json") {
                Some(config) => {
                    let (key, dtype) = ["dtype", "torch_dtype"]
                        .into_iter()
                        .find_map(|k| Some((k, config.get(k)?.as_str()?.to_owned())))?;
                    (dtype, format!("config.json {key}"))
                }
                None => (
                    adapter_dtype(files.dir)?,
                    "adapter_model.safetensors dtype".to_owned(),
                ),
            };
            let phrase = match dtype.as_str() {
                "float32" => "fp32",
                "bfloat16" => "bf16 non-mixed precision",
                "float16" => "fp16 non-mixed precision",
                _ => return None,
            };
            let method = format!("{method}; {from} {dtype}");
            return Some((phrase.to_owned(), Source::file(file, method)));
        }
    };
    Some((phrase.to_owned(), Source::file(file, method)))
}

/// The one dtype of a PEFT adapter's tensors (`adapter_model.safetensors` header), as torch
/// names it (`float32`); `None` when mixed or unreadable.
fn adapter_dtype(dir: &Path) -> Option<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(dir.join("adapter_model.safetensors")).ok()?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).ok()?;
    let n = u64::from_le_bytes(len);
    if n > MAX_CONFIG_BYTES {
        return None;
    }
    let mut header = Vec::new();
    file.take(n).read_to_end(&mut header).ok()?;
    let header: Map<String, Value> = serde_json::from_slice(&header).ok()?;
    let mut dtypes = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, v)| v.get("dtype")?.as_str());
    let first = dtypes.next()?;
    if dtypes.any(|d| d != first) {
        return None;
    }
    Some(
        match first {
            "F32" => "float32",
            "BF16" => "bfloat16",
            "F16" => "float16",
            _ => return None,
        }
        .to_owned(),
    )
}

/// `fp16`/`bf16` of the pickled `TrainingArguments` in `training_args.bin`, found by scanning
/// the (uncompressed) pickle for the key followed by a boolean opcode.
fn training_args_flags(dir: &Path) -> Option<(Mixed, String, String)> {
    const FILE: &str = "training_args.bin";
    let path = dir.join(FILE);
    let bytes = cardfill_facts::read::read(&path, MAX_CONFIG_BYTES).ok()?;
    let fp16 = pickled_bool(&bytes, b"fp16");
    let bf16 = pickled_bool(&bytes, b"bf16");
    let (mixed, method) = match (fp16, bf16) {
        (Some(true), _) => (Mixed::Fp16, "fp16 = True"),
        (_, Some(true)) => (Mixed::Bf16, "bf16 = True"),
        (Some(false), Some(false)) => (Mixed::No, "fp16 = bf16 = False"),
        _ => return None,
    };
    Some((mixed, FILE.to_owned(), method.to_owned()))
}

/// The boolean stored right after the pickled string `key` (protocol 2–5 opcodes).
fn pickled_bool(bytes: &[u8], key: &[u8]) -> Option<bool> {
    let len = u32::try_from(key.len()).ok()?;
    let mut long = vec![b'X'];
    long.extend_from_slice(&len.to_le_bytes());
    long.extend_from_slice(key);
    let mut short = vec![0x8c, u8::try_from(key.len()).ok()?];
    short.extend_from_slice(key);
    for pattern in [long, short] {
        let mut from = 0;
        while let Some(at) = find(&bytes[from..], &pattern) {
            let mut i = from + at + pattern.len();
            // Skip a memo store: BINPUT n, LONG_BINPUT nnnn, MEMOIZE.
            match bytes.get(i) {
                Some(b'q') => i += 2,
                Some(b'r') => i += 5,
                Some(0x94) => i += 1,
                _ => {}
            }
            match bytes.get(i) {
                Some(0x88) => return Some(true),
                Some(0x89) => return Some(false),
                _ => from += at + 1,
            }
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `--fp16`/`--bf16` (not followed by a false value) on a launch command line.
fn launch_flag(script: &str) -> Option<(Mixed, String)> {
    let tokens: Vec<&str> = script
        .split(|c: char| c.is_whitespace() || c == '\\')
        .filter(|t| !t.is_empty())
        .collect();
    for (i, token) in tokens.iter().enumerate() {
        let token = token.trim_matches(['"', '\'']);
        let (flag, inline) = match token.split_once('=') {
            Some((f, v)) => (f, Some(v.trim_matches(['"', '\'']))),
            None => (token, None),
        };
        let mixed = match flag {
            "--fp16" => Mixed::Fp16,
            "--bf16" => Mixed::Bf16,
            "--mixed_precision" | "--mixed-precision" => {
                let value =
                    inline.or_else(|| tokens.get(i + 1).map(|t| t.trim_matches(['"', '\''])))?;
                let mixed = Mixed::from_name(value)?;
                return Some((mixed, format!("{flag} {value}")));
            }
            _ => continue,
        };
        let value = inline.or_else(|| {
            tokens
                .get(i + 1)
                .map(|t| t.trim_matches(['"', '\'']))
                .filter(|t| !t.starts_with('-'))
        });
        if value.is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "false" | "0")) {
            continue;
        }
        return Some((mixed, flag.to_owned()));
    }
    None
}

/// accelerate launch configs (`mixed_precision`, `distributed_type`, `num_processes`,
/// `num_machines`) among the directory's YAML files, and the DeepSpeed config they point to.
fn accelerate_evidence(
    files: &mut Files<'_, '_>,
    evidence: &mut Vec<(Mixed, String, String)>,
    setup: &mut Facts,
) {
    for name in files.names_with(&["yaml", "yml"]) {
        let Some(text) = files.text(&name, MAX_CONFIG_BYTES) else {
            continue;
        };
        let config: Value = match serde_norway::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                files.malformed(&name, &e.to_string());
                continue;
            }
        };
        let Some(config) = config.as_object() else {
            continue;
        };
        if !config.contains_key("distributed_type") && !config.contains_key("num_processes") {
            continue; // not an accelerate config
        }
        // The DeepSpeed config file it names, relative to the directory (never outside it).
        let ds = config
            .get("deepspeed_config")
            .and_then(|d| d.get("deepspeed_config_file"))
            .and_then(Value::as_str)
            .filter(|f| Path::new(f).is_relative() && !f.contains(".."))
            .and_then(|f| Some((f.to_owned(), files.json_object(f)?)));

        let mixed = config
            .get("mixed_precision")
            .and_then(Value::as_str)
            .and_then(|v| Some((Mixed::from_name(v)?, v)));
        match (mixed, &ds) {
            (Some((mixed, value)), _) => {
                evidence.push((mixed, name.clone(), format!("mixed_precision: {value}")));
            }
            (None, Some((ds_name, ds))) => {
                if let Some((mixed, method)) = deepspeed_precision(ds) {
                    evidence.push((mixed, ds_name.clone(), method));
                }
            }
            (None, None) => {}
        }

        let kind = config.get("distributed_type").and_then(Value::as_str);
        let Some(generic) = kind.and_then(distributed_name) else {
            continue; // a single process: no distributed setup
        };
        match (&ds, kind) {
            (Some((ds_name, ds)), Some("DEEPSPEED")) => setup.set_if_absent(
                paths::TRAINING_DISTRIBUTED,
                deepspeed_setup(ds),
                Source::file(ds_name.as_str(), "zero_optimization"),
            ),
            _ => setup.set_if_absent(
                paths::TRAINING_DISTRIBUTED,
                generic,
                Source::file(name.as_str(), "distributed_type"),
            ),
        };
        for (path, key) in [
            (paths::TRAINING_PROCESSES, "num_processes"),
            (paths::TRAINING_MACHINES, "num_machines"),
        ] {
            if let Some(n) = config.get(key).and_then(Value::as_u64) {
                setup.set_if_absent(path, n, Source::file(name.as_str(), key));
            }
        }
    }
}

/// accelerate's `distributed_type` as a reader knows it; `None` for a single process.
fn distributed_name(kind: &str) -> Option<&'static str> {
    match kind {
        "MULTI_GPU" | "MULTI_NPU" | "MULTI_XPU" | "MULTI_MLU" | "MULTI_MUSA" | "MULTI_HPU"
        | "MULTI_SDAA" => Some("DDP"),
        "MULTI_CPU" => Some("DDP (CPU)"),
        "FSDP" => Some("FSDP"),
        "DEEPSPEED" => Some("DeepSpeed"),
        "MEGATRON_LM" => Some("Megatron-LM"),
        "XLA" | "TPU" => Some("XLA"),
        _ => None,
    }
}

/// `DeepSpeed ZeRO-3 with CPU offload` from a DeepSpeed config.
fn deepspeed_setup(ds: &Map<String, Value>) -> String {
    let Some(zero) = ds.get("zero_optimization") else {
        return "DeepSpeed".into();
    };
    let mut text = match zero.get("stage").and_then(Value::as_u64) {
        Some(stage) => format!("DeepSpeed ZeRO-{stage}"),
        None => "DeepSpeed ZeRO".into(),
    };
    let offload = ["offload_optimizer", "offload_param"]
        .iter()
        .find_map(|key| match zero.get(*key)?.get("device")?.as_str()? {
            "cpu" => Some("CPU"),
            "nvme" => Some("NVMe"),
            _ => None,
        });
    if let Some(device) = offload {
        text.push_str(&format!(" with {device} offload"));
    }
    text
}

/// DeepSpeed configs among the directory's JSON files.
fn deepspeed_evidence(
    files: &mut Files<'_, '_>,
    evidence: &mut Vec<(Mixed, String, String)>,
    setup: &mut Facts,
) {
    for name in files.names_with(&["json"]) {
        if KNOWN_JSON.contains(&name.as_str()) || evidence.iter().any(|(_, f, _)| *f == name) {
            continue;
        }
        let Some(text) = files.text(&name, MAX_CONFIG_BYTES) else {
            continue;
        };
        // Cheap check before parsing: DeepSpeed configs name these sections.
        if !text.contains("zero_optimization") && !text.contains("train_micro_batch_size_per_gpu") {
            continue;
        }
        let Ok(Value::Object(ds)) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        setup.set_if_absent(
            paths::TRAINING_DISTRIBUTED,
            deepspeed_setup(&ds),
            Source::file(name.as_str(), "zero_optimization"),
        );
        if let Some((mixed, method)) = deepspeed_precision(&ds) {
            evidence.push((mixed, name, method));
        }
    }
}

/// JSON files of a checkpoint that are never DeepSpeed configs.
const KNOWN_JSON: &[&str] = &[
    "config.json",
    "adapter_config.json",
    "generation_config.json",
    "trainer_state.json",
    "train_results.json",
    "all_results.json",
    "eval_results.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
    "preprocessor_config.json",
    "model_index.json",
];

/// `bf16.enabled` / `fp16.enabled` of a DeepSpeed config; `"auto"` defers to the trainer.
fn deepspeed_precision(ds: &Map<String, Value>) -> Option<(Mixed, String)> {
    let enabled = |section: &str| -> Option<bool> {
        match ds.get(section)?.get("enabled")? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None, // "auto": the trainer's flags decide
        }
    };
    let bf16 = enabled("bf16").or_else(|| enabled("bfloat16"));
    let fp16 = enabled("fp16");
    match (bf16, fp16) {
        (Some(true), _) => Some((Mixed::Bf16, "bf16.enabled = true".into())),
        (_, Some(true)) => Some((Mixed::Fp16, "fp16.enabled = true".into())),
        (Some(false), Some(false)) => Some((Mixed::No, "bf16 and fp16 disabled".into())),
        _ => None,
    }
}

/// Framework versions found in the files: name → version.
fn software(files: &Files<'_, '_>) -> Option<(Map<String, Value>, Source)> {
    let mut versions = Map::new();
    let mut used: Vec<String> = Vec::new();
    let mut add = |versions: &mut Map<String, Value>, name: &str, version: &str, from: &str| {
        let version = version.trim();
        if version.is_empty() || versions.contains_key(name) {
            return;
        }
        versions.insert(name.to_owned(), Value::String(version.to_owned()));
        if !used.iter().any(|u| u == from) {
            used.push(from.to_owned());
        }
    };
    let keyed: [(&str, &str, &str); 5] = [
        ("config.json", "transformers_version", "transformers"),
        (
            "generation_config.json",
            "transformers_version",
            "transformers",
        ),
        ("model_index.json", "_diffusers_version", "diffusers"),
        ("config.json", "_diffusers_version", "diffusers"),
        ("adapter_config.json", "peft_version", "peft"),
    ];
    // config.json is keyed twice: parse it once.
    let config = files.json_object_quiet("config.json");
    for (file, key, name) in keyed {
        let other;
        let obj = if file == "config.json" {
            config.as_deref()
        } else {
            other = files.json_object_quiet(file);
            other.as_deref()
        };
        let Some(obj) = obj else {
            continue;
        };
        if let Some(v) = obj.get(key).and_then(Value::as_str) {
            add(&mut versions, name, v, &format!("{file}: {key}"));
        }
    }
    if let Some(obj) = files.json_object_quiet("config_sentence_transformers.json")
        && let Some(map) = obj.get("__version__").and_then(Value::as_object)
    {
        for (key, value) in map {
            if let Some(v) = value.as_str() {
                let from = "config_sentence_transformers.json: __version__";
                add(&mut versions, &package_name(key), v, from);
            }
        }
    }
    if let Some(text) = files.text_quiet("README.md") {
        for (name, version) in readme_framework_versions(&text) {
            add(
                &mut versions,
                &name,
                &version,
                "README.md: Framework versions",
            );
        }
    }
    if versions.is_empty() {
        return None;
    }
    let source = match used.as_slice() {
        [one] => {
            let (file, method) = one.split_once(": ").unwrap_or((one, ""));
            Source::file(file, method)
        }
        many => Source::derived(many.join("; ")),
    };
    Some((versions, source))
}

impl Files<'_, '_> {
    /// Like [`Files::json_object`], without warnings (the file's own collector reports them).
    fn json_object_quiet(&self, name: &str) -> Option<Rc<Value>> {
        cardfill_facts::read::json(&self.dir.join(name), cardfill_facts::read::CARD_CAP)
            .ok()
            .filter(|v| v.is_object())
    }

    /// The card's text: a card that is not UTF-8 is left to `fill` to report, anything else
    /// that keeps it from being read is a warning.
    fn card_text(&mut self) -> Option<String> {
        match small_text(&self.dir.join("README.md"), cardfill_facts::read::CARD_CAP)? {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => None,
            Err(source) => {
                let err = ConfigError::Read {
                    path: PathBuf::from("README.md"),
                    source,
                };
                self.warnings
                    .warn("trainer-file-unreadable", err.to_string());
                None
            }
        }
    }

    /// The text of a small file, without warnings.
    fn text_quiet(&self, name: &str) -> Option<String> {
        small_text(&self.dir.join(name), cardfill_facts::read::CARD_CAP)?.ok()
    }
}

/// Reads `path` if it is a regular file of at most `limit` bytes (`None` when absent; an error
/// when it is a FIFO, a device, too large or unreadable).
fn small_text(path: &Path, limit: u64) -> Option<std::io::Result<String>> {
    match cardfill_facts::read::read_to_string(path, limit) {
        Ok(text) => Some(Ok(text)),
        Err(e) if e.is_not_found() => None,
        Err(e) => Some(Err(e.into())),
    }
}

/// Why `trainer_state.json` was not read.
pub(crate) enum StateError {
    Read(cardfill_facts::read::ReadError),
    Json(String),
}

/// Entries of `log_history` kept besides those with `train_runtime`: the last ones.
const LOG_TAIL: usize = 1024;

/// Entries of `log_history` kept evenly spread over the whole run (for `training.log`), and
/// evaluation entries kept at most.
const LOG_SPREAD: usize = 2048;

/// Reads `trainer_state.json` as a stream: top-level values are kept, `log_history` is walked
/// entry by entry and only the entries that end a `train()` call (`train_runtime`), the last
/// [`LOG_TAIL`], evaluation entries (at most [`LOG_SPREAD`]) and at most [`LOG_SPREAD`] others
/// evenly spread are kept, in order, so a 200 MB state costs a few MB.
pub(crate) fn read_state(path: &Path) -> Result<Map<String, Value>, StateError> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

    struct Top;
    struct Log;

    impl<'de> Visitor<'de> for Log {
        type Value = Vec<Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of log entries")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
            let mut ends: Vec<(usize, Value)> = Vec::new();
            let mut tail: std::collections::VecDeque<(usize, Value)> =
                std::collections::VecDeque::new();
            // Evenly spread samples: every `stride`-th entry; the stride doubles (and every
            // other sample goes) when the samples fill up. Evaluation entries likewise.
            let mut spread: Vec<(usize, Value)> = Vec::new();
            let mut stride = 1usize;
            let mut evals: Vec<(usize, usize, Value)> = Vec::new();
            let mut eval_stride = 1usize;
            let mut eval_seen = 0usize;
            let mut i = 0;
            while let Some(entry) = seq.next_element::<Value>()? {
                let is_eval = entry
                    .as_object()
                    .is_some_and(|e| e.keys().any(|k| k.starts_with("eval_")));
                if entry.get("train_runtime").is_some() {
                    ends.push((i, entry));
                } else if is_eval {
                    if eval_seen.is_multiple_of(eval_stride) {
                        evals.push((eval_seen, i, entry));
                        if evals.len() > LOG_SPREAD {
                            eval_stride *= 2;
                            evals.retain(|(n, _, _)| n % eval_stride == 0);
                        }
                    }
                    eval_seen += 1;
                } else {
                    if i % stride == 0 {
                        spread.push((i, entry.clone()));
                        if spread.len() > LOG_SPREAD {
                            stride *= 2;
                            spread.retain(|(n, _)| n % stride == 0);
                        }
                    }
                    if tail.len() == LOG_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back((i, entry));
                }
                i += 1;
            }
            ends.extend(tail);
            ends.extend(evals.into_iter().map(|(_, i, v)| (i, v)));
            ends.extend(spread);
            ends.sort_by_key(|(i, _)| *i);
            ends.dedup_by_key(|(i, _)| *i);
            Ok(ends.into_iter().map(|(_, v)| v).collect())
        }
    }
    impl<'de> DeserializeSeed<'de> for Log {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self).map(Value::Array)
        }
    }
    impl<'de> Visitor<'de> for Top {
        type Value = Map<String, Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = if key == "log_history" {
                    map.next_value_seed(Log)?
                } else {
                    map.next_value::<Value>()?
                };
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    let (file, _) = cardfill_facts::read::open(path, cardfill_facts::read::TRAINER_STATE_CAP)
        .map_err(StateError::Read)?;
    let reader = std::io::BufReader::with_capacity(
        1 << 16,
        std::io::Read::take(file, cardfill_facts::read::TRAINER_STATE_CAP),
    );
    let mut de = serde_json::Deserializer::from_reader(reader);
    let state = de
        .deserialize_map(Top)
        .and_then(|s| de.end().map(|()| s))
        .map_err(|e| StateError::Json(e.to_string()))?;
    Ok(state)
}

/// The `- Name 1.2.3` lines under a `### Framework versions` heading.
fn readme_framework_versions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            inside = trimmed
                .trim_start_matches('#')
                .trim()
                .eq_ignore_ascii_case("framework versions");
            continue;
        }
        if !inside {
            continue;
        }
        let Some(item) = trimmed
            .strip_prefix("- ")
            .or_else(|| trimmed.strip_prefix("* "))
        else {
            continue;
        };
        // The version is the last word; the name is what precedes it (sentence-transformers
        // writes `- Transformers: 5.25.0`).
        if let Some((name, version)) = item.trim().rsplit_once(' ') {
            let name = name.trim().trim_end_matches(':');
            let looks_like_version = version.starts_with(|c: char| c.is_ascii_digit());
            if looks_like_version && !name.trim().is_empty() {
                out.push((package_name(name), version.to_owned()));
            }
        }
    }
    out
}

/// The package name for a framework as cards and configs spell it (`Pytorch` → `torch`).
fn package_name(name: &str) -> String {
    let lower = name
        .trim()
        .trim_end_matches(':')
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '_'], "-");
    match lower.as_str() {
        "pytorch" | "torch" => "torch".into(),
        "sentence-transformers" => "sentence-transformers".into(),
        _ => lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The collector on `dir`, listed afresh.
    fn collect(dir: &Path) -> Result<(Facts, Option<Map<String, Value>>), ConfigError> {
        super::collect(&Listing::new(dir))
    }

    fn case(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/cases")
            .join(name)
    }

    fn source(facts: &Facts, path: &str) -> String {
        facts.get(path).unwrap().source.to_string()
    }

    #[test]
    fn whisper_streaming_run() {
        let facts = collect(&case("trainer-whisper-tiny-nob")).unwrap().0;
        assert_eq!(facts.f64(paths::TRAINING_RUNTIME_S), Some(623_384.378_8));
        assert_eq!(
            source(&facts, paths::TRAINING_RUNTIME_S),
            "train_results.json: train_runtime"
        );
        assert_eq!(facts.u64(paths::TRAINING_STEPS), Some(100_000));
        // num_train_epochs is i64::MAX: a streaming run has no epoch count.
        assert!(!facts.contains(paths::TRAINING_EPOCHS));
        assert_eq!(
            facts.f64(paths::TRAINING_FLOS),
            Some(3.151_209_909_694_464e20)
        );
        assert_eq!(facts.f64(paths::TRAINING_SAMPLES_PER_SECOND), Some(41.066));
        assert_eq!(facts.f64(paths::TRAINING_STEPS_PER_SECOND), Some(0.16));
        assert_eq!(
            facts.str(paths::TRAINING_BEST_CHECKPOINT),
            Some("checkpoint-98000")
        );
        assert_eq!(
            facts.str(paths::TRAINING_REGIME),
            Some("fp16 mixed precision")
        );
        assert_eq!(
            source(&facts, paths::TRAINING_REGIME),
            "README.md: mixed_precision_training: Native AMP"
        );
        let software = facts.value(paths::TRAINING_SOFTWARE).unwrap();
        assert_eq!(software["transformers"], "4.26.0.dev0");
        assert_eq!(software["torch"], "1.13.0+cu117");
        assert_eq!(software["datasets"], "2.7.1.dev0");
        assert_eq!(software["tokenizers"], "0.13.2");
        assert!(facts.warnings().is_empty(), "{:?}", facts.warnings());
    }

    #[test]
    fn vit_three_epochs() {
        let facts = collect(&case("trainer-vit-base-riego")).unwrap().0;
        assert_eq!(facts.f64(paths::TRAINING_RUNTIME_S), Some(358.5996));
        assert_eq!(facts.f64(paths::TRAINING_EPOCHS), Some(3.0));
        assert_eq!(facts.u64(paths::TRAINING_STEPS), Some(630));
        assert_eq!(
            facts.f64(paths::TRAINING_FLOS),
            Some(7.811_192_553_150_874e17)
        );
        assert_eq!(
            facts.str(paths::TRAINING_BEST_CHECKPOINT),
            Some("checkpoint-500")
        );
        assert_eq!(
            facts.str(paths::TRAINING_REGIME),
            Some("fp16 mixed precision")
        );
        assert_eq!(
            facts.value(paths::TRAINING_SOFTWARE).unwrap()["transformers"],
            "4.25.1"
        );
    }

    #[test]
    fn peft_checkpoint_mid_run() {
        let facts = collect(&case("peft-lora-tinyllama-trainer-ckpt"))
            .unwrap()
            .0;
        // A checkpoint saved before train() returned: no runtime.
        assert!(!facts.contains(paths::TRAINING_RUNTIME_S));
        assert_eq!(facts.u64(paths::TRAINING_STEPS), Some(2800));
        assert_eq!(
            facts.f64(paths::TRAINING_EPOCHS),
            Some(1.994_922_048_997_772_8)
        );
        assert_eq!(
            facts.str(paths::TRAINING_BEST_CHECKPOINT),
            Some("checkpoint-2800")
        );
        // The pickled TrainingArguments say fp16 = True (and a gradient scaler was saved).
        assert_eq!(
            facts.str(paths::TRAINING_REGIME),
            Some("fp16 mixed precision")
        );
        assert_eq!(
            source(&facts, paths::TRAINING_REGIME),
            "training_args.bin: fp16 = True"
        );
        assert!(facts.warnings().is_empty(), "{:?}", facts.warnings());
    }

    #[test]
    fn resumed_run_sums_train_calls() {
        let dir = tempfile::tempdir().unwrap();
        let state = serde_json::json!({
            "global_step": 300, "epoch": 3.0, "num_train_epochs": 3, "total_flos": 1.5e15,
            "log_history": [
                {"loss": 1.0, "step": 50},
                {"step": 100, "train_runtime": 100.5, "train_samples_per_second": 8.0,
                 "train_steps_per_second": 1.0},
                {"loss": 0.5, "step": 150},
                {"step": 300, "train_runtime": 200.25, "train_samples_per_second": 9.0,
                 "train_steps_per_second": 1.5}
            ]
        });
        std::fs::write(dir.path().join("trainer_state.json"), state.to_string()).unwrap();
        let facts = collect(dir.path()).unwrap().0;
        assert_eq!(facts.f64(paths::TRAINING_RUNTIME_S), Some(300.75));
        assert!(source(&facts, paths::TRAINING_RUNTIME_S).contains("2 train() calls"));
        assert_eq!(facts.f64(paths::TRAINING_STEPS_PER_SECOND), Some(1.5));
        assert_eq!(facts.f64(paths::TRAINING_EPOCHS), Some(3.0));
    }

    #[test]
    fn latest_checkpoint_state_and_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        for (step, global) in [("checkpoint-100", 100), ("checkpoint-1000", 1000)] {
            std::fs::create_dir(dir.path().join(step)).unwrap();
            std::fs::write(
                dir.path().join(step).join("trainer_state.json"),
                format!(r#"{{"global_step": {global}, "log_history": []}}"#),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("train_results.json"), "{not json").unwrap();
        let facts = collect(dir.path()).unwrap().0;
        assert_eq!(facts.u64(paths::TRAINING_STEPS), Some(1000));
        assert_eq!(
            source(&facts, paths::TRAINING_STEPS),
            "checkpoint-1000/trainer_state.json: global_step"
        );
        let warning = &facts.warnings()[0];
        assert_eq!(warning.code, "trainer-file-malformed");
        assert!(
            warning
                .message
                .starts_with("`train_results.json` is not valid")
        );
    }

    fn with_files(files: &[(&str, &Path)], extra: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, from) in files {
            let target = dir.path().join(name);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(from, target).unwrap();
        }
        for (name, text) in extra {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn accelerate_and_deepspeed_configs() {
        let cfg = case("accelerate-deepspeed-configs");
        let fp32 = r#"{"torch_dtype": "float32"}"#;
        let bf16_weights = r#"{"torch_dtype": "bfloat16"}"#;

        let dir = with_files(
            &[("multi_gpu.yaml", &cfg.join("accelerate/multi_gpu.yaml"))],
            &[],
        );
        let facts = collect(dir.path()).unwrap().0;
        assert_eq!(
            facts.str(paths::TRAINING_REGIME),
            Some("bf16 mixed precision")
        );
        assert_eq!(
            source(&facts, paths::TRAINING_REGIME),
            "multi_gpu.yaml: mixed_precision: bf16"
        );

        // mixed_precision 'no': the regime follows the weights' dtype.
        let latest = cfg.join("accelerate/test_latest.yaml");
        let dir = with_files(
            &[("default_config.yaml", &latest)],
            &[("config.json", fp32)],
        );
        let facts = collect(dir.path()).unwrap().0;
        assert_eq!(facts.str(paths::TRAINING_REGIME), Some("fp32"));
        let dir = with_files(
            &[("default_config.yaml", &latest)],
            &[("config.json", bf16_weights)],
        );
        let facts = collect(dir.path()).unwrap().0;
        assert_eq!(
            facts.str(paths::TRAINING_REGIME),
            Some("bf16 non-mixed precision")
        );
        // 'no' without a known dtype: unknown.
        let dir = with_files(&[("default_config.yaml", &latest)], &[]);
        assert!(
            !collect(dir.path())
                .unwrap()
                .0
                .contains(paths::TRAINING_REGIME)
        );

        // DeepSpeed config with fp16 enabled, found by its sections.
        let ds = cfg.join("deepspeed/zero_stage3_offload_config.json");
        let dir = with_files(&[("ds_config.json", &ds)], &[("config.json", fp32)]);
        let facts = collect(dir.path()).unwrap().0;
        assert_eq!(
            facts.str(paths::TRAINING_REGIME),
            Some("fp16 mixed precision")
        );
        assert_eq!(
            source(&facts, paths::TRAINING_REGIME),
            "ds_config.json: fp16.enabled = true"
        );

        // accelerate's DeepSpeed launch config defers to the DeepSpeed file it names.
        // Its file is `../deepspeed_config_templates/...`: not followed out of the directory.
        let dir = with_files(
            &[("deepspeed.yaml", &cfg.join("accelerate/deepspeed.yaml"))],
            &[],
        );
        assert!(
            !collect(dir.path())
                .unwrap()
                .0
                .contains(paths::TRAINING_REGIME)
        );
        let yaml = "distributed_type: DEEPSPEED\ndeepspeed_config:\n  deepspeed_config_file: ds/z2.json\nnum_processes: 2\n";
        let dir = with_files(
            &[("ds/z2.json", &cfg.join("deepspeed/zero_stage2_config.json"))],
            &[("accelerate.yaml", yaml)],
        );
        let facts = collect(dir.path()).unwrap().0;
        assert_eq!(
            facts.str(paths::TRAINING_REGIME),
            Some("fp16 mixed precision")
        );
        assert_eq!(
            source(&facts, paths::TRAINING_REGIME),
            "ds/z2.json: fp16.enabled = true"
        );

        // "auto" values leave the decision to other evidence.
        let auto = r#"{"bf16": {"enabled": "auto"}, "zero_optimization": {"stage": 2}}"#;
        let dir = with_files(
            &[],
            &[
                ("ds.json", auto),
                (
                    "train.sh",
                    "accelerate launch train.py --bf16 \\\n  --output_dir out\n",
                ),
            ],
        );
        let facts = collect(dir.path()).unwrap().0;
        assert_eq!(
            facts.str(paths::TRAINING_REGIME),
            Some("bf16 mixed precision")
        );
        assert_eq!(
            source(&facts, paths::TRAINING_REGIME),
            "train.sh: --bf16 on the command line"
        );
    }

    #[test]
    fn distributed_setup_from_launch_configs() {
        let cfg = case("accelerate-deepspeed-configs");
        let dir = with_files(
            &[("multi_node.yaml", &cfg.join("accelerate/multi_node.yaml"))],
            &[],
        );
        let facts = collect(dir.path()).unwrap().0;
        assert_eq!(facts.str(paths::TRAINING_DISTRIBUTED), Some("DDP"));
        assert_eq!(facts.u64(paths::TRAINING_MACHINES), Some(2));
        assert_eq!(facts.u64(paths::TRAINING_PROCESSES), Some(8));
        assert_eq!(
            source(&facts, paths::TRAINING_PROCESSES),
            "multi_node.yaml: num_processes"
        );
        assert!(!facts.contains(paths::TRAINING_REGIME));

        let dir = with_files(&[("fsdp.yaml", &cfg.join("accelerate/fsdp.yaml"))], &[]);
        let facts = collect(dir.path()).unwrap().0;
        assert_eq!(facts.str(paths::TRAINING_DISTRIBUTED), Some("FSDP"));
        assert_eq!(facts.u64(paths::TRAINING_PROCESSES), Some(2));

        let ds = cfg.join("deepspeed/zero_stage3_offload_config.json");
        let dir = with_files(&[("ds_config.json", &ds)], &[]);
        let facts = collect(dir.path()).unwrap().0;
        assert_eq!(
            facts.str(paths::TRAINING_DISTRIBUTED),
            Some("DeepSpeed ZeRO-3 with CPU offload")
        );

        // accelerate naming its DeepSpeed file: the file says which ZeRO stage.
        let yaml = "distributed_type: DEEPSPEED\ndeepspeed_config:\n  deepspeed_config_file: z2.json\nnum_processes: 4\nmixed_precision: bf16\n";
        let dir = with_files(
            &[("z2.json", &cfg.join("deepspeed/zero_stage2_config.json"))],
            &[("accelerate.yaml", yaml)],
        );
        let facts = collect(dir.path()).unwrap().0;
        assert_eq!(
            facts.str(paths::TRAINING_DISTRIBUTED),
            Some("DeepSpeed ZeRO-2")
        );
        assert_eq!(facts.u64(paths::TRAINING_PROCESSES), Some(4));
        // accelerate's mixed_precision outranks the DeepSpeed file's fp16 (and says so).
        assert_eq!(
            facts.str(paths::TRAINING_REGIME),
            Some("bf16 mixed precision")
        );
        assert_eq!(facts.warnings()[0].code, "training-regime-conflict");

        // A single process (distributed_type NO): no setup.
        let latest = cfg.join("accelerate/test_latest.yaml");
        let dir = with_files(&[("default_config.yaml", &latest)], &[]);
        let facts = collect(dir.path()).unwrap().0;
        assert!(!facts.contains(paths::TRAINING_DISTRIBUTED));
        assert!(!facts.contains(paths::TRAINING_PROCESSES));
    }

    #[test]
    fn conflicting_evidence_keeps_the_strongest_and_warns() {
        let cfg = case("accelerate-deepspeed-configs");
        let dir = with_files(
            &[("fsdp.yaml", &cfg.join("accelerate/fsdp.yaml"))],
            &[("run.sh", "python train.py --fp16\n")],
        );
        let facts = collect(dir.path()).unwrap().0;
        assert_eq!(
            facts.str(paths::TRAINING_REGIME),
            Some("bf16 mixed precision")
        );
        assert_eq!(facts.warnings()[0].code, "training-regime-conflict");
    }

    #[test]
    fn launch_flags() {
        assert_eq!(
            launch_flag("python t.py --fp16 False --bf16"),
            Some((Mixed::Bf16, "--bf16".into()))
        );
        assert_eq!(
            launch_flag("accelerate launch --mixed_precision=fp8 t.py"),
            Some((Mixed::Fp8, "--mixed_precision fp8".into()))
        );
        assert_eq!(launch_flag("python t.py --fp16=false"), None);
        assert_eq!(launch_flag("echo hello"), None);
    }

    #[test]
    fn pickled_flags_in_both_protocols() {
        // Protocol 2 (BINUNICODE + BINPUT) and protocol 4 (SHORT_BINUNICODE + MEMOIZE).
        let p2 = b"X\x04\x00\x00\x00fp16q\x05\x88X\x04\x00\x00\x00bf16q\x06\x89";
        assert_eq!(pickled_bool(p2, b"fp16"), Some(true));
        assert_eq!(pickled_bool(p2, b"bf16"), Some(false));
        let p4 = b"\x8c\x04bf16\x94\x88";
        assert_eq!(pickled_bool(p4, b"bf16"), Some(true));
        assert_eq!(pickled_bool(b"X\x04\x00\x00\x00fp16N", b"fp16"), None);
        assert_eq!(pickled_bool(b"", b"fp16"), None);
    }

    #[test]
    fn framework_versions_from_configs_and_card() {
        let dir = with_files(
            &[],
            &[
                ("config.json", r#"{"transformers_version": "4.46.0"}"#),
                (
                    "config_sentence_transformers.json",
                    r#"{"__version__": {"sentence_transformers": "3.0.1", "pytorch": "2.4.0"}}"#,
                ),
                (
                    "README.md",
                    "# m\n\n### Framework versions\n\n- PEFT 0.12.0\n- Transformers 4.0.0\n\n## Next\n- Other 1.0\n",
                ),
            ],
        );
        let facts = collect(dir.path()).unwrap().0;
        let software = facts.value(paths::TRAINING_SOFTWARE).unwrap();
        assert_eq!(software["transformers"], "4.46.0"); // the config wins over the card
        assert_eq!(software["sentence-transformers"], "3.0.1");
        assert_eq!(software["torch"], "2.4.0");
        assert_eq!(software["peft"], "0.12.0");
        assert!(software.get("other").is_none());
        assert!(source(&facts, paths::TRAINING_SOFTWARE).starts_with("derived: config.json"));
    }
}

#[cfg(test)]
mod real_tests {
    use super::*;
    use crate::real;

    fn collect(dir: &Path) -> Result<(Facts, Option<Map<String, Value>>), ConfigError> {
        super::collect(&Listing::new(dir))
    }

    /// sentence-transformers 6.3 writes `- Transformers: 5.25.0`: no colon kept, names canonical.
    #[test]
    fn sentence_transformers_framework_versions() {
        let f = collect(&real("sentence-transformers")).unwrap().0;
        let sw = f
            .value(paths::TRAINING_SOFTWARE)
            .unwrap()
            .as_object()
            .unwrap();
        assert!(
            sw.keys().all(|k| !k.contains(':') && !k.contains(' ')),
            "{sw:?}"
        );
        assert_eq!(sw["transformers"], "5.25.0");
        assert_eq!(sw["sentence-transformers"], "6.3.0");
        assert_eq!(sw["torch"], "2.15.0+cu132");
        assert_eq!(sw["python"], "3.11.7");
        assert!(!sw.contains_key("pytorch"));
    }

    /// PEFT Trainer folders get the regime from the same `training_args.bin` evidence, and the
    /// source names the key the config uses (`dtype` in transformers 5).
    #[test]
    fn regime_for_plain_and_peft_trainer_folders() {
        let plain = collect(&real("tf5-trainer")).unwrap().0;
        assert_eq!(plain.str(paths::TRAINING_REGIME), Some("fp32"));
        let src = plain
            .get(paths::TRAINING_REGIME)
            .unwrap()
            .source
            .to_string();
        assert!(src.contains("config.json dtype float32"), "{src}");
        assert!(!src.contains("torch_dtype"), "{src}");
        let peft = collect(&real("tf5-peft-trainer")).unwrap().0;
        assert_eq!(peft.str(paths::TRAINING_REGIME), Some("fp32"));
        let src = peft.get(paths::TRAINING_REGIME).unwrap().source.to_string();
        assert!(
            src.starts_with("training_args.bin: fp16 = bf16 = False"),
            "{src}"
        );
    }
}
