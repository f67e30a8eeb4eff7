//! The run file (`docs/run-format.md`): what a replay found, as versioned, deterministic JSON,
//! defined once for the engine that writes it and the tools that read it (`cascade check`,
//! `cascade diff`, `cascade report`).
//!
//! Same log + same scenario + same engine version = byte-identical file: every map is a
//! `BTreeMap`, every amount is exact decimal text ([`Quantity`]), keys come out in declaration
//! order. Nothing here formats money through floats. [`lines`] is the file's line form,
//! [`binary`] its compact binary form ([`RunForm`] picks one by file name), [`scenario`] the
//! scenario types the engine reads scenario files into, [`sweep`] a sweep's results,
//! [`compare`] what `cascade check` finds between two run files, [`golden`] the one way tests
//! compare with and rewrite golden files.

pub mod binary;
pub mod compare;
pub mod golden;
mod header;
pub mod lines;
pub mod num;
#[cfg(test)]
mod sample;
pub mod scenario;
pub mod sweep;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use cascade_events::{Amount, Fixed, Id, Protocol, Timestamp, U256};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wincode::{SchemaRead, SchemaWrite};

pub use compare::{RunDiff, diff_runs};
pub use scenario::ScenarioInfo;

/// An exact amount: a scaled integer and its fractional digits, written as decimal text
/// without trailing zeros (`12811.4`). Read back, it keeps the digits written. Ordered by
/// `value`, then `decimals` (compare amounts of one precision).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, SchemaWrite, SchemaRead)]
pub struct Quantity {
    /// Scaled integer.
    #[wincode(with = "wincode::adapter::FromInto<U256Wire, U256>")]
    pub value: U256,
    /// Fractional digits of `value`.
    pub decimals: u8,
}

impl Quantity {
    /// `value / 10^decimals`.
    pub fn new(value: U256, decimals: u8) -> Self {
        Self { value, decimals }
    }

    /// Zero at `decimals` precision.
    pub fn zero(decimals: u8) -> Self {
        Self::new(U256::ZERO, decimals)
    }

    /// The value at `decimals` precision, rounding toward zero when digits are dropped; `None`
    /// when scaling up overflows 256 bits.
    pub fn rescale(&self, decimals: u8) -> Option<U256> {
        Fixed::new(self.value, self.decimals).rescale(decimals)
    }

    /// The exact sum at the finer of the two precisions, saturating at 2^256 - 1 (a run file is a
    /// report, not a ledger). One token can reach a run at two precisions: Maker's Vat counts
    /// every gem in wad (`GemJoin` scales WBTC's 8 decimals to 18), Aave and Compound in the
    /// token's own decimals.
    pub fn saturating_add(self, other: Quantity) -> Quantity {
        let decimals = self.decimals.max(other.decimals);
        let at = |q: Quantity| q.rescale(decimals).unwrap_or(U256::MAX);
        Quantity::new(at(self).saturating_add(at(other)), decimals)
    }
}

/// A 256-bit integer in the binary form: 32 bytes, little-endian, as events encode amounts.
#[derive(SchemaWrite, SchemaRead)]
struct U256Wire(Amount);

impl From<&U256> for U256Wire {
    fn from(value: &U256) -> Self {
        U256Wire(Amount(*value))
    }
}

impl From<U256Wire> for U256 {
    fn from(wire: U256Wire) -> Self {
        wire.0.0
    }
}

/// A name the model keeps as a `Cow` (most are static), in the binary form: a string.
#[derive(SchemaWrite, SchemaRead)]
struct TextWire(String);

impl From<&Cow<'static, str>> for TextWire {
    fn from(text: &Cow<'static, str>) -> Self {
        TextWire(text.to_string())
    }
}

impl From<TextWire> for Cow<'static, str> {
    fn from(wire: TextWire) -> Self {
        Cow::Owned(wire.0)
    }
}

/// `value / 10^decimals` as decimal text without trailing zeros.
pub fn decimal(value: U256, decimals: u8) -> String {
    Amount(value).to_tokens_string(decimals)
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Amount(self.value).write_tokens(self.decimals, f)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Fixed::parse_exact(&text)
            .map(|fixed| Quantity::new(fixed.value, fixed.decimals))
            .map_err(|error| serde::de::Error::custom(format!("amount {text:?}: {error}")))
    }
}

/// The engine's judgement of a recorded liquidation against the rebuilt state.
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
pub enum Verdict {
    /// Liquidatable at that moment by the engine's oracle rule, and the amounts agree with the
    /// protocol's formula within the documented tolerance.
    Explained,
    /// Liquidatable, but the amounts differ from the formula beyond the tolerance.
    AmountMismatch,
    /// The rebuilt account was safe at that moment (its health is reported).
    NotLiquidatable,
    /// The account is unknown to the rebuilt state.
    UnknownAccount,
    /// No price was available to the protocol's oracle at that moment.
    NoPrice,
}

impl Verdict {
    /// Every verdict, in output order.
    pub const ALL: [Verdict; 5] = [
        Verdict::Explained,
        Verdict::AmountMismatch,
        Verdict::NotLiquidatable,
        Verdict::UnknownAccount,
        Verdict::NoPrice,
    ];

    /// The name used in run files.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Explained => "explained",
            Verdict::AmountMismatch => "amount-mismatch",
            Verdict::NotLiquidatable => "not-liquidatable",
            Verdict::UnknownAccount => "unknown-account",
            Verdict::NoPrice => "no-price",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a liquidation of the run comes from.
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
pub enum Origin {
    /// In the log, judged against the rebuilt state (historical mode).
    Recorded,
    /// Made by the simulated liquidator (counterfactual mode).
    Simulated,
}

impl Origin {
    /// The name used in run files.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Recorded => "recorded",
            Origin::Simulated => "simulated",
        }
    }
}

/// When a [`HealthSnapshot`] was taken.
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
pub enum Moment {
    /// At the onset of the crisis in the window.
    Before,
    /// After the last event of the window.
    After,
}

impl Moment {
    /// The name used in run files.
    pub fn name(self) -> &'static str {
        match self {
            Moment::Before => "before",
            Moment::After => "after",
        }
    }
}

/// Version of the run file layout; bump on any change of keys or their meaning. Version 5 added
/// the totals' `accounts_liquidated`, `seize_checks` and `seize_consistent_percent` and the
/// liquidations' `missing` and `seize`, and Aave and Compound judge a liquidation of an account
/// without a rebuilt position `unknown-account` (before: `explained` or `amount-mismatch` by the
/// seize formula alone). Version 2 added
/// `health_distribution`; a version 1 file is a version 2 file without it. Version 3 added the
/// liquidations' `oracle` and `mismatch` evidence and the config's `quote_conversions` and Maker
/// `median_rule`. Version 4 added `health_over_time`, `leverage_over_time`, `liquidation_ladder`
/// and `overlap`; a version 3 file reads as one without them. Version 5 added `accounts`, the
/// totals' distinct accounts and seize counts, the liquidations' `missing` and `seize`, and made
/// an Aave or Compound liquidation without a rebuilt position `unknown-account`. Version 6 added
/// the unsafe episodes' `evidence` (their cause and the numbers behind it) and
/// `snapshot_differences`; a version 5 file reads as one without them.
pub const RUN_SCHEMA_VERSION: u32 = 6;

