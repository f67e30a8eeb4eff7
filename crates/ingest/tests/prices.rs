//! Price adapters on the real Chainlink, CoinGecko and Berkeley files.

mod common {
    pub mod context;
    pub mod data;
}

use cascade_events::{Id, Payload, Timestamp};
use cascade_ingest::{Position, chainlink_rounds, feeds::FeedTable, ohlcv_json, price_csv};
use common::{context::context, data::shared_data};

fn chainlink_options() -> chainlink_rounds::Options {
    chainlink_rounds::Options {
        table: FeedTable::built_in(),
        ..Default::default()
    }
}

#[test]
fn chainlink_zero_timestamp_round_is_rejected_then_quarantined() {
    let Some(folder) = shared_data("chainlink") else {
        return;
    };
    for (name, rounds, line) in [
        (
            "eth-usd_0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419.csv",
            11_107,
            11_108,
        ),
        (
            "btc-usd_0xF4030086522a5bEEa4988F8cA5B36dbC97BeE88c.csv",
            10_692,
            10_693,
        ),
    ] {
        let path = folder.join(name);
        let error =
            chainlink_rounds::read(&path, &chainlink_options(), &context(false)).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(name) && message.contains(&format!("line {line}")),
            "{message}"
        );
        assert!(
            message.contains("\"0\"") && message.contains("zero timestamp"),
            "{message}"
        );

        let batch = chainlink_rounds::read(&path, &chainlink_options(), &context(true)).unwrap();
        assert_eq!(batch.report.rows_read, rounds);
        assert_eq!(batch.events.len() as u64, rounds - 1);
        assert_eq!(batch.report.rejected.len(), 1);
        assert_eq!(batch.report.rejected[0].position, Position::Line(line));
        assert!(
            batch.report.rejected[0]
                .raw
                .as_deref()
                .unwrap()
                .contains("110680464442257309696")
        );
        let rounds: Vec<u128> = batch
            .events
            .iter()
            .map(|e| match &e.payload {
                Payload::Price(p) => p.round.unwrap(),
                _ => unreachable!(),
            })
            .collect();
        assert!(
            rounds.windows(2).all(|w| w[0] < w[1]),
            "emitted in round order"
        );
    }
}

#[test]
fn chainlink_steth_has_no_bad_rounds() {
    let Some(folder) = shared_data("chainlink") else {
        return;
    };
    let path = folder.join("steth-eth_0x86392dC19c0b719886221c78AB11eb8Cf5c52812.csv");
    let batch = chainlink_rounds::read(&path, &chainlink_options(), &context(false)).unwrap();
    assert_eq!(batch.events.len(), 745);
    let Payload::Price(last) = &batch.events.get(744).payload else {
        unreachable!()
    };
    assert_eq!(
        (last.asset, last.quote),
        (Id::name("stETH"), Id::name("ETH"))
    );
    assert_eq!(last.price.to_string(), "0.999692734093987600");
}

#[test]
fn coingecko_hourly_files_read_as_milliseconds() {
    let Some(folder) = shared_data("prices/coingecko-hourly") else {
        return;
    };
    let mut paths: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let batch = price_csv::read(&paths, &price_csv::Options::default(), &context(false)).unwrap();
    assert_eq!(
        batch.events.len(),
        18_862 + 18_848 + 16_556 + 18_869 + 18_845 + 10_808 + 18_833 + 18_861 + 18_410
    );
    let first = batch.events.iter().map(|e| e.time).min().unwrap();
    let last = batch.events.iter().map(|e| e.time).max().unwrap();
    assert!(first.to_rfc3339().starts_with("2021-01-01"), "{first}");
    assert!(last.to_rfc3339().starts_with("2023-02-25"), "{last}");
    // CRV/USD peaked at 0.72 at 18:00 UTC on 2022-11-22 (PROVENANCE.md).
    let crv_peak = batch
        .events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Price(p)
                if p.asset == Id::name("CRV") && e.time.to_rfc3339().starts_with("2022-11-22") =>
            {
                Some((p.price, e.time))
            }
            _ => None,
        })
        .max()
        .unwrap();
    assert!(crv_peak.0.to_string().starts_with("0.72"), "{crv_peak:?}");
    assert!(
        crv_peak.1.to_rfc3339().starts_with("2022-11-22T18"),
        "{crv_peak:?}"
    );
}

#[test]
fn berkeley_black_thursday_bars() {
    let Some(folder) = shared_data("prices/berkeley-stablesims/feeds/eth") else {
        return;
    };
    let options = ohlcv_json::Options {
        asset: Some(Id::name("WETH")),
        ..Default::default()
    };
    let batch =
        ohlcv_json::read(&[folder.join("03-12-2020.json")], &options, &context(false)).unwrap();
    assert_eq!(batch.events.len(), 144);
    assert_eq!(batch.events.get(0).time, Timestamp(1_583_971_800)); // 2020-03-12T00:10:00Z, the first bar's end
    let closes: Vec<_> = batch
        .events
        .iter()
        .map(|e| match &e.payload {
            Payload::Price(p) => p.price,
            _ => unreachable!(),
        })
        .collect();
    // Closes lie within the day's low 101.01 and high 195.43.
    let low = cascade_events::Fixed::parse_exact("101.01").unwrap();
    let high = cascade_events::Fixed::parse_exact("195.43").unwrap();
    assert!(closes.iter().all(|c| *c >= low && *c <= high));
}

