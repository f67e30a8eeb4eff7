//! Staging into a real log: ordering across ingests, re-ingest, duplicates, quarantine and the
//! all-or-nothing rule.
#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing

mod common {
    pub mod data;
}

use std::path::{Path, PathBuf};

use cascade_events::{Event, EventKind, Payload, Timestamp};
use cascade_ingest::{
    IngestError, IngestOptions, NoProgress, Source, SourceStatus, WriteMode, binance_klines,
    chainlink_rounds, feeds::FeedTable, ingest, price_csv,
};
use cascade_log::{Catalog, LogReader};
use common::data::shared_data;

fn options(skip_invalid: bool) -> IngestOptions {
    IngestOptions {
        skip_invalid,
        ..IngestOptions::default()
    }
}

fn prices(path: &Path) -> Source {
    Source::PriceCsv {
        path: path.to_owned(),
        options: price_csv::Options::default(),
    }
}

fn read_log(dir: &Path) -> Vec<Event> {
    LogReader::open(dir)
        .unwrap()
        .events(0)
        .map(|e| e.unwrap())
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// (time, asset) of every price in the log, in log order.
fn price_points(events: &[Event]) -> Vec<(i64, String)> {
    events
        .iter()
        .map(|e| match &e.payload {
            Payload::Price(p) => (e.time.0, p.asset.to_string()),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_later_ingest_of_an_earlier_range_is_merged_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let late = write(
        dir.path(),
        "late.csv",
        "symbol,timestamp,USD_price\nWETH,1700000100,2\nWETH,1700000300,4\n",
    );
    let early = write(
        dir.path(),
        "early.csv",
        "symbol,timestamp,USD_price\nWBTC,1700000000,1\nWBTC,1700000200,3\nWBTC,1700000400,5\n",
    );

    let first = ingest(&log, vec![prices(&late)], &options(false), &NoProgress).unwrap();
    assert_eq!(first.write, WriteMode::Appended { from_seq: 0 });
    let second = ingest(&log, vec![prices(&early)], &options(false), &NoProgress).unwrap();
    assert_eq!(second.write, WriteMode::Rewrote { existing: 2 });
    assert_eq!(second.log_events, 5);
    let events = read_log(&log);
    let times: Vec<i64> = events.iter().map(|e| e.time.0 - 1_700_000_000).collect();
    assert_eq!(times, [0, 100, 200, 300, 400]);
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );

    // The other ingest order gives the same order of events.
    let other = dir.path().join("other");
    ingest(&other, vec![prices(&early)], &options(false), &NoProgress).unwrap();
    let appended = ingest(&other, vec![prices(&late)], &options(false), &NoProgress).unwrap();
    assert_eq!(appended.write, WriteMode::Rewrote { existing: 3 });
    assert_eq!(price_points(&read_log(&other)), price_points(&events));

    // The catalog knows both sources, with the ids the events carry.
    let catalog = Catalog::open(&log).unwrap();
    let sources = catalog.sources().unwrap();
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[1].kind, "price-csv");
    assert!(events.iter().any(|e| e.source == 1) && events.iter().any(|e| e.source == 0));
}

#[test]
fn appends_when_everything_new_comes_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let a = write(
        dir.path(),
        "a.csv",
        "symbol,timestamp,USD_price\nWETH,1700000000,1\n",
    );
    let b = write(
        dir.path(),
        "b.csv",
        "symbol,timestamp,USD_price\nWETH,1700000001,1\n",
    );
    ingest(&log, vec![prices(&a)], &options(false), &NoProgress).unwrap();
    let summary = ingest(&log, vec![prices(&b)], &options(false), &NoProgress).unwrap();
    assert_eq!(summary.write, WriteMode::Appended { from_seq: 1 });
}

