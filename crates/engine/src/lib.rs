//! Deterministic replay of lending protocols over an event log.
//!
//! The engine rebuilds each protocol's state from the events of a log (`cascade-log`), judges
//! every recorded liquidation against that state, and writes a run file (`docs/run-format.md`).
//! Layout (docs/engine.md draws it):
//! - [`core`]: the replay loop, due checks, checkpoints and the end-to-end session; it names no
//!   protocol;
//! - [`protocol`]: the [`ProtocolModel`] trait, typed parameters ([`protocol::param`]) and the
//!   registry's types ([`protocol::registry`]);
//! - [`lending`]: the pool model Aave v2/v3 and Compound v2 share (accounts, pair index, monitor,
//!   best-bonus pick, codec), generic over each protocol's rules;
//! - [`protocols`]: the models, one folder each (`maker`; `aave` and `compound` holding only their
//!   rules and math on [`lending`]), listed once in [`protocols::REGISTRY`];
//! - [`leverage`]: health and leverage over time (the run's `health_over_time`);
//! - [`counterfactual`]: scenarios, the simulated liquidator, price impact, the cascade graph and
//!   sweeps;
//! - shared below them: [`oracle`] (the price book), [`index`] and [`slots`] (liquidatable-account
//!   indices, account storage), [`math`] (wad/ray arithmetic), [`state`] (the canonical state
//!   encoding behind checkpoints and the state hash); [`run`]: filling the run file, whose model,
//!   forms and comparison are `cascade-run`'s.
//!
//! Nothing here reads a clock, draws a random number or lets hash order reach an output
//! (`clippy.toml` of this crate forbids the tools for it).

pub mod core;
pub mod counterfactual;
mod error;
#[cfg(test)]
pub(crate) mod golden;
pub mod index;
pub mod lending;
pub mod leverage;
pub mod math;
pub mod oracle;
pub mod protocol;
pub mod protocols;
pub mod run;
pub mod slots;
pub mod state;

pub use crate::core::replay::{Counterfactual, Engine, EngineConfig, Mode, run_events};
pub use crate::core::session::{
    Capture, ReplayOptions, ReplayOutcome, replay_log, replay_log_capturing, replay_log_observed,
};
pub use error::EngineError;
pub use index::LiquidationIndex;
pub use oracle::{PriceBook, Quote};
pub use protocol::{
    Applied, Candidate, HealthDistribution, Judgement, LiquidatorChoice, MarketRisk, ProtocolModel,
    Quantity, SimulatedLiquidation, Verdict,
};
pub use run::Run;
