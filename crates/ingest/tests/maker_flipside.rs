//! The Maker Flipside adapter on the real ETH-B export and on hand-made folders.
#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing

mod common {
    pub mod context;
    pub mod data;
    pub mod fixtures;
}

use std::collections::BTreeMap;

use cascade_events::{Amount, Event, EventKind, Id, LiquidationDetail, Payload, Timestamp};
use cascade_ingest::maker_flipside;
use common::{context::context, data::shared_data, fixtures::fixtures};

#[test]
fn whole_ethb_set_has_the_expected_counts_and_range() {
    let Some(folder) = shared_data("maker-ethb") else {
        return;
    };
    let batch = maker_flipside::read(&folder, &context(false)).unwrap();
    let counts = by_kind(batch.events.iter());
    assert_eq!(counts["vault-open"], 1_025);
    assert_eq!(counts["deposit"], 9_742);
    assert_eq!(counts["withdraw"], 9_020);
    assert_eq!(counts["borrow"], 9_641);
    assert_eq!(counts["repay"], 6_685);
    assert_eq!(counts["liquidation"], 499);
    assert_eq!(counts["param-change"], 590);
    assert_eq!(counts.len(), 7, "{counts:?}");
    assert!(batch.report.rejected.is_empty());
    assert_eq!(
        batch.report.rows_read,
        1_025 + 9_742 + 9_020 + 9_641 + 6_685 + 499 + 590
    );

    let first = batch.events.iter().map(|e| e.time).min().unwrap();
    let last = batch.events.iter().map(|e| e.time).max().unwrap();
    assert!(first.to_rfc3339().starts_with("2020-10-19"), "{first}");
    assert!(last.to_rfc3339().starts_with("2023-01"), "{last}");

    // Every event is an ETH-B event with a block.
    assert!(
        batch
            .events
            .iter()
            .all(|e| e.block.is_some() && e.chain_id == 1)
    );
    let eth_b = Id::name("ETH-B");
    for event in batch.events.iter() {
        let market = match &event.payload {
            Payload::VaultOpen(e) => e.market,
            Payload::Deposit(e) | Payload::Withdraw(e) | Payload::Borrow(e) | Payload::Repay(e) => {
                e.market
            }
            Payload::Liquidation(e) => e.market,
            Payload::ParamChange(e) => e.market,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(market, eth_b);
    }
}

#[test]
fn ethb_liquidations_switch_from_cat_to_dog_on_2021_05_06() {
    let Some(folder) = shared_data("maker-ethb") else {
        return;
    };
    let batch = maker_flipside::read(&folder, &context(false)).unwrap();
    assert_eq!(
        batch
            .report
            .counters
            .get("Dog/Clipper live from block 12381609"),
        Some(&1)
    );
    let switch = Timestamp(1_620_315_910); // 2021-05-06 15:45:10 UTC
    let (mut cat, mut dog) = (0, 0);
    for event in batch
        .events
        .iter()
        .filter(|e| e.kind() == EventKind::Liquidation)
    {
        let Payload::Liquidation(liquidation) = &event.payload else {
            unreachable!()
        };
        match liquidation.detail {
            LiquidationDetail::MakerCat { tab, .. } => {
                cat += 1;
                assert!(event.time < switch);
                assert_eq!(tab, Some(liquidation.debt_repaid));
            }
            LiquidationDetail::MakerDog { due, .. } => {
                dog += 1;
                assert!(event.time > switch);
                assert_eq!(due, Some(liquidation.debt_repaid));
            }
            other => panic!("unexpected detail {other:?}"),
        }
        // The export rounds seized collateral to whole ETH.
        assert!((liquidation.collateral_seized.0 % Amount::from_units(10u128.pow(18)).0).is_zero());
    }
    assert_eq!(cat + dog, 499);
    assert_eq!(
        batch.report.counters["liquidations read as Cat bites (tab)"],
        cat
    );
    assert!(
        cat > 363,
        "vault #21348 alone was bitten 363 times before the switch: {cat}"
    );
    assert!(dog > 0);
}

#[test]
fn ethb_amounts_are_exact() {
    let Some(folder) = shared_data("maker-ethb") else {
        return;
    };
    let batch = maker_flipside::read(&folder, &context(false)).unwrap();
    // The smallest withdrawal is written `-8e-18`: eight wei.
    let smallest = batch
        .events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Withdraw(w) => Some(w.amount),
            _ => None,
        })
        .min()
        .unwrap();
    assert_eq!(smallest, Amount::from_units(8));
    // `mat` 1.3 exactly as written, with the BOM stripped from the header.
    let mat = batch
        .events
        .iter()
        .find_map(|e| match &e.payload {
            Payload::ParamChange(p) if p.param.as_str() == "SPOTTER.ilks.mat" => Some(p.value),
            _ => None,
        })
        .unwrap();
    assert_eq!(mat.to_string(), "1.3");
}

