//! Fuzz targets: every parser of bytes cascade takes from outside, as plain functions of the
//! input, so one definition serves the libFuzzer binaries (`tests/fuzz/targets/`, run by `tests/fuzz/run.sh`)
//! and the `cargo test` replay of the corpus and of every crash found (`tests/replay.rs`).
//!
//! A target may return any error for any input; it must never panic, abort or hang. File-based
//! parsers get the input written to a fresh temporary directory, under the file name their
//! fixture has (some adapters read meaning from the name, a Chainlink feed its address).

pub mod seeds;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cascade_engine::counterfactual::scenario::Scenario;
use cascade_events::Id;
use cascade_ingest::{
    Context, Mapping, NoProgress, aave_subgraph, chainlink_rounds, eth_logs, maker_flipside,
    mapped_csv, ohlcv_json, price_csv,
};
use cascade_log::LogReader;

/// A fuzz target: the name of its binary and corpus folder, and the function under test.
pub struct Target {
    /// Binary, corpus and crash folder name.
    pub name: &'static str,
    /// Runs the input through the code under test.
    pub run: fn(&[u8]),
}

/// Every target, in the order `tests/fuzz/run.sh` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "record",
        run: record,
    },
    Target {
        name: "segment",
        run: segment,
    },
    Target {
        name: "scenario",
        run: scenario,
    },
    Target {
        name: "mapping",
        run: mapping,
    },
    Target {
        name: "mapped_csv",
        run: mapped_csv,
    },
    Target {
        name: "price_csv",
        run: price_csv,
    },
    Target {
        name: "ohlcv_json",
        run: ohlcv_json,
    },
    Target {
        name: "chainlink_rounds",
        run: chainlink_rounds,
    },
    Target {
        name: "aave_subgraph",
        run: aave_subgraph,
    },
    Target {
        name: "eth_logs",
        run: eth_logs,
    },
    Target {
        name: "maker_flipside",
        run: maker_flipside,
    },
    Target {
        name: "feeds",
        run: feeds,
    },
];

/// The repository's `fixtures/` folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// The fixture mappings `mapped_csv` picks from with its first input byte.
pub const MAPPINGS: &[&str] = &[
    "aave-v2-liquidations.toml",
    "chainlink-eth-usd.toml",
    "coingecko-prices.toml",
    "maker-dai-mints.toml",
    "maker-dai-repayments.toml",
    "maker-liquidations.toml",
    "maker-parameter-changes.toml",
    "maker-vault-creations.toml",
    "maker-vault-deposits.toml",
    "maker-vault-withdrawals.toml",
];

/// The Chainlink rounds fixture's name: the adapter finds the feed by the address in it.
pub const CHAINLINK_FILE: &str = "eth-usd_0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419.csv";

fn context(progress: &NoProgress) -> Context<'_> {
    Context {
        source: 1,
        // Quarantining bad rows reads every row, where failing stops at the first.
        skip_invalid: true,
        chain_id: 1,
        progress,
    }
}

thread_local! {
    /// Each thread's scratch directory: made once, since a directory per input would cost more
    /// than most targets' parsing.
    static SCRATCH: tempfile::TempDir = tempfile::tempdir().expect("a temporary directory");
}

/// Writes `data` to `name` in this thread's scratch directory.
fn scratch(name: &str, data: &[u8]) -> PathBuf {
    let path = SCRATCH.with(|dir| dir.path().join(name));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("a scratch folder");
    }
    std::fs::write(&path, data).expect("the input written");
    path
}

/// `cascade_events::decode` of one record payload.
pub fn record(data: &[u8]) {
    let _ = cascade_events::decode(0, data);
}

/// The log reader (from the start, and from the middle through the sparse index) and `verify`
/// over a log of several segments: the first input byte picks which of its files (`CURRENT`,
/// a sealed segment, an index, the last segment) the rest replaces.
pub fn segment(data: &[u8]) {
    static TEMPLATE: OnceLock<seeds::LogFiles> = OnceLock::new();
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let files = TEMPLATE.get_or_init(seeds::template_log);
    let replaced = usize::from(pick) % files.len();
    let mut dir = PathBuf::new();
    for (i, (name, bytes)) in files.iter().enumerate() {
        let bytes = if i == replaced { content } else { bytes };
        let path = scratch(&Path::new("log").join(name).to_string_lossy(), bytes);
        if i == 0 {
            dir = path.parent().expect("the log folder").to_path_buf();
        }
    }
    if let Ok(reader) = LogReader::open(&dir) {
        for from in [0, reader.next_seq() / 2] {
            for event in reader.events(from) {
                if event.is_err() {
                    break;
                }
            }
        }
    }
    let _ = cascade_log::verify(&dir);
}

