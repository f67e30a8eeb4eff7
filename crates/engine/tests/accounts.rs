//! Every account's position at a time (`--accounts-at`, `cascade state`) on the hand-built
//! fixtures, whose health factors their READMEs work out: the numbers below are those, checked
//! digit for digit, and each capture shows the state once the first instant at or after its time
//! is applied.

mod common;

use cascade_engine::protocol::accounts::{AccountPosition, AccountsCapture};
use cascade_engine::{Capture, Mode, ReplayOptions, replay_log_capturing};
use cascade_events::{Amount, Event, Id, Payload, PositionSnapshot, Timestamp, U256};
use cascade_run::decimal;

fn time(text: &str) -> Timestamp {
    Timestamp(
        chrono::DateTime::parse_from_rfc3339(text)
            .expect("RFC 3339")
            .timestamp(),
    )
}

fn captures(events: &[Event], at: &[&str]) -> Vec<AccountsCapture> {
    let log = common::build_log(events);
    let capture = Capture {
        at: at.iter().map(|text| time(text)).collect(),
        stop_when_taken: false,
    };
    replay_log_capturing(
        log.path(),
        &ReplayOptions::default(),
        Mode::Historical,
        &capture,
        &mut |_, _| {},
    )
    .expect("fixture replays")
    .accounts
}

fn account<'a>(capture: &'a AccountsCapture, suffix: &str) -> &'a AccountPosition {
    capture
        .accounts
        .iter()
        .find(|position| position.account.to_string().ends_with(suffix))
        .unwrap_or_else(|| panic!("no account ending {suffix} in {:?}", capture.accounts))
}

fn health(position: &AccountPosition) -> String {
    decimal(position.health_factor.expect("health known"), 18)
}

fn base(position: &AccountPosition, value: Option<U256>) -> String {
    decimal(value.expect("value known"), position.base_decimals)
}

#[test]
fn aave_v2_healths_are_the_contracts_before_and_after_a_liquidation() {
    // fixtures/aave/README.md: at 01:12 (USDC borrow index 1.02, USDC and DAI at 0.0006 ETH)
    // Alice: 10 WETH at 8250 bps against 15,300 USDC = 9.18 ETH:
    //   wadDiv(percentMul(10e18, 8250), 9.18e18) = 0.898692810457516340;
    // Bob: 5 WETH against 6,000 DAI = 3.6 ETH: 4.125 / 3.6 = 1.145833333333333333;
    // Carol: 1 WETH against 1,530 USDC = 0.918 ETH: 0.898692810457516340;
    // Frank: 1 WETH against 1,632 USDC = 0.9792 ETH: 0.842524509803921569.
    // 01:13:30 has no event: the capture shows the state after 01:14 (Bob's liquidation, refused,
    // changes nothing), so after Alice's at 01:13: 5.1805 WETH against 7,650 USDC = 4.59 ETH,
    // wadDiv(percentMul(5.1805e18, 8250) = 4.2739125e18, 4.59e18) = 0.931135620915032680.
    let captures = captures(
        &common::fixture_events_in("aave", "v2-basic"),
        &["2021-05-19T01:12:00Z", "2021-05-19T01:13:30Z"],
    );
    let before = &captures[0];
    assert_eq!(before.state_time, Some(time("2021-05-19T01:12:00Z")));
    assert_eq!(before.accounts.len(), 4, "Dave has no position");
    let alice = account(before, "a11ce");
    assert_eq!(health(alice), "0.89869281045751634");
    assert_eq!(base(alice, alice.collateral_value), "10");
    assert_eq!(base(alice, alice.debt_value), "9.18");
    assert_eq!(alice.threshold.unwrap().to_string(), "0.825");
    // Health one at p * 10 * 0.825 = 9.18: p = 1.112727272727272727 ETH per WETH (truncated).
    let liquidation = alice.liquidation_price.as_ref().expect("has debt");
    assert_eq!(liquidation.asset.to_string(), "WETH");
    assert_eq!(liquidation.price.to_string(), "1.112727272727272727");
    let usdc = alice
        .assets
        .iter()
        .find(|asset| asset.asset == Id::name("USDC"))
        .expect("USDC debt");
    assert_eq!(decimal(usdc.debt, 6), "15300");
    assert_eq!(health(account(before, "b0b")), "1.145833333333333333");
    assert_eq!(health(account(before, "ca201")), "0.89869281045751634");
    assert_eq!(health(account(before, "f4a4c")), "0.842524509803921569");
    let after = &captures[1];
    assert_eq!(after.state_time, Some(time("2021-05-19T01:14:00Z")));
    let alice = account(after, "a11ce");
    assert_eq!(health(alice), "0.93113562091503268");
    assert_eq!(base(alice, alice.collateral_value), "5.1805");
    assert_eq!(base(alice, alice.debt_value), "4.59");
}

