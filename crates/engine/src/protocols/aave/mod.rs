//! Aave v2 and v3 lending pools: the contracts' arithmetic and liquidation rules on the shared
//! lending pool model ([`crate::lending::LendingModel`]).
//!
//! [`math`] holds `WadRayMath`/`PercentageMath`; [`logic`] the account health and liquidation
//! decisions of `GenericLogic` and `LiquidationLogic` for each contract generation; [`rules`]
//! the state they read besides accounts and the pool model's [`crate::lending::Rules`].

pub mod logic;
pub mod math;
pub mod rules;
pub mod spec;
#[cfg(test)]
mod tests;

pub use rules::{Aave, AaveModel};