/// The scenario parser and validator.
pub fn scenario(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let base = SCRATCH.with(|dir| dir.path().join("scenario"));
        let _ = Scenario::parse(text, "fuzz.toml", "fuzz", &base);
    }
}

/// The mapping file parser.
pub fn mapping(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Mapping::from_toml(Path::new("fuzz.toml"), text);
    }
}

/// The generic CSV adapter: the first byte picks a fixture mapping, the rest is the CSV.
pub fn mapped_csv(data: &[u8]) {
    let Some((&pick, csv)) = data.split_first() else {
        return;
    };
    // Parsed once: compiling a mapping costs more than reading a small CSV through it.
    static PARSED: OnceLock<Vec<Mapping>> = OnceLock::new();
    let mappings = PARSED.get_or_init(|| {
        MAPPINGS
            .iter()
            .map(|name| {
                Mapping::from_file(&fixtures().join("mappings").join(name))
                    .expect("the fixture mappings parse")
            })
            .collect()
    });
    let mapping = &mappings[usize::from(pick) % mappings.len()];
    let path = scratch("input.csv", csv);
    let _ = mapped_csv::read(&[path], mapping, &context(&NoProgress));
}

/// The price CSV adapter.
pub fn price_csv(data: &[u8]) {
    let path = scratch("prices.csv", data);
    let _ = price_csv::read(
        &[path],
        &price_csv::Options::default(),
        &context(&NoProgress),
    );
}

/// The OHLCV JSON adapter.
pub fn ohlcv_json(data: &[u8]) {
    let path = scratch("05-19-2021.json", data);
    let options = ohlcv_json::Options {
        asset: Some(Id::name("WETH")),
        ..ohlcv_json::Options::default()
    };
    let _ = ohlcv_json::read(&[path], &options, &context(&NoProgress));
}

/// The Chainlink rounds adapter, the feed known by the address in the file name.
pub fn chainlink_rounds(data: &[u8]) {
    let path = scratch(CHAINLINK_FILE, data);
    let _ = chainlink_rounds::read(
        &path,
        &chainlink_rounds::Options {
            table: cascade_ingest::feeds::FeedTable::built_in(),
            ..chainlink_rounds::Options::default()
        },
        &context(&NoProgress),
    );
}

/// The Aave subgraph liquidations adapter, with the fixture's reserves file.
pub fn aave_subgraph(data: &[u8]) {
    let path = scratch("liquidations.csv", data);
    let options = aave_subgraph::Options {
        reserves: Some(fixtures().join("ingest/aave-v2/tokens.csv")),
    };
    let _ = aave_subgraph::read(&path, &options, &context(&NoProgress));
}

/// The `eth_getLogs` adapter, with the built-in contracts and feeds.
pub fn eth_logs(data: &[u8]) {
    let path = scratch("logs.json", data);
    let _ = eth_logs::read(&path, &eth_logs::Options::default(), &context(&NoProgress));
}

/// The feeds file parser (`--feeds`).
pub fn feeds(data: &[u8]) {
    let path = scratch("feeds.toml", data);
    let _ = cascade_ingest::feeds::FeedTable::with_file(&path);
}

/// The Maker Flipside adapter: the first byte picks which of the folder's seven files the rest
/// replaces; the other six are the fixture's.
pub fn maker_flipside(data: &[u8]) {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    static FILES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    let files = FILES.get_or_init(|| {
        let fixture = fixtures().join("ingest/maker-flipside");
        maker_flipside::input_files(&fixture)
            .expect("the fixture folder is complete")
            .iter()
            .map(|file| {
                let name = Path::new("maker").join(file.file_name().expect("a file name"));
                let bytes = std::fs::read(file).expect("a fixture file");
                (name.to_string_lossy().into_owned(), bytes)
            })
            .collect()
    });
    let replaced = usize::from(pick) % files.len();
    let mut folder = PathBuf::new();
    for (i, (name, bytes)) in files.iter().enumerate() {
        let bytes = if i == replaced { content } else { bytes };
        folder = scratch(name, bytes);
    }
    folder.pop();
    let _ = maker_flipside::read(&folder, &context(&NoProgress));
}
