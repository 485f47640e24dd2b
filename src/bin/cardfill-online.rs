//! `cardfill-online`: `cardfill` with its network half linked in (the Hub client, HTTP, TLS and
//! an async runtime). `cardfill` runs it for the command lines that need the network; it can
//! also be run directly.

fn main() -> std::process::ExitCode {
    cardfill::main(Some(&cardfill::network::ONLINE))
}
