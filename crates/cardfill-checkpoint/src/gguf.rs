//! GGUF v1–v3 (ggml `docs/gguf.md`), split files (`-00001-of-00003.gguf`) included: the
//! metadata key/values and tensor infos of the header; never the tensor data.
//!
//! Parameters are the products of the tensor dimensions (logical counts, whatever the
//! quantization); the breakdown is by ggml type name (`Q4_K`, `F16`).

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use cardfill_facts::{Facts, Source, Value, paths};

use crate::{CheckpointError, Tensor, WeightSet};

/// Largest header (metadata and tensor infos) read, in bytes.
const MAX_HEADER_BYTES: u64 = 512 << 20;
/// Tensors kept by name per weight set; beyond, only the sums by dtype.
const KEPT_TENSORS: usize = 100_000;

/// Most tensors in one file.
const MAX_TENSORS: u64 = 1_000_000;
/// Most metadata keys in one file.
const MAX_KV: u64 = 1_000_000;
/// Deepest array nesting.
const MAX_ARRAY_DEPTH: u32 = 4;

/// `(name, block elements, bytes per block)` of each ggml type id, `None` where removed.
fn ggml_type(id: u32) -> Option<(&'static str, u64, u64)> {
    Some(match id {
        0 => ("F32", 1, 4),
        1 => ("F16", 1, 2),
        2 => ("Q4_0", 32, 18),
        3 => ("Q4_1", 32, 20),
        6 => ("Q5_0", 32, 22),
        7 => ("Q5_1", 32, 24),
        8 => ("Q8_0", 32, 34),
        9 => ("Q8_1", 32, 36),
        10 => ("Q2_K", 256, 84),
        11 => ("Q3_K", 256, 110),
        12 => ("Q4_K", 256, 144),
        13 => ("Q5_K", 256, 176),
        14 => ("Q6_K", 256, 210),
        15 => ("Q8_K", 256, 292),
        16 => ("IQ2_XXS", 256, 66),
        17 => ("IQ2_XS", 256, 74),
        18 => ("IQ3_XXS", 256, 98),
        19 => ("IQ1_S", 256, 50),
        20 => ("IQ4_NL", 32, 18),
        21 => ("IQ3_S", 256, 110),
        22 => ("IQ2_S", 256, 82),
        23 => ("IQ4_XS", 256, 136),
        24 => ("I8", 1, 1),
        25 => ("I16", 1, 2),
        26 => ("I32", 1, 4),
        27 => ("I64", 1, 8),
        28 => ("F64", 1, 8),
        29 => ("IQ1_M", 256, 56),
        30 => ("BF16", 1, 2),
        34 => ("TQ1_0", 256, 54),
        35 => ("TQ2_0", 256, 66),
        39 => ("MXFP4", 32, 17),
        40 => ("NVFP4", 64, 36),
        41 => ("Q1_0", 128, 18),
        42 => ("Q2_0", 64, 18),
        _ => return None,
    })
}

/// A metadata value kept from the header (strings and numbers; arrays only counted).
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    /// Any integer type.
    Int(i128),
    /// F32 or F64.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string (kept up to 4 KiB).
    Str(String),
    /// An array: only its length is kept.
    Array(u64),
}

/// One GGUF tensor info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name.
    pub name: String,
    /// Dimensions as stored (`ne[0]` innermost).
    pub dims: Vec<u64>,
    /// ggml type name (`Q4_K`), or `ggml_type_<id>` for an id this build does not know.
    pub ggml_type: String,
    /// Bytes of data, where the type is known.
    pub nbytes: Option<u64>,
}

/// A parsed GGUF header.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// Format version (1–3).
    pub version: u32,
    /// Metadata by key.
    pub metadata: BTreeMap<String, MetaValue>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// Bytes of the header (where the data may start, before alignment).
    pub header_bytes: u64,
}

/// What is wrong with a GGUF file, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufError {
    /// Byte offset.
    pub offset: u64,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for GgufError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GGUF offset {}: {}", self.offset, self.message)
    }
}

struct Cursor<R> {
    r: R,
    pos: u64,
    len: u64,
    wide: bool,
}

type G<T> = Result<T, GgufError>;

