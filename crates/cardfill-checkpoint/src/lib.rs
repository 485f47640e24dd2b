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

pub mod safetensors;

mod diffusers;
mod distributed;
#[cfg(test)]
mod format_tests;
pub mod gguf;
mod lfs;
mod moe;
mod peft;
pub mod pickle;
pub mod pytorch;
mod quantized;
mod scan;
mod sentence_transformers;
mod trainer_dirs;
mod zipdir;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cardfill_facts::{Facts, Source, Value, paths};

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
    /// Number of elements: the product of the shape (a scalar counts 1). Saturates instead of
    /// overflowing on hostile shapes (readers reject those before counting).
    pub fn numel(&self) -> u64 {
        self.shape.iter().fold(1u64, |n, &d| n.saturating_mul(d))
    }
}

/// One copy of a model's weights in one format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeightSet {
    /// `safetensors`, `safetensors-sharded`, `pytorch`, `gguf`, ...
    pub format: String,
    /// The weight files, relative to the inspected directory, in order.
    pub files: Vec<PathBuf>,
    /// The index file that lists the shards (`model.safetensors.index.json`), if any.
    pub index: Option<PathBuf>,
    /// Total bytes of the files.
    pub bytes: u64,
    /// Every tensor, in file order.
    pub tensors: Vec<Tensor>,
    /// Element count per dtype name (sum of [`Tensor::numel`]).
    pub by_dtype: BTreeMap<String, u64>,
    /// What was read, for provenance (`weight_map + 2 shard headers`).
    pub method: String,
}

impl WeightSet {
    /// Appends `t` and counts its elements under its dtype.
    pub(crate) fn push(&mut self, t: Tensor) {
        self.count(&t);
        self.tensors.push(t);
    }

    /// Adds a tensor to the sums by dtype without keeping it (very large headers).
    pub(crate) fn count(&mut self, t: &Tensor) {
        match self.by_dtype.get_mut(&t.dtype) {
            Some(n) => *n += t.numel(),
            None => {
                self.by_dtype.insert(t.dtype.clone(), t.numel());
            }
        }
    }

    /// Total stored elements over all dtypes.
    pub fn total(&self) -> u64 {
        self.by_dtype.values().sum()
    }

    /// The file a reader should look at for provenance: the index, else the single file,
    /// else the first file and how many there are.
    pub fn origin(&self) -> String {
        if let Some(index) = &self.index {
            return index.display().to_string();
        }
        match self.files.as_slice() {
            [one] => one.display().to_string(),
            [first, rest @ ..] => format!("{} (+{} files)", first.display(), rest.len()),
            [] => String::new(),
        }
    }

