//! `leverage.max_loops`: looped positions unwound at the window start, to ask "what if looping
//! had been limited" (`docs/leverage.md`, "Capping loops"); and
//! `leverage.looped_threshold_cut_bps`: the thresholds of looped positions lowered instead
//! ([`cut_looped_thresholds`]).
//!
//! A position's loop depth is `ceil(L / Q)` (looped debt over net equity, [`super::loops`]).
//! Capping it at `N` unwinds `L - N * Q` of looped value: that much debt of a looped group is
//! repaid and the same value of the group's collateral withdrawn, as the account would have with
//! a flash loan. Equity stays (both sides fall by the same value), the looped debt becomes
//! `N * Q` and the depth `N`. The engine applies the result as the protocol's own repay and
//! withdraw actions, so the state changes by the protocol's integer math.
//!
//! Values are the model's own, in its base currency (every asset of a position shares it); token
//! amounts follow from them pro rata, floored, so equity moves by at most the value of one base
//! unit of each asset touched. Only loops inside one position are unwound: a loop across
//! protocols would need assets moved from one protocol to another, which no account action does.

use std::collections::BTreeMap;

use cascade_events::{Amount, Event, Id, Payload, PositionChange, Protocol, U256};

use crate::EngineError;
use crate::leverage::loops::Correlation;
use crate::oracle::PriceBook;
use crate::protocol::accounts::{AccountPosition, AssetPosition};
use crate::protocol::{Applied, ProtocolModel};

/// What capping did to one protocol's positions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capped {
    /// Positions unwound.
    pub positions: u64,
    /// Of their actions, those the model clamped or skipped (a rounding edge: none expected).
    pub adjusted: u64,
}

/// Unwinds every position of every model to at most `max_loops` loops, at the moment of
/// `event` (the window's first), through each model's own repay and withdraw rules. Accounts
/// are taken in (market, account) order, so the result never depends on a model's listing
/// order. Returns, per protocol with something unwound, what was done; the caller re-checks
/// those models.
pub fn cap_loops(
    models: &mut [Box<dyn ProtocolModel>],
    prices: &PriceBook,
    event: &Event,
    max_loops: u32,
    correlation: &Correlation,
) -> Result<BTreeMap<Protocol, Capped>, EngineError> {
    let mut out = BTreeMap::new();
    let mut accounts = Vec::new();
    for model in models.iter_mut() {
        list_sorted(model.as_ref(), event, &mut accounts);
        let mut capped = Capped::default();
        for account in &accounts {
            let Some(unwinding) = unwind(account, max_loops, correlation) else {
                continue;
            };
            capped.positions += 1;
            for action in unwinding.actions {
                let change = Box::new(PositionChange {
                    protocol: account.protocol,
                    market: account.market,
                    account: account.account,
                    asset: action.asset,
                    amount: Amount(action.amount),
                    shares: None,
                });
                let payload = match action.side {
                    Side::Repay => Payload::Repay(change),
                    Side::Withdraw => Payload::Withdraw(change),
                };
                let synthetic = Event {
                    payload,
                    tx_hash: None,
                    ..event.clone()
                };
                if !matches!(model.apply(&synthetic, prices)?, Applied::Exact) {
                    capped.adjusted += 1;
                }
            }
        }
        if capped.positions > 0 {
            out.insert(model.protocol(), capped);
        }
    }
    Ok(out)
}

/// Takes `cut_bps` off the liquidation thresholds (collateral factors) of every position of
/// every model that is looped at the moment of `event` (the window's first, after any
/// [`cap_loops`]): `leverage.looped_threshold_cut_bps`, the issue's "LTV cut applied to looped
/// positions only". Returns, per protocol, the positions cut; a protocol without a per-account
/// threshold (Maker) cuts none. The caller re-checks those models.
pub fn cut_looped_thresholds(
    models: &mut [Box<dyn ProtocolModel>],
    event: &Event,
    cut_bps: u16,
    correlation: &Correlation,
) -> BTreeMap<Protocol, u64> {
    let mut out = BTreeMap::new();
    let mut accounts = Vec::new();
    for model in models.iter_mut() {
        list_sorted(model.as_ref(), event, &mut accounts);
        let cut = accounts
            .iter()
            .filter(|account| is_looped(account, correlation))
            .filter(|account| model.cut_threshold(&account.market, &account.account, cut_bps))
            .count() as u64;
        if cut > 0 {
            out.insert(model.protocol(), cut);
        }
    }
    out
}

/// `model`'s accounts at `event` into `accounts`, in (market, account) order, so that what is
/// done to them never depends on the model's listing order.
fn list_sorted(model: &dyn ProtocolModel, event: &Event, accounts: &mut Vec<AccountPosition>) {
    accounts.clear();
    model.accounts(event.time, accounts);
    accounts.sort_by_key(|a| (a.market, a.account));
}

