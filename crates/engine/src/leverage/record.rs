//! A [`Book`] as the run file writes it: `leverage_over_time`, `liquidation_ladder` and
//! `overlap` (`docs/run-format.md`).

use std::collections::BTreeMap;

use cascade_events::{Protocol, Timestamp, U256};

use crate::leverage::book::{
    Book, DEPTH_NAMES, LEVERAGE_NAMES, LTV_NAMES, RUNG_NAMES, Summary, TOP_N,
};
use crate::leverage::positions::USD_DECIMALS;
use crate::protocol::Quantity;
use crate::run::{
    BookMoment, CountBucket, CrossLoop, GroupAmount, LadderRung, LeverageSample, OverlapOwners,
    OverlapReport,
};

fn usd(value: U256) -> Quantity {
    Quantity::new(value, USD_DECIMALS)
}

fn buckets(names: &[&'static str], counts: &[u64]) -> Vec<CountBucket> {
    names
        .iter()
        .zip(counts)
        .map(|(range, accounts)| CountBucket {
            range: (*range).into(),
            accounts: *accounts,
        })
        .collect()
}

/// Where and when a sample was taken.
#[derive(Clone, Copy, Debug)]
pub struct Taken {
    /// Start of the period.
    pub period: i64,
    /// Its length, seconds.
    pub period_seconds: i64,
    /// The event.
    pub seq: u64,
    /// Its time.
    pub time: Timestamp,
}

/// One sample per protocol of `book`, then `all` when it has any position; `unpriced` counts
/// the positions each protocol left out.
pub fn leverage_samples(
    taken: Taken,
    book: &Book,
    unpriced: &BTreeMap<Protocol, u64>,
) -> Vec<LeverageSample> {
    let sample = |scope: String, summary: &Summary, unpriced: u64| LeverageSample {
        period: Timestamp(taken.period),
        period_seconds: taken.period_seconds,
        seq: taken.seq,
        time: taken.time,
        scope,
        accounts: summary.accounts,
        accounts_with_debt: summary.accounts_with_debt,
        looped_accounts: summary.looped_accounts,
        leverage: buckets(&LEVERAGE_NAMES, &summary.leverage),
        ltv: buckets(&LTV_NAMES, &summary.ltv),
        loop_depth: buckets(&DEPTH_NAMES, &summary.loop_depth),
        collateral: usd(summary.collateral),
        debt: usd(summary.debt),
        looped_debt: usd(summary.looped_debt),
        top_share_percent: TOP_N
            .iter()
            .zip(summary.top_share_bps)
            .map(|(n, bps)| (n.to_string(), format!("{}.{:02}", bps / 100, bps % 100)))
            .collect(),
        unpriced,
    };
    // A protocol whose every position was left out still gets a sample saying so.
    let mut protocols: Vec<Protocol> = book
        .protocols
        .keys()
        .chain(unpriced.keys())
        .copied()
        .collect();
    protocols.sort_unstable();
    protocols.dedup();
    let empty = Summary::default();
    let mut out: Vec<LeverageSample> = protocols
        .iter()
        .map(|protocol| {
            sample(
                protocol.name().to_owned(),
                book.protocols.get(protocol).unwrap_or(&empty),
                unpriced.get(protocol).copied().unwrap_or(0),
            )
        })
        .collect();
    if book.all.accounts > 0 || !unpriced.is_empty() {
        out.push(sample("all".to_owned(), &book.all, unpriced.values().sum()));
    }
    out
}

/// The non-empty rungs of `book`'s ladder, by group and fall.
pub fn ladder(moment: BookMoment, seq: u64, time: Timestamp, book: &Book) -> Vec<LadderRung> {
    let mut out = Vec::new();
    for (group, rungs) in &book.ladder {
        for (rung, name) in rungs.iter().zip(RUNG_NAMES) {
            if rung.accounts == 0 {
                continue;
            }
            out.push(LadderRung {
                moment,
                seq,
                time,
                group: group.clone(),
                fall: name.into(),
                accounts: rung.accounts,
                collateral: usd(rung.collateral),
                debt: usd(rung.debt),
                by_protocol: rung
                    .by_protocol
                    .iter()
                    .map(|(p, v)| (p.name().to_owned(), usd(*v)))
                    .collect(),
            });
        }
    }
    out
}

/// `book`'s overlap.
pub fn overlap(moment: BookMoment, seq: u64, time: Timestamp, book: &Book) -> OverlapReport {
    let overlap = &book.overlap;
    OverlapReport {
        moment,
        seq,
        time,
        owners: overlap
            .owners
            .iter()
            .map(|(protocols, owners)| OverlapOwners {
                protocols: protocols.iter().map(|p| p.name().to_owned()).collect(),
                owners: *owners,
            })
            .collect(),
        shared_collateral: overlap
            .shared_collateral
            .iter()
            .map(|((protocol, group), value)| GroupAmount {
                group: group.clone(),
                protocol: protocol.name().to_owned(),
                value: usd(*value),
            })
            .collect(),
        debt_on_group: overlap
            .debt_on_group
            .iter()
            .map(|((group, protocol), value)| GroupAmount {
                group: group.clone(),
                protocol: protocol.name().to_owned(),
                value: usd(*value),
            })
            .collect(),
        cross_loops: overlap
            .cross_loops
            .iter()
            .map(|((borrowed_in, collateral_in, group), value)| CrossLoop {
                borrowed_in: borrowed_in.name().to_owned(),
                collateral_in: collateral_in.name().to_owned(),
                group: group.clone(),
                value: usd(*value),
            })
            .collect(),
        liquidations_by_trigger: Vec::new(),
    }
}
