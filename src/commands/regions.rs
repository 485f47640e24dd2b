//! `cardfill regions`: the grid intensity table, or the rows matching a query.
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::process::ExitCode;

use super::EXIT_OK;
use crate::cli::*;

/// Runs `regions`.
#[inline(never)]
pub fn run(args: &RegionsArgs) -> anyhow::Result<ExitCode> {
    let tables = cardfill_carbon::tables()?;
    let query = args
        .query
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty());
    let rows = tables.search(query);
    if rows.is_empty() {
        let q = query.unwrap_or_default();
        let close = tables.close_matches(q);
        if close.is_empty() {
            return Err(crate::report::fatal(
                "no-region-match",
                None,
                format!("no region matches `{q}`; `cardfill regions` lists them all"),
            ));
        }
        return Err(crate::report::fatal(
            "no-region-match",
            None,
            format!(
                "no region matches `{q}` (did you mean {}?)",
                close.join(", ")
            ),
        ));
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        Format::Text => {
            let cells: Vec<[String; 6]> = rows
                .iter()
                .map(|r| {
                    [
                        r.key.clone(),
                        format!("{:.1}", r.g_per_kwh),
                        r.pue
                            .map(|p| format!("{p:.2}"))
                            .unwrap_or_else(|| "-".into()),
                        r.location.clone(),
                        r.method.clone(),
                        r.intensity_source(),
                    ]
                })
                .collect();
            let head = [
                "REGION",
                "G/KWH",
                "PUE",
                "LOCATION",
                "METHOD",
                "SOURCE, YEAR",
            ]
            .map(String::from);
            let width = |i: usize| {
                std::iter::once(&head)
                    .chain(&cells)
                    .map(|c| c[i].chars().count())
                    .max()
                    .unwrap_or(0)
            };
            let (w0, w1, w2, w3, w4) = (width(0), width(1), width(2), width(3), width(4));
            for c in std::iter::once(&head).chain(&cells) {
                let line = format!(
                    "{:<w0$}  {:>w1$}  {:>w2$}  {:<w3$}  {:<w4$}  {}",
                    c[0], c[1], c[2], c[3], c[4], c[5]
                );
                writeln!(out, "{}", line.trim_end())?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::from(EXIT_OK))
}
