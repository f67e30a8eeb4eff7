//! MakerDAO multi-collateral DAI: vaults, ilks, the Jug's interest, the Spotter's price with
//! the OSM delay, and liquidations by `Cat.bite` (1.2) before the Dog goes live for an ilk and by
//! `Dog.bark` (2.0) after.
//!
//! What the export gives and how it becomes contract state:
//! - Vault actions carry DAI, not `art`: a draw adds `ceil(dai * RAY / rate)` (DssProxyActions
//!   `_getDrawDart`), a wipe removes `floor(dai * RAY / rate)` capped at `art`
//!   (`_getWipeDart`), with `rate` dripped to the event's time. A wipe that leaves a debt below
//!   `dust` is a full wipe the export rounded (`Vat.frob` refuses such a vault), and is counted.
//! - `JUG.ilks.duty` comes as an annual rate (0.06): converted to the per-second ray whose
//!   365-day `rpow` compounding is closest to it ([`crate::math::per_second_rate`]).
//! - Penalties (`CAT.ilks.chop`, `DOG.ilks.chop`) come as 0.13: the contract's `chop` is 1.13 wad.
//! - The Dog/Clipper rules apply to an ilk from the first `DOG.*` or `CLIPPER.*` parameter
//!   change for it (2021-05-06 for ETH-B); before that, the Cat's.
//!
//! Recorded oracle values (`OSM.LogValue`, `Spotter.Poke`; [`OracleMode`]) replace the OSM
//! estimate for the ilks they name: osm.sol's `poke` sets `cur = nxt` and then emits
//! `LogValue(cur.val)`, so the logged value is exactly what `OSM.peek` returns until the next
//! poke, and spot.sol's `poke` emits the `val` it read from `peek` and filed as `spot`.
//!
//! This module must never read a price except through its OSM, nor scan all vaults to find the
//! unsafe ones (each ilk keeps a [`BucketIndex`] by `art * RAY / ink`).

mod osm;
pub mod rules;

use std::collections::BTreeMap;

use cascade_events::{
    Event, Fixed, Id, Liquidation, OracleValue, OracleValueSource, Payload, PriceUpdate, Protocol,
    Timestamp, U256,
};

pub use osm::{MedianRule, Osm, OsmSample, Point, Reading};
use rules::{Refusal, Take, Urn};

use crate::EngineError;
use crate::index::BucketIndex;
use crate::math::{
    BLN, RAY, WAD, add, div_ray, div_small_quotient, fixed_to, mul, mul_div, mul_div_up,
    per_second_rate, rmul, rpow,
};
use crate::oracle::PriceBook;
use crate::protocol::{
    Applied, Candidate, Judgement, LiquidatorChoice, MarketRisk, ProtocolModel, Quantity,
    SimulatedLiquidation, Verdict, WARM_BATCH,
};
use crate::run::{
    MakerSettings, MedianRuleSetting, MismatchEvidence, OracleEvidence, RecordedOracle,
};
use crate::slots::{Slot, Slots, SmallMap};
use crate::state::{StateReader, StateWriter};

/// Which oracle value the rules read: the OSM's own recorded values, the estimate from market
/// prices, or the recorded value where the log holds one for the ilk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OracleMode {
    /// Only recorded values; an ilk without one has no price.
    Recorded,
    /// Only the estimate from market prices; recorded values are ignored.
    Estimated,
    /// The recorded value from an ilk's first recorded value on, the estimate before it and for
    /// ilks without any.
    #[default]
    Auto,
}

impl OracleMode {
    /// The name used on the command line and in run files.
    pub fn name(self) -> &'static str {
        match self {
            OracleMode::Recorded => "recorded",
            OracleMode::Estimated => "estimated",
            OracleMode::Auto => "auto",
        }
    }
}

/// Maker settings that shape results.
#[derive(Clone, Debug)]
pub struct MakerConfig {
    /// Recorded oracle values or estimates (default [`OracleMode::Auto`]).
    pub oracle: OracleMode,
    /// OSM delay in seconds (`OSM.hop`, 3600 on mainnet); 0 reads the market price directly.
    pub hop: i64,
    /// How the OSM's reading is estimated from recorded market prices (default: the Median
    /// under ETHUSD's relayer rule where the market is seen at least once a minute, interpolation
    /// elsewhere).
    pub osm_sample: OsmSample,
    /// Quote unit of the prices the OSM reads (`USD`; DAI is taken at `par` = 1).
    pub quote: Id,
    /// Price assets per collateral (the ilk name before its `-`), first present wins; defaults:
    /// `ETH` -> `WETH`, `ETH`; `WBTC` -> `WBTC`, `BTC`; anything else -> its own name.
    pub price_assets: BTreeMap<String, Vec<Id>>,
    /// A market price older than this many seconds at the OSM's reading time is no price (gaps
    /// in the recorded prices; the CoinGecko export has gaps of up to ~25 h).
    pub max_price_age: i64,
    /// Seconds by which a feed's prices trail the market, per feed: a price stamped `t` is taken
    /// as the market at `t - lag` when the OSM samples the market. Measured for the CoinGecko
    /// hourly export against the 10-minute crash-day bars (docs/fidelity.md). Empty by default.
    pub feed_lag: BTreeMap<Id, i64>,
    /// Largest difference between recorded and formula collateral that still `explained`, wad.
    /// The Flipside export casts collateral to a whole number (`INK::number`), so 0.5 ETH of
    /// rounding plus the export's rounding of the deposits that built `ink`.
    pub collateral_tolerance: U256,
    /// Largest relative difference between recorded and formula debt that is still `explained`,
    /// parts per million.
    pub debt_tolerance_ppm: u64,
}

impl Default for MakerConfig {
    fn default() -> Self {
        let mut price_assets = BTreeMap::new();
        price_assets.insert("ETH".to_owned(), vec![Id::name("WETH"), Id::name("ETH")]);
        price_assets.insert("WBTC".to_owned(), vec![Id::name("WBTC"), Id::name("BTC")]);
        Self {
            oracle: OracleMode::Auto,
            hop: 3600,
            osm_sample: OsmSample::Median(MedianRule::ETH_USD),
            quote: Id::name("USD"),
            price_assets,
            feed_lag: BTreeMap::new(),
            max_price_age: 2 * 86_400,
            collateral_tolerance: WAD / U256::from(2u8) + WAD / U256::from(100u8),
            debt_tolerance_ppm: 1_000,
        }
    }
}

impl MakerConfig {
    /// The settings as they appear in the run file.
    pub fn describe(&self) -> MakerSettings {
        MakerSettings {
            collateral_tolerance: Quantity::new(self.collateral_tolerance, 18),
            debt_tolerance_ppm: self.debt_tolerance_ppm,
            feed_lag_seconds: self
                .feed_lag
                .iter()
                .map(|(feed, lag)| (feed.to_string(), *lag))
                .collect(),
            max_price_age_seconds: self.max_price_age,
            median_rule: match self.osm_sample {
                OsmSample::Median(rule) => Some(MedianRuleSetting {
                    expiration_seconds: rule.expiration,
                    poll_seconds: rule.poll,
                    spread_bps: rule.spread_bps,
                }),
                _ => None,
            },
            // Only a mode other than the default is written, so runs made before the mode
            // existed (which were `auto` runs of logs without recorded values) keep their bytes.
            oracle: (self.oracle != OracleMode::Auto).then(|| self.oracle.name().to_owned()),
            osm_hop_seconds: self.hop,
            osm_sample: self.osm_sample.name().to_owned(),
            price_assets: self
                .price_assets
                .iter()
                .map(|(gem, ids)| (gem.clone(), ids.iter().map(Id::to_string).collect()))
                .collect(),
            quote: self.quote.to_string(),
        }
    }

    fn price_assets_for(&self, ilk: &Id) -> Vec<Id> {
        let gem = gem_of(ilk);
        match self.price_assets.get(&gem) {
            Some(assets) => assets.clone(),
            None => gem.parse::<Id>().map(|id| vec![id]).unwrap_or_default(),
        }
    }
}

/// The collateral an ilk's OSM prices: its name up to the first `-` (`ETH-B` -> `ETH`).
fn gem_of(ilk: &Id) -> String {
    let name = ilk.to_string();
    name.split('-').next().unwrap_or(&name).to_owned()
}

/// A vault as [`MakerModel::vault`] shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VaultView {
    /// Collateral, wad.
    pub ink: U256,
    /// Normalised debt, wad.
    pub art: U256,
    /// `art * rate` in DAI (wad) with the rate as of the ilk's last drip.
    pub debt: U256,
}

/// One vault: collateral and normalised debt, and its place in the books of the second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Vault {
    ink: U256,
    art: U256,
    /// Position of this vault's entry in [`Ilk::pending`] while it has one.
    pending: Option<u32>,
    /// Whether the ilk's watches (see [`Watch`]) count this vault: bit [`UNSAFE`] and bit
    /// [`UNDERWATER`], as of each watch's threshold and rate.
    flags: u8,
}

const NO_PLACE: (u32, u32) = (u32::MAX, u32::MAX);

/// [`Vault::flags`] bit: liquidatable (`ink * spot < art * rate`).
const UNSAFE: u8 = 1;
/// [`Vault::flags`] bit: debt above the collateral's value at the OSM price.
const UNDERWATER: u8 = 2;

