//! The synthetic market's fixed facts: assets, identities, protocol parameters and the integer
//! rules the generator's keeper uses to decide when and how much to liquidate.
//!
//! Names and units follow what real ingests put in the log, so the engine reads a synthetic market
//! exactly as a real one: Maker parameters as in the Flipside export (`SPOTTER.ilks.mat` 1.45,
//! `DOG.ilks.chop` 0.13 as a penalty fraction, `VAT.ilks.dust` in DAI, `JUG.ilks.duty` yearly), Aave
//! and Compound parameters as fractions and multipliers (`liquidationThreshold` 0.83,
//! `liquidationBonus` 1.05, `collateralFactor` 0.825, `liquidationIncentive` 1.08). Prices are USD
//! with 8 decimals, as Chainlink reports them.
//!
//! Must never: decide anything from floats; every rule here is integer arithmetic.

use cascade_events::{Address, Fixed, Id, Protocol, U256};

/// Seconds between blocks (post-merge Ethereum).
pub const BLOCK_SECS: u32 = 12;
/// Unix time of a synthetic market's first block: 2024-03-01T00:00:00Z.
pub const START_TIME: i64 = 1_709_251_200;
/// Number of the synthetic market's first block.
pub const START_BLOCK: u64 = 19_330_000;
/// Decimals of synthetic USD prices (as Chainlink's USD feeds).
pub const PRICE_DECIMALS: u8 = 8;
/// Decimals of synthetic ETH-quoted prices (Aave v2's oracle, as Chainlink's ETH feeds).
pub const ETH_DECIMALS: u8 = 18;
/// First Maker vault number of a synthetic market.
pub const FIRST_VAULT: u64 = 30_000;

/// A token the generator knows.
#[derive(Clone, Copy, Debug)]
pub struct AssetInfo {
    /// Ticker, used as the asset's [`Id::Name`].
    pub symbol: &'static str,
    /// Token decimals.
    pub decimals: u8,
    /// Starting USD price, whole dollars.
    pub start_usd: u32,
    /// Whether the crash moves it (stablecoins stay at 1).
    pub volatile: bool,
    /// Chainlink-like deviation threshold, basis points.
    pub deviation_bps: u32,
    /// Chainlink-like heartbeat, seconds.
    pub heartbeat_secs: u32,
    /// Share of accounts using it as collateral, relative weight.
    pub weight: u32,
    /// Maker ilk it backs.
    pub ilk: &'static str,
    /// Aave v3 liquidation threshold, LTV and bonus (bps, bps, bps of the repaid debt).
    pub aave_v3: (u32, u32, u32),
    /// Aave v2 liquidation threshold, LTV and bonus.
    pub aave_v2: (u32, u32, u32),
    /// Compound v2 collateral factor, bps.
    pub compound_cf_bps: u32,
    /// Maker liquidation ratio `mat`, bps (14500 = 145%).
    pub maker_mat_bps: u32,
}