/// Whether `account` owes debt in a correlation group it also holds collateral in.
pub fn is_looped(account: &AccountPosition, correlation: &Correlation) -> bool {
    let held: Vec<String> = account
        .assets
        .iter()
        .filter(|a| !a.collateral.is_zero())
        .map(|a| correlation.group(&a.asset))
        .collect();
    account
        .assets
        .iter()
        .any(|a| !a.debt.is_zero() && held.contains(&correlation.group(&a.asset)))
}

/// Which way an unwinding action moves the position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Debt repaid.
    Repay,
    /// Collateral withdrawn.
    Withdraw,
}

/// One action of an unwinding: `amount` of `asset`, in its base units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// Repay or withdraw.
    pub side: Side,
    /// The token.
    pub asset: Id,
    /// Base units of the token.
    pub amount: U256,
}

/// What capping one position does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unwinding {
    /// Looped value unwound, base currency.
    pub value: U256,
    /// Repays and withdrawals, repays first, in group order then by value (largest first).
    pub actions: Vec<Action>,
}

/// How `account` is unwound to at most `max_loops` loops; `None` when it has nothing to unwind:
/// no debt, no loop beyond the cap, underwater (no equity to measure depth by), or a value the
/// model cannot give.
pub fn unwind(
    account: &AccountPosition,
    max_loops: u32,
    correlation: &Correlation,
) -> Option<Unwinding> {
    let mut collateral: BTreeMap<String, Vec<(&AssetPosition, U256)>> = BTreeMap::new();
    let mut debt: BTreeMap<String, Vec<(&AssetPosition, U256)>> = BTreeMap::new();
    let (mut exposure, mut owed) = (U256::ZERO, U256::ZERO);
    for asset in &account.assets {
        if !asset.collateral.is_zero() {
            let value = asset.collateral_value?;
            exposure = exposure.checked_add(value)?;
            let group = correlation.group(&asset.asset);
            collateral.entry(group).or_default().push((asset, value));
        }
        if !asset.debt.is_zero() {
            let value = asset.debt_value?;
            owed = owed.checked_add(value)?;
            let group = correlation.group(&asset.asset);
            debt.entry(group).or_default().push((asset, value));
        }
    }
    let equity = exposure.checked_sub(owed).filter(|q| !q.is_zero())?;
    let looped: BTreeMap<&String, U256> = debt
        .iter()
        .filter_map(|(group, owed)| {
            let held = total(collateral.get(group)?);
            Some((group, total(owed).min(held)))
        })
        .collect();
    let all_looped = looped.values().fold(U256::ZERO, |sum, v| sum + *v);
    let allowed = equity.saturating_mul(U256::from(max_loops));
    let over = all_looped.checked_sub(allowed).filter(|x| !x.is_zero())?;
    // Values are floored, each up to one unit below the holding's worth, so a position unwound
    // to exactly `max_loops` times its equity could be a hair above it at the next valuation
    // (the same holdings at another price), and its depth one more than the cap. Unwinding
    // `max_loops + 1` units more per holding valued keeps it below the edge.
    let valued = account
        .assets
        .iter()
        .map(|a| u64::from(!a.collateral.is_zero()) + u64::from(!a.debt.is_zero()))
        .sum::<u64>();
    let margin = U256::from((u64::from(max_loops) + 1) * valued);
    let mut excess = over.saturating_add(margin).min(all_looped);
    let mut unwinding = Unwinding::default();
    let mut withdrawals = Vec::new();
    for (group, loop_value) in looped {
        if excess.is_zero() {
            break;
        }
        let value = excess.min(loop_value);
        excess -= value;
        unwinding.value += value;
        take(&debt[group], value, Side::Repay, &mut unwinding.actions);
        take(&collateral[group], value, Side::Withdraw, &mut withdrawals);
    }
    unwinding.actions.extend(withdrawals);
    Some(unwinding)
}

fn total(holdings: &[(&AssetPosition, U256)]) -> U256 {
    holdings.iter().fold(U256::ZERO, |sum, (_, v)| sum + *v)
}