impl<R: Read + Seek> Cursor<R> {
    fn err<T>(&self, message: impl Into<String>) -> G<T> {
        Err(GgufError {
            offset: self.pos,
            message: message.into(),
        })
    }
    fn bytes<const N: usize>(&mut self) -> G<[u8; N]> {
        let mut b = [0u8; N];
        if self.pos + N as u64 > self.len.min(MAX_HEADER_BYTES) {
            return if self.pos + N as u64 > self.len {
                self.err("truncated header")
            } else {
                self.err(format!("header larger than {MAX_HEADER_BYTES} bytes"))
            };
        }
        if let Err(e) = self.r.read_exact(&mut b) {
            return self.err(format!("read failed: {e}"));
        }
        self.pos += N as u64;
        Ok(b)
    }
    fn u32(&mut self) -> G<u32> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> G<u64> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    /// A count or length: u32 in v1, u64 later.
    fn count(&mut self) -> G<u64> {
        if self.wide {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }
    fn skip(&mut self, n: u64) -> G<()> {
        if self.pos.checked_add(n).is_none_or(|e| e > self.len) {
            return self.err(format!("{n} bytes run past the end of the file"));
        }
        if self.pos + n > MAX_HEADER_BYTES {
            return self.err(format!("header larger than {MAX_HEADER_BYTES} bytes"));
        }
        if let Err(e) = self.r.seek(SeekFrom::Current(n as i64)) {
            return self.err(format!("seek failed: {e}"));
        }
        self.pos += n;
        Ok(())
    }
    fn string(&mut self, max: u64) -> G<String> {
        let at = self.pos;
        let n = self.count()?;
        if n > max {
            return Err(GgufError {
                offset: at,
                message: format!("string of {n} bytes (limit {max})"),
            });
        }
        self.body(n, at)
    }
    fn body(&mut self, n: u64, at: u64) -> G<String> {
        if self.pos + n > self.len {
            return self.err(format!("string of {n} bytes runs past the end of the file"));
        }
        let mut b = vec![0u8; n as usize];
        if let Err(e) = self.r.read_exact(&mut b) {
            return self.err(format!("read failed: {e}"));
        }
        self.pos += n;
        String::from_utf8(b).map_err(|_| GgufError {
            offset: at,
            message: "string is not UTF-8".into(),
        })
    }
    fn value(&mut self, ty: u32, depth: u32) -> G<MetaValue> {
        Ok(match ty {
            0 => MetaValue::Int(i128::from(self.bytes::<1>()?[0])),
            1 => MetaValue::Int(i128::from(self.bytes::<1>()?[0] as i8)),
            2 => MetaValue::Int(i128::from(u16::from_le_bytes(self.bytes()?))),
            3 => MetaValue::Int(i128::from(i16::from_le_bytes(self.bytes()?))),
            4 => MetaValue::Int(i128::from(self.u32()?)),
            5 => MetaValue::Int(i128::from(self.u32()? as i32)),
            6 => MetaValue::Float(f64::from(f32::from_le_bytes(self.bytes()?))),
            7 => MetaValue::Bool(self.bytes::<1>()?[0] != 0),
            8 => {
                let at = self.pos;
                let n = self.count()?;
                if n <= 4096 {
                    MetaValue::Str(self.body(n, at)?)
                } else {
                    self.skip(n)?;
                    MetaValue::Str(String::new())
                }
            }
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return self.err("arrays nested too deeply");
                }
                let elem = self.u32()?;
                let n = self.count()?;
                let fixed = match elem {
                    0 | 1 | 7 => Some(1),
                    2 | 3 => Some(2),
                    4..=6 => Some(4),
                    10..=12 => Some(8),
                    _ => None,
                };
                match fixed {
                    Some(size) => match n.checked_mul(size) {
                        Some(total) => self.skip(total)?,
                        None => return self.err(format!("array of {n} elements overflows")),
                    },
                    None if elem == 8 || elem == 9 => {
                        // Each element takes at least a length: bounded by the header cap.
                        for _ in 0..n {
                            self.value(elem, depth + 1)?;
                        }
                    }
                    None => return self.err(format!("unknown array element type {elem}")),
                }
                MetaValue::Array(n)
            }
            10 => MetaValue::Int(i128::from(self.u64()?)),
            11 => MetaValue::Int(i128::from(self.u64()? as i64)),
            12 => MetaValue::Float(f64::from_le_bytes(self.bytes()?)),
            _ => return self.err(format!("unknown metadata value type {ty}")),
        })
    }
}

/// Parses the header of a GGUF file read from `r`, `len` bytes long.
pub fn parse<R: Read + Seek>(r: R, len: u64) -> Result<Header, GgufError> {
    let mut tensors = Vec::new();
    let mut header = parse_with(r, len, |t| tensors.push(t))?;
    header.tensors = tensors;
    Ok(header)
}