/// One incrementally maintained subset of an ilk's vaults: those with
/// `ink * threshold < art * rate` for the threshold and rate of the last refresh (threshold
/// `spot` for the unsafe set, the OSM price as a ray for the underwater set), with their count
/// and sums. A refresh re-tests only the vaults whose key lies between the old and the new level
/// (every key below a level is outside the set, every key above it inside); a vault's own change
/// re-tests that vault. So keeping the unsafe set and the timeline's sums costs what changes, not
/// the size of the set, which is what lets a replay check at every price move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Watch {
    threshold: U256,
    rate: U256,
    level: u128,
    count: u64,
    /// Sum of `ink` over the set, wad.
    ink: U256,
    /// Sum of `art` over the set, wad.
    art: U256,
}

impl Watch {
    fn contains(&self, ink: U256, art: U256) -> Result<bool, EngineError> {
        Ok(!self.threshold.is_zero()
            && !art.is_zero()
            && mul(ink, self.threshold, "ink * threshold")? < mul(art, self.rate, "art * rate")?)
    }

    fn add(&mut self, ink: U256, art: U256) {
        self.count += 1;
        self.ink = self.ink.saturating_add(ink);
        self.art = self.art.saturating_add(art);
    }

    fn remove(&mut self, ink: U256, art: U256) {
        self.count = self.count.saturating_sub(1);
        self.ink = self.ink.saturating_sub(ink);
        self.art = self.art.saturating_sub(art);
    }
}

/// The level for a watch: [`level`], or the maximum when there is no threshold (no price:
/// nothing is in the set, and every key is at most the maximum, so a move to or from "no price"
/// re-tests everything above the other level).
fn watch_level(threshold: U256, rate: U256) -> Result<u128, EngineError> {
    if threshold.is_zero() {
        Ok(u128::MAX)
    } else {
        level(threshold, rate)
    }
}

fn saturate(value: U256) -> u128 {
    if value.bit_len() > 128 {
        u128::MAX
    } else {
        value.to::<u128>()
    }
}

/// Records that `account`'s unsafe flag went from `was` to `now`, keeping the flag as of the last
/// report so a vault that flips and flips back reports nothing.
fn note_change(changes: &mut BTreeMap<Id, (bool, bool)>, account: Id, was: bool, now: bool) {
    if was == now {
        return;
    }
    changes
        .entry(account)
        .and_modify(|entry| entry.1 = now)
        .or_insert((was, now));
}

/// The index level for `spot` and `rate`: `min(floor(spot * RAY / rate), u128::MAX)`. A vault
/// with a key below it is safe: `key < level` implies `art * RAY / ink < spot * RAY / rate`.
fn level(spot: U256, rate: U256) -> Result<u128, EngineError> {
    Ok(saturate(mul_div(spot, RAY, rate, "spot * RAY / rate")?))
}

/// A vault as its ilk's index holds it: its balances, so walking the index to confirm candidates
/// after a price shock reads the index front to back and never the vaults. Balances are kept in
/// 128 bits (real ones are below `1e21` wad, far under `2^128`): an entry of 40 bytes instead of
/// 112 is what keeps moving a vault between buckets, once per vault action, cheap. A vault whose
/// balances do not fit is held as [`Member::WIDE`], and whoever reads it reads the vault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Member {
    ink: [u64; 2],
    art: [u64; 2],
}

impl Member {
    /// Stands for balances that do not fit in 128 bits: read them from the vault.
    const WIDE: Member = Member {
        ink: [u64::MAX; 2],
        art: [u64::MAX; 2],
    };

    fn of(vault: &Vault) -> Member {
        match (narrow(vault.ink), narrow(vault.art)) {
            (Some(ink), Some(art)) => Member { ink, art },
            _ => Member::WIDE,
        }
    }

    /// `(ink, art)` of the vault this member stands for.
    fn balances(self, vault: &Vault) -> (U256, U256) {
        if self == Member::WIDE {
            (vault.ink, vault.art)
        } else {
            (widen(self.ink), widen(self.art))
        }
    }
}

fn narrow(value: U256) -> Option<[u64; 2]> {
    let limbs = value.as_limbs();
    (limbs[2] == 0 && limbs[3] == 0).then_some([limbs[0], limbs[1]])
}

fn widen(half: [u64; 2]) -> U256 {
    U256::from_limbs([half[0], half[1], 0, 0])
}

impl Vault {
    fn urn(&self) -> Urn {
        Urn {
            ink: self.ink,
            art: self.art,
        }
    }

    /// `min(floor(art * RAY / ink), u128::MAX)`; the maximum with debt and no collateral;
    /// `None` without debt. An urn is unsafe iff `art / ink > spot / rate`, so every urn with a
    /// key below [`level`] is safe (see [`crate::index`]). Saturating keeps that true: a
    /// saturated key is never below a level. Real keys are near `1e30` (DAI per ETH times RAY), far
    /// below `u128::MAX` (3.4e38).
    fn trigger_key(&self) -> Option<u128> {
        if self.art.is_zero() {
            None
        } else if self.ink.is_zero() {
            Some(u128::MAX)
        } else {
            Some(saturate(self.art.saturating_mul(RAY) / self.ink))
        }
    }
}

/// Clipper auction parameters (kept for counterfactual auctions; dss `clip.sol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Clip {
    buf: U256,
    tail: u64,
    cusp: U256,
    chip: U256,
    tip: U256,
}

/// One collateral type with its rules and vaults.
#[derive(Clone, Debug)]
struct Ilk {
    /// Accumulated rate, ray (`Vat.ilks.rate`).
    rate: U256,
    /// Time of the last drip (`Jug.ilks.rho`).
    rho: Option<Timestamp>,
    /// Per-second stability fee, ray (`Jug.ilks.duty`).
    duty: U256,
    /// Cached `rpow(duty, dt)` for the last `dt` (prices and actions repeat intervals).
    rpow_cache: Option<(u64, U256)>,
    /// Liquidation ratio, ray (`Spotter.ilks.mat`); zero until set.
    mat: U256,
    /// Price with safety margin, ray (`Vat.ilks.spot`).
    spot: U256,
    /// Minimum vault debt, rad (`Vat.ilks.dust`).
    dust: U256,
    /// Debt ceiling, rad (`Vat.ilks.line`): recorded, not enforced on recorded actions.
    line: U256,
    /// Whether the Dog (liquidations 2.0) liquidates this ilk.
    dog_live: bool,
    /// `Cat.ilks.chop`, wad.
    cat_chop: U256,
    /// `Cat.ilks.dunk`, rad.
    dunk: U256,
    /// `Dog.ilks.chop`, wad.
    dog_chop: U256,
    /// `Dog.ilks.hole`, rad (`None`: not set, unlimited).
    hole: Option<U256>,
    /// `Dog.ilks.dirt`, rad.
    dirt: U256,
    clip: Clip,
    /// The asset whose OSM sets `spot`, once resolved.
    price_asset: Option<Id>,
    vaults: Slots<Vault>,
    /// The vaults by [`Vault::trigger_key`].
    index: BucketIndex<Member>,
    /// Vaults acted on in the current second, with what their actions overshot, in the order
    /// first acted on.
    pending: Vec<(Slot, Pending)>,
    /// The unsafe and underwater sets, once the first refresh has set them up.
    watches: Option<[Watch; 2]>,
    /// Vaults whose unsafe flag changed since the last report: (flag at the report, flag now).
    changes: BTreeMap<Id, (bool, bool)>,
}

impl Default for Ilk {
    fn default() -> Self {
        Self {
            rate: RAY,
            rho: None,
            duty: RAY,
            rpow_cache: None,
            mat: U256::ZERO,
            spot: U256::ZERO,
            dust: U256::ZERO,
            line: U256::ZERO,
            dog_live: false,
            cat_chop: WAD,
            dunk: U256::ZERO,
            dog_chop: WAD,
            hole: None,
            dirt: U256::ZERO,
            clip: Clip::default(),
            price_asset: None,
            vaults: Slots::default(),
            index: BucketIndex::default(),
            pending: Vec::new(),
            watches: None,
            changes: BTreeMap::new(),
        }
    }
}

impl Ilk {
    /// `Jug.drip`: `rate = rmul(rpow(duty, now - rho, ONE), rate)`.
    fn drip(&mut self, time: Timestamp) -> Result<(), EngineError> {
        let Some(rho) = self.rho else {
            self.rho = Some(time);
            return Ok(());
        };
        if time <= rho {
            return Ok(());
        }
        let dt = (time.0 - rho.0) as u64;
        let factor = match self.rpow_cache {
            Some((cached, factor)) if cached == dt => factor,
            _ => {
                let factor = rpow(self.duty, dt, RAY)?;
                self.rpow_cache = Some((dt, factor));
                factor
            }
        };
        self.rate = rmul(factor, self.rate, "rpow(duty) * rate")?;
        self.rho = Some(time);
        Ok(())
    }

    /// `Spotter.poke`: `spot = rdiv(rdiv(mul(val, 10 ** 9), par), mat)` with `par = RAY`.
    fn poke(&mut self, value: Option<U256>) -> Result<bool, EngineError> {
        let spot = match value {
            Some(val) if !self.mat.is_zero() => {
                mul_div(mul(val, BLN, "val * 1e9")?, RAY, self.mat, "val / mat")?
            }
            _ => U256::ZERO,
        };
        let changed = spot != self.spot;
        self.spot = spot;
        Ok(changed)
    }

