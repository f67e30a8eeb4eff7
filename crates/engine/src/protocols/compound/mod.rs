//! Compound v2 (Comptroller and cTokens): the contracts' `Exp` arithmetic and liquidation rules.
//!
//! [`exp`] holds the two generations of `Exp` math; [`logic`] the Comptroller's liquidity and
//! seize computations and the cToken's borrow balance.

pub mod exp;
pub mod logic;
pub mod rules;
pub mod spec;
#[cfg(test)]
mod tests;

pub use rules::{Compound, CompoundModel};
