//! `eth-logs`: raw Ethereum logs as `eth_getLogs` returns them, as a JSON array or JSON lines
//! (`address`, `topics`, `data`, `blockNumber`, `transactionIndex`, `logIndex`,
//! `transactionHash`, optional `blockTimestamp` and `removed`).
//!
//! Logs are decoded with `alloy-sol-types` definitions of the events cascade understands:
//! - Aave v2 `LendingPool` and Aave v3 `Pool`: Deposit/Supply, Withdraw, Borrow, Repay,
//!   LiquidationCall, ReserveDataUpdated, ReserveUsedAsCollateralEnabled/Disabled;
//! - Compound v2 cTokens: Mint, Redeem, Borrow, RepayBorrow, LiquidateBorrow, AccrueInterest
//!   (both the 3- and 4-argument forms);
//! - Chainlink aggregators: AnswerUpdated (asset, quote and decimals from the feed table);
//! - Maker Liquidations 2.0: `Dog.Bark`, `Clipper.Kick`, `Clipper.Take`;
//! - the oracles' own values: Maker `OSM.LogValue` and `Spotter.Poke` (oracle values the Vat
//!   reads), `Median.LogMedianPrice` (a price the OSM reads, one `hop` later), Compound
//!   `UniswapAnchoredView.PriceUpdated` (the price the Comptroller reads), Aave
//!   `AaveOracle.AssetSourceUpdated` (which feed a reserve reads from then on); Chainlink
//!   `NewRound` carries no answer and is counted;
//! - parameter history: the Aave v2 `LendingPoolConfigurator`'s and v3 `PoolConfigurator`'s
//!   `CollateralConfigurationChanged` (three parameter changes of the reserve: `ltv`,
//!   `liquidationThreshold`, `liquidationBonus`, basis points), the Compound Comptroller's
//!   `NewCollateralFactor`, `NewLiquidationIncentive` and `NewCloseFactor` (mantissas), from the
//!   addresses the contract table names as a configurator or the Comptroller only (others are
//!   counted: the v2/v3 event is the same, and Compound's forks emit the Comptroller's); Maker
//!   `File` of the Dog (`Hole`, `chop`, `hole`) and of Clippers named with their ilk (`buf`,
//!   `tail`, `cusp`, `chip`, `tip`), in the contracts' units; and the `file` calls the Spotter,
//!   Jug and Cat log with `LibNote` and the Vat with its own note (anonymous logs whose first
//!   topic is the function's selector): `mat`, `duty` (per-second ray), `dust`, `line`, the
//!   Cat's `chop`, `dunk` and `box`.
//!
//! Oracle emitters must be named: an OSM prices one collateral, a Median one asset, and nothing
//! in their logs says which, so an oracle event from an address the contract table does not name
//! with the matching kind (`--contract ADDRESS=maker-osm:ETH`, built-in: the mainnet Spotter) is
//! an error naming the address, never a guess.
//!
//! Which contract is which: events whose signature only one of these protocols uses are
//! recognised from any address; the events Aave v2 and v3 share (Withdraw, LiquidationCall,
//! ReserveDataUpdated, the collateral toggles) need the pool's address, from the built-in table of
//! mainnet pools or `--contract ADDRESS=KIND`. A log from an unknown contract, with an unknown
//! topic, or whose layout does not match the signature its topic names (another contract's event
//! with the same signature) is counted and reported, not an error; a log from a contract the table
//! names that does not decode is an error. Logs marked `removed` (reorged out) are skipped and
//! counted.
//!
//! Units: amounts are the contracts' base units. Maker `due`/`tab`/`owe` are rads (45 decimals)
//! and are stored as DAI wads (divided by 10^27, rounding down); Clipper prices are rays. Compound
//! assets are named by their cToken address, with underlying amounts, except `collateral_seized`
//! of a liquidation, which is in cTokens (`seizeTokens`). Maker liquidations name the vault by its
//! urn address and the collateral by the ilk's prefix (`ETH-B` -> `ETH`).
//!
//! Must never: treat an unrecognised log as an error, or invent a block time.
//!
//! This module reads the file and builds each event's envelope; the payload comes from the
//! decoder a log's topic0 names in the `registry`, which lists one decoder file per protocol
//! (`aave`, `compound`, `maker`, `chainlink`), each registering the events it decodes once.

