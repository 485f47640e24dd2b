//! Integration tests: whole `cardfill` runs over real directories.
//!
//! Table of contents (one module per area):
//! - `util`: the `RunDir` builder and the `cardfill` command runner.
//! - `inspect`: facts and their JSON contract, exact counts of the shared cases.
//! - `fill`: writing and merging cards, idempotence, `--check`, `--dry-run`.
//! - `formats`: every checkpoint format beyond safetensors.
//! - `run`: `cardfill run` and `probe`, the stub NVML library, signals and exit codes.
//! - `slurm`: a real Slurm cluster on localhost.
//! - `examples`: the scripts of `examples/` against fake launchers and a fake `transformers`.
//! - `carbon`: `co2`, `regions` and the Environmental Impact section.
//! - `hub`: the base model from the cache and a Hub on 127.0.0.1, `validate`.
//! - `faults`: fault injection: kill -9, racing editors, planted links, owners, full disks, FIFOs.
//! - `bad_inputs`: the 68 first-contact mistakes of issue #16, one snapshot test each.
//! - `network`: `cardfill` links no network code and hands such command lines to `cardfill-online`.
//! - `memory`: the big inputs of the memory table, read under a 256 MiB data limit.
//! - `readme`: the README's commands and flags stay true.
//! - `real`: the corpus of real-library outputs against the libraries' own figures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

mod bad_inputs;
mod carbon;
mod examples;
mod faults;
mod fill;
mod formats;
mod from_hub;
mod hub;
mod inspect;
mod memory;
mod network;
mod push;
mod readme;
mod real;
mod run;
mod slurm;
