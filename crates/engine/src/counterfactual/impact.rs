//! Price impact of the simulated liquidators' sales, and its decay back to the recorded market.
//!
//! When a simulated liquidation seizes collateral, the liquidator sells it; the sale pushes the
//! asset's market price down, and the oracles read that lower price later. This feedback is what
//! turns one liquidation into a cascade. The impact is kept as a multiplier `m` (ray) on the
//! recorded market price `p`: the price any oracle reads is `p * m`. After a sale the displacement
//! `1 - m` decays toward zero with a half-life, modelling arbitrageurs restoring the pool.
//!
//! Two models, both integer math only:
//! - **constant product** (Uniswap v2): a pool of liquidity `L = sqrt(x * y)` centred on the
//!   recorded price (arbitrage keeps it there) and displaced by `m`; a sale of `a` returns
//!   `UniswapV2Library.getAmountOut` with the pool fee. `L` comes from given reserves or from a
//!   series of recorded reserves (the snapshot at or before the sale).
//! - **depth**: `depth` tokens sold move the price by `slippage`, linearly (average execution at
//!   half the final drop), never more than 99%.
//!
//! This module never reads a clock: time is the event time handed in. It holds no protocol rules.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use alloy_primitives::U512;
use alloy_primitives::ruint::UintTryFrom;
use cascade_events::{Id, Timestamp, U256};
use serde::Serialize;

pub use crate::math::{RAY, WAD};

/// The largest price drop one sale may cause in the depth model, wad (0.99).
const MAX_DEPTH_DROP: U256 = U256::from_limbs([990_000_000_000_000_000, 0, 0, 0]);

/// A contribution to an asset's displacement smaller than this (ray, one millionth of the price)
/// is forgotten: the list of contributors stays short and a cascade is not deepened by a sale
/// whose effect has all but decayed (about 20 half-lives).
const NEGLIGIBLE: U256 = U256::from_limbs([3_875_820_019_684_212_736, 54, 0, 0]);

/// `a * b / d` rounded down, through 512 bits; `None` when `d` is zero or the result needs more
/// than 256 bits.
pub fn wide_mul_div(a: U256, b: U256, d: U256) -> Option<U256> {
    if d.is_zero() {
        return None;
    }
    let wide = U512::from(a) * U512::from(b) / U512::from(d);
    <U256 as UintTryFrom<U512>>::uint_try_from(wide).ok()
}

fn mul_div_or_max(a: U256, b: U256, d: U256) -> U256 {
    wide_mul_div(a, b, d).unwrap_or(U256::MAX)
}

/// `c_i = 2^(-2^-i)` in ray for `i = 1..=64`: `c_1 = sqrt(1/2)`, `c_(i+1) = sqrt(c_i)`, each an
/// integer square root, so the table is the same on every machine.
fn half_roots() -> &'static [U256; 64] {
    static TABLE: OnceLock<[U256; 64]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [U256::ZERO; 64];
        let mut current = (RAY * RAY / U256::from(2u8)).root(2);
        for slot in &mut table {
            *slot = current;
            current = (current * RAY).root(2);
        }
        table
    })
}

/// `2^(-elapsed / half_life)` in ray, by integer math: the whole halvings are a shift, the
/// fractional exponent (64 binary digits) a product of the [`half_roots`]. A zero half-life means
/// the impact is gone at once (factor 0 for any positive elapsed time).
pub fn decay_factor(elapsed: u64, half_life: u64) -> U256 {
    if elapsed == 0 {
        return RAY;
    }
    if half_life == 0 {
        return U256::ZERO;
    }
    let halvings = elapsed / half_life;
    if halvings >= 100 {
        // 2^-100 of a ray is below one unit.
        return U256::ZERO;
    }
    let remainder = u128::from(elapsed % half_life);
    let fraction = (remainder << 64) / u128::from(half_life);
    let mut factor = RAY;
    for (bit, root) in half_roots().iter().enumerate() {
        if fraction & (1u128 << (63 - bit)) != 0 {
            factor = factor * *root / RAY;
        }
    }
    factor >> (halvings as usize)
}

