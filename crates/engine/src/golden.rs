//! Golden-replay harness for the hand-built protocol fixtures (`fixtures/<protocol>/*.jsonl`),
//! shared by the protocols' tests.
//!
//! A fixture is an event log in the events' JSON form, one event per line. The harness drives a
//! model the way the replay loop does (prices into the book and then the model, liquidations
//! judged then applied, everything else applied) and compares the judgements, the final
//! liquidatable set, the risk snapshot and the state hash with `<name>.expected.json` next to
//! it, through the workspace's one golden comparison ([`cascade_run::golden`]:
//! `CASCADE_UPDATE_GOLDEN=1` rewrites the file, whose diff is then reviewed by hand against the
//! worked numbers in the folder's README). It also checks that a checkpoint of the final state
//! restores to the same bytes and the same liquidatable set.

use std::path::PathBuf;

use cascade_events::{Event, Liquidation, Payload, Timestamp};
use cascade_run::golden::assert_golden;
use serde_json::{Value, json};

use crate::core::unknown_side::judge_and_apply;
use crate::oracle::PriceBook;
use crate::protocol::{Applied, Candidate, Judgement, MarketRisk, ProtocolModel};
use crate::state::{StateReader, StateWriter, hash_hex};

/// `fixtures/<folder>/<name>`.
pub(crate) fn fixture(folder: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(folder)
        .join(name)
}

/// The events of `fixtures/<folder>/<name>`.
pub(crate) fn load(folder: &str, name: &str) -> Vec<Event> {
    let text = std::fs::read_to_string(fixture(folder, name)).unwrap();
    text.lines()
        .enumerate()
        .map(|(line, json)| {
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}:{}: {e}", line + 1))
        })
        .collect()
}

/// The fixture `folder/name` up to its first liquidation (prices and positions in place), then
/// `extra` (event payloads in their JSON form) at `time`, replayed through `model`: the judged
/// liquidations of `extra`.
pub(crate) fn judged_after_setup(
    model: &mut dyn ProtocolModel,
    folder: &str,
    name: &str,
    time: &str,
    extra: &[&str],
) -> Vec<Value> {
    let mut events = load(folder, name);
    let first_liquidation = events
        .iter()
        .position(|e| matches!(e.payload, Payload::Liquidation(_)))
        .unwrap();
    events.truncate(first_liquidation);
    events.extend(extra.iter().enumerate().map(|(index, payload)| {
        let json = format!(
            r#"{{"seq":{},"chain_id":1,"block":null,"time":"{time}","tx_index":null,"log_index":null,"tx_hash":null,"source":0,"payload":{payload}}}"#,
            first_liquidation + index
        );
        serde_json::from_str(&json).unwrap()
    }));
    replay(model, &events)
}

/// Asserts that a judged liquidation of [`replay`] names `input` of `asset` as missing.
pub(crate) fn assert_missing(judged: &Value, input: &str, asset: &str) {
    assert_eq!(
        judged["missing"],
        json!({"input": input, "asset": asset}),
        "{judged}"
    );
}

/// Drives `model` over `events` as the replay loop does; one JSON object per recorded
/// liquidation.
pub(crate) fn replay(model: &mut dyn ProtocolModel, events: &[Event]) -> Vec<Value> {
    let mut book = PriceBook::new(Vec::new());
    let mut judged = Vec::new();
    for event in events {
        match &event.payload {
            Payload::Price(update) => {
                book.record(update, event.time);
                model.on_price(update, event.time, &book).unwrap();
            }
            Payload::Liquidation(liquidation) => {
                model.prepare_judge(liquidation, event.time).unwrap();
                let judgement = model.judge(liquidation, event.time).unwrap();
                let applied = model
                    .apply_liquidation(liquidation, &judgement, event.time)
                    .unwrap();
                judged.push(entry(event, liquidation, &judgement, Some(applied)));
            }
            Payload::PartialLiquidation(partial) => {
                let (liquidation, judgement, applied) =
                    judge_and_apply(model, partial, event.time).unwrap();
                judged.push(entry(event, &liquidation, &judgement, applied));
            }
            _ => {
                model.apply(event, &book).unwrap();
            }
        }
    }
    judged
}

/// The JSON object of one judged liquidation; `applied` is `None` when nothing was applied.
fn entry(
    event: &Event,
    liquidation: &Liquidation,
    judgement: &Judgement,
    applied: Option<Applied>,
) -> Value {
    let mut entry = json!({
        "seq": event.seq,
        "account": liquidation.account.to_string(),
        "verdict": judgement.verdict.name(),
        "rule": judgement.rule,
        "health": judgement.health,
        "expected_collateral": judgement.expected_collateral,
        "expected_debt": judgement.expected_debt,
        "note": judgement.note,
        "applied": applied.map_or_else(|| "nothing".to_owned(), |a| format!("{a:?}")),
    });
    // Written only where a verdict carries them, as the run file does.
    if let Some(missing) = &judgement.missing {
        entry["missing"] = json!(missing);
    }
    if let Some(seize) = &judgement.seize {
        entry["seize"] = json!(seize);
    }
    entry
}

