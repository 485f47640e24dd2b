//! Test support: header-accurate sparse checkpoints generated from real configs, so that tests
//! and benchmarks count full-size models without their weights.
//!
//! - [`decoder_tensors`]: every tensor of a Llama/Mistral/Gemma/Qwen2/Mixtral-family model,
//!   derived from its `config.json`.
//! - [`write_safetensors`], [`write_sharded_safetensors`]: real safetensors headers, written as
//!   the Rust writer (and so the Python `safetensors` package) writes them, with the data region
//!   left as a sparse hole: a 400 GB checkpoint costs a few kilobytes of disk.
//! - [`materialize_case`]: a shared case from `tests/fixtures/cases/<name>` turned into a
//!   checkpoint directory whose shards have the real files' exact sizes.
//! - [`build_stub_library`]: a stub C library (NVML, AMD SMI) built with gcc for the real
//!   loading and FFI paths.
#![deny(missing_docs)]

pub mod big;
pub mod fakehub;
pub mod gguf;
pub mod models;
pub mod torch;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

/// Builds the C file `source` into the shared library `out` with gcc (`-shared -fPIC -O1`),
/// passing `defines` such as `-DSTUB_OLD_DRIVER`.
pub fn build_stub_library(source: &Path, out: &Path, defines: &[&str]) -> anyhow::Result<()> {
    let status = std::process::Command::new("gcc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(out)
        .args(defines)
        .arg(source)
        .status()
        .context("gcc runs")?;
    ensure!(status.success(), "gcc failed on {}", source.display());
    Ok(())
}

/// One tensor to write: name, safetensors dtype name (`BF16`) and shape (PyTorch order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// The tensor's name (`model.layers.0.self_attn.q_proj.weight`).
    pub name: String,
    /// The safetensors dtype name (`BF16`, `F32`, `I64`, ...).
    pub dtype: String,
    /// The shape; `[]` is a scalar.
    pub shape: Vec<u64>,
}

impl TensorSpec {
    /// A tensor spec from its parts.
    pub fn new(name: impl Into<String>, dtype: impl Into<String>, shape: &[u64]) -> Self {
        Self {
            name: name.into(),
            dtype: dtype.into(),
            shape: shape.to_vec(),
        }
    }

    /// Number of elements (a scalar counts 1).
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Bytes of data the tensor occupies in a safetensors file.
    pub fn nbytes(&self) -> anyhow::Result<u64> {
        let bits = dtype_bits(&self.dtype)
            .with_context(|| format!("unknown safetensors dtype `{}`", self.dtype))?;
        let total = self.numel() * bits;
        ensure!(
            total.is_multiple_of(8),
            "tensor `{}` does not fill whole bytes",
            self.name
        );
        Ok(total / 8)
    }
}

/// safetensors dtypes in the order of the `safetensors` crate's `Dtype` enum, with their bits.
/// The writer sorts tensors by this order, descending, then by name.
const DTYPES: [(&str, u64); 22] = [
    ("BOOL", 8),
    ("F4", 4),
    ("F6_E2M3", 6),
    ("F6_E3M2", 6),
    ("U8", 8),
    ("I8", 8),
    ("F8_E5M2", 8),
    ("F8_E4M3", 8),
    ("F8_E8M0", 8),
    ("F8_E4M3FNUZ", 8),
    ("F8_E5M2FNUZ", 8),
    ("I16", 16),
    ("U16", 16),
    ("F16", 16),
    ("BF16", 16),
    ("I32", 32),
    ("U32", 32),
    ("F32", 32),
    ("C64", 64),
    ("F64", 64),
    ("I64", 64),
    ("U64", 64),
];

/// Bits per element of a safetensors dtype name.
pub fn dtype_bits(dtype: &str) -> Option<u64> {
    DTYPES.iter().find(|(n, _)| *n == dtype).map(|(_, b)| *b)
}

fn dtype_rank(dtype: &str) -> usize {
    DTYPES
        .iter()
        .position(|(n, _)| *n == dtype)
        .unwrap_or(usize::MAX)
}

/// The safetensors dtype name of a `torch_dtype` string (`bfloat16` → `BF16`).
pub fn dtype_of_torch(torch_dtype: &str) -> Option<&'static str> {
    Some(match torch_dtype.trim_start_matches("torch.") {
        "bfloat16" => "BF16",
        "float16" | "half" => "F16",
        "float32" | "float" => "F32",
        "float64" | "double" => "F64",
        "int8" => "I8",
        "uint8" => "U8",
        _ => return None,
    })
}

