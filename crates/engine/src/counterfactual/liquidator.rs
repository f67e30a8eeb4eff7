//! The simulated liquidator of counterfactual runs: when it acts, what it picks, and whether a
//! liquidation pays.
//!
//! In a counterfactual run the recorded liquidations are not applied; this policy decides which of
//! the liquidations the protocol rules allow actually happen. It is pure: the engine hands in the
//! candidates (accounts the protocols report liquidatable, with their values in the quote unit)
//! and the time, and gets back decisions. It knows no protocol formula; the protocol models compute
//! seized amounts, the impact model the proceeds.

use std::cmp::Ordering;

use cascade_events::{Id, Protocol, Timestamp, U256};
use serde::Serialize;

use crate::counterfactual::impact::{WAD, wide_mul_div};

pub use crate::protocol::PairChoice;

/// The liquidator's behaviour, from the scenario's `[liquidator]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LiquidatorPolicy {
    /// Seconds from the moment the protocol sees an account unsafe to the liquidator acting.
    pub latency: u64,
    /// Seconds per simulated block: liquidations are grouped in blocks of this length (counted
    /// from the Unix epoch) for `max_per_block`.
    pub block_time: u64,
    /// Most liquidations the liquidator does in one block; `None` for no limit.
    pub max_per_block: Option<u32>,
    /// Gas cost of one liquidation in quote tokens (USD for Maker/Aave), wad.
    #[serde(serialize_with = "crate::counterfactual::impact::wad_text")]
    pub gas_cost: U256,
    /// Least profit, after gas and slippage, for a liquidation to be worth doing; quote wad.
    #[serde(serialize_with = "crate::counterfactual::impact::wad_text")]
    pub min_profit: U256,
    /// Preference among candidates and pairs.
    pub pick: PairChoice,
    /// Bonus assumed for protocols whose candidates do not report one (Aave, Compound), wad
    /// fraction (0.05e18): the profit estimate is `debt * 50% * assumed_bonus`.
    #[serde(serialize_with = "crate::counterfactual::impact::wad_text")]
    pub assumed_bonus: U256,
    /// Maker auctions: keepers take when the auction price is at or below the market price less
    /// this fraction (wad; 0.05e18 takes at 95% of market).
    #[serde(serialize_with = "crate::counterfactual::impact::wad_text")]
    pub keeper_discount: U256,
}

impl Default for LiquidatorPolicy {
    /// The idealised liquidator: no latency, no gas, no minimum profit, no block limit, 12-second
    /// blocks, largest debt first, a 5% assumed bonus, keepers take at the market price.
    fn default() -> Self {
        LiquidatorPolicy {
            latency: 0,
            block_time: 12,
            max_per_block: None,
            gas_cost: U256::ZERO,
            min_profit: U256::ZERO,
            pick: PairChoice::LargestDebt,
            assumed_bonus: WAD / U256::from(20u8),
            keeper_discount: U256::ZERO,
        }
    }
}

/// An account a protocol reports liquidatable ([`crate::Candidate`]) as the liquidator ranks it:
/// with the time it became unsafe and the bonus it offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Protocol of the account.
    pub protocol: Protocol,
    /// Market (ilk, pool, comptroller).
    pub market: Id,
    /// The account.
    pub account: Id,
    /// When the protocol first saw it unsafe (its oracle's view), for the latency.
    pub unsafe_since: Timestamp,
    /// Its debt in quote tokens, wad.
    pub debt_value: U256,
    /// The best liquidation bonus it offers, wad multiplier (1.05e18 for 5%).
    pub bonus: U256,
}

/// The profit of a liquidation, quote wad: what the seized collateral sells for, less what the
/// debt repaid cost, less gas. Signed through two fields because it can be a loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profit {
    /// Gain when positive.
    pub gain: U256,
    /// Loss when positive (never both non-zero).
    pub loss: U256,
}

impl LiquidatorPolicy {
    /// The first moment the liquidator acts on an account unsafe since `unsafe_since`.
    pub fn ready_at(&self, unsafe_since: Timestamp) -> Timestamp {
        Timestamp(
            unsafe_since
                .0
                .saturating_add(i64::try_from(self.latency).unwrap_or(i64::MAX)),
        )
    }

    /// The simulated block `time` falls in.
    pub fn block_of(&self, time: Timestamp) -> i64 {
        time.0
            .div_euclid(i64::try_from(self.block_time.max(1)).unwrap_or(i64::MAX))
    }

    /// Sorts candidates into the order the liquidator works through them: by [`PairChoice`],
    /// then the longest unsafe first, then protocol, market and account, so the order is total.
    pub fn order(&self, candidates: &mut [Target]) {
        candidates.sort_by(|a, b| self.preference(a, b));
    }

    /// The order of [`LiquidatorPolicy::order`] as a comparison.
    pub fn preference(&self, a: &Target, b: &Target) -> Ordering {
        let by_choice = match self.pick {
            PairChoice::LargestDebt => b.debt_value.cmp(&a.debt_value),
            PairChoice::BestBonus => b.bonus.cmp(&a.bonus).then(b.debt_value.cmp(&a.debt_value)),
        };
        by_choice
            .then(a.unsafe_since.cmp(&b.unsafe_since))
            .then(a.protocol.cmp(&b.protocol))
            .then(a.market.cmp(&b.market))
            .then(a.account.cmp(&b.account))
    }