mod aave;
mod chainlink;
mod compound;
mod contracts;
mod maker;
mod registry;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256, LogData};
use cascade_events::{Event, Timestamp};
use serde::Deserialize;
use serde_json::value::RawValue;

use contracts::BUILT_IN;
pub use contracts::{Contract, parse_contract, read_contracts};
use registry::{DecodeProblem, Log};

use crate::batch::{Context, Rejects, SourceBatch};
use crate::error::{IngestError, Position, RowError};
use crate::feeds::FeedTable;
use crate::table::CsvInput;
use crate::value;

/// The event definitions, as the contracts declare them (each decoder file declares its own).
pub mod abi {
    pub use super::aave::abi::{AaveConfigurator, AaveOracle, AaveV2, AaveV3};
    pub use super::chainlink::abi::{Chainlink, ChainlinkRounds};
    pub use super::compound::abi::{
        CompoundComptroller, CompoundOracle, CompoundOracleHashed, CompoundV2, CompoundV2Early,
    };
    pub use super::maker::abi::{
        LibNote, Maker, MakerFile, MakerFileIlk, MakerFiles, MakerOracles, VatNote,
    };
}

/// Flags of the `eth-logs` kind.
#[derive(Clone, Debug)]
pub struct Options {
    /// CSV `block,timestamp` for logs without `blockTimestamp`.
    pub blocks: Option<PathBuf>,
    /// Known contracts (built-in mainnet pools plus `--contract` flags).
    pub contracts: BTreeMap<Address, Contract>,
    /// Chainlink feeds, for `AnswerUpdated`.
    pub feeds: FeedTable,
}

impl Default for Options {
    fn default() -> Self {
        let mut contracts = BTreeMap::new();
        for (address, kind) in BUILT_IN {
            if let (Ok(address), Ok(kind)) = (address.parse(), kind.parse()) {
                contracts.insert(address, kind);
            }
        }
        Options {
            blocks: None,
            contracts,
            feeds: FeedTable::built_in(),
        }
    }
}

impl Options {
    /// The options that shape events, as text (part of the content hash).
    pub fn recipe(&self) -> String {
        format!("{:?} {:?}", self.contracts, self.feeds)
    }
}

/// One log as `eth_getLogs` returns it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    address: String,
    topics: Vec<String>,
    data: String,
    block_number: Option<Quantity>,
    transaction_hash: Option<String>,
    transaction_index: Option<Quantity>,
    log_index: Option<Quantity>,
    block_timestamp: Option<Quantity>,
    #[serde(default)]
    removed: bool,
}

/// A JSON-RPC quantity: hex text, decimal text or a JSON number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Quantity {
    Number(u64),
    Text(String),
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quantity::Number(n) => write!(f, "{n}"),
            Quantity::Text(t) => f.write_str(t),
        }
    }
}

impl Quantity {
    fn value(&self) -> Result<u64, String> {
        match self {
            Quantity::Number(n) => Ok(*n),
            Quantity::Text(text) => value::integer_u64(text),
        }
    }
}

