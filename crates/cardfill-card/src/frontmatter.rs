//! The YAML front matter: found exactly as the Hub finds it, read with a real YAML parser, and
//! edited one top-level key at a time so that every other byte (unknown keys, their order,
//! comments, quoting) stays as it was.
//!
//! Keys cardfill writes carry a trailing `# cardfill` comment on the key line: that is how a
//! later run knows the key is its own to refresh.

use serde_json::Value;

use crate::markdown::{content, split_lines};

/// The comment that marks a key cardfill owns.
pub const OWNED: &str = "# cardfill";

/// Where the front matter lies in a card (byte offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Start of the YAML body (after the opening `---` line).
    pub body_start: usize,
    /// End of the YAML body (before the line break that precedes the closing `---`).
    pub body_end: usize,
    /// End of the closing `---` line, including its line break.
    pub end: usize,
}

/// Python's `str.isspace`, which the Hub's regex `\s` follows.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn line_break_at(s: &str, i: usize) -> Option<usize> {
    let rest = &s[i..];
    if rest.starts_with("\r\n") {
        Some(2)
    } else if rest.starts_with('\r') || rest.starts_with('\n') {
        Some(1)
    } else {
        None
    }
}

/// Finds the front matter as huggingface_hub's `REGEX_YAML_BLOCK` does:
/// `^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))`, without MULTILINE.
pub fn find(text: &str) -> Option<Span> {
    let lead = text.len() - text.trim_start_matches(py_space).len();
    // `\s*` is greedy but cannot eat `-`, so only one split of the leading run is possible;
    // it may however have eaten the line break that should follow `---`: no, `---` comes after
    // it. Backtracking can only shorten `\s*`, which then leaves whitespace before `---`: fail.
    let after_dashes = lead + 3;
    if !text[lead..].starts_with("---") {
        return None;
    }
    // The opening line break: try `\r\n`, then `\r`, then `\n`, as the regex does.
    let mut opens = Vec::new();
    if text[after_dashes..].starts_with("\r\n") {
        opens.push(after_dashes + 2);
        opens.push(after_dashes + 1);
    } else if text[after_dashes..].starts_with('\r') || text[after_dashes..].starts_with('\n') {
        opens.push(after_dashes + 1);
    }
    for body_start in opens {
        // Lazy body: the first position where the closing group matches.
        let bytes = text.as_bytes();
        let mut p = body_start;
        while p < bytes.len() {
            if let Some(brk) = line_break_at(text, p)
                && let Some(end) = close_at(text, p + brk)
            {
                return Some(Span {
                    body_start,
                    body_end: p,
                    end,
                });
            }
            p += 1;
            while p < bytes.len() && !text.is_char_boundary(p) {
                p += 1;
            }
        }
    }
    None
}

/// `---[ \t]*(\r\n|\n|$)` at `i`: the end of the match.
fn close_at(text: &str, i: usize) -> Option<usize> {
    let rest = text[i..].strip_prefix("---")?;
    let blanks = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    let j = i + 3 + blanks;
    let after = &text[j..];
    if after.starts_with("\r\n") {
        Some(j + 2)
    } else if after.starts_with('\n') || after.is_empty() {
        Some(j + after.len().min(1))
    } else {
        None
    }
}

/// Front matter a person began that the Hub's regex cannot find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// `---` directly followed by `---`: an empty block the Hub does not see. `inside` is the
    /// byte offset just after the opening line's break, where keys go.
    Empty {
        /// Where keys are inserted.
        inside: usize,
    },
    /// An opening `---` line with no closing one (1-based `line`).
    Unclosed {
        /// The line of the opening `---`.
        line: usize,
    },
}

/// Why a card that starts with a `---` line has no block the Hub finds, or `None` when
/// [`find`] finds one or the card does not start with `---`.
pub fn broken(text: &str) -> Option<Broken> {
    if find(text).is_some() {
        return None;
    }
    let lead = text.len() - text.trim_start_matches(py_space).len();
    let after_dashes = lead + 3;
    if !text[lead..].starts_with("---") {
        return None;
    }
    let brk = line_break_at(text, after_dashes)?;
    let inside = after_dashes + brk;
    if close_at(text, inside).is_some() {
        return Some(Broken::Empty { inside });
    }
    let line = text[..lead].matches('\n').count() + 1;
    Some(Broken::Unclosed { line })
}

/// The first top-level key written twice in a YAML body: the key and the 0-based lines of
/// its first and second appearance. PyYAML keeps the last silently; the Hub rejects it.
pub fn duplicate_key(body: &str) -> Option<(String, usize, usize)> {
    let blocks = key_blocks(&lines(body));
    for (i, b) in blocks.iter().enumerate() {
        if let Some(first) = blocks[..i].iter().find(|a| a.key == b.key) {
            return Some((b.key.clone(), first.first, b.first));
        }
    }
    None
}