#[test]
fn reingesting_the_same_file_is_a_no_op_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let a = write(
        dir.path(),
        "a.csv",
        "symbol,timestamp,USD_price\nWETH,1700000000,1\n",
    );
    ingest(&log, vec![prices(&a)], &options(false), &NoProgress).unwrap();
    let copy = write(
        dir.path(),
        "copy-of-a.csv",
        "symbol,timestamp,USD_price\nWETH,1700000000,1\n",
    );
    let again = ingest(
        &log,
        vec![prices(&a), prices(&copy)],
        &options(false),
        &NoProgress,
    )
    .unwrap();
    assert!(matches!(
        again.sources[0].status,
        SourceStatus::AlreadyIngested { id: 0 }
    ));
    assert!(matches!(
        again.sources[1].status,
        SourceStatus::AlreadyIngested { id: 0 }
    ));
    assert_eq!(again.write, WriteMode::Nothing);
    assert!(
        again.to_string().contains("already ingested as source #0"),
        "{again}"
    );
    assert_eq!(read_log(&log).len(), 1);
}

#[test]
fn identical_duplicates_are_dropped_and_conflicts_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let a = write(
        dir.path(),
        "a.csv",
        "symbol,timestamp,USD_price\nWETH,1700000000,1\nWETH,1700000100,2\n",
    );
    let overlap = write(
        dir.path(),
        "b.csv",
        "symbol,timestamp,USD_price\nWETH,1700000100,2\nWETH,1700000200,3\n",
    );
    ingest(&log, vec![prices(&a)], &options(false), &NoProgress).unwrap();
    let summary = ingest(&log, vec![prices(&overlap)], &options(false), &NoProgress).unwrap();
    assert_eq!(summary.duplicates(), 1);
    assert_eq!(summary.total_written(), 1);
    assert_eq!(read_log(&log).len(), 3);

    let conflict = write(
        dir.path(),
        "c.csv",
        "symbol,timestamp,USD_price\nWETH,1700000200,3.5\n",
    );
    let error = ingest(&log, vec![prices(&conflict)], &options(false), &NoProgress).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, IngestError::Conflict { .. }), "{message}");
    assert!(
        message.contains("WETH/USD") && message.contains("b.csv") && message.contains("c.csv"),
        "{message}"
    );
    assert_eq!(read_log(&log).len(), 3, "nothing written");
    // The refused source is not registered: fixing it and retrying works.
    assert_eq!(Catalog::open(&log).unwrap().sources().unwrap().len(), 2);
}

fn klines(path: &Path) -> Source {
    Source::BinanceKlines {
        path: path.to_owned(),
        options: binance_klines::Options::for_asset(cascade_events::Id::name("WETH")),
    }
}

/// One archive kline row: a minute bar opening at `open` (unix seconds) closing at `close`.
fn kline(open: i64, close: &str) -> String {
    format!("{}000,1,1,1,{close},1,{}999,1,1,1,1,0\n", open, open + 59)
}

#[test]
fn usdt_klines_need_a_usdt_feed_and_their_midnight_overlap_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    // 23:58 .. 00:00 in the first day's file, 23:59 .. 00:01 in the next one's.
    let midnight = 1_652_400_000;
    let day_1 = write(
        dir.path(),
        "ETHUSDT-1m-2022-05-12.csv",
        &[(-120, "1950.5"), (-60, "1951.25"), (0, "1952")]
            .map(|(at, close)| kline(midnight + at, close))
            .concat(),
    );
    let day_2 = write(
        dir.path(),
        "ETHUSDT-1m-2022-05-13.csv",
        &[(-60, "1951.25"), (0, "1952"), (60, "1953.75")]
            .map(|(at, close)| kline(midnight + at, close))
            .concat(),
    );
    let error = ingest(&log, vec![klines(&day_1)], &options(false), &NoProgress).unwrap_err();
    assert!(
        error.to_string().contains("need a USDT/USD price feed"),
        "{error}"
    );
    assert!(!log.join("CURRENT").exists(), "nothing written");

    let usdt = write(
        dir.path(),
        "USDT_usd.csv",
        "symbol,timestamp,USD_price\nUSDT,1652396400,0.9951\n",
    );
    ingest(&log, vec![prices(&usdt)], &options(false), &NoProgress).unwrap();
    let summary = ingest(
        &log,
        vec![klines(&day_1), klines(&day_2)],
        &options(false),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(summary.duplicates(), 2, "{summary}");
    assert_eq!(summary.total_written(), 4);
    let bars: Vec<(i64, String)> = read_log(&log)
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Price(p) if p.quote == cascade_events::Id::name("USDT") => {
                Some((e.time.0 - midnight, p.price.to_string()))
            }
            _ => None,
        })
        .collect();
    let expected = [
        (-60, "1950.500000000000000000"),
        (0, "1951.250000000000000000"),
        (60, "1952.000000000000000000"),
        (120, "1953.750000000000000000"),
    ];
    assert_eq!(bars, expected.map(|(at, close)| (at, close.to_owned())));
}