    /// Moves the index entry of the vault in `slot` to what the vault is now and re-tests it
    /// against the watches; `old` is the vault before its change.
    fn reindex(&mut self, slot: Slot, old: Vault) -> Result<(), EngineError> {
        let vault = self.vaults.at_mut(slot);
        self.index.set(slot, vault.trigger_key(), Member::of(vault));
        let Some(watches) = self.watches.as_mut() else {
            return Ok(());
        };
        let was_unsafe = old.flags & UNSAFE != 0;
        let mut flags = 0;
        for (watch, bit) in watches.iter_mut().zip([UNSAFE, UNDERWATER]) {
            if old.flags & bit != 0 {
                watch.remove(old.ink, old.art);
            }
            if watch.contains(vault.ink, vault.art)? {
                watch.add(vault.ink, vault.art);
                flags |= bit;
            }
        }
        vault.flags = flags;
        if was_unsafe != (flags & UNSAFE != 0) {
            let account = *self.vaults.id(slot);
            note_change(&mut self.changes, account, was_unsafe, !was_unsafe);
        }
        Ok(())
    }

    /// Brings the watches to the current `spot`, OSM price and `rate` (dripped to `time`).
    fn refresh(&mut self, time: Timestamp, price: Option<U256>) -> Result<(), EngineError> {
        self.drip(time)?;
        let thresholds = [
            self.spot,
            match price {
                Some(price) if !self.spot.is_zero() => mul(price, BLN, "price * 1e9")?,
                _ => U256::ZERO,
            },
        ];
        let first = self.watches.is_none();
        let mut watches = self.watches.unwrap_or_default();
        for (slot, bit) in [(0, UNSAFE), (1, UNDERWATER)] {
            let watch = &mut watches[slot];
            let (threshold, rate) = (thresholds[slot], self.rate);
            if !first && watch.threshold == threshold && watch.rate == rate {
                continue;
            }
            let level = watch_level(threshold, rate)?;
            // First refresh: everything at or above the level; later: what lies between the
            // old and the new level, inclusive (elsewhere membership cannot have changed).
            let (low, high) = if first {
                (level, u128::MAX)
            } else {
                (level.min(watch.level), level.max(watch.level))
            };
            watch.threshold = threshold;
            watch.rate = rate;
            watch.level = level;
            for (slot, member) in self.index.between(low, high) {
                let vault = self.vaults.at_mut(*slot);
                let (ink, art) = member.balances(vault);
                let inside = watch.contains(ink, art)?;
                let was = vault.flags & bit != 0;
                if was == inside {
                    continue;
                }
                if inside {
                    watch.add(ink, art);
                    vault.flags |= bit;
                } else {
                    watch.remove(ink, art);
                    vault.flags &= !bit;
                }
                if bit == UNSAFE {
                    note_change(&mut self.changes, *self.vaults.id(*slot), was, inside);
                }
            }
        }
        self.watches = Some(watches);
        Ok(())
    }

    /// The room the Dog leaves (`min(Hole - Dirt, hole - dirt)`), `None` when unlimited.
    fn dog_room(&self, global: Option<(U256, U256)>) -> Option<U256> {
        let local = self.hole.map(|hole| hole.saturating_sub(self.dirt));
        let global = global.map(|(hole, dirt)| hole.saturating_sub(dirt));
        match (local, global) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// An auction whose `tab` still counts against `hole`/`Hole` or the Cat's `box`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OpenAuction {
    ilk: Id,
    tab: U256,
    dog: bool,
    /// When its tab stops counting: auctions are assumed to settle `auction_seconds` after
    /// their kick (at least one second: at the next later event), as the export records no
    /// take events.
    settles_at: Timestamp,
}

/// The MakerDAO model.
#[derive(Clone, Debug)]
pub struct MakerModel {
    config: MakerConfig,
    /// OSM delay in force (a scenario may change it).
    hop: i64,
    ilks: SmallMap<Ilk>,
    osms: BTreeMap<Id, Osm>,
    /// `Dog.Hole` and `Dog.Dirt` (rad); `None`: not set, unlimited.
    dog_hole: Option<U256>,
    dog_dirt: U256,
    /// `Cat.box` and `Cat.litter` (rad); `None`: not set, unlimited.
    cat_box: Option<U256>,
    cat_litter: U256,
    /// Seconds an auction's tab counts against the limits after its kick.
    auction_seconds: i64,
    auctions: Vec<OpenAuction>,
    /// What [`ProtocolModel::judge`] found the rules take from a vault, for the
    /// [`ProtocolModel::apply_liquidation`] that follows it for the same event (the replay loop
    /// calls them in pairs), so the take is not worked out twice. Never outlives the pair, so it
    /// is not state.
    judged: Option<(Id, Id, Take)>,
    /// Counts of corrections made by [`MakerModel::settle`], drained by the replay loop.
    adjustments: BTreeMap<&'static str, u64>,
    /// Recorded oracle values by what they name: an ilk (Spotter `Poke`) or a collateral (OSM
    /// `LogValue`).
    recorded: BTreeMap<Id, Recorded>,
}

/// An oracle value as recorded on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Recorded {
    /// Wad USD per token.
    value: U256,
    time: Timestamp,
    /// The event's place in the log: of two values in one second, the later one holds.
    seq: u64,
    source: OracleValueSource,
    oracle: Id,
}

/// A vault action, as far as the books are concerned.
#[derive(Clone, Copy)]
enum Action {
    Deposit,
    Withdraw,
    Borrow,
    Repay,
}

/// What a vault's actions in the current second overshot, awaiting the end of the second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pending {
    /// Collateral withdrawn beyond what the vault held, wad.
    ink_deficit: U256,
    /// Normalised debt repaid beyond what the vault owed, wad.
    art_credit: U256,
    /// DAI repaid in the second, wad (the tolerance for `art_credit` scales with it).
    repaid_dai: U256,
    /// Whether a user action (a `frob`) touched the vault.
    frobbed: bool,
}

const COLLATERAL_DECIMALS: u8 = 18;
const DAI_DECIMALS: u8 = 18;

/// Parameters known to exist that this model does not need (auction mechanics of the Flipper,
/// the debt-ceiling automation): accepted and ignored.
const IGNORED_PARAMS: [&str; 2] = ["FLIPPER.", "DC-IAM."];

impl MakerModel {
    /// An empty model with the given settings.
    pub fn new(config: MakerConfig) -> Self {
        Self {
            hop: config.hop,
            config,
            ilks: SmallMap::default(),
            osms: BTreeMap::new(),
            dog_hole: None,
            dog_dirt: U256::ZERO,
            cat_box: None,
            cat_litter: U256::ZERO,
            auction_seconds: 0,
            auctions: Vec::new(),
            judged: None,
            adjustments: BTreeMap::new(),
            recorded: BTreeMap::new(),
        }
    }

    /// A vault's books, for reports and inspection.
    pub fn vault(&self, market: &Id, account: &Id) -> Option<VaultView> {
        let ilk = self.ilks.get(market)?;
        let vault = ilk.vaults.get(account)?;
        Some(VaultView {
            ink: vault.ink,
            art: vault.art,
            debt: vault.art.saturating_mul(ilk.rate) / RAY,
        })
    }

    /// The unsafe vaults found by testing every vault of every ilk: the baseline the index is
    /// measured against (benchmarks) and checked against (tests). Same order as
    /// [`ProtocolModel::liquidatable`] is not promised; the set is.
    pub fn unsafe_by_full_scan(&mut self, time: Timestamp) -> Result<Vec<(Id, Id)>, EngineError> {
        let mut out = Vec::new();
        for (id, ilk) in self.ilks.iter_mut() {
            ilk.drip(time)?;
            for (account, vault) in ilk.vaults.entries() {
                if rules::is_unsafe(vault.urn(), ilk.spot, ilk.rate)? {
                    out.push((*id, *account));
                }
            }
        }
        Ok(out)
    }

    fn ilk_mut(&mut self, market: &Id) -> &mut Ilk {
        self.ilks.entry_or_default(*market)
    }

    /// The recorded oracle value `ilk` reads under the configured mode: the later of its own
    /// (Spotter) and its collateral's (OSM) latest values. `None`: the estimate applies.
    fn recorded_for(&self, ilk_id: &Id) -> Option<Recorded> {
        if self.config.oracle == OracleMode::Estimated {
            return None;
        }
        let own = self.recorded.get(ilk_id);
        let gem = gem_of(ilk_id)
            .parse::<Id>()
            .ok()
            .and_then(|gem| self.recorded.get(&gem));
        own.into_iter().chain(gem).max_by_key(|r| r.seq).copied()
    }

    /// The OSM value feeding `ilk`: the recorded one where the mode says so, else the estimate,
    /// resolving its price asset on first use. A recorded zero is no value (osm.sol's `peek`
    /// then says `has` false, and the Spotter files `spot` 0, which the Dog and Cat refuse).
    fn osm_value(&mut self, ilk_id: &Id) -> Option<U256> {
        if let Some(recorded) = self.recorded_for(ilk_id) {
            return Some(recorded.value).filter(|value| !value.is_zero());
        }
        if self.config.oracle == OracleMode::Recorded {
            return None;
        }
        let ilk = self.ilks.get_mut(ilk_id)?;
        if ilk.price_asset.is_none() {
            let assets = self.config.price_assets_for(ilk_id);
            ilk.price_asset = assets.into_iter().find(|asset| {
                self.osms
                    .get(asset)
                    .is_some_and(|osm| osm.value().is_some())
            });
        }
        let asset = ilk.price_asset?;
        self.osms.get(&asset)?.value()
    }

