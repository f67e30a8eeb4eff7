//! The Compound v2 model: markets, accounts and the oracle view the Comptroller reads, behind
//! the engine's [`ProtocolModel`] interface.
//!
//! State mirrors the contracts: per market (keyed by its underlying asset within a Comptroller)
//! the collateral factor, `exchangeRateStored`, `borrowIndex` and seize share; per account and
//! market the cToken balance, the `BorrowSnapshot` (principal and the index it was taken at) and
//! whether the account has entered the market. Borrow balances are read back with
//! `borrowBalanceStoredInternal`; liquidity is `getHypotheticalAccountLiquidityInternal`.
//!
//! What the model knows only from events (documented in `docs/engine.md`):
//! - `exchangeRateStored` and `borrowIndex` move only with [`IndexUpdate`] events (`supply_index`
//!   is the exchange rate, `borrow_index` the borrow index, both as mantissas with 18 decimals);
//!   no interest accrues between them.
//! - A deposit without recorded cTokens mints `amount * 1e18 / exchangeRate` (`mintFresh`), with
//!   the initial rate of 0.02 underlying per cToken until an index update gives one.
//! - Supplying enters the market (counts as collateral) unless a [`CollateralToggle`] says
//!   otherwise: sources rarely carry `MarketEntered`; borrowing enters the market as
//!   `borrowAllowed` does.
//! - Prices are the latest USD price per whole token; the model turns them into
//!   `getUnderlyingPrice` mantissas (`price * 10^(36 - decimals)`).
//!
//! Finding liquidatable accounts never scans every account: single-collateral, single-borrow
//! accounts are indexed per (collateral, borrow) pair by
//! `principal * 1e36 / interestIndex / cTokens`, which neither prices nor indices move, against
//! the level `1e36 * tokensToDenom(collateral) / (borrowIndex * price(borrow))` lowered by 1%;
//! every candidate is confirmed with the exact liquidity. Other accounts are checked exactly on
//! every query.
//!
//! The replay's checks do not list that set: a [`Monitor`] keeps it with each account's share of
//! the risk sums, re-testing at a check only the accounts acted on since the last one and, for
//! the assets whose view moved, the pair members from the lower of the old and new level up and the
//! accounts with several reserves, so a check after one liquidation costs one account.

mod accounts;

use std::collections::BTreeMap;

use cascade_events::{
    CollateralToggle, Event, Fixed, Id, IndexUpdate, Liquidation, LiquidationDetail, Payload,
    PositionChange, PriceUpdate, Protocol, Timestamp, U256,
};

use super::exp::{EXP_SCALE, Rounding, div_scalar_by_exp, mul_exp, mul_scalar_truncate};
use super::logic::{
    self, AccountLiquidity, LiquidationContext, LiquidationRefusal, MarketExposure,
    borrow_balance_stored, seize_tokens,
};
use crate::EngineError;
use crate::compound::spec::CompoundParam;
use crate::lending::warm_accounts;
use crate::lending::{
    Exposure, FoundSet, Held, IndexEntry, Monitor, PairIndex, Placed, Retest, Retested,
    compress_key,
};
use crate::oracle::PriceBook;
use crate::protocol::param::{ParamSetting, ProtocolParam};
use crate::protocol::{
    Applied, Candidate, Judgement, LiquidatorChoice, MarketRisk, ProtocolModel, Quantity,
    SimulatedLiquidation, Verdict,
};
use crate::slots::{Slot, Slots, SmallMap};
use crate::state::{StateReader, StateWriter};

const fn u256(value: u128) -> U256 {
    U256::from_limbs([value as u64, (value >> 64) as u64, 0, 0])
}

/// Scale of the pair index key.
const KEY_SCALE: U256 = u256(1_000_000_000_000_000_000_000_000_000_000_000_000);

/// Every Compound v2 cToken has 8 decimals.
const CTOKEN_DECIMALS: u8 = 8;

/// `closeFactorMantissa` at launch and for most of Compound v2's life: 50%.
const DEFAULT_CLOSE_FACTOR: U256 = u256(500_000_000_000_000_000);

/// `liquidationIncentiveMantissa` for most of Compound v2's life: 1.08.
const DEFAULT_LIQUIDATION_INCENTIVE: U256 = u256(1_080_000_000_000_000_000);

/// One Compound market.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Market {
    /// Underlying decimals; unknown until a `decimals` parameter arrives.
    decimals: Option<u8>,
    /// `collateralFactorMantissa`.
    collateral_factor: U256,
    /// `exchangeRateStored`; `None` until an index update (then the initial rate applies).
    exchange_rate: Option<U256>,
    /// `borrowIndex`.
    borrow_index: U256,
    /// `protocolSeizeShareMantissa`.
    protocol_seize_share: U256,
}

impl Default for Market {
    fn default() -> Self {
        Self {
            decimals: None,
            collateral_factor: U256::ZERO,
            exchange_rate: None,
            borrow_index: EXP_SCALE,
            protocol_seize_share: U256::ZERO,
        }
    }
}

impl Market {
    /// `exchangeRateStored`, or the initial 0.02 underlying per cToken (8-decimal cTokens) while
    /// no rate was recorded: `0.02 * 10^(18 + decimals - 8)`.
    fn rate(&self) -> Option<U256> {
        if let Some(rate) = self.exchange_rate {
            return Some(rate);
        }
        let exponent = 16u32
            .checked_add(u32::from(self.decimals?))?
            .checked_sub(8)?;
        U256::from(2u8).checked_mul(U256::from(10u8).checked_pow(U256::from(exponent))?)
    }
}

/// An account's holdings in one market.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Position {
    ctokens: U256,
    principal: U256,
    interest_index: U256,
    entered: bool,
}

/// Where an account sits in its market's indices.
type Entry = IndexEntry<Member>;

/// An account as its pair index holds it: the balances its liquidity needs, so walking the
/// index never looks the account up. Balances are `u128` (an account with a larger one is
/// indexed as complex): a smaller entry is a faster walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Member {
    ctokens: u128,
    principal: u128,
    interest_index: u128,
}

#[derive(Clone, Debug, Default)]
struct Account {
    positions: SmallMap<Position>,
}

/// One Comptroller and its accounts.
#[derive(Clone, Debug, Default)]
struct Comptroller {
    /// Looked up by hash, never iterated in slot order where the order can reach an output
    /// (see [`crate::slots`]).
    accounts: Slots<Account>,
    /// Keys are [`compress_key`] of `principal * 1e36 / interestIndex / cTokens`.
    index: PairIndex<Member>,
}

/// What `liquidatable` reports of an account found liquidatable.
#[derive(Clone, Copy, Debug)]
struct Found {
    /// Weighted collateral over borrows, wad ([`CompoundModel::health`]).
    health: U256,
    /// `sumBorrowPlusEffects`.
    sum_borrow: U256,
}

/// A liquidatable account as the monitor keeps it: its share of the risk sums, in USD (wad).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Exposed {
    /// Market value of the entered collateral (collateral factor 1).
    collateral_value: U256,
    /// `sumBorrowPlusEffects`.
    sum_borrow: U256,
}

impl Exposure for Exposed {
    fn collateral(&self) -> U256 {
        self.collateral_value
    }

