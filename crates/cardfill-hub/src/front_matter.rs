//! Front matter detection, exactly as the Hub does it.
//!
//! huggingface_hub's `REGEX_YAML_BLOCK` (commented "exact same regex as in the Hub server"):
//! `^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))`, no MULTILINE.
//! Python's `\s` also matches `\x1c`–`\x1f` (beyond Unicode white space), and its `$` also
//! matches before a final `\n`, which the `\n` branch already covers.
//!
//! The detection itself is cardfill-card's `find_front_matter` (the merge uses it too); this
//! is the Hub-side view of it, and the tests below pin it to the regex.

/// A card split at its metadata block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontMatter<'a> {
    /// The YAML between the delimiters (may be empty).
    pub yaml: &'a str,
    /// Byte offset of the YAML in the card.
    pub yaml_start: usize,
    /// Everything after the closing delimiter line.
    pub body: &'a str,
}

/// Finds the metadata block the Hub would find in `card`, or `None` when the Hub sees none
/// (the whole card is then text).
pub fn front_matter(card: &str) -> Option<FrontMatter<'_>> {
    let span = cardfill_card::find_front_matter(card)?;
    Some(FrontMatter {
        yaml: &card[span.body_start..span.body_end],
        yaml_start: span.body_start,
        body: &card[span.end..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(card: &str) -> Option<&str> {
        front_matter(card).map(|f| f.yaml)
    }

    #[test]
    fn semantics_of_the_hub_regex() {
        assert_eq!(yaml("---\nlicense: mit\n---\n# Hi\n"), Some("license: mit"));
        assert_eq!(
            front_matter("---\na: 1\n---\nbody").map(|f| f.body),
            Some("body")
        );
        // leading blank lines allowed, other text or a BOM first is not
        assert_eq!(yaml("\n  \n---\na: 1\n---\n"), Some("a: 1"));
        assert_eq!(yaml("# x\n---\na: 1\n---\n"), None);
        assert_eq!(yaml("\u{feff}---\na: 1\n---\n"), None);
        // opening line must be exactly `---`
        assert_eq!(yaml("--- \na: 1\n---\n"), None);
        // closing: `---` plus blanks/tabs, then a line break or the end
        assert_eq!(yaml("---\na: 1\n--- \t\nx"), Some("a: 1"));
        assert_eq!(yaml("---\na: 1\n---"), Some("a: 1"));
        assert_eq!(
            yaml("---\na: 1\n----\nb: 2\n---\n"),
            Some("a: 1\n----\nb: 2")
        );
        assert_eq!(yaml("---\na: 1\n--- x\n---\n"), Some("a: 1\n--- x"));
        assert_eq!(yaml("---\na: 1\n...\n"), None);
        // `---\n---\n` is no block; `---\n\n---\n` is an empty one
        assert_eq!(yaml("---\n---\n"), None);
        assert_eq!(yaml("---\n\n---\n"), Some(""));
        // CRLF and CR files
        assert_eq!(yaml("---\r\na: 1\r\n---\r\nx"), Some("a: 1"));
        assert_eq!(yaml("---\ra: 1\r---\rx"), None);
        assert_eq!(yaml("---\ra: 1\r---"), Some("a: 1"));
        // Python's \s includes the information separators
        assert_eq!(yaml("\x1c---\na: 1\n---\n"), Some("a: 1"));
    }
}
