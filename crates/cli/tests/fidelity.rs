//! The published fidelity of the Maker ETH-B replay (`docs/fidelity.md`), reproduced from the real
//! exports in `../shared/data` with the commands the page gives: a change to the engine that moves
//! a verdict shows up here. Skipped, with a notice, when the data folder is absent.
//!
//! The logs are built in the page's order: hourly prices (A), then the 10-minute crash-day bars
//! (B), then CoinGecko's USDT/USD and the Binance minute bars (C).

mod real_data;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cascade_engine::core::price_margin_bps;
use cascade_events::Id;
use real_data::{cascade, ethb_hourly_log, ingest, shared_data};
use serde_json::Value;

/// What one replay found: the verdict counts, (explained, judged) on the four crash days and on
/// the days the Binance minute files cover, and the unsafe episodes by cause.
struct Fidelity {
    verdicts: Value,
    crash_days: (usize, usize),
    minute_days: (usize, usize),
    episodes: BTreeMap<String, usize>,
}

fn replay(log: &Path, minute_days: &[String], extra: &[&str]) -> Fidelity {
    let mut args = vec!["replay", log.to_str().expect("UTF-8 temp path"), "--json"];
    args.extend_from_slice(extra);
    let run: Value = serde_json::from_slice(&cascade(&args)).expect("run JSON");
    let liquidations = run["liquidations"].as_array().expect("liquidations");
    let share = |days: &[&str]| {
        let on: Vec<&Value> = liquidations
            .iter()
            .filter(|l| {
                let time = l["time"].as_str().expect("time");
                days.iter().any(|day| time.starts_with(day))
            })
            .collect();
        let explained = on.iter().filter(|l| l["verdict"] == "explained").count();
        (explained, on.len())
    };
    let minute: Vec<&str> = minute_days.iter().map(String::as_str).collect();
    let mut episodes = BTreeMap::new();
    for episode in run["unsafe_unliquidated"].as_array().expect("episodes") {
        let cause = episode["evidence"]["cause"]
            .as_str()
            .expect("every Maker episode has a cause");
        *episodes.entry(cause.to_owned()).or_default() += 1;
    }
    // Without `--json` or `--out` the replay builds only what its summary prints, keeping no
    // liquidation records: its verdicts and episode causes must be the full run's.
    let mut summary_args = vec!["replay", log.to_str().expect("UTF-8 temp path")];
    summary_args.extend_from_slice(extra);
    let summary = String::from_utf8(cascade(&summary_args)).expect("UTF-8 summary");
    let verdicts: Vec<String> = run["totals"]["verdicts"]
        .as_object()
        .expect("verdicts")
        .iter()
        .map(|(verdict, count)| format!("{verdict} {count}"))
        .collect();
    assert!(
        summary.contains(&format!("verdicts: {} (", verdicts.join(", "))),
        "{summary}"
    );
    let printed_causes: BTreeMap<String, usize> = summary
        .split_once("(by cause: ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map_or("", |(list, _)| list)
        .split(", ")
        .filter(|group| !group.is_empty())
        .map(|group| {
            let (cause, count) = group.rsplit_once(' ').expect("cause and count");
            (cause.to_owned(), count.parse().expect("episode count"))
        })
        .collect();
    assert_eq!(printed_causes, episodes, "{summary}");
    Fidelity {
        verdicts: run["totals"]["verdicts"].clone(),
        crash_days: share(&["2021-05-19", "2022-05-12", "2022-06-13", "2022-11-09"]),
        minute_days: share(&minute),
        episodes,
    }
}

/// `(cause, count)` pairs as the map [`Fidelity::episodes`] holds them.
fn causes(counts: &[(&str, usize)]) -> BTreeMap<String, usize> {
    counts
        .iter()
        .map(|(cause, count)| ((*cause).to_owned(), *count))
        .collect()
}

/// The files of a folder with the given extension, sorted.
fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

#[test]
fn maker_eth_b_verdicts_are_the_published_ones() {
    let Some(data) = shared_data() else {
        return;
    };
    let minute_files = files(&data.join("prices/binance-1m"), "csv");
    // `ETHUSDT-1m-2022-05-12.csv`: the day is the name's last ten characters.
    let minute_days: Vec<String> = minute_files
        .iter()
        .map(|path| {
            let stem = path.file_stem().expect("file name").to_string_lossy();
            stem[stem.len() - 10..].to_owned()
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let log = ethb_hourly_log(&data, dir.path());
    let hourly = replay(&log, &minute_days, &[]);
    assert_eq!(
        hourly.verdicts,
        serde_json::json!({"amount-mismatch": 3, "explained": 87, "no-price": 3,
            "not-liquidatable": 406, "unknown-account": 0})
    );
    assert_eq!(hourly.crash_days, (16, 19), "crash days, hourly prices");
    // The unsafe episodes by cause (docs/fidelity.md, "The other way round"): the price margin
    // is each feed's measured error (`price_margin_bps`), 3.17% for these hourly prints.
    assert_eq!(
        hourly.episodes,
        causes(&[
            ("price-evidence", 123),
            ("rebuilt-state-disagrees", 35),
            ("unexplained", 24)
        ])
    );

    let bars = files(&data.join("prices/berkeley-stablesims/feeds/eth"), "json");
    ingest(&log, "ohlcv-json", &bars, &["--asset", "WETH"]);
    let with_bars = replay(&log, &minute_days, &[]);
    assert_eq!(
        with_bars.verdicts,
        serde_json::json!({"amount-mismatch": 3, "explained": 100, "no-price": 3,
            "not-liquidatable": 393, "unknown-account": 0})
    );
    assert_eq!(
        with_bars.crash_days,
        (17, 19),
        "crash days, with the 10-minute bars"
    );
    assert_eq!(
        with_bars.episodes,
        causes(&[
            ("price-evidence", 125),
            ("rebuilt-state-disagrees", 36),
            ("unexplained", 28)
        ])
    );

    ingest(
        &log,
        "price-csv",
        &[data.join("prices/coingecko-hourly/USDT_usd.csv")],
        &[],
    );
    ingest(&log, "binance-klines", &minute_files, &["--asset", "WETH"]);
    let minute = replay(&log, &minute_days, &[]);
    assert_eq!(
        minute.verdicts,
        serde_json::json!({"amount-mismatch": 4, "explained": 476, "no-price": 3,
            "not-liquidatable": 16, "unknown-account": 0})
    );
    assert_eq!(minute.crash_days, (17, 19), "crash days, with minute bars");
    assert_eq!(minute.minute_days, (468, 486), "days the minute bars cover");
    assert_eq!(
        minute.episodes,
        causes(&[
            ("price-evidence", 138),
            ("rebuilt-state-disagrees", 39),
            ("unexplained", 28)
        ])
    );

    // Without the Median model: the OSM reads the interpolated market at every poke.
    let interpolated = replay(&log, &minute_days, &["--osm-sample", "interpolate"]);
    assert_eq!(
        interpolated.verdicts,
        serde_json::json!({"amount-mismatch": 3, "explained": 465, "no-price": 3,
            "not-liquidatable": 28, "unknown-account": 0})
    );
    assert_eq!(interpolated.crash_days, (17, 19));
    assert_eq!(interpolated.minute_days, (457, 486));
    assert_eq!(
        interpolated.episodes,
        causes(&[
            ("price-evidence", 143),
            ("rebuilt-state-disagrees", 39),
            ("unexplained", 30)
        ])
    );
}

/// The minute bars' closes by the second they are seen at (the first whole second after the
/// bar's close: `open_time` + 60 s, as the `binance-klines` adapter stamps them).
fn minute_closes(files: &[PathBuf]) -> BTreeMap<i64, f64> {
    let mut closes = BTreeMap::new();
    for path in files {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_path(path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        for row in reader.records() {
            let row = row.expect("CSV row");
            // Header rows (two spellings) start with a name, not a time.
            let Ok(open) = row[0].parse::<i64>() else {
                continue;
            };
            let open_ms = if open >= 100_000_000_000_000 {
                open / 1000
            } else {
                open
            };
            closes.insert(open_ms / 1000 + 60, row[4].parse().expect("close"));
        }
    }
    closes
}

/// A CoinGecko file's `(unix second, USD price)` rows, in time order.
fn coingecko(path: &Path) -> Vec<(i64, f64)> {
    let mut reader = csv::Reader::from_path(path).expect("CoinGecko CSV");
    let mut rows: Vec<(i64, f64)> = reader
        .records()
        .map(|row| {
            let row = row.expect("CSV row");
            (
                row[1].parse::<i64>().expect("ms timestamp") / 1000,
                row[2].parse().expect("price"),
            )
        })
        .collect();
    rows.sort_by_key(|(time, _)| *time);
    rows
}

/// The 95th percentile of `values` (the value at index `floor(n * 0.95)` once sorted), in basis
/// points rounded down.
fn p95_bps(mut values: Vec<f64>) -> u64 {
    values.sort_by(f64::total_cmp);
    (values[values.len() * 95 / 100] * 10_000.0) as u64
}

/// The price error each feed kind is allowed before an unsafe episode is called `unexplained`
/// is the feed's measured error (docs/fidelity.md, "How far each feed is off"), measured here
/// from the files: the hourly prints interpolated to each whole hour the minute bars cover,
/// against the minute close there, and CoinGecko's USDT/USD hour-to-hour move, which the minute
/// bars' conversion carries; each 95th percentile plus the Median's 1% spread.
#[test]
fn the_price_margins_are_the_feeds_measured_errors() {
    let Some(data) = shared_data() else {
        return;
    };
    let closes = minute_closes(&files(&data.join("prices/binance-1m"), "csv"));
    let prints = coingecko(&data.join("prices/coingecko-hourly/WETH_usd.csv"));
    let mut hourly_errors = Vec::new();
    for (&time, &market) in closes.iter().filter(|(time, _)| *time % 3600 == 0) {
        let after = prints.partition_point(|(print, _)| *print <= time);
        let (Some(&(t0, p0)), Some(&(t1, p1))) = (
            after.checked_sub(1).and_then(|before| prints.get(before)),
            prints.get(after),
        ) else {
            continue;
        };
        if t1 - t0 > 7200 {
            continue;
        }
        let estimate = p0 + (p1 - p0) * (time - t0) as f64 / (t1 - t0) as f64;
        hourly_errors.push((estimate / market - 1.0).abs());
    }
    assert_eq!(hourly_errors.len(), 556, "whole hours both feeds cover");
    let hourly = p95_bps(hourly_errors);
    assert_eq!(hourly, 217);

    let usdt = coingecko(&data.join("prices/coingecko-hourly/USDT_usd.csv"));
    let moves: Vec<f64> = usdt
        .windows(2)
        .filter(|pair| pair[1].0 - pair[0].0 <= 7200)
        .map(|pair| (pair[1].1 / pair[0].1 - 1.0).abs())
        .collect();
    assert_eq!(moves.len(), 18_827, "hour-to-hour USDT/USD moves");
    let conversion = p95_bps(moves);
    assert_eq!(conversion, 61);

    let margin = |feed: &str| price_margin_bps(Some(&Id::name(feed)));
    assert_eq!(margin("price-csv"), 100 + hourly);
    assert_eq!(margin("binance-klines"), 100 + conversion);
    assert_eq!(margin("ohlcv-json"), 100);
}

/// The Aave v2 subgraph export (`docs/fidelity.md`, Aave v2): the verdicts with the export's own
/// `tokens.csv` snapshot, and with the sourced parameter history `fixtures/params/aave-v2-main.toml`.
#[test]
fn aave_v2_verdicts_with_and_without_the_parameter_history() {
    let Some(data) = shared_data() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("aave");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["ingest", "--log", log.to_str().expect("UTF-8 temp path")])
        .args(["--source", "aave-subgraph-liquidations", "--skip-invalid"])
        .arg(data.join("aave-v2-liquidations/liquidations.csv"))
        .output()
        .expect("runs cascade");
    // Exit 1: the one row whose debt reserve (UST) tokens.csv lacks goes to quarantine.
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let totals = |extra: &[&str]| {
        let mut args = vec!["replay", log.to_str().expect("UTF-8 temp path"), "--json"];
        args.extend_from_slice(extra);
        let run: Value = serde_json::from_slice(&cascade(&args)).expect("run JSON");
        run["totals"].clone()
    };
    // No row's account has a position in the log: every one is `unknown-account`, and the
    // seize formula, checked on the row's own amounts, prices and bonus, is the evidence.
    let unknown = serde_json::json!({"amount-mismatch": 0, "explained": 0, "no-price": 0,
        "not-liquidatable": 0, "unknown-account": 11488});
    let snapshot = totals(&[]);
    assert_eq!(snapshot["verdicts"], unknown);
    assert_eq!(
        snapshot["seize_checks"],
        serde_json::json!({"consistent": 7408, "mismatch": 4080, "no-price": 0})
    );
    assert_eq!(snapshot["seize_consistent_percent"], "64.48");
    assert_eq!(snapshot["explained_percent"], "0.00");
    assert_eq!(snapshot["accounts_liquidated"], 3213);
    let history =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/params/aave-v2-main.toml");
    let with_history = totals(&["--params", history.to_str().expect("UTF-8 path")]);
    assert_eq!(with_history["verdicts"], unknown);
    assert_eq!(
        with_history["seize_checks"],
        serde_json::json!({"consistent": 10156, "mismatch": 1332, "no-price": 0})
    );
    assert_eq!(with_history["seize_consistent_percent"], "88.41");
}
