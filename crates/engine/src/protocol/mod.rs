//! The one interface every protocol model implements, and the values that cross it.
//!
//! The replay loop knows nothing about vaults, reserves or cTokens: it hands each protocol's
//! events to that protocol's [`ProtocolModel`], asks it to judge recorded liquidations, to list
//! what is liquidatable now, to liquidate on behalf of a simulated liquidator, and to report risk.
//! Adding a protocol means one folder under `protocols/` implementing this trait, its parameter
//! enum ([`param::ProtocolParam`]) and its [`registry::ProtocolSpec`], and one line in
//! [`crate::protocols::REGISTRY`].
//!
//! Contract for implementors:
//! - Pure: the result of every method depends only on the model's state and its arguments. No
//!   clock, no randomness, no hash-ordered iteration reaching any output or the state encoding.
//! - Money in integers exactly as the contracts hold it; every rule cites the contract function
//!   it mirrors.
//! - [`ProtocolModel::liquidatable`] and [`ProtocolModel::risk`] must not scan every account:
//!   use a [`crate::LiquidationIndex`] (or an equivalent prefilter plus exact confirmation).

pub mod accounts;
pub mod param;
pub mod registry;

use cascade_events::{Event, Fixed, Id, Liquidation, PriceUpdate, Protocol, Timestamp, U256};
use serde::Serialize;

use crate::protocol::accounts::AccountPosition;
use crate::protocol::param::ParamSetting;

use crate::EngineError;
use crate::oracle::PriceBook;
use crate::run::{MismatchEvidence, MissingInput, OracleEvidence, SeizeCheck};
use crate::state::{StateReader, StateWriter};

/// An amount with its precision: the run file's exact decimal, defined with it.
pub use cascade_run::Quantity;

/// What became of a non-liquidation event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied as recorded.
    Exact,
    /// Applied after clamping to what the state allows (repaying more debt than there is,
    /// withdrawing more collateral than deposited); the reason is counted in the run file.
    Clamped(&'static str),
    /// Not applicable to the rebuilt state and skipped (e.g. an action on an account the model
    /// never saw open); the reason is counted in the run file.
    Skipped(&'static str),
    /// Not something this model tracks (an auction take, a debt-ceiling change); not counted.
    Ignored,
}

/// The engine's judgement of a recorded liquidation, as the run file names it.
pub use cascade_run::Verdict;

/// A verdict with the numbers behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// Which rule judged it (`cat-bite`, `dog-bark`, `aave-v2-liquidation-call`).
    pub rule: &'static str,
    /// The account's health at that moment as the protocol defines it (Maker
    /// `ink * spot / (art * rate)`, Aave health factor), wad precision; below one is liquidatable.
    pub health: Option<Quantity>,
    /// Collateral the protocol's formula takes, in the collateral's base units.
    pub expected_collateral: Option<Quantity>,
    /// Debt figure the formula gives, comparable with the recorded one (Maker Cat `tab`, Dog
    /// `due`; Aave debt covered).
    pub expected_debt: Option<Quantity>,
    /// A short explanation where the verdict is not `explained` (which amount, which tolerance).
    pub note: Option<String>,
    /// Decimals of the recorded collateral amount (the collateral token's).
    pub collateral_decimals: u8,
    /// Decimals of the recorded debt amount (the debt token's).
    pub debt_decimals: u8,
    /// The oracle price the verdict used, where it came from and, when not `explained`, the
    /// break-even price (models that know them).
    pub oracle: Option<OracleEvidence>,
    /// For an `amount-mismatch` (or a seize check's `mismatch`), the input that would have to
    /// differ.
    pub mismatch: Option<MismatchEvidence>,
    /// For a `no-price` (or a seize check's `no-price`), the input missing and its asset.
    pub missing: Option<MissingInput>,
    /// For an `unknown-account` of a lending model, the seize formula checked on the recorded
    /// amounts alone.
    pub seize: Option<SeizeCheck>,
}

impl Judgement {
    /// A judgement with only a verdict, rule and the recorded amounts' decimals.
    pub fn bare(
        verdict: Verdict,
        rule: &'static str,
        collateral_decimals: u8,
        debt_decimals: u8,
    ) -> Self {
        Self {
            verdict,
            rule,
            health: None,
            expected_collateral: None,
            expected_debt: None,
            note: None,
            collateral_decimals,
            debt_decimals,
            oracle: None,
            mismatch: None,
            missing: None,
            seize: None,
        }
    }