/// Seconds from `since` to `now`, 0 when `now` is not later (saturating at the extremes).
fn seconds_between(since: Timestamp, now: Timestamp) -> u64 {
    u64::try_from(now.0.saturating_sub(since.0)).unwrap_or(0)
}

/// Where a constant-product pool's liquidity comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Liquidity {
    /// Fixed reserves: `base` tokens of the asset against `quote` tokens of the quote, wad.
    Reserves {
        /// Asset tokens in the pool, wad.
        #[serde(serialize_with = "wad_text")]
        base: U256,
        /// Quote tokens in the pool, wad.
        #[serde(serialize_with = "wad_text")]
        quote: U256,
    },
    /// Recorded reserves at regular times: snapshot `i` holds from `start + i * interval`.
    Series {
        /// Where the series was read from, for reports.
        source: String,
        /// Time of the first snapshot.
        start: Timestamp,
        /// Seconds between snapshots.
        interval: u64,
        /// `(base, quote)` reserves, wad.
        #[serde(skip)]
        points: Vec<(U256, U256)>,
        /// Number of snapshots.
        count: usize,
    },
}

impl Liquidity {
    /// `sqrt(base * quote)`, wad, in effect at `time` (the first snapshot before the series
    /// starts, the last after it ends).
    fn depth_at(&self, time: Timestamp) -> U256 {
        let (base, quote) = match self {
            Liquidity::Reserves { base, quote } => (*base, *quote),
            Liquidity::Series {
                start,
                interval,
                points,
                ..
            } => {
                let since = seconds_between(*start, time);
                let index = usize::try_from(since / (*interval).max(1)).unwrap_or(usize::MAX);
                match points.get(index.min(points.len().saturating_sub(1))) {
                    Some(point) => *point,
                    None => return U256::ZERO,
                }
            }
        };
        mul_div_or_max(base, quote, U256::from(1u8)).root(2)
    }
}

/// How sales of one asset move its price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum ImpactModel {
    /// A Uniswap-v2-style pool centred on the recorded price.
    ConstantProduct {
        /// The pool's depth.
        liquidity: Liquidity,
        /// Pool fee, wad fraction (0.003e18 for Uniswap v2).
        #[serde(serialize_with = "wad_text")]
        fee: U256,
    },
    /// `depth` tokens (wad) move the price by `slippage` (wad fraction), linearly.
    Depth {
        /// Tokens, wad.
        #[serde(serialize_with = "wad_text")]
        depth: U256,
        /// Fraction, wad.
        #[serde(serialize_with = "wad_text")]
        slippage: U256,
    },
}

/// The impact configuration of one asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImpactSpec {
    /// The asset whose sales move its price (the id its price updates carry).
    pub asset: Id,
    /// The model.
    #[serde(flatten)]
    pub model: ImpactModel,
    /// Seconds for half of the displacement to vanish; 0 means it vanishes at once.
    pub half_life: u64,
}

/// The result of selling into the impact model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sale {
    /// Quote tokens received, wad.
    pub proceeds: U256,
    /// What the amount was worth at the recorded market price, wad quote tokens.
    pub market_value: U256,
    /// Price multiplier before the sale, ray.
    pub multiplier_before: U256,
    /// Price multiplier right after it, ray.
    pub multiplier_after: U256,
}

impl Sale {
    /// Quote tokens lost to impact and fees against the recorded market price, wad.
    pub fn slippage(&self) -> U256 {
        self.market_value.saturating_sub(self.proceeds)
    }
}

/// One contribution to an asset's displacement: which liquidation, how much (ray, undecayed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contribution {
    /// The liquidation's id in the cascade tracker.
    pub liquidation: u32,
    /// Displacement it added, ray, decayed to the asset's last update time.
    pub displacement: U256,
}

