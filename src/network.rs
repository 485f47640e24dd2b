//! The network half of cardfill, reached through function pointers only.
//!
//! Most runs never touch the network, and linking the Hub client (hf-hub with xet, reqwest,
//! tokio, rustls with aws-lc) costs every run its share of start-up: a larger executable to map
//! and relocate, more imported symbols, TLS constructors. So the code that sends requests is
//! named in one place, [`ONLINE`], which only `cardfill-online` passes to [`crate::main`]; in
//! `cardfill` nothing names it and the linker leaves it out. A command line that needs the
//! network is handed by `cardfill` to `cardfill-online`, installed beside it (as git hands
//! `https://` remotes to `git-remote-https`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

use cardfill_facts::Facts;
use cardfill_hub::push::{Pushed, Upload};
use cardfill_hub::remote::Mirror;
use cardfill_hub::{HubError, HubOptions, OnlineReport};

use crate::report::fatal;

/// Every operation that sends a request.
#[derive(Debug)]
pub struct Network {
    /// The Hub collector, asking the Hub when `--online` allows ([`cardfill_hub::collect`]).
    pub hub_collect: fn(&Facts, &HubOptions) -> Result<Facts, HubError>,
    /// The Hub's own card validator ([`cardfill_hub::validate_online`]).
    pub validate_online: fn(&str, &HubOptions) -> Result<OnlineReport, HubError>,
    /// A model read from the Hub without its weights ([`cardfill_hub::remote::mirror`]).
    pub mirror: fn(&str, Option<&str>, &Path, &HubOptions) -> Result<Mirror, HubError>,
    /// One commit to the Hub ([`cardfill_hub::push::push`]).
    pub push: fn(&Upload, &HubOptions) -> Result<Pushed, HubError>,
    /// Live grid intensity and cloud detection ([`cardfill_carbon::live::LIVE`]).
    pub live: cardfill_carbon::live::Live,
}

/// The real network operations: naming this links them.
pub const ONLINE: Network = Network {
    hub_collect: cardfill_hub::collect,
    validate_online: cardfill_hub::validate_online,
    mirror: cardfill_hub::remote::mirror,
    push: cardfill_hub::push::push,
    live: cardfill_carbon::live::LIVE,
};

/// The executable that carries [`ONLINE`].
pub const HELPER: &str = "cardfill-online";

static INSTALLED: OnceLock<Option<&'static Network>> = OnceLock::new();

/// Makes `network` the one [`get`] returns for the rest of the process.
pub(crate) fn install(network: Option<&'static Network>) {
    let _ = INSTALLED.set(network);
}

/// The network operations of this executable, if it has them.
pub(crate) fn get() -> Option<&'static Network> {
    INSTALLED.get().copied().flatten()
}

/// The network operations, or the error that says this executable has none (a command line
/// that needs them is handed to [`HELPER`] before it runs, so this is a wiring mistake).
pub(crate) fn required() -> anyhow::Result<&'static Network> {
    get().ok_or_else(|| {
        fatal(
            "network-missing",
            None,
            format!(
                "this command needs the network, which `{HELPER}` carries: run it with `{HELPER}`"
            ),
        )
    })
}

/// Where [`HELPER`] is: beside this executable (symbolic links resolved).
fn helper_path() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| {
        fatal(
            "network-helper-missing",
            None,
            format!("cannot find this executable to run `{HELPER}` beside it: {e}"),
        )
    })?;
    Ok(exe.with_file_name(format!("{HELPER}{}", std::env::consts::EXE_SUFFIX)))
}

/// Runs this command line with [`HELPER`] instead, in this process where the system allows
/// (Unix `exec`: same process id, signals and exit status), else as a child whose status is
/// passed on.
pub(crate) fn hand_over() -> anyhow::Result<ExitCode> {
    let helper = helper_path()?;
    let mut command = std::process::Command::new(&helper);
    command.args(std::env::args_os().skip(1));
    #[cfg(unix)]
    let err = std::os::unix::process::CommandExt::exec(&mut command);
    #[cfg(not(unix))]
    let err = match command.status() {
        Ok(status) => {
            let code = status.code().unwrap_or(2);
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(2)));
        }
        Err(err) => err,
    };
    Err(fatal(
        "network-helper-missing",
        Some(&helper),
        format!(
            "cannot run `{}`, cardfill's network half (--online, --from-hub, push, --detect-cloud): {}: \
             it is installed beside `cardfill`; reinstall cardfill (`pip install --force-reinstall cardfill` \
             or `cargo install cardfill`)",
            helper.display(),
            crate::report::io_words(&err)
        ),
    ))
}
