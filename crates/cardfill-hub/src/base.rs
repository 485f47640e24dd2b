//! The base model: found in the local cache (or on the Hub when online), its card's licence,
//! language and pipeline tag inherited where this model's facts lack them.

use std::path::{Path, PathBuf};

use cardfill_facts::{Facts, Source, Value, paths};
use serde_json::Map;

use crate::client::Lookup;
use crate::infer::set_new;
use crate::lists;
use crate::validate::card_metadata;

/// Where a base model's file was read.
#[derive(Clone, Debug)]
enum Origin {
    /// A file in the local cache.
    Cache(String),
    /// A URL on the Hub.
    Network(String),
}

impl Origin {
    fn source(&self, method: String) -> Source {
        match self {
            Self::Cache(path) => Source::file(path, method),
            Self::Network(url) => Source::network(url, method),
        }
    }
}

/// A base model's card metadata and config, as far as found.
struct BaseModel {
    /// Whether a README.md was found at all (it may have no metadata).
    readme_found: bool,
    card: Option<(Map<String, Value>, Origin)>,
    config: Option<(Value, Origin)>,
}

/// Reads `file` of `id` from the cache, or from the Hub when `online`.
fn read(
    hub: &impl Lookup,
    id: &str,
    snapshot: Option<&Path>,
    file: &str,
    online: bool,
    facts: &mut Facts,
) -> Option<(String, Origin)> {
    let named = snapshot.map(|s| s.join(file)).filter(|p| p.is_file());
    if let Some(path) = named.or_else(|| hub.cache().cached_file(id, file)) {
        return match cardfill_facts::read::read_to_string(&path, cardfill_facts::read::CARD_CAP) {
            Ok(text) => Some((text, Origin::Cache(path.display().to_string()))),
            Err(e) => {
                facts.warn(
                    "base-model-cache-unreadable",
                    format!("cannot read `{}`: {}", path.display(), e.reason()),
                );
                None
            }
        };
    }
    if !online {
        return None;
    }
    match hub.download(id, file) {
        Ok(Some(bytes)) => Some((
            String::from_utf8_lossy(&bytes).into_owned(),
            Origin::Network(hub.cache().file_url(id, file)),
        )),
        Ok(None) => None,
        Err(message) => {
            facts.warn(
                "base-model-download-failed",
                format!(
                    "cannot download `{file}` of base model `{id}` from `{}`: {message}",
                    hub.cache().endpoint()
                ),
            );
            None
        }
    }
}

fn find_base(
    hub: &impl Lookup,
    id: &str,
    snapshot: Option<&Path>,
    online: bool,
    facts: &mut Facts,
) -> BaseModel {
    let readme = read(hub, id, snapshot, "README.md", online, facts);
    let readme_found = readme.is_some();
    let card = readme.and_then(|(text, origin)| match card_metadata(&text) {
        Ok(Some(meta)) => Some((meta, origin)),
        Ok(None) => None,
        Err(problem) => {
            facts.warn(
                "base-model-card-malformed",
                format!(
                    "the card of base model `{id}` (`{}`) has unusable metadata: {}",
                    origin_text(&origin),
                    problem.message
                ),
            );
            None
        }
    });
    let config =
        read(hub, id, snapshot, "config.json", online, facts).and_then(|(text, origin)| {
            serde_json::from_str::<Value>(&text)
                .ok()
                .map(|v| (v, origin))
        });
    BaseModel {
        readme_found,
        card,
        config,
    }
}

fn origin_text(origin: &Origin) -> &str {
    match origin {
        Origin::Cache(p) | Origin::Network(p) => p,
    }
}

/// The cache snapshot of `id` that the checkpoint's own config names (`_name_or_path` or
/// `base_model_name_or_path` = `…/models--org--name/snapshots/<sha>`), when it exists on this
/// machine: the cache the run used, wherever `HF_HUB_CACHE` points now.
fn named_snapshot(dirs: &[PathBuf], id: &str) -> Option<PathBuf> {
    let marker = format!("models--{}/snapshots/", id.replace('/', "--"));
    dirs.iter()
        .flat_map(|d| {
            [
                (d.join("config.json"), "_name_or_path"),
                (d.join("adapter_config.json"), "base_model_name_or_path"),
            ]
        })
        .filter_map(|(file, key)| {
            let text =
                cardfill_facts::read::read_to_string(&file, cardfill_facts::read::CONFIG_CAP)
                    .ok()?;
            let json: Value = serde_json::from_str(&text).ok()?;
            json.get(key)?.as_str().map(str::to_owned)
        })
        .filter(|value| value.contains(&marker))
        .map(PathBuf::from)
        .find(|path| path.is_dir())
}

/// The parameter count of an adapter's base model, from its weight headers in the local cache
/// (headers only; nothing is downloaded).
fn base_parameters(hub: &impl Lookup, id: &str, snapshot: Option<&Path>, out: &mut Facts) {
    let dir = match snapshot {
        Some(s) => s.to_path_buf(),
        None => match hub.cache().cached_file(id, "config.json") {
            Some(config) => match config.parent() {
                Some(p) => p.to_path_buf(),
                None => return,
            },
            None => return,
        },
    };
    let Ok(found) = cardfill_checkpoint::collect(&dir) else {
        return;
    };
    if let Some(n) = found.u64(paths::PARAMETERS_TOTAL) {
        out.set(
            paths::PARAMETERS_BASE,
            n,
            Source::file(
                dir.display().to_string(),
                format!("weights of base model {id} in the Hugging Face cache: Σ shape products"),
            ),
        );
    }
}

