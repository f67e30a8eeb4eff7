//! The generator's own book of positions: what each synthetic account holds, which accounts a
//! falling price would make unsafe, and how much a liquidation takes.
//!
//! This is not the engine: it is the simplified, integer model that writes the *history* the
//! engine later judges. It keeps one collateral asset and one debt asset per account, values in
//! the oracle's base currency (USD with 8 decimals; ETH with 18 for Aave v2), and an index of
//! accounts ordered by the collateral price (in debt-token terms) at which they become unsafe, so
//! a price update finds the newly unsafe accounts without scanning all of them.
//!
//! Must never: iterate a hash map, or use floats (amounts arrive already quantised).

use cascade_events::{Protocol, U256};

use super::market::{
    AssetInfo, CLOSE_FACTOR_BPS, COMPOUND_INCENTIVE_BPS, PRICE_DECIMALS, Risk,
    compound_exchange_rate, pow10,
};

/// One synthetic account.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Account {
    /// Collateral in the protocol's own unit: underlying base units, or cTokens for Compound.
    pub coll: u128,
    /// Debt in debt-token base units (Maker: normalised `art`, 18 decimals); a looped account's
    /// debt token is its collateral's underlying.
    pub debt: u128,
    /// The price (8 decimals) below which the account is unsafe, as indexed; 0 when not indexed.
    pub key: u128,
    /// Index into the market's collateral list.
    pub asset: u8,
    /// The health factor the account's owner steers towards, bps.
    pub target_bps: u16,
    /// Waiting in the keeper's queue.
    pub queued: bool,
    /// Opened as a loop: it borrows its collateral asset and re-supplied what it borrowed.
    pub looped: bool,
    /// Bumped at each re-index; the index ignores entries with an older stamp.
    pub stamp: u32,
}

/// Everything the book needs to value one collateral asset.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CollateralRule {
    pub info: &'static AssetInfo,
    pub risk: Risk,
    /// Decimals of the amounts events carry: the token's, or 18 for Maker, whose Vat holds
    /// every gem as a wad (`GemJoin` scales 8-decimal WBTC up).
    pub decimals: u8,
    /// Compound: cToken exchange rate mantissa; `None` where collateral is the underlying.
    pub exchange_rate: Option<U256>,
}

impl CollateralRule {
    pub(crate) fn new(protocol: Protocol, info: &'static AssetInfo) -> Self {
        let exchange_rate = matches!(protocol, Protocol::CompoundV2 | Protocol::Liquity)
            .then(|| compound_exchange_rate(info));
        Self {
            info,
            risk: Risk::of(protocol, info),
            decimals: if protocol == Protocol::Maker {
                18
            } else {
                info.decimals
            },
            exchange_rate,
        }
    }

    /// Underlying base units of `coll` protocol units (`cTokens * rate / 1e18`, rounded down as
    /// `CToken.balanceOfUnderlying`).
    pub(crate) fn underlying(&self, coll: u128) -> U256 {
        match self.exchange_rate {
            Some(rate) => U256::from(coll) * rate / pow10(18),
            None => U256::from(coll),
        }
    }

    /// Protocol units of `underlying` base units, rounded down (`CToken.mintFresh`).
    pub(crate) fn units(&self, underlying: U256) -> U256 {
        match self.exchange_rate {
            Some(rate) => underlying * pow10(18) / rate,
            None => underlying,
        }
    }

    /// Value of `coll` protocol units at `price`, in the price's base currency and decimals.
    pub(crate) fn value(&self, coll: u128, price: u128) -> U256 {
        self.underlying(coll) * U256::from(price) / pow10(self.decimals)
    }
}

/// Value of `amount` base units of a token with `decimals` at `price` (the price's base).
pub(crate) fn value_of(amount: U256, decimals: u8, price: u128) -> U256 {
    amount * U256::from(price) / pow10(decimals)
}

/// Base units of a token with `decimals` worth `value` (in `price`'s base) at `price`, rounded
/// down.
pub(crate) fn amount_of(value: U256, decimals: u8, price: u128) -> U256 {
    value * pow10(decimals) / U256::from(price.max(1))
}

