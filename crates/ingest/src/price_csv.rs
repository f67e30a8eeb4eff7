//! `price-csv`: market prices as `symbol,timestamp,price` CSV (the CoinGecko hourly exports write
//! `symbol,timestamp,USD_price`).
//!
//! The adapter is a mapping built from the header and the flags, so `fixtures/mappings/
//! coingecko-prices.toml` through the `csv` kind gives the same events. Rules:
//! - the price column is `price` or `<QUOTE>_price`; the quote is `<QUOTE>` (`USD`), or `--quote`
//!   (default `USD`) for a plain `price` column;
//! - timestamps are unix seconds or milliseconds, decided by the first row (milliseconds from
//!   10^11 on) and held to by every other row; milliseconds are truncated to the second, and the
//!   result must lie between 2009 and 2100;
//! - prices are stored with `--decimals` decimals (default 18); a price with more non-zero digits
//!   is refused, never rounded.
//!
//! Must never: read a price through `f64`.

use std::path::{Path, PathBuf};

use cascade_events::Id;

use crate::batch::{Context, SourceBatch, read_each};
use crate::error::IngestError;
use crate::mapping::Mapping;
use crate::table::CsvInput;

/// Flags of the `price-csv` kind.
#[derive(Clone, Debug)]
pub struct Options {
    /// Quote of a plain `price` column (a `<QUOTE>_price` column names its own).
    pub quote: Option<Id>,
    /// The feed id stamped on the prices.
    pub feed: Id,
    /// Decimals the prices are stored with.
    pub decimals: u8,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            quote: None,
            feed: Id::name("price-csv"),
            decimals: 18,
        }
    }
}

/// Reads price CSV files.
pub fn read(
    paths: &[PathBuf],
    options: &Options,
    context: &Context<'_>,
) -> Result<SourceBatch, IngestError> {
    read_each(paths, context, |path, rejects, batch| {
        mapping_for(path, options)?.read_into(path, context, rejects, batch)
    })
}

/// The mapping that reads `path`: its header decides the price column and the quote.
pub fn mapping_for(path: &Path, options: &Options) -> Result<Mapping, IngestError> {
    let input = CsvInput::open(path)?;
    input.column("symbol")?;
    input.column("timestamp")?;
    let candidates: Vec<&String> = input
        .header()
        .iter()
        .filter(|name| {
            let lower = name.to_ascii_lowercase();
            lower == "price" || lower.ends_with("_price")
        })
        .collect();
    let column = match candidates.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(IngestError::MissingColumn {
                file: path.to_owned(),
                column: "price (or <QUOTE>_price)".into(),
                header: input.header().join(","),
            });
        }
        several => {
            return Err(IngestError::Source {
                path: path.to_owned(),
                message: format!(
                    "several price columns ({}): use the csv kind with a mapping to pick one",
                    several
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    };
    let quote =
        match (column.len() > "_price".len()).then(|| &column[..column.len() - "_price".len()]) {
            Some(prefix) => prefix.to_owned(),
            None => options
                .quote
                .map_or_else(|| "USD".to_owned(), |q| q.to_string()),
        };
    let text = format!(
        "[time]\ncolumn = \"timestamp\"\nformat = \"unix_auto\"\n\n[[event]]\nkind = \"price\"\n\
         asset = {{ column = \"symbol\", id = \"name\" }}\nquote = {quote}\n\
         price = {{ column = {column}, decimals = {decimals} }}\nfeed = {feed}\n",
        quote = toml_string(&quote),
        column = toml_string(&column),
        decimals = options.decimals,
        feed = toml_string(&options.feed.to_string()),
    );
    Mapping::from_toml(Path::new("price-csv (built-in)"), &text)
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_context as context;
    use crate::error::Position;
    use cascade_events::{Payload, Timestamp};

    fn run(text: &str, options: &Options, skip_invalid: bool) -> Result<SourceBatch, IngestError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        std::fs::write(&path, text).unwrap();
        read(&[path], options, &context(skip_invalid))
    }

    fn prices(batch: &SourceBatch) -> Vec<(Timestamp, String, String, String)> {
        batch
            .events
            .iter()
            .map(|e| match &e.payload {
                Payload::Price(p) => (
                    e.time,
                    p.asset.to_string(),
                    p.quote.to_string(),
                    p.price.to_string(),
                ),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn milliseconds_are_detected_and_truncated() {
        let batch = run(
            "symbol,timestamp,USD_price\nWETH,1609459201234,1000.1234567890123\nWETH,1609462805678,1001.5\n",
            &Options::default(),
            false,
        )
        .unwrap();
        let got = prices(&batch);
        assert_eq!(got[0].0, Timestamp(1_609_459_201));
        assert_eq!(got[0].1, "WETH");
        assert_eq!(got[0].2, "USD");
        assert_eq!(got[0].3, "1000.123456789012300000");
        assert_eq!(got[1].0, Timestamp(1_609_462_805));
    }

    #[test]
    fn seconds_and_a_plain_price_column() {
        let options = Options {
            quote: Some(Id::name("ETH")),
            decimals: 8,
            ..Options::default()
        };
        let batch = run(
            "symbol,timestamp,price\nstETH,1643487908,0.99631698\n",
            &options,
            false,
        )
        .unwrap();
        assert_eq!(
            prices(&batch),
            [(
                Timestamp(1_643_487_908),
                "stETH".into(),
                "ETH".into(),
                "0.99631698".into()
            )]
        );
    }

    #[test]
    fn mixed_units_and_bad_values_name_line_and_value() {
        let text = "symbol,timestamp,USD_price\nWETH,1609459201234,1\nWETH,1609463014,2\nWETH,1609463015000,-3\nWETH,1609463016000,0.1234567890123456789\n";
        let error = run(text, &Options::default(), false).unwrap_err();
        assert_eq!(
            error.row_at(),
            (Position::Line(3), "timestamp", "1609463014")
        );
        assert!(error.to_string().contains("milliseconds"), "{error}");

        let batch = run(text, &Options::default(), true).unwrap();
        let reasons: Vec<(Position, String)> = batch
            .report
            .rejected
            .iter()
            .map(|r| (r.position, r.reason.clone()))
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[1].1.contains("negative"));
        assert!(reasons[2].1.contains("more than 18 decimals"));
        assert_eq!(batch.events.len(), 1);
    }

    #[test]
    fn header_problems_are_errors() {
        assert!(matches!(
            run("", &Options::default(), false),
            Err(IngestError::Empty { .. })
        ));
        assert!(matches!(
            run(
                "symbol,timestamp,close\nA,1609459201,1\n",
                &Options::default(),
                false
            ),
            Err(IngestError::MissingColumn { .. })
        ));
        assert!(
            run(
                "symbol,timestamp,price,USD_price\n",
                &Options::default(),
                false
            )
            .unwrap_err()
            .to_string()
            .contains("several price columns")
        );
        assert!(matches!(
            run("sym,timestamp,price\n", &Options::default(), false),
            Err(IngestError::MissingColumn { column, .. }) if column == "symbol"
        ));
    }
}