/// An event of `payload` at `time` with no chain position, for tests that build accounts by hand.
pub(crate) fn event_at(time: Timestamp, payload: Payload) -> Event {
    Event::at(1, time, payload)
}

/// The model's liquidatable accounts now.
pub(crate) fn candidates(model: &mut dyn ProtocolModel, time: Timestamp) -> Vec<Candidate> {
    let mut out = Vec::new();
    model.liquidatable(time, &mut out).unwrap();
    out
}

/// The model's canonical state bytes.
pub(crate) fn state_bytes(model: &dyn ProtocolModel) -> Vec<u8> {
    let mut writer = StateWriter::new();
    model.encode_state(&mut writer);
    writer.into_bytes()
}

/// Replays `fixtures/<folder>/<name>.jsonl` through `model`, compares with the expected file,
/// checks the checkpoint round trip into `fresh`, and returns the actual output.
pub(crate) fn check(
    folder: &str,
    name: &str,
    model: &mut dyn ProtocolModel,
    fresh: &mut dyn ProtocolModel,
) -> Value {
    let events = load(folder, &format!("{name}.jsonl"));
    let end = events.last().map(|e| e.time).unwrap_or(Timestamp(0));
    let liquidations = replay(model, &events);
    let unsafe_now: Vec<Value> = candidates(model, end)
        .iter()
        .map(|c| {
            json!({
                "account": c.account.to_string(),
                "health": c.health.to_string(),
                "debt_value": c.debt_value.to_string(),
            })
        })
        .collect();
    let mut risk: Vec<MarketRisk> = Vec::new();
    model.risk(end, &mut risk).unwrap();
    let risk: Vec<Value> = risk
        .iter()
        .map(|r| {
            json!({
                "market": r.market.to_string(),
                "accounts_unsafe": r.accounts_unsafe,
                "collateral_at_risk": r.collateral_at_risk,
                "debt_at_risk": r.debt_at_risk,
                "bad_debt": r.bad_debt,
            })
        })
        .collect();
    let bytes = state_bytes(model);
    let actual = json!({
        "liquidations": liquidations,
        "liquidatable_at_end": unsafe_now,
        "risk_at_end": risk,
        "state_hash": hash_hex(&bytes),
    });
    let path = fixture(folder, &format!("{name}.expected.json"));
    let rendered = serde_json::to_string_pretty(&actual).unwrap() + "\n";
    assert_golden(&path, rendered.as_bytes());

    let mut reader = StateReader::new(&bytes);
    fresh.decode_state(&mut reader).unwrap();
    reader.finish().unwrap();
    assert_eq!(state_bytes(fresh), bytes, "checkpoint round trip");
    assert_eq!(candidates(fresh, end), candidates(model, end));
    actual
}

/// Replays `fixtures/<folder>/<name>.jsonl` end to end, through a log and the replay loop with
/// every registered model (what `cascade replay` does), and compares the run file byte for byte
/// with `fixtures/expected/<folder>-<name>.json`, the file `cascade check` takes.
pub(crate) fn check_run(folder: &str, name: &str) -> Value {
    let events = load(folder, &format!("{name}.jsonl"));
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) =
        cascade_log::LogWriter::open(dir.path(), cascade_log::WriterOptions::default()).unwrap();
    for event in &events {
        writer.append(event).unwrap();
    }
    writer.commit().unwrap();
    drop(writer);
    let outcome = crate::replay_log(
        dir.path(),
        &crate::ReplayOptions::default(),
        crate::Mode::Historical,
    )
    .unwrap();
    let actual = outcome.run.to_json();
    assert_golden(
        &fixture("expected", &format!("{folder}-{name}.json")),
        &actual,
    );
    serde_json::from_slice(&actual).unwrap()
}

/// One step of a random monitoring run ([`drive_monitor`]). Accounts and assets are small
/// indices; amounts are in US cents at the asset's starting price; prices and parameters in
/// parts of the asset's starting value.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    /// Deposit (account, asset, cents).
    Deposit(u64, usize, u64),
    /// Withdraw (account, asset, cents).
    Withdraw(u64, usize, u64),
    /// Borrow (account, asset, cents).
    Borrow(u64, usize, u64),
    /// Repay (account, asset, cents).
    Repay(u64, usize, u64),
    /// Use as collateral or not (account, asset, enabled).
    Toggle(u64, usize, bool),
    /// A price update: (asset, permille of its starting price).
    Price(usize, u64),
    /// A borrow (and supply) index update: (asset, basis points of one).
    Index(usize, u64),
    /// A liquidation threshold or collateral factor: (asset, basis points).
    Threshold(usize, u64),
    /// A simulated liquidation of the account if it is liquidatable, then a check.
    Liquidate(u64),
    /// A check, as the replay loop makes after a price update or a liquidation.
    Check,
    /// The state encoded and decoded into a fresh model, which carries on.
    Restore,
}