    /// A `no-price` judgement naming the input it lacked, with `note` saying it in words.
    pub fn no_price(
        rule: &'static str,
        collateral_decimals: u8,
        debt_decimals: u8,
        missing: MissingInput,
    ) -> Self {
        let mut judgement = Self::bare(Verdict::NoPrice, rule, collateral_decimals, debt_decimals);
        judgement.note = Some(format!("no {missing}"));
        judgement.missing = Some(missing);
        judgement
    }
}

/// An account the rules allow to be liquidated now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Protocol.
    pub protocol: Protocol,
    /// Ilk, pool or comptroller.
    pub market: Id,
    /// The account.
    pub account: Id,
    /// Health (wad), below one.
    pub health: U256,
    /// Debt at stake in the protocol's base currency (Maker DAI wad), for liquidator policies
    /// that pick the largest.
    pub debt_value: U256,
}

/// What one check saw of an account found unsafe: the evidence an unsafe episode's cause is
/// decided from (`run::EpisodeEvidence`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpisodeCheck {
    /// Health, wad (below one: unsafe).
    pub health: U256,
    /// The contract's revert reason, when its liquidation call would fail now although the
    /// account is unsafe (Maker: `Dog.bark`'s or `Cat.bite`'s limit and dust rules).
    pub refusal: Option<&'static str>,
    /// The room the liquidation limits leave, in the debt's unit (wad); `None`: unlimited.
    pub room: Option<U256>,
    /// The account's debt, wad.
    pub debt: U256,
    /// The protocol's smallest debt worth an auction (Maker `dust`), wad.
    pub dust: U256,
    /// The market feed behind the oracle price, or the oracle contract when the price was its
    /// recorded value.
    pub feed: Option<Id>,
    /// How old the market price was when the oracle read it, seconds (estimated prices only).
    pub age: Option<i64>,
    /// Whether the price was the oracle's own recorded value.
    pub recorded: bool,
}

/// What an unsafe episode's evidence reads of the account itself at a check (Maker: the vault's
/// `ink` and `art`), beside what every account of its market shares; `None`: the account gives
/// no evidence. Only events on the account change it, so an episode keeps one per stretch of
/// checks instead of asking at every check.
pub type EpisodeAccount = Option<[U256; 2]>;

/// Which liquidation the liquidator prefers: which (collateral, debt) pair of an account (passed to
/// the protocol as [`LiquidatorChoice::pair`]), and which accounts first when it cannot do
/// all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PairChoice {
    /// The largest debt first (the most it can repay).
    #[default]
    LargestDebt,
    /// The highest liquidation bonus first; ties by the largest debt. Candidates whose protocol
    /// reports no bonus rank by debt alone.
    BestBonus,
}

/// What a simulated liquidator asks the protocol to do with one candidate. The protocol applies
/// its own formula within these limits; it never exceeds what its rules allow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiquidatorChoice {
    /// Collateral to seize, for protocols where the liquidator picks (Aave, Compound); `None`:
    /// chosen by `pair`.
    pub collateral_asset: Option<Id>,
    /// Debt to repay, where the liquidator picks; `None`: chosen by `pair`.
    pub debt_asset: Option<Id>,
    /// How the protocol picks the collateral and debt left open above:
    /// [`PairChoice::LargestDebt`] the largest collateral and the largest debt position (by value
    /// at the oracle price); [`PairChoice::BestBonus`] the pair whose liquidation, by the
    /// protocol's own seize formula, gives the liquidator the most value beyond the debt it repays
    /// (ties: the smallest collateral id, then debt id). Maker has one pair per vault.
    pub pair: PairChoice,
    /// Upper bound on debt repaid, in the debt token's base units; `None`: as much as the rules
    /// allow (close factor, Maker `hole`).
    pub max_repay: Option<U256>,
    /// Price (debt units per whole collateral token, as a [`Fixed`]) at which the liquidator
    /// buys seized collateral in a protocol that auctions it (Maker Clipper): determines how much
    /// of the auction's `tab` is covered and how much collateral goes back to the owner.
    pub take_price: Option<Fixed>,
}

