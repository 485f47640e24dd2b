//! The connection to the Hub: an hf-hub client on a small current-thread runtime, the token
//! (never shown: every message passes through [`Hub::redact`]) and the online validator.

use std::path::PathBuf;
use std::time::Duration;

use hf_hub::{HFClient, HFError};
use serde_json::Value;

use crate::{HubError, HubOptions};

/// How long one request may take unless [`HubOptions::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Whether an environment variable holds a true value the way huggingface_hub reads it
/// (`1`, `ON`, `YES`, `TRUE`, any case).
pub(crate) fn env_true(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_uppercase().as_str(),
            "1" | "ON" | "YES" | "TRUE"
        )
    })
}

/// The Hub endpoint: the option, `HF_ENDPOINT`, or `https://huggingface.co`; no trailing `/`.
pub(crate) fn endpoint(options: &HubOptions) -> String {
    options
        .endpoint
        .clone()
        .or_else(|| {
            std::env::var("HF_ENDPOINT")
                .ok()
                .filter(|e| !e.trim().is_empty())
        })
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// `HF_HOME`, else `XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
fn hf_home() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(home) = var("HF_HOME") {
        return PathBuf::from(home);
    }
    if let Some(xdg) = var("XDG_CACHE_HOME") {
        return PathBuf::from(xdg).join("huggingface");
    }
    PathBuf::from(var("HOME").unwrap_or_else(|| "/tmp".into()))
        .join(".cache")
        .join("huggingface")
}

/// The Hub cache: the option, `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `HF_HOME/hub`,
/// `XDG_CACHE_HOME/huggingface/hub` or `~/.cache/huggingface/hub` (huggingface_hub's order).
pub(crate) fn cache_dir(options: &HubOptions) -> PathBuf {
    if let Some(dir) = &options.cache_dir {
        return dir.clone();
    }
    ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"]
        .iter()
        .find_map(|v| std::env::var_os(v).filter(|v| !v.is_empty()))
        .map(PathBuf::from)
        .unwrap_or_else(|| hf_home().join("hub"))
}

/// The token as huggingface_hub finds it: `HF_TOKEN`, the file at `HF_TOKEN_PATH`, or
/// `HF_HOME/token`; none with `HF_HUB_DISABLE_IMPLICIT_TOKEN`.
fn token() -> Option<String> {
    if std::env::var("HF_HUB_DISABLE_IMPLICIT_TOKEN").is_ok_and(|v| !v.is_empty()) {
        return None;
    }
    if let Ok(t) = std::env::var("HF_TOKEN")
        && !t.trim().is_empty()
    {
        return Some(t.trim().to_owned());
    }
    let file = std::env::var("HF_TOKEN_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|_| hf_home().join("token"));
    cardfill_facts::read::read_to_string(&file, cardfill_facts::read::SMALL_CAP)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The network half of [`Hub`]: an hf-hub client on a current-thread runtime.
pub(crate) struct Net {
    pub(crate) runtime: tokio::runtime::Runtime,
    client: HFClient,
    http: reqwest::Client,
    /// Limit for one request.
    timeout: Duration,
    /// Bound on one whole operation (a request and its retry).
    pub(crate) deadline: Duration,
}

/// The Hub as far as it is known without the network: the endpoint, the local cache and the
/// token. A binary that reads the Hub only through this links no HTTP client.
pub(crate) struct Cache {
    cache_dir: PathBuf,
    token: Option<String>,
    endpoint: String,
}

impl Cache {
    /// The endpoint and cache `options` name; the token only when the network is allowed.
    pub(crate) fn new(options: &HubOptions) -> Self {
        Self {
            cache_dir: cache_dir(options),
            token: options.network_allowed().then(token).flatten(),
            endpoint: endpoint(options),
        }
    }

    /// The endpoint asked.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether a token was found (never shown).
    pub(crate) fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The local cache directory.
    pub(crate) fn cache_dir(&self) -> &std::path::Path {
        &self.cache_dir
    }

    /// `text` with the token replaced by `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        redact_token(self.token.as_deref(), text)
    }

    /// The cached copy of `file` of model `id`, as hf-hub resolves it with
    /// `local_files_only`: `refs/main` names the snapshot; without `refs/main`, the only
    /// snapshot. Never touches the network.
    pub(crate) fn cached_file(&self, id: &str, file: &str) -> Option<PathBuf> {
        let repo = self
            .cache_dir
            .join(format!("models--{}", id.replace('/', "--")));
        let snapshot = match cardfill_facts::read::read_to_string(
            &repo.join("refs").join("main"),
            cardfill_facts::read::SMALL_CAP,
        ) {
            Ok(sha) => repo.join("snapshots").join(sha.trim()),
            Err(_) => {
                let mut dirs = std::fs::read_dir(repo.join("snapshots"))
                    .ok()?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_dir());
                let only = dirs.next()?;
                if dirs.next().is_some() {
                    return None;
                }
                only
            }
        };
        let path = snapshot.join(file);
        path.is_file().then_some(path)
    }

    /// The URL a model file is downloaded from.
    pub(crate) fn file_url(&self, id: &str, file: &str) -> String {
        format!("{}/{id}/resolve/main/{file}", self.endpoint)
    }
}

