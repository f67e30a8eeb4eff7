//! Parameter changes decoded from the contracts' own logs reach the model: a Spotter `file` note
//! (LibNote) of a new `mat`, decoded by the `eth-logs` adapter, flips a verdict of the
//! `dog-bark` fixture.

mod common;

use cascade_engine::{Mode, ReplayOptions, Run, replay_log};
use cascade_events::{Event, Id};
use cascade_ingest::{Context, NoProgress, eth_logs};

/// The mainnet Spotter's note of `file("ETH-B", "mat", 2.2 ray)` at 2021-06-01 03:30:00
/// (block time 0x60b5a9b8): topics the selector of `file(bytes32,bytes32,uint256)` (0x1a0b287e),
/// the caller, the ilk and `what`; data the ABI `bytes` of the calldata (offset 0x20, length
/// 0xe0, the call zero-padded to 224 bytes); 2.2e27 = 0x71bcc1ef9311a1f98000000.
fn spotter_mat_note() -> Vec<Event> {
    let ilk = "4554482d42000000000000000000000000000000000000000000000000000000";
    let what = "6d61740000000000000000000000000000000000000000000000000000000000";
    let value = format!("{:0>64}", "71bcc1ef9311a1f98000000");
    let calldata = format!("1a0b287e{ilk}{what}{value}");
    let log = serde_json::json!({
        "address": "0x65c79fcb50ca1594b025960e539ed7a9a6d434a3",
        "topics": [
            "0x1a0b287e00000000000000000000000000000000000000000000000000000000",
            "0x000000000000000000000000be8e3e3618f7474f8cb1d074a26affef007e98fb",
            format!("0x{ilk}"),
            format!("0x{what}"),
        ],
        "data": format!("0x{:064x}{:064x}{calldata:0<448}", 0x20, 224),
        "blockNumber": "0xbebc20",
        "transactionHash": format!("0x{}", "ab".repeat(32)),
        "transactionIndex": "0x0",
        "logIndex": "0x0",
        "blockTimestamp": "0x60b5a9b8",
    });
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("notes.json");
    std::fs::write(&path, serde_json::Value::Array(vec![log]).to_string()).expect("logs file");
    let context = Context {
        source: 0,
        skip_invalid: false,
        chain_id: 1,
        progress: &NoProgress,
    };
    let batch =
        eth_logs::read(&path, &eth_logs::Options::default(), &context).expect("the note decodes");
    batch.events.iter().collect()
}

fn replay(events: &[Event]) -> Run {
    let log = common::build_log(events);
    replay_log(log.path(), &ReplayOptions::default(), Mode::Historical)
        .expect("replays")
        .run
}

fn verdict_of(run: &Run, vault: u64) -> &'static str {
    run.liquidations
        .iter()
        .find(|l| l.account == Id::Number(vault))
        .and_then(|l| l.verdict)
        .map_or("-", |v| v.name())
}

/// Vault #2 (10 ETH, 5,000 DAI) barked at 04:00:05, when the OSM shows 1,050 (fixtures/maker/
/// README.md): with `mat` 1.5 its spot is 700, 10 x 700 = 7,000 > 5,000: `not-liquidatable`.
/// The decoded note files `mat` 2.2 at 03:30 (the Spotter re-pokes): spot = 1,050 / 2.2 =
/// 477.27, 10 x 477.27 = 4,772.7 < 5,000: unsafe; the auctions of 02:00 have settled, so the
/// Dog's room is the whole `hole` (30,000) and `dart = min(5,000, 30,000 / 1.13)` = 5,000: the
/// whole vault, as recorded: `explained`.
#[test]
fn a_decoded_spotter_mat_note_flips_a_verdict() {
    let fixture = common::fixture_events("dog-bark");
    assert_eq!(verdict_of(&replay(&fixture), 2), "not-liquidatable");

    let note = spotter_mat_note();
    assert_eq!(note.len(), 1);
    let mut events = fixture;
    events.extend(note);
    events.sort_by_key(|event| event.time);
    assert_eq!(verdict_of(&replay(&events), 2), "explained");
}
