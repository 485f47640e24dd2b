//! Link settings of the `cardfill` binaries (see "Build settings" in the README). Linux with
//! glibc only; elsewhere the defaults stand.
//!
//! - Linked at a fixed address (`-no-pie`): the ~34,000 relative relocations a
//!   position-independent build applies at every start (one dirtied page of pointers after
//!   another) are resolved once, at link time. This halves start-up page faults; the price is
//!   no address randomisation of the executable itself (libraries, stack and heap stay
//!   randomised). `CARDFILL_PIE=1` at build time keeps the default.
//! - The unwinder linked in from gcc's `libgcc_eh.a` instead of loading `libgcc_s.so.1`: one
//!   shared library fewer to map, and no `__cpu_indicator_init` constructor, whose `cpuid`
//!   instructions are slow in a virtual machine (about 0.1 ms a run). Skipped when the C
//!   compiler that links has no `libgcc_eh.a`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CARDFILL_PIE");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || env != "gnu" {
        return;
    }
    if !std::env::var("CARDFILL_PIE").is_ok_and(|v| v == "1") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    if has_static_unwinder() {
        // Before the `-lgcc_s` the standard library asks for: the unwinder's symbols are found
        // here first, and `--as-needed` then leaves `libgcc_s.so.1` out.
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
}

/// Whether the C compiler used as linker (`cc` unless cargo names another) has
/// `libgcc_eh.a`.
fn has_static_unwinder() -> bool {
    let target = std::env::var("TARGET").unwrap_or_default();
    let var = format!(
        "CARGO_TARGET_{}_LINKER",
        target.to_uppercase().replace('-', "_")
    );
    println!("cargo:rerun-if-env-changed={var}");
    let linker = std::env::var(&var).unwrap_or_else(|_| "cc".to_owned());
    Command::new(linker)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .is_some_and(|path| {
            let path = Path::new(path.trim());
            // An unknown file is printed back as its bare name.
            path.is_absolute() && path.is_file()
        })
}
