//! Cascade tracking: what triggered each simulated liquidation, how deep the chain goes, and which
//! chains end in the largest losses.
//!
//! Every simulated liquidation is recorded with its trigger:
//! - [`Trigger::PriceMove`]: the account was unsafe at the market prices of the (possibly
//!   transformed) history alone, so a recorded price move triggered it. These form round 1.
//! - [`Trigger::Impact`]: the account was safe at those prices and unsafe only because earlier
//!   simulated sales had pushed the price down. Its causes are the sales of the earliest rounds
//!   that suffice ([`CascadeTracker::needed_causes`]): the smallest round `r` such that the
//!   sales of rounds up to `r` still displacing the price make the account liquidatable on their
//!   own, and of those the fewest, largest first. Its round is `r + 1`: the number of generations
//!   of sales the account needed at the least, the way a breadth-first search counts depth. A
//!   later sale that also displaced the price but was not needed (a small sale beside a large
//!   one, an impact-triggered sale beside the round-1 sales that already sufficed) does not
//!   deepen the cascade, so liquidations that the first sales alone explain stay in round 2
//!   however many others happen in between.
//!
//! Links across protocols ([`CascadeTracker::cross_protocol_links`]): one asset's price is moved
//! by every protocol's sales (one pool or depth curve per asset), and each protocol reads the
//! moved price through its own oracle rule, so a cause and its effect may be liquidations of
//! different protocols. Those links are grouped by the hour and market of both sides, so a
//! reader can say "Maker ETH-B liquidations at 14:00 moved WETH 2.1%, which made 37 Aave v2
//! accounts liquidatable at 14:01".
//!
//! The engine decides which trigger applies (it can evaluate an account with and without the
//! impact); this module only keeps the graph and answers questions about it. It never mutates a
//! recorded node: ids are dense and in the order of recording, which is the replay order.

use std::collections::BTreeMap;

use cascade_events::{Id, Protocol, Timestamp, U256};
use serde::Serialize;

/// One earlier liquidation that displaced the price an impact-triggered liquidation saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// Id of the earlier liquidation.
    pub liquidation: u32,
    /// How much of the price displacement it still accounted for, ray fraction of the price.
    #[serde(serialize_with = "crate::counterfactual::cascade::u256_text")]
    pub displacement: U256,
}

/// What made a simulated liquidation possible.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Trigger {
    /// Unsafe at the history's own (scenario-transformed) prices.
    PriceMove,
    /// Unsafe only because of the price impact of earlier simulated liquidations.
    Impact {
        /// The earlier liquidations still displacing the price, largest first.
        causes: Vec<Cause>,
    },
}

/// A simulated liquidation as the tracker keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CascadeNode {
    /// Dense id, in recording order.
    pub id: u32,
    /// When.
    pub time: Timestamp,
    /// Protocol.
    pub protocol: Protocol,
    /// Market.
    pub market: Id,
    /// Account liquidated.
    pub account: Id,
    /// The collateral asset seized (whose price its oracle read, and whose sale moved it).
    pub asset: Id,
    /// Its trigger.
    pub trigger: Trigger,
    /// 1 for a price-move trigger; 1 + the deepest cause's round for an impact trigger.
    pub round: u32,
    /// What the account lost, quote wad (collateral taken beyond the debt it cleared).
    #[serde(serialize_with = "crate::counterfactual::cascade::u256_text")]
    pub loss: U256,
    /// The debt asset repaid.
    pub debt_asset: Id,
    /// Debt repaid, wad of the debt asset.
    #[serde(serialize_with = "crate::counterfactual::cascade::u256_text")]
    pub debt: U256,
}

/// What triggered a liquidation, seen from its protocol: the price path, its own protocol's
/// sales, or another protocol's (the main cause's protocol decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TriggeredBy {
    /// A recorded (scenario-transformed) price move: cascade round 1.
    PricePath,
    /// The impact of sales, the main one by a liquidation of the same protocol.
    OwnSales,
    /// The impact of sales, the main one by a liquidation of another protocol.
    OtherSales,
}

impl TriggeredBy {
    /// The name run files use.
    pub fn name(self) -> &'static str {
        match self {
            TriggeredBy::PricePath => "price-path",
            TriggeredBy::OwnSales => "own-protocol-sales",
            TriggeredBy::OtherSales => "other-protocol-sales",
        }
    }
}

