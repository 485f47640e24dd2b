//! safetensors: `model.safetensors`, sharded checkpoints through any `*.safetensors.index.json`
//! (shard names taken from its `weight_map`), and the other `*.safetensors` files of the
//! directory.
//!
//! Only the 8-byte length and the JSON header of each file are read, in one small read for the
//! usual header sizes: never tensor data. Headers are walked, not built: counts are summed by
//! dtype while parsing and per-tensor data is kept only when asked ([`Keep`]), so memory stays
//! flat in the tensor count (headers over [`STREAM_ABOVE`] bytes are streamed, not loaded).
//!
//! What is accepted follows the `safetensors` crate exactly (its `read_metadata`): a header the
//! crate accepts gives the same tensors, dtypes and shapes here, and one it refuses for its
//! structure is refused here. A repeated tensor name keeps its last entry, as the crate's map
//! does. The one difference: a dtype the crate does not know is counted under its name (any
//! byte length) instead of failing the whole header.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use cardfill_facts::Facts;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};

use crate::scan::{Bail, Cursor};
use crate::{CheckpointError, Listing, Tensor, WeightSet};

/// The largest header accepted (the safetensors crate's own limit).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;
/// The largest index file accepted.
const MAX_INDEX_BYTES: u64 = 100_000_000;
/// Bytes read at once from the start of a file: the length prefix and, for most shards, the
/// whole header in one system call (a larger first read copies data-region bytes for nothing).
/// After the first file, the first read is sized from the largest header met so far (shards
/// of one model have headers of similar size), between [`MIN_FIRST_READ`] and this.
const FIRST_READ: u64 = 4096;
/// The smallest first read.
const MIN_FIRST_READ: u64 = 512;
/// Headers longer than this are parsed from the file through a small buffer instead of being
/// read whole: memory does not grow with the header.
pub const STREAM_ABOVE: u64 = 1 << 20;
/// Buffer of a streamed header.
const STREAM_BUFFER: usize = 64 << 10;

/// What to keep of the headers beyond the counts by dtype.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Keep {
    /// Every tensor's name, dtype and shape (quantized and mixture-of-experts counts read them).
    pub tensors: bool,
}

/// What the header of one safetensors file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Every tensor, in header order, when kept (always by [`read_file`]).
    pub tensors: Vec<Tensor>,
    /// Number of tensors.
    pub count: u64,
    /// Elements per dtype name.
    pub by_dtype: BTreeMap<String, u64>,
    /// Length of the JSON header (`N`), padding included.
    pub header_len: u64,
    /// Length of the data buffer: the end of the last tensor.
    pub data_len: u64,
    /// Length of the file: `8 + header_len + data_len`.
    pub file_len: u64,
}

/// A file's header, or the git-lfs pointer standing in for it.
enum Read1 {
    Header(Shard),
    Pointer,
}

/// A [`Header`] as the reader returns it: its sums by dtype stay in the reader's scratch
/// space ([`Reader::sums`]) until the next file, not copied into a map per file.
struct Shard {
    tensors: Vec<Tensor>,
    count: u64,
    header_len: u64,
    data_len: u64,
    file_len: u64,
}

/// Scratch space reused from one file to the next.
#[derive(Default)]
pub(crate) struct Reader {
    buf: Vec<u8>,
    scratch: Scratch,
    /// The largest `8 + N` met so far (0 before the first file).
    largest: u64,
}

impl Reader {
    /// Elements per dtype of the last header read.
    fn sums(&self) -> impl Iterator<Item = (&str, u64)> {
        self.scratch.sums.iter()
    }
}

/// Finds every copy of the weights stored as safetensors in `dir` (not its sub-directories):
/// one set per `*.safetensors.index.json`, then `model.safetensors`, then shard families
/// without an index (`<stem>-00001-of-00003.safetensors`), then every other file alone.
///
/// PEFT adapters (`adapter_model*.safetensors`) are left to the adapter reader. An index that
/// names a missing shard is a warning and its shards are not counted (the count would be
/// partial); a corrupt file is an error. Per-tensor data is not kept.
pub fn find(dir: &Path, facts: &mut Facts) -> Result<Vec<WeightSet>, CheckpointError> {
    find_listed(dir, &Listing::of(dir)?, Keep::default(), facts)
}

/// [`find`] on a directory already listed.
pub(crate) fn find_listed(
    dir: &Path,
    listing: &Listing,
    keep: Keep,
    facts: &mut Facts,
) -> Result<Vec<WeightSet>, CheckpointError> {
    let is_ours = |n: &str| n.ends_with(".safetensors") || n.ends_with(".safetensors.index.json");
    for name in listing.others.iter().chain(&listing.dirs) {
        if is_ours(name) {
            facts.warn(
                "safetensors-not-a-file",
                format!(
                    "`{}` is not a regular file: skipped",
                    dir.join(name).display()
                ),
            );
        }
    }
    let names = &listing.files;
    let mut reader = Reader::default();
    let mut sets = Vec::new();
    // Files named by an index, sorted.
    let mut covered: Vec<&str> = Vec::new();

    for index in names
        .iter()
        .filter(|n| n.ends_with(".safetensors.index.json"))
    {
        let text = read_index_text(dir, index)?;
        let shards = parse_index(dir, index, &text)?;
        if shards.shards.is_empty() {
            facts.warn(
                "safetensors-index-empty",
                format!("`{}`: weight_map is empty", dir.join(index).display()),
            );
            continue;
        }
        // Both lists are sorted: one pass over them finds the shards present.
        let mut at = 0;
        for shard in &shards.shards {
            while names.get(at).is_some_and(|n| n.as_str() < &**shard) {
                at += 1;
            }
            if let Some(name) = names.get(at).filter(|n| n.as_str() == &**shard) {
                covered.push(name.as_str());
            }
        }
        covered.sort_unstable();
        match index_set_to_weights(dir, index, &shards, keep, &mut reader, facts)? {
            IndexOutcome::Ready(weights) => sets.push(weights),
            // Shards not pulled from git-lfs are not weights: `lfs.rs` reports them.
            IndexOutcome::Pointer => {}
            IndexOutcome::MissingShard { shard } => facts.warn(
                "safetensors-shard-missing",
                format!(
                    "`{}`: weight_map names `{shard}`, which is missing: this copy of the weights is not counted",
                    dir.join(index).display()
                ),
            ),
        }
    }

    let mut families: BTreeMap<(&str, u32), Vec<String>> = BTreeMap::new();
    let mut singles: Vec<String> = Vec::new();
    // Both lists are sorted: one pass over `covered` finds the names in it.
    let mut covered = covered.iter().peekable();
    for name in names.iter().filter(|n| {
        while covered.next_if(|c| **c < n.as_str()).is_some() {}
        n.ends_with(".safetensors")
            && covered.peek().is_none_or(|c| **c != n.as_str())
            && !n.starts_with("adapter_model")
    }) {
        match shard_family(name) {
            Some((stem, of)) => families.entry((stem, of)).or_default().push(name.clone()),
            None => singles.push(name.clone()),
        }
    }
    // `model.safetensors` is what transformers writes: it comes before other single files.
    if let Some(pos) = singles.iter().position(|n| n == "model.safetensors") {
        let name = singles.remove(pos);
        let set = read_set_with(dir, &[name], "safetensors", "header", keep, &mut reader)?;
        push_nonempty(&mut sets, set);
    }
    for ((stem, of), files) in families {
        let method = format!("headers of {} shards (no index)", files.len());
        let set = read_set_with(
            dir,
            &files,
            "safetensors-sharded",
            &method,
            keep,
            &mut reader,
        )?;
        if !set.files.is_empty() && set.files.len() != of as usize {
            facts.warn(
                "safetensors-shards-incomplete",
                format!(
                    "`{}`: {} of {of} shards `{stem}-*-of-*.safetensors` present and no index: counted as found",
                    dir.display(),
                    set.files.len()
                ),
            );
        }
        push_nonempty(&mut sets, set);
    }
    for name in singles {
        let set = read_set_with(dir, &[name], "safetensors", "header", keep, &mut reader)?;
        push_nonempty(&mut sets, set);
    }
    Ok(sets)
}

/// Adds `set` unless every one of its files was a git-lfs pointer.
fn push_nonempty(sets: &mut Vec<WeightSet>, set: WeightSet) {
    if !set.files.is_empty() {
        sets.push(set);
    }
}