#[test]
fn fixture_folder_covers_the_export_traps() {
    let folder = fixtures("ingest/maker-flipside");
    let batch = maker_flipside::read(&folder, &context(false)).unwrap();
    let counts = by_kind(batch.events.iter());
    assert_eq!(counts["param-change"], 3);
    assert_eq!(
        counts["liquidation"], 3,
        "identical bites in one block are both kept"
    );
    assert_eq!(batch.report.counters["Dog/Clipper live from block 300"], 1);
    assert_eq!(
        batch.report.counters["liquidations read as Cat bites (tab)"],
        2
    );
    assert_eq!(
        batch.report.counters["liquidations read as Dog barks (due)"],
        1
    );
    let withdrawals: Vec<Amount> = batch
        .events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Withdraw(w) => Some(w.amount),
            _ => None,
        })
        .collect();
    assert_eq!(
        withdrawals,
        [
            Amount::from_units(1_500_000_000_000_000_000),
            Amount::from_units(8)
        ]
    );
    // The single-digit hour of the parameter file.
    let dog = batch.events.iter().find(|e| e.block == Some(300)).unwrap();
    assert_eq!(dog.time, Timestamp(1_609_632_000));
}

/// Copies the fixture folder into a temp dir so a test can damage one file.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures("ingest/maker-flipside")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

#[test]
fn missing_or_ambiguous_files_are_errors() {
    let dir = fixture_copy();
    std::fs::remove_file(dir.path().join("toy_dai_repayments.csv")).unwrap();
    let error = maker_flipside::read(dir.path(), &context(false))
        .unwrap_err()
        .to_string();
    assert!(error.contains("no DAI repayments file"), "{error}");
    std::fs::write(
        dir.path().join("toy_dai_repayments.csv"),
        "BLOCK_NUMBER,BLOCK_TIMESTAMP,VAULT_NUMBER,DAI_REPAYED\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("more_dai_repayments.csv"), "x\n").unwrap();
    let error = maker_flipside::read(dir.path(), &context(false))
        .unwrap_err()
        .to_string();
    assert!(error.contains("several DAI repayments files"), "{error}");
}

#[test]
fn wrong_signs_types_and_precision_name_the_cell() {
    let cases = [
        (
            "toy_vault_withdrawals.csv",
            "130,2021-01-01 00:06:00.000,0x000000000000000000000000000000000000a001,ETH-B,1,1.5\n",
            "WITHDRAWN_AMOUNT_ADJ",
            "expected a negative amount",
        ),
        (
            "toy_vault_deposits.csv",
            "130,2021-01-01 00:06:00.000,0x000000000000000000000000000000000000a001,ETH-B,1,-2\n",
            "DEPOSIT_AMOUNT_ADJ",
            "negative amount",
        ),
        (
            "toy_vault_deposits.csv",
            "130,2021-01-01 00:06:00.000,0x000000000000000000000000000000000000a001,ETH-B,1,0.0000000000000000001\n",
            "DEPOSIT_AMOUNT_ADJ",
            "more decimals than the token has (18)",
        ),
        (
            "toy_dai_borrows.csv",
            "130,2021-01-01 00:06:00.000,vault-one,5\n",
            "VAULT_NUMBER",
            "not a non-negative integer",
        ),
        (
            "toy_dai_borrows.csv",
            "130,01/01/2021 00:06,1,5\n",
            "BLOCK_TIMESTAMP",
            "not a time",
        ),
    ];
    for (file, row, column, reason) in cases {
        let dir = fixture_copy();
        let path = dir.path().join(file);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(row);
        std::fs::write(&path, &text).unwrap();
        let error = maker_flipside::read(dir.path(), &context(false)).unwrap_err();
        let cascade_ingest::IngestError::Row(row_error) = &error else {
            panic!("{error}")
        };
        assert_eq!(row_error.column, column, "{error}");
        assert!(row_error.reason.contains(reason), "{error}");
        assert_eq!(
            row_error.position,
            cascade_ingest::Position::Line(text.lines().count() as u64)
        );
        assert!(error.to_string().contains(file));
        // With --skip-invalid the row is set aside and the rest is read.
        let batch = maker_flipside::read(dir.path(), &context(true)).unwrap();
        assert_eq!(batch.report.rejected.len(), 1);
    }
}

#[test]
fn two_ilks_in_the_creation_file_are_refused() {
    let dir = fixture_copy();
    let path = dir.path().join("toy_vault_creations.csv");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(
        "140,2021-01-01 00:08:00.000,3,ETH-A,0x000000000000000000000000000000000000a003\n",
    );
    std::fs::write(&path, text).unwrap();
    let error = maker_flipside::read(dir.path(), &context(false))
        .unwrap_err()
        .to_string();
    assert!(error.contains("several ilks (ETH-A, ETH-B)"), "{error}");
}

/// Events counted by kind name.
fn by_kind(events: impl IntoIterator<Item = Event>) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts.entry(event.kind().name()).or_default() += 1;
    }
    counts
}