/// How the base-model lookup reads the Hub: the cache always ([`Lookup::cache`]), the network
/// through [`Hub`] only. Generic code over it links the HTTP client only where a [`Hub`] is
/// passed.
pub(crate) trait Lookup {
    /// The offline half.
    fn cache(&self) -> &Cache;
    /// See [`Hub::model_info`].
    fn model_info(&self, id: &str) -> Result<Option<Value>, String>;
    /// See [`Hub::download`].
    fn download(&self, id: &str, file: &str) -> Result<Option<Vec<u8>>, String>;
}

/// Why [`Cache`] answers no network question.
const NO_NETWORK: &str = "network use is not allowed (offline)";

impl Lookup for Cache {
    fn cache(&self) -> &Cache {
        self
    }

    fn model_info(&self, _id: &str) -> Result<Option<Value>, String> {
        Err(NO_NETWORK.to_owned())
    }

    fn download(&self, _id: &str, _file: &str) -> Result<Option<Vec<u8>>, String> {
        Err(NO_NETWORK.to_owned())
    }
}

impl Lookup for Hub {
    fn cache(&self) -> &Cache {
        &self.cache
    }

    fn model_info(&self, id: &str) -> Result<Option<Value>, String> {
        Hub::model_info(self, id)
    }

    fn download(&self, id: &str, file: &str) -> Result<Option<Vec<u8>>, String> {
        Hub::download(self, id, file)
    }
}

/// The Hub for one collection, validation, read or push: the cache always, the network only
/// when allowed (offline, no HTTP client is even built: the default path stays instant).
pub(crate) struct Hub {
    cache: Cache,
    net: Option<Net>,
}

impl std::ops::Deref for Hub {
    type Target = Cache;

    fn deref(&self) -> &Cache {
        &self.cache
    }
}

impl Hub {
    /// Builds the Hub; the network part only when `options` allow it. Nothing is sent until a
    /// method is called.
    pub(crate) fn new(options: &HubOptions) -> Result<Self, HubError> {
        Self::with_retries(options, 1)
    }

    /// [`Hub::new`] whose requests are tried up to `attempts` times, with exponential backoff
    /// on connection failures and transient statuses (hf-hub's retry).
    pub(crate) fn with_retries(options: &HubOptions, attempts: usize) -> Result<Self, HubError> {
        let cache = Cache::new(options);
        let net = if options.network_allowed() {
            Some(Net::new(
                options,
                &cache.endpoint,
                &cache.cache_dir,
                cache.token.as_deref(),
                attempts,
            )?)
        } else {
            None
        };
        Ok(Self { cache, net })
    }

    pub(crate) fn net(&self) -> Result<&Net, String> {
        self.net.as_ref().ok_or_else(|| NO_NETWORK.to_owned())
    }

    /// Whether model `id` exists on the Hub: `Ok(Some(card_data))` when it does,
    /// `Ok(None)` on 404, `Err` with a redacted message otherwise.
    pub(crate) fn model_info(&self, id: &str) -> Result<Option<Value>, String> {
        let net = self.net()?;
        let repo = net.model(id);
        let result = net.run(async {
            match repo.info().send().await {
                Ok(info) => Ok(Some(info.card_data.unwrap_or(Value::Null))),
                Err(HFError::RepoNotFound { .. }) => Ok(None),
                Err(e) => Err(net.describe(&e)),
            }
        });
        result.map_err(|m| self.redact(&m))
    }

    /// `file` of model `id` at `main`, downloaded without touching the cache.
    pub(crate) fn download(&self, id: &str, file: &str) -> Result<Option<Vec<u8>>, String> {
        let net = self.net()?;
        let repo = net.model(id);
        let result = net.run(async {
            match repo.download_file_to_bytes().filename(file).send().await {
                Ok(bytes) => Ok(Some(bytes.to_vec())),
                Err(HFError::EntryNotFound { .. } | HFError::RepoNotFound { .. }) => Ok(None),
                Err(e) => Err(net.describe(&e)),
            }
        });
        result.map_err(|m| self.redact(&m))
    }