    fn debt(&self) -> U256 {
        self.sum_borrow
    }
}

/// What the liquidity reads of one market besides balances: the market (decimals, exchange rate,
/// collateral factor, borrow index; a change of another field only re-tests more) and its
/// recorded price. A change re-tests the accounts holding it.
type MarketView = (Market, Option<Fixed>);

/// What the liquidity of a pair member reads from one market of the pair.
#[derive(Clone, Copy)]
struct Side {
    /// `tokensToDenom = collateralFactor * exchangeRate * price`, as the Comptroller computes it.
    tokens_to_denom: U256,
    exchange_rate: U256,
    price: U256,
    borrow_index: U256,
}

/// The per-pair constants of [`CompoundModel::find`], read once per pair and query.
struct PairView {
    c: Side,
    b: Side,
}

impl PairView {
    /// `getHypotheticalAccountLiquidityInternal` of an account holding only this pair: the same
    /// result as [`CompoundModel::liquidity`] from the member's balances, with the loop over
    /// markets unrolled and `tokensToDenom` computed once per pair (the terms the contract adds
    /// for the other side are zero). When the pair is one market both sides are that market.
    fn liquidity(&self, member: &Member) -> Option<AccountLiquidity> {
        let borrowed = borrow_balance_stored(
            U256::from(member.principal),
            self.b.borrow_index,
            U256::from(member.interest_index),
        )?;
        Some(AccountLiquidity {
            sum_collateral: mul_scalar_truncate(
                self.c.tokens_to_denom,
                U256::from(member.ctokens),
            )?,
            sum_borrow: mul_scalar_truncate(self.b.price, borrowed)?,
        })
    }

    /// The pair level `1e36 * tokensToDenom(c) / (borrowIndex(b) * price(b))`, lowered by 1%;
    /// zero (walk everything) when it cannot be computed.
    fn level(&self) -> U256 {
        let compute = || -> Option<U256> {
            let level = self
                .c
                .tokens_to_denom
                .checked_mul(KEY_SCALE)?
                .checked_div(self.b.borrow_index.checked_mul(self.b.price)?)?;
            Some(level - level / U256::from(100u8))
        };
        compute().unwrap_or(U256::ZERO)
    }
}

/// Compound v2 over every Comptroller in the log.
#[derive(Clone, Debug)]
pub struct CompoundModel {
    rounding: Rounding,
    close_factor: U256,
    liquidation_incentive: U256,
    markets: BTreeMap<Id, Market>,
    prices: BTreeMap<Id, Fixed>,
    comptrollers: BTreeMap<Id, Comptroller>,
    /// The last liquidatable set (not state: never encoded; rebuilt after any change).
    found: FoundSet<Found>,
    /// Scratch space of [`CompoundModel::find`] (not state).
    walked: Vec<Held<Member>>,
    /// The liquidatable set kept incrementally for `unsafe_changes` and `risk` (not state:
    /// derived from it, rebuilt after a decode).
    monitor: Monitor<Exposed, MarketView>,
}

impl CompoundModel {
    /// A Compound v2 model whose Comptroller multiplies mantissas with `rounding` (see
    /// [`Rounding`]); close factor 0.5 and incentive 1.08 until parameter events say otherwise.
    pub fn new(rounding: Rounding) -> Self {
        Self {
            rounding,
            close_factor: DEFAULT_CLOSE_FACTOR,
            liquidation_incentive: DEFAULT_LIQUIDATION_INCENTIVE,
            markets: BTreeMap::new(),
            prices: BTreeMap::new(),
            comptrollers: BTreeMap::new(),
            found: FoundSet::default(),
            walked: Vec::new(),
            monitor: Monitor::default(),
        }
    }

    /// `getUnderlyingPrice` for `asset`: USD per whole token times `10^(36 - decimals)`.
    fn price(&self, asset: &Id) -> Option<U256> {
        let decimals = self.markets.get(asset)?.decimals?;
        self.prices.get(asset)?.rescale(36u8.checked_sub(decimals)?)
    }

    fn borrow_balance(&self, asset: &Id, position: &Position) -> Option<U256> {
        let market = self.markets.get(asset)?;
        borrow_balance_stored(
            position.principal,
            market.borrow_index,
            position.interest_index,
        )
    }

    /// The entered markets as the Comptroller reads them; `None` when a price, rate or decimals
    /// are missing.
    fn exposures(&self, account: &Account) -> Option<Vec<MarketExposure>> {
        let mut out = Vec::new();
        for (asset, position) in account.positions.iter() {
            if !position.entered || (position.ctokens.is_zero() && position.principal.is_zero()) {
                continue;
            }
            let market = self.markets.get(asset)?;
            out.push(MarketExposure {
                collateral_factor: market.collateral_factor,
                exchange_rate: market.rate()?,
                price: self.price(asset)?,
                ctoken_balance: position.ctokens,
                borrow_balance: self.borrow_balance(asset, position)?,
            });
        }
        Some(out)
    }

    fn liquidity(&self, account: &Account) -> Option<AccountLiquidity> {
        logic::account_liquidity(self.exposures(account)?, self.rounding)
    }

    /// Health as the run file reports it: weighted collateral over borrows, wad, truncated; below
    /// one exactly when there is a shortfall.
    fn health(liquidity: &AccountLiquidity) -> U256 {
        if liquidity.sum_borrow.is_zero() {
            return U256::MAX;
        }
        liquidity
            .sum_collateral
            .checked_mul(EXP_SCALE)
            .and_then(|scaled| crate::math::div_small_quotient(scaled, liquidity.sum_borrow))
            .unwrap_or(U256::MAX)
    }

    fn context(
        &self,
        account: &Account,
        liquidity: AccountLiquidity,
        collateral: &Id,
        borrow: &Id,
    ) -> Option<LiquidationContext> {
        let position = |asset: &Id| account.positions.get(asset).copied().unwrap_or_default();
        let c_market = self.markets.get(collateral)?;
        Some(LiquidationContext {
            liquidity,
            borrow_balance: self.borrow_balance(borrow, &position(borrow))?,
            price_borrowed: self.price(borrow)?,
            price_collateral: self.price(collateral)?,
            exchange_rate: c_market.rate()?,
            collateral_ctokens: position(collateral).ctokens,
            close_factor: self.close_factor,
            liquidation_incentive: self.liquidation_incentive,
            protocol_seize_share: c_market.protocol_seize_share,
            rounding: self.rounding,
        })
    }

    /// Recomputes where `account_id` of `comptroller_id` sits in the index.
    fn reindex_account(&mut self, comptroller_id: &Id, account_id: &Id) {
        if let Some(slot) = self
            .comptrollers
            .get(comptroller_id)
            .and_then(|comptroller| comptroller.accounts.find(account_id))
        {
            self.reindex(comptroller_id, slot);
        }
    }

