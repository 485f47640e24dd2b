//! `pipeline_tag`, `library_name` and `base_model_relation` from the architecture and the
//! files, only where the evidence is unambiguous.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use cardfill_facts::{Facts, Source, Value, paths};

use crate::rules::{RepoRef, repo_ref};
use crate::validate::parse_yaml;

/// The pipeline tag an architecture class implies, where it implies one.
pub fn pipeline_for_architecture(arch: &str) -> Option<&'static str> {
    const BY_SUFFIX: &[(&str, &str)] = &[
        ("ForCausalLM", "text-generation"),
        ("LMHeadModel", "text-generation"),
        ("ForSequenceClassification", "text-classification"),
        ("ForTokenClassification", "token-classification"),
        ("ForQuestionAnswering", "question-answering"),
        ("ForMaskedLM", "fill-mask"),
        ("ForMultipleChoice", "multiple-choice"),
        ("ForImageClassification", "image-classification"),
        ("ForObjectDetection", "object-detection"),
        ("ForZeroShotObjectDetection", "zero-shot-object-detection"),
        ("ForSemanticSegmentation", "image-segmentation"),
        ("ForInstanceSegmentation", "image-segmentation"),
        ("ForUniversalSegmentation", "image-segmentation"),
        ("ForDepthEstimation", "depth-estimation"),
        ("ForAudioClassification", "audio-classification"),
        ("ForCTC", "automatic-speech-recognition"),
        ("ForSpeechSeq2Seq", "automatic-speech-recognition"),
        ("ForVideoClassification", "video-classification"),
        ("ForImageTextToText", "image-text-to-text"),
    ];
    // `…ForConditionalGeneration` is ambiguous (T5, BART, Whisper, LLaVA): only known families.
    const CONDITIONAL: &[(&str, &str)] = &[
        ("Whisper", "automatic-speech-recognition"),
        ("Speech2Text", "automatic-speech-recognition"),
        ("Llava", "image-text-to-text"),
        ("LlavaNext", "image-text-to-text"),
        ("PaliGemma", "image-text-to-text"),
        ("Qwen2VL", "image-text-to-text"),
        ("Qwen2_5_VL", "image-text-to-text"),
        ("Idefics2", "image-text-to-text"),
        ("Idefics3", "image-text-to-text"),
        ("Mllama", "image-text-to-text"),
        ("Gemma3", "image-text-to-text"),
        ("Blip2", "image-text-to-text"),
    ];
    if let Some(family) = arch.strip_suffix("ForConditionalGeneration") {
        return CONDITIONAL
            .iter()
            .find(|(f, _)| *f == family)
            .map(|(_, tag)| *tag);
    }
    match arch {
        "CLIPModel" | "SiglipModel" => return Some("zero-shot-image-classification"),
        "VisionEncoderDecoderModel" => return Some("image-to-text"),
        _ => {}
    }
    BY_SUFFIX
        .iter()
        .find(|(suffix, _)| arch.ends_with(suffix) && arch.len() > suffix.len())
        .map(|(_, tag)| *tag)
}

/// The pipeline tag a PEFT `task_type` implies.
pub fn pipeline_for_peft_task(task: &str) -> Option<&'static str> {
    match task {
        "CAUSAL_LM" => Some("text-generation"),
        "SEQ_CLS" => Some("text-classification"),
        "TOKEN_CLS" => Some("token-classification"),
        "QUESTION_ANS" => Some("question-answering"),
        "FEATURE_EXTRACTION" => Some("feature-extraction"),
        _ => None,
    }
}

/// The pipeline tag a diffusers pipeline class implies.
pub fn pipeline_for_diffusers(class: &str) -> Option<&'static str> {
    match class {
        "StableDiffusionPipeline"
        | "StableDiffusionXLPipeline"
        | "StableDiffusion3Pipeline"
        | "FluxPipeline"
        | "PixArtAlphaPipeline"
        | "PixArtSigmaPipeline"
        | "SanaPipeline"
        | "KandinskyV22CombinedPipeline"
        | "AltDiffusionPipeline"
        | "LatentConsistencyModelPipeline" => Some("text-to-image"),
        "StableDiffusionImg2ImgPipeline"
        | "StableDiffusionXLImg2ImgPipeline"
        | "StableDiffusionInstructPix2PixPipeline" => Some("image-to-image"),
        "TextToVideoSDPipeline" => Some("text-to-video"),
        "DDPMPipeline" | "DDIMPipeline" => Some("unconditional-image-generation"),
        _ => None,
    }
}

