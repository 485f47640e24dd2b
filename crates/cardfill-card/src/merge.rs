//! Merging the rendered template into an existing card, line by line.
//!
//! The rendered template (the *skeleton*) says which values go where: under which heading,
//! after which `**Label:**`. The card keeps every line cardfill does not own; cardfill owns
//! its marked values (refreshed), fields still holding a placeholder (filled), and nothing
//! else unless `--force`. Sections the card lacks are added where the skeleton puts them.

use std::collections::BTreeMap;

use crate::markdown::{
    LineInfo, Marker, begin_marker, content, end_marker, inline_marker, is_placeholder, label,
    marker, scan, split_lines,
};
use crate::render::inline_value;
use crate::{Change, ChangeKind};

/// A heading of the skeleton.
#[derive(Clone, Debug)]
struct Heading {
    line: usize,
    level: usize,
    title: String,
    /// The heading's text after the `#`s, as written.
    raw: String,
    parent: Option<usize>,
    /// First line after the heading's subtree.
    end: usize,
}

/// Where a value goes in the skeleton.
#[derive(Clone, Debug)]
struct Slot {
    var: String,
    /// `Some(label)` for a field line, `None` for a block.
    label: Option<String>,
    heading: Option<usize>,
    line: usize,
}

/// The rendered template, read for structure.
pub struct Skeleton {
    lines: Vec<String>,
    headings: Vec<Heading>,
    slots: Vec<Slot>,
    root: Option<usize>,
}

impl Skeleton {
    /// Reads the body (front matter removed) of a rendered, marked template.
    pub fn new(body: &str) -> Self {
        let lines = split_lines(body);
        let info = scan(&lines);
        let mut headings: Vec<Heading> = Vec::new();
        for (i, inf) in info.iter().enumerate() {
            if let Some((level, title)) = &inf.heading {
                let raw = content(&lines[i])
                    .trim_start()
                    .trim_start_matches('#')
                    .trim()
                    .to_owned();
                let parent = headings.iter().rposition(|h| h.level < *level);
                headings.push(Heading {
                    line: i,
                    level: *level,
                    title: title.clone(),
                    raw,
                    parent,
                    end: lines.len(),
                });
            }
        }
        for k in 0..headings.len() {
            let level = headings[k].level;
            if let Some(next) = headings[k + 1..].iter().find(|h| h.level <= level) {
                headings[k].end = next.line;
            }
        }
        let ones: Vec<usize> = (0..headings.len())
            .filter(|&k| headings[k].level == 1)
            .collect();
        let root = (ones.len() == 1 && ones[0] == 0).then_some(0);
        let mut slots = Vec::new();
        for (i, inf) in info.iter().enumerate() {
            if inf.quoted {
                continue;
            }
            let c = content(&lines[i]);
            let slot_label = match marker(c) {
                Some(Marker::Begin(name)) => Some((name, None)),
                Some(Marker::Inline(name, _)) => label(c).map(|(l, _)| (name, Some(l))),
                _ => None,
            };
            if let Some((var, label)) = slot_label {
                let heading = headings.iter().rposition(|h| h.line < i);
                slots.push(Slot {
                    var,
                    label,
                    heading,
                    line: i,
                });
            }
        }
        Self {
            lines,
            headings,
            slots,
            root,
        }
    }
}

/// The card being merged into.
struct Doc {
    lines: Vec<String>,
    le: String,
    /// `scan(&lines)`: each step reads it before it edits `lines`, and `merge` rescans
    /// after each step, so the card is scanned once per edit rather than once per lookup.
    info: Vec<LineInfo>,
}

impl Doc {
    fn new(body: &str, le: &str) -> Self {
        let lines = split_lines(body);
        let info = scan(&lines);
        Self {
            lines,
            le: le.to_owned(),
            info,
        }
    }

    fn rescan(&mut self) {
        self.info = scan(&self.lines);
    }