    /// Recomputes where the account in `slot` of `comptroller_id` sits in the index.
    fn reindex(&mut self, comptroller_id: &Id, slot: Slot) {
        let Some(comptroller) = self.comptrollers.get_mut(comptroller_id) else {
            return;
        };
        let account = comptroller.accounts.at(slot);
        self.monitor.touch(*comptroller_id, slot);
        // One entered collateral and one borrow make a pair member; anything else is complex
        // (checked on every query) or, without borrows, not indexed.
        let mut collateral: Option<(&Id, &Position)> = None;
        let mut borrow: Option<(&Id, &Position)> = None;
        let (mut collaterals, mut borrows) = (0usize, 0usize);
        for (asset, position) in account.positions.iter() {
            if position.entered && !position.ctokens.is_zero() {
                collaterals += 1;
                collateral = Some((asset, position));
            }
            if !position.principal.is_zero() {
                borrows += 1;
                borrow = Some((asset, position));
            }
        }
        let complex = || Entry::Complex {
            assets: account.positions.iter().map(|(asset, _)| *asset).collect(),
        };
        let entry = match (collateral, borrow) {
            _ if borrows == 0 => None,
            (Some((c, cp)), Some((b, bp))) if collaterals == 1 && borrows == 1 => {
                let key = bp
                    .principal
                    .checked_mul(KEY_SCALE)
                    .and_then(|scaled| scaled.checked_div(bp.interest_index))
                    .map(|per_index| compress_key(per_index / cp.ctokens));
                let narrow = (
                    u128::try_from(cp.ctokens),
                    u128::try_from(bp.principal),
                    u128::try_from(bp.interest_index),
                );
                match (key, narrow) {
                    (Some(key), (Ok(ctokens), Ok(principal), Ok(interest_index))) => {
                        Some(Entry::Pair {
                            collateral: *c,
                            debt: *b,
                            key,
                            member: Member {
                                ctokens,
                                principal,
                                interest_index,
                            },
                        })
                    }
                    _ => Some(complex()),
                }
            }
            _ => Some(complex()),
        };
        if let Some(pair) = comptroller.index.set(slot, entry) {
            self.monitor.forget_pair(comptroller_id, &pair);
        }
    }

    /// Puts the accounts with a shortfall into `found`, Comptroller by Comptroller.
    /// `walked` is scratch space: members are copied out of the index first and judged after,
    /// so the copy loop's cache misses overlap instead of waiting behind each liquidity.
    fn find(&self, found: &mut FoundSet<Found>, walked: &mut Vec<Held<Member>>) {
        found.clear();
        for (comptroller_id, comptroller) in &self.comptrollers {
            for members in comptroller.index.pairs() {
                let (collateral, borrow) = members.ids();
                let Some(pair) = self.pair_view(collateral, borrow) else {
                    continue;
                };
                walked.clear();
                walked.extend(members.at_or_above(compress_key(pair.level())));
                for held in walked.iter() {
                    if let Some(liquidity) = pair.liquidity(&held.member)
                        && !liquidity.shortfall().is_zero()
                    {
                        let health = Self::health(&liquidity);
                        found.push(
                            *comptroller.accounts.id(held.slot),
                            health,
                            Found {
                                health,
                                sum_borrow: liquidity.sum_borrow,
                            },
                        );
                    }
                }
            }
            for slot in comptroller.index.complex() {
                let (id, account) = (
                    comptroller.accounts.id(*slot),
                    comptroller.accounts.at(*slot),
                );
                if let Some(liquidity) = self.liquidity(account)
                    && !liquidity.shortfall().is_zero()
                {
                    let health = Self::health(&liquidity);
                    found.push(
                        *id,
                        health,
                        Found {
                            health,
                            sum_borrow: liquidity.sum_borrow,
                        },
                    );
                }
            }
            found.end_market(*comptroller_id);
        }
        found.finish();
    }

    /// Market value of an account's entered collateral (collateral factor 1); `None` when a
    /// price or rate is missing or a product overflows.
    fn collateral_value(&self, account: &Account) -> Option<U256> {
        let mut total = U256::ZERO;
        for (asset, position) in account.positions.iter() {
            if !position.entered || position.ctokens.is_zero() {
                continue;
            }
            let underlying =
                mul_scalar_truncate(self.markets.get(asset)?.rate()?, position.ctokens)?;
            total = total.checked_add(mul_scalar_truncate(self.price(asset)?, underlying)?)?;
        }
        Some(total)
    }

    /// Makes `self.found` the liquidatable set of the current state, computing it at most once
    /// per state: `liquidatable` and `risk` after the same event share it.
    fn refresh_found(&mut self) {
        if !self.found.is_valid() {
            let mut found = std::mem::take(&mut self.found);
            let mut walked = std::mem::take(&mut self.walked);
            self.find(&mut found, &mut walked);
            self.found = found;
            self.walked = walked;
        }
    }

    /// Forgets the cached liquidatable set: called by every method that may change the state.
    fn invalidate(&mut self) {
        self.found.invalidate();
    }

    /// The view of every market, for [`Monitor::begin`].
    fn market_views(&self) -> BTreeMap<Id, MarketView> {
        self.markets
            .iter()
            .map(|(asset, market)| (*asset, (market.clone(), self.prices.get(asset).copied())))
            .collect()
    }

    /// Brings the monitor to the current state (see [`Monitor`]).
    fn refresh_monitor(&mut self) {
        let Some(retest) = self.monitor.begin(self.market_views()) else {
            return;
        };
        let mut out = Retested::default();
        self.retest(&retest, &mut out);
        self.monitor.finish(&retest, out);
    }

    /// Re-tests what `retest` names with the rule [`CompoundModel::find`] applies and the
    /// collateral value `risk` reads: pairs whose markets moved from the lower of their stored
    /// and new level, accounts with several markets when any market moved, and touched accounts
    /// (a pair member only when its key reaches its pair's level: below it the walk would not
    /// have confirmed it either).
    fn retest(&self, retest: &Retest, out: &mut Retested<Exposed>) {
        // A member's market value is `price * (exchangeRate * cTokens)`, truncated as the
        // Comptroller's scalar products are.
        let judge = |pair: &PairView, member: &Member| -> Option<Exposed> {
            let liquidity = pair.liquidity(member)?;
            if liquidity.shortfall().is_zero() {
                return None;
            }
            let value = mul_scalar_truncate(pair.c.exchange_rate, U256::from(member.ctokens))
                .and_then(|underlying| mul_scalar_truncate(pair.c.price, underlying));
            Some(Exposed {
                collateral_value: value.unwrap_or(U256::ZERO),
                sum_borrow: liquidity.sum_borrow,
            })
        };
        let judge_complex = |account: &Account| -> Option<Exposed> {
            let liquidity = self.liquidity(account)?;
            if liquidity.shortfall().is_zero() {
                return None;
            }
            Some(Exposed {
                collateral_value: self.collateral_value(account).unwrap_or(U256::ZERO),
                sum_borrow: liquidity.sum_borrow,
            })
        };
        for (comptroller_id, comptroller) in &self.comptrollers {
            let walked = self.monitor.walk_pairs(
                retest,
                comptroller_id,
                &comptroller.index,
                |(collateral, borrow)| {
                    let view = self.pair_view(collateral, borrow)?;
                    let level = compress_key(view.level());
                    Some((view, level))
                },
                |view, member| Ok::<_, std::convert::Infallible>(judge(view, member)),
                out,
            );
            let Ok(()) = walked;
            for slot in comptroller.index.complex_moved(retest) {
                let found = judge_complex(comptroller.accounts.at(*slot));
                out.results.push((*comptroller_id, *slot, found));
            }
        }
        // The pairs' views and levels, computed once per refresh however many of their members
        // were touched.
        let mut views: BTreeMap<(Id, Id), Option<(PairView, u128)>> = BTreeMap::new();
        for (comptroller_id, slot) in &retest.touched {
            let Some(comptroller) = self.comptrollers.get(comptroller_id) else {
                continue;
            };
            let found = match comptroller.index.placed(*slot) {
                None => None,
                Some(Placed::Complex) => judge_complex(comptroller.accounts.at(*slot)),
                Some(Placed::Pair { pair, held, .. }) => {
                    let view = views.entry(*pair).or_insert_with(|| {
                        let view = self.pair_view(&pair.0, &pair.1)?;
                        let level = compress_key(view.level());
                        Some((view, level))
                    });
                    match view {
                        Some((view, level)) if held.key >= *level => judge(view, &held.member),
                        _ => None,
                    }
                }
            };
            out.results.push((*comptroller_id, *slot, found));
        }
    }

