//! What happened: the typed payloads of events.
//!
//! One variant per thing a lending market or its oracle does. Adapters fill in what their source
//! records and leave optional fields empty rather than inventing values; the engine decides what
//! it can check with what it was given.

use serde::{Deserialize, Serialize};
use wincode::{SchemaRead, SchemaWrite};

use crate::{Amount, Fixed, Id, Symbol};

/// A lending protocol whose rules the engine knows.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    SchemaWrite,
    SchemaRead,
)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// MakerDAO multi-collateral DAI (Vat, Jug, Spotter, Cat/Flip, Dog/Clipper).
    Maker,
    /// Aave v2 LendingPool.
    AaveV2,
    /// Aave v3 Pool.
    AaveV3,
    /// Compound v2 Comptroller and cTokens.
    CompoundV2,
    /// Liquity troves.
    Liquity,
}

impl Protocol {
    /// Every protocol, in their canonical order.
    pub const ALL: [Protocol; 5] = [
        Protocol::Maker,
        Protocol::AaveV2,
        Protocol::AaveV3,
        Protocol::CompoundV2,
        Protocol::Liquity,
    ];

    /// The name used in files and on the command line (`maker`, `aave-v2`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Maker => "maker",
            Protocol::AaveV2 => "aave-v2",
            Protocol::AaveV3 => "aave-v3",
            Protocol::CompoundV2 => "compound-v2",
            Protocol::Liquity => "liquity",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.name() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Protocol::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown protocol {text:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// A new oracle answer or market price for an asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct PriceUpdate {
    /// The asset priced (`WETH`, a token address).
    pub asset: Id,
    /// The unit of the price (`USD`, `ETH`, a token address).
    pub quote: Id,
    /// Quote units per whole asset token, e.g. 2312.34567890 with 8 decimals for Chainlink
    /// ETH/USD.
    pub price: Fixed,
    /// Which feed said so: a Chainlink aggregator address, or a source name (`coingecko`).
    pub feed: Id,
    /// The oracle round, where the feed has rounds (Chainlink `uint80` round ids). JSON carries
    /// it as a decimal string: round ids exceed what JSON numbers hold exactly.
    #[serde(with = "round_text")]
    pub round: Option<u128>,
}

mod round_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        round: &Option<u128>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match round {
            Some(round) => serializer.collect_str(round),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u128>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A vault or account coming into existence (Maker `open`; implicit elsewhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct VaultOpen {
    /// Protocol of the vault.
    pub protocol: Protocol,
    /// Ilk or market the vault belongs to.
    pub market: Id,
    /// The vault's identity (Maker: vault number).
    pub account: Id,
    /// The address that holds the position (Maker urn), where the source has it.
    pub owner: Option<Id>,
}

/// Collateral or debt moving in or out of one account: deposit, withdraw, borrow and repay all
/// share this shape and differ by their [`Payload`] variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct PositionChange {
    /// Protocol of the position.
    pub protocol: Protocol,
    /// Ilk, pool or comptroller the position lives in.
    pub market: Id,
    /// Whose position changes (Aave `onBehalfOf`, Compound borrower, Maker vault).
    pub account: Id,
    /// The token moved.
    pub asset: Id,
    /// Amount of `asset` in its base units; always positive, the variant gives the direction.
    pub amount: Amount,
    /// The protocol's internal units for the same change where the source records them
    /// (Compound cTokens minted or redeemed; Aave scaled balance; Maker `art` for DAI).
    pub shares: Option<Amount>,
}

/// What protocol-specific facts a recorded liquidation carries beyond the common fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LiquidationDetail {
    /// Nothing beyond the common fields.
    None,
    /// Aave `LiquidationCall`.
    Aave {
        /// Whether the liquidator took aTokens instead of the underlying, where known.
        receive_a_token: Option<bool>,
    },
    /// Maker liquidation 1.2 `Cat.bite` (auction on a Flipper).
    MakerCat {
        /// `tab` as Cat 1.2's `Bite` event logs it: `dart * rate`, the debt taken without the
        /// penalty (the auction's tab with `chop` is not logged), DAI with 18 decimals.
        tab: Option<Amount>,
        /// `art` taken from the vault (normalised debt, 18 decimals).
        art: Option<Amount>,
        /// Flip auction id.
        auction: Option<u64>,
    },
    /// Maker liquidation 2.0 `Dog.bark` (auction on a Clipper).
    MakerDog {
        /// `due`: debt taken from the vault without penalty, DAI with 18 decimals.
        due: Option<Amount>,
        /// `art` taken from the vault.
        art: Option<Amount>,
        /// Clip auction id.
        auction: Option<u64>,
    },
    /// Compound v2 `LiquidateBorrow`.
    Compound {
        /// cTokens seized (`seizeTokens`); `collateral_seized` holds the underlying when known.
        seize_tokens: Amount,
    },
}

/// A liquidation as recorded by the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct Liquidation {
    /// Protocol that liquidated.
    pub protocol: Protocol,
    /// Ilk, pool or comptroller.
    pub market: Id,
    /// The account liquidated.
    pub account: Id,
    /// Who liquidated, where recorded (Aave liquidator, Maker keeper).
    pub liquidator: Option<Id>,
    /// Collateral token taken.
    pub collateral_asset: Id,
    /// Collateral taken, base units (Maker: `ink` moved to the auction).
    pub collateral_seized: Amount,
    /// Debt token covered.
    pub debt_asset: Id,
    /// Debt covered, base units (Aave: `debtToCover` actually repaid; Maker: see the detail).
    pub debt_repaid: Amount,
    /// Protocol-specific facts.
    pub detail: LiquidationDetail,
}

