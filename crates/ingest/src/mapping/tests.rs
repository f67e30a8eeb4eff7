//! Unit tests of the mapping features beyond one column per field: lookups, conditions, row
//! counts, duplicates, the plausibility check and `shift`, with the errors each can raise.

use std::path::{Path, PathBuf};

use cascade_events::{Payload, Timestamp};

use super::Mapping;
use crate::batch::{SourceBatch, test_context as context};
use crate::error::{IngestError, Position, RowError};

/// The row error `result` must be.
fn row_error(result: Result<SourceBatch, IngestError>) -> Box<RowError> {
    match result {
        Err(IngestError::Row(error)) => error,
        other => panic!("expected a row error, got {other:?}"),
    }
}

/// A folder with `data.csv` and `tokens.csv`.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(data: &str, tokens: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data.csv"), data).unwrap();
        std::fs::write(dir.path().join("tokens.csv"), tokens).unwrap();
        Files { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data.csv")
    }

    fn read(&self, mapping: &str, skip_invalid: bool) -> Result<SourceBatch, IngestError> {
        let mapping = Mapping::from_toml(Path::new("test.toml"), mapping)?;
        crate::mapped_csv::read(&[self.data()], &mapping, &context(skip_invalid))
    }
}

const TOKENS: &str = "symbol,decimals,bonus\nWETH,18,10500\nUSDC,6,10450\nDAI,18,\n";

/// Deposits whose amount is in whole tokens with the token's decimals from `tokens.csv`.
const DEPOSITS: &str = r#"
[time]
column = "t"
format = "unix_s"

[[lookup]]
name = "tokens"
path = "tokens.csv"
key = "symbol"

[[event]]
kind = "deposit"
protocol = "aave-v2"
market = "main"
account = { column = "user", id = "name" }
asset = { column = "token", id = "name" }
amount = { column = "amount", decimals = { lookup = "tokens", key = "token", column = "decimals" } }
"#;