    /// The files as JSON strings (forward slashes), for `checkpoint.files`.
    pub fn file_names(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|f| {
                // `to_str` first: checking UTF-8 is cheaper than the lossy conversion.
                let name = f
                    .to_str()
                    .map_or_else(|| f.to_string_lossy(), Cow::Borrowed);
                if name.contains('\\') {
                    name.replace('\\', "/")
                } else {
                    name.into_owned()
                }
            })
            .collect()
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

impl CheckpointError {
    /// An [`CheckpointError::Io`] for `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// An [`CheckpointError::Invalid`] for `path`.
    pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// Collects `checkpoint.*` and `parameters.*` facts from the weight files in `dir`.
///
/// Every format finder returns the copies of the weights it recognises; the preferred one
/// (safetensors first) gives the facts and the others go to `checkpoint.alternatives`.
pub fn collect(dir: &Path) -> Result<Facts, CheckpointError> {
    collect_listed(dir, &Listing::of(dir)?)
}

/// [`collect`] on a directory already listed (the listing can be shared with other readers).
pub fn collect_listed(dir: &Path, listing: &Listing) -> Result<Facts, CheckpointError> {
    let mut facts = Facts::new();
    // One listing of `dir` for every finder, and `config.json` read once: it says whether
    // per-tensor data is needed (quantized and mixture-of-experts counts read tensor names).
    let config = listing
        .has_file("config.json")
        .then(|| {
            cardfill_facts::read::json(&dir.join("config.json"), cardfill_facts::read::CONFIG_CAP)
                .ok()
        })
        .flatten();
    let keep = safetensors::Keep {
        tensors: config.as_ref().is_some_and(|c| {
            quantized::quantization_config(c).is_some() || moe::declares_experts(c)
        }),
    };
    let names = &listing.files;
    // `model_index.json` that is no regular file is reported by the diffusers finder.
    let mut sets = if listing.has_file("model_index.json")
        || listing.others.iter().any(|n| n == "model_index.json")
    {
        diffusers::find(dir, &mut facts)?
    } else {
        diffusers::lone_model(config.as_deref(), &mut facts);
        Vec::new()
    };
    sets.extend(safetensors::find_listed(dir, listing, keep, &mut facts)?);
    sets.extend(peft::find(dir, names)?);
    warn_irregular(dir, &listing.others, &mut facts);
    sets.extend(pytorch::find(dir, names, &mut facts)?);
    sets.extend(gguf::find(dir, names, &mut facts)?);
    sets.extend(distributed::find(dir, names, &mut facts)?);
    if listing.has_file("modules.json") {
        sentence_transformers::record(dir, &mut facts);
    }

    // Stable sort: among equally preferred sets the finders' order decides.
    sets.sort_by_key(preference);
    if let Some((primary, others)) = sets.split_first() {
        record(&mut facts, primary);
        if primary.format == "gguf" {
            gguf::record_model(&mut facts);
        }
        peft::record(listing.has_file("adapter_config.json"), primary, &mut facts);
        if let Some(config) = &config {
            quantized::record(config, primary, &mut facts);
            moe::record(config, primary, &mut facts);
        }
        record_alternatives(&mut facts, primary, others);
    } else if let Some(sub) = trainer_dirs::latest(&listing.dirs) {
        let inner = collect(&dir.join(&sub))?;
        facts.absorb(trainer_dirs::rebase(&sub, inner));
    }
    // Files already read as weights are not git-lfs pointers: no need to look again.
    // (Names as sorted strings: comparing `Path`s parses their components.)
    let mut read: Vec<&str> = sets
        .iter()
        .flat_map(|s| s.files.iter().filter_map(|f| f.to_str()))
        .collect();
    read.sort_unstable();
    lfs::record(dir, names, &read, &mut facts);
    warn_uncounted(names, &mut facts);
    Ok(facts)
}

/// A directory with weight-like files but no parameter count is a warning, never silence.
fn warn_uncounted(names: &[String], facts: &mut Facts) {
    if facts.value(paths::PARAMETERS_TOTAL).is_some()
        || facts.value(paths::CHECKPOINT_WEIGHTS_MISSING).is_some()
    {
        return;
    }
    let weightlike: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| {
            n.ends_with(".safetensors")
                || n.ends_with(".gguf")
                || (pytorch::is_weight_name(n) && !pytorch::is_auxiliary(n))
        })
        .collect();
    if let Some(first) = weightlike.first() {
        facts.warn(
            "weights-uncounted",
            format!(
                "`{first}`{}: looks like weights but no tensors were found in it, so no \
                 parameter count; check the file was saved with torch.save(state_dict) or \
                 save_pretrained",
                match weightlike.len() {
                    1 => String::new(),
                    n => format!(" (+{} files)", n - 1),
                }
            ),
        );
    }
}

/// The entries of one directory, listed once (`read_dir`'s file types: no `stat` except for
/// symbolic links, followed once).
#[derive(Debug)]
pub struct Listing {
    /// Regular files, symbolic links to regular files included, sorted.
    pub files: Vec<String>,
    /// Real sub-directories (not links: one could loop back), sorted.
    pub dirs: Vec<String>,
    /// Entries that are neither (FIFOs, devices, sockets, dangling links): never opened.
    pub others: Vec<String>,
    /// Whether every entry was read: no entry failed and every name is UTF-8, so a name not
    /// listed is not in the directory.
    pub complete: bool,
}

impl Listing {
    /// Lists `dir`. Names that are not UTF-8 are skipped.
    pub fn of(dir: &Path) -> Result<Self, CheckpointError> {
        let rd = std::fs::read_dir(dir).map_err(|e| CheckpointError::io(dir, e))?;
        let mut listing = Listing {
            files: Vec::new(),
            dirs: Vec::new(),
            others: Vec::new(),
            complete: true,
        };
        for entry in rd {
            let Ok(entry) = entry else {
                listing.complete = false;
                continue;
            };
            let Ok(name) = entry.file_name().into_string() else {
                listing.complete = false;
                continue;
            };
            match entry.file_type() {
                Ok(t) if t.is_dir() => listing.dirs.push(name),
                _ if is_regular_file(&entry) => listing.files.push(name),
                _ => listing.others.push(name),
            }
        }
        listing.files.sort_unstable();
        listing.dirs.sort_unstable();
        listing.others.sort_unstable();
        Ok(listing)
    }

