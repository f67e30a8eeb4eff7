//! Compound v2 rules over the shared lending pool model: markets and the oracle view the
//! Comptroller reads, as a [`Rules`] implementation of [`LendingModel`].
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
//! - Supplying enters the market (counts as collateral) unless a collateral toggle says
//!   otherwise: sources rarely carry `MarketEntered`; borrowing enters the market as
//!   `borrowAllowed` does.
//! - Prices are the latest USD price per whole token; the model turns them into
//!   `getUnderlyingPrice` mantissas (`price * 10^(36 - decimals)`).
//!
//! The pair index key of a single-collateral, single-borrow account is
//! `principal * 1e36 / interestIndex / cTokens`, which neither prices nor indices move, against
//! the level `1e36 * tokensToDenom(collateral) / (borrowIndex * price(borrow))` lowered by 1%;
//! every candidate is confirmed with the exact liquidity.

mod accounts;
mod snapshot;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use cascade_events::{
    Fixed, Id, IndexUpdate, Liquidation, LiquidationDetail, ParamChange, PositionChange, Protocol,
    Timestamp, U256, pow10,
};

use super::exp::{EXP_SCALE, Rounding, div_scalar_by_exp, mul_exp, mul_scalar_truncate};
use super::logic::{
    self, AccountLiquidity, LiquidateBorrowContext, LiquidateBorrowQuote, LiquidateBorrowRefusal,
    MarketExposure, borrow_balance_stored, seize_tokens,
};
use super::spec::CompoundParam;
use crate::EngineError;
use crate::lending::{
    AssetDrift, ChangeKind, Drift, Exposure, Found, LendingModel, Point, Rules, Step, Widest,
    compress_key,
};
use crate::oracle::Quote;
use crate::protocol::param::{ParamSetting, ProtocolParam};
use crate::protocol::{Applied, Judgement, Quantity, Verdict};
use crate::run::{InputKind, MissingInput, OracleEvidence, SeizeCheck, SeizeResult};
use crate::slots::SmallMap;
use crate::state::{StateReader, StateWriter};

/// How a judgement of an account without a rebuilt position begins its note.
const NO_POSITION: &str =
    "no rebuilt position for this account (health and close factor not checked)";

/// Compound v2 over every Comptroller in the log.
pub type CompoundModel = LendingModel<Compound>;

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
pub struct Market {
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
        // The table of powers, not `checked_pow`: judging a liquidation reads the rate of the
        // seized market, and raising to a power was 1.2% of a 1M-account Compound replay.
        U256::from(2u8).checked_mul(pow10(u8::try_from(exponent).ok()?)?)
    }
}

/// An account's holdings in one market.
/// An account's holdings in one market.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    ctokens: U256,
    principal: U256,
    interest_index: U256,
    entered: bool,
}

type Account = crate::lending::Account<Position>;

/// An account as its pair index holds it: the balances its liquidity needs, so walking the
/// index never looks the account up. Balances are `u128` (an account with a larger one is
/// indexed as complex): a smaller entry is a faster walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    ctokens: u128,
    principal: u128,
    interest_index: u128,
}

/// The larger balances and the smaller nonzero interest index (a member with an index of 0
/// cannot be judged under any view, so it bounds nothing).
impl Widest for Member {
    fn widest(self, other: Self) -> Self {
        let interest_index = match (self.interest_index, other.interest_index) {
            (0, index) | (index, 0) => index,
            (one, other) => one.min(other),
        };
        Self {
            ctokens: self.ctokens.max(other.ctokens),
            principal: self.principal.max(other.principal),
            interest_index,
        }
    }
}

/// A liquidatable account as the monitor keeps it: its share of the risk sums, in USD (wad).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exposed {
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

/// The per-pair constants of a liquidity query, read once per pair and query.
pub struct PairView {
    c: Side,
    b: Side,
}

