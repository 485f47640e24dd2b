//! Test support shared by this crate's tests and the binary's (`tests/it/hub.rs` includes it
//! by path): a Hub on 127.0.0.1 that answers as huggingface.co does, and a Hub cache laid out
//! as huggingface_hub lays it out.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

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
    /// Files at `main`.
    pub files: HashMap<String, Vec<u8>>,
    /// Answer every request for this model only after this long.
    pub delay: Option<Duration>,
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
    requests: Vec<Request>,
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

    /// Serves `model` as repository `id`.
    pub fn model(self, id: &str, model: Model) -> Self {
        self.state
            .lock()
            .expect("state")
            .models
            .insert(id.to_owned(), model);
        self
    }

    /// Answers the validator with `status` and `body`.
    pub fn validate(self, status: u16, body: &str) -> Self {
        self.state.lock().expect("state").validate = Some(ValidateAnswer {
            status,
            body: body.to_owned(),
        });
        self
    }

    /// Echoes the `Authorization` header in error answers.
    pub fn echo_auth(self) -> Self {
        self.state.lock().expect("state").echo_auth = true;
        self
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().expect("state").requests.clone()
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

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn json(status: u16, body: serde_json::Value, extra: &[(&str, &str)]) -> Answer {
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    Answer {
        status,
        headers,
        body: body.to_string().into_bytes(),
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    let Some(req) = read_request(&mut conn) else {
        return;
    };
    let (answer, delay) = {
        let mut st = state.lock().expect("state");
        st.requests.push(req.clone());
        route(&st, &req)
    };
    if let Some(d) = delay {
        std::thread::sleep(d);
    }
    let reason = match answer.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", answer.status);
    for (n, v) in &answer.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        answer.body.len()
    ));
    let _ = conn.write_all(head.as_bytes());
    if req.method != "HEAD" {
        let _ = conn.write_all(&answer.body);
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

fn route(st: &State, req: &Request) -> (Answer, Option<Duration>) {
    let path = req.path.split('?').next().unwrap_or_default();
    if req.method == "POST" && path == "/api/validate-yaml" {
        let answer = match &st.validate {
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
                    body: body.into_bytes(),
                }
            }
            None => json(200, serde_json::json!({ "warnings": [] }), &[]),
        };
        return (answer, None);
    }
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let id = rest.split("/revision/").next().unwrap_or_default();
        return match st.models.get(id) {
            Some(m) => {
                let card = m
                    .files
                    .get("README.md")
                    .and_then(|b| card_data(&String::from_utf8_lossy(b)));
                let siblings: Vec<_> = m
                    .files
                    .keys()
                    .map(|f| serde_json::json!({ "rfilename": f }))
                    .collect();
                (
                    json(
                        200,
                        serde_json::json!({
                            "_id": "0123", "id": id, "modelId": id, "sha": m.sha,
                            "private": false, "tags": [], "cardData": card,
                            "siblings": siblings,
                        }),
                        &[],
                    ),
                    m.delay,
                )
            }
            None => (not_found(st, req, "RepoNotFound", "Repository"), None),
        };
    }
    // /{org}/{name}/resolve/{rev}/{file}
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    if let [org, name, "resolve", _rev, file] = parts.as_slice() {
        let id = format!("{org}/{name}");
        return match st.models.get(&id) {
            Some(m) => match m.files.get(*file) {
                Some(bytes) => {
                    let etag = format!("\"{:016x}{:024x}\"", bytes.len(), fnv(bytes));
                    (
                        Answer {
                            status: 200,
                            headers: vec![
                                ("ETag".into(), etag),
                                ("X-Repo-Commit".into(), m.sha.clone()),
                                ("Content-Type".into(), "text/plain".into()),
                            ],
                            body: bytes.clone(),
                        },
                        m.delay,
                    )
                }
                None => (not_found(st, req, "EntryNotFound", "Entry"), m.delay),
            },
            None => (not_found(st, req, "RepoNotFound", "Repository"), None),
        };
    }
    (not_found(st, req, "NotFound", "Route"), None)
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

/// A commit hash for tests.
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