/// The directories to look in: the checkpoint directory and the sub-directory inspected.
pub(crate) fn dirs(known: &Facts, dir: Option<&Path>) -> Vec<PathBuf> {
    let Some(dir) = dir else {
        return Vec::new();
    };
    let mut out = vec![dir.to_path_buf()];
    if let Some(sub) = known.str(paths::CHECKPOINT_INSPECTED_DIR) {
        let sub = dir.join(sub);
        if sub.is_dir() && sub != dir {
            out.push(sub);
        }
    }
    out
}

/// The first of `dirs` holding `name`, as the path and its name relative to the checkpoint
/// directory (for sources).
fn find(dirs: &[PathBuf], name: &str) -> Option<(PathBuf, String)> {
    let root = dirs.first()?;
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| cardfill_facts::read::may_exist(p) && p.is_file())
        .map(|p| {
            let rel = p
                .strip_prefix(root)
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_else(|_| name.to_owned());
            (p, rel)
        })
}

fn read_json(path: &Path) -> Option<Rc<Value>> {
    cardfill_facts::read::json(path, cardfill_facts::read::CONFIG_CAP).ok()
}

/// Sets `path` in `out` only when neither `known` nor `out` has it.
pub(crate) fn set_new(
    out: &mut Facts,
    known: &Facts,
    path: &str,
    value: impl Into<Value>,
    source: Source,
) {
    if !known.contains(path) {
        out.set_if_absent(path, value, source);
    }
}

/// Sets the library a file shows (`diffusers`, `peft`, ...): where `known` has none, or has
/// only the generic `transformers` a `config.json` suggests.
fn set_library(out: &mut Facts, known: &Facts, name: &str, source: Source) {
    if known
        .str(paths::MODEL_LIBRARY_NAME)
        .is_none_or(|k| k == "transformers")
    {
        out.set(paths::MODEL_LIBRARY_NAME, name, source);
    }
}

/// Library name and pipeline tag from the files and the architecture.
pub(crate) fn library_and_pipeline(known: &Facts, dirs: &[PathBuf], out: &mut Facts) {
    // diffusers pipeline
    if let Some((path, rel)) = find(dirs, "model_index.json")
        && let Some(class) = read_json(&path)
            .as_ref()
            .and_then(|v| v.get("_class_name"))
            .and_then(Value::as_str)
    {
        set_library(
            out,
            known,
            "diffusers",
            Source::file(&rel, "`_class_name` (a diffusers pipeline)"),
        );
        if let Some(tag) = pipeline_for_diffusers(class) {
            set_new(
                out,
                known,
                paths::MODEL_PIPELINE_TAG,
                tag,
                Source::file(&rel, format!("`_class_name` {class}")),
            );
        }
        return;
    }
    // sentence-transformers
    if let Some((_, rel)) =
        find(dirs, "modules.json").or_else(|| find(dirs, "config_sentence_transformers.json"))
    {
        set_library(
            out,
            known,
            "sentence-transformers",
            Source::file(&rel, "a sentence-transformers model"),
        );
        set_new(
            out,
            known,
            paths::MODEL_PIPELINE_TAG,
            "sentence-similarity",
            Source::file(&rel, "a sentence-transformers model"),
        );
        return;
    }
    // PEFT adapter
    let adapter = find(dirs, "adapter_config.json");
    if adapter.is_some() || known.contains(paths::MODEL_ADAPTER) {
        let source = match &adapter {
            Some((_, rel)) => Source::file(rel, "a PEFT adapter"),
            None => Source::derived("model.adapter: a PEFT adapter"),
        };
        set_library(out, known, "peft", source);
        let task = known
            .value(paths::MODEL_ADAPTER)
            .and_then(|a| a.get("task_type"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                let (path, _) = adapter.as_ref()?;
                read_json(path)?
                    .get("task_type")?
                    .as_str()
                    .map(str::to_owned)
            });
        if let Some(tag) = task.as_deref().and_then(pipeline_for_peft_task) {
            let source = match &adapter {
                Some((_, rel)) => Source::file(
                    rel,
                    format!("`task_type` {}", task.as_deref().unwrap_or_default()),
                ),
                None => Source::derived("model.adapter.task_type"),
            };
            set_new(out, known, paths::MODEL_PIPELINE_TAG, tag, source);
        }
        return;
    }
    // timm
    let config = find(dirs, "config.json");
    let config_json = config.as_ref().and_then(|(p, _)| read_json(p));
    if let (Some((_, rel)), Some(cfg)) = (&config, &config_json)
        && cfg.get("architecture").is_some_and(Value::is_string)
        && cfg.get("pretrained_cfg").is_some()
    {
        set_library(
            out,
            known,
            "timm",
            Source::file(rel, "`architecture` and `pretrained_cfg` (a timm model)"),
        );
        if cfg
            .get("num_classes")
            .and_then(Value::as_u64)
            .is_some_and(|n| n > 0)
        {
            set_new(
                out,
                known,
                paths::MODEL_PIPELINE_TAG,
                "image-classification",
                Source::file(rel, "`num_classes` of a timm model"),
            );
        }
        return;
    }
    // transformers
    let arch = known
        .str(paths::MODEL_ARCHITECTURE)
        .map(str::to_owned)
        .or_else(|| {
            config_json
                .as_ref()?
                .get("architectures")?
                .get(0)?
                .as_str()
                .map(str::to_owned)
        });
    if let Some(arch) = arch {
        let source = || match &config {
            Some((_, rel)) => Source::file(rel, format!("`architectures[0]` {arch}")),
            None => Source::derived(format!("model.architecture {arch}")),
        };
        if config.is_some() {
            set_new(
                out,
                known,
                paths::MODEL_LIBRARY_NAME,
                "transformers",
                source(),
            );
        }
        if let Some(tag) = pipeline_for_architecture(&arch) {
            set_new(out, known, paths::MODEL_PIPELINE_TAG, tag, source());
        }
    }
}

