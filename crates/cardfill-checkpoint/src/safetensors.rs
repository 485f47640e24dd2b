//! safetensors: `model.safetensors`, sharded checkpoints through any `*.safetensors.index.json`
//! (shard names taken from its `weight_map`), and the other `*.safetensors` files of the
//! directory.
//!
//! Only the 8-byte length and the JSON header of each file are read, in one small read for the
//! usual header sizes: never tensor data. Headers are parsed into our own types so that a dtype
//! this crate does not know is counted under its name instead of failing the whole header.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use cardfill_facts::Facts;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::{CheckpointError, Tensor, WeightSet};

/// The largest header accepted (the safetensors crate's own limit).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;
/// The largest index file accepted.
const MAX_INDEX_BYTES: u64 = 100_000_000;
/// Bytes read at once from the start of a file: the length prefix and, for most shards, the
/// whole header in one system call (a larger first read copies data-region bytes for nothing).
const FIRST_READ: u64 = 4096;

/// What the header of one safetensors file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Every tensor, in header order.
    pub tensors: Vec<Tensor>,
    /// Length of the JSON header (`N`), padding included.
    pub header_len: u64,
    /// Length of the data buffer: the end of the last tensor.
    pub data_len: u64,
    /// Length of the file: `8 + header_len + data_len`.
    pub file_len: u64,
}

/// Finds every copy of the weights stored as safetensors in `dir` (not its sub-directories):
/// one set per `*.safetensors.index.json`, then `model.safetensors`, then shard families
/// without an index (`<stem>-00001-of-00003.safetensors`), then every other file alone.
///
/// PEFT adapters (`adapter_model*.safetensors`) are left to the adapter reader. An index that
/// names a missing shard is a warning and its shards are not counted (the count would be
/// partial); a corrupt file is an error.
pub fn find(dir: &Path, facts: &mut Facts) -> Result<Vec<WeightSet>, CheckpointError> {
    let Listing { names, pointers } = list_files(dir, facts)?;
    let mut buf = Vec::new();
    let mut sets = Vec::new();
    let mut covered: HashSet<String> = HashSet::new();

    for index in names
        .iter()
        .filter(|n| n.ends_with(".safetensors.index.json"))
    {
        let shards = read_index(dir, index)?;
        if shards.shards.is_empty() {
            facts.warn(
                "safetensors-index-empty",
                format!("`{}`: weight_map is empty", dir.join(index).display()),
            );
            continue;
        }
        covered.extend(shards.shards.iter().cloned());
        // Shards not pulled from git-lfs are not weights: `lfs.rs` reports them.
        if shards.shards.iter().any(|shard| pointers.contains(shard)) {
            continue;
        }
        match index_set_to_weights(dir, index, &shards, &mut buf, facts)? {
            IndexOutcome::Ready(weights) => sets.push(weights),
            IndexOutcome::MissingShard { shard } => facts.warn(
                "safetensors-shard-missing",
                format!(
                    "`{}`: weight_map names `{shard}`, which is missing: this copy of the weights is not counted",
                    dir.join(index).display()
                ),
            ),
        }
    }

    let rest: Vec<&String> = names
        .iter()
        .filter(|n| n.ends_with(".safetensors"))
        .filter(|n| !covered.contains(n.as_str()) && !n.starts_with("adapter_model"))
        .collect();
    let mut families: BTreeMap<(String, u32), Vec<String>> = BTreeMap::new();
    let mut singles: Vec<String> = Vec::new();
    for name in rest {
        match shard_family(name) {
            Some((stem, of)) => families
                .entry((stem.to_owned(), of))
                .or_default()
                .push(name.clone()),
            None => singles.push(name.clone()),
        }
    }
    // `model.safetensors` is what transformers writes: it comes before other single files.
    singles.sort_by_key(|n| (n != "model.safetensors", n.clone()));

    if let Some(pos) = singles.iter().position(|n| n == "model.safetensors") {
        let name = singles.remove(pos);
        sets.push(read_set(dir, &[name], "safetensors", "header", &mut buf)?);
    }
    for ((stem, of), files) in families {
        if files.len() != of as usize {
            facts.warn(
                "safetensors-shards-incomplete",
                format!(
                    "`{}`: {} of {of} shards `{stem}-*-of-*.safetensors` present and no index: counted as found",
                    dir.display(),
                    files.len()
                ),
            );
        }
        let method = format!("headers of {} shards (no index)", files.len());
        sets.push(read_set(
            dir,
            &files,
            "safetensors-sharded",
            &method,
            &mut buf,
        )?);
    }
    for name in singles {
        sets.push(read_set(dir, &[name], "safetensors", "header", &mut buf)?);
    }
    Ok(sets)
}

