//! A model already on the Hub, read without its weights (`fill --from-hub`).
//!
//! [`mirror`] lays out a stand-in of the repository in a local directory, through hf-hub's
//! client only: the README, configs and other small JSON files whole; each safetensors file as
//! its 8-byte length and JSON header, fetched with HTTP range requests (the first 8 bytes, then
//! the header, as the Hub's own parser does) and extended to its true size as a sparse file;
//! each GGUF file as the header region it needs, read in chunks while it is parsed. Pickled
//! weights (`.bin`, `.pt`, ...) are never downloaded: they are listed with the sizes the Hub's
//! file listing gives. The checkpoint and config collectors then run on the stand-in as on any
//! directory, and [`Mirror::relocate`] names the Hub file and commit in every source.
//!
//! A server that ignores `Range` and sends whole files is read only as far as the header: the
//! rest of the answer is never read.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use cardfill_facts::{Facts, Source, paths};
use futures::StreamExt;
use hf_hub::HFError;
use hf_hub::repository::RepoTreeEntry;

use crate::client::{Hub, Net};
use crate::{HubError, HubOptions};

/// Files fetched whole are at most this long (a larger one is skipped with a warning).
const WHOLE_CAP: u64 = 4 << 20;
/// A GGUF header region larger than this is not read.
const GGUF_CAP: u64 = 32 << 20;
/// Chunk of a GGUF header read at once.
const GGUF_CHUNK: u64 = 256 << 10;
/// Downloads in flight at once.
const PARALLEL: usize = 8;

/// How a file of the repository was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// Downloaded whole (configs, the README).
    Whole,
    /// Only its header, by range requests: this many bytes.
    Header(u64),
    /// Not downloaded (pickled weights, files too large to fetch whole).
    Not,
}

/// One file of the repository.
#[derive(Clone, Debug)]
pub struct RemoteFile {
    /// Path in the repository.
    pub path: String,
    /// Size, from the Hub's file listing.
    pub size: u64,
    /// How it was read.
    pub fetched: Fetched,
}

/// What [`mirror`] read of a repository.
#[derive(Debug)]
pub struct Mirror {
    /// `org/name`.
    pub repo: String,
    /// The commit every file was read at.
    pub sha: String,
    /// The endpoint asked.
    pub endpoint: String,
    /// The files considered, sorted by path.
    pub files: Vec<RemoteFile>,
    /// Body bytes received from the Hub.
    pub bytes: u64,
    /// HTTP requests made (hf-hub asks `HEAD` before each download).
    pub requests: u64,
    /// The repository's README, when it has one.
    pub readme: Option<String>,
    /// Problems met that did not stop the mirror.
    pub warnings: Vec<cardfill_facts::Warning>,
}

/// What to do with a file of the repository, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    Whole,
    Safetensors,
    Gguf,
    /// Weights in a format cardfill reads only whole: listed, not downloaded.
    Weights,
    Skip,
}

fn plan(path: &str) -> Plan {
    // A listing is input like any other: no way out of the stand-in directory.
    if path
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == ".." || p.contains(['\\', '\0']))
    {
        return Plan::Skip;
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    let depth = path.matches('/').count();
    if depth > 1 {
        return Plan::Skip;
    }
    if name.ends_with(".safetensors") {
        return Plan::Safetensors;
    }
    if name.ends_with(".gguf") {
        return Plan::Gguf;
    }
    if name == "training_args.bin" {
        return Plan::Whole;
    }
    let weights = [
        ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".pkl", ".npz", ".ot",
    ];
    if weights.iter().any(|e| name.ends_with(e)) {
        return Plan::Weights;
    }
    let unneeded = ["tokenizer.json", "vocab.json", "merges.txt"];
    if unneeded.contains(&name) {
        return Plan::Skip;
    }
    if (depth == 0 && name == "README.md")
        || name.ends_with(".json")
        || name.ends_with(".yaml")
        || name.ends_with(".yml")
    {
        return Plan::Whole;
    }
    Plan::Skip
}