/// The models of a mergekit recipe: `base_model` first, then every `model:` in order, Hub ids
/// only (local paths are warned about and left out).
fn mergekit_models(yaml: &Value, rel: &str, out: &mut Facts) -> Vec<String> {
    fn walk(v: &Value, found: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    match (k.as_str(), child) {
                        ("model" | "base_model", Value::String(s)) => found.push(s.clone()),
                        // newer recipes: `model: {model: {path: org/name}}`
                        ("path", Value::String(s)) => found.push(s.clone()),
                        _ => walk(child, found),
                    }
                }
            }
            Value::Array(list) => list.iter().for_each(|c| walk(c, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    if let Some(base) = yaml.get("base_model") {
        walk(&serde_json::json!({ "base_model": base }), &mut found);
    }
    walk(yaml, &mut found);
    let mut ids: Vec<String> = Vec::new();
    for m in found {
        // `org/name+org/lora` applies a LoRA on load: the base part is the model.
        let m = m.split('+').next().unwrap_or_default().trim().to_owned();
        if ids.contains(&m) {
            continue;
        }
        if repo_ref(&m) == RepoRef::Id && m.contains('/') {
            ids.push(m);
        } else {
            out.warn(
                "merge-model-not-a-hub-id",
                format!("`{rel}` names `{m}`, not a Hub id: it is left out of `base_model`"),
            );
        }
    }
    ids
}

/// Whether a weights index has `metadata.mergekit_version`. Only `metadata` is built: the
/// `weight_map` (thousands of entries on large models) is skipped, not turned into a `Value`.
fn has_mergekit_mark(path: &Path) -> bool {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default)]
        metadata: Option<serde_json::Map<String, Value>>,
    }
    let Ok(bytes) = cardfill_facts::read::read(path, cardfill_facts::read::INDEX_CAP) else {
        return false;
    };
    // The checkpoint reader has parsed this index already: parse again only when the mark
    // can be there (a byte search, no JSON).
    if memchr::memmem::find(&bytes, b"mergekit_version").is_none() {
        return false;
    }
    serde_json::from_slice::<Index>(&bytes)
        .ok()
        .and_then(|i| i.metadata)
        .is_some_and(|m| m.contains_key("mergekit_version"))
}