/// Reads the headers of `files` (relative to `dir`) into one [`WeightSet`] of `format`.
/// `buf` is reused between files.
pub fn read_set(
    dir: &Path,
    files: &[String],
    format: &str,
    method: &str,
    buf: &mut Vec<u8>,
) -> Result<WeightSet, CheckpointError> {
    let mut set = WeightSet {
        format: format.to_owned(),
        method: method.to_owned(),
        ..WeightSet::default()
    };
    for file in files {
        let header = read_file(&dir.join(file), buf)?;
        add_header(&mut set, file, header, dir)?;
    }
    Ok(set)
}

/// Adds one file's header to `set`: its tensors, counts and bytes.
fn add_header(
    set: &mut WeightSet,
    file: &str,
    header: Header,
    dir: &Path,
) -> Result<(), CheckpointError> {
    for t in &header.tensors {
        // Overflow was ruled out by `read_file` per tensor; checked again for the sum.
        match set.by_dtype.get_mut(&t.dtype) {
            Some(n) => {
                *n = n.checked_add(t.numel()).ok_or_else(|| {
                    CheckpointError::invalid(&dir.join(file), "parameter count overflows")
                })?;
            }
            None => {
                set.by_dtype.insert(t.dtype.clone(), t.numel());
            }
        }
    }
    set.files.push(PathBuf::from(file));
    set.bytes = set.bytes.saturating_add(header.file_len);
    set.tensors.extend(header.tensors);
    Ok(())
}

/// The safetensors files of a directory.
struct Listing {
    /// Regular files holding weights or an index, sorted.
    names: Vec<String>,
    /// `*.safetensors` files that are git-lfs pointers (reported by `lfs.rs`).
    pointers: HashSet<String>,
}

/// The regular files in `dir` (symbolic links followed: the Hugging Face cache links every
/// file). Entries that are not regular files are skipped, so a FIFO named `*.safetensors`
/// never blocks a read.
fn list_files(dir: &Path, facts: &mut Facts) -> Result<Listing, CheckpointError> {
    let io = |source| CheckpointError::io(dir, source);
    let mut names = Vec::new();
    let mut pointers = HashSet::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !name.ends_with(".safetensors") && !name.ends_with(".safetensors.index.json") {
            continue;
        }
        let is_file = crate::is_regular_file(&entry);
        if is_file {
            // A git-lfs pointer is not weights: `lfs.rs` reports it.
            if name.ends_with(".safetensors") && crate::lfs::is_pointer(&entry.path()) {
                pointers.insert(name);
            } else {
                names.push(name);
            }
        } else {
            facts.warn(
                "safetensors-not-a-file",
                format!(
                    "`{}` is not a regular file: skipped",
                    entry.path().display()
                ),
            );
        }
    }
    names.sort_unstable();
    Ok(Listing { names, pointers })
}

/// `("model", 3)` for `model-00001-of-00003.safetensors` (5 or 6 digits, as the Hub allows).
fn shard_family(name: &str) -> Option<(&str, u32)> {
    let stem = name.strip_suffix(".safetensors")?;
    let (head, of) = stem.rsplit_once("-of-")?;
    let (prefix, nth) = head.rsplit_once('-')?;
    let digits = |s: &str| (5..=6).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(nth) || !digits(of) {
        return None;
    }
    Some((prefix, of.parse().ok()?))
}

/// A parsed index: its shards in order and what it claims.
struct IndexSet {
    /// Shard file names, sorted, each once.
    shards: Vec<String>,
    /// tensor → shard, as the index maps them.
    weight_map: BTreeMap<String, String>,
    /// `metadata.total_size`, where stated as an integer.
    total_size: Option<u64>,
}

