//! Real `torch.save` checkpoints without torch: the zip layout (STORED members, 64-byte
//! aligned data, zip64 when large, `<stem>/data.pkl` a protocol-2 pickle of an `OrderedDict`
//! of `torch._utils._rebuild_tensor_v2` tensors), the legacy pre-1.6 layout, and sharded
//! `pytorch_model-0000i-of-0000n.bin` checkpoints with `pytorch_model.bin.index.json`.
//!
//! Storage data is left as sparse holes (zeros), so a 7B checkpoint costs kilobytes of disk;
//! their CRC-32 (of zeros) is computed without reading them, so Python's `zipfile` and torch
//! accept the archives.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, ensure};

use crate::TensorSpec;

/// Torch storage class of a safetensors dtype name.
pub fn storage_class(dtype: &str) -> Option<&'static str> {
    Some(match dtype {
        "F32" => "FloatStorage",
        "F64" => "DoubleStorage",
        "F16" => "HalfStorage",
        "BF16" => "BFloat16Storage",
        "I64" => "LongStorage",
        "I32" => "IntStorage",
        "I16" => "ShortStorage",
        "I8" => "CharStorage",
        "U8" => "ByteStorage",
        "BOOL" => "BoolStorage",
        _ => return None,
    })
}

/// A protocol-2 pickle writer with just what state dicts need.
#[derive(Default)]
pub struct PickleWriter {
    /// The bytes so far.
    pub out: Vec<u8>,
}

impl PickleWriter {
    /// Starts a protocol-2 pickle.
    pub fn new() -> Self {
        Self { out: vec![0x80, 2] }
    }
    /// `GLOBAL module name`.
    pub fn global(&mut self, module: &str, name: &str) {
        self.out.push(b'c');
        self.out.extend(format!("{module}\n{name}\n").as_bytes());
    }
    /// A text string.
    pub fn str(&mut self, s: &str) {
        self.out.push(b'X');
        self.out.extend((s.len() as u32).to_le_bytes());
        self.out.extend(s.as_bytes());
    }
    /// A non-negative integer, in the smallest opcode.
    pub fn int(&mut self, v: u64) {
        if v < 256 {
            self.out.extend([b'K', v as u8]);
        } else if v < 65_536 {
            self.out.push(b'M');
            self.out.extend((v as u16).to_le_bytes());
        } else if v < (1 << 31) {
            self.out.push(b'J');
            self.out.extend((v as u32).to_le_bytes());
        } else {
            self.out.extend([0x8a, 8]);
            self.out.extend(v.to_le_bytes());
        }
    }
    /// A raw opcode byte.
    pub fn op(&mut self, op: u8) {
        self.out.push(op);
    }
    /// A tuple of integers.
    pub fn int_tuple(&mut self, v: &[u64]) {
        self.op(b'(');
        for &x in v {
            self.int(x);
        }
        self.op(b't');
    }
    /// `collections.OrderedDict()`.
    pub fn ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.op(b')');
        self.op(b'R');
    }
    /// `cls.__new__(cls)` for `module.name` (`NEWOBJ` with no arguments), the way a
    /// dataclass instance starts; its state follows as a dict and `BUILD`.
    pub fn new_object(&mut self, module: &str, name: &str) {
        self.global(module, name);
        self.op(b')');
        self.op(0x81);
    }
    /// A tensor over storage `key` holding `numel` elements of class `class`, the way
    /// `torch.save` pickles it.
    pub fn tensor(&mut self, class: &str, key: &str, storage_numel: u64, shape: &[u64]) {
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.op(b'(');
        self.op(b'(');
        self.str("storage");
        self.global("torch", class);
        self.str(key);
        self.str("cpu");
        self.int(storage_numel);
        self.op(b't');
        self.op(b'Q');
        self.int(0);
        self.int_tuple(shape);
        let mut stride = vec![1u64; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * shape[i + 1].max(1);
        }
        self.int_tuple(&stride);
        self.op(0x89);
        self.ordered_dict();
        self.op(b't');
        self.op(b'R');
    }
    /// Ends the pickle.
    pub fn stop(mut self) -> Vec<u8> {
        self.out.push(b'.');
        self.out
    }
}