/// Reads the headers of `files` (relative to `dir`) into one [`WeightSet`] of `format`,
/// keeping every tensor. git-lfs pointers are left out of the set (`lfs.rs` reports them).
/// `buf` is scratch space.
pub fn read_set(
    dir: &Path,
    files: &[String],
    format: &str,
    method: &str,
    buf: &mut Vec<u8>,
) -> Result<WeightSet, CheckpointError> {
    let mut reader = Reader {
        buf: std::mem::take(buf),
        ..Reader::default()
    };
    let set = read_set_with(
        dir,
        files,
        format,
        method,
        Keep { tensors: true },
        &mut reader,
    );
    *buf = reader.buf;
    set
}

fn read_set_with(
    dir: &Path,
    files: &[String],
    format: &str,
    method: &str,
    keep: Keep,
    reader: &mut Reader,
) -> Result<WeightSet, CheckpointError> {
    let mut set = WeightSet {
        format: format.to_owned(),
        method: method.to_owned(),
        ..WeightSet::default()
    };
    for file in files {
        let path = dir.join(file);
        if let Read1::Header(header) = reader.read(&path, keep.tensors, &mut |_, _| {})? {
            add_header(&mut set, file, header, reader, &path)?;
        }
    }
    Ok(set)
}

/// Adds one file's header, just read by `reader`, to `set`: its counts, bytes and (when
/// kept) tensors.
fn add_header(
    set: &mut WeightSet,
    file: &str,
    header: Shard,
    reader: &Reader,
    path: &Path,
) -> Result<(), CheckpointError> {
    for (dtype, n) in reader.sums() {
        let sum = match set.by_dtype.get_mut(dtype) {
            Some(sum) => sum,
            None => set.by_dtype.entry(dtype.to_owned()).or_insert(0),
        };
        *sum = sum
            .checked_add(n)
            .ok_or_else(|| CheckpointError::invalid(path, "parameter count overflows"))?;
    }
    set.files.push(PathBuf::from(file));
    set.bytes = set.bytes.saturating_add(header.file_len);
    set.tensors.extend(header.tensors);
    Ok(())
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

/// A parsed index: its shards in order and what it claims. Strings borrow from the index's
/// text where they have no escapes.
struct IndexSet<'a> {
    /// Shard file names, sorted, each once.
    shards: Vec<Cow<'a, str>>,
    /// (tensor, position of its shard in `shards`) as the index maps them, sorted by tensor;
    /// a repeated tensor keeps its last entry.
    weight_map: Vec<(Cow<'a, str>, usize)>,
    /// `metadata.total_size`, where stated as an integer.
    total_size: Option<u64>,
}

/// The weights of an index, or why there are none.
enum IndexOutcome {
    Ready(WeightSet),
    /// A shard is a git-lfs pointer: the weights were not downloaded.
    Pointer,
    MissingShard {
        shard: String,
    },
}

#[derive(Deserialize)]
struct RawIndex<'a> {
    #[serde(default)]
    metadata: Option<RawIndexMetadata>,
    #[serde(borrow)]
    weight_map: WeightMap<'a>,
}

/// `weight_map`'s entries in file order.
struct WeightMap<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> Deserialize<'de> for WeightMap<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = WeightMap<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of tensor name → shard file")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WeightMap<'de>, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 16));
                while let Some((Str(tensor), Str(shard))) = map.next_entry()? {
                    entries.push((tensor, shard));
                }
                Ok(WeightMap(entries))
            }
        }
        let WeightMap(entries) = d.deserialize_map(MapVisitor)?;
        Ok(WeightMap(entries))
    }
}

/// A string, borrowed from the input where it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(StrVisitor)
    }
}

#[derive(Deserialize)]
struct RawIndexMetadata {
    #[serde(default)]
    total_size: Option<serde_json::Value>,
}

/// Opens a file that must be regular without blocking (a FIFO never hangs the scan) and
/// returns it with its length: one `open` and one `fstat`.
fn open_regular(path: &Path) -> Result<(File, u64), CheckpointError> {
    let io = |source| CheckpointError::io(path, source);
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(CheckpointError::invalid(path, "is not a regular file"));
    }
    Ok((file, meta.len()))
}

/// Reads the text of `dir/index` (at most [`MAX_INDEX_BYTES`]).
fn read_index_text(dir: &Path, index: &str) -> Result<Vec<u8>, CheckpointError> {
    let path = dir.join(index);
    let (mut file, len) = open_regular(&path)?;
    if len > MAX_INDEX_BYTES {
        return Err(CheckpointError::invalid(
            &path,
            format!("index is {len} bytes, over the {MAX_INDEX_BYTES}-byte limit"),
        ));
    }
    let mut text = Vec::with_capacity(len as usize + 1);
    (&mut file)
        .take(MAX_INDEX_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| CheckpointError::io(&path, e))?;
    Ok(text)
}

/// Parses the index `text` of `dir/index` and checks that every shard it names stays inside
/// `dir`.
fn parse_index<'a>(
    dir: &Path,
    index: &str,
    text: &'a [u8],
) -> Result<IndexSet<'a>, CheckpointError> {
    let path = dir.join(index);
    // The plain JSON writers emit is scanned by hand (its strings borrowed as they are);
    // anything else by serde_json.
    match crate::scan::index(text) {
        Ok(scan) => index_set(&path, scan.weight_map, scan.total_size),
        Err(Bail) => {
            let raw: RawIndex<'a> = serde_json::from_slice(text).map_err(|e| {
                CheckpointError::invalid(
                    &path,
                    format!(
                        "malformed index JSON at byte {}: {e}",
                        json_offset(text, &e)
                    ),
                )
            })?;
            let total_size = raw
                .metadata
                .and_then(|m| m.total_size)
                .and_then(|v| v.as_u64());
            index_set(&path, raw.weight_map.0, total_size)
        }
    }
}