    /// Every name listed: files, directories and others.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .chain(&self.dirs)
            .chain(&self.others)
            .map(String::as_str)
    }

    /// Whether `name` is a regular file of the directory.
    pub fn has_file(&self, name: &str) -> bool {
        self.files
            .binary_search_by(|n| n.as_str().cmp(name))
            .is_ok()
    }
}

/// Which copy of the weights wins when several are present: lower is preferred.
/// safetensors first (it is what the Hub counts and it cannot execute code).
fn preference(set: &WeightSet) -> u8 {
    match set.format.as_str() {
        "diffusers" | "safetensors-sharded" | "safetensors" => 0,
        _ => 1,
    }
}

/// Sets the `parameters.*` and `checkpoint.*` facts of the primary copy.
fn record(facts: &mut Facts, set: &WeightSet) {
    let origin = set.origin();
    let by_dtype: serde_json::Map<String, Value> = set
        .by_dtype
        .iter()
        .map(|(dtype, n)| (dtype.clone(), Value::from(*n)))
        .collect();
    facts.set(
        paths::PARAMETERS_BY_DTYPE,
        Value::Object(by_dtype),
        Source::file(
            &origin,
            format!("{}: Σ shape products per dtype", set.method),
        ),
    );
    facts.set(
        paths::PARAMETERS_TOTAL,
        set.total(),
        Source::file(&origin, format!("{}: Σ shape products", set.method)),
    );
    facts.set(
        paths::CHECKPOINT_FORMAT,
        set.format.as_str(),
        Source::file(&origin, "file names and headers"),
    );
    facts.set(
        paths::CHECKPOINT_FILES,
        set.file_names(),
        Source::file(&origin, "weight files found"),
    );
    facts.set(
        paths::CHECKPOINT_BYTES,
        set.bytes,
        Source::file(&origin, "Σ file sizes"),
    );
}

/// Lists the other copies of the weights under `checkpoint.alternatives`.
fn record_alternatives(facts: &mut Facts, primary: &WeightSet, others: &[WeightSet]) {
    if others.is_empty() {
        return;
    }
    let list: Vec<Value> = others
        .iter()
        .map(|set| {
            serde_json::json!({
                "format": set.format,
                "files": set.file_names(),
                "bytes": set.bytes,
                "parameters": set.total(),
            })
        })
        .collect();
    let names: Vec<String> = others.iter().map(WeightSet::origin).collect();
    facts.set(
        paths::CHECKPOINT_ALTERNATIVES,
        list,
        Source::derived(format!(
            "other copies beside {}: {}",
            primary.origin(),
            names.join(", ")
        )),
    );
}

/// Whether a directory entry is a regular file, following a symbolic link once (the Hugging
/// Face cache links every file). Only links cost a `stat`; FIFOs, devices and link loops are
/// not regular files, so a scan never blocks on them.
pub(crate) fn is_regular_file(entry: &std::fs::DirEntry) -> bool {
    match entry.file_type() {
        Ok(t) if t.is_file() => true,
        Ok(t) if t.is_symlink() => std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()),
        _ => false,
    }
}

/// Weight and index files (other than safetensors, whose finder says so itself) that are not
/// regular files: one warning each, never skipped silently.
fn warn_irregular(dir: &Path, others: &[String], facts: &mut Facts) {
    const WEIGHTS: [&str; 8] = [
        ".bin",
        ".pt",
        ".pth",
        ".ckpt",
        ".gguf",
        ".distcp",
        ".bin.index.json",
        ".pkl",
    ];
    for name in others {
        if !WEIGHTS.iter().any(|ext| name.ends_with(ext)) {
            continue;
        }
        let what = std::fs::metadata(dir.join(name))
            .map(|m| cardfill_facts::read::describe(m.file_type()))
            .unwrap_or("a dangling link");
        facts.warn(
            "weight-file-unreadable",
            format!("`{name}` is {what}, not a regular file: skipped"),
        );
    }
}

/// Files in `dir` (not recursing), sorted, regular files only (symlinks followed once,
/// FIFOs and devices skipped so a scan never blocks on them).
pub(crate) fn regular_files(dir: &Path) -> Result<Vec<String>, CheckpointError> {
    Ok(Listing::of(dir)?.files)
}

/// Reads a small text file: regular files only (a FIFO never blocks the scan), at most
/// [`cardfill_facts::read::CONFIG_CAP`].
pub(crate) fn read_small(path: &Path) -> Option<String> {
    cardfill_facts::read::read_to_string(path, cardfill_facts::read::CONFIG_CAP).ok()
}