/// How many [`SnapshotDifferences`] a run lists: the first in log order (a snapshot of a
/// million accounts against a wrong history differs everywhere; the count says how much).
pub const SNAPSHOT_DIFFERENCES_LISTED: usize = 1_000;

/// The snapshots in the window that differed from the state the log had rebuilt
/// (`snapshot-differs-from-rebuilt`, one per account and asset): each replaced it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct SnapshotDifferences {
    /// All of them (the totals' `clamped` count).
    pub count: u64,
    /// The first [`SNAPSHOT_DIFFERENCES_LISTED`], in log order.
    pub listed: Vec<SnapshotDifferenceRecord>,
}

impl SnapshotDifferences {
    /// Whether no snapshot differed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// One account and asset whose snapshot differed from the rebuilt state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct SnapshotDifferenceRecord {
    /// The snapshot's time (written RFC 3339 UTC).
    pub time: Timestamp,
    /// Protocol (written by name).
    pub protocol: Protocol,
    /// Ilk, pool or comptroller.
    pub market: Id,
    /// The account.
    pub account: Id,
    /// The asset.
    pub asset: Id,
    /// What the log had rebuilt.
    pub rebuilt: SnapshotHolding,
    /// What the snapshot set (zeros for an asset it did not name: it was cleared).
    pub snapshot: SnapshotHolding,
}

/// One side of a [`SnapshotDifferenceRecord`], in base units as a positions export gives them
/// (Aave `balanceOf` amounts, Compound cTokens and borrow balance, Maker `ink` and `art`, totals
/// in the base currency's smallest unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct SnapshotHolding {
    /// Collateral.
    pub collateral: Amount,
    /// Debt.
    pub debt: Amount,
    /// Whether the collateral counts.
    pub collateral_enabled: bool,
}

/// The log a run was computed from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct LogInfo {
    /// First sequence number in the log (`None`: empty log).
    pub first_seq: Option<u64>,
    /// Last sequence number in the log.
    pub last_seq: Option<u64>,
    /// The log's content hash (hex), from its identity.
    pub content_hash: String,
}

/// The part of the log the run reports on (`--from`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct Window {
    /// Requested start time, RFC 3339 (`None`: from the start of the log).
    pub from_time: Option<String>,
    /// Requested end time (exclusive), RFC 3339; absent when the run goes to the end of the log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_time: Option<String>,
    /// First event reported on.
    pub first_seq: Option<u64>,
    /// Last event reported on.
    pub last_seq: Option<u64>,
    /// Events reported on.
    pub events: u64,
}

/// One liquidation in the run: recorded (historical mode, with a verdict) or simulated
/// (counterfactual mode). Times, protocols and ids are kept as values and written as text only
/// when the run is serialised: a million-account crash makes hundreds of thousands of records.
/// The evidence few verdicts carry (`mismatch`, `missing`, `seize`) is boxed: inline it was a
/// quarter of every record's 1,184 bytes. A box is written as its content (serde and wincode),
/// so the run file's bytes do not change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct LiquidationRecord {
    /// Log position of the event that caused it.
    pub seq: u64,
    /// Event time (written RFC 3339 UTC).
    pub time: Timestamp,
    /// `recorded` or `simulated`.
    pub origin: Origin,
    /// Protocol (written by name).
    pub protocol: Protocol,
    /// Ilk, pool or comptroller.
    pub market: Id,
    /// The account.
    pub account: Id,
    /// Transaction hash of a recorded liquidation (`0x` and 64 hex digits), where the source has
    /// it; not written otherwise. With `log_index`, the liquidation's identity across logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    /// Log index of a recorded liquidation within its block, where the source has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_index: Option<u32>,
    /// Verdict of a recorded liquidation; `null` for simulated ones.
    pub verdict: Option<Verdict>,
    /// Rule applied (`cat-bite`, `dog-bark`, ...).
    #[wincode(with = "wincode::adapter::FromInto<TextWire, Cow<'static, str>>")]
    pub rule: Cow<'static, str>,
    /// Cascade round of a simulated liquidation (1: triggered by a recorded price move, 2 and
    /// up: by the price impact of the round before); `null` for recorded ones.
    pub round: Option<u32>,
    /// Health at that moment (wad precision, decimal text).
    pub health: Option<Quantity>,
    /// Collateral asset.
    pub collateral_asset: Id,
    /// Collateral taken as recorded (or simulated), whole tokens.
    pub collateral_seized: Quantity,
    /// Collateral the protocol's formula gives, whole tokens.
    pub expected_collateral: Option<Quantity>,
    /// Debt asset.
    pub debt_asset: Id,
    /// Debt figure as recorded (or simulated), whole tokens.
    pub debt_repaid: Quantity,
    /// Debt figure the formula gives, whole tokens.
    pub expected_debt: Option<Quantity>,
    /// Debt left without collateral by this liquidation (simulated auctions), whole tokens.
    pub bad_debt: Option<Quantity>,
    /// Of the collateral seized, what the simulated liquidator sold (a Maker auction returns the
    /// rest to the vault), whole tokens; absent for recorded liquidations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collateral_sold: Option<Quantity>,
    /// Why a verdict is not `explained`.
    pub note: Option<String>,
    /// Recorded liquidations: the oracle price the verdict used and where it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle: Option<OracleEvidence>,
    /// `amount-mismatch` verdicts, and `unknown-account` ones whose seize check is a
    /// `mismatch`: which input would have to differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<Box<MismatchEvidence>>,
    /// `no-price` verdicts, and `unknown-account` ones whose seize check had no price: the
    /// input that was missing and its asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Box<MissingInput>>,
    /// `unknown-account` verdicts of Aave and Compound: the seize formula checked on the
    /// recorded amounts alone, the supporting evidence the log still allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seize: Option<Box<SeizeCheck>>,
}

/// The oracle price behind a verdict: its value, the feed and market point it came from, and,
/// for a verdict other than `explained`, the price at which the verdict would have flipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct OracleEvidence {
    /// The price the protocol's oracle rule read (Maker: the OSM value, USD, 18 decimals).
    pub price: Quantity,
    /// The feed whose answer gave it (for an interpolated value, the answer before the reading
    /// time).
    pub feed: Option<Id>,
    /// When that answer was the market price.
    pub observed: Option<Timestamp>,
    /// When the oracle read the market (Maker: the OSM's reading time, one `hop` before it
    /// published).
    pub read_at: Option<Timestamp>,
    /// `read_at - observed`: how old the answer was when the oracle read it.
    pub age_seconds: Option<i64>,
    /// Not `explained`: the highest oracle price at which the rebuilt account is liquidatable,
    /// computed with the protocol's integer arithmetic (Maker: `Spotter.poke` and the `Vat`'s
    /// `ink * spot < art * rate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub break_even_price: Option<Quantity>,
    /// `(break_even_price - price) / price` in percent, four decimals, rounded toward zero:
    /// negative when the oracle would have had to read lower.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_percent: Option<String>,
    /// Present when the price is the oracle's own recorded value (`--oracle recorded|auto` and
    /// the log holds one): which event recorded it. Absent: the price was estimated from the
    /// market feeds named by `feed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<RecordedOracle>,
}