/// The [`IndexSet`] of the (tensor, shard) entries of the index at `path`, in file order.
fn index_set<'a, S>(
    path: &Path,
    mut weight_map: Vec<(S, S)>,
    total_size: Option<u64>,
) -> Result<IndexSet<'a>, CheckpointError>
where
    S: std::ops::Deref<Target = str> + Clone + Into<Cow<'a, str>>,
{
    // Sorted by tensor, the last entry of a repeated tensor kept (a JSON object's rule).
    // Writers sort the keys: a map already in strictly rising order is left as it is.
    if !weight_map.windows(2).all(|w| *w[0].0 < *w[1].0) {
        weight_map.reverse();
        weight_map.sort_by(|a, b| str::cmp(&a.0, &b.0));
        weight_map.dedup_by(|later, first| *later.0 == *first.0);
    }
    // Each entry's shard as a position in `firsts`, the shards in the order met. A layer's
    // tensors sit in one or two shards: a shard among the few met last is not pushed again
    // (the one before is compared by address first: the scanner returns a repeated neighbour
    // as the same string). Others are pushed, even if met before: sorting finds those.
    let mut firsts: Vec<&S> = Vec::new();
    // (shard, position in `firsts`), the latest first.
    let mut recent: [Option<(&str, usize)>; 4] = [None; 4];
    let ids: Vec<usize> = weight_map
        .iter()
        .map(|(_, shard)| {
            if let Some((p, id)) = recent[0]
                && same_str(p, shard)
            {
                return id;
            }
            let k = recent
                .iter()
                .position(|r| r.is_some_and(|(p, _)| p == &**shard))
                .unwrap_or(recent.len() - 1);
            let id = match recent[k] {
                Some((p, id)) if p == &**shard => id,
                _ => {
                    firsts.push(shard);
                    firsts.len() - 1
                }
            };
            recent[..=k].rotate_right(1);
            recent[0] = Some((shard, id));
            id
        })
        .collect();
    // The shards sorted, each once, and the place of each of `firsts` among them.
    let mut order: Vec<usize> = (0..firsts.len()).collect();
    order.sort_unstable_by(|&a, &b| (**firsts[a]).cmp(&**firsts[b]));
    let mut shards: Vec<Cow<'a, str>> = Vec::with_capacity(order.len());
    let mut rank = vec![0; order.len()];
    for &i in &order {
        if shards.last().is_none_or(|last| **last != **firsts[i]) {
            shards.push(firsts[i].clone().into());
        }
        rank[i] = shards.len() - 1;
    }
    let weight_map: Vec<(Cow<'a, str>, usize)> = weight_map
        .into_iter()
        .zip(ids)
        .map(|((tensor, _), id)| (tensor.into(), rank[id]))
        .collect();
    for shard in &shards {
        if !is_plain_relative(shard) {
            return Err(CheckpointError::invalid(
                path,
                format!("weight_map names `{shard}`, which is not a file inside the directory"),
            ));
        }
    }
    Ok(IndexSet {
        shards,
        weight_map,
        total_size,
    })
}

/// Reads the shards of an index and checks them against it: every mapped tensor must be in
/// its shard, and `metadata.total_size` must equal the data bytes (both are warnings).
fn index_set_to_weights(
    dir: &Path,
    index: &str,
    set: &IndexSet<'_>,
    keep: Keep,
    reader: &mut Reader,
    facts: &mut Facts,
) -> Result<IndexOutcome, CheckpointError> {
    let method = format!("weight_map + {} shard headers", set.shards.len());
    let mut weights = WeightSet {
        format: "safetensors-sharded".to_owned(),
        index: Some(PathBuf::from(index)),
        method,
        ..WeightSet::default()
    };
    // The weight_map sorted by tensor name, each with its shard's position in `set.shards`,
    // and whether that shard's header holds it.
    let mapped = &set.weight_map;
    // Positions in `mapped` grouped by shard, each group in name order: a header's names are
    // looked up among its own shard's few tensors.
    let mut starts = vec![0usize; set.shards.len() + 1];
    for &(_, i) in mapped {
        if let Some(n) = starts.get_mut(i.saturating_add(1)) {
            *n += 1;
        }
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut by_shard = vec![0usize; starts[set.shards.len()]];
    let mut next = starts.clone();
    for (at, &(_, i)) in mapped.iter().enumerate() {
        if let Some(slot) = next.get_mut(i) {
            by_shard[*slot] = at;
            *slot += 1;
        }
    }
    let mut seen = vec![false; mapped.len()];
    let mut data_bytes: u64 = 0;
    let mut join = Join::new(dir);
    for (i, shard) in set.shards.iter().enumerate() {
        let path = join.with(shard);
        debug_assert_eq!(path, dir.join(&**shard));
        let own = &by_shard[starts[i]..starts[i + 1]];
        // Writers sort a header's names as the index sorts them: the name after the last
        // one found is tried before a search.
        let mut next = 0;
        let mut mark = |name: &str, _: &str| {
            let k = match own.get(next) {
                Some(&at) if mapped[at].0 == name => Some(next),
                _ => own.binary_search_by(|&at| (*mapped[at].0).cmp(name)).ok(),
            };
            if let Some(k) = k {
                seen[own[k]] = true;
                next = k + 1;
            }
        };
        let header = match reader.read(path, keep.tensors, &mut mark) {
            Err(CheckpointError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(IndexOutcome::MissingShard {
                    shard: shard.to_string(),
                });
            }
            Ok(Read1::Pointer) => return Ok(IndexOutcome::Pointer),
            Ok(Read1::Header(header)) => header,
            Err(e) => return Err(e),
        };
        data_bytes = data_bytes.saturating_add(header.data_len);
        add_header(&mut weights, shard, header, reader, path)?;
    }

    let mut misplaced = set
        .weight_map
        .iter()
        .zip(&seen)
        .filter(|(_, seen)| !**seen)
        .map(|((tensor, i), _)| (tensor, set.shards.get(*i).map_or("?", |s| &**s)));
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

/// `dir/name` for one relative name after another, built in one reused buffer: what
/// `dir.join(name)` gives, without an allocation per file.
struct Join<'a> {
    dir: &'a Path,
    buf: PathBuf,
}

impl<'a> Join<'a> {
    fn new(dir: &'a Path) -> Self {
        Join {
            dir,
            buf: PathBuf::new(),
        }
    }

    /// `dir` joined with `name`, a relative path.
    fn with(&mut self, name: &str) -> &Path {
        let dir = self.dir.as_os_str();
        let buf = self.buf.as_mut_os_string();
        buf.clear();
        buf.push(dir);
        let ends_in_separator = dir
            .as_encoded_bytes()
            .last()
            .is_some_and(|&b| std::path::is_separator(char::from(b)));
        if !dir.is_empty() && !ends_in_separator {
            buf.push(std::path::MAIN_SEPARATOR_STR);
        }
        buf.push(name);
        &self.buf
    }
}

/// Whether `a` and `b` are equal strings: at once when they are the same slice.
fn same_str(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

/// Whether `name` is a relative path that stays inside the directory.
fn is_plain_relative(name: &str) -> bool {
    // A name without separators or a drive colon is one component: no need to parse it.
    if !name.bytes().any(|b| matches!(b, b'/' | b'\\' | b':')) {
        return !matches!(name, "" | "." | "..");
    }
    let path = Path::new(name);
    !name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Reads and validates the header of the safetensors file at `path`, keeping every tensor:
/// length at most [`MAX_HEADER_BYTES`] and inside the file, well-formed JSON, tensors
/// contiguous from offset 0 with the byte length their dtype and shape need, and the file
/// exactly `8 + header + data` bytes long. `buf` is scratch space, reused between calls.
pub fn read_file(path: &Path, buf: &mut Vec<u8>) -> Result<Header, CheckpointError> {
    let mut reader = Reader {
        buf: std::mem::take(buf),
        ..Reader::default()
    };
    let read = reader.read(path, true, &mut |_, _| {});
    let by_dtype = reader.sums().map(|(d, n)| (d.to_owned(), n)).collect();
    *buf = reader.buf;
    match read? {
        Read1::Header(h) => Ok(Header {
            tensors: h.tensors,
            count: h.count,
            by_dtype,
            header_len: h.header_len,
            data_len: h.data_len,
            file_len: h.file_len,
        }),
        Read1::Pointer => Err(CheckpointError::invalid(
            path,
            "is a git-lfs pointer, not weights: the weights were not downloaded",
        )),
    }
}

/// Where the JSON of a header is: in memory, or in the file (streamed).
enum Json<'a> {
    Slice(&'a [u8]),
    File {
        file: &'a File,
        /// The header bytes already read (after the 8-byte length).
        head: &'a [u8],
        /// The header length.
        len: u64,
    },
}

impl Json<'_> {
    /// Walks the header's entries through `walk`; `bufs` is scratch space.
    fn walk(&self, walk: &mut Walk<'_>, bufs: &mut Bufs) -> Result<(), serde_json::Error> {
        match self {
            Json::Slice(bytes) => {
                // The plain JSON writers emit is scanned by hand; anything else by serde_json,
                // from the start, which then decides every error.
                if scan_header(bytes, walk, &mut bufs.shape).is_ok() {
                    return Ok(());
                }
                walk.restart();
                let mut de = serde_json::Deserializer::from_slice(bytes);
                HeaderSeed(walk, bufs).deserialize(&mut de)?;
                de.end()
            }
            Json::File { .. } => {
                let mut de = serde_json::Deserializer::from_reader(self.stream()?);
                HeaderSeed(walk, bufs).deserialize(&mut de)?;
                de.end()
            }
        }
    }

    /// The streamed header, from its first byte (a `Slice` streams from memory).
    fn stream(&self) -> Result<Box<dyn BufRead + '_>, serde_json::Error> {
        match self {
            Json::Slice(bytes) => Ok(Box::new(*bytes)),
            Json::File { file, head, len } => {
                let mut f = *file;
                f.seek(SeekFrom::Start(8 + head.len() as u64))
                    .map_err(serde_json::Error::io)?;
                let rest = len.saturating_sub(head.len() as u64);
                Ok(Box::new(BufReader::with_capacity(
                    STREAM_BUFFER,
                    head.chain(f.take(rest)),
                )))
            }
        }
    }

    /// The byte offset of a JSON error inside the header, from serde_json's line and column.
    fn offset(&self, err: &serde_json::Error) -> u64 {
        match self {
            Json::Slice(bytes) => json_offset(bytes, err) as u64,
            Json::File { .. } => {
                let mut offset = 0u64;
                let mut line = 1;
                if let Ok(mut stream) = self.stream() {
                    let mut chunk = Vec::new();
                    while line < err.line() {
                        chunk.clear();
                        match stream.read_until(b'\n', &mut chunk) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => offset += n as u64,
                        }
                        line += 1;
                    }
                }
                offset + err.column().saturating_sub(1) as u64
            }
        }
    }
}

/// One entry of a header, as kept for the layout check: 24 bytes per tensor.
#[derive(Clone, Copy, Debug)]
struct Rec {
    begin: u64,
    end: u64,
    /// Position in the header; [`BAD`] set when the entry fails on its own (shape overflow,
    /// byte length not that of its dtype and shape, end before begin).
    idx: u32,
    /// Hash of the name, to find repeated names without keeping the names.
    hash: u32,
}

/// Flag in [`Rec::idx`].
const BAD: u32 = 1 << 31;

/// Headers with at most this many entries look for repeated names pair by pair.
const SMALL_HEADER: usize = 16;

/// Scratch buffers of a walk, reused between files.
#[derive(Default)]
struct Scratch {
    bufs: Bufs,
    records: Vec<Rec>,
    sums: Sums,
}

/// The entry being read by serde_json (the scanner borrows names from the header instead).
#[derive(Default)]
struct Bufs {
    name: String,
    dtype: String,
    shape: Vec<u64>,
}

/// Elements and tensors per dtype of one header. The dtypes this crate knows have a slot
/// each (no name compared or copied per entry); other names go to a short list.
#[derive(Default)]
struct Sums {
    /// (elements, tensors), at the dtype's position in [`DTYPES`].
    known: [(u64, u64); DTYPES.len()],
    /// Bit `i` set when `known[i]` was counted since the last [`Sums::clear`].
    used: u32,
    /// (name, (elements, tensors)) of dtypes not in [`DTYPES`].
    other: Vec<(String, (u64, u64))>,
}

impl Sums {
    fn clear(&mut self) {
        while self.used != 0 {
            let i = self.used.trailing_zeros() as usize;
            self.used &= self.used - 1;
            if let Some(slot) = self.known.get_mut(i) {
                *slot = (0, 0);
            }
        }
        self.other.clear();
    }

    /// The (elements, tensors) of `dtype`, whose position in [`DTYPES`] is `known`.
    fn slot(&mut self, dtype: &str, known: Option<usize>) -> Option<&mut (u64, u64)> {
        match known {
            Some(i) => {
                self.used |= 1 << i;
                self.known.get_mut(i)
            }
            None => self
                .other
                .iter_mut()
                .find(|(name, _)| name == dtype)
                .map(|(_, sums)| sums),
        }
    }

    /// Counts one tensor of `n` elements under `dtype` (position `known` in [`DTYPES`]).
    fn add(&mut self, dtype: &str, known: Option<usize>, n: u64) {
        match self.slot(dtype, known) {
            Some((sum, tensors)) => {
                *sum = sum.saturating_add(n);
                *tensors += 1;
            }
            None => self.other.push((dtype.to_owned(), (n, 1))),
        }
    }

    /// (dtype, elements) of every dtype with at least one tensor.
    fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        // The slots counted, lowest first, found by their bits.
        let mut used = self.used;
        let known = std::iter::from_fn(move || {
            let i = used.trailing_zeros() as usize;
            used &= used.checked_sub(1)?;
            Some(i)
        })
        .filter_map(|i| Some((DTYPES.get(i)?.0, *self.known.get(i)?)))
        .filter(|(_, (_, tensors))| *tensors > 0)
        .map(|(name, (n, _))| (name, n));
        let other = self
            .other
            .iter()
            .filter(|(_, (_, tensors))| *tensors > 0)
            .map(|(name, (n, _))| (name.as_str(), *n));
        known.chain(other)
    }
}

