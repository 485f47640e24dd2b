//! diffusers pipelines: `model_index.json` names the components; each component folder is read
//! like a model directory. One count per component (`parameters.components`) and their sum;
//! variants (`.fp16.`, `.non_ema.`) and other formats of a component are alternatives, never
//! summed.

use std::path::Path;

use cardfill_facts::{Facts, Source, Value, paths};

use crate::{CheckpointError, WeightSet};

/// The variant of a weight file name (`fp16` in `diffusion_pytorch_model.fp16.safetensors`).
pub fn variant(file: &Path) -> Option<String> {
    let name = file.file_name()?.to_string_lossy().into_owned();
    let stem = name
        .rsplit_once('.')
        .map_or(name.as_str(), |(stem, _)| stem)
        .to_owned();
    let (base, v) = stem.rsplit_once('.')?;
    let known_base = base.starts_with("diffusion_pytorch_model")
        || base.starts_with("model")
        || base.starts_with("pytorch_model");
    known_base.then(|| v.to_owned())
}

fn prefixed(component: &str, mut set: WeightSet) -> WeightSet {
    set.files = set
        .files
        .iter()
        .map(|f| Path::new(component).join(f))
        .collect();
    set.index = set.index.map(|i| Path::new(component).join(i));
    set
}

/// A diffusers model saved alone (`UNet2DModel.save_pretrained`): its `config.json` has
/// `_class_name` and `_diffusers_version`; the class is the architecture.
pub(crate) fn lone_model(config: Option<&Value>, facts: &mut Facts) {
    let Some(Value::Object(config)) = config else {
        return;
    };
    if !config.contains_key("_diffusers_version") {
        return;
    }
    if let Some(class) = config.get("_class_name").and_then(Value::as_str) {
        facts.set(
            paths::MODEL_ARCHITECTURE,
            class,
            Source::file("config.json", "_class_name"),
        );
        facts.set(
            paths::MODEL_LIBRARY_NAME,
            "diffusers",
            Source::file(
                "config.json",
                "a diffusers model config (_class_name, _diffusers_version)",
            ),
        );
    }
}