    /// The risk snapshot summed over [`CompoundModel::find`]'s set, each collateral value
    /// computed over the account's markets: the baseline the monitor's sums are tested against.
    #[cfg(test)]
    pub(crate) fn scanned_risk(&mut self) -> Vec<(Id, u64, U256, U256, U256)> {
        self.invalidate();
        self.refresh_found();
        let mut out = Vec::new();
        for (market, comptroller) in &self.comptrollers {
            let mut totals = (0u64, U256::ZERO, U256::ZERO, U256::ZERO);
            for (_, id, account) in self.found.ordered().filter(|(m, _, _)| *m == market) {
                let value = comptroller
                    .accounts
                    .get(id)
                    .and_then(|state| self.collateral_value(state))
                    .unwrap_or(U256::ZERO);
                totals.0 += 1;
                totals.1 = totals.1.saturating_add(value);
                totals.2 = totals.2.saturating_add(account.sum_borrow);
                totals.3 = totals
                    .3
                    .saturating_add(account.sum_borrow.saturating_sub(value));
            }
            out.push((*market, totals.0, totals.1, totals.2, totals.3));
        }
        out
    }

    /// What the liquidity of an account of the (collateral, borrow) pair reads besides its
    /// balances; `None` when a price, rate or decimals are missing, a price is zero (the
    /// Comptroller's `PRICE_ERROR`) or `tokensToDenom` overflows.
    fn pair_view(&self, collateral: &Id, borrow: &Id) -> Option<PairView> {
        let side = |asset: &Id| -> Option<Side> {
            let market = self.markets.get(asset)?;
            let exchange_rate = market.rate()?;
            let price = self.price(asset)?;
            if price.is_zero() {
                return None;
            }
            Some(Side {
                tokens_to_denom: mul_exp(
                    mul_exp(market.collateral_factor, exchange_rate, self.rounding)?,
                    price,
                    self.rounding,
                )?,
                exchange_rate,
                price,
                borrow_index: market.borrow_index,
            })
        };
        Some(PairView {
            c: side(collateral)?,
            b: side(borrow)?,
        })
    }

    /// Every account with a shortfall, by computing every account's liquidity: the full-scan
    /// baseline the index is measured and tested against. Sorted (comptroller, account).
    pub fn scan_all_liquidatable(&self) -> Vec<(Id, Id)> {
        let mut out = Vec::new();
        for (comptroller_id, comptroller) in &self.comptrollers {
            for slot in comptroller.accounts.sorted() {
                let (id, account) = (comptroller.accounts.id(slot), comptroller.accounts.at(slot));
                if self
                    .liquidity(account)
                    .is_some_and(|liquidity| !liquidity.shortfall().is_zero())
                {
                    out.push((*comptroller_id, *id));
                }
            }
        }
        out
    }

    /// The account's position in the change's market, created if needed, and its slot.
    fn position_mut(&mut self, change: &PositionChange) -> (Slot, &mut Position) {
        let accounts = &mut self.comptrollers.entry(comptroller()).or_default().accounts;
        let (slot, _) = accounts.slot_or_insert_with(change.account, Account::default);
        let position = accounts
            .at_mut(slot)
            .positions
            .entry_or_default(change.asset);
        (slot, position)
    }

    fn deposit(&mut self, change: &PositionChange) -> Result<Applied, EngineError> {
        let market = self.markets.entry(change.asset).or_default().clone();
        let minted = match change.shares {
            Some(shares) => shares.0,
            None => match market.rate() {
                Some(rate) => {
                    div_scalar_by_exp(change.amount.0, rate).ok_or(EngineError::Overflow {
                        quantity: "Compound mint tokens",
                    })?
                }
                None => {
                    return Ok(Applied::Skipped(
                        "deposit into a market with no decimals or rate",
                    ));
                }
            },
        };
        let (slot, position) = self.position_mut(change);
        if position.ctokens.is_zero() && !minted.is_zero() {
            position.entered = true;
        }
        position.ctokens = position
            .ctokens
            .checked_add(minted)
            .ok_or(EngineError::Overflow {
                quantity: "Compound cToken balance",
            })?;
        self.reindex(&comptroller(), slot);
        Ok(Applied::Exact)
    }

    fn withdraw(&mut self, change: &PositionChange) -> Result<Applied, EngineError> {
        let market = self.markets.entry(change.asset).or_default().clone();
        let redeemed = match change.shares {
            Some(shares) => shares.0,
            None => match market.rate() {
                Some(rate) => {
                    div_scalar_by_exp(change.amount.0, rate).ok_or(EngineError::Overflow {
                        quantity: "Compound redeem tokens",
                    })?
                }
                None => {
                    return Ok(Applied::Skipped(
                        "withdrawal from a market with no decimals or rate",
                    ));
                }
            },
        };
        let (slot, position) = self.position_mut(change);
        let clamped = redeemed > position.ctokens;
        position.ctokens = position.ctokens.saturating_sub(redeemed);
        self.reindex(&comptroller(), slot);
        Ok(if clamped {
            Applied::Clamped("withdraw exceeds the rebuilt cToken balance")
        } else {
            Applied::Exact
        })
    }

    /// `borrowFresh` (`sign` true) or `repayBorrowFresh`: the snapshot becomes the stored
    /// balance plus or minus the amount, at the current borrow index.
    fn move_debt(&mut self, change: &PositionChange, borrow: bool) -> Result<Applied, EngineError> {
        let index = self.markets.entry(change.asset).or_default().borrow_index;
        let amount = change.amount.0;
        let position = *self.position_mut(change).1;
        let balance = borrow_balance_stored(position.principal, index, position.interest_index)
            .ok_or(EngineError::Overflow {
                quantity: "Compound borrow balance",
            })?;
        let (new_balance, clamped) = if borrow {
            (
                balance.checked_add(amount).ok_or(EngineError::Overflow {
                    quantity: "Compound borrow balance",
                })?,
                false,
            )
        } else {
            (balance.saturating_sub(amount), amount > balance)
        };
        let (slot, position) = self.position_mut(change);
        position.principal = new_balance;
        position.interest_index = index;
        if borrow {
            position.entered = true;
        }
        self.reindex(&comptroller(), slot);
        Ok(if clamped {
            Applied::Clamped("repay exceeds the rebuilt borrow balance")
        } else {
            Applied::Exact
        })
    }

