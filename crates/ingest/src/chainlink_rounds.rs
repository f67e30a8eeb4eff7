//! `chainlink-rounds`: a `getRoundData` dump of one Chainlink feed
//! (`,round,answer,start,update,answeredInRound`).
//!
//! Each row is one round: a price event at `update` (`updatedAt`) with the round id, the answer
//! scaled by the feed's decimals, and the feed's proxy address as feed id. Which asset, quote and
//! decimals the feed has comes from flags, a feeds file, or the built-in table
//! ([`crate::feeds`]), keyed by the address in the file name unless `--feed` names it.
//!
//! Rules:
//! - a round with a zero `updatedAt` or `startedAt` is not data (the real ETH/USD and BTC/USD
//!   dumps each hold one, for the non-existent round 0 of a phase): rejected with file, line,
//!   column and value, or quarantined with `--skip-invalid`;
//! - a zero or negative answer, or a round that started after it was updated, is rejected too;
//! - a round whose `answeredInRound` is older than the round carries a stale answer: kept and
//!   counted, since that is what the feed reported;
//! - events are emitted in round order (the dumps list rounds newest first).
//!
//! Must never: accept an answer with more precision than the feed's decimals.

use std::path::Path;

use cascade_events::{Address, Event, Id, Payload, PriceUpdate};

use crate::batch::{Context, Rejects, SourceBatch};
use crate::error::IngestError;
use crate::feeds::{self, FeedTable};
use crate::table::CsvInput;
use crate::value::{self, TimeFormat};

/// What the command line says about the feed; anything left `None` comes from the feed table.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The feed's address (default: the address in the file name).
    pub feed: Option<Address>,
    /// The asset priced.
    pub asset: Option<Id>,
    /// The unit of the price.
    pub quote: Option<Id>,
    /// Decimals of the answer.
    pub decimals: Option<u8>,
    /// Known feeds (built-in, plus a `--feeds` file).
    pub table: FeedTable,
}

