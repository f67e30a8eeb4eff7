//! The models' [`AccountPosition`]s valued in one unit, USD with 18 decimals, so positions of
//! different protocols add up (`docs/leverage.md`, "Common unit").
//!
//! A protocol's base currency converts as: `USD` by its decimals; `DAI` one to one (Maker's
//! values are collateral at the OSM's USD price, its debt DAI the Vat counts as one dollar);
//! any other (Aave v2's `ETH`) through the price book's latest market price of it in USD, when
//! the log holds one. A position with an asset of unknown value is left out and counted.

use cascade_events::{Id, U256, pow10};

use crate::leverage::loops::{Holding, LiquidationDistance, Position};
use crate::oracle::PriceBook;
use crate::protocol::accounts::AccountPosition;

/// Decimals of the common unit.
pub const USD_DECIMALS: u8 = 18;

/// How a value in a base currency becomes USD wad.
#[derive(Clone, Copy)]
enum Conversion {
    /// By a whole factor: most bases (DAI and USD at 18 decimals, USD at 8), a product alone
    /// with no 256-bit division per holding.
    Factor(U256),
    /// Multiply, then divide.
    Ratio { times: U256, divide: U256 },
}

impl Conversion {
    /// Multiplying by `times` and dividing by `divide`, by a whole factor where `divide`
    /// divides `times` (the same value).
    fn new(times: U256, divide: U256) -> Self {
        if (times % divide).is_zero() {
            Conversion::Factor(times / divide)
        } else {
            Conversion::Ratio { times, divide }
        }
    }

    /// `value` in USD wad; `None` past 256 bits.
    fn usd(self, value: U256) -> Option<U256> {
        match self {
            Conversion::Factor(factor) => value.checked_mul(factor),
            Conversion::Ratio { times, divide } => value.checked_mul(times).map(|v| v / divide),
        }
    }
}

/// How to turn a value in `base` (at `decimals`) into USD wad.
fn conversion(base: &Id, decimals: u8, prices: &PriceBook) -> Option<Conversion> {
    let scale = pow10(decimals)?;
    match base.to_string().as_str() {
        "USD" | "DAI" => Some(Conversion::new(pow10(USD_DECIMALS)?, scale)),
        other => {
            let quote = prices
                .market(base, &Id::name("USD"))
                .or_else(|| match other {
                    "ETH" => prices.market(&Id::name("WETH"), &Id::name("USD")),
                    _ => None,
                })?;
            let price = quote.price.rescale(USD_DECIMALS)?;
            Some(Conversion::new(price, scale))
        }
    }
}

/// `accounts` valued in USD wad, appended to `out`; returns how many positions were left out
/// for an unknown value. Accounts without collateral or debt are dropped.
pub fn usd_positions(
    accounts: &[AccountPosition],
    prices: &PriceBook,
    out: &mut Vec<Position>,
) -> u64 {
    out.reserve(accounts.len());
    let mut unpriced = 0;
    // A model's accounts share one base currency: its conversion is worked out once.
    let mut conversions: Vec<((Id, u8), Option<Conversion>)> = Vec::new();
    for account in accounts {
        // Emptied vaults and withdrawn accounts stay in the state: most of a long log's.
        if account
            .assets
            .iter()
            .all(|a| a.collateral.is_zero() && a.debt.is_zero())
        {
            continue;
        }
        let base = (account.base_currency, account.base_decimals);
        let conversion = match conversions.iter().find(|(key, _)| *key == base) {
            Some((_, conversion)) => *conversion,
            None => {
                let conversion = conversion(&base.0, base.1, prices);
                conversions.push((base, conversion));
                conversion
            }
        };
        match conversion.and_then(|c| usd_position(account, c)) {
            Some(position) if position.collateral.is_empty() && position.debt.is_empty() => {}
            Some(position) => out.push(position),
            None => unpriced += 1,
        }
    }
    unpriced
}

