//! What-if replays on top of the core loop: scenario files ([`scenario`]), the simulated
//! liquidator ([`liquidator`]), price impact of its sales ([`impact`]), the cascade graph
//! ([`cascade`]) and parameter sweeps ([`sweep`]).

pub mod cascade;
pub mod impact;
pub mod liquidator;
pub mod scenario;
pub mod sweep;