#[test]
fn a_bad_row_writes_nothing_unless_skipped_to_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let good = write(
        dir.path(),
        "good.csv",
        "symbol,timestamp,USD_price\nWETH,1700000000,1\n",
    );
    let bad = write(
        dir.path(),
        "bad.csv",
        "symbol,timestamp,USD_price\nWBTC,1700000000,1\nWBTC,1700000100,-1\n",
    );
    let error = ingest(
        &log,
        vec![prices(&good), prices(&bad)],
        &options(false),
        &NoProgress,
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("bad.csv: line 3, column USD_price: \"-1\""),
        "{error}"
    );
    // A failed first ingest leaves no log directory behind (no empty catalog either), and an
    // empty directory given to it stays empty.
    assert!(
        !log.exists(),
        "{:?}",
        std::fs::read_dir(&log).map(|d| d.count())
    );
    let given = dir.path().join("given");
    std::fs::create_dir(&given).unwrap();
    ingest(&given, vec![prices(&bad)], &options(false), &NoProgress).unwrap_err();
    assert_eq!(std::fs::read_dir(&given).unwrap().count(), 0);

    let summary = ingest(
        &log,
        vec![prices(&good), prices(&bad)],
        &options(true),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(summary.rejected(), 1);
    assert_eq!(summary.total_written(), 2);
    let (path, rows) = summary.quarantine.clone().unwrap();
    assert_eq!(rows, 1);
    assert_eq!(path, dir.path().join("log.quarantine.jsonl"));
    let text = std::fs::read_to_string(path).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(line["kind"], "price-csv");
    assert_eq!(line["position"]["line"], 3);
    assert_eq!(line["column"], "USD_price");
    assert_eq!(line["value"], "-1");
    assert_eq!(line["raw"], "WBTC,1700000100,-1");
    assert!(summary.to_string().contains("rows rejected: 1"));
}

#[test]
fn chainlink_zero_round_fails_the_ingest_then_is_quarantined() {
    let Some(folder) = shared_data("chainlink") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let path = folder.join("eth-usd_0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419.csv");
    let source = || Source::ChainlinkRounds {
        path: path.clone(),
        options: chainlink_rounds::Options {
            table: FeedTable::built_in(),
            ..Default::default()
        },
    };
    let error = ingest(&log, vec![source()], &options(false), &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("line 11108") && error.contains("\"0\""),
        "{error}"
    );
    let quarantine = dir.path().join("q.jsonl");
    let skip = IngestOptions {
        quarantine: Some(quarantine.clone()),
        ..options(true)
    };
    let summary = ingest(&log, vec![source()], &skip, &NoProgress).unwrap();
    assert_eq!(summary.total_written(), 11_106);
    assert_eq!(summary.quarantine, Some((quarantine.clone(), 1)));
    assert!(
        std::fs::read_to_string(quarantine)
            .unwrap()
            .contains("110680464442257309696")
    );
}

