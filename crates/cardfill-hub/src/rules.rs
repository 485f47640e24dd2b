//! The metadata rules the Hub enforces, one check per key, each problem with its fix.
//!
//! Used by [`crate::validate_card`] on a README's front matter and by [`crate::sanitize`] on
//! facts before they are written, so that `fill` never writes what `validate` rejects.

use serde_json::{Map, Value};

use crate::lists;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The Hub accepts the card but something is likely wrong (it shows no widget, a link is
    /// lost).
    Warning,
    /// The Hub rejects the card (its validator answers 400 and the commit fails).
    Error,
}

/// One finding about a metadata key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The key, with a path inside it where useful (`model-index[0].results[0].dataset.type`).
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
    /// 1-based line of the top-level key in the card, where found.
    pub line: Option<usize>,
}

impl Problem {
    fn new(
        severity: Severity,
        key: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            key: key.into(),
            message: message.into(),
            fix: fix.into(),
            line: None,
        }
    }

    /// An error: the Hub rejects this.
    pub fn error(
        key: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Error, key, message, fix)
    }

    /// A warning: accepted, but likely wrong.
    pub fn warning(
        key: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Warning, key, message, fix)
    }

    /// Whether the Hub rejects the card for this.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}; {}", self.key, self.message, self.fix)
    }
}

/// Short rendering of a YAML value for messages.
pub(crate) fn show(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    };
    let mut short: String = text.chars().take(60).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("`{short}`")
}

const LICENSES_URL: &str = "https://huggingface.co/docs/hub/repositories-licenses";

/// What a string in `base_model`, `datasets` or `new_version` is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RepoRef {
    /// A Hub id (`org/name`, or a legacy bare `name`).
    Id,
    /// A local file system path.
    LocalPath,
    /// A URL to the Hub or elsewhere.
    Url,
    /// Neither: characters the Hub does not allow in ids.
    Invalid,
}

/// Classifies a repository reference the way the Hub's rule needs: ids are `name` or
/// `org/name`, each part of ASCII letters, digits, `-`, `_`, `.`, not starting or ending with
/// `-` or `.`, no `--` or `..`, at most 96 characters.
pub(crate) fn repo_ref(value: &str) -> RepoRef {
    let v = value.trim();
    if v.starts_with("http://") || v.starts_with("https://") {
        return RepoRef::Url;
    }
    let drive = v.len() > 2 && v.as_bytes()[1] == b':' && v.as_bytes()[0].is_ascii_alphabetic();
    if v.starts_with(['/', '~', '.'])
        || v.contains('\\')
        || drive
        || v.split('/').count() > 2
        || v.ends_with('/')
    {
        return RepoRef::LocalPath;
    }
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !p.starts_with(['-', '.'])
            && !p.ends_with(['-', '.'])
            && !p.contains("--")
            && !p.contains("..")
    };
    if v.len() <= 96 && v.split('/').all(part_ok) {
        RepoRef::Id
    } else {
        RepoRef::Invalid
    }
}

fn check_repo_ids(key: &str, value: &Value, what: &str, out: &mut Vec<Problem>) {
    let items: Vec<(String, &Value)> = match value {
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{key}[{i}]"), v))
            .collect(),
        other => vec![(key.to_owned(), other)],
    };
    for (at, item) in items {
        let Some(s) = item.as_str() else {
            out.push(Problem::error(
                at,
                format!("{} is not a {what} id", show(item)),
                "write the id as a string (`org/name`) or remove the entry",
            ));
            continue;
        };
        match repo_ref(s) {
            RepoRef::Id => {}
            RepoRef::LocalPath => out.push(Problem::error(
                at,
                format!("`{s}` is a local path, not a Hub {what} id"),
                format!("use the {what}'s Hub id (`org/name`) or remove the entry"),
            )),
            RepoRef::Url => out.push(Problem::error(
                at,
                format!("`{s}` is a URL, not a Hub {what} id"),
                "write just the id (`org/name`)",
            )),
            RepoRef::Invalid => out.push(Problem::error(
                at,
                format!("`{s}` is not a valid Hub {what} id"),
                "use an id `org/name` of letters, digits, `-`, `_` and `.`",
            )),
        }
    }
}

