//! GGUF files without llama.cpp: a real v1–v3 header (metadata key/values, tensor infos,
//! alignment padding) and the tensor data left as a sparse hole.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, ensure};

/// A metadata value to write.
#[derive(Clone, Debug)]
pub enum GgufValue {
    /// Type 4 (u32).
    U32(u32),
    /// Type 10 (u64).
    U64(u64),
    /// Type 6 (f32).
    F32(f32),
    /// Type 7 (bool).
    Bool(bool),
    /// Type 8 (string).
    Str(String),
    /// Type 9 array of strings (a tokenizer vocabulary).
    StrArray(Vec<String>),
}

/// One tensor to write: name, PyTorch-order shape, ggml type id.
#[derive(Clone, Debug)]
pub struct GgufTensor {
    /// Name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Shape in PyTorch order (written reversed, `ne[0]` innermost).
    pub shape: Vec<u64>,
    /// ggml type id (0 F32, 1 F16, 12 Q4_K, ...).
    pub ggml_type: u32,
}

impl GgufTensor {
    /// A tensor from its parts.
    pub fn new(name: impl Into<String>, shape: &[u64], ggml_type: u32) -> Self {
        Self {
            name: name.into(),
            shape: shape.to_vec(),
            ggml_type,
        }
    }
}

/// `(block elements, bytes per block)` of the ggml types the writer knows.
fn block(ty: u32) -> Option<(u64, u64)> {
    Some(match ty {
        0 => (1, 4),
        1 | 30 => (1, 2),
        2 => (32, 18),
        8 => (32, 34),
        12 => (256, 144),
        14 => (256, 210),
        _ => return None,
    })
}

struct W {
    out: Vec<u8>,
    wide: bool,
}

impl W {
    fn count(&mut self, n: u64) {
        if self.wide {
            self.out.extend(n.to_le_bytes());
        } else {
            self.out.extend((n as u32).to_le_bytes());
        }
    }
    fn string(&mut self, s: &str) {
        self.count(s.len() as u64);
        self.out.extend(s.as_bytes());
    }
}

/// Writes a GGUF file of `version` (1–3) at `path`; returns its length.
pub fn write_gguf(
    path: &Path,
    version: u32,
    metadata: &[(&str, GgufValue)],
    tensors: &[GgufTensor],
) -> anyhow::Result<u64> {
    ensure!((1..=3).contains(&version), "GGUF version {version}");
    let mut w = W {
        out: b"GGUF".to_vec(),
        wide: version >= 2,
    };
    w.out.extend(version.to_le_bytes());
    w.count(tensors.len() as u64);
    w.count(metadata.len() as u64);
    for (key, v) in metadata {
        w.string(key);
        match v {
            GgufValue::U32(x) => {
                w.out.extend(4u32.to_le_bytes());
                w.out.extend(x.to_le_bytes());
            }
            GgufValue::U64(x) => {
                w.out.extend(10u32.to_le_bytes());
                w.out.extend(x.to_le_bytes());
            }
            GgufValue::F32(x) => {
                w.out.extend(6u32.to_le_bytes());
                w.out.extend(x.to_le_bytes());
            }
            GgufValue::Bool(x) => {
                w.out.extend(7u32.to_le_bytes());
                w.out.push(u8::from(*x));
            }
            GgufValue::Str(s) => {
                w.out.extend(8u32.to_le_bytes());
                w.string(s);
            }
            GgufValue::StrArray(items) => {
                w.out.extend(9u32.to_le_bytes());
                w.out.extend(8u32.to_le_bytes());
                w.count(items.len() as u64);
                for s in items {
                    w.string(s);
                }
            }
        }
    }
    let align = 32u64;
    let mut offset = 0u64;
    for t in tensors {
        w.string(&t.name);
        w.out.extend((t.shape.len() as u32).to_le_bytes());
        for d in t.shape.iter().rev() {
            w.count(*d);
        }
        w.out.extend(t.ggml_type.to_le_bytes());
        w.out.extend(offset.to_le_bytes());
        let (elems, bytes) =
            block(t.ggml_type).with_context(|| format!("ggml type {}", t.ggml_type))?;
        let numel: u64 = t.shape.iter().product();
        let size = numel / elems * bytes;
        offset += size.div_ceil(align) * align;
    }
    let pad = (align - w.out.len() as u64 % align) % align;
    w.out.extend(std::iter::repeat_n(0u8, pad as usize));
    let mut f = std::fs::File::create(path)?;
    f.write_all(&w.out)?;
    let len = w.out.len() as u64 + offset;
    f.set_len(len)?;
    Ok(len)
}