    /// What `Dog.bark` takes from `urn` when the room under `hole`/`Hole` is what a recorded
    /// partial bark implies (its `due` times `chop`): the chain's `Dirt` and `Hole` are not in
    /// the export, the record's share is, and applying the contract's take for that room keeps
    /// the vault's remainder for its next bark. `None` when the rules refuse that room.
    fn partial_take(
        &self,
        ilk_id: &Id,
        urn: Urn,
        recorded_due: U256,
    ) -> Result<Option<Take>, EngineError> {
        let ilk = &self.ilks[ilk_id];
        if !ilk.dog_live {
            return Ok(None);
        }
        let room = mul_div(
            mul(recorded_due, RAY, "due * RAY")?,
            ilk.dog_chop,
            WAD,
            "due * chop",
        )?;
        Ok(rules::dog_bark(urn, ilk.rate, ilk.dust, ilk.dog_chop, Some(room))?.ok())
    }

    /// Where the OSM value feeding `ilk` came from.
    fn osm_reading(&self, ilk_id: &Id) -> Option<Reading> {
        let asset = self.ilks.get(ilk_id)?.price_asset?;
        self.osms.get(&asset)?.reading()
    }

    /// The oracle evidence of a verdict on `urn` at OSM value `value`; with `break_even`, the
    /// value at which the verdict would flip.
    fn evidence(
        &self,
        ilk_id: &Id,
        value: U256,
        urn: Urn,
        break_even: bool,
    ) -> Result<OracleEvidence, EngineError> {
        let ilk = &self.ilks[ilk_id];
        let break_even = if break_even {
            rules::break_even_value(urn, ilk.mat, ilk.rate)?.map(|value| Quantity::new(value, 18))
        } else {
            None
        };
        if let Some(recorded) = self.recorded_for(ilk_id) {
            // The oracle's own value: no market point was read, it was emitted at `time`.
            let mut evidence = OracleEvidence::new(
                Quantity::new(value, 18),
                Some(recorded.oracle),
                Some(recorded.time),
                None,
                break_even,
            );
            evidence.recorded = Some(RecordedOracle {
                event: recorded.source.name().into(),
                oracle: recorded.oracle,
                time: recorded.time,
            });
            return Ok(evidence);
        }
        let reading = self.osm_reading(ilk_id);
        Ok(OracleEvidence::new(
            Quantity::new(value, 18),
            reading.map(|r| r.point.feed),
            reading.map(|r| r.point.time),
            reading.map(|r| r.read_at),
            break_even,
        ))
    }

    /// Records an oracle value and re-pokes the ilks that read it.
    fn record_oracle_value(
        &mut self,
        value: &OracleValue,
        event: &Event,
    ) -> Result<Applied, EngineError> {
        let wad = fixed_to(&value.value, 18, "oracle value")?;
        self.recorded.insert(
            value.market,
            Recorded {
                value: wad,
                time: event.time,
                seq: event.seq,
                source: value.source,
                oracle: value.oracle,
            },
        );
        self.poke_all()?;
        Ok(if self.config.oracle == OracleMode::Estimated {
            Applied::Ignored
        } else {
            Applied::Exact
        })
    }

    /// Re-pokes the spot of every ilk; true when one changed.
    fn poke_all(&mut self) -> Result<bool, EngineError> {
        let ids: Vec<Id> = self.ilks.keys().copied().collect();
        let mut changed = false;
        for id in ids {
            let value = self.osm_value(&id);
            if let Some(ilk) = self.ilks.get_mut(&id) {
                changed |= ilk.poke(value)?;
            }
        }
        Ok(changed)
    }

    fn release_auctions(&mut self, time: Timestamp) {
        if self.auctions.is_empty() {
            return;
        }
        let (done, open): (Vec<_>, Vec<_>) = self
            .auctions
            .drain(..)
            .partition(|auction| auction.settles_at <= time);
        self.auctions = open;
        for auction in done {
            if auction.dog {
                self.dog_dirt = self.dog_dirt.saturating_sub(auction.tab);
                if let Some(ilk) = self.ilks.get_mut(&auction.ilk) {
                    ilk.dirt = ilk.dirt.saturating_sub(auction.tab);
                }
            } else {
                self.cat_litter = self.cat_litter.saturating_sub(auction.tab);
            }
        }
    }

    fn open_auction(&mut self, ilk_id: Id, tab: U256, dog: bool, time: Timestamp) {
        if dog {
            self.dog_dirt = self.dog_dirt.saturating_add(tab);
            if let Some(ilk) = self.ilks.get_mut(&ilk_id) {
                ilk.dirt = ilk.dirt.saturating_add(tab);
            }
        } else {
            self.cat_litter = self.cat_litter.saturating_add(tab);
        }
        let settles_at = Timestamp(time.0.saturating_add(self.auction_seconds.max(1)));
        self.auctions.push(OpenAuction {
            ilk: ilk_id,
            tab,
            dog,
            settles_at,
        });
    }

    /// What the regime in force would take from `urn` now.
    fn take(&self, ilk: &Ilk, urn: Urn) -> Result<Result<Take, Refusal>, EngineError> {
        if ilk.dog_live {
            let global = self.dog_hole.map(|hole| (hole, self.dog_dirt));
            rules::dog_bark(urn, ilk.rate, ilk.dust, ilk.dog_chop, ilk.dog_room(global))
        } else {
            let room = self.cat_box.map(|b| b.saturating_sub(self.cat_litter));
            rules::cat_bite(urn, ilk.rate, ilk.dust, ilk.cat_chop, ilk.dunk, room)
        }
    }

    /// Removes `dink`/`dart` from a vault (`Vat.grab`) and opens the auction.
    fn grab(
        &mut self,
        ilk_id: Id,
        account: Id,
        dink: U256,
        dart: U256,
        tab: U256,
        time: Timestamp,
    ) -> Result<(), EngineError> {
        let dog = self.ilks.get(&ilk_id).is_some_and(|ilk| ilk.dog_live);
        if let Some(ilk) = self.ilks.get_mut(&ilk_id)
            && let Some(slot) = ilk.vaults.find(&account)
        {
            let vault = ilk.vaults.at_mut(slot);
            let old = *vault;
            vault.ink = vault.ink.saturating_sub(dink);
            vault.art = vault.art.saturating_sub(dart);
            ilk.reindex(slot, old)?;
        }
        self.open_auction(ilk_id, tab, dog, time);
        Ok(())
    }