/// The recorded oracle event a verdict's price came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct RecordedOracle {
    /// `osm-log-value` or `spotter-poke`.
    #[wincode(with = "wincode::adapter::FromInto<TextWire, Cow<'static, str>>")]
    pub event: Cow<'static, str>,
    /// The contract that emitted it.
    pub oracle: Id,
    /// When it was emitted.
    pub time: Timestamp,
}

impl OracleEvidence {
    /// Evidence for `price`, with the break-even price and its distance when given.
    pub fn new(
        price: Quantity,
        feed: Option<Id>,
        observed: Option<Timestamp>,
        read_at: Option<Timestamp>,
        break_even: Option<Quantity>,
    ) -> Self {
        let age_seconds = match (observed, read_at) {
            (Some(observed), Some(read_at)) => Some(read_at.0 - observed.0),
            _ => None,
        };
        let distance_percent = break_even
            .filter(|b| b.decimals == price.decimals && !price.value.is_zero())
            .map(|b| {
                let ppm = b
                    .value
                    .abs_diff(price.value)
                    .saturating_mul(U256::from(1_000_000u32))
                    / price.value;
                signed_decimal(b.value < price.value, ppm, 4)
            });
        Self {
            price,
            feed,
            observed,
            read_at,
            age_seconds,
            break_even_price: break_even,
            distance_percent,
            recorded: None,
        }
    }
}

/// For an `amount-mismatch`: which input of the rebuilt account (debt, collateral, a
/// liquidation limit) would have to differ, and by how much, for the formula to give the
/// recorded amounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct MismatchEvidence {
    /// `debt`, `collateral`, `liquidation-limit` or `debt-and-collateral`.
    #[wincode(with = "wincode::adapter::FromInto<TextWire, Cow<'static, str>>")]
    pub input: Cow<'static, str>,
    /// Signed decimal text in the input's unit: recorded minus rebuilt (negative: the rebuilt
    /// input is too high).
    pub difference: String,
    /// The reasoning in words.
    pub detail: String,
}

/// Which kind of input a judgement lacked.
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
pub enum InputKind {
    /// The oracle price of an asset (none recorded, or too old).
    Price,
    /// The token decimals of an asset (no parameter, mapping key or lookup gave them).
    Decimals,
    /// A Compound market's exchange rate (underlying per cToken).
    ExchangeRate,
    /// A Maker ilk's liquidation ratio `mat` (the Spotter never filed one).
    LiquidationRatio,
    /// An Aave reserve's `liquidationBonus` (no parameter set it).
    LiquidationBonus,
}

impl InputKind {
    /// The name used in run files.
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Price => "price",
            InputKind::Decimals => "decimals",
            InputKind::ExchangeRate => "exchange-rate",
            InputKind::LiquidationRatio => "liquidation-ratio",
            InputKind::LiquidationBonus => "liquidation-bonus",
        }
    }
}

/// An input a judgement could not do without, and the asset it belongs to (for
/// `liquidation-ratio`, the Maker ilk).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct MissingInput {
    /// Which input.
    pub input: InputKind,
    /// Its asset (or ilk).
    pub asset: Id,
}

impl MissingInput {
    /// `input` of `asset`.
    pub fn new(input: InputKind, asset: Id) -> Self {
        Self { input, asset }
    }
}

impl fmt::Display for MissingInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let input = match self.input {
            InputKind::ExchangeRate => "exchange rate",
            InputKind::LiquidationRatio => "liquidation ratio",
            InputKind::LiquidationBonus => "liquidation bonus",
            other => other.name(),
        };
        write!(f, "{input} of {}", self.asset)
    }
}

/// What the seize formula says of a recorded liquidation's amounts on their own.
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
pub enum SeizeResult {
    /// The formula gives the recorded collateral for the recorded repayment (or the collateral
    /// cap explains the pair), within the documented tolerance.
    Consistent,
    /// It gives another amount (`expected_collateral`, and `mismatch` for Aave).
    Mismatch,
    /// A price, decimals or exchange rate it needs is unknown (`missing` names it).
    NoPrice,
}

impl SeizeResult {
    /// Every result, in output order.
    pub const ALL: [SeizeResult; 3] = [
        SeizeResult::Consistent,
        SeizeResult::Mismatch,
        SeizeResult::NoPrice,
    ];

    /// The name used in run files.
    pub fn name(self) -> &'static str {
        match self {
            SeizeResult::Consistent => "consistent",
            SeizeResult::Mismatch => "mismatch",
            SeizeResult::NoPrice => "no-price",
        }
    }
}

/// The seize formula (Aave `_calculateAvailableCollateralToLiquidate`, Compound
/// `liquidateCalculateSeizeTokens`) applied to a recorded liquidation of an account the log
/// never positioned: whether the recorded collateral follows from the recorded repayment, the
/// bonus and the prices, and the inputs it used. Health and close factor stay unchecked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct SeizeCheck {
    /// `consistent`, `mismatch` or `no-price`.
    pub result: SeizeResult,
    /// The bonus applied, as a factor (Aave `liquidationBonus` 10500 bps: `1.05`; Compound
    /// `liquidationIncentiveMantissa`: `1.08`).
    pub bonus: Option<Quantity>,
    /// The collateral asset's oracle price in the protocol's base currency, when known.
    pub collateral_price: Option<Quantity>,
    /// The debt asset's.
    pub debt_price: Option<Quantity>,
    /// Compound: the collateral market's `exchangeRateStored` mantissa (18 decimals, as the
    /// contract holds it), when known. Absent for Aave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_rate: Option<Quantity>,
}

/// `part / whole` in percent with two decimals, rounded half up, as text (`"17.23"`): the
/// form of the totals' percentages. `whole` must not be zero.
pub fn percent(part: u64, whole: u64) -> String {
    let basis_points =
        (u128::from(part) * 10_000 * 2 + u128::from(whole)) / (2 * u128::from(whole));
    format!("{}.{:02}", basis_points / 100, basis_points % 100)
}

/// `value / 10^decimals` as decimal text with a leading `-` when `negative` (and non-zero).
pub fn signed_decimal(negative: bool, value: U256, decimals: u8) -> String {
    let text = decimal(value, decimals);
    if negative && !value.is_zero() {
        format!("-{text}")
    } else {
        text
    }
}

/// The unsafe episodes of one cause ([`Run::episodes_by_cause`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CauseGroup {
    /// The cause.
    pub cause: EpisodeCause,
    /// Episodes with it.
    pub episodes: u64,
    /// Distinct accounts among them.
    pub accounts: u64,
    /// Their `seconds`, summed.
    pub seconds: i64,
}

/// A stretch of time during which every check found an account liquidatable and no recorded
/// liquidation of it happened. Checks run when a price the protocol reads changes (for Maker:
/// each OSM poke), so `seconds` counts from the first check that found it unsafe to the last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct UnsafeEpisode {
    /// Protocol name.
    pub protocol: String,
    /// Ilk, pool or comptroller.
    pub market: String,
    /// The account.
    pub account: String,
    /// First check that found it unsafe, RFC 3339.
    pub from: String,
    /// Last check that found it unsafe, RFC 3339.
    pub to: String,
    /// `to - from`.
    pub seconds: i64,
    /// Whether it was still unsafe at the end of the log.
    pub open_at_end: bool,
    /// Why keepers could leave it alone, and what the checks saw; absent for protocols whose
    /// model gives no evidence (only Maker does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EpisodeEvidence>,
}

