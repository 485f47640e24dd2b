//! The `cardfill` command line, shared by its two executables: `cardfill`, which links no HTTP
//! client, TLS or async runtime, and `cardfill-online`, the same commands with the network
//! ([`network`]). `cardfill` hands a command line that needs the network to `cardfill-online`.
//!
//! This crate only parses arguments, wires collectors together and prints; the work lives in
//! the `crates/` libraries.

mod cli;
mod collect;
mod commands;
pub mod network;
mod plausible;
mod remote;
mod report;

use std::process::ExitCode;

use clap::Parser;

pub use network::Network;

/// Runs the command line of this process: `network` is [`network::ONLINE`] in
/// `cardfill-online`; `None` in `cardfill`, which runs `cardfill-online` in its place for a
/// command line that needs the network.
pub fn main(network: Option<&'static Network>) -> ExitCode {
    if let Some(code) = version_only() {
        return code;
    }
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed =
        cli::Args::try_parse_narrow(&argv).map_or_else(|| cli::Args::try_parse_from(&argv), Ok);
    let args = match parsed {
        Ok(args) => args,
        Err(err) => return usage_error(&err),
    };
    let json = args.json_output();
    let result = match network {
        None if args.needs_network() => network::hand_over(),
        _ => {
            network::install(network);
            commands::run(args)
        }
    };
    match result {
        Ok(code) => {
            report::flush(false);
            code
        }
        Err(err) => {
            report::error(&err, json);
            ExitCode::from(2)
        }
    }
}

/// `cardfill --version` (or `-V`) alone, answered as clap answers it but without building the
/// whole command line first: start-up is most of this command's time.
fn version_only() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    match (args.next(), args.next()) {
        (Some(arg), None) if arg == "--version" || arg == "-V" => {}
        _ => return None,
    }
    let text = concat!("cardfill ", env!("CARGO_PKG_VERSION"), "\n");
    // As clap's `print`, a closed stdout is not an error.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    Some(ExitCode::SUCCESS)
}

/// A command line clap refused: `--help` and `--version` print as usual; a mistake is one line
/// (and the JSON error object under `--format json`), exit 2.
fn usage_error(err: &clap::Error) -> ExitCode {
    if !err.use_stderr() {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = err.print();
        return ExitCode::from(2);
    }
    let text = err.render().to_string();
    let first: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = first.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let json = std::env::args()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w[0] == "--format" && w[1] == "json")
        || std::env::args().any(|a| a == "--format=json");
    report::error(
        &report::fatal("usage", None, format!("{message} (try '--help')")),
        json,
    );
    ExitCode::from(2)
}