/// Sums and records a header's entries as the parser meets them.
struct Walk<'a> {
    /// Whether to fill `records` (not on a look-up pass).
    record: bool,
    records: &'a mut Vec<Rec>,
    count: u32,
    sums: &'a mut Sums,
    /// Called with each entry's position, name, dtype and shape.
    on_entry: &'a mut OnEntry<'a>,
}

/// What a walk calls for each entry: position, name, dtype, shape.
type OnEntry<'a> = dyn FnMut(u32, &str, &str, &[u64]) + 'a;

impl Walk<'_> {
    fn entry(
        &mut self,
        name: &str,
        dtype: &str,
        shape: &[u64],
        begin: u64,
        end: u64,
    ) -> Result<(), String> {
        let idx = self.count;
        if idx >= BAD {
            return Err("more than 2^31 tensors".into());
        }
        self.count += 1;
        let known = dtype_index(dtype);
        let numel = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let fits = |n: u64| match known.and_then(|i| DTYPES.get(i)) {
            Some(&(_, bits)) => n
                .checked_mul(bits)
                .is_some_and(|b| b % 8 == 0 && Some(b / 8) == end.checked_sub(begin)),
            None => end >= begin,
        };
        let bad = !numel.is_some_and(fits);
        if let Some(n) = numel {
            self.sums.add(dtype, known, n);
        }
        (self.on_entry)(idx, name, dtype, shape);
        if self.record {
            self.records.push(Rec {
                begin,
                end,
                idx: if bad { idx | BAD } else { idx },
                hash: name_hash(name),
            });
        }
        Ok(())
    }

    /// Forgets the entries walked so far: the walk starts again from the first entry.
    fn restart(&mut self) {
        self.count = 0;
        self.sums.clear();
        if self.record {
            self.records.clear();
        }
    }
}

/// Walks a header written as writers write it (see [`crate::scan`]): an object of
/// `__metadata__` (null or an object of strings) and tensors `{dtype, shape, data_offsets}`
/// with those three fields once each, in any order. Gives up on anything else, possibly after
/// some entries were walked: the caller then restarts the walk with serde_json.
fn scan_header(bytes: &[u8], walk: &mut Walk<'_>, shape: &mut Vec<u64>) -> Result<(), Bail> {
    let mut c = Cursor::new(bytes)?;
    let mut metadata_seen = false;
    c.eat(b'{')?;
    if c.eat_if(b'}') {
        return c.end();
    }
    loop {
        // The metadata PyTorch's writer puts in every file, as it spells it: taken at once.
        if !metadata_seen && c.eat_exact(br#""__metadata__":{"format":"pt"}"#) {
            metadata_seen = true;
            match c.next()? {
                b',' => continue,
                b'}' => return c.end(),
                _ => return Err(Bail),
            }
        }
        let key = c.string()?;
        c.eat(b':')?;
        if key == "__metadata__" {
            if metadata_seen {
                return Err(Bail);
            }
            metadata_seen = true;
            scan_metadata(&mut c)?;
        } else {
            let (dtype, begin, end) = scan_info(&mut c, shape)?;
            walk.entry(key, dtype, shape, begin, end)
                .map_err(|_| Bail)?;
        }
        match c.next()? {
            b',' => {}
            b'}' => return c.end(),
            _ => return Err(Bail),
        }
    }
}

/// `__metadata__`: `null` or an object of strings.
fn scan_metadata(c: &mut Cursor<'_>) -> Result<(), Bail> {
    if c.peek() == Some(b'n') {
        return c.null();
    }
    c.eat(b'{')?;
    if c.eat_if(b'}') {
        return Ok(());
    }
    loop {
        c.string()?;
        c.eat(b':')?;
        c.string()?;
        match c.next()? {
            b',' => {}
            b'}' => return Ok(()),
            _ => return Err(Bail),
        }
    }
}

