//! The seed corpus, made from the repository's fixtures at run time (nothing generated is
//! committed): the fixture files each adapter reads, fixture events as records and as a log
//! segment, and two `eth_getLogs` entries built from the events' signatures.

use std::path::{Path, PathBuf};

use alloy_primitives::keccak256;
use cascade_events::{Event, encode};
use cascade_log::{LogReader, LogWriter, WriterOptions};

use crate::{CHAINLINK_FILE, MAPPINGS, fixtures};

/// The fixture event files (JSON lines) the record and segment seeds are made of.
const EVENT_FIXTURES: &[&str] = &[
    "aave/v2-basic.jsonl",
    "aave/v3-fee-and-dust.jsonl",
    "compound/v2-basic.jsonl",
    "maker/cat-bite.jsonl",
    "maker/dog-bark.jsonl",
];

/// For each fixture mapping (by its index in [`MAPPINGS`]), a fixture file it reads.
const MAPPED_INPUTS: &[(usize, &str)] = &[
    (0, "ingest/aave-v2/liquidations.csv"),
    (1, CHAINLINK_INPUT),
    (2, "ingest/prices.csv"),
    (3, "ingest/maker-flipside/toy_dai_borrows.csv"),
    (4, "ingest/maker-flipside/toy_dai_repayments.csv"),
    (5, "ingest/maker-flipside/toy_vault_liquidations.csv"),
    (6, "ingest/maker-flipside/TOY-Parameter-Changes.csv"),
    (7, "ingest/maker-flipside/toy_vault_creations.csv"),
    (8, "ingest/maker-flipside/toy_vault_deposits.csv"),
    (9, "ingest/maker-flipside/toy_vault_withdrawals.csv"),
];

const CHAINLINK_INPUT: &str = "ingest/eth-usd_0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419.csv";

/// A feeds file as `docs/ingest.md` describes it: the built-in ETH/USD feed and one more.
const FEEDS: &str = "[[feed]]\naddress = \"0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419\"\nasset = \"WETH\"\nquote = \"USD\"\ndecimals = 8\n\n[[feed]]\naddress = \"0x86392dC19c0b719886221c78AB11eb8Cf5c52812\"\nasset = \"stETH\"\nquote = \"ETH\"\ndecimals = 18\n";

/// One bar as the OHLCV JSON exports write them (`docs/ingest.md`).
const OHLCV_BARS: &str = r#"[{"time_period_start": "2021-05-19T00:00:00.0000000Z", "time_period_end": "2021-05-19T00:10:00.0000000Z", "price_open": 3100.250000000, "price_close": 3150.750000000, "volume_traded": 250.125000000}]"#;

fn events(fixture: &str) -> Vec<Event> {
    let path = fixtures().join(fixture);
    let text = std::fs::read_to_string(&path).expect("a fixture event file");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("a fixture event"))
        .collect()
}

/// The files of a log, relative to its folder, with their bytes.
pub type LogFiles = Vec<(PathBuf, Vec<u8>)>;

/// The files of a log of `events` in segments of at most 2 KiB, so that sealed segments with
/// their index and an unsealed last one are all there: `CURRENT` first, then the generation's
/// segments and indexes in name order. The catalog is left out: readers do not need it.
fn log_of(events: &[Event]) -> LogFiles {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = WriterOptions {
        segment_bytes: 2048,
        buffer_bytes: 4096,
    };
    let (mut writer, _) = LogWriter::open(dir.path(), options).expect("a new log");
    for event in events {
        writer.append(event).expect("an append");
    }
    writer.commit().expect("a commit");
    drop(writer);
    let generation = LogReader::open(dir.path())
        .expect("the new log opens")
        .segment_paths()
        .pop()
        .expect("a segment")
        .parent()
        .expect("a generation folder")
        .to_path_buf();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&generation)
        .expect("the generation folder")
        .map(|entry| entry.expect("a folder entry").path())
        .collect();
    files.sort();
    files.insert(0, dir.path().join("CURRENT"));
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a log file");
            let relative = path.strip_prefix(dir.path()).expect("inside the log");
            (relative.to_path_buf(), bytes)
        })
        .collect()
}

/// The log the `segment` target damages: the first event fixture's.
pub fn template_log() -> LogFiles {
    log_of(&events(EVENT_FIXTURES[0]))
}

fn word(value: u64) -> String {
    format!("{value:064x}")
}

