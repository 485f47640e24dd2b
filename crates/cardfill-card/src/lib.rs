//! The model card: render the default or a custom Jinja template from the facts, and merge the
//! result into an existing `README.md` without changing a byte a person wrote.
//!
//! What cardfill owns in a card, and nothing else:
//! - values it marked before: a field followed by `<!-- cardfill:NAME -->`, a block between
//!   `<!-- cardfill:begin NAME -->` and `<!-- cardfill:end NAME -->`, and front matter keys whose
//!   line ends with `# cardfill` (all refreshed on every run);
//! - fields and sections still holding a placeholder (`[More Information Needed]`, empty);
//! - front matter keys it sets that the card lacks.
//!
//! A value a person wrote is kept and reported ([`ChangeKind::Kept`]) unless
//! [`FillOptions::force`]. Sections the card lacks are added where the template puts them.
//! Lines cardfill adds follow the card's line endings. Only [`write`] does I/O: it reads and
//! writes the card file safely (locks, compare before replace, owner and mode, no links).
//! [`training_figure`] draws the figure the card links (loss, learning rate, GPU power).
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod figure;
mod frontmatter;
mod links;
mod markdown;
mod merge;
mod render;
mod vars;
pub mod write;

use cardfill_facts::{Facts, Value};

pub use figure::{FIGURE_FILE, has_figure, training_figure};
pub use frontmatter::{
    Broken as BrokenFrontMatter, Span as FrontMatterSpan, broken as broken_front_matter,
    duplicate_key as duplicate_front_matter_key, find as find_front_matter,
};
pub use links::linked_files;
pub use markdown::PLACEHOLDER;
pub use vars::{FrontKey, Variables, variables};

/// cardfill's own template: the sections of the annotated model card, in its order.
pub const DEFAULT_TEMPLATE: &str = include_str!("../templates/default.md");

/// Why a card could not be filled. Messages name the file and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    /// The template is not valid Jinja, or failed to render.
    #[error("`{file}` is not a usable template: {message}")]
    Template {
        /// The template file.
        file: String,
        /// What minijinja said, with the line.
        message: String,
    },
    /// The card's front matter is not a YAML mapping.
    #[error(
        "`{file}` has front matter the Hub cannot read ({message}): fix the YAML between the `---` lines"
    )]
    FrontMatter {
        /// The card.
        file: String,
        /// What the YAML parser said.
        message: String,
    },
    /// The card opens front matter with `---` and never closes it.
    #[error(
        "`{file}`: the front matter opened by `---` on line {line} is never closed: add a line `---` after the metadata, or remove line {line}"
    )]
    UnclosedFrontMatter {
        /// The card.
        file: String,
        /// The line of the opening `---`.
        line: usize,
    },
    /// A top-level front matter key is written twice.
    #[error(
        "`{file}`:{line}: front matter key `{key}` is repeated (first on line {first}) and the Hub rejects repeated keys: keep one of them"
    )]
    DuplicateKey {
        /// The card.
        file: String,
        /// The key.
        key: String,
        /// The line of its second appearance.
        line: usize,
        /// The line of its first appearance.
        first: usize,
    },
}

/// How to fill.
#[derive(Clone, Debug)]
pub struct FillOptions {
    /// Replace values a person wrote (each is reported as [`ChangeKind::Replaced`]).
    pub force: bool,
    /// The card's name in messages.
    pub card_name: String,
    /// The template's name in messages.
    pub template_name: String,
}

impl Default for FillOptions {
    fn default() -> Self {
        Self {
            force: false,
            card_name: "README.md".to_owned(),
            template_name: "the default template".to_owned(),
        }
    }
}

/// What happened to one part of the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new card was written.
    Created,
    /// A placeholder or missing field was filled.
    Filled,
    /// A value cardfill wrote before was updated.
    Refreshed,
    /// A section the card lacked was added.
    Added,
    /// A value a person wrote was kept although cardfill knows another.
    Kept,
    /// A value a person wrote was replaced (`--force`).
    Replaced,
    /// A value cardfill wrote before was left as it was: the fact is unknown now.
    Stale,
    /// A value cardfill wrote before was removed: it was worked out from evidence that changed.
    Cleared,
}