/// A random [`Op`] over `accounts` accounts and `assets` assets.
pub(crate) fn arb_op(
    accounts: u64,
    assets: usize,
) -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0..accounts, 0..assets, 1u64..500_000).prop_map(|(a, s, n)| Op::Deposit(a, s, n)),
        2 => (0..accounts, 0..assets, 1u64..500_000).prop_map(|(a, s, n)| Op::Withdraw(a, s, n)),
        4 => (0..accounts, 0..assets, 1u64..500_000).prop_map(|(a, s, n)| Op::Borrow(a, s, n)),
        2 => (0..accounts, 0..assets, 1u64..500_000).prop_map(|(a, s, n)| Op::Repay(a, s, n)),
        1 => (0..accounts, 0..assets, any::<bool>()).prop_map(|(a, s, on)| Op::Toggle(a, s, on)),
        4 => (0..assets, 200u64..1_500).prop_map(|(s, p)| Op::Price(s, p)),
        1 => (0..assets, 10_000u64..13_000).prop_map(|(s, i)| Op::Index(s, i)),
        1 => (0..assets, 5_000u64..9_000).prop_map(|(s, t)| Op::Threshold(s, t)),
        2 => (0..accounts).prop_map(Op::Liquidate),
        2 => Just(Op::Check),
        1 => Just(Op::Restore),
    ]
}

/// What [`drive_monitor`] needs of a protocol besides the trait.
pub(crate) struct MonitorHarness<M> {
    /// A fresh model with its markets configured (not priced).
    pub fresh: fn() -> M,
    /// How many assets the ops name; each is priced at its starting price first.
    pub assets: usize,
    /// The event of an account action, index update or parameter change (`None`: skip it).
    pub event: fn(&Op) -> Option<Payload>,
    /// The price update of an [`Op::Price`].
    pub price: fn(usize, u64) -> cascade_events::PriceUpdate,
    /// Every liquidatable (market, account), by computing every account: sorted.
    pub scan: fn(&M) -> Vec<(cascade_events::Id, cascade_events::Id)>,
    /// The risk sums over the full-list set: (market, accounts, collateral, debt, bad debt).
    pub scanned_risk: fn(&mut M) -> Vec<ScannedRisk>,
}

/// A market's risk as summed over a full list.
pub(crate) type ScannedRisk = (
    cascade_events::Id,
    u64,
    cascade_events::U256,
    cascade_events::U256,
    cascade_events::U256,
);

/// Runs `ops` through a fresh model the way the replay loop does, keeping the set of unsafe
/// accounts from `unsafe_changes` alone, and after every check asserts that it equals a full
/// scan and the full list of `liquidatable`, that every reported change flips the set (except
/// the full report after a restore), and, `with_risk`, that `risk` equals the sums over the full
/// list. Without it `risk` is never called, as in a totals-only run, whose monitor keeps no
/// exposures and skips the members a one-way move cannot change.
pub(crate) fn drive_monitor<M: ProtocolModel>(
    harness: &MonitorHarness<M>,
    ops: &[Op],
    with_risk: bool,
) {
    use std::collections::BTreeSet;
    let time = Timestamp(1_700_000_000);
    let mut book = PriceBook::new(Vec::new());
    let mut model = (harness.fresh)();
    let mut tracked: BTreeSet<(cascade_events::Id, cascade_events::Id)> = BTreeSet::new();
    let mut restored = false;
    let mut changes = Vec::new();
    for asset in 0..harness.assets {
        let update = (harness.price)(asset, 1_000);
        book.record(&update, time);
        model.on_price(&update, time, &book).unwrap();
    }
    for (step, op) in ops.iter().chain([&Op::Check]).enumerate() {
        let check = match op {
            Op::Price(asset, permille) => {
                let update = (harness.price)(*asset, *permille);
                book.record(&update, time);
                model.on_price(&update, time, &book).unwrap()
            }
            Op::Liquidate(account) => {
                let found = candidates(&mut model, time)
                    .into_iter()
                    .find(|c| c.account == cascade_events::Id::Number(*account));
                if let Some(candidate) = found {
                    let choice = crate::protocol::LiquidatorChoice::default();
                    model
                        .simulate_liquidation(&candidate, &choice, time)
                        .unwrap();
                }
                true
            }
            Op::Check => true,
            Op::Restore => {
                let bytes = state_bytes(&model);
                let mut fresh = (harness.fresh)();
                fresh.decode_state(&mut StateReader::new(&bytes)).unwrap();
                model = fresh;
                restored = true;
                false
            }
            other => {
                if let Some(payload) = (harness.event)(other) {
                    model.apply(&event_at(time, payload), &book).unwrap();
                }
                false
            }
        };
        if !check {
            continue;
        }
        changes.clear();
        assert!(model.unsafe_changes(time, &mut changes).unwrap());
        for (market, account, now) in changes.drain(..) {
            let flipped = if now {
                tracked.insert((market, account))
            } else {
                tracked.remove(&(market, account))
            };
            assert!(
                flipped || restored,
                "step {step} {op:?}: {account} reported {now} again"
            );
        }
        restored = false;
        let expected: BTreeSet<_> = (harness.scan)(&model).into_iter().collect();
        assert_eq!(tracked, expected, "step {step} {op:?}: reported set");
        let listed: BTreeSet<_> = candidates(&mut model, time)
            .into_iter()
            .map(|c| (c.market, c.account))
            .collect();
        assert_eq!(listed, expected, "step {step} {op:?}: listed set");
        if !with_risk {
            continue;
        }
        let mut risks: Vec<MarketRisk> = Vec::new();
        model.risk(time, &mut risks).unwrap();
        let kept: Vec<ScannedRisk> = risks
            .iter()
            .map(|r| {
                (
                    r.market,
                    r.accounts_unsafe,
                    r.collateral_at_risk.value,
                    r.debt_at_risk.value,
                    r.bad_debt.value,
                )
            })
            .collect();
        assert_eq!(
            kept,
            (harness.scanned_risk)(&mut model),
            "step {step} {op:?}: risk"
        );
    }
}

