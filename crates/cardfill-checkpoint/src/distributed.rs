//! Distributed checkpoints, counted from their metadata without executing any pickle:
//!
//! - torch.distributed.checkpoint: a folder with `.metadata` (a pickled `Metadata` whose
//!   `state_dict_metadata` maps each fully qualified name to its global size and dtype) and
//!   `__<rank>_<k>.distcp` files, one set per rank.
//! - DeepSpeed ZeRO: `latest` names a tag folder (`global_step1000/`) holding
//!   `[zero_pp_rank_<dp>_]mp_rank_<mp>_model_states.pt` (the `module` state dict, or for
//!   ZeRO-3 the `param_shapes`) and one `*_optim_states.pt` per data-parallel rank.
//!
//! The number of rank files is reported as a hint of the data-parallel world size.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use cardfill_facts::{Facts, Source, paths};

use crate::pickle::{self, Id, Node, Pickle};
use crate::pytorch::{self, storage_dtype};
use crate::{CheckpointError, Tensor, WeightSet};

/// Largest `.metadata` read.
const MAX_METADATA_BYTES: u64 = 256 << 20;

fn dims(pk: &Pickle, id: Id) -> Option<Vec<u64>> {
    pk.items(id)?
        .iter()
        .map(|d| pk.int(*d).and_then(|n| u64::try_from(n).ok()))
        .collect()
}

/// The dtype name of a `TensorProperties` (its state is a dict, or the tuple its
/// `__getstate__` returns, dtype first).
fn dtype_of(pk: &Pickle, props: Id) -> String {
    let global = pk.get(props, "dtype").or_else(|| match pk.node(props) {
        Node::Call { state: Some(s), .. } => pk.items(*s)?.first().copied(),
        _ => None,
    });
    match global.and_then(|g| pk.global(g)) {
        Some((_, name)) => {
            storage_dtype(name).map_or_else(|| format!("torch.{name}"), |(d, _)| d.to_owned())
        }
        None => "unknown".into(),
    }
}

/// A torch.distributed.checkpoint folder: the model tensors of its `.metadata`.
fn dcp(
    dir: &Path,
    names: &[String],
    facts: &mut Facts,
) -> Result<Option<WeightSet>, CheckpointError> {
    if !names.iter().any(|n| n == ".metadata") {
        return Ok(None);
    }
    let meta_path = dir.join(".metadata");
    let shards: Vec<&String> = names.iter().filter(|n| n.ends_with(".distcp")).collect();
    let ranks: BTreeSet<&str> = shards
        .iter()
        .filter_map(|n| n.strip_prefix("__")?.split('_').next())
        .collect();
    let shown = Path::new(".metadata");
    let data = cardfill_facts::read::read(&meta_path, MAX_METADATA_BYTES)
        .map_err(|e| CheckpointError::invalid(shown, e.reason()))?;
    let pk = pickle::parse(&data, 0, &pickle::Limits::default()).map_err(|e| {
        CheckpointError::Invalid {
            path: shown.into(),
            message: e.to_string(),
        }
    })?;
    let mut set = WeightSet {
        format: "torch-distributed".into(),
        ..WeightSet::default()
    };
    let Some(sdm) = pk.get(pk.root, "state_dict_metadata") else {
        facts.warn(
            "checkpoint-file-invalid",
            "`.metadata`: no `state_dict_metadata`: not a torch.distributed.checkpoint Metadata",
        );
        return Ok(None);
    };
    let Node::Dict(entries) = pk.node(sdm) else {
        return Ok(None);
    };
    let mut optimizer = 0usize;
    for (k, v) in entries {
        let Some(fqn) = pk.str(*k) else { continue };
        let is_tensor = pk
            .class_of(*v)
            .is_some_and(|c| c.ends_with("TensorStorageMetadata"));
        if !is_tensor {
            continue;
        }
        if fqn.starts_with("optim") {
            optimizer += 1;
            continue;
        }
        let Some(shape) = pk.get(*v, "size").and_then(|s| dims(&pk, s)) else {
            continue;
        };
        let dtype = pk
            .get(*v, "properties")
            .map_or_else(|| "unknown".into(), |p| dtype_of(&pk, p));
        set.push(Tensor {
            name: fqn.strip_prefix("model.").unwrap_or(fqn).to_owned(),
            dtype,
            shape,
        });
    }
    if set.tensors.is_empty() {
        return Ok(None);
    }
    set.files.push(PathBuf::from(".metadata"));
    set.files.extend(shards.iter().map(PathBuf::from));
    set.bytes = set
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    set.method = format!(
        ".metadata state_dict_metadata walked (global sizes){}",
        if optimizer > 0 {
            format!(", {optimizer} optimizer entries left out")
        } else {
            String::new()
        }
    );
    facts.set(
        paths::CHECKPOINT_DISTRIBUTED,
        serde_json::json!({
            "kind": "torch.distributed.checkpoint",
            "ranks": ranks.len(),
            "files": shards.len(),
        }),
        Source::file(
            ".metadata",
            "`__<rank>_<k>.distcp` file names: distinct ranks",
        ),
    );
    Ok(Some(set))
}

