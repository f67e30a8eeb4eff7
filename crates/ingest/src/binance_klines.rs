//! `binance-klines`: Binance's public kline archive CSVs (`ETHUSDT-1m-2022-05-12.csv`).
//!
//! The archive's spot and futures layouts share their first seven columns (`open_time`, `open`,
//! `high`, `low`, `close`, `volume`, `close_time`; spot and USD-M futures then have quote volume,
//! trade count, taker volumes and `ignore`, COIN-M futures base volumes instead). Spot files have
//! no header row, futures files and many re-published copies have one, spelt either
//! `open_time,...,close_time,...` or as Binance's API documentation names the fields (`Open
//! time,...,Close time,...`). Rules:
//! - a file whose first cell is an integer has no header: columns are taken by position (0, 4,
//!   6); otherwise the header names them, compared without case and with spaces read as `_`;
//! - times are unix milliseconds or, in the archive's files from 2025 on, microseconds: decided
//!   by the file's first row (microseconds from 10^14 on) and required of every other row;
//! - each bar is one price: its **close**, at the first whole second after its `close_time`
//!   (`open_time` + 60 s for a minute bar). The close is the last trade of the bar, which can
//!   fall in the bar's last millisecond: a reader at any earlier second could not have seen it,
//!   and the open price at the open time would be a second observation of nearly the same
//!   moment. A bar whose close time is not after its open time is refused;
//! - the quote is `--quote` (default `USDT`, Binance's quote for most pairs); the symbol in an
//!   archive file name (`ETHUSDT-1m-…`) must end with it, so a USDT file cannot be taken for USD
//!   by a mistyped flag. Converting to USD is the engine's (docs/engine.md, "Quote conversion"),
//!   and the ingest refuses USDT prices into a log that holds no USDT/USD price (`crate::stage`).
//!
//! Rows repeated across files (a window that crosses midnight is in both days' files) get the
//! same identity (feed, asset, quote, time) and are dropped as identical duplicates by the
//! staging; a repeated bar with another close stops the ingest as a conflict.
//!
//! Must never: read a price through `f64`, or label a non-USD price as USD.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use cascade_events::{Event, Id, Payload, PriceUpdate, Timestamp};
use csv::StringRecord;

use crate::batch::{Context, Rejects, SourceBatch, read_each};
use crate::error::{IngestError, Position, RowError};
use crate::table::{LineCounter, header_cell};
use crate::value;

/// Flags of the `binance-klines` kind.
#[derive(Clone, Debug)]
pub struct Options {
    /// The asset priced (`--asset`, required: `WETH` for the ETH ilks' feeds).
    pub asset: Id,
    /// The unit of the prices (`--quote`, default `USDT`).
    pub quote: Id,
    /// The feed id stamped on the prices.
    pub feed: Id,
    /// Decimals the prices are stored with.
    pub decimals: u8,
}

impl Options {
    /// The defaults for `asset`.
    pub fn for_asset(asset: Id) -> Self {
        Options {
            asset,
            quote: Id::name("USDT"),
            feed: Id::name("binance-klines"),
            decimals: 18,
        }
    }
}

/// Open and close times of 10^14 and more are microseconds: a
/// millisecond time reaches it only in the year 5138, a microsecond one passed it in 1973.
const MICROS_FROM: u64 = 100_000_000_000_000;

/// The columns a bar is read from.
#[derive(Clone, Copy)]
struct Columns {
    open_time: usize,
    close: usize,
    close_time: usize,
    /// Cells every row must have (the header's length, or the archive's 12).
    width: usize,
}

const ARCHIVE: Columns = Columns {
    open_time: 0,
    close: 4,
    close_time: 6,
    width: 12,
};

const COLUMN_NAMES: [&str; 12] = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
];

/// Reads kline CSV files.
pub fn read(
    paths: &[PathBuf],
    options: &Options,
    context: &Context<'_>,
) -> Result<SourceBatch, IngestError> {
    read_each(paths, context, |path, rejects, batch| {
        read_file(path, options, context, rejects, batch)
    })
}

/// Quote tickers of Binance pairs that end with a shorter one (`BUSD`, `TUSD`, `FDUSD` end with
/// `USD`): a symbol ending with one of them is not quoted in the shorter one.
const STABLE_QUOTES: [&str; 3] = ["BUSD", "TUSD", "FDUSD"];