    /// The first heading with this normalised title: its line and level.
    fn heading(&self, title: &str) -> Option<(usize, usize)> {
        self.info
            .iter()
            .enumerate()
            .find_map(|(i, inf)| match &inf.heading {
                Some((level, t)) if t == title => Some((i, *level)),
                _ => None,
            })
    }

    /// The line after a heading's own body (the next heading of any level, or the end).
    fn own_end(&self, h: usize) -> usize {
        (h + 1..self.lines.len())
            .find(|&j| self.info[j].heading.is_some())
            .unwrap_or(self.lines.len())
    }

    /// Whether cardfill marked this variable anywhere, even inside a code block that a
    /// person left open (so that a rerun never adds it twice).
    fn has_marker(&self, var: &str) -> bool {
        self.lines.iter().any(|l| {
            matches!(marker(content(l)), Some(Marker::Begin(n) | Marker::Inline(n, _)) if n == var)
        })
    }

    /// Whether a `**Label:**` field with this normalised label exists.
    fn has_label(&self, want: &str) -> bool {
        self.lines.iter().zip(&self.info).any(|(l, inf)| {
            !inf.quoted
                && inf.heading.is_none()
                && label(content(l)).is_some_and(|(x, _)| x == want)
        })
    }

    fn line(&self, text: &str) -> String {
        format!("{text}{}", self.le)
    }

    fn is_blank(&self, i: usize) -> bool {
        self.lines
            .get(i)
            .is_some_and(|l| content(l).trim().is_empty())
    }

    /// Replaces lines `first..=last` with `new` (lines without endings); the last new line
    /// keeps the ending the replaced last line had.
    fn replace(&mut self, first: usize, last: usize, new: &[String]) {
        let ending = self.lines[last][content(&self.lines[last]).len()..].to_owned();
        let mut repl: Vec<String> = new.iter().map(|l| self.line(l)).collect();
        if let Some(l) = repl.last_mut() {
            *l = format!("{}{ending}", content(l));
        }
        self.lines.splice(first..=last, repl);
    }

    /// Inserts `new` (lines without endings) at `pos`, with blank lines around as Markdown
    /// needs them.
    fn insert(&mut self, pos: usize, new: &[String], blank_before: bool) {
        let mut block: Vec<String> = Vec::new();
        if pos == self.lines.len()
            && let Some(last) = self.lines.last_mut()
            && content(last).len() == last.len()
        {
            last.push_str(&self.le);
        }
        if blank_before && pos > 0 && !self.is_blank(pos - 1) {
            block.push(self.line(""));
        }
        block.extend(new.iter().map(|l| self.line(l)));
        if pos < self.lines.len() && !self.is_blank(pos) {
            block.push(self.line(""));
        }
        self.lines.splice(pos..pos, block);
    }
}

fn block_lines(var: &str, value: &str) -> Vec<String> {
    let mut out = vec![begin_marker(var)];
    out.extend(value.lines().map(str::to_owned));
    out.push(end_marker(var));
    out
}

fn same_text(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    norm(a) == norm(b)
}

/// The values of the fields cardfill marked inline in `body` (`value <!-- cardfill:NAME -->`),
/// by name.
pub fn marked_values(body: &str) -> BTreeMap<String, String> {
    let lines = split_lines(body);
    let info = scan(&lines);
    let mut out = BTreeMap::new();
    for (line, inf) in lines.iter().zip(&info) {
        if inf.quoted {
            continue;
        }
        let c = content(line);
        if let (Some(Marker::Inline(name, pos)), Some((_, start))) = (marker(c), label(c))
            && start <= pos
        {
            out.insert(name, c[start..pos].trim_end().to_owned());
        }
    }
    out
}

/// Merges the skeleton's values into `body` (a card without its front matter).
pub fn merge(
    body: &str,
    le: &str,
    sk: &Skeleton,
    values: &BTreeMap<&'static str, String>,
    force: bool,
    changes: &mut Vec<Change>,
) -> String {
    let mut doc = Doc::new(body, le);
    if refresh(&mut doc, values, changes) {
        doc.rescan();
    }
    for slot in &sk.slots {
        let Some(value) = values.get(slot.var.as_str()) else {
            continue;
        };
        if doc.has_marker(&slot.var) {
            continue;
        }
        let done = match &slot.label {
            Some(l) => fill_field(&mut doc, sk, slot, l, value, force, changes),
            None => fill_block(&mut doc, sk, slot, value, force, changes),
        };
        if !done {
            add_section(&mut doc, sk, slot, values, changes);
        }
        doc.rescan();
    }
    doc.lines.concat()
}