/// A liquidation whose source declared one side (or both) unknown: a liquidation export without
/// the debt amount (`debt_repaid = { unknown = true }` in a mapping, `docs/ingest.md`). The fields
/// are those of [`Liquidation`]; `None` is an amount the source does not have, never zero.
///
/// It is a variant of its own ([`Payload::PartialLiquidation`], appended after every other one)
/// rather than optional amounts in [`Liquidation`]: changing `Liquidation`'s fields would change
/// the bytes of every liquidation already logged, while a new variant leaves them as they were
/// (the record format stays version 1), and a binary built before it rejects a log holding one
/// with a malformed-record error naming the tag (`Invalid tag encoding: 16`) instead of
/// misreading it (`docs/log-format.md`, "Event payloads"). Its
/// [`EventKind`] is [`EventKind::Liquidation`]: statistics count it as a liquidation and it sorts
/// last at an instant as every liquidation does. The engine judges it on the known side and says
/// what it derived (`docs/engine.md`, "A liquidation with an unknown side").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct PartialLiquidation {
    /// Protocol that liquidated.
    pub protocol: Protocol,
    /// Ilk, pool or comptroller.
    pub market: Id,
    /// The account liquidated.
    pub account: Id,
    /// Who liquidated, where recorded.
    pub liquidator: Option<Id>,
    /// Collateral token taken.
    pub collateral_asset: Id,
    /// Collateral taken, base units; `None`: the source declared it unknown.
    pub collateral_seized: Option<Amount>,
    /// Debt token covered.
    pub debt_asset: Id,
    /// Debt covered, base units; `None`: the source declared it unknown.
    pub debt_repaid: Option<Amount>,
    /// Protocol-specific facts.
    pub detail: LiquidationDetail,
}

impl PartialLiquidation {
    /// The liquidation with `collateral_seized` and `debt_repaid` standing for its amounts (the
    /// recorded ones where known, derived ones for the engine's judges otherwise).
    pub fn with_amounts(&self, collateral_seized: Amount, debt_repaid: Amount) -> Liquidation {
        Liquidation {
            protocol: self.protocol,
            market: self.market,
            account: self.account,
            liquidator: self.liquidator,
            collateral_asset: self.collateral_asset,
            collateral_seized,
            debt_asset: self.debt_asset,
            debt_repaid,
            detail: self.detail,
        }
    }
}

