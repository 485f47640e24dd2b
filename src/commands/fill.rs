//! `cardfill fill`: collect the facts, render or merge the card, and write it safely
//! (`cardfill_card::write`).
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cardfill_card::write::{CardFile, WriteError};
use cardfill_card::{ChangeKind, FillOptions};

use super::{EXIT_OK, EXIT_WARNINGS};
use crate::cli::FillArgs;
use crate::{collect, report};

/// Runs `fill`.
#[inline(never)]
pub fn run(args: &FillArgs) -> anyhow::Result<ExitCode> {
    let writes = !args.dry_run && !args.check;
    // With --from-hub the evidence is a stand-in of the repository, the card goes to --out.
    // With --from-hub the evidence is a stand-in of the repository, the card goes to --out,
    // and the Hub's README is the card to fill when --out holds none.
    let (dir, mut facts, hub_readme) = match (&args.dir, &args.hub.from_hub, &args.out) {
        (_, Some(repo), Some(out)) => {
            let remote = from_hub(args, repo, out, writes)?;
            (out.clone(), remote.facts, Some(remote.mirror.readme))
        }
        (Some(dir), _, _) => (dir.clone(), collect::collect(dir, &args.evidence)?, None),
        _ => {
            return Err(report::fatal(
                "usage",
                None,
                "pass a checkpoint directory, or --from-hub ORG/NAME with --out DIR (try '--help')",
            ));
        }
    };
    // Never emit a value the Hub rejects: such facts are dropped with a warning.
    cardfill_hub::sanitize(&mut facts);
    for w in facts.warnings() {
        report::warning(w);
    }
    let card_path = args.card.clone().unwrap_or_else(|| dir.join("README.md"));
    let card = if hub_readme.is_some() && !dir.exists() {
        // A dry run from the Hub into a directory not made yet: no card there.
        None
    } else {
        Some(
            CardFile::open(&card_path, &dir, args.card.is_some(), writes).map_err(|e| match e {
                WriteError::Read(_) => {
                    let fix = if args.card.is_some() {
                        "check the path given to --card"
                    } else {
                        "make it readable, or pass another card with --card"
                    };
                    report::fatal("card-unreadable", Some(&card_path), format!("{e}: {fix}"))
                }
                other => other.into(),
            })?,
        )
    };
    // The card to fill: the local one, else the Hub's README.
    let hub_readme = hub_readme.flatten();
    let local = card.as_ref().and_then(|c| c.text().map(str::to_owned));
    let existing = local.clone().or_else(|| hub_readme.clone());
    let template = match &args.template {
        Some(path) => Some(
            cardfill_facts::read::read_to_string(path, cardfill_facts::read::CARD_CAP).map_err(
                |e| {
                    report::fatal(
                        "template-unreadable",
                        Some(path),
                        format!(
                            "cannot read template `{}`: {}: pass an existing UTF-8 Jinja file to --template",
                            path.display(),
                            e.reason()
                        ),
                    )
                },
            )?,
        ),
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
    let figure_stale = figure.as_ref().is_some_and(|bytes| {
        cardfill_facts::read::read(&figure_path, cardfill_facts::read::CONFIG_CAP)
            .ok()
            .as_ref()
            != Some(bytes)
    });
    let up_to_date = local.as_deref() == Some(filled.text.as_str()) && !figure_stale;

    report_changes(&filled.changes);
    // Metadata a person wrote may still be rejected: say so, without touching it.
    // So is metadata the Hub would not see at all (a byte order mark before it).
    let rejected: Vec<_> = cardfill_hub::validate_card(&filled.text)
        .into_iter()
        .filter(|p| p.is_error() || (p.key == "metadata" && filled.text.starts_with('\u{feff}')))
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
        if local.is_none() {
            report::note(&format!(
                "`{}` does not exist: run `cardfill fill` to create it",
                card_path.display()
            ));
            return Ok(ExitCode::from(EXIT_WARNINGS));
        }
        if !up_to_date {
            report::note(&format!(
                "`{}` is out of date: run `cardfill fill` to update it",
                card_path.display()
            ));
            return Ok(ExitCode::from(EXIT_WARNINGS));
        }
    } else if up_to_date {
        report::note(&format!("`{}` is up to date", card_path.display()));
    } else if card.as_ref().is_some_and(CardFile::read_only) && !args.force {
        // Nothing is written: the notes about what would have changed are dropped.
        report::flush(true);
        report::warning(&cardfill_facts::Warning {
            code: "card-read-only".into(),
            message: format!(
                "`{}` is read-only: left alone; make it writable or pass --force",
                card_path.display()
            ),
        });
        return Ok(ExitCode::from(if args.strict {
            EXIT_WARNINGS
        } else {
            EXIT_OK
        }));
    } else {
        if let Some(bytes) = figure.as_ref().filter(|_| figure_stale) {
            write_figure(&figure_path, bytes)?;
            report::note(&format!("wrote `{}`", figure_path.display()));
        }
        let card = card.ok_or_else(|| {
            report::fatal(
                "card-unwritable",
                Some(&card_path),
                format!(
                    "`{}` has no directory: pass an existing --out",
                    card_path.display()
                ),
            )
        })?;
        card.write(filled.text, !args.no_backup, |fresh| {
            let base = fresh.or(hub_readme.as_deref());
            cardfill_card::fill(base, template.as_deref(), &facts, &options).map(|f| f.text)
        })?;
        let done = if local.is_none() { "created" } else { "wrote" };
        report::note(&format!("{done} `{}`", card_path.display()));
    }
    Ok(ExitCode::from(if warned { EXIT_WARNINGS } else { EXIT_OK }))
}