/// The cause of an unsafe episode, by the first rule that holds (docs/fidelity.md, "The other
/// way round", gives the rules and why in this order).
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
pub enum EpisodeCause {
    /// The contract's liquidation call would have reverted at every check (Maker `Dog.bark`:
    /// `liquidation-limit-hit`, `dusty-auction-from-partial-liquidation`; `Cat.bite`:
    /// `liquidation-limit-hit`): no keeper could act.
    LiquidationRefused,
    /// What next happened to the account after the stretch shows its rebuilt debt higher than
    /// the chain's (its next recorded liquidation is an `amount-mismatch` in debt, or the engine
    /// had to clear debt the export never repaid), by at least what would make it safe at its
    /// lowest check, or what would bring it within the price evidence's error there: its health
    /// was not the chain's.
    RebuiltStateDisagrees,
    /// Its debt stayed below the protocol's `dust` at every check: an auction too small to
    /// pay a keeper's gas (nothing in the contracts forbids it).
    BelowDust,
    /// Its lowest health stayed within the estimated oracle price's measured error of the
    /// threshold (the Median's 1% spread plus the error of the feed that priced that check:
    /// docs/fidelity.md, "How far each feed is off").
    PriceEvidence,
    /// Unsafe by more than that error at some check, with none of the causes above.
    Unexplained,
}

impl EpisodeCause {
    /// Every cause, in precedence order.
    pub const ALL: [EpisodeCause; 5] = [
        EpisodeCause::LiquidationRefused,
        EpisodeCause::RebuiltStateDisagrees,
        EpisodeCause::BelowDust,
        EpisodeCause::PriceEvidence,
        EpisodeCause::Unexplained,
    ];

    /// The name used in run files and reports.
    pub fn name(self) -> &'static str {
        match self {
            EpisodeCause::LiquidationRefused => "liquidation-refused",
            EpisodeCause::RebuiltStateDisagrees => "rebuilt-state-disagrees",
            EpisodeCause::BelowDust => "below-dust",
            EpisodeCause::PriceEvidence => "price-evidence",
            EpisodeCause::Unexplained => "unexplained",
        }
    }
}

/// What the checks of an unsafe episode saw, and the cause decided from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct EpisodeEvidence {
    /// The cause.
    pub cause: EpisodeCause,
    /// Checks that found it unsafe.
    pub checks: u64,
    /// Its lowest health over those checks (Maker: `ink * spot / (art * rate)`).
    pub lowest_health: Quantity,
    /// Its highest health over those checks.
    pub highest_health: Quantity,
    /// Checks at which the contract's liquidation call would have reverted.
    pub refused_checks: u64,
    /// The revert reason of the last such check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// The least room the liquidation limits left (Maker: `min(Hole - Dirt, hole - dirt)` or
    /// `box - litter`, DAI); absent when unlimited at every check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub least_room: Option<Quantity>,
    /// Its debt at the check of lowest health.
    pub debt: Quantity,
    /// The protocol's `dust` at that check.
    pub dust: Quantity,
    /// Checks at which its debt was below `dust`.
    pub below_dust_checks: u64,
    /// The feed behind the oracle price at the check of lowest health (the oracle contract for
    /// a recorded value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feed: Option<Id>,
    /// The oldest market price the oracle read over the checks, seconds (estimated prices).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_price_seconds: Option<i64>,
    /// Checks priced by the oracle's own recorded value.
    pub recorded_checks: u64,
    /// For `rebuilt-state-disagrees`: what showed the rebuilt account wrong after the stretch,
    /// `amount-mismatch` (its next recorded liquidation) or `missing-repayment-inferred` (the
    /// engine had to clear debt the export never repaid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disagreement: Option<String>,
    /// When it did (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disagreement_at: Option<String>,
    /// By how much the rebuilt debt was higher than the chain's there (the debt cleared, or
    /// the rebuilt minus the recorded debt of the liquidation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excess_debt: Option<Quantity>,
}

/// One risk snapshot of one market, taken when the price its oracle reads or its state changed
/// (markets without an oracle price yet have none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct TimelinePoint {
    /// The event at which the snapshot was taken: before it is applied when a scheduled oracle
    /// update at its time triggered the snapshot (an OSM poke), after it otherwise.
    pub seq: u64,
    /// Its time (written RFC 3339 UTC).
    pub time: Timestamp,
    /// Protocol name.
    pub protocol: String,
    /// Ilk, pool or comptroller.
    pub market: String,
    /// Price the protocol's oracle rule reads.
    pub oracle_price: Option<Quantity>,
    /// For markets with no single oracle price (an Aave pool, a Compound Comptroller): the
    /// price update that moved a price the market reads and triggered the snapshot. Absent
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<PriceTrigger>,
    /// Accounts liquidatable.
    pub accounts_unsafe: u64,
    /// Collateral value of those accounts, base currency.
    pub collateral_at_risk: Quantity,
    /// Their debt, base currency.
    pub debt_at_risk: Quantity,
    /// Debt above the market value of its collateral, base currency.
    pub bad_debt: Quantity,
}

/// The price update behind a timeline point of a market priced per asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct PriceTrigger {
    /// The asset whose price moved.
    pub asset: String,
    /// What it is priced in (`USD`, `ETH`).
    pub quote: String,
    /// The new price, as the update gave it (after a scenario's transform in counterfactual
    /// runs).
    pub price: Quantity,
}

/// One market's accounts by health factor at one moment of the run (`docs/run-format.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct HealthSnapshot {
    /// `before`: at the onset of the crisis in the window (the first check that found an account
    /// of the protocol liquidatable, or its first recorded liquidation, whichever came first;
    /// taken before any liquidation at that moment); `after`: after the last event of the window.
    pub moment: Moment,
    /// The event at which it was taken.
    pub seq: u64,
    /// Its time (written RFC 3339 UTC).
    pub time: Timestamp,
    /// Protocol name.
    pub protocol: String,
    /// Ilk, pool or comptroller.
    pub market: String,
    /// Accounts with debt per health bucket, lowest first (every bucket present).
    pub buckets: Vec<HealthBucket>,
    /// Accounts with collateral and no debt.
    pub accounts_without_debt: u64,
    /// Accounts with debt whose health could not be computed (no price).
    pub accounts_unpriced: u64,
}

/// One market's accounts by health factor at the end of one period of the window: an hour, or
/// on a long window a longer period of its coarse grid, except around liquidations and newly
/// liquidatable accounts, which keep their hours (`docs/run-format.md`, `health_over_time`).
/// What the report's heat map draws.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct HealthSample {
    /// Start of the period (a whole UTC hour; written RFC 3339 UTC).
    pub period: Timestamp,
    /// Length of the period, seconds (3600, or longer on a long window's grid).
    pub period_seconds: i64,
    /// The last event of the period in the window: the sample shows the state after it and the
    /// checks of its second (the liquidations they made, in counterfactual runs).
    pub seq: u64,
    /// Its time (written RFC 3339 UTC).
    pub time: Timestamp,
    /// Protocol name.
    pub protocol: String,
    /// Ilk, pool or comptroller.
    pub market: String,
    /// Accounts with debt per health bucket, lowest first (every bucket present).
    pub buckets: Vec<HealthBucket>,
    /// Accounts with collateral and no debt.
    pub accounts_without_debt: u64,
    /// Accounts with debt whose health could not be computed (no price).
    pub accounts_unpriced: u64,
}