/// An account enabling or disabling one of its deposits as collateral.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct CollateralToggle {
    /// Protocol of the account.
    pub protocol: Protocol,
    /// Pool or comptroller.
    pub market: Id,
    /// The account.
    pub account: Id,
    /// The deposit's asset.
    pub asset: Id,
    /// True when it now counts as collateral.
    pub enabled: bool,
}

/// New interest indices of a reserve, market or ilk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct IndexUpdate {
    /// Protocol of the market.
    pub protocol: Protocol,
    /// Pool, cToken or ilk.
    pub market: Id,
    /// Asset whose indices these are.
    pub asset: Id,
    /// Supply side: Aave liquidity index (ray).
    pub supply_index: Option<Fixed>,
    /// Debt side: Aave variable borrow index (ray), Compound `borrowIndex` (18 decimals), Maker
    /// ilk `rate` (ray).
    pub borrow_index: Option<Fixed>,
}

/// A governance change of one parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct ParamChange {
    /// Protocol governed.
    pub protocol: Protocol,
    /// Ilk, reserve or market the parameter belongs to; the protocol name for global ones.
    pub market: Id,
    /// The contract's own name, qualified by contract where the source does (`SPOTTER.mat`,
    /// `JUG.ilks.duty`, `DOG.chop`, `liquidationThreshold`).
    pub param: Symbol,
    /// The new value in the source's human units (`mat` 1.3, `duty` 0.06 per year as the
    /// Flipside export writes it); the engine converts to the contract's representation.
    pub value: Fixed,
}

/// A collateral auction starting (Maker `Clipper.Kick`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct AuctionKick {
    /// Protocol running the auction.
    pub protocol: Protocol,
    /// Ilk.
    pub market: Id,
    /// Auction id.
    pub auction: u64,
    /// The vault liquidated (`usr`).
    pub account: Id,
    /// Starting price (`top`, DAI per collateral token).
    pub start_price: Fixed,
    /// DAI to raise (`tab`), 18 decimals.
    pub tab: Amount,
    /// Collateral for sale (`lot`), base units.
    pub lot: Amount,
    /// Keeper that kicked, paid the `tip`/`chip` incentive.
    pub keeper: Option<Id>,
}

/// A purchase from a collateral auction (Maker `Clipper.Take`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct AuctionTake {
    /// Protocol running the auction.
    pub protocol: Protocol,
    /// Ilk.
    pub market: Id,
    /// Auction id.
    pub auction: u64,
    /// The vault liquidated (`usr`).
    pub account: Id,
    /// Price paid (DAI per collateral token).
    pub price: Fixed,
    /// DAI paid (`owe`), 18 decimals.
    pub owe: Amount,
    /// DAI still to raise after this take.
    pub tab_left: Amount,
    /// Collateral left in the auction after this take.
    pub lot_left: Amount,
}

/// Which recorded oracle event gave an [`OracleValue`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, SchemaWrite, SchemaRead,
)]
#[serde(rename_all = "kebab-case")]
pub enum OracleValueSource {
    /// Maker `OSM.LogValue(val)`: emitted by `OSM.poke` after it moved the queued value to
    /// `cur`, so `val` is what `OSM.peek` returns from then on (osm.sol `poke`).
    OsmLogValue,
    /// Maker `Spotter.Poke(ilk, val, spot)`: the OSM value the Spotter read and turned into the
    /// ilk's `spot` in the `Vat` (spot.sol `poke`).
    SpotterPoke,
    /// Compound `UniswapAnchoredView.PriceUpdated(symbol, price)`: the price the view stored for
    /// the symbol and returns from then on (USD, 6 decimals), which the Comptroller reads as
    /// `getUnderlyingPrice(cToken) = 1e30 * price / baseUnit` (open-oracle
    /// `UniswapAnchoredView.sol`).
    CompoundPriceUpdated,
}

