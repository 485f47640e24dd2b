//! The line model of a card: lines with their own endings (so joining them gives the exact
//! bytes back), headings, `**Label:** value` lines, placeholders and cardfill's markers.

/// The placeholder huggingface_hub's template writes for an unknown field.
pub const PLACEHOLDER: &str = "[More Information Needed]";

/// Splits `text` into lines, each keeping its ending (`\r\n`, `\n` or `\r`); the last line
/// may have none. Concatenating the result gives `text` back.
pub fn split_lines(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push(text[start..=i].to_owned());
                start = i + 1;
            }
            b'\r' => {
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                out.push(text[start..=i].to_owned());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        out.push(text[start..].to_owned());
    }
    out
}

/// A line without its ending.
pub fn content(line: &str) -> &str {
    line.trim_end_matches(['\n', '\r'])
}

/// The line ending most used in `text` (`\n` when there is none or a tie).
pub fn dominant_ending(text: &str) -> &'static str {
    let (mut crlf, mut lf, mut cr) = (0usize, 0usize, 0usize);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                crlf += 1;
                i += 1;
            }
            b'\r' => cr += 1,
            b'\n' => lf += 1,
            _ => {}
        }
        i += 1;
    }
    if crlf > lf && crlf >= cr {
        "\r\n"
    } else if cr > lf && cr > crlf {
        "\r"
    } else {
        "\n"
    }
}

/// What a line is, for the merge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineInfo {
    /// Inside a fenced code block or a multi-line HTML comment: never structure.
    pub quoted: bool,
    /// An HTML comment line (guidance, not content).
    pub comment: bool,
    /// An ATX heading: level and normalised title.
    pub heading: Option<(usize, String)>,
}

/// A line of a fenced code block (the fences included).
const CODE: LineInfo = LineInfo {
    quoted: true,
    comment: false,
    heading: None,
};

/// Classifies every line: fences and multi-line comments are skipped, headings found.
pub fn scan(lines: &[String]) -> Vec<LineInfo> {
    let mut out = Vec::with_capacity(lines.len());
    let mut fence: Option<(char, usize)> = None;
    let mut in_comment = false;
    for line in lines {
        let c = content(line);
        let trimmed = c.trim_start_matches(' ');
        let indent_ok = c.len() - trimmed.len() <= 3;
        if let Some((ch, n)) = fence {
            let run = trimmed.chars().take_while(|&x| x == ch).count();
            if indent_ok && run >= n && trimmed[run * ch.len_utf8()..].trim().is_empty() {
                fence = None;
            }
            out.push(CODE);
            continue;
        }
        if in_comment {
            if c.contains("-->") {
                in_comment = false;
            }
            out.push(LineInfo {
                quoted: true,
                comment: true,
                heading: None,
            });
            continue;
        }
        if indent_ok {
            for ch in ['`', '~'] {
                let run = trimmed.chars().take_while(|&x| x == ch).count();
                if run >= 3 {
                    fence = Some((ch, run));
                }
            }
            if fence.is_some() {
                out.push(CODE);
                continue;
            }
        }
        if let Some(pos) = c.rfind("<!--")
            && !c[pos..].contains("-->")
        {
            in_comment = true;
        }
        out.push(LineInfo {
            quoted: false,
            comment: c.trim_start().starts_with("<!--")
                && (in_comment || c.trim_end().ends_with("-->")),
            heading: if indent_ok { heading(trimmed) } else { None },
        });
    }
    out
}

/// An ATX heading's level and normalised title.
fn heading(s: &str) -> Option<(usize, String)> {
    let level = s.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &s[level..];
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    let mut title = rest.trim();
    let stripped = title.trim_end_matches('#');
    if stripped.is_empty() || stripped.ends_with(' ') || stripped.ends_with('\t') {
        title = stripped.trim_end();
    }
    Some((level, normalize(title)))
}

/// Normalises a heading title or a field label for matching: case, emphasis, `[optional]`,
/// `(NLP)`, spacing and a trailing colon do not matter.
pub fn normalize(s: &str) -> String {
    let mut t = s.to_lowercase();
    for noise in ["[optional]", "(optional)", "[nlp]", "(nlp)"] {
        t = t.replace(noise, " ");
    }
    let t: String = t
        .chars()
        .filter(|c| !matches!(c, '*' | '_' | '`'))
        .collect();
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    t.trim_end_matches(':').trim().to_owned()
}

