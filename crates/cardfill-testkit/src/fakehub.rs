//! A Hugging Face Hub on 127.0.0.1 that answers as huggingface.co does, for the endpoints
//! cardfill and hf-hub use, and a Hub cache laid out as huggingface_hub lays it out.
//!
//! Served: model info (`/api/models/{id}[/revision/{rev}]`), the file tree with sizes and LFS
//! metadata (`/api/models/{id}/tree/{rev}`), refs with pull requests, `resolve` with `Range`
//! (HEAD and GET), the upload endpoints (`preupload`, `commit`, with `create_pr`) and the
//! card validator. Faults on demand: a token that may only read, a gated repository (401), a
//! slow answer, a server that ignores `Range` and sends the whole file, commits that fail
//! with 503 a number of times before one succeeds.
//!
//! A model's files are bytes in memory or the files of a directory on disk, read on demand
//! (a sparse checkpoint of the test kit is served without being read whole).
#![allow(clippy::missing_panics_doc)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A commit hash for tests.
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// Files above this size are listed with LFS metadata, as the Hub lists weights.
const LFS_ABOVE: u64 = 10 << 20;

/// One request the fake Hub received.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `HEAD`, `POST`.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A model repository the fake Hub serves.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// The commit of `main`.
    pub sha: String,
    /// Files at `main`, in memory.
    pub files: HashMap<String, Vec<u8>>,
    /// Files at `main` read from this directory (sub-directories included), besides `files`.
    pub disk: Option<PathBuf>,
    /// Answer every request for this model only after this long.
    pub delay: Option<Duration>,
    /// Gated: every request without a token is answered 401.
    pub gated: bool,
}

impl Model {
    /// A model at commit [`SHA`] serving the files of `dir`.
    pub fn from_dir(dir: &Path) -> Self {
        Self {
            sha: SHA.to_owned(),
            disk: Some(dir.to_path_buf()),
            ..Self::default()
        }
    }

    /// Every file: repository path → size.
    fn listing(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        if let Some(dir) = &self.disk {
            walk(dir, "", &mut out);
        }
        for (name, bytes) in &self.files {
            out.insert(name.clone(), bytes.len() as u64);
        }
        out
    }

    /// `len` bytes of `file` from `start` (fewer at its end); `None` when there is no such file.
    fn read(&self, file: &str, start: u64, len: u64) -> Option<Vec<u8>> {
        if let Some(bytes) = self.files.get(file) {
            let s = (start as usize).min(bytes.len());
            let e = (start.saturating_add(len) as usize).min(bytes.len());
            return Some(bytes[s..e].to_vec());
        }
        let dir = self.disk.as_ref()?;
        if file.split('/').any(|p| p == ".." || p.is_empty()) {
            return None;
        }
        let mut f = std::fs::File::open(dir.join(file)).ok()?;
        let size = f.metadata().ok()?.len();
        let mut out = vec![0; len.min(size.saturating_sub(start)) as usize];
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(start)).ok()?;
        f.read_exact(&mut out).ok()?;
        Some(out)
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, u64>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        match entry.metadata() {
            Ok(m) if m.is_dir() => walk(&entry.path(), &format!("{name}/"), out),
            Ok(m) if m.is_file() => {
                out.insert(name, m.len());
            }
            _ => {}
        }
    }
}

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only: a commit is answered 403.
    Read,
    /// Read and write.
    Write,
}

/// One commit the fake Hub accepted: the NDJSON lines of its payload.
#[derive(Clone, Debug)]
pub struct Commit {
    /// `org/name`.
    pub repo: String,
    /// The revision in the URL.
    pub revision: String,
    /// Whether `create_pr=1` was asked.
    pub create_pr: bool,
    /// The payload's lines, parsed.
    pub lines: Vec<serde_json::Value>,
}

impl Commit {
    /// The header line's `summary` (the commit message).
    pub fn summary(&self) -> Option<&str> {
        self.lines
            .iter()
            .find(|l| l["key"] == "header")
            .and_then(|l| l["value"]["summary"].as_str())
    }

    /// The files added inline, path → decoded bytes.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.lines
            .iter()
            .filter(|l| l["key"] == "file")
            .filter_map(|l| {
                let path = l["value"]["path"].as_str()?.to_owned();
                let content = l["value"]["content"].as_str()?;
                Some((path, base64_decode(content)?))
            })
            .collect()
    }
}

