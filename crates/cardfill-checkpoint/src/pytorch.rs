//! PyTorch checkpoints (`.bin`, `.pt`, `.pth`, `.ckpt`): the zip format of torch ≥ 1.6, the
//! legacy pre-1.6 format, and shards listed by `pytorch_model.bin.index.json`.
//!
//! Only the zip directory and the pickle are read, never tensor data, and the pickle is walked
//! (see [`crate::pickle`]), never executed. Unsafe globals go to `checkpoint.unsafe`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use cardfill_facts::{Facts, Value};

use crate::pickle::{self, Id, Node, Pickle, TensorRef};
use crate::zipdir;
use crate::{CheckpointError, Tensor, WeightSet};

/// Largest pickle read from a stored zip member or a legacy file's head.
const MAX_PICKLE_BYTES: u64 = 256 << 20;
/// Largest size a compressed (deflated) `data.pkl` may inflate to: torch never compresses,
/// so this only bounds what a hostile archive can make us allocate.
const MAX_INFLATED_BYTES: u64 = 16 << 20;

/// A torch file's pickle and what the zip says about its storages.
#[derive(Debug)]
pub struct TorchFile {
    /// The walked pickle of the saved object.
    pub pickle: Pickle,
    /// `zip` or `legacy` (or `pickle` for a bare pickle).
    pub layout: &'static str,
    /// The pickle's member name inside the zip (`archive/data.pkl`).
    pub member: Option<String>,
    /// Bytes of each storage (`data/<key>` member size), zip layout only.
    pub storage_bytes: HashMap<String, u64>,
    /// File size.
    pub bytes: u64,
}

/// Legacy `torch.save` magic: protocol 2, `LONG1` of `0x1950a86a20f9469cfc6c`.
const LEGACY_MAGIC: [u8; 14] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];

/// Whether `head` (the first bytes of a file) looks like a torch checkpoint or a pickle.
pub fn sniff(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(&[0x80])
}

/// Reads the pickle of the torch file at `path` (`shown` is the name used in messages).
pub fn read(path: &Path, shown: &Path) -> Result<TorchFile, CheckpointError> {
    let (mut file, len) = cardfill_facts::read::open(path, u64::MAX)
        .map_err(|e| CheckpointError::invalid(shown, e.reason()))?;
    read_from(&mut file, len, shown)
}

/// Reads a torch file from `file`, `len` bytes long (`shown` names it in messages).
pub fn read_from<F: Read + Seek>(
    file: &mut F,
    len: u64,
    shown: &Path,
) -> Result<TorchFile, CheckpointError> {
    let mut head = [0u8; 14];
    let n = read_up_to(file, &mut head).map_err(|e| CheckpointError::io(shown, e))?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") {
        read_zip(file, len, shown)
    } else if head.starts_with(&LEGACY_MAGIC) {
        read_legacy(file, len, shown, true)
    } else if head.starts_with(&[0x80]) {
        read_legacy(file, len, shown, false)
    } else if head.len() >= 8 && len >= 512 && is_tar(file) {
        Err(CheckpointError::invalid(
            shown,
            "torch ≤ 0.3 tar checkpoint: not supported, re-save it with a current torch",
        ))
    } else {
        Err(CheckpointError::invalid(
            shown,
            "offset 0: neither a torch zip archive nor a pickle",
        ))
    }
}

