//! `--from-hub`: the facts of a model already on the Hub, read without its weights.
//!
//! The repository is laid out in a temporary stand-in directory by
//! [`cardfill_hub::remote::mirror`] (small files whole, weight headers by range requests), the
//! usual collectors run on it, as for a model trained elsewhere, and every source is pointed
//! back at the Hub file and commit it came from.

use std::path::Path;

use cardfill_facts::Facts;
use cardfill_hub::remote::{Fetched, Mirror};

use crate::cli::EvidenceArgs;
use crate::{collect, report};

/// A model read from the Hub: the facts, relocated to the Hub's files, and what was read.
pub struct Remote {
    /// Every fact, sources naming the Hub's files at the commit read.
    pub facts: Facts,
    /// What was read.
    pub mirror: Mirror,
}

/// Errors unless `repo`, given with `flag`, is a Hub model id (`org/name`).
pub fn check_id(repo: &str, flag: &str) -> anyhow::Result<()> {
    let valid = repo.split('/').count() == 2
        && repo.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with(['.', '-'])
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
    if valid {
        Ok(())
    } else {
        Err(report::fatal(
            "usage",
            None,
            format!("`{repo}` is not a Hub model id: pass {flag} ORG/NAME"),
        ))
    }
}

/// Reads `repo` at `revision` into a stand-in directory (removed on return) and collects its
/// facts. `local_card`, when it exists, is the card being filled: evidence in place of the
/// Hub's README.
pub fn collect(
    repo: &str,
    revision: Option<&str>,
    local_card: Option<&Path>,
    evidence: &EvidenceArgs,
) -> anyhow::Result<Remote> {
    check_id(repo, "--from-hub")?;
    let staging = tempfile::Builder::new()
        .prefix("cardfill-hub-")
        .tempdir()
        .map_err(|e| {
            report::fatal(
                "tmp-unwritable",
                None,
                format!(
                    "cannot create a temporary directory: {}: set TMPDIR to a writable directory",
                    report::io_words(&e)
                ),
            )
        })?;
    let options = cardfill_hub::HubOptions {
        online: true,
        ..Default::default()
    };
    let mirror = crate::network::required()?.mirror;
    let mut mirror = mirror(repo, revision, staging.path(), &options)
        .map_err(|e| report::fatal("hub", None, e.to_string()))?;
    if let Some(text) = local_card.and_then(|card| {
        cardfill_facts::read::read_to_string(card, cardfill_facts::read::CARD_CAP).ok()
    }) {
        let readme = staging.path().join("README.md");
        let _ = std::fs::remove_file(&readme);
        let _ = std::fs::write(&readme, text);
        // Facts read from it are the local card's, not the Hub's.
        for f in mirror.files.iter_mut().filter(|f| f.path == "README.md") {
            f.fetched = Fetched::Not;
        }
    }
    let evidence = EvidenceArgs {
        online: true,
        ..evidence.clone()
    };
    let mut facts = collect::collect_elsewhere(staging.path(), &evidence)?;
    mirror.relocate(&mut facts, staging.path());
    facts.overlay(mirror.facts());
    let fetched = mirror
        .files
        .iter()
        .filter(|f| f.fetched != Fetched::Not)
        .count();
    report::note(&format!(
        "read `{repo}` at {} from the Hub: {fetched} of {} files, {} in {} requests; no weights downloaded",
        &mirror.sha[..mirror.sha.len().min(7)],
        mirror.files.len(),
        cardfill_facts::human_bytes(mirror.bytes),
        mirror.requests
    ));
    Ok(Remote { facts, mirror })
}
