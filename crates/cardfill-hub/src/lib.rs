//! The Hugging Face Hub: base-model facts from the local cache (and the Hub when online), and
//! the metadata rules the Hub enforces on model cards.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

use cardfill_facts::Facts;

/// How the Hub may be reached.
#[derive(Clone, Debug, Default)]
pub struct HubOptions {
    /// `--online`: network use allowed (still forbidden by `HF_HUB_OFFLINE=1`).
    pub online: bool,
}

/// Why the Hub collector failed.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The Hub answered with an error.
    #[error("the Hub at `{endpoint}` answered: {message}")]
    Api {
        /// The endpoint asked.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
}

/// Collects base-model facts (licence, language, pipeline tag) for the model in `known`.
pub fn collect(known: &Facts, options: &HubOptions) -> Result<Facts, HubError> {
    let _ = (known, options);
    Ok(Facts::new())
}