    fn rule_name(ilk: &Ilk) -> &'static str {
        if ilk.dog_live { "dog-bark" } else { "cat-bite" }
    }

    fn apply_position(&mut self, event: &Event) -> Result<Applied, EngineError> {
        let (change, kind) = match &event.payload {
            Payload::Deposit(c) => (c, Action::Deposit),
            Payload::Withdraw(c) => (c, Action::Withdraw),
            Payload::Borrow(c) => (c, Action::Borrow),
            Payload::Repay(c) => (c, Action::Repay),
            _ => return Ok(Applied::Ignored),
        };
        let ilk = self.ilks.entry_or_default(change.market);
        let (slot, opened) = ilk
            .vaults
            .slot_or_insert_with(change.account, Vault::default);
        let applied = if opened {
            Applied::Clamped("implicit-vault-open")
        } else {
            Applied::Exact
        };
        if matches!(kind, Action::Borrow | Action::Repay) {
            ilk.drip(event.time)?;
        }
        let rate = ilk.rate;
        let vault = ilk.vaults.at_mut(slot);
        let at = match vault.pending {
            Some(at) => at as usize,
            None => {
                vault.pending = Some(ilk.pending.len() as u32);
                ilk.pending.push((slot, Pending::default()));
                ilk.pending.len() - 1
            }
        };
        let pending = &mut ilk.pending[at].1;
        let old = *vault;
        let amount = change.amount.0;
        // Within one second (one block, as the export records it) the order of a vault's actions
        // is unknown: an overshoot (withdrawing more than is there, repaying more than is owed)
        // is held as pending and netted against later actions of the same second; whatever is
        // left when the clock moves on is counted (see `settle`).
        match kind {
            Action::Deposit => {
                let netted = amount.min(pending.ink_deficit);
                pending.ink_deficit -= netted;
                vault.ink = add(vault.ink, amount - netted, "ink + deposit")?;
            }
            Action::Withdraw => {
                let taken = amount.min(vault.ink);
                vault.ink -= taken;
                pending.ink_deficit = add(pending.ink_deficit, amount - taken, "deficit")?;
            }
            Action::Borrow => {
                // DssProxyActions._getDrawDart: rounds up so the vault owes at least `wad`.
                let dart = match change.shares {
                    Some(art) => art.0,
                    None => mul_div_up(amount, RAY, rate, "dai * RAY / rate")?,
                };
                let netted = dart.min(pending.art_credit);
                pending.art_credit -= netted;
                vault.art = add(vault.art, dart - netted, "art + dart")?;
            }
            Action::Repay => {
                // DssProxyActions._getWipeDart: rounds down, never more than the vault owes.
                let dart = match change.shares {
                    Some(art) => art.0,
                    None => mul_div(amount, RAY, rate, "dai * RAY / rate")?,
                };
                let taken = dart.min(vault.art);
                vault.art -= taken;
                pending.art_credit = add(pending.art_credit, dart - taken, "credit")?;
                pending.repaid_dai = add(pending.repaid_dai, amount, "repaid")?;
            }
        }
        pending.frobbed = true;
        ilk.reindex(slot, old)?;
        Ok(applied)
    }

    /// Ends a second: the vaults touched in it must satisfy what every `Vat.frob` guarantees,
    /// whatever order the export's rows of that second came in.
    /// - Debt is zero or at least `dust` (`require(either(urn.art == 0, tab >= ilk.dust))`), and
    ///   a vault emptied of collateral has no debt (`Vat/not-safe`). Debt left against either rule
    ///   is cleared: counted as `wipe-residue-cleared` when it is within what the export's
    ///   rounding of a wipe-all explains, as `missing-repayment-inferred` when larger.
    /// - An overshoot still pending is counted: repaying more than owed beyond the rounding of a
    ///   wipe-all, withdrawing more than deposited.
    fn settle(&mut self) -> Result<(), EngineError> {
        let ppm = U256::from(self.config.debt_tolerance_ppm);
        for ilk in self.ilks.values_mut() {
            if ilk.pending.is_empty() {
                continue;
            }
            let (rate, dust) = (ilk.rate, ilk.dust);
            for (slot, pending) in std::mem::take(&mut ilk.pending) {
                let vault = ilk.vaults.at_mut(slot);
                vault.pending = None;
                let before = *vault;
                if pending.ink_deficit > self.config.collateral_tolerance {
                    *self
                        .adjustments
                        .entry("withdraw-exceeds-collateral")
                        .or_default() += 1;
                }
                let credit = mul(pending.art_credit, rate, "credit * rate")?;
                let allowed = mul_div(
                    pending.repaid_dai,
                    RAY * ppm,
                    U256::from(1_000_000u32),
                    "tolerance",
                )? + RAY * U256::from(2u8);
                if credit > allowed {
                    *self.adjustments.entry("repay-exceeds-debt").or_default() += 1;
                }
                if pending.frobbed && !vault.art.is_zero() {
                    let debt = mul(vault.art, rate, "art * rate")?;
                    if vault.ink.is_zero() || debt < dust {
                        // What a wipe-all's rounding or the export's digits can leave: a thousandth
                        // of what was repaid in the second (the debt tolerance), at least one DAI.
                        let residue_allowed = (mul_div(
                            pending.repaid_dai,
                            ppm,
                            U256::from(1_000_000u32),
                            "residue tolerance",
                        )? + WAD)
                            .saturating_mul(RAY);
                        let reason = if debt <= residue_allowed {
                            "wipe-residue-cleared"
                        } else {
                            "missing-repayment-inferred"
                        };
                        vault.art = U256::ZERO;
                        *self.adjustments.entry(reason).or_default() += 1;
                    }
                }
                if vault.art != before.art {
                    ilk.reindex(slot, before)?;
                }
            }
        }
        Ok(())
    }

    /// Judges with the vault as it is now; `rule` names the regime.
    fn judge_inner(
        &mut self,
        liquidation: &Liquidation,
        time: Timestamp,
    ) -> Result<(Judgement, Option<Take>), EngineError> {
        let value = self.osm_value(&liquidation.market);
        let Some(ilk) = self.ilks.get_mut(&liquidation.market) else {
            return Ok((
                Judgement::bare(
                    Verdict::UnknownAccount,
                    "cat-bite",
                    COLLATERAL_DECIMALS,
                    DAI_DECIMALS,
                ),
                None,
            ));
        };
        ilk.drip(time)?;
        ilk.poke(value)?;
        let rule = Self::rule_name(ilk);
        let mut judgement = Judgement::bare(
            Verdict::UnknownAccount,
            rule,
            COLLATERAL_DECIMALS,
            DAI_DECIMALS,
        );
        let Some(vault) = ilk.vaults.get(&liquidation.account).copied() else {
            return Ok((judgement, None));
        };
        if ilk.spot.is_zero() {
            judgement.verdict = Verdict::NoPrice;
            judgement.note = Some(if ilk.mat.is_zero() {
                "no SPOTTER.mat set for this ilk".to_owned()
            } else {
                "no OSM price yet".to_owned()
            });
            return Ok((judgement, None));
        }
        let urn = vault.urn();
        judgement.health = rules::health(urn, ilk.spot, ilk.rate)?.map(|h| Quantity::new(h, 18));
        let osm_value = value.unwrap_or_default();
        if !rules::is_unsafe(urn, ilk.spot, ilk.rate)? {
            judgement.verdict = Verdict::NotLiquidatable;
            judgement.note = Some(format!(
                "safe at OSM price {} (spot {}, rate {})",
                crate::math::decimal(value.unwrap_or_default(), 18),
                crate::math::decimal(ilk.spot, 27),
                crate::math::decimal(ilk.rate, 27)
            ));
            judgement.oracle = Some(self.evidence(&liquidation.market, osm_value, urn, true)?);
            return Ok((judgement, None));
        }
        let take = match self.take(&self.ilks[&liquidation.market], urn)? {
            Ok(take) => take,
            Err(refusal) => {
                judgement.oracle =
                    Some(self.evidence(&liquidation.market, osm_value, urn, true)?);
                judgement.verdict = Verdict::NotLiquidatable;
                judgement.note = Some(format!("unsafe but the rules refuse: {}", refusal.reason()));
                return Ok((judgement, None));
            }
        };
        let expected_debt = take.due / RAY;
        judgement.expected_collateral = Some(Quantity::new(take.dink, COLLATERAL_DECIMALS));
        judgement.expected_debt = Some(Quantity::new(expected_debt, DAI_DECIMALS));
        let recorded_debt = liquidation.debt_repaid.0;
        let recorded_collateral = liquidation.collateral_seized.0;
        let debt_gap = expected_debt.abs_diff(recorded_debt);
        let debt_allowed = mul_div(
            recorded_debt.max(expected_debt),
            U256::from(self.config.debt_tolerance_ppm),
            U256::from(1_000_000u32),
            "debt tolerance",
        )? + U256::ONE;
        let collateral_gap = take.dink.abs_diff(recorded_collateral);
        let mut notes = Vec::new();
        if collateral_gap > self.config.collateral_tolerance {
            notes.push(format!(
                "collateral differs by {} (tolerance {})",
                crate::math::decimal(collateral_gap, 18),
                crate::math::decimal(self.config.collateral_tolerance, 18)
            ));
        }
        if debt_gap > debt_allowed {
            notes.push(format!(
                "debt differs by {} DAI (tolerance {} ppm)",
                crate::math::decimal(debt_gap, 18),
                self.config.debt_tolerance_ppm
            ));
        }
        let explained = notes.is_empty();
        judgement.oracle = Some(self.evidence(&liquidation.market, osm_value, urn, !explained)?);
        if explained {
            judgement.verdict = Verdict::Explained;
        } else {
            judgement.verdict = Verdict::AmountMismatch;
            judgement.note = Some(notes.join("; "));
            let mismatch = mismatch_input(
                &take,
                expected_debt,
                (recorded_collateral, recorded_debt),
                collateral_gap > self.config.collateral_tolerance,
                debt_gap > debt_allowed,
            )?;
            let partial = mismatch.input == "liquidation-limit";
            judgement.mismatch = Some(mismatch);
            if partial {
                return Ok((
                    judgement,
                    Some(
                        self.partial_take(&liquidation.market, urn, recorded_debt)?
                            .unwrap_or(take),
                    ),
                ));
            }
        }
        Ok((judgement, Some(take)))
    }

    fn set(
        &mut self,
        market: &Id,
        param: &str,
        value: &Fixed,
        time: Timestamp,
    ) -> Result<Applied, EngineError> {
        let bare = param.rsplit('.').next().unwrap_or(param);
        let contract = param.split('.').next().unwrap_or("");
        let invalid = |reason: &'static str| EngineError::InvalidParam {
            param: param.to_owned(),
            value: value.to_string(),
            reason,
        };
        let rad = |v: &Fixed| fixed_to(v, 45, "rad parameter");
        // Penalties come as the fraction on top (0.13); the contract holds 1.13 wad.
        let chop = |v: &Fixed| -> Result<U256, EngineError> {
            let wad = fixed_to(v, 18, "chop")?;
            Ok(if wad < WAD { wad + WAD } else { wad })
        };
        if IGNORED_PARAMS
            .iter()
            .any(|prefix| param.starts_with(prefix))
        {
            return Ok(Applied::Ignored);
        }
        match (contract, bare) {
            (_, "hop") => {
                let hop = value
                    .rescale(0)
                    .ok_or_else(|| invalid("hop out of range"))?;
                self.hop = i64::try_from(hop).map_err(|_| invalid("hop out of range"))?;
                return Ok(Applied::Exact);
            }
            ("DOG", "Hole") => {
                self.dog_hole = Some(rad(value)?);
                return Ok(Applied::Exact);
            }
            ("CAT", "box") => {
                self.cat_box = Some(rad(value)?);
                return Ok(Applied::Exact);
            }
            (_, "auction_seconds") => {
                let seconds = value.rescale(0).ok_or_else(|| invalid("out of range"))?;
                self.auction_seconds =
                    i64::try_from(seconds).map_err(|_| invalid("out of range"))?;
                return Ok(Applied::Exact);
            }
            _ => {}
        }
        self.ilk_mut(market);
        let value_osm = self.osm_value(market);
        let ilk = self.ilk_mut(market);
        match (contract, bare) {
            (_, "mat") => {
                ilk.mat = fixed_to(value, 27, "mat")?;
                // Spells poke the Spotter right after filing a new mat.
                ilk.poke(value_osm)?;
            }
            (_, "duty") => {
                // Jug.file requires `now == rho`: drip at the old duty first.
                ilk.drip(time)?;
                ilk.duty = per_second_rate(value)?;
                ilk.rpow_cache = None;
            }
            (_, "dust") => ilk.dust = rad(value)?,
            (_, "line") => ilk.line = rad(value)?,
            ("CAT", "chop") => ilk.cat_chop = chop(value)?,
            ("CAT", "dunk") => ilk.dunk = rad(value)?,
            ("DOG", "chop") | ("", "chop") => {
                ilk.dog_chop = chop(value)?;
                ilk.dog_live |= contract == "DOG";
            }
            ("DOG", "hole") | ("", "hole") => {
                ilk.hole = Some(rad(value)?);
                ilk.dog_live |= contract == "DOG";
            }
            (_, "buf") => {
                ilk.clip.buf = fixed_to(value, 27, "buf")?;
                ilk.dog_live |= contract == "CLIPPER";
            }
            (_, "tail") => {
                let tail = value
                    .rescale(0)
                    .ok_or_else(|| invalid("tail out of range"))?;
                ilk.clip.tail = u64::try_from(tail).map_err(|_| invalid("tail out of range"))?;
                ilk.dog_live |= contract == "CLIPPER";
            }
            (_, "cusp") => {
                ilk.clip.cusp = fixed_to(value, 27, "cusp")?;
                ilk.dog_live |= contract == "CLIPPER";
            }
            (_, "chip") => {
                ilk.clip.chip = fixed_to(value, 18, "chip")?;
                ilk.dog_live |= contract == "CLIPPER";
            }
            (_, "tip") => {
                ilk.clip.tip = rad(value)?;
                ilk.dog_live |= contract == "CLIPPER";
            }
            (_, "liquidations") => {
                // Scenario switch: 1 = Dog/Clipper, 0 = Cat/Flipper.
                ilk.dog_live = !value.value.is_zero();
            }
            _ => return Ok(Applied::Skipped("unknown-parameter")),
        }
        Ok(Applied::Exact)
    }
}