impl OracleValueSource {
    /// The name used in run files (`osm-log-value`, `spotter-poke`, `compound-price-updated`).
    pub fn name(self) -> &'static str {
        match self {
            OracleValueSource::OsmLogValue => "osm-log-value",
            OracleValueSource::SpotterPoke => "spotter-poke",
            OracleValueSource::CompoundPriceUpdated => "compound-price-updated",
        }
    }
}

/// A value a protocol's own oracle published, as recorded on chain: what the protocol read,
/// rather than a market price the engine would have to turn into one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct OracleValue {
    /// Protocol whose oracle published it.
    pub protocol: Protocol,
    /// What reads it. Maker: the ilk (`ETH-B`) for a Spotter `Poke`; the collateral the OSM
    /// prices (`ETH`, the ilks' common prefix) for an OSM `LogValue`, which every ilk of that
    /// collateral reads. Compound: the cToken the view's symbol prices.
    pub market: Id,
    /// The value (Maker: USD per collateral token, 18 decimals, as the OSM stores it; Compound:
    /// USD per whole token, 6 decimals, as the view stores it).
    pub value: Fixed,
    /// The event that recorded it.
    pub source: OracleValueSource,
    /// The contract that emitted it (the OSM or the Spotter).
    pub oracle: Id,
}

/// A protocol's oracle switching an asset to a new price source (Aave
/// `AaveOracle.AssetSourceUpdated`): which feed a reserve reads from then on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct OracleSourceChange {
    /// Protocol whose oracle changed.
    pub protocol: Protocol,
    /// The oracle contract (the `AaveOracle`).
    pub oracle: Id,
    /// The asset priced.
    pub asset: Id,
    /// The feed it reads from now (a Chainlink aggregator address).
    pub source: Id,
}

/// One asset of an account's position as a positions export records it at one time (an Aave
/// reserve, a Compound market, a Maker vault). The snapshots of one account and market at one
/// instant together are its whole position: they replace what the log built for it before
/// (`docs/ingest.md`, "Position snapshots").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct PositionSnapshot {
    /// Protocol of the position.
    pub protocol: Protocol,
    /// Ilk, pool or comptroller.
    pub market: Id,
    /// The account (Aave user, Compound borrower, Maker vault).
    pub account: Id,
    /// The asset (Aave reserve, Compound market's underlying, Maker collateral).
    pub asset: Id,
    /// Collateral held, in base units: Aave aToken balance, Compound cToken balance, Maker
    /// `ink`.
    pub collateral: Amount,
    /// Debt owed, in base units: Aave variable plus stable debt, Compound borrow balance in the
    /// underlying, Maker `art` or DAI (see `scaled`).
    pub debt: Amount,
    /// Whether the amounts are the protocol's stored units: Aave scaled balances (divided by the
    /// reserve's index), Maker `art` (normalised debt) rather than DAI. Compound collateral is
    /// always in cTokens and its debt in the underlying.
    pub scaled: bool,
    /// Whether the collateral counts (Aave `usageAsCollateralEnabled`, Compound market
    /// entered); `None`: the protocol's default for a deposit.
    pub collateral_enabled: Option<bool>,
    /// Aave v3 e-mode category of the account, where the export has it.
    pub e_mode: Option<u8>,
}

/// An account's whole position as a `getUserAccountData`-style export records it at one time:
/// totals in the protocol's base currency (Aave v2: ETH wei; v3: USD with 8 decimals) and the
/// collateral-weighted liquidation threshold, without the assets behind them. It replaces what
/// the log built for the account before (`docs/ingest.md`, "Position snapshots").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct AccountTotals {
    /// Protocol of the position.
    pub protocol: Protocol,
    /// The pool.
    pub market: Id,
    /// The account.
    pub account: Id,
    /// Total collateral in the base currency's smallest unit (`totalCollateralETH`,
    /// `totalCollateralBase`).
    pub collateral: Amount,
    /// Total debt in the same unit (`totalDebtETH`, `totalDebtBase`).
    pub debt: Amount,
    /// The weighted liquidation threshold as a fraction (`currentLiquidationThreshold` 8250 bps
    /// is 0.8250).
    pub liquidation_threshold: Fixed,
    /// The weighted loan to value as a fraction, where the export has it.
    pub ltv: Option<Fixed>,
    /// The health factor the export recorded, where it has one.
    pub health_factor: Option<Fixed>,
    /// Aave v3 e-mode category of the account, where the export has it.
    pub e_mode: Option<u8>,
}

