//! Trainer output directories: `checkpoint-N/` folders beside (or instead of) the final
//! weights. Weights at the root win; without them the highest `checkpoint-N` is inspected and
//! `checkpoint.inspected_dir` says so.

use cardfill_facts::{Facts, Source, Value, paths};

/// The `checkpoint-N` sub-directory with the highest N among `dirs` (real directories only:
/// a symbolic link could loop back), if any.
pub fn latest(dirs: &[String]) -> Option<String> {
    dirs.iter()
        .filter_map(|name| {
            let n: u64 = name.strip_prefix("checkpoint-")?.parse().ok()?;
            Some((n, name))
        })
        .max()
        .map(|(_, name)| name.clone())
}

/// Rewrites facts collected in `sub` so that files and sources name `sub/…`, and records
/// `checkpoint.inspected_dir`.
pub fn rebase(sub: &str, inner: Facts) -> Facts {
    let mut out = Facts::new();
    for (path, fact) in inner.iter() {
        let source = match &fact.source {
            Source::File { path: p, method } => Source::file(format!("{sub}/{p}"), method.clone()),
            other => other.clone(),
        };
        let value = if path == paths::CHECKPOINT_FILES {
            match &fact.value {
                Value::Array(files) => Value::Array(
                    files
                        .iter()
                        .map(|f| match f.as_str() {
                            Some(s) => Value::from(format!("{sub}/{s}")),
                            None => f.clone(),
                        })
                        .collect(),
                ),
                v => v.clone(),
            }
        } else {
            fact.value.clone()
        };
        out.set(path, value, source);
    }
    for w in inner.warnings() {
        out.warn(&w.code, w.message.clone());
    }
    out.set(
        paths::CHECKPOINT_INSPECTED_DIR,
        sub,
        Source::file(
            sub,
            "no weights at the root: highest checkpoint-N inspected",
        ),
    );
    out
}