/// Every asset `--assets` may name. Parameters are round versions of mainnet values in 2024.
pub const ASSETS: &[AssetInfo] = &[
    AssetInfo {
        symbol: "WETH",
        decimals: 18,
        start_usd: 2_000,
        volatile: true,
        deviation_bps: 50,
        heartbeat_secs: 3_600,
        weight: 60,
        ilk: "ETH-A",
        aave_v3: (8_300, 8_050, 10_500),
        aave_v2: (8_250, 8_000, 10_500),
        compound_cf_bps: 8_250,
        maker_mat_bps: 14_500,
    },
    AssetInfo {
        symbol: "WBTC",
        decimals: 8,
        start_usd: 40_000,
        volatile: true,
        deviation_bps: 50,
        heartbeat_secs: 3_600,
        weight: 30,
        ilk: "WBTC-A",
        aave_v3: (7_800, 7_300, 10_500),
        aave_v2: (7_500, 7_000, 10_650),
        compound_cf_bps: 7_000,
        maker_mat_bps: 14_500,
    },
    AssetInfo {
        symbol: "LINK",
        decimals: 18,
        start_usd: 15,
        volatile: true,
        deviation_bps: 100,
        heartbeat_secs: 3_600,
        weight: 10,
        ilk: "LINK-A",
        aave_v3: (6_800, 5_300, 10_700),
        aave_v2: (7_500, 7_000, 10_750),
        compound_cf_bps: 7_900,
        maker_mat_bps: 16_500,
    },
    AssetInfo {
        symbol: "USDC",
        decimals: 6,
        start_usd: 1,
        volatile: false,
        deviation_bps: 25,
        heartbeat_secs: 86_400,
        weight: 0,
        ilk: "USDC-A",
        aave_v3: (7_800, 7_500, 10_450),
        aave_v2: (8_800, 8_500, 10_450),
        compound_cf_bps: 8_550,
        maker_mat_bps: 10_100,
    },
    AssetInfo {
        symbol: "DAI",
        decimals: 18,
        start_usd: 1,
        volatile: false,
        deviation_bps: 25,
        heartbeat_secs: 3_600,
        weight: 0,
        ilk: "DAI",
        aave_v3: (7_700, 6_300, 10_500),
        aave_v2: (7_700, 7_500, 10_500),
        compound_cf_bps: 8_350,
        maker_mat_bps: 10_000,
    },
];

/// Collateral used when `--assets` is not given.
pub const DEFAULT_COLLATERAL: &[&str] = &["WETH", "WBTC"];

/// Looks an asset up by symbol (case-insensitive).
pub fn asset(symbol: &str) -> Option<&'static AssetInfo> {
    ASSETS
        .iter()
        .find(|a| a.symbol.eq_ignore_ascii_case(symbol))
}

/// The token every account borrows: DAI for Maker, USDC elsewhere.
pub fn debt_asset(protocol: Protocol) -> &'static AssetInfo {
    let symbol = if protocol == Protocol::Maker {
        "DAI"
    } else {
        "USDC"
    };
    asset(symbol).expect("the debt assets are in the table")
}

/// The market id positions of `protocol` live in: the ilk for Maker, the pool or comptroller
/// address elsewhere (mainnet addresses, so a synthetic log reads like a real one).
pub fn market_id(protocol: Protocol, collateral: &AssetInfo) -> Id {
    match protocol {
        Protocol::Maker => Id::name(collateral.ilk),
        Protocol::AaveV3 => Id::Address(address("87870bca3f3fd6335c3f4ce8392d69350b4fa4e2")),
        Protocol::AaveV2 => Id::Address(address("7d2768de32b0b80b7a3454c06bdac94a69ddc7a9")),
        Protocol::CompoundV2 | Protocol::Liquity => {
            Id::Address(address("3d9819210a31b4961b30ef54be2aed79b9c9cd3b"))
        }
    }
}

fn address(hex: &str) -> Address {
    hex.parse().expect("literal addresses are valid")
}

/// A synthetic address: a recognisable 4-byte tag, zeros, then `n` big-endian.
pub fn tagged_address(tag: [u8; 4], n: u64) -> Address {
    let mut bytes = [0u8; 20];
    bytes[..4].copy_from_slice(&tag);
    bytes[12..].copy_from_slice(&n.to_be_bytes());
    Address::new(bytes)
}

/// Tag of user accounts (Aave, Compound) and Maker urns.
pub const ACCOUNT_TAG: [u8; 4] = [0x5e, 0x11, 0xac, 0xc7];
/// Tag of Maker urn addresses.
pub const URN_TAG: [u8; 4] = [0x5e, 0x11, 0x0a, 0x17];
/// Tag of keeper (liquidator) addresses.
pub const KEEPER_TAG: [u8; 4] = [0x5e, 0x11, 0x4e, 0xe9];

