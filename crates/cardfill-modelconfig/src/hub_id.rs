//! The rule that keeps local paths out of `base_model`.

/// What a `_name_or_path` or `base_model_name_or_path` value turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubId {
    /// A Hub id `org/name`.
    Id(String),
    /// A Hugging Face cache path that names a Hub id.
    FromCache(String),
    /// A local path, or a bare name that could be one: never a base model.
    LocalPath,
}

/// Classifies `value`: a Hub id, a cache path (`…/models--org--name/snapshots/…`) mapped to
/// its id, or a local path.
pub fn hub_id(value: &str) -> HubId {
    let value = value.trim();
    if let Some(id) = cache_path_id(value) {
        return HubId::FromCache(id);
    }
    if is_hub_id(value) {
        HubId::Id(value.to_owned())
    } else {
        HubId::LocalPath
    }
}

fn cache_path_id(value: &str) -> Option<String> {
    let segment = value
        .split(['/', '\\'])
        .find(|s| s.starts_with("models--"))?;
    let rest = segment.strip_prefix("models--")?;
    let id = rest.replacen("--", "/", 1);
    is_hub_id(&id).then_some(id)
}

/// Whether `value` has the shape of a Hub model id `org/name`, each part of ASCII
/// letters, digits, `-`, `_`, `.`, not starting or ending with `-` or `.`, without `--` or `..`
/// (the Hub bans both), at most 96 characters.
fn is_hub_id(value: &str) -> bool {
    if value.is_empty() || value.len() > 96 {
        return false;
    }
    let parts: Vec<&str> = value.split('/').collect();
    if parts.len() != 2 {
        return false;
    }
    parts.iter().all(|p| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !p.starts_with(['-', '.'])
            && !p.ends_with(['-', '.'])
            && !p.contains("..")
            && !p.contains("--")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cache_paths_and_local_paths() {
        assert_eq!(
            hub_id("meta-llama/Llama-2-7b-chat-hf"),
            HubId::Id("meta-llama/Llama-2-7b-chat-hf".into())
        );
        assert_eq!(hub_id("gpt2"), HubId::LocalPath);
        assert_eq!(
            hub_id("/root/.cache/huggingface/hub/models--openai--whisper-tiny/snapshots/abc123"),
            HubId::FromCache("openai/whisper-tiny".into())
        );
        assert_eq!(hub_id("/data/ckpts/llama"), HubId::LocalPath);
        assert_eq!(hub_id("./output"), HubId::LocalPath);
        assert_eq!(hub_id("../x/y"), HubId::LocalPath);
        assert_eq!(hub_id("C:\\models\\x"), HubId::LocalPath);
        assert_eq!(hub_id("output_dir"), HubId::LocalPath);
        assert_eq!(hub_id("a--b/c"), HubId::LocalPath);
    }
}