#[test]
fn compound_v2_healths_are_weighted_collateral_over_borrows() {
    // fixtures/compound/README.md: after the 00:10 index update (ETH at 1,800, USDC borrow index
    // 1.02) Alice holds 5,000 cETH = 100 ETH against 142,800 USDC: collateral 180,000 USD,
    // weighted 135,000, health 135,000 / 142,800 = 0.945378151260504201; health one at
    // 100 x 0.75 x p = 142,800, p = 1,904. Bob: 10 ETH against 10,200 USDC: 13,500 / 10,200 =
    // 1.323529411764705882, health one at 1,360.
    // After the log (ETH at 1,000): Bob 9.4 ETH against 9,200 USDC, 7,050 / 9,200 =
    // 0.766304347826086956.
    let captures = captures(
        &common::fixture_events_in("compound", "v2-basic"),
        &["2021-05-19T00:10:00Z", "2021-06-01T00:00:00Z"],
    );
    let before = &captures[0];
    let alice = account(before, "a11ce");
    assert_eq!(health(alice), "0.945378151260504201");
    assert_eq!(base(alice, alice.collateral_value), "180000");
    assert_eq!(base(alice, alice.debt_value), "142800");
    assert_eq!(alice.threshold.unwrap().to_string(), "0.75");
    let eth = &alice.assets[0];
    assert_eq!(decimal(eth.collateral, 18), "100");
    let liquidation = alice.liquidation_price.as_ref().expect("has debt");
    assert_eq!(liquidation.price.to_string(), "1904");
    let bob = account(before, "b0b");
    assert_eq!(health(bob), "1.323529411764705882");
    assert_eq!(
        bob.liquidation_price.as_ref().unwrap().price.to_string(),
        "1360"
    );
    let end = &captures[1];
    assert_eq!(
        end.state_time,
        Some(time("2021-05-19T00:16:00Z")),
        "past the log's end: its last state"
    );
    assert_eq!(health(account(end, "b0b")), "0.766304347826086956");
}

#[test]
fn maker_healths_are_ink_times_spot_over_debt() {
    // fixtures/maker/README.md, dog-bark: at 01:30 the OSM shows 2000 (spot 1333.33 with mat
    // 1.5, rate 1). Vault #1, 10 ETH / 10,000 DAI: 10 x 1333.33 / 10,000 = 1.333333333333333333;
    // health one at 10 x p / 1.5 = 10,000, p = 1,500. Vault #3 was wiped at 00:40 and keeps
    // 20 ETH without debt: health `inf`.
    // At 02:30 (OSM 1350, spot 900), after the 02:00:12 barks: #1 is gone, #5 keeps
    // 40 - 16.548672566371681415 ETH and 40,000 - 16,548.672566371681415929 DAI.
    let captures = captures(
        &common::fixture_events("dog-bark"),
        &["2021-06-01T01:30:00Z", "2021-06-01T02:30:00Z"],
    );
    let before = &captures[0];
    let one = account(before, "#1");
    assert_eq!(health(one), "1.333333333333333333");
    assert_eq!(base(one, one.collateral_value), "20000");
    assert_eq!(base(one, one.debt_value), "10000");
    assert_eq!(one.threshold.unwrap().to_string(), "1.5");
    assert_eq!(
        one.liquidation_price.as_ref().unwrap().price.to_string(),
        "1500"
    );
    assert_eq!(account(before, "#3").health_factor, Some(U256::MAX));
    let after = &captures[1];
    assert!(
        after
            .accounts
            .iter()
            .all(|position| position.account.to_string() != "#1"),
        "vault #1 was liquidated whole"
    );
    let five = account(after, "#5");
    assert_eq!(
        decimal(five.assets[0].collateral, 18),
        "23.451327433628318585"
    );
    assert_eq!(base(five, five.debt_value), "23451.327433628318584071");
}

#[test]
fn aave_v3_values_are_in_usd_with_eight_decimals() {
    // fixtures/aave/README.md, v3-fee-and-dust: WETH at 1,900 USD, Alice 10 WETH at 8300 bps
    // against 16,000 USDC: 19,000 x 0.83 / 16,000 = 0.985625; health one at
    // p x 10 x 0.83 = 16,000, p = 1,927.71084337 (8 decimals, truncated).
    let captures = captures(
        &common::fixture_events_in("aave", "v3-fee-and-dust"),
        &["2023-11-14T22:24:20Z"],
    );
    let alice = account(&captures[0], "a11ce");
    assert_eq!(alice.base_currency.to_string(), "USD");
    assert_eq!(alice.base_decimals, 8);
    assert_eq!(health(alice), "0.985625");
    assert_eq!(base(alice, alice.collateral_value), "19000");
    assert_eq!(base(alice, alice.debt_value), "16000");
    assert_eq!(alice.threshold.unwrap().to_string(), "0.83");
    assert_eq!(
        alice.liquidation_price.as_ref().unwrap().price.to_string(),
        "1927.71084337"
    );
}