/// The typed content of an [`Event`](crate::Event).
///
/// Every variant is boxed: the payloads are 120 to 376 bytes (an [`Id`] alone is 40), and an
/// unboxed enum made every event as large as its largest variant (a liquidation), 480 bytes in
/// all, in every batch and copy of events. Boxed, a payload is a tag and a pointer. A `Box<T>` encodes exactly as `T` (in `wincode` and in serde), so the record bytes
/// and the JSON form are those of the unboxed payloads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Payload {
    /// An oracle answer or market price.
    Price(Box<PriceUpdate>),
    /// A vault opened.
    VaultOpen(Box<VaultOpen>),
    /// Collateral supplied.
    Deposit(Box<PositionChange>),
    /// Collateral withdrawn.
    Withdraw(Box<PositionChange>),
    /// Debt drawn.
    Borrow(Box<PositionChange>),
    /// Debt repaid by the account (or on its behalf), outside a liquidation.
    Repay(Box<PositionChange>),
    /// A recorded liquidation.
    Liquidation(Box<Liquidation>),
    /// Collateral use switched on or off.
    CollateralToggle(Box<CollateralToggle>),
    /// Interest indices moved.
    IndexUpdate(Box<IndexUpdate>),
    /// A governance parameter changed.
    ParamChange(Box<ParamChange>),
    /// A collateral auction started.
    AuctionKick(Box<AuctionKick>),
    /// A collateral auction sold some collateral.
    AuctionTake(Box<AuctionTake>),
    /// A protocol oracle's own recorded value.
    OracleValue(Box<OracleValue>),
    /// A protocol oracle's price source for an asset changed.
    OracleSourceChange(Box<OracleSourceChange>),
    /// One asset of an account's position at a time, from a positions export.
    PositionSnapshot(Box<PositionSnapshot>),
    /// An account's totals at a time, from a `getUserAccountData`-style export.
    AccountTotals(Box<AccountTotals>),
    /// A recorded liquidation with a side its source declared unknown (kind `liquidation`).
    PartialLiquidation(Box<PartialLiquidation>),
}

/// The kind of a [`Payload`], without its data: what statistics and filters count by. One kind per
/// variant, except that [`Payload::PartialLiquidation`] is a [`EventKind::Liquidation`] too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// [`Payload::Price`].
    Price,
    /// [`Payload::VaultOpen`].
    VaultOpen,
    /// [`Payload::Deposit`].
    Deposit,
    /// [`Payload::Withdraw`].
    Withdraw,
    /// [`Payload::Borrow`].
    Borrow,
    /// [`Payload::Repay`].
    Repay,
    /// [`Payload::Liquidation`] and [`Payload::PartialLiquidation`].
    Liquidation,
    /// [`Payload::CollateralToggle`].
    CollateralToggle,
    /// [`Payload::IndexUpdate`].
    IndexUpdate,
    /// [`Payload::ParamChange`].
    ParamChange,
    /// [`Payload::AuctionKick`].
    AuctionKick,
    /// [`Payload::AuctionTake`].
    AuctionTake,
    /// [`Payload::OracleValue`].
    OracleValue,
    /// [`Payload::OracleSourceChange`].
    OracleSourceChange,
    /// [`Payload::PositionSnapshot`].
    PositionSnapshot,
    /// [`Payload::AccountTotals`].
    AccountTotals,
}