/// Refreshes every value cardfill marked before; whether a line changed.
fn refresh(
    doc: &mut Doc,
    values: &BTreeMap<&'static str, String>,
    changes: &mut Vec<Change>,
) -> bool {
    let info = &doc.info;
    let mut edits: Vec<(usize, usize, Vec<String>)> = Vec::new();
    let mut i = 0;
    while i < doc.lines.len() {
        if info[i].quoted {
            i += 1;
            continue;
        }
        let c = content(&doc.lines[i]).to_owned();
        match marker(&c) {
            Some(Marker::Begin(name)) => {
                let end = (i + 1..doc.lines.len()).find(|&j| {
                    !info[j].quoted
                        && matches!(marker(content(&doc.lines[j])), Some(Marker::End(ref n)) if *n == name)
                });
                let Some(end) = end else {
                    i += 1;
                    continue;
                };
                let old: Vec<&str> = doc.lines[i + 1..end].iter().map(|l| content(l)).collect();
                match values.get(name.as_str()) {
                    Some(v) if old.join("\n") != v.lines().collect::<Vec<_>>().join("\n") => {
                        edits.push((i + 1, end, v.lines().map(|l| doc.line(l)).collect()));
                        changes.push(Change::new(ChangeKind::Refreshed, &name, Some(v), None));
                    }
                    Some(_) => {}
                    None => changes.push(Change::new(
                        ChangeKind::Stale,
                        &name,
                        None,
                        Some(&old.join("\n")),
                    )),
                }
                i = end + 1;
                continue;
            }
            Some(Marker::Inline(name, pos)) => {
                if let (Some((_, vstart)), Some(v)) = (label(&c), values.get(name.as_str()))
                    && vstart <= pos
                {
                    let current = c[vstart..pos].trim_end();
                    let new = inline_value(v);
                    if current != new {
                        let ending = &doc.lines[i][c.len()..];
                        let line = format!("{}{new} {}{ending}", &c[..vstart], &c[pos..]);
                        edits.push((i, i + 1, vec![line]));
                        changes.push(Change::new(
                            ChangeKind::Refreshed,
                            &name,
                            Some(&new),
                            Some(current),
                        ));
                    }
                } else if !values.contains_key(name.as_str()) {
                    changes.push(Change::new(ChangeKind::Stale, &name, None, None));
                }
            }
            _ => {}
        }
        i += 1;
    }
    let edited = !edits.is_empty();
    for (from, to, lines) in edits.into_iter().rev() {
        doc.lines.splice(from..to, lines);
    }
    edited
}