/// Reads one logs file.
pub fn read(
    path: &Path,
    options: &Options,
    context: &Context<'_>,
) -> Result<SourceBatch, IngestError> {
    let blocks = match &options.blocks {
        Some(blocks) => read_blocks(blocks, context)?,
        None => HashMap::new(),
    };
    let (text, size) = crate::source::read_text(path)?;
    let text = text.as_str();
    let json_error = |error: serde_json::Error, line_offset: u64| IngestError::Json {
        file: path.to_owned(),
        line: error.line() as u64 + line_offset,
        column: error.column() as u64,
        message: error.to_string(),
    };
    // (position, raw JSON of one log)
    let entries: Vec<(Position, &str)> = if text.trim_start().starts_with('[') {
        let array: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| json_error(e, 0))?;
        array
            .into_iter()
            .enumerate()
            .map(|(i, raw)| (Position::Entry(i as u64 + 1), raw.get()))
            .collect()
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| (Position::Line(i as u64 + 1), line))
            .collect()
    };

    let mut batch = SourceBatch::new(context.source);
    batch.report.files.push(path.to_owned());
    batch.report.rows_read = entries.len() as u64;
    let mut rejects = Rejects::new(context.skip_invalid);
    let decoder = Decoder {
        options,
        blocks: &blocks,
        chain_id: context.chain_id,
    };
    for (position, raw) in entries {
        let fail = |column: &str, value: &str, reason: String| {
            Box::new(RowError {
                file: path.to_owned(),
                position,
                column: column.to_owned(),
                value: value.to_owned(),
                reason,
                raw: Some(raw.to_owned()),
            })
        };
        let log: RawLog = match serde_json::from_str(raw) {
            Ok(log) => log,
            Err(error) => {
                rejects.reject(fail("", "", format!("not a log object: {error}")))?;
                continue;
            }
        };
        match decoder.decode(&log, &fail) {
            Ok(Decoded::Events(events)) => batch.events.extend(events),
            Ok(Decoded::Skipped(reason)) => batch.report.count(reason, 1),
            Err(error) => rejects.reject(error)?,
        }
    }
    context.progress.advance(size);
    batch.report.rejected = rejects.into_rows();
    Ok(batch)
}

/// Reads a `block,timestamp` CSV.
fn read_blocks(path: &Path, context: &Context<'_>) -> Result<HashMap<u64, Timestamp>, IngestError> {
    let mut input = CsvInput::open(path)?;
    let block = input.column("block")?;
    let timestamp = input.column("timestamp")?;
    let mut blocks = HashMap::new();
    input.for_each_row(context.progress, |row| {
        // The blocks file is a lookup table: a bad row there is an error, never quarantined.
        let row = row.map_err(IngestError::Row)?;
        let number = row.parse(block, value::integer_u64)?;
        let time = row.parse(timestamp, |t| {
            value::integer_u64(t).and_then(|s| {
                i64::try_from(s)
                    .map_err(|_| "too large".to_owned())
                    .and_then(|s| value::check_range(Timestamp(s)))
            })
        })?;
        if let Some(previous) = blocks.insert(number, time)
            && previous != time
        {
            return Err(row
                .error(
                    timestamp,
                    format!("block {number} listed with two timestamps ({previous})"),
                )
                .into());
        }
        Ok(())
    })?;
    Ok(blocks)
}

/// The outcome of decoding one log.
enum Decoded {
    /// The log's events, in the order its decoder gives them.
    Events(Vec<Event>),
    /// Not an error: the named counter says why.
    Skipped(&'static str),
}

struct Decoder<'a> {
    options: &'a Options,
    blocks: &'a HashMap<u64, Timestamp>,
    chain_id: u64,
}

type Fail<'a> = dyn Fn(&str, &str, String) -> Box<RowError> + 'a;