/// `base_model_relation` (and the merged models) from the files and the facts.
pub(crate) fn relation(known: &Facts, dirs: &[PathBuf], out: &mut Facts) {
    if known.contains(paths::MODEL_BASE_MODEL_RELATION) {
        return;
    }
    // merge: a mergekit recipe, or mergekit's mark in the weights index
    let recipe = find(dirs, "mergekit_config.yml");
    let index_mark = [
        "model.safetensors.index.json",
        "pytorch_model.bin.index.json",
    ]
    .iter()
    .filter_map(|n| find(dirs, n))
    .find(|(p, _)| has_mergekit_mark(p));
    if let Some((path, rel)) = &recipe {
        let parsed = cardfill_facts::read::read_to_string(path, cardfill_facts::read::CONFIG_CAP)
            .map_err(|e| e.reason())
            .and_then(|t| parse_yaml(&t));
        match parsed {
            Ok(yaml) => {
                let ids = mergekit_models(&yaml, rel, out);
                if ids.len() >= 2 {
                    let source = Source::file(rel, "the models of the mergekit recipe");
                    out.set(paths::MODEL_BASE_MODEL, ids, source.clone());
                    out.set(paths::MODEL_BASE_MODEL_RELATION, "merge", source);
                }
            }
            Err(message) => out.warn(
                "mergekit-config-malformed",
                format!("`{rel}` is not valid YAML: {message}"),
            ),
        }
        return;
    }
    if let Some((_, rel)) = index_mark {
        if known
            .value(paths::MODEL_BASE_MODEL)
            .is_some_and(Value::is_array)
        {
            out.set(
                paths::MODEL_BASE_MODEL_RELATION,
                "merge",
                Source::file(rel, "`metadata.mergekit_version`"),
            );
        } else {
            out.warn(
                "merge-models-unknown",
                format!(
                    "`{rel}` was written by mergekit but no `mergekit_config.yml` names the \
                     merged models: `base_model` is not set"
                ),
            );
        }
        return;
    }
    let Some(base) = known.str(paths::MODEL_BASE_MODEL) else {
        return;
    };
    // adapter: PEFT files over the base model (normally set by the config collector)
    if let Some((_, rel)) = find(dirs, "adapter_config.json") {
        out.set(
            paths::MODEL_BASE_MODEL_RELATION,
            "adapter",
            Source::file(rel, format!("a PEFT adapter over {base}")),
        );
        return;
    }
    if known.contains(paths::MODEL_ADAPTER) || known.contains(paths::CHECKPOINT_QUANTIZATION) {
        return; // the config collector weighs adapters and quantization
    }
    // finetune: full weights and the trainer's outputs over a base model
    let weights = known.contains(paths::CHECKPOINT_FORMAT)
        && !known
            .bool(paths::CHECKPOINT_WEIGHTS_MISSING)
            .unwrap_or(false);
    let trained = [paths::TRAINING_STEPS, paths::TRAINING_RUNTIME_S]
        .iter()
        .any(|p| known.contains(p));
    let trainer_file = [
        "trainer_state.json",
        "all_results.json",
        "train_results.json",
    ]
    .iter()
    .find_map(|n| find(dirs, n));
    if weights && (trained || trainer_file.is_some()) {
        let evidence = match &trainer_file {
            Some((_, rel)) => format!("full weights, `{rel}`"),
            None => "full weights and training facts".to_owned(),
        };
        out.set(
            paths::MODEL_BASE_MODEL_RELATION,
            "finetune",
            Source::derived(format!("{evidence} and base model {base}")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures() {
        assert_eq!(
            pipeline_for_architecture("LlamaForCausalLM"),
            Some("text-generation")
        );
        assert_eq!(
            pipeline_for_architecture("GPT2LMHeadModel"),
            Some("text-generation")
        );
        assert_eq!(
            pipeline_for_architecture("WhisperForConditionalGeneration"),
            Some("automatic-speech-recognition")
        );
        assert_eq!(
            pipeline_for_architecture("ViTForImageClassification"),
            Some("image-classification")
        );
        assert_eq!(
            pipeline_for_architecture("T5ForConditionalGeneration"),
            None
        );
        assert_eq!(pipeline_for_architecture("BertModel"), None);
        assert_eq!(pipeline_for_peft_task("CAUSAL_LM"), Some("text-generation"));
        assert_eq!(pipeline_for_peft_task("SEQ_2_SEQ_LM"), None);
        assert_eq!(
            pipeline_for_diffusers("StableDiffusionPipeline"),
            Some("text-to-image")
        );
        for tag in [
            "text-generation",
            "automatic-speech-recognition",
            "image-text-to-text",
        ] {
            assert!(crate::lists::is_pipeline_tag(tag));
        }
    }

    #[test]
    fn mergekit_recipes_list_base_first() {
        let yaml = parse_yaml(
            "models:\n  - model: org/a\n    parameters: {weight: 0.5}\n  - model: org/b+org/lora\n  - model: /local/c\nmerge_method: ties\nbase_model: org/base\n",
        )
        .unwrap();
        let mut out = Facts::new();
        let ids = mergekit_models(&yaml, "mergekit_config.yml", &mut out);
        assert_eq!(ids, ["org/base", "org/a", "org/b"]);
        assert_eq!(out.warnings().len(), 1);
    }
}