/// The market's debt token and how debt units map to it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DebtRule {
    pub info: &'static AssetInfo,
    /// Maker ilk `rate` (ray) the book converts `art` with; 1 ray elsewhere.
    pub rate: U256,
}

impl DebtRule {
    /// Debt-token base units owed for `debt` book units (`art * rate`, rounded up as the Vat's
    /// `tab` is a rad that a repayment must cover).
    pub(crate) fn owed(&self, debt: u128) -> U256 {
        let ray = pow10(27);
        (U256::from(debt) * self.rate).div_ceil(ray)
    }

    /// Book units for a borrow of `amount` debt-token base units (`art = dai / rate`, down).
    pub(crate) fn units(&self, amount: U256) -> U256 {
        amount * pow10(27) / self.rate
    }

    /// Value of `debt` book units, the debt token priced at `price` (the price's base).
    pub(crate) fn value(&self, debt: u128, price: u128) -> U256 {
        value_of(self.owed(debt), self.info.decimals, price)
    }
}

/// Whether a keeper can liquidate the account at these prices: `collateral * threshold < debt`
/// with collateral left to seize.
///
/// An account whose collateral is all gone (a liquidation capped at its balance) keeps its debt
/// but offers nothing: Aave's `validateLiquidationCall` refuses it
/// (`COLLATERAL_CANNOT_BE_LIQUIDATED`, the emptied reserve no longer being used as collateral),
/// and Compound's `liquidateBorrowFresh` refuses a zero repayment.
pub(crate) fn unsafe_at(
    account: &Account,
    coll: &CollateralRule,
    debt: &DebtRule,
    coll_price: u128,
    debt_price: u128,
) -> bool {
    if account.debt == 0 || account.coll == 0 {
        return false;
    }
    let (num, den) = coll.risk.exact;
    let lhs = coll.value(account.coll, coll_price) * U256::from(num);
    let rhs = debt.value(account.debt, debt_price) * U256::from(den);
    lhs < rhs
}

/// The collateral price (8 decimals) below which the account is unsafe, rounded up so that an
/// account at a price at or above the key may still need the exact check; 0 (not indexed)
/// without debt or without collateral, which no price makes liquidatable (see [`unsafe_at`]).
pub(crate) fn unsafe_below(
    account: &Account,
    coll: &CollateralRule,
    debt: &DebtRule,
    debt_price: u128,
) -> u128 {
    if account.debt == 0 || account.coll == 0 {
        return 0;
    }
    // collateral_value(p) = underlying * p / 10^dec; unsafe when that * num < debt_value * den.
    let (num, den) = coll.risk.exact;
    let numerator = debt.value(account.debt, debt_price) * U256::from(den) * pow10(coll.decimals);
    let denominator = coll.underlying(account.coll) * U256::from(num);
    if denominator.is_zero() {
        return u128::MAX;
    }
    let key = numerator.div_ceil(denominator) + U256::ONE;
    u128::try_from(key).unwrap_or(u128::MAX)
}

/// Accounts by the price below which they become unsafe, one bucketed index per collateral
/// asset.
///
/// Keys go to buckets by their binary logarithm with 6 bits of mantissa (about 1.1% wide), so
/// re-indexing an account is a push, not a tree update. Entries are never removed in place: each
/// carries the account's index stamp, and an entry whose stamp is no longer the account's is
/// dropped when its bucket is taken. A fall to `price` takes every bucket at or above the
/// price's, and the caller checks each account exactly.
pub(crate) struct UnsafeIndex {
    assets: Vec<Buckets>,
}

struct Buckets {
    buckets: Vec<Vec<(u32, u32)>>,
    /// No bucket above this one holds entries.
    highest: usize,
}

const BUCKETS: usize = 128 * 64;

/// The bucket of a key: `64 * floor(log2 key) + the 6 bits after the leading one`.
fn bucket(key: u128) -> usize {
    if key == 0 {
        return 0;
    }
    let msb = 127 - key.leading_zeros() as usize;
    let mantissa = if msb >= 6 {
        (key >> (msb - 6)) & 63
    } else {
        (key << (6 - msb)) & 63
    };
    msb * 64 + mantissa as usize
}