/// What a simulated liquidation did, for the run file and the price-impact model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimulatedLiquidation {
    /// Protocol.
    pub protocol: Protocol,
    /// Ilk, pool or comptroller.
    pub market: Id,
    /// The account liquidated.
    pub account: Id,
    /// Which rule applied (`dog-bark`, `cat-bite`, ...).
    pub rule: &'static str,
    /// The collateral asset sold into the market: what a price-impact model moves.
    pub collateral_asset: Id,
    /// Collateral taken from the account, base units.
    pub collateral_seized: Quantity,
    /// Of that, collateral actually sold by the liquidator (Maker: the part of the lot a keeper
    /// bought; the rest goes back to the owner), base units.
    pub collateral_sold: Quantity,
    /// The debt asset.
    pub debt_asset: Id,
    /// Debt removed from the account (Maker `due`, Aave debt covered), base units.
    pub debt_repaid: Quantity,
    /// Debt left without collateral behind it by this liquidation (auction shortfall), base units
    /// of the debt asset.
    pub bad_debt: Quantity,
}

/// Risk of one market at one moment, in the protocol's base currency (Maker: DAI wad).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarketRisk {
    /// Protocol.
    pub protocol: Protocol,
    /// Ilk, pool or comptroller.
    pub market: Id,
    /// The price the protocol's oracle rule reads now (Maker: OSM value), if any.
    pub oracle_price: Option<Quantity>,
    /// Accounts liquidatable now.
    pub accounts_unsafe: u64,
    /// Market value of the collateral of those accounts.
    pub collateral_at_risk: Quantity,
    /// Debt of those accounts.
    pub debt_at_risk: Quantity,
    /// Debt in excess of the market value of its collateral, summed over underwater accounts.
    pub bad_debt: Quantity,
}

/// Upper edges of the health-factor buckets of a [`HealthDistribution`], wad: bucket `i` holds
/// health in `[EDGES[i-1], EDGES[i])`, bucket 0 everything below one (liquidatable), the last
/// bucket everything at or above three. Fixed so that every run, protocol and market is
/// bucketed alike (`docs/run-format.md`).
pub const HEALTH_BUCKET_EDGES: [u64; 7] = [
    1_000_000_000_000_000_000,
    1_050_000_000_000_000_000,
    1_100_000_000_000_000_000,
    1_250_000_000_000_000_000,
    1_500_000_000_000_000_000,
    2_000_000_000_000_000_000,
    3_000_000_000_000_000_000,
];

/// Names of the buckets of [`HEALTH_BUCKET_EDGES`], as run files show them.
pub const HEALTH_BUCKET_NAMES: [&str; 8] = [
    "<1", "1-1.05", "1.05-1.1", "1.1-1.25", "1.25-1.5", "1.5-2", "2-3", ">=3",
];

/// Accounts of one market by health factor at one moment, with their debt: what the report's
/// "health before and after" chart draws.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthDistribution {
    /// Protocol.
    pub protocol: Protocol,
    /// Ilk, pool or comptroller.
    pub market: Id,
    /// Accounts with debt per bucket of [`HEALTH_BUCKET_EDGES`].
    pub accounts: [u64; 8],
    /// Their debt per bucket, in the protocol's base currency at `debt_decimals` (Maker DAI wad,
    /// Aave v2 ETH wei, Aave v3 USD with 8 decimals, Compound USD wad).
    pub debt: [U256; 8],
    /// Decimals of `debt`.
    pub debt_decimals: u8,
    /// Accounts with collateral and no debt (no health factor, nothing to liquidate).
    pub without_debt: u64,
    /// Accounts with debt whose health cannot be computed (a price or decimals unknown, or an
    /// amount beyond 256 bits).
    pub unpriced: u64,
}

impl HealthDistribution {
    /// An empty distribution of `market`, debt at `debt_decimals`.
    pub fn new(protocol: Protocol, market: Id, debt_decimals: u8) -> Self {
        Self {
            protocol,
            market,
            accounts: [0; 8],
            debt: [U256::ZERO; 8],
            debt_decimals,
            without_debt: 0,
            unpriced: 0,
        }
    }

