//! The Hugging Face Hub: base-model facts from the local cache (and the Hub when online), and
//! the metadata rules the Hub enforces on model cards.
//!
//! - [`collect`] (and [`collect_offline`], which links no network code): `library_name`, `pipeline_tag` and `base_model_relation` from the
//!   architecture and files; the base model's licence, language and pipeline tag inherited from
//!   its card in the local cache (`HF_HUB_CACHE`, `HF_HOME`), or from the Hub with `--online`.
//! - [`validate_card`]: a README's metadata checked offline as the Hub checks it;
//!   [`validate_online`] asks the Hub's own validator.
//! - [`sanitize`]: removes from the facts what the Hub would reject, so `fill` never writes it.
//!
//! Offline by default: nothing is sent unless [`HubOptions::online`] is set, and
//! `HF_HUB_OFFLINE=1` forbids it regardless. The token (`HF_TOKEN`, or huggingface_hub's token
//! file) is sent to the endpoint only and never appears in a message.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod base;
mod client;
mod front_matter;
mod infer;
mod lists;
pub mod push;
pub mod remote;
mod rules;
mod sanitize;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

use cardfill_facts::Facts;

pub use client::{DEFAULT_TIMEOUT, OnlineReport};
pub use front_matter::{FrontMatter, front_matter};
pub use infer::{pipeline_for_architecture, pipeline_for_diffusers, pipeline_for_peft_task};
pub use lists::{is_language, is_library_name, is_license, is_pipeline_tag};
pub use rules::{Problem, Severity, check_key, check_metadata};
pub use sanitize::sanitize;
pub use validate::{card_metadata, validate_card};

/// How the Hub may be reached, and what to look at.
#[derive(Clone, Debug, Default)]
pub struct HubOptions {
    /// `--online`: network use allowed (still forbidden by `HF_HUB_OFFLINE=1`).
    pub online: bool,
    /// The checkpoint directory, for the files that tell the library and task
    /// (`model_index.json`, `modules.json`, `adapter_config.json`, `mergekit_config.yml`).
    pub dir: Option<PathBuf>,
    /// The Hub endpoint [default: `HF_ENDPOINT`, else `https://huggingface.co`].
    pub endpoint: Option<String>,
    /// The Hub cache [default: `HF_HUB_CACHE`, else `HF_HOME/hub`, else
    /// `~/.cache/huggingface/hub`].
    pub cache_dir: Option<PathBuf>,
    /// Limit for each request [default: [`DEFAULT_TIMEOUT`]].
    pub timeout: Option<Duration>,
}

impl HubOptions {
    /// Whether the network may be used: `online`, and `HF_HUB_OFFLINE` not set to a true value.
    pub fn network_allowed(&self) -> bool {
        self.online && !client::env_true("HF_HUB_OFFLINE")
    }
}

/// Why the Hub could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The Hub answered with an error, or could not be reached.
    #[error("the Hub at `{endpoint}`: {message}")]
    Api {
        /// The endpoint asked.
        endpoint: String,
        /// What went wrong (the token never appears).
        message: String,
    },
    /// The HTTP client could not be set up.
    #[error("cannot set up the Hub client for `{endpoint}`: {message}")]
    Client {
        /// The endpoint configured.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// `--online` was asked but `HF_HUB_OFFLINE` forbids network use.
    #[error("HF_HUB_OFFLINE is set: the Hub at `{endpoint}` is not asked")]
    Offline {
        /// The endpoint that would have been asked.
        endpoint: String,
    },
}

/// Collects Hub facts for the model described by `known` (the facts of the other collectors).
///
/// Sets `model.library_name`, `model.pipeline_tag`, `model.base_model_relation` (and, for a
/// merge, `model.base_model` as the list of merged models) where the evidence is clear, and
/// inherits `model.license` (with `license_name`/`license_link` for `other`),
/// `model.language` and `model.pipeline_tag` from the base model's card. Paths already in
/// `known` are never set, except `model.base_model` for a merge and a specific library
/// (`diffusers`, `peft`, ...) over the generic `transformers` a `config.json` suggests, so the
/// result is meant to be laid over `known` (`Facts::overlay`). Problems are warnings in the result; `Err` only when
/// the client cannot be set up at all.
pub fn collect(known: &Facts, options: &HubOptions) -> Result<Facts, HubError> {
    collect_with(known, options, || client::Hub::new(options))
}

/// [`collect`] from the local cache only, whatever `options.online` says: code that calls
/// only this links no HTTP client, TLS or async runtime (the offline `cardfill` binary).
/// Online, the base model is looked up as when the Hub cannot be reached.
pub fn collect_offline(known: &Facts, options: &HubOptions) -> Result<Facts, HubError> {
    collect_with(known, options, || Ok(client::Cache::new(options)))
}

fn collect_with<L: client::Lookup>(
    known: &Facts,
    options: &HubOptions,
    lookup: impl FnOnce() -> Result<L, HubError>,
) -> Result<Facts, HubError> {
    let mut out = Facts::new();
    let dirs = infer::dirs(known, options.dir.as_deref());
    infer::relation(known, &dirs, &mut out);
    infer::library_and_pipeline(known, &dirs, &mut out);
    if known.str(cardfill_facts::paths::MODEL_BASE_MODEL).is_some() {
        base::inherit(
            &lookup()?,
            known,
            &dirs,
            options.network_allowed(),
            &mut out,
        );
    }
    Ok(out)
}

/// Posts `card` to the Hub's validator (`{endpoint}/api/validate-yaml`) and returns its errors
/// and warnings. `Err` when the network is not allowed or the Hub cannot be reached.
pub fn validate_online(card: &str, options: &HubOptions) -> Result<OnlineReport, HubError> {
    if !options.network_allowed() {
        return Err(HubError::Offline {
            endpoint: client::endpoint(options),
        });
    }
    client::Hub::new(options)?.validate_yaml(card)
}