/// A `- **Label:** value` line: the normalised label and where the value starts (byte offset
/// into the line's content).
pub fn label(c: &str) -> Option<(String, usize)> {
    let start = c.len() - c.trim_start().len();
    let mut i = start;
    let rest = &c[i..];
    if let Some(r) = rest
        .strip_prefix("- ")
        .or_else(|| rest.strip_prefix("* "))
        .or_else(|| rest.strip_prefix("+ "))
    {
        i = c.len() - r.len();
    }
    let colon = c[i..].find(':')? + i;
    let raw = &c[i..colon];
    if raw.len() > 80 || raw.contains("<!--") || raw.contains('[') && !raw.contains("**") {
        return None;
    }
    let norm = normalize(raw);
    if norm.is_empty() {
        return None;
    }
    let mut v = colon + 1;
    v += c[v..].chars().take_while(|&x| x == '*' || x == '_').count();
    v += c[v..]
        .chars()
        .take_while(|&x| x == ' ' || x == '\t')
        .count();
    Some((norm, v))
}

/// Whether a field value or a section body is still a placeholder: empty,
/// `[More Information Needed]` or the Trainer's `More information needed`.
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim().trim_end_matches('.');
    let v = v
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(v);
    v.is_empty() || v.eq_ignore_ascii_case("more information needed")
}

/// A marker cardfill writes into the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Marker {
    /// `<!-- cardfill:begin NAME -->` on its own line.
    Begin(String),
    /// `<!-- cardfill:end NAME -->` on its own line.
    End(String),
    /// `value <!-- cardfill:NAME -->` at the end of a field line: the marker's byte offset.
    Inline(String, usize),
}

const OPEN: &str = "<!-- cardfill:";

/// The begin marker line of a block.
pub fn begin_marker(name: &str) -> String {
    format!("{OPEN}begin {name} -->")
}

/// The end marker line of a block.
pub fn end_marker(name: &str) -> String {
    format!("{OPEN}end {name} -->")
}

/// The marker after an inline value.
pub fn inline_marker(name: &str) -> String {
    format!("{OPEN}{name} -->")
}

/// The cardfill marker on a line, if any.
pub fn marker(c: &str) -> Option<Marker> {
    let pos = c.find(OPEN)?;
    let rest = &c[pos + OPEN.len()..];
    let end = rest.find(" -->")?;
    let inner = &rest[..end];
    let valid = |n: &str| !n.is_empty() && n.chars().all(|x| x.is_ascii_alphanumeric() || x == '_');
    if let Some(n) = inner.strip_prefix("begin ") {
        return (valid(n) && c.trim() == begin_marker(n)).then(|| Marker::Begin(n.to_owned()));
    }
    if let Some(n) = inner.strip_prefix("end ") {
        return (valid(n) && c.trim() == end_marker(n)).then(|| Marker::End(n.to_owned()));
    }
    valid(inner).then(|| Marker::Inline(inner.to_owned(), pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_every_ending() {
        let text = "a\r\nb\nc\rd";
        let lines = split_lines(text);
        assert_eq!(lines, ["a\r\n", "b\n", "c\r", "d"]);
        assert_eq!(lines.concat(), text);
        assert_eq!(dominant_ending("a\r\nb\r\nc\n"), "\r\n");
        assert_eq!(dominant_ending("abc"), "\n");
    }

    #[test]
    fn headings_skip_fences_and_comments() {
        let lines = split_lines(
            "# Title #\n```\n# not\n```\n<!--\n## no\n-->\n#### Speeds, Sizes, Times [optional]\n#x\n",
        );
        let h: Vec<_> = scan(&lines).into_iter().map(|i| i.heading).collect();
        assert_eq!(h[0], Some((1, "title".to_owned())));
        assert_eq!(h[2], None);
        assert_eq!(h[5], None);
        assert_eq!(h[7], Some((4, "speeds, sizes, times".to_owned())));
        assert_eq!(h[8], None);
    }

    #[test]
    fn labels_and_placeholders() {
        let c = "- **Language(s) (NLP):** [More Information Needed]";
        let (l, v) = label(c).unwrap();
        assert_eq!(l, "language(s)");
        assert!(is_placeholder(&c[v..]));
        let c = "* **Hardware Type**: 8 × H100";
        let (l, v) = label(c).unwrap();
        assert_eq!((l.as_str(), &c[v..]), ("hardware type", "8 × H100"));
        assert!(is_placeholder("More information needed"));
        assert!(!is_placeholder("fp16"));
    }

    #[test]
    fn markers_parse() {
        assert_eq!(
            marker("<!-- cardfill:begin model_specs -->"),
            Some(Marker::Begin("model_specs".into()))
        );
        assert_eq!(
            marker("- **Hours used:** 2 <!-- cardfill:hours_used -->"),
            Some(Marker::Inline("hours_used".into(), 20))
        );
        assert_eq!(marker("<!-- cardfill:begin a b -->"), None);
    }
}