/// Reads one rounds dump.
pub fn read(
    path: &Path,
    options: &Options,
    context: &Context<'_>,
) -> Result<SourceBatch, IngestError> {
    let address = options
        .feed
        .or_else(|| feeds::address_in_name(path))
        .ok_or_else(|| IngestError::Source {
            path: path.to_owned(),
            message: "no feed address: give --feed ADDRESS (the file name does not contain one)"
                .into(),
        })?;
    let known = options.table.get(&address);
    let missing = |what: &str| IngestError::Source {
        path: path.to_owned(),
        message: format!(
            "feed {address:#x} is not in the feed table: give --{what} (and --asset, --quote, --decimals) or a --feeds file"
        ),
    };
    let asset = options
        .asset
        .or(known.map(|f| f.asset))
        .ok_or_else(|| missing("asset"))?;
    let quote = options
        .quote
        .or(known.map(|f| f.quote))
        .ok_or_else(|| missing("quote"))?;
    let decimals = options
        .decimals
        .or(known.map(|f| f.decimals))
        .ok_or_else(|| missing("decimals"))?;

    let mut input = CsvInput::open(path)?;
    let [round_col, answer_col, start_col, update_col, answered_col] =
        ["round", "answer", "start", "update", "answeredInRound"].map(|name| input.column(name));
    let (round_col, answer_col, start_col, update_col, answered_col) = (
        round_col?,
        answer_col?,
        start_col?,
        update_col?,
        answered_col?,
    );

    let mut batch = SourceBatch::new(context.source);
    batch.report.files.push(path.to_owned());
    let mut rejects = Rejects::new(context.skip_invalid);
    let mut rounds: Vec<(u128, Event)> = Vec::new();
    let mut stale = 0u64;
    let rows = input.for_each_row(context.progress, |row| {
        let row = match row {
            Ok(row) => row,
            Err(error) => return rejects.reject(error),
        };
        let parsed = (|| {
            let updated = row.parse(update_col, |t| value::time(t, &TimeFormat::UnixSeconds))?;
            let started = row.parse(start_col, |t| value::time(t, &TimeFormat::UnixSeconds))?;
            if started > updated {
                return Err(row.error(
                    start_col,
                    format!("round started after it was updated ({updated})"),
                ));
            }
            // After the timestamps: the placeholder rounds of real dumps (zero times) are
            // reported for their times, round 0 of their phase being the consequence.
            let round = row.parse(round_col, value::round_id)?;
            let price = row.parse(answer_col, |t| {
                value::fixed(t, Some(decimals), true).and_then(value::positive_price)
            })?;
            let answered = row.parse(answered_col, value::round_id)?;
            Ok((round, updated, price, answered))
        })();
        match parsed {
            Ok((round, time, price, answered)) => {
                if answered < round {
                    stale += 1;
                }
                rounds.push((
                    round,
                    Event::at(
                        context.chain_id,
                        time,
                        Payload::Price(Box::new(PriceUpdate {
                            asset,
                            quote,
                            price,
                            feed: Id::Address(address),
                            round: Some(round),
                        })),
                    ),
                ));
                Ok(())
            }
            Err(error) => rejects.reject(error),
        }
    })?;
    rounds.sort_by_key(|(round, _)| *round);
    batch
        .events
        .extend(rounds.into_iter().map(|(_, event)| event));
    batch.report.rows_read = rows;
    if stale > 0 {
        batch
            .report
            .count("stale rounds (answeredInRound < round), kept", stale);
    }
    batch.report.rejected = rejects.into_rows();
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_context as context;
    use crate::error::Position;

    const FEED: &str = "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419";

    fn write(dir: &Path, text: &str) -> std::path::PathBuf {
        let path = dir.join(format!("eth-usd_{FEED}.csv"));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn options() -> Options {
        Options {
            table: FeedTable::built_in(),
            ..Options::default()
        }
    }

    const HEADER: &str = ",round,answer,start,update,answeredInRound\n";

    #[test]
    fn rounds_become_prices_in_round_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            &format!(
                "{HEADER}0,12,231234567890,1700000123,1700000123,12\n1,11,231000000000,1699996523,1699996523,10\n"
            ),
        );
        let batch = read(&path, &options(), &context(false)).unwrap();
        let rounds: Vec<_> = batch
            .events
            .iter()
            .map(|e| match &e.payload {
                Payload::Price(p) => (p.round, p.price.to_string(), p.asset, p.quote),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            rounds,
            [
                (
                    Some(11),
                    "2310.00000000".to_owned(),
                    Id::name("ETH"),
                    Id::name("USD")
                ),
                (
                    Some(12),
                    "2312.34567890".to_owned(),
                    Id::name("ETH"),
                    Id::name("USD")
                ),
            ]
        );
        assert_eq!(batch.events.get(0).time.0, 1_699_996_523);
        assert_eq!(
            batch.report.counters["stale rounds (answeredInRound < round), kept"],
            1
        );
    }

    #[test]
    fn zero_timestamp_round_is_rejected_with_line_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            &format!(
                "{HEADER}0,12,231234567890,1700000123,1700000123,12\n1,129127208515966861316,0,0,0,129127208515966861316\n"
            ),
        );
        let error = read(&path, &options(), &context(false)).unwrap_err();
        assert_eq!(error.row_at(), (Position::Line(3), "update", "0"));
        assert!(error.to_string().contains("zero timestamp"), "{error}");

        let batch = read(&path, &options(), &context(true)).unwrap();
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.report.rejected.len(), 1);
        assert_eq!(batch.report.rows_read, 2);
    }

    #[test]
    fn bad_answers_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        for (answer, reason) in [
            ("0", "a price of 0 is no price"),
            ("-5", "negative"),
            ("12.5", "not an integer"),
            ("x", "not a decimal number"),
        ] {
            let path = write(
                dir.path(),
                &format!("{HEADER}0,12,{answer},1700000123,1700000123,12\n"),
            );
            let error = read(&path, &options(), &context(false))
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(reason) && error.contains("answer"),
                "{answer}: {error}"
            );
        }
        let path = write(
            dir.path(),
            &format!("{HEADER}0,12,1,1706558124,1700000123,12\n"),
        );
        assert!(
            read(&path, &options(), &context(false))
                .unwrap_err()
                .to_string()
                .contains("started after")
        );
    }

    #[test]
    fn unknown_feed_needs_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rounds.csv");
        std::fs::write(&path, format!("{HEADER}0,1,100,1700000123,1700000123,1\n")).unwrap();
        assert!(
            read(&path, &options(), &context(false))
                .unwrap_err()
                .to_string()
                .contains("--feed")
        );
        let flagged = Options {
            feed: Some(Address::with_last_byte(7)),
            asset: Some(Id::name("LINK")),
            quote: Some(Id::name("USD")),
            decimals: Some(2),
            table: FeedTable::built_in(),
        };
        let batch = read(&path, &flagged, &context(false)).unwrap();
        let Payload::Price(price) = &batch.events.get(0).payload else {
            unreachable!()
        };
        assert_eq!(price.price.to_string(), "1.00");
        assert_eq!(price.feed, Id::Address(Address::with_last_byte(7)));
        let missing = Options {
            decimals: None,
            ..flagged
        };
        assert!(
            read(&path, &missing, &context(false))
                .unwrap_err()
                .to_string()
                .contains("--decimals")
        );
    }

    #[test]
    fn missing_column_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            ",round,answer,start,answeredInRound\n0,1,1,1,1\n",
        );
        let error = read(&path, &options(), &context(false)).unwrap_err();
        assert!(
            matches!(&error, IngestError::MissingColumn { column, .. } if column == "update"),
            "{error}"
        );
    }
}