impl PairView {
    /// `getHypotheticalAccountLiquidityInternal` of an account holding only this pair: the same
    /// result as [`Compound::liquidity`] from the member's balances, with the loop over
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

/// Compound v2's rules and the state they read besides accounts: markets, prices and the
/// Comptroller's parameters.
#[derive(Clone, Debug)]
pub struct Compound {
    rounding: Rounding,
    close_factor: U256,
    liquidation_incentive: U256,
    /// A few markets, looked up on every event: compared for equality, not ordered.
    markets: SmallMap<Market>,
    prices: SmallMap<Fixed>,
    /// Per market, the feed and time of the answer `prices` holds (for a verdict's evidence),
    /// for the prices set once the market was known.
    price_sources: BTreeMap<Id, (Id, Timestamp)>,
}

impl LendingModel<Compound> {
    /// A Compound v2 model whose Comptroller multiplies mantissas with `rounding` (see
    /// [`Rounding`]); close factor 0.5 and incentive 1.08 until parameter events say otherwise.
    pub fn new(rounding: Rounding) -> Self {
        Self::from_rules(Compound {
            rounding,
            close_factor: DEFAULT_CLOSE_FACTOR,
            liquidation_incentive: DEFAULT_LIQUIDATION_INCENTIVE,
            markets: SmallMap::default(),
            prices: SmallMap::default(),
            price_sources: BTreeMap::new(),
        })
    }
}

impl Compound {
    /// `getUnderlyingPrice` for `asset`: USD per whole token times `10^(36 - decimals)`.
    fn price(&self, asset: &Id) -> Option<U256> {
        let decimals = self.markets.get(asset)?.decimals?;
        self.prices.get(asset)?.rescale(36u8.checked_sub(decimals)?)
    }

    /// The first input `asset`'s market lacks: its price, its decimals, or (when `needs_rate`,
    /// for collateral) its exchange rate; `None` when none is missing.
    pub(super) fn missing_input(&self, asset: &Id, needs_rate: bool) -> Option<MissingInput> {
        let market = self.markets.get(asset);
        let input = if !self.prices.contains_key(asset) {
            InputKind::Price
        } else if market.and_then(|m| m.decimals).is_none() {
            InputKind::Decimals
        } else if needs_rate && market.and_then(Market::rate).is_none() {
            InputKind::ExchangeRate
        } else {
            return None;
        };
        Some(MissingInput::new(input, *asset))
    }

    fn borrow_balance(&self, asset: &Id, position: &Position) -> Option<U256> {
        let market = self.markets.get(asset)?;
        borrow_balance_stored(
            position.principal,
            market.borrow_index,
            position.interest_index,
        )
    }