/// One tensor's `{dtype, shape, data_offsets}`, its shape into `shape`; returns the dtype
/// and `data_offsets`.
fn scan_info<'a>(c: &mut Cursor<'a>, shape: &mut Vec<u64>) -> Result<(&'a str, u64, u64), Bail> {
    let start = c.position();
    if let Some(info) = scan_info_compact(c, shape) {
        return Ok(info);
    }
    c.rewind(start);
    let (mut dtype, mut has_shape, mut offsets) = (None, false, None);
    c.eat(b'{')?;
    loop {
        // The three fields, spelled plainly (an escape inside one gives up, as any other key).
        let field = if c.key_is(b"\"dtype\"") {
            Field::Dtype
        } else if c.key_is(b"\"shape\"") {
            Field::Shape
        } else if c.key_is(b"\"data_offsets\"") {
            Field::Offsets
        } else {
            return Err(Bail);
        };
        match field {
            Field::Dtype if dtype.is_none() => {
                c.eat(b':')?;
                dtype = Some(c.string()?);
            }
            Field::Shape if !has_shape => {
                c.eat(b':')?;
                c.eat(b'[')?;
                shape.clear();
                if !c.eat_if(b']') {
                    loop {
                        shape.push(c.uint()?);
                        match c.next()? {
                            b',' => {}
                            b']' => break,
                            _ => return Err(Bail),
                        }
                    }
                }
                has_shape = true;
            }
            Field::Offsets if offsets.is_none() => {
                c.eat(b':')?;
                c.eat(b'[')?;
                let begin = c.uint()?;
                c.eat(b',')?;
                let end = c.uint()?;
                c.eat(b']')?;
                offsets = Some((begin, end));
            }
            // A field seen twice.
            _ => return Err(Bail),
        }
        match c.next()? {
            b',' => {}
            b'}' => break,
            _ => return Err(Bail),
        }
    }
    match (dtype, offsets) {
        (Some(dtype), Some((begin, end))) if has_shape => Ok((dtype, begin, end)),
        _ => Err(Bail),
    }
}

/// [`scan_info`] for the layout writers emit: `{"dtype":…,"shape":[…],"data_offsets":[…]}`
/// in this order, with no white space around the punctuation and keys. `None` for anything
/// else: the caller reads the entry again from its start, which takes the same bytes the same
/// way.
fn scan_info_compact<'a>(c: &mut Cursor<'a>, shape: &mut Vec<u64>) -> Option<(&'a str, u64, u64)> {
    c.eat_exact(br#"{"dtype":"#).then_some(())?;
    // Dtype names are short: read byte by byte rather than sixteen bytes at a time.
    let dtype = match c.short_string(16) {
        Some(dtype) => dtype,
        None => c.string().ok()?,
    };
    c.eat_exact(br#","shape":["#).then_some(())?;
    shape.clear();
    if !c.eat_exact(b"]") {
        loop {
            shape.push(c.uint().ok()?);
            match c.next().ok()? {
                b',' => {}
                b']' => break,
                _ => return None,
            }
        }
    }
    c.eat_exact(br#","data_offsets":["#).then_some(())?;
    let begin = c.uint().ok()?;
    c.eat_exact(b",").then_some(())?;
    let end = c.uint().ok()?;
    c.eat_exact(b"]}").then_some(())?;
    Some((dtype, begin, end))
}

/// A hash of a name, eight bytes at a time, folded to 32 bits.
fn name_hash(name: &str) -> u32 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes = name.as_bytes();
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    let mut mix = |w: u64| h = (h ^ w).wrapping_mul(K).rotate_left(29);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        mix(u64::from_le_bytes(word));
    }
    // The last eight bytes (overlapping the words above), or the few a short name has.
    let tail = &bytes[bytes.len().saturating_sub(8)..];
    let last = match <[u8; 8]>::try_from(tail) {
        Ok(word) => u64::from_le_bytes(word),
        Err(_) => tail.iter().rev().fold(0, |w, &b| (w << 8) | u64::from(b)),
    };
    mix(last);
    (h ^ (h >> 32)) as u32
}

impl Reader {
    /// Reads the header of `path`, calling `on_tensor(name, dtype)` for each entry and keeping
    /// the tensors when `keep_tensors`.
    fn read(
        &mut self,
        path: &Path,
        keep_tensors: bool,
        on_tensor: &mut dyn FnMut(&str, &str),
    ) -> Result<Read1, CheckpointError> {
        let io = |source| CheckpointError::io(path, source);
        let (mut file, file_len) = open_regular(path)?;
        // The buffer keeps its length between files: zeroed once, not for every file.
        let guess = match self.largest {
            0 => FIRST_READ,
            // A quarter more than the largest header so far.
            seen => (seen + seen / 4).clamp(MIN_FIRST_READ, FIRST_READ),
        };
        let first = file_len.min(guess) as usize;
        if self.buf.len() < first {
            self.buf.resize(first, 0);
        }
        let buf = &mut self.buf[..first];
        file.read_exact(buf).map_err(io)?;
        if buf.starts_with(b"version https://git-lfs") {
            return Ok(Read1::Pointer);
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
        self.largest = self.largest.max(8 + n);
        let json = if n <= STREAM_ABOVE {
            if first < end {
                if self.buf.len() < end {
                    self.buf.resize(end, 0);
                }
                file.read_exact(&mut self.buf[first..end]).map_err(io)?;
            }
            Json::Slice(&self.buf[8..end])
        } else {
            Json::File {
                file: &file,
                head: &self.buf[8..first],
                len: n,
            }
        };
        let first_token = match &json {
            Json::Slice(b) => b,
            Json::File { head, .. } => head,
        }
        .iter()
        .find(|b| !b" \t\n\r".contains(b));
        if first_token.is_some_and(|&b| b != b'{') {
            return Err(CheckpointError::invalid(
                path,
                "header at offset 8 does not start with `{`",
            ));
        }

        let mut tensors = Vec::new();
        let mut on_entry = |idx: u32, name: &str, dtype: &str, shape: &[u64]| {
            on_tensor(name, dtype);
            if keep_tensors {
                // A walk restarted with serde_json walks its first entries again.
                tensors.truncate(idx as usize);
                tensors.push(Tensor {
                    name: name.to_owned(),
                    dtype: dtype.to_owned(),
                    shape: shape.to_vec(),
                });
            }
        };
        let Scratch {
            bufs,
            records,
            sums,
        } = &mut self.scratch;
        records.clear();
        sums.clear();
        if n > STREAM_ABOVE {
            // At least ~40 bytes per entry: reserved, not touched, so not resident.
            records.reserve((n / 40) as usize);
        }
        let mut walk = Walk {
            record: true,
            records,
            count: 0,
            sums,
            on_entry: &mut on_entry,
        };
        if let Err(e) = json.walk(&mut walk, bufs) {
            if e.is_io() {
                return Err(io(e.into()));
            }
            return Err(CheckpointError::invalid(
                path,
                format!(
                    "malformed header JSON at offset {}: {e}",
                    8 + json.offset(&e)
                ),
            ));
        }
        let count = walk.count;
        let data_start = 8 + n;
        let layout = check_layout(&json, records, sums, data_start)
            .map_err(|m| CheckpointError::invalid(path, m))?;
        let data_len = layout.data_len;
        if !layout.dropped.is_empty() {
            let mut i = 0u32;
            tensors.retain(|_| {
                i += 1;
                layout.dropped.binary_search(&(i - 1)).is_err()
            });
        }
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
        Ok(Read1::Header(Shard {
            tensors,
            count: u64::from(count) - layout.dropped.len() as u64,
            header_len: n,
            data_len,
            file_len,
        }))
    }
}

/// What the layout check found.
struct Layout {
    /// End of the last tensor.
    data_len: u64,
    /// Entries left out because a later entry has the same name, sorted.
    dropped: Vec<u32>,
}

/// The name, dtype and shape of the entries at `want` (sorted positions): a second pass
/// over the header, taken only to name tensors in a message or to resolve repeated names.
fn look_up(json: &Json<'_>, want: &[u32]) -> BTreeMap<u32, Tensor> {
    let mut found = BTreeMap::new();
    let mut on_entry = |idx: u32, name: &str, dtype: &str, shape: &[u64]| {
        if want.binary_search(&idx).is_ok() {
            found.insert(
                idx,
                Tensor {
                    name: name.to_owned(),
                    dtype: dtype.to_owned(),
                    shape: shape.to_vec(),
                },
            );
        }
    };
    let Scratch {
        bufs,
        records,
        sums,
    } = &mut Scratch::default();
    let mut walk = Walk {
        record: false,
        records,
        count: 0,
        sums,
        on_entry: &mut on_entry,
    };
    // The first pass succeeded: so does this one.
    let _ = json.walk(&mut walk, bufs);
    found
}

/// Checks every tensor's byte range and returns the data length, as the safetensors crate
/// does: a repeated name keeps its last entry; ranges sorted by start must tile the buffer
/// from 0 with no gap or overlap; each must hold exactly its shape in its dtype (unknown
/// dtypes: any length). Messages give file offsets (`data_start` + relative).
fn check_layout(
    json: &Json<'_>,
    records: &mut Vec<Rec>,
    sums: &mut Sums,
    data_start: u64,
) -> Result<Layout, String> {
    let dropped = drop_repeated(json, records, sums);
    let key = |r: &Rec| (r.begin, r.end, r.idx & !BAD);
    if !records.is_sorted_by_key(key) {
        records.sort_unstable_by_key(key);
    }
    let mut expected = 0u64;
    let mut previous: Option<u32> = None;
    for r in records.iter() {
        let idx = r.idx & !BAD;
        if r.begin != expected {
            let mut want: Vec<u32> = previous.into_iter().chain([idx]).collect();
            want.sort_unstable();
            let names = look_up(json, &want);
            let name = |i: u32| names.get(&i).map_or("?", |t| t.name.as_str());
            let (begin, end) = (r.begin, r.end);
            let at = data_start.saturating_add(begin);
            return Err(match (begin < expected, previous) {
                (true, Some(p)) => format!(
                    "tensor `{}` data_offsets [{begin}, {end}] at offset {at} overlap tensor `{}` (ends at {expected})",
                    name(idx),
                    name(p)
                ),
                (_, Some(p)) => format!(
                    "gap before tensor `{}`: data_offsets begin at {begin} (offset {at}) but tensor `{}` ends at {expected}",
                    name(idx),
                    name(p)
                ),
                (_, None) => format!(
                    "first tensor `{}` begins at {begin} (offset {at}), not 0",
                    name(idx)
                ),
            });
        }
        if r.idx & BAD != 0 {
            let t = look_up(json, &[idx]).remove(&idx).unwrap_or(Tensor {
                name: "?".into(),
                dtype: "?".into(),
                shape: Vec::new(),
            });
            return Err(entry_error(&t, r.begin, r.end, data_start));
        }
        expected = r.end;
        previous = Some(idx);
    }
    Ok(Layout {
        data_len: expected,
        dropped,
    })
}

/// Why one entry fails on its own.
fn entry_error(t: &Tensor, begin: u64, end: u64, data_start: u64) -> String {
    let Some(numel) = t.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)) else {
        return format!("tensor `{}` shape {:?} overflows", t.name, t.shape);
    };
    if end < begin {
        return format!(
            "tensor `{}` has data_offsets [{begin}, {end}] that end before they begin",
            t.name
        );
    }
    let bits = dtype_bits(&t.dtype).unwrap_or(0);
    match numel.checked_mul(bits) {
        None => format!("tensor `{}` byte size overflows", t.name),
        Some(stored_bits) => format!(
            "tensor `{}` ({} {:?}) needs {} bytes but data_offsets [{begin}, {end}] at offset {} hold {}",
            t.name,
            t.dtype,
            t.shape,
            stored_bits.div_ceil(8),
            data_start.saturating_add(begin),
            end - begin
        ),
    }
}

