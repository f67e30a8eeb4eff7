//! A mapping file through the generic `csv` kind reproduces the built-in CSV adapters event for
//! event: on the hand-made fixtures always, and on the real files when `../shared/data` is there.
#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing

mod common {
    pub mod context;
    pub mod data;
    pub mod fixtures;
    pub mod log;
}

use std::path::{Path, PathBuf};

use cascade_events::{Event, EventKind};
use cascade_ingest::{
    Mapping, Source, SourceBatch, aave_subgraph, chainlink_rounds, feeds::FeedTable,
    maker_flipside, mapped_csv, price_csv,
};
use common::{context::context, data::shared_data, fixtures::fixtures, log::log_of};

/// The fixture mapping for each Maker file, with the kind the file produces.
const MAKER: [(&str, EventKind); 7] = [
    ("maker-parameter-changes.toml", EventKind::ParamChange),
    ("maker-vault-creations.toml", EventKind::VaultOpen),
    ("maker-vault-deposits.toml", EventKind::Deposit),
    ("maker-vault-withdrawals.toml", EventKind::Withdraw),
    ("maker-dai-mints.toml", EventKind::Borrow),
    ("maker-dai-repayments.toml", EventKind::Repay),
    ("maker-liquidations.toml", EventKind::Liquidation),
];

fn mapping(name: &str) -> Mapping {
    Mapping::from_file(&fixtures("mappings").join(name)).unwrap()
}

/// Compares each Maker file read through its mapping with the built-in adapter's events of that
/// file. `dog_from_block` is the Cat/Dog switch the folder's parameter file names (the shipped
/// liquidation mapping carries ETH-B's, which the built-in adapter reads from that file).
fn maker_equivalence(folder: &Path, dog_from_block: &str) {
    let built_in = maker_flipside::read(folder, &context(false)).unwrap();
    let files = maker_flipside::input_files(folder).unwrap();
    let mut total = 0;
    for ((name, kind), file) in MAKER.iter().zip(files.iter()) {
        let path = fixtures("mappings").join(name);
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "maker_dog_from_block = 12381609",
            &format!("maker_dog_from_block = {dog_from_block}"),
        );
        let mapping = Mapping::from_toml(&path, &text).unwrap();
        let mapped =
            mapped_csv::read(std::slice::from_ref(file), &mapping, &context(false)).unwrap();
        let expected: Vec<Event> = built_in
            .events
            .iter()
            .filter(|e| e.kind() == *kind)
            .collect();
        let got: Vec<Event> = mapped.events.iter().collect();
        assert_eq!(got, expected, "{name} on {}", file.display());
        assert!(!got.is_empty(), "{name}");
        total += got.len();
    }
    assert_eq!(total, built_in.events.len());
}

#[test]
fn maker_mappings_reproduce_the_built_in_adapter_on_the_fixture() {
    maker_equivalence(&fixtures("ingest/maker-flipside"), "300");
}

#[test]
fn maker_mappings_reproduce_the_built_in_adapter_on_the_ethb_set() {
    let Some(folder) = shared_data("maker-ethb") else {
        return;
    };
    maker_equivalence(&folder, "12381609");
}

fn price_files() -> Vec<PathBuf> {
    let mut files = vec![fixtures("ingest/prices.csv")];
    if let Some(path) = shared_data("prices/coingecko-hourly/WETH_usd.csv") {
        files.push(path);
    }
    files
}

#[test]
fn coingecko_mapping_reproduces_price_csv() {
    for path in price_files() {
        let built_in = log_of(
            Source::PriceCsv {
                path: path.clone(),
                options: price_csv::Options::default(),
            },
            false,
        );
        let mapped = log_of(
            Source::Csv {
                path: path.clone(),
                mapping: mapping("coingecko-prices.toml"),
            },
            false,
        );
        assert!(!built_in.is_empty());
        assert_eq!(mapped, built_in, "{}", path.display());
    }
}

#[test]
fn chainlink_mapping_reproduces_chainlink_rounds() {
    let mut files = vec![fixtures(
        "ingest/eth-usd_0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419.csv",
    )];
    if let Some(folder) = shared_data("chainlink") {
        files.push(folder.join("eth-usd_0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419.csv"));
    }
    for path in files {
        let built_in = log_of(
            Source::ChainlinkRounds {
                path: path.clone(),
                options: chainlink_rounds::Options {
                    table: FeedTable::built_in(),
                    ..Default::default()
                },
            },
            true,
        );
        let mapped = log_of(
            Source::Csv {
                path: path.clone(),
                mapping: mapping("chainlink-eth-usd.toml"),
            },
            true,
        );
        assert!(built_in.len() >= 3);
        assert_eq!(mapped.len(), built_in.len(), "{}", path.display());
        for (index, (m, b)) in mapped.iter().zip(&built_in).enumerate() {
            assert_eq!(m, b, "{} event {index}", path.display());
        }
    }
}