fn get_u64(config: &Value, key: &str) -> Option<u64> {
    config
        .get(key)
        .and_then(Value::as_u64)
        .or_else(|| config.get("text_config")?.get(key)?.as_u64())
}

fn need_u64(config: &Value, key: &str) -> anyhow::Result<u64> {
    get_u64(config, key).with_context(|| format!("config has no integer `{key}`"))
}

/// Every tensor of a decoder-only transformers model of the Llama family (Llama, Mistral,
/// Gemma, Gemma 2, Qwen2, Mixtral), from its `config.json`, with the names transformers saves.
///
/// Per layer: q, k, v, o projections (grouped KV heads, `head_dim` where stated, else
/// hidden / heads), the gated MLP (or Mixtral's router and experts), two norms (four for
/// Gemma 2); biases where the config asks for them (`attention_bias`, `mlp_bias`, Qwen2's q/k/v).
/// Plus the embeddings, the final norm and, unless tied, `lm_head`. The dtype is the config's
/// `torch_dtype` (or `dtype`), F32 when absent.
pub fn decoder_tensors(config: &Value) -> anyhow::Result<Vec<TensorSpec>> {
    let model_type = config
        .get("model_type")
        .and_then(Value::as_str)
        .unwrap_or("llama");
    let hidden = need_u64(config, "hidden_size")?;
    let layers = need_u64(config, "num_hidden_layers")?;
    let heads = need_u64(config, "num_attention_heads")?;
    ensure!(heads > 0, "num_attention_heads is 0");
    let kv_heads = get_u64(config, "num_key_value_heads").unwrap_or(heads);
    let head_dim = get_u64(config, "head_dim").unwrap_or(hidden / heads);
    let intermediate = need_u64(config, "intermediate_size")?;
    let vocab = need_u64(config, "vocab_size")?;
    let tied = config
        .get("tie_word_embeddings")
        .and_then(Value::as_bool)
        .unwrap_or(model_type.starts_with("gemma"));
    let torch_dtype = config
        .get("torch_dtype")
        .or_else(|| config.get("dtype"))
        .and_then(Value::as_str)
        .unwrap_or("float32");
    let dtype = dtype_of_torch(torch_dtype)
        .with_context(|| format!("unsupported torch_dtype `{torch_dtype}`"))?;
    let flag = |key: &str| config.get(key).and_then(Value::as_bool).unwrap_or(false);
    let attention_bias = flag("attention_bias");
    let qkv_bias = attention_bias || model_type == "qwen2";
    let mlp_bias = flag("mlp_bias");
    let experts = get_u64(config, "num_local_experts");

    let mut out = Vec::new();
    let mut push = |name: String, shape: &[u64]| out.push(TensorSpec::new(name, dtype, shape));
    push("model.embed_tokens.weight".into(), &[vocab, hidden]);
    for l in 0..layers {
        let p = format!("model.layers.{l}.");
        let attn = [
            ("q_proj", heads * head_dim, hidden, qkv_bias),
            ("k_proj", kv_heads * head_dim, hidden, qkv_bias),
            ("v_proj", kv_heads * head_dim, hidden, qkv_bias),
            ("o_proj", hidden, heads * head_dim, attention_bias),
        ];
        for (name, rows, cols, bias) in attn {
            push(format!("{p}self_attn.{name}.weight"), &[rows, cols]);
            if bias {
                push(format!("{p}self_attn.{name}.bias"), &[rows]);
            }
        }
        match experts {
            Some(e) => {
                push(format!("{p}block_sparse_moe.gate.weight"), &[e, hidden]);
                for x in 0..e {
                    let q = format!("{p}block_sparse_moe.experts.{x}.");
                    push(format!("{q}w1.weight"), &[intermediate, hidden]);
                    push(format!("{q}w2.weight"), &[hidden, intermediate]);
                    push(format!("{q}w3.weight"), &[intermediate, hidden]);
                }
            }
            None => {
                let mlp = [
                    ("gate_proj", intermediate, hidden),
                    ("up_proj", intermediate, hidden),
                    ("down_proj", hidden, intermediate),
                ];
                for (name, rows, cols) in mlp {
                    push(format!("{p}mlp.{name}.weight"), &[rows, cols]);
                    if mlp_bias {
                        push(format!("{p}mlp.{name}.bias"), &[rows]);
                    }
                }
            }
        }
        push(format!("{p}input_layernorm.weight"), &[hidden]);
        push(format!("{p}post_attention_layernorm.weight"), &[hidden]);
        if model_type == "gemma2" {
            push(format!("{p}pre_feedforward_layernorm.weight"), &[hidden]);
            push(format!("{p}post_feedforward_layernorm.weight"), &[hidden]);
        }
    }
    push("model.norm.weight".into(), &[hidden]);
    if !tied {
        push("lm_head.weight".into(), &[vocab, hidden]);
    }
    Ok(out)
}