/// Every position of the window at the end of one period (the periods of `health_over_time`),
/// summarised for one protocol or for all of them (`docs/leverage.md` defines each figure).
/// Values are in USD with 18 decimals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct LeverageSample {
    /// Start of the period (written RFC 3339 UTC).
    pub period: Timestamp,
    /// Length of the period, seconds.
    pub period_seconds: i64,
    /// The period's last event in the window.
    pub seq: u64,
    /// Its time (written RFC 3339 UTC).
    pub time: Timestamp,
    /// A protocol name (its positions one by one), or `all` (each owner's positions in every
    /// protocol taken together).
    pub scope: String,
    /// Positions (owners for `all`) with collateral or debt.
    pub accounts: u64,
    /// Of them, with debt.
    pub accounts_with_debt: u64,
    /// Of them, with looped debt.
    pub looped_accounts: u64,
    /// Accounts with debt by effective leverage (exposure / equity).
    pub leverage: Vec<CountBucket>,
    /// Accounts with debt by loan to value (debt / collateral).
    pub ltv: Vec<CountBucket>,
    /// Accounts with debt and equity by loop depth.
    pub loop_depth: Vec<CountBucket>,
    /// Collateral value, USD.
    pub collateral: Quantity,
    /// Debt value, USD.
    pub debt: Quantity,
    /// Looped debt, USD.
    pub looped_debt: Quantity,
    /// Share of `collateral` held by the largest 10, 100 and 1000 accounts, percent with two
    /// decimals, by N.
    pub top_share_percent: BTreeMap<String, String>,
    /// Positions left out because their value in USD is unknown (a price missing).
    pub unpriced: u64,
}

/// Accounts in one bucket of a [`LeverageSample`] distribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct CountBucket {
    /// The bucket (`1.5-2`, `underwater`, `>=5`).
    #[wincode(with = "wincode::adapter::FromInto<TextWire, Cow<'static, str>>")]
    pub range: Cow<'static, str>,
    /// Accounts in it.
    pub accounts: u64,
}

/// The rungs of a liquidation ladder, as [`LadderRung::fall`] names them: liquidatable already,
/// each 5% of price fall up to 50%, then beyond.
pub const LADDER_FALLS: [&str; 12] = [
    "now", "0-5%", "5-10%", "10-15%", "15-20%", "20-25%", "25-30%", "30-35%", "35-40%", "40-45%",
    "45-50%", ">=50%",
];

/// Where a [`LadderRung`] or an [`OverlapReport`] was taken.
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
pub enum BookMoment {
    /// The end of the first period of the window with positions.
    Start,
    /// The end of the window (the `after` state).
    End,
}

/// One rung of the liquidation ladder: the positions whose main collateral, in one correlation
/// group, makes them liquidatable after a price fall within the rung, every other price held
/// (`docs/leverage.md`). Values USD, 18 decimals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct LadderRung {
    /// `start` or `end`.
    pub moment: BookMoment,
    /// The event at which it was taken.
    pub seq: u64,
    /// Its time.
    pub time: Timestamp,
    /// Correlation group of the main collateral (`ETH`, `BTC`, or the asset itself).
    pub group: String,
    /// The fall of its price: `now` (liquidatable already), `0-5%`, ..., `>=50%`.
    #[wincode(with = "wincode::adapter::FromInto<TextWire, Cow<'static, str>>")]
    pub fall: Cow<'static, str>,
    /// Positions.
    pub accounts: u64,
    /// Their main collateral's value.
    pub collateral: Quantity,
    /// Their debt.
    pub debt: Quantity,
    /// `collateral` per protocol.
    pub by_protocol: BTreeMap<String, Quantity>,
}

/// What the protocols of a run share at one moment (`docs/leverage.md`). Values USD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct OverlapReport {
    /// `start` or `end`.
    pub moment: BookMoment,
    /// The event at which it was taken.
    pub seq: u64,
    /// Its time.
    pub time: Timestamp,
    /// Owners with positions in several protocols, per set of protocols.
    pub owners: Vec<OverlapOwners>,
    /// Collateral of those owners per protocol and correlation group.
    pub shared_collateral: Vec<GroupAmount>,
    /// Debt that depends on a group's price, per group and protocol.
    pub debt_on_group: Vec<GroupAmount>,
    /// Loops across protocols: borrowed in one, collateral in another.
    pub cross_loops: Vec<CrossLoop>,
    /// Of a counterfactual run of several protocols, at `end`: each protocol's simulated
    /// liquidations by what triggered them (the price path, its own protocol's sales, another
    /// protocol's sales). Written only when there are some, so other files read as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub liquidations_by_trigger: Vec<TriggeredLiquidations>,
}

/// Simulated liquidations of one protocol with one trigger and debt asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct TriggeredLiquidations {
    /// Protocol name.
    pub protocol: String,
    /// `price-path` (cascade round 1), `own-protocol-sales` or `other-protocol-sales` (the
    /// protocol of the liquidation whose sale displaced the price most).
    pub trigger: String,
    /// The debt asset repaid.
    pub debt_asset: String,
    /// How many liquidations.
    pub liquidations: u64,
    /// Debt they repaid, whole tokens of `debt_asset`.
    pub debt_repaid: Quantity,
}

/// Owners present in one set of protocols.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct OverlapOwners {
    /// The protocols.
    pub protocols: Vec<String>,
    /// How many owners.
    pub owners: u64,
}

/// An amount of one protocol and correlation group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct GroupAmount {
    /// Correlation group.
    pub group: String,
    /// Protocol name.
    pub protocol: String,
    /// Value, USD.
    pub value: Quantity,
}

/// Value borrowed in one protocol and held (or a correlated asset) as collateral in another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct CrossLoop {
    /// Where it is borrowed.
    pub borrowed_in: String,
    /// Where it is collateral.
    pub collateral_in: String,
    /// Correlation group.
    pub group: String,
    /// Value, USD.
    pub value: Quantity,
}

/// Most accounts liquidated in the run an [`AccountRecord`] list keeps per market: those of the
/// largest debt.
pub const ACCOUNTS_LIQUIDATED_PER_MARKET: usize = 100;
/// Accounts of the lowest health at the window's start an [`AccountRecord`] list keeps per
/// market (the same accounts in every run of one log and window).
pub const ACCOUNTS_LOWEST_HEALTH_PER_MARKET: usize = 50;
/// Accounts of the largest debt at the window's start an [`AccountRecord`] list keeps per
/// market (the same accounts in every run of one log and window).
pub const ACCOUNTS_LARGEST_DEBT_PER_MARKET: usize = 20;

/// Why an account is in the run's `accounts` list.
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
pub enum Listed {
    /// Liquidated in this run.
    Liquidated,
    /// Among the lowest health factors of its market at the window's start.
    LowestHealth,
    /// Among the largest debts of its market at the window's start.
    LargestDebt,
}