/// Fills a `**Label:** value` field; false when neither the field nor its section exists.
fn fill_field(
    doc: &mut Doc,
    sk: &Skeleton,
    slot: &Slot,
    want: &str,
    value: &str,
    force: bool,
    changes: &mut Vec<Change>,
) -> bool {
    let info = &doc.info;
    let found = (0..doc.lines.len()).find_map(|i| {
        if info[i].quoted || info[i].heading.is_some() {
            return None;
        }
        let c = content(&doc.lines[i]);
        match label(c) {
            Some((l, v)) if l == want => Some((i, v)),
            _ => None,
        }
    });
    let new = inline_value(value);
    if let Some((i, vstart)) = found {
        let c = content(&doc.lines[i]).to_owned();
        let ending = doc.lines[i][c.len()..].to_owned();
        let vend = c[vstart..].find("<!--").map_or(c.len(), |p| vstart + p);
        let current = c[vstart..vend].trim_end();
        let replace = if is_placeholder(current) {
            changes.push(Change::new(ChangeKind::Filled, &slot.var, Some(&new), None));
            true
        } else if same_text(current, &new) {
            false
        } else if force {
            changes.push(Change::new(
                ChangeKind::Replaced,
                &slot.var,
                Some(&new),
                Some(current),
            ));
            true
        } else {
            changes.push(Change::new(
                ChangeKind::Kept,
                &slot.var,
                Some(&new),
                Some(current),
            ));
            false
        };
        if replace {
            let gap = if vstart == c.len() && !c.ends_with([' ', '\t']) {
                " "
            } else {
                ""
            };
            let tail = if vend < c.len() {
                format!(" {}", &c[vend..])
            } else {
                String::new()
            };
            doc.lines[i] = format!(
                "{}{gap}{new} {}{tail}{ending}",
                &c[..vstart],
                inline_marker(&slot.var)
            );
        }
        return true;
    }
    // The field is missing: add it to its section, if the card has that section.
    let Some(h) = slot.heading.filter(|&h| Some(h) != sk.root) else {
        return false;
    };
    let Some((hl, _)) = doc.heading(&sk.headings[h].title) else {
        return false;
    };
    let end = doc.own_end(hl);
    let last = (hl + 1..end).rev().find(|&j| !doc.is_blank(j));
    let text = content(&sk.lines[slot.line]).to_owned();
    match last {
        Some(k) if is_list_item(content(&doc.lines[k])) => {
            if content(&doc.lines[k]).len() == doc.lines[k].len() {
                let le = doc.le.clone();
                doc.lines[k].push_str(&le);
            }
            let line = doc.line(&text);
            doc.lines.insert(k + 1, line);
        }
        Some(k) => doc.insert(k + 1, &[text], true),
        None => doc.insert(hl + 1, &[text], true),
    }
    changes.push(Change::new(ChangeKind::Filled, &slot.var, Some(&new), None));
    true
}

fn is_list_item(c: &str) -> bool {
    let t = c.trim_start();
    t.starts_with("- ") || t.starts_with("* ") || t.starts_with("+ ")
}

/// Fills a block under its heading; false when the card lacks the heading.
fn fill_block(
    doc: &mut Doc,
    sk: &Skeleton,
    slot: &Slot,
    value: &str,
    force: bool,
    changes: &mut Vec<Change>,
) -> bool {
    let Some(h) = slot.heading.filter(|&h| Some(h) != sk.root) else {
        return false;
    };
    let Some((hl, _)) = doc.heading(&sk.headings[h].title) else {
        return false;
    };
    let end = doc.own_end(hl);
    let info = &doc.info;
    let body: Vec<usize> = (hl + 1..end)
        .filter(|&j| {
            let c = content(&doc.lines[j]).trim();
            !c.is_empty() && !info[j].comment
        })
        .collect();
    let new = block_lines(&slot.var, value);
    match body.as_slice() {
        [] => {
            let after = (hl + 1..end)
                .rev()
                .find(|&j| !doc.is_blank(j))
                .unwrap_or(hl);
            doc.insert(after + 1, &new, true);
            changes.push(Change::new(
                ChangeKind::Filled,
                &slot.var,
                Some(value),
                None,
            ));
        }
        [only] if is_placeholder(content(&doc.lines[*only])) => {
            doc.replace(*only, *only, &new);
            changes.push(Change::new(
                ChangeKind::Filled,
                &slot.var,
                Some(value),
                None,
            ));
        }
        [first, .., last] | [first @ last] => {
            let (first, last) = (*first, *last);
            let current: Vec<&str> = doc.lines[first..=last].iter().map(|l| content(l)).collect();
            let current = current.join("\n");
            if same_text(&current, value) {
                return true;
            }
            if force {
                doc.replace(first, last, &new);
                changes.push(Change::new(
                    ChangeKind::Replaced,
                    &slot.var,
                    Some(value),
                    Some(&current),
                ));
            } else {
                changes.push(Change::new(
                    ChangeKind::Kept,
                    &slot.var,
                    Some(value),
                    Some(&current),
                ));
            }
        }
    }
    true
}