/// The weights of an index, or the first shard it names that is missing.
enum IndexOutcome {
    Ready(WeightSet),
    MissingShard { shard: String },
}

#[derive(Deserialize)]
struct RawIndex {
    #[serde(default)]
    metadata: Option<RawIndexMetadata>,
    weight_map: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawIndexMetadata {
    #[serde(default)]
    total_size: Option<serde_json::Value>,
}

/// Reads `dir/index` and checks that every shard it names stays inside `dir`.
fn read_index(dir: &Path, index: &str) -> Result<IndexSet, CheckpointError> {
    let path = dir.join(index);
    let io = |source| CheckpointError::io(&path, source);
    let len = std::fs::metadata(&path).map_err(io)?.len();
    if len > MAX_INDEX_BYTES {
        return Err(CheckpointError::invalid(
            &path,
            format!("index is {len} bytes, over the {MAX_INDEX_BYTES}-byte limit"),
        ));
    }
    let text = std::fs::read(&path).map_err(io)?;
    let raw: RawIndex = serde_json::from_slice(&text).map_err(|e| {
        CheckpointError::invalid(
            &path,
            format!(
                "malformed index JSON at byte {}: {e}",
                json_offset(&text, &e)
            ),
        )
    })?;
    let mut shards: Vec<String> = raw.weight_map.values().cloned().collect();
    shards.sort_unstable();
    shards.dedup();
    for shard in &shards {
        if !is_plain_relative(shard) {
            return Err(CheckpointError::invalid(
                &path,
                format!("weight_map names `{shard}`, which is not a file inside the directory"),
            ));
        }
    }
    let total_size = raw
        .metadata
        .and_then(|m| m.total_size)
        .and_then(|v| v.as_u64());
    Ok(IndexSet {
        shards,
        weight_map: raw.weight_map,
        total_size,
    })
}

/// Reads the shards of an index and checks them against it: every mapped tensor must be in
/// its shard, and `metadata.total_size` must equal the data bytes (both are warnings).
fn index_set_to_weights(
    dir: &Path,
    index: &str,
    set: &IndexSet,
    buf: &mut Vec<u8>,
    facts: &mut Facts,
) -> Result<IndexOutcome, CheckpointError> {
    let method = format!("weight_map + {} shard headers", set.shards.len());
    let mut weights = WeightSet {
        format: "safetensors-sharded".to_owned(),
        index: Some(PathBuf::from(index)),
        method,
        ..WeightSet::default()
    };
    let mut data_bytes: u64 = 0;
    // Where each shard's tensors start in `weights.tensors`.
    let mut starts = Vec::with_capacity(set.shards.len());
    for shard in &set.shards {
        let header = match read_file(&dir.join(shard), buf) {
            Err(CheckpointError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(IndexOutcome::MissingShard {
                    shard: shard.clone(),
                });
            }
            other => other?,
        };
        data_bytes = data_bytes.saturating_add(header.data_len);
        starts.push(weights.tensors.len());
        add_header(&mut weights, shard, header, dir)?;
    }

    // tensor name → index of its shard in `set.shards`.
    let mut found: HashMap<&str, usize> = HashMap::with_capacity(weights.tensors.len());
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(weights.tensors.len());
        found.extend(
            weights.tensors[start..end]
                .iter()
                .map(|t| (t.name.as_str(), i)),
        );
    }

    let mut misplaced = set.weight_map.iter().filter(|(tensor, shard)| {
        found
            .get(tensor.as_str())
            .is_none_or(|&i| set.shards[i] != **shard)
    });
    if let Some((tensor, shard)) = misplaced.next() {
        let others = misplaced.count();
        let more = if others > 0 {
            format!(" (and {others} more)")
        } else {
            String::new()
        };
        facts.warn(
            "safetensors-index-mismatch",
            format!(
                "`{}`: tensor `{tensor}` is mapped to `{shard}` but is not in its header{more}",
                dir.join(index).display()
            ),
        );
    }
    if let Some(total) = set.total_size.filter(|&t| t != data_bytes) {
        facts.warn(
            "safetensors-index-total-size",
            format!(
                "`{}`: metadata.total_size is {total} bytes but the shard headers describe {data_bytes} data bytes",
                dir.join(index).display()
            ),
        );
    }
    Ok(IndexOutcome::Ready(weights))
}

