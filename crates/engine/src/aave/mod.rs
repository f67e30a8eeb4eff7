//! Aave v2 and v3 lending pools: the contracts' arithmetic and liquidation rules.
//!
//! [`math`] holds `WadRayMath`/`PercentageMath`; [`logic`] the account health and liquidation
//! decisions of `GenericLogic` and `LiquidationLogic` for each contract generation.

pub mod logic;
pub mod math;
pub mod model;
pub mod spec;
#[cfg(test)]
mod tests;

pub use model::AaveModel;
