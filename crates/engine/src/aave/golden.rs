//! Golden-replay harness for the hand-built protocol fixtures (`fixtures/<protocol>/*.jsonl`),
//! shared by the Aave and Compound tests.
//!
//! A fixture is an event log in the events' JSON form, one event per line. The harness drives a
//! model the way the replay loop does (prices into the book and then the model, liquidations
//! judged then applied, everything else applied) and compares the judgements, the final
//! liquidatable set, the risk snapshot and the state hash with `<name>.expected.json` next to
//! it; `CASCADE_UPDATE_GOLDEN=1` rewrites that file, whose diff is then reviewed by hand against
//! the worked numbers in the folder's README. It also checks that a checkpoint of the final state
//! restores to the same bytes and the same liquidatable set.

use std::path::PathBuf;

use cascade_events::{Event, Payload, Timestamp};
use serde_json::{Value, json};

use crate::oracle::PriceBook;
use crate::protocol::{Candidate, MarketRisk, ProtocolModel};
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
                let judgement = model.judge(liquidation, event.time).unwrap();
                let applied = model
                    .apply_liquidation(liquidation, &judgement, event.time)
                    .unwrap();
                judged.push(json!({
                    "seq": event.seq,
                    "account": liquidation.account.to_string(),
                    "verdict": judgement.verdict.name(),
                    "rule": judgement.rule,
                    "health": judgement.health,
                    "expected_collateral": judgement.expected_collateral,
                    "expected_debt": judgement.expected_debt,
                    "note": judgement.note,
                    "applied": format!("{applied:?}"),
                }));
            }
            _ => {
                model.apply(event, &book).unwrap();
            }
        }
    }
    judged
}

/// An event of `payload` at `time` with no chain position, for tests that build accounts by hand.
pub(crate) fn event_at(time: Timestamp, payload: Payload) -> Event {
    Event {
        seq: 0,
        chain_id: 1,
        block: None,
        time,
        tx_index: None,
        log_index: None,
        tx_hash: None,
        source: 0,
        payload,
    }
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
    if std::env::var_os("CASCADE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with CASCADE_UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(
        rendered, expected,
        "golden replay of {folder}/{name} changed"
    );

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
    let path = fixture("expected", &format!("{folder}-{name}.json"));
    if std::env::var_os("CASCADE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with CASCADE_UPDATE_GOLDEN=1)", path.display()));
    if expected != actual {
        let diff = crate::diff_runs(
            &serde_json::from_slice::<Value>(&expected).unwrap(),
            &serde_json::from_slice::<Value>(&actual).unwrap(),
        );
        panic!("{folder}/{name} run differs:\n{}", diff.lines.join("\n"));
    }
    serde_json::from_slice(&actual).unwrap()
}