#[test]
fn maker_ethb_log_stats() {
    let Some(folder) = shared_data("maker-ethb") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let summary = ingest(
        &log,
        vec![Source::MakerFlipside { folder }],
        &options(false),
        &NoProgress,
    )
    .unwrap();
    let stats = Catalog::open(&log).unwrap().stats().unwrap();
    let count = |kind| stats.by_kind.get(&kind).copied().unwrap_or(0);
    assert_eq!(count(EventKind::VaultOpen), 1_025);
    assert_eq!(count(EventKind::Deposit), 9_742);
    assert_eq!(count(EventKind::Withdraw), 9_020);
    assert_eq!(count(EventKind::Borrow), 9_641);
    assert_eq!(count(EventKind::Repay), 6_685);
    assert_eq!(count(EventKind::Liquidation), 499);
    assert_eq!(count(EventKind::ParamChange), 590);
    assert_eq!(stats.events, summary.total_written());
    assert!(
        stats
            .first_time
            .unwrap()
            .to_rfc3339()
            .starts_with("2020-10-19")
    );
    assert!(stats.last_time.unwrap().to_rfc3339().starts_with("2023-01"));
    assert_eq!(stats.out_of_order, 0);

    // Within a block, a vault's deposit comes before its mint, a repayment before a withdrawal.
    let events = read_log(&log);
    assert!(events.windows(2).all(|w| w[0].time <= w[1].time));
    let mut last_rank_in_block: Option<(u64, u8)> = None;
    for event in &events {
        let rank = cascade_ingest::source::kind_rank(event.kind());
        if let (Some(block), Some((previous_block, previous_rank))) =
            (event.block, last_rank_in_block)
            && block == previous_block
        {
            assert!(
                rank >= previous_rank,
                "block {block}: {:?} after rank {previous_rank}",
                event.kind()
            );
        }
        last_rank_in_block = event.block.map(|b| (b, rank));
    }
    assert!(summary.time_range().unwrap().0 >= Timestamp(1_603_065_600));
}

/// One `eth_getLogs` entry of an Aave v2 Withdraw from the main LendingPool.
fn withdraw_log(block: u64, log_index: u64, amount: u64) -> serde_json::Value {
    use alloy_sol_types::SolEvent;
    use cascade_events::{Address, U256};
    use cascade_ingest::eth_logs::abi::AaveV2;
    let event = AaveV2::Withdraw {
        reserve: Address::repeat_byte(0xee),
        user: Address::repeat_byte(0x11),
        to: Address::repeat_byte(0x11),
        amount: U256::from(amount),
    };
    let data = event.encode_log_data();
    serde_json::json!({
        "address": "0x7d2768dE32b0b80b7a3454c06BdAc94A69DDc7A9",
        "topics": data.topics().iter().map(|t| format!("{t:#x}")).collect::<Vec<_>>(),
        "data": format!("0x{}", alloy_primitives::hex::encode(&data.data)),
        "blockNumber": format!("{block:#x}"),
        "blockTimestamp": format!("{:#x}", 1_700_000_000 + block * 12),
        "transactionIndex": "0x0",
        "logIndex": format!("{log_index:#x}"),
    })
}

#[test]
fn overlapping_log_dumps_keep_each_log_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let dump = |name: &str, logs: &[serde_json::Value]| {
        let text: Vec<String> = logs.iter().map(|l| l.to_string()).collect();
        write(dir.path(), name, &text.join("\n"))
    };
    let source = |path: PathBuf| Source::EthLogs {
        path,
        options: cascade_ingest::eth_logs::Options::default(),
    };
    let first = dump("a.jsonl", &[withdraw_log(10, 0, 5), withdraw_log(11, 0, 6)]);
    let second = dump("b.jsonl", &[withdraw_log(11, 0, 6), withdraw_log(12, 3, 7)]);
    ingest(&log, vec![source(first)], &options(false), &NoProgress).unwrap();
    let summary = ingest(&log, vec![source(second)], &options(false), &NoProgress).unwrap();
    assert_eq!(summary.duplicates(), 1);
    assert_eq!(summary.write, WriteMode::Appended { from_seq: 2 });
    let blocks: Vec<Option<u64>> = read_log(&log).iter().map(|e| e.block).collect();
    assert_eq!(blocks, [Some(10), Some(11), Some(12)]);

    // The same log position with another amount is a conflict.
    let conflicting = dump("c.jsonl", &[withdraw_log(12, 3, 8)]);
    let error = ingest(
        &log,
        vec![source(conflicting)],
        &options(false),
        &NoProgress,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("chain 1 block 12 log 3"),
        "{error}"
    );
}