/// Whether `name` is a relative path that stays inside the directory.
fn is_plain_relative(name: &str) -> bool {
    let path = Path::new(name);
    !name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Reads and validates the header of the safetensors file at `path`: length at most
/// [`MAX_HEADER_BYTES`] and inside the file, well-formed JSON, tensors contiguous from offset 0
/// with the byte length their dtype and shape need, and the file exactly
/// `8 + header + data` bytes long. `buf` is scratch space, reused between calls.
pub fn read_file(path: &Path, buf: &mut Vec<u8>) -> Result<Header, CheckpointError> {
    let io = |source| CheckpointError::io(path, source);
    // Checked before opening: opening a FIFO would block.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(CheckpointError::invalid(path, "is not a regular file"));
    }
    let file_len = meta.len();
    let mut file = File::open(path).map_err(io)?;
    let first = file_len.min(FIRST_READ) as usize;
    buf.clear();
    buf.resize(first, 0);
    file.read_exact(buf).map_err(io)?;
    if buf.starts_with(b"version https://git-lfs") {
        return Err(CheckpointError::invalid(
            path,
            "is a git-lfs pointer, not weights: the weights were not downloaded",
        ));
    }
    let Some(prefix) = buf.first_chunk::<8>() else {
        return Err(CheckpointError::invalid(
            path,
            format!("file is {file_len} bytes, too short for the 8-byte header length"),
        ));
    };
    let n = u64::from_le_bytes(*prefix);
    if n > MAX_HEADER_BYTES {
        return Err(CheckpointError::invalid(
            path,
            format!(
                "header length {n} at offset 0 is over the {MAX_HEADER_BYTES}-byte limit (not a safetensors file?)"
            ),
        ));
    }
    if 8 + n > file_len {
        return Err(CheckpointError::invalid(
            path,
            format!(
                "header length {n} at offset 0 runs past the end of the file ({file_len} bytes): truncated"
            ),
        ));
    }
    let end = 8 + n as usize;
    if buf.len() < end {
        let start = buf.len();
        buf.resize(end, 0);
        file.read_exact(&mut buf[start..]).map_err(io)?;
    }
    let json = &buf[8..end];
    if json.first() != Some(&b'{') {
        return Err(CheckpointError::invalid(
            path,
            "header at offset 8 does not start with `{`",
        ));
    }
    let RawHeader(entries) = serde_json::from_slice(json).map_err(|e| {
        CheckpointError::invalid(
            path,
            format!(
                "malformed header JSON at offset {}: {e}",
                8 + json_offset(json, &e)
            ),
        )
    })?;
    let data_start = 8 + n;
    let data_len =
        check_layout(&entries, data_start).map_err(|m| CheckpointError::invalid(path, m))?;
    let described = data_start.checked_add(data_len);
    if described != Some(file_len) {
        let what = if described.is_some_and(|d| d > file_len) {
            "truncated"
        } else {
            "bytes after the last tensor"
        };
        return Err(CheckpointError::invalid(
            path,
            format!(
                "file is {file_len} bytes but its header describes 8 + {n} + {data_len} bytes: {what}"
            ),
        ));
    }
    Ok(Header {
        tensors: entries.into_iter().map(|e| e.tensor).collect(),
        header_len: n,
        data_len,
        file_len,
    })
}