fn check_license(meta: &Map<String, Value>, out: &mut Vec<Problem>) {
    let Some(value) = meta.get("license") else {
        for key in ["license_name", "license_link"] {
            if meta.contains_key(key) {
                out.push(Problem::error(
                    key,
                    "is only allowed with `license: other`",
                    "add `license: other` or remove the key",
                ));
            }
        }
        return;
    };
    let ids: Vec<(String, &Value)> = match value {
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("license[{i}]"), v))
            .collect(),
        other => vec![("license".to_owned(), other)],
    };
    let mut other = false;
    for (at, id) in ids {
        match id.as_str() {
            Some(s) if lists::is_license(s) => other |= s == "other",
            Some(s) => {
                let fix = match lists::license_suggestion(s) {
                    Some(good) => format!("use `{good}`"),
                    None => format!(
                        "use an id from {LICENSES_URL}, or `license: other` with \
                         `license_name` and `license_link`"
                    ),
                };
                out.push(Problem::error(
                    at,
                    format!("`{s}` is not a Hub licence id"),
                    fix,
                ));
            }
            None => out.push(Problem::error(
                at,
                format!("{} is not a licence id", show(id)),
                format!("use an id from {LICENSES_URL}"),
            )),
        }
    }
    if other {
        for key in ["license_name", "license_link"] {
            if !meta.contains_key(key) {
                out.push(Problem::warning(
                    key,
                    "is missing: with `license: other` the Hub shows no licence name or text",
                    if key == "license_name" {
                        "add `license_name:` with a short id such as `my-license-1.0`"
                    } else {
                        "add `license_link:` with `LICENSE` (a file in the repo) or a URL"
                    },
                ));
            }
        }
    } else {
        for key in ["license_name", "license_link"] {
            if meta.contains_key(key) {
                out.push(Problem::error(
                    key,
                    "is only allowed with `license: other`",
                    "set `license: other` or remove the key",
                ));
            }
        }
    }
    if let Some(name) = meta.get("license_name") {
        match name.as_str() {
            Some(s)
                if !s.is_empty()
                    && s.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_')
                    }) => {}
            Some(s) if !s.is_empty() => out.push(Problem::warning(
                "license_name",
                format!("`{s}` is not a short licence id"),
                "use lowercase letters, digits, `-` and `.` (e.g. `my-license-1.0`)",
            )),
            _ => {}
        }
    }
    if let Some(link) = meta.get("license_link") {
        match link.as_str() {
            Some(s) if s.contains(char::is_whitespace) => out.push(Problem::error(
                "license_link",
                format!("`{s}` is not a link"),
                "use `LICENSE` (a file in the repo) or a URL",
            )),
            Some(_) | None => {}
        }
    }
}

fn check_language(value: &Value, out: &mut Vec<Problem>) {
    let items: Vec<(String, &Value)> = match value {
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("language[{i}]"), v))
            .collect(),
        other => vec![("language".to_owned(), other)],
    };
    for (at, item) in items {
        match item.as_str() {
            Some(code) if lists::is_language(code) => {}
            // the shape the Hub checks: 2 or 3 lowercase letters (published cards carry `unk`)
            Some(code)
                if (2..=3).contains(&code.len()) && code.chars().all(|c| c.is_ascii_lowercase()) =>
            {
                out.push(Problem::warning(
                    at,
                    format!("`{code}` is not an ISO 639 language code"),
                    "use an ISO 639-1, 639-2 or 639-3 code (`en`, `fra`), or remove it",
                ));
            }
            Some(code) => {
                let fix = match lists::language_suggestion(code) {
                    Some(good) => format!("use the ISO 639 code `{good}`"),
                    None => "use an ISO 639-1, 639-2 or 639-3 code (`en`, `fra`), \
                             `multilingual`, or remove it"
                        .to_owned(),
                };
                out.push(Problem::error(
                    at,
                    format!("`{code}` is not an ISO 639 language code"),
                    fix,
                ));
            }
            None => out.push(Problem::error(
                at,
                format!("{} is not a language code", show(item)),
                "write the code as a string (`en`), or remove it (YAML reads `no` as false: quote it)",
            )),
        }
    }
}

fn check_pipeline_tag(value: &Value, out: &mut Vec<Problem>) {
    match value.as_str() {
        Some(tag) if lists::is_pipeline_tag(tag) => {}
        other => {
            let fix = match other.and_then(lists::pipeline_tag_suggestion) {
                Some(good) => format!("use `{good}`"),
                None => "use one of the Hub's tasks (`text-generation`, `text-classification`, \
                         … see https://huggingface.co/tasks) or remove the key"
                    .to_owned(),
            };
            out.push(Problem::error(
                "pipeline_tag",
                format!("{} is not a Hub pipeline tag", show(value)),
                fix,
            ));
        }
    }
}

