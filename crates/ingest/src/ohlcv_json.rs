//! `ohlcv-json`: OHLCV bars as a JSON array (the Berkeley crash-day feeds: `time_period_start`,
//! `time_period_end`, `price_open`, `price_high`, `price_low`, `price_close`, ...).
//!
//! Each bar becomes one price event: the **close** price, at the **end** of the bar
//! (`time_period_end`), because that is the last price known when the bar is complete; using the
//! open or the start time would let a replay see a price before it happened. Numbers are read
//! from their JSON text, never as `f64`. The asset is `--asset`, required: the bars do not name
//! it, and guessing it from the folder (`feeds/eth/`) would give `ETH` where the protocols price
//! `WETH`. The quote is `--quote` (default `USD`).
//!
//! Must never: emit a bar whose end is not after its start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cascade_events::{Event, Id, Payload, PriceUpdate};
use serde_json::value::RawValue;

use crate::batch::{Context, Rejects, SourceBatch, read_each};
use crate::error::{IngestError, Position, RowError};
use crate::value::{self, TimeFormat};

/// Flags of the `ohlcv-json` kind.
#[derive(Clone, Debug)]
pub struct Options {
    /// The asset priced (required).
    pub asset: Option<Id>,
    /// The unit of the prices.
    pub quote: Id,
    /// The feed id stamped on the prices.
    pub feed: Id,
    /// Decimals the prices are stored with.
    pub decimals: u8,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            asset: None,
            quote: Id::name("USD"),
            feed: Id::name("ohlcv-json"),
            decimals: 18,
        }
    }
}

/// Reads OHLCV JSON files.
pub fn read(
    paths: &[PathBuf],
    options: &Options,
    context: &Context<'_>,
) -> Result<SourceBatch, IngestError> {
    read_each(paths, context, |path, rejects, batch| {
        read_file(path, options, context, rejects, batch)
    })
}

fn asset_for(path: &Path, options: &Options) -> Result<Id, IngestError> {
    options.asset.ok_or_else(|| IngestError::Source {
        path: path.to_owned(),
        message: "no asset: give --asset (OHLCV bars do not name the asset they price, and a folder name such as `eth` is not the log's `WETH`)".into(),
    })
}