/// [`parse`], handing each tensor info to `each` as it is read instead of keeping them: the
/// returned header's `tensors` is empty. Memory stays flat whatever the tensor count.
pub fn parse_with<R: Read + Seek>(
    r: R,
    len: u64,
    mut each: impl FnMut(TensorInfo),
) -> Result<Header, GgufError> {
    let mut c = Cursor {
        r: BufReader::new(r),
        pos: 0,
        len,
        wide: true,
    };
    if c.bytes::<4>()? != *b"GGUF" {
        return Err(GgufError {
            offset: 0,
            message: "no `GGUF` magic".into(),
        });
    }
    let version = c.u32()?;
    if !(1..=3).contains(&version) {
        return Err(GgufError {
            offset: 4,
            message: format!("unsupported GGUF version {version}"),
        });
    }
    c.wide = version >= 2;
    let tensor_count = c.count()?;
    let kv_count = c.count()?;
    if tensor_count > MAX_TENSORS {
        return c.err(format!("{tensor_count} tensors (limit {MAX_TENSORS})"));
    }
    if kv_count > MAX_KV {
        return c.err(format!("{kv_count} metadata keys (limit {MAX_KV})"));
    }
    let mut metadata = BTreeMap::new();
    for _ in 0..kv_count {
        let key = c.string(65_535)?;
        let ty = c.u32()?;
        let v = c.value(ty, 0)?;
        metadata.insert(key, v);
    }
    for _ in 0..tensor_count {
        let name = c.string(65_535)?;
        let n_dims = c.u32()?;
        if n_dims > 4 {
            return c.err(format!(
                "tensor `{}` has {n_dims} dimensions (limit 4)",
                name.escape_debug()
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(c.count()?);
        }
        let ty = c.u32()?;
        let _offset = c.u64()?;
        let numel = dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(|| GgufError {
                offset: c.pos,
                message: format!("tensor `{}` element count overflows", name.escape_debug()),
            })?;
        let (ggml_type, nbytes) = match ggml_type(ty) {
            Some((n, block, bytes)) => (n.to_owned(), Some(numel / block * bytes)),
            None => (format!("ggml_type_{ty}"), None),
        };
        each(TensorInfo {
            name,
            dims,
            ggml_type,
            nbytes,
        });
    }
    Ok(Header {
        version,
        metadata,
        tensors: Vec::new(),
        header_bytes: c.pos,
    })
}

/// `(base, index, count)` of a split file name `base-00001-of-00003.gguf`.
fn split_name(name: &str) -> Option<(&str, u32, u32)> {
    let stem = name.strip_suffix(".gguf")?;
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (base, index) = rest.rsplit_once('-')?;
    if index.len() != 5 || count.len() != 5 {
        return None;
    }
    Some((base, index.parse().ok()?, count.parse().ok()?))
}

fn meta_json(v: &MetaValue) -> Value {
    match v {
        MetaValue::Int(i) => i64::try_from(*i).map_or(Value::Null, Value::from),
        MetaValue::Float(f) => Value::from(*f),
        MetaValue::Bool(b) => Value::from(*b),
        MetaValue::Str(s) => Value::from(s.as_str()),
        MetaValue::Array(n) => Value::from(*n),
    }
}

/// Finds the GGUF files in `dir`: one weight set per model (split files grouped), metadata
/// under `checkpoint.gguf`. Unreadable files are warnings.
/// `names` are the regular files of `dir`, sorted.
pub fn find(
    dir: &Path,
    names: &[String],
    facts: &mut Facts,
) -> Result<Vec<WeightSet>, CheckpointError> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in names.iter().filter(|n| n.ends_with(".gguf")) {
        if crate::lfs::is_pointer(&dir.join(n)) {
            continue;
        }
        let key = split_name(n).map_or(n.clone(), |(base, _, _)| base.to_owned());
        groups.entry(key).or_default().push(n.clone());
    }
    let mut sets = Vec::new();
    let mut described = Vec::new();
    for (_, files) in groups {
        let mut set = WeightSet {
            format: "gguf".into(),
            ..WeightSet::default()
        };
        let mut first: Option<Header> = None;
        let mut failed = false;
        for f in &files {
            let path = dir.join(f);
            let (file, len) = match cardfill_facts::read::open(&path, u64::MAX) {
                Ok(x) => x,
                Err(e) => {
                    facts.warn(
                        "checkpoint-file-invalid",
                        format!("cannot read `{f}`: {}", e.reason()),
                    );
                    failed = true;
                    break;
                }
            };
            // Summed while parsing: a file with a million tensors keeps at most
            // `KEPT_TENSORS` of them.
            let parsed = parse_with(file, len, |t| {
                let mut shape = t.dims;
                shape.reverse();
                let tensor = Tensor {
                    name: t.name,
                    dtype: t.ggml_type,
                    shape,
                };
                if set.tensors.len() < KEPT_TENSORS {
                    set.push(tensor);
                } else {
                    set.count(&tensor);
                }
            });
            match parsed {
                Ok(h) => {
                    set.bytes += len;
                    set.files.push(PathBuf::from(f));
                    if first.is_none() {
                        first = Some(h);
                    }
                }
                Err(e) => {
                    facts.warn("checkpoint-file-invalid", format!("`{f}`: {e}"));
                    failed = true;
                    break;
                }
            }
        }
        let Some(h) = first else { continue };
        if failed {
            continue;
        }
        set.method = format!("GGUF v{} header: tensor infos", h.version);
        let mut meta = serde_json::Map::new();
        let arch = match h.metadata.get("general.architecture") {
            Some(MetaValue::Str(a)) => a.clone(),
            _ => String::new(),
        };
        meta.insert("version".into(), h.version.into());
        for (key, name) in [
            ("general.architecture", "architecture"),
            ("general.name", "name"),
            ("general.file_type", "file_type"),
            ("general.quantization_version", "quantization_version"),
            ("general.license", "license"),
            ("general.finetune", "finetune"),
            ("general.size_label", "size_label"),
        ] {
            if let Some(v) = h.metadata.get(key) {
                meta.insert(name.into(), meta_json(v));
            }
        }
        for suffix in [
            "context_length",
            "embedding_length",
            "block_count",
            "attention.head_count",
            "attention.head_count_kv",
            "expert_count",
            "expert_used_count",
        ] {
            if let Some(v) = h.metadata.get(&format!("{arch}.{suffix}")) {
                meta.insert(suffix.replace('.', "_"), meta_json(v));
            }
        }
        let base_models: Vec<Value> = (0..16)
            .filter_map(|i| {
                let get = |k: &str| match h.metadata.get(&format!("general.base_model.{i}.{k}")) {
                    Some(MetaValue::Str(v)) => Some(v.clone()),
                    _ => None,
                };
                let (name, org, url) = (get("name"), get("organization"), get("repo_url"));
                (name.is_some() || url.is_some()).then(
                    || serde_json::json!({"name": name, "organization": org, "repo_url": url}),
                )
            })
            .collect();
        if !base_models.is_empty() {
            meta.insert("base_models".into(), base_models.into());
        }
        if let Some(MetaValue::Str(t)) = h.metadata.get("tokenizer.ggml.model") {
            meta.insert("tokenizer".into(), t.as_str().into());
        }
        if files.len() > 1 {
            meta.insert("splits".into(), files.len().into());
        }
        let total = set.total();
        if total > 0 {
            let bpp = set.bytes as f64 / total as f64;
            meta.insert(
                "bytes_per_parameter".into(),
                ((bpp * 1000.0).round() / 1000.0).into(),
            );
        }
        meta.insert("files".into(), files.clone().into());
        described.push(Value::Object(meta));
        sets.push(set);
    }
    if !described.is_empty() {
        let value = if described.len() == 1 {
            described.remove(0)
        } else {
            Value::Array(described)
        };
        let origin = sets.first().map(WeightSet::origin).unwrap_or_default();
        facts.set(
            paths::CHECKPOINT_GGUF,
            value,
            Source::file(origin, "GGUF header metadata"),
        );
    }
    Ok(sets)
}

/// The `model.*` facts a GGUF file states, when it is the primary copy of the weights:
/// `general.name`, `general.architecture`, `general.license`, and the base models whose
/// `repo_url` is a Hugging Face repository (relation `quantized` for quantized file types).
pub fn record_model(facts: &mut Facts) {
    let meta = match facts.value(paths::CHECKPOINT_GGUF) {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::Array(a)) => match a.first() {
            Some(Value::Object(m)) => m.clone(),
            _ => return,
        },
        _ => return,
    };
    let file = meta
        .get("files")
        .and_then(|f| f.get(0))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let src = |key: &str| Source::file(&file, format!("GGUF header {key}"));
    let text = |k: &str| {
        meta.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if let Some(name) = text("name") {
        facts.set_if_absent(paths::MODEL_NAME, name, src("general.name"));
    }
    if let Some(arch) = text("architecture") {
        facts.set_if_absent(paths::MODEL_ARCHITECTURE, arch, src("general.architecture"));
        facts.set_if_absent(paths::MODEL_MODEL_TYPE, arch, src("general.architecture"));
    }
    if let Some(license) = text("license") {
        facts.set_if_absent(paths::MODEL_LICENSE, license, src("general.license"));
    }
    let ids: Vec<String> = meta
        .get("base_models")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| hub_repo(b.get("repo_url")?.as_str()?))
        .collect();
    let source = src("general.base_model.N.repo_url");
    let set = match ids.as_slice() {
        [] => false,
        [one] => facts.set_if_absent(paths::MODEL_BASE_MODEL, one.as_str(), source),
        many => facts.set_if_absent(paths::MODEL_BASE_MODEL, many.to_vec(), source),
    };
    // ALL_F32 (0), MOSTLY_F16 (1) and MOSTLY_BF16 (32) are not quantized.
    let quantized = meta
        .get("file_type")
        .and_then(Value::as_u64)
        .is_some_and(|t| !matches!(t, 0 | 1 | 32));
    if set && quantized {
        facts.set_if_absent(
            paths::MODEL_BASE_MODEL_RELATION,
            "quantized",
            src("general.file_type"),
        );
    }
}