/// The pipeline of `dir` if it has `model_index.json`: the combined primary copy of every
/// component (format `diffusers`) followed by the alternatives (variants, other formats).
pub fn find(dir: &Path, facts: &mut Facts) -> Result<Vec<WeightSet>, CheckpointError> {
    let index = dir.join("model_index.json");
    if index.symlink_metadata().is_err() {
        return Ok(Vec::new());
    }
    let text = match cardfill_facts::read::read_to_string(&index, cardfill_facts::read::INDEX_CAP) {
        Ok(t) => t,
        Err(e) => {
            facts.warn(
                "diffusers-index-invalid",
                format!("cannot read `model_index.json`: {}", e.reason()),
            );
            return Ok(Vec::new());
        }
    };
    let json: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            facts.warn(
                "diffusers-index-invalid",
                format!("`model_index.json` is not valid JSON: {e}"),
            );
            return Ok(Vec::new());
        }
    };
    let Some(obj) = json.as_object() else {
        return Ok(Vec::new());
    };
    if let Some(class) = obj.get("_class_name").and_then(Value::as_str) {
        facts.set(
            paths::MODEL_NAME,
            class,
            Source::file("model_index.json", "_class_name"),
        );
        facts.set(
            paths::MODEL_MODEL_TYPE,
            class,
            Source::file("model_index.json", "_class_name"),
        );
    }
    facts.set(
        paths::MODEL_LIBRARY_NAME,
        "diffusers",
        Source::file("model_index.json", "a diffusers pipeline"),
    );
    let mut pipeline = WeightSet {
        format: "diffusers".into(),
        method: "model_index.json components".into(),
        ..WeightSet::default()
    };
    let mut components = serde_json::Map::new();
    let mut alternatives = Vec::new();
    let mut missing = Vec::new();
    for (name, spec) in obj {
        // Components are `[library, class]`; `[null, null]` means none.
        let is_component = spec
            .as_array()
            .is_some_and(|a| a.len() == 2 && a[0].is_string());
        if name.starts_with('_') || !is_component {
            continue;
        }
        let sub = dir.join(name);
        if !sub.is_dir() {
            missing.push(name.clone());
            continue;
        }
        let mut sets: Vec<WeightSet> = Vec::new();
        match crate::safetensors::find(&sub, facts) {
            Ok(found) => sets.extend(found),
            Err(e) => facts.warn("checkpoint-file-invalid", e.to_string()),
        }
        sets.extend(crate::pytorch::find(
            &sub,
            &crate::regular_files(&sub)?,
            facts,
        )?);
        if sets.is_empty() {
            continue;
        }
        // Full-precision safetensors first, then other formats, then variants.
        sets.sort_by_key(|s| {
            let is_variant = s.files.iter().any(|f| variant(f).is_some());
            (is_variant, !s.format.starts_with("safetensors"))
        });
        let mut sets = sets.into_iter().map(|s| prefixed(name, s));
        let Some(primary) = sets.next() else { continue };
        components.insert(name.clone(), primary.total().into());
        for (dtype, n) in &primary.by_dtype {
            *pipeline.by_dtype.entry(dtype.clone()).or_insert(0) += n;
        }
        pipeline.bytes += primary.bytes;
        pipeline.files.extend(primary.files.iter().cloned());
        pipeline
            .tensors
            .extend(primary.tensors.into_iter().map(|mut t| {
                t.name = format!("{name}.{}", t.name);
                t
            }));
        alternatives.extend(sets);
    }
    if !missing.is_empty() {
        facts.warn(
            "diffusers-component-missing",
            format!(
                "`model_index.json` names component folder(s) not present: {}",
                missing.join(", ")
            ),
        );
    }
    if components.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = components.keys().cloned().collect();
    facts.set(
        paths::PARAMETERS_COMPONENTS,
        Value::Object(components),
        Source::file(
            "model_index.json",
            format!(
                "Σ shape products per component folder ({})",
                names.join(", ")
            ),
        ),
    );
    pipeline.method = format!("model_index.json + {} component folders", names.len());
    let mut out = vec![pipeline];
    out.extend(alternatives);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// diffusers 0.42: `UNet2DModel.save_pretrained` alone, and a `DDPMPipeline`.
    #[test]
    fn real_lone_model_and_pipeline() {
        let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/real");
        let figures: Value =
            serde_json::from_str(&std::fs::read_to_string(real.join("figures.json")).unwrap())
                .unwrap();
        let f = crate::collect(&real.join("diffusers-unet")).unwrap();
        let fig = &figures["diffusers-unet"];
        assert_eq!(f.value(paths::MODEL_ARCHITECTURE), Some(&fig["class"]));
        assert_eq!(f.str(paths::MODEL_LIBRARY_NAME), Some("diffusers"));
        assert_eq!(f.value(paths::PARAMETERS_TOTAL), Some(&fig["parameters"]));
        let f = crate::collect(&real.join("diffusers-pipeline")).unwrap();
        let fig = &figures["diffusers-pipeline"];
        assert_eq!(f.value(paths::MODEL_MODEL_TYPE), Some(&fig["class"]));
        assert_eq!(f.value(paths::PARAMETERS_TOTAL), Some(&fig["parameters"]));
        assert_eq!(
            f.value(paths::PARAMETERS_COMPONENTS),
            Some(&fig["components"])
        );
    }

    #[test]
    fn variants() {
        assert_eq!(
            variant(Path::new("diffusion_pytorch_model.fp16.safetensors")).as_deref(),
            Some("fp16")
        );
        assert_eq!(
            variant(Path::new("diffusion_pytorch_model.non_ema.bin")).as_deref(),
            Some("non_ema")
        );
        assert_eq!(variant(Path::new("model.safetensors")), None);
        assert_eq!(variant(Path::new("v1-5-pruned-emaonly.safetensors")), None);
    }
}