fn check_library_name(value: &Value, out: &mut Vec<Problem>) {
    match value.as_str() {
        Some(name) if lists::is_library_name(name) => {}
        Some(name) if lists::is_library_name(&name.to_ascii_lowercase()) => {
            out.push(Problem::warning(
                "library_name",
                format!("`{name}` is not a library id the Hub knows"),
                format!("use `{}`", name.to_ascii_lowercase()),
            ));
        }
        Some(name) => out.push(Problem::warning(
            "library_name",
            format!("`{name}` is not a library the Hub knows: no code snippet is shown"),
            "use one of the Hub's libraries (`transformers`, `peft`, `diffusers`, …)",
        )),
        None => out.push(Problem::error(
            "library_name",
            format!("{} is not a library name", show(value)),
            "write the library as a string (`transformers`)",
        )),
    }
}

fn check_relation(meta: &Map<String, Value>, value: &Value, out: &mut Vec<Problem>) {
    const RELATIONS: [&str; 4] = ["adapter", "merge", "quantized", "finetune"];
    match value.as_str() {
        Some(r) if RELATIONS.contains(&r) => {
            if !meta.contains_key("base_model") {
                out.push(Problem::error(
                    "base_model_relation",
                    "is set but `base_model` is missing",
                    "add `base_model:` with the Hub id, or remove the key",
                ));
            }
        }
        _ => out.push(Problem::error(
            "base_model_relation",
            format!("{} is not a relation the Hub knows", show(value)),
            "use `adapter`, `merge`, `quantized` or `finetune`, or remove the key (the Hub infers it)",
        )),
    }
}

fn is_number(value: &Value) -> bool {
    value.as_f64().is_some_and(f64::is_finite)
}

fn check_co2(value: &Value, out: &mut Vec<Problem>) {
    const KEY: &str = "co2_eq_emissions";
    match value {
        v if is_number(v) => {
            if v.as_f64().is_some_and(|x| x < 0.0) {
                out.push(Problem::error(
                    KEY,
                    "is negative",
                    "write the emissions in grams CO2eq, ≥ 0",
                ));
            }
        }
        Value::String(s) => out.push(Problem::error(
            KEY,
            format!("`{s}` is text, not a number"),
            "write a bare number of grams CO2eq (`149200`, not `149200 g`)",
        )),
        Value::Object(map) => {
            match map.get("emissions") {
                None => out.push(Problem::error(
                    format!("{KEY}.emissions"),
                    "is missing",
                    "add `emissions:` with the grams of CO2eq",
                )),
                Some(v) if is_number(v) => {
                    if v.as_f64().is_some_and(|x| x < 0.0) {
                        out.push(Problem::error(
                            format!("{KEY}.emissions"),
                            "is negative",
                            "write the emissions in grams CO2eq, ≥ 0",
                        ));
                    }
                }
                Some(v) => out.push(Problem::error(
                    format!("{KEY}.emissions"),
                    format!("{} is not a number", show(v)),
                    "write a bare number of grams CO2eq (`149200`, not `149200 g` or `0.15 kg`)",
                )),
            }
            if let Some(t) = map.get("training_type")
                && !matches!(t.as_str(), Some("pre-training" | "fine-tuning"))
            {
                out.push(Problem::warning(
                    format!("{KEY}.training_type"),
                    format!("{} is not a training type the Hub knows", show(t)),
                    "use `pre-training` or `fine-tuning`",
                ));
            }
            for key in ["source", "geographical_location", "hardware_used"] {
                if let Some(v) = map.get(key)
                    && !v.is_string()
                {
                    out.push(Problem::error(
                        format!("{KEY}.{key}"),
                        format!("{} is not text", show(v)),
                        "write it as a string",
                    ));
                }
            }
            // cardfill's extra keys (the Hub ignores unknown keys): numbers ≥ 0 in their unit.
            for (key, unit) in [
                ("energy_consumed", "kWh"),
                ("energy_consumed_it", "kWh"),
                ("pue", "PUE (≥ 1)"),
                ("grid_intensity", "g CO2eq/kWh"),
                ("grid_intensity_year", "year"),
                ("emissions_market_based", "grams CO2eq"),
                ("emissions_embodied", "grams CO2eq"),
            ] {
                if let Some(v) = map.get(key) {
                    let ok = v
                        .as_f64()
                        .is_some_and(|x| x.is_finite() && x >= 0.0 && (key != "pue" || x >= 1.0));
                    if !ok {
                        out.push(Problem::warning(
                            format!("{KEY}.{key}"),
                            format!("{} is not a valid number", show(v)),
                            format!("write a bare number: {unit}"),
                        ));
                    }
                }
            }
            if let Some(v) = map.get("grid_intensity_source")
                && !v.is_string()
            {
                out.push(Problem::warning(
                    format!("{KEY}.grid_intensity_source"),
                    format!("{} is not text", show(v)),
                    "write it as a string",
                ));
            }
        }
        other => out.push(Problem::error(
            KEY,
            format!("{} is neither a number nor a mapping", show(other)),
            "write grams CO2eq as a number, or a mapping with `emissions:` in grams",
        )),
    }
}