/// One account a post-mortem looks at, at the window's start and end (`docs/run-format.md`,
/// `accounts`): the accounts liquidated in the run, and the accounts of the lowest health and
/// of the largest debt at the window's start, per market, each bounded (the constants above).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct AccountRecord {
    /// Protocol name.
    pub protocol: String,
    /// Ilk, pool or comptroller.
    pub market: String,
    /// The account (Maker: the urn).
    pub account: String,
    /// Why it is listed, in [`Listed`] order.
    pub listed: Vec<Listed>,
    /// Liquidations of it in the run.
    pub liquidations: u32,
    /// Collateral taken from it by those liquidations per asset, whole tokens.
    pub collateral_seized: BTreeMap<String, Quantity>,
    /// Its position as the window opened; `null` when it had none then.
    pub start: Option<AccountState>,
    /// Its position after the window's last event; `null` when it had none then.
    pub end: Option<AccountState>,
}

/// An [`AccountRecord`]'s position at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct AccountState {
    /// The moment: the state before this event was applied (`start`) or after it (`end`).
    pub seq: u64,
    /// Its time (written RFC 3339 UTC).
    pub time: Timestamp,
    /// Health factor as the protocol computes it (wad precision); `null` without debt or when
    /// an input is missing.
    pub health: Option<Quantity>,
    /// The protocol's base currency (`DAI`, `ETH`, `USD`).
    pub base_currency: String,
    /// Collateral the protocol counts, base currency; `null` when an input is missing.
    pub collateral_value: Option<Quantity>,
    /// Debt, base currency; `null` when an input is missing.
    pub debt_value: Option<Quantity>,
    /// Per asset held or owed: collateral and debt in whole tokens.
    pub assets: Vec<AccountAsset>,
    /// The first input the health factor misses (`price of WBTC`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

/// One asset of an [`AccountState`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct AccountAsset {
    /// The asset.
    pub asset: String,
    /// Collateral, whole tokens; `null` when the token's decimals are unknown.
    pub collateral: Option<Quantity>,
    /// Debt, whole tokens; `null` when the token's decimals are unknown.
    pub debt: Option<Quantity>,
}

/// One health bucket of a [`HealthSnapshot`] or [`HealthSample`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct HealthBucket {
    /// Health factor range, `[low, high)` (`<1`, `1-1.05`, ..., `>=3`).
    #[wincode(with = "wincode::adapter::FromInto<TextWire, Cow<'static, str>>")]
    pub range: Cow<'static, str>,
    /// Accounts in it.
    pub accounts: u64,
    /// Their debt, protocol base currency.
    pub debt: Quantity,
}

/// Engine settings that shape results (`config`). Keys are declared in sorted order, the order
/// the file has always had them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct RunConfig {
    /// Price feeds preferred per asset, in order.
    pub feed_priority: Vec<String>,
    /// Maker's oracle and tolerance settings (written by Maker's registry entry, so present
    /// whenever Maker is registered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maker: Option<MakerSettings>,
    /// How many cascade rounds a counterfactual run follows at one moment.
    pub max_cascade_rounds: u32,
    /// The parameter history given with `--params`; absent when none was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ParamHistoryEntry>,
    /// Quote currencies converted into others (USDT to USD) and the oldest rate used (version 3).
    #[serde(default)]
    pub quote_conversions: Vec<QuoteConversionSetting>,
    /// Seconds an account must stay unsafe to count as an unsafe, unliquidated episode.
    pub unsafe_threshold_seconds: i64,
}

/// Maker's settings in a [`RunConfig`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct MakerSettings {
    /// Collateral a recorded bite may differ from the formula by, whole tokens.
    pub collateral_tolerance: Quantity,
    /// Debt a recorded bite may differ from the formula by, parts per million.
    pub debt_tolerance_ppm: u64,
    /// Seconds each feed's prices lag the market.
    pub feed_lag_seconds: BTreeMap<String, i64>,
    /// A price older than this is not used, seconds.
    pub max_price_age_seconds: i64,
    /// The medianizer's rule when the OSM samples a median; `null` otherwise (version 3).
    #[serde(default)]
    pub median_rule: Option<MedianRuleSetting>,
    /// The oracle mode, written only when it is not the default `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle: Option<String>,
    /// The OSM's delay, seconds.
    pub osm_hop_seconds: i64,
    /// What the OSM samples (`median`, `latest`, ...).
    pub osm_sample: String,
    /// The assets whose prices price each collateral.
    pub price_assets: BTreeMap<String, Vec<String>>,
    /// The currency Maker prices are read in.
    pub quote: String,
}

/// The medianizer rule of [`MakerSettings`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct MedianRuleSetting {
    /// A feed's answer older than this is left out, seconds.
    pub expiration_seconds: i64,
    /// How often the medianizer is polled, seconds.
    pub poll_seconds: i64,
    /// How far feeds may spread before the median moves, basis points.
    pub spread_bps: u32,
}

/// One quote conversion of a [`RunConfig`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct QuoteConversionSetting {
    /// The quote converted.
    pub from: String,
    /// The oldest conversion rate used, seconds.
    pub max_age_seconds: i64,
    /// The quote it is converted into.
    pub to: String,
}

/// One entry of the parameter history of a [`RunConfig`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct ParamHistoryEntry {
    /// Market; `null` for a protocol-wide parameter.
    pub market: Option<String>,
    /// Parameter name.
    pub param: String,
    /// Protocol name.
    pub protocol: String,
    /// Where the value comes from.
    pub source: String,
    /// From when, RFC 3339.
    pub time: Timestamp,
    /// The value, as written.
    pub value: Fixed,
}

/// What a counterfactual scenario observed over the run (`counterfactual`,
/// `docs/scenarios.md`). Keys are declared in sorted order, the order the file has them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct CounterfactualReport {
    /// Whether the scenario changes nothing (the baseline run).
    pub baseline: bool,
    /// The cascade graph's shape.
    pub cascade: CascadeReport,
    /// The price-impact multiplier of each impacted asset after the last liquidation, ray
    /// precision.
    pub impact_multiplier_after_last_liquidation: BTreeMap<String, Quantity>,
    /// The scenario's label.
    pub label: String,
    /// The liquidations with the largest losses and the chains that led to them.
    pub largest_losses: Vec<LargestLoss>,
    /// What the simulated liquidator did.
    pub liquidator: LiquidatorReport,
}

/// The cascade graph of a [`CounterfactualReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct CascadeReport {
    /// Impact-triggered liquidations whose main cause was another protocol's sales, grouped by
    /// the hour and market of both sides. Written only when there are some, so files of one
    /// protocol (and older files) read and compare as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cross_protocol: Vec<CrossProtocolLink>,
    /// The deepest round.
    pub depth: u32,
    /// Liquidations and loss per round (keys are round numbers as text).
    pub rounds: BTreeMap<String, RoundReport>,
    /// Liquidations triggered by the price impact of earlier ones.
    pub triggered_by_impact: u64,
    /// Liquidations triggered by a recorded price move.
    pub triggered_by_price_move: u64,
}