/// Checks every tensor's byte range and returns the data length. Ranges sorted by start must
/// tile the buffer from 0 with no gap or overlap; each must hold exactly its shape in its dtype
/// (unknown dtypes: any length). Messages give file offsets (`data_start` + relative).
fn check_layout(entries: &[Entry], data_start: u64) -> Result<u64, String> {
    let mut names: HashSet<&str> = HashSet::with_capacity(entries.len());
    for e in entries {
        if !names.insert(&e.tensor.name) {
            return Err(format!(
                "tensor `{}` appears twice in the header",
                e.tensor.name
            ));
        }
        let (begin, end) = e.offsets;
        if end < begin {
            return Err(format!(
                "tensor `{}` has data_offsets [{begin}, {end}] that end before they begin",
                e.tensor.name
            ));
        }
        let numel = e
            .tensor
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| {
                format!(
                    "tensor `{}` shape {:?} overflows",
                    e.tensor.name, e.tensor.shape
                )
            })?;
        if let Some(bits) = dtype_bits(&e.tensor.dtype) {
            let stored_bits = numel
                .checked_mul(bits)
                .ok_or_else(|| format!("tensor `{}` byte size overflows", e.tensor.name))?;
            if stored_bits % 8 != 0 || stored_bits / 8 != end - begin {
                return Err(format!(
                    "tensor `{}` ({} {:?}) needs {} bytes but data_offsets [{begin}, {end}] at offset {} hold {}",
                    e.tensor.name,
                    e.tensor.dtype,
                    e.tensor.shape,
                    stored_bits.div_ceil(8),
                    data_start.saturating_add(begin),
                    end - begin
                ));
            }
        }
    }
    let mut order: Vec<&Entry> = entries.iter().collect();
    order.sort_unstable_by_key(|e| e.offsets);
    let mut expected = 0u64;
    let mut previous: Option<&str> = None;
    for e in order {
        let (begin, end) = e.offsets;
        if begin != expected {
            let at = data_start.saturating_add(begin);
            return Err(match (begin < expected, previous) {
                (true, Some(p)) => format!(
                    "tensor `{}` data_offsets [{begin}, {end}] at offset {at} overlap tensor `{p}` (ends at {expected})",
                    e.tensor.name
                ),
                (_, Some(p)) => format!(
                    "gap before tensor `{}`: data_offsets begin at {begin} (offset {at}) but tensor `{p}` ends at {expected}",
                    e.tensor.name
                ),
                (_, None) => format!(
                    "first tensor `{}` begins at {begin} (offset {at}), not 0",
                    e.tensor.name
                ),
            });
        }
        expected = end;
        previous = Some(&e.tensor.name);
    }
    Ok(expected)
}

/// Bits per element of a safetensors dtype, for those this crate knows.
pub fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" | "F8_E4M3FNUZ"
        | "F8_E5M2FNUZ" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "C64" | "F64" | "I64" | "U64" => 64,
        _ => return None,
    })
}

/// The byte offset of a JSON error inside `text`, from serde_json's line and column.
fn json_offset(text: &[u8], err: &serde_json::Error) -> usize {
    let line_start: usize = text
        .split_inclusive(|&b| b == b'\n')
        .take(err.line().saturating_sub(1))
        .map(<[u8]>::len)
        .sum();
    (line_start + err.column().saturating_sub(1)).min(text.len())
}

/// One header entry: the tensor and its `data_offsets`.
struct Entry {
    tensor: Tensor,
    offsets: (u64, u64),
}

/// A header's tensors in order; `__metadata__` is skipped.
struct RawHeader(Vec<Entry>);