impl Decoder<'_> {
    fn decode(&self, log: &RawLog, fail: &Fail<'_>) -> Result<Decoded, Box<RowError>> {
        if log.removed {
            return Ok(Decoded::Skipped("removed (reorged) logs skipped"));
        }
        let address: Address = log
            .address
            .parse()
            .map_err(|_| fail("address", &log.address, "not an address".into()))?;
        let topics = log
            .topics
            .iter()
            .map(|t| {
                t.parse::<B256>()
                    .map_err(|_| fail("topics", t, "not a 32-byte topic".into()))
            })
            .collect::<Result<Vec<B256>, _>>()?;
        let data_hex = log.data.strip_prefix("0x").unwrap_or(&log.data);
        let data = alloy_primitives::hex::decode(data_hex)
            .map_err(|_| fail("data", &log.data, "not hex data".into()))?;
        let Some(topic0) = topics.first().copied() else {
            return Ok(Decoded::Skipped("anonymous logs (no topic) skipped"));
        };
        let known = self.options.contracts.get(&address);
        let Some(decoder) = registry::find(topic0) else {
            return Ok(Decoded::Skipped("logs with an unknown topic skipped"));
        };
        let protocol = match decoder.family(known) {
            Ok(family) => family.protocol(),
            Err(reason) => return Ok(Decoded::Skipped(reason)),
        };
        let log_data = LogData::new_unchecked(topics, data.into());
        let emitted = Log {
            protocol,
            address,
            known,
            data: &log_data,
            options: self.options,
        };
        let payloads = match (decoder.decode)(&emitted) {
            Ok(Ok(payloads)) => payloads,
            Ok(Err(reason)) => return Ok(Decoded::Skipped(reason)),
            Err(DecodeProblem::Layout(error)) if known.is_none() => {
                tracing::debug!(%address, %error, "signature matches but layout differs");
                return Ok(Decoded::Skipped(
                    "logs whose layout differs from their signature's (other contracts) skipped",
                ));
            }
            Err(DecodeProblem::Layout(error)) => {
                return Err(fail(
                    "data",
                    &log.data,
                    format!("does not decode as {}: {error}", decoder.name),
                ));
            }
            Err(DecodeProblem::Value(column, reason)) => return Err(fail(column, "", reason)),
            Err(DecodeProblem::Emitter(event, kind)) => {
                return Err(fail(
                    "address",
                    &log.address,
                    format!(
                        "{event} from a contract not named as {kind}: nothing in the log says what it prices; name it with --contract {address:#x}={kind} (or a --contracts table)"
                    ),
                ));
            }
        };
        let number =
            |name: &str, quantity: &Option<Quantity>| -> Result<Option<u64>, Box<RowError>> {
                quantity
                    .as_ref()
                    .map(|q| {
                        q.value()
                            .map_err(|reason| fail(name, &q.to_string(), reason))
                    })
                    .transpose()
            };
        let block = number("blockNumber", &log.block_number)?.ok_or_else(|| {
            fail(
                "blockNumber",
                "",
                "missing (pending logs cannot be ordered)".into(),
            )
        })?;
        let index32 =
            |name: &str, quantity: &Option<Quantity>| -> Result<Option<u32>, Box<RowError>> {
                number(name, quantity)?
                    .map(|v| {
                        u32::try_from(v)
                            .map_err(|_| fail(name, &v.to_string(), "does not fit 32 bits".into()))
                    })
                    .transpose()
            };
        let log_index = index32("logIndex", &log.log_index)?
            .ok_or_else(|| fail("logIndex", "", "missing".into()))?;
        let tx_index = index32("transactionIndex", &log.transaction_index)?;
        let tx_hash = log
            .transaction_hash
            .as_ref()
            .map(|h| {
                h.parse::<B256>()
                    .map_err(|_| fail("transactionHash", h, "not a 32-byte hash".into()))
            })
            .transpose()?;
        let time = match number("blockTimestamp", &log.block_timestamp)? {
            Some(seconds) => i64::try_from(seconds)
                .map_err(|_| "too large".to_owned())
                .and_then(|s| value::check_range(Timestamp(s)))
                .map_err(|reason| fail("blockTimestamp", &seconds.to_string(), reason))?,
            None => *self.blocks.get(&block).ok_or_else(|| {
                fail(
                    "blockNumber",
                    &block.to_string(),
                    "no blockTimestamp and the block is not in the --blocks file".into(),
                )
            })?,
        };
        Ok(Decoded::Events(
            payloads
                .into_iter()
                .map(|payload| Event {
                    seq: 0,
                    chain_id: self.chain_id,
                    block: Some(block),
                    time,
                    tx_index,
                    log_index: Some(log_index),
                    tx_hash,
                    source: 0,
                    payload,
                })
                .collect(),
        ))
    }
}