impl UnsafeIndex {
    pub(crate) fn new(assets: usize) -> Self {
        Self {
            assets: (0..assets)
                .map(|_| Buckets {
                    buckets: vec![Vec::new(); BUCKETS],
                    highest: 0,
                })
                .collect(),
        }
    }

    /// Re-indexes `account` (number `index`) under `key` (0: not indexed, e.g. no debt).
    pub(crate) fn update(&mut self, index: u32, account: &mut Account, key: u128) {
        account.stamp = account.stamp.wrapping_add(1);
        account.key = key;
        if key != 0 {
            let b = bucket(key);
            let set = &mut self.assets[usize::from(account.asset)];
            set.buckets[b].push((index, account.stamp));
            set.highest = set.highest.max(b);
        }
    }

    /// Removes and returns every indexed account of `asset` whose key may be above `price`: the
    /// candidates a fall to `price` may have made unsafe. Accounts in the price's own bucket come
    /// along too; the caller re-indexes those that are still safe.
    pub(crate) fn take_above(
        &mut self,
        asset: usize,
        price: u128,
        accounts: &mut [Account],
    ) -> Vec<u32> {
        let set = &mut self.assets[asset];
        let from = bucket(price);
        let mut out = Vec::new();
        if from > set.highest {
            return out;
        }
        for b in from..=set.highest {
            for (index, stamp) in set.buckets[b].drain(..) {
                let account = &mut accounts[index as usize];
                if account.stamp == stamp && account.key != 0 {
                    account.key = 0;
                    out.push(index);
                }
            }
        }
        set.highest = from.saturating_sub(1);
        out
    }
}

/// What one liquidation moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seizure {
    /// Collateral taken, protocol units (cTokens for Compound).
    pub coll_units: U256,
    /// Collateral taken, underlying base units.
    pub coll_underlying: U256,
    /// Debt covered, debt-token base units.
    pub debt_repaid: U256,
    /// Debt covered, book units (Maker `art`).
    pub debt_units: U256,
}

/// Aave `percentMul`: `value * bps / 10^4`, rounded half up (`PercentageMath.percentMul`).
fn percent_mul(value: U256, bps: u32) -> U256 {
    (value * U256::from(bps) + U256::from(5_000u32)) / U256::from(10_000u32)
}

/// Aave `percentDiv`: `value * 10^4 / bps`, rounded half up (`PercentageMath.percentDiv`).
fn percent_div(value: U256, bps: u32) -> U256 {
    (value * U256::from(10_000u32) + U256::from(bps / 2)) / U256::from(bps)
}

