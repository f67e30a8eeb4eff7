//! `cascade ingest` as a user runs it: exit codes, the summary, and the log it leaves.
#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing

mod common {
    pub mod run;
}

use common::run::{cascade, fixtures, path, text};

#[test]
fn ingest_interleaves_and_reingest_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("toy");
    let maker = fixtures("ingest/maker-flipside");
    let first = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "maker-flipside",
        path(&maker),
    ]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let summary = text(&first);
    assert!(summary.contains("events written: 15"), "{summary}");
    assert!(
        summary.contains("liquidations read as Dog barks (due): 1"),
        "{summary}"
    );

    let again = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "maker-flipside",
        path(&maker),
    ]);
    assert_eq!(again.status.code(), Some(0));
    assert!(text(&again).contains("already ingested as source #0: nothing to do"));

    // Prices from before the Maker events: merged in front, not appended.
    let prices = fixtures("ingest/prices.csv");
    let merged = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "price-csv",
        path(&prices),
    ]);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    assert!(
        text(&merged).contains("merged and rewritten atomically, now 18 events"),
        "{}",
        text(&merged)
    );

    let stats = cascade(&["log", "stats", path(&log), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(json["events"], 18);
    assert_eq!(json["by_kind"]["price"], 3);
    assert_eq!(json["by_kind"]["liquidation"], 3);
    assert_eq!(json["first_time"], "2021-01-01T00:00:00Z");
}

#[test]
fn bad_rows_exit_2_or_are_quarantined_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let rounds = fixtures("ingest/eth-usd_0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419.csv");
    let failed = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "chainlink-rounds",
        path(&rounds),
    ]);
    assert_eq!(failed.status.code(), Some(2));
    let message = text(&failed);
    assert!(
        message.contains("line 5, column update: \"0\": zero timestamp"),
        "{message}"
    );

    let quarantine = dir.path().join("q.jsonl");
    let skipped = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "chainlink-rounds",
        "--skip-invalid",
        "--quarantine",
        path(&quarantine),
        path(&rounds),
    ]);
    assert_eq!(skipped.status.code(), Some(1), "{}", text(&skipped));
    assert!(text(&skipped).contains("rows rejected: 1"));
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&quarantine).unwrap().trim()).unwrap();
    assert_eq!(line["position"]["line"], 5);
    assert_eq!(line["kind"], "chainlink-rounds");
}

#[test]
fn flags_are_checked_against_the_kind() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let prices = fixtures("ingest/prices.csv");
    let wrong = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "price-csv",
        "--reserves",
        "x.csv",
        path(&prices),
    ]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        text(&wrong).contains("--reserves does not apply to --source price-csv"),
        "{}",
        text(&wrong)
    );
    let no_mapping = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "csv",
        path(&prices),
    ]);
    assert!(text(&no_mapping).contains("--source csv needs --mapping FILE"));
    let no_parquet_mapping = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "parquet",
        path(&prices),
    ]);
    assert!(text(&no_parquet_mapping).contains("--source parquet needs --mapping FILE"));
    let recorded_kind = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "csv-file-order",
        path(&prices),
    ]);
    assert!(
        text(&recorded_kind).contains("instant_order = \"file\": give --source csv"),
        "{}",
        text(&recorded_kind)
    );
    let mapping = fixtures("mappings/coingecko-prices.toml");
    // A CSV file given as Parquet: refused, naming the file, and the first ingest leaves no log.
    let not_parquet = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "parquet",
        "--mapping",
        path(&mapping),
        path(&prices),
    ]);
    assert_eq!(not_parquet.status.code(), Some(2));
    assert!(
        text(&not_parquet).contains("prices.csv: not a readable Parquet file"),
        "{}",
        text(&not_parquet)
    );
    assert!(!log.exists());
    let mapped = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "csv",
        "--mapping",
        path(&mapping),
        path(&prices),
    ]);
    assert_eq!(mapped.status.code(), Some(0), "{}", text(&mapped));
    assert!(text(&mapped).contains("price: 3"));
    let unknown = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "maker",
        path(&prices),
    ]);
    assert!(
        text(&unknown).contains("maker-flipside"),
        "{}",
        text(&unknown)
    );
}

