//! The source kinds `cascade ingest --source` accepts, and what the ordering and duplicate rules
//! need to know about each.
//!
//! The order key of an event (see [`crate::order`]) and its duplicate identity (see
//! [`crate::dedup`]) are functions of the event and of the kind of source it came from, so they
//! can be recomputed for events already in a log from the catalog's source list alone.

use std::fmt;
use std::str::FromStr;

use cascade_events::{Event, EventKind};

use crate::IngestError;

/// A kind of input `cascade ingest` understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    /// Chainlink `getRoundData` dumps of one feed.
    ChainlinkRounds,
    /// OHLCV bars as JSON (the Berkeley crash-day feeds).
    OhlcvJson,
    /// `symbol,timestamp,price` CSV files (the CoinGecko hourly exports).
    PriceCsv,
    /// Binance public kline archive CSVs.
    BinanceKlines,
    /// `eth_getLogs` results as JSON.
    EthLogs,
    /// Any CSV with a TOML mapping.
    Csv,
    /// A Parquet file with a TOML mapping (recorded as `csv-rows` or `csv-file-order` when its
    /// mapping says `prices = "per-row"` or `instant_order = "file"`: those kinds name how a
    /// mapped source's events are ordered and de-duplicated, whatever the file format).
    Parquet,
    /// A `csv` source whose mapping says `instant_order = "file"`: at one instant its events keep
    /// the file's order instead of the by-kind order (recorded under its own name so the order
    /// can be recomputed from the catalog; not a `--source` of its own).
    CsvFileOrder,
    /// A `csv` source whose mapping says `prices = "per-row"`: its prices belong to the row of
    /// another event, not to a series (recorded under its own name so the duplicate rule can be
    /// recomputed from the catalog; not a `--source` of its own).
    CsvRows,
    /// The Aave v2 subgraph liquidation export with its reserves file.
    AaveSubgraphLiquidations,
    /// The MakerDAO Flipside vault export folder.
    MakerFlipside,
}

impl SourceKind {
    /// Every kind, in source-rank order.
    pub const ALL: [SourceKind; 11] = [
        SourceKind::ChainlinkRounds,
        SourceKind::OhlcvJson,
        SourceKind::PriceCsv,
        SourceKind::BinanceKlines,
        SourceKind::EthLogs,
        SourceKind::Csv,
        SourceKind::Parquet,
        SourceKind::CsvFileOrder,
        SourceKind::CsvRows,
        SourceKind::AaveSubgraphLiquidations,
        SourceKind::MakerFlipside,
    ];

    /// The name on the command line and in the catalog.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::ChainlinkRounds => "chainlink-rounds",
            SourceKind::OhlcvJson => "ohlcv-json",
            SourceKind::PriceCsv => "price-csv",
            SourceKind::BinanceKlines => "binance-klines",
            SourceKind::EthLogs => "eth-logs",
            SourceKind::Csv => "csv",
            SourceKind::Parquet => "parquet",
            SourceKind::CsvFileOrder => "csv-file-order",
            SourceKind::CsvRows => "csv-rows",
            SourceKind::AaveSubgraphLiquidations => "aave-subgraph-liquidations",
            SourceKind::MakerFlipside => "maker-flipside",
        }
    }

    /// Tie-breaker between sources at the same time and block position: price sources first,
    /// so an event at second `t` is judged with the prices known at `t`.
    pub fn rank(self) -> u8 {
        match self {
            SourceKind::ChainlinkRounds => 0,
            SourceKind::OhlcvJson => 1,
            SourceKind::PriceCsv => 2,
            SourceKind::BinanceKlines => 3,
            SourceKind::EthLogs => 4,
            SourceKind::Csv => 5,
            SourceKind::Parquet => 6,
            SourceKind::CsvFileOrder => 7,
            SourceKind::CsvRows => 8,
            SourceKind::AaveSubgraphLiquidations => 9,
            SourceKind::MakerFlipside => 10,
        }
    }

    /// Whether the source's events at one instant keep the source's own order rather than the
    /// by-kind order ([`instant_class`]): true where a row's events belong together (the Aave
    /// export's reserve prices observed for the liquidation of their row, a `csv-rows` source)
    /// and where a mapping asks for it (`csv-file-order`).
    pub fn keeps_file_order(self) -> bool {
        matches!(
            self,
            SourceKind::CsvFileOrder | SourceKind::CsvRows | SourceKind::AaveSubgraphLiquidations
        )
    }

    /// Tie-breaker between the files of one source in the same block.
    ///
    /// Only the Maker export spreads one block's actions over several files (one per action,
    /// without transaction or log index). Its files are ranked so that a block replays in the
    /// order that keeps a vault safe in between: governance first, then vault opens, then
    /// actions that make a vault safer (deposits, repayments) before those that make it riskier
    /// (mints, withdrawals), and liquidations last. Every other source keeps its row order.
    pub fn file_rank(self, event: &Event) -> u8 {
        match self {
            SourceKind::MakerFlipside => kind_rank(event.kind()),
            _ => 0,
        }
    }

    /// Whether a price event without a round from this source has an identity of its own
    /// (feed, asset, quote, time): true for price series, false for prices attached to the row of
    /// another event (the Aave export's reserve prices, a `csv-rows` source).
    pub fn prices_are_series(self) -> bool {
        matches!(
            self,
            SourceKind::OhlcvJson
                | SourceKind::PriceCsv
                | SourceKind::BinanceKlines
                | SourceKind::Csv
                | SourceKind::Parquet
                | SourceKind::CsvFileOrder
                | SourceKind::ChainlinkRounds
        )
    }
}

