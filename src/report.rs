//! Everything the binary says on stderr: warnings and errors, one line each. Under
//! `--format json` a fatal error is also one JSON object on stdout.

use std::io::{ErrorKind, Write};
use std::path::Path;
use std::sync::Mutex;

use cardfill_facts::Warning;

/// Lines said so far, held until the command ends so that a fatal error comes first:
/// `(is_note, line)`.
static PENDING: Mutex<Vec<(bool, String)>> = Mutex::new(Vec::new());

/// Writes one line to stderr; a failed write (closed pipe, full disk) is ignored, never a panic.
fn line(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

fn hold(is_note: bool, text: String) {
    match PENDING.lock() {
        Ok(mut pending) => pending.push((is_note, text)),
        Err(_) => line(&text),
    }
}

/// Prints the held lines; after an error (`failed`) only the warnings, since the notes
/// describe changes that did not happen.
pub fn flush(failed: bool) {
    let lines = PENDING
        .lock()
        .map(|mut p| std::mem::take(&mut *p))
        .unwrap_or_default();
    for (is_note, text) in lines {
        if !(failed && is_note) {
            line(&text);
        }
    }
}

/// Says a warning (held until the command ends).
pub fn warning(w: &Warning) {
    hold(false, format!("warning: {}", plain(&w.to_string())));
}

/// Says a note: what cardfill did or kept (held until the command ends).
pub fn note(message: &str) {
    hold(true, format!("note: {message}"));
}

/// System error texts in words: `Permission denied (os error 13)` becomes `permission denied`.
pub fn plain(text: &str) -> String {
    let mut out = text.to_owned();
    for phrase in [
        "No such file or directory",
        "Permission denied",
        "Not a directory",
        "Is a directory",
        "Read-only file system",
        "No space left on device",
        "Connection refused",
        "File exists",
    ] {
        out = out.replace(phrase, &phrase.to_lowercase());
    }
    while let Some(start) = out.find(" (os error ") {
        let Some(len) = out[start..].find(')') else {
            break;
        };
        out.replace_range(start..=start + len, "");
    }
    out
}

/// A fatal error with a stable code and the file it is about (for `--format json`).
#[derive(Debug)]
pub struct Fatal {
    /// Stable, kebab-case code (`dir-missing`).
    pub code: &'static str,
    /// The file or directory concerned.
    pub file: Option<String>,
    /// The whole one-line message.
    pub message: String,
}

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fatal {}

/// A fatal error about `file`.
pub fn fatal(code: &'static str, file: Option<&Path>, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Fatal {
        code,
        file: file.map(|f| f.display().to_string()),
        message: message.into(),
    })
}

/// An I/O error in words a person uses ("no such file or directory", "permission denied"),
/// without Rust's `ErrorKind` names or `(os error N)`.
pub fn io_words(e: &std::io::Error) -> String {
    let words = match e.kind() {
        ErrorKind::NotFound => "no such file or directory",
        ErrorKind::PermissionDenied => "permission denied",
        ErrorKind::AlreadyExists => "it already exists",
        ErrorKind::IsADirectory => "it is a directory",
        ErrorKind::NotADirectory => "a part of the path is not a directory",
        ErrorKind::ReadOnlyFilesystem => "the file system is read-only",
        ErrorKind::StorageFull => "no space left on the device",
        ErrorKind::InvalidData => "it is not UTF-8 text",
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or_default();
            let mut chars = text.chars();
            return chars.next().map_or_else(String::new, |c| {
                c.to_lowercase().chain(chars).collect::<String>()
            });
        }
    };
    words.to_owned()
}

/// The error and its causes on one line; causes already in the text are not repeated.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let part = match cause.downcast_ref::<std::io::Error>() {
            Some(io) => io_words(io),
            None => cause.to_string(),
        };
        if !plain(&line).contains(&plain(&part)) {
            line.push_str(": ");
            line.push_str(&part);
        }
    }
    plain(&line.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The stable code and file of an error, for the JSON error object.
fn code_and_file(err: &anyhow::Error) -> (&'static str, Option<String>) {
    if let Some(f) = err.downcast_ref::<Fatal>() {
        return (f.code, f.file.clone());
    }
    if let Some(e) = err.downcast_ref::<cardfill_carbon::CarbonError>() {
        use cardfill_carbon::CarbonError as C;
        let code = match e {
            C::UnknownRegion { .. } => "unknown-region",
            C::UnknownHardware { .. } => "unknown-hardware",
            C::Invalid { .. } => "invalid-value",
            _ => "carbon-table",
        };
        return (code, None);
    }
    if let Some(e) = err.downcast_ref::<cardfill_card::CardError>() {
        use cardfill_card::CardError as C;
        return match e {
            C::Template { file, .. } => ("template-unusable", Some(file.clone())),
            C::FrontMatter { file, .. } => ("front-matter-unreadable", Some(file.clone())),
            C::UnclosedFrontMatter { file, .. } => ("front-matter-unclosed", Some(file.clone())),
            C::DuplicateKey { file, .. } => ("front-matter-duplicate-key", Some(file.clone())),
        };
    }
    if let Some(e) = err.downcast_ref::<cardfill_card::write::WriteError>() {
        return ("card-unwritable", e.path().map(|p| p.display().to_string()));
    }
    if err.downcast_ref::<std::io::Error>().is_some() {
        return ("io", None);
    }
    ("error", None)
}

/// Prints an error on one line (its causes folded in). With `json`, also prints
/// `{"error": {"code", "message", "file"}}` on stdout. A broken pipe is not reported.
pub fn error(err: &anyhow::Error, json: bool) {
    if err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().map(std::io::Error::kind)
            == Some(std::io::ErrorKind::BrokenPipe)
    }) {
        flush(true);
        return;
    }
    let line = one_line(err);
    if json {
        let (code, file) = code_and_file(err);
        let object = serde_json::json!({
            "error": { "code": code, "message": line, "file": file }
        });
        let _ = writeln!(std::io::stdout().lock(), "{object}");
    }
    self::line(&format!("error: {line}"));
    flush(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_in_words() {
        let io = std::io::Error::from_raw_os_error(13);
        assert_eq!(io_words(&io), "permission denied");
        let err = anyhow::Error::new(std::io::Error::from_raw_os_error(2))
            .context("cannot read `x`\n  (twice)");
        assert_eq!(
            one_line(&err),
            "cannot read `x` (twice): no such file or directory"
        );
        assert_eq!(
            plain("failed: Not a directory (os error 20); Permission denied (os error 13)"),
            "failed: not a directory; permission denied"
        );
    }

    #[test]
    fn json_errors_carry_a_code_and_the_file() {
        let err = fatal(
            "dir-missing",
            Some(Path::new("./nope")),
            "`./nope` does not exist",
        );
        assert_eq!(
            code_and_file(&err),
            ("dir-missing", Some("./nope".to_owned()))
        );
    }
}