#[derive(Clone, Debug)]
struct AssetImpact {
    spec: ImpactSpec,
    /// `1 - m` at `since`, ray.
    displacement: U256,
    since: Timestamp,
    contributions: Vec<Contribution>,
}

impl AssetImpact {
    fn decayed(&self, now: Timestamp) -> U256 {
        self.displacement * decay_factor(seconds_between(self.since, now), self.spec.half_life)
            / RAY
    }

    /// Brings the stored displacement and contributions forward to `now`.
    fn settle(&mut self, now: Timestamp) {
        if now <= self.since {
            return;
        }
        let factor = decay_factor(seconds_between(self.since, now), self.spec.half_life);
        self.displacement = self.displacement * factor / RAY;
        for contribution in &mut self.contributions {
            contribution.displacement = contribution.displacement * factor / RAY;
        }
        self.contributions.retain(|c| c.displacement >= NEGLIGIBLE);
        self.since = now;
    }

    /// The sale of `tokens` (wad) at recorded price `price` (wad) with multiplier `m` (ray).
    fn quote(&self, now: Timestamp, price: U256, m: U256, tokens: U256) -> Sale {
        let market_value = mul_div_or_max(tokens, price, WAD);
        let pool_price = mul_div_or_max(price, m, RAY);
        let (proceeds, after) = match &self.spec.model {
            ImpactModel::ConstantProduct { liquidity, fee } => {
                let depth = liquidity.depth_at(now);
                if depth.is_zero() || pool_price.is_zero() {
                    (U256::ZERO, m)
                } else {
                    let k = mul_div_or_max(depth, depth, U256::from(1u8));
                    let x = mul_div_or_max(k, WAD, pool_price).root(2);
                    let y = mul_div_or_max(k, pool_price, WAD).root(2);
                    // UniswapV2Library.getAmountOut: out = in * (1 - fee) * y / (x + in * (1 - fee))
                    let net_in = mul_div_or_max(tokens, WAD.saturating_sub(*fee), WAD);
                    let out = mul_div_or_max(net_in, y, x.saturating_add(net_in));
                    let new_x = x.saturating_add(tokens);
                    let new_y = y.saturating_sub(out);
                    let new_pool_price = mul_div_or_max(new_y, WAD, new_x);
                    (out, mul_div_or_max(new_pool_price, RAY, price).min(m))
                }
            }
            ImpactModel::Depth { depth, slippage } => {
                let drop = if depth.is_zero() {
                    MAX_DEPTH_DROP
                } else {
                    mul_div_or_max(*slippage, tokens, *depth).min(MAX_DEPTH_DROP)
                };
                let average = mul_div_or_max(pool_price, WAD - drop / U256::from(2u8), WAD);
                let out = mul_div_or_max(tokens, average, WAD);
                (out, mul_div_or_max(m, WAD - drop, WAD))
            }
        };
        Sale {
            proceeds,
            market_value,
            multiplier_before: m,
            multiplier_after: after,
        }
    }
}

/// The price impact state of every asset that has a model.
#[derive(Clone, Debug, Default)]
pub struct PriceImpact {
    assets: BTreeMap<Id, AssetImpact>,
}

impl PriceImpact {
    /// No displacement yet; assets without a spec are never displaced.
    pub fn new(specs: &[ImpactSpec]) -> Self {
        let assets = specs
            .iter()
            .map(|spec| {
                (
                    spec.asset,
                    AssetImpact {
                        spec: spec.clone(),
                        displacement: U256::ZERO,
                        since: Timestamp(i64::MIN),
                        contributions: Vec::new(),
                    },
                )
            })
            .collect();
        PriceImpact { assets }
    }

    /// Whether sales of `asset` move its price.
    pub fn models(&self, asset: &Id) -> bool {
        self.assets.contains_key(asset)
    }

