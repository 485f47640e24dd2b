//! Model and training configs: `config.json` (architecture, dimensions, base model),
//! `adapter_config.json` (PEFT), and trainer outputs (`trainer_state.json`,
//! `train_results.json`, accelerate and DeepSpeed configs).
//!
//! Design rule: a local path never becomes `model.base_model`; only Hub ids do
//! (see [`hub_id`]).
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod adapter;
mod card_meta;
mod config;
mod hub_id;
mod hyper;
mod listing;
mod results;
mod trainer;

/// The real-tool fixture `name` under `tests/fixtures/real`, for this crate's unit tests.
#[cfg(test)]
fn real(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/real")
        .join(name)
}

use std::path::{Path, PathBuf};

use cardfill_facts::Facts;

pub use hub_id::{HubId, hub_id};

/// Why a config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A config file is not valid JSON (or YAML), or not of the expected shape.
    #[error("`{}` is not valid: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What the parser said, with line and column where known.
        message: String,
    },
}

/// Collects `model.*` and `training.*` facts from the configs in `dir`.
///
/// Each config file is independent: a malformed `trainer_state.json` is a warning and
/// `config.json` is still read. Errors only when `dir` cannot be read at all.
pub fn collect(dir: &Path) -> Result<Facts, ConfigError> {
    // Listed once, when a collector first needs it, for all of them.
    collect_in(&listing::Listing::new(dir))
}

/// [`collect`] on a directory the checkpoint reader already listed: it is not listed again.
pub fn collect_listed(
    dir: &Path,
    listed: &cardfill_checkpoint::Listing,
) -> Result<Facts, ConfigError> {
    collect_in(&listing::Listing::from_checkpoint(dir, listed))
}

fn collect_in(listing: &listing::Listing<'_>) -> Result<Facts, ConfigError> {
    let dir = listing.dir();
    let mut facts = Facts::new();
    // The trainer collector reads `trainer_state.json` once; the results collector reuses it.
    let (trainer, state) = match trainer::collect(listing) {
        Ok((found, state)) => (Ok(found), state),
        Err(err) => (Err(err), None),
    };
    for part in [
        config::collect(dir),
        adapter::collect(dir),
        trainer,
        // Last: the card's front matter only fills what the configs left unknown.
        card_meta::collect(dir),
    ] {
        match part {
            Ok(found) => facts.absorb(found),
            Err(err) => facts.warn("config-unreadable", err.to_string()),
        }
    }
    let processes = facts.u64(cardfill_facts::paths::TRAINING_PROCESSES);
    facts.absorb(hyper::collect(listing, processes));
    facts.absorb(results::collect(listing, state.as_ref()));
    Ok(facts)
}
