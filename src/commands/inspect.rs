//! `cardfill inspect`: the facts, each with where it came from.
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::process::ExitCode;

use cardfill_facts::Facts;

use super::{EXIT_OK, EXIT_WARNINGS};
use crate::cli::{Format, InspectArgs};
use crate::{collect, report};

/// Runs `inspect`.
pub fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let facts = collect::collect(&args.dir, &args.evidence)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &facts.to_json())?;
            writeln!(out)?;
        }
        Format::Text => {
            write_text(&mut out, &facts)?;
            for w in facts.warnings() {
                report::warning(w);
            }
        }
    }
    out.flush()?;
    let code = if args.strict && !facts.warnings().is_empty() {
        EXIT_WARNINGS
    } else {
        EXIT_OK
    };
    Ok(ExitCode::from(code))
}

/// Writes one line per fact: path, value, and source.
fn write_text(out: &mut impl Write, facts: &Facts) -> std::io::Result<()> {
    let width = facts.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    for (path, fact) in facts.iter() {
        let value = match &fact.value {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        writeln!(out, "{path:<width$}  {value}")?;
        writeln!(out, "{:<width$}    ← {}", "", fact.source)?;
    }
    if facts.is_empty() {
        writeln!(out, "no facts found")?;
    }
    Ok(())
}