/// Resolves the base model named in `known` (through the snapshot the configs in `dirs` name,
/// the cache, then the Hub when `online`) and inherits its licence, language and pipeline tag
/// into `out` where `known` lacks them.
pub(crate) fn inherit(
    hub: &impl Lookup,
    known: &Facts,
    dirs: &[PathBuf],
    online: bool,
    out: &mut Facts,
) {
    let Some(id) = known.str(paths::MODEL_BASE_MODEL).map(str::to_owned) else {
        return;
    };
    // Online, the id is confirmed first; when the Hub cannot be reached only the cache is read.
    let mut network = online;
    if online {
        match hub.model_info(&id) {
            Ok(Some(_)) => {}
            Ok(None) => {
                out.warn(
                    "base-model-not-on-hub",
                    format!(
                        "base model `{id}` does not exist on `{}` (404): check `_name_or_path` or \
                         `base_model_name_or_path`",
                        hub.cache().endpoint()
                    ),
                );
                return;
            }
            Err(message) => {
                out.warn(
                    "hub-unreachable",
                    format!(
                        "cannot confirm base model `{id}` on `{}`: {message}",
                        hub.cache().endpoint()
                    ),
                );
                network = false;
            }
        }
    }
    let snapshot = named_snapshot(dirs, &id);
    if known.contains(paths::MODEL_ADAPTER) && !known.contains(paths::PARAMETERS_BASE) {
        base_parameters(hub, &id, snapshot.as_deref(), out);
    }
    let base = find_base(hub, &id, snapshot.as_deref(), network, out);
    let Some((meta, origin)) = &base.card else {
        if !online && !base.readme_found {
            // The model may be cached without its card (`from_pretrained` fetches no README).
            let what = if base.config.is_some() {
                format!("base model `{id}` has no README.md in the local Hugging Face cache")
            } else {
                format!("base model `{id}` is not in the local Hugging Face cache")
            };
            // `--online` may have been given and overruled by HF_HUB_OFFLINE.
            let hint = if crate::client::env_true("HF_HUB_OFFLINE") {
                " (HF_HUB_OFFLINE is set: the Hub is not asked)"
            } else {
                " (pass --online to ask the Hub)"
            };
            out.warn(
                "base-model-not-cached",
                format!(
                    "{what} `{}`: its licence is not inherited{hint}",
                    hub.cache().cache_dir().display()
                ),
            );
        }
        return;
    };
    let what = |key: &str| format!("`{key}` of base model {id}");

    if !known.contains(paths::MODEL_LICENSE) {
        inherit_license(hub, &id, meta, origin, known, out);
    }
    if let Some(lang) = meta.get("language") {
        let codes: Vec<&str> = match lang {
            Value::String(s) => vec![s.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !codes.is_empty() && codes.iter().all(|c| lists::is_language(c)) {
            set_new(
                out,
                known,
                paths::MODEL_LANGUAGE,
                lang.clone(),
                origin.source(what("language")),
            );
        }
    }
    if let Some(tag) = meta.get("pipeline_tag").and_then(Value::as_str) {
        // Only where this model's head is the base's: a classifier fine-tuned from a causal
        // LM does not generate text.
        let own = known.str(paths::MODEL_ARCHITECTURE);
        let base_arch = base
            .config
            .as_ref()
            .and_then(|(c, _)| c.get("architectures")?.get(0)?.as_str());
        let same_head = match (own, base_arch) {
            (Some(a), Some(b)) => a == b,
            (None, _) => true,
            (Some(_), None) => false,
        };
        if same_head && lists::is_pipeline_tag(tag) && !out.contains(paths::MODEL_PIPELINE_TAG) {
            set_new(
                out,
                known,
                paths::MODEL_PIPELINE_TAG,
                tag,
                origin.source(what("pipeline_tag")),
            );
        }
    }
}

fn inherit_license(
    hub: &impl Lookup,
    id: &str,
    meta: &Map<String, Value>,
    origin: &Origin,
    known: &Facts,
    out: &mut Facts,
) {
    let Some(license) = meta.get("license").and_then(Value::as_str) else {
        return;
    };
    let what = |key: &str| format!("`{key}` of base model {id}");
    if !lists::is_license(license) {
        out.warn(
            "base-model-license-invalid",
            format!(
                "base model `{id}` states licence `{license}`, not a Hub licence id: not inherited"
            ),
        );
        return;
    }
    if license != "other" {
        set_new(
            out,
            known,
            paths::MODEL_LICENSE,
            license,
            origin.source(what("license")),
        );
        return;
    }
    // `other` is only useful with its name and a link that still works from this repo.
    let name = meta.get("license_name").and_then(Value::as_str);
    let link = meta.get("license_link").and_then(Value::as_str);
    let (Some(name), Some(link)) = (name, link) else {
        out.warn(
            "base-model-license-incomplete",
            format!(
                "base model `{id}` states `license: other` without `license_name` and \
                 `license_link`: not inherited"
            ),
        );
        return;
    };
    let link = if link.starts_with("http://") || link.starts_with("https://") {
        link.to_owned()
    } else {
        // relative to the base repository: point at the base model's file
        format!(
            "{}/{id}/blob/main/{}",
            hub.cache().endpoint(),
            link.trim_start_matches("./").trim_start_matches('/')
        )
    };
    set_new(
        out,
        known,
        paths::MODEL_LICENSE,
        "other",
        origin.source(what("license")),
    );
    set_new(
        out,
        known,
        paths::MODEL_LICENSE_NAME,
        name,
        origin.source(what("license_name")),
    );
    set_new(
        out,
        known,
        paths::MODEL_LICENSE_LINK,
        link,
        origin.source(what("license_link")),
    );
}
