//! Everything the binary says on stderr: warnings and errors, one line each.

use std::io::Write;

use cardfill_facts::Warning;

/// Writes one line to stderr; a failed write (closed pipe, full disk) is ignored, never a panic.
fn line(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

/// Prints a warning line.
pub fn warning(w: &Warning) {
    line(format_args!("warning: {w}"));
}

/// Prints a note line (what cardfill did or kept).
pub fn note(message: &str) {
    line(format_args!("note: {message}"));
}

/// Prints an error and its causes, one line each. A broken pipe is not reported.
pub fn error(err: &anyhow::Error) {
    if err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().map(std::io::Error::kind)
            == Some(std::io::ErrorKind::BrokenPipe)
    }) {
        return;
    }
    line(format_args!("error: {err}"));
    for cause in err.chain().skip(1) {
        line(format_args!("  caused by: {cause}"));
    }
}
