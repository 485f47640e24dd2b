//! PEFT adapters: when `adapter_config.json` sits beside `adapter_model.*`, the adapter's
//! count is what training changed: `parameters.trainable`.

use std::path::Path;

use cardfill_facts::{Facts, Source, paths};

use crate::{CheckpointError, WeightSet};

/// Sets `parameters.trainable` when `primary` is the adapter of a PEFT directory: one with
/// `adapter_config.json` (`has_config`, a regular file).
pub fn record(has_config: bool, primary: &WeightSet, facts: &mut Facts) {
    // The last component of each file, without parsing paths (these are plain relative names).
    let is_adapter = || {
        primary.files.iter().any(|f| {
            f.as_os_str()
                .as_encoded_bytes()
                .rsplit(|&b| std::path::is_separator(char::from(b)))
                .next()
                .is_some_and(|name| name.starts_with(b"adapter_model"))
        })
    };
    if has_config && is_adapter() {
        facts.set(
            paths::PARAMETERS_TRAINABLE,
            primary.total(),
            Source::file(primary.origin(), "adapter weights: Σ shape products"),
        );
    }
}

/// The adapter weights stored as safetensors (`adapter_model.safetensors`), which the
/// safetensors finder leaves to this module; `adapter_model.bin` is read by the PyTorch finder.
/// `names` are the regular files of `dir`, sorted.
pub fn find(dir: &Path, names: &[String]) -> Result<Vec<WeightSet>, CheckpointError> {
    let name = "adapter_model.safetensors";
    if names.binary_search_by(|n| n.as_str().cmp(name)).is_err() {
        return Ok(Vec::new());
    }
    let mut buf = Vec::new();
    let set =
        crate::safetensors::read_set(dir, &[name.to_owned()], "safetensors", "header", &mut buf)?;
    // A git-lfs pointer is left out of the set: `lfs.rs` reports it.
    Ok(if set.files.is_empty() {
        Vec::new()
    } else {
        vec![set]
    })
}