/// One change (or deliberate non-change) to the card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The part: a template variable (`hours_used`), `front matter `key``, or a section title.
    pub what: String,
    /// cardfill's value, where there is one.
    pub value: Option<String>,
    /// The value that was (or still is) in the card.
    pub previous: Option<String>,
    /// Where cardfill's value came from (front matter keys).
    pub source: Option<String>,
}

impl Change {
    fn new(kind: ChangeKind, what: &str, value: Option<&str>, previous: Option<&str>) -> Self {
        Self {
            kind,
            what: what.to_owned(),
            value: value.map(str::to_owned),
            previous: previous.map(str::to_owned),
            source: None,
        }
    }
}

fn short(s: &str) -> String {
    let one = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if one.chars().count() > 80 {
        format!("{}…", one.chars().take(79).collect::<String>())
    } else {
        one
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = &self.what;
        let value = self.value.as_deref().map(short).unwrap_or_default();
        let previous = self.previous.as_deref().map(short).unwrap_or_default();
        let from = self
            .source
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| format!(" (from {s})"))
            .unwrap_or_default();
        match self.kind {
            ChangeKind::Created => write!(f, "created {what}"),
            ChangeKind::Filled if !previous.is_empty() => write!(
                f,
                "filled {what}: {value} (replacing `{previous}`, which the Hub rejects)"
            ),
            ChangeKind::Filled => write!(f, "filled {what}: {value}"),
            ChangeKind::Refreshed => write!(f, "refreshed {what}: {value}"),
            ChangeKind::Added => write!(f, "added section `{what}`"),
            ChangeKind::Kept => write!(
                f,
                "kept {what} as written (`{previous}`); cardfill has `{value}`{from}; --force replaces it"
            ),
            ChangeKind::Replaced => {
                write!(
                    f,
                    "replaced {what} `{previous}` with `{value}`{from} (--force)"
                )
            }
            ChangeKind::Stale => write!(
                f,
                "left {what} from an earlier run as it was: no fact for it now"
            ),
            ChangeKind::Cleared => write!(
                f,
                "cleared {what}: it was worked out from hours, hardware or a region that changed, and cannot be worked out now"
            ),
        }
    }
}

/// The filled card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filled {
    /// The whole card.
    pub text: String,
    /// What changed, and what was kept on purpose.
    pub changes: Vec<Change>,
}

/// Renders the template (cardfill's own when `None`) from `facts` and, when `existing` is a
/// card, merges it in; otherwise the rendered template is the new card.
///
/// Running it again on its own output with the same facts gives the same text.
pub fn fill(
    existing: Option<&str>,
    template: Option<&str>,
    facts: &Facts,
    options: &FillOptions,
) -> Result<Filled, CardError> {
    // A byte order mark stays where it is; the card after it is merged as any other.
    if let Some(rest) = existing.and_then(|e| e.strip_prefix('\u{feff}')) {
        let mut filled = fill(Some(rest), template, facts, options)?;
        filled.text.insert(0, '\u{feff}');
        return Ok(filled);
    }
    let mut vars = variables(facts);
    let stale_co2 = existing.is_some_and(|card| co2_outdated(card, &vars));
    if stale_co2 {
        // Worked out from evidence that changed and cannot be worked out now: not kept.
        vars.body.insert("co2_emitted", PLACEHOLDER.to_owned());
    }
    if let Some(card) = existing {
        vars::leave_to_card(card, &mut vars.body);
    }
    let card_data: Vec<String> = vars
        .front
        .iter()
        .flat_map(|k| frontmatter::emit(k.key, &k.value))
        .collect();
    let rendered = render::render(
        template.unwrap_or(DEFAULT_TEMPLATE),
        &vars,
        &card_data.join("\n"),
    )
    .map_err(|message| CardError::Template {
        file: options.template_name.clone(),
        message,
    })?;
    let mut changes = Vec::new();
    let base = existing.unwrap_or(&rendered);
    let le = markdown::dominant_ending(base);
    let mut text = merge_front(base, &vars.front, le, options, &mut changes)?;
    if stale_co2 {
        text = drop_owned_key(&text, "co2_eq_emissions", &mut changes);
    }
    let skeleton_body =
        frontmatter::find(&rendered).map_or(rendered.as_str(), |s| &rendered[s.end..]);
    let skeleton = merge::Skeleton::new(skeleton_body);
    let split = frontmatter::find(&text).map_or(0, |s| s.end);
    let body = merge::merge(
        &text[split..],
        le,
        &skeleton,
        &vars.body,
        options.force,
        &mut changes,
    );
    // A closing `---` at the very end has no line break: added text needs one first.
    let gap = if split == text.len() && !body.is_empty() && !text.ends_with(['\n', '\r']) {
        le
    } else {
        ""
    };
    let text = format!("{}{gap}{body}", &text[..split]);
    for c in changes.iter_mut() {
        if stale_co2 && c.what == "co2_emitted" && c.kind == ChangeKind::Refreshed {
            c.kind = ChangeKind::Cleared;
        }
    }
    if existing.is_none() {
        changes.insert(
            0,
            Change::new(
                ChangeKind::Created,
                &format!("`{}`", options.card_name),
                None,
                None,
            ),
        );
    }
    Ok(Filled { text, changes })
}