/// Removes from `records` (and their counts from `sums`) every entry whose name appears
/// again later in the header, as the crate's map keeps the last. Returns their positions,
/// sorted. Names are compared through their hashes; equal hashes are checked by name.
fn drop_repeated(json: &Json<'_>, records: &mut Vec<Rec>, sums: &mut Sums) -> Vec<u32> {
    if records.len() < 2 {
        return Vec::new();
    }
    let mut candidates: Vec<u32> = if records.len() <= SMALL_HEADER {
        // A shard's few entries are compared pair by pair: no sort, and they stay in header
        // order (often already the order of their offsets).
        let mut pairs = Vec::new();
        for (i, a) in records.iter().enumerate() {
            for b in &records[i + 1..] {
                if a.hash == b.hash {
                    pairs.extend([a.idx & !BAD, b.idx & !BAD]);
                }
            }
        }
        pairs
    } else {
        records.sort_unstable_by_key(|r| (r.hash, r.idx & !BAD));
        records
            .windows(2)
            .filter(|w| w[0].hash == w[1].hash)
            .flat_map(|w| [w[0].idx & !BAD, w[1].idx & !BAD])
            .collect()
    };
    if candidates.is_empty() {
        return Vec::new();
    }
    candidates.sort_unstable();
    candidates.dedup();
    let entries = look_up(json, &candidates);
    // name → last position; every earlier position of the name is dropped.
    let mut last: BTreeMap<&str, u32> = BTreeMap::new();
    for (&idx, t) in &entries {
        last.insert(t.name.as_str(), idx);
    }
    let dropped: Vec<u32> = entries
        .iter()
        .filter(|(idx, t)| last.get(t.name.as_str()) != Some(*idx))
        .map(|(&idx, _)| idx)
        .collect();
    for idx in &dropped {
        let Some(t) = entries.get(idx) else { continue };
        let numel = t.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let slot = sums.slot(&t.dtype, dtype_index(&t.dtype));
        if let (Some(n), Some((sum, tensors))) = (numel, slot) {
            *sum = sum.saturating_sub(n);
            *tensors -= 1;
        }
    }
    if !dropped.is_empty() {
        records.retain(|r| dropped.binary_search(&(r.idx & !BAD)).is_err());
    }
    dropped
}

/// Bits per element of a safetensors dtype, for those this crate knows.
pub fn dtype_bits(dtype: &str) -> Option<u64> {
    dtype_index(dtype)
        .and_then(|i| DTYPES.get(i))
        .map(|&(_, bits)| bits)
}

/// The safetensors dtypes this crate knows, with their bits per element.
const DTYPES: [(&str, u64); 22] = [
    ("F4", 4),
    ("F6_E2M3", 6),
    ("F6_E3M2", 6),
    ("BOOL", 8),
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

// `Sums::used` has a bit per known dtype.
const _: () = assert!(DTYPES.len() <= 32);

/// The position of `dtype` in [`DTYPES`]: one `match`, compiled to comparisons of lengths
/// and words rather than a search.
fn dtype_index(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "F4" => 0,
        "F6_E2M3" => 1,
        "F6_E3M2" => 2,
        "BOOL" => 3,
        "U8" => 4,
        "I8" => 5,
        "F8_E5M2" => 6,
        "F8_E4M3" => 7,
        "F8_E8M0" => 8,
        "F8_E4M3FNUZ" => 9,
        "F8_E5M2FNUZ" => 10,
        "I16" => 11,
        "U16" => 12,
        "F16" => 13,
        "BF16" => 14,
        "I32" => 15,
        "U32" => 16,
        "F32" => 17,
        "C64" => 18,
        "F64" => 19,
        "I64" => 20,
        "U64" => 21,
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

// The header grammar, as the crate's `HashMetadata` reads it: an object whose
// `__metadata__` is null or an object of strings, and whose other keys are tensors
// `{dtype, shape, data_offsets}` (or the same three as an array); unknown fields ignored.

/// The whole header, read through the buffers.
struct HeaderSeed<'w, 'a>(&'w mut Walk<'a>, &'w mut Bufs);

impl<'de> DeserializeSeed<'de> for HeaderSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeaderSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of tensor name → {dtype, shape, data_offsets}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let HeaderSeed(walk, bufs) = self;
        let mut metadata_seen = false;
        while map.next_key_seed(StrInto(&mut bufs.name))?.is_some() {
            if bufs.name == "__metadata__" {
                if metadata_seen {
                    return Err(de::Error::duplicate_field("__metadata__"));
                }
                metadata_seen = true;
                map.next_value::<Metadata>()?;
                continue;
            }
            let (begin, end) = map.next_value_seed(InfoSeed {
                dtype: &mut bufs.dtype,
                shape: &mut bufs.shape,
            })?;
            walk.entry(&bufs.name, &bufs.dtype, &bufs.shape, begin, end)
                .map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

/// A string, copied into a reused buffer.
struct StrInto<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for StrInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for StrInto<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.clear();
        self.0.push_str(v);
        Ok(())
    }
}

/// `__metadata__`: null or an object of strings (checked, not kept).
struct Metadata;

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(MetadataVisitor)
    }
}

struct MetadataVisitor;

impl<'de> Visitor<'de> for MetadataVisitor {
    type Value = Metadata;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null or an object of strings")
    }

    fn visit_none<E: de::Error>(self) -> Result<Metadata, E> {
        Ok(Metadata)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Metadata, E> {
        Ok(Metadata)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Metadata, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
        let mut scratch = String::new();
        while map.next_key_seed(StrInto(&mut scratch))?.is_some() {
            map.next_value_seed(StrInto(&mut scratch))?;
        }
        Ok(Metadata)
    }
}

