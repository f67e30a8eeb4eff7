//! The Maker Flipside adapter on the real ETH-B export and on hand-made folders.

mod common;

use cascade_events::{Amount, EventKind, Id, LiquidationDetail, Payload, Timestamp};
use cascade_ingest::maker_flipside;
use common::{by_kind, context, shared_data};

#[test]
fn whole_ethb_set_has_the_expected_counts_and_range() {
    let Some(folder) = shared_data("maker-ethb") else {
        return;
    };
    let batch = maker_flipside::read(&folder, &context(false)).unwrap();
    let counts = by_kind(&batch.events);
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
    for event in &batch.events {
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
