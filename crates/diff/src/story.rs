//! The first screen of a post-mortem, in words: what happened in each run (liquidations,
//! accounts, collateral, debt, bad debt, the lowest oracle price, the cascade depth, the largest
//! single liquidation), what each counterfactual changed against the reference, and how the
//! recorded liquidations of a historical run were judged (verdict counts and the worst cases),
//! and which snapshots contradicted the state the run had rebuilt.
//!
//! Every sentence is generated from the run files' numbers; nothing here decides anything.

use std::collections::BTreeMap;

use crate::compare::Comparison;
use cascade_run::Verdict;

use crate::runfile::{LiquidationExt, LiquidationRecord, Num, RunFile, canonical_asset};

/// How many recorded liquidations the "worst cases" list keeps.
pub const WORST_CASES_KEPT: usize = 10;

/// `1 liquidation`, `2 liquidations`, with thousands separators.
pub fn count(n: u64, noun: &str) -> String {
    let text = Num::from_int(n.into()).human(0);
    if n == 1 {
        format!("{text} {noun}")
    } else {
        format!("{text} {noun}s")
    }
}

/// Per-asset amounts as `12,811.4 ETH and 3 BTC`; `none` when empty.
fn amounts(sums: &BTreeMap<String, Num>) -> String {
    let parts: Vec<String> = sums
        .iter()
        .filter(|(_, n)| !n.is_zero())
        .map(|(asset, n)| n.amount(asset))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(" and ")
    }
}

fn sum_by<'a>(
    liquidations: impl Iterator<Item = &'a LiquidationRecord>,
    key: impl Fn(&LiquidationRecord) -> (String, Option<Num>),
) -> BTreeMap<String, Num> {
    let mut sums: BTreeMap<String, Num> = BTreeMap::new();
    for liquidation in liquidations {
        let (asset, amount) = key(liquidation);
        if let Some(amount) = amount {
            let entry = sums.entry(asset).or_default();
            *entry = entry.plus(amount);
        }
    }
    sums
}

/// One paragraph on what happened in `run`.
pub fn run_paragraph(run: &RunFile) -> String {
    let liquidations = &run.liquidations;
    let accounts: std::collections::BTreeSet<_> = liquidations.iter().map(|l| l.key()).collect();
    let mut text = format!(
        "{}: {} of {}",
        run.label(),
        count(liquidations.len() as u64, "liquidation"),
        count(accounts.len() as u64, "account")
    );
    if liquidations.is_empty() {
        text.push('.');
        return text;
    }
    let seized = sum_by(liquidations.iter(), |l| {
        (l.collateral_name().to_owned(), Some(l.collateral()))
    });
    let debt = sum_by(liquidations.iter(), |l| {
        (l.debt_asset.to_string(), Some(l.debt()))
    });
    text.push_str(&format!(
        "; {} seized, {} repaid",
        amounts(&seized),
        amounts(&debt)
    ));
    if run.is_counterfactual() {
        let sold = sum_by(liquidations.iter(), |l| {
            (
                l.collateral_name().to_owned(),
                l.collateral_sold.as_ref().map(Num::of),
            )
        });
        text.push_str(&format!(" ({} sold by the liquidator)", amounts(&sold)));
        let bad = sum_by(liquidations.iter(), |l| {
            (l.debt_asset.to_string(), l.bad_debt.as_ref().map(Num::of))
        });
        match amounts(&bad).as_str() {
            "none" => text.push_str("; no bad debt"),
            bad => text.push_str(&format!("; bad debt {bad}")),
        }
        if let Some(depth) = run.cascade_depth() {
            text.push_str(&format!(
                "; the cascade went {} deep",
                count(depth.into(), "round")
            ));
        }
        let extras = run.counterfactual.as_ref();
        if let Some(by_impact) = extras.map(|c| Num::from_int(c.cascade.triggered_by_impact.into()))
        {
            text.push_str(&format!(
                ", {} of them triggered by the price impact of earlier ones",
                by_impact.human(0)
            ));
        }
        if let Some(links) = extras.map(|c| &c.cascade.cross_protocol) {
            text.push_str(&cross_protocol_sentence(links));
        }
        if let Some(slippage) = extras.map(|c| Num::of(&c.liquidator.slippage)) {
            // The liquidator sells for the asset the debt is repaid in; with several, the
            // sum is in quote tokens of each and has no one unit.
            let quotes: std::collections::BTreeSet<String> = liquidations
                .iter()
                .map(|l| l.debt_asset.to_string())
                .collect();
            let lost = match quotes.iter().next() {
                Some(quote) if quotes.len() == 1 => slippage.amount(quote),
                _ => format!("{} in quote tokens", slippage.fixed(2)),
            };
            text.push_str(&format!(
                "; the liquidator lost {lost} to price impact and fees (slippage)"
            ));
        }
    }
    let lowest = run
        .timeline
        .iter()
        .filter_map(|p| p.oracle_price.as_ref().map(Num::of).map(|price| (price, p)))
        .min_by_key(|(price, _)| *price);
    if let Some((price, point)) = lowest {
        text.push_str(&format!(
            "; lowest oracle price {} ({} {}, {})",
            price.amount("USD"),
            point.protocol,
            point.market,
            point.time.to_rfc3339()
        ));
    }
    if let Some(largest) = liquidations.iter().max_by_key(|l| (l.debt(), l.seq)) {
        text.push_str(&format!(
            "; largest single liquidation {} {} {} at {}: {} for {}",
            largest.protocol,
            largest.market,
            largest.account,
            largest.time.to_rfc3339(),
            largest
                .collateral()
                .amount(canonical_asset(&largest.collateral_asset.to_string())),
            largest.debt().amount(&largest.debt_asset.to_string())
        ));
    }
    text.push('.');
    text
}