    /// POSTs `card` to `{endpoint}/api/validate-yaml` as huggingface_hub does before an
    /// upload; returns the Hub's errors and warnings.
    pub(crate) fn validate_yaml(&self, card: &str) -> Result<OnlineReport, HubError> {
        let url = format!("{}/api/validate-yaml", self.endpoint);
        let fail = |message: String| HubError::Api {
            endpoint: url.clone(),
            message: self.redact(&message),
        };
        let net = self.net().map_err(fail)?;
        let mut request = net
            .http
            .post(&url)
            .json(&serde_json::json!({ "content": card, "repoType": "model" }));
        if let Some(t) = &self.token {
            request = request.bearer_auth(t);
        }
        let (status, body) = net
            .run(async {
                let response = request.send().await.map_err(|e| {
                    let text = error_chain(&e);
                    unreachable(&text).unwrap_or(text)
                })?;
                let status = response.status();
                let body = response.text().await.map_err(|e| error_chain(&e))?;
                Ok((status, body))
            })
            .map_err(fail)?;
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let messages = |key: &str| -> Vec<String> {
            json.get(key)
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|m| m.get("message").and_then(Value::as_str))
                        .map(|m| self.redact(m))
                        .collect()
                })
                .unwrap_or_default()
        };
        let report = OnlineReport {
            errors: messages("errors"),
            warnings: messages("warnings"),
        };
        if status.is_success() || (status.as_u16() == 400 && !report.errors.is_empty()) {
            Ok(report)
        } else if status.as_u16() == 400 {
            Ok(OnlineReport {
                errors: vec![self.redact(body.trim())],
                ..report
            })
        } else {
            Err(fail(format!("answered HTTP {status}")))
        }
    }
}

impl Net {
    fn new(
        options: &HubOptions,
        endpoint: &str,
        cache_dir: &std::path::Path,
        token: Option<&str>,
        attempts: usize,
    ) -> Result<Self, HubError> {
        let fail = |message: String| HubError::Client {
            endpoint: endpoint.to_owned(),
            message: redact_token(token, &message),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the network runtime: {e}")))?;
        // huggingface_hub's variable for a download's limit, in seconds.
        let timeout = options
            .timeout
            .or_else(|| {
                std::env::var("HF_HUB_DOWNLOAD_TIMEOUT")
                    .ok()
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(Duration::from_secs_f64)
            })
            .unwrap_or(DEFAULT_TIMEOUT);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("cardfill/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| fail(format!("cannot build the HTTP client: {e}")))?;
        let mut builder = HFClient::builder()
            .endpoint(endpoint)
            .cache_dir(cache_dir)
            .client(http.clone())
            .retry_max_attempts(attempts);
        if let Some(t) = token {
            builder = builder.token(t);
        }
        let client = builder.build().map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            runtime,
            client,
            http,
            timeout,
            deadline: timeout * (attempts.clamp(1, 10) as u32 + 2),
        })
    }

    pub(crate) fn model(&self, id: &str) -> hf_hub::HFRepository<hf_hub::RepoTypeModel> {
        let (owner, name) = hf_hub::split_id(id);
        self.client.model(owner, name)
    }

    /// Runs `future` to completion, or fails after the deadline.
    pub(crate) fn run<T>(
        &self,
        future: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        let deadline = self.deadline;
        self.runtime.block_on(async move {
            tokio::time::timeout(deadline, future)
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "no answer within {} s (timed out)",
                        deadline.as_secs_f64()
                    ))
                })
        })
    }

    /// One line for an hf-hub error, with its cause; a timeout says how long was waited.
    pub(crate) fn describe(&self, e: &HFError) -> String {
        let text = error_chain(e);
        if let Some(why) = unreachable(&text) {
            why
        } else if text.contains("timed out") {
            format!(
                "no answer within {} s (timed out)",
                self.timeout.as_secs_f64()
            )
        } else {
            text
        }
    }
}

/// What the Hub's validator said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OnlineReport {
    /// `errors[].message`: the Hub rejects the card.
    pub errors: Vec<String>,
    /// `warnings[].message`.
    pub warnings: Vec<String>,
}

/// `text` with `token` replaced by `***`.
fn redact_token(token: Option<&str>, text: &str) -> String {
    match token {
        Some(t) if !t.is_empty() => text.replace(t, "***"),
        _ => text.to_owned(),
    }
}

/// "could not reach it (dns error)" when `text` says the Hub was never reached.
fn unreachable(text: &str) -> Option<String> {
    let why = [
        ("dns error", "dns error"),
        ("failed to lookup address", "dns error"),
        ("Connection refused", "connection refused"),
        ("Network is unreachable", "network unreachable"),
        ("error trying to connect", "connection failed"),
    ]
    .iter()
    .find(|(needle, _)| text.contains(needle))?
    .1;
    Some(format!("could not reach it ({why})"))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
