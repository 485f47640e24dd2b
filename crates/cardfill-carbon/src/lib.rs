//! Carbon: energy × PUE × the grid intensity of a region, from a sourced table embedded in the
//! binary (`data/`), with an opt-in live intensity source.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

use cardfill_facts::Facts;

/// Estimate inputs given on the command line.
#[derive(Clone, Debug, Default)]
pub struct CarbonOptions {
    /// `--hardware`: free-text hardware name.
    pub hardware: Option<String>,
    /// `--count`: number of devices.
    pub count: Option<u32>,
    /// `--hours`: hours used.
    pub hours: Option<f64>,
    /// `--region`: region key.
    pub region: Option<String>,
    /// `--pue`: power usage effectiveness.
    pub pue: Option<f64>,
    /// `--intensity`: grid intensity override, g/kWh.
    pub intensity: Option<f64>,
}

/// Why a carbon estimate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CarbonError {
    /// The region is not in the table.
    #[error("unknown region `{region}`")]
    UnknownRegion {
        /// The region asked for.
        region: String,
    },
}

/// Collects `carbon.*` facts from the run facts in `known` and the options.
pub fn collect(known: &Facts, options: &CarbonOptions) -> Result<Facts, CarbonError> {
    let _ = (known, options);
    Ok(Facts::new())
}