/// Reads repository `repo` at `revision` (default `main`) into `into`, an empty directory:
/// small files whole, weight headers only (see the module documentation).
///
/// `Err` when the repository, the revision or its file listing cannot be read; a file that
/// cannot be read is a warning in the result.
pub fn mirror(
    repo: &str,
    revision: Option<&str>,
    into: &Path,
    options: &HubOptions,
) -> Result<Mirror, HubError> {
    let options = HubOptions {
        online: true,
        ..options.clone()
    };
    if !options.network_allowed() {
        return Err(HubError::Offline {
            endpoint: crate::client::endpoint(&options),
        });
    }
    let hub = Hub::new(&options)?;
    let fail = |message: String| HubError::Api {
        endpoint: hub.endpoint().to_owned(),
        message: hub.redact(&message),
    };
    let net = hub.net().map_err(fail)?;
    let fetch = Fetcher {
        net,
        repo: net.model(repo),
        id: repo,
        sha: String::new(),
        bytes: Cell::new(0),
        requests: Cell::new(0),
    };
    let sha = fetch.revision(revision).map_err(fail)?;
    let fetch = Fetcher { sha, ..fetch };
    let listing = fetch.listing().map_err(fail)?;

    let mut warnings = Vec::new();
    let mut files = Vec::new();
    let mut readme = None;
    let mut warn = |code: &str, message: String| {
        warnings.push(cardfill_facts::Warning {
            code: code.to_owned(),
            message: hub.redact(&message),
        });
    };
    let shown = |path: &str| format!("hf://{repo}@{}/{path}", short(&fetch.sha));

    // Small files whole, then safetensors headers, in parallel.
    let wanted: Vec<(&String, u64, Plan)> = listing
        .iter()
        .map(|(p, &s)| (p, s, plan(p)))
        .filter(|(_, _, p)| *p != Plan::Skip)
        .collect();
    let parallel: Vec<(&String, u64, Plan)> = wanted
        .iter()
        .copied()
        .filter(|(_, size, p)| *p == Plan::Safetensors || (*p == Plan::Whole && *size <= WHOLE_CAP))
        .collect();
    let results = net.runtime.block_on(
        futures::stream::iter(parallel.iter().map(|&(path, size, p)| {
            let fetch = &fetch;
            async move {
                let read = match p {
                    Plan::Safetensors => fetch.safetensors_header(path, size).await,
                    _ => fetch.range(path, 0, size, size).await,
                };
                (path.clone(), read)
            }
        }))
        .buffer_unordered(PARALLEL)
        .collect::<BTreeMap<String, Result<Vec<u8>, String>>>(),
    );

    for (path, size, p) in wanted {
        let fetched = match p {
            // The card to fill: without it, a push would replace the owner's text.
            Plan::Whole if path == "README.md" && results.get(path).is_none_or(Result::is_err) => {
                let why = match results.get(path) {
                    Some(Err(e)) => e.clone(),
                    _ => format!(
                        "it is {}, more than the {} read whole",
                        cardfill_facts::human_bytes(size),
                        cardfill_facts::human_bytes(WHOLE_CAP)
                    ),
                };
                return Err(fail(format!(
                    "cannot read `{}`, the card to fill: {why}",
                    shown(path)
                )));
            }
            Plan::Whole if size > WHOLE_CAP => {
                warn(
                    "hub-file-skipped",
                    format!(
                        "`{}` is {}: larger than the {} read whole; not read",
                        shown(path),
                        cardfill_facts::human_bytes(size),
                        cardfill_facts::human_bytes(WHOLE_CAP)
                    ),
                );
                Fetched::Not
            }
            Plan::Whole | Plan::Safetensors => match results.get(path.as_str()) {
                Some(Ok(bytes)) => {
                    if let Err(e) = stub(into, path, bytes, &[], size) {
                        return Err(fail(format!(
                            "cannot write the stand-in of `{path}` in `{}`: {e}",
                            into.display()
                        )));
                    }
                    if path == "README.md" {
                        readme = Some(String::from_utf8(bytes.clone()).map_err(|e| {
                            fail(format!(
                                "`{}` is not UTF-8 text (invalid byte at offset {}): it cannot be filled",
                                shown(path),
                                e.utf8_error().valid_up_to()
                            ))
                        })?);
                    }
                    if p == Plan::Whole {
                        Fetched::Whole
                    } else {
                        Fetched::Header(bytes.len() as u64)
                    }
                }
                Some(Err(e)) => {
                    warn(
                        "hub-file-unread",
                        format!("cannot read `{}`: {e}", shown(path)),
                    );
                    Fetched::Not
                }
                None => Fetched::Not,
            },
            Plan::Gguf => match fetch.gguf(path, size) {
                Ok(chunks) => {
                    let n = chunks.iter().map(|(_, c)| c.len() as u64).sum();
                    if let Err(e) = stub(into, path, &[], &chunks, size) {
                        return Err(fail(format!(
                            "cannot write the stand-in of `{path}` in `{}`: {e}",
                            into.display()
                        )));
                    }
                    Fetched::Header(n)
                }
                Err(e) => {
                    warn(
                        "hub-file-unread",
                        format!("cannot read the header of `{}`: {e}", shown(path)),
                    );
                    Fetched::Not
                }
            },
            Plan::Weights | Plan::Skip => Fetched::Not,
        };
        files.push(RemoteFile {
            path: path.clone(),
            size,
            fetched,
        });
    }
    Ok(Mirror {
        repo: repo.to_owned(),
        sha: fetch.sha.clone(),
        endpoint: hub.endpoint().to_owned(),
        files,
        bytes: fetch.bytes.get(),
        requests: fetch.requests.get(),
        readme,
        warnings,
    })
}