/// The JSON header of a safetensors file holding `tensors`, byte for byte as the Rust writer
/// emits it (and so the Python package): `__metadata__` `{"format":"pt"}` first, tensors sorted
/// by dtype (descending enum order) then name, compact JSON, padded with spaces to a multiple
/// of 8. Returns the header and the data length.
pub fn safetensors_header(tensors: &[TensorSpec]) -> anyhow::Result<(Vec<u8>, u64)> {
    let mut sorted: Vec<&TensorSpec> = tensors.iter().collect();
    sorted.sort_by(|a, b| {
        dtype_rank(&b.dtype)
            .cmp(&dtype_rank(&a.dtype))
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut json = String::from(r#"{"__metadata__":{"format":"pt"}"#);
    let mut offset = 0u64;
    for t in sorted {
        let end = offset + t.nbytes()?;
        let shape: Vec<String> = t.shape.iter().map(u64::to_string).collect();
        write!(
            json,
            r#",{}:{{"dtype":{},"shape":[{}],"data_offsets":[{offset},{end}]}}"#,
            serde_json::to_string(&t.name)?,
            serde_json::to_string(&t.dtype)?,
            shape.join(","),
        )?;
        offset = end;
    }
    json.push('}');
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    Ok((json.into_bytes(), offset))
}

/// Writes a safetensors file of `tensors` at `path`: the real header, then the data region
/// as a sparse hole (the file is extended, not written). Returns the file's length.
pub fn write_safetensors(path: &Path, tensors: &[TensorSpec]) -> anyhow::Result<u64> {
    let (header, data_len) = safetensors_header(tensors)?;
    let mut bytes = Vec::with_capacity(8 + header.len());
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&header);
    fs_err::write(path, &bytes)?;
    let len = bytes.len() as u64 + data_len;
    fs_err::OpenOptions::new()
        .write(true)
        .open(path)?
        .set_len(len)?;
    Ok(len)
}

/// Writes `tensors` to `path` with the `safetensors` crate itself (`serialize_to_file`,
/// metadata `{"format":"pt"}`), zero-filled: a small but entirely real file, the reference
/// the readers are checked against. Returns the file's length.
pub fn write_safetensors_with_crate(path: &Path, tensors: &[TensorSpec]) -> anyhow::Result<u64> {
    let data: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| Ok(vec![0u8; usize::try_from(t.nbytes()?)?]))
        .collect::<anyhow::Result<_>>()?;
    let mut views = Vec::with_capacity(tensors.len());
    for (t, bytes) in tensors.iter().zip(&data) {
        let dtype: safetensors::Dtype = serde_json::from_value(Value::from(t.dtype.as_str()))
            .with_context(|| format!("the safetensors crate has no dtype `{}`", t.dtype))?;
        let shape: Vec<usize> = t
            .shape
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<_, _>>()?;
        let view = safetensors::tensor::TensorView::new(dtype, shape, bytes)
            .map_err(|e| anyhow::anyhow!("tensor `{}`: {e}", t.name))?;
        views.push((t.name.clone(), view));
    }
    let metadata = Some(std::collections::HashMap::from([(
        "format".to_owned(),
        "pt".to_owned(),
    )]));
    safetensors::serialize_to_file(views, metadata, path)
        .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", path.display()))?;
    Ok(fs_err::metadata(path)?.len())
}

/// A weight map that splits `tensors`, in order, into `shards` files of about equal bytes
/// named by `name(i, shards)`; every shard gets at least one tensor.
pub fn split_evenly(
    tensors: &[TensorSpec],
    shards: usize,
    name: impl Fn(usize, usize) -> String,
) -> anyhow::Result<BTreeMap<String, String>> {
    ensure!(
        shards > 0 && shards <= tensors.len(),
        "cannot split {} tensors into {shards} shards",
        tensors.len()
    );
    let mut total = 0u128;
    for t in tensors {
        total += u128::from(t.nbytes()?);
    }
    let mut map = BTreeMap::new();
    let (mut shard, mut done) = (0usize, 0u128);
    for (i, t) in tensors.iter().enumerate() {
        map.insert(t.name.clone(), name(shard, shards));
        done += u128::from(t.nbytes()?);
        // Next shard once this one holds its share, or when each remaining shard needs one
        // of the remaining tensors.
        let (left_tensors, left_shards) = (tensors.len() - i - 1, shards - shard - 1);
        let share = total * (shard as u128 + 1) / shards as u128;
        if left_shards > 0 && (done >= share || left_tensors == left_shards) {
            shard += 1;
        }
    }
    Ok(map)
}

/// Writes `tensors` as a sharded safetensors checkpoint in `dir`, with
/// `model.safetensors.index.json` (`metadata.total_size` = data bytes, `weight_map`).
///
/// With `weight_map` (a real index's), every tensor goes to the shard it names, and every
/// tensor must be in the map. Without it, tensors are split in order into `shards` files of
/// about equal bytes, named `model-00001-of-0000N.safetensors`.
pub fn write_sharded_safetensors(
    dir: &Path,
    tensors: &[TensorSpec],
    weight_map: Option<&BTreeMap<String, String>>,
    shards: usize,
) -> anyhow::Result<()> {
    let mut files: BTreeMap<String, Vec<TensorSpec>> = BTreeMap::new();
    match weight_map {
        Some(map) => {
            for t in tensors {
                let file = map
                    .get(&t.name)
                    .with_context(|| format!("tensor `{}` is not in the weight_map", t.name))?;
                files.entry(file.clone()).or_default().push(t.clone());
            }
        }
        None => {
            let map = split_evenly(tensors, shards, shard_name)?;
            for t in tensors {
                if let Some(file) = map.get(&t.name) {
                    files.entry(file.clone()).or_default().push(t.clone());
                }
            }
        }
    }
    let mut total_size = 0u64;
    let mut map = BTreeMap::new();
    for (file, specs) in &files {
        let (header, data_len) = safetensors_header(specs)?;
        let len = write_safetensors(&dir.join(file), specs)?;
        debug_assert_eq!(len, 8 + header.len() as u64 + data_len);
        total_size += data_len;
        for t in specs {
            map.insert(t.name.clone(), file.clone());
        }
    }
    let index = serde_json::json!({
        "metadata": { "total_size": total_size },
        "weight_map": map,
    });
    let mut text = serde_json::to_string_pretty(&index)?;
    text.push('\n');
    fs_err::write(dir.join("model.safetensors.index.json"), text)?;
    Ok(())
}

/// `model-00003-of-00191.safetensors` for the 0-based shard `i` of `n`.
pub fn shard_name(i: usize, n: usize) -> String {
    format!("model-{:05}-of-{n:05}.safetensors", i + 1)
}

/// The repository's copy of the shared cases: `tests/fixtures/cases`.
pub fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cases")
}