/// One tensor's entry: fills the dtype and shape buffers, returns `data_offsets`.
struct InfoSeed<'a> {
    dtype: &'a mut String,
    shape: &'a mut Vec<u64>,
}

const INFO_FIELDS: &[&str] = &["dtype", "shape", "data_offsets"];

impl<'de> DeserializeSeed<'de> for InfoSeed<'_> {
    type Value = (u64, u64);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(u64, u64), D::Error> {
        d.deserialize_struct("TensorInfo", INFO_FIELDS, self)
    }
}

/// A field name of an entry.
enum Field {
    Dtype,
    Shape,
    Offsets,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "dtype" => Field::Dtype,
                    "shape" => Field::Shape,
                    "data_offsets" => Field::Offsets,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(FieldVisitor)
    }
}

impl<'de> Visitor<'de> for InfoSeed<'_> {
    type Value = (u64, u64);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tensor {dtype, shape, data_offsets}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(u64, u64), A::Error> {
        let (mut dtype, mut shape, mut offsets) = (false, false, None);
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Dtype if dtype => return Err(de::Error::duplicate_field("dtype")),
                Field::Dtype => {
                    map.next_value_seed(DtypeSeed(self.dtype))?;
                    dtype = true;
                }
                Field::Shape if shape => return Err(de::Error::duplicate_field("shape")),
                Field::Shape => {
                    map.next_value_seed(ShapeSeed(self.shape))?;
                    shape = true;
                }
                Field::Offsets if offsets.is_some() => {
                    return Err(de::Error::duplicate_field("data_offsets"));
                }
                Field::Offsets => offsets = Some(map.next_value::<(u64, u64)>()?),
                // Parsed (strings checked as the crate's buffered content does), then dropped.
                Field::Other => {
                    map.next_value::<serde_json::Value>()?;
                }
            }
        }
        if !dtype {
            return Err(de::Error::missing_field("dtype"));
        }
        if !shape {
            return Err(de::Error::missing_field("shape"));
        }
        offsets.ok_or_else(|| de::Error::missing_field("data_offsets"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(u64, u64), A::Error> {
        let short = |n| de::Error::invalid_length(n, &"a tensor of 3 fields");
        seq.next_element_seed(DtypeSeed(self.dtype))?
            .ok_or_else(|| short(0))?;
        seq.next_element_seed(ShapeSeed(self.shape))?
            .ok_or_else(|| short(1))?;
        seq.next_element::<(u64, u64)>()?.ok_or_else(|| short(2))
    }
}

/// A dtype: its name as a string (or `{"NAME": null}`, serde's other spelling of a unit
/// variant). Any name is taken: unknown dtypes are counted under their name.
struct DtypeSeed<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for DtypeSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_enum("Dtype", &[], self)
    }
}

impl<'de> Visitor<'de> for DtypeSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a dtype name")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let ((), variant) = data.variant_seed(StrInto(self.0))?;
        de::VariantAccess::unit_variant(variant)
    }
}

/// A shape: unsigned integers into a reused buffer.
struct ShapeSeed<'a>(&'a mut Vec<u64>);

