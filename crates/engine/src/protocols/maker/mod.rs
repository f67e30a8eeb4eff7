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
//!
//! By contract: `vat` (vaults and ilks), `jug_spot` (`drip`, `poke`), [`osm`], `auction` (Dog and
//! Clipper, Cat and Flipper), [`rules`] (`bark`/`bite` arithmetic), `index` (the vault index and
//! the unsafe and underwater sets), `judge` (recorded liquidations), `episodes` (what a check sees of an unsafe vault), `codec` (the state encoding),
//! `config` ([`MakerConfig`]), [`param`] (its parameters) and `spec` (its registry entry); this
//! file holds the model and its [`ProtocolModel`] implementation.

mod accounts;
mod auction;
mod codec;
mod config;
mod episodes;
mod index;
mod judge;
mod jug_spot;
mod osm;
pub mod param;
pub mod rules;
mod snapshot;
mod spec;
mod vat;

use std::collections::BTreeMap;

use cascade_events::{
    Event, Fixed, Id, Liquidation, OracleValue, OracleValueSource, Payload, PositionSnapshot,
    PriceUpdate, Protocol, Timestamp, U256,
};

use auction::*;
use config::*;
pub use config::{MakerConfig, OracleMode};
use index::*;
pub use osm::{MedianRule, Osm, OsmSample, Point, Reading};
pub use param::MakerParam;
use rules::{Refusal, Take, Urn};
pub use spec::MAKER;
pub use vat::VaultView;
use vat::*;