/// Which input of the rebuilt vault would have to differ for the formula to give the recorded
/// amounts. A full `bark`/`bite` takes the whole vault: a mismatch in one amount only means the
/// rebuilt vault's debt or collateral differs by that much. A take smaller than the vault in
/// both amounts by one ratio is what `Dog.bark` does when the room under `hole`/`Hole` is short
/// (`dart = min(art, room * WAD / rate / chop)`, `dink = ink * dart / art`): then the room the
/// chain had is the recorded debt times `chop`.
fn mismatch_input(
    take: &Take,
    expected_debt: U256,
    (recorded_collateral, recorded_debt): (U256, U256),
    collateral_differs: bool,
    debt_differs: bool,
) -> Result<MismatchEvidence, EngineError> {
    let signed = |recorded: U256, rebuilt: U256| {
        crate::run::signed_decimal(recorded < rebuilt, recorded.abs_diff(rebuilt), 18)
    };
    let debt_difference = signed(recorded_debt, expected_debt);
    let collateral_difference = signed(recorded_collateral, take.dink);
    Ok(match (collateral_differs, debt_differs) {
        (false, _) => MismatchEvidence {
            input: "debt".into(),
            detail: format!(
                "the rebuilt vault's debt would have to differ by {debt_difference} DAI (recorded minus rebuilt) with its collateral as rebuilt"
            ),
            difference: debt_difference,
        },
        (true, false) => MismatchEvidence {
            input: "collateral".into(),
            detail: format!(
                "the rebuilt vault's collateral would have to differ by {collateral_difference} ETH (recorded minus rebuilt) with its debt as rebuilt"
            ),
            difference: collateral_difference,
        },
        (true, true) => {
            let partial = recorded_collateral < take.dink && recorded_debt < expected_debt;
            // Same share of both within 1%: the contract's partial take.
            let same_share = partial && {
                let by_collateral = mul_div(recorded_collateral, WAD, take.dink, "share")?;
                let by_debt = mul_div(recorded_debt, WAD, expected_debt.max(U256::ONE), "share")?;
                by_collateral.abs_diff(by_debt) * U256::from(100u8) <= by_debt
            };
            if same_share {
                let room = mul_div(recorded_debt, take.tab, take.due.max(U256::ONE), "room")?;
                MismatchEvidence {
                    input: "liquidation-limit".into(),
                    detail: format!(
                        "the same share of collateral and debt was taken: the room under the liquidation limit (Dog hole/Hole minus Dirt, Cat box minus litter) would have to have been {} DAI (recorded debt times chop), where the engine had room for the whole vault's tab (difference: room minus that tab)",
                        crate::math::decimal(room, 18)
                    ),
                    difference: signed(room, take.tab / RAY),
                }
            } else {
                MismatchEvidence {
                    input: "debt-and-collateral".into(),
                    detail: format!(
                        "both amounts differ, by {collateral_difference} ETH and {debt_difference} DAI (recorded minus rebuilt): the rebuilt vault differs in both"
                    ),
                    difference: debt_difference,
                }
            }
        }
    })
}

impl ProtocolModel for MakerModel {
    fn protocol(&self) -> Protocol {
        Protocol::Maker
    }

    fn advance(&mut self, time: Timestamp, _prices: &PriceBook) -> Result<bool, EngineError> {
        self.settle()?;
        self.release_auctions(time);
        let mut changed = false;
        for osm in self.osms.values_mut() {
            changed |= osm.advance(
                time,
                self.hop,
                self.config.osm_sample,
                self.config.max_price_age,
            );
        }
        if changed {
            return self.poke_all();
        }
        Ok(false)
    }

    fn on_price(
        &mut self,
        update: &PriceUpdate,
        _time: Timestamp,
        prices: &PriceBook,
    ) -> Result<bool, EngineError> {
        if update.quote != self.config.quote {
            return Ok(false);
        }
        let relevant = self
            .config
            .price_assets
            .values()
            .any(|assets| assets.contains(&update.asset))
            || self
                .ilks
                .keys()
                .any(|ilk| self.config.price_assets_for(ilk).contains(&update.asset));
        if !relevant {
            return Ok(false);
        }
        let Some(quote) = prices.market(&update.asset, &update.quote) else {
            return Ok(false);
        };
        let wad = fixed_to(&quote.price, 18, "price")?;
        let lag = self.config.feed_lag.get(&quote.feed).copied().unwrap_or(0);
        let osm = self.osms.entry(update.asset).or_default();
        let point = Point {
            time: Timestamp(quote.time.0 - lag),
            price: wad,
            feed: quote.feed,
            grain: prices.grain(&update.asset, &update.quote, &quote.feed),
        };
        if osm.observe(point, self.hop) {
            return self.poke_all();
        }
        Ok(false)
    }

    fn warm(&self, events: &[Event]) -> u64 {
        let mut vaults: [Option<(&Ilk, Slot)>; WARM_BATCH] = [None; WARM_BATCH];
        let mut places = [NO_PLACE; WARM_BATCH];
        // Three passes, each of independent reads: the vault's slot, then its record and index
        // place, then its index member.
        for (event, vault) in events.iter().zip(vaults.iter_mut()) {
            let (market, account) = match &event.payload {
                Payload::Deposit(c)
                | Payload::Withdraw(c)
                | Payload::Borrow(c)
                | Payload::Repay(c) => (&c.market, &c.account),
                Payload::Liquidation(l) => (&l.market, &l.account),
                _ => continue,
            };
            if let Some(ilk) = self.ilks.get(market) {
                *vault = ilk.vaults.find(account).map(|slot| (ilk, slot));
            }
        }
        let mut sum = 0u64;
        for (vault, place) in vaults.iter().zip(places.iter_mut()) {
            if let Some((ilk, slot)) = vault {
                // A record spans two cache lines (80 bytes): read at both ends.
                let record = ilk.vaults.at(*slot);
                sum ^= u64::from(record.flags)
                    ^ u64::from(record.pending.unwrap_or_default())
                    ^ record.ink.as_limbs()[0]
                    ^ record.art.as_limbs()[3];
                *place = ilk.index.warm_place(*slot);
            }
        }
        for (vault, place) in vaults.iter().zip(places) {
            if let Some((ilk, _)) = vault {
                sum ^= ilk.index.warm_member(place);
            }
        }
        sum
    }

    fn apply(&mut self, event: &Event, _prices: &PriceBook) -> Result<Applied, EngineError> {
        match &event.payload {
            Payload::VaultOpen(open) => {
                let ilk = self.ilk_mut(&open.market);
                ilk.vaults.slot_or_insert_with(open.account, Vault::default);
                Ok(Applied::Exact)
            }
            Payload::Deposit(_) | Payload::Withdraw(_) | Payload::Borrow(_) | Payload::Repay(_) => {
                self.apply_position(event)
            }
            Payload::ParamChange(change) => self.set(
                &change.market,
                change.param.as_str(),
                &change.value,
                event.time,
            ),
            Payload::IndexUpdate(update) => {
                // A recorded `Vat.fold`: the ilk's true rate at that time beats our compounding.
                let Some(rate) = update.borrow_index else {
                    return Ok(Applied::Ignored);
                };
                let ilk = self.ilk_mut(&update.market);
                ilk.rate = fixed_to(&rate, 27, "rate")?;
                ilk.rho = Some(event.time);
                Ok(Applied::Exact)
            }
            Payload::OracleValue(value) => self.record_oracle_value(value, event),
            _ => Ok(Applied::Ignored),
        }
    }

    fn set_param(
        &mut self,
        market: &Id,
        param: &str,
        value: &Fixed,
        time: Timestamp,
    ) -> Result<Applied, EngineError> {
        let applied = self.set(market, param, value, time)?;
        self.poke_all()?;
        Ok(applied)
    }

    fn judge(
        &mut self,
        liquidation: &Liquidation,
        time: Timestamp,
    ) -> Result<Judgement, EngineError> {
        let (judgement, take) = self.judge_inner(liquidation, time)?;
        self.judged = take.map(|take| (liquidation.market, liquidation.account, take));
        Ok(judgement)
    }

