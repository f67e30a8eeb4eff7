//! Leverage and health over time: what the run records of how its accounts' health moved
//! (`docs/leverage.md`).
//!
//! - [`sampling`]: the hourly health distribution per market, the run's `health_over_time`;
//! - [`loops`]: recursive leverage: loops inside and across protocols, effective leverage and
//!   loop depth;
//! - [`cap`]: `leverage.max_loops`, looped positions unwound at a scenario's window start;
//! - [`book`]: every position of one moment summarised: leverage, LTV and loop depth
//!   distributions, concentration, the liquidation ladder, the overlap between protocols;
//! - [`positions`]: the models' account positions valued in USD; [`record`]: a book as the run
//!   file writes it.

pub mod book;
pub mod cap;
pub mod loops;
pub mod positions;
pub mod record;
pub mod sampling;