/// `events` with the deposits and borrows of the account ending `suffix` replaced by position
/// snapshots of the same assets (a deposit's amount as collateral, a borrow's as debt), all at
/// the time of the last of them, as a positions export taken then would record them: the rows of
/// one account at one instant are its whole position.
fn snapshotted(events: &[Event], suffix: &str) -> Vec<Event> {
    let ours = |event: &Event| match &event.payload {
        Payload::Deposit(change) | Payload::Borrow(change) => {
            change.account.to_string().ends_with(suffix)
        }
        _ => false,
    };
    let last = events.iter().rposition(ours).expect("the account acts");
    let zero = Amount(U256::ZERO);
    let rows: Vec<Event> = events
        .iter()
        .filter(|event| ours(event))
        .map(|event| {
            let (change, deposit) = match &event.payload {
                Payload::Deposit(change) => (change, true),
                Payload::Borrow(change) => (change, false),
                _ => unreachable!("filtered"),
            };
            let mut snapshot = events[last].clone();
            snapshot.payload = Payload::PositionSnapshot(Box::new(PositionSnapshot {
                protocol: change.protocol,
                market: change.market,
                account: change.account,
                asset: change.asset,
                collateral: if deposit { change.amount } else { zero },
                debt: if deposit { zero } else { change.amount },
                scaled: false,
                collateral_enabled: None,
                e_mode: None,
            }));
            snapshot
        })
        .collect();
    let mut out = Vec::new();
    for (at, event) in events.iter().enumerate() {
        if at == last {
            out.extend(rows.iter().cloned());
        } else if !ours(event) {
            out.push(event.clone());
        }
    }
    out
}

fn replay(events: &[Event], at: &[&str]) -> (cascade_engine::Run, Vec<AccountsCapture>) {
    let log = common::build_log(events);
    let capture = Capture {
        at: at.iter().map(|text| time(text)).collect(),
        stop_when_taken: false,
    };
    let outcome = replay_log_capturing(
        log.path(),
        &ReplayOptions::default(),
        Mode::Historical,
        &capture,
        &mut |_, _| {},
    )
    .expect("replays");
    (outcome.run, outcome.accounts)
}

#[test]
fn aave_snapshot_then_later_events_gives_the_rebuilt_healths() {
    // Alice's 10 WETH and 15,000 USDC come from snapshots at 00:04 instead of a deposit and a
    // borrow: the USDC index update and prices after them give the same health,
    // 0.898692810457516340 (see the first test), and her liquidation the same verdict. A
    // snapshot of Bob at 01:12 with his 5 WETH and 6,500 DAI of debt (rebuilt: 6,000) replaces
    // his position and the DAI difference is reported (his WETH agrees): health
    // wadDiv(percentMul(5e18, 8250) = 4.125e18, 6,500 x 0.0006 = 3.9e18) = 1.057692307692307692.
    let mut events = snapshotted(&common::fixture_events_in("aave", "v2-basic"), "a11ce");
    let bob_debt = events
        .iter()
        .find_map(|event| match &event.payload {
            Payload::Borrow(change) if change.account.to_string().ends_with("b0b") => {
                Some(*change.clone())
            }
            _ => None,
        })
        .expect("Bob borrows");
    let at = events
        .iter()
        .position(|event| event.time >= time("2021-05-19T01:12:00Z"))
        .unwrap();
    let row = |asset: &str, collateral: u64, debt: u64| {
        let mut row = events[at].clone();
        row.payload = Payload::PositionSnapshot(Box::new(PositionSnapshot {
            protocol: bob_debt.protocol,
            market: bob_debt.market,
            account: bob_debt.account,
            asset: Id::name(asset),
            collateral: wad(collateral),
            debt: wad(debt),
            scaled: false,
            collateral_enabled: None,
            e_mode: None,
        }));
        row
    };
    let bob = [row("WETH", 5, 0), row("DAI", 0, 6_500)];
    events.splice(at + 1..at + 1, bob);
    let (run, captures) = replay(&events, &["2021-05-19T01:12:00Z"]);
    let alice = account(&captures[0], "a11ce");
    assert_eq!(health(alice), "0.89869281045751634");
    assert_eq!(health(account(&captures[0], "b0b")), "1.057692307692307692");
    assert_eq!(
        run.totals.clamped.get("snapshot-differs-from-rebuilt"),
        Some(&1)
    );
    let difference = &captures[0].snapshot_differences[0];
    assert_eq!(difference.asset, Id::name("DAI"));
    assert_eq!(difference.rebuilt.debt, wad(6_000).0);
    assert_eq!(difference.snapshot.debt, wad(6_500).0);
    // The run file lists it too, with both amounts.
    let listed = &run.snapshot_differences;
    assert_eq!(listed.count, 1);
    assert_eq!(listed.listed[0].asset, Id::name("DAI"));
    assert_eq!(listed.listed[0].rebuilt.debt, wad(6_000));
    assert_eq!(listed.listed[0].snapshot.debt, wad(6_500));
    assert!(listed.listed[0].account.to_string().ends_with("b0b"));
    assert_eq!(
        run.liquidations[0].verdict.map(|v| v.name()),
        Some("explained")
    );
    assert_eq!(run.totals.by_kind.get("position-snapshot"), Some(&4));
}

/// `tokens` whole tokens of 18 decimals.
fn wad(tokens: u64) -> Amount {
    Amount(U256::from(tokens) * U256::from(10u8).pow(U256::from(18u8)))
}

