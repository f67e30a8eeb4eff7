//! The Aave v2 subgraph export: the unit rule and the facts PROVENANCE.md lists.

mod common {
    pub mod context;
    pub mod data;
}

use cascade_events::{Amount, Id, Payload, Timestamp};
use cascade_ingest::aave_subgraph;
use common::{context::context, data::shared_data};

/// 2021-05-19T00:00:00Z.
const MAY_19: i64 = 1_621_382_400;

#[test]
fn liquidation_export_keeps_the_published_facts() {
    let Some(folder) = shared_data("aave-v2-liquidations") else {
        return;
    };
    let path = folder.join("liquidations.csv");

    // One row names a reserve (UST) the reserves file lacks: without --skip-invalid that stops
    // the ingest and says where.
    let error = aave_subgraph::read(&path, &Default::default(), &context(false))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("line 7411") && error.contains("principalReserve") && error.contains("UST"),
        "{error}"
    );

    let batch = aave_subgraph::read(&path, &Default::default(), &context(true)).unwrap();
    let report = &batch.report;
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    assert_eq!(report.rows_read, 52 + 11_497);
    assert_eq!(
        report.counters["rows in raw base units (empty liquidator)"],
        6_231 - 7
    );
    assert_eq!(
        report.counters["rows in whole tokens (liquidator given)"],
        5_266 - 1 - 1
    );
    assert_eq!(report.counters["identical duplicate rows dropped"], 7);
    assert_eq!(
        report.counters["duplicate rows differing only in prices dropped (first kept)"],
        1
    );
    assert_eq!(
        report.counters["same liquidation facts by different liquidators (kept)"],
        1
    );
    assert_eq!(report.duplicates, 8);

    let liquidations: Vec<_> = batch
        .events
        .iter()
        .filter_map(|e| match e.payload {
            Payload::Liquidation(l) => Some((e.time, l)),
            _ => None,
        })
        .collect();
    assert_eq!(liquidations.len(), 11_497 - 8 - 1);
    let may_19: Vec<_> = liquidations
        .iter()
        .filter(|(time, _)| (MAY_19..MAY_19 + 86_400).contains(&time.0))
        .collect();
    assert_eq!(may_19.len(), 679);
    let wbtc: Vec<_> = may_19
        .iter()
        .filter(|(_, l)| l.collateral_asset == Id::name("WBTC"))
        .collect();
    assert_eq!(wbtc.len(), 105);
    let total = wbtc.iter().fold(Amount::ZERO, |sum, (_, l)| {
        Amount(sum.0 + l.collateral_seized.0)
    });
    assert_eq!(total, Amount::parse_tokens("1204.40141169", 8).unwrap());

    // 52 reserves x 3 parameters, before everything else.
    let params = batch
        .events
        .iter()
        .take_while(|e| e.kind().name() == "param-change")
        .count();
    assert_eq!(params, 52 * 3);
    let first = liquidations.iter().map(|(t, _)| *t).min().unwrap();
    assert_eq!(batch.events.get(0).time, first);
    assert!(
        first >= Timestamp(1_608_163_200) && first < Timestamp(1_608_249_600),
        "2020-12-17: {first}"
    );
}