fn usd_position(account: &AccountPosition, conversion: Conversion) -> Option<Position> {
    let usd = |value: U256| conversion.usd(value);
    // Sized exactly: a position holds one or two assets, and a growing vector would start at four.
    let held = |side: fn(&crate::protocol::accounts::AssetPosition) -> &U256| {
        account.assets.iter().filter(|a| !side(a).is_zero()).count()
    };
    let mut collateral = Vec::with_capacity(held(|a| &a.collateral));
    let mut debt = Vec::with_capacity(held(|a| &a.debt));
    for asset in &account.assets {
        if !asset.collateral.is_zero() {
            collateral.push(Holding {
                asset: asset.asset,
                value: usd(asset.collateral_value?)?,
            });
        }
        if !asset.debt.is_zero() {
            debt.push(Holding {
                asset: asset.asset,
                value: usd(asset.debt_value?)?,
            });
        }
    }
    let liquidation = account.liquidation_price.as_ref().and_then(|at| {
        let current = account.assets.iter().find(|a| a.asset == at.asset)?.price?;
        let current = current.rescale(USD_DECIMALS)?;
        let threshold = at.price.rescale(USD_DECIMALS)?;
        if current.is_zero() {
            return None;
        }
        let fall = current.saturating_sub(threshold) * U256::from(10_000u32) / current;
        Some(LiquidationDistance {
            asset: at.asset,
            fall_bps: u32::try_from(fall).unwrap_or(10_000),
        })
    });
    Some(Position {
        protocol: account.protocol,
        market: account.market,
        account: account.account,
        collateral,
        debt,
        health: account.health_factor.filter(|h| *h != U256::MAX),
        liquidation,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::Quantity;
    use crate::protocol::accounts::{AssetPosition, LiquidationPrice, ThresholdKind};
    use cascade_events::{Fixed, PriceUpdate, Protocol, Timestamp};

    pub(crate) fn asset(name: &str, collateral: u64, debt: u64, price: u64) -> AssetPosition {
        AssetPosition {
            asset: Id::name(name),
            collateral: U256::from(collateral),
            debt: U256::from(debt),
            decimals: Some(0),
            price: Some(Quantity::new(U256::from(price), 0)),
            collateral_enabled: true,
            collateral_value: Some(U256::from(collateral * price)),
            debt_value: Some(U256::from(debt * price)),
        }
    }

    pub(crate) fn account(base: &str, assets: Vec<AssetPosition>) -> AccountPosition {
        AccountPosition {
            protocol: Protocol::AaveV2,
            market: Id::name("POOL"),
            account: Id::Number(1),
            base_currency: Id::name(base),
            base_decimals: 0,
            assets,
            collateral_value: None,
            debt_value: None,
            threshold_kind: ThresholdKind::LiquidationThreshold,
            threshold: None,
            health_factor: Some(U256::from(2u8)),
            liquidation_price: Some(LiquidationPrice {
                asset: Id::name("WETH"),
                price: Quantity::new(U256::from(3u8), 0),
            }),
            missing: None,
            totals: None,
        }
    }

    #[test]
    fn an_eth_based_position_is_valued_at_the_books_eth_price() {
        // Aave v2 values in ETH (0 decimals here): 10 WETH at 1 ETH each against 4 ETH of
        // USDC debt. ETH at 2000 USD: collateral 20,000 USD, debt 8,000 USD. The liquidation
        // price 3 against a current price 4 (in ETH... WETH priced 4 here) is a 25% fall.
        let mut prices = PriceBook::new(Vec::new());
        prices.record(
            &PriceUpdate {
                asset: Id::name("ETH"),
                quote: Id::name("USD"),
                price: Fixed::new(U256::from(2000u16), 0),
                feed: Id::name("feed"),
                round: None,
            },
            Timestamp(1),
        );
        let accounts = [account(
            "ETH",
            vec![asset("WETH", 10, 0, 4), asset("USDC", 0, 4, 1)],
        )];
        let mut positions = Vec::new();
        assert_eq!(usd_positions(&accounts, &prices, &mut positions), 0);
        let wad = U256::from(10u64.pow(18));
        assert_eq!(
            positions[0].collateral[0].value,
            U256::from(80_000u32) * wad
        );
        assert_eq!(positions[0].debt[0].value, U256::from(8_000u32) * wad);
        assert_eq!(positions[0].liquidation.as_ref().unwrap().fall_bps, 2500);
        assert_eq!(positions[0].health, Some(U256::from(2u8)));
        // Without an ETH price the position cannot be valued: counted, left out.
        let mut positions = Vec::new();
        let unpriced = usd_positions(&accounts, &PriceBook::new(Vec::new()), &mut positions);
        assert!(positions.is_empty());
        assert_eq!(unpriced, 1);
    }
}