    fn toggle(&mut self, toggle: &CollateralToggle) -> Applied {
        let Some(account) = self
            .comptrollers
            .get_mut(&comptroller())
            .and_then(|c| c.accounts.get_mut(&toggle.account))
        else {
            return Applied::Skipped("collateral toggle of an account with no rebuilt position");
        };
        account.positions.entry_or_default(toggle.asset).entered = toggle.enabled;
        self.reindex_account(&comptroller(), &toggle.account);
        Applied::Exact
    }

    fn index_update(&mut self, update: &IndexUpdate) -> Result<Applied, EngineError> {
        let market = self.markets.entry(update.asset).or_default();
        if let Some(rate) = &update.supply_index {
            market.exchange_rate = Some(mantissa(rate, "Compound exchange rate")?);
        }
        if let Some(index) = &update.borrow_index {
            market.borrow_index = mantissa(index, "Compound borrow index")?;
        }
        Ok(Applied::Exact)
    }

    /// Repays `repaid` of `borrow` and removes `seized` cTokens of `collateral`
    /// (`repayBorrowFresh` then `seizeInternal`). Returns whether an amount was clamped.
    fn take(
        &mut self,
        comptroller_id: &Id,
        account_id: &Id,
        collateral: &Id,
        seized: U256,
        borrow: &Id,
        repaid: U256,
    ) -> Result<bool, EngineError> {
        let index = self.markets.entry(*borrow).or_default().borrow_index;
        let Some(account) = self
            .comptrollers
            .get_mut(comptroller_id)
            .and_then(|c| c.accounts.get_mut(account_id))
        else {
            return Ok(false);
        };
        let b = account.positions.entry_or_default(*borrow);
        let balance = borrow_balance_stored(b.principal, index, b.interest_index).ok_or(
            EngineError::Overflow {
                quantity: "Compound borrow balance",
            },
        )?;
        let clamped_b = repaid > balance;
        b.principal = balance.saturating_sub(repaid);
        b.interest_index = index;
        let c = account.positions.entry_or_default(*collateral);
        let clamped_c = seized > c.ctokens;
        c.ctokens = c.ctokens.saturating_sub(seized);
        self.reindex_account(comptroller_id, account_id);
        Ok(clamped_b || clamped_c)
    }

    fn set(
        &mut self,
        market: Option<&Id>,
        param: CompoundParam,
        value: &Fixed,
    ) -> Result<Applied, EngineError> {
        let invalid = |reason: &'static str| EngineError::InvalidParam {
            param: param.name().to_owned(),
            value: value.to_string(),
            reason,
        };
        let as_mantissa = || value.rescale(18).ok_or_else(|| invalid("too large"));
        match param {
            CompoundParam::CloseFactor => {
                self.close_factor = as_mantissa()?;
                return Ok(Applied::Exact);
            }
            CompoundParam::LiquidationIncentive => {
                self.liquidation_incentive = as_mantissa()?;
                return Ok(Applied::Exact);
            }
            _ => {}
        }
        let market = market.ok_or_else(|| invalid("a market parameter needs a market"))?;
        let entry = self.markets.entry(*market).or_default();
        match param {
            CompoundParam::CollateralFactor => {
                entry.collateral_factor = as_mantissa()?;
            }
            CompoundParam::ProtocolSeizeShare => {
                entry.protocol_seize_share = as_mantissa()?;
            }
            CompoundParam::Decimals => {
                let decimals = value
                    .rescale(0)
                    .filter(|d| {
                        *d <= U256::from(36u8)
                            && Fixed::new(*d, 0).rescale(value.decimals) == Some(value.value)
                    })
                    .ok_or_else(|| invalid("expected a whole number of decimals up to 36"))?;
                entry.decimals = Some(decimals.to::<u8>());
            }
            CompoundParam::Untracked => return Ok(Applied::Ignored),
            CompoundParam::CloseFactor | CompoundParam::LiquidationIncentive => {
                unreachable!("comptroller-wide parameters return above")
            }
        }
        Ok(Applied::Exact)
    }

    fn quantity(&self, value: U256, asset: &Id) -> Quantity {
        let decimals = self
            .markets
            .get(asset)
            .and_then(|m| m.decimals)
            .unwrap_or(0);
        Quantity::new(value, decimals)
    }

    /// `pair = best-bonus`: of the account's (collateral, borrow) pairs allowed by `choice`, the
    /// one whose `liquidateBorrow` gives the liquidator the most collateral value (its
    /// `liquidatorSeizeTokens` at the exchange rate and oracle price) beyond the borrow it repays,
    /// in USD. Ties: the first in id order. `None` when no pair can be liquidated.
    fn best_bonus_pair(
        &self,
        account: &Account,
        liquidity: AccountLiquidity,
        choice: &LiquidatorChoice,
    ) -> Result<Option<(Id, Id)>, EngineError> {
        let mut best: Option<(U256, Id, Id)> = None;
        for (collateral, held) in account.positions.iter() {
            if !held.entered
                || held.ctokens.is_zero()
                || choice.collateral_asset.is_some_and(|c| c != *collateral)
            {
                continue;
            }
            for (borrow, owed) in account.positions.iter() {
                if owed.principal.is_zero() || choice.debt_asset.is_some_and(|d| d != *borrow) {
                    continue;
                }
                let Some(context) = self.context(account, liquidity, collateral, borrow) else {
                    continue;
                };
                let Some(quote) = simulated_quote(&context, choice.max_repay)? else {
                    continue;
                };
                let received = mul_scalar_truncate(context.exchange_rate, quote.liquidator_tokens)
                    .and_then(|underlying| {
                        mul_scalar_truncate(context.price_collateral, underlying)
                    });
                let paid = mul_scalar_truncate(context.price_borrowed, quote.repaid);
                let (Some(received), Some(paid)) = (received, paid) else {
                    continue;
                };
                let bonus = received.saturating_sub(paid);
                if best.is_none_or(|(most, _, _)| bonus > most) {
                    best = Some((bonus, *collateral, *borrow));
                }
            }
        }
        Ok(best.map(|(_, collateral, borrow)| (collateral, borrow)))
    }
}

/// `liquidateBorrow` as a simulated liquidator makes it: it repays as much as the close factor,
/// `max_repay` and the borrower's collateral allow (Compound reverts instead of cutting the
/// repayment down). `Ok(None)` when the contract would refuse.
fn simulated_quote(
    context: &LiquidationContext,
    max_repay: Option<U256>,
) -> Result<Option<logic::LiquidationQuote>, EngineError> {
    let overflow = || EngineError::Overflow {
        quantity: "Compound simulated repay",
    };
    let max_close =
        logic::max_close(context.close_factor, context.borrow_balance).ok_or_else(overflow)?;
    // A liquidator repays no more than the borrower's cTokens pay for: seizeTokens(repay) is
    // `ratio * repay / 1e18` with `ratio = seizeTokens(1e18)`.
    let ratio = seize_tokens(
        context.liquidation_incentive,
        context.price_borrowed,
        context.price_collateral,
        context.exchange_rate,
        EXP_SCALE,
        context.rounding,
    )
    .ok_or_else(overflow)?;
    let affordable = if ratio.is_zero() {
        U256::MAX
    } else {
        context
            .collateral_ctokens
            .checked_mul(EXP_SCALE)
            .ok_or_else(overflow)?
            / ratio
    };
    let repay = max_repay
        .unwrap_or(U256::MAX)
        .min(max_close)
        .min(affordable);
    Ok(logic::liquidate_borrow(context, repay).ok())
}