/// Liquidations of one protocol with one trigger and debt asset (see
/// [`CascadeTracker::by_trigger`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TriggerTotals {
    /// How many.
    pub liquidations: u32,
    /// Debt they repaid, wad of the debt asset.
    pub debt: U256,
}

/// Totals of one cascade round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RoundTotals {
    /// Liquidations in the round.
    pub liquidations: u32,
    /// Their summed loss, quote wad.
    #[serde(serialize_with = "crate::counterfactual::cascade::u256_text")]
    pub loss: U256,
}

/// The trigger graph of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CascadeTracker {
    nodes: Vec<CascadeNode>,
}

/// What the engine tells the tracker about a liquidation it just simulated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Time.
    pub time: Timestamp,
    /// Protocol.
    pub protocol: Protocol,
    /// Market.
    pub market: Id,
    /// Account.
    pub account: Id,
    /// Collateral asset seized.
    pub asset: Id,
    /// Loss to the account, quote wad.
    pub loss: U256,
    /// The debt asset repaid.
    pub debt_asset: Id,
    /// Debt repaid, wad of the debt asset.
    pub debt: U256,
}

/// Impact-triggered liquidations of one protocol's market in one hour whose main cause was the
/// sales of another protocol's market in one hour (see [`CascadeTracker::cross_protocol_links`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossLink {
    /// Protocol of the sales.
    pub cause_protocol: Protocol,
    /// Their market.
    pub cause_market: Id,
    /// The earliest of them.
    pub cause_time: Timestamp,
    /// How many liquidations of the cause group were a main cause.
    pub cause_sales: u32,
    /// The asset whose price they moved.
    pub asset: Id,
    /// The largest displacement of that price by the cause group's sales that one effect saw,
    /// ray fraction of the price (sum of the group's causes of that effect).
    pub moved: U256,
    /// Protocol of the liquidations they triggered.
    pub effect_protocol: Protocol,
    /// Their market.
    pub effect_market: Id,
    /// The earliest of them.
    pub effect_time: Timestamp,
    /// How many.
    pub liquidations: u32,
    /// How many distinct accounts.
    pub accounts: u32,
}

/// Seconds of the groups [`CascadeTracker::cross_protocol_links`] puts links in.
const LINK_HOUR: i64 = 3_600;

impl CascadeTracker {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id the next recorded liquidation gets (the id its sale is attributed to).
    pub fn next_id(&self) -> u32 {
        u32::try_from(self.nodes.len()).expect("fewer than 2^32 simulated liquidations")
    }

    /// Records a liquidation and returns its id. Causes naming unknown (future) ids are dropped:
    /// a cause must precede its effect.
    pub fn record(&mut self, liquidation: Recorded, trigger: Trigger) -> u32 {
        let id = self.next_id();
        let trigger = match trigger {
            Trigger::Impact { causes } => Trigger::Impact {
                causes: causes
                    .into_iter()
                    .filter(|cause| cause.liquidation < id)
                    .collect(),
            },
            other => other,
        };
        let round = self
            .deepest_cause(&trigger)
            .map_or(1, |cause| self.nodes[cause as usize].round + 1);
        self.nodes.push(CascadeNode {
            id,
            time: liquidation.time,
            protocol: liquidation.protocol,
            market: liquidation.market,
            account: liquidation.account,
            asset: liquidation.asset,
            trigger,
            round,
            loss: liquidation.loss,
            debt_asset: liquidation.debt_asset,
            debt: liquidation.debt,
        });
        id
    }

    /// The cause with the highest round (ties: the larger displacement, then the smaller id).
    fn deepest_cause(&self, trigger: &Trigger) -> Option<u32> {
        let Trigger::Impact { causes } = trigger else {
            return None;
        };
        causes
            .iter()
            .max_by(|a, b| {
                let round = |c: &Cause| self.nodes[c.liquidation as usize].round;
                round(a)
                    .cmp(&round(b))
                    .then(a.displacement.cmp(&b.displacement))
                    .then(b.liquidation.cmp(&a.liquidation))
            })
            .map(|cause| cause.liquidation)
    }

