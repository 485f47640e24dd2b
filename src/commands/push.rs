//! `cardfill push`: the card and the files it links to, validated, then uploaded to the Hub in
//! one commit (`cardfill_hub::push`).
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use cardfill_facts::read;
use serde_json::json;

use super::EXIT_OK;
use crate::cli::{Format, PushArgs};
use crate::report;

/// The largest linked file uploaded with the card.
const LINKED_CAP: u64 = 50 << 20;

/// Runs `push`.
#[inline(never)]
pub fn run(args: &PushArgs) -> anyhow::Result<ExitCode> {
    crate::remote::check_id(&args.repo, "--repo")?;
    crate::collect::check_dir(&args.dir)?;
    let card_path = args.dir.join("README.md");
    let text = read::read_to_string(&card_path, read::CARD_CAP).map_err(|e| {
        report::fatal(
            "card-unreadable",
            Some(&card_path),
            format!(
                "cannot read `{}`: {}: run `cardfill fill {}` first",
                card_path.display(),
                e.reason(),
                args.dir.display()
            ),
        )
    })?;
    // The offline rules first: a card the Hub would reject is not sent.
    let rejected: Vec<String> = cardfill_hub::validate_card(&text)
        .into_iter()
        .filter(|p| p.is_error())
        .map(|p| p.to_string())
        .collect();
    if !rejected.is_empty() {
        if !args.force {
            return Err(report::fatal(
                "card-rejected",
                Some(&card_path),
                format!(
                    "`{}` would be rejected by the Hub: {}: fix it, or pass --force to send it anyway",
                    card_path.display(),
                    rejected.join("; ")
                ),
            ));
        }
        for r in &rejected {
            report::warning(&cardfill_facts::Warning {
                code: "card-rejected-by-hub".into(),
                message: format!("`{}`: {r} (sent anyway: --force)", card_path.display()),
            });
        }
    }
    let mut files = vec![("README.md".to_owned(), text.clone().into_bytes())];
    for link in cardfill_card::linked_files(&text) {
        if let Some(bytes) = linked(&args.dir, &link) {
            files.push((link, bytes));
        }
    }
    let message = args
        .message
        .clone()
        .unwrap_or_else(|| "Update the model card with cardfill".to_owned());
    let names: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
    let description = format!(
        "Written by cardfill {}: {}.",
        env!("CARGO_PKG_VERSION"),
        names.join(", ")
    );
    let branch = args.revision.as_deref().unwrap_or("main");
    let mut out = json!({
        "repo": args.repo,
        "revision": branch,
        "create_pr": args.create_pr,
        "message": message,
        "files": files.iter().map(|(p, b)| json!({"path": p, "bytes": b.len()})).collect::<Vec<_>>(),
        "dry_run": args.dry_run,
    });
    let mut text_out = String::new();
    if args.dry_run {
        text_out.push_str(&format!(
            "would commit to `{}` ({}), sending nothing:\n",
            args.repo,
            if args.create_pr {
                format!("a pull request against {branch}")
            } else {
                format!("branch {branch}")
            }
        ));
        for (p, b) in &files {
            text_out.push_str(&format!(
                "  {p}  {}\n",
                cardfill_facts::human_bytes(b.len() as u64)
            ));
        }
        text_out.push_str(&format!("message: {message}\n"));
    } else {
        let upload = cardfill_hub::push::Upload {
            repo: args.repo.clone(),
            revision: args.revision.clone(),
            create_pr: args.create_pr,
            message,
            description,
            files,
        };
        let push = crate::network::required()?.push;
        let pushed = push(&upload, &cardfill_hub::HubOptions::default())
            .map_err(|e| report::fatal("hub", None, e.to_string()))?;
        out["commit_url"] = pushed.commit_url.clone().into();
        out["commit_oid"] = pushed.commit_oid.clone().into();
        out["pr_url"] = pushed.pr_url.clone().into();
        report::note(&format!(
            "committed {} to `{}`",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            args.repo
        ));
        if args.create_pr {
            match &pushed.pr_url {
                Some(url) => text_out.push_str(&format!("{url}\n")),
                None => report::warning(&cardfill_facts::Warning {
                    code: "pr-url-unknown".into(),
                    message: "the Hub made the commit but named no pull request: see the repository's community tab".into(),
                }),
            }
        } else if let Some(url) = &pushed.commit_url {
            text_out.push_str(&format!("{url}\n"));
        }
    }
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut stdout, &out)?;
            writeln!(stdout)?;
        }
        Format::Text => stdout.write_all(text_out.as_bytes())?,
    }
    stdout.flush()?;
    Ok(ExitCode::from(EXIT_OK))
}

/// The bytes of `link`, a file the card links to inside `dir`; `None`, with a warning, when it
/// is missing, not a regular file, a link out of `dir` or too large.
fn linked(dir: &Path, link: &str) -> Option<Vec<u8>> {
    let path = dir.join(link);
    let skip = |why: String| {
        report::warning(&cardfill_facts::Warning {
            code: "linked-file-skipped".into(),
            message: format!(
                "`{}`, linked from the card, {why}: not uploaded",
                path.display()
            ),
        });
        None
    };
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        // A link to a page or a file kept elsewhere: nothing to upload.
        return None;
    };
    if meta.file_type().is_symlink() {
        let inside = std::fs::canonicalize(&path)
            .ok()
            .zip(std::fs::canonicalize(dir).ok())
            .is_some_and(|(target, dir)| target.starts_with(dir));
        if !inside {
            return skip("is a symbolic link out of the directory".into());
        }
    }
    match read::read(&path, LINKED_CAP) {
        Ok(bytes) => Some(bytes),
        Err(e) => skip(e.reason()),
    }
}