/// The one Comptroller every account belongs to. Compound v2 has one per deployment, and sources
/// name markets differently (`eth-logs` gives the cToken that emitted each event), so accounts are
/// grouped model-wide and reported under this market id.
fn comptroller() -> Id {
    Id::name("compound-v2")
}

/// An `Exp` mantissa from a fixed-point number (18 decimals).
fn mantissa(value: &Fixed, quantity: &'static str) -> Result<U256, EngineError> {
    value.rescale(18).ok_or(EngineError::Overflow { quantity })
}

impl ProtocolModel for CompoundModel {
    fn protocol(&self) -> Protocol {
        Protocol::CompoundV2
    }

    /// Interest accrues only through recorded index updates: nothing moves with time alone.
    fn advance(&mut self, _time: Timestamp, _prices: &PriceBook) -> Result<bool, EngineError> {
        Ok(false)
    }

    fn on_price(
        &mut self,
        update: &PriceUpdate,
        _time: Timestamp,
        prices: &PriceBook,
    ) -> Result<bool, EngineError> {
        if update.quote != Id::name("USD") {
            return Ok(false);
        }
        self.invalidate();
        let Some(quote) = prices.market(&update.asset, &update.quote) else {
            return Ok(false);
        };
        let changed = self.prices.get(&update.asset) != Some(&quote.price);
        self.prices.insert(update.asset, quote.price);
        Ok(changed)
    }

    fn warm(&self, events: &[Event]) -> u64 {
        let accounts = events.iter().map(|event| match &event.payload {
            Payload::Deposit(c) | Payload::Withdraw(c) | Payload::Borrow(c) | Payload::Repay(c) => {
                Some((&c.market, &c.account))
            }
            Payload::CollateralToggle(t) => Some((&t.market, &t.account)),
            _ => None,
        });
        let comptroller = self.comptrollers.get(&comptroller());
        warm_accounts(
            accounts,
            |_| comptroller.map(|comptroller| (&comptroller.accounts, &comptroller.index)),
            |account| {
                account.positions.iter().fold(0, |sum, (_, position)| {
                    sum ^ position.ctokens.as_limbs()[0] ^ position.principal.as_limbs()[0]
                })
            },
        )
    }

    fn apply(&mut self, event: &Event, _prices: &PriceBook) -> Result<Applied, EngineError> {
        self.invalidate();
        match &event.payload {
            Payload::Deposit(change) => self.deposit(change),
            Payload::Withdraw(change) => self.withdraw(change),
            Payload::Borrow(change) => self.move_debt(change, true),
            Payload::Repay(change) => self.move_debt(change, false),
            Payload::CollateralToggle(toggle) => Ok(self.toggle(toggle)),
            Payload::IndexUpdate(update) => self.index_update(update),
            Payload::ParamChange(change) => match CompoundParam::parse(change.param.as_str()) {
                Some(param) => self.set(Some(&change.market), param, &change.value),
                None => Err(EngineError::InvalidParam {
                    param: change.param.to_string(),
                    value: change.value.to_string(),
                    reason: "not a Compound v2 parameter this model knows",
                }),
            },
            Payload::Price(_)
            | Payload::VaultOpen(_)
            | Payload::Liquidation(_)
            | Payload::AuctionKick(_)
            | Payload::AuctionTake(_) => Ok(Applied::Ignored),
            // Recorded oracle values and source switches are modelled for Maker only (issue 13).
            Payload::OracleValue(_) => Ok(Applied::Skipped("oracle-value-not-modelled")),
            Payload::OracleSourceChange(_) => {
                Ok(Applied::Skipped("oracle-source-change-not-modelled"))
            }
        }
    }

    fn set_param(
        &mut self,
        setting: &ParamSetting,
        _time: Timestamp,
    ) -> Result<Applied, EngineError> {
        let param = CompoundParam::from_id(setting.param, Protocol::CompoundV2)
            .ok_or_else(|| setting.foreign())?;
        self.invalidate();
        self.set(setting.market.as_ref(), param, &setting.value)
    }

    fn judge(
        &mut self,
        liquidation: &Liquidation,
        _time: Timestamp,
    ) -> Result<Judgement, EngineError> {
        let collateral = &liquidation.collateral_asset;
        let borrow = &liquidation.debt_asset;
        let decimals = |asset: &Id| {
            self.markets
                .get(asset)
                .and_then(|m| m.decimals)
                .unwrap_or(0)
        };
        let recorded_tokens = match liquidation.detail {
            LiquidationDetail::Compound { seize_tokens } => Some(seize_tokens.0),
            _ => None,
        };
        // With `seizeTokens` recorded, the collateral amounts are cTokens (8 decimals), as
        // `LiquidateBorrow` logs them; otherwise underlying.
        let c_decimals = if recorded_tokens.is_some() {
            CTOKEN_DECIMALS
        } else {
            decimals(collateral)
        };
        let b_decimals = decimals(borrow);
        let account = self
            .comptrollers
            .get(&comptroller())
            .and_then(|c| c.accounts.get(&liquidation.account))
            .filter(|a| {
                a.positions
                    .values()
                    .any(|p| !p.ctokens.is_zero() || !p.principal.is_zero())
            });
        let known = account.is_some();
        let rule = if known {
            "compound-v2-liquidate-borrow"
        } else {
            "compound-v2-seize-formula"
        };
        let no_price = |what: &str| {
            let mut judgement = Judgement::bare(Verdict::NoPrice, rule, c_decimals, b_decimals);
            judgement.note = Some(what.to_owned());
            judgement
        };
        let repay = liquidation.debt_repaid.0;
        // Either way the expected seizure comes from `liquidateCalculateSeizeTokens`.
        let (Some(price_b), Some(price_c), Some(rate)) = (
            self.price(borrow),
            self.price(collateral),
            self.markets.get(collateral).and_then(Market::rate),
        ) else {
            return Ok(no_price(
                "no price, decimals or exchange rate for a market of this liquidation",
            ));
        };
        let mut judgement = Judgement::bare(Verdict::Explained, rule, c_decimals, b_decimals);
        if let Some(account) = account {
            let Some(liquidity) = self.liquidity(account) else {
                return Ok(no_price(
                    "no price, decimals or exchange rate for a market of this account",
                ));
            };
            judgement.health = Some(Quantity::new(Self::health(&liquidity), 18));
            let Some(context) = self.context(account, liquidity, collateral, borrow) else {
                return Ok(no_price(
                    "no price, decimals or exchange rate for a market of this liquidation",
                ));
            };
            match logic::liquidate_borrow(&context, repay) {
                Ok(_) => {}
                Err(LiquidationRefusal::InsufficientShortfall { .. }) => {
                    judgement.verdict = Verdict::NotLiquidatable;
                    return Ok(judgement);
                }
                Err(refusal) => {
                    judgement.verdict = Verdict::AmountMismatch;
                    judgement.note = Some(match refusal {
                        LiquidationRefusal::TooMuchRepay { max_close } => format!(
                            "repays more than the close factor allows ({})",
                            Quantity::new(max_close, b_decimals)
                        ),
                        LiquidationRefusal::SeizeTooMuch { seize_tokens } => format!(
                            "would seize {seize_tokens} cTokens, more than the rebuilt balance"
                        ),
                        _ => "the contract would revert (zero repay, price or rate)".to_owned(),
                    });
                }
            }
        }
        let tokens = seize_tokens(
            self.liquidation_incentive,
            price_b,
            price_c,
            rate,
            repay,
            self.rounding,
        )
        .ok_or(EngineError::Overflow {
            quantity: "Compound seize tokens",
        })?;
        let underlying = mul_scalar_truncate(rate, tokens).ok_or(EngineError::Overflow {
            quantity: "Compound seized underlying",
        })?;
        judgement.expected_collateral = Some(Quantity::new(
            if recorded_tokens.is_some() {
                tokens
            } else {
                underlying
            },
            c_decimals,
        ));
        judgement.expected_debt = Some(Quantity::new(repay, b_decimals));
        let agrees = match recorded_tokens {
            Some(recorded) => recorded == tokens,
            None => liquidation.collateral_seized.0 == underlying,
        };
        if judgement.verdict == Verdict::Explained && !agrees {
            judgement.verdict = Verdict::AmountMismatch;
            judgement.note = Some(match recorded_tokens {
                Some(recorded) => format!("formula seizes {tokens} cTokens, recorded {recorded}"),
                None => format!(
                    "formula seizes {} underlying, recorded {}",
                    Quantity::new(underlying, c_decimals),
                    Quantity::new(liquidation.collateral_seized.0, c_decimals)
                ),
            });
        } else if judgement.verdict == Verdict::Explained && !known {
            judgement.note =
                Some("no rebuilt position: seize formula only, health not checked".to_owned());
        }
        Ok(judgement)
    }

