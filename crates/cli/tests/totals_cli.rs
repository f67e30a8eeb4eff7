//! A `getUserAccountData`-style positions export of 1,300 Aave v2 accounts, as analysts have
//! them (`docs/ingest.md`, "Position snapshots"): generated here deterministically, written into
//! a temporary folder, ingested through an `account-totals` mapping and replayed to its accounts
//! file. Every health factor must be reproduced within 0.01% of the recorded one, and a wrong
//! threshold must show.
//!
//! Each account holds one to three collateral reserves and up to two debt reserves of a small
//! table (prices in ETH, decimals, thresholds); the export's columns are what the contract
//! returns for it, worked out here independently of the engine with `GenericLogic`'s arithmetic:
//! `totalCollateralETH = sum(price * amount / 10^decimals)`, `currentLiquidationThreshold =
//! sum(value * threshold) / totalCollateralETH` (truncated), `totalDebtETH` likewise, and
//! `healthFactor = (totalCollateralETH * threshold + 5000) / 10000` then `(x * 1e18 + debt / 2) /
//! debt`. The file writes totals in wei, thresholds in basis points for even accounts and as
//! fractions (`0.8250`) for odd ones, and health factors as 18-decimal wads for some and as the
//! ten-decimal renderings spreadsheets write for the others.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use cascade_events::U256;

const ACCOUNTS: usize = 1_300;

/// (price in ETH wei per whole token, decimals, liquidation threshold in bps).
const RESERVES: [(u128, u32, u128); 5] = [
    (1_000_000_000_000_000_000, 18, 8_250), // WETH
    (15_400_000_000_000_000_000, 8, 7_000), // WBTC
    (500_000_000_000_000, 6, 8_500),        // USDC
    (501_000_000_000_000, 18, 8_000),       // DAI
    (9_000_000_000_000_000, 18, 6_500),     // LINK
];

/// xorshift64*: a fixed sequence, so the file is the same on every run.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// One account's row: (totalCollateralETH, totalDebtETH, threshold bps, health factor wad).
fn account(draws: &mut Draws) -> (U256, U256, U256, U256) {
    let value = |reserve: usize, whole: u64, thousandths: u64| {
        let (price, decimals, _) = RESERVES[reserve];
        let unit = U256::from(10u8).pow(U256::from(decimals));
        let amount =
            U256::from(whole) * unit + U256::from(thousandths) * unit / U256::from(1000u16);
        U256::from(price) * amount / unit
    };
    let (mut collateral, mut weighted, mut debt) = (U256::ZERO, U256::ZERO, U256::ZERO);
    for _ in 0..1 + draws.below(3) {
        let reserve = draws.below(RESERVES.len() as u64) as usize;
        let worth = value(reserve, draws.below(400), draws.below(1000));
        collateral += worth;
        weighted += worth * U256::from(RESERVES[reserve].2);
    }
    // Debt of a share of the borrowing power, some accounts past their threshold; one account
    // in ten without debt.
    let borrows = if draws.below(10) == 0 {
        0
    } else {
        1 + draws.below(2)
    };
    for _ in 0..borrows {
        let reserve = draws.below(RESERVES.len() as u64) as usize;
        let (price, decimals, _) = RESERVES[reserve];
        let share = U256::from(10 + draws.below(50));
        let target = collateral * share / U256::from(100u8);
        let unit = U256::from(10u8).pow(U256::from(decimals));
        debt += U256::from(price) * (target * unit / U256::from(price)) / unit;
    }
    let threshold = if collateral.is_zero() {
        U256::ZERO
    } else {
        weighted / collateral
    };
    let health = if debt.is_zero() {
        U256::MAX
    } else {
        let wad = U256::from(10u8).pow(U256::from(18u8));
        let adjusted = (collateral * threshold + U256::from(5_000u16)) / U256::from(10_000u16);
        (adjusted * wad + debt / U256::from(2u8)) / debt
    };
    (collateral, debt, threshold, health)
}

/// `wad` as a decimal with `digits` decimals, rounded half up (a spreadsheet's rendering).
fn rendered(wad: U256, digits: u32) -> String {
    let drop = U256::from(10u8).pow(U256::from(18 - digits));
    let kept = (wad + drop / U256::from(2u8)) / drop;
    let unit = U256::from(10u8).pow(U256::from(digits));
    format!(
        "{}.{:0>width$}",
        kept / unit,
        (kept % unit).to_string(),
        width = digits as usize
    )
}