/// How to lay out a state dict.
#[derive(Clone, Debug, Default)]
pub struct StateDictLayout {
    /// Nest the weights under this key of a plain dict (Lightning `state_dict`, DeepSpeed
    /// `module`), beside an `epoch` and an `optimizer_states` list.
    pub nest_under: Option<String>,
    /// `(alias, target)`: the alias shares the target's storage (tied weights).
    pub tied: Vec<(String, String)>,
}

/// Storage keys and their bytes, in the order a pickle refers to them.
pub type Storages = Vec<(String, u64)>;

/// The pickle of a state dict of `tensors` and the storages it refers to: `(key, bytes)`.
pub fn state_dict_pickle(
    tensors: &[TensorSpec],
    layout: &StateDictLayout,
) -> anyhow::Result<(Vec<u8>, Storages)> {
    let mut w = PickleWriter::new();
    if let Some(key) = &layout.nest_under {
        w.op(b'}');
        w.op(b'(');
        w.str("epoch");
        w.int(3);
        w.str("optimizer_states");
        w.op(b']');
        w.str(key);
    }
    w.ordered_dict();
    w.op(b'(');
    let mut storages = Vec::new();
    let mut keys: BTreeMap<&str, (String, &TensorSpec)> = BTreeMap::new();
    for t in tensors {
        let class = storage_class(&t.dtype)
            .with_context(|| format!("no torch storage for dtype `{}`", t.dtype))?;
        let key = storages.len().to_string();
        storages.push((key.clone(), t.nbytes()?));
        keys.insert(&t.name, (key.clone(), t));
        w.str(&t.name);
        w.tensor(class, &key, t.numel(), &t.shape);
    }
    for (alias, target) in &layout.tied {
        let (key, t) = keys
            .get(target.as_str())
            .with_context(|| format!("tied target `{target}` is not a tensor"))?;
        w.str(alias);
        w.tensor(
            storage_class(&t.dtype).unwrap_or("FloatStorage"),
            key,
            t.numel(),
            &t.shape,
        );
    }
    w.op(b'u');
    if layout.nest_under.is_some() {
        w.op(b'u');
    }
    Ok((w.stop(), storages))
}

/// Bytes before a member's data: local header plus name plus extra field.
struct Member {
    name: String,
    crc: u32,
    size: u64,
    header_offset: u64,
}

/// Applies the 32×32 GF(2) matrix `mat` (one column per bit) to `vec`.
fn gf2_times(mat: &[u32; 32], mut vec: u32) -> u32 {
    let mut sum = 0;
    let mut i = 0;
    while vec != 0 {
        if vec & 1 != 0 {
            sum ^= mat[i];
        }
        vec >>= 1;
        i += 1;
    }
    sum
}

