//! Everything the binary says on stderr: warnings and errors, one line each.
#![allow(clippy::print_stderr)]

use cardfill_facts::Warning;

/// Prints a warning line.
pub fn warning(w: &Warning) {
    eprintln!("warning: {w}");
}

/// Prints a note line (what cardfill did or kept).
pub fn note(message: &str) {
    eprintln!("note: {message}");
}

/// Prints an error and its causes, one line each. A broken pipe is not reported.
pub fn error(err: &anyhow::Error) {
    if err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().map(std::io::Error::kind)
            == Some(std::io::ErrorKind::BrokenPipe)
    }) {
        return;
    }
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