    /// The causes an impact-triggered liquidation needed, from `live`: the sales still
    /// displacing the price, each with its displacement as a ray fraction of the price. `total` is
    /// the displacement the account saw (`1 - m`, ray) and `needed` the part of it without which
    /// the account would have been safe (`1 - m / health`, ray): it is liquidatable at a
    /// displacement above `needed`. All sales decay at one rate, so a set of sales suffices when
    /// its share of `live`'s displacement exceeds `needed / total`.
    ///
    /// Returns, of the sales of rounds up to the smallest round that suffices, the fewest,
    /// largest first (ties by id), that suffice; all of `live` when no set does (rounding);
    /// nothing when `live` is empty. Causes naming unknown ids are dropped.
    pub fn needed_causes(&self, live: Vec<Cause>, needed: U256, total: U256) -> Vec<Cause> {
        let mut live: Vec<(u32, Cause)> = live
            .into_iter()
            .filter_map(|cause| {
                let node = self.nodes.get(cause.liquidation as usize)?;
                Some((node.round, cause))
            })
            .collect();
        live.sort_by(|(_, a), (_, b)| {
            b.displacement
                .cmp(&a.displacement)
                .then(a.liquidation.cmp(&b.liquidation))
        });
        let sum = live
            .iter()
            .fold(U256::ZERO, |sum, (_, c)| sum.saturating_add(c.displacement));
        // taken / sum > needed / total  <=>  taken * total > needed * sum (ray * ray fits 256 bits).
        let target = needed.saturating_mul(sum);
        let enough = |taken: U256| taken.saturating_mul(total) > target;
        let mut rounds: Vec<u32> = live.iter().map(|(round, _)| *round).collect();
        rounds.sort_unstable();
        rounds.dedup();
        for limit in rounds {
            let mut taken = U256::ZERO;
            let mut causes = Vec::new();
            for (_, cause) in live.iter().filter(|(round, _)| *round <= limit) {
                taken = taken.saturating_add(cause.displacement);
                causes.push(*cause);
                if enough(taken) {
                    return causes;
                }
            }
        }
        live.into_iter().map(|(_, cause)| cause).collect()
    }

    /// Every node, in id order.
    pub fn nodes(&self) -> &[CascadeNode] {
        &self.nodes
    }

    /// The deepest round reached; 0 when nothing was liquidated.
    pub fn depth(&self) -> u32 {
        self.nodes.iter().map(|node| node.round).max().unwrap_or(0)
    }

    /// Liquidations and losses per round, rounds ascending.
    pub fn rounds(&self) -> BTreeMap<u32, RoundTotals> {
        let mut rounds: BTreeMap<u32, RoundTotals> = BTreeMap::new();
        for node in &self.nodes {
            let totals = rounds.entry(node.round).or_default();
            totals.liquidations += 1;
            totals.loss = totals.loss.saturating_add(node.loss);
        }
        rounds
    }

    /// The chain behind liquidation `id`: its deepest cause, that one's deepest cause, and so on
    /// back to a price-move root; returned root first, ending with `id`.
    pub fn chain(&self, id: u32) -> Vec<u32> {
        let mut chain = Vec::new();
        let mut current = Some(id);
        while let Some(at) = current {
            let Some(node) = self.nodes.get(at as usize) else {
                break;
            };
            chain.push(at);
            current = self.deepest_cause(&node.trigger);
        }
        chain.reverse();
        chain
    }

