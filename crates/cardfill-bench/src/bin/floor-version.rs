//! A minimal Rust binary that prints a version: the start-up floor of `cardfill --version`.
#![allow(clippy::print_stdout)]

fn main() {
    println!("floor-version {}", env!("CARGO_PKG_VERSION"));
}
