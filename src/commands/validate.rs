//! `cardfill validate`: a card's metadata checked as the Hub checks it.
//!
//! stdout: one line per problem, `CARD:LINE: error|warning: KEY: what; fix`. stderr: the
//! summary. Exit 0 when the Hub would accept the card, 1 when it would not, 2 when the card
//! cannot be read or the Hub's validator cannot be reached.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use cardfill_hub::{HubError, HubOptions, Severity};

use super::{EXIT_OK, EXIT_WARNINGS};
use crate::cli::ValidateArgs;

/// Runs `validate`.
#[inline(never)]
pub fn run(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let shown = args.card.display();
    let bytes =
        cardfill_facts::read::read(&args.card, cardfill_facts::read::CARD_CAP).map_err(|e| {
            crate::report::fatal(
                "card-unreadable",
                Some(&args.card),
                format!(
                    "cannot read `{shown}`: {}: pass the path of a model card (README.md)",
                    e.reason()
                ),
            )
        })?;
    let card = String::from_utf8(bytes).map_err(|e| {
        crate::report::fatal(
            "card-not-utf8",
            Some(&args.card),
            format!(
                "`{shown}` is not UTF-8 text (invalid byte at offset {}): the Hub reads cards as UTF-8; re-save it as UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let name = args.card.display().to_string();
    let mut out = std::io::stdout().lock();
    let (mut errors, mut warnings) = (0usize, 0usize);

    for p in cardfill_hub::validate_card(&card) {
        let level = match p.severity {
            Severity::Error => {
                errors += 1;
                "error"
            }
            Severity::Warning => {
                warnings += 1;
                "warning"
            }
        };
        match p.line {
            Some(line) => writeln!(out, "{name}:{line}: {level}: {p}")?,
            None => writeln!(out, "{name}: {level}: {p}")?,
        }
    }

    if args.online {
        let options = HubOptions {
            online: true,
            ..HubOptions::default()
        };
        match (crate::network::required()?.validate_online)(&card, &options) {
            Ok(report) => {
                for m in &report.errors {
                    writeln!(out, "{name}: error: the Hub says: {m}")?;
                }
                for m in &report.warnings {
                    writeln!(out, "{name}: warning: the Hub says: {m}")?;
                }
                errors += report.errors.len();
                warnings += report.warnings.len();
            }
            Err(err @ HubError::Offline { .. }) => {
                eprintln!("warning: {err}; only the offline checks ran");
            }
            Err(err) => {
                out.flush()?;
                return Err(err).context("the online check could not run");
            }
        }
    }
    out.flush()?;

    if errors == 0 && cardfill_card::find_front_matter(&card).is_none() {
        eprintln!(
            "`{name}`: the Hub sees no metadata in this card ({warnings} warning{})",
            plural(warnings)
        );
        Ok(ExitCode::from(EXIT_OK))
    } else if errors == 0 {
        let note = if warnings == 0 {
            String::new()
        } else {
            format!(" ({warnings} warning{})", plural(warnings))
        };
        eprintln!("`{name}`: the Hub accepts this metadata{note}");
        Ok(ExitCode::from(EXIT_OK))
    } else {
        eprintln!(
            "`{name}`: {errors} problem{} the Hub rejects, {warnings} warning{}",
            plural(errors),
            plural(warnings)
        );
        Ok(ExitCode::from(EXIT_WARNINGS))
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