/// CRC-32 of `n` zero bytes in O(log n): the zero-byte operator raised to the n-th power
/// (zlib's `crc32_combine` method), so sparse members of any size get a true CRC.
fn crc32_zeros(mut n: u64) -> u32 {
    // Operator for one zero bit on the reflected register.
    let mut op = [0u32; 32];
    op[0] = 0xedb8_8320;
    for (i, col) in op.iter_mut().enumerate().skip(1) {
        *col = 1 << (i - 1);
    }
    let square = |m: &[u32; 32]| {
        let mut out = [0u32; 32];
        for (i, col) in out.iter_mut().enumerate() {
            *col = gf2_times(m, m[i]);
        }
        out
    };
    // One zero byte = eight zero bits.
    let mut byte_op = op;
    for _ in 0..3 {
        byte_op = square(&byte_op);
    }
    let mut state = 0xffff_ffffu32;
    while n > 0 {
        if n & 1 != 0 {
            state = gf2_times(&byte_op, state);
        }
        byte_op = square(&byte_op);
        n >>= 1;
    }
    !state
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A STORED zip writer with 64-byte aligned member data (as torch writes) and zip64 when large.
/// Members given without bytes become sparse holes of the stated size.
pub struct ZipWriter {
    file: std::fs::File,
    pos: u64,
    members: Vec<Member>,
}

impl ZipWriter {
    /// Creates `path`.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create `{}`", path.display()))?;
        Ok(Self {
            file,
            pos: 0,
            members: Vec::new(),
        })
    }

    /// Adds member `name` holding `data`, or a hole of `size` zero bytes when `data` is `None`.
    pub fn add(&mut self, name: &str, data: Option<&[u8]>, size: u64) -> anyhow::Result<()> {
        let size = data.map_or(size, |d| d.len() as u64);
        let zip64 = size >= 0xffff_ffff;
        let fixed = 30 + name.len() as u64 + if zip64 { 20 } else { 0 };
        // Padding extra field ("FB", as torch's writer) so that the data is 64-byte aligned.
        let pad = (64 - (self.pos + fixed + 4) % 64) % 64;
        let crc = data.map_or_else(|| crc32_zeros(size), crc32);
        let mut h = Vec::new();
        h.extend(0x0403_4b50u32.to_le_bytes());
        h.extend(if zip64 { 45u16 } else { 20u16 }.to_le_bytes());
        h.extend(0u16.to_le_bytes()); // flags
        h.extend(0u16.to_le_bytes()); // stored
        h.extend([0u8; 4]); // time, date
        h.extend(crc.to_le_bytes());
        let small = if zip64 { 0xffff_ffff } else { size as u32 };
        h.extend(small.to_le_bytes());
        h.extend(small.to_le_bytes());
        h.extend((name.len() as u16).to_le_bytes());
        let extra_len = 4 + pad + if zip64 { 20 } else { 0 };
        h.extend((extra_len as u16).to_le_bytes());
        h.extend(name.as_bytes());
        if zip64 {
            h.extend(1u16.to_le_bytes());
            h.extend(16u16.to_le_bytes());
            h.extend(size.to_le_bytes());
            h.extend(size.to_le_bytes());
        }
        h.extend(b"FB");
        h.extend((pad as u16).to_le_bytes());
        h.extend(std::iter::repeat_n(b'Z', pad as usize));
        self.file.write_all(&h)?;
        let header_offset = self.pos;
        self.pos += h.len() as u64;
        match data {
            Some(d) => self.file.write_all(d)?,
            None => {
                self.file.seek(SeekFrom::Current(size as i64))?;
            }
        }
        self.pos += size;
        self.members.push(Member {
            name: name.to_owned(),
            crc,
            size,
            header_offset,
        });
        Ok(())
    }

    /// Writes the central directory and end records; returns the file's length.
    pub fn finish(mut self) -> anyhow::Result<u64> {
        self.file.seek(SeekFrom::Start(self.pos))?;
        let dir_offset = self.pos;
        let mut d = Vec::new();
        for m in &self.members {
            let big = m.size >= 0xffff_ffff || m.header_offset >= 0xffff_ffff;
            d.extend(0x0201_4b50u32.to_le_bytes());
            d.extend(if big { 45u16 } else { 20u16 }.to_le_bytes());
            d.extend(if big { 45u16 } else { 20u16 }.to_le_bytes());
            d.extend([0u8; 2]); // flags
            d.extend([0u8; 2]); // stored
            d.extend([0u8; 4]); // time, date
            d.extend(m.crc.to_le_bytes());
            let size = if big { 0xffff_ffff } else { m.size as u32 };
            d.extend(size.to_le_bytes());
            d.extend(size.to_le_bytes());
            d.extend((m.name.len() as u16).to_le_bytes());
            d.extend((if big { 28u16 } else { 0 }).to_le_bytes());
            d.extend([0u8; 6]); // comment len, disk, internal attrs
            d.extend([0u8; 4]); // external attrs
            let off = if big {
                0xffff_ffff
            } else {
                m.header_offset as u32
            };
            d.extend(off.to_le_bytes());
            d.extend(m.name.as_bytes());
            if big {
                d.extend(1u16.to_le_bytes());
                d.extend(24u16.to_le_bytes());
                d.extend(m.size.to_le_bytes());
                d.extend(m.size.to_le_bytes());
                d.extend(m.header_offset.to_le_bytes());
            }
        }
        let dir_len = d.len() as u64;
        let n = self.members.len() as u64;
        let zip64 = dir_offset >= 0xffff_ffff || n >= 0xffff;
        if zip64 {
            let z_off = dir_offset + dir_len;
            d.extend(0x0606_4b50u32.to_le_bytes());
            d.extend(44u64.to_le_bytes());
            d.extend(45u16.to_le_bytes());
            d.extend(45u16.to_le_bytes());
            d.extend([0u8; 8]);
            d.extend(n.to_le_bytes());
            d.extend(n.to_le_bytes());
            d.extend(dir_len.to_le_bytes());
            d.extend(dir_offset.to_le_bytes());
            d.extend(0x0706_4b50u32.to_le_bytes());
            d.extend(0u32.to_le_bytes());
            d.extend(z_off.to_le_bytes());
            d.extend(1u32.to_le_bytes());
        }
        d.extend(0x0605_4b50u32.to_le_bytes());
        d.extend([0u8; 4]);
        let n16 = if zip64 { 0xffff } else { n as u16 };
        d.extend(n16.to_le_bytes());
        d.extend(n16.to_le_bytes());
        let dl = if zip64 { 0xffff_ffff } else { dir_len as u32 };
        d.extend(dl.to_le_bytes());
        let doff = if zip64 {
            0xffff_ffff
        } else {
            dir_offset as u32
        };
        d.extend(doff.to_le_bytes());
        d.extend(0u16.to_le_bytes());
        self.file.write_all(&d)?;
        let len = self.pos + d.len() as u64;
        self.file.set_len(len)?;
        Ok(len)
    }
}

