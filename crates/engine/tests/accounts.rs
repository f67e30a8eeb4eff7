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
/// snapshots of the same assets at the same times (a deposit's amount as collateral, a
/// borrow's as debt), as a positions export taken then would record them.
fn snapshotted(events: &[Event], suffix: &str) -> Vec<Event> {
    events
        .iter()
        .map(|event| {
            let (change, deposit) = match &event.payload {
                Payload::Deposit(change) => (change, true),
                Payload::Borrow(change) => (change, false),
                _ => return event.clone(),
            };
            if !change.account.to_string().ends_with(suffix) {
                return event.clone();
            }
            let zero = Amount(U256::ZERO);
            let mut snapshot = event.clone();
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
        .collect()
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
    // Alice's 10 WETH and 15,000 USDC come from snapshots instead of a deposit and a borrow: the
    // USDC index update and prices after them give the same health, 0.898692810457516340 (see
    // the first test), and her liquidation the same verdict. A snapshot of Bob at 01:12 with
    // 6,500 DAI of debt (rebuilt: 6,000) replaces his and is reported: health
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
    let mut bob = events[at].clone();
    bob.payload = Payload::PositionSnapshot(Box::new(PositionSnapshot {
        protocol: bob_debt.protocol,
        market: bob_debt.market,
        account: bob_debt.account,
        asset: bob_debt.asset,
        collateral: Amount(U256::ZERO),
        debt: Amount(U256::from(6_500u64) * U256::from(10u8).pow(U256::from(18u8))),
        scaled: false,
        collateral_enabled: None,
        e_mode: None,
    }));
    events.insert(at + 1, bob);
    let (run, captures) = replay(&events, &["2021-05-19T01:12:00Z"]);
    let alice = account(&captures[0], "a11ce");
    assert_eq!(health(alice), "0.89869281045751634");
    assert_eq!(health(account(&captures[0], "b0b")), "1.057692307692307692");
    assert_eq!(
        run.totals.clamped.get("snapshot-differs-from-rebuilt"),
        Some(&1)
    );
    assert_eq!(
        run.liquidations[0].verdict.map(|v| v.name()),
        Some("explained")
    );
    assert_eq!(run.totals.by_kind.get("position-snapshot"), Some(&3));
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
