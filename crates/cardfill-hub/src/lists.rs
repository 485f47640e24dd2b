//! The value lists the Hub accepts, embedded from `data/` (sources in `data/README.md`).

use std::collections::HashSet;
use std::sync::LazyLock;

fn entries(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

static LICENSES: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| entries(include_str!("../data/licenses.txt")).collect());
const PIPELINE_TAGS_TEXT: &str = include_str!("../data/pipeline-tags.txt");
static PIPELINE_TAGS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| entries(PIPELINE_TAGS_TEXT).collect());
const LIBRARY_NAMES_TEXT: &str = include_str!("../data/library-names.txt");
static LANGUAGES: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| entries(include_str!("../data/languages.txt")).collect());

/// Whether `id` is one of the Hub's licence ids (`apache-2.0`, `llama3.1`, `other`, ...).
pub fn is_license(id: &str) -> bool {
    LICENSES.contains(id)
}

/// Whether `tag` is one of the Hub's 57 pipeline tags.
pub fn is_pipeline_tag(tag: &str) -> bool {
    // A run looks up one or two: scanning the short list costs less than building a set.
    entries(PIPELINE_TAGS_TEXT).any(|t| t == tag)
}

/// Whether `name` is a library the Hub knows (`transformers`, `peft`, `diffusers`, ...).
pub fn is_library_name(name: &str) -> bool {
    // A run looks up one: scanning the list costs less than building a set.
    entries(LIBRARY_NAMES_TEXT).any(|n| n == name)
}

/// Whether `code` is a language the Hub accepts: an ISO 639-1, 639-2 or 639-3 code,
/// `multilingual` or `code`. Region subtags (`es-ES`, `zh-CN`) are not accepted.
pub fn is_language(code: &str) -> bool {
    code == "multilingual" || code == "code" || LANGUAGES.contains(code)
}

/// The licence id `id` most likely meant (`MIT` → `mit`, `Apache 2.0` → `apache-2.0`).
pub fn license_suggestion(id: &str) -> Option<&'static str> {
    let norm = id.trim().to_ascii_lowercase().replace([' ', '_'], "-");
    let norm = norm.trim_end_matches("-license");
    let norm = norm.strip_suffix("-only").unwrap_or(norm);
    LICENSES.get(norm).copied()
}

/// The pipeline tag matching `tag` case-insensitively or with `_` for `-`, for fix suggestions.
pub fn pipeline_tag_suggestion(tag: &str) -> Option<&'static str> {
    let norm = tag.trim().to_ascii_lowercase().replace(['_', ' '], "-");
    PIPELINE_TAGS.iter().copied().find(|t| *t == norm)
}

/// The language code a rejected value most likely meant (`es-ES` → `es`, `EN` → `en`).
pub fn language_suggestion(code: &str) -> Option<&'static str> {
    let lower = code.trim().to_ascii_lowercase();
    let primary = lower.split(['-', '_']).next().unwrap_or_default();
    LANGUAGES.get(primary).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_have_their_documented_sizes() {
        assert_eq!(PIPELINE_TAGS.len(), 57);
        assert_eq!(LICENSES.len(), 82);
        let libraries = entries(LIBRARY_NAMES_TEXT).count();
        assert!(libraries >= 240, "{libraries}");
        assert!(LANGUAGES.len() > 7000, "{}", LANGUAGES.len());
    }

    #[test]
    fn known_values_and_rejections() {
        for ok in [
            "apache-2.0",
            "llama2",
            "llama3.1",
            "gemma",
            "other",
            "unknown",
        ] {
            assert!(is_license(ok), "{ok}");
        }
        assert!(!is_license("Apache 2.0"));
        assert!(!is_license("apache"));
        assert!(is_pipeline_tag("text-generation"));
        assert!(!is_pipeline_tag("text2text-generation"));
        assert!(is_library_name("sentence-transformers"));
        assert!(!is_library_name("pytorch"));
        for ok in ["en", "nob", "fra", "fre", "yue", "multilingual", "code"] {
            assert!(is_language(ok), "{ok}");
        }
        for bad in ["noinfo", "es-ES", "zh-CN", "en_unnorm", "EN", ""] {
            assert!(!is_language(bad), "{bad}");
        }
        assert_eq!(language_suggestion("es-ES"), Some("es"));
        assert_eq!(license_suggestion("MIT"), Some("mit"));
        assert_eq!(license_suggestion("Apache 2.0"), Some("apache-2.0"));
        assert_eq!(license_suggestion("GPL-3.0-only"), Some("gpl-3.0"));
        assert_eq!(
            pipeline_tag_suggestion("Text_Generation"),
            Some("text-generation")
        );
    }
}