    /// Impact-triggered liquidations whose main cause (the largest displacement) is a liquidation
    /// of another protocol, grouped by (cause protocol, market, hour; effect protocol, market,
    /// hour; asset), in the order of the cause hour, then the effect hour, then protocol and
    /// market names. Same-protocol links are left out: the rounds already count them.
    pub fn cross_protocol_links(&self) -> Vec<CrossLink> {
        type Side = (Protocol, Id, i64);
        // Cause hour, effect hour, cause and effect "protocol market", asset.
        type Key = (i64, i64, String, String, Id);
        // The link, its main causes' ids and its accounts, both with repeats.
        let mut groups: BTreeMap<Key, (CrossLink, Vec<u32>, Vec<Id>)> = BTreeMap::new();
        let side = |node: &CascadeNode| -> Side {
            (
                node.protocol,
                node.market,
                node.time.0.div_euclid(LINK_HOUR),
            )
        };
        for node in &self.nodes {
            let Trigger::Impact { causes } = &node.trigger else {
                continue;
            };
            let Some(main) = causes.first() else {
                continue;
            };
            let cause = &self.nodes[main.liquidation as usize];
            if cause.protocol == node.protocol {
                continue;
            }
            let (cp, cm, ch) = side(cause);
            let (ep, em, eh) = side(node);
            let key = (
                ch,
                eh,
                format!("{cp} {cm}"),
                format!("{ep} {em}"),
                node.asset,
            );
            let moved = causes
                .iter()
                .filter(|c| side(&self.nodes[c.liquidation as usize]) == (cp, cm, ch))
                .fold(U256::ZERO, |sum, c| sum.saturating_add(c.displacement));
            let (link, ids, accounts) = groups.entry(key).or_insert_with(|| {
                let link = CrossLink {
                    cause_protocol: cp,
                    cause_market: cm,
                    cause_time: cause.time,
                    cause_sales: 0,
                    asset: node.asset,
                    moved: U256::ZERO,
                    effect_protocol: ep,
                    effect_market: em,
                    effect_time: node.time,
                    liquidations: 0,
                    accounts: 0,
                };
                (link, Vec::new(), Vec::new())
            });
            link.cause_time = link.cause_time.min(cause.time);
            link.effect_time = link.effect_time.min(node.time);
            link.moved = link.moved.max(moved);
            link.liquidations += 1;
            ids.push(main.liquidation);
            accounts.push(node.account);
        }
        groups
            .into_values()
            .map(|(mut link, mut ids, mut accounts)| {
                ids.sort_unstable();
                ids.dedup();
                accounts.sort_unstable();
                accounts.dedup();
                link.cause_sales = ids.len() as u32;
                link.accounts = accounts.len() as u32;
                link
            })
            .collect()
    }

    /// Each protocol's liquidations by what triggered them ([`TriggeredBy`]) and debt asset:
    /// how many, and the debt they repaid. An impact-triggered liquidation belongs to the
    /// protocol of its main cause (the largest displacement), as in
    /// [`CascadeTracker::cross_protocol_links`].
    pub fn by_trigger(&self) -> BTreeMap<(Protocol, TriggeredBy, Id), TriggerTotals> {
        let mut out: BTreeMap<(Protocol, TriggeredBy, Id), TriggerTotals> = BTreeMap::new();
        for node in &self.nodes {
            let by = match &node.trigger {
                Trigger::PriceMove => TriggeredBy::PricePath,
                Trigger::Impact { causes } => match causes.first() {
                    Some(main)
                        if self.nodes[main.liquidation as usize].protocol != node.protocol =>
                    {
                        TriggeredBy::OtherSales
                    }
                    _ => TriggeredBy::OwnSales,
                },
            };
            let totals = out.entry((node.protocol, by, node.debt_asset)).or_default();
            totals.liquidations += 1;
            totals.debt = totals.debt.saturating_add(node.debt);
        }
        out
    }

    /// The `count` liquidations with the largest losses (ties by id), each with its chain.
    pub fn largest_losses(&self, count: usize) -> Vec<(u32, Vec<u32>)> {
        let order = |a: &&CascadeNode, b: &&CascadeNode| b.loss.cmp(&a.loss).then(a.id.cmp(&b.id));
        let mut ids: Vec<&CascadeNode> = self.nodes.iter().collect();
        // Ids are unique, so the order is total: selecting the first `count` and sorting only
        // them gives what sorting hundreds of thousands would.
        if count < ids.len() {
            ids.select_nth_unstable_by(count, order);
            ids.truncate(count);
        }
        ids.sort_unstable_by(order);
        ids.into_iter()
            .take(count)
            .map(|node| (node.id, self.chain(node.id)))
            .collect()
    }
}