    /// The bucket of a health factor (wad).
    pub fn bucket(health: U256) -> usize {
        HEALTH_BUCKET_EDGES.partition_point(|edge| U256::from(*edge) <= health)
    }

    /// Counts an account of health `health` (wad) owing `debt`; a zero debt counts as
    /// [`HealthDistribution::without_debt`] whatever the health.
    pub fn add(&mut self, health: U256, debt: U256) {
        if debt.is_zero() {
            self.without_debt += 1;
            return;
        }
        let bucket = Self::bucket(health);
        self.accounts[bucket] += 1;
        self.debt[bucket] = self.debt[bucket].saturating_add(debt);
    }

    /// Whether no account at all was counted.
    pub fn is_empty(&self) -> bool {
        self.without_debt == 0 && self.unpriced == 0 && self.accounts.iter().all(|n| *n == 0)
    }
}

/// A copy of a boxed model. Every model is `Clone`; this makes the copy available behind
/// `dyn ProtocolModel`, so a sweep can decode its window state once and copy it for each point
/// ([`crate::Engine::restore_from`]).
pub trait ModelClone {
    /// A deep copy of this model.
    fn clone_model(&self) -> Box<dyn ProtocolModel>;
}

impl<T: ProtocolModel + Clone + 'static> ModelClone for T {
    fn clone_model(&self) -> Box<dyn ProtocolModel> {
        Box::new(self.clone())
    }
}

/// How many events [`ProtocolModel::warm`] is given at most: enough for the reads of a batch
/// to overlap, few enough for what they bring in to stay in the cache until applied.
pub const WARM_BATCH: usize = 32;

/// The rules of one lending protocol over its rebuilt state.
pub trait ProtocolModel: ModelClone {
    /// Which protocol this models; events with this [`Payload::protocol`](cascade_events::Payload::protocol)
    /// are routed here.
    fn protocol(&self) -> Protocol;

    /// Moves the model's clock to `time` before an event at that time is applied: interest
    /// accrual, scheduled oracle updates (Maker OSM pokes). Returns true when a price the rules
    /// read changed, so the liquidatable set may have moved.
    fn advance(&mut self, time: Timestamp, prices: &PriceBook) -> Result<bool, EngineError>;

    /// A price update has been recorded in `prices` (the market quote of its pair may have
    /// changed). Returns true when a price the rules read changed.
    fn on_price(
        &mut self,
        update: &PriceUpdate,
        time: Timestamp,
        prices: &PriceBook,
    ) -> Result<bool, EngineError>;

    /// A feed answered (every price event, whether or not it moved the market quote): a
    /// protocol whose oracle reads that feed directly (an `AaveOracle` source) takes the answer.
    /// Returns true when a price the rules read changed.
    fn on_feed_answer(
        &mut self,
        _update: &PriceUpdate,
        _time: Timestamp,
    ) -> Result<bool, EngineError> {
        Ok(false)
    }

    /// Applies one of this protocol's events that is not a recorded liquidation: a user action,
    /// a parameter change, an index update, an auction event.
    fn apply(&mut self, event: &Event, prices: &PriceBook) -> Result<Applied, EngineError>;

    /// Sets one of the protocol's typed parameters ([`param::ProtocolParam`]) as a governance
    /// change would: the path scenario overrides and `--params` entries take. The value is in the
    /// same human units as [`cascade_events::ParamChange::value`].
    fn set_param(
        &mut self,
        setting: &ParamSetting,
        time: Timestamp,
    ) -> Result<Applied, EngineError>;

    /// Brings what judging `liquidation` reads up to `time`, as the keeper's transaction does
    /// before liquidating (Maker: `Jug.drip` and `Spotter.poke` of the ilk). Called right before
    /// [`ProtocolModel::judge`]; models whose state moves only with events keep the default.
    fn prepare_judge(
        &mut self,
        _liquidation: &Liquidation,
        _time: Timestamp,
    ) -> Result<(), EngineError> {
        Ok(())
    }

    /// Whether the liquidator chooses how much debt a liquidation repays, the collateral seized
    /// following from it by the seize formula (Aave, Compound), rather than the protocol taking
    /// what the vault owes (Maker). An unrecorded repayment is derived by inverting the formula
    /// in the first case and read from the judge's `expected_debt` in the second
    /// ([`crate::core::unknown_side`]).
    fn liquidator_chooses_repayment(&self) -> bool {
        true
    }