/// The first 7 characters of a commit.
fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// Writes the stand-in of `path` under `into`: `head` from byte 0 and `chunks` at their
/// offsets, the file then extended to `size` (sparse: nothing is written past the header).
fn stub(
    into: &Path,
    path: &str,
    head: &[u8],
    chunks: &[(u64, Vec<u8>)],
    size: u64,
) -> std::io::Result<()> {
    let target: PathBuf = into.join(path);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)?;
    f.write_all(head)?;
    for (at, chunk) in chunks {
        f.seek(SeekFrom::Start(*at))?;
        f.write_all(chunk)?;
    }
    f.set_len(size.max(head.len() as u64))?;
    Ok(())
}

/// Reads files of one repository at one commit, counting what it receives.
struct Fetcher<'a> {
    net: &'a Net,
    repo: hf_hub::HFRepository<hf_hub::RepoTypeModel>,
    id: &'a str,
    sha: String,
    bytes: Cell<u64>,
    requests: Cell<u64>,
}

impl Fetcher<'_> {
    /// One line for an hf-hub error, saying what is missing for 401, 403 and 404.
    fn describe(&self, e: &HFError, what: &str) -> String {
        match e {
            HFError::AuthRequired { .. } => format!(
                "`{}` needs a token (HTTP 401: gated or private): set HF_TOKEN to a token with access",
                self.id
            ),
            HFError::Forbidden { .. } => format!(
                "the token has no access to `{}` (HTTP 403): request access on its page, or use another token",
                self.id
            ),
            HFError::RepoNotFound { .. } => format!(
                "no repository `{}` (HTTP 404): check the name, or set HF_TOKEN for a private one",
                self.id
            ),
            HFError::RevisionNotFound { .. } => {
                format!("`{}` has no revision {what} (HTTP 404)", self.id)
            }
            other => self.net.describe(other),
        }
    }

    /// The commit `revision` (default `main`) points at.
    fn revision(&self, revision: Option<&str>) -> Result<String, String> {
        let asked = revision.unwrap_or("main");
        self.requests.set(self.requests.get() + 1);
        let info = self.net.run(async {
            self.repo
                .info()
                .maybe_revision(revision.map(str::to_owned))
                .send()
                .await
                .map_err(|e| self.describe(&e, &format!("`{asked}`")))
        })?;
        self.count_json(&info);
        info.sha
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("the Hub named no commit for `{}` at `{asked}`", self.id))
    }

    /// Every file of the commit with its size.
    fn listing(&self) -> Result<BTreeMap<String, u64>, String> {
        self.requests.set(self.requests.get() + 1);
        let entries: Vec<RepoTreeEntry> = self.net.run(async {
            let stream = self
                .repo
                .list_tree()
                .revision(self.sha.clone())
                .recursive(true)
                .send()
                .map_err(|e| self.describe(&e, "listed"))?;
            futures::pin_mut!(stream);
            let mut out = Vec::new();
            while let Some(entry) = stream.next().await {
                out.push(entry.map_err(|e| self.describe(&e, "listed"))?);
            }
            Ok(out)
        })?;
        self.count_json(&entries);
        Ok(entries
            .into_iter()
            .filter_map(|e| match e {
                RepoTreeEntry::File { path, size, .. } => Some((path, size)),
                RepoTreeEntry::Directory { .. } => None,
            })
            .collect())
    }

    /// Counts a JSON answer, as parsed.
    fn count_json<T: serde::Serialize>(&self, value: &T) {
        let n = serde_json::to_vec(value).map_or(0, |v| v.len() as u64);
        self.bytes.set(self.bytes.get() + n);
    }

    /// `len` bytes of `path` from `start` (`size` long). A server that ignores `Range` sends
    /// the file from its first byte: the bytes before `start` are skipped, and nothing after
    /// the range is read.
    async fn range(&self, path: &str, start: u64, len: u64, size: u64) -> Result<Vec<u8>, String> {
        if len == 0 {
            return Ok(Vec::new());
        }
        // hf-hub asks HEAD (for a xet hash and the size), then GET.
        self.requests.set(self.requests.get() + 2);
        let open = self
            .repo
            .download_file_stream()
            .filename(path)
            .revision(self.sha.clone())
            .range(start..start + len)
            .send();
        let deadline = self.net.deadline;
        let read = async {
            let (length, mut stream) = open.await.map_err(|e| self.describe(&e, "read"))?;
            let whole = start > 0 && length == Some(size) && size != len;
            let mut skip = if whole { start } else { 0 };
            if skip > WHOLE_CAP {
                return Err(format!(
                    "the Hub ignored the byte range and would send all {} of it",
                    cardfill_facts::human_bytes(size)
                ));
            }
            let want = len as usize;
            let mut out = Vec::with_capacity(want.min(WHOLE_CAP as usize));
            while out.len() < want {
                let Some(chunk) = stream.next().await else {
                    break;
                };
                let chunk = chunk.map_err(|e| self.describe(&e, "read"))?;
                self.bytes.set(self.bytes.get() + chunk.len() as u64);
                let mut c = &chunk[..];
                let n = (skip as usize).min(c.len());
                c = &c[n..];
                skip -= n as u64;
                let take = (want - out.len()).min(c.len());
                out.extend_from_slice(&c[..take]);
            }
            // Dropping the stream closes the connection: the rest of a whole file is never read.
            drop(stream);
            if out.len() < want {
                return Err(format!(
                    "the Hub sent {} of the {want} bytes asked",
                    out.len()
                ));
            }
            Ok(out)
        };
        tokio::time::timeout(deadline, read)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer within {} s (timed out)",
                    deadline.as_secs_f64()
                ))
            })
    }

    /// The length prefix and JSON header of a safetensors file. A length the format refuses
    /// gives the prefix alone: the checkpoint reader then says what is wrong.
    async fn safetensors_header(&self, path: &str, size: u64) -> Result<Vec<u8>, String> {
        let mut head = self.range(path, 0, size.min(8), size).await?;
        if head.len() < 8 {
            return Ok(head);
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(&head);
        let n = u64::from_le_bytes(n);
        let max = cardfill_checkpoint::safetensors::MAX_HEADER_BYTES;
        if n == 0 || n > max || n > size - 8 {
            return Ok(head);
        }
        head.extend(self.range(path, 8, n, size).await?);
        Ok(head)
    }

    /// The header region of a GGUF file: parsed from chunks fetched on demand, which are
    /// returned with their offsets.
    fn gguf(&self, path: &str, size: u64) -> Result<Vec<(u64, Vec<u8>)>, String> {
        let mut reader = RemoteReader {
            fetch: self,
            path,
            size,
            pos: 0,
            chunks: BTreeMap::new(),
            error: None,
        };
        // Parsed only to learn how far the header region goes: a header the parser refuses
        // is still handed over, and the checkpoint reader then says why.
        let _ = cardfill_checkpoint::gguf::parse(&mut reader, size);
        if let Some(e) = reader.error {
            return Err(e);
        }
        Ok(reader
            .chunks
            .into_iter()
            .map(|(i, c)| (i * GGUF_CHUNK, c))
            .collect())
    }
}