fn read_file(
    path: &Path,
    options: &Options,
    context: &Context<'_>,
    rejects: &mut Rejects,
    batch: &mut SourceBatch,
) -> Result<(), IngestError> {
    let asset = asset_for(path, options)?;
    let (text, size) = crate::source::read_text(path)?;
    let text = text.as_str();
    let bars: Vec<BTreeMap<String, Box<RawValue>>> =
        serde_json::from_str(text).map_err(|error| IngestError::Json {
            file: path.to_owned(),
            line: error.line() as u64,
            column: error.column() as u64,
            message: error.to_string(),
        })?;
    batch.report.files.push(path.to_owned());
    batch.report.rows_read += bars.len() as u64;
    for (index, bar) in bars.iter().enumerate() {
        let position = Position::Entry(index as u64 + 1);
        let field = |name: &str| -> Result<&str, Box<RowError>> {
            bar.get(name).map(|raw| raw.get()).ok_or_else(|| {
                Box::new(RowError {
                    file: path.to_owned(),
                    position,
                    column: name.to_owned(),
                    value: String::new(),
                    reason: "missing field".into(),
                    raw: serde_json::to_string(bar).ok(),
                })
            })
        };
        let fail = |name: &str, value: &str, reason: String| {
            Box::new(RowError {
                file: path.to_owned(),
                position,
                column: name.to_owned(),
                value: value.to_owned(),
                reason,
                raw: serde_json::to_string(bar).ok(),
            })
        };
        let time_of = |name: &str| {
            let raw = field(name)?;
            let text: String =
                serde_json::from_str(raw).map_err(|_| fail(name, raw, "not a string".into()))?;
            value::time(&text, &TimeFormat::Rfc3339).map_err(|reason| fail(name, raw, reason))
        };
        let parsed = (|| {
            let start = time_of("time_period_start")?;
            let end = time_of("time_period_end")?;
            if end <= start {
                return Err(fail(
                    "time_period_end",
                    field("time_period_end")?,
                    "bar does not end after it starts".into(),
                ));
            }
            let close = field("price_close")?;
            let price = value::fixed(close, Some(options.decimals), false)
                .and_then(value::positive_price)
                .map_err(|reason| fail("price_close", close, reason))?;
            Ok((end, price))
        })();
        match parsed {
            Ok((time, price)) => batch.events.push(Event::at(
                context.chain_id,
                time,
                Payload::Price(Box::new(PriceUpdate {
                    asset,
                    quote: options.quote,
                    price,
                    feed: options.feed,
                    round: None,
                })),
            )),
            Err(error) => rejects.reject(error)?,
        }
    }
    context.progress.advance(size);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_context as context;
    use cascade_events::Timestamp;

    const BAR: &str = r#"{"time_period_start": "2021-05-19T00:00:00.0000000Z", "time_period_end": "2021-05-19T00:10:00.0000000Z",
        "price_open": 3100.250000000, "price_close": 3150.750000000, "volume_traded": 250.125000000}"#;

    fn options() -> Options {
        Options {
            asset: Some(Id::name("ETH")),
            ..Options::default()
        }
    }

    fn write(dir: &Path, folder: &str, text: &str) -> PathBuf {
        let folder = dir.join(folder);
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("05-19-2021.json");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn close_at_bar_end_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "eth", &format!("[{BAR}]"));
        let batch = read(&[path], &options(), &context(false)).unwrap();
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.events.get(0).time, Timestamp(1_621_383_000));
        let Payload::Price(price) = &batch.events.get(0).payload else {
            unreachable!()
        };
        assert_eq!(price.asset, Id::name("ETH"));
        assert_eq!(
            price.price.rescale(2).unwrap(),
            cascade_events::U256::from(315_075u32)
        );
    }

    #[test]
    fn asset_needs_the_flag_whatever_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "eth", &format!("[{BAR}]"));
        assert!(
            read(
                std::slice::from_ref(&path),
                &Options::default(),
                &context(false)
            )
            .unwrap_err()
            .to_string()
            .contains("--asset")
        );
        let options = Options {
            asset: Some(Id::name("DAI")),
            ..Options::default()
        };
        assert_eq!(
            read(&[path], &options, &context(false))
                .unwrap()
                .events
                .len(),
            1
        );
    }

    #[test]
    fn bad_bars_name_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let bad = BAR.replace("3150.750000000", "-1");
        let reversed = BAR.replace("00:10:00", "00:00:00");
        let path = write(
            dir.path(),
            "eth",
            &format!("[{BAR}, {bad}, {reversed}, {{}}]"),
        );
        let error = read(std::slice::from_ref(&path), &options(), &context(false)).unwrap_err();
        assert_eq!(error.row_at(), (Position::Entry(2), "price_close", "-1"));
        let batch = read(&[path], &options(), &context(true)).unwrap();
        assert_eq!(batch.events.len(), 1);
        let reasons: Vec<&str> = batch
            .report
            .rejected
            .iter()
            .map(|r| r.reason.as_str())
            .collect();
        assert_eq!(reasons.len(), 3);
        assert!(reasons[1].contains("does not end after"));
        assert_eq!(reasons[2], "missing field");
    }

    #[test]
    fn broken_json_and_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "eth", "[{\"a\": 1},\n{");
        assert!(matches!(
            read(&[path], &options(), &context(true)),
            Err(IngestError::Json { line: 2, .. })
        ));
        let path = write(dir.path(), "eth", "  ");
        assert!(matches!(
            read(&[path], &options(), &context(true)),
            Err(IngestError::Empty { .. })
        ));
    }
}
