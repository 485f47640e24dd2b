//! `cardfill inspect`: the facts, each with where it came from.
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::process::ExitCode;

use cardfill_facts::{Facts, Value};

use super::{EXIT_OK, EXIT_WARNINGS};
use crate::cli::{Format, InspectArgs};
use crate::{collect, report};

/// Runs `inspect`.
#[inline(never)]
pub fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let facts = match (&args.dir, &args.hub.from_hub) {
        (_, Some(repo)) => {
            crate::remote::collect(repo, args.hub.revision.as_deref(), None, &args.evidence)?.facts
        }
        (Some(dir), None) => collect::collect(dir, &args.evidence)?,
        (None, None) => {
            return Err(report::fatal(
                "usage",
                None,
                "pass a checkpoint directory, or --from-hub ORG/NAME (try '--help')",
            ));
        }
    };
    let warned = !facts.warnings().is_empty();
    // Built whole, then written in one call (stdout is line-buffered).
    let mut buf = Vec::with_capacity(16 << 10);
    let text_facts = match args.format {
        Format::Json => {
            let json = facts.into_json();
            serde_json::to_writer_pretty(&mut buf, &json)?;
            writeln!(buf)?;
            // The process ends after this command: its memory goes back to the system
            // without a walk over every value to free it.
            std::mem::forget(json);
            None
        }
        Format::Text => {
            write_text(&mut buf, &facts)?;
            Some(facts)
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&buf)?;
    out.flush()?;
    if let Some(facts) = &text_facts {
        for w in facts.warnings() {
            report::warning(w);
        }
    }
    let code = if args.strict && warned {
        EXIT_WARNINGS
    } else {
        EXIT_OK
    };
    Ok(ExitCode::from(code))
}

/// Writes one line per fact (path, value, and source beneath), a blank line between sections.
fn write_text(out: &mut impl Write, facts: &Facts) -> std::io::Result<()> {
    let width = facts.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    let mut section = None;
    for (path, fact) in facts.iter() {
        let top = path.split('.').next();
        if section.is_some() && section != top {
            writeln!(out)?;
        }
        section = top;
        writeln!(out, "{path:<width$}  {}", display_value(path, &fact.value))?;
        writeln!(out, "{:<width$}    ← {}", "", fact.source)?;
    }
    if facts.is_empty() {
        writeln!(out, "no facts found")?;
    }
    Ok(())
}

/// A value as a person reads it: counts and sizes also in the Hub's units, lists and
/// dtype breakdowns on one line, long file lists shortened.
fn display_value(path: &str, value: &Value) -> String {
    use cardfill_facts::{human_bytes, human_count, paths};
    let count = |n: u64| format!("{n} ({})", human_count(n));
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_u64() {
            Some(n) if path == paths::CHECKPOINT_BYTES => format!("{n} ({})", human_bytes(n)),
            Some(n) if path.starts_with("parameters.") => count(n),
            _ => n.to_string(),
        },
        Value::Object(map) if path == paths::PARAMETERS_BY_DTYPE => map
            .iter()
            .map(|(dtype, n)| match n.as_u64() {
                Some(n) => format!("{dtype} {}", count(n)),
                None => format!("{dtype} {n}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let names: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            match names.as_slice() {
                [first, .., last] if names.len() > 4 => {
                    let what = if path == paths::CHECKPOINT_FILES {
                        "files"
                    } else {
                        "items"
                    };
                    format!("{first}, …, {last} ({} {what})", names.len())
                }
                _ => names.join(", "),
            }
        }
        v => {
            // A long value (a training log, power samples) is summarised: one screen line.
            let text = v.to_string();
            if text.chars().count() <= LONG {
                return text;
            }
            let head: String = text.chars().take(LONG / 2).collect();
            let size = match v {
                Value::Array(a) => format!("{} entries", a.len()),
                Value::Object(m) => format!("{} keys", m.len()),
                _ => format!("{} characters", text.chars().count()),
            };
            format!("{head}… ({size}; --format json shows it whole)")
        }
    }
}

/// Values longer than this (as compact JSON) are summarised in the text view.
const LONG: usize = 160;
