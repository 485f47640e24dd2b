//! Checkpoint files, read from their headers only: which format, which weight files, how many
//! parameters by dtype, how many bytes.
//!
//! Why header-only: cardfill runs at the end of training jobs on checkpoints of hundreds of
//! gigabytes; reading the 8-byte length and JSON header of each shard costs milliseconds and a
//! few megabytes whatever the model's size.
//!
//! Each format module turns files into [`WeightSet`]s (one copy of the weights in one format);
//! [`collect`] finds them, picks the primary copy, and reports the others as alternatives.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod safetensors;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cardfill_facts::Facts;

/// One tensor as a header describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tensor {
    /// The tensor's name (`model.layers.0.self_attn.q_proj.weight`).
    pub name: String,
    /// The dtype name as the format spells it (`BF16`, `Q4_K`).
    pub dtype: String,
    /// The logical shape (PyTorch order).
    pub shape: Vec<u64>,
}

impl Tensor {
    /// Number of elements: the product of the shape (a scalar counts 1).
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// One copy of a model's weights in one format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeightSet {
    /// `safetensors`, `pytorch`, `gguf`, ...
    pub format: String,
    /// The weight files, relative to the inspected directory, in order.
    pub files: Vec<PathBuf>,
    /// Total bytes of the files.
    pub bytes: u64,
    /// Every tensor, in file order.
    pub tensors: Vec<Tensor>,
    /// Element count per dtype name (sum of [`Tensor::numel`]).
    pub by_dtype: BTreeMap<String, u64>,
    /// What was read, for provenance (`model.safetensors.index.json + 2 shard headers`).
    pub method: String,
}

impl WeightSet {
    /// Total stored elements over all dtypes.
    pub fn total(&self) -> u64 {
        self.by_dtype.values().sum()
    }
}

/// Why a checkpoint could not be read. Every variant names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file or directory could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not what its name says, or is corrupt.
    #[error("`{}`: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the byte offset where it makes sense.
        message: String,
    },
}

/// Collects `checkpoint.*` and `parameters.*` facts from the weight files in `dir`.
pub fn collect(dir: &Path) -> Result<Facts, CheckpointError> {
    let mut facts = Facts::new();
    if let Some(set) = safetensors::find(dir, &mut facts)? {
        let _ = set;
    }
    Ok(facts)
}
