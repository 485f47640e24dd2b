//! `cardfill`: fills a Hugging Face model card from the evidence a training run leaves behind.
//!
//! The offline executable: a command line that needs the network (`--online`, `--from-hub`,
//! `push`, `--detect-cloud`) is handed to `cardfill-online`, installed beside it.
//!
//! On Unix it has its own C `main` instead of the standard library's start-up (see "Build
//! settings" in the README). That start-up reads and parses `/proc/self/maps` to place a
//! guard for the main thread's stack and maps an alternate signal stack, about 0.1 ms of every
//! run; this `main` does only what a run relies on: the standard descriptors made safe and
//! `SIGPIPE` ignored, as the standard library does, and the exit status returned through
//! `std::process::exit`, which flushes stdout. What is given up: a stack overflow ends in a
//! plain segmentation fault instead of a message (the kernel's guard gap still stops it).

// Not under `cargo test`, whose harness brings its own `main`.
#![cfg_attr(all(unix, not(test)), no_main)]

use std::process::ExitCode;

#[cfg(all(unix, not(test)))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: single-threaded start-up; the calls take no Rust-owned memory.
    unsafe { standard_start() };
    let code = cardfill::main(None);
    std::process::exit(status(code))
}

#[cfg(any(not(unix), test))]
fn main() -> ExitCode {
    cardfill::main(None)
}

/// What the standard library's start-up does that a run relies on. A closed standard
/// descriptor is opened on `/dev/null`, so a file cardfill opens later never becomes its
/// stdout; a reader that went away is an error on the write (`EPIPE`), not a signal.
///
/// # Safety
/// Call once, before any other thread starts.
#[cfg(all(unix, not(test)))]
unsafe fn standard_start() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is a valid array of three `pollfd`; the path is a C string.
    unsafe {
        if libc::poll(fds.as_mut_ptr(), 3, 0) != -1 {
            for pfd in fds {
                if pfd.revents & libc::POLLNVAL != 0 {
                    // The lowest free descriptor: this one.
                    libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                }
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// The exit status an [`ExitCode`] stands for (on Unix, one byte).
#[cfg(all(unix, not(test)))]
fn status(code: ExitCode) -> libc::c_int {
    (0..=u8::MAX)
        .find(|&n| ExitCode::from(n) == code)
        .map_or(1, libc::c_int::from)
}
