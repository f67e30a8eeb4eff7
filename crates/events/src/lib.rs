//! Canonical event model of cascade and its binary encoding.
//!
//! Every source cascade ingests (CSV exports, `eth_getLogs` dumps, oracle rounds, price feeds) is
//! normalised into [`Event`]s. The event log stores them with [`encode`] and hands them back with
//! [`decode`]; the engine, the diff tool and the Kafka bridge read nothing else.
//!
//! Rules this crate keeps:
//! - Money is never a float: amounts are [`Amount`]s in token base units, prices and parameters
//!   are [`Fixed`] integers with explicit decimals.
//! - Identities are typed ([`Id`]): an EVM address where the source has one, otherwise a stable
//!   documented substitute (a Maker vault number, a reserve symbol).
//! - The encoded form is the bincode layout (via `wincode`) behind a one-byte schema version; the
//!   golden-bytes tests in [`codec`] pin it, so a dependency update cannot change it silently.

pub mod codec;
mod event;
pub mod excerpt;
mod id;
mod number;
mod payload;
mod time;

pub use alloy_primitives::{Address, B256, U256};
pub use codec::{DecodeError, SCHEMA_VERSION, decode, encode, encode_into};
pub use event::Event;
pub use excerpt::{EXCERPT_CHARS, Excerpt, clip, clip_to};
pub use id::{Id, Symbol, SymbolError};
pub use number::{Amount, Fixed, ParseAmountError, pow10};
pub use payload::{
    AccountTotals, AuctionKick, AuctionTake, CollateralToggle, EventKind, IndexUpdate, Liquidation,
    LiquidationDetail, OracleSourceChange, OracleValue, OracleValueSource, ParamChange,
    PartialLiquidation, Payload, PositionChange, PositionSnapshot, PriceUpdate, Protocol,
    VaultOpen,
};
pub use time::Timestamp;