/// A test asset: symbol, decimals, starting USD price.
pub(crate) type TestAsset = (&'static str, u8, u64);

/// The payload of an account action, index update or parameter change `op` in `market` of
/// `protocol` over `assets`; `threshold` names the parameter [`Op::Threshold`] sets, and
/// `supply_index` says whether [`Op::Index`] moves the supply index too. `None` for the other ops.
pub(crate) fn op_payload(
    protocol: cascade_events::Protocol,
    market: cascade_events::Id,
    assets: &[TestAsset],
    threshold: &str,
    supply_index: bool,
    op: &Op,
) -> Option<Payload> {
    use cascade_events::{
        Amount, CollateralToggle, Fixed, Id, IndexUpdate, ParamChange, PositionChange, Symbol, U256,
    };
    let asset = |index: usize| Id::name(assets[index].0);
    let change = |account: u64, index: usize, cents: u64| {
        let (_, decimals, price) = assets[index];
        let amount = U256::from(cents) * U256::from(10u8).pow(U256::from(decimals))
            / U256::from(100 * price);
        PositionChange {
            protocol,
            market,
            account: Id::Number(account),
            asset: asset(index),
            amount: Amount(amount),
            shares: None,
        }
    };
    Some(match *op {
        Op::Deposit(a, s, n) => Payload::Deposit(Box::new(change(a, s, n))),
        Op::Withdraw(a, s, n) => Payload::Withdraw(Box::new(change(a, s, n))),
        Op::Borrow(a, s, n) => Payload::Borrow(Box::new(change(a, s, n))),
        Op::Repay(a, s, n) => Payload::Repay(Box::new(change(a, s, n))),
        Op::Toggle(a, s, enabled) => Payload::CollateralToggle(Box::new(CollateralToggle {
            protocol,
            market,
            account: Id::Number(a),
            asset: asset(s),
            enabled,
        })),
        Op::Index(s, bps) => Payload::IndexUpdate(Box::new(IndexUpdate {
            protocol,
            market,
            asset: asset(s),
            supply_index: supply_index.then(|| Fixed::new(U256::from((bps + 10_000) / 2), 4)),
            borrow_index: Some(Fixed::new(U256::from(bps), 4)),
        })),
        Op::Threshold(s, bps) => Payload::ParamChange(Box::new(ParamChange {
            protocol,
            market: asset(s),
            param: Symbol::new(threshold).unwrap(),
            value: Fixed::new(U256::from(bps), 4),
        })),
        Op::Price(..) | Op::Liquidate(_) | Op::Check | Op::Restore => return None,
    })
}

/// The price update of `assets[index]` at `permille` of its starting price, quoted in `quote`.
pub(crate) fn test_price(
    assets: &[TestAsset],
    quote: &str,
    index: usize,
    permille: u64,
) -> cascade_events::PriceUpdate {
    use cascade_events::{Fixed, Id, U256};
    let (symbol, _, price) = assets[index];
    cascade_events::PriceUpdate {
        asset: Id::name(symbol),
        quote: Id::name(quote),
        price: Fixed::new(U256::from(price * permille), 3),
        feed: Id::name("test"),
        round: None,
    }
}