/// How much a keeper takes from an unsafe account, by the protocol's rule.
///
/// - Aave (v3 `LiquidationLogic._calculateAvailableCollateralToLiquidate`, v2
///   `LendingPoolCollateralManager._calculateAvailableCollateralToLiquidate`, which round in a
///   different order): close factor 50% (v3: 100% at HF <= 0.95), collateral =
///   debt covered * bonus at oracle prices, capped at the balance (then the debt is recomputed).
///   The v3 protocol fee is zero in synthetic markets.
/// - Compound (`Comptroller.liquidateCalculateSeizeTokens`): close factor 50%, seize tokens =
///   repay * incentive * priceBorrowed / (priceCollateral * exchangeRate), mantissa truncation at
///   each step; a repay whose seizure would exceed the balance is scaled down to fit.
/// - Maker (`Dog.bark` with non-binding `hole`): the whole vault, `due = art * rate`.
pub(crate) fn seize(
    protocol: Protocol,
    account: &Account,
    coll: &CollateralRule,
    debt: &DebtRule,
    coll_price: u128,
    debt_price: u128,
) -> Seizure {
    let owed = debt.owed(account.debt);
    let balance = U256::from(account.coll);
    match protocol {
        Protocol::Maker => Seizure {
            coll_units: balance,
            coll_underlying: balance,
            debt_repaid: owed,
            debt_units: U256::from(account.debt),
        },
        Protocol::AaveV2 | Protocol::AaveV3 => {
            let close_bps = if protocol == Protocol::AaveV3
                && health_factor_wad(account, coll, debt, coll_price, debt_price)
                    <= CLOSE_FACTOR_HF_THRESHOLD_WAD
            {
                10_000
            } else {
                CLOSE_FACTOR_BPS
            };
            let to_cover = percent_mul(owed, close_bps);
            let coll_unit = pow10(coll.decimals);
            let debt_unit = pow10(debt.info.decimals);
            let value = U256::from(debt_price) * to_cover * coll_unit;
            let scale = U256::from(coll_price) * debt_unit;
            let max_coll = if protocol == Protocol::AaveV3 {
                // v3 divides first (`baseCollateral`), then applies the bonus.
                percent_mul(value / scale, coll.risk.bonus_bps)
            } else {
                // v2 applies the bonus to the numerator, then divides.
                percent_mul(value, coll.risk.bonus_bps) / scale
            };
            let (coll_amount, debt_amount) = if max_coll > balance {
                let needed = percent_div(
                    U256::from(coll_price) * balance * debt_unit
                        / (U256::from(debt_price) * coll_unit),
                    coll.risk.bonus_bps,
                );
                (balance, needed)
            } else {
                (max_coll, to_cover)
            };
            Seizure {
                coll_units: coll_amount,
                coll_underlying: coll_amount,
                debt_repaid: debt_amount,
                debt_units: debt_amount,
            }
        }
        Protocol::CompoundV2 | Protocol::Liquity => {
            let wad = pow10(18);
            let rate = coll.exchange_rate.unwrap_or(wad);
            // Compound oracle prices: USD per whole token scaled to 10^(36 - decimals).
            let mantissa = |price: u128, decimals: u8| {
                U256::from(price) * pow10(36 - PRICE_DECIMALS - decimals)
            };
            let price_borrowed = mantissa(debt_price, debt.info.decimals);
            let price_collateral = mantissa(coll_price, coll.decimals);
            let incentive = U256::from(COMPOUND_INCENTIVE_BPS) * pow10(14);
            let numerator = incentive * price_borrowed / wad;
            let denominator = price_collateral * rate / wad;
            let ratio = numerator * wad / denominator.max(U256::ONE);
            let seize_for = |repay: U256| ratio * repay / wad;
            let mut repay = owed * U256::from(CLOSE_FACTOR_BPS) / U256::from(10_000u32);
            let mut tokens = seize_for(repay);
            if tokens > balance {
                repay = balance * wad / ratio.max(U256::ONE);
                tokens = seize_for(repay);
            }
            Seizure {
                coll_units: tokens,
                coll_underlying: coll.underlying(u128::try_from(tokens).unwrap_or(u128::MAX)),
                debt_repaid: repay,
                debt_units: repay,
            }
        }
    }
}

/// Aave v3 `CLOSE_FACTOR_HF_THRESHOLD`: 0.95 as a wad. At or below it the whole debt may go.
const CLOSE_FACTOR_HF_THRESHOLD_WAD: u128 = 950_000_000_000_000_000;

/// The health factor as Aave's `calculateHealthFactorFromBalances` computes it, wad:
/// `percentMul(collateral, threshold).wadDiv(debt)`, both half up (`u128::MAX` without debt).
/// With one collateral reserve the average threshold is that reserve's exactly.
///
/// The close factor's test is `healthFactor > 0.95`: a coarser health (say truncated to basis
/// points) puts accounts between 0.95 and 0.9501 on the wrong side.
pub(crate) fn health_factor_wad(
    account: &Account,
    coll: &CollateralRule,
    debt: &DebtRule,
    coll_price: u128,
    debt_price: u128,
) -> u128 {
    let debt_value = debt.value(account.debt, debt_price);
    if debt_value.is_zero() {
        return u128::MAX;
    }
    let weighted = percent_mul(
        coll.value(account.coll, coll_price),
        coll.risk.threshold_bps,
    );
    let wad = pow10(18);
    let hf = (weighted * wad + debt_value / U256::from(2u8)) / debt_value;
    u128::try_from(hf).unwrap_or(u128::MAX)
}
