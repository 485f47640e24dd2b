//! `validate`: a card's metadata checked offline as the Hub checks it.

use serde_json::{Map, Value};

use crate::front_matter::front_matter;
use crate::rules::{self, Problem};

/// Parses YAML text into JSON values (keys kept in order). `None` for an empty document.
pub(crate) fn parse_yaml(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_norway::from_str::<Value>(text).map_err(|e| e.to_string())
}

/// Reads the metadata mapping of a card the way the Hub does: `Ok(None)` when the card has no
/// block, an empty map for an empty block, `Err` with the problem otherwise.
pub fn card_metadata(card: &str) -> Result<Option<Map<String, Value>>, Problem> {
    front_matter(card)
        .map(|fm| block_metadata(fm.yaml))
        .transpose()
}

/// The mapping of a metadata block's YAML, or the problem with it.
fn block_metadata(yaml: &str) -> Result<Map<String, Value>, Problem> {
    match parse_yaml(yaml) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(Problem::error(
            "metadata",
            format!(
                "the block is a {}, not a mapping (the Hub: \"repo card metadata block should \
                 be a dict\")",
                kind(&other)
            ),
            "write the metadata as `key: value` lines",
        )),
        Err(message) => Err(Problem::error(
            "metadata",
            format!("the YAML does not parse: {message}"),
            "fix the YAML syntax (lines count from the first line after `---`)",
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "list",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Null => "null",
        Value::Object(_) => "mapping",
    }
}

/// Every problem the Hub would find in `card` (a whole README.md), in order. Errors mean the
/// Hub rejects the card; warnings mean it accepts it but likely not as meant.
pub fn validate_card(card: &str) -> Vec<Problem> {
    let Some(fm) = front_matter(card) else {
        return vec![missing_block(card)];
    };
    let first_line = card[..fm.yaml_start].matches('\n').count() + 1;
    // PyYAML keeps the last of two equal keys; the Hub's parser refuses them.
    if let Some((key, first, second)) = cardfill_card::duplicate_front_matter_key(fm.yaml) {
        let mut p = Problem::error(
            key.as_str(),
            format!("the key is repeated (first on line {})", first_line + first),
            "keep one of them: the Hub rejects repeated keys",
        );
        p.line = Some(first_line + second);
        return vec![p];
    }
    let meta = match block_metadata(fm.yaml) {
        Ok(meta) => meta,
        Err(mut problem) => {
            // The parser counts lines from the block's first line; the last place it names
            // is where the broken construct began.
            let at = problem
                .message
                .rsplit(" at line ")
                .next()
                .filter(|_| problem.message.contains(" at line "))
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse::<usize>().ok());
            problem.line = Some(at.map_or(first_line, |n| first_line + n - 1));
            return vec![problem];
        }
    };
    let mut problems = rules::check_metadata(&meta);
    for p in &mut problems {
        let top = p.key.split(['.', '[']).next().unwrap_or_default();
        p.line = key_line(fm.yaml, top).map(|l| first_line + l);
    }
    problems
}

/// Why the Hub sees no metadata block, with the likely fix.
fn missing_block(card: &str) -> Problem {
    let first = card.lines().next().unwrap_or_default();
    let (message, fix) = if first.starts_with('\u{feff}') {
        (
            "the card starts with a byte order mark, so the Hub sees no metadata block",
            "save the file as UTF-8 without BOM",
        )
    } else if first.trim_end() == "---" && first != "---" && !first.ends_with('\r') {
        (
            "the opening `---` has trailing spaces, so the Hub sees no metadata block",
            "make the first line exactly `---`",
        )
    } else if ["---\n---", "---\r\n---"]
        .iter()
        .any(|p| card.trim_start().starts_with(p))
    {
        (
            "`---` right after `---` is no metadata block to the Hub",
            "put the keys, or at least an empty line, between the two `---` lines",
        )
    } else if card.trim_start().starts_with("---") {
        (
            "the metadata block is not closed, so the Hub sees no metadata",
            "end it with a line `---`",
        )
    } else {
        (
            "the card has no metadata block: the Hub shows no licence, task or base model",
            "start the card with `---`, `license: …`, `---` (or run `cardfill fill`)",
        )
    };
    let mut p = Problem::warning("metadata", message, fix);
    p.line = Some(1);
    p
}

/// 0-based line of the top-level `key:` in `yaml`.
fn key_line(yaml: &str, key: &str) -> Option<usize> {
    yaml.lines().position(|line| {
        [key.to_owned(), format!("\"{key}\""), format!("'{key}'")]
            .iter()
            .any(|k| {
                line.strip_prefix(k.as_str())
                    .is_some_and(|r| r.trim_start().starts_with(':'))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_point_at_the_key() {
        let card = "\n---\nlicense: mit\nlanguage: es-ES\n---\n# x\n";
        let problems = validate_card(card);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "language");
        assert_eq!(problems[0].line, Some(4));
    }

    #[test]
    fn repeated_keys_and_bad_yaml_point_at_their_line() {
        let problems = validate_card("---\nlicense: mit\ntags:\n- a\nlicense: mit\n---\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].is_error());
        assert_eq!(problems[0].line, Some(5));
        let problems = validate_card("---\nlicense: mit\ntags: [a, b\n---\n");
        assert_eq!(problems[0].line, Some(3), "{problems:?}");
    }

    #[test]
    fn empty_block_is_valid() {
        assert!(validate_card("---\n\n---\n# x\n").is_empty());
    }
}