/// Whether the card's marked Carbon Emitted line was worked out from hours, hardware or a region
/// that the facts now give differently, while no CO2 figure can be worked out now.
fn co2_outdated(card: &str, vars: &Variables) -> bool {
    if vars.body.contains_key("co2_emitted") {
        return false;
    }
    let body = frontmatter::find(card).map_or(card, |s| &card[s.end..]);
    let marked = merge::marked_values(body);
    let derived_from = ["hours_used", "hardware_type", "cloud_region"];
    marked
        .get("co2_emitted")
        .is_some_and(|v| !markdown::is_placeholder(v))
        && derived_from.iter().any(|k| {
            matches!((marked.get(*k), vars.body.get(k)),
                (Some(old), Some(new)) if *old != render::inline_value(new))
        })
}

/// Removes the front matter key `key` when cardfill owns it (its line ends with `# cardfill`).
fn drop_owned_key(text: &str, key: &str, changes: &mut Vec<Change>) -> String {
    let Some(span) = frontmatter::find(text) else {
        return text.to_owned();
    };
    let mut lines = frontmatter::lines(&text[span.body_start..span.body_end]);
    let Some(b) = frontmatter::key_blocks(&lines)
        .into_iter()
        .find(|b| b.key == key && b.owned)
    else {
        return text.to_owned();
    };
    // The body's last line has no ending of its own: the one before it loses its ending.
    let last = b.last + 1 == lines.len();
    lines.drain(b.first..=b.last);
    if last && let Some(l) = lines.last_mut() {
        let c = markdown::content(l).len();
        l.truncate(c);
    }
    changes.push(Change::new(
        ChangeKind::Cleared,
        &format!("front matter `{key}`"),
        None,
        None,
    ));
    format!(
        "{}{}{}",
        &text[..span.body_start],
        lines.concat(),
        &text[span.body_end..]
    )
}

fn same_value(card: &Value, ours: &Value) -> bool {
    match (card, ours) {
        (Value::Array(a), b) if a.len() == 1 => &a[0] == b || card == ours,
        (a, Value::Array(b)) if b.len() == 1 => a == &b[0],
        _ => card == ours,
    }
}

/// A value the Hub refuses, which is no person's choice to keep: a local path as
/// `base_model` (PEFT and the Trainer write those).
fn rejected_by_hub(key: &str, v: &Value) -> bool {
    let hub_id = |s: &str| {
        let parts: Vec<&str> = s.split('/').collect();
        parts.len() <= 2
            && parts.iter().all(|p| {
                !p.is_empty()
                    && !p.starts_with('.')
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            })
    };
    match (key, v) {
        ("base_model", Value::String(s)) => !hub_id(s),
        ("base_model", Value::Array(a)) => a.iter().any(|x| x.as_str().is_none_or(|s| !hub_id(s))),
        _ => false,
    }
}