/// The folder of one shared case (`mistral-7b-v0.1`).
pub fn case_dir(name: &str) -> PathBuf {
    cases_dir().join(name)
}

/// Reads and parses a JSON file.
pub fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = fs_err::read_to_string(path)?;
    serde_json::from_str(&text).with_context(|| format!("`{}` is not JSON", path.display()))
}

/// The true byte sizes of a case's weight files, from its `lfs_sizes.json` (file → size).
pub fn lfs_sizes(name: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    let sizes = read_json(&case_dir(name).join("lfs_sizes.json"))?;
    let Value::Object(map) = sizes else {
        bail!("lfs_sizes.json of `{name}` is not an object");
    };
    map.into_iter()
        .map(|(file, v)| {
            let size = v
                .get("size")
                .and_then(Value::as_u64)
                .with_context(|| format!("no size for `{file}`"))?;
            Ok((file, size))
        })
        .collect()
}

/// Builds the checkpoint directory of shared case `name` in `dest` (created if needed): its
/// files copied (sub-folders included; not `lfs_pointers/`, `lfs_sizes.json`, `SOURCE.txt`),
/// and, for each `*.safetensors.index.json`, the shards it names generated from `config.json`
/// with header-accurate sparse files. Fails if a generated shard's size differs from the real
/// file's (`lfs_sizes.json`) or the index's `total_size` is not reproduced.
pub fn materialize_case(name: &str, dest: &Path) -> anyhow::Result<()> {
    let src = case_dir(name);
    ensure!(
        src.is_dir(),
        "no case `{name}` in `{}`",
        cases_dir().display()
    );
    copy_tree(&src, dest, true)?;
    let sizes = lfs_sizes(name).unwrap_or_default();
    for entry in fs_err::read_dir(&src)? {
        let file_name = entry?.file_name().to_string_lossy().into_owned();
        if !file_name.ends_with(".safetensors.index.json") {
            continue;
        }
        let index = read_json(&src.join(&file_name))?;
        let config = read_json(&src.join("config.json"))?;
        let tensors = decoder_tensors(&config)?;
        let weight_map: BTreeMap<String, String> =
            serde_json::from_value(index["weight_map"].clone())
                .context("index has no weight_map")?;
        let mut files: BTreeMap<&str, Vec<TensorSpec>> = BTreeMap::new();
        for t in &tensors {
            let file = weight_map
                .get(&t.name)
                .with_context(|| format!("`{}` is not in the index of `{name}`", t.name))?;
            files.entry(file).or_default().push(t.clone());
        }
        ensure!(
            files.values().map(Vec::len).sum::<usize>() == weight_map.len(),
            "the index of `{name}` maps tensors the config does not produce"
        );
        let mut total = 0u64;
        for (file, specs) in &files {
            let len = write_safetensors(&dest.join(file), specs)?;
            total += safetensors_header(specs)?.1;
            if let Some(&real) = sizes.get(*file) {
                ensure!(
                    len == real,
                    "generated `{file}` is {len} bytes, the real file {real}"
                );
            }
        }
        let stated = index["metadata"]["total_size"].as_u64();
        ensure!(
            stated.is_none_or(|s| s == total),
            "generated data of `{name}` is {total} bytes, the index says {stated:?}"
        );
    }
    Ok(())
}