/// Writes a `torch.save` zip archive at `path` with the pickle `pkl` and sparse storages
/// `(key, bytes)`; the archive folder is the file stem, as torch ≥ 2 names it.
pub fn write_torch_zip(path: &Path, pkl: &[u8], storages: &[(String, u64)]) -> anyhow::Result<u64> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".into());
    let mut z = ZipWriter::create(path)?;
    z.add(&format!("{stem}/data.pkl"), Some(pkl), 0)?;
    z.add(&format!("{stem}/byteorder"), Some(b"little"), 0)?;
    for (key, bytes) in storages {
        z.add(&format!("{stem}/data/{key}"), None, *bytes)?;
    }
    z.add(&format!("{stem}/version"), Some(b"3\n"), 0)?;
    z.add(
        &format!("{stem}/.data/serialization_id"),
        Some(b"1234567890123456789012345678901234567890"),
        0,
    )?;
    z.finish()
}

/// Writes `tensors` as one `torch.save` state dict (zip layout) at `path`; returns its length.
pub fn write_torch(path: &Path, tensors: &[TensorSpec]) -> anyhow::Result<u64> {
    write_torch_with(path, tensors, &StateDictLayout::default())
}

/// Writes `tensors` at `path` with `layout` (nesting, tied weights); returns its length.
pub fn write_torch_with(
    path: &Path,
    tensors: &[TensorSpec],
    layout: &StateDictLayout,
) -> anyhow::Result<u64> {
    let (pkl, storages) = state_dict_pickle(tensors, layout)?;
    write_torch_zip(path, &pkl, &storages)
}

/// Writes `tensors` in the legacy (torch < 1.6) layout: magic, protocol, sys_info and the
/// state dict as consecutive pickles, then the storage keys and each storage's bytes.
pub fn write_legacy_torch(path: &Path, tensors: &[TensorSpec]) -> anyhow::Result<u64> {
    let mut out = vec![
        0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
    ];
    out.extend([0x80, 0x02, b'M', 0xe9, 0x03, b'.']); // protocol 1001
    let mut w = PickleWriter::new();
    w.op(b'}');
    w.op(b'(');
    w.str("protocol_version");
    w.int(1001);
    w.str("little_endian");
    w.op(0x88);
    w.op(b'u');
    out.extend(w.stop());
    let (pkl, storages) = state_dict_pickle(tensors, &StateDictLayout::default())?;
    out.extend(pkl);
    let mut w = PickleWriter::new();
    w.op(b'(');
    for (key, _) in &storages {
        w.str(key);
    }
    w.op(b'l');
    out.extend(w.stop());
    let mut f = std::fs::File::create(path)?;
    f.write_all(&out)?;
    let mut len = out.len() as u64;
    for ((_, bytes), t) in storages.iter().zip(tensors) {
        f.seek(SeekFrom::Start(len))?;
        f.write_all(&t.numel().to_le_bytes())?;
        len += 8 + bytes;
    }
    f.set_len(len)?;
    Ok(len)
}

/// `pytorch_model-00001-of-00002.bin` for the 0-based shard `i` of `n`.
pub fn torch_shard_name(i: usize, n: usize) -> String {
    format!("pytorch_model-{:05}-of-{n:05}.bin", i + 1)
}