/// The id of account number `index` (0-based) of a market.
pub fn account_id(protocol: Protocol, index: u32) -> Id {
    match protocol {
        Protocol::Maker => Id::Number(FIRST_VAULT + u64::from(index)),
        _ => Id::Address(tagged_address(ACCOUNT_TAG, u64::from(index))),
    }
}

/// The id of the Chainlink-like feed that prices `asset` in `quote`.
pub fn feed_id(asset: &AssetInfo, quote: &str) -> Id {
    Id::name(&format!("synth-{}-{quote}", asset.symbol))
}

/// `10^n` as a `U256` (`n <= 38`, which covers every decimals and scale used here).
pub fn pow10(n: u8) -> U256 {
    U256::from(POW10[usize::from(n)])
}

/// `10^0 ..= 10^38`: every power of ten a `u128` holds.
const POW10: [u128; 39] = {
    let mut table = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// A fraction in basis points as a [`Fixed`] with 4 decimals (`8300` is `0.83`).
pub fn bps(value: u32) -> Fixed {
    Fixed::new(U256::from(value), 4)
}

/// A whole number as a [`Fixed`] with no decimals.
pub fn whole(value: u64) -> Fixed {
    Fixed::new(U256::from(value), 0)
}

/// Compound's initial exchange rate, 0.02 underlying per cToken, as its mantissa:
/// `0.02 * 10^(18 + underlying decimals - 8)` (`CToken.initialExchangeRateMantissa`).
pub fn compound_exchange_rate(asset: &AssetInfo) -> U256 {
    U256::from(2u8) * pow10(asset.decimals + 8)
}

/// The risk rule of one collateral asset under one protocol, in integers.
///
/// An account is unsafe when `collateral_value * threshold_bps < debt_value * 10_000`, both values
/// in the oracle's base currency. `threshold_bps` is the Aave liquidation threshold, the Compound collateral
/// factor, or `10^8 / mat_bps` for Maker (collateral value over `mat`).
#[derive(Clone, Copy, Debug)]
pub struct Risk {
    /// See the type doc.
    pub threshold_bps: u32,
    /// Liquidation bonus on the repaid debt, bps of it (10500 = 5% bonus); Maker: `1 + chop`.
    pub bonus_bps: u32,
    /// The most a borrow may bring the debt to, bps of the collateral value: Aave's LTV,
    /// Compound's collateral factor, Maker's threshold.
    pub ltv_bps: u32,
    /// The threshold exactly, as a fraction `(numerator, denominator)`: `(threshold_bps, 10^4)`,
    /// Maker `(10^4, mat_bps)`, whose `10^8 / mat_bps` in whole bps is up to 0.01% off and would
    /// take vaults the Dog refuses (a collateral ratio of 1.45007 under `mat` 1.45).
    pub exact: (u32, u32),
}

/// Maker penalty `chop` of synthetic ilks, bps (0.13 as the export writes it).
pub const MAKER_CHOP_BPS: u32 = 1_300;
/// Maker minimum vault debt `dust` of synthetic ilks, DAI.
pub const MAKER_DUST_DAI: u64 = 7_500;
/// Maker stability fee `duty` of synthetic ilks, yearly, bps.
pub const MAKER_DUTY_BPS: u32 = 200;
/// Compound liquidation incentive, bps (1.08).
pub const COMPOUND_INCENTIVE_BPS: u32 = 10_800;
/// Close factor of Aave (v2, and v3 above HF 0.95) and Compound, bps.
pub const CLOSE_FACTOR_BPS: u32 = 5_000;

impl Risk {
    /// The rule for `collateral` under `protocol`.
    pub fn of(protocol: Protocol, collateral: &AssetInfo) -> Risk {
        match protocol {
            Protocol::Maker => Risk {
                threshold_bps: 100_000_000 / collateral.maker_mat_bps,
                bonus_bps: 10_000 + MAKER_CHOP_BPS,
                ltv_bps: 100_000_000 / collateral.maker_mat_bps,
                exact: (10_000, collateral.maker_mat_bps),
            },
            Protocol::AaveV3 => Risk {
                threshold_bps: collateral.aave_v3.0,
                exact: (collateral.aave_v3.0, 10_000),
                bonus_bps: collateral.aave_v3.2,
                ltv_bps: collateral.aave_v3.1,
            },
            Protocol::AaveV2 => Risk {
                threshold_bps: collateral.aave_v2.0,
                exact: (collateral.aave_v2.0, 10_000),
                bonus_bps: collateral.aave_v2.2,
                ltv_bps: collateral.aave_v2.1,
            },
            Protocol::CompoundV2 | Protocol::Liquity => Risk {
                threshold_bps: collateral.compound_cf_bps,
                exact: (collateral.compound_cf_bps, 10_000),
                bonus_bps: COMPOUND_INCENTIVE_BPS,
                ltv_bps: collateral.compound_cf_bps,
            },
        }
    }
}

/// One governance parameter set at the start of a synthetic market.
pub struct Setup {
    /// Market (ilk, reserve symbol, cToken symbol) or the protocol's global id.
    pub market: Id,
    /// The parameter's log name.
    pub param: &'static str,
    /// Its value in the log's human units.
    pub value: Fixed,
}

/// The parameters `protocol` needs before any position opens, for the given collateral assets
/// and the protocol's debt asset.
pub fn setup_params(protocol: Protocol, collateral: &[&'static AssetInfo]) -> Vec<Setup> {
    let mut out = Vec::new();
    let global = Id::name(protocol.name());
    let mut push = |market: Id, param: &'static str, value: Fixed| {
        out.push(Setup {
            market,
            param,
            value,
        })
    };
    let debt = debt_asset(protocol);
    match protocol {
        Protocol::Maker => {
            // Liquidations 2.0 from the start: Dog/Clipper parameters present, no Cat ones.
            push(global, "DOG.Hole", whole(1_000_000_000_000));
            for c in collateral {
                let ilk = Id::name(c.ilk);
                push(ilk, "SPOTTER.ilks.mat", bps(c.maker_mat_bps));
                push(ilk, "JUG.ilks.duty", bps(MAKER_DUTY_BPS));
                push(ilk, "VAT.ilks.line", whole(1_000_000_000_000));
                push(ilk, "VAT.ilks.dust", whole(MAKER_DUST_DAI));
                push(ilk, "DOG.ilks.chop", bps(MAKER_CHOP_BPS));
                // Auction capacity is not simulated, so the limits must not bind.
                push(ilk, "DOG.ilks.hole", whole(1_000_000_000_000));
                push(ilk, "CLIPPER.buf", bps(12_000));
                push(ilk, "CLIPPER.tail", whole(8_400));
                push(ilk, "CLIPPER.cusp", bps(4_000));
                push(ilk, "CLIPPER.chip", bps(10));
                push(ilk, "CLIPPER.tip", whole(300));
            }
        }
        Protocol::AaveV2 | Protocol::AaveV3 => {
            for a in collateral.iter().copied().chain([debt]) {
                let (lt, ltv, bonus) = if protocol == Protocol::AaveV3 {
                    a.aave_v3
                } else {
                    a.aave_v2
                };
                let reserve = Id::name(a.symbol);
                push(reserve, "decimals", whole(u64::from(a.decimals)));
                push(reserve, "ltv", bps(ltv));
                push(reserve, "liquidationThreshold", bps(lt));
                push(reserve, "liquidationBonus", bps(bonus));
            }
        }
        Protocol::CompoundV2 | Protocol::Liquity => {
            push(global, "closeFactor", bps(CLOSE_FACTOR_BPS));
            push(global, "liquidationIncentive", bps(COMPOUND_INCENTIVE_BPS));
            for a in collateral.iter().copied().chain([debt]) {
                let market = Id::name(a.symbol);
                push(market, "decimals", whole(u64::from(a.decimals)));
                push(market, "collateralFactor", bps(a.compound_cf_bps));
            }
        }
    }
    out
}