    fn apply_liquidation(
        &mut self,
        liquidation: &Liquidation,
        judgement: &Judgement,
        time: Timestamp,
    ) -> Result<Applied, EngineError> {
        let market = liquidation.market;
        let account = liquidation.account;
        let judged = self.judged.take();
        let Some(ilk) = self.ilks.get_mut(&market) else {
            return Ok(Applied::Skipped("liquidation-of-unknown-vault"));
        };
        ilk.drip(time)?;
        let Some(vault) = ilk.vaults.get(&account).copied() else {
            return Ok(Applied::Skipped("liquidation-of-unknown-vault"));
        };
        if matches!(
            judgement.verdict,
            Verdict::Explained | Verdict::AmountMismatch
        ) {
            // The rules allow a liquidation now: the contract takes what its formula says from
            // the vault as it is (a differing recorded figure means the rebuilt vault differs).
            let take = match judged {
                Some((judged_market, judged_account, take))
                    if (judged_market, judged_account) == (market, account) =>
                {
                    Some(take)
                }
                _ => self.judge_inner(liquidation, time)?.1,
            };
            if let Some(take) = take {
                self.grab(market, account, take.dink, take.dart, take.tab, time)?;
                return Ok(Applied::Exact);
            }
        }
        // The liquidation happened on chain although the rebuilt state disagrees: follow the
        // record. Its debt figure (`dart * rate`, the export's most precise number) gives `dart`;
        // recorded collateral within the tolerance of the whole vault, or debt within the
        // tolerance of all of it, takes the whole vault (a Dog bark); otherwise the collateral
        // goes in the contracts' proportion `ink * dart / art`.
        let ilk = &self.ilks[&market];
        if vault.art.is_zero() {
            return Ok(Applied::Skipped("liquidation-of-vault-without-debt"));
        }
        let mut dart = mul_div(liquidation.debt_repaid.0, RAY, ilk.rate, "due * RAY / rate")?;
        let near_all = mul_div(
            vault.art,
            U256::from(self.config.debt_tolerance_ppm),
            U256::from(1_000_000u32),
            "tolerance",
        )?;
        let whole_collateral = liquidation.collateral_seized.0
            >= vault.ink.saturating_sub(self.config.collateral_tolerance);
        let mut applied = Applied::Exact;
        if whole_collateral || dart >= vault.art || vault.art - dart <= near_all {
            if dart > vault.art + near_all {
                applied = Applied::Clamped("liquidation-exceeds-debt");
            }
            dart = vault.art;
        }
        let dink = vault
            .ink
            .min(mul_div(vault.ink, dart, vault.art, "ink * dart / art")?);
        let chop = if ilk.dog_live {
            ilk.dog_chop
        } else {
            ilk.cat_chop
        };
        let tab = mul(mul(dart, ilk.rate, "dart * rate")?, chop, "due * chop")? / WAD;
        self.grab(market, account, dink, dart, tab, time)?;
        Ok(applied)
    }

    fn liquidatable(
        &mut self,
        time: Timestamp,
        out: &mut Vec<Candidate>,
    ) -> Result<(), EngineError> {
        for (id, ilk) in self.ilks.iter_mut() {
            if ilk.spot.is_zero() || ilk.index.is_empty() {
                continue;
            }
            ilk.drip(time)?;
            let first = out.len();
            let mut slots = Vec::new();
            for (slot, member) in ilk.index.from_level(level(ilk.spot, ilk.rate)?) {
                let (ink, art) = member.balances(ilk.vaults.at(*slot));
                // Cat.bite / Dog.bark: `mul(ink, spot) < mul(art, rate)`.
                let value = mul(ink, ilk.spot, "ink * spot")?;
                let debt = mul(art, ilk.rate, "art * rate")?;
                if value >= debt {
                    continue;
                }
                slots.push(*slot);
                out.push(Candidate {
                    protocol: Protocol::Maker,
                    market: *id,
                    account: *id,
                    health: div_small_quotient(mul(value, WAD, "ink * spot * WAD")?, debt)
                        .unwrap_or_default(),
                    debt_value: div_ray(debt),
                });
            }
            // The accounts are looked up after the walk, in a loop of nothing but independent
            // reads whose cache misses overlap (inside the walk they would follow one another).
            for (candidate, slot) in out[first..].iter_mut().zip(slots) {
                candidate.account = *ilk.vaults.id(slot);
            }
        }
        Ok(())
    }

    fn simulate_liquidation(
        &mut self,
        candidate: &Candidate,
        choice: &LiquidatorChoice,
        time: Timestamp,
    ) -> Result<Option<SimulatedLiquidation>, EngineError> {
        let value = self.osm_value(&candidate.market);
        let Some(ilk) = self.ilks.get_mut(&candidate.market) else {
            return Ok(None);
        };
        ilk.drip(time)?;
        let Some(vault) = ilk.vaults.get(&candidate.account).copied() else {
            return Ok(None);
        };
        if !rules::is_unsafe(vault.urn(), ilk.spot, ilk.rate)? {
            return Ok(None);
        }
        let rule = Self::rule_name(ilk);
        let Ok(take) = self.take(&self.ilks[&candidate.market], vault.urn())? else {
            return Ok(None);
        };
        self.grab(
            candidate.market,
            candidate.account,
            take.dink,
            take.dart,
            take.tab,
            time,
        )?;
        // The keeper buys the lot at `take_price` (default: the OSM price) until the tab is
        // raised (Clipper.take / Flipper tend): what it buys is sold into the market; the rest of
        // the lot returns to the owner; debt the sale does not cover is bad debt.
        let price = match &choice.take_price {
            Some(price) => fixed_to(price, 18, "take price")?,
            None => value.unwrap_or_default(),
        };
        let lot_value = mul(take.dink, price, "lot * price")?; // rad-like: wad * wad
        let tab_wad_wad = take.tab / BLN; // rad -> wad * wad
        let (sold, raised) = if price.is_zero() {
            (U256::ZERO, U256::ZERO)
        } else if lot_value >= tab_wad_wad {
            (
                mul_div_up(tab_wad_wad, U256::ONE, price, "tab / price")?.min(take.dink),
                take.tab,
            )
        } else {
            (take.dink, lot_value * BLN)
        };
        let bad_debt = take.due.saturating_sub(raised) / RAY;
        let collateral_asset = self.ilks[&candidate.market]
            .price_asset
            .unwrap_or(candidate.market);
        Ok(Some(SimulatedLiquidation {
            protocol: Protocol::Maker,
            market: candidate.market,
            account: candidate.account,
            rule,
            collateral_asset,
            collateral_seized: Quantity::new(take.dink, COLLATERAL_DECIMALS),
            collateral_sold: Quantity::new(sold, COLLATERAL_DECIMALS),
            debt_asset: Id::name("DAI"),
            debt_repaid: Quantity::new(take.due / RAY, DAI_DECIMALS),
            bad_debt: Quantity::new(bad_debt, DAI_DECIMALS),
        }))
    }

    fn risk(&mut self, time: Timestamp, out: &mut Vec<MarketRisk>) -> Result<(), EngineError> {
        let ids: Vec<Id> = self.ilks.keys().copied().collect();
        for id in ids {
            let value = self.osm_value(&id);
            let ilk = self.ilks.get_mut(&id).expect("id taken from the map");
            ilk.refresh(time, value)?;
            let [unsafe_set, underwater] = ilk.watches.unwrap_or_default();
            let price_ray = mul(value.unwrap_or_default(), BLN, "price * 1e9")?;
            // Sums over the sets, then one division: the totals of the vaults' exact values.
            let under_debt = mul(underwater.art, ilk.rate, "sum art * rate")?;
            let under_value = mul(underwater.ink, price_ray, "sum ink * price")?;
            out.push(MarketRisk {
                protocol: Protocol::Maker,
                market: id,
                oracle_price: value.map(|v| Quantity::new(v, 18)),
                accounts_unsafe: unsafe_set.count,
                collateral_at_risk: Quantity::new(
                    div_ray(mul(unsafe_set.ink, price_ray, "sum ink * price")?),
                    DAI_DECIMALS,
                ),
                debt_at_risk: Quantity::new(
                    div_ray(mul(unsafe_set.art, ilk.rate, "sum art * rate")?),
                    DAI_DECIMALS,
                ),
                bad_debt: Quantity::new(
                    div_ray(under_debt.saturating_sub(under_value)),
                    DAI_DECIMALS,
                ),
            });
        }
        Ok(())
    }

    fn unsafe_changes(
        &mut self,
        time: Timestamp,
        out: &mut Vec<(Id, Id, bool)>,
    ) -> Result<bool, EngineError> {
        let ids: Vec<Id> = self.ilks.keys().copied().collect();
        for id in ids {
            let value = self.osm_value(&id);
            let ilk = self.ilks.get_mut(&id).expect("id taken from the map");
            ilk.refresh(time, value)?;
            for (account, (was, now)) in std::mem::take(&mut ilk.changes) {
                if was != now {
                    out.push((id, account, now));
                }
            }
        }
        Ok(true)
    }

    fn take_adjustments(&mut self, out: &mut BTreeMap<&'static str, u64>) {
        for (reason, count) in std::mem::take(&mut self.adjustments) {
            *out.entry(reason).or_default() += count;
        }
    }