#[derive(Deserialize)]
struct RawInfo {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeaderVisitor)
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = RawHeader;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of tensor name → {dtype, shape, data_offsets}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(name) = map.next_key::<String>()? {
            if name == "__metadata__" {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let info: RawInfo = map.next_value()?;
            entries.push(Entry {
                tensor: Tensor {
                    name,
                    dtype: info.dtype,
                    shape: info.shape,
                },
                offsets: info.data_offsets,
            });
        }
        Ok(RawHeader(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardfill_testkit::{TensorSpec, write_safetensors, write_sharded_safetensors};
    use proptest::prelude::*;

    /// Writes `8-byte length + header + data_len zero bytes` to `name` in `dir`.
    fn raw(dir: &Path, name: &str, header: &str, data_len: u64) -> PathBuf {
        let path = dir.join(name);
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(bytes.len() as u64 + data_len).unwrap();
        path
    }

    fn error_of(path: &Path) -> String {
        let err = read_file(path, &mut Vec::new()).unwrap_err().to_string();
        assert!(!err.contains('\n'), "one line: {err}");
        assert!(err.contains(&format!("`{}`", path.display())), "{err}");
        err
    }

    #[test]
    fn counts_per_dtype_with_scalars_and_integer_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let len = write_safetensors(
            &path,
            &[
                TensorSpec::new("w", "BF16", &[4, 8]),
                TensorSpec::new("scale", "F32", &[]),
                TensorSpec::new("position_ids", "I64", &[1, 512]),
                TensorSpec::new("empty", "F16", &[0, 7]),
            ],
        )
        .unwrap();
        let header = read_file(&path, &mut Vec::new()).unwrap();
        assert_eq!(header.file_len, len);
        assert_eq!(header.data_len, 64 + 4 + 4096);
        let mut facts = Facts::new();
        let sets = find(dir.path(), &mut facts).unwrap();
        assert_eq!(sets.len(), 1);
        let set = &sets[0];
        assert_eq!(set.format, "safetensors");
        assert_eq!(set.bytes, len);
        let expected: BTreeMap<String, u64> = [("BF16", 32), ("F32", 1), ("I64", 512), ("F16", 0)]
            .into_iter()
            .map(|(d, n)| (d.to_owned(), n))
            .collect();
        assert_eq!(set.by_dtype, expected);
        assert_eq!(set.total(), 545);
        assert!(facts.warnings().is_empty());
    }

    #[test]
    fn unknown_dtype_is_counted_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let header = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F3_NEW","shape":[2,5],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
        let path = raw(dir.path(), "x.safetensors", header, 12);
        let h = read_file(&path, &mut Vec::new()).unwrap();
        assert_eq!(h.tensors[0].dtype, "F3_NEW");
        assert_eq!(h.tensors[0].numel(), 10);
    }

    #[test]
    fn long_headers_are_read_past_the_first_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.safetensors");
        let tensors: Vec<TensorSpec> = (0..3000)
            .map(|i| {
                TensorSpec::new(
                    format!("layer.{i}.a_rather_long_tensor_name.weight"),
                    "F16",
                    &[3],
                )
            })
            .collect();
        write_safetensors(&path, &tensors).unwrap();
        let h = read_file(&path, &mut Vec::new()).unwrap();
        assert!(h.header_len > FIRST_READ);
        assert_eq!(h.tensors.len(), 3000);
    }

    #[test]
    fn corrupt_files_give_one_line_errors_with_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();

        let short = d.join("short.safetensors");
        std::fs::write(&short, [1, 2, 3]).unwrap();
        assert!(error_of(&short).contains("file is 3 bytes, too short"));

        let past = d.join("past.safetensors");
        let mut bytes = 500u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        std::fs::write(&past, &bytes).unwrap();
        assert!(
            error_of(&past)
                .contains("header length 500 at offset 0 runs past the end of the file (10 bytes)")
        );

        let huge = d.join("huge.safetensors");
        std::fs::write(&huge, 200_000_000u64.to_le_bytes()).unwrap();
        assert!(error_of(&huge).contains("over the 100000000-byte limit"));

        let json = raw(
            d,
            "json.safetensors",
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}"#,
            4,
        );
        let err = error_of(&json);
        assert!(
            err.contains("malformed header JSON at offset 62: trailing comma"),
            "{err}"
        );

        let brace = raw(d, "brace.safetensors", "[1]", 0);
        assert!(error_of(&brace).contains("header at offset 8 does not start with `{`"));

        let overlap = raw(
            d,
            "overlap.safetensors",
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            12,
        );
        let err = error_of(&overlap);
        assert!(
            err.contains("tensor `b` data_offsets [4, 12] at offset"),
            "{err}"
        );
        assert!(err.contains("overlap tensor `a` (ends at 8)"), "{err}");

        let gap = raw(
            d,
            "gap.safetensors",
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
            12,
        );
        assert!(error_of(&gap).contains("gap before tensor `b`"));

        let size = raw(
            d,
            "size.safetensors",
            r#"{"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}}"#,
            4,
        );
        assert!(
            error_of(&size).contains("tensor `a` (BF16 [3]) needs 6 bytes but data_offsets [0, 4]")
        );

        let truncated = raw(
            d,
            "trunc.safetensors",
            r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
            10,
        );
        let err = error_of(&truncated);
        assert!(
            err.contains("describes 8 + 55 + 16 bytes: truncated"),
            "{err}"
        );

        let twice = raw(
            d,
            "twice.safetensors",
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            8,
        );
        assert!(error_of(&twice).contains("tensor `a` appears twice"));

        let negative = raw(
            d,
            "neg.safetensors",
            r#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
            4,
        );
        assert!(error_of(&negative).contains("malformed header JSON"));

        let lfs = d.join("lfs.safetensors");
        std::fs::write(
            &lfs,
            "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 12\n",
        )
        .unwrap();
        assert!(error_of(&lfs).contains("git-lfs pointer"));
    }

    fn sharded(dir: &Path) -> Vec<TensorSpec> {
        let tensors: Vec<TensorSpec> = (0..6)
            .map(|i| TensorSpec::new(format!("t{i}"), "BF16", &[10, i + 1]))
            .collect();
        write_sharded_safetensors(dir, &tensors, None, 3).unwrap();
        tensors
    }

    #[test]
    fn sharded_index_is_followed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        sharded(dir.path());
        let mut facts = Facts::new();
        let sets = find(dir.path(), &mut facts).unwrap();
        assert_eq!(sets.len(), 1);
        let set = &sets[0];
        assert_eq!(set.format, "safetensors-sharded");
        assert_eq!(
            set.index.as_deref(),
            Some(Path::new("model.safetensors.index.json"))
        );
        assert_eq!(set.files.len(), 3);
        assert_eq!(set.total(), 210);
        assert_eq!(set.method, "weight_map + 3 shard headers");
        assert!(facts.warnings().is_empty(), "{:?}", facts.warnings());
    }

    #[test]
    fn shard_names_come_from_the_weight_map() {
        let dir = tempfile::tempdir().unwrap();
        let tensors = [
            TensorSpec::new("embed", "F32", &[4, 2]),
            TensorSpec::new("head", "F32", &[2, 4]),
        ];
        let map: BTreeMap<String, String> = [
            ("embed".to_owned(), "embed.safetensors".to_owned()),
            ("head".to_owned(), "weights/head.safetensors".to_owned()),
        ]
        .into();
        std::fs::create_dir(dir.path().join("weights")).unwrap();
        write_sharded_safetensors(dir.path(), &tensors, Some(&map), 0).unwrap();
        let mut facts = Facts::new();
        let sets = find(dir.path(), &mut facts).unwrap();
        assert_eq!(sets.len(), 1, "the shards are not counted twice");
        assert_eq!(sets[0].total(), 16);
        assert_eq!(
            sets[0].files,
            [
                PathBuf::from("embed.safetensors"),
                PathBuf::from("weights/head.safetensors")
            ]
        );
    }

    fn edit_index(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let path = dir.join("model.safetensors.index.json");
        let mut index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut index);
        std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
    }

    #[test]
    fn index_problems_are_warnings_naming_the_index() {
        let dir = tempfile::tempdir().unwrap();
        sharded(dir.path());
        edit_index(dir.path(), |v| {
            v["metadata"]["total_size"] = 999.into();
            v["weight_map"]["t0"] = "model-00003-of-00003.safetensors".into();
        });
        let mut facts = Facts::new();
        let sets = find(dir.path(), &mut facts).unwrap();
        assert_eq!(sets[0].total(), 210, "headers are the truth");
        let messages: Vec<String> = facts.warnings().iter().map(|w| w.message.clone()).collect();
        assert!(
            messages.iter().any(|m| m.contains(
                "tensor `t0` is mapped to `model-00003-of-00003.safetensors` but is not in its header"
            )),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains(
                "metadata.total_size is 999 bytes but the shard headers describe 420 data bytes"
            )),
            "{messages:?}"
        );
    }

    #[test]
    fn an_index_naming_a_missing_shard_is_dropped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        sharded(dir.path());
        std::fs::remove_file(dir.path().join("model-00002-of-00003.safetensors")).unwrap();
        let mut facts = Facts::new();
        let sets = find(dir.path(), &mut facts).unwrap();
        // The shards left are not counted on their own: the count would be partial.
        assert!(sets.is_empty());
        let codes: Vec<&str> = facts.warnings().iter().map(|w| w.code.as_str()).collect();
        assert_eq!(codes, ["safetensors-shard-missing"]);
        assert!(
            facts.warnings()[0]
                .message
                .contains("weight_map names `model-00002-of-00003.safetensors`, which is missing")
        );
    }

    #[test]
    fn an_empty_index_counts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            r#"{"metadata": {}, "weight_map": {}}"#,
        )
        .unwrap();
        let mut facts = Facts::new();
        assert!(find(dir.path(), &mut facts).unwrap().is_empty());
        assert_eq!(facts.warnings()[0].code, "safetensors-index-empty");
    }

    #[test]
    fn a_malformed_index_is_one_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("x.safetensors.index.json"),
            "{\n  \"weight_map\": [1]\n}",
        )
        .unwrap();
        let err = find(dir.path(), &mut Facts::new()).unwrap_err().to_string();
        assert!(
            err.contains(
                "x.safetensors.index.json`: malformed index JSON at byte 17: invalid type"
            ),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }

    #[test]
    fn an_index_escaping_the_directory_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        sharded(dir.path());
        edit_index(dir.path(), |v| {
            v["weight_map"]["t0"] = "../etc/passwd".into()
        });
        let err = find(dir.path(), &mut Facts::new()).unwrap_err().to_string();
        assert!(err.contains("not a file inside the directory"), "{err}");
    }

    #[test]
    fn a_corrupt_shard_fails_the_collector() {
        let dir = tempfile::tempdir().unwrap();
        sharded(dir.path());
        let shard = dir.path().join("model-00001-of-00003.safetensors");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&shard)
            .unwrap();
        file.set_len(20).unwrap();
        let err = find(dir.path(), &mut Facts::new()).unwrap_err().to_string();
        assert!(
            err.contains("model-00001-of-00003.safetensors`: header length"),
            "{err}"
        );
    }

    #[test]
    fn other_files_model_first_then_families_then_singles() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let one = [TensorSpec::new("w", "F16", &[2, 2])];
        write_safetensors(&d.join("consolidated.safetensors"), &one).unwrap();
        write_safetensors(&d.join("model.safetensors"), &one).unwrap();
        write_safetensors(&d.join("adapter_model.safetensors"), &one).unwrap();
        write_safetensors(&d.join("w-00001-of-00002.safetensors"), &one).unwrap();
        write_safetensors(
            &d.join("w-00002-of-00002.safetensors"),
            &[TensorSpec::new("v", "F16", &[3])],
        )
        .unwrap();
        let sets = find(d, &mut Facts::new()).unwrap();
        let summary: Vec<(&str, usize, u64)> = sets
            .iter()
            .map(|s| (s.format.as_str(), s.files.len(), s.total()))
            .collect();
        assert_eq!(
            summary,
            [
                ("safetensors", 1, 4),
                ("safetensors-sharded", 2, 7),
                ("safetensors", 1, 4)
            ]
        );
        assert_eq!(sets[2].files, [PathBuf::from("consolidated.safetensors")]);
    }

    #[test]
    fn shard_family_names() {
        assert_eq!(
            shard_family("model-00001-of-00002.safetensors"),
            Some(("model", 2))
        );
        assert_eq!(
            shard_family("a-b-000001-of-000191.safetensors"),
            Some(("a-b", 191))
        );
        assert_eq!(shard_family("model-1-of-2.safetensors"), None);
        assert_eq!(shard_family("model.safetensors"), None);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("r.safetensors");
            std::fs::write(&path, &bytes).unwrap();
            let _ = read_file(&path, &mut Vec::new());
        }

        #[test]
        fn mutated_headers_never_panic(
            pos in 0usize..200,
            byte in any::<u8>(),
            extra in 0u64..64,
        ) {
            let header = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"I64","shape":[],"data_offsets":[24,32]}}"#;
            let mut bytes = header.as_bytes().to_vec();
            if let Some(b) = bytes.get_mut(pos) {
                *b = byte;
            }
            let dir = tempfile::tempdir().unwrap();
            let mut file = (bytes.len() as u64).to_le_bytes().to_vec();
            file.extend_from_slice(&bytes);
            file.resize(file.len() + 32 + extra as usize, 0);
            let path = dir.path().join("m.safetensors");
            std::fs::write(&path, &file).unwrap();
            match read_file(&path, &mut Vec::new()) {
                Ok(h) => prop_assert_eq!(h.file_len, 8 + h.header_len + h.data_len),
                Err(e) => prop_assert!(!e.to_string().contains('\n')),
            }
        }
    }
}