fn address_topic(address: &str) -> String {
    format!("0x{:0>64}", address.trim_start_matches("0x"))
}

/// An ETH/USD `AnswerUpdated` from the built-in Chainlink feed and an Aave v2 `LiquidationCall`
/// from the main pool.
fn eth_logs_seed() -> String {
    let answer = keccak256("AnswerUpdated(int256,uint256,uint256)");
    let liquidation =
        keccak256("LiquidationCall(address,address,address,uint256,uint256,address,bool)");
    let weth = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2";
    let usdc = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
    let user = "0x1111111111111111111111111111111111111111";
    serde_json::json!([
        {
            "address": "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419",
            "topics": [format!("{answer:#x}"), format!("0x{}", word(230_000_000_000)), format!("0x{}", word(7))],
            "data": format!("0x{}", word(1_621_382_400)),
            "blockNumber": "0x64", "transactionHash": format!("0x{}", word(1)),
            "transactionIndex": "0x3", "logIndex": "0x0", "blockTimestamp": "0x60a45500", "removed": false
        },
        {
            "address": "0x7d2768dE32b0b80b7a3454c06BdAc94A69DDc7A9",
            "topics": [format!("{liquidation:#x}"), address_topic(weth), address_topic(usdc), address_topic(user)],
            "data": format!("0x{}{}{}{}", word(2_000_000_000), word(1_050_000_000_000_000_000), &address_topic(user)[2..], word(1)),
            "blockNumber": "0x65", "transactionHash": format!("0x{}", word(2)),
            "transactionIndex": "0x0", "logIndex": "0x1", "blockTimestamp": "0x60a4550c", "removed": false
        }
    ])
    .to_string()
}

fn put(out: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir).expect("a corpus folder");
    std::fs::write(dir.join(name), bytes).expect("a seed written");
}

fn with_pick(pick: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::try_from(pick).expect("a small index")];
    out.extend_from_slice(bytes);
    out
}

fn read(fixture: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(fixture)).expect("a fixture file")
}

fn copy_folder(out: &Path, target: &str, folder: &str, extension: &str) {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures().join(folder))
        .expect("a fixture folder")
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().expect("a file name").to_string_lossy();
        put(
            out,
            target,
            &name,
            &std::fs::read(&path).expect("a fixture file"),
        );
    }
}

/// Writes every target's seed corpus to `out/<target>/`.
pub fn write(out: &Path) {
    for fixture in EVENT_FIXTURES {
        let stem = fixture.replace(['/', '.'], "-");
        for (i, event) in events(fixture).iter().enumerate() {
            put(out, "record", &format!("{stem}-{i}"), &encode(event));
        }
    }
    // The target damages one file of the template log: its own files are the seeds.
    for (pick, (name, bytes)) in template_log().iter().enumerate() {
        let name = name.to_string_lossy().replace('/', "-");
        put(out, "segment", &name, &with_pick(pick, bytes));
    }
    copy_folder(out, "scenario", "scenarios", "toml");
    copy_folder(out, "mapping", "mappings", "toml");
    for (pick, input) in MAPPED_INPUTS {
        let name = MAPPINGS[*pick].trim_end_matches(".toml");
        put(out, "mapped_csv", name, &with_pick(*pick, &read(input)));
    }
    put(out, "price_csv", "prices.csv", &read("ingest/prices.csv"));
    put(out, "ohlcv_json", "bars.json", OHLCV_BARS.as_bytes());
    put(
        out,
        "chainlink_rounds",
        CHAINLINK_FILE,
        &read(CHAINLINK_INPUT),
    );
    put(
        out,
        "aave_subgraph",
        "liquidations.csv",
        &read("ingest/aave-v2/liquidations.csv"),
    );
    put(out, "eth_logs", "logs.json", eth_logs_seed().as_bytes());
    put(out, "feeds", "feeds.toml", FEEDS.as_bytes());
    let folder = fixtures().join("ingest/maker-flipside");
    let files = cascade_ingest::maker_flipside::input_files(&folder)
        .expect("the fixture folder is complete");
    for (pick, file) in files.iter().enumerate() {
        let name = file.file_name().expect("a file name").to_string_lossy();
        let bytes = std::fs::read(file).expect("a fixture file");
        put(out, "maker_flipside", &name, &with_pick(pick, &bytes));
    }
}