/// Appends the actions taking `value` (base currency) from `holdings`, largest value first (ties
/// by asset id), each asset's amount pro rata to its value: a withdrawal rounded down, a
/// repayment up (a base unit of debt is worth more than a unit of value for most tokens, and a
/// debt left above the value unwound would eat the margin [`unwind`] keeps below the cap).
fn take(holdings: &[(&AssetPosition, U256)], value: U256, side: Side, out: &mut Vec<Action>) {
    let mut ordered: Vec<&(&AssetPosition, U256)> = holdings.iter().collect();
    ordered.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.asset.cmp(&b.0.asset)));
    let mut left = value;
    for (asset, held) in ordered {
        if left.is_zero() {
            break;
        }
        let part = left.min(*held);
        left -= part;
        let tokens = match side {
            Side::Repay => asset.debt,
            Side::Withdraw => asset.collateral,
        };
        let amount = if part == *held {
            tokens
        } else {
            match side {
                Side::Repay => crate::math::mul_div_wide_up(tokens, part, *held)
                    .map_or(tokens, |amount| amount.min(tokens)),
                Side::Withdraw => crate::math::mul_div_wide(tokens, part, *held).unwrap_or(tokens),
            }
        };
        if !amount.is_zero() {
            out.push(Action {
                side,
                asset: asset.asset,
                amount,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leverage::positions::tests::asset;

    fn account(assets: Vec<AssetPosition>) -> AccountPosition {
        crate::leverage::positions::tests::account("USD", assets)
    }

    #[test]
    fn a_three_round_loop_is_unwound_to_one() {
        // 273 WETH collateral, 173 WETH debt, WETH at 2: exposure 546, debt 346, equity 200,
        // looped 346, depth ceil(346 / 200) = 2. Capped at 1: looped 200 allowed, 146 over,
        // plus the margin of (1 + 1) units for each of 2 holdings valued: 150 of value unwound =
        // 75 WETH repaid and 75 withdrawn: 198 collateral, 98 debt, equity 200 (in value
        // 396 - 196), depth ceil(196 / 200) = 1.
        let position = account(vec![asset("WETH", 273, 173, 2)]);
        let unwinding = unwind(&position, 1, &Correlation::default()).unwrap();
        assert_eq!(unwinding.value, U256::from(150u32));
        assert_eq!(
            unwinding.actions,
            [
                Action {
                    side: Side::Repay,
                    asset: Id::name("WETH"),
                    amount: U256::from(75u32)
                },
                Action {
                    side: Side::Withdraw,
                    asset: Id::name("WETH"),
                    amount: U256::from(75u32)
                },
            ]
        );
        // Already within 2 loops: nothing to do; at 0 every looped unit goes (173 WETH each side).
        assert_eq!(unwind(&position, 2, &Correlation::default()), None);
        let all = unwind(&position, 0, &Correlation::default()).unwrap();
        assert_eq!(all.value, U256::from(346u32));
        assert!(all.actions.iter().all(|a| a.amount == U256::from(173u32)));
    }

    #[test]
    fn correlated_assets_unwind_by_value_and_plain_borrows_stay() {
        // stETH collateral 100 at 3 (300), WETH debt 120 at 2 (240), USDC collateral 500 at 1,
        // DAI debt 100 at 1. Exposure 800, debt 340, equity 460.
        // Loops: ETH group min(240, 300) = 240, USD group min(100, 500) = 100; looped 340,
        // depth ceil(340 / 460) = 1. Capped at 0: all 340 unwound, groups in name order:
        // ETH 240 (120 WETH repaid, 240 / 3 = 80 stETH withdrawn), USD 100 (100 DAI repaid,
        // 100 USDC withdrawn). Repays first.
        let position = account(vec![
            asset("stETH", 100, 0, 3),
            asset("WETH", 0, 120, 2),
            asset("USDC", 500, 0, 1),
            asset("DAI", 0, 100, 1),
        ]);
        let unwinding = unwind(&position, 0, &Correlation::default()).unwrap();
        let amounts: Vec<(Side, String, u64)> = unwinding
            .actions
            .iter()
            .map(|a| (a.side, a.asset.to_string(), a.amount.to::<u64>()))
            .collect();
        assert_eq!(
            amounts,
            [
                (Side::Repay, "WETH".to_owned(), 120),
                (Side::Repay, "DAI".to_owned(), 100),
                (Side::Withdraw, "stETH".to_owned(), 80),
                (Side::Withdraw, "USDC".to_owned(), 100),
            ]
        );
        // Capped at 1 it is within the cap already.
        assert_eq!(unwind(&position, 1, &Correlation::default()), None);
        // WETH collateral against DAI debt is no loop: nothing to unwind even at 0.
        let plain = account(vec![asset("WETH", 10, 0, 2), asset("DAI", 0, 5, 1)]);
        assert_eq!(unwind(&plain, 0, &Correlation::default()), None);
        // Underwater (debt 30 against 20): no equity, no depth, left alone.
        let under = account(vec![asset("WETH", 10, 15, 2)]);
        assert_eq!(unwind(&under, 0, &Correlation::default()), None);
    }

    #[test]
    fn withdrawals_round_down_and_repayments_up() {
        // 10 WETH collateral at value 33 (3.3 each), 7 WETH debt at value 23: equity 10, looped
        // 23, capped at 1: 13 over, plus the margin of 2 units for each of 2 holdings: 17 of
        // value unwound: 7 * 17 / 23 = 5.17 -> 6 WETH repaid (up), 10 * 17 / 33 = 5.15 -> 5 WETH
        // withdrawn (down). Left: 5 collateral (16.5), 1 debt (3.29): depth 1.
        let mut weth = asset("WETH", 10, 7, 0);
        weth.collateral_value = Some(U256::from(33u8));
        weth.debt_value = Some(U256::from(23u8));
        let unwinding = unwind(&account(vec![weth]), 1, &Correlation::default()).unwrap();
        assert_eq!(unwinding.value, U256::from(17u8));
        let amounts: Vec<(Side, u64)> = unwinding
            .actions
            .iter()
            .map(|a| (a.side, a.amount.to::<u64>()))
            .collect();
        assert_eq!(amounts, [(Side::Repay, 6), (Side::Withdraw, 5)]);
    }
}