fn require_map<'a>(
    at: &str,
    value: Option<&'a Value>,
    required: bool,
    out: &mut Vec<Problem>,
) -> Option<&'a Map<String, Value>> {
    match value {
        Some(Value::Object(map)) => Some(map),
        Some(other) => {
            out.push(Problem::error(
                at,
                format!("{} must be a mapping", show(other)),
                "write it as `key: value` lines",
            ));
            None
        }
        None => {
            if required {
                out.push(Problem::error(
                    at,
                    "is missing",
                    "add it (required by the Hub)",
                ));
            }
            None
        }
    }
}

fn require_field(map: &Map<String, Value>, at: &str, field: &str, out: &mut Vec<Problem>) {
    match map.get(field) {
        None | Some(Value::Null) => out.push(Problem::error(
            format!("{at}.{field}"),
            "is missing",
            "add it (required by the Hub)",
        )),
        Some(Value::String(s)) if s.trim().is_empty() => out.push(Problem::error(
            format!("{at}.{field}"),
            "is empty",
            "give it a value",
        )),
        _ => {}
    }
}

fn optional_string(map: &Map<String, Value>, at: &str, field: &str, out: &mut Vec<Problem>) {
    if let Some(v) = map.get(field)
        && !v.is_string()
    {
        out.push(Problem::error(
            format!("{at}.{field}"),
            format!("{} must be a string", show(v)),
            format!("quote it: `\"{}\"`", v.to_string().trim_matches('"')),
        ));
    }
}

fn require_list<'a>(
    at: &str,
    value: Option<&'a Value>,
    allow_empty: bool,
    out: &mut Vec<Problem>,
) -> Option<&'a Vec<Value>> {
    match value {
        Some(Value::Array(list)) if allow_empty || !list.is_empty() => Some(list),
        Some(Value::Array(_)) => {
            out.push(Problem::error(
                at,
                "is an empty list",
                "add at least one entry",
            ));
            None
        }
        Some(other) => {
            out.push(Problem::error(
                at,
                format!("{} must be an array", show(other)),
                "write it as a list (`- …` lines)",
            ));
            None
        }
        None => {
            out.push(Problem::error(
                at,
                "is missing",
                "add it (required by the Hub)",
            ));
            None
        }
    }
}

fn check_model_index(value: &Value, out: &mut Vec<Problem>) {
    let Some(models) = require_list("model-index", Some(value), false, out) else {
        return;
    };
    for (m, model) in models.iter().enumerate() {
        let at = format!("model-index[{m}]");
        let Some(model) = require_map(&at, Some(model), true, out) else {
            continue;
        };
        if model.get("name").is_none_or(|n| !n.is_string()) {
            out.push(Problem::error(
                format!("{at}.name"),
                "is missing",
                "add `name:` with the model's name",
            ));
        }
        let Some(results) = require_list(&format!("{at}.results"), model.get("results"), true, out)
        else {
            continue;
        };
        for (r, result) in results.iter().enumerate() {
            let at = format!("{at}.results[{r}]");
            let Some(result) = require_map(&at, Some(result), true, out) else {
                continue;
            };
            let task_at = format!("{at}.task");
            if let Some(task) = require_map(&task_at, result.get("task"), true, out) {
                require_field(task, &task_at, "type", out);
                optional_string(task, &task_at, "name", out);
            }
            let ds_at = format!("{at}.dataset");
            if let Some(ds) = require_map(&ds_at, result.get("dataset"), true, out) {
                require_field(ds, &ds_at, "type", out);
                require_field(ds, &ds_at, "name", out);
                for f in ["type", "name", "config", "split", "revision"] {
                    optional_string(ds, &ds_at, f, out);
                }
            }
            let metrics_at = format!("{at}.metrics");
            if let Some(metrics) = require_list(&metrics_at, result.get("metrics"), false, out) {
                for (k, metric) in metrics.iter().enumerate() {
                    let at = format!("{metrics_at}[{k}]");
                    if let Some(metric) = require_map(&at, Some(metric), true, out) {
                        require_field(metric, &at, "type", out);
                        require_field(metric, &at, "value", out);
                        for f in ["type", "name", "config"] {
                            optional_string(metric, &at, f, out);
                        }
                    }
                }
            }
            let source_at = format!("{at}.source");
            if let Some(source) = require_map(&source_at, result.get("source"), false, out) {
                require_field(source, &source_at, "url", out);
                optional_string(source, &source_at, "url", out);
                optional_string(source, &source_at, "name", out);
            }
        }
    }
}