fn read_up_to<F: Read>(file: &mut F, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn is_tar<F: Read + Seek>(file: &mut F) -> bool {
    let mut b = [0u8; 5];
    file.seek(SeekFrom::Start(257)).is_ok()
        && read_up_to(file, &mut b).is_ok_and(|n| n == 5)
        && &b == b"ustar"
}

fn read_zip<F: Read + Seek>(
    file: &mut F,
    len: u64,
    shown: &Path,
) -> Result<TorchFile, CheckpointError> {
    let entries =
        zipdir::entries(file, len).map_err(|e| CheckpointError::invalid(shown, e.to_string()))?;
    let Some(pkl) = entries
        .iter()
        .filter(|e| e.name == "data.pkl" || e.name.ends_with("/data.pkl"))
        .min_by_key(|e| e.name.matches('/').count())
    else {
        return Err(CheckpointError::invalid(
            shown,
            "zip archive without a `data.pkl` member",
        ));
    };
    let prefix = pkl.name.strip_suffix("data.pkl").unwrap_or("").to_owned();
    let max = if pkl.method == 0 {
        MAX_PICKLE_BYTES
    } else {
        MAX_INFLATED_BYTES
    };
    let data = zipdir::read(file, len, pkl, max).map_err(|e| {
        CheckpointError::invalid(shown, format!("{}: {e}", pkl.name.escape_debug()))
    })?;
    let pickle = pickle::parse(&data, 0, &pickle::Limits::default()).map_err(|e| {
        CheckpointError::invalid(shown, format!("{}: {e}", pkl.name.escape_debug()))
    })?;
    let storage_prefix = format!("{prefix}data/");
    let storage_bytes = entries
        .iter()
        .filter_map(|e| {
            e.name
                .strip_prefix(&storage_prefix)
                .map(|k| (k.to_owned(), e.size))
        })
        .collect();
    Ok(TorchFile {
        pickle,
        layout: "zip",
        member: Some(pkl.name.clone()),
        storage_bytes,
        bytes: len,
    })
}

fn read_legacy<F: Read + Seek>(
    file: &mut F,
    len: u64,
    shown: &Path,
    magic: bool,
) -> Result<TorchFile, CheckpointError> {
    let cap = len.min(MAX_PICKLE_BYTES);
    let mut data = Vec::with_capacity(cap as usize);
    file.seek(SeekFrom::Start(0))
        .map_err(|e| CheckpointError::io(shown, e))?;
    file.by_ref()
        .take(cap)
        .read_to_end(&mut data)
        .map_err(|e| CheckpointError::io(shown, e))?;
    let limits = pickle::Limits::default();
    let parse = |start: usize| {
        pickle::parse(&data, start, &limits).map_err(|e| {
            let hint = if cap < len && e.message.contains("truncated") {
                format!(" (pickle longer than the {MAX_PICKLE_BYTES}-byte limit)")
            } else {
                String::new()
            };
            CheckpointError::invalid(shown, format!("{e}{hint}"))
        })
    };
    let (pickle, layout) = if magic {
        // magic number, protocol version, sys_info, then the object.
        let mut at = 0;
        for _ in 0..3 {
            at = parse(at)?.end;
        }
        (parse(at)?, "legacy")
    } else {
        (parse(0)?, "pickle")
    };
    Ok(TorchFile {
        pickle,
        layout,
        member: None,
        storage_bytes: HashMap::new(),
        bytes: len,
    })
}

/// dtype name (safetensors spelling) and item size of a torch storage class.
pub fn storage_dtype(class: &str) -> Option<(&'static str, u64)> {
    Some(match class {
        "FloatStorage" | "float32" => ("F32", 4),
        "DoubleStorage" | "float64" => ("F64", 8),
        "HalfStorage" | "float16" => ("F16", 2),
        "BFloat16Storage" | "bfloat16" => ("BF16", 2),
        "LongStorage" | "int64" => ("I64", 8),
        "IntStorage" | "int32" | "QInt32Storage" => ("I32", 4),
        "ShortStorage" | "int16" => ("I16", 2),
        "CharStorage" | "int8" | "QInt8Storage" => ("I8", 1),
        "ByteStorage" | "uint8" | "QUInt8Storage" => ("U8", 1),
        "BoolStorage" | "bool" => ("BOOL", 1),
        "ComplexFloatStorage" | "complex64" => ("C64", 8),
        "ComplexDoubleStorage" | "complex128" => ("C128", 16),
        "Float8_e4m3fnStorage" | "float8_e4m3fn" => ("F8_E4M3", 1),
        "Float8_e5m2Storage" | "float8_e5m2" => ("F8_E5M2", 1),
        _ => return None,
    })
}

/// The model weights found in a walked torch file.
#[derive(Debug, Default)]
pub struct StateDict {
    /// The key of the nested dict that held them (`state_dict`, `module`), if nested.
    pub key: Option<String>,
    /// Tensors by name, storages shared by several names counted once.
    pub tensors: Vec<Tensor>,
    /// Names dropped because they alias a tensor already counted (tied weights).
    pub shared: Vec<String>,
    /// The class of a whole pickled `nn.Module` (`__main__.SomeNet`) whose `_parameters` and
    /// `_buffers` gave the tensors, when the file is `torch.save(model)`.
    pub module_class: Option<String>,
}

/// Keys under which training frameworks nest the model's state dict, in order of preference.
const NESTED_KEYS: [&str; 9] = [
    "state_dict",
    "model_state_dict",
    "model",
    "module",
    "model_state",
    "net",
    "network",
    "params",
    "weights",
];

fn tensor_entries(pk: &Pickle, dict: Id) -> Vec<(String, &TensorRef)> {
    let entries = match pk.node(dict) {
        Node::Dict(e) => e,
        _ => return Vec::new(),
    };
    entries
        .iter()
        .filter_map(|(k, v)| match (pk.node(*k), pk.node(*v)) {
            (Node::Str(name), Node::Tensor(t)) => Some((name.clone(), &**t)),
            _ => None,
        })
        .collect()
}

/// The tensors of a pickled `nn.Module` (`torch.save(model)`): its `_parameters` and
/// `_buffers`, then its `_modules` recursively, named as `state_dict()` names them.
fn module_tensors<'a>(
    pk: &'a Pickle,
    module: Id,
    prefix: &str,
    depth: u32,
    out: &mut Vec<(String, &'a TensorRef)>,
) {
    // Real models nest a few dozen levels at most; the bound also stops memo cycles.
    if depth > 64 || !matches!(pk.node(module), Node::Call { .. }) {
        return;
    }
    for key in ["_parameters", "_buffers"] {
        if let Some(dict) = pk.get(module, key) {
            for (name, t) in tensor_entries(pk, dict) {
                out.push((format!("{prefix}{name}"), t));
            }
        }
    }
    let Some(children) = pk.get(module, "_modules") else {
        return;
    };
    if let Node::Dict(entries) = pk.node(children) {
        for (k, v) in entries {
            if let Some(name) = pk.str(*k) {
                module_tensors(pk, *v, &format!("{prefix}{name}."), depth + 1, out);
            }
        }
    }
}

/// The state dict of a torch file: the root if it maps names to tensors, else the first
/// nested dict under a known key (Lightning `state_dict`, DeepSpeed `module`, ...).
pub fn state_dict(tf: &TorchFile) -> StateDict {
    let pk = &tf.pickle;
    let mut chosen = (None, tensor_entries(pk, pk.root));
    if chosen.1.is_empty() {
        for key in NESTED_KEYS {
            if let Some(inner) = pk.get(pk.root, key) {
                let found = tensor_entries(pk, inner);
                if !found.is_empty() {
                    chosen = (Some(key.to_owned()), found);
                    break;
                }
            }
        }
    }
    let mut module_class = None;
    if chosen.0.is_none() && chosen.1.is_empty() {
        let mut found = Vec::new();
        module_tensors(pk, pk.root, "", 0, &mut found);
        if !found.is_empty() {
            module_class = pk.class_of(pk.root);
            chosen.1 = found;
        }
    }
    let (key, entries) = chosen;
    let mut seen = HashSet::new();
    let mut out = StateDict {
        key,
        module_class,
        ..StateDict::default()
    };
    for (name, t) in entries {
        if !seen.insert((t.key.clone(), t.offset, t.shape.clone())) {
            out.shared.push(name);
            continue;
        }
        let dtype = match storage_dtype(&t.storage_class) {
            Some((d, _)) => d.to_owned(),
            None => format!("torch.{}", t.storage_class),
        };
        out.tensors.push(Tensor {
            name,
            dtype,
            shape: t.shape.clone(),
        });
    }
    out
}

/// Reports the unsafe globals of a walked torch file under `checkpoint.unsafe`, once per global.
///
/// A weight file (`weights_only` true) is judged by torch's weights-only allowlist: a global
/// outside it makes `torch.load(weights_only=True)` refuse the file. Auxiliary trainer files
/// (`training_args.bin`, optimizer states) are objects by design, which transformers itself
/// loads with `weights_only=False`: only globals known to run code are reported for them.
pub fn record_unsafe(facts: &mut Facts, rel: &Path, tf: &TorchFile, weights_only: bool) {
    let mut seen = HashSet::new();
    let found: Vec<&crate::pickle::UnsafeGlobal> = tf
        .pickle
        .unsafe_globals
        .iter()
        .filter(|g| (weights_only || g.known) && seen.insert(g.global.as_str()))
        .collect();
    if found.is_empty() {
        return;
    }
    let file = rel.to_string_lossy().replace('\\', "/");
    let mut list = match facts.value(cardfill_facts::paths::CHECKPOINT_UNSAFE) {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    for g in found {
        list.push(serde_json::json!({
            "file": file,
            "member": tf.member,
            "offset": g.offset,
            "global": g.global,
            "why": g.why,
        }));
        facts.warn(
            "pickle-unsafe",
            format!(
                "`{file}`: pickle offset {} names `{}` ({}); never loaded, do not torch.load it",
                g.offset,
                g.global.escape_debug(),
                g.why
            ),
        );
    }
    facts.set(
        cardfill_facts::paths::CHECKPOINT_UNSAFE,
        list,
        cardfill_facts::Source::file(file, "pickle opcodes walked, never executed"),
    );
}

/// Torch files a trainer writes beside the weights: parsed for safety, never counted.
pub fn is_auxiliary(name: &str) -> bool {
    matches!(
        name,
        "training_args.bin" | "optimizer.pt" | "scheduler.pt" | "scaler.pt" | "optimizer.bin"
    ) || name.starts_with("rng_state")
        || name.ends_with("_optim_states.pt")
        || name.starts_with("optimizer")
}

/// Whether `name` has a PyTorch weight extension (`.bin`, `.pt`, `.pth`, `.ckpt`).
pub fn is_weight_name(name: &str) -> bool {
    has_torch_extension(name)
}

fn has_torch_extension(name: &str) -> bool {
    [".bin", ".pt", ".pth", ".ckpt"]
        .iter()
        .any(|e| name.ends_with(e))
}

/// Builds a weight set from torch files `files` (relative to `dir`).
fn weight_set(
    dir: &Path,
    files: &[PathBuf],
    index: Option<PathBuf>,
    facts: &mut Facts,
) -> Result<Option<WeightSet>, CheckpointError> {
    let mut set = WeightSet {
        format: if index.is_some() {
            "pytorch-sharded".into()
        } else {
            "pytorch".into()
        },
        index: index.clone(),
        ..WeightSet::default()
    };
    let mut keys = BTreeMap::new();
    let mut modules = BTreeMap::new();
    let mut shared = 0usize;
    let mut layout = "zip";
    for rel in files {
        let tf = read(&dir.join(rel), rel)?;
        record_unsafe(facts, rel, &tf, true);
        layout = tf.layout;
        let sd = state_dict(&tf);
        if let Some(k) = &sd.key {
            keys.insert(k.clone(), ());
        }
        if let Some(c) = &sd.module_class {
            modules.insert(c.clone(), ());
        }
        shared += sd.shared.len();
        set.bytes += tf.bytes;
        for t in sd.tensors {
            set.push(t);
        }
        set.files.push(rel.clone());
    }
    if set.tensors.is_empty() {
        return Ok(None);
    }
    let mut method = match &index {
        Some(_) => format!("weight_map + {} {layout} pickles walked", files.len()),
        None => format!("{layout} pickle walked"),
    };
    if !keys.is_empty() {
        let k: Vec<_> = keys.into_keys().collect();
        method.push_str(&format!(", model weights under `{}`", k.join("`, `")));
    }
    if !modules.is_empty() {
        let m: Vec<_> = modules.into_keys().collect();
        method.push_str(&format!(
            ", whole nn.Module `{}`: `_parameters` and `_buffers` of every submodule",
            m.join("`, `")
        ));
    }
    if shared > 0 {
        method.push_str(&format!(", {shared} tied tensors counted once"));
    }
    set.method = method;
    Ok(Some(set))
}

/// Finds the PyTorch weights in `dir`: the sharded index first, else single weight files.
/// Auxiliary trainer files (`training_args.bin`, `optimizer.pt`, ...) are walked for unsafe
/// globals only. A file that cannot be read is a warning.
/// `names` are the regular files of `dir`, sorted.
pub fn find(
    dir: &Path,
    names: &[String],
    facts: &mut Facts,
) -> Result<Vec<WeightSet>, CheckpointError> {
    let mut sets = Vec::new();
    let mut in_index = HashSet::new();
    for index in names.iter().filter(|n| {
        n.ends_with(".bin.index.json")
            || n.ends_with(".pt.index.json")
            || n.ends_with(".pth.index.json")
    }) {
        let Some(shards) = index_shards(dir, index, facts) else {
            continue;
        };
        let missing: Vec<&PathBuf> = shards.iter().filter(|s| !dir.join(s).is_file()).collect();
        in_index.extend(shards.iter().map(|s| s.to_string_lossy().into_owned()));
        if !missing.is_empty() {
            facts.warn(
                "shard-missing",
                format!(
                    "`{index}` lists {} shard(s) not present, e.g. `{}`",
                    missing.len(),
                    missing[0].display()
                ),
            );
            continue;
        }
        if shards.iter().any(|s| crate::lfs::is_pointer(&dir.join(s))) {
            continue;
        }
        match weight_set(dir, &shards, Some(PathBuf::from(index)), facts) {
            Ok(Some(set)) => sets.push(set),
            Ok(None) => {}
            Err(e) => facts.warn("checkpoint-file-invalid", e.to_string()),
        }
    }
    for name in names {
        if !has_torch_extension(name) || in_index.contains(name) {
            continue;
        }
        let path = dir.join(name);
        if crate::lfs::is_pointer(&path) {
            continue;
        }
        let rel = PathBuf::from(name);
        if is_auxiliary(name) {
            match read(&path, &rel) {
                Ok(tf) => record_unsafe(facts, &rel, &tf, false),
                Err(e) => facts.warn("checkpoint-file-invalid", e.to_string()),
            }
            continue;
        }
        match weight_set(dir, std::slice::from_ref(&rel), None, facts) {
            Ok(Some(set)) => sets.push(set),
            Ok(None) => {}
            Err(e) => facts.warn("checkpoint-file-invalid", e.to_string()),
        }
    }
    // The Hugging Face names first: they are what `from_pretrained` loads.
    sets.sort_by_key(|s| {
        let first = s.files.first().map(|f| f.to_string_lossy().into_owned());
        match first.as_deref() {
            _ if s.index.is_some() => 0,
            Some("pytorch_model.bin") => 1,
            Some(n) if n.starts_with("adapter_model") => 1,
            _ => 2,
        }
    });
    Ok(sets)
}

/// The shard files an index's `weight_map` names, in first-seen order.
fn index_shards(dir: &Path, index: &str, facts: &mut Facts) -> Option<Vec<PathBuf>> {
    let text = match cardfill_facts::read::read_to_string(
        &dir.join(index),
        cardfill_facts::read::INDEX_CAP,
    ) {
        Ok(t) => t,
        Err(e) => {
            facts.warn(
                "checkpoint-file-invalid",
                format!("cannot read `{index}`: {}", e.reason()),
            );
            return None;
        }
    };
    let json: Value = match serde_json::from_str(&text) {
        Ok(j) => j,
        Err(e) => {
            facts.warn(
                "checkpoint-file-invalid",
                format!("`{index}` is not valid JSON: {e}"),
            );
            return None;
        }
    };
    let Some(map) = json.get("weight_map").and_then(Value::as_object) else {
        facts.warn(
            "checkpoint-file-invalid",
            format!("`{index}` has no `weight_map` object"),
        );
        return None;
    };
    let mut seen = HashSet::new();
    let mut shards = Vec::new();
    for file in map.values().filter_map(Value::as_str) {
        let p = Path::new(file);
        if p.is_absolute()
            || p.components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            facts.warn(
                "checkpoint-file-invalid",
                format!("`{index}` names a shard outside the directory: `{file}`"),
            );
            return None;
        }
        if seen.insert(file.to_owned()) {
            shards.push(PathBuf::from(file));
        }
    }
    Some(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/cases")
            .join(name)
    }

    use cardfill_facts::paths;

    fn real(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/real")
            .join(name)
    }

    /// `torch.save(model)` of a `__main__` class (torch 2.15): format pytorch, the class named
    /// unsafe, and the module's `_parameters` and `_buffers` counted as the library counts them.
    #[test]
    fn whole_module_pickle_is_counted_and_named_unsafe() {
        let figures: Value =
            serde_json::from_str(&std::fs::read_to_string(real("figures.json")).unwrap()).unwrap();
        let fig = &figures["torch-whole-module"];
        let facts = crate::collect(&real("torch-whole-module")).unwrap();
        assert_eq!(
            facts.value(paths::CHECKPOINT_FORMAT),
            Some(&Value::from("pytorch"))
        );
        assert_eq!(
            facts.value(paths::CHECKPOINT_FILES),
            Some(&serde_json::json!(["model.pt"]))
        );
        assert_eq!(
            facts.value(paths::PARAMETERS_TOTAL),
            Some(&fig["tensor_elements"])
        );
        let unsafe_list = facts.value(paths::CHECKPOINT_UNSAFE).unwrap();
        let globals: Vec<&str> = unsafe_list
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u["global"].as_str())
            .collect();
        assert_eq!(globals[0], fig["class"].as_str().unwrap());
        assert!(globals.contains(&"torch.nn.modules.linear.Linear"));
        // The state dict's own globals are on the allowlist.
        assert!(
            !globals
                .iter()
                .any(|g| g.starts_with("collections.") || g.contains("_rebuild"))
        );
    }

    #[test]
    fn allowlist_is_torch_weights_only() {
        use crate::pickle::weights_only_allowed as ok;
        assert!(ok("collections", "OrderedDict"));
        assert!(ok("torch._utils", "_rebuild_tensor_v2"));
        assert!(ok("torch", "BFloat16Storage"));
        assert!(ok("torch", "bfloat16"));
        assert!(ok("__builtin__", "set"));
        assert!(ok("torch.cuda", "HalfTensor"));
        assert!(!ok("torch.cuda", "ComplexFloatTensor"));
        assert!(!ok("torch.sparse", "BoolTensor"));
        assert!(!ok("__main__", "SomeNet"));
        assert!(!ok("numpy.core.multiarray", "_reconstruct"));
        assert!(!ok("builtins", "eval"));
    }

    #[test]
    fn weight_file_without_tensors_is_a_warning() {
        // torch.save of a dict holding no tensors (torch 2.15).
        let facts = crate::collect(&real("torch-no-tensors")).unwrap();
        assert!(facts.value(paths::PARAMETERS_TOTAL).is_none());
        let w: Vec<&str> = facts.warnings().iter().map(|w| w.code.as_str()).collect();
        assert_eq!(w, ["weights-uncounted"]);
        assert!(facts.warnings()[0].message.starts_with("`model.pt`: "));
    }

    #[test]
    fn real_trainer_files_parse_without_executing() {
        let dir = case("peft-lora-tinyllama-trainer-ckpt");
        let args = read(
            &dir.join("training_args.bin"),
            Path::new("training_args.bin"),
        )
        .unwrap();
        assert_eq!(args.layout, "zip");
        assert_eq!(args.member.as_deref(), Some("training_args/data.pkl"));
        assert_eq!(
            args.pickle.class_of(args.pickle.root).as_deref(),
            Some("trl.trainer.sft_config.SFTConfig")
        );
        // Outside the weights-only allowlist (torch refuses it with weights_only=True), but
        // nothing known to run code: an auxiliary file reports nothing.
        let globals: Vec<&str> = args
            .pickle
            .unsafe_globals
            .iter()
            .map(|g| g.global.as_str())
            .collect();
        assert!(
            globals.contains(&"trl.trainer.sft_config.SFTConfig"),
            "{globals:?}"
        );
        assert!(args.pickle.unsafe_globals.iter().all(|g| !g.known));
        let mut facts = Facts::new();
        record_unsafe(&mut facts, Path::new("training_args.bin"), &args, false);
        assert!(facts.value(paths::CHECKPOINT_UNSAFE).is_none());
        assert!(state_dict(&args).tensors.is_empty());

        let rng = read(&dir.join("rng_state.pth"), Path::new("rng_state.pth")).unwrap();
        let cuda = rng.pickle.get(rng.pickle.root, "cuda").unwrap();
        match rng.pickle.node(cuda) {
            Node::Tensor(t) => {
                assert_eq!(t.storage_class, "ByteStorage");
                assert_eq!(t.key, "1");
                assert_eq!(t.shape, vec![16]);
            }
            other => panic!("cuda rng state is not a tensor: {other:?}"),
        }
        assert_eq!(rng.storage_bytes.get("0"), Some(&5056));
        for f in ["scaler.pt", "scheduler.pt"] {
            let tf = read(&dir.join(f), Path::new(f)).unwrap();
            assert!(matches!(tf.pickle.node(tf.pickle.root), Node::Dict(_)));
        }
        // The trainer files hold no model weights: nothing is counted.
        let mut facts = Facts::new();
        assert!(
            find(&dir, &crate::regular_files(&dir).unwrap(), &mut facts)
                .unwrap()
                .is_empty()
        );
        assert!(facts.warnings().is_empty(), "{:?}", facts.warnings());
    }

    #[test]
    fn garbage_is_a_one_line_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pytorch_model.bin");
        std::fs::write(&p, b"PK\x03\x04 not really a zip").unwrap();
        let e = read(&p, Path::new("pytorch_model.bin"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "`pytorch_model.bin`: zip: no end-of-central-directory record"
        );
        std::fs::write(&p, b"\x80\x02}q\x00(X\x01\x00\x00\x00a").unwrap();
        let e = read(&p, Path::new("pytorch_model.bin"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("`pytorch_model.bin`: pickle offset 12: truncated"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }
}

#[cfg(test)]
mod generated {
    use super::*;
    use cardfill_facts::paths;
    use cardfill_testkit::TensorSpec;
    use cardfill_testkit::torch::{self as tk, StateDictLayout};

    fn tiny() -> Vec<TensorSpec> {
        vec![
            TensorSpec::new("model.embed_tokens.weight", "BF16", &[32, 8]),
            TensorSpec::new("model.norm.weight", "F32", &[8]),
            TensorSpec::new("model.layers.0.mlp.up_proj.weight", "BF16", &[16, 8]),
        ]
    }

    #[test]
    fn zip_state_dict_counts_tied_weights_once() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StateDictLayout {
            tied: vec![("lm_head.weight".into(), "model.embed_tokens.weight".into())],
            ..StateDictLayout::default()
        };
        tk::write_torch_with(&dir.path().join("pytorch_model.bin"), &tiny(), &layout).unwrap();
        let mut facts = Facts::new();
        let sets = find(
            dir.path(),
            &crate::regular_files(dir.path()).unwrap(),
            &mut facts,
        )
        .unwrap();
        assert!(facts.warnings().is_empty(), "{:?}", facts.warnings());
        assert_eq!(sets.len(), 1);
        let set = &sets[0];
        assert_eq!(set.format, "pytorch");
        assert_eq!(set.total(), 32 * 8 + 8 + 16 * 8);
        assert_eq!(set.by_dtype["BF16"], 32 * 8 + 16 * 8);
        assert_eq!(set.by_dtype["F32"], 8);
        assert!(
            set.method.contains("1 tied tensors counted once"),
            "{}",
            set.method
        );
    }

    #[test]
    fn lightning_checkpoint_counts_the_state_dict_only() {
        let dir = tempfile::tempdir().unwrap();
        let layout = StateDictLayout {
            nest_under: Some("state_dict".into()),
            ..StateDictLayout::default()
        };
        tk::write_torch_with(&dir.path().join("last.ckpt"), &tiny(), &layout).unwrap();
        let mut facts = Facts::new();
        let sets = find(
            dir.path(),
            &crate::regular_files(dir.path()).unwrap(),
            &mut facts,
        )
        .unwrap();
        assert_eq!(sets[0].total(), 392);
        assert!(
            sets[0].method.contains("under `state_dict`"),
            "{}",
            sets[0].method
        );
    }

    #[test]
    fn legacy_format_is_read() {
        let dir = tempfile::tempdir().unwrap();
        tk::write_legacy_torch(&dir.path().join("model.pt"), &tiny()).unwrap();
        let tf = read(&dir.path().join("model.pt"), Path::new("model.pt")).unwrap();
        assert_eq!(tf.layout, "legacy");
        assert_eq!(state_dict(&tf).tensors.len(), 3);
    }

    #[test]
    fn hostile_pickle_in_a_weight_file_is_reported_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let cmd = format!("touch {}", marker.display());
        let mut pkl = b"\x80\x02cposix\nsystem\n(X".to_vec();
        pkl.extend((cmd.len() as u32).to_le_bytes());
        pkl.extend(cmd.as_bytes());
        pkl.extend(b"tR.");
        tk::write_torch_zip(&dir.path().join("pytorch_model.bin"), &pkl, &[]).unwrap();
        let mut facts = Facts::new();
        assert!(
            find(
                dir.path(),
                &crate::regular_files(dir.path()).unwrap(),
                &mut facts
            )
            .unwrap()
            .is_empty()
        );
        assert!(!marker.exists());
        let unsafe_list = facts.value(paths::CHECKPOINT_UNSAFE).unwrap();
        assert_eq!(unsafe_list[0]["global"], "posix.system");
        assert_eq!(unsafe_list[0]["file"], "pytorch_model.bin");
        assert_eq!(unsafe_list[0]["member"], "pytorch_model/data.pkl");
        assert_eq!(unsafe_list[0]["offset"], 2);
        assert_eq!(facts.warnings()[0].code, "pickle-unsafe");
    }

    #[test]
    fn llama2_7b_sharded_bin_counts_exactly() {
        let dir = tempfile::tempdir().unwrap();
        cardfill_testkit::materialize_case("llama2-7b-chat-hf", dir.path()).unwrap();
        tk::materialize_torch_shards("llama2-7b-chat-hf", dir.path()).unwrap();
        let facts = crate::collect(dir.path()).unwrap();
        assert_eq!(facts.u64(paths::PARAMETERS_TOTAL), Some(6_738_415_616));
        assert_eq!(facts.str(paths::CHECKPOINT_FORMAT), Some("pytorch-sharded"));
        assert_eq!(
            facts.value(paths::PARAMETERS_BY_DTYPE).unwrap()["F16"].as_u64(),
            None
        );
        let bytes = facts.u64(paths::CHECKPOINT_BYTES).unwrap();
        assert!(bytes > 13_476_831_232, "{bytes}");
    }
}