    fn apply_liquidation(
        &mut self,
        liquidation: &Liquidation,
        _judgement: &Judgement,
        _time: Timestamp,
    ) -> Result<Applied, EngineError> {
        self.invalidate();
        let known = self
            .comptrollers
            .get(&comptroller())
            .is_some_and(|c| c.accounts.find(&liquidation.account).is_some());
        if !known {
            return Ok(Applied::Skipped(
                "liquidation of an account with no rebuilt position",
            ));
        }
        let seized = match liquidation.detail {
            LiquidationDetail::Compound { seize_tokens } => seize_tokens.0,
            _ => match self
                .markets
                .get(&liquidation.collateral_asset)
                .and_then(Market::rate)
            {
                Some(rate) => div_scalar_by_exp(liquidation.collateral_seized.0, rate).ok_or(
                    EngineError::Overflow {
                        quantity: "Compound seized cTokens",
                    },
                )?,
                None => {
                    return Ok(Applied::Skipped(
                        "liquidation in a market with no exchange rate",
                    ));
                }
            },
        };
        let clamped = self.take(
            &comptroller(),
            &liquidation.account,
            &liquidation.collateral_asset,
            seized,
            &liquidation.debt_asset,
            liquidation.debt_repaid.0,
        )?;
        Ok(if clamped {
            Applied::Clamped("liquidation exceeds the rebuilt balance")
        } else {
            Applied::Exact
        })
    }

    fn liquidatable(
        &mut self,
        _time: Timestamp,
        out: &mut Vec<Candidate>,
    ) -> Result<(), EngineError> {
        self.refresh_found();
        out.reserve(self.found.len());
        out.extend(
            self.found
                .ordered()
                .map(|(market, account, found)| Candidate {
                    protocol: Protocol::CompoundV2,
                    market: *market,
                    account: *account,
                    health: found.health,
                    debt_value: found.sum_borrow,
                }),
        );
        Ok(())
    }

    fn simulate_liquidation(
        &mut self,
        candidate: &Candidate,
        choice: &LiquidatorChoice,
        _time: Timestamp,
    ) -> Result<Option<SimulatedLiquidation>, EngineError> {
        self.invalidate();
        let Some(account) = self
            .comptrollers
            .get(&candidate.market)
            .and_then(|c| c.accounts.get(&candidate.account))
        else {
            return Ok(None);
        };
        let Some(liquidity) = self.liquidity(account) else {
            return Ok(None);
        };
        let value = |asset: &Id, amount: U256| -> Option<U256> {
            mul_scalar_truncate(self.price(asset)?, amount)
        };
        let largest = |collateral_side: bool| -> Option<Id> {
            let mut best: Option<(U256, Id)> = None;
            for (asset, position) in account.positions.iter() {
                let amount = if collateral_side {
                    if !position.entered {
                        continue;
                    }
                    mul_scalar_truncate(self.markets.get(asset)?.rate()?, position.ctokens)?
                } else {
                    self.borrow_balance(asset, position)?
                };
                if amount.is_zero() {
                    continue;
                }
                let worth = value(asset, amount)?;
                if best.is_none_or(|(v, _)| worth > v) {
                    best = Some((worth, *asset));
                }
            }
            best.map(|(_, asset)| asset)
        };
        let best = match choice.pair {
            crate::counterfactual::liquidator::PairChoice::BestBonus => {
                self.best_bonus_pair(account, liquidity, choice)?
            }
            crate::counterfactual::liquidator::PairChoice::LargestDebt => None,
        };
        let (Some(collateral), Some(borrow)) = best.map_or_else(
            || {
                (
                    choice.collateral_asset.or_else(|| largest(true)),
                    choice.debt_asset.or_else(|| largest(false)),
                )
            },
            |(collateral, borrow)| (Some(collateral), Some(borrow)),
        ) else {
            return Ok(None);
        };
        let Some(context) = self.context(account, liquidity, &collateral, &borrow) else {
            return Ok(None);
        };
        let Some(quote) = simulated_quote(&context, choice.max_repay)? else {
            return Ok(None);
        };
        let rate = context.exchange_rate;
        self.take(
            &candidate.market,
            &candidate.account,
            &collateral,
            quote.seize_tokens,
            &borrow,
            quote.repaid,
        )?;
        let mut bad_debt = U256::ZERO;
        if let Some(account) = self
            .comptrollers
            .get(&candidate.market)
            .and_then(|c| c.accounts.get(&candidate.account))
            && account
                .positions
                .values()
                .all(|p| !p.entered || p.ctokens.is_zero())
            && let Some(position) = account.positions.get(&borrow)
        {
            bad_debt = self.borrow_balance(&borrow, position).unwrap_or(U256::ZERO);
        }
        let underlying = |tokens: U256| mul_scalar_truncate(rate, tokens).unwrap_or(U256::MAX);
        Ok(Some(SimulatedLiquidation {
            protocol: Protocol::CompoundV2,
            market: candidate.market,
            account: candidate.account,
            rule: "compound-v2-liquidate-borrow",
            collateral_asset: collateral,
            collateral_seized: self.quantity(underlying(quote.seize_tokens), &collateral),
            collateral_sold: self.quantity(underlying(quote.liquidator_tokens), &collateral),
            debt_asset: borrow,
            debt_repaid: self.quantity(quote.repaid, &borrow),
            bad_debt: self.quantity(bad_debt, &borrow),
        }))
    }