/// Writes `tensors` as a sharded `.bin` checkpoint in `dir`, split in order into `shards`
/// files of about equal bytes, with `pytorch_model.bin.index.json`. Storage data is sparse,
/// so a 7B checkpoint is cheap to create.
pub fn write_sharded_torch(
    dir: &Path,
    tensors: &[TensorSpec],
    shards: usize,
) -> anyhow::Result<()> {
    let map = crate::split_evenly(tensors, shards, torch_shard_name)?;
    write_sharded_torch_map(dir, tensors, &map, "pytorch_model.bin.index.json")
}

/// Writes `tensors` into the `.bin` shards a real index's `weight_map` names, and the index
/// (`index_name`) with `metadata.total_size` = storage bytes. Returns nothing; every tensor
/// must be in the map.
pub fn write_sharded_torch_map(
    dir: &Path,
    tensors: &[TensorSpec],
    weight_map: &BTreeMap<String, String>,
    index_name: &str,
) -> anyhow::Result<()> {
    let mut files: BTreeMap<&str, Vec<TensorSpec>> = BTreeMap::new();
    for t in tensors {
        let file = weight_map
            .get(&t.name)
            .with_context(|| format!("tensor `{}` is not in the weight_map", t.name))?;
        files.entry(file).or_default().push(t.clone());
    }
    let mut total_size = 0u64;
    for (file, specs) in &files {
        write_torch(&dir.join(file), specs)?;
        for t in specs {
            total_size += t.nbytes()?;
        }
    }
    let index = serde_json::json!({
        "metadata": { "total_size": total_size },
        "weight_map": weight_map,
    });
    let mut text = serde_json::to_string_pretty(&index)?;
    text.push('\n');
    fs_err::write(dir.join(index_name), text)?;
    Ok(())
}

/// Generates the `.bin` shards of every `*.bin.index.json` of shared case `name` in `dest`
/// (tensor shapes from its `config.json` via [`crate::decoder_tensors`], placement from the
/// index's `weight_map`); fails unless the index's `total_size` is reproduced exactly.
/// Call after [`crate::materialize_case`], which copies the case's files.
pub fn materialize_torch_shards(name: &str, dest: &Path) -> anyhow::Result<()> {
    let src = crate::case_dir(name);
    for entry in fs_err::read_dir(&src)? {
        let file_name = entry?.file_name().to_string_lossy().into_owned();
        if !file_name.ends_with(".bin.index.json") {
            continue;
        }
        let index = crate::read_json(&src.join(&file_name))?;
        let config = crate::read_json(&src.join("config.json"))?;
        let tensors = crate::decoder_tensors(&config)?;
        let weight_map: BTreeMap<String, String> =
            serde_json::from_value(index["weight_map"].clone()).context("no weight_map")?;
        ensure!(
            weight_map.len() == tensors.len(),
            "the index of `{name}` maps {} tensors, the config gives {}",
            weight_map.len(),
            tensors.len()
        );
        write_sharded_torch_map(dest, &tensors, &weight_map, &file_name)?;
        let written = crate::read_json(&dest.join(&file_name))?;
        let stated = index["metadata"]["total_size"].as_u64();
        let total = written["metadata"]["total_size"].as_u64();
        ensure!(
            stated.is_none_or(|s| Some(s) == total),
            "generated data of `{name}` is {total:?} bytes, the index says {stated:?}"
        );
        // Keep the real index byte for byte.
        fs_err::copy(src.join(&file_name), dest.join(&file_name))?;
    }
    Ok(())
}