/// A remote file read in chunks, for the GGUF parser.
struct RemoteReader<'a, 'b> {
    fetch: &'a Fetcher<'b>,
    path: &'a str,
    size: u64,
    pos: u64,
    /// Chunk index → bytes.
    chunks: BTreeMap<u64, Vec<u8>>,
    /// Why reading stopped (network, or the header region is too large).
    error: Option<String>,
}

impl Read for RemoteReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let index = self.pos / GGUF_CHUNK;
        if !self.chunks.contains_key(&index) {
            let fetched: u64 = self.chunks.values().map(|c| c.len() as u64).sum();
            let start = index * GGUF_CHUNK;
            let len = GGUF_CHUNK.min(self.size - start);
            let result = if fetched + len > GGUF_CAP {
                Err(format!(
                    "its header region is larger than {}: not read",
                    cardfill_facts::human_bytes(GGUF_CAP)
                ))
            } else {
                self.fetch
                    .net
                    .runtime
                    .block_on(self.fetch.range(self.path, start, len, self.size))
            };
            match result {
                Ok(bytes) => {
                    self.chunks.insert(index, bytes);
                }
                Err(e) => {
                    self.error = Some(e.clone());
                    return Err(std::io::Error::other(e));
                }
            }
        }
        let chunk = &self.chunks[&index];
        let offset = (self.pos - index * GGUF_CHUNK) as usize;
        let n = buf.len().min(chunk.len().saturating_sub(offset));
        buf[..n].copy_from_slice(&chunk[offset..offset + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RemoteReader<'_, '_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let next = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
        };
        self.pos = next.ok_or_else(|| std::io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}

impl Mirror {
    /// The URL of `path` at the mirrored commit.
    pub fn file_url(&self, path: &str) -> String {
        format!("{}/{}/blob/{}/{path}", self.endpoint, self.repo, self.sha)
    }

    /// The `hub.*` facts: repository, commit, bytes and requests, weights not downloaded;
    /// and the mirror's warnings, with one when no weights could be read at all.
    pub fn facts(&self) -> Facts {
        let mut facts = Facts::new();
        let info = Source::network(
            format!(
                "{}/api/models/{}/revision/{}",
                self.endpoint, self.repo, self.sha
            ),
            "model info",
        );
        facts.set(paths::HUB_REPO, self.repo.as_str(), info.clone());
        facts.set(paths::HUB_REVISION, self.sha.as_str(), info);
        let counted = Source::derived("bodies of the Hub's answers (JSON answers as parsed)");
        facts.set(paths::HUB_BYTES_FETCHED, self.bytes, counted.clone());
        facts.set(paths::HUB_REQUESTS, self.requests, counted);
        let not: Vec<&RemoteFile> = self
            .files
            .iter()
            .filter(|f| plan(&f.path) == Plan::Weights)
            .collect();
        if !not.is_empty() {
            let list: Vec<_> = not
                .iter()
                .map(|f| serde_json::json!({ "path": f.path, "bytes": f.size }))
                .collect();
            facts.set(
                paths::HUB_NOT_FETCHED,
                list,
                Source::network(
                    format!(
                        "{}/api/models/{}/tree/{}",
                        self.endpoint, self.repo, self.sha
                    ),
                    "file listing (sizes); pickled weights are not downloaded",
                ),
            );
            let read = self
                .files
                .iter()
                .any(|f| matches!(f.fetched, Fetched::Header(_)));
            if !read {
                let total: u64 = not.iter().map(|f| f.size).sum();
                facts.warn(
                    "weights-not-fetched",
                    format!(
                        "`{}`{} ({}) on the Hub: pickled weights are not downloaded, so no parameter count; a safetensors copy would be read from its header",
                        not[0].path,
                        match not.len() {
                            1 => String::new(),
                            n => format!(" and {} more", n - 1),
                        },
                        cardfill_facts::human_bytes(total)
                    ),
                );
            }
        }
        for w in &self.warnings {
            facts.warn(&w.code, w.message.clone());
        }
        facts
    }

    /// Points the facts collected from the stand-in at `staging` to the Hub: a file source
    /// becomes the file's URL at the commit, a message's stand-in path its `hf://` path.
    pub fn relocate(&self, facts: &mut Facts, staging: &Path) {
        let read: BTreeMap<&str, Fetched> = self
            .files
            .iter()
            .filter(|f| f.fetched != Fetched::Not)
            .map(|f| (f.path.as_str(), f.fetched))
            .collect();
        let prefix = format!("{}/", staging.display());
        let hf = format!("hf://{}@{}/", self.repo, short(&self.sha));
        facts.rewrite(
            |source| {
                let Source::File { path, method } = source else {
                    return;
                };
                let rel = path.strip_prefix(&prefix).unwrap_or(path).to_owned();
                // A list of files (`a, b, ...`) is named by its first.
                let first = rel.split(", ").next().unwrap_or(&rel);
                let how = match read.get(first) {
                    Some(Fetched::Header(_)) => "header by HTTP range",
                    Some(_) if first.ends_with(".safetensors.index.json") => {
                        "index downloaded, shard headers by HTTP range"
                    }
                    Some(_) => "downloaded",
                    None => return,
                };
                *source = Source::network(self.file_url(&rel), format!("{method} ({how})"));
            },
            |message| {
                if message.contains(&prefix) {
                    *message = message.replace(&prefix, &hf);
                }
                let bare = prefix.trim_end_matches('/');
                if message.contains(bare) {
                    *message = message.replace(bare, hf.trim_end_matches('/'));
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_planned_by_name() {
        assert_eq!(plan("model-00001-of-00002.safetensors"), Plan::Safetensors);
        assert_eq!(
            plan("unet/diffusion_pytorch_model.safetensors"),
            Plan::Safetensors
        );
        assert_eq!(plan("pytorch_model.bin"), Plan::Weights);
        assert_eq!(plan("training_args.bin"), Plan::Whole);
        assert_eq!(plan("config.json"), Plan::Whole);
        assert_eq!(plan("README.md"), Plan::Whole);
        assert_eq!(plan("docs/README.md"), Plan::Skip);
        assert_eq!(plan("tokenizer.json"), Plan::Skip);
        assert_eq!(plan("a/b/config.json"), Plan::Skip);
        assert_eq!(plan("model.Q4_K_M.gguf"), Plan::Gguf);
        for hostile in [
            "../config.json",
            "/etc/x.json",
            "a//b.json",
            "./config.json",
            "a\\..\\b.json",
        ] {
            assert_eq!(plan(hostile), Plan::Skip, "{hostile}");
        }
    }
}