#[test]
fn binance_klines_need_an_asset_and_a_usdt_feed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let bars = dir.path().join("ETHUSDT-1m-2022-05-12.csv");
    std::fs::write(
        &bars,
        "1652313600000,2046.12,2050,2040.01,2043.55,1140.149,1652313659999,432154.85,376,708.721,268645.32,0\n",
    )
    .unwrap();
    let klines = |extra: &[&str]| {
        let mut args = vec!["ingest", "--log", path(&log), "--source", "binance-klines"];
        args.extend_from_slice(extra);
        args.push(path(&bars));
        cascade(&args)
    };
    let no_asset = klines(&[]);
    assert_eq!(no_asset.status.code(), Some(2));
    assert!(
        text(&no_asset).contains("--source binance-klines needs --asset"),
        "{}",
        text(&no_asset)
    );
    let no_rate = klines(&["--asset", "WETH"]);
    assert_eq!(no_rate.status.code(), Some(2));
    assert!(
        text(&no_rate).contains("need a USDT/USD price feed"),
        "{}",
        text(&no_rate)
    );
    let usd = klines(&["--asset", "WETH", "--quote", "USD"]);
    assert_eq!(usd.status.code(), Some(2));
    assert!(text(&usd).contains("not quoted in USD"), "{}", text(&usd));
    let rate = dir.path().join("USDT_usd.csv");
    std::fs::write(
        &rate,
        "symbol,timestamp,USD_price\nUSDT,1652310000,0.9990\n",
    )
    .unwrap();
    let fed = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "price-csv",
        path(&rate),
    ]);
    assert_eq!(fed.status.code(), Some(0), "{}", text(&fed));
    let ingested = klines(&["--asset", "WETH"]);
    assert_eq!(ingested.status.code(), Some(0), "{}", text(&ingested));
    assert!(text(&ingested).contains("price: 1"), "{}", text(&ingested));
}

#[test]
fn a_mapping_with_a_lookup_table_ingests_the_aave_export() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("aave");
    let mapping = fixtures("mappings/aave-v2-liquidations.toml");
    let export = fixtures("ingest/aave-v2/liquidations.csv");
    // The reserves file from elsewhere, named on the command line.
    let reserves = dir.path().join("reserves.csv");
    std::fs::copy(fixtures("ingest/aave-v2/tokens.csv"), &reserves).unwrap();
    let lookup = format!("reserves={}", path(&reserves));
    let run = |extra: &[&str]| {
        let mut args = vec![
            "ingest",
            "--log",
            path(&log),
            "--source",
            "csv",
            "--mapping",
            path(&mapping),
            "--skip-invalid",
        ];
        args.extend_from_slice(extra);
        args.push(path(&export));
        cascade(&args)
    };
    let unknown = run(&["--lookup", "tokens=x.csv"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(text(&unknown).contains("no [[lookup]] table named \"tokens\""));
    let ingested = run(&["--lookup", &lookup]);
    // Two rows quarantined: findings.
    assert_eq!(ingested.status.code(), Some(1), "{}", text(&ingested));
    let summary = text(&ingested);
    assert!(summary.contains("csv-rows"), "{summary}");
    assert!(
        summary.contains("rows in raw base units (empty liquidator): 5"),
        "{summary}"
    );
    assert!(
        summary.contains("rows in whole tokens (liquidator given): 4"),
        "{summary}"
    );
    assert!(summary.contains("events written: 33"), "{summary}");
    let rows = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "csv-rows",
        "--mapping",
        path(&mapping),
        path(&export),
    ]);
    assert_eq!(rows.status.code(), Some(2), "{}", text(&rows));
    assert!(text(&rows).contains("give --source csv"));
}

/// An OSM `LogValue` (topic: keccak256("LogValue(bytes32)")) of 1400e18, as a node returns it.
const OSM_LOG: &str = r#"[{"address":"0x81fe72b5a8d1a857d176c3e7d5bd2679a9b85763","topics":["0x296ba4ca62c6c21c95e828080cb8aec7481b71390585605300a8a76f9e95b527"],"data":"0x00000000000000000000000000000000000000000000004be4e7267b6ae00000","blockNumber":"0xc5a101","blockTimestamp":"0x60eac9c0","transactionHash":"0x0101010101010101010101010101010101010101010101010101010101010101","transactionIndex":"0x0","logIndex":"0x1"}]"#;

#[test]
fn oracle_emitters_come_from_a_contract_table_file_or_the_ingest_fails_saying_so() {
    let temp = tempfile::tempdir().unwrap();
    let logs = temp.path().join("oracle-logs.json");
    std::fs::write(&logs, OSM_LOG).unwrap();
    let table = temp.path().join("contracts.csv");
    std::fs::write(
        &table,
        "address,kind\n0x81FE72B5A8d1A857d176C3E7d5Bd2679A9B85763,maker-osm:ETH\n",
    )
    .unwrap();
    let unnamed = temp.path().join("unnamed");
    let output = cascade(&[
        "ingest",
        "--log",
        path(&unnamed),
        "--source",
        "eth-logs",
        path(&logs),
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("=maker-osm:GEM"),
        "{}",
        text(&output)
    );
    let nothing = cascade(&["log", "cat", path(&unnamed)]);
    assert!(
        !String::from_utf8_lossy(&nothing.stdout).contains("oracle-value"),
        "no event is written on a rejected ingest"
    );

    let log = temp.path().join("log");
    let output = cascade(&[
        "ingest",
        "--log",
        path(&log),
        "--source",
        "eth-logs",
        "--contracts",
        path(&table),
        path(&logs),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let events = cascade(&["log", "cat", path(&log)]);
    let listed = String::from_utf8_lossy(&events.stdout);
    assert!(
        listed.contains("oracle-value") && listed.contains("maker ETH osm-log-value 1400."),
        "{listed}"
    );
}