/// Serialises a wad or ray quantity as its integer text (JSON numbers lose precision past 2^53).
pub(crate) fn u256_text<S: serde::Serializer>(
    value: &U256,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn liquidation(account: u64, loss: u64) -> Recorded {
        Recorded {
            time: Timestamp(account as i64),
            protocol: Protocol::Maker,
            market: Id::name("ETH-B"),
            account: Id::Number(account),
            asset: Id::name("ETH"),
            loss: U256::from(loss),
            debt_asset: Id::name("DAI"),
            debt: U256::from(loss),
        }
    }

    fn cause(liquidation: u32, displacement: u64) -> Cause {
        Cause {
            liquidation,
            displacement: U256::from(displacement),
        }
    }

    /// A -- b -- d (largest loss), A -- c; e is a second root.
    fn graph() -> CascadeTracker {
        let mut tracker = CascadeTracker::new();
        let a = tracker.record(liquidation(1, 10), Trigger::PriceMove);
        let b = tracker.record(
            liquidation(2, 20),
            Trigger::Impact {
                causes: vec![cause(a, 9)],
            },
        );
        tracker.record(
            liquidation(3, 5),
            Trigger::Impact {
                causes: vec![cause(a, 4)],
            },
        );
        tracker.record(
            liquidation(4, 100),
            Trigger::Impact {
                causes: vec![cause(b, 7), cause(a, 3)],
            },
        );
        tracker.record(liquidation(5, 1), Trigger::PriceMove);
        tracker
    }

    #[test]
    fn rounds_follow_the_deepest_cause() {
        let tracker = graph();
        let rounds: Vec<u32> = tracker.nodes().iter().map(|n| n.round).collect();
        assert_eq!(rounds, [1, 2, 2, 3, 1]);
        assert_eq!(tracker.depth(), 3);
        let per_round = tracker.rounds();
        assert_eq!(per_round[&1].liquidations, 2);
        assert_eq!(per_round[&1].loss, U256::from(11u8));
        assert_eq!(per_round[&2].liquidations, 2);
        assert_eq!(per_round[&3].loss, U256::from(100u8));
    }

    #[test]
    fn chains_lead_back_to_a_price_move() {
        let tracker = graph();
        assert_eq!(tracker.chain(3), [0, 1, 3]);
        assert_eq!(tracker.chain(4), [4]);
        assert_eq!(tracker.chain(99), Vec::<u32>::new());
        let largest = tracker.largest_losses(2);
        assert_eq!(largest, [(3, vec![0, 1, 3]), (1, vec![0, 1])]);
    }

    #[test]
    fn largest_losses_rank_by_loss_then_id_however_many_are_asked() {
        let mut tracker = CascadeTracker::new();
        // Losses with ties: ids 1 and 4 lose 9, ids 2 and 5 lose 5.
        for (account, loss) in [(0, 1), (1, 9), (2, 5), (3, 0), (4, 9), (5, 5), (6, 2)] {
            tracker.record(liquidation(account, loss), Trigger::PriceMove);
        }
        let ids = |count| -> Vec<u32> {
            tracker
                .largest_losses(count)
                .into_iter()
                .map(|(id, _)| id)
                .collect()
        };
        assert_eq!(ids(0), Vec::<u32>::new());
        assert_eq!(ids(1), [1]);
        assert_eq!(ids(3), [1, 4, 2]);
        assert_eq!(ids(7), [1, 4, 2, 5, 6, 0, 3]);
        assert_eq!(ids(10), ids(7));
    }

    #[test]
    fn causes_must_precede_effects() {
        let mut tracker = CascadeTracker::new();
        let id = tracker.record(
            liquidation(1, 1),
            Trigger::Impact {
                causes: vec![cause(7, 1)],
            },
        );
        assert_eq!(tracker.nodes()[id as usize].round, 1);
        assert_eq!(
            tracker.nodes()[0].trigger,
            Trigger::Impact { causes: vec![] }
        );
        assert_eq!(CascadeTracker::new().depth(), 0);
    }

    /// Percent of a price, ray.
    fn ray_percent(tenths: u64) -> U256 {
        U256::from(tenths) * U256::from(10u64).pow(U256::from(24u8))
    }

    #[test]
    fn only_the_sales_of_the_earliest_sufficient_rounds_are_causes() {
        // Ids 0, 1: round 1 (price moves); 2: round 2 (caused by 0); 3: round 3 (caused by 2).
        let mut tracker = CascadeTracker::new();
        let a = tracker.record(liquidation(1, 1), Trigger::PriceMove);
        let b = tracker.record(liquidation(2, 1), Trigger::PriceMove);
        let c = tracker.record(
            liquidation(3, 1),
            Trigger::Impact {
                causes: vec![cause(a, 1)],
            },
        );
        let d = tracker.record(
            liquidation(4, 1),
            Trigger::Impact {
                causes: vec![cause(c, 1)],
            },
        );
        assert_eq!(tracker.nodes()[d as usize].round, 3);
        // Displacements (units of live displacement): a 30, b 10, c 40, d 20 = 100 units, a 10%
        // drop. An account that needed more than 3.5% of the price needs 35 units: round 1's
        // sales alone give 40 (a, then b), so c (the largest) is not a cause and the account is
        // round 2, not 3 or 4.
        let live = vec![cause(a, 30), cause(b, 10), cause(c, 40), cause(d, 20)];
        let causes = tracker.needed_causes(live.clone(), ray_percent(35), ray_percent(100));
        assert_eq!(causes, [cause(a, 30), cause(b, 10)]);
        // Needing 4.5% (45 units): rounds 1-2 give c 40 + a 30, the two largest.
        let causes = tracker.needed_causes(live.clone(), ray_percent(45), ray_percent(100));
        assert_eq!(causes, [cause(c, 40), cause(a, 30)]);
        // Needing 8.5%: only with round 3's sale: c, a, d (90 units).
        let causes = tracker.needed_causes(live.clone(), ray_percent(85), ray_percent(100));
        assert_eq!(causes, [cause(c, 40), cause(a, 30), cause(d, 20)]);
        // Needing all of it: every sale; nothing live: no cause.
        assert_eq!(
            tracker
                .needed_causes(live, ray_percent(100), ray_percent(100))
                .len(),
            4
        );
        assert!(
            tracker
                .needed_causes(Vec::new(), ray_percent(1), ray_percent(100))
                .is_empty()
        );
        // A chain of impact-triggered liquidations, each beside a larger earlier sale that round 1
        // alone explains (900 of 1850 units against 40% needed), stays at round 2.
        let mut previous = a;
        for account in 5..10 {
            let causes = tracker.needed_causes(
                vec![cause(a, 900), cause(previous, 950)],
                ray_percent(40),
                ray_percent(100),
            );
            previous = tracker.record(liquidation(account, 1), Trigger::Impact { causes });
            assert_eq!(tracker.nodes()[previous as usize].round, 2);
        }
    }

    #[test]
    fn json_names_trigger_kinds() {
        let tracker = graph();
        let json = serde_json::to_value(&tracker.nodes()[3]).unwrap();
        assert_eq!(json["trigger"]["type"], "impact");
        assert_eq!(json["trigger"]["causes"][0]["liquidation"], 1);
        assert_eq!(json["loss"], "100");
        assert_eq!(json["time"], "1970-01-01T00:00:04Z");
    }

    /// Three protocols selling WETH into one pool, worked by hand (times from 14:00:00):
    ///
    /// | id | when     | liquidation           | trigger (cause: displacement)   |
    /// |----|----------|-----------------------|---------------------------------|
    /// | 0  | 14:00:00 | Maker ETH-B #1        | price move                      |
    /// | 1  | 14:00:12 | Maker ETH-B #2        | price move                      |
    /// | 2  | 14:01:00 | Aave v2 A             | 0: 1.2%, 1: 0.9% (main: 0)      |
    /// | 3  | 14:01:12 | Aave v2 B             | 1: 0.9%                         |
    /// | 4  | 14:02:00 | Aave v2 A again       | 0: 0.5%                         |
    /// | 5  | 14:30:00 | Maker ETH-B #3        | 0: 0.3% (same protocol: no link) |
    /// | 6  | 15:10:00 | Compound C            | 2: 0.4%, 0: 0.1% (main: 2)      |
    ///
    /// Links: Maker ETH-B in the 14:00 hour -> Aave v2 in the 14:00 hour: liquidations 2, 3, 4
    /// (3), accounts A and B (2), main causes 0 and 1 (2 sales), moved at most 1.2 + 0.9 = 2.1%
    /// (liquidation 2 saw both Maker sales), first sale 14:00:00, first effect 14:01:00. Aave v2 in
    /// the 14:00 hour -> Compound in the 15:00 hour: liquidation 6 alone, moved 0.4% (only
    /// Aave's sale counts; Maker's 0.1% belongs to another group), sale 14:01:00, effect 15:10:00.
    #[test]
    fn cross_protocol_links_follow_the_hand_worked_chain() {
        const PCT: u128 = 10_000_000_000_000_000_000_000_000; // 1% of a ray
        let at = |minute: i64, second: i64| Timestamp(1_621_432_800 + minute * 60 + second);
        let node = |protocol, market: Id, account: Id, time| Recorded {
            time,
            protocol,
            market,
            account,
            asset: Id::name("WETH"),
            loss: U256::ZERO,
            debt_asset: Id::name(match protocol {
                Protocol::Maker => "DAI",
                _ => "USDC",
            }),
            debt: U256::from(1_000u32),
        };
        let impact = |causes: &[(u32, u128)]| Trigger::Impact {
            causes: causes
                .iter()
                .map(|&(liquidation, tenths)| Cause {
                    liquidation,
                    displacement: U256::from(tenths * PCT / 10),
                })
                .collect(),
        };
        let maker = Id::name("ETH-B");
        let aave = Id::name("aave-pool");
        let comp = Id::name("comptroller");
        let (a, b, c) = (Id::name("A"), Id::name("B"), Id::name("C"));
        let mut t = CascadeTracker::new();
        t.record(
            node(Protocol::Maker, maker, Id::Number(1), at(0, 0)),
            Trigger::PriceMove,
        );
        t.record(
            node(Protocol::Maker, maker, Id::Number(2), at(0, 12)),
            Trigger::PriceMove,
        );
        t.record(
            node(Protocol::AaveV2, aave, a, at(1, 0)),
            impact(&[(0, 12), (1, 9)]),
        );
        t.record(
            node(Protocol::AaveV2, aave, b, at(1, 12)),
            impact(&[(1, 9)]),
        );
        t.record(node(Protocol::AaveV2, aave, a, at(2, 0)), impact(&[(0, 5)]));
        t.record(
            node(Protocol::Maker, maker, Id::Number(3), at(30, 0)),
            impact(&[(0, 3)]),
        );
        t.record(
            node(Protocol::CompoundV2, comp, c, at(70, 0)),
            impact(&[(2, 4), (0, 1)]),
        );
        let links = t.cross_protocol_links();
        assert_eq!(
            links,
            vec![
                CrossLink {
                    cause_protocol: Protocol::Maker,
                    cause_market: maker,
                    cause_time: at(0, 0),
                    cause_sales: 2,
                    asset: Id::name("WETH"),
                    moved: U256::from(21 * PCT / 10),
                    effect_protocol: Protocol::AaveV2,
                    effect_market: aave,
                    effect_time: at(1, 0),
                    liquidations: 3,
                    accounts: 2,
                },
                CrossLink {
                    cause_protocol: Protocol::AaveV2,
                    cause_market: aave,
                    cause_time: at(1, 0),
                    cause_sales: 1,
                    asset: Id::name("WETH"),
                    moved: U256::from(4 * PCT / 10),
                    effect_protocol: Protocol::CompoundV2,
                    effect_market: comp,
                    effect_time: at(70, 0),
                    liquidations: 1,
                    accounts: 1,
                },
            ]
        );
        // Per protocol: Maker's 1 and 2 by the price path, 6 by Maker's own sale 0; Aave's 3,
        // 4 and 5 by Maker's sales; Compound's 7 by Aave's sale 2 (its main cause, 0.4% beside
        // Maker's 0.1%). Each repaid 1,000 of its debt asset.
        let totals = |n: u32| TriggerTotals {
            liquidations: n,
            debt: U256::from(1_000 * n),
        };
        let (dai, usdc) = (Id::name("DAI"), Id::name("USDC"));
        assert_eq!(
            t.by_trigger().into_iter().collect::<Vec<_>>(),
            [
                ((Protocol::Maker, TriggeredBy::PricePath, dai), totals(2)),
                ((Protocol::Maker, TriggeredBy::OwnSales, dai), totals(1)),
                ((Protocol::AaveV2, TriggeredBy::OtherSales, usdc), totals(3)),
                (
                    (Protocol::CompoundV2, TriggeredBy::OtherSales, usdc),
                    totals(1)
                ),
            ]
        );
    }
}