/// How the fake Hub answers `POST /api/validate-yaml`: status and JSON body.
#[derive(Clone, Debug)]
pub struct ValidateAnswer {
    /// HTTP status (200 or 400).
    pub status: u16,
    /// The JSON body.
    pub body: String,
}

#[derive(Default)]
struct State {
    models: HashMap<String, Model>,
    validate: Option<ValidateAnswer>,
    /// Put the request's `Authorization` header into error answers, as a careless proxy might.
    echo_auth: bool,
    /// Known tokens; when empty, any token may write.
    tokens: HashMap<String, Access>,
    /// Send whole files whatever `Range` says.
    ignore_range: bool,
    /// Commits still to fail with 503 before one succeeds.
    failing_commits: u32,
    requests: Vec<Request>,
    commits: Vec<Commit>,
    /// Pull requests opened: (repo, number, commit).
    prs: Vec<(String, u64, String)>,
    /// Body bytes written by `resolve` answers.
    served: u64,
}

/// A Hub on 127.0.0.1, one thread per connection, stopped when dropped.
pub struct FakeHub {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHub {
    /// Starts a Hub serving nothing yet.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        Self {
            url,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn with(self, f: impl FnOnce(&mut State)) -> Self {
        f(&mut self.state.lock().expect("state"));
        self
    }

    /// Serves `model` as repository `id`.
    pub fn model(self, id: &str, model: Model) -> Self {
        self.with(|s| {
            s.models.insert(id.to_owned(), model);
        })
    }

    /// Answers the validator with `status` and `body`.
    pub fn validate(self, status: u16, body: &str) -> Self {
        self.with(|s| {
            s.validate = Some(ValidateAnswer {
                status,
                body: body.to_owned(),
            });
        })
    }

    /// Echoes the `Authorization` header in error answers.
    pub fn echo_auth(self) -> Self {
        self.with(|s| s.echo_auth = true)
    }

    /// Knows `token`, with `access`; once a token is known, unknown ones are refused (401).
    pub fn token(self, token: &str, access: Access) -> Self {
        self.with(|s| {
            s.tokens.insert(token.to_owned(), access);
        })
    }

    /// Ignores `Range`: every download sends the whole file.
    pub fn ignore_range(self) -> Self {
        self.with(|s| s.ignore_range = true)
    }

    /// Answers the next `n` commits with 503.
    pub fn failing_commits(self, n: u32) -> Self {
        self.with(|s| s.failing_commits = n)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().expect("state").requests.clone()
    }

    /// The commits accepted so far.
    pub fn commits(&self) -> Vec<Commit> {
        self.state.lock().expect("state").commits.clone()
    }