#[test]
fn catalog_unreadable_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let maker = || Source::MakerFlipside {
        folder: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/ingest/maker-flipside"),
    };
    ingest(dir.path(), vec![maker()], &options(false), &NoProgress).unwrap();
    // What a full disk left twice in issue 12: sled's files unreadable.
    let catalog = dir.path().join("catalog");
    for entry in std::fs::read_dir(&catalog).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, vec![0xa5; 4096]).unwrap();
        }
    }
    let again = ingest(dir.path(), vec![maker()], &options(false), &NoProgress).unwrap();
    assert!(
        again
            .recovery
            .iter()
            .any(|line| line.contains("catalog was unreadable")),
        "{:?}",
        again.recovery
    );
    assert!(
        matches!(
            again.sources[0].status,
            SourceStatus::AlreadyIngested { id: 0 }
        ),
        "{:?}",
        again.sources[0].status
    );
    assert_eq!(read_log(dir.path()).len(), 15);
    assert_eq!(
        Catalog::open(dir.path()).unwrap().sources().unwrap().len(),
        1
    );
}

/// A mapping of `kind,account,amount` rows at one second: deposits, liquidations (of the same
/// account) and parameter changes, so one file holds several classes of one instant.
fn actions_mapping(instant_order: &str) -> cascade_ingest::Mapping {
    let text = format!(
        r#"
{instant_order}
[time]
column = "t"
format = "unix_s"

[[event]]
kind = "deposit"
when = {{ column = "kind", equals = "deposit" }}
protocol = "aave-v2"
market = "main"
account = {{ column = "account", id = "name" }}
asset = "WETH"
amount = {{ column = "amount", unit = "base" }}

[[event]]
kind = "liquidation"
when = {{ column = "kind", equals = "liquidation" }}
protocol = "aave-v2"
market = "main"
account = {{ column = "account", id = "name" }}
collateral_asset = "WETH"
collateral_seized = {{ column = "amount", unit = "base" }}
debt_asset = "DAI"
debt_repaid = {{ value = "1", unit = "base" }}

[[event]]
kind = "param-change"
when = {{ column = "kind", equals = "param" }}
protocol = "aave-v2"
market = "WETH"
param = "liquidationThreshold"
value = {{ column = "amount", decimals = 4, scaled = true }}
"#
    );
    cascade_ingest::Mapping::from_toml(Path::new("actions.toml"), &text).unwrap()
}

fn instant_order_of(instant_order: &str) -> Vec<(String, u32)> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    // Rows in the order a careless export may list them: the liquidation first.
    let actions = write(
        dir.path(),
        "actions.csv",
        "t,kind,account,amount\n1700000000,liquidation,a,5\n1700000000,deposit,a,7\n1700000000,param,,8250\n",
    );
    let price = write(
        dir.path(),
        "prices.csv",
        "symbol,timestamp,price\nWETH,1700000000,2000\n",
    );
    let sources = vec![
        Source::Csv {
            path: actions,
            mapping: actions_mapping(instant_order),
        },
        prices(&price),
    ];
    ingest(&log, sources, &options(false), &NoProgress).unwrap();
    read_log(&log)
        .iter()
        .map(|e| (e.kind().name().to_owned(), e.source))
        .collect()
}

#[test]
fn one_instant_orders_parameters_prices_positions_then_liquidations_across_sources() {
    let kinds = |order: &[(String, u32)]| order.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    // Source 0 is the actions file, source 1 the price file, ingested in that order: the price
    // still comes after the parameter change and before the deposit.
    let order = instant_order_of("");
    assert_eq!(
        kinds(&order),
        ["param-change", "price", "deposit", "liquidation"],
        "{order:?}"
    );
    assert_eq!(order[1].1, 1);
    // `instant_order = "file"`: the file's rows as written, after the other source's price.
    let order = instant_order_of(r#"instant_order = "file""#);
    assert_eq!(
        kinds(&order),
        ["price", "liquidation", "deposit", "param-change"],
        "{order:?}"
    );
}