/// The front matter's top-level mapping, parsed as YAML. As with PyYAML (which
/// huggingface_hub uses), an empty block is an empty mapping and a repeated key keeps its last
/// value.
pub fn parse(body: &str) -> Result<serde_json::Map<String, Value>, String> {
    if body.trim().is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_norway::from_str::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(serde_json::Map::new()),
        Ok(_) => Err("the metadata block should be a mapping of keys to values".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// A top-level key of the front matter and the lines it spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyBlock {
    /// The key.
    pub key: String,
    /// First line (the `key:` line).
    pub first: usize,
    /// Last line of its value.
    pub last: usize,
    /// Whether the key line carries cardfill's marker.
    pub owned: bool,
}

/// The top-level keys of `lines` with the lines each spans.
pub fn key_blocks(lines: &[String]) -> Vec<KeyBlock> {
    let mut out: Vec<KeyBlock> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let c = content(line);
        let continuation = c.starts_with([' ', '\t', '-']) && !c.trim().is_empty();
        if continuation {
            if let Some(b) = out.last_mut()
                && (b.last + 1..=i).all(|j| j == i || content(&lines[j]).trim().is_empty())
            {
                b.last = i;
            }
            continue;
        }
        if c.trim().is_empty() || c.starts_with('#') {
            continue;
        }
        if let Some(key) = top_key(c) {
            out.push(KeyBlock {
                key,
                first: i,
                last: i,
                owned: c.trim_end().ends_with(OWNED),
            });
        }
    }
    out
}

fn top_key(c: &str) -> Option<String> {
    if c.starts_with(['"', '\'']) {
        let q = c.chars().next()?;
        let close = c[1..].find(q)? + 1;
        let after = &c[close + 1..];
        return after
            .trim_start()
            .starts_with(':')
            .then(|| c[1..close].to_owned());
    }
    let bytes = c.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b':' && matches!(bytes.get(i + 1), None | Some(b' ' | b'\t')) {
            return Some(c[..i].trim_end().to_owned());
        }
    }
    None
}

/// A string as a YAML scalar: plain where that reads back as the same string, else
/// double-quoted (JSON escaping is valid YAML).
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || " ._/-+(),".contains(c))
                && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && !s.ends_with(' ')
                && !looks_typed(s);
            if plain {
                s.clone()
            } else {
                serde_json::to_string(s).unwrap_or_default()
            }
        }
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

/// Whether YAML 1.1 would read a plain scalar as something other than a string.
fn looks_typed(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    matches!(
        l.as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "~"
    ) || s.parse::<f64>().is_ok()
        || s.replace('_', "").parse::<i64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o")
}

/// The lines (without endings) that write `key: value`, marked as cardfill's.
pub fn emit(key: &str, value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) if !items.is_empty() => {
            let mut out = vec![format!("{key}:  {OWNED}")];
            block(value, 0, &mut out);
            out
        }
        Value::Object(map) if !map.is_empty() => {
            let mut out = vec![format!("{key}:  {OWNED}")];
            block(value, 2, &mut out);
            out
        }
        other => vec![format!("{key}: {}  {OWNED}", scalar(other))],
    }
}

/// The lines of a nested list or mapping at `indent` (block style, as the Hub's cards write
/// `model-index`).
fn block(value: &Value, indent: usize, out: &mut Vec<String>) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        out.push(format!("{pad}{k}:"));
                        block(v, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push(format!("{pad}{k}:"));
                        block(v, indent, out);
                    }
                    other => out.push(format!("{pad}{k}: {}", scalar(other))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut sub = Vec::new();
                        block(item, indent + 2, &mut sub);
                        if let Some(first) = sub.first_mut() {
                            *first = format!("{pad}- {}", first.trim_start());
                        }
                        out.extend(sub);
                    }
                    other => out.push(format!("{pad}- {}", scalar(other))),
                }
            }
        }
        other => out.push(format!("{pad}{}", scalar(other))),
    }
}

/// Whether a value is absent in substance: null, empty string, list or mapping.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Replaces the lines `first..=last` of the YAML body with `new` (joined by `le`), keeping
/// the last line's own ending.
pub fn replace_lines(lines: &mut Vec<String>, first: usize, last: usize, new: &[String], le: &str) {
    let tail_ending = {
        let l = &lines[last];
        l[content(l).len()..].to_owned()
    };
    let mut repl: Vec<String> = new.iter().map(|l| format!("{l}{le}")).collect();
    if let Some(l) = repl.last_mut() {
        let c = content(l).to_owned();
        *l = format!("{c}{tail_ending}");
    }
    lines.splice(first..=last, repl);
}