/// Copies the files of `src` into `dest` recursively; at the top level, leaves out what
/// describes the case rather than the checkpoint.
fn copy_tree(src: &Path, dest: &Path, top: bool) -> anyhow::Result<()> {
    fs_err::create_dir_all(dest)?;
    for entry in fs_err::read_dir(src)? {
        let entry = entry?;
        let name = entry.file_name();
        if top
            && ["lfs_pointers", "lfs_sizes.json", "SOURCE.txt"].contains(&&*name.to_string_lossy())
        {
            continue;
        }
        let (from, to) = (entry.path(), dest.join(&name));
        if entry.file_type()?.is_dir() {
            copy_tree(&from, &to, false)?;
        } else {
            fs_err::copy(&from, &to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case_total(name: &str) -> u64 {
        let config = read_json(&case_dir(name).join("config.json")).unwrap();
        decoder_tensors(&config)
            .unwrap()
            .iter()
            .map(TensorSpec::numel)
            .sum()
    }

    #[test]
    fn decoder_tensors_reproduce_the_expected_totals() {
        assert_eq!(case_total("llama2-7b-chat-hf"), 6_738_415_616);
        assert_eq!(case_total("mistral-7b-v0.1"), 7_241_732_096);
        assert_eq!(case_total("gemma-2b-it"), 2_506_172_416);
    }

    #[test]
    fn decoder_tensors_match_the_real_weight_maps() {
        for (case, index) in [
            ("llama2-7b-chat-hf", "pytorch_model.bin.index.json"),
            ("mistral-7b-v0.1", "model.safetensors.index.json"),
            ("gemma-2b-it", "model.safetensors.index.json"),
        ] {
            let config = read_json(&case_dir(case).join("config.json")).unwrap();
            let index = read_json(&case_dir(case).join(index)).unwrap();
            let mut ours: Vec<String> = decoder_tensors(&config)
                .unwrap()
                .into_iter()
                .map(|t| t.name)
                .collect();
            ours.sort();
            let theirs: Vec<String> = index["weight_map"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            assert_eq!(ours, theirs, "{case}");
            let bytes: u64 = decoder_tensors(&config)
                .unwrap()
                .iter()
                .map(|t| t.nbytes().unwrap())
                .sum();
            assert_eq!(Some(bytes), index["metadata"]["total_size"].as_u64());
        }
    }

    #[test]
    fn materialized_cases_have_the_real_shard_sizes() {
        for case in ["mistral-7b-v0.1", "gemma-2b-it"] {
            let dir = tempfile::tempdir().unwrap();
            materialize_case(case, dir.path()).unwrap();
            for (file, size) in lfs_sizes(case).unwrap() {
                if file.ends_with(".safetensors") {
                    let len = std::fs::metadata(dir.path().join(&file)).unwrap().len();
                    assert_eq!(len, size, "{case}/{file}");
                }
            }
            assert!(dir.path().join("config.json").is_file());
            assert!(!dir.path().join("lfs_sizes.json").exists());
        }
    }

    #[test]
    fn header_is_byte_for_byte_what_the_python_package_writes() {
        let tensors = vec![
            TensorSpec::new("b", "F32", &[2, 3]),
            TensorSpec::new("a", "F32", &[]),
            TensorSpec::new("c", "I64", &[4]),
            TensorSpec::new("z", "F16", &[5]),
        ];
        let (header, data) = safetensors_header(&tensors).unwrap();
        assert_eq!(data, 70);
        // `safetensors.numpy.save(..., metadata={"format": "pt"})`, safetensors 0.8.0.
        let python = concat!(
            r#"{"__metadata__":{"format":"pt"},"c":{"dtype":"I64","shape":[4],"data_offsets":[0,32]},"#,
            r#""a":{"dtype":"F32","shape":[],"data_offsets":[32,36]},"#,
            r#""b":{"dtype":"F32","shape":[2,3],"data_offsets":[36,60]},"#,
            r#""z":{"dtype":"F16","shape":[5],"data_offsets":[60,70]}}    "#
        );
        assert_eq!(String::from_utf8(header).unwrap(), python);
    }

    #[test]
    fn sparse_writer_matches_the_safetensors_crate_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let tensors = [
            TensorSpec::new("model.embed_tokens.weight", "BF16", &[8, 4]),
            TensorSpec::new("lm_head.weight", "BF16", &[8, 4]),
            TensorSpec::new("scale", "F32", &[]),
            TensorSpec::new("ids", "I64", &[1, 3]),
            TensorSpec::new("mask", "BOOL", &[5]),
            TensorSpec::new("q", "F8_E4M3", &[7]),
            TensorSpec::new("packed", "F4", &[6]),
        ];
        let ours = dir.path().join("ours.safetensors");
        let theirs = dir.path().join("theirs.safetensors");
        let len = write_safetensors(&ours, &tensors).unwrap();
        assert_eq!(
            write_safetensors_with_crate(&theirs, &tensors).unwrap(),
            len
        );
        let (a, b) = (fs_err::read(&ours).unwrap(), fs_err::read(&theirs).unwrap());
        // Data is zeros in both (a hole reads as zeros): the whole files are equal.
        assert_eq!(
            String::from_utf8_lossy(&a[8..]),
            String::from_utf8_lossy(&b[8..])
        );
        assert_eq!(a, b);
    }

    #[test]
    fn even_split_names_and_fills_every_shard() {
        let dir = tempfile::tempdir().unwrap();
        let tensors: Vec<TensorSpec> = (0..10)
            .map(|i| TensorSpec::new(format!("t{i}"), "F16", &[100 + i]))
            .collect();
        write_sharded_safetensors(dir.path(), &tensors, None, 3).unwrap();
        let index = read_json(&dir.path().join("model.safetensors.index.json")).unwrap();
        let map = index["weight_map"].as_object().unwrap();
        assert_eq!(map.len(), 10);
        let mut shards: Vec<&str> = map.values().filter_map(Value::as_str).collect();
        shards.sort();
        shards.dedup();
        assert_eq!(
            shards,
            [shard_name(0, 3), shard_name(1, 3), shard_name(2, 3)]
        );
        let bytes: u64 = tensors.iter().map(|t| t.nbytes().unwrap()).sum();
        assert_eq!(index["metadata"]["total_size"], bytes);
    }
}