fn amounts(batch: &SourceBatch) -> Vec<String> {
    batch
        .events
        .iter()
        .filter_map(|e| match e.payload {
            Payload::Deposit(p) => Some(p.amount.0.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn decimals_come_from_the_lookup_row_of_the_key() {
    let files = Files::new(
        "t,user,token,amount\n1620000000,a,WETH,1.5\n1620000001,b,USDC,1.5\n1620000002,c, USDC ,2\n",
        TOKENS,
    );
    let batch = files.read(DEPOSITS, false).unwrap();
    assert_eq!(
        amounts(&batch),
        ["1500000000000000000", "1500000", "2000000"]
    );
    // The lookup file counts as read and as an input of the mapping.
    assert_eq!(batch.report.rows_read, 3 + 3);
    assert!(
        batch
            .report
            .files
            .contains(&files.dir.path().join("tokens.csv"))
    );
    let mapping = Mapping::from_toml(Path::new("m.toml"), DEPOSITS).unwrap();
    assert_eq!(
        mapping.lookup_files(&files.data()),
        [files.dir.path().join("tokens.csv")]
    );
}

#[test]
fn a_key_missing_from_the_lookup_names_file_line_column_and_value() {
    let files = Files::new(
        "t,user,token,amount\n1620000000,a,WETH,1\n1620000001,b,UST,1\n",
        TOKENS,
    );
    let error = row_error(files.read(DEPOSITS, false));
    assert_eq!(error.file, files.data());
    assert_eq!(error.position, Position::Line(3));
    assert_eq!(error.column, "token");
    assert_eq!(error.value, "UST");
    assert!(
        error.reason.contains("not a key of lookup `tokens`"),
        "{error}"
    );
    // With --skip-invalid the row is quarantined and nothing else is lost.
    let batch = files.read(DEPOSITS, true).unwrap();
    assert_eq!(amounts(&batch), ["1000000000000000000"]);
    assert_eq!(batch.report.rejected.len(), 1);
}

#[test]
fn a_bad_lookup_cell_names_the_lookup_file_and_the_joining_row() {
    let files = Files::new(
        "t,user,token,amount\n1620000000,a,WETH,1\n",
        "symbol,decimals\nWETH,eighteen\n",
    );
    let error = row_error(files.read(DEPOSITS, false));
    assert_eq!(error.file, files.dir.path().join("tokens.csv"));
    assert_eq!(error.position, Position::Line(2));
    assert_eq!(error.column, "decimals");
    assert_eq!(error.value, "eighteen");
    assert!(
        error.reason.contains("line 2, column token = \"WETH\""),
        "{}",
        error.reason
    );
}

#[test]
fn a_key_listed_twice_or_blank_is_a_bad_lookup_row() {
    let files = Files::new(
        "t,user,token,amount\n1620000000,a,WETH,1\n",
        "symbol,decimals\nWETH,18\nWETH,6\n",
    );
    let error = row_error(files.read(DEPOSITS, false));
    assert_eq!(error.file, files.dir.path().join("tokens.csv"));
    assert_eq!(error.position, Position::Line(3));
    assert!(error.reason.contains("first at line 2"), "{}", error.reason);
    let files = Files::new(
        "t,user,token,amount\n1620000000,a,WETH,1\n",
        "symbol,decimals\n ,18\nWETH,18\n",
    );
    let batch = files.read(DEPOSITS, true).unwrap();
    assert_eq!(batch.report.rejected.len(), 1);
    assert!(batch.report.rejected[0].reason.contains("blank key"));
    assert_eq!(amounts(&batch), ["1000000000000000000"]);
}

#[test]
fn lookup_files_and_columns_must_exist() {
    let files = Files::new("t,user,token,amount\n1620000000,a,WETH,1\n", TOKENS);
    std::fs::remove_file(files.dir.path().join("tokens.csv")).unwrap();
    assert!(matches!(
        files.read(DEPOSITS, false),
        Err(IngestError::Io { path, .. }) if path.ends_with("tokens.csv")
    ));
    std::fs::write(
        files.dir.path().join("tokens.csv"),
        "symbol,precision\nWETH,18\n",
    )
    .unwrap();
    assert!(matches!(
        files.read(DEPOSITS, false),
        Err(IngestError::MissingColumn { file, column, .. })
            if file.ends_with("tokens.csv") && column == "decimals"
    ));
    // The path can be replaced (the command line's --lookup NAME=FILE).
    let other = files.dir.path().join("other.csv");
    std::fs::write(&other, TOKENS).unwrap();
    let mut mapping = Mapping::from_toml(Path::new("m.toml"), DEPOSITS).unwrap();
    mapping.set_lookup_path("tokens", &other).unwrap();
    assert_eq!(
        mapping.lookup_files(&files.data()),
        std::slice::from_ref(&other)
    );
    let batch = crate::mapped_csv::read(&[files.data()], &mapping, &context(false)).unwrap();
    assert_eq!(amounts(&batch), ["1000000000000000000"]);
    assert!(mapping.set_lookup_path("prices", &other).is_err());
}

#[test]
fn mapping_errors_for_lookups_are_found_when_it_is_loaded() {
    let cases = [
        (
            DEPOSITS.replace("lookup = \"tokens\", key", "lookup = \"reserves\", key"),
            "no [[lookup]] table named \"reserves\"",
        ),
        (
            DEPOSITS.replace(
                "amount = { column = \"amount\", decimals = { lookup = \"tokens\", key = \"token\", column = \"decimals\" } }",
                "amount = { column = \"amount\", decimals = 18, lookup = \"tokens\" }",
            ),
            "`lookup` and `key` go together",
        ),
        (
            DEPOSITS.replace(
                "amount = { column = \"amount\", decimals = { lookup = \"tokens\", key = \"token\", column = \"decimals\" } }",
                "amount = { value = \"1\", decimals = { lookup = \"tokens\", key = \"token\", column = \"decimals\" } }",
            ),
            "a constant cannot take its decimals from a lookup",
        ),
        (
            format!("{DEPOSITS}\n[[lookup]]\nname = \"tokens\"\npath = \"b.csv\"\nkey = \"k\"\n"),
            "two [[lookup]] tables named \"tokens\"",
        ),
    ];
    for (text, message) in cases {
        let error = Mapping::from_toml(Path::new("m.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(error.contains(message), "{error}");
    }
}

/// Reserve parameters from the lookup; a field read from the lookup row.
const PARAMS: &str = r#"
[time]
column = "t"
format = "unix_s"

[[lookup]]
name = "tokens"
path = "tokens.csv"
key = "symbol"

[[lookup.event]]
kind = "param-change"
protocol = "aave-v2"
market = { column = "symbol", id = "name" }
param = "decimals"
value = { column = "decimals", decimals = 0 }

[[lookup.event]]
kind = "param-change"
when = "bonus"
count = "reserves with a bonus"
protocol = "aave-v2"
market = { column = "symbol", id = "name" }
param = "liquidationBonus"
value = { column = "bonus", decimals = 4, scaled = true }

[[event]]
kind = "param-change"
protocol = "aave-v2"
market = { column = "token", id = "name" }
param = "bonusSeen"
value = { lookup = "tokens", key = "token", column = "bonus", decimals = 4, scaled = true }
"#;

#[test]
fn lookup_events_come_first_in_key_order_at_the_earliest_row_time() {
    let files = Files::new("t,token\n1620000005,USDC\n1620000001,WETH\n", TOKENS);
    let batch = files.read(PARAMS, false).unwrap();
    let events: Vec<(i64, String)> = batch
        .events
        .iter()
        .map(|e| match e.payload {
            Payload::ParamChange(p) => (e.time.0, format!("{} {} {}", p.market, p.param, p.value)),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        events,
        [
            (1620000001, "DAI decimals 18".to_owned()),
            (1620000001, "USDC decimals 6".to_owned()),
            (1620000001, "USDC liquidationBonus 1.0450".to_owned()),
            (1620000001, "WETH decimals 18".to_owned()),
            (1620000001, "WETH liquidationBonus 1.0500".to_owned()),
            (1620000005, "USDC bonusSeen 1.0450".to_owned()),
            (1620000001, "WETH bonusSeen 1.0500".to_owned()),
        ]
    );
    assert_eq!(batch.report.counters["reserves with a bonus"], 2);
    // A file that yields no event yields no lookup events either (they have no time).
    let files = Files::new("t,token\n", TOKENS);
    assert!(files.read(PARAMS, false).unwrap().events.is_empty());
}

#[test]
fn a_blank_lookup_cell_is_an_error_at_the_lookup_file() {
    let files = Files::new("t,token\n1620000005,DAI\n", TOKENS);
    let error = row_error(files.read(PARAMS, false));
    assert_eq!(error.file, files.dir.path().join("tokens.csv"));
    assert_eq!(error.column, "bonus");
    assert_eq!(error.position, Position::Line(4));
    assert_eq!(error.value, "");
}

/// Two branches chosen by `unless`/`when` on the `bot` column, counted, with a duplicate rule.
const BRANCHES: &str = r#"
[time]
column = "t"
format = "unix_s"

[duplicates]
key = ["t", "user", "bot", "amount"]
similar = ["t", "user", "amount"]

[[event]]
kind = "price"
when = "price"
unless = "bot"
asset = "WETH"
quote = "ETH"
price = { column = "price", decimals = 27, shift = 18 }
feed = "subgraph"

[[event]]
kind = "price"
when = ["price", "bot"]
asset = "WETH"
quote = "ETH"
price = { column = "price", decimals = 27 }
feed = "subgraph"

[[event]]
kind = "repay"
unless = "bot"
count = "raw rows"
protocol = "aave-v2"
market = "main"
account = { column = "user", id = "name" }
asset = "WETH"
amount = { column = "amount", unit = "base" }

[[event]]
kind = "repay"
when = "bot"
count = "token rows"
protocol = "aave-v2"
market = "main"
account = { column = "user", id = "name" }
asset = "WETH"
amount = { column = "amount", unit = "tokens", decimals = 18 }
"#;

#[test]
fn when_and_unless_choose_the_unit_rule_and_rows_are_counted_per_branch() {
    let files = Files::new(
        "t,user,bot,amount,price\n\
         1620000000,a,,1500000000000000000,2000000000000000000.5\n\
         1620000001,b,x,1.5,2.000000000000000000000000001\n\
         1620000002,c,,7,\n",
        "",
    );
    let batch = files.read(BRANCHES, false).unwrap();
    let got: Vec<String> = batch
        .events
        .iter()
        .map(|e| match e.payload {
            Payload::Price(p) => format!("price {}", p.price),
            Payload::Repay(p) => format!("repay {}", p.amount.0),
            Payload::ParamChange(p) => format!("{} {}", p.param, p.value),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        got,
        [
            "price 2.000000000000000000500000000",
            "repay 1500000000000000000",
            // The token branch reads WETH with 18 decimals: the Aave model learns them.
            "decimals 18",
            "price 2.000000000000000000000000001",
            "repay 1500000000000000000",
            "repay 7",
        ]
    );
    assert_eq!(batch.report.counters["raw rows"], 2);
    assert_eq!(batch.report.counters["token rows"], 1);
}

#[test]
fn shift_keeps_every_digit_and_refuses_more() {
    let files = Files::new(
        "t,user,bot,amount,price\n1620000000,a,,1,1.0000000001\n",
        "",
    );
    let error = row_error(files.read(BRANCHES, false));
    assert_eq!(error.column, "price");
    assert!(
        error.reason.contains("more than 9 decimals"),
        "{}",
        error.reason
    );
    for (option, message) in [
        (
            "decimals = 27, shift = 28",
            "`shift = 28` is more than `decimals = 27`",
        ),
        ("shift = 18", "`shift` needs `decimals`"),
        (
            "decimals = 27, shift = 18, scaled = true",
            "either `scaled` or `shift`",
        ),
    ] {
        let text = BRANCHES.replace("decimals = 27, shift = 18", option);
        let error = Mapping::from_toml(Path::new("m.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(error.contains(message), "{option}: {error}");
    }
    let text = BRANCHES.replace("unless = \"bot\"\ncount", "unless = \"robot\"\ncount");
    let files = Files::new("t,user,bot,amount,price\n1620000000,a,,1,\n", "");
    assert!(matches!(
        files.read(&text, false),
        Err(IngestError::MissingColumn { column, .. }) if column == "robot"
    ));
}

#[test]
fn duplicates_are_dropped_counted_and_flagged() {
    let files = Files::new(
        "t,user,bot,amount,price\n\
         1620000000,a,x,1.5,2\n\
         1620000000,a,x,1.5,2\n\
         1620000000,a,x,1.5,3\n\
         1620000000,a,y,1.5,2\n\
         1620000000,a,,bad,2\n",
        "",
    );
    let batch = files.read(BRANCHES, true).unwrap();
    // Rows 2 and 5 kept (another bot: a second repayment); 3 and 4 dropped; 6 rejected. Four
    // events, and WETH's decimals before the first.
    assert_eq!(batch.events.len(), 5);
    let report = &batch.report;
    assert_eq!(report.duplicates, 2);
    assert_eq!(report.counters[super::rules::IDENTICAL], 1);
    assert_eq!(report.counters[super::rules::DIFFERING], 1);
    assert_eq!(report.counters[super::rules::SIMILAR], 1);
    assert_eq!(report.counters["token rows"], 2);
    assert_eq!(report.flagged.len(), 2);
    assert!(
        report.flagged[0].contains("line 4: same key as line 2"),
        "{:?}",
        report.flagged
    );
    assert!(report.flagged[1].contains("line 5"), "{:?}", report.flagged);
    assert_eq!(report.rejected.len(), 1);
    let empty = BRANCHES.replace("key = [\"t\", \"user\", \"bot\", \"amount\"]", "key = []");
    let error = Mapping::from_toml(Path::new("m.toml"), &empty)
        .unwrap_err()
        .to_string();
    assert!(error.contains("at least one `key` column"), "{error}");
}

/// A liquidation checked against its prices.
const CHECKED: &str = r#"
[time]
column = "t"
format = "unix_s"

[[event]]
kind = "liquidation"
protocol = "aave-v2"
market = "main"
account = { column = "user", id = "name" }
collateral_asset = "WETH"
collateral_seized = { column = "seized", unit = "base", decimals = 18 }
debt_asset = "USDC"
debt_repaid = { column = "repaid", unit = "base", decimals = 6 }
plausible_within = 20
collateral_price = { column = "pc", decimals = 18, optional = true }
debt_price = { column = "pd", decimals = 18, optional = true }
"#;

#[test]
fn an_implausible_liquidation_is_rejected_at_its_collateral() {
    let files = Files::new(
        "t,user,seized,repaid,pc,pd\n\
         1620000000,a,1050000000000000000,2000000000,1,0.0005\n\
         1620000001,b,1,2000000000,1,0.0005\n\
         1620000002,c,1,2000000000,,0.0005\n",
        "",
    );
    let error = row_error(files.read(CHECKED, false));
    assert_eq!(error.position, Position::Line(3));
    assert_eq!(error.column, "seized");
    assert!(
        error.reason.contains("more than 20x apart"),
        "{}",
        error.reason
    );
    let batch = files.read(CHECKED, true).unwrap();
    // Two liquidations, and the decimals of WETH and USDC before the first.
    assert_eq!(batch.events.len(), 4);
    assert_eq!(batch.report.counters[super::rules::CHECKED], 2);
    assert_eq!(batch.report.counters[super::rules::UNCHECKED], 1);
    assert!(batch.events.iter().all(|e| e.time >= Timestamp(1620000000)));
    for (from, to, message) in [
        (
            "plausible_within = 20\n",
            "",
            "prices are only read for `plausible_within`",
        ),
        (
            "debt_price = { column = \"pd\", decimals = 18, optional = true }\n",
            "",
            "needs `collateral_price` and `debt_price`",
        ),
        (
            "unit = \"base\", decimals = 6",
            "unit = \"base\"",
            "needs `decimals` on `collateral_seized` and `debt_repaid`",
        ),
        (
            "plausible_within = 20",
            "plausible_within = 0",
            "at least 1",
        ),
        (
            "debt_repaid = { column = \"repaid\", unit = \"base\", decimals = 6 }",
            "debt_repaid = { unknown = true }",
            "cannot value a side declared unknown",
        ),
        (
            "unit = \"base\", decimals = 18 }",
            "unit = \"base\", decimals = 8, exchange_rate = { column = \"rate\" } }",
            "cannot value an amount converted with `exchange_rate`",
        ),
    ] {
        let text = CHECKED.replace(from, to);
        let error = Mapping::from_toml(Path::new("m.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(error.contains(message), "{message}: {error}");
    }
}

#[test]
fn per_row_prices_are_declared_by_the_mapping() {
    let series = Mapping::from_toml(Path::new("m.toml"), CHECKED).unwrap();
    assert!(series.prices_are_series());
    let rows = Mapping::from_toml(
        Path::new("m.toml"),
        &format!("prices = \"per-row\"\n{CHECKED}"),
    )
    .unwrap();
    assert!(!rows.prices_are_series());
    assert!(
        Mapping::from_toml(
            Path::new("m.toml"),
            &format!("prices = \"rows\"\n{CHECKED}")
        )
        .is_err()
    );
}

#[test]
fn the_lookup_file_is_part_of_the_source_content_hash() {
    let files = Files::new("t,user,token,amount\n1620000000,a,WETH,1\n", TOKENS);
    let source = || crate::stage::Source::Csv {
        path: files.data(),
        mapping: Mapping::from_toml(Path::new("m.toml"), DEPOSITS).unwrap(),
    };
    let before = source().content_hash().unwrap();
    assert_eq!(source().content_hash().unwrap(), before);
    std::fs::write(
        files.dir.path().join("tokens.csv"),
        TOKENS.replace("18", "8"),
    )
    .unwrap();
    assert_ne!(source().content_hash().unwrap(), before);
}

/// One sheet with Aave v2 and Compound v2 liquidations, told apart by `version`: minute times
/// in UTC+02:00, borrowers with and without `0x`, Compound's seized amounts in cTokens.
const TWO_PROTOCOLS: &str = r#"
[time]
column = "when"
format = "%d/%m/%y %H:%M"
timezone = "+02:00"

[[event]]
kind = "liquidation"
when = { column = "version", equals = ["V2", "v2"] }
count = "aave"
protocol = "aave-v2"
market = "main"
account = { column = "borrower", id = "address" }
collateral_asset = { column = "collateral", id = "name" }
collateral_seized = { column = "seized", unit = "base" }
debt_asset = { column = "debt", id = "name" }
debt_repaid = { column = "repaid", unit = "base" }

[[event]]
kind = "liquidation"
unless = { column = "version", equals = ["V2", "v2"] }
count = "compound"
protocol = { column = "version" }
market = { value = "comptroller" }
account = { column = "borrower", id = "address" }
collateral_asset = { column = "collateral", id = "name" }
collateral_seized = { column = "seized", unit = "base", exchange_rate = { column = "rate" } }
debt_asset = { column = "debt", id = "name" }
debt_repaid = { column = "repaid", unit = "base" }
"#;

#[test]
fn one_sheet_of_two_protocols_with_ctokens_zones_and_bare_addresses() {
    let files = Files::new(
        "when,version,borrower,collateral,seized,rate,debt,repaid\n\
         19/05/21 14:07,V2,0xEFB52B3C270C20BF180CA51393DAC604C4851580,WETH,1000,,DAI,900\n\
         19/05/21 14:07,compound-v2,efb52b3c270c20bf180ca51393dac604c4851580,ETH,5000000000,200335783821833263449767284,DAI,2000\n\
         19/05/21 14:08,compound-v2,efb52b3c270c20bf180ca51393dac604c4851580,ETH,123456789,0xa5b6c09a310c10cac1fd74,DAI,3\n",
        TOKENS,
    );
    let batch = files.read(TWO_PROTOCOLS, false).unwrap();
    let rows: Vec<_> = batch
        .events
        .iter()
        .map(|e| match &e.payload {
            Payload::Liquidation(l) => (
                e.time.0,
                l.protocol.name(),
                l.account.to_string(),
                l.collateral_seized.0.to_string(),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    let borrower = "0xefb52b3c270c20bf180ca51393dac604c4851580";
    // 14:07 at +02:00 is 12:07:00 UTC (1621426020). 5,000,000,000 cTokens (50 cETH) at the
    // mantissa 200335783821833263449767284 are 5e9 * 2.00335...e26 / 1e18 =
    // 1,001,678,919,109,166,317 wei; the second row's hex mantissa is the same rate, and
    // 123,456,789 cTokens give 24,732,812,592,441,682.7988... wei, rounded down.
    assert_eq!(
        rows,
        [
            (
                1_621_426_020,
                "aave-v2",
                borrower.to_owned(),
                "1000".to_owned()
            ),
            (
                1_621_426_020,
                "compound-v2",
                borrower.to_owned(),
                "1001678919109166317".to_owned()
            ),
            (
                1_621_426_080,
                "compound-v2",
                borrower.to_owned(),
                "24732812592441682".to_owned()
            ),
        ]
    );
    assert_eq!(batch.report.counters.get("aave"), Some(&1));
    assert_eq!(batch.report.counters.get("compound"), Some(&2));
}

#[test]
fn constant_times_protocols_and_rates_are_checked_when_loaded() {
    let load = |text: &str| Mapping::from_toml(Path::new("m.toml"), text).map(|_| ());
    let with = |time: &str, protocol: &str, rate: &str| {
        format!(
            r#"
[time]
{time}

[[event]]
kind = "deposit"
protocol = {protocol}
market = "comptroller"
account = {{ column = "who" }}
asset = "cETH"
amount = {{ column = "amount", unit = "base"{rate} }}
"#
        )
    };
    let snapshot = with(
        r#"value = "2021-05-19 00:00:00"
format = "%Y-%m-%d %H:%M:%S""#,
        r#"{ value = "compound-v2" }"#,
        r#", exchange_rate = { value = "200000000000000000000000000" }"#,
    );
    assert!(load(&snapshot).is_ok(), "{:?}", load(&snapshot));
    let bad = [
        (
            with(r#"format = "unix_s""#, r#""aave-v2""#, ""),
            "needs either `column` or `value`",
        ),
        (
            with(
                "column = \"t\"\nformat = \"unix_s\"\ntimezone = \"+01:00\"",
                r#""aave-v2""#,
                "",
            ),
            "strftime pattern only",
        ),
        (
            with(
                "column = \"t\"\nformat = \"%H\"\ntimezone = \"Europe/Paris\"",
                r#""aave-v2""#,
                "",
            ),
            "unknown time zone",
        ),
        (
            with("column = \"t\"\nformat = \"unix_s\"", r#""aave-v4""#, ""),
            "unknown protocol",
        ),
        (
            with(
                "column = \"t\"\nformat = \"unix_s\"",
                r#""aave-v2""#,
                r#", exchange_rate = { value = "0" }"#,
            ),
            "exchange rate of 0",
        ),
        (
            with(
                "column = \"t\"\nformat = \"unix_s\"",
                r#""aave-v2""#,
                r#", exchange_rate = { column = "r", decimals = 18 }"#,
            ),
            "takes no `decimals`",
        ),
    ];
    for (text, expected) in bad {
        let error = load(&text).unwrap_err().to_string();
        assert!(error.contains(expected), "{expected}: {error}");
    }
}

#[test]
fn mapping_errors_point_at_the_offending_key() {
    let load = |text: &str| {
        Mapping::from_toml(Path::new("m.toml"), text)
            .err()
            .unwrap()
            .to_string()
    };
    let two_tables = |amount: &str| {
        format!(
            r#"[time]
column = "t"
format = "unix_s"

[[event]]
kind = "deposit"
protocol = "aave-v2"
market = "main"
account = {{ column = "who" }}
asset = "WETH"
amount = {{ column = "a", unit = "base" }}

[[event]]
kind = "withdraw"
protocol = "aave-v2"
market = "main"
account = {{ column = "who" }}
asset = "WETH"
    amount = {amount}
"#
        )
    };
    // The second table's `amount` (line 19, indented by 4), not its `[[event]]` header (13).
    let error = load(&two_tables(r#"{ column = "a" }"#));
    assert!(
        error.contains("line 19, column 5: field `amount`: an amount in tokens needs `decimals`"),
        "{error}"
    );
    // Unknown keys and wrong types are placed by the TOML parser itself.
    let error = load(&two_tables(
        r#"{ column = "a", unit = "base", colour = "red" }"#,
    ));
    assert!(error.contains("line 19"), "{error}");
    assert!(error.contains("colour"), "{error}");
    let error = load(
        "[time]\ncolumn = \"t\"\nformat = \"unix_minutes\"\n[[event]]\nkind = \"price\"\nasset = \"A\"\nquote = \"B\"\nprice = \"1\"\nfeed = \"f\"\n",
    );
    assert!(
        error.contains("line 3, column 1: [time] unknown time format"),
        "{error}"
    );
}

#[test]
fn snapshot_rows_become_position_snapshots_at_the_export_time() {
    // A positions export taken at one time: one row per account and reserve, amounts in tokens
    // with the decimals of `tokens.csv`.
    let mapping = r#"
[time]
value = "2021-05-19 00:00:00"
format = "%Y-%m-%d %H:%M:%S"

[[lookup]]
name = "tokens"
path = "tokens.csv"
key = "symbol"

[[event]]
kind = "snapshot"
protocol = "aave-v2"
market = "main"
account = { column = "user", id = "name" }
asset = { column = "token", id = "name" }
collateral = { column = "collateral", decimals = { lookup = "tokens", key = "token", column = "decimals" } }
debt = { column = "debt", decimals = { lookup = "tokens", key = "token", column = "decimals" } }
collateral_enabled = { column = "usage" }
"#;
    let files = Files::new(
        "user,token,collateral,debt,usage\na,WETH,10,0,true\na,USDC,0,15000.5,false\n",
        TOKENS,
    );
    let batch = files.read(mapping, false).unwrap();
    // The tokens' decimals the amounts were read with come first, once each, so the models
    // write the positions in tokens.
    assert_eq!(
        decimals_params(&batch),
        [
            "aave-v2 WETH 18 @ 1621382400",
            "aave-v2 USDC 6 @ 1621382400"
        ]
    );
    let snapshots: Vec<_> = batch
        .events
        .iter()
        .filter_map(|event| match &event.payload {
            Payload::PositionSnapshot(s) => {
                assert_eq!(event.time, Timestamp(1_621_382_400));
                Some((
                    s.asset.to_string(),
                    s.collateral.0.to_string(),
                    s.debt.0.to_string(),
                    s.scaled,
                    s.collateral_enabled,
                ))
            }
            Payload::ParamChange(_) => None,
            other => panic!("not a snapshot: {other:?}"),
        })
        .collect();
    assert_eq!(
        snapshots,
        [
            (
                "WETH".to_owned(),
                "10000000000000000000".to_owned(),
                "0".to_owned(),
                false,
                Some(true)
            ),
            (
                "USDC".to_owned(),
                "0".to_owned(),
                "15000500000".to_owned(),
                false,
                Some(false)
            ),
        ]
    );
}

#[test]
fn a_compound_snapshot_gives_the_underlying_decimals_of_its_debt_only() {
    // cToken balances have the cToken's 8 decimals, the borrow balance the underlying's.
    let mapping = r#"
[time]
value = "2021-05-19 00:00:00"
format = "%Y-%m-%d %H:%M:%S"

[[lookup]]
name = "tokens"
path = "tokens.csv"
key = "symbol"

[[event]]
kind = "snapshot"
protocol = "compound-v2"
market = "comptroller"
account = { column = "user", id = "name" }
asset = { column = "token", id = "name" }
collateral = { column = "cTokens", decimals = 8 }
debt = { column = "borrow", decimals = { lookup = "tokens", key = "token", column = "decimals" } }
"#;
    let files = Files::new(
        "user,token,cTokens,borrow\na,WETH,500,0\na,USDC,0,1200.5\nb,DAI,10,0\n",
        TOKENS,
    );
    let batch = files.read(mapping, false).unwrap();
    assert_eq!(
        decimals_params(&batch),
        [
            "compound-v2 WETH 18 @ 1621382400",
            "compound-v2 USDC 6 @ 1621382400",
            "compound-v2 DAI 18 @ 1621382400"
        ]
    );
}

/// The `account-totals` table of a `getUserAccountData`-style export whose totals are in wei
/// (`unit = "base"`) or in decimal ETH (`decimals = 18`) per row, thresholds in basis points or
/// as fractions, and health factors as decimals.
const TOTALS_MAPPING: &str = r#"
[time]
value = "2021-05-19 00:00:00"
format = "%Y-%m-%d %H:%M:%S"

[[event]]
kind = "account-totals"
when = { column = "unit", equals = "wei" }
protocol = "aave-v2"
market = "main"
account = { column = "user", id = "address" }
collateral = { column = "totalCollateralETH", unit = "base" }
debt = { column = "totalDebtETH", unit = "base" }
liquidation_threshold = { column = "currentLiquidationThreshold" }
health_factor = { column = "healthFactor", decimals = 18, scaled = true }

[[event]]
kind = "account-totals"
unless = { column = "unit", equals = "wei" }
protocol = "aave-v2"
market = "main"
account = { column = "user", id = "address" }
collateral = { column = "totalCollateralETH", decimals = 18 }
debt = { column = "totalDebtETH", decimals = 18 }
liquidation_threshold = { column = "currentLiquidationThreshold" }
health_factor = { column = "healthFactor", optional = true }
e_mode = { column = "eMode", optional = true }
"#;

#[test]
fn account_totals_rows_read_wei_or_decimal_eth_and_bps_or_fraction_thresholds() {
    let files = Files::new(
        "user,unit,totalCollateralETH,totalDebtETH,currentLiquidationThreshold,healthFactor,eMode\n\
         00000000000000000000000000000000000A11CE,wei,10000000000000000000,9180000000000000000,8250,898692810457516340,\n\
         0x0000000000000000000000000000000000000B0B,eth,5,3.6,0.825,1.1458333333,1\n\
         0x0000000000000000000000000000000000000CA1,eth,12.3456,0,0.8,,\n",
        TOKENS,
    );
    let batch = files.read(TOTALS_MAPPING, false).unwrap();
    let totals: Vec<_> = batch
        .events
        .iter()
        .map(|event| match &event.payload {
            Payload::AccountTotals(t) => (
                t.account.to_string(),
                t.collateral.0.to_string(),
                t.debt.0.to_string(),
                t.liquidation_threshold.to_string(),
                t.health_factor.map(|h| h.to_string()),
                t.e_mode,
            ),
            other => panic!("not account totals: {other:?}"),
        })
        .collect();
    let owned = |text: &str| text.to_owned();
    assert_eq!(
        totals,
        [
            (
                owned("0x00000000000000000000000000000000000a11ce"),
                owned("10000000000000000000"),
                owned("9180000000000000000"),
                owned("8250"),
                Some(owned("0.898692810457516340")),
                None
            ),
            (
                owned("0x0000000000000000000000000000000000000b0b"),
                owned("5000000000000000000"),
                owned("3600000000000000000"),
                owned("0.825"),
                Some(owned("1.1458333333")),
                Some(1)
            ),
            (
                owned("0x0000000000000000000000000000000000000ca1"),
                owned("12345600000000000000"),
                owned("0"),
                owned("0.8"),
                None,
                None
            ),
        ]
    );
}

#[test]
fn a_bad_e_mode_is_an_error_at_its_cell() {
    let files = Files::new(
        "user,unit,totalCollateralETH,totalDebtETH,currentLiquidationThreshold,healthFactor,eMode\n\
         0x0000000000000000000000000000000000000B0B,eth,5,3.6,0.825,1.1,300\n",
        TOKENS,
    );
    let error = row_error(files.read(TOTALS_MAPPING, false));
    assert!(
        error.to_string().contains("not a category number"),
        "{error}"
    );
}

/// The `decimals` parameters a batch holds, as `protocol asset decimals @ time`, in order.
fn decimals_params(batch: &SourceBatch) -> Vec<String> {
    batch
        .events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ParamChange(p) if p.param.as_str() == "decimals" => Some(format!(
                "{} {} {} @ {}",
                p.protocol.name(),
                p.market,
                p.value,
                e.time.0
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn the_decimals_a_mapping_reads_amounts_with_become_parameters_once_per_token() {
    let files = Files::new(
        "t,user,token,amount\n1620000000,a,WETH,1.5\n1620000001,b,USDC,1.5\n1620000002,c,WETH,2\n",
        TOKENS,
    );
    let batch = files.read(DEPOSITS, false).unwrap();
    assert_eq!(
        decimals_params(&batch),
        [
            "aave-v2 WETH 18 @ 1620000000",
            "aave-v2 USDC 6 @ 1620000001"
        ]
    );
    // Each comes just before the row that first reads the token.
    let kinds: Vec<&str> = batch
        .events
        .iter()
        .map(|e| e.payload.kind().name())
        .collect();
    assert_eq!(
        kinds,
        [
            "param-change",
            "deposit",
            "param-change",
            "deposit",
            "deposit"
        ]
    );

    // Maker's amounts have fixed precisions: nothing is added.
    let maker = DEPOSITS.replace("aave-v2", "maker");
    let batch = files.read(&maker, false).unwrap();
    assert!(decimals_params(&batch).is_empty());

    // A mapping that writes its own `decimals` parameters keeps exactly those.
    let declared = format!(
        "{DEPOSITS}\n[[lookup.event]]\nkind = \"param-change\"\nprotocol = \"aave-v2\"\nmarket = {{ column = \"symbol\", id = \"name\" }}\nparam = \"decimals\"\nvalue = {{ column = \"decimals\", decimals = 0 }}\n"
    );
    let batch = files.read(&declared, false).unwrap();
    let params = decimals_params(&batch);
    assert_eq!(params.len(), 3, "the lookup's three rows only: {params:?}");
}

/// A liquidation sheet without the debt amount, and one whose repaid cell may be blank.
fn liquidations_with(debt_repaid: &str) -> String {
    format!(
        r#"[time]
column = "t"
format = "unix_s"

[[event]]
kind = "liquidation"
protocol = "aave-v2"
market = "main"
account = {{ column = "who", id = "name" }}
collateral_asset = "WETH"
collateral_seized = {{ column = "seized", unit = "base" }}
debt_asset = "USDC"
debt_repaid = {debt_repaid}
detail = "aave"
"#
    )
}

#[test]
fn a_side_declared_unknown_makes_a_partial_liquidation() {
    let files = Files::new("t,who,seized\n1600000000,alice,4200\n", TOKENS);
    let batch = files
        .read(&liquidations_with("{ unknown = true }"), false)
        .unwrap();
    let events: Vec<_> = batch.events.iter().collect();
    let [event] = events.as_slice() else {
        panic!("{events:?}")
    };
    let Payload::PartialLiquidation(partial) = &event.payload else {
        panic!("{:?}", event.payload)
    };
    assert_eq!(partial.debt_repaid, None);
    assert_eq!(
        partial.collateral_seized.map(|a| a.0.to::<u64>()),
        Some(4200)
    );
    assert_eq!(partial.account.to_string(), "alice");
}

#[test]
fn blank_unknown_reads_a_blank_cell_as_unknown_and_a_filled_one_as_the_amount() {
    let files = Files::new(
        "t,who,seized,repaid\n1600000000,alice,4200,99\n1600000001,bob,4300,\n",
        TOKENS,
    );
    let mapping = liquidations_with(r#"{ column = "repaid", unit = "base", blank = "unknown" }"#);
    let batch = files.read(&mapping, false).unwrap();
    let events: Vec<_> = batch.events.iter().collect();
    match (&events[0].payload, &events[1].payload) {
        (Payload::Liquidation(whole), Payload::PartialLiquidation(partial)) => {
            assert_eq!(whole.debt_repaid.0.to::<u64>(), 99);
            assert_eq!(partial.debt_repaid, None);
            assert_eq!(
                partial.collateral_seized.map(|a| a.0.to::<u64>()),
                Some(4300)
            );
        }
        other => panic!("{other:?}"),
    }
    // Without `blank = "unknown"` the same blank cell is an error naming file, line and column
    // rather than a silent 0.
    let error = row_error(files.read(
        &liquidations_with(r#"{ column = "repaid", unit = "base" }"#),
        false,
    ));
    assert_eq!(error.column, "repaid");
    assert_eq!(error.value, "");
    let shown = error.to_string();
    assert!(shown.contains("data.csv: line 3, column repaid"), "{shown}");
}

#[test]
fn unknown_stands_alone_and_only_on_a_liquidation_side() {
    let load = |text: &str| {
        Mapping::from_toml(Path::new("m.toml"), text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    // The `unknown` key itself: line 13, column 31 (after `debt_repaid = { column = "r", `).
    let error = load(&liquidations_with(r#"{ column = "r", unknown = true }"#));
    assert!(
        error.contains(
            "line 13, column 31: field `debt_repaid`: `unknown = true` stands alone: drop `column`"
        ),
        "{error}"
    );
    let error = load(&liquidations_with("{ unknown = false }"));
    assert!(
        error.contains("line 13, column 17: field `debt_repaid`: `unknown = false`"),
        "{error}"
    );
    let error = load(&liquidations_with(r#"{ value = "5", blank = "unknown" }"#));
    assert!(
        error.contains("field `debt_repaid`: `blank = \"unknown\"` needs a `column`"),
        "{error}"
    );
    // Any other field: the market, the account, a deposit's amount.
    let error = load(
        &liquidations_with(r#"{ column = "r", unit = "base" }"#)
            .replace(r#"market = "main""#, "market = { unknown = true }"),
    );
    assert!(
        error.contains("line 8, column 1: field `market`: only a liquidation's `collateral_seized` and `debt_repaid` can be unknown"),
        "{error}"
    );
    assert!(load(&liquidations_with("{ unknown = true }")).is_empty());
    let both = liquidations_with("{ unknown = true }").replace(
        r#"collateral_seized = { column = "seized", unit = "base" }"#,
        "collateral_seized = { unknown = true }",
    );
    assert!(load(&both).is_empty(), "{}", load(&both));
}

#[test]
fn a_detail_carries_no_amount_of_an_unknown_side() {
    let files = Files::new("t,who,seized,repaid\n1600000000,alice,4200,\n", TOKENS);
    // `compound` without the seized cTokens has no `seizeTokens`; `maker-dog` without the debt
    // has no `due`.
    let compound = liquidations_with("{ unknown = true }")
        .replace(r#"detail = "aave""#, r#"detail = "compound""#)
        .replace(
            r#"collateral_seized = { column = "seized", unit = "base" }"#,
            "collateral_seized = { unknown = true }",
        )
        .replace(
            "debt_repaid = { unknown = true }",
            r#"debt_repaid = { column = "seized", unit = "base" }"#,
        );
    let dog = liquidations_with(r#"{ column = "repaid", unit = "base", blank = "unknown" }"#)
        .replace(r#"detail = "aave""#, r#"detail = "maker-dog""#);
    for (mapping, expected) in [
        (compound, cascade_events::LiquidationDetail::None),
        (
            dog,
            cascade_events::LiquidationDetail::MakerDog {
                due: None,
                art: None,
                auction: None,
            },
        ),
    ] {
        let batch = files.read(&mapping, false).unwrap();
        let events: Vec<_> = batch.events.iter().collect();
        match &events[0].payload {
            Payload::PartialLiquidation(partial) => assert_eq!(partial.detail, expected),
            other => panic!("{other:?}"),
        }
    }
}