    /// Sums over the liquidatable set, kept by the monitor as accounts change (the same set as
    /// `CompoundModel::find`'s). Bad debt is summed over that set too: borrows above the
    /// collateral's market value are above its weighted value (collateral factors are at most
    /// 1), so every underwater account has a shortfall.
    fn risk(&mut self, _time: Timestamp, out: &mut Vec<MarketRisk>) -> Result<(), EngineError> {
        self.refresh_monitor();
        for market in self.comptrollers.keys() {
            let (accounts, collateral, debt, bad_debt) = self.monitor.totals(market);
            out.push(MarketRisk {
                protocol: Protocol::CompoundV2,
                market: *market,
                oracle_price: None,
                accounts_unsafe: accounts,
                collateral_at_risk: Quantity::new(collateral, 18),
                debt_at_risk: Quantity::new(debt, 18),
                bad_debt: Quantity::new(bad_debt, 18),
            });
        }
        Ok(())
    }

    fn unsafe_changes(
        &mut self,
        _time: Timestamp,
        out: &mut Vec<(Id, Id, bool)>,
    ) -> Result<bool, EngineError> {
        self.refresh_monitor();
        if self.monitor.take_report_all() {
            for (market, comptroller) in &self.comptrollers {
                for slot in comptroller.accounts.sorted() {
                    let account = comptroller.accounts.id(slot);
                    out.push((*market, *account, self.monitor.contains(market, slot)));
                }
            }
        } else {
            let comptrollers = &self.comptrollers;
            self.monitor.drain_changes(out, |market, slot| {
                comptrollers
                    .get(market)
                    .map_or(Id::Number(u64::from(slot)), |comptroller| {
                        *comptroller.accounts.id(slot)
                    })
            });
        }
        Ok(true)
    }

    fn encode_state(&self, out: &mut StateWriter) {
        out.u8(match self.rounding {
            Rounding::HalfUp => 0,
            Rounding::Truncate => 1,
        });
        out.u256(self.close_factor);
        out.u256(self.liquidation_incentive);
        out.count(self.markets.len());
        for (asset, market) in &self.markets {
            out.id(asset);
            out.bool(market.decimals.is_some());
            out.u8(market.decimals.unwrap_or(0));
            out.u256(market.collateral_factor);
            out.bool(market.exchange_rate.is_some());
            out.u256(market.exchange_rate.unwrap_or(U256::ZERO));
            out.u256(market.borrow_index);
            out.u256(market.protocol_seize_share);
        }
        out.count(self.prices.len());
        for (asset, price) in &self.prices {
            out.id(asset);
            out.fixed(price);
        }
        out.count(self.comptrollers.len());
        for (id, comptroller) in &self.comptrollers {
            out.id(id);
            out.count(comptroller.accounts.len());
            for slot in comptroller.accounts.sorted() {
                let (account, state) =
                    (comptroller.accounts.id(slot), comptroller.accounts.at(slot));
                out.id(account);
                out.count(state.positions.len());
                for (asset, position) in state.positions.iter() {
                    out.id(asset);
                    out.u256(position.ctokens);
                    out.u256(position.principal);
                    out.u256(position.interest_index);
                    out.bool(position.entered);
                }
            }
        }
    }

    fn decode_state(&mut self, input: &mut StateReader<'_>) -> Result<(), EngineError> {
        self.invalidate();
        self.rounding = match input.u8()? {
            0 => Rounding::HalfUp,
            1 => Rounding::Truncate,
            other => return Err(input.error(format!("unknown Compound rounding {other}"))),
        };
        self.close_factor = input.u256()?;
        self.liquidation_incentive = input.u256()?;
        let mut markets = BTreeMap::new();
        for _ in 0..input.count()? {
            let asset = input.id()?;
            let has_decimals = input.bool()?;
            let decimals = input.u8()?;
            let collateral_factor = input.u256()?;
            let has_rate = input.bool()?;
            let rate = input.u256()?;
            markets.insert(
                asset,
                Market {
                    decimals: has_decimals.then_some(decimals),
                    collateral_factor,
                    exchange_rate: has_rate.then_some(rate),
                    borrow_index: input.u256()?,
                    protocol_seize_share: input.u256()?,
                },
            );
        }
        let mut prices = BTreeMap::new();
        for _ in 0..input.count()? {
            let asset = input.id()?;
            prices.insert(asset, input.fixed()?);
        }
        let mut comptrollers = BTreeMap::new();
        for _ in 0..input.count()? {
            let id = input.id()?;
            let mut comptroller = Comptroller::default();
            for _ in 0..input.count()? {
                let account = input.id()?;
                let mut state = Account::default();
                for _ in 0..input.count()? {
                    let asset = input.id()?;
                    state.positions.insert(
                        asset,
                        Position {
                            ctokens: input.u256()?,
                            principal: input.u256()?,
                            interest_index: input.u256()?,
                            entered: input.bool()?,
                        },
                    );
                }
                let (slot, _) = comptroller
                    .accounts
                    .slot_or_insert_with(account, Account::default);
                *comptroller.accounts.at_mut(slot) = state;
            }
            comptrollers.insert(id, comptroller);
        }
        self.markets = markets;
        self.prices = prices;
        self.comptrollers = comptrollers;
        let accounts: Vec<(Id, Slot)> = self
            .comptrollers
            .iter()
            .flat_map(|(id, c)| c.accounts.sorted().into_iter().map(|slot| (*id, slot)))
            .collect();
        for (comptroller, slot) in accounts {
            self.reindex(&comptroller, slot);
        }
        self.monitor.resync();
        Ok(())
    }

    /// `getAccountLiquidity` of every account of every Comptroller: health as weighted
    /// collateral over borrows ([`CompoundModel::health`]), debt the USD value of its borrows.
    /// Borrow balances are read at the latest recorded index (`borrowBalanceStored`), so `time`
    /// changes nothing.
    fn accounts(
        &self,
        _time: Timestamp,
        out: &mut Vec<crate::protocol::accounts::AccountPosition>,
    ) {
        self.account_positions(out);
    }

    fn health_distribution(
        &self,
        _time: Timestamp,
        out: &mut Vec<crate::protocol::HealthDistribution>,
    ) {
        for (id, comptroller) in &self.comptrollers {
            let mut distribution =
                crate::protocol::HealthDistribution::new(Protocol::CompoundV2, *id, 18);
            for account in comptroller.accounts.values() {
                match self.liquidity(account) {
                    Some(liquidity)
                        if liquidity.sum_borrow.is_zero() && liquidity.sum_collateral.is_zero() => {
                    }
                    Some(liquidity) => {
                        distribution.add(Self::health(&liquidity), liquidity.sum_borrow);
                    }
                    None => distribution.unpriced += 1,
                }
            }
            out.push(distribution);
        }
    }
}