fn yaml_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sets cardfill's front matter keys, editing only their own lines.
fn merge_front(
    text: &str,
    keys: &[FrontKey],
    le: &str,
    options: &FillOptions,
    changes: &mut Vec<Change>,
) -> Result<String, CardError> {
    let what = |k: &FrontKey| format!("front matter `{}`", k.key);
    let change = |kind, k: &FrontKey, previous: Option<&Value>| Change {
        kind,
        what: what(k),
        value: Some(yaml_text(&k.value)),
        previous: previous.map(yaml_text),
        source: Some(k.source.clone()),
    };
    let bad = |message: String| CardError::FrontMatter {
        file: options.card_name.clone(),
        message: message.split_whitespace().collect::<Vec<_>>().join(" "),
    };
    match frontmatter::broken(text) {
        Some(frontmatter::Broken::Unclosed { line }) => {
            return Err(CardError::UnclosedFrontMatter {
                file: options.card_name.clone(),
                line,
            });
        }
        // `---` right after `---`: fill the block in place.
        Some(frontmatter::Broken::Empty { inside }) => {
            if keys.is_empty() {
                return Ok(text.to_owned());
            }
            let mut lines = Vec::new();
            for k in keys {
                lines.extend(frontmatter::emit(k.key, &k.value));
                changes.push(change(ChangeKind::Filled, k, None));
            }
            return Ok(format!(
                "{}{}{le}{}",
                &text[..inside],
                lines.join(le),
                &text[inside..]
            ));
        }
        None => {}
    }
    let Some(span) = frontmatter::find(text) else {
        if keys.is_empty() {
            return Ok(text.to_owned());
        }
        let mut lines = vec!["---".to_owned()];
        for k in keys {
            lines.extend(frontmatter::emit(k.key, &k.value));
            changes.push(change(ChangeKind::Filled, k, None));
        }
        lines.push("---".to_owned());
        return Ok(format!("{}{le}{text}", lines.join(le)));
    };
    let body = &text[span.body_start..span.body_end];
    if let Some((key, first, second)) = frontmatter::duplicate_key(body) {
        let base = text[..span.body_start].matches('\n').count() + 1;
        return Err(CardError::DuplicateKey {
            file: options.card_name.clone(),
            key,
            line: base + second,
            first: base + first,
        });
    }
    let map = frontmatter::parse(body).map_err(bad)?;
    let mut lines = frontmatter::lines(body);
    let mut append: Vec<String> = Vec::new();
    for k in keys {
        let new = frontmatter::emit(k.key, &k.value);
        let blocks = frontmatter::key_blocks(&lines);
        let Some(b) = blocks.iter().find(|b| b.key == k.key) else {
            append.extend(new);
            changes.push(change(ChangeKind::Filled, k, None));
            continue;
        };
        let current = map.get(k.key).cloned().unwrap_or(Value::Null);
        let old: Vec<&str> = lines[b.first..=b.last]
            .iter()
            .map(|l| markdown::content(l))
            .collect();
        let kind = if b.owned {
            (old != new).then_some(ChangeKind::Refreshed)
        } else if frontmatter::is_empty(&current) || rejected_by_hub(k.key, &current) {
            Some(ChangeKind::Filled)
        } else if same_value(&current, &k.value) {
            None
        } else if options.force {
            Some(ChangeKind::Replaced)
        } else {
            changes.push(change(ChangeKind::Kept, k, Some(&current)));
            None
        };
        if let Some(kind) = kind {
            changes.push(change(kind, k, Some(&current).filter(|c| !c.is_null())));
            frontmatter::replace_lines(&mut lines, b.first, b.last, &new, le);
        }
    }
    let mut new_body = lines.concat();
    let (start, end) = (span.body_start, span.body_end);
    if start == end && text[..start].ends_with('\r') && text[start..].starts_with('\n') {
        // `---\r\n---`: the Hub's regex reads the opening break as `\r` and the `\n` as the
        // closing one. Put the keys after the whole `\r\n` and give them their own break.
        if append.is_empty() {
            return Ok(text.to_owned());
        }
        let keys = append.join(le);
        return Ok(format!(
            "{}{keys}{le}{}",
            &text[..=start],
            &text[start + 1..]
        ));
    }
    if !append.is_empty() {
        new_body = frontmatter::append_lines(&new_body, &append, le);
    }
    frontmatter::parse(&new_body).map_err(bad)?;
    Ok(format!(
        "{}{new_body}{}",
        &text[..span.body_start],
        &text[span.body_end..]
    ))
}

#[cfg(test)]
mod tests;
