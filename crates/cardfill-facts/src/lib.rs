//! The facts model: every value cardfill may write into a card, at a stable dotted path
//! (`parameters.total`), together with where it came from.
//!
//! Collectors each return a [`Facts`]; the binary merges them in order of trust and hands the
//! result to the card renderer. Facts hold plain JSON values rather than one typed struct per
//! collector so that `inspect --format json` is the facts themselves and later collectors add
//! paths without touching this crate. The documented paths live in [`paths`].
//!
//! Design rule: unknown facts are absent, never guessed. A collector that could not tell records
//! a [`Warning`], not a default.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod display;
pub mod paths;
pub mod read;
mod source;

use std::collections::BTreeMap;

pub use display::{human_bytes, human_count, human_hours, thousands, three_significant, trimmed};
use serde::Serialize;
use serde_json::Map;
pub use serde_json::Value;
pub use source::Source;

/// One collected value and its provenance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fact {
    /// The value, as it appears in `inspect --format json`.
    pub value: Value,
    /// Where the value came from.
    pub source: Source,
}

/// A problem a collector met that did not stop it, or that stopped it alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// A stable kebab-case code, e.g. `config-json-malformed`.
    pub code: String,
    /// One line: the file or probe, and what is wrong.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}]", self.message, self.code)
    }
}

/// Facts keyed by dotted path (`model.architecture`), plus the warnings met collecting them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    values: BTreeMap<String, Fact>,
    warnings: Vec<Warning>,
}

impl Facts {
    /// An empty set of facts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `path` to `value`, replacing any earlier value. `Value::Null` removes the path:
    /// unknown facts are absent.
    pub fn set(&mut self, path: &str, value: impl Into<Value>, source: Source) {
        let value = value.into();
        if value.is_null() {
            self.values.remove(path);
        } else {
            self.values.insert(path.to_owned(), Fact { value, source });
        }
    }

    /// Sets `path` only if it has no value yet; returns whether it was set.
    pub fn set_if_absent(&mut self, path: &str, value: impl Into<Value>, source: Source) -> bool {
        if self.values.contains_key(path) {
            return false;
        }
        let value = value.into();
        if value.is_null() {
            return false;
        }
        self.values.insert(path.to_owned(), Fact { value, source });
        true
    }

    /// Removes `path`, returning what it held.
    pub fn remove(&mut self, path: &str) -> Option<Fact> {
        self.values.remove(path)
    }

    /// The fact at `path`, if known.
    pub fn get(&self, path: &str) -> Option<&Fact> {
        self.values.get(path)
    }

    /// The value at `path`, if known.
    pub fn value(&self, path: &str) -> Option<&Value> {
        self.values.get(path).map(|f| &f.value)
    }

    /// The value at `path` as a string slice, if it is one.
    pub fn str(&self, path: &str) -> Option<&str> {
        self.value(path).and_then(Value::as_str)
    }

    /// The value at `path` as an unsigned integer, if it is one.
    pub fn u64(&self, path: &str) -> Option<u64> {
        self.value(path).and_then(Value::as_u64)
    }

    /// The value at `path` as a float (integers convert), if it is a number.
    pub fn f64(&self, path: &str) -> Option<f64> {
        self.value(path).and_then(Value::as_f64)
    }

    /// The value at `path` as a boolean, if it is one.
    pub fn bool(&self, path: &str) -> Option<bool> {
        self.value(path).and_then(Value::as_bool)
    }

    /// Whether `path` has a value.
    pub fn contains(&self, path: &str) -> bool {
        self.values.contains_key(path)
    }

    /// All facts, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Fact)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether no fact is known.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Records a warning.
    pub fn warn(&mut self, code: &str, message: impl Into<String>) {
        self.warnings.push(Warning {
            code: code.to_owned(),
            message: message.into(),
        });
    }

    /// The warnings recorded so far, in order.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Adds `other` beneath `self`: paths already known in `self` keep their value (self is
    /// the more trusted evidence); warnings are appended.
    pub fn absorb(&mut self, other: Facts) {
        for (path, fact) in other.values {
            self.values.entry(path).or_insert(fact);
        }
        self.warnings.extend(other.warnings);
    }

    /// Adds `other` over `self`: paths in `other` replace those in `self`; warnings are appended.
    pub fn overlay(&mut self, other: Facts) {
        self.values.extend(other.values);
        self.warnings.extend(other.warnings);
    }