/// Notes on stderr: what was kept or replaced one line each, the rest counted.
fn report_changes(changes: &[cardfill_card::Change]) {
    let mut filled = 0;
    let mut refreshed = 0;
    for c in changes {
        match c.kind {
            ChangeKind::Filled => filled += 1,
            ChangeKind::Refreshed => refreshed += 1,
            // Said after the write, and only when it happened.
            ChangeKind::Created => {}
            ChangeKind::Added
            | ChangeKind::Kept
            | ChangeKind::Replaced
            | ChangeKind::Stale
            | ChangeKind::Cleared => report::note(&c.to_string()),
        }
    }
    if filled + refreshed > 0 {
        report::note(&format!(
            "filled {filled} and refreshed {refreshed} value(s)"
        ));
    }
}

/// Writes the training figure beside the card: a temporary file in the same directory, then a
/// rename, so a reader never sees half a PNG.
fn write_figure(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fail = |e: &std::io::Error| {
        report::fatal(
            "figure-unwritable",
            Some(path),
            format!(
                "cannot write `{}`: {}: make its directory writable",
                path.display(),
                report::io_words(e)
            ),
        )
    };
    // A new file's permissions (0666 less the umask), as the card gets.
    let mut builder = tempfile::Builder::new();
    builder.prefix(".cardfill-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(|e| fail(&e))?;
    tmp.write_all(bytes).map_err(|e| fail(&e))?;
    tmp.persist(path).map_err(|e| fail(&e.error))?;
    Ok(())
}

/// Reads `repo` from the Hub (see [`crate::remote`]), after checking `--out` and creating it
/// when a write follows.
fn from_hub(
    args: &FillArgs,
    repo: &str,
    out: &Path,
    writes: bool,
) -> anyhow::Result<crate::remote::Remote> {
    if out.exists() && !out.is_dir() {
        return Err(report::fatal(
            "not-a-directory",
            Some(out),
            format!(
                "`{}` is not a directory: pass a directory to --out",
                out.display()
            ),
        ));
    }
    let local_card: PathBuf = args.card.clone().unwrap_or_else(|| out.join("README.md"));
    let remote = crate::remote::collect(
        repo,
        args.hub.revision.as_deref(),
        Some(&local_card),
        &args.evidence,
    )?;
    // Created once the Hub answered: a failure leaves nothing behind.
    if writes && !out.exists() {
        std::fs::create_dir_all(out).map_err(|e| {
            report::fatal(
                "out-unwritable",
                Some(out),
                format!(
                    "cannot create `{}`: {}: pass a directory you can write to --out",
                    out.display(),
                    report::io_words(&e)
                ),
            )
        })?;
        report::note(&format!("created `{}`", out.display()));
    }
    Ok(remote)
}