/// One cross-protocol link of a [`CascadeReport`]: "`cause_protocol` `cause_market`
/// liquidations at `cause_time` moved `asset` `price_moved_percent`%, which made `accounts`
/// `effect_protocol` accounts liquidatable at `effect_time`".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct CrossProtocolLink {
    /// Distinct accounts liquidated on the effect side.
    pub accounts: u32,
    /// The asset whose price the sales moved.
    pub asset: String,
    /// Market of the sales.
    pub cause_market: String,
    /// Protocol of the sales.
    pub cause_protocol: String,
    /// How many liquidations of the cause side were a main cause.
    pub cause_sales: u32,
    /// The earliest of them (the group is the hour from its start).
    pub cause_time: Timestamp,
    /// Market of the liquidations triggered.
    pub effect_market: String,
    /// Their protocol.
    pub effect_protocol: String,
    /// The earliest of them (the group is the hour from its start).
    pub effect_time: Timestamp,
    /// Liquidations triggered.
    pub liquidations: u32,
    /// The largest displacement of the price by the cause side's sales that one of them saw,
    /// percent of the price (ray precision).
    pub price_moved_percent: Quantity,
}

/// One round of a [`CascadeReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct RoundReport {
    /// Liquidations in the round.
    pub liquidations: u32,
    /// Their loss, base currency (wad precision).
    pub loss: Quantity,
}

/// One of the largest losses of a [`CounterfactualReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct LargestLoss {
    /// The account.
    pub account: String,
    /// The liquidations that led to it, root first.
    pub chain: Vec<ChainLink>,
    /// Its loss, base currency (wad precision).
    pub loss: Quantity,
    /// Market.
    pub market: String,
    /// Protocol name.
    pub protocol: String,
    /// Cascade round.
    pub round: u32,
    /// When it was liquidated.
    pub time: Timestamp,
}

/// One liquidation of a [`LargestLoss`]'s chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct ChainLink {
    /// The account.
    pub account: String,
    /// Cascade round.
    pub round: u32,
    /// When it was liquidated.
    pub time: Timestamp,
}

/// The simulated liquidator's statistics in a [`CounterfactualReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct LiquidatorReport {
    /// Collateral it sold per asset, whole tokens (wad precision).
    pub collateral_sold: BTreeMap<String, Quantity>,
    /// Candidates it passed over, per reason.
    pub passed: BTreeMap<String, u64>,
    /// What it lost to price impact and fees, quote tokens (wad precision).
    pub slippage: Quantity,
}

/// Counts and sums over the window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct Totals {
    /// Events reported on.
    pub events: u64,
    /// Events per kind.
    pub by_kind: BTreeMap<String, u64>,
    /// Liquidations (recorded in historical mode, simulated in counterfactual mode).
    pub liquidations: u64,
    /// Distinct accounts (protocol, market, account) those liquidations hit; absent from files
    /// before schema version 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts_liquidated: Option<u64>,
    /// Recorded liquidations per verdict name (every verdict present, zero included).
    pub verdicts: BTreeMap<String, u64>,
    /// Recorded liquidations skipped because a scenario replaces them with the simulated
    /// liquidator.
    pub recorded_liquidations_skipped: u64,
    /// Share of recorded liquidations `explained`, in percent with two decimals (`"93.75"`).
    pub explained_percent: Option<String>,
    /// `unknown-account` liquidations whose seize formula was checked, per result name (every
    /// result present); empty, and not written, when there were none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub seize_checks: BTreeMap<String, u64>,
    /// Share of those checks `consistent`, percent with two decimals; absent without checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seize_consistent_percent: Option<String>,
    /// Collateral seized per asset, whole tokens.
    pub collateral_seized: BTreeMap<String, Quantity>,
    /// Debt repaid per asset, whole tokens.
    pub debt_repaid: BTreeMap<String, Quantity>,
    /// Bad debt left by liquidations per asset, whole tokens.
    pub bad_debt: BTreeMap<String, Quantity>,
    /// Events applied after clamping, per reason.
    pub clamped: BTreeMap<String, u64>,
    /// Events skipped, per reason.
    pub skipped: BTreeMap<String, u64>,
    /// Episodes of accounts unsafe for at least the threshold and never liquidated in them.
    pub unsafe_unliquidated: u64,
    /// The threshold for those episodes, seconds.
    pub unsafe_threshold_seconds: i64,
}

/// A whole run: what `cascade replay --out` writes and `cascade check` compares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, SchemaWrite, SchemaRead)]
pub struct Run {
    /// [`RUN_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The log replayed.
    pub log: LogInfo,
    /// The part reported on.
    pub window: Window,
    /// The scenario (`null` in historical mode).
    #[serde(serialize_with = "scenario::sorted")]
    pub scenario: Option<ScenarioInfo>,
    /// Engine settings that shape results (oracle delay, tolerances).
    pub config: RunConfig,
    /// blake3 of the final engine state (hex).
    pub state_hash: String,
    /// Counts and sums.
    pub totals: Totals,
    /// Snapshots that differed from the rebuilt state; absent when none did (and before schema
    /// version 6).
    #[serde(default, skip_serializing_if = "SnapshotDifferences::is_empty")]
    pub snapshot_differences: SnapshotDifferences,
    /// Liquidations in log order.
    pub liquidations: Vec<LiquidationRecord>,
    /// Unsafe-and-never-liquidated episodes longer than the threshold.
    pub unsafe_unliquidated: Vec<UnsafeEpisode>,
    /// Risk snapshots in log order.
    pub timeline: Vec<TimelinePoint>,
    /// Health distributions per market `before` and `after`, sorted by protocol, market and
    /// moment (`before` first); absent from schema version 1 files.
    #[serde(default)]
    pub health_distribution: Vec<HealthSnapshot>,
    /// Health distributions per market at the end of every period of the window, sorted by
    /// period, protocol and market; absent from files before schema version 4.
    #[serde(default)]
    pub health_over_time: Vec<HealthSample>,
    /// Leverage, LTV, loop depth and concentration per protocol and over all at the end of
    /// every period, sorted by period then scope (protocols in canonical order, `all` last);
    /// absent before schema version 4 and from runs whose models list no positions.
    #[serde(default)]
    pub leverage_over_time: Vec<LeverageSample>,
    /// The liquidation ladder at the window's `start` and `end`, by moment, group and fall.
    #[serde(default)]
    pub liquidation_ladder: Vec<LadderRung>,
    /// The overlap between protocols at the window's `start` and `end`.
    #[serde(default)]
    pub overlap: Vec<OverlapReport>,
    /// The accounts a post-mortem looks at, each at the window's start and end, by protocol,
    /// market and account; absent before schema version 5 ([`AccountRecord`] says which).
    #[serde(default)]
    pub accounts: Vec<AccountRecord>,
    /// What a counterfactual scenario observed (cascade graph, liquidator statistics); absent
    /// from historical runs (`docs/scenarios.md`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterfactual: Option<CounterfactualReport>,
}

/// The forms a run file takes (`docs/run-format.md`), chosen by the file's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunForm {
    /// One pretty JSON document (any name not below).
    Json,
    /// JSON lines ([`lines`]): a name ending in `.jsonl`.
    Lines,
    /// The compact binary form ([`binary`]): a name ending in `.bin` (`run.run.bin`).
    Binary,
}