/// The export, one row per account; `wrong` (an account number) gets 8000 bps written as its
/// threshold instead of its own.
fn export(wrong: Option<usize>) -> String {
    let mut draws = Draws(0x9e37_79b9_7f4a_7c15);
    let mut text = String::from(
        "user,totalCollateralETH,totalDebtETH,currentLiquidationThreshold,healthFactor\n",
    );
    for number in 0..ACCOUNTS {
        let (collateral, debt, mut threshold, health) = account(&mut draws);
        if wrong == Some(number) {
            threshold = U256::from(8_000u16);
        }
        let threshold = if number % 2 == 0 {
            threshold.to_string()
        } else {
            format!("0.{:0>4}", threshold.to_string())
        };
        let health = match (health == U256::MAX, number % 3) {
            (true, _) => String::new(),
            (false, 0) => rendered(health, 18),
            (false, _) => rendered(health, 10),
        };
        text.push_str(&format!(
            "0x{number:040x},{collateral},{debt},{threshold},{health}\n"
        ));
    }
    text
}

const MAPPING: &str = r#"
description = "getUserAccountData totals of Aave v2 accounts at one block"

[time]
value = "2021-05-19 00:00:00"
format = "%Y-%m-%d %H:%M:%S"

[[event]]
kind = "account-totals"
protocol = "aave-v2"
market = { value = "0x7d2768de32b0b80b7a3454c06bdac94a69ddc7a9", id = "address" }
account = { column = "user", id = "address" }
collateral = { column = "totalCollateralETH", unit = "base" }
debt = { column = "totalDebtETH", unit = "base" }
liquidation_threshold = { column = "currentLiquidationThreshold" }
health_factor = { column = "healthFactor", optional = true }
"#;

fn cascade(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Ingests `csv` through the mapping and replays it to an accounts file (JSON lines); the
/// replay's summary and the accounts.
fn replay(dir: &Path, csv: &str) -> (String, Vec<serde_json::Value>) {
    let data = dir.join("accounts.csv");
    let mapping = dir.join("totals.toml");
    std::fs::write(&data, csv).unwrap();
    std::fs::write(&mapping, MAPPING).unwrap();
    let log = dir.join("log");
    let accounts = dir.join("accounts.jsonl");
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    cascade(&[
        "ingest",
        "--log",
        &path(&log),
        "--source",
        "csv",
        "--mapping",
        &path(&mapping),
        &path(&data),
    ]);
    let summary = cascade(&[
        "replay",
        &path(&log),
        "--accounts-at",
        "2021-05-19T00:00:00Z",
        "--accounts-out",
        &path(&accounts),
    ]);
    let lines = std::fs::read_to_string(&accounts)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (summary, lines)
}

#[test]
fn every_health_factor_of_a_1300_account_export_is_reproduced_within_a_hundredth_percent() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, accounts) = replay(dir.path(), &export(None));
    assert_eq!(accounts.len(), ACCOUNTS);
    let mut draws = Draws(0x9e37_79b9_7f4a_7c15);
    let mut compared = 0;
    for (number, line) in accounts.iter().enumerate() {
        // The file lists accounts by address, which is their number here.
        assert_eq!(
            line["account"],
            format!("0x{number:040x}"),
            "accounts in address order"
        );
        let (_, debt, _, health) = account(&mut draws);
        if debt.is_zero() {
            assert_eq!(line["health_factor"], "inf");
            continue;
        }
        compared += 1;
        let ppm = line["health_difference_ppm"].as_i64().unwrap();
        assert!(ppm.abs() <= 100, "account {number}: {ppm} ppm ({line})");
        // The engine's health factor is the contract's, digit for digit.
        assert_eq!(
            line["health_factor"],
            cascade_run::decimal(health, 18),
            "account {number}"
        );
    }
    assert!(compared > 1_000, "{compared} accounts with debt");
    let below_one = accounts
        .iter()
        .filter(|line| {
            line["health_factor"]
                .as_str()
                .is_some_and(|h| h.starts_with("0."))
        })
        .count();
    assert!(below_one > 50, "{below_one} accounts liquidatable");
    assert!(
        summary.contains(&format!(
            "recorded health factors: {compared} compared, 0 differ by more than 0.01%"
        )),
        "{summary}"
    );
}

#[test]
fn a_wrong_threshold_is_beyond_a_hundredth_percent() {
    // Account 7 (odd: its threshold written as a fraction) gets 0.8000 instead of its own; no
    // generated account has exactly that weighted threshold with debt, so its computed health
    // moves away from the recorded one by far more than 0.01%.
    let dir = tempfile::tempdir().unwrap();
    let (summary, accounts) = replay(dir.path(), &export(Some(7)));
    let line = &accounts[7];
    let ppm = line["health_difference_ppm"].as_i64().unwrap();
    assert!(ppm.abs() > 100, "{line}");
    assert!(summary.contains("1 differ by more than 0.01%"), "{summary}");
}