/// `org/name` of a `https://huggingface.co/org/name` URL (models only).
fn hub_repo(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://huggingface.co/")
        .or_else(|| url.strip_prefix("http://huggingface.co/"))?;
    let mut parts = rest.trim_end_matches('/').split('/');
    let (org, name) = (parts.next()?, parts.next()?);
    let ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with(['.', '-'])
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    (parts.next().is_none() && ok(org) && ok(name) && !matches!(org, "datasets" | "spaces"))
        .then(|| format!("{org}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file written by gguf-py 0.19's `GGUFWriter` with `general.*` metadata.
    #[test]
    fn real_gguf_metadata_becomes_model_facts() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/real");
        let figures: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("figures.json")).unwrap())
                .unwrap();
        let fig = &figures["gguf"];
        let f = crate::collect(&dir.join("gguf")).unwrap();
        assert_eq!(f.value(paths::PARAMETERS_TOTAL), Some(&fig["parameters"]));
        assert_eq!(f.value(paths::MODEL_NAME), Some(&fig["name"]));
        assert_eq!(
            f.value(paths::MODEL_ARCHITECTURE),
            Some(&fig["architecture"])
        );
        assert_eq!(f.value(paths::MODEL_MODEL_TYPE), Some(&fig["architecture"]));
        assert_eq!(f.value(paths::MODEL_LICENSE), Some(&fig["license"]));
        assert_eq!(f.value(paths::MODEL_BASE_MODEL), Some(&fig["base_model"]));
        assert_eq!(f.str(paths::MODEL_BASE_MODEL_RELATION), Some("quantized"));
        let meta = f.value(paths::CHECKPOINT_GGUF).unwrap();
        assert_eq!(meta["finetune"], fig["finetune"]);
        assert_eq!(meta["size_label"], fig["size_label"]);
        assert_eq!(hub_repo("https://huggingface.co/datasets/a/b"), None);
    }

    #[test]
    fn split_names() {
        assert_eq!(
            split_name("model-q4_k_m-00002-of-00003.gguf"),
            Some(("model-q4_k_m", 2, 3))
        );
        assert_eq!(split_name("gemma-2b-it.gguf"), None);
    }

    #[test]
    fn hostile_headers_fail_cleanly() {
        let parse_bytes = |b: &[u8]| parse(std::io::Cursor::new(b), b.len() as u64);
        assert_eq!(parse_bytes(b"GGML").unwrap_err().message, "no `GGUF` magic");
        let mut b = b"GGUF\x03\x00\x00\x00".to_vec();
        b.extend(u64::MAX.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        assert!(
            parse_bytes(&b)
                .unwrap_err()
                .message
                .contains("tensors (limit")
        );
        // One key whose string length claims 2^40 bytes.
        let mut b = b"GGUF\x03\x00\x00\x00".to_vec();
        b.extend(0u64.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        b.extend((1u64 << 40).to_le_bytes());
        let e = parse_bytes(&b).unwrap_err();
        assert_eq!(e.offset, 24);
        assert!(e.message.contains("limit"), "{e}");
    }
}