impl RunForm {
    /// The form a file named `path` is written in.
    pub fn of(path: &std::path::Path) -> RunForm {
        match path.extension().and_then(|extension| extension.to_str()) {
            Some("jsonl") => RunForm::Lines,
            Some("bin") => RunForm::Binary,
            _ => RunForm::Json,
        }
    }
}

impl Run {
    /// The run as pretty JSON with a trailing newline: the bytes `--out` writes.
    pub fn to_json(&self) -> Vec<u8> {
        self.to_bytes(RunForm::Json)
    }

    /// The run in `form`.
    pub fn to_bytes(&self, form: RunForm) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.write(form, &mut bytes)
            .expect("writing to memory does not fail");
        bytes
    }

    /// Writes the run in `form` to `out` as it goes: no copy of the run, no document built
    /// first (a 300,000-account run is hundreds of megabytes).
    pub fn write(&self, form: RunForm, mut out: impl std::io::Write) -> std::io::Result<()> {
        match form {
            RunForm::Json => {
                serde_json::to_writer_pretty(&mut out, self)?;
                out.write_all(b"\n")?;
                out.flush()
            }
            RunForm::Lines => lines::write_lines(self, out),
            RunForm::Binary => binary::write_binary(self, out),
        }
    }

    /// The unsafe episodes whose model gave evidence, grouped by cause in precedence order
    /// (causes without an episode left out): episodes, distinct accounts and total seconds.
    pub fn episodes_by_cause(&self) -> Vec<CauseGroup> {
        EpisodeCause::ALL
            .iter()
            .filter_map(|cause| {
                let episodes: Vec<&UnsafeEpisode> = self
                    .unsafe_unliquidated
                    .iter()
                    .filter(|e| e.evidence.as_ref().is_some_and(|v| v.cause == *cause))
                    .collect();
                let accounts: std::collections::BTreeSet<(&str, &str, &str)> = episodes
                    .iter()
                    .map(|e| (e.protocol.as_str(), e.market.as_str(), e.account.as_str()))
                    .collect();
                (!episodes.is_empty()).then(|| CauseGroup {
                    cause: *cause,
                    episodes: episodes.len() as u64,
                    accounts: accounts.len() as u64,
                    seconds: episodes.iter().map(|e| e.seconds).sum(),
                })
            })
            .collect()
    }

    /// A short human summary for stdout.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let t = &self.totals;
        out.push_str(&format!(
            "events {} (seq {}..{}), liquidations {}{}\n",
            t.events,
            self.window
                .first_seq
                .map_or("-".to_owned(), |s| s.to_string()),
            self.window
                .last_seq
                .map_or("-".to_owned(), |s| s.to_string()),
            t.liquidations,
            t.accounts_liquidated.map_or(String::new(), |accounts| {
                format!(
                    " ({accounts} {})",
                    if accounts == 1 { "account" } else { "accounts" }
                )
            })
        ));
        if self.scenario.is_none() {
            let verdicts: Vec<String> = t
                .verdicts
                .iter()
                .map(|(name, count)| format!("{name} {count}"))
                .collect();
            out.push_str(&format!(
                "verdicts: {} (explained {}%)\n",
                verdicts.join(", "),
                t.explained_percent.as_deref().unwrap_or("-")
            ));
            if !t.seize_checks.is_empty() {
                let checks: Vec<String> = t
                    .seize_checks
                    .iter()
                    .map(|(name, count)| format!("{name} {count}"))
                    .collect();
                out.push_str(&format!(
                    "unknown-account seize checks: {} (consistent {}%)\n",
                    checks.join(", "),
                    t.seize_consistent_percent.as_deref().unwrap_or("-")
                ));
            }
        }
        // Amounts as the report shows them (fixed decimals per unit, thousands separators); the
        // run file keeps the exact digits.
        let amount = |amount: &Quantity, asset: &str| num::Num::of(amount).amount(asset);
        for (asset, seized) in &t.collateral_seized {
            out.push_str(&format!("collateral seized: {}\n", amount(seized, asset)));
        }
        for (asset, repaid) in &t.debt_repaid {
            out.push_str(&format!("debt repaid: {}\n", amount(repaid, asset)));
        }
        for (asset, bad) in &t.bad_debt {
            out.push_str(&format!("bad debt: {}\n", amount(bad, asset)));
        }
        let by_cause: Vec<String> = self
            .episodes_by_cause()
            .iter()
            .map(|group| format!("{} {}", group.cause.name(), group.episodes))
            .collect();
        out.push_str(&format!(
            "unsafe > {} s and never liquidated: {} episode{}{}\n",
            t.unsafe_threshold_seconds,
            t.unsafe_unliquidated,
            if t.unsafe_unliquidated == 1 { "" } else { "s" },
            if by_cause.is_empty() {
                String::new()
            } else {
                format!(" (by cause: {})", by_cause.join(", "))
            }
        ));
        for (reason, count) in t.clamped.iter().chain(&t.skipped) {
            out.push_str(&format!("adjusted events: {reason} {count}\n"));
        }
        out.push_str(&format!("state hash: {}\n", self.state_hash));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rounds_half_up_to_two_decimals() {
        assert_eq!(percent(1, 3), "33.33");
        assert_eq!(percent(2, 3), "66.67");
        assert_eq!(percent(19, 19), "100.00");
        assert_eq!(percent(0, 7), "0.00");
        assert_eq!(percent(1, 8), "12.50");
    }

    #[test]
    fn quantities_of_one_token_at_two_precisions_add_exactly() {
        let wad = U256::from(10).pow(U256::from(18));
        let from_maker = Quantity::new(wad + U256::from(1), 18);
        let from_aave = Quantity::new(U256::from(200_000_000), 8);
        let three = Quantity::new(U256::from(3) * wad + U256::from(1), 18);
        assert_eq!(from_maker.saturating_add(from_aave), three);
        assert_eq!(from_aave.saturating_add(from_maker), three);
        let near_max = Quantity::new(U256::MAX - U256::from(1), 0);
        assert_eq!(
            near_max.saturating_add(Quantity::new(U256::from(5), 0)),
            Quantity::new(U256::MAX, 0)
        );
    }

    #[test]
    fn a_missing_input_and_a_seize_check_are_written_by_name() {
        let missing = MissingInput::new(InputKind::ExchangeRate, Id::name("cDAI"));
        assert_eq!(missing.to_string(), "exchange rate of cDAI");
        assert_eq!(
            serde_json::to_string(&missing).unwrap(),
            r#"{"input":"exchange-rate","asset":"cDAI"}"#
        );
        let seize = SeizeCheck {
            result: SeizeResult::Consistent,
            bonus: Some(Quantity::new(U256::from(10_500), 4)),
            collateral_price: Some(Quantity::new(U256::from(25), 0)),
            debt_price: None,
            exchange_rate: None,
        };
        assert_eq!(
            serde_json::to_string(&seize).unwrap(),
            r#"{"result":"consistent","bonus":"1.05","collateral_price":"25","debt_price":null}"#
        );
        // Read back, it writes the same text (amounts keep the digits written).
        let text = serde_json::to_string(&seize).unwrap();
        let read: SeizeCheck = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&read).unwrap(), text);
    }
}