/// A DeepSpeed checkpoint: `latest` and its tag folder.
fn deepspeed(dir: &Path, facts: &mut Facts) -> Result<Option<WeightSet>, CheckpointError> {
    let Some(tag) = crate::read_small(&dir.join("latest")) else {
        return Ok(None);
    };
    let tag = tag.trim();
    let tag_path = Path::new(tag);
    let mut comps = tag_path.components();
    if tag.len() > 255
        || !matches!(comps.next(), Some(Component::Normal(_)))
        || comps.next().is_some()
    {
        facts.warn(
            "deepspeed-latest-invalid",
            format!("`latest` names `{tag}`, not a folder of this directory"),
        );
        return Ok(None);
    }
    let tag_dir = dir.join(tag_path);
    if !tag_dir.is_dir() {
        facts.warn(
            "deepspeed-latest-invalid",
            format!("`latest` names `{tag}`, which is missing"),
        );
        return Ok(None);
    }
    let names = crate::regular_files(&tag_dir)?;
    let model_states: Vec<&String> = names
        .iter()
        .filter(|n| n.ends_with("_model_states.pt"))
        .collect();
    let optim = names
        .iter()
        .filter(|n| n.ends_with("_optim_states.pt"))
        .count();
    let Some(first) = model_states.first() else {
        return Ok(None);
    };
    let rel = Path::new(tag).join(first);
    let tf = pytorch::read(&dir.join(&rel), &rel)?;
    pytorch::record_unsafe(facts, &rel, &tf, true);
    let pk = &tf.pickle;
    let sd = pytorch::state_dict(&tf);
    let module_total: u64 = sd.tensors.iter().map(Tensor::numel).sum();
    let mut set = WeightSet {
        format: "deepspeed".into(),
        files: vec![rel.clone()],
        bytes: tf.bytes,
        ..WeightSet::default()
    };
    // ZeRO-3 keeps empty placeholders in `module`; the real shapes are in `param_shapes`.
    let mut shapes = Vec::new();
    for key in ["param_shapes", "frozen_param_shapes"] {
        let Some(v) = pk.get(pk.root, key) else {
            continue;
        };
        let groups: Vec<Id> = match pk.node(v) {
            Node::List(g) | Node::Tuple(g) => g.clone(),
            Node::Dict(_) => vec![v],
            _ => continue,
        };
        for g in groups {
            if let Node::Dict(entries) = pk.node(g) {
                for (k, s) in entries {
                    if let (Some(name), Some(shape)) = (pk.str(*k), dims(pk, *s)) {
                        shapes.push((name.to_owned(), shape));
                    }
                }
            }
        }
    }
    let shapes_total: u64 = shapes.iter().map(|(_, s)| s.iter().product::<u64>()).sum();
    if shapes_total > module_total {
        for (name, shape) in shapes {
            let dtype = sd
                .tensors
                .iter()
                .find(|t| t.name == name)
                .map_or_else(|| "unknown".to_owned(), |t| t.dtype.clone());
            set.push(Tensor { name, dtype, shape });
        }
        set.method = format!("`{tag}/{first}` param_shapes (ZeRO-3)");
    } else {
        for t in sd.tensors {
            set.push(t);
        }
        set.method = format!("`{tag}/{first}` module state dict");
    }
    if set.tensors.is_empty() {
        return Ok(None);
    }
    let ranks = if optim > 0 { optim } else { model_states.len() };
    facts.set(
        paths::CHECKPOINT_DISTRIBUTED,
        serde_json::json!({
            "kind": "deepspeed",
            "tag": tag,
            "ranks": ranks,
        }),
        Source::file(
            format!("{tag}/"),
            "`*_optim_states.pt` files: one per data-parallel rank",
        ),
    );
    Ok(Some(set))
}

/// Finds a distributed checkpoint in `dir` (and, for DeepSpeed, its `latest` tag folder).
/// `names` are the regular files of `dir`, sorted.
pub fn find(
    dir: &Path,
    names: &[String],
    facts: &mut Facts,
) -> Result<Vec<WeightSet>, CheckpointError> {
    let mut sets = Vec::new();
    for found in [dcp(dir, names, facts), deepspeed(dir, facts)] {
        match found {
            Ok(Some(set)) => sets.push(set),
            Ok(None) => {}
            Err(e) => facts.warn("checkpoint-file-invalid", e.to_string()),
        }
    }
    Ok(sets)
}