/// Refuses a file whose archive name (`ETHUSDT-1m-2022-05-12.csv`) names a symbol that does not
/// end with the quote given.
fn check_file_name(path: &Path, quote: &Id) -> Result<(), IngestError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some((symbol, rest)) = name.split_once('-') else {
        return Ok(());
    };
    let is_archive_name = !symbol.is_empty()
        && symbol
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && rest.split('-').next().is_some_and(|interval| {
            interval.len() >= 2
                && interval[..interval.len() - 1]
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                && interval.ends_with(['s', 'm', 'h', 'd', 'w', 'M'])
        });
    let quote = quote.to_string();
    // `ETHBUSD` ends with `USD` too: a longer quote ticker the symbol ends with is the quote.
    let longer_quote = STABLE_QUOTES
        .iter()
        .find(|stable| **stable != quote && stable.ends_with(&quote) && symbol.ends_with(*stable));
    if is_archive_name && (!symbol.ends_with(&quote) || longer_quote.is_some()) {
        return Err(IngestError::Source {
            path: path.to_owned(),
            message: format!(
                "the file name's symbol {symbol} is not quoted in {quote}: give --quote with the symbol's quote asset"
            ),
        });
    }
    Ok(())
}

/// The header's columns, or `None` when the first row is a bar.
fn header_columns(path: &Path, first: &StringRecord) -> Result<Option<Columns>, IngestError> {
    if value::integer_u64(header_cell(0, first.get(0).unwrap_or(""))).is_ok() {
        return Ok(None);
    }
    let names: Vec<String> = first
        .iter()
        .enumerate()
        .map(|(index, name)| {
            header_cell(index, name)
                .to_ascii_lowercase()
                .replace(' ', "_")
        })
        .collect();
    let find = |wanted: &str| {
        names
            .iter()
            .position(|name| name == wanted)
            .ok_or_else(|| IngestError::MissingColumn {
                file: path.to_owned(),
                column: format!(
                    "{wanted} (a header row must name {})",
                    COLUMN_NAMES[..7].join(", ")
                ),
                header: first.iter().collect::<Vec<_>>().join(","),
            })
    };
    Ok(Some(Columns {
        open_time: find("open_time")?,
        close: find("close")?,
        close_time: find("close_time")?,
        width: names.len(),
    }))
}

fn read_file(
    path: &Path,
    options: &Options,
    context: &Context<'_>,
    rejects: &mut Rejects,
    batch: &mut SourceBatch,
) -> Result<(), IngestError> {
    check_file_name(path, &options.quote)?;
    let file = File::open(path).map_err(|source| IngestError::Io {
        path: path.to_owned(),
        source,
    })?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(LineCounter::new(BufReader::with_capacity(1 << 16, file)));
    let csv_error = |error: csv::Error| IngestError::Source {
        path: path.to_owned(),
        message: format!("not readable as CSV: {error}"),
    };
    let mut record = StringRecord::new();
    if !reader.read_record(&mut record).map_err(csv_error)? {
        return Err(IngestError::Empty {
            file: path.to_owned(),
        });
    }
    let header = header_columns(path, &record)?;
    let columns = header.unwrap_or(ARCHIVE);
    let header_names: Vec<String> = match header {
        Some(_) => {
            batch.report.count("files with a header row", 1);
            record
                .iter()
                .enumerate()
                .map(|(index, name)| header_cell(index, name).to_owned())
                .collect()
        }
        None => COLUMN_NAMES.iter().map(|n| (*n).to_owned()).collect(),
    };
    batch.report.files.push(path.to_owned());
    let mut micros: Option<bool> = None;
    // The csv crate's own line count is one short after the first record of a CRLF file: lines
    // are counted from each record's start byte instead (`table::LineCounter`).
    let mut take_row =
        |row: &StringRecord, line: u64, batch: &mut SourceBatch| -> Result<(), IngestError> {
            if row.iter().all(|cell| cell.trim().is_empty()) {
                return Ok(());
            }
            batch.report.rows_read += 1;
            let fail = |column: usize, reason: String| {
                Box::new(RowError {
                    file: path.to_owned(),
                    position: Position::Line(line),
                    column: header_names.get(column).cloned().unwrap_or_default(),
                    value: row.get(column).unwrap_or("").to_owned(),
                    reason,
                    raw: Some(row.iter().collect::<Vec<_>>().join(",")),
                })
            };
            match bar(row, columns, options, &mut micros, &fail) {
                Ok((time, price)) => batch.events.push(Event::at(
                    context.chain_id,
                    time,
                    Payload::Price(Box::new(PriceUpdate {
                        asset: options.asset,
                        quote: options.quote,
                        price,
                        feed: options.feed,
                        round: None,
                    })),
                )),
                Err(error) => rejects.reject(error)?,
            }
            Ok(())
        };
    if header.is_none() {
        take_row(&record, 1, batch)?;
    }
    while reader.read_record(&mut record).map_err(csv_error)? {
        let start = record.position().map_or(0, csv::Position::byte);
        let line = reader.get_mut().line_of(start);
        take_row(&record, line, batch)?;
    }
    if micros == Some(true) {
        batch.report.count("files with microsecond times", 1);
    }
    context.progress.advance(size);
    Ok(())
}