use crate::EngineError;
use crate::index::BucketIndex;
use crate::math::{
    BLN, RAY, WAD, add, div_ray, div_small_quotient, fixed_to, mul, mul_div, mul_div_up,
    per_second_rate, rmul, rpow,
};
use crate::oracle::PriceBook;
use crate::protocol::param::{ParamSetting, ProtocolParam};
use crate::protocol::{
    Applied, Candidate, Judgement, LiquidatorChoice, MarketRisk, ProtocolModel, Quantity,
    SimulatedLiquidation, Verdict, WARM_BATCH,
};
use crate::run::{
    MakerSettings, MedianRuleSetting, MismatchEvidence, OracleEvidence, RecordedOracle,
};
use crate::slots::{Slot, Slots, SmallMap};
use crate::state::{StateReader, StateWriter};

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
    /// Counts of corrections made by [`MakerModel::settle`], drained by the replay loop.
    adjustments: BTreeMap<&'static str, u64>,
    /// Vaults whose missing repayment was inferred, with the debt cleared (wad DAI), not yet
    /// handed over (not state: handed over after every event).
    corrected: Vec<(Id, Id, U256)>,
    /// Snapshot differences not yet handed over (not state: handed over after every event).
    snapshot_differences: Vec<crate::protocol::accounts::SnapshotDifference>,
    /// Recorded oracle values by what they name: an ilk (Spotter `Poke`) or a collateral (OSM
    /// `LogValue`).
    recorded: BTreeMap<Id, Recorded>,
    /// What each check saw of the ilks with an open unsafe episode (not state).
    episode_log: episodes::EpisodeLog,
    /// The take of the liquidation judged last, for applying it (not state).
    judged: std::cell::Cell<Option<judge::JudgedTake>>,
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
            adjustments: BTreeMap::new(),
            corrected: Vec::new(),
            snapshot_differences: Vec::new(),
            recorded: BTreeMap::new(),
            episode_log: episodes::EpisodeLog::default(),
            judged: std::cell::Cell::new(None),
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
        // Without recorded values (most logs) the collateral's name is not worked out: a
        // string and a parse per judged liquidation.
        if self.config.oracle == OracleMode::Estimated || self.recorded.is_empty() {
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
        if self.recorded_for(ilk_id).is_none()
            && self.config.oracle != OracleMode::Recorded
            && let Some(ilk) = self.ilks.get_mut(ilk_id)
            && ilk.price_asset.is_none()
        {
            let assets = self.config.price_assets_for(ilk_id);
            ilk.price_asset = assets.into_iter().find(|asset| {
                self.osms
                    .get(asset)
                    .is_some_and(|osm| osm.value().is_some())
            });
        }
        self.resolved_osm_value(ilk_id)
    }

    /// [`MakerModel::osm_value`] once the ilk's price asset is resolved (as
    /// [`ProtocolModel::prepare_judge`] does), without resolving it.
    fn resolved_osm_value(&self, ilk_id: &Id) -> Option<U256> {
        self.osm_value_from(
            ilk_id,
            self.ilks.get(ilk_id).and_then(|ilk| ilk.price_asset),
        )
    }

    /// [`MakerModel::osm_value`] without resolving the price asset for good (for reads that must
    /// not change the state, as [`ProtocolModel::accounts`]).
    fn osm_value_now(&self, ilk_id: &Id) -> Option<U256> {
        self.osm_value_from(ilk_id, self.price_asset(ilk_id))
    }

    /// The OSM value feeding `ilk` when `asset` is its price asset.
    fn osm_value_from(&self, ilk_id: &Id, asset: Option<Id>) -> Option<U256> {
        if let Some(recorded) = self.recorded_for(ilk_id) {
            return Some(recorded.value).filter(|value| !value.is_zero());
        }
        if self.config.oracle == OracleMode::Recorded {
            return None;
        }
        self.osms.get(&asset?)?.value()
    }

    /// The asset whose OSM feeds `ilk`: the one resolved, else the first configured with a
    /// value.
    fn price_asset(&self, ilk_id: &Id) -> Option<Id> {
        let ilk = self.ilks.get(ilk_id)?;
        ilk.price_asset.or_else(|| {
            self.config
                .price_assets_for(ilk_id)
                .into_iter()
                .find(|asset| {
                    self.osms
                        .get(asset)
                        .is_some_and(|osm| osm.value().is_some())
                })
        })
    }

    /// Where the OSM value feeding `ilk` came from.
    fn osm_reading(&self, ilk_id: &Id) -> Option<Reading> {
        let asset = self.ilks.get(ilk_id)?.price_asset?;
        self.osms.get(&asset)?.reading()
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
        for (ilk_id, ilk) in self.ilks.iter_mut() {
            if ilk.pending.is_empty() {
                continue;
            }
            let (rate, dust) = (ilk.rate, ilk.dust);
            for (slot, pending) in std::mem::take(&mut ilk.pending) {
                let vault = ilk.vaults.at_mut(slot);
                vault.pending = None;
                let before = *vault;
                let mut inferred = None;
                if pending.ink_deficit > self.config.collateral_tolerance {
                    *self
                        .adjustments
                        .entry("withdraw-exceeds-collateral")
                        .or_default() += 1;
                }
                let credit = mul(pending.art_credit, rate, "credit * rate")?;
                let repaid_tolerance = mul(pending.repaid_dai, RAY * ppm, "tolerance")?;
                // The tolerance is at least two RAY: no credit is within it without dividing.
                if !credit.is_zero()
                    && credit > repaid_tolerance / U256::from(1_000_000u32) + RAY * U256::from(2u8)
                {
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
                        if reason == "missing-repayment-inferred" {
                            inferred = Some(debt / RAY);
                        }
                    }
                }
                let changed = vault.art != before.art;
                if let Some(debt) = inferred {
                    // The vault's id is read only here: a cache miss per vault of the second
                    // otherwise (its actions found the vault by number, never by id).
                    self.corrected.push((*ilk_id, *ilk.vaults.id(slot), debt));
                }
                if changed {
                    ilk.reindex(slot, before)?;
                }
            }
        }
        Ok(())
    }

    fn set(
        &mut self,
        market: Option<&Id>,
        param: MakerParam,
        value: &Fixed,
        time: Timestamp,
    ) -> Result<Applied, EngineError> {
        let invalid = |reason: &'static str| EngineError::InvalidParam {
            param: param.name().to_owned(),
            value: value.to_string(),
            reason,
        };
        let rad = |v: &Fixed| fixed_to(v, 45, "rad parameter");
        // Penalties come as the fraction on top (0.13); the contract holds 1.13 wad.
        let chop = |v: &Fixed| -> Result<U256, EngineError> {
            let wad = fixed_to(v, 18, "chop")?;
            Ok(if wad < WAD { wad + WAD } else { wad })
        };
        match param {
            MakerParam::Untracked => return Ok(Applied::Ignored),
            MakerParam::Hop => {
                let hop = value
                    .rescale(0)
                    .ok_or_else(|| invalid("hop out of range"))?;
                self.hop = i64::try_from(hop).map_err(|_| invalid("hop out of range"))?;
                return Ok(Applied::Exact);
            }
            MakerParam::GlobalHole => {
                self.dog_hole = Some(rad(value)?);
                return Ok(Applied::Exact);
            }
            MakerParam::CatBox => {
                self.cat_box = Some(rad(value)?);
                return Ok(Applied::Exact);
            }
            MakerParam::AuctionSeconds => {
                let seconds = value.rescale(0).ok_or_else(|| invalid("out of range"))?;
                self.auction_seconds =
                    i64::try_from(seconds).map_err(|_| invalid("out of range"))?;
                return Ok(Applied::Exact);
            }
            _ => {}
        }
        let market = market.ok_or_else(|| invalid("an ilk parameter needs an ilk"))?;
        self.ilk_mut(market);
        let value_osm = self.osm_value(market);
        let ilk = self.ilk_mut(market);
        match param {
            MakerParam::Mat => {
                ilk.mat = fixed_to(value, 27, "mat")?;
                // Spells poke the Spotter right after filing a new mat.
                ilk.poke(value_osm)?;
            }
            MakerParam::Duty | MakerParam::DutyPerSecond => {
                // Jug.file requires `now == rho`: drip at the old duty first.
                ilk.drip(time)?;
                ilk.duty = if param == MakerParam::Duty {
                    per_second_rate(value)?
                } else {
                    fixed_to(value, 27, "duty")?
                };
                ilk.rpow_cache = None;
            }
            MakerParam::Dust => ilk.dust = rad(value)?,
            MakerParam::Line => ilk.line = rad(value)?,
            MakerParam::CatChop => ilk.cat_chop = chop(value)?,
            MakerParam::CatDunk => ilk.dunk = rad(value)?,
            MakerParam::DogChop | MakerParam::Chop => {
                ilk.dog_chop = chop(value)?;
                ilk.dog_live |= param == MakerParam::DogChop;
            }
            MakerParam::DogHole | MakerParam::Hole => {
                ilk.hole = Some(rad(value)?);
                ilk.dog_live |= param == MakerParam::DogHole;
            }
            MakerParam::ClipperBuf | MakerParam::Buf => {
                ilk.clip.buf = fixed_to(value, 27, "buf")?;
                ilk.dog_live |= param == MakerParam::ClipperBuf;
            }
            MakerParam::ClipperTail | MakerParam::Tail => {
                let tail = value
                    .rescale(0)
                    .ok_or_else(|| invalid("tail out of range"))?;
                ilk.clip.tail = u64::try_from(tail).map_err(|_| invalid("tail out of range"))?;
                ilk.dog_live |= param == MakerParam::ClipperTail;
            }
            MakerParam::ClipperCusp | MakerParam::Cusp => {
                ilk.clip.cusp = fixed_to(value, 27, "cusp")?;
                ilk.dog_live |= param == MakerParam::ClipperCusp;
            }
            MakerParam::ClipperChip | MakerParam::Chip => {
                ilk.clip.chip = fixed_to(value, 18, "chip")?;
                ilk.dog_live |= param == MakerParam::ClipperChip;
            }
            MakerParam::ClipperTip | MakerParam::Tip => {
                ilk.clip.tip = rad(value)?;
                ilk.dog_live |= param == MakerParam::ClipperTip;
            }
            MakerParam::Liquidations => {
                ilk.dog_live = !value.value.is_zero();
            }
            MakerParam::Unknown => return Ok(Applied::Skipped("unknown-parameter")),
            MakerParam::Untracked
            | MakerParam::Hop
            | MakerParam::GlobalHole
            | MakerParam::CatBox
            | MakerParam::AuctionSeconds => unreachable!("protocol-wide parameters return above"),
        }
        Ok(Applied::Exact)
    }
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
                payload => match payload.liquidated() {
                    Some((_, market, account)) => (market, account),
                    None => continue,
                },
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
                Some(&change.market),
                MakerParam::parse(change.param.as_str()).unwrap_or(MakerParam::Unknown),
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
            Payload::PositionSnapshot(snapshot) => self.apply_snapshot(snapshot, event.time),
            // A vault has no totals form: its snapshot row is already the whole vault.
            Payload::AccountTotals(_) => Ok(Applied::Skipped("account-totals-not-modelled")),
            _ => Ok(Applied::Ignored),
        }
    }

    fn set_param(
        &mut self,
        setting: &ParamSetting,
        time: Timestamp,
    ) -> Result<Applied, EngineError> {
        let param =
            MakerParam::from_id(setting.param, Protocol::Maker).ok_or_else(|| setting.foreign())?;
        let applied = self.set(setting.market.as_ref(), param, &setting.value, time)?;
        self.poke_all()?;
        Ok(applied)
    }

    /// `Jug.drip` and `Spotter.poke` of the liquidated ilk, as a keeper does before `bark`.
    fn prepare_judge(
        &mut self,
        liquidation: &Liquidation,
        time: Timestamp,
    ) -> Result<(), EngineError> {
        let value = self.osm_value(&liquidation.market);
        if let Some(ilk) = self.ilks.get_mut(&liquidation.market) {
            ilk.drip(time)?;
            ilk.poke(value)?;
        }
        Ok(())
    }

    /// `Dog.bark` and `Cat.bite` take the vault's debt (up to the limits): the keeper chooses
    /// nothing.
    fn liquidator_chooses_repayment(&self) -> bool {
        false
    }

    fn judge(&self, liquidation: &Liquidation, _time: Timestamp) -> Result<Judgement, EngineError> {
        let (judgement, take) = self.judge_inner(liquidation)?;
        self.judged.set(
            self.take_inputs(liquidation)
                .map(|inputs| judge::JudgedTake { inputs, take }),
        );
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
            // Judged just before, as a replay does: the take found then, unless an input moved.
            let take = match self.judged.take() {
                Some(judged) if Some(judged.inputs) == self.take_inputs(liquidation) => judged.take,
                _ => self.judge_inner(liquidation)?.1,
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

    fn explains_episodes(&self) -> bool {
        true
    }

    fn log_episode_check(
        &mut self,
        check: u64,
        markets: &[Id],
        changed: &mut Vec<(Id, Id)>,
    ) -> Result<(), EngineError> {
        self.log_check(check, markets, changed)
    }

    fn episode_account(&self, market: &Id, account: &Id) -> crate::protocol::EpisodeAccount {
        self.vault_account(market, account)
    }

    fn fold_episode(
        &self,
        market: &Id,
        account: crate::protocol::EpisodeAccount,
        checks: std::ops::Range<u64>,
        observe: &mut dyn FnMut(&crate::protocol::EpisodeCheck),
    ) -> Result<(), EngineError> {
        self.fold_checks(market, account, checks, observe)
    }

    fn trim_episode_log(&mut self, first: u64) {
        self.trim_log(first);
    }

    fn take_corrected_accounts(&mut self, out: &mut Vec<(Id, Id, U256)>) {
        out.append(&mut self.corrected);
    }

    fn snapshot_differences(
        &mut self,
        _instant_ended: bool,
        out: &mut Vec<crate::protocol::accounts::SnapshotDifference>,
    ) {
        out.append(&mut self.snapshot_differences);
    }

    fn take_adjustments(&mut self, out: &mut BTreeMap<&'static str, u64>) {
        for (reason, count) in std::mem::take(&mut self.adjustments) {
            *out.entry(reason).or_default() += count;
        }
    }

    fn encode_state(&self, out: &mut StateWriter) {
        self.encode(out);
    }

    fn decode_state(&mut self, input: &mut StateReader<'_>) -> Result<(), EngineError> {
        self.decode(input)
    }

    /// Health `ink * spot / (art * rate)` of every vault, the rate projected to `time` as
    /// `Jug.drip` would (without dripping: the state is not touched); debt `art * rate` in DAI.
    fn accounts(&self, time: Timestamp, out: &mut Vec<crate::protocol::accounts::AccountPosition>) {
        self.vault_positions(time, out);
    }

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