/// The adapter's report counters and the mapping's names for the same counts.
const AAVE_COUNTERS: [(&str, &str); 7] = [
    (
        "rows in raw base units (empty liquidator)",
        "rows in raw base units (empty liquidator)",
    ),
    (
        "rows in whole tokens (liquidator given)",
        "rows in whole tokens (liquidator given)",
    ),
    (
        "identical duplicate rows dropped",
        "identical duplicate rows dropped",
    ),
    (
        "duplicate rows differing only in prices dropped (first kept)",
        "duplicate rows differing outside the key dropped (first kept)",
    ),
    (
        "same liquidation facts by different liquidators (kept)",
        "rows like an earlier row in the `similar` columns, key differs (kept)",
    ),
    (
        "rows checked against their own prices",
        "liquidations checked against their own prices",
    ),
    (
        "rows without both prices (unit rule not checkable)",
        "liquidations without both prices (plausibility not checkable)",
    ),
];

/// Reads an Aave export with the built-in adapter and through the shipped mapping (bad rows
/// quarantined), asserts they agree event for event and in every count, and returns both.
fn aave_equivalence(folder: &Path) -> (SourceBatch, SourceBatch) {
    let path = folder.join("liquidations.csv");
    let built_in = aave_subgraph::read(&path, &Default::default(), &context(true)).unwrap();
    let mapped = mapped_csv::read(
        std::slice::from_ref(&path),
        &mapping("aave-v2-liquidations.toml"),
        &context(true),
    )
    .unwrap();
    let (got, expected) = (mapped.events.to_vec(), built_in.events.to_vec());
    assert_eq!(got.len(), expected.len(), "{}", path.display());
    for (index, (m, b)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(m, b, "{} event {index}", path.display());
    }
    let (m, b) = (&mapped.report, &built_in.report);
    assert_eq!(m.rows_read, b.rows_read);
    assert_eq!(m.duplicates, b.duplicates);
    assert_eq!(m.flagged.len(), b.flagged.len());
    let where_ = |report: &cascade_ingest::SourceReport| {
        report
            .rejected
            .iter()
            .map(|r| (r.position, r.column.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(where_(m), where_(b));
    for (adapter, mapping) in AAVE_COUNTERS {
        assert_eq!(
            m.counters.get(mapping),
            b.counters.get(adapter),
            "{mapping} vs {adapter}"
        );
    }
    (built_in, mapped)
}

#[test]
fn aave_mapping_reproduces_the_built_in_adapter_on_the_fixture() {
    let folder = fixtures("ingest/aave-v2");
    let (built_in, _) = aave_equivalence(&folder);
    let report = &built_in.report;
    // 4 reserves and 14 rows: 9 raw (5 kept), 5 in whole tokens (4 kept).
    assert_eq!(report.rows_read, 4 + 14);
    assert_eq!(
        report.counters["rows in raw base units (empty liquidator)"],
        5
    );
    assert_eq!(
        report.counters["rows in whole tokens (liquidator given)"],
        4
    );
    assert_eq!(report.duplicates, 3);
    assert_eq!(report.rejected.len(), 2);
    // 4 reserves x 3 parameters, then 9 liquidations with 12 prices.
    assert_eq!(built_in.events.len(), 12 + 9 + 12);
    aave_logs_agree(&folder);
}

/// Ingests the export into a log both ways and checks the logs are the same event for event
/// (the lookup file is one of the source's inputs; `prices = "per-row"` keeps every price, as
/// the adapter's source kind does).
fn aave_logs_agree(folder: &Path) {
    let path = folder.join("liquidations.csv");
    let adapter_log = log_of(
        Source::AaveSubgraphLiquidations {
            path: path.clone(),
            options: Default::default(),
        },
        true,
    );
    let mapped_log = log_of(
        Source::Csv {
            path,
            mapping: mapping("aave-v2-liquidations.toml"),
        },
        true,
    );
    assert_eq!(mapped_log.len(), adapter_log.len());
    for (index, (m, b)) in mapped_log.iter().zip(&adapter_log).enumerate() {
        assert_eq!(m, b, "log event {index}");
    }
}

#[test]
fn aave_mapping_reproduces_the_built_in_adapter_on_the_real_export() {
    let Some(folder) = shared_data("aave-v2-liquidations") else {
        return;
    };
    let (built_in, mapped) = aave_equivalence(&folder);
    aave_logs_agree(&folder);
    eprintln!(
        "aave-v2-liquidations: {} events; mapping counters {:?}; adapter counters {:?}",
        mapped.events.len(),
        mapped.report.counters,
        built_in.report.counters
    );
    assert_eq!(
        mapped.report.counters["rows in raw base units (empty liquidator)"],
        6_231 - 7
    );
    assert_eq!(
        mapped.report.counters["rows in whole tokens (liquidator given)"],
        5_266 - 1 - 1
    );
}
