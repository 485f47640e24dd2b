//! `cardfill fill`: collect the facts, render or merge the card, and write it atomically.
#![allow(clippy::print_stdout)]

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use cardfill_card::{ChangeKind, FillOptions};

use super::{EXIT_OK, EXIT_WARNINGS};
use crate::cli::FillArgs;
use crate::{collect, report};

/// Runs `fill`.
pub fn run(args: &FillArgs) -> anyhow::Result<ExitCode> {
    let mut facts = collect::collect(&args.dir, &args.evidence)?;
    // Never emit a value the Hub rejects: such facts are dropped with a warning.
    cardfill_hub::sanitize(&mut facts);
    for w in facts.warnings() {
        report::warning(w);
    }
    let card_path = args
        .card
        .clone()
        .unwrap_or_else(|| args.dir.join("README.md"));
    let existing = read_card(&card_path)?;
    let template = match &args.template {
        Some(path) => Some(fs_err::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read template `{}`: {}: pass an existing UTF-8 Jinja file to --template",
                path.display(),
                e.kind()
            )
        })?),
        None => None,
    };
    let options = FillOptions {
        force: args.force,
        card_name: card_path.display().to_string(),
        template_name: args.template.as_ref().map_or_else(
            || "the default template".to_owned(),
            |p| p.display().to_string(),
        ),
    };
    let filled = cardfill_card::fill(existing.as_deref(), template.as_deref(), &facts, &options)?;
    // The training figure, beside the card, when the card links it.
    let figure = cardfill_card::training_figure(&facts)
        .filter(|_| filled.text.contains(cardfill_card::FIGURE_FILE));
    let figure_path = card_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(cardfill_card::FIGURE_FILE);
    let figure_stale = figure
        .as_ref()
        .is_some_and(|bytes| std::fs::read(&figure_path).ok().as_ref() != Some(bytes));
    let up_to_date = existing.as_deref() == Some(filled.text.as_str()) && !figure_stale;

    report_changes(&filled.changes);
    // Metadata a person wrote may still be rejected: say so, without touching it.
    let rejected: Vec<_> = cardfill_hub::validate_card(&filled.text)
        .into_iter()
        .filter(cardfill_hub::Problem::is_error)
        .collect();
    for p in &rejected {
        report::warning(&cardfill_facts::Warning {
            code: "card-rejected-by-hub".into(),
            message: format!("`{}`: {p}", card_path.display()),
        });
    }
    let warned = args.strict && (!facts.warnings().is_empty() || !rejected.is_empty());

    if args.dry_run {
        let mut out = std::io::stdout().lock();
        out.write_all(filled.text.as_bytes())?;
        out.flush()?;
    } else if args.check {
        if !up_to_date {
            report::note(&format!(
                "`{}` is out of date: run `cardfill fill` to update it",
                card_path.display()
            ));
            return Ok(ExitCode::from(EXIT_WARNINGS));
        }
    } else if up_to_date {
        report::note(&format!("`{}` is up to date", card_path.display()));
    } else {
        if let Some(old) = &existing
            && !args.no_backup
        {
            let bak = backup_path(&card_path);
            fs_err::write(&bak, old).with_context(|| {
                format!(
                    "the card was not changed; cannot back it up as `{}`",
                    bak.display()
                )
            })?;
        }
        if let Some(bytes) = figure.as_ref().filter(|_| figure_stale) {
            write_atomic(&figure_path, bytes)?;
            report::note(&format!("wrote `{}`", figure_path.display()));
        }
        write_atomic(&card_path, filled.text.as_bytes())?;
        report::note(&format!("wrote `{}`", card_path.display()));
    }
    Ok(ExitCode::from(if warned { EXIT_WARNINGS } else { EXIT_OK }))
}

/// The card's text, or `None` when there is no card yet.
fn read_card(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Ok(Some(text)),
            Err(e) => bail!(
                "`{}` is not UTF-8 text (invalid byte at offset {}): save it as UTF-8 or pass another --card",
                path.display(),
                e.utf8_error().valid_up_to()
            ),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => bail!(
            "cannot read `{}`: {e}: check the path given to --card",
            path.display()
        ),
    }
}

fn backup_path(card: &Path) -> PathBuf {
    let mut name = card.file_name().unwrap_or_default().to_os_string();
    name.push(".bak");
    card.with_file_name(name)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// the card is never half-written. The old card's permissions are kept.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fail = |e: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "cannot write `{}`: {e}: check that its directory exists and is writable",
            path.display()
        )
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".cardfill-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| fail(&e))?;
    tmp.write_all(bytes).map_err(|e| fail(&e))?;
    tmp.as_file().sync_all().map_err(|e| fail(&e))?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions()).map_err(|e| fail(&e))?;
    }
    tmp.persist(path).map_err(|e| fail(&e.error))?;
    Ok(())
}

/// Notes on stderr: what was kept or replaced one line each, the rest counted.
fn report_changes(changes: &[cardfill_card::Change]) {
    let mut filled = 0;
    let mut refreshed = 0;
    for c in changes {
        match c.kind {
            ChangeKind::Filled => filled += 1,
            ChangeKind::Refreshed => refreshed += 1,
            ChangeKind::Created
            | ChangeKind::Added
            | ChangeKind::Kept
            | ChangeKind::Replaced
            | ChangeKind::Stale => report::note(&c.to_string()),
        }
    }
    if filled + refreshed > 0 {
        report::note(&format!(
            "filled {filled} and refreshed {refreshed} value(s)"
        ));
    }
}
