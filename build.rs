//! Link settings of the `cardfill` binary (see "Build settings" in the README).
//!
//! On Linux with glibc the executable is linked at a fixed address (`-no-pie`): the ~34,000
//! relative relocations a position-independent build applies at every start (one dirtied page
//! of pointers after another) are resolved once, at link time. This halves start-up page
//! faults; the price is no address randomisation of the executable itself (libraries, stack
//! and heap stay randomised). `CARDFILL_PIE=1` at build time keeps the default.

fn main() {
    println!("cargo:rerun-if-env-changed=CARDFILL_PIE");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let pie = std::env::var("CARDFILL_PIE").is_ok_and(|v| v == "1");
    if os == "linux" && env == "gnu" && !pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