/// Appends `new` lines at the end of a YAML body (which has no final line break of its own:
/// the closing `---` line brings it).
pub fn append_lines(body: &str, new: &[String], le: &str) -> String {
    let joined = new.join(le);
    if body.is_empty() {
        joined
    } else if body.ends_with(['\n', '\r']) {
        format!("{body}{joined}")
    } else {
        format!("{body}{le}{joined}")
    }
}

/// The lines of a YAML body.
pub fn lines(body: &str) -> Vec<String> {
    split_lines(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Option<&str> {
        find(text).map(|s| &text[s.body_start..s.body_end])
    }

    #[test]
    fn detection_follows_the_hub_regex() {
        assert_eq!(body("---\na: 1\n---\ntext"), Some("a: 1"));
        assert_eq!(body("\n \n---\na: 1\n---"), Some("a: 1"));
        assert_eq!(body("---\r\na: 1\r\n---  \r\nx"), Some("a: 1"));
        assert_eq!(body("--- \na: 1\n---\n"), None);
        assert_eq!(body("\u{feff}---\na: 1\n---\n"), None);
        assert_eq!(body("text\n---\na: 1\n---\n"), None);
        assert_eq!(body("---\n---\n"), None);
        assert_eq!(body("---\n\n---\n"), Some(""));
        assert_eq!(
            body("---\na: 1\n----\nb: 2\n--- x\n---\n"),
            Some("a: 1\n----\nb: 2\n--- x")
        );
        assert_eq!(body("---\ra: 1\r---\rrest"), None);
        assert_eq!(body("---\ra: 1\r---"), Some("a: 1"));
        // The regex backtracks the opening `\r\n` to `\r`: the body is then empty.
        assert_eq!(body("---\r\n---\n"), Some(""));
    }

    #[test]
    fn broken_openings_are_told_apart() {
        assert_eq!(broken("---\n---\nx"), Some(Broken::Empty { inside: 4 }));
        assert_eq!(broken("\n---\r\n---"), None);
        assert_eq!(
            broken("\n---\nlicense: mit\n\n# Model\n"),
            Some(Broken::Unclosed { line: 2 })
        );
        assert_eq!(broken("---\na: 1\n---\n"), None);
        assert_eq!(broken("# Title\n---\n"), None);
        assert_eq!(broken("----\ntext\n"), None);
    }

    #[test]
    fn repeated_top_level_keys_are_found() {
        assert_eq!(
            duplicate_key("license: mit\ntags:\n- a\nlicense: mit"),
            Some(("license".to_owned(), 0, 3))
        );
        assert_eq!(duplicate_key("a:\n  b: 1\n  b: 2\nc: 3"), None);
    }

    #[test]
    fn parsing_reads_like_pyyaml() {
        assert_eq!(parse("# only a comment").unwrap().len(), 0);
        let m = parse("license: mit\nlicense: apache-2.0\nco2_eq_emissions: 999.5").unwrap();
        assert_eq!(m["license"], "apache-2.0");
        assert_eq!(m["co2_eq_emissions"], 999.5);
        assert!(parse("- a").is_err());
        assert!(parse("a: [1").is_err());
    }

    #[test]
    fn key_blocks_span_values_and_skip_comments() {
        let l = lines(
            "a: 1\n# note\ntags:\n- x\n\n- y\nco2:  # cardfill\n  emissions: 3\nb: |\n  x\n\n  y",
        );
        let keys: Vec<_> = key_blocks(&l)
            .into_iter()
            .map(|b| (b.key, b.first, b.last, b.owned))
            .collect();
        assert_eq!(
            keys,
            [
                ("a".into(), 0, 0, false),
                ("tags".into(), 2, 5, false),
                ("co2".into(), 6, 7, true),
                ("b".into(), 8, 11, false)
            ]
        );
    }

    #[test]
    fn scalars_quote_what_yaml_would_retype() {
        assert_eq!(
            scalar(&Value::from("meta-llama/Llama-2-7b-hf")),
            "meta-llama/Llama-2-7b-hf"
        );
        assert_eq!(scalar(&Value::from("no")), "\"no\"");
        assert_eq!(scalar(&Value::from("1.0")), "\"1.0\"");
        assert_eq!(scalar(&Value::from("a: b")), "\"a: b\"");
        assert_eq!(scalar(&Value::from(2930.5)), "2930.5");
    }
}