/// Writes a torch.distributed.checkpoint folder in `dir`: `.metadata` (a pickled `Metadata`
/// whose `state_dict_metadata` gives each tensor's global size and dtype, plus optimizer
/// entries under `optim.`) and one sparse `__<rank>_0.distcp` per rank.
pub fn write_dcp(dir: &Path, tensors: &[TensorSpec], ranks: usize) -> anyhow::Result<()> {
    const M: &str = "torch.distributed.checkpoint.metadata";
    let mut w = PickleWriter::new();
    w.new_object(M, "Metadata");
    w.op(b'}');
    w.op(b'(');
    w.str("state_dict_metadata");
    w.op(b'}');
    w.op(b'(');
    let entries = tensors
        .iter()
        .map(|t| (format!("model.{}", t.name), t))
        .chain(
            tensors
                .iter()
                .take(1)
                .map(|t| (format!("optim.state.model.{}.exp_avg", t.name), t)),
        );
    for (fqn, t) in entries {
        let dtype = match t.dtype.as_str() {
            "BF16" => "bfloat16",
            "F16" => "float16",
            _ => "float32",
        };
        w.str(&fqn);
        w.new_object(M, "TensorStorageMetadata");
        w.op(b'}');
        w.op(b'(');
        w.str("properties");
        w.new_object(M, "TensorProperties");
        w.op(b'(');
        w.global("torch", dtype);
        w.global("torch", "strided");
        w.op(0x89);
        w.int(0);
        w.op(0x89);
        w.op(b't');
        w.op(b'b');
        w.str("size");
        w.global("torch", "Size");
        w.int_tuple(&t.shape);
        w.op(0x85);
        w.op(b'R');
        w.str("chunks");
        w.op(b']');
        w.op(b'u');
        w.op(b'b');
    }
    w.op(b'u');
    w.str("planner_data");
    w.op(b'}');
    w.str("storage_data");
    w.op(b'}');
    w.op(b'u');
    w.op(b'b');
    fs_err::write(dir.join(".metadata"), w.stop())?;
    let mut total = 0u64;
    for t in tensors {
        total += t.nbytes()?;
    }
    for r in 0..ranks {
        let f = fs_err::File::create(dir.join(format!("__{r}_0.distcp")))?;
        f.set_len(total / ranks as u64)?;
    }
    Ok(())
}

/// Writes a DeepSpeed checkpoint in `dir`: `latest` naming `tag`, and in `tag/` the model
/// states (`module` state dict and `param_shapes`; with `zero3`, one file per rank whose
/// `module` holds empty placeholders) and one `*_optim_states.pt` per data-parallel rank.
pub fn write_deepspeed(
    dir: &Path,
    tag: &str,
    tensors: &[TensorSpec],
    ranks: usize,
    zero3: bool,
) -> anyhow::Result<()> {
    let tag_dir = dir.join(tag);
    fs_err::create_dir_all(&tag_dir)?;
    fs_err::write(dir.join("latest"), tag)?;
    let model_files: Vec<String> = if zero3 {
        (0..ranks)
            .map(|r| format!("zero_pp_rank_{r}_mp_rank_00_model_states.pt"))
            .collect()
    } else {
        vec!["mp_rank_00_model_states.pt".into()]
    };
    for file in &model_files {
        let mut w = PickleWriter::new();
        w.op(b'}');
        w.op(b'(');
        w.str("module");
        w.ordered_dict();
        w.op(b'(');
        let mut storages = Vec::new();
        for (i, t) in tensors.iter().enumerate() {
            let class = storage_class(&t.dtype).context("dtype")?;
            let key = i.to_string();
            w.str(&t.name);
            if zero3 {
                w.tensor(class, &key, 0, &[0]);
                storages.push((key, 0));
            } else {
                w.tensor(class, &key, t.numel(), &t.shape);
                storages.push((key, t.nbytes()?));
            }
        }
        w.op(b'u');
        w.str("param_shapes");
        w.op(b']');
        w.ordered_dict();
        w.op(b'(');
        for t in tensors {
            w.str(&t.name);
            w.global("torch", "Size");
            w.int_tuple(&t.shape);
            w.op(0x85);
            w.op(b'R');
        }
        w.op(b'u');
        w.op(b'a');
        w.str("ds_version");
        w.str("0.14.0");
        w.str("dp_world_size");
        w.int(ranks as u64);
        w.op(b'u');
        write_torch_zip(&tag_dir.join(file), &w.stop(), &storages)?;
    }
    for r in 0..ranks {
        let mut w = PickleWriter::new();
        w.op(b'}');
        write_torch_zip(
            &tag_dir.join(format!("bf16_zero_pp_rank_{r}_mp_rank_00_optim_states.pt")),
            &w.stop(),
            &[],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_zeros_matches_the_bytewise_crc() {
        for n in [0usize, 1, 7, 64, 1000, 4096] {
            assert_eq!(crc32_zeros(n as u64), crc32(&vec![0u8; n]), "{n}");
        }
    }
}