/// What one protocol's sales did to the others, from the run's cross-protocol links: how many
/// liquidations another protocol's sales triggered, and the largest link (most accounts; ties:
/// the earliest) in words. Empty without links.
fn cross_protocol_sentence(links: &[cascade_run::CrossProtocolLink]) -> String {
    let Some(largest) = links.iter().max_by(|a, b| {
        a.accounts
            .cmp(&b.accounts)
            .then(b.cause_time.cmp(&a.cause_time))
    }) else {
        return String::new();
    };
    let triggered: u64 = links.iter().map(|l| u64::from(l.liquidations)).sum();
    format!(
        "; {} triggered by another protocol's sales: {} {} liquidations at {} moved {} {}%, \
         which made {} liquidatable at {}",
        count(triggered, "liquidation"),
        largest.cause_protocol,
        largest.cause_market,
        largest.cause_time.to_rfc3339(),
        canonical_asset(&largest.asset),
        Num::of(&largest.price_moved_percent).human(1),
        count(
            largest.accounts.into(),
            &format!("{} account", largest.effect_protocol)
        ),
        largest.effect_time.to_rfc3339(),
    )
}

/// One paragraph on what run B changed against run A, from their comparison.
pub fn pair_paragraph(comparison: &Comparison) -> String {
    let moved = |metric: &str| -> Vec<String> {
        comparison
            .totals
            .iter()
            .filter(|row| row.metric == metric)
            .filter_map(|row| {
                let delta = row.delta?;
                (!delta.is_zero()).then(|| {
                    let sign = if delta.0 > 0 { "+" } else { "" };
                    if row.unit.is_empty() {
                        format!("{sign}{}", delta.human(2))
                    } else {
                        format!("{sign}{}", delta.amount(&row.unit))
                    }
                })
            })
            .collect()
    };
    let mut parts = Vec::new();
    for (metric, label) in [
        ("liquidations", "liquidations"),
        ("accounts hit", "accounts hit"),
        ("collateral seized", "collateral seized"),
        ("debt repaid", "debt repaid"),
        ("bad debt", "bad debt"),
    ] {
        let changes = moved(metric);
        if !changes.is_empty() {
            parts.push(format!("{label} {}", changes.join(", ")));
        }
    }
    let mut text = format!("{} against {}: ", comparison.b.label, comparison.a.label);
    if parts.is_empty() {
        text.push_str("the same liquidations, collateral, debt and bad debt");
    } else {
        text.push_str(&parts.join("; "));
    }
    text.push_str(&format!(
        "; {} liquidated in {} only, {} in {} only.",
        count(comparison.only_in_a.len() as u64, "account"),
        comparison.a.label,
        count(comparison.only_in_b.len() as u64, "account"),
        comparison.b.label
    ));
    text
}