/// Writes `text` to `name` in a new temporary folder.
fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("the file written");
    (dir, path)
}

#[test]
fn a_zero_price_and_a_line_break_in_a_name_are_refused_with_line_and_value() {
    for (text, column, value, reason) in [
        (
            "symbol,timestamp,USD_price\nWETH,1609459200000,0\n",
            "USD_price",
            "0",
            "a price of 0 is no price",
        ),
        (
            "symbol,timestamp,USD_price\n\"WE\nTH\",1609459200000,730\n",
            "symbol",
            "WE\nTH",
            "control character",
        ),
    ] {
        let (_dir, path) = file("prices.csv", text);
        let error =
            price_csv::read(&[path], &price_csv::Options::default(), &context(false)).unwrap_err();
        let message = error.to_string();
        let cascade_ingest::IngestError::Row(row) = &error else {
            panic!("{message}")
        };
        assert_eq!(row.position, Position::Line(2), "{message}");
        assert_eq!((row.column.as_str(), row.value.as_str()), (column, value));
        assert!(message.contains(reason), "{message}");
    }
    let (_dir, path) = file(
        "bars.json",
        r#"[{"time_period_start": "2021-05-19T00:00:00Z", "time_period_end": "2021-05-19T00:10:00Z", "price_close": 0}]"#,
    );
    let options = ohlcv_json::Options {
        asset: Some(Id::name("WETH")),
        ..Default::default()
    };
    let message = ohlcv_json::read(&[path], &options, &context(false))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("price_close") && message.contains("a price of 0"),
        "{message}"
    );
}

#[test]
fn ohlcv_bars_need_the_asset_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("eth")).unwrap();
    let path = dir.path().join("eth/05-19-2021.json");
    std::fs::write(
        &path,
        r#"[{"time_period_start": "2021-05-19T00:00:00Z", "time_period_end": "2021-05-19T00:10:00Z", "price_close": 3150.75}]"#,
    )
    .unwrap();
    let message = ohlcv_json::read(&[path], &ohlcv_json::Options::default(), &context(false))
        .unwrap_err()
        .to_string();
    assert!(message.contains("05-19-2021.json"), "{message}");
    assert!(message.contains("give --asset"), "{message}");
}

#[test]
fn chainlink_round_ids_beyond_uint80_or_of_aggregator_round_0_are_refused() {
    const HEADER: &str = ",round,answer,start,update,answeredInRound\n";
    let name = "eth-usd_0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419.csv";
    let largest = (1u128 << 80) - 1;
    for (round, reason) in [
        (1u128 << 80, "above the largest Chainlink round id"),
        (6u128 << 64, "aggregator round 0"),
    ] {
        let (_dir, path) = file(
            name,
            &format!("{HEADER}0,{round},230000000000,1700000000,1700000000,{round}\n"),
        );
        let error =
            chainlink_rounds::read(&path, &chainlink_options(), &context(false)).unwrap_err();
        let message = error.to_string();
        let cascade_ingest::IngestError::Row(row) = &error else {
            panic!("{message}")
        };
        assert_eq!(
            (row.position, row.column.as_str()),
            (Position::Line(2), "round")
        );
        assert_eq!(row.value, round.to_string());
        assert!(message.contains(reason), "{message}");
    }
    let (_dir, path) = file(
        name,
        &format!("{HEADER}0,{largest},230000000000,1700000000,1700000000,{largest}\n"),
    );
    let batch = chainlink_rounds::read(&path, &chainlink_options(), &context(false)).unwrap();
    let Payload::Price(price) = &batch.events.get(0).payload else {
        panic!("a price")
    };
    assert_eq!(price.round, Some(largest));
}

#[test]
fn a_huge_cell_gives_a_short_error_with_its_length() {
    let huge = "W".repeat(10_000_000);
    let (_dir, path) = file(
        "prices.csv",
        &format!(
            "symbol,timestamp,USD_price\n{huge},1609459200000,5\nWETH,1609459200000,{huge}x\n"
        ),
    );
    let message = price_csv::read(
        std::slice::from_ref(&path),
        &price_csv::Options::default(),
        &context(false),
    )
    .unwrap_err()
    .to_string();
    assert!(message.len() < 500, "{} bytes", message.len());
    assert!(
        message.contains("line 2, column symbol") && message.contains("… (10000000 bytes)"),
        "{message}"
    );
    let batch = price_csv::read(&[path], &price_csv::Options::default(), &context(true)).unwrap();
    for row in &batch.report.rejected {
        let message = row.to_string();
        assert!(message.len() < 500, "{} bytes", message.len());
    }
    assert_eq!(batch.report.rejected.len(), 2);
}