impl<'de> DeserializeSeed<'de> for ShapeSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ShapeSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of dimensions")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.clear();
        while let Some(d) = seq.next_element::<u64>()? {
            self.0.push(d);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardfill_testkit::{TensorSpec, write_safetensors, write_sharded_safetensors};
    use proptest::prelude::*;
    use std::collections::HashSet;

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
    fn a_repeated_name_keeps_its_last_entry_as_the_crate_does() {
        let dir = tempfile::tempdir().unwrap();
        let header = r#"{"a":{"dtype":"F16","shape":[9],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let path = raw(dir.path(), "x.safetensors", header, 8);
        let h = read_file(&path, &mut Vec::new()).unwrap();
        let names: Vec<&str> = h.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(h.count, 2);
        assert_eq!(h.by_dtype, BTreeMap::from([("F32".to_owned(), 2)]));
        assert_eq!(h.data_len, 8);
    }

    #[test]
    fn a_repeated_name_in_a_long_header_keeps_its_last_entry() {
        // Over `SMALL_HEADER` entries: repeated names are found by sorting, not pair by pair.
        let dir = tempfile::tempdir().unwrap();
        let mut entries: Vec<String> = (0..2 * SMALL_HEADER)
            .map(|i| {
                let at = 4 * i;
                format!(
                    r#""t{i}":{{"dtype":"F32","shape":[1],"data_offsets":[{at},{}]}}"#,
                    at + 4
                )
            })
            .collect();
        let end = 4 * entries.len();
        entries.insert(
            3,
            format!(
                r#""t7":{{"dtype":"F16","shape":[2],"data_offsets":[{end},{}]}}"#,
                end + 4
            ),
        );
        let header = format!("{{{}}}", entries.join(","));
        let path = raw(dir.path(), "x.safetensors", &header, end as u64);
        let h = read_file(&path, &mut Vec::new()).unwrap();
        assert_eq!(h.count, 2 * SMALL_HEADER as u64);
        assert_eq!(h.tensors.len(), 2 * SMALL_HEADER);
        assert_eq!(h.tensors[3].name, "t3");
        assert_eq!(
            h.by_dtype,
            BTreeMap::from([("F32".to_owned(), 2 * SMALL_HEADER as u64)])
        );
        assert_eq!(h.data_len, end as u64);
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
    fn first_reads_sized_from_earlier_headers_still_read_every_header_whole() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = [1usize, 200, 1, 40, 3];
        let mut files = Vec::new();
        for (f, &n) in sizes.iter().enumerate() {
            let name = format!("f{f}.safetensors");
            let tensors: Vec<TensorSpec> = (0..n)
                .map(|i| TensorSpec::new(format!("layer.{i}.weight"), "F16", &[2]))
                .collect();
            write_safetensors(&dir.path().join(&name), &tensors).unwrap();
            files.push(name);
        }
        let mut buf = Vec::new();
        let set = read_set(dir.path(), &files, "safetensors", "header", &mut buf).unwrap();
        assert_eq!(set.tensors.len(), sizes.iter().sum::<usize>());
        assert_eq!(set.total(), 2 * sizes.iter().sum::<usize>() as u64);
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
        // As in the crate's map, the last entry of a name counts: here `a` then starts at 4.
        assert!(
            error_of(&twice).contains("first tensor `a` begins at 4"),
            "{}",
            error_of(&twice)
        );

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
    fn plain_relative_names_are_told_as_path_components_tell_them() {
        let components = |n: &str| {
            !n.is_empty()
                && Path::new(n)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
        };
        for name in [
            "model-00001-of-00002.safetensors",
            "",
            ".",
            "..",
            "...",
            ".a",
            "a..b",
            "a/b",
            "a/",
            "./a",
            "../a",
            "/a",
            "a/../b",
            "a\\b",
            "C:x",
        ] {
            assert_eq!(is_plain_relative(name), components(name), "{name}");
        }
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

    /// The safetensors crate's reading of `bytes`: every tensor as (name, dtype, shape).
    fn crate_reads(bytes: &[u8]) -> Result<BTreeMap<String, (String, Vec<u64>)>, String> {
        let (_, metadata) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
        Ok(metadata
            .tensors()
            .into_iter()
            .map(|(name, info)| {
                let dtype = serde_json::to_value(info.dtype).unwrap();
                let shape = info.shape.iter().map(|&d| d as u64).collect();
                (name, (dtype.as_str().unwrap().to_owned(), shape))
            })
            .collect())
    }

    /// Whether the crate knows `dtype` (cardfill also counts those it does not).
    fn crate_knows(dtype: &str) -> bool {
        serde_json::from_value::<safetensors::Dtype>(serde_json::Value::from(dtype)).is_ok()
    }

    /// The oracle: where the crate accepts `bytes`, cardfill reports the same tensors; where
    /// it refuses, so does cardfill, unless the header has a dtype the crate does not know.
    fn agrees_with_the_crate(bytes: &[u8]) -> Result<(), TestCaseError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.safetensors");
        std::fs::write(&path, bytes).unwrap();
        let ours = read_file(&path, &mut Vec::new());
        match (crate_reads(bytes), ours) {
            (Ok(theirs), Ok(h)) => {
                let ours: BTreeMap<String, (String, Vec<u64>)> = h
                    .tensors
                    .iter()
                    .map(|t| (t.name.clone(), (t.dtype.clone(), t.shape.clone())))
                    .collect();
                prop_assert_eq!(ours.len(), h.tensors.len(), "names are unique");
                prop_assert_eq!(ours, theirs);
                prop_assert_eq!(h.count, h.tensors.len() as u64);
            }
            (Ok(_), Err(e)) => prop_assert!(false, "the crate accepts, cardfill refuses: {e}"),
            (Err(e), Ok(h)) => prop_assert!(
                h.tensors.iter().any(|t| !crate_knows(&t.dtype)),
                "the crate refuses ({e}), cardfill accepts {:?}",
                h.tensors
            ),
            (Err(_), Err(e)) => prop_assert!(!e.to_string().contains('\n')),
        }
        Ok(())
    }

    /// What a walk of `header` saw (entries, their offsets, sums by dtype), by the scanner
    /// alone or by serde_json alone; `None` where it failed or gave up.
    #[allow(clippy::type_complexity)]
    fn walked(
        header: &[u8],
        fast: bool,
    ) -> Option<(Vec<Tensor>, Vec<(u64, u64)>, BTreeMap<String, (u64, u64)>)> {
        let mut tensors = Vec::new();
        let mut on_entry = |_: u32, name: &str, dtype: &str, shape: &[u64]| {
            tensors.push(Tensor {
                name: name.to_owned(),
                dtype: dtype.to_owned(),
                shape: shape.to_vec(),
            });
        };
        let Scratch {
            bufs,
            records,
            sums,
        } = &mut Scratch::default();
        let mut walk = Walk {
            record: true,
            records,
            count: 0,
            sums,
            on_entry: &mut on_entry,
        };
        let ok = if fast {
            scan_header(header, &mut walk, &mut bufs.shape).is_ok()
        } else {
            let mut de = serde_json::Deserializer::from_slice(header);
            HeaderSeed(&mut walk, bufs).deserialize(&mut de).is_ok() && de.end().is_ok()
        };
        let known = DTYPES.iter().zip(&sums.known).map(|((d, _), s)| (*d, *s));
        let other = sums.other.iter().map(|(d, s)| (d.as_str(), *s));
        let by_dtype = known
            .chain(other)
            .filter(|(_, (_, tensors))| *tensors > 0)
            .map(|(d, s)| (d.to_owned(), s))
            .collect();
        let offsets = records.iter().map(|r| (r.begin, r.end)).collect();
        ok.then_some((tensors, offsets, by_dtype))
    }

    #[test]
    fn dtypes_are_found_at_their_place_in_the_table() {
        for (i, (dtype, _)) in DTYPES.iter().enumerate() {
            assert_eq!(dtype_index(dtype), Some(i), "{dtype}");
        }
        assert_eq!(dtype_index("Q4_K"), None);
        assert_eq!(dtype_bits("BF16"), Some(16));
    }

    #[test]
    fn the_scanner_takes_plain_headers_and_leaves_the_rest() {
        let plain = br#" { "__metadata__" : {"format":"pt"}, "a":{"shape":[2, 3],"data_offsets":[0,24],"dtype":"F32"} ,"b":{"dtype":"I64","shape":[],"data_offsets":[24,32]}}  "#;
        let fast = walked(plain, true).expect("scanned");
        assert_eq!(Some(&fast), walked(plain, false).as_ref());
        assert_eq!(fast.1, [(0, 24), (24, 32)]);
        // As PyTorch's writer spells them: the metadata and the entries taken literal by literal.
        let compact = br#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#;
        let fast = walked(compact, true).expect("scanned");
        assert_eq!(Some(&fast), walked(compact, false).as_ref());
        assert!(walked(br#"{"__metadata__":{"format":"pt"}}"#, true).is_some());
        let twice = br#"{"__metadata__":{"format":"pt"},"__metadata__":{"format":"pt"}}"#;
        assert!(walked(twice, true).is_none());
        assert!(walked(b"{}", true).is_some());
        for unusual in [
            &br#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}"#[..],
            br#"{"a\u0062":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            br#"{"a":["F32",[1],[0,4]]}"#,
            br#"{"a":{"dtype":{"F32":null},"shape":[1],"data_offsets":[0,4]}}"#,
            br#"{"__metadata__":null,"__metadata__":null}"#,
            br#"{"a":{"dtype":"F32","shape":[1],"shape":[1],"data_offsets":[0,4]}}"#,
            br#"{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#,
            br#"{"a":{"dtype":"F32","data_offsets":[0,4]}}"#,
        ] {
            assert!(
                walked(unusual, true).is_none(),
                "{}",
                String::from_utf8_lossy(unusual)
            );
        }
    }

    const CRATE_DTYPES: &[&str] = &[
        "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16",
        "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64",
    ];

    fn specs() -> impl Strategy<Value = Vec<TensorSpec>> {
        proptest::collection::vec(
            (
                "[a-z.]{1,6}",
                proptest::sample::select(CRATE_DTYPES),
                proptest::collection::vec(0u64..5, 0..3),
            ),
            0..6,
        )
        .prop_map(|v| {
            let mut seen = HashSet::new();
            v.into_iter()
                .filter(|(name, _, _)| seen.insert(name.clone()))
                .map(|(name, dtype, mut shape)| {
                    // Sub-byte dtypes need an element count that fills whole bytes.
                    if matches!(dtype, "F4" | "F6_E2M3" | "F6_E3M2") {
                        shape = vec![4];
                    }
                    TensorSpec::new(name, dtype, &shape)
                })
                .collect()
        })
    }

    #[test]
    fn a_real_file_of_every_dtype_reads_as_the_crate_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("all.safetensors");
        let tensors: Vec<TensorSpec> = CRATE_DTYPES
            .iter()
            .map(|d| TensorSpec::new(format!("t.{d}"), *d, &[2, 4]))
            .collect();
        cardfill_testkit::write_safetensors_with_crate(&path, &tensors).unwrap();
        agrees_with_the_crate(&std::fs::read(&path).unwrap()).unwrap();
        let h = read_file(&path, &mut Vec::new()).unwrap();
        assert_eq!(h.count, CRATE_DTYPES.len() as u64);
        assert!(h.by_dtype.values().all(|&n| n == 8));
    }

    proptest! {
        #[test]
        fn files_the_crate_writes_read_the_same(tensors in specs()) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("w.safetensors");
            cardfill_testkit::write_safetensors_with_crate(&path, &tensors).unwrap();
            agrees_with_the_crate(&std::fs::read(&path).unwrap())?;
        }

        #[test]
        fn mutated_files_are_judged_as_the_crate_judges_them(
            tensors in specs(),
            edits in proptest::collection::vec(
                (any::<proptest::sample::Index>(), prop_oneof![
                    any::<u8>(),
                    proptest::sample::select(b"{}[],:\" 0123456789-.eEnul_FUIBx".to_vec()),
                ]),
                1..4,
            ),
            resize in -3i64..3,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("w.safetensors");
            cardfill_testkit::write_safetensors_with_crate(&path, &tensors).unwrap();
            let mut bytes = std::fs::read(&path).unwrap();
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            for (at, byte) in edits {
                // Mostly inside the JSON header, sometimes in its length.
                let i = at.index(n + 8);
                bytes[i] = byte;
            }
            let len = (bytes.len() as i64 + resize).max(0) as usize;
            bytes.resize(len, 0);
            agrees_with_the_crate(&bytes)?;
        }

        #[test]
        fn the_scanner_walks_as_serde_json_or_gives_up(
            tensors in specs(),
            edits in proptest::collection::vec(
                (any::<proptest::sample::Index>(), proptest::sample::select(
                    b"{}[],:\" \n0123456789-.eEnul_FUIBx\\\x01\xc3".to_vec(),
                )),
                0..3,
            ),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("w.safetensors");
            cardfill_testkit::write_safetensors_with_crate(&path, &tensors).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            let mut header = bytes[8..8 + n].to_vec();
            for (at, byte) in edits {
                let i = at.index(header.len());
                header[i] = byte;
            }
            let serde = walked(&header, false);
            if let Some(fast) = walked(&header, true) {
                prop_assert_eq!(Some(fast), serde);
            }
        }

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