/// How a historical run's recorded liquidations were judged.
pub struct Verdicts {
    /// `(verdict, liquidations)` by verdict name, zero counts included.
    pub counts: Vec<(String, u64)>,
    /// The worst cases: liquidations not explained, largest debt first, as rows under
    /// [`worst_header`].
    pub worst: Vec<Vec<String>>,
}

/// The verdicts of a historical run's liquidations (`None` for a counterfactual run).
pub fn verdicts(run: &RunFile) -> Option<Verdicts> {
    if run.is_counterfactual() {
        return None;
    }
    // Counted over the liquidations reported on (a report restricts them to the events every
    // run covers), every verdict the run file names listed, zero included.
    let mut counts: BTreeMap<String, u64> = run
        .totals
        .verdicts
        .keys()
        .map(|verdict| (verdict.clone(), 0))
        .collect();
    for verdict in run
        .liquidations
        .iter()
        .filter_map(|l| l.verdict.map(|v| v.name().to_owned()))
    {
        *counts.entry(verdict).or_default() += 1;
    }
    if counts.is_empty() {
        return None;
    }
    let counts = counts.into_iter().collect();
    let mut worst: Vec<&LiquidationRecord> = run
        .liquidations
        .iter()
        .filter(|l| l.verdict.is_some_and(|v| v != Verdict::Explained))
        .collect();
    worst.sort_by(|x, y| y.debt().cmp(&x.debt()).then(x.seq.cmp(&y.seq)));
    let worst = worst
        .into_iter()
        .take(WORST_CASES_KEPT)
        .map(|l| {
            vec![
                l.time.to_rfc3339(),
                format!("{} {} {}", l.protocol, l.market, l.account),
                l.verdict.map(|v| v.name().to_owned()).unwrap_or_default(),
                l.debt().amount(&l.debt_asset.to_string()),
                l.health
                    .as_ref()
                    .map(Num::of)
                    .map_or("no health".to_owned(), |h| h.human(4)),
                l.note.as_deref().map(readable_numbers).unwrap_or_default(),
            ]
        })
        .collect();
    Some(Verdicts { counts, worst })
}

/// `text` with every decimal of more than six fractional digits rounded for a reader: two
/// decimals and thousands separators from 100 up (a price: `1,537.84`), six below (a rate or
/// health: `1.102971`). The run file keeps the exact digits.
fn readable_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = after
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(after.len());
        // A sentence's full stop is not part of the number.
        let token = after[..end].trim_end_matches('.');
        let long = token
            .split_once('.')
            .is_some_and(|(_, fraction)| fraction.len() > 6);
        match Num::parse(token).filter(|_| long) {
            Some(n) if n.abs() >= Num::from_int(100) => out.push_str(&n.fixed(2)),
            Some(n) => out.push_str(&n.human(6)),
            None => out.push_str(token),
        }
        rest = &after[token.len()..];
    }
    out.push_str(rest);
    out
}

/// The header of the worst-cases table.
pub fn worst_header() -> Vec<String> {
    ["time", "account", "verdict", "debt repaid", "health", "why"]
        .map(str::to_owned)
        .to_vec()
}

/// The first rows of a run's snapshots that differed from the rebuilt state, under
/// [`snapshot_differences_header`]: at most [`WORST_CASES_KEPT`], in log order (the run file
/// lists more, and counts them all).
pub fn snapshot_differences(run: &RunFile) -> Vec<Vec<String>> {
    let holding = |side: &cascade_run::SnapshotHolding| {
        format!(
            "collateral {}{}, debt {}",
            side.collateral.0,
            if side.collateral_enabled {
                ""
            } else {
                " (not counted)"
            },
            side.debt.0
        )
    };
    run.snapshot_differences
        .listed
        .iter()
        .take(WORST_CASES_KEPT)
        .map(|difference| {
            vec![
                difference.time.to_rfc3339(),
                format!(
                    "{} {} {}",
                    difference.protocol, difference.market, difference.account
                ),
                difference.asset.to_string(),
                holding(&difference.rebuilt),
                holding(&difference.snapshot),
            ]
        })
        .collect()
}