    fn encode_state(&self, out: &mut StateWriter) {
        out.i64(self.hop);
        // In (ilk, account) order, whatever order the vaults were acted on in.
        let mut pending: Vec<(&Id, &Id, &Pending)> = self
            .ilks
            .iter()
            .flat_map(|(market, ilk)| {
                ilk.pending
                    .iter()
                    .map(move |(slot, pending)| (market, ilk.vaults.id(*slot), pending))
            })
            .collect();
        pending.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        out.count(pending.len());
        for (market, account, pending) in pending {
            out.id(market);
            out.id(account);
            out.u256(pending.ink_deficit);
            out.u256(pending.art_credit);
            out.u256(pending.repaid_dai);
            out.bool(pending.frobbed);
        }
        out.i64(self.auction_seconds);
        encode_opt(out, self.dog_hole);
        out.u256(self.dog_dirt);
        encode_opt(out, self.cat_box);
        out.u256(self.cat_litter);
        out.count(self.auctions.len());
        for auction in &self.auctions {
            out.id(&auction.ilk);
            out.u256(auction.tab);
            out.bool(auction.dog);
            out.time(auction.settles_at);
        }
        out.count(self.osms.len());
        for (asset, osm) in &self.osms {
            out.id(asset);
            osm.encode(out);
        }
        out.count(self.ilks.len());
        for (id, ilk) in self.ilks.iter() {
            out.id(id);
            out.u256(ilk.rate);
            match ilk.rho {
                Some(rho) => {
                    out.bool(true);
                    out.time(rho);
                }
                None => out.bool(false),
            }
            for value in [
                ilk.duty,
                ilk.mat,
                ilk.spot,
                ilk.dust,
                ilk.line,
                ilk.cat_chop,
                ilk.dunk,
                ilk.dog_chop,
            ] {
                out.u256(value);
            }
            out.bool(ilk.dog_live);
            encode_opt(out, ilk.hole);
            out.u256(ilk.dirt);
            out.u256(ilk.clip.buf);
            out.u64(ilk.clip.tail);
            out.u256(ilk.clip.cusp);
            out.u256(ilk.clip.chip);
            out.u256(ilk.clip.tip);
            match &ilk.price_asset {
                Some(asset) => {
                    out.bool(true);
                    out.id(asset);
                }
                None => out.bool(false),
            }
            out.count(ilk.vaults.len());
            for slot in ilk.vaults.sorted() {
                let vault = ilk.vaults.at(slot);
                out.id(ilk.vaults.id(slot));
                out.u256(vault.ink);
                out.u256(vault.art);
                out.u8(vault.flags);
            }
            match &ilk.watches {
                Some(watches) => {
                    out.bool(true);
                    for watch in watches {
                        out.u256(watch.threshold);
                        out.u256(watch.rate);
                        out.u64(watch.level as u64);
                        out.u64((watch.level >> 64) as u64);
                        out.u64(watch.count);
                        out.u256(watch.ink);
                        out.u256(watch.art);
                    }
                }
                None => out.bool(false),
            }
            out.count(ilk.changes.len());
            for (account, (was, now)) in &ilk.changes {
                out.id(account);
                out.bool(*was);
                out.bool(*now);
            }
        }
        // Last, and only when there are any, so that the state of a log without recorded oracle
        // values is byte for byte what it was before they were modelled (its hash is in goldens).
        if !self.recorded.is_empty() {
            out.count(self.recorded.len());
            for (market, recorded) in &self.recorded {
                out.id(market);
                out.u256(recorded.value);
                out.time(recorded.time);
                out.u64(recorded.seq);
                out.u8(match recorded.source {
                    OracleValueSource::OsmLogValue => 0,
                    OracleValueSource::SpotterPoke => 1,
                });
                out.id(&recorded.oracle);
            }
        }
    }

    fn decode_state(&mut self, input: &mut StateReader<'_>) -> Result<(), EngineError> {
        let mut model = MakerModel::new(self.config.clone());
        model.hop = input.i64()?;
        let mut pending = Vec::new();
        for _ in 0..input.count()? {
            let key = (input.id()?, input.id()?);
            pending.push((
                key,
                Pending {
                    ink_deficit: input.u256()?,
                    art_credit: input.u256()?,
                    repaid_dai: input.u256()?,
                    frobbed: input.bool()?,
                },
            ));
        }
        model.auction_seconds = input.i64()?;
        model.dog_hole = decode_opt(input)?;
        model.dog_dirt = input.u256()?;
        model.cat_box = decode_opt(input)?;
        model.cat_litter = input.u256()?;
        for _ in 0..input.count()? {
            model.auctions.push(OpenAuction {
                ilk: input.id()?,
                tab: input.u256()?,
                dog: input.bool()?,
                settles_at: input.time()?,
            });
        }
        for _ in 0..input.count()? {
            let asset = input.id()?;
            model.osms.insert(asset, Osm::decode(input)?);
        }
        for _ in 0..input.count()? {
            let id = input.id()?;
            let mut ilk = Ilk {
                rate: input.u256()?,
                rho: if input.bool()? {
                    Some(input.time()?)
                } else {
                    None
                },
                ..Ilk::default()
            };
            ilk.duty = input.u256()?;
            ilk.mat = input.u256()?;
            ilk.spot = input.u256()?;
            ilk.dust = input.u256()?;
            ilk.line = input.u256()?;
            ilk.cat_chop = input.u256()?;
            ilk.dunk = input.u256()?;
            ilk.dog_chop = input.u256()?;
            ilk.dog_live = input.bool()?;
            ilk.hole = decode_opt(input)?;
            ilk.dirt = input.u256()?;
            ilk.clip = Clip {
                buf: input.u256()?,
                tail: input.u64()?,
                cusp: input.u256()?,
                chip: input.u256()?,
                tip: input.u256()?,
            };
            ilk.price_asset = if input.bool()? {
                Some(input.id()?)
            } else {
                None
            };
            for _ in 0..input.count()? {
                let account = input.id()?;
                let vault = Vault {
                    ink: input.u256()?,
                    art: input.u256()?,
                    pending: None,
                    flags: input.u8()?,
                };
                let (slot, _) = ilk.vaults.slot_or_insert_with(account, || vault);
                // No watches yet: this only rebuilds the index entry.
                ilk.reindex(slot, vault)?;
            }
            if input.bool()? {
                let mut watches = [Watch::default(); 2];
                for watch in &mut watches {
                    watch.threshold = input.u256()?;
                    watch.rate = input.u256()?;
                    let low = input.u64()?;
                    let high = input.u64()?;
                    watch.level = u128::from(low) | (u128::from(high) << 64);
                    watch.count = input.u64()?;
                    watch.ink = input.u256()?;
                    watch.art = input.u256()?;
                }
                ilk.watches = Some(watches);
            }
            for _ in 0..input.count()? {
                let account = input.id()?;
                let was = input.bool()?;
                let now = input.bool()?;
                ilk.changes.insert(account, (was, now));
            }
            model.ilks.insert(id, ilk);
        }
        if !input.at_end() {
            for _ in 0..input.count()? {
                let market = input.id()?;
                let value = input.u256()?;
                let time = input.time()?;
                let seq = input.u64()?;
                let source = match input.u8()? {
                    0 => OracleValueSource::OsmLogValue,
                    1 => OracleValueSource::SpotterPoke,
                    other => return Err(input.error(format!("oracle value source {other}"))),
                };
                let oracle = input.id()?;
                model.recorded.insert(
                    market,
                    Recorded {
                        value,
                        time,
                        seq,
                        source,
                        oracle,
                    },
                );
            }
        }
        for ((market, account), entry) in pending {
            let ilk = model.ilks.get_mut(&market);
            let Some((ilk, slot)) = ilk.and_then(|ilk| ilk.vaults.find(&account).map(|s| (ilk, s)))
            else {
                return Err(input.error(format!(
                    "pending actions of vault {account} in {market}, which the state lacks"
                )));
            };
            ilk.vaults.at_mut(slot).pending = Some(ilk.pending.len() as u32);
            ilk.pending.push((slot, entry));
        }
        *self = model;
        Ok(())
    }

    /// Health `ink * spot / (art * rate)` of every vault, the rate projected to `time` as
    /// `Jug.drip` would (without dripping: the state is not touched); debt `art * rate` in DAI.
    fn health_distribution(
        &self,
        time: Timestamp,
        out: &mut Vec<crate::protocol::HealthDistribution>,
    ) {
        for (id, ilk) in self.ilks.iter() {
            let mut distribution =
                crate::protocol::HealthDistribution::new(Protocol::Maker, *id, DAI_DECIMALS);
            let rate = match ilk.rho {
                Some(rho) if time > rho => rpow(ilk.duty, (time.0 - rho.0) as u64, RAY)
                    .and_then(|factor| rmul(factor, ilk.rate, "rpow(duty) * rate"))
                    .ok(),
                _ => Some(ilk.rate),
            };
            // Counts and sums: the order of the vaults does not matter, so no sorting.
            for vault in ilk.vaults.values() {
                if vault.art.is_zero() {
                    if !vault.ink.is_zero() {
                        distribution.without_debt += 1;
                    }
                    continue;
                }
                let judged = rate.filter(|_| !ilk.spot.is_zero()).and_then(|rate| {
                    let health = rules::health(vault.urn(), ilk.spot, rate).ok()??;
                    Some((health, div_ray(mul(vault.art, rate, "art * rate").ok()?)))
                });
                match judged {
                    Some((health, debt)) => distribution.add(health, debt),
                    None => distribution.unpriced += 1,
                }
            }
            out.push(distribution);
        }
    }
}

fn encode_opt(out: &mut StateWriter, value: Option<U256>) {
    match value {
        Some(value) => {
            out.bool(true);
            out.u256(value);
        }
        None => out.bool(false),
    }
}

fn decode_opt(input: &mut StateReader<'_>) -> Result<Option<U256>, EngineError> {
    Ok(if input.bool()? {
        Some(input.u256()?)
    } else {
        None
    })
}