    /// Profit of selling seized collateral for `proceeds` after repaying debt that cost
    /// `repay_cost`, less the gas cost (all quote wad).
    pub fn profit(&self, proceeds: U256, repay_cost: U256) -> Profit {
        let cost = repay_cost.saturating_add(self.gas_cost);
        if proceeds >= cost {
            Profit {
                gain: proceeds - cost,
                loss: U256::ZERO,
            }
        } else {
            Profit {
                gain: U256::ZERO,
                loss: cost - proceeds,
            }
        }
    }

    /// Whether a liquidation with this profit is worth doing.
    pub fn worth_it(&self, profit: Profit) -> bool {
        profit.loss.is_zero() && profit.gain >= self.min_profit
    }

    /// The price at which Maker keepers take collateral from an auction, given the market price
    /// (any precision; the result has the same): `market * (1 - keeper_discount)`.
    pub fn keeper_price(&self, market: U256) -> U256 {
        let keep = WAD.saturating_sub(self.keeper_discount);
        wide_mul_div(market, keep, WAD).unwrap_or(U256::ZERO)
    }
}

/// Counts liquidations per simulated block against the policy's `max_per_block`.
#[derive(Clone, Debug, Default)]
pub struct BlockBudget {
    block: Option<i64>,
    used: u32,
}

impl BlockBudget {
    /// Takes one slot in the block of `time`; `false` when the block is full.
    pub fn take(&mut self, policy: &LiquidatorPolicy, time: Timestamp) -> bool {
        let block = policy.block_of(time);
        if self.block != Some(block) {
            self.block = Some(block);
            self.used = 0;
        }
        match policy.max_per_block {
            Some(max) if self.used >= max => false,
            _ => {
                self.used += 1;
                true
            }
        }
    }

    /// The start of the next block after the one of `time`: when deferred candidates retry.
    pub fn next_block_start(policy: &LiquidatorPolicy, time: Timestamp) -> Timestamp {
        let length = i64::try_from(policy.block_time.max(1)).unwrap_or(i64::MAX);
        Timestamp((policy.block_of(time) + 1).saturating_mul(length))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wad(whole: u64) -> U256 {
        U256::from(whole) * WAD
    }

    fn candidate(account: u64, debt: u64, bonus_pct: u64, since: i64) -> Target {
        Target {
            protocol: Protocol::AaveV2,
            market: Id::name("POOL"),
            account: Id::Number(account),
            unsafe_since: Timestamp(since),
            debt_value: wad(debt),
            bonus: WAD + wad(bonus_pct) / U256::from(100u8),
        }
    }

    #[test]
    fn orders_by_choice_then_age_then_identity() {
        let mut list = vec![
            candidate(3, 100, 5, 10),
            candidate(1, 500, 5, 20),
            candidate(2, 100, 10, 5),
            candidate(4, 100, 5, 10),
        ];
        let policy = LiquidatorPolicy::default();
        policy.order(&mut list);
        let accounts: Vec<_> = list.iter().map(|c| c.account).collect();
        assert_eq!(
            accounts,
            [Id::Number(1), Id::Number(2), Id::Number(3), Id::Number(4)]
        );
        let policy = LiquidatorPolicy {
            pick: PairChoice::BestBonus,
            ..LiquidatorPolicy::default()
        };
        policy.order(&mut list);
        assert_eq!(list[0].account, Id::Number(2), "10% bonus first");
        assert_eq!(
            list[1].account,
            Id::Number(1),
            "then the largest debt at 5%"
        );
    }

    #[test]
    fn profit_after_gas_and_minimum() {
        let policy = LiquidatorPolicy {
            gas_cost: wad(50),
            min_profit: wad(100),
            ..LiquidatorPolicy::default()
        };
        let profit = policy.profit(wad(1_200), wad(1_000));
        assert_eq!(profit.gain, wad(150));
        assert!(policy.worth_it(profit));
        let thin = policy.profit(wad(1_120), wad(1_000));
        assert_eq!(thin.gain, wad(70));
        assert!(!policy.worth_it(thin));
        let loss = policy.profit(wad(900), wad(1_000));
        assert_eq!((loss.gain, loss.loss), (U256::ZERO, wad(150)));
        assert!(!LiquidatorPolicy::default().worth_it(loss));
    }

    #[test]
    fn latency_blocks_and_budget() {
        let policy = LiquidatorPolicy {
            latency: 30,
            block_time: 12,
            max_per_block: Some(2),
            ..LiquidatorPolicy::default()
        };
        assert_eq!(policy.ready_at(Timestamp(100)), Timestamp(130));
        assert_eq!(policy.block_of(Timestamp(23)), 1);
        assert_eq!(policy.block_of(Timestamp(-1)), -1);
        let mut budget = BlockBudget::default();
        assert!(budget.take(&policy, Timestamp(24)));
        assert!(budget.take(&policy, Timestamp(35)));
        assert!(!budget.take(&policy, Timestamp(35)), "third in block 2");
        assert_eq!(
            BlockBudget::next_block_start(&policy, Timestamp(35)),
            Timestamp(36)
        );
        assert!(budget.take(&policy, Timestamp(36)), "new block");
    }

    #[test]
    fn keeper_price_is_a_discount_to_market() {
        let policy = LiquidatorPolicy {
            keeper_discount: WAD / U256::from(20u8),
            ..LiquidatorPolicy::default()
        };
        assert_eq!(policy.keeper_price(wad(2_000)), wad(1_900));
        assert_eq!(LiquidatorPolicy::default().keeper_price(wad(7)), wad(7));
    }
}