/// Adds the skeleton section holding `slot` (and the sections above it the card lacks),
/// with only the parts that carry known values.
fn add_section(
    doc: &mut Doc,
    sk: &Skeleton,
    slot: &Slot,
    values: &BTreeMap<&'static str, String>,
    changes: &mut Vec<Change>,
) {
    let Some(mut a) = slot.heading.filter(|&h| Some(h) != sk.root) else {
        return;
    };
    while let Some(p) = sk.headings[a].parent
        && Some(p) != sk.root
        && doc.heading(&sk.headings[p].title).is_none()
    {
        a = p;
    }
    let top = &sk.headings[a];
    let parent_level = top
        .parent
        .filter(|&p| Some(p) != sk.root)
        .and_then(|p| doc.heading(&sk.headings[p].title))
        .map(|(_, l)| l);
    let level = parent_level.map_or(top.level, |l| (l + 1).min(6));
    // Slots that still need a place: a known value, not in the card in any form.
    let needed: Vec<usize> = sk
        .slots
        .iter()
        .filter(|s| {
            values.contains_key(s.var.as_str())
                && !doc.has_marker(&s.var)
                && match (&s.label, s.heading) {
                    (Some(l), _) => !doc.has_label(l),
                    (None, Some(h)) => doc.heading(&sk.headings[h].title).is_none(),
                    (None, None) => false,
                }
        })
        .map(|s| s.line)
        .collect();
    let valued = |from: usize, to: usize| needed.iter().any(|&l| l >= from && l < to);
    // The section's text, pruned to the headings that lead to those slots; headings the card
    // already has are left out (their slots are filled in place).
    let mut text: Vec<String> = Vec::new();
    let inside: Vec<usize> = (a..sk.headings.len())
        .take_while(|&k| k == a || sk.headings[k].line < top.end)
        .collect();
    let mut skip_to = 0;
    for &k in &inside {
        let h = &sk.headings[k];
        if h.line < skip_to {
            continue;
        }
        if k != a && doc.heading(&h.title).is_some() {
            skip_to = h.end;
            continue;
        }
        if !valued(h.line, h.end) {
            continue;
        }
        let own_end = sk
            .headings
            .get(k + 1)
            .map_or(sk.lines.len(), |n| n.line)
            .min(h.end);
        let lvl = (h.level + level).saturating_sub(top.level).clamp(1, 6);
        if !text.is_empty() {
            text.push(String::new());
        }
        text.push(format!("{} {}", "#".repeat(lvl), h.raw));
        text.push(String::new());
        for line in &sk.lines[h.line + 1..own_end] {
            let c = content(line);
            let placeholder = !c.trim().is_empty()
                && (is_placeholder(c)
                    || label(c).is_some_and(|(_, v)| {
                        is_placeholder(c[v..].split("<!--").next().unwrap_or(""))
                    }));
            if placeholder || (c.trim().is_empty() && text.last().is_some_and(String::is_empty)) {
                continue;
            }
            text.push(c.to_owned());
        }
        while text.last().is_some_and(String::is_empty) {
            text.pop();
        }
    }
    if text.is_empty() {
        return;
    }
    // Where: after the nearest earlier skeleton section the card has, else before the
    // nearest later one, else at the end.
    let info = &doc.info;
    let prev = (0..a)
        .rev()
        .filter(|&k| Some(k) != sk.root)
        .find_map(|k| doc.heading(&sk.headings[k].title));
    let pos = match prev {
        Some((pl, plevel)) => {
            let bound = plevel.min(level);
            (pl + 1..doc.lines.len())
                .find(|&j| info[j].heading.as_ref().is_some_and(|(l, _)| *l <= bound))
                .unwrap_or(doc.lines.len())
        }
        None => sk.headings[a..]
            .iter()
            .skip_while(|h| h.line < top.end)
            .find_map(|h| doc.heading(&h.title))
            .map_or(doc.lines.len(), |(l, _)| l),
    };
    doc.insert(pos, &text, true);
    changes.push(Change::new(ChangeKind::Added, &top.raw, None, None));
}