impl EventKind {
    /// Every kind, in the order of the [`Payload`] variants.
    pub const ALL: [EventKind; 16] = [
        EventKind::Price,
        EventKind::VaultOpen,
        EventKind::Deposit,
        EventKind::Withdraw,
        EventKind::Borrow,
        EventKind::Repay,
        EventKind::Liquidation,
        EventKind::CollateralToggle,
        EventKind::IndexUpdate,
        EventKind::ParamChange,
        EventKind::AuctionKick,
        EventKind::AuctionTake,
        EventKind::OracleValue,
        EventKind::OracleSourceChange,
        EventKind::PositionSnapshot,
        EventKind::AccountTotals,
    ];

    /// The name used in statistics and JSON (`price`, `vault-open`, ...).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Price => "price",
            EventKind::VaultOpen => "vault-open",
            EventKind::Deposit => "deposit",
            EventKind::Withdraw => "withdraw",
            EventKind::Borrow => "borrow",
            EventKind::Repay => "repay",
            EventKind::Liquidation => "liquidation",
            EventKind::CollateralToggle => "collateral-toggle",
            EventKind::IndexUpdate => "index-update",
            EventKind::ParamChange => "param-change",
            EventKind::AuctionKick => "auction-kick",
            EventKind::AuctionTake => "auction-take",
            EventKind::OracleValue => "oracle-value",
            EventKind::OracleSourceChange => "oracle-source-change",
            EventKind::PositionSnapshot => "position-snapshot",
            EventKind::AccountTotals => "account-totals",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Payload {
    /// The payload's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Payload::Price(_) => EventKind::Price,
            Payload::VaultOpen(_) => EventKind::VaultOpen,
            Payload::Deposit(_) => EventKind::Deposit,
            Payload::Withdraw(_) => EventKind::Withdraw,
            Payload::Borrow(_) => EventKind::Borrow,
            Payload::Repay(_) => EventKind::Repay,
            Payload::Liquidation(_) => EventKind::Liquidation,
            Payload::CollateralToggle(_) => EventKind::CollateralToggle,
            Payload::IndexUpdate(_) => EventKind::IndexUpdate,
            Payload::ParamChange(_) => EventKind::ParamChange,
            Payload::AuctionKick(_) => EventKind::AuctionKick,
            Payload::AuctionTake(_) => EventKind::AuctionTake,
            Payload::OracleValue(_) => EventKind::OracleValue,
            Payload::OracleSourceChange(_) => EventKind::OracleSourceChange,
            Payload::PositionSnapshot(_) => EventKind::PositionSnapshot,
            Payload::AccountTotals(_) => EventKind::AccountTotals,
            Payload::PartialLiquidation(_) => EventKind::Liquidation,
        }
    }

    /// The protocol the event belongs to; `None` for prices, which any protocol may read.
    pub fn protocol(&self) -> Option<Protocol> {
        match self {
            Payload::Price(_) => None,
            Payload::VaultOpen(e) => Some(e.protocol),
            Payload::Deposit(e) | Payload::Withdraw(e) | Payload::Borrow(e) | Payload::Repay(e) => {
                Some(e.protocol)
            }
            Payload::Liquidation(e) => Some(e.protocol),
            Payload::CollateralToggle(e) => Some(e.protocol),
            Payload::IndexUpdate(e) => Some(e.protocol),
            Payload::ParamChange(e) => Some(e.protocol),
            Payload::AuctionKick(e) => Some(e.protocol),
            Payload::AuctionTake(e) => Some(e.protocol),
            Payload::OracleValue(e) => Some(e.protocol),
            Payload::OracleSourceChange(e) => Some(e.protocol),
            Payload::PositionSnapshot(e) => Some(e.protocol),
            Payload::AccountTotals(e) => Some(e.protocol),
            Payload::PartialLiquidation(e) => Some(e.protocol),
        }
    }

    /// The protocol, market and account of a liquidation, recorded whole or with an unknown
    /// side; `None` for other payloads.
    pub fn liquidated(&self) -> Option<(Protocol, &Id, &Id)> {
        match self {
            Payload::Liquidation(e) => Some((e.protocol, &e.market, &e.account)),
            Payload::PartialLiquidation(e) => Some((e.protocol, &e.market, &e.account)),
            _ => None,
        }
    }
}
