//! A small run with every list filled, for the forms' tests.

use cascade_events::{Id, Protocol, Timestamp, U256};

use crate::{
    HealthBucket, HealthSnapshot, LiquidationRecord, LogInfo, Moment, Origin, Quantity, Run,
    RunConfig, TimelinePoint, Totals, Verdict, Window,
};

/// The run.
pub(crate) fn run() -> Run {
    let amount = |value: u64| Quantity::new(U256::from(value), 2);
    Run {
        schema_version: crate::RUN_SCHEMA_VERSION,
        log: LogInfo {
            first_seq: Some(1),
            last_seq: Some(9),
            content_hash: "ab".to_owned(),
        },
        window: Window::default(),
        scenario: None,
        config: RunConfig {
            feed_priority: Vec::new(),
            maker: Some(crate::MakerSettings {
                collateral_tolerance: Quantity::new(U256::from(51), 2),
                debt_tolerance_ppm: 1000,
                feed_lag_seconds: std::collections::BTreeMap::new(),
                max_price_age_seconds: 172_800,
                median_rule: None,
                oracle: None,
                osm_hop_seconds: 3600,
                osm_sample: "latest".to_owned(),
                price_assets: std::collections::BTreeMap::new(),
                quote: "USD".to_owned(),
            }),
            max_cascade_rounds: 32,
            params: Vec::new(),
            quote_conversions: Vec::new(),
            unsafe_threshold_seconds: 3600,
        },
        state_hash: "cd".to_owned(),
        totals: Totals::default(),
        liquidations: vec![LiquidationRecord {
            seq: 3,
            time: Timestamp(1_622_512_800),
            origin: Origin::Recorded,
            protocol: Protocol::Maker,
            market: Id::name("ETH-B"),
            account: Id::Number(1),
            tx_hash: None,
            log_index: Some(4),
            verdict: Some(Verdict::Explained),
            rule: "dog-bark".into(),
            round: None,
            health: Some(amount(90)),
            collateral_asset: Id::name("ETH"),
            collateral_seized: amount(1000),
            expected_collateral: None,
            debt_asset: Id::name("DAI"),
            debt_repaid: amount(150_050),
            expected_debt: None,
            bad_debt: None,
            collateral_sold: None,
            note: None,
            oracle: None,
            mismatch: None,
        }],
        unsafe_unliquidated: Vec::new(),
        timeline: vec![TimelinePoint {
            seq: 4,
            time: Timestamp(1_622_512_801),
            protocol: "maker".to_owned(),
            market: "ETH-B".to_owned(),
            oracle_price: Some(amount(150_000)),
            trigger: None,
            accounts_unsafe: 1,
            collateral_at_risk: amount(1),
            debt_at_risk: amount(2),
            bad_debt: amount(0),
        }],
        health_distribution: vec![HealthSnapshot {
            moment: Moment::After,
            seq: 9,
            time: Timestamp(1_622_512_900),
            protocol: "maker".to_owned(),
            market: "ETH-B".to_owned(),
            buckets: vec![HealthBucket {
                range: "<1".into(),
                accounts: 1,
                debt: amount(5),
            }],
            accounts_without_debt: 0,
            accounts_unpriced: 0,
        }],
        counterfactual: None,
    }
}