/// One row's price event time and close price.
fn bar(
    row: &StringRecord,
    columns: Columns,
    options: &Options,
    micros: &mut Option<bool>,
    fail: &dyn Fn(usize, String) -> Box<RowError>,
) -> Result<(Timestamp, cascade_events::Fixed), Box<RowError>> {
    if row.len() != columns.width {
        return Err(fail(
            columns.width.min(row.len()),
            format!("{} cells where the layout has {}", row.len(), columns.width),
        ));
    }
    let cell = |column: usize| row.get(column).unwrap_or("").trim();
    let unix = |column: usize| -> Result<u64, Box<RowError>> {
        value::integer_u64(cell(column)).map_err(|reason| fail(column, reason))
    };
    let open = unix(columns.open_time)?;
    let close_time = unix(columns.close_time)?;
    let in_micros = open >= MICROS_FROM;
    match *micros {
        None => *micros = Some(in_micros),
        Some(file_unit) if file_unit != in_micros => {
            let unit = |m: bool| if m { "microseconds" } else { "milliseconds" };
            return Err(fail(
                columns.open_time,
                format!(
                    "in {} where the file's first row is in {}",
                    unit(in_micros),
                    unit(file_unit)
                ),
            ));
        }
        Some(_) => {}
    }
    if (close_time >= MICROS_FROM) != in_micros {
        return Err(fail(
            columns.close_time,
            "not in the unit of the open time".into(),
        ));
    }
    if close_time <= open {
        return Err(fail(
            columns.close_time,
            "the bar does not close after it opens".into(),
        ));
    }
    let per_second = if in_micros { 1_000_000 } else { 1_000 };
    let seconds = i64::try_from(close_time / per_second + 1)
        .map_err(|_| fail(columns.close_time, "out of range".into()))?;
    let time = value::check_range(Timestamp(seconds))
        .map_err(|reason| fail(columns.close_time, reason))?;
    let price = value::fixed(cell(columns.close), Some(options.decimals), false)
        .map_err(|reason| fail(columns.close, reason))?;
    if price.value.is_zero() {
        return Err(fail(columns.close, "zero price".into()));
    }
    Ok((time, price))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_context as context;

    const ROW_1: &str = "1652313600000,2046.12,2050.00,2040.01,2043.55,1140.149,1652313659999,432154.85156,376,708.721,268645.32183,0";
    const ROW_2: &str = "1652313660000,2043.55,2044.00,2030.00,2031.07,940.522,1652313719999,356318.03885,368,372.528,141138.35123,0";

    fn run_named(
        name: &str,
        text: &str,
        options: &Options,
        skip_invalid: bool,
    ) -> Result<SourceBatch, IngestError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        read(&[path], options, &context(skip_invalid))
    }

    fn run(text: &str, skip_invalid: bool) -> Result<SourceBatch, IngestError> {
        run_named(
            "ETHUSDT-1m-2022-05-12.csv",
            text,
            &Options::for_asset(Id::name("WETH")),
            skip_invalid,
        )
    }

    fn bars(batch: &SourceBatch) -> Vec<(i64, String, String, String)> {
        batch
            .events
            .iter()
            .map(|e| match &e.payload {
                Payload::Price(p) => (
                    e.time.0,
                    p.asset.to_string(),
                    p.quote.to_string(),
                    p.price.to_string(),
                ),
                _ => unreachable!(),
            })
            .collect()
    }

    fn expected() -> Vec<(i64, String, String, String)> {
        vec![
            (
                1_652_313_660,
                "WETH".into(),
                "USDT".into(),
                "2043.550000000000000000".into(),
            ),
            (
                1_652_313_720,
                "WETH".into(),
                "USDT".into(),
                "2031.070000000000000000".into(),
            ),
        ]
    }

    #[test]
    fn close_at_the_first_second_after_close_time_without_header() {
        let batch = run(&format!("{ROW_1}\n{ROW_2}\n"), false).unwrap();
        assert_eq!(bars(&batch), expected());
        assert_eq!(batch.report.rows_read, 2);
        assert!(batch.report.counters.is_empty());
    }

    #[test]
    fn both_header_spellings_give_the_same_bars() {
        let snake = format!("{}\n{ROW_1}\n{ROW_2}\n", COLUMN_NAMES.join(","));
        let api = format!(
            "Open time,Open,High,Low,Close,Volume,Close time,Quote asset volume,Number of trades,Taker buy base asset volume,Taker buy quote asset volume,Ignore\n{ROW_1}\n{ROW_2}\n"
        );
        for text in [snake, api] {
            let batch = run(&text, false).unwrap();
            assert_eq!(bars(&batch), expected());
            assert_eq!(batch.report.counters["files with a header row"], 1);
        }
    }

    #[test]
    fn futures_layouts_give_the_same_bars() {
        // The futures archives' headers: USD-M quotes volume in the quote asset, COIN-M in the
        // base asset (`base_volume`, `taker_buy_base_volume`); the first seven columns agree.
        let usd_m = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore";
        let coin_m = "open_time,open,high,low,close,volume,close_time,base_volume,count,taker_buy_volume,taker_buy_base_volume,ignore";
        for header in [usd_m, coin_m] {
            let batch = run(&format!("{header}\n{ROW_1}\n{ROW_2}\n"), false).unwrap();
            assert_eq!(bars(&batch), expected(), "{header}");
        }
        // A COIN-M file without its header is read by position like a spot file.
        let coin_m_row = |row: &str| {
            let mut cells: Vec<&str> = row.split(',').collect();
            cells[7] = "21.04";
            cells.join(",")
        };
        let batch = run(
            &format!("{}\n{}\n", coin_m_row(ROW_1), coin_m_row(ROW_2)),
            false,
        )
        .unwrap();
        assert_eq!(bars(&batch), expected());
    }

    #[test]
    fn microsecond_times_give_the_same_bars() {
        let micro = |row: &str| {
            let mut cells: Vec<String> = row.split(',').map(str::to_owned).collect();
            cells[0].push_str("000");
            cells[6].push_str("999");
            cells.join(",")
        };
        let batch = run(&format!("{}\n{}\n", micro(ROW_1), micro(ROW_2)), false).unwrap();
        assert_eq!(bars(&batch), expected());
        assert_eq!(batch.report.counters["files with microsecond times"], 1);

        // A millisecond row in a microsecond file is refused at its line, naming the value.
        let error = run(&format!("{}\n{ROW_2}\n", micro(ROW_1)), false).unwrap_err();
        assert_eq!(
            error.row_at(),
            (Position::Line(2), "open_time", "1652313660000")
        );
        assert!(error.to_string().contains("milliseconds"), "{error}");
    }

    #[test]
    fn bad_rows_name_file_line_column_and_value() {
        let header = COLUMN_NAMES.join(",");
        // The same lines with LF and with CRLF line ends: the same line numbers.
        for newline in ["\n", "\r\n"] {
            let text = [
                header.clone(),
                ROW_1.to_owned(),
                ROW_2.replace("2031.07", "-5"),
                ROW_2.replace(",1652313719999,", ",1652313660000,"),
                "1652313660000,1,2,3".to_owned(),
                ROW_2.to_owned(),
                String::new(),
            ]
            .join(newline);
            let error = run(&text, false).unwrap_err();
            assert_eq!(error.row_at(), (Position::Line(3), "close", "-5"));
            let message = error.to_string();
            assert!(
                message.contains("ETHUSDT-1m-2022-05-12.csv") && message.contains("negative"),
                "{message}"
            );

            let batch = run(&text, true).unwrap();
            let rejected: Vec<(Position, String, String)> = batch
                .report
                .rejected
                .iter()
                .map(|r| (r.position, r.column.clone(), r.reason.clone()))
                .collect();
            assert_eq!(rejected.len(), 3, "{rejected:?}");
            assert_eq!(rejected[1].0, Position::Line(4), "{newline:?}");
            assert_eq!(rejected[1].1, "close_time");
            assert!(rejected[1].2.contains("does not close after"));
            assert_eq!(rejected[2].0, Position::Line(5));
            assert!(rejected[2].2.contains("4 cells"), "{}", rejected[2].2);
            assert_eq!(bars(&batch), expected());
        }
    }

    #[test]
    fn a_header_without_the_needed_columns_and_a_wrong_quote_are_errors() {
        let error = run("time,open,high,low,price\n", false).unwrap_err();
        assert!(
            matches!(&error, IngestError::MissingColumn { column, .. } if column.starts_with("open_time")),
            "{error}"
        );
        assert!(matches!(run("", false), Err(IngestError::Empty { .. })));
        let usd = Options {
            quote: Id::name("USD"),
            ..Options::for_asset(Id::name("WETH"))
        };
        let error = run_named("ETHUSDT-1m-2022-05-12.csv", ROW_1, &usd, false).unwrap_err();
        assert!(error.to_string().contains("not quoted in USD"), "{error}");
        let error = run_named("ETHBUSD-1m-2022-05-12.csv", ROW_1, &usd, false).unwrap_err();
        assert!(error.to_string().contains("ETHBUSD"), "{error}");
        // A file not named like the archive is taken at the flag's word.
        assert_eq!(
            bars(&run_named("eth.csv", ROW_1, &usd, false).unwrap())[0].2,
            "USD"
        );
    }
}