    /// Body bytes written by file downloads so far (what the Hub sent, not what was asked).
    pub fn served_bytes(&self) -> u64 {
        self.state.lock().expect("state").served
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept loop
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A body: bytes, or a stretch of a model's file sent in chunks.
enum Body {
    Bytes(Vec<u8>),
    File {
        model: Box<Model>,
        file: String,
        start: u64,
        len: u64,
    },
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Answer {
    fn len(&self) -> u64 {
        match &self.body {
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }
}

fn json(status: u16, body: serde_json::Value, extra: &[(&str, &str)]) -> Answer {
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    Answer {
        status,
        headers,
        body: Body::Bytes(body.to_string().into_bytes()),
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    let Some(req) = read_request(&mut conn) else {
        return;
    };
    let (answer, delay) = {
        let mut st = state.lock().expect("state");
        st.requests.push(req.clone());
        route(&mut st, &req)
    };
    if let Some(d) = delay {
        std::thread::sleep(d);
    }
    let reason = match answer.status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", answer.status);
    for (n, v) in &answer.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        answer.len()
    ));
    if conn.write_all(head.as_bytes()).is_err() || req.method == "HEAD" {
        return;
    }
    match answer.body {
        Body::Bytes(bytes) => {
            let _ = conn.write_all(&bytes);
        }
        Body::File {
            model,
            file,
            start,
            len,
        } => {
            // In chunks: a client that stops reading closes the connection and the rest is
            // never sent.
            let mut at = start;
            let end = start + len;
            while at < end {
                let n = (end - at).min(64 << 10);
                let Some(chunk) = model.read(&file, at, n) else {
                    break;
                };
                if chunk.is_empty() || conn.write_all(&chunk).is_err() {
                    break;
                }
                state.lock().expect("state").served += chunk.len() as u64;
                at += chunk.len() as u64;
            }
        }
    }
    let _ = conn.flush();
}

fn not_found(st: &State, req: &Request, code: &str, what: &str) -> Answer {
    let mut message = format!("{what} not found");
    if st.echo_auth
        && let Some(auth) = req.header("authorization")
    {
        message.push_str(&format!(" (request had {auth})"));
    }
    json(
        404,
        serde_json::json!({ "error": message }),
        &[("X-Error-Code", code), ("X-Error-Message", &message)],
    )
}

fn error(status: u16, message: &str) -> Answer {
    json(
        status,
        serde_json::json!({ "error": message }),
        &[("X-Error-Message", message)],
    )
}

/// The token of a request, and what it may do: `Err` with the answer to send when refused.
fn access(st: &State, req: &Request) -> Result<Option<Access>, Answer> {
    let Some(token) = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
    else {
        return Ok(None);
    };
    if st.tokens.is_empty() {
        return Ok(Some(Access::Write));
    }
    match st.tokens.get(token) {
        Some(a) => Ok(Some(*a)),
        None => Err(error(401, "Invalid credentials in Authorization header")),
    }
}

fn route(st: &mut State, req: &Request) -> (Answer, Option<Duration>) {
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    if req.method == "POST" && path == "/api/validate-yaml" {
        return (validate(st, req), None);
    }
    let who = match access(st, req) {
        Ok(a) => a,
        Err(answer) => return (answer, None),
    };
    if let Some(rest) = path.strip_prefix("/api/models/") {
        return api(st, req, rest, query, who);
    }
    // /{org}/{name}/resolve/{rev}/{file...}
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    if let [org, name, "resolve", rev, file] = parts.as_slice() {
        let id = format!("{org}/{name}");
        let Some(m) = st.models.get(&id) else {
            return (not_found(st, req, "RepoNotFound", "Repository"), None);
        };
        if m.gated && who.is_none() {
            return (error(401, "Access to this model is restricted"), m.delay);
        }
        if !revision_known(m, rev) {
            return (not_found(st, req, "RevisionNotFound", "Revision"), m.delay);
        }
        let file = percent_decode(file);
        let Some(&size) = m.listing().get(&file) else {
            return (not_found(st, req, "EntryNotFound", "Entry"), m.delay);
        };
        let mut headers = vec![
            ("ETag".to_owned(), format!("\"{:040x}\"", size)),
            ("X-Repo-Commit".to_owned(), m.sha.clone()),
            ("Content-Type".to_owned(), "application/octet-stream".into()),
            ("Accept-Ranges".to_owned(), "bytes".into()),
        ];
        let range = req
            .header("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok())));
        let (status, start, len) = match range {
            Some((a, b)) if !st.ignore_range && req.method == "GET" => {
                if a >= size {
                    return (error(416, "Range Not Satisfiable"), m.delay);
                }
                let end = b.map_or(size - 1, |b| b.min(size - 1));
                headers.push(("Content-Range".into(), format!("bytes {a}-{end}/{size}")));
                (206, a, end + 1 - a)
            }
            _ => (200, 0, size),
        };
        let delay = m.delay;
        let body = Body::File {
            model: Box::new(m.clone()),
            file,
            start,
            len,
        };
        return (
            Answer {
                status,
                headers,
                body,
            },
            delay,
        );
    }
    (not_found(st, req, "NotFound", "Route"), None)
}

fn validate(st: &State, req: &Request) -> Answer {
    match &st.validate {
        Some(v) => {
            let mut body = v.body.clone();
            if st.echo_auth
                && let Some(auth) = req.header("authorization")
            {
                body = body.replace("AUTH", auth);
            }
            Answer {
                status: v.status,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: Body::Bytes(body.into_bytes()),
            }
        }
        None => json(200, serde_json::json!({ "warnings": [] }), &[]),
    }
}

fn revision_known(m: &Model, rev: &str) -> bool {
    rev == "main" || rev == m.sha || rev.starts_with("refs%2Fpr%2F") || rev.starts_with("refs/pr/")
}

/// `/api/models/{rest}`: info, tree, refs, preupload, commit.
fn api(
    st: &mut State,
    req: &Request,
    rest: &str,
    query: &str,
    who: Option<Access>,
) -> (Answer, Option<Duration>) {
    let segments: Vec<&str> = rest.splitn(4, '/').collect();
    let (id, tail) = match segments.as_slice() {
        [org, name, tail @ ..] => (format!("{org}/{name}"), tail.to_vec()),
        _ => return (not_found(st, req, "RepoNotFound", "Repository"), None),
    };
    let Some(m) = st.models.get(&id).cloned() else {
        return (not_found(st, req, "RepoNotFound", "Repository"), None);
    };
    if m.gated && who.is_none() {
        return (error(401, "Access to this model is restricted"), m.delay);
    }
    let delay = m.delay;
    let answer = match tail.as_slice() {
        [] | ["revision", _] => {
            if let ["revision", rev] = tail.as_slice()
                && !revision_known(&m, rev)
            {
                return (not_found(st, req, "RevisionNotFound", "Revision"), delay);
            }
            let card = m
                .read("README.md", 0, 1 << 20)
                .and_then(|b| card_data(&String::from_utf8_lossy(&b)));
            let siblings: Vec<_> = m
                .listing()
                .keys()
                .map(|f| serde_json::json!({ "rfilename": f }))
                .collect();
            json(
                200,
                serde_json::json!({
                    "_id": "0123", "id": id, "modelId": id, "sha": m.sha,
                    "private": false, "gated": m.gated, "tags": [], "cardData": card,
                    "siblings": siblings,
                }),
                &[],
            )
        }
        ["tree", rev, ..] => {
            if !revision_known(&m, rev) {
                return (not_found(st, req, "RevisionNotFound", "Revision"), delay);
            }
            let recursive = query.split('&').any(|q| q == "recursive=true");
            json(200, tree(&m, recursive), &[])
        }
        ["refs"] => {
            let prs: Vec<_> = st
                .prs
                .iter()
                .filter(|(r, _, _)| *r == id)
                .map(|(_, n, c)| {
                    serde_json::json!({"name": format!("refs/pr/{n}"), "ref": format!("refs/pr/{n}"), "targetCommit": c})
                })
                .collect();
            let with_prs = query.split('&').any(|q| q == "include_prs=1");
            json(
                200,
                serde_json::json!({
                    "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": m.sha}],
                    "tags": [], "converts": [],
                    "pullRequests": if with_prs { prs } else { Vec::new() },
                }),
                &[],
            )
        }
        ["preupload", _] if req.method == "POST" => {
            let body: serde_json::Value =
                serde_json::from_str(&req.body).unwrap_or(serde_json::Value::Null);
            let files: Vec<_> = body["files"]
                .as_array()
                .map(|files| {
                    files
                        .iter()
                        .map(|f| {
                            serde_json::json!({"path": f["path"], "uploadMode": "regular", "shouldIgnore": false})
                        })
                        .collect()
                })
                .unwrap_or_default();
            json(200, serde_json::json!({ "files": files }), &[])
        }
        ["commit", rev] if req.method == "POST" => commit(st, req, &id, rev, query, who),
        _ => not_found(st, req, "NotFound", "Route"),
    };
    (answer, delay)
}

fn tree(m: &Model, recursive: bool) -> serde_json::Value {
    let mut dirs = std::collections::BTreeSet::new();
    let mut entries = Vec::new();
    for (path, size) in m.listing() {
        let mut parts: Vec<&str> = path.split('/').collect();
        parts.pop();
        let mut prefix = String::new();
        for p in parts {
            prefix = if prefix.is_empty() {
                p.to_owned()
            } else {
                format!("{prefix}/{p}")
            };
            dirs.insert(prefix.clone());
        }
        if !recursive && path.contains('/') {
            continue;
        }
        let oid = format!("{:040x}", size ^ 0x5eed);
        let mut entry = serde_json::json!({"type": "file", "oid": oid, "size": size, "path": path});
        if size > LFS_ABOVE {
            entry["lfs"] = serde_json::json!({"oid": format!("{:064x}", size), "size": size, "pointerSize": 134});
        }
        entries.push(entry);
    }
    for d in dirs {
        if recursive || !d.contains('/') {
            entries.push(
                serde_json::json!({"type": "directory", "oid": format!("{:040x}", d.len()), "size": 0, "path": d}),
            );
        }
    }
    serde_json::Value::Array(entries)
}

fn commit(
    st: &mut State,
    req: &Request,
    id: &str,
    rev: &str,
    query: &str,
    who: Option<Access>,
) -> Answer {
    match who {
        None => return error(401, "You must be authenticated to commit"),
        Some(Access::Read) => {
            return error(
                403,
                "You don't have the rights to create a commit on this repo: your token is read-only",
            );
        }
        Some(Access::Write) => {}
    }
    if st.failing_commits > 0 {
        st.failing_commits -= 1;
        return error(503, "Service Unavailable");
    }
    let lines: Vec<serde_json::Value> = req
        .body
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let create_pr = query.split('&').any(|q| q == "create_pr=1");
    let n = st.commits.len() as u64 + 1;
    let oid = format!("{:040x}", 0xc0ffee_u64 + n);
    st.commits.push(Commit {
        repo: id.to_owned(),
        revision: percent_decode(rev),
        create_pr,
        lines,
    });
    let mut answer = serde_json::json!({
        "success": true,
        "commitOid": oid,
        "commitUrl": format!("https://huggingface.co/{id}/commit/{oid}"),
        "commitMessage": "",
    });
    if create_pr {
        let pr = st.prs.iter().filter(|(r, _, _)| r == id).count() as u64 + 1;
        st.prs.push((id.to_owned(), pr, oid.clone()));
        // The Hub names it so (huggingface_hub and huggingface.js read this field).
        answer["pullRequestUrl"] = format!("https://huggingface.co/{id}/discussions/{pr}").into();
    }
    json(200, answer, &[])
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// The card data the Hub derives from a README: its front matter as JSON.
fn card_data(readme: &str) -> Option<serde_json::Value> {
    let rest = readme.strip_prefix("---\n")?;
    let end = rest.find("\n---")?;
    let mut map = serde_json::Map::new();
    for line in rest[..end].lines() {
        if let Some((k, v)) = line.split_once(':')
            && !line.starts_with([' ', '-'])
            && !v.trim().is_empty()
        {
            map.insert(k.trim().into(), v.trim().into());
        }
    }
    Some(serde_json::Value::Object(map))
}

/// A Hub cache directory (`HF_HUB_CACHE`) as huggingface_hub lays it out:
/// `models--org--name/{blobs/<etag>, refs/main, snapshots/<sha>/<file> → ../../blobs/<etag>}`.
pub struct FakeCache {
    home: tempfile::TempDir,
}

impl Default for FakeCache {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeCache {
    /// An empty cache at `HF_HOME/hub`.
    pub fn new() -> Self {
        let home = tempfile::tempdir().expect("temporary HF_HOME");
        std::fs::create_dir_all(home.path().join("hub")).expect("hub cache");
        Self { home }
    }

    /// The cache directory (`HF_HUB_CACHE`).
    pub fn path(&self) -> PathBuf {
        self.home.path().join("hub")
    }

    /// The directory it lies in (`HF_HOME`).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Adds model `id` at commit `sha` with `files` (name, contents); `refs/main` points at it.
    pub fn model(self, id: &str, sha: &str, files: &[(&str, &str)]) -> Self {
        let repo = self.repo_dir(id);
        for (name, contents) in files {
            let etag = format!("{:040x}", fnv(contents.as_bytes()));
            let blob = repo.join("blobs").join(&etag);
            std::fs::create_dir_all(blob.parent().expect("blobs")).expect("blobs dir");
            std::fs::write(&blob, contents).expect("blob");
            let link = repo.join("snapshots").join(sha).join(name);
            std::fs::create_dir_all(link.parent().expect("snapshot")).expect("snapshot dir");
            let depth = name.matches('/').count() + 2;
            let target = format!("{}blobs/{etag}", "../".repeat(depth));
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(target, &link).expect("snapshot symlink");
        }
        std::fs::create_dir_all(repo.join("refs")).expect("refs");
        std::fs::write(repo.join("refs/main"), sha).expect("refs/main");
        self
    }

    /// The directory of model `id` (`models--org--name`).
    pub fn repo_dir(&self, id: &str) -> PathBuf {
        self.path()
            .join(format!("models--{}", id.replace('/', "--")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
    }

    fn get(url: &str, range: &str) -> String {
        let mut c = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
        write!(
            c,
            "GET /o/m/resolve/main/a.bin HTTP/1.1\r\nRange: {range}\r\n\r\n"
        )
        .unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn ranges_are_served_and_ignored_on_demand() {
        let model = Model {
            sha: SHA.into(),
            files: [("a.bin".to_owned(), (0u8..=255).collect())].into(),
            ..Model::default()
        };
        let hub = FakeHub::start().model("o/m", model.clone());
        let partial = get(&hub.url, "bytes=0-7");
        assert!(partial.starts_with("HTTP/1.1 206"), "{partial}");
        assert!(partial.contains("Content-Length: 8"), "{partial}");
        let hub = FakeHub::start().model("o/m", model).ignore_range();
        let whole = get(&hub.url, "bytes=0-7");
        assert!(whole.contains("Content-Length: 256"), "{whole}");
    }
}