    /// Judges a recorded liquidation against the state as rebuilt at `time` (after
    /// [`ProtocolModel::prepare_judge`]), without changing it.
    fn judge(&self, liquidation: &Liquidation, time: Timestamp) -> Result<Judgement, EngineError>;

    /// Applies a recorded liquidation (historical mode), after [`ProtocolModel::judge`].
    fn apply_liquidation(
        &mut self,
        liquidation: &Liquidation,
        judgement: &Judgement,
        time: Timestamp,
    ) -> Result<Applied, EngineError>;

    /// Appends the accounts liquidatable now to `out`, using an index, in an order that carries no
    /// meaning (it may differ between a replay from the start and one from a checkpoint): the
    /// consumers rank candidates by their own total order.
    fn liquidatable(
        &mut self,
        time: Timestamp,
        out: &mut Vec<Candidate>,
    ) -> Result<(), EngineError>;

    /// Liquidates `candidate` by the protocol's own formula within the limits of `choice`,
    /// mutating the state (counterfactual mode). `None` when the rules forbid it now (the account
    /// is safe, a limit such as Maker `hole` is reached).
    fn simulate_liquidation(
        &mut self,
        candidate: &Candidate,
        choice: &LiquidatorChoice,
        time: Timestamp,
    ) -> Result<Option<SimulatedLiquidation>, EngineError>;

    /// Incremental monitoring, the alternative to listing [`ProtocolModel::liquidatable`] at every
    /// check: appends the accounts whose liquidatable status changed since the last call, as
    /// (market, account, liquidatable now), at the prices and time given. Returns false when the
    /// model does not support it; the replay loop then diffs the full list instead.
    fn unsafe_changes(
        &mut self,
        _time: Timestamp,
        _out: &mut Vec<(Id, Id, bool)>,
    ) -> Result<bool, EngineError> {
        Ok(false)
    }

    /// Whether the model explains unsafe episodes. The replay loop then logs every check
    /// ([`ProtocolModel::log_episode_check`]), keeps each open episode's account state
    /// ([`ProtocolModel::episode_account`]) per stretch of checks over which it did not change,
    /// and asks for the evidence ([`ProtocolModel::fold_episode`]) only of the episodes it keeps.
    fn explains_episodes(&self) -> bool {
        false
    }

    /// Logs, as check number `check` (one more than the previous check's; numbering restarts
    /// at zero in a restored engine), what this check sees of each market of `markets` that is
    /// the same for all its accounts (Maker: the room under the liquidation limits, `dust`,
    /// where the OSM value came from, the ilk's rate and spot), for
    /// [`ProtocolModel::fold_episode`]. Called right after [`ProtocolModel::unsafe_changes`] or
    /// [`ProtocolModel::liquidatable`], with the markets that have an open episode: the log of
    /// a market not named may be dropped. Then moves into `changed` the accounts (market,
    /// account) that events changed since the previous check: at least every one with an open
    /// episode whose [`ProtocolModel::episode_account`] may differ (repeats and others allowed).
    fn log_episode_check(
        &mut self,
        _check: u64,
        _markets: &[Id],
        _changed: &mut Vec<(Id, Id)>,
    ) -> Result<(), EngineError> {
        Ok(())
    }

    /// What an account's evidence reads of the account itself, as opposed to what its market
    /// logs at each check.
    fn episode_account(&self, _market: &Id, _account: &Id) -> EpisodeAccount {
        None
    }

    /// Hands `observe`, in check order, what each logged check of `checks` saw of an account
    /// of `market` in state `account` (nothing at a check where it gives no evidence): the
    /// evidence of a stretch over which the account did not change, exactly as asking at each
    /// of those checks would have found it.
    fn fold_episode(
        &self,
        _market: &Id,
        _account: EpisodeAccount,
        _checks: std::ops::Range<u64>,
        _observe: &mut dyn FnMut(&EpisodeCheck),
    ) -> Result<(), EngineError> {
        Ok(())
    }

    /// No check numbered below `first` will be folded again: the log may drop them.
    fn trim_episode_log(&mut self, _first: u64) {}

    /// Appends one risk snapshot per market to `out`, using an index.
    fn risk(&mut self, time: Timestamp, out: &mut Vec<MarketRisk>) -> Result<(), EngineError>;