    /// The entered markets as the Comptroller reads them, each collateral factor less the
    /// account's threshold cut (a scenario's cut on a looped account; 0 for every other); `None`
    /// when a price, rate or decimals are missing.
    fn exposures(&self, account: &Account) -> Option<Vec<MarketExposure>> {
        let cut = U256::from(account.threshold_cut_bps) * U256::from(100_000_000_000_000u64);
        let mut out = Vec::new();
        for (asset, position) in account.positions.iter() {
            if !position.entered || (position.ctokens.is_zero() && position.principal.is_zero()) {
                continue;
            }
            let market = self.markets.get(asset)?;
            out.push(MarketExposure {
                collateral_factor: market.collateral_factor.saturating_sub(cut),
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
    ) -> Option<LiquidateBorrowContext> {
        let position = |asset: &Id| account.positions.get(asset).copied().unwrap_or_default();
        let c_market = self.markets.get(collateral)?;
        Some(LiquidateBorrowContext {
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

    /// The account's liquidity and exposure if it has a shortfall.
    fn exposed(&self, account: &Account) -> Option<(AccountLiquidity, Exposed)> {
        let liquidity = self.liquidity(account)?;
        if liquidity.shortfall().is_zero() {
            return None;
        }
        Some((
            liquidity,
            Exposed {
                collateral_value: self.collateral_value(account).unwrap_or(U256::ZERO),
                sum_borrow: liquidity.sum_borrow,
            },
        ))
    }

    /// The liquidatable report of an account with a shortfall.
    fn found(liquidity: &AccountLiquidity) -> Option<Found> {
        if liquidity.shortfall().is_zero() {
            return None;
        }
        Some(Found {
            health: Self::health(liquidity),
            debt_value: liquidity.sum_borrow,
        })
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
        let entry = self.markets.entry_or_default(*market);
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
}

/// `liquidateBorrow` as a simulated liquidator makes it: it repays as much as the close factor,
/// `max_repay` and the borrower's collateral allow (Compound reverts instead of cutting the
/// repayment down). `Ok(None)` when the contract would refuse.
fn simulated_quote(
    context: &LiquidateBorrowContext,
    max_repay: Option<U256>,
) -> Result<Option<logic::LiquidateBorrowQuote>, EngineError> {
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
///
/// Built once: every event asks for it, and building a name checks and pads its bytes (3.5% of a
/// million-account replay when it was built per event).
static COMPTROLLER: LazyLock<Id> = LazyLock::new(|| Id::name("compound-v2"));

/// An `Exp` mantissa from a fixed-point number (18 decimals).
fn mantissa(value: &Fixed, quantity: &'static str) -> Result<U256, EngineError> {
    value.rescale(18).ok_or(EngineError::Overflow { quantity })
}

impl Rules for Compound {
    type Position = Position;
    type Member = Member;
    type AssetView = MarketView;
    type PairView = PairView;
    type Exposed = Exposed;
    type Health = AccountLiquidity;
    type Context = LiquidateBorrowContext;
    type Quote = LiquidateBorrowQuote;
    /// (what, cTokens minted or redeemed or underlying borrowed or repaid, borrow index).
    type Change = (ChangeKind, U256, U256);

    fn protocol(&self) -> Protocol {
        Protocol::CompoundV2
    }

    fn risk_decimals(&self) -> u8 {
        18
    }

    fn base(&self) -> Id {
        Id::name("USD")
    }

    /// The one Comptroller every account belongs to, whatever market an event names.
    fn market_of(_market: &Id) -> Id {
        *COMPTROLLER
    }

    /// A market price (USD per whole token) or the view's recorded `PriceUpdated` value (USD,
    /// 6 decimals): [`Compound::price`] scales either to `getUnderlyingPrice`'s
    /// `price * 10^(36 - decimals)`, which for the view's 6 decimals is its
    /// `mul(1e30, price) / baseUnit` exactly (open-oracle `UniswapAnchoredView.getUnderlyingPrice`).
    fn set_price(&mut self, asset: &Id, quote: &Quote) -> Result<bool, EngineError> {
        let changed = self.prices.get(asset) != Some(&quote.price);
        self.prices.insert(*asset, quote.price);
        // Kept for the markets of the log only: every log's USD prices reach this model, and a
        // log without Compound markets must encode as it did before the sources were kept.
        if self.markets.contains_key(asset) {
            self.price_sources.insert(*asset, (quote.feed, quote.time));
        }
        Ok(changed)
    }

    fn forget_price(&mut self, asset: &Id) -> bool {
        self.price_sources.remove(asset);
        self.prices.remove(asset).is_some()
    }

    fn index_update(&mut self, update: &IndexUpdate) -> Result<Applied, EngineError> {
        let market = self.markets.entry_or_default(update.asset);
        if let Some(rate) = &update.supply_index {
            market.exchange_rate = Some(mantissa(rate, "Compound exchange rate")?);
        }
        if let Some(index) = &update.borrow_index {
            market.borrow_index = mantissa(index, "Compound borrow index")?;
        }
        Ok(Applied::Exact)
    }

    fn param_change(&mut self, change: &ParamChange) -> Result<Applied, EngineError> {
        match CompoundParam::parse(change.param.as_str()) {
            Some(param) => self.set(Some(&change.market), param, &change.value),
            None => Err(EngineError::InvalidParam {
                param: change.param.to_string(),
                value: change.value.to_string(),
                reason: "not a Compound v2 parameter this model knows",
            }),
        }
    }

    fn set_param(&mut self, setting: &ParamSetting) -> Result<Applied, EngineError> {
        let param = CompoundParam::from_id(setting.param, Protocol::CompoundV2)
            .ok_or_else(|| setting.foreign())?;
        self.set(setting.market.as_ref(), param, &setting.value)
    }

    /// A deposit (`mintFresh`) or withdrawal (`redeemFresh`) without recorded cTokens converts
    /// the amount at the exchange rate; a market with no rate skips it. Borrows and repayments
    /// read the market's borrow index.
    fn plan(
        &mut self,
        kind: ChangeKind,
        change: &PositionChange,
    ) -> Result<Step<Self::Change>, EngineError> {
        let market = self.markets.entry_or_default(change.asset);
        let (quantity, skipped) = match kind {
            ChangeKind::Deposit => (
                "Compound mint tokens",
                "deposit into a market with no decimals or rate",
            ),
            ChangeKind::Withdraw => (
                "Compound redeem tokens",
                "withdrawal from a market with no decimals or rate",
            ),
            ChangeKind::Borrow | ChangeKind::Repay => {
                return Ok(Step::Go((kind, change.amount.0, market.borrow_index)));
            }
        };
        let tokens = match change.shares {
            Some(shares) => shares.0,
            None => match market.rate() {
                Some(rate) => div_scalar_by_exp(change.amount.0, rate)
                    .ok_or(EngineError::Overflow { quantity })?,
                None => return Ok(Step::Done(Applied::Skipped(skipped))),
            },
        };
        Ok(Step::Go((kind, tokens, U256::ZERO)))
    }

    /// Supplying enters the market; `borrowFresh` and `repayBorrowFresh` make the snapshot the
    /// stored balance plus or minus the amount, at the current borrow index.
    fn apply_plan(
        (kind, amount, index): Self::Change,
        position: &mut Position,
    ) -> Result<Applied, EngineError> {
        match kind {
            ChangeKind::Deposit => {
                if position.ctokens.is_zero() && !amount.is_zero() {
                    position.entered = true;
                }
                position.ctokens =
                    position
                        .ctokens
                        .checked_add(amount)
                        .ok_or(EngineError::Overflow {
                            quantity: "Compound cToken balance",
                        })?;
                Ok(Applied::Exact)
            }
            ChangeKind::Withdraw => {
                let clamped = amount > position.ctokens;
                position.ctokens = position.ctokens.saturating_sub(amount);
                Ok(if clamped {
                    Applied::Clamped("withdraw exceeds the rebuilt cToken balance")
                } else {
                    Applied::Exact
                })
            }
            ChangeKind::Borrow | ChangeKind::Repay => {
                let borrow = kind == ChangeKind::Borrow;
                let balance =
                    borrow_balance_stored(position.principal, index, position.interest_index)
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
                position.principal = new_balance;
                position.interest_index = index;
                if borrow {
                    position.entered = true;
                }
                Ok(if clamped {
                    Applied::Clamped("repay exceeds the rebuilt borrow balance")
                } else {
                    Applied::Exact
                })
            }
        }
    }

    fn set_collateral(position: &mut Position, enabled: bool) {
        position.entered = enabled;
    }

    fn holds(position: &Position) -> bool {
        !position.ctokens.is_zero() || !position.principal.is_zero()
    }

    fn is_collateral(position: &Position) -> bool {
        position.entered && !position.ctokens.is_zero()
    }

    fn is_seizable(position: &Position) -> bool {
        Self::is_collateral(position)
    }

    fn is_debt(position: &Position) -> bool {
        !position.principal.is_zero()
    }

    /// `getHypotheticalAccountLiquidityInternal` reads only the markets the account entered
    /// and holds something in.
    fn reads(position: &Position) -> bool {
        position.entered && Self::holds(position)
    }

    /// Key `principal * 1e36 / interestIndex / cTokens`.
    fn pair_member(collateral: &Position, borrow: &Position) -> Option<(u128, Member)> {
        let key = borrow
            .principal
            .checked_mul(KEY_SCALE)
            .and_then(|scaled| scaled.checked_div(borrow.interest_index))
            .map(|per_index| compress_key(per_index / collateral.ctokens))?;
        Some((
            key,
            Member {
                ctokens: u128::try_from(collateral.ctokens).ok()?,
                principal: u128::try_from(borrow.principal).ok()?,
                interest_index: u128::try_from(borrow.interest_index).ok()?,
            },
        ))
    }

    fn warm_bits(position: &Position) -> u64 {
        position.ctokens.as_limbs()[0] ^ position.principal.as_limbs()[0]
    }

    fn asset_views(&self) -> BTreeMap<Id, MarketView> {
        self.markets
            .iter()
            .map(|(asset, market)| (*asset, (market.clone(), self.prices.get(asset).copied())))
            .collect()
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

    fn level(view: &PairView) -> U256 {
        view.level()
    }

    /// A pair member's liquidity ([`PairView::liquidity`]) is a chain of products and
    /// truncating divisions, each monotone: the shortfall can only shrink as the collateral's
    /// factor, exchange rate or price rise, and only grow as the borrowed market's price or
    /// borrow index rise. Decimals, or a price or rate appearing or going, could do either.
    fn drift(old: &MarketView, new: &MarketView) -> AssetDrift {
        let ((old_market, old_price), (new_market, new_price)) = (old, new);
        let price = match (old_price, new_price) {
            (Some(old), Some(new)) if old.decimals == new.decimals => new.value.cmp(&old.value),
            (old, new) if old == new => std::cmp::Ordering::Equal,
            _ => return AssetDrift::ANY,
        };
        let rate = match (old_market.rate(), new_market.rate()) {
            (Some(old), Some(new)) => new.cmp(&old),
            (None, None) => std::cmp::Ordering::Equal,
            _ => return AssetDrift::ANY,
        };
        if old_market.decimals != new_market.decimals {
            return AssetDrift::ANY;
        }
        AssetDrift {
            collateral: Drift::rising([
                price,
                rate,
                new_market
                    .collateral_factor
                    .cmp(&old_market.collateral_factor),
            ]),
            debt: Drift::falling([price, new_market.borrow_index.cmp(&old_market.borrow_index)]),
        }
    }

    /// [`PairView::liquidity`] fails only on an overflow (or an interest index of 0, whatever
    /// the view), and every product it checks grows with the cTokens and the principal and
    /// shrinks with the interest index: the widest member fails first.
    fn bounded(view: &PairView, widest: &Member) -> bool {
        view.liquidity(widest).is_some()
    }

    fn found_member(view: &PairView, member: &Member) -> Result<Option<Found>, EngineError> {
        Ok(view.liquidity(member).as_ref().and_then(Self::found))
    }

    /// A member's market value is `price * (exchangeRate * cTokens)`, truncated as the
    /// Comptroller's scalar products are.
    fn exposed_member(view: &PairView, member: &Member) -> Result<Option<Exposed>, EngineError> {
        let Some(liquidity) = view.liquidity(member) else {
            return Ok(None);
        };
        if liquidity.shortfall().is_zero() {
            return Ok(None);
        }
        let value = mul_scalar_truncate(view.c.exchange_rate, U256::from(member.ctokens))
            .and_then(|underlying| mul_scalar_truncate(view.c.price, underlying));
        Ok(Some(Exposed {
            collateral_value: value.unwrap_or(U256::ZERO),
            sum_borrow: liquidity.sum_borrow,
        }))
    }

    fn found_account(&self, account: &Account) -> Result<Option<Found>, EngineError> {
        Ok(self.liquidity(account).as_ref().and_then(Self::found))
    }

    fn exposed_account(&self, account: &Account) -> Result<Option<Exposed>, EngineError> {
        Ok(self.exposed(account).map(|(_, exposed)| exposed))
    }

    /// `getAccountLiquidity`: health as weighted collateral over borrows
    /// (`Compound::health`), debt the USD value of the borrows at the latest recorded index
    /// (`borrowBalanceStored`).
    fn distribution_point(&self, account: &Account) -> Point {
        Self::distribution_point_of(self.liquidity(account).as_ref())
    }

    fn health(&self, account: &Account) -> Result<Option<AccountLiquidity>, EngineError> {
        Ok(self.liquidity(account))
    }

    fn side_value(
        &self,
        asset: &Id,
        position: &Position,
        collateral_side: bool,
    ) -> Option<Option<U256>> {
        let amount = if collateral_side {
            if !position.entered {
                return Some(None);
            }
            mul_scalar_truncate(self.markets.get(asset)?.rate()?, position.ctokens)?
        } else {
            self.borrow_balance(asset, position)?
        };
        if amount.is_zero() {
            return Some(None);
        }
        Some(Some(mul_scalar_truncate(self.price(asset)?, amount)?))
    }

    fn context(
        &self,
        account: &Account,
        liquidity: AccountLiquidity,
        collateral: &Id,
        borrow: &Id,
    ) -> Result<Option<LiquidateBorrowContext>, EngineError> {
        Ok(self.context(account, liquidity, collateral, borrow))
    }

    fn simulated_quote(
        &self,
        context: &LiquidateBorrowContext,
        max_repay: Option<U256>,
    ) -> Result<Option<LiquidateBorrowQuote>, EngineError> {
        simulated_quote(context, max_repay)
    }

    /// In USD: the liquidator's `liquidatorSeizeTokens` at the exchange rate and oracle price,
    /// less the borrow it repays.
    fn liquidator_gain(
        &self,
        context: &LiquidateBorrowContext,
        quote: &LiquidateBorrowQuote,
        _collateral: &Id,
        _borrow: &Id,
    ) -> Option<U256> {
        let received = mul_scalar_truncate(context.exchange_rate, quote.liquidator_tokens)
            .and_then(|underlying| mul_scalar_truncate(context.price_collateral, underlying))?;
        let paid = mul_scalar_truncate(context.price_borrowed, quote.repaid)?;
        Some(received.saturating_sub(paid))
    }

    fn taken(quote: &LiquidateBorrowQuote) -> (U256, U256) {
        (quote.seize_tokens, quote.repaid)
    }

    fn simulated(
        &self,
        context: &LiquidateBorrowContext,
        quote: &LiquidateBorrowQuote,
        left: U256,
        collateral: &Id,
        borrow: &Id,
    ) -> (&'static str, [Quantity; 4]) {
        let rate = context.exchange_rate;
        let underlying = |tokens: U256| mul_scalar_truncate(rate, tokens).unwrap_or(U256::MAX);
        (
            "compound-v2-liquidate-borrow",
            [
                self.quantity(underlying(quote.seize_tokens), collateral),
                self.quantity(underlying(quote.liquidator_tokens), collateral),
                self.quantity(quote.repaid, borrow),
                self.quantity(left, borrow),
            ],
        )
    }

    /// Repays `repaid` of `borrow` and removes `seized` cTokens of `collateral`
    /// (`repayBorrowFresh` then `seizeInternal`). The debt left unbacked is the borrow balance
    /// left once no entered collateral remains.
    fn take(
        &mut self,
        account: Option<&mut Account>,
        collateral: &Id,
        seized: U256,
        borrow: &Id,
        repaid: U256,
    ) -> Result<(bool, U256), EngineError> {
        let index = self.markets.entry_or_default(*borrow).borrow_index;
        let Some(account) = account else {
            return Ok((false, U256::ZERO));
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
        let mut unbacked = U256::ZERO;
        if account
            .positions
            .values()
            .all(|p| !p.entered || p.ctokens.is_zero())
            && let Some(position) = account.positions.get(borrow)
        {
            unbacked = self.borrow_balance(borrow, position).unwrap_or(U256::ZERO);
        }
        Ok((clamped_b || clamped_c, unbacked))
    }

    /// The recorded `seizeTokens`, or the seized underlying converted at the exchange rate.
    fn recorded_take(&self, liquidation: &Liquidation) -> Result<Step<(U256, U256)>, EngineError> {
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
                    return Ok(Step::Done(Applied::Skipped(
                        "liquidation in a market with no exchange rate",
                    )));
                }
            },
        };
        Ok(Step::Go((seized, liquidation.debt_repaid.0)))
    }

    fn judge(
        &self,
        account: Option<&Account>,
        liquidation: &Liquidation,
        time: Timestamp,
    ) -> Result<Judgement, EngineError> {
        let collateral = &liquidation.collateral_asset;
        let borrow = &liquidation.debt_asset;
        let decimals_of = |asset: &Id| self.markets.get(asset).and_then(|m| m.decimals);
        let decimals = |asset: &Id| decimals_of(asset).unwrap_or(0);
        let recorded_tokens = match liquidation.detail {
            LiquidationDetail::Compound { seize_tokens } => Some(seize_tokens.0),
            _ => None,
        };
        // `LiquidateBorrow` logs only `seizeTokens`, so a decoded event carries the cTokens (8
        // decimals) in both fields; a source that knows the underlying seized (a synthetic market,
        // a mapping) puts it in `collateral_seized` (the payload's rule). Totals add underlying
        // amounts of one token across protocols, so the record keeps whichever unit it holds.
        let seized_in_ctokens = recorded_tokens == Some(liquidation.collateral_seized.0);
        let c_decimals = if seized_in_ctokens {
            CTOKEN_DECIMALS
        } else {
            decimals(collateral)
        };
        let b_decimals = decimals(borrow);
        let rate = self.markets.get(collateral).and_then(Market::rate);
        let mut judgement = match account {
            Some(_) => Judgement::bare(
                Verdict::Explained,
                "compound-v2-liquidate-borrow",
                c_decimals,
                b_decimals,
            ),
            None => {
                let mut judgement = Judgement::bare(
                    Verdict::UnknownAccount,
                    "compound-v2-seize-formula",
                    c_decimals,
                    b_decimals,
                );
                let price = |asset: &Id| {
                    let scale = 36u8.checked_sub(decimals_of(asset)?)?;
                    Some(Quantity::new(self.price(asset)?, scale))
                };
                judgement.seize = Some(SeizeCheck {
                    result: SeizeResult::NoPrice,
                    bonus: Some(Quantity::new(self.liquidation_incentive, 18)),
                    collateral_price: price(collateral),
                    debt_price: price(borrow),
                    // `exchangeRateStored` is scaled by 10^(18 - 8 + underlying decimals).
                    exchange_rate: rate.zip(decimals_of(collateral)).and_then(
                        |(rate, decimals)| {
                            let scale = decimals.checked_add(18 - CTOKEN_DECIMALS)?;
                            Some(Quantity::new(rate, scale))
                        },
                    ),
                });
                judgement
            }
        };
        let no_input = |mut judgement: Judgement, missing: Option<MissingInput>| {
            let what =
                missing.map_or_else(|| "value within 256 bits".to_owned(), |m| m.to_string());
            judgement.missing = missing;
            if judgement.verdict == Verdict::UnknownAccount {
                judgement.note = Some(format!("{NO_POSITION}; no {what} for the seize formula"));
            } else {
                judgement.verdict = Verdict::NoPrice;
                judgement.note = Some(format!("no {what}"));
            }
            judgement
        };
        let repay = liquidation.debt_repaid.0;
        // Either way the expected seizure comes from `liquidateCalculateSeizeTokens`.
        let (Some(price_b), Some(price_c), Some(rate)) =
            (self.price(borrow), self.price(collateral), rate)
        else {
            let missing = self
                .missing_input(borrow, false)
                .or_else(|| self.missing_input(collateral, true));
            return Ok(no_input(judgement, missing));
        };
        // The collateral market's price as the Comptroller reads it (`getUnderlyingPrice`, USD
        // scaled by `10^(36 - decimals)`), and the feed that gave it.
        let source = self.price_sources.get(collateral);
        judgement.oracle = Some(OracleEvidence::new(
            Quantity::new(price_c, 36 - decimals(collateral)),
            source.map(|(feed, _)| *feed),
            source.map(|(_, observed)| *observed),
            Some(time),
            None,
        ));
        if let Some(account) = account {
            let account_missing = || {
                account
                    .positions
                    .iter()
                    .filter(|(_, position)| position.entered)
                    .find_map(|(asset, _)| self.missing_input(asset, true))
            };
            let Some(liquidity) = self.liquidity(account) else {
                return Ok(no_input(judgement, account_missing()));
            };
            judgement.health = Some(Quantity::new(Self::health(&liquidity), 18));
            let Some(context) = self.context(account, liquidity, collateral, borrow) else {
                return Ok(no_input(judgement, account_missing()));
            };
            match logic::liquidate_borrow(&context, repay) {
                Ok(_) => {}
                Err(LiquidateBorrowRefusal::InsufficientShortfall { .. }) => {
                    judgement.verdict = Verdict::NotLiquidatable;
                    return Ok(judgement);
                }
                Err(refusal) => {
                    judgement.verdict = Verdict::AmountMismatch;
                    judgement.note = Some(match refusal {
                        LiquidateBorrowRefusal::TooMuchRepay { max_close } => format!(
                            "repays more than the close factor allows ({})",
                            Quantity::new(max_close, b_decimals)
                        ),
                        LiquidateBorrowRefusal::SeizeTooMuch { seize_tokens } => format!(
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
            if seized_in_ctokens {
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
        let differs = || match recorded_tokens {
            Some(recorded) => format!("formula seizes {tokens} cTokens, recorded {recorded}"),
            None => format!(
                "formula seizes {} underlying, recorded {}",
                Quantity::new(underlying, c_decimals),
                Quantity::new(liquidation.collateral_seized.0, c_decimals)
            ),
        };
        if let Some(seize) = &mut judgement.seize {
            seize.result = if agrees {
                SeizeResult::Consistent
            } else {
                SeizeResult::Mismatch
            };
            judgement.note = Some(if agrees {
                format!("{NO_POSITION}; the seize formula agrees")
            } else {
                format!("{NO_POSITION}; the seize {}", differs())
            });
        } else if judgement.verdict == Verdict::Explained && !agrees {
            judgement.verdict = Verdict::AmountMismatch;
            judgement.note = Some(differs());
        }
        Ok(judgement)
    }

    fn encode(&self, out: &mut StateWriter) {
        out.u8(match self.rounding {
            Rounding::HalfUp => 0,
            Rounding::Truncate => 1,
        });
        out.u256(self.close_factor);
        out.u256(self.liquidation_incentive);
        out.count(self.markets.len());
        for (asset, market) in self.markets.iter() {
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
        for (asset, price) in self.prices.iter() {
            out.id(asset);
            out.fixed(price);
        }
    }

    fn extra_is_empty(&self) -> bool {
        self.price_sources.is_empty()
    }

    fn encode_extra(&self, out: &mut StateWriter) {
        out.count(self.price_sources.len());
        for (asset, (feed, time)) in &self.price_sources {
            out.id(asset);
            out.id(feed);
            out.time(*time);
        }
    }

    fn decode_extra(&mut self, input: &mut StateReader<'_>) -> Result<(), EngineError> {
        self.price_sources.clear();
        for _ in 0..input.count()? {
            let asset = input.id()?;
            self.price_sources
                .insert(asset, (input.id()?, input.time()?));
        }
        Ok(())
    }

    fn decode(&mut self, input: &mut StateReader<'_>) -> Result<(), EngineError> {
        self.rounding = match input.u8()? {
            0 => Rounding::HalfUp,
            1 => Rounding::Truncate,
            other => return Err(input.error(format!("unknown Compound rounding {other}"))),
        };
        self.close_factor = input.u256()?;
        self.liquidation_incentive = input.u256()?;
        let mut markets = SmallMap::default();
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
        let mut prices = SmallMap::default();
        for _ in 0..input.count()? {
            let asset = input.id()?;
            prices.insert(asset, input.fixed()?);
        }
        self.markets = markets;
        self.prices = prices;
        self.price_sources.clear();
        Ok(())
    }

    fn encode_position(position: &Position, out: &mut StateWriter) {
        out.u256(position.ctokens);
        out.u256(position.principal);
        out.u256(position.interest_index);
        out.bool(position.entered);
    }

    fn decode_position(input: &mut StateReader<'_>) -> Result<Position, EngineError> {
        Ok(Position {
            ctokens: input.u256()?,
            principal: input.u256()?,
            interest_index: input.u256()?,
            entered: input.bool()?,
        })
    }

    fn account_position(
        &self,
        market: Id,
        id: Id,
        account: &Account,
    ) -> (Option<crate::protocol::accounts::AccountPosition>, Point) {
        self.position_of(market, id, account)
    }

    fn snapshot(
        &mut self,
        snapshot: &cascade_events::PositionSnapshot,
    ) -> Result<(Position, Applied), EngineError> {
        Ok(self.snapshot_position(snapshot))
    }

    fn snapshot_side(
        &self,
        asset: &Id,
        position: &Position,
    ) -> crate::protocol::accounts::SnapshotSide {
        self.snapshot_side_of(asset, position)
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn the_initial_rate_from_the_table_equals_the_power() {
        for decimals in 0..=u8::MAX {
            let market = Market {
                decimals: Some(decimals),
                ..Market::default()
            };
            let exponent = 16 + u32::from(decimals) - 8;
            let power = U256::from(10u8).checked_pow(U256::from(exponent));
            let expected = power.and_then(|power| U256::from(2u8).checked_mul(power));
            assert_eq!(market.rate(), expected, "decimals {decimals}");
        }
        let usdc = Market {
            decimals: Some(6),
            ..Market::default()
        };
        assert_eq!(usdc.rate(), Some(U256::from(200_000_000_000_000u64)));
        assert_eq!(Market::default().rate(), None);
    }
}