#[test]
fn compound_snapshot_then_later_events_gives_the_rebuilt_healths() {
    // Alice's 100 ETH (5,000 cETH) and 140,000 USDC come from snapshots; the index update to
    // 1.02 and ETH at 1,800 after them give 135,000 / 142,800 = 0.945378151260504201, as rebuilt.
    // A deposit's snapshot is in the underlying here, so it is turned into cTokens first:
    // 100e18 * 1e18 / 2e26 = 5e11.
    let events: Vec<Event> =
        snapshotted(&common::fixture_events_in("compound", "v2-basic"), "a11ce")
            .into_iter()
            .map(|mut event| {
                if let Payload::PositionSnapshot(snapshot) = &mut event.payload
                    && !snapshot.collateral.0.is_zero()
                {
                    snapshot.collateral = Amount(U256::from(500_000_000_000u64));
                }
                event
            })
            .collect();
    let (run, captures) = replay(&events, &["2021-05-19T00:10:00Z"]);
    let alice = account(&captures[0], "a11ce");
    assert_eq!(health(alice), "0.945378151260504201");
    assert_eq!(decimal(alice.assets[0].collateral, 18), "100");
    assert_eq!(
        run.liquidations[0].verdict.map(|v| v.name()),
        Some("explained")
    );
}

/// The dog-bark fixture with vault #1's open, deposit and draw replaced by one snapshot of `ink`
/// ETH and `art` DAI (whole tokens, rate 1).
fn vault_one_from_snapshot(ink: u64, art: u64) -> Vec<Event> {
    let wad = |tokens: u64| Amount(U256::from(tokens) * U256::from(10u8).pow(U256::from(18u8)));
    common::fixture_events("dog-bark")
        .into_iter()
        .filter_map(|mut event| {
            let (account, market, kept) = match &event.payload {
                Payload::VaultOpen(open) => (open.account, open.market, false),
                Payload::Deposit(change) => (change.account, change.market, true),
                Payload::Borrow(change) => (change.account, change.market, false),
                _ => return Some(event),
            };
            if account.to_string() != "#1" {
                return Some(event);
            }
            if !kept {
                return None;
            }
            event.payload = Payload::PositionSnapshot(Box::new(PositionSnapshot {
                protocol: cascade_events::Protocol::Maker,
                market,
                account,
                asset: Id::name("ETH"),
                collateral: wad(ink),
                debt: wad(art),
                scaled: true,
                collateral_enabled: None,
                e_mode: None,
            }));
            Some(event)
        })
        .collect()
}

#[test]
fn maker_snapshot_sets_a_whole_vault() {
    // Vault #1's 10 ETH and 10,000 DAI come from one snapshot (ink 10, art 10,000 at rate 1)
    // instead of its open, deposit and draw: at 01:30 its health is 1.333333333333333333 as
    // rebuilt, and its bark at 02:00:12 is explained as before.
    let events = vault_one_from_snapshot(10, 10_000);
    let (run, captures) = replay(&events, &["2021-06-01T01:30:00Z"]);
    assert_eq!(health(account(&captures[0], "#1")), "1.333333333333333333");
    assert_eq!(run.liquidations[0].account.to_string(), "#1");
    assert_eq!(
        run.liquidations[0].verdict.map(|v| v.name()),
        Some("explained")
    );
    assert!(
        !run.totals
            .clamped
            .contains_key("snapshot-differs-from-rebuilt")
    );
}

#[test]
fn a_large_maker_vault_has_a_liquidation_price() {
    // 1,000 ETH against 1,000,000 DAI at 01:30 (OSM 2000, mat 1.5, rate 1): health
    // 1000 x 1333.33 / 1,000,000 = 1.333333333333333333, liquidation price 1,000,000 x 1.5 / 1000
    // = 1,500. Its tab (1e6 DAI in rad) times mat (ray) is past 2^256: the price must not be lost
    // to an overflow.
    let (_, captures) = replay(
        &vault_one_from_snapshot(1_000, 1_000_000),
        &["2021-06-01T01:30:00Z"],
    );
    let vault = account(&captures[0], "#1");
    assert_eq!(health(vault), "1.333333333333333333");
    assert_eq!(
        vault.liquidation_price.as_ref().unwrap().price.to_string(),
        "1500"
    );
}

/// The v2-basic fixture with `rows` (account suffix, asset, collateral, debt in whole tokens of
/// 18 decimals, USDC in 6) inserted as position snapshots right after the first event at or
/// after `at`, in this order.
fn aave_with_rows(at: &str, rows: &[(&str, &str, u64, u64)]) -> Vec<Event> {
    let mut events = common::fixture_events_in("aave", "v2-basic");
    let index = events
        .iter()
        .position(|event| event.time >= time(at))
        .expect("an event at or after the time");
    let market = events
        .iter()
        .find_map(|event| match &event.payload {
            Payload::Deposit(change) => Some(change.market),
            _ => None,
        })
        .expect("a deposit");
    let account = |suffix: &str| {
        events
            .iter()
            .find_map(|event| match &event.payload {
                Payload::Deposit(change) if change.account.to_string().ends_with(suffix) => {
                    Some(change.account)
                }
                _ => None,
            })
            .expect("the account deposits")
    };
    let inserted: Vec<Event> = rows
        .iter()
        .map(|(suffix, asset, collateral, debt)| {
            let unit = |tokens: u64| match *asset {
                "USDC" => Amount(U256::from(tokens) * U256::from(1_000_000u64)),
                _ => wad(tokens),
            };
            let mut row = events[index].clone();
            row.payload = Payload::PositionSnapshot(Box::new(PositionSnapshot {
                protocol: cascade_events::Protocol::AaveV2,
                market,
                account: account(suffix),
                asset: Id::name(asset),
                collateral: unit(*collateral),
                debt: unit(*debt),
                scaled: false,
                collateral_enabled: None,
                e_mode: None,
            }));
            row
        })
        .collect();
    events.splice(index + 1..index + 1, inserted);
    events
}