    /// Appends the health distribution of every market with accounts to `out`, at the prices
    /// the protocol's oracle rule reads now and interest accrued to `time`, without changing
    /// the state. It may scan every account: the replay calls it twice per market and run
    /// (`docs/run-format.md`, `health_distribution`) and once per period of the window
    /// (`health_over_time`, at most [`crate::leverage::sampling::MAX_PERIODS`] plus
    /// [`crate::leverage::sampling::MAX_ACTIVE_HOURS`]), never per event. Infallible: an account
    /// whose health cannot be computed (no price, a product beyond 256 bits) counts as
    /// [`HealthDistribution::unpriced`]. Default: no markets.
    fn health_distribution(&self, _time: Timestamp, _out: &mut Vec<HealthDistribution>) {}

    /// Appends every account of every market with something held or owed to `out`, valued at
    /// the prices the protocol's oracle rule reads now and interest accrued to `time`, without
    /// changing the state, in an order that carries no meaning (the caller sorts). It may scan
    /// every account: it runs only at the times a user asks for (`--accounts-at`, `cascade
    /// state`). Infallible: what cannot be computed is `None` with the missing input named.
    fn accounts(&self, time: Timestamp, out: &mut Vec<AccountPosition>);

    /// [`ProtocolModel::accounts`] into `accounts` and [`ProtocolModel::health_distribution`]
    /// into `distributions`, at one time: what every hourly sample of a run asks. A model whose
    /// accounts carry their health counts the distribution from them rather than computing
    /// every account's health twice.
    fn accounts_and_health(
        &self,
        time: Timestamp,
        accounts: &mut Vec<AccountPosition>,
        distributions: &mut Vec<HealthDistribution>,
    ) {
        self.health_distribution(time, distributions);
        self.accounts(time, accounts);
    }

    /// Takes `cut_bps` off every liquidation threshold (collateral factor) the health of
    /// `account` in `market` reads, for the rest of the run: a scenario's cut on looped positions
    /// (`leverage.looped_threshold_cut_bps`, [`crate::leverage::cap`]). Whether it was applied.
    /// Default: not (the protocol has no per-account threshold, or no such account).
    fn cut_threshold(&mut self, _market: &Id, _account: &Id, _cut_bps: u16) -> bool {
        false
    }

    /// Reads, without changing anything, the records the coming `events` will touch, so their
    /// cache misses overlap instead of following one another (a hint: results never depend on
    /// it). Returns a value derived from what was read, which keeps the reads from being
    /// optimised away.
    fn warm(&self, _events: &[Event]) -> u64 {
        0
    }

    /// Moves the counts of corrections the model made on its own (outside [`ProtocolModel::apply`],
    /// e.g. when a block's actions are settled) into `out`, by reason. The replay loop calls it
    /// after every [`ProtocolModel::advance`] and reports them with the clamped events.
    fn take_adjustments(&mut self, _out: &mut std::collections::BTreeMap<&'static str, u64>) {}

    /// Appends the accounts (market, account, debt removed, wad) whose rebuilt debt the model
    /// corrected on its own since the last call because the record cannot be what the
    /// contracts allow (Maker: a repayment the export misses, inferred). The replay loop calls
    /// it with [`ProtocolModel::take_adjustments`].
    fn take_corrected_accounts(&mut self, _out: &mut Vec<(Id, Id, U256)>) {}

    /// Moves the snapshot differences found since the last call into `out`. With
    /// `instant_ended` (the replay loop's call once an instant's events are all applied, and at
    /// the log's end) it first closes the instant's snapshots: an account's rows at one instant
    /// are its whole position, so the assets they did not name are compared (and cleared) only
    /// then. The loop also calls it after every event the model applies. Default: none.
    fn snapshot_differences(
        &mut self,
        _instant_ended: bool,
        _out: &mut Vec<accounts::SnapshotDifference>,
    ) {
    }

    /// Writes the whole model state in the canonical encoding (checkpoints and the state hash).
    fn encode_state(&self, out: &mut StateWriter);

    /// Replaces the model state with one written by [`ProtocolModel::encode_state`].
    fn decode_state(&mut self, input: &mut StateReader<'_>) -> Result<(), EngineError>;
}
