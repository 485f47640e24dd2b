//! `cardfill`: fills a Hugging Face model card from the evidence a training run leaves behind.
//!
//! The offline executable: a command line that needs the network (`--online`, `--from-hub`,
//! `push`, `--detect-cloud`) is handed to `cardfill-online`, installed beside it.

fn main() -> std::process::ExitCode {
    cardfill::main(None)
}