/// The class of an event kind at one instant: parameter changes (and oracle configuration), then
/// prices, then position snapshots, then position changes, then liquidations. A parameter
/// change governs the positions of its second; a price is read by the actions of its second.
pub fn instant_class(kind: EventKind) -> u8 {
    match kind {
        EventKind::ParamChange | EventKind::OracleSourceChange => 0,
        EventKind::Price | EventKind::OracleValue => 1,
        EventKind::PositionSnapshot | EventKind::AccountTotals => 2,
        EventKind::VaultOpen
        | EventKind::Deposit
        | EventKind::Withdraw
        | EventKind::Borrow
        | EventKind::Repay
        | EventKind::CollateralToggle
        | EventKind::IndexUpdate => 3,
        EventKind::Liquidation | EventKind::AuctionKick | EventKind::AuctionTake => INSTANT_LAST,
    }
}

/// The last class at one instant (liquidations), also taken by every event of a source that keeps
/// its own order ([`SourceKind::keeps_file_order`]): such a source's rows stay whole and are
/// judged with what every other source knows at that instant.
pub const INSTANT_LAST: u8 = 4;

/// The same-block order of event kinds used by [`SourceKind::file_rank`].
pub fn kind_rank(kind: EventKind) -> u8 {
    match kind {
        // Oracle facts first, like prices: the block's actions read them.
        EventKind::Price | EventKind::OracleValue | EventKind::OracleSourceChange => 0,
        EventKind::ParamChange => 1,
        EventKind::IndexUpdate => 2,
        EventKind::VaultOpen => 3,
        EventKind::Deposit => 4,
        EventKind::Repay => 5,
        EventKind::CollateralToggle => 6,
        EventKind::Borrow => 7,
        EventKind::Withdraw => 8,
        EventKind::Liquidation => 9,
        EventKind::AuctionKick => 10,
        EventKind::AuctionTake => 11,
        // Not produced by the sources ranked this way; last so every other rank stays.
        EventKind::PositionSnapshot => 12,
        EventKind::AccountTotals => 13,
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SourceKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SourceKind::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
            .ok_or_else(|| {
                let names: Vec<_> = SourceKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown source kind {text:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// Reads a whole text source (a JSON dump): UTF-8, a leading byte-order mark dropped, and
/// [`IngestError::Empty`] when nothing but white space is left. Returns the text and the file's
/// size in bytes (what the progress bar counts).
pub(crate) fn read_text(path: &std::path::Path) -> Result<(String, u64), IngestError> {
    let bytes = std::fs::read(path).map_err(|source| IngestError::Io {
        path: path.to_owned(),
        source,
    })?;
    let size = bytes.len() as u64;
    let mut text = String::from_utf8(bytes).map_err(|error| IngestError::Source {
        path: path.to_owned(),
        message: format!("not UTF-8: {}", error.utf8_error()),
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    if text.trim().is_empty() {
        return Err(IngestError::Empty {
            file: path.to_owned(),
        });
    }
    Ok((text, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ranks_are_distinct() {
        let mut ranks = Vec::new();
        for kind in SourceKind::ALL {
            assert_eq!(kind.name().parse::<SourceKind>(), Ok(kind));
            ranks.push(kind.rank());
        }
        ranks.dedup();
        assert_eq!(ranks.len(), SourceKind::ALL.len());
        assert!(
            "maker"
                .parse::<SourceKind>()
                .unwrap_err()
                .contains("maker-flipside")
        );
    }

    #[test]
    fn maker_files_order_safe_actions_first() {
        use EventKind::*;
        let order = [
            ParamChange,
            VaultOpen,
            Deposit,
            Repay,
            Borrow,
            Withdraw,
            Liquidation,
        ];
        let ranks: Vec<u8> = order.iter().map(|k| kind_rank(*k)).collect();
        let mut sorted = ranks.clone();
        sorted.sort();
        assert_eq!(ranks, sorted);
    }
}
