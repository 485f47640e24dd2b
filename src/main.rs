//! `cardfill`: fills a Hugging Face model card from the evidence a training run leaves behind.
//!
//! This binary only parses arguments, wires collectors together and prints; the work lives in
//! the `crates/` libraries.

mod cli;
mod collect;
mod commands;
mod plausible;
mod report;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let json = args.json_output();
    match commands::run(args) {
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