    /// The multiplier on `asset`'s recorded price at `now`, ray (`RAY` when undisplaced).
    pub fn multiplier(&self, asset: &Id, now: Timestamp) -> U256 {
        self.assets
            .get(asset)
            .map_or(RAY, |impact| RAY - impact.decayed(now).min(RAY))
    }

    /// `recorded` (any precision) times the multiplier at `now`, rounded down.
    pub fn apply(&self, asset: &Id, now: Timestamp, recorded: U256) -> U256 {
        let m = self.multiplier(asset, now);
        if m == RAY {
            recorded
        } else {
            mul_div_or_max(recorded, m, RAY)
        }
    }

    /// What selling `amount` base units (of a token with `decimals` decimals) of `asset` at
    /// `now` would return, the recorded market price being `price` (wad quote per token);
    /// changes nothing. Without a model the sale fetches the displaced market price exactly.
    pub fn quote(
        &self,
        asset: &Id,
        now: Timestamp,
        price: U256,
        amount: U256,
        decimals: u8,
    ) -> Sale {
        let m = self.multiplier(asset, now);
        let tokens = to_wad(amount, decimals);
        match self.assets.get(asset) {
            Some(impact) => impact.quote(now, price, m, tokens),
            None => {
                let value = mul_div_or_max(tokens, mul_div_or_max(price, m, RAY), WAD);
                Sale {
                    proceeds: value,
                    market_value: value,
                    multiplier_before: m,
                    multiplier_after: m,
                }
            }
        }
    }

    /// Sells `amount` base units of `asset` at `now` for liquidation `liquidation`: the price
    /// multiplier drops as [`PriceImpact::quote`] says, and the drop is remembered as that
    /// liquidation's contribution.
    pub fn sell(
        &mut self,
        asset: &Id,
        now: Timestamp,
        price: U256,
        (amount, decimals): (U256, u8),
        liquidation: u32,
    ) -> Sale {
        let sale = self.quote(asset, now, price, amount, decimals);
        if let Some(impact) = self.assets.get_mut(asset) {
            impact.settle(now);
            impact.since = now;
            let added = sale.multiplier_before.saturating_sub(sale.multiplier_after);
            impact.displacement = (impact.displacement + added).min(RAY);
            if added >= NEGLIGIBLE {
                impact.contributions.push(Contribution {
                    liquidation,
                    displacement: added,
                });
            }
        }
        sale
    }

    /// The liquidations whose sales still displace `asset` at `now`, largest first (ties by id).
    pub fn contributors(&self, asset: &Id, now: Timestamp) -> Vec<Contribution> {
        let Some(impact) = self.assets.get(asset) else {
            return Vec::new();
        };
        let factor = decay_factor(seconds_between(impact.since, now), impact.spec.half_life);
        let mut live: Vec<Contribution> = impact
            .contributions
            .iter()
            .map(|c| Contribution {
                liquidation: c.liquidation,
                displacement: c.displacement * factor / RAY,
            })
            .filter(|c| c.displacement >= NEGLIGIBLE)
            .collect();
        live.sort_by(|a, b| {
            b.displacement
                .cmp(&a.displacement)
                .then(a.liquidation.cmp(&b.liquidation))
        });
        live
    }
}

/// Serialises a wad quantity as decimal text in whole units (`0.003`, `20000.12345678901`).
pub(crate) fn wad_text<S: serde::Serializer>(
    value: &U256,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&cascade_events::Amount(*value).to_tokens_string(18))
}

