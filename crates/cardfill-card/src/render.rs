//! Rendering a Jinja template (minijinja) with huggingface_hub's variable names.
//!
//! Known values reach the template wrapped in private-use sentinels, so that after rendering
//! cardfill knows where each landed and can mark it: a value on a line of its own becomes a
//! block between `<!-- cardfill:begin NAME -->` and `<!-- cardfill:end NAME -->`; a value inside
//! a line (a `**Label:** value` field) is followed by `<!-- cardfill:NAME -->`. Unknown values
//! are undefined, so the template's `default(..., true)` shows its placeholder.

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment};

use crate::frontmatter;
use crate::markdown::{begin_marker, dominant_ending, end_marker, inline_marker};
use crate::vars::Variables;

const S0: char = '\u{E000}';
const S1: char = '\u{E001}';
const S2: char = '\u{E002}';

/// Why a template could not be rendered: minijinja's message, on one line.
pub fn render(source: &str, vars: &Variables, card_data: &str) -> Result<String, String> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(one_line)?;
    env.set_syntax(syntax);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_template("card", source).map_err(one_line)?;
    let tmpl = env.get_template("card").map_err(one_line)?;
    let mut ctx = std::collections::BTreeMap::new();
    for (name, value) in &vars.body {
        let clean: String = value
            .chars()
            .filter(|c| !matches!(*c, S0 | S1 | S2))
            .collect();
        ctx.insert((*name).to_owned(), format!("{S0}{name}{S1}{clean}{S2}"));
    }
    ctx.insert("card_data".to_owned(), card_data.to_owned());
    let rendered = tmpl.render(&ctx).map_err(one_line)?;
    let le = dominant_ending(source);
    Ok(match frontmatter::find(&rendered) {
        Some(span) => {
            let (head, body) = rendered.split_at(span.end);
            format!("{}{}", unwrap_all(head), mark(body, le))
        }
        None => mark(&rendered, le),
    })
}

fn one_line(e: minijinja::Error) -> String {
    let mut s = e.to_string();
    if let Some(d) = e.detail()
        && !s.contains(d)
    {
        s = format!("{s}: {d}");
    }
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("(in card:", "(line ")
}

/// Drops the sentinels, keeping the values (inside the front matter no marker may go).
fn unwrap_all(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_name = false;
    for c in s.chars() {
        match c {
            S0 => in_name = true,
            S1 => in_name = false,
            S2 => {}
            _ if in_name => {}
            _ => out.push(c),
        }
    }
    out
}

/// Replaces each sentinel-wrapped value with the value and its marker.
fn mark(body: &str, le: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find(S0) {
        let after = &rest[start + S0.len_utf8()..];
        let (Some(n_end), Some(v_end)) = (after.find(S1), after.find(S2)) else {
            break;
        };
        if v_end < n_end {
            break;
        }
        let name = &after[..n_end];
        let value = &after[n_end + S1.len_utf8()..v_end];
        let end = start + S0.len_utf8() + v_end + S2.len_utf8();
        let at_line_start = out.is_empty() || out.ends_with(['\n', '\r']);
        let line_start = rest[..start].rfind(['\n', '\r']).map(|i| i + 1);
        let line_end = rest[end..]
            .find(['\n', '\r'])
            .map_or(rest.len(), |i| end + i);
        let own_line = match line_start {
            Some(ls) => rest[ls..start].trim().is_empty(),
            None => at_line_start && rest[..start].trim().is_empty(),
        } && rest[end..line_end].trim().is_empty();
        let in_heading = match line_start {
            Some(ls) => rest[ls..start].trim_start().starts_with('#'),
            None => at_line_start && rest[..start].trim_start().starts_with('#'),
        };
        if in_heading {
            // A title is the person's to edit: written once, never marked.
            out.push_str(&rest[..start]);
            out.push_str(&inline_value(value));
            rest = &rest[end..];
        } else if own_line {
            let ls = line_start.unwrap_or(0);
            out.push_str(&rest[..ls]);
            out.push_str(&begin_marker(name));
            out.push_str(le);
            for line in value.lines() {
                out.push_str(line);
                out.push_str(le);
            }
            out.push_str(&end_marker(name));
            rest = &rest[line_end..];
        } else {
            out.push_str(&rest[..start]);
            out.push_str(&inline_value(value));
            out.push(' ');
            out.push_str(&inline_marker(name));
            rest = &rest[end..];
        }
    }
    out.push_str(&unwrap_all(rest));
    out
}

/// A value shown inside a line: several lines become one.
pub fn inline_value(value: &str) -> String {
    value
        .lines()
        .map(|l| l.trim().trim_start_matches("- ").trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_marked_inline_or_as_blocks() {
        let mut v = Variables::default();
        v.body.insert("hours_used", "2 hours".to_owned());
        v.body.insert("model_specs", "- a\n- b".to_owned());
        let t = "- **Hours used:** {{ hours_used | default(\"[More Information Needed]\", true) }}\r\n\r\n{{ model_specs }}\r\n{{ software | default(\"[More Information Needed]\", true) }}\r\n";
        insta::assert_snapshot!(render(t, &v, "").unwrap().replace('\r', "␍"), @r"
        - **Hours used:** 2 hours <!-- cardfill:hours_used -->␍
        ␍
        <!-- cardfill:begin model_specs -->␍
        - a␍
        - b␍
        <!-- cardfill:end model_specs -->␍
        [More Information Needed]␍
        ");
    }

    #[test]
    fn titles_are_not_marked() {
        let mut v = Variables::default();
        v.body.insert("model_id", "tiny".to_owned());
        let out = render("# Model Card for {{ model_id }}\n", &v, "").unwrap();
        assert_eq!(out, "# Model Card for tiny\n");
    }

    #[test]
    fn template_errors_are_one_line() {
        let err = render("{% if %}", &Variables::default(), "").unwrap_err();
        assert!(!err.contains('\n'));
        insta::assert_snapshot!(err, @"syntax error: unexpected end of block (line 1)");
    }
}