/// The header of the snapshot differences table.
pub fn snapshot_differences_header() -> Vec<String> {
    [
        "time",
        "account",
        "asset",
        "rebuilt (base units)",
        "snapshot (base units)",
    ]
    .map(str::to_owned)
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_differences_show_both_sides_in_base_units() {
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/expected/aave-v2-basic.json");
        let mut run: serde_json::Value =
            serde_json::from_slice(&std::fs::read(golden).unwrap()).unwrap();
        let none = RunFile::from_slice(run.to_string().as_bytes(), "run.json").unwrap();
        assert!(snapshot_differences(&none).is_empty());
        run["snapshot_differences"] = serde_json::json!({"count": 3, "listed": [{
            "time": "2021-05-19T01:12:00Z", "protocol": "aave-v2", "market": "main",
            "account": "bob", "asset": "WETH",
            "rebuilt": {"collateral": "5000", "debt": "0", "collateral_enabled": true},
            "snapshot": {"collateral": "0", "debt": "0", "collateral_enabled": false}
        }]});
        let run = RunFile::from_slice(run.to_string().as_bytes(), "run.json").unwrap();
        assert_eq!(run.snapshot_differences.count, 3);
        assert_eq!(
            snapshot_differences(&run),
            [[
                "2021-05-19T01:12:00Z",
                "aave-v2 main bob",
                "WETH",
                "collateral 5000, debt 0",
                "collateral 0 (not counted), debt 0"
            ]]
        );
    }

    #[test]
    fn long_decimals_in_a_reason_are_rounded_for_reading() {
        assert_eq!(
            readable_numbers(
                "safe at OSM price 1537.835907319888011241 (spot \
                 1182.950697938375393262307692307, rate 1.102970740496693665743623433)."
            ),
            "safe at OSM price 1,537.84 (spot 1,182.95, rate 1.102971)."
        );
        assert_eq!(
            readable_numbers("vault #27276 at 2022-06-11, health 0.9583333333333."),
            "vault #27276 at 2022-06-11, health 0.958333."
        );
        assert_eq!(readable_numbers("no price for ETH"), "no price for ETH");
    }

    #[test]
    fn counts_say_their_plurals() {
        assert_eq!(count(1, "liquidation"), "1 liquidation");
        assert_eq!(count(0, "account"), "0 accounts");
        assert_eq!(count(12_811, "account"), "12,811 accounts");
    }

    fn link(
        accounts: u32,
        cause_minute: i64,
        moved_ray_percent: u128,
    ) -> cascade_run::CrossProtocolLink {
        let at = |minute: i64| cascade_events::Timestamp(1_621_432_800 + minute * 60);
        cascade_run::CrossProtocolLink {
            accounts,
            asset: "WETH".to_owned(),
            cause_market: "ETH-B".to_owned(),
            cause_protocol: "maker".to_owned(),
            cause_sales: 4,
            cause_time: at(cause_minute),
            effect_market: "0x7d27".to_owned(),
            effect_protocol: "aave-v2".to_owned(),
            effect_time: at(cause_minute + 1),
            liquidations: accounts + 1,
            price_moved_percent: cascade_run::Quantity::new(
                cascade_events::U256::from(moved_ray_percent),
                27,
            ),
        }
    }

    #[test]
    fn the_cross_protocol_sentence_tells_the_largest_link_from_its_numbers() {
        assert_eq!(cross_protocol_sentence(&[]), "");
        let text = cross_protocol_sentence(&[
            link(3, 0, 500_000_000_000_000_000_000_000_000),
            link(37, 60, 2_100_000_000_000_000_000_000_000_000),
        ]);
        assert_eq!(
            text,
            "; 42 liquidations triggered by another protocol's sales: maker ETH-B liquidations \
             at 2021-05-19T15:00:00Z moved WETH 2.1%, which made 37 aave-v2 accounts \
             liquidatable at 2021-05-19T15:01:00Z"
        );
    }
}