fn check_string_list(key: &str, value: &Value, out: &mut Vec<Problem>) {
    match value {
        Value::String(_) => {}
        Value::Array(list) => {
            for (i, item) in list.iter().enumerate() {
                if !item.is_string() {
                    out.push(Problem::error(
                        format!("{key}[{i}]"),
                        format!("{} is not a string", show(item)),
                        "remove the entry or write it as text",
                    ));
                }
            }
        }
        other => out.push(Problem::error(
            key,
            format!("{} must be a string or a list of strings", show(other)),
            "write it as a list (`- …` lines)",
        )),
    }
}

/// Checks one top-level key of the metadata. `meta` is the whole mapping, for rules that
/// relate keys (`license_name` needs `license: other`).
pub fn check_key(meta: &Map<String, Value>, key: &str, value: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    if value.is_null() || value.as_str().is_some_and(|s| s.trim().is_empty()) {
        out.push(Problem::error(
            key,
            "is empty",
            "give it a value or remove the key",
        ));
        return out;
    }
    match key {
        "language" => check_language(value, &mut out),
        "license" => check_license(meta, &mut out),
        "license_name" | "license_link" if !meta.contains_key("license") => {
            check_license(meta, &mut out);
            out.retain(|p| p.key == key);
        }
        "pipeline_tag" => check_pipeline_tag(value, &mut out),
        "library_name" => check_library_name(value, &mut out),
        "base_model" => check_repo_ids(key, value, "model", &mut out),
        "new_version" => match value {
            Value::String(_) => check_repo_ids(key, value, "model", &mut out),
            other => out.push(Problem::error(
                key,
                format!("{} must be one model id", show(other)),
                "write one Hub id `org/name`",
            )),
        },
        "datasets" => check_repo_ids(key, value, "dataset", &mut out),
        "base_model_relation" => check_relation(meta, value, &mut out),
        "co2_eq_emissions" => check_co2(value, &mut out),
        "model-index" => check_model_index(value, &mut out),
        "tags" | "metrics" => check_string_list(key, value, &mut out),
        "widget" if !value.is_array() => out.push(Problem::error(
            key,
            format!("{} must be an array", show(value)),
            "write each example as a list entry (`- text: …`)",
        )),
        _ => {}
    }
    out
}

/// Checks a whole metadata mapping, key by key, in order.
pub fn check_metadata(meta: &Map<String, Value>) -> Vec<Problem> {
    meta.iter()
        .flat_map(|(key, value)| check_key(meta, key, value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_refs() {
        assert_eq!(repo_ref("meta-llama/Llama-2-7b-hf"), RepoRef::Id);
        assert_eq!(repo_ref("gpt2"), RepoRef::Id);
        assert_eq!(repo_ref("/var/hf/images/"), RepoRef::LocalPath);
        assert_eq!(repo_ref("./out"), RepoRef::LocalPath);
        assert_eq!(repo_ref("~/models/x"), RepoRef::LocalPath);
        assert_eq!(repo_ref("C:\\models"), RepoRef::LocalPath);
        assert_eq!(repo_ref("data/ckpts/llama"), RepoRef::LocalPath);
        assert_eq!(repo_ref("https://huggingface.co/gpt2"), RepoRef::Url);
        assert_eq!(repo_ref("my model"), RepoRef::Invalid);
    }
}
