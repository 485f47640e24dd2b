//! Test support: header-accurate sparse checkpoints generated from real configs, so that tests
//! and benchmarks count full-size models without their weights.
#![deny(missing_docs)]
