//! Deterministic replay of lending protocols over an event log.
//!
//! The engine rebuilds each protocol's state from the events of a log (`cascade-log`), judges
//! every recorded liquidation against that state, and writes a run file (`docs/run-format.md`).
//! Layout:
//! - [`replay`]: the loop, modes and checkpoints; [`run`]: the run file ([`run_lines`]: its line
//!   form); [`run_diff`]: what `cascade check` finds between a golden run file and a new one;
//! - [`protocol`]: the [`ProtocolModel`] trait every protocol implements;
//! - [`oracle`]: the price book; [`index`]: the liquidatable-account indices; [`slots`]: account
//!   storage by slot for the hot path;
//! - [`maker`] (and `aave`, `compound`): the protocol models; [`math`]: wad/ray arithmetic;
//! - [`state`]: the canonical state encoding behind checkpoints and the state hash.
//!
//! Nothing here reads a clock, draws a random number or lets hash order reach an output
//! (`clippy.toml` of this crate forbids the tools for it).

pub mod aave;
pub mod cascade;
pub mod compound;
mod error;
pub mod impact;
pub mod index;
pub mod lending;
pub mod liquidator;
pub mod maker;
pub mod math;
pub mod oracle;
pub mod param_history;
pub mod protocol;
pub mod replay;
pub mod run;
pub mod run_diff;
pub mod run_lines;
pub mod scenario;
pub mod session;
pub mod slots;
pub mod state;

pub use error::EngineError;
pub use index::LiquidationIndex;
pub use oracle::{PriceBook, Quote};
pub use protocol::{
    Applied, Candidate, HealthDistribution, Judgement, LiquidatorChoice, MarketRisk, ProtocolModel,
    Quantity, SimulatedLiquidation, Verdict,
};
pub use replay::{Counterfactual, Engine, EngineConfig, Mode, run_events};
pub use run::Run;
pub use run_diff::{RunDiff, diff_runs};
pub use session::{ReplayOptions, ReplayOutcome, replay_log, replay_log_observed};