    /// Rewrites every fact's source and every warning's message in place: facts collected
    /// from a stand-in directory, told where they really came from.
    pub fn rewrite(
        &mut self,
        mut source: impl FnMut(&mut Source),
        mut message: impl FnMut(&mut String),
    ) {
        for fact in self.values.values_mut() {
            source(&mut fact.source);
        }
        for w in &mut self.warnings {
            message(&mut w.message);
        }
    }

    /// The JSON contract of `inspect --format json`: values nested by their dotted paths,
    /// a top-level `sources` object mapping each path to a readable provenance string, and
    /// `warnings` as a list of `{code, message}`.
    pub fn to_json(&self) -> Value {
        json_of(
            self.values
                .iter()
                .map(|(path, fact)| (path.clone(), fact.value.clone(), &fact.source)),
            &self.warnings,
        )
    }

    /// [`Facts::to_json`], moving the values instead of copying them.
    pub fn into_json(self) -> Value {
        json_of(
            self.values
                .into_iter()
                .map(|(path, fact)| (path, fact.value, fact.source)),
            &self.warnings,
        )
    }
}

/// The JSON of [`Facts::to_json`] from (path, value, source) in path order.
fn json_of<S: std::fmt::Display>(
    facts: impl Iterator<Item = (String, Value, S)>,
    warnings: &[Warning],
) -> Value {
    let mut root = Map::new();
    let mut sources = Map::new();
    for (path, value, source) in facts {
        insert_dotted(&mut root, &path, value);
        sources.insert(path, Value::String(source.to_string()));
    }
    root.insert("sources".into(), Value::Object(sources));
    let warnings = warnings
        .iter()
        .map(|w| serde_json::json!({ "code": w.code, "message": w.message }))
        .collect();
    root.insert("warnings".into(), Value::Array(warnings));
    Value::Object(root)
}

fn insert_dotted(root: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut node = root;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            node.insert(part.to_owned(), value);
            return;
        }
        let entry = node
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            // A leaf and a branch share a prefix; keep the leaf under `_value`.
            let leaf = std::mem::replace(entry, Value::Object(Map::new()));
            if let Value::Object(m) = entry {
                m.insert("_value".into(), leaf);
            }
        }
        match entry {
            Value::Object(m) => node = m,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_nests_paths_and_lists_sources() {
        let mut f = Facts::new();
        f.set(
            paths::MODEL_ARCHITECTURE,
            "LlamaForCausalLM",
            Source::file("config.json", "architectures[0]"),
        );
        f.set(
            paths::PARAMETERS_BY_DTYPE,
            serde_json::json!({"BF16": 10}),
            Source::file("model.safetensors", "header"),
        );
        f.set(
            paths::PARAMETERS_TOTAL,
            10u64,
            Source::derived("sum of parameters.by_dtype"),
        );
        f.warn("config-json-missing", "`config.json` not found");
        insta::assert_snapshot!(serde_json::to_string_pretty(&f.to_json()).unwrap(), @r#"
        {
          "model": {
            "architecture": "LlamaForCausalLM"
          },
          "parameters": {
            "by_dtype": {
              "BF16": 10
            },
            "total": 10
          },
          "sources": {
            "model.architecture": "config.json: architectures[0]",
            "parameters.by_dtype": "model.safetensors: header",
            "parameters.total": "derived: sum of parameters.by_dtype"
          },
          "warnings": [
            {
              "code": "config-json-missing",
              "message": "`config.json` not found"
            }
          ]
        }
        "#);
    }

    #[test]
    fn null_is_absent_and_absorb_keeps_trusted_values() {
        let mut a = Facts::new();
        a.set("run.hours", 2.0, Source::flag("--hours"));
        a.set("run.nodes", Value::Null, Source::flag("--nodes"));
        assert!(!a.contains("run.nodes"));
        let mut b = Facts::new();
        b.set(
            "run.hours",
            3.0,
            Source::file("trainer_state.json", "train_runtime"),
        );
        b.set("run.gpu_hours", 6.0, Source::derived("hours × GPUs"));
        a.absorb(b);
        assert_eq!(a.f64("run.hours"), Some(2.0));
        assert_eq!(a.f64("run.gpu_hours"), Some(6.0));
        assert!(!a.set_if_absent("run.hours", 9.0, Source::flag("--x")));
    }

    #[test]
    fn leaf_and_branch_sharing_a_prefix_both_survive() {
        let mut f = Facts::new();
        f.set("a.b", 1, Source::flag("--a"));
        f.set("a.b.c", 2, Source::flag("--c"));
        let json = f.to_json();
        assert_eq!(json["a"]["b"]["_value"], 1);
        assert_eq!(json["a"]["b"]["c"], 2);
    }
}