#[test]
fn aave_snapshot_rows_of_one_instant_are_the_whole_account() {
    // At 01:12 (USDC borrow index 1.02) Bob's rows and Carol's are interleaved: Bob WETH 5,
    // Carol WETH 1, Bob DAI 6,000, Carol USDC 1,530 (her rebuilt 1,500 x 1.02). Each account's
    // rows form its whole position, so nothing is cleared and nothing differs: Bob
    // wadDiv(percentMul(5e18, 8250) = 4.125e18, 6,000 x 0.0006 = 3.6e18) = 1.145833333333333333,
    // Carol wadDiv(0.825e18, 1,530 x 0.0006 = 0.918e18) = 0.898692810457516340, as rebuilt.
    let events = aave_with_rows(
        "2021-05-19T01:12:00Z",
        &[
            ("b0b", "WETH", 5, 0),
            ("ca201", "WETH", 1, 0),
            ("b0b", "DAI", 0, 6_000),
            ("ca201", "USDC", 0, 1_530),
        ],
    );
    let (run, captures) = replay(&events, &["2021-05-19T01:12:00Z"]);
    assert_eq!(health(account(&captures[0], "b0b")), "1.145833333333333333");
    assert_eq!(
        health(account(&captures[0], "ca201")),
        "0.89869281045751634"
    );
    assert!(captures[0].snapshot_differences.is_empty());
    assert!(
        !run.totals
            .clamped
            .contains_key("snapshot-differs-from-rebuilt")
    );
}