/// `amount` base units of a token with `decimals` decimals, as wad tokens.
pub fn to_wad(amount: U256, decimals: u8) -> U256 {
    match decimals.cmp(&18) {
        std::cmp::Ordering::Equal => amount,
        std::cmp::Ordering::Less => {
            amount.saturating_mul(U256::from(10u8).pow(U256::from(18 - decimals)))
        }
        std::cmp::Ordering::Greater => amount / U256::from(10u8).pow(U256::from(decimals - 18)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wad(whole: u64) -> U256 {
        U256::from(whole) * WAD
    }

    fn close(a: U256, b: U256, tolerance: U256) -> bool {
        let diff = if a > b { a - b } else { b - a };
        diff <= tolerance
    }

    #[test]
    fn decay_halves_per_half_life() {
        assert_eq!(decay_factor(0, 600), RAY);
        assert_eq!(decay_factor(600, 600), RAY / U256::from(2u8));
        assert_eq!(decay_factor(1_200, 600), RAY / U256::from(4u8));
        // 2^-0.5 = 0.70710678118654752440084436...
        let half = decay_factor(300, 600);
        let expected = U256::from(707_106_781_186_547_524_400_844_362u128);
        assert!(close(half, expected, U256::from(10u64.pow(9))), "{half}");
        // 2^-(1/3) = 0.79370052598409973737585281...
        let third = decay_factor(200, 600);
        let expected = U256::from(793_700_525_984_099_737_375_852_819u128);
        // The exponent keeps 64 binary digits: 1/3 is truncated, an error below 1e-18.
        assert!(close(third, expected, U256::from(10u64.pow(9))), "{third}");
        assert_eq!(decay_factor(1, 0), U256::ZERO);
        assert_eq!(decay_factor(600 * 100, 600), U256::ZERO);
        let mut previous = RAY;
        for elapsed in 1..2_000 {
            let factor = decay_factor(elapsed, 600);
            assert!(factor < previous, "strictly decreasing at {elapsed}");
            previous = factor;
        }
    }

    fn pool(base: u64, quote: u64) -> ImpactSpec {
        ImpactSpec {
            asset: Id::name("ETH"),
            model: ImpactModel::ConstantProduct {
                liquidity: Liquidity::Reserves {
                    base: wad(base),
                    quote: wad(quote),
                },
                fee: U256::from(3_000_000_000_000_000u64),
            },
            half_life: 600,
        }
    }

    #[test]
    fn constant_product_matches_get_amount_out() {
        // A pool of 1,000 ETH and 2,000,000 DAI centred on its own price 2,000.
        let impact = PriceImpact::new(&[pool(1_000, 2_000_000)]);
        let eth = Id::name("ETH");
        let sale = impact.quote(&eth, Timestamp(0), wad(2_000), wad(100), 18);
        // getAmountOut(100, 1000, 2000000) = 99.7 * 2e6 / 1099.7 = 181322.178776...
        let expected = U256::from(181_322_178_776_029_826_316_268u128);
        assert!(
            close(sale.proceeds, expected, U256::from(10u64.pow(9))),
            "{}",
            sale.proceeds
        );
        assert_eq!(sale.market_value, wad(200_000));
        // New pool price (2e6 - 181322.18) / 1100 = 1653.34 → m = 0.82667
        let m = sale.multiplier_after;
        assert!(m > RAY * U256::from(826u32) / U256::from(1000u32));
        assert!(m < RAY * U256::from(827u32) / U256::from(1000u32));
        assert_eq!(sale.slippage(), wad(200_000) - sale.proceeds);
    }

    #[test]
    fn pool_recentres_on_the_recorded_price() {
        // The same liquidity gives the same relative impact at any recorded price.
        let impact = PriceImpact::new(&[pool(1_000, 2_000_000)]);
        let eth = Id::name("ETH");
        let at_2000 = impact.quote(&eth, Timestamp(0), wad(2_000), wad(10), 18);
        let at_1000 = impact.quote(&eth, Timestamp(0), wad(1_000), wad(10), 18);
        // At the lower price the pool holds more ETH (sqrt 2 times), so the impact is smaller.
        assert!(at_1000.multiplier_after > at_2000.multiplier_after);
    }

    #[test]
    fn sales_displace_then_decay_with_contributors() {
        let mut impact = PriceImpact::new(&[pool(1_000, 2_000_000)]);
        let eth = Id::name("ETH");
        let first = impact.sell(&eth, Timestamp(100), wad(2_000), (wad(50), 18), 0);
        assert_eq!(
            impact.multiplier(&eth, Timestamp(100)),
            first.multiplier_after
        );
        let second = impact.sell(&eth, Timestamp(100), wad(2_000), (wad(50), 18), 1);
        assert_eq!(second.multiplier_before, first.multiplier_after);
        assert!(
            second.proceeds < first.proceeds,
            "the second sale gets a worse price"
        );
        let displaced = RAY - impact.multiplier(&eth, Timestamp(100));
        let later = RAY - impact.multiplier(&eth, Timestamp(700));
        assert!(close(later, displaced / U256::from(2u8), U256::from(2u8)));
        let contributors = impact.contributors(&eth, Timestamp(700));
        assert_eq!(contributors.len(), 2);
        assert_eq!(
            contributors[0].liquidation, 0,
            "the first sale moved the price more"
        );
        let sum = contributors[0].displacement + contributors[1].displacement;
        assert!(close(sum, later, U256::from(4u8)));
        // Other assets are untouched; after 100 half-lives nothing is left.
        assert_eq!(impact.multiplier(&Id::name("WBTC"), Timestamp(700)), RAY);
        assert_eq!(impact.multiplier(&eth, Timestamp(100 + 600 * 100)), RAY);
        assert!(
            impact
                .contributors(&eth, Timestamp(100 + 600 * 100))
                .is_empty()
        );
        assert_eq!(
            impact.apply(&eth, Timestamp(100 + 600 * 100), wad(5)),
            wad(5)
        );
    }

    #[test]
    fn depth_model_is_linear_and_capped() {
        let spec = ImpactSpec {
            asset: Id::name("WBTC"),
            model: ImpactModel::Depth {
                depth: wad(500),
                slippage: WAD / U256::from(50u8),
            },
            half_life: 3_600,
        };
        let impact = PriceImpact::new(&[spec]);
        let wbtc = Id::name("WBTC");
        // 250 WBTC (8 decimals) against 500 for 2%: a 1% drop, average execution 0.5% below.
        let sale = impact.quote(
            &wbtc,
            Timestamp(0),
            wad(30_000),
            U256::from(250u64 * 100_000_000),
            8,
        );
        assert_eq!(
            sale.multiplier_after,
            RAY * U256::from(99u8) / U256::from(100u8)
        );
        assert_eq!(
            sale.proceeds,
            wad(30_000 * 250) * U256::from(995u32) / U256::from(1000u32)
        );
        let huge = impact.quote(
            &wbtc,
            Timestamp(0),
            wad(30_000),
            U256::from(10u64.pow(15)),
            8,
        );
        assert_eq!(huge.multiplier_after, RAY / U256::from(100u8));
    }

    #[test]
    fn series_uses_the_snapshot_in_effect() {
        let liquidity = Liquidity::Series {
            source: "test".into(),
            start: Timestamp(1_000),
            interval: 600,
            points: vec![(wad(100), wad(100)), (wad(400), wad(400))],
            count: 2,
        };
        assert_eq!(liquidity.depth_at(Timestamp(0)), wad(100));
        assert_eq!(liquidity.depth_at(Timestamp(1_599)), wad(100));
        assert_eq!(liquidity.depth_at(Timestamp(1_600)), wad(400));
        assert_eq!(liquidity.depth_at(Timestamp(99_999)), wad(400));
    }

    #[test]
    fn to_wad_scales_both_ways() {
        assert_eq!(to_wad(U256::from(1u8), 8), U256::from(10u64.pow(10)));
        assert_eq!(to_wad(wad(3), 18), wad(3));
        assert_eq!(to_wad(U256::from(10u128.pow(20)), 20), WAD);
    }
}