#[test]
fn an_asset_the_snapshot_does_not_name_is_cleared_and_reported() {
    // At 01:12 Bob's snapshot names only his 6,000 DAI of debt: his 5 WETH, which the log
    // rebuilt, is cleared (the rows of an instant are the whole account) and reported with
    // account and asset. Without collateral his health is wadDiv(percentMul(0, 0), 3.6e18) = 0.
    let events = aave_with_rows("2021-05-19T01:12:00Z", &[("b0b", "DAI", 0, 6_000)]);
    let (run, captures) = replay(&events, &["2021-05-19T01:12:00Z"]);
    let bob = account(&captures[0], "b0b");
    assert_eq!(health(bob), "0");
    assert_eq!(bob.assets.len(), 1, "only the DAI debt is left");
    assert_eq!(
        run.totals.clamped.get("snapshot-differs-from-rebuilt"),
        Some(&1)
    );
    let difference = &captures[0].snapshot_differences[0];
    assert!(difference.account.to_string().ends_with("b0b"));
    assert_eq!(difference.asset, Id::name("WETH"));
    assert_eq!(difference.time, time("2021-05-19T01:12:00Z"));
    assert_eq!(difference.rebuilt.collateral, wad(5).0);
    assert!(difference.rebuilt.collateral_enabled);
    assert_eq!(difference.snapshot.collateral, U256::ZERO);
    let record = &run.snapshot_differences.listed[0];
    assert_eq!(run.snapshot_differences.count, 1);
    assert_eq!(
        (record.time, record.asset, record.rebuilt.collateral),
        (difference.time, difference.asset, wad(5))
    );
    assert_eq!(record.snapshot.collateral, Amount::ZERO);
    // In every form of the run file: the line form's first line holds it.
    let lines = run.to_bytes(cascade_run::RunForm::Lines);
    let header = String::from_utf8_lossy(lines.split(|b| *b == b'\n').next().unwrap());
    assert!(
        header.contains(r#""snapshot_differences":{"count":1,"listed":[{"time":"2021-05-19T01:12:00Z","protocol":"aave-v2""#),
        "{header}"
    );
    assert_eq!(
        cascade_run::binary::read_binary(&run.to_bytes(cascade_run::RunForm::Binary)).unwrap(),
        run
    );
}

#[test]
fn a_position_change_at_the_snapshots_instant_applies_on_top() {
    // Bob's rows at 01:12 (WETH 5, DAI 6,000) and then, at the same second, a deposit of 1 WETH
    // (class 3 comes after the snapshots' class 2): 6 WETH against 3.6 ETH of debt,
    // wadDiv(percentMul(6e18, 8250) = 4.95e18, 3.6e18) = 1.375. The deposit closes Bob's group
    // first, so it is not mistaken for a difference.
    let mut events = aave_with_rows(
        "2021-05-19T01:12:00Z",
        &[("b0b", "WETH", 5, 0), ("b0b", "DAI", 0, 6_000)],
    );
    let deposit = events
        .iter()
        .find(|event| {
            matches!(&event.payload, Payload::Deposit(change)
                if change.account.to_string().ends_with("b0b"))
        })
        .cloned()
        .expect("Bob deposits");
    let last_row = events
        .iter()
        .rposition(|event| matches!(event.payload, Payload::PositionSnapshot(_)))
        .unwrap();
    let mut top_up = events[last_row].clone();
    let Payload::Deposit(change) = &deposit.payload else {
        unreachable!()
    };
    let mut change = *change.clone();
    change.amount = wad(1);
    top_up.payload = Payload::Deposit(Box::new(change));
    events.insert(last_row + 1, top_up);
    let (run, captures) = replay(&events, &["2021-05-19T01:12:00Z"]);
    assert_eq!(health(account(&captures[0], "b0b")), "1.375");
    assert!(
        !run.totals
            .clamped
            .contains_key("snapshot-differs-from-rebuilt")
    );
}

#[test]
fn compound_snapshot_replaces_every_market_of_the_account() {
    // At 00:10 (USDC borrow index 1.02) Bob's snapshot names only his USDC borrow balance,
    // 10,200: his 5e10 cETH (10 ETH at the 2e26 exchange rate), rebuilt from his deposit, is
    // cleared and reported. Without collateral his health is 0 / 10,200 = 0.
    let mut events = common::fixture_events_in("compound", "v2-basic");
    let borrow = events
        .iter()
        .find_map(|event| match &event.payload {
            Payload::Borrow(change) if change.account.to_string().ends_with("b0b") => {
                Some(*change.clone())
            }
            _ => None,
        })
        .expect("Bob borrows");
    let at = events
        .iter()
        .position(|event| event.time >= time("2021-05-19T00:10:00Z"))
        .unwrap();
    let mut row = events[at].clone();
    row.payload = Payload::PositionSnapshot(Box::new(PositionSnapshot {
        protocol: borrow.protocol,
        market: borrow.market,
        account: borrow.account,
        asset: borrow.asset,
        collateral: Amount(U256::ZERO),
        debt: Amount(U256::from(10_200_000_000u64)),
        scaled: false,
        collateral_enabled: None,
        e_mode: None,
    }));
    events.insert(at + 1, row);
    let (run, captures) = replay(&events, &["2021-05-19T00:10:00Z"]);
    assert_eq!(health(account(&captures[0], "b0b")), "0");
    assert_eq!(
        run.totals.clamped.get("snapshot-differs-from-rebuilt"),
        Some(&1)
    );
    let difference = &captures[0].snapshot_differences[0];
    assert_eq!(difference.asset, Id::name("ETH"));
    assert_eq!(difference.rebuilt.collateral, U256::from(50_000_000_000u64));
    assert_eq!(difference.snapshot.collateral, U256::ZERO);
}

#[test]
fn a_maker_vault_snapshot_that_differs_is_reported_with_ink_and_art() {
    // Vault #1 built from its snapshot (ink 10, art 10,000), then a second snapshot at 01:30 with
    // ink 9: replaced, and the difference names the vault, ETH, and both books.
    let mut events = vault_one_from_snapshot(10, 10_000);
    let first = events
        .iter()
        .position(|event| matches!(event.payload, Payload::PositionSnapshot(_)))
        .unwrap();
    let at = events
        .iter()
        .position(|event| event.time >= time("2021-06-01T01:30:00Z"))
        .unwrap();
    let mut again = events[first].clone();
    again.time = events[at].time;
    if let Payload::PositionSnapshot(snapshot) = &mut again.payload {
        snapshot.collateral = wad(9);
    }
    events.insert(at + 1, again);
    let (run, captures) = replay(&events, &["2021-06-01T01:30:00Z"]);
    assert_eq!(
        run.totals.clamped.get("snapshot-differs-from-rebuilt"),
        Some(&1)
    );
    let difference = &captures[0].snapshot_differences[0];
    assert_eq!(difference.account.to_string(), "#1");
    assert_eq!(
        (difference.rebuilt.collateral, difference.rebuilt.debt),
        (wad(10).0, wad(10_000).0)
    );
    assert_eq!(
        (difference.snapshot.collateral, difference.snapshot.debt),
        (wad(9).0, wad(10_000).0)
    );
}

#[test]
fn a_checkpoint_inside_a_snapshot_group_resumes_to_the_same_state() {
    // Checkpoints fall every N events, so one may split an account's rows of one instant: the
    // open group is in the checkpoint, and Bob's DAI row after it does not clear his WETH.
    let mut events = aave_with_rows(
        "2021-05-19T01:12:00Z",
        &[
            ("b0b", "WETH", 5, 0),
            ("ca201", "WETH", 1, 0),
            ("b0b", "DAI", 0, 6_500),
        ],
    );
    for (seq, event) in events.iter_mut().enumerate() {
        event.seq = seq as u64;
    }
    let split = events
        .iter()
        .position(|event| matches!(event.payload, Payload::PositionSnapshot(_)))
        .unwrap()
        + 2;
    let config = cascade_engine::EngineConfig::default();
    let mut whole = cascade_engine::Engine::new(config.clone(), cascade_engine::Mode::Historical);
    for event in &events {
        whole.apply(event).unwrap();
    }
    let mut first = cascade_engine::Engine::new(config.clone(), cascade_engine::Mode::Historical);
    for event in &events[..split] {
        first.apply(event).unwrap();
    }
    let mut resumed = cascade_engine::Engine::new(config, cascade_engine::Mode::Historical);
    resumed
        .restore(&first.checkpoint().unwrap(), split as u64)
        .expect("restores");
    for event in &events[split..] {
        resumed.apply(event).unwrap();
    }
    assert_eq!(resumed.state_hash(), whole.state_hash());
    let differences = |engine: cascade_engine::Engine| {
        engine
            .finish(Default::default())
            .unwrap()
            .totals
            .clamped
            .get("snapshot-differs-from-rebuilt")
            .copied()
    };
    // Bob's DAI (6,000 rebuilt) and Carol's USDC, which her row does not name.
    assert_eq!(differences(whole), Some(2));
    assert_eq!(differences(resumed), Some(2));
}

/// An `account-totals` event of `suffix` (an account of the v2-basic fixture) with a copy of
/// `template`'s envelope: totals in wei, the threshold and recorded health factor as text.
fn totals_event(
    template: &Event,
    market: Id,
    account: Id,
    (collateral, debt): (&str, &str),
    threshold: &str,
    health: Option<&str>,
) -> Event {
    let wei = |eth: &str| Amount::parse_tokens(eth, 18).expect("decimal ETH");
    let mut event = template.clone();
    event.payload = Payload::AccountTotals(Box::new(cascade_events::AccountTotals {
        protocol: cascade_events::Protocol::AaveV2,
        market,
        account,
        collateral: wei(collateral),
        debt: wei(debt),
        liquidation_threshold: cascade_events::Fixed::parse_exact(threshold).expect("a threshold"),
        ltv: None,
        health_factor: health
            .map(|h| cascade_events::Fixed::parse_exact(h).expect("a health factor")),
        e_mode: None,
    }));
    event
}

#[test]
fn aave_accounts_known_by_their_totals() {
    // v2-basic with Alice's, Bob's and Carol's deposit and borrow replaced by `account-totals`
    // rows at the time of their borrow (the values a `getUserAccountData` dump gave then):
    // Alice 10 ETH of collateral, 9.18 ETH of debt, 8250 bps, recorded health
    // 0.898692810457516340: wadDiv(percentMul(10e18, 8250) = 8.25e18, 9.18e18)
    // = 0.898692810457516340, a difference of 0 ppm. Bob 5 ETH, 3.6 ETH, 0.825 (a fraction),
    // recorded 1.15: computed 4.125 / 3.6 = 1.145833333333333333, (1.145833.. - 1.15) / 1.15
    // = -3623 ppm (toward zero). Carol 1 ETH, 0.918 ETH, 8250 bps: 0.898692810457516340, then a
    // deposit at 01:12 the totals cannot follow: skipped and counted, her health unknown after.
    // Frank keeps his rebuilt position (1 WETH against 1,632 USDC = 0.9792 ETH at 01:12) until a
    // totals row at 01:12 says 1 ETH against 0.99 ETH: replaced, the difference reported in ETH.
    // The USDC price moves at 01:11 and 01:17 move no totals account.
    let fixture = common::fixture_events_in("aave", "v2-basic");
    let find = |suffix: &str, borrow: bool| {
        fixture
            .iter()
            .position(|event| match &event.payload {
                Payload::Borrow(change) if borrow => change.account.to_string().ends_with(suffix),
                Payload::Deposit(change) if !borrow => change.account.to_string().ends_with(suffix),
                _ => false,
            })
            .expect("the account acts")
    };
    let ids = |suffix: &str| match &fixture[find(suffix, true)].payload {
        Payload::Borrow(change) => (change.market, change.account),
        _ => unreachable!(),
    };
    let replaced = [
        (
            "a11ce",
            ("10", "9.18"),
            "8250",
            Some("0.898692810457516340"),
        ),
        ("b0b", ("5", "3.6"), "0.825", Some("1.15")),
        ("ca201", ("1", "0.918"), "8250", None),
    ];
    let mut events = Vec::new();
    for (at, event) in fixture.iter().enumerate() {
        let mut kept = true;
        for (suffix, totals, threshold, health) in replaced {
            if at == find(suffix, false) {
                kept = false;
            }
            if at == find(suffix, true) {
                kept = false;
                let (market, account) = ids(suffix);
                events.push(totals_event(
                    event, market, account, totals, threshold, health,
                ));
            }
        }
        if kept {
            events.push(event.clone());
        }
        if event.time == time("2021-05-19T01:12:00Z") {
            let (market, frank) = ids("f4a4c");
            events.push(totals_event(
                event,
                market,
                frank,
                ("1", "0.99"),
                "8250",
                None,
            ));
            let mut top_up = fixture[find("ca201", false)].clone();
            top_up.time = event.time;
            events.push(top_up);
        }
    }
    let (run, captures) = replay(&events, &["2021-05-19T01:12:00Z", "2021-05-19T01:20:00Z"]);
    let at = &captures[0];
    let alice = account(at, "a11ce");
    assert_eq!(health(alice), "0.89869281045751634");
    assert_eq!(base(alice, alice.collateral_value), "10");
    assert_eq!(base(alice, alice.debt_value), "9.18");
    assert_eq!(alice.threshold.unwrap().to_string(), "0.825");
    assert!(alice.assets.is_empty());
    let totals = alice.totals.as_ref().expect("known by its totals");
    assert_eq!(totals.at, time("2021-05-19T00:04:00Z"));
    assert_eq!(totals.health_difference_ppm, Some(0));
    let bob = account(at, "b0b");
    assert_eq!(health(bob), "1.145833333333333333");
    assert_eq!(
        bob.totals.as_ref().unwrap().health_difference_ppm,
        Some(-3623)
    );
    let carol = account(at, "ca201");
    assert_eq!(carol.health_factor, None);
    assert!(
        carol
            .missing
            .as_deref()
            .unwrap()
            .contains("followed by a deposit at 2021-05-19T01:12:00Z"),
        "{:?}",
        carol.missing
    );
    let frank = account(at, "f4a4c");
    assert_eq!(health(frank), "0.833333333333333333");
    let difference = &at.snapshot_differences[0];
    assert!(difference.account.to_string().ends_with("f4a4c"));
    assert_eq!(difference.asset, Id::name("ETH"));
    assert_eq!(
        difference.rebuilt.debt,
        wad(9_792).0 / U256::from(10_000u64)
    );
    assert_eq!(difference.snapshot.debt, wad(99).0 / U256::from(100u64));
    assert_eq!(
        run.totals.skipped.get("account-totals-not-updatable"),
        Some(&1)
    );
    // Alice's liquidation at 01:13 is judged on the totals' health; Bob's at 01:14 is refused.
    let verdict = |suffix: &str| {
        let record = run
            .liquidations
            .iter()
            .find(|l| l.account.to_string().ends_with(suffix))
            .expect("a liquidation");
        (
            record.verdict.map(|v| v.name()),
            record.note.clone().unwrap_or_default(),
        )
    };
    let (alice_verdict, note) = verdict("a11ce");
    assert_eq!(alice_verdict, Some("explained"), "{note}");
    assert!(note.contains("known by its totals"), "{note}");
    assert_eq!(verdict("b0b").0, Some("not-liquidatable"));
    // After her liquidation Alice's totals no longer describe her.
    let alice = account(&captures[1], "a11ce");
    assert_eq!(alice.health_factor, None);
    assert!(
        alice
            .missing
            .as_deref()
            .unwrap()
            .contains("followed by a liquidation")
    );
}

#[test]
fn aave_v3_totals_are_in_usd_and_keep_their_e_mode() {
    // An Aave v3 account of 19,000 USD collateral against 16,000 USD debt at 0.83, in e-mode
    // category 1 (whose threshold the recorded 0.83 already is): health
    // wadDiv(percentMul(19,000e8, 8300) = 15,770e8, 16,000e8) = 0.985625.
    let template = common::fixture_events_in("aave", "v3-fee-and-dust").remove(0);
    let mut event = template.clone();
    event.payload = Payload::AccountTotals(Box::new(cascade_events::AccountTotals {
        protocol: cascade_events::Protocol::AaveV3,
        market: Id::name("POOL"),
        account: Id::Number(7),
        collateral: Amount(U256::from(1_900_000_000_000u64)),
        debt: Amount(U256::from(1_600_000_000_000u64)),
        liquidation_threshold: cascade_events::Fixed::parse_exact("0.83").expect("decimal"),
        ltv: Some(cascade_events::Fixed::parse_exact("0.8").expect("decimal")),
        health_factor: None,
        e_mode: Some(1),
    }));
    let (_, captures) = replay(&[event], &["2030-01-01T00:00:00Z"]);
    let position = &captures[0].accounts[0];
    assert_eq!(position.base_decimals, 8);
    assert_eq!(health(position), "0.985625");
    assert_eq!(base(position, position.debt_value), "16000");
    let totals = position.totals.as_ref().unwrap();
    assert_eq!(totals.e_mode, Some(1));
    assert_eq!(totals.ltv.unwrap().to_string(), "0.8");
}

#[test]
fn an_e_mode_snapshot_says_what_is_not_modelled() {
    // Bob's rows at 01:12 carry e-mode category 1: the balances are applied (his collateral and
    // debt values are the rebuilt ones), the row is counted as snapshot-e-mode-not-modelled, and
    // his health factor is not given: the category's threshold would replace WETH's 8250 bps.
    let mut events = aave_with_rows(
        "2021-05-19T01:12:00Z",
        &[("b0b", "WETH", 5, 0), ("b0b", "DAI", 0, 6_000)],
    );
    for event in &mut events {
        if let Payload::PositionSnapshot(snapshot) = &mut event.payload {
            snapshot.e_mode = Some(1);
        }
    }
    let (run, captures) = replay(&events, &["2021-05-19T01:12:00Z"]);
    let bob = account(&captures[0], "b0b");
    assert_eq!(bob.health_factor, None);
    assert_eq!(base(bob, bob.debt_value), "3.6");
    assert!(
        bob.missing
            .as_deref()
            .unwrap()
            .contains("e-mode category 1 (e-mode is not modelled"),
        "{:?}",
        bob.missing
    );
    assert_eq!(
        run.totals.clamped.get("snapshot-e-mode-not-modelled"),
        Some(&2)
    );
}
