//! The generator's loop: block by block, prices and the oracle rule, the keeper, positions
//! opening, and user activity, each event handed to the sink in log order.
//!
//! Must never: read a clock or any entropy besides the seed, iterate a hash map, or let a float
//! reach an event unquantised.

use std::collections::BTreeMap;

use cascade_events::{
    Amount, CollateralToggle, Event, EventKind, Fixed, Id, Liquidation, LiquidationDetail,
    ParamChange, Payload, PositionChange, PriceUpdate, Protocol, Symbol, Timestamp, U256,
    VaultOpen,
};

use super::book::{self, Account, CollateralRule, DebtRule, Seizure, UnsafeIndex};
use super::market::{
    self, ACCOUNT_TAG, ASSETS, AssetInfo, BLOCK_SECS, DEFAULT_COLLATERAL, ETH_DECIMALS, KEEPER_TAG,
    PRICE_DECIMALS, Risk, START_BLOCK, START_TIME, URN_TAG, pow10, tagged_address,
};
use super::plan::Slots;
use super::sample::{self, Sampler};
use super::shock;
use super::{OPENING_EVENTS, Sink, SynthConfig, SynthError, SynthSummary};

/// Stream labels: independent random streams so one part's draws do not shift another's.
const STREAM_ACCOUNTS: u64 = 1;
const STREAM_ACTIVITY: u64 = 2;
const STREAM_KEEPER: u64 = 3;
const STREAM_LOOPS: u64 = 5;
const STREAM_PRICE: u64 = 100;
/// Stream labels of the k-th protocol of a multi-protocol market are offset by `k` times this,
/// so each protocol's accounts draw their own numbers while the price streams stay shared.
const PROTOCOL_STREAMS: u64 = 1_000;
/// Parts per million: the unit of `--overlap` and `--loops`, and of loop step weights.
pub(crate) const PPM: u64 = 1_000_000;
/// The most re-supply rounds a looped position makes.
const MAX_LOOP_DEPTH: u64 = 4;

/// Keepers that take turns liquidating.
const KEEPERS: u64 = 3;
/// Maker OSM delay: the OSM publishes the price one hop late.
const OSM_HOP_SECS: u32 = 3_600;

struct Oracle {
    info: &'static AssetInfo,
    path: Option<shock::PricePath>,
    /// Market price now, USD with 8 decimals.
    usd: u128,
    /// Whether the protocol reads a feed for it (Aave v2 prices WETH at a constant 1 ETH).
    emits: bool,
    /// Last published answer, in the protocol's oracle base (USD 8 decimals, or ETH 18 decimals
    /// for Aave v2), and its time (seconds from start).
    published: u128,
    published_at: u32,
    round: u64,
    /// Maker OSM: value in force and value queued for the next hop.
    osm_current: u128,
    osm_next: u128,
    /// Price the protocol reads (OSM for Maker, latest answer elsewhere), oracle base.
    visible: u128,
}

/// The unit of relative prices (collateral in debt-token terms, 8 decimals) the index keys use.
const RELATIVE_UNIT: u128 = 100_000_000;

/// How a market's window is spent in blocks: how many, when openings end, how much activity
/// follows. (Not the run file's `Window`, the reported part of a log.)
#[derive(Clone, Copy)]
pub(crate) struct BlockPlan {
    pub total_blocks: u64,
    open_end: u64,
    activity: u64,
    activity_blocks: u64,
}

pub(crate) struct Generator {
    config: SynthConfig,
    /// Who owns each position, in a market of several protocols; `None`: every position has its
    /// own owner, numbered as the position.
    slots: Option<Slots>,
    collateral: Vec<CollateralRule>,
    debt: DebtRule,
    /// Oracles: one per collateral asset in order, then the debt asset.
    oracles: Vec<Oracle>,
    accounts: Vec<Account>,
    liquidated: Vec<bool>,
    index: UnsafeIndex,
    queue: BTreeMap<u64, Vec<u32>>,
    keeper_cap: usize,
    /// Aave v2: prices are quoted in ETH (18 decimals) against this oracle's USD price.
    eth_base: Option<usize>,
    maker_duty: U256,
    accounts_rng: Sampler,
    activity_rng: Sampler,
    keeper_rng: Sampler,
    loops_rng: Sampler,
    summary: SynthSummary,
    seq: u64,
    block: u64,
    tx: u32,
    auctions: u64,
    /// True between the crash's start and its trough.
    crashing: bool,
}

impl Generator {
    /// The generator of a one-protocol market.
    pub(crate) fn new(config: &SynthConfig) -> Result<Self, SynthError> {
        Self::with_slots(config.clone(), 0, None)
    }

    /// The generator of the `k`-th protocol of a market: `config.protocol` and `config.accounts`
    /// are that protocol's, `slots` says who owns each of its positions.
    pub(crate) fn with_slots(
        config: SynthConfig,
        k: u64,
        slots: Option<Slots>,
    ) -> Result<Self, SynthError> {
        let config = &config;
        if config.protocol == Protocol::Liquity {
            return Err(SynthError::Config(
                "liquity markets are not supported (maker, aave-v2, aave-v3, compound-v2)".into(),
            ));
        }
        if config.accounts == 0 {
            return Err(SynthError::Config("at least one account is needed".into()));
        }
        let infos = collateral_infos(config)?;
        let debt_info = market::debt_asset(config.protocol);
        let collateral: Vec<CollateralRule> = infos
            .iter()
            .map(|info| CollateralRule::new(config.protocol, info))
            .collect();
        let mut priced: Vec<&'static AssetInfo> =
            infos.iter().copied().chain([debt_info]).collect();
        let eth_base = if config.protocol == Protocol::AaveV2 {
            // The v2 oracle quotes every reserve in ETH: its ETH/USD path is needed even when
            // WETH is not collateral.
            Some(match priced.iter().position(|a| a.symbol == "WETH") {
                Some(i) => i,
                None => {
                    priced.push(market::asset("WETH").expect("WETH is in the table"));
                    priced.len() - 1
                }
            })
        } else {
            None
        };
        let usd =
            |info: &AssetInfo| u128::from(info.start_usd) * 10u128.pow(u32::from(PRICE_DECIMALS));
        let weth_usd = eth_base.map(|i| usd(priced[i]));
        let oracles: Vec<Oracle> = priced
            .iter()
            .copied()
            .enumerate()
            .map(|(i, info)| {
                let start = base_price(usd(info), weth_usd);
                Oracle {
                    usd: usd(info),
                    emits: eth_base != Some(i),
                    info,
                    path: info.volatile.then(|| {
                        shock::PricePath::new(
                            f64::from(info.start_usd),
                            &config.shock,
                            BLOCK_SECS,
                            Sampler::new(config.seed, STREAM_PRICE + i as u64),
                        )
                    }),
                    published: start,
                    published_at: 0,
                    round: 0,
                    osm_current: start,
                    osm_next: start,
                    visible: start,
                }
            })
            .collect();
        let accounts = config.accounts as usize;
        let streams = k * PROTOCOL_STREAMS;
        let start_price = oracles[0].usd;
        Ok(Self {
            config: config.clone(),
            slots,
            debt: DebtRule {
                info: debt_info,
                rate: pow10(27),
            },
            index: UnsafeIndex::new(collateral.len()),
            collateral,
            oracles,
            accounts: vec![Account::default(); accounts],
            liquidated: vec![false; accounts],
            queue: BTreeMap::new(),
            keeper_cap: (accounts / 2_000).max(100),
            eth_base,
            maker_duty: maker_per_second_duty(),
            accounts_rng: Sampler::new(config.seed, streams + STREAM_ACCOUNTS),
            activity_rng: Sampler::new(config.seed, streams + STREAM_ACTIVITY),
            keeper_rng: Sampler::new(config.seed, streams + STREAM_KEEPER),
            loops_rng: Sampler::new(config.seed, streams + STREAM_LOOPS),
            summary: SynthSummary {
                accounts: config.accounts,
                loopable: if config.protocol == Protocol::Maker {
                    0
                } else {
                    config.accounts
                },
                lead_asset: infos[0].symbol,
                start_price,
                low_price: start_price,
                ..SynthSummary::default()
            },
            seq: 0,
            block: 0,
            tx: 0,
            auctions: 0,
            crashing: false,
        })
    }

    /// How this market's window is spent in blocks.
    pub(crate) fn block_plan(&self) -> Result<BlockPlan, SynthError> {
        let shock = self.config.shock;
        let total_blocks = u64::from(shock.total_secs() / BLOCK_SECS);
        // Positions open during the first three quarters of the warm-up, activity runs after.
        let open_end = (u64::from(shock.start_secs) * 3 / 4 / u64::from(BLOCK_SECS)).max(2);
        if total_blocks <= open_end {
            return Err(SynthError::Config(format!(
                "the market's window ({}) is too short",
                shock
            )));
        }
        let accounts = u64::from(self.config.accounts);
        let activity = accounts
            * u64::from(
                self.config
                    .events_per_account
                    .saturating_sub(OPENING_EVENTS),
            );
        Ok(BlockPlan {
            total_blocks,
            open_end,
            activity,
            activity_blocks: total_blocks - open_end,
        })
    }

    pub(crate) fn run(&mut self, sink: Sink<'_>) -> Result<(), SynthError> {
        let plan = self.block_plan()?;
        for block in 0..=plan.total_blocks {
            self.step(block, &plan, sink)?;
        }
        Ok(())
    }

    /// Writes block `block` of `plan`: prices, keeper, openings, activity.
    pub(crate) fn step(
        &mut self,
        block: u64,
        plan: &BlockPlan,
        sink: Sink<'_>,
    ) -> Result<(), SynthError> {
        let shock = self.config.shock;
        let accounts = u64::from(self.config.accounts);
        let BlockPlan {
            open_end,
            activity,
            activity_blocks,
            ..
        } = *plan;
        self.block = block;
        self.tx = 0;
        let t = (block * u64::from(BLOCK_SECS)) as u32;
        self.crashing = t > shock.start_secs && t < shock.trough_secs();
        if block == 0 {
            self.setup(sink)?;
        } else {
            self.prices(t, sink)?;
        }
        self.keeper(sink)?;
        if (1..open_end).contains(&block) {
            // Account i opens in block 1 + floor(i * (open_end - 1) / accounts).
            let first = first_index(block - 1, accounts, open_end - 1);
            let end = first_index(block, accounts, open_end - 1);
            for i in first..end {
                self.open(i as u32, sink)?;
            }
        }
        if block >= open_end && activity > 0 {
            let first = first_index(block - open_end, activity, activity_blocks + 1);
            let end = first_index(block - open_end + 1, activity, activity_blocks + 1);
            for _ in first..end {
                self.act(sink)?;
            }
        }
        Ok(())
    }

    /// What was generated (complete after [`Generator::run`]).
    pub(crate) fn into_summary(mut self) -> SynthSummary {
        self.summary.accounts_liquidated = self.liquidated.iter().filter(|&&l| l).count() as u32;
        self.summary
    }

    /// The id of position `index`: its own number in a one-protocol market, its owner's address
    /// (Maker: the vault's number) in a market of several protocols.
    fn account_id(&self, index: u32) -> Id {
        match (&self.slots, self.config.protocol) {
            (Some(slots), Protocol::AaveV2 | Protocol::AaveV3 | Protocol::CompoundV2) => {
                Id::Address(tagged_address(ACCOUNT_TAG, u64::from(slots.owner(index))))
            }
            _ => market::account_id(self.config.protocol, index),
        }
    }

    /// The address that owns Maker vault `index`.
    fn vault_owner(&self, index: u32) -> Id {
        Id::Address(match &self.slots {
            Some(slots) => tagged_address(ACCOUNT_TAG, u64::from(slots.owner(index))),
            None => tagged_address(URN_TAG, u64::from(index)),
        })
    }

    fn emit(&mut self, payload: Payload, sink: Sink<'_>) -> Result<(), SynthError> {
        let event = Event {
            seq: self.seq,
            chain_id: 1,
            block: Some(START_BLOCK + self.block),
            time: Timestamp(START_TIME + (self.block * u64::from(BLOCK_SECS)) as i64),
            tx_index: Some(self.tx),
            log_index: Some(self.tx),
            tx_hash: None,
            source: self.config.source,
            payload,
        };
        sink(&event).map_err(|source| SynthError::Sink {
            seq: self.seq,
            source,
        })?;
        if self.seq == 0 {
            self.summary.first_time = event.time;
        }
        self.summary.last_time = event.time;
        self.seq += 1;
        self.tx += 1;
        self.summary.events += 1;
        *self.summary.by_kind.entry(event.kind().name()).or_insert(0) += 1;
        Ok(())
    }

    fn setup(&mut self, sink: Sink<'_>) -> Result<(), SynthError> {
        let infos: Vec<&'static AssetInfo> = self.collateral.iter().map(|c| c.info).collect();
        for setup in market::setup_params(self.config.protocol, &infos) {
            let param = Symbol::new(setup.param).expect("parameter names are short literals");
            self.emit(
                Payload::ParamChange(Box::new(ParamChange {
                    protocol: self.config.protocol,
                    market: setup.market,
                    param,
                    value: setup.value,
                })),
                sink,
            )?;
        }
        for i in 0..self.oracles.len() {
            if self.oracles[i].emits {
                self.publish(i, 0, sink)?;
            }
        }
        Ok(())
    }

    fn publish(&mut self, i: usize, t: u32, sink: Sink<'_>) -> Result<(), SynthError> {
        let oracle = &mut self.oracles[i];
        oracle.round += 1;
        oracle.published_at = t;
        // Chainlink round ids: phase 1 in the top 16 bits of the uint80, aggregator round below.
        let round = (1u128 << 64) | u128::from(oracle.round);
        let (quote, decimals) = match self.eth_base {
            Some(_) => ("ETH", ETH_DECIMALS),
            None => ("USD", PRICE_DECIMALS),
        };
        let payload = Payload::Price(Box::new(PriceUpdate {
            asset: Id::name(oracle.info.symbol),
            quote: Id::name(quote),
            price: Fixed::new(U256::from(oracle.published), decimals),
            feed: market::feed_id(oracle.info, quote),
            round: Some(round),
        }));
        self.emit(payload, sink)
    }

    /// Advances every market price one block, publishes what the oracle rule lets through, and
    /// queues accounts a lower visible price made unsafe.
    fn prices(&mut self, t: u32, sink: Sink<'_>) -> Result<(), SynthError> {
        let shock = self.config.shock;
        for oracle in &mut self.oracles {
            if let Some(path) = oracle.path.as_mut() {
                oracle.usd = path.step(&shock, t, PRICE_DECIMALS);
            }
        }
        self.summary.low_price = self.summary.low_price.min(self.oracles[0].usd);
        let weth_usd = self.eth_base.map(|i| self.oracles[i].usd);
        for i in 0..self.oracles.len() {
            let oracle = &mut self.oracles[i];
            if !oracle.emits {
                continue;
            }
            let market = base_price(oracle.usd, weth_usd);
            let last = oracle.published;
            let moved =
                market.abs_diff(last) * 10_000 >= last * u128::from(oracle.info.deviation_bps);
            let stale = t - oracle.published_at >= oracle.info.heartbeat_secs;
            if moved || stale {
                oracle.published = market;
                self.publish(i, t, sink)?;
            }
        }
        let maker = self.config.protocol == Protocol::Maker;
        if maker {
            self.debt.rate = rpow(self.maker_duty, u64::from(t), pow10(27));
        }
        for a in 0..self.collateral.len() {
            let oracle = &mut self.oracles[a];
            let visible = if maker {
                // OSM.poke once per hop: the value queued an hop ago goes live, today's is queued.
                if t.is_multiple_of(OSM_HOP_SECS) {
                    oracle.osm_current = oracle.osm_next;
                    oracle.osm_next = oracle.published;
                }
                oracle.osm_current
            } else {
                oracle.published
            };
            let before = oracle.visible;
            oracle.visible = visible;
            if visible < before || maker || self.eth_base.is_some() {
                self.scan(a);
            }
        }
        Ok(())
    }

    /// Queues every account of collateral `a` that is unsafe at the prices the protocol reads.
    fn scan(&mut self, a: usize) {
        let debt_price = self.debt_price();
        let price = self.oracles[a].visible;
        let relative = price * RELATIVE_UNIT / debt_price.max(1);
        for index in self.index.take_above(a, relative, &mut self.accounts) {
            let account = &mut self.accounts[index as usize];
            let coll = &self.collateral[a];
            if book::unsafe_at(account, coll, &self.debt, price, debt_price) {
                account.queued = true;
                let delay = 1 + self.keeper_rng.below(3);
                self.queue
                    .entry(self.block + delay)
                    .or_default()
                    .push(index);
            } else {
                let key = book::unsafe_below(account, coll, &self.debt, RELATIVE_UNIT);
                self.index.update(index, account, key);
            }
        }
    }

    fn debt_price(&self) -> u128 {
        self.oracles[self.collateral.len()].published
    }

    fn keeper(&mut self, sink: Sink<'_>) -> Result<(), SynthError> {
        let Some(entry) = self.queue.first_entry() else {
            return Ok(());
        };
        if *entry.key() > self.block {
            return Ok(());
        }
        let mut due = entry.remove();
        if due.len() > self.keeper_cap {
            let rest = due.split_off(self.keeper_cap);
            self.queue.entry(self.block + 1).or_default().extend(rest);
        }
        let debt_price = self.debt_price();
        for index in due {
            let account = self.accounts[index as usize];
            let a = usize::from(account.asset);
            let coll = self.collateral[a];
            let price = self.oracles[a].visible;
            self.accounts[index as usize].queued = false;
            if !book::unsafe_at(&account, &coll, &self.debt, price, debt_price) {
                self.reindex(index);
                continue;
            }
            let seizure = book::seize(
                self.config.protocol,
                &account,
                &coll,
                &self.debt,
                price,
                debt_price,
            );
            if seizure.debt_repaid.is_zero() || seizure.coll_units.is_zero() {
                // Collateral worth less than one unit of debt: the contracts refuse a liquidation
                // that repays or seizes nothing (Compound `LIQUIDATE_CLOSE_AMOUNT_REQUESTED_ZERO`).
                self.reindex(index);
                continue;
            }
            self.liquidate(index, &coll, seizure, sink)?;
            let account = &mut self.accounts[index as usize];
            if book::unsafe_at(account, &coll, &self.debt, price, debt_price) {
                // Still unsafe after a partial liquidation: the keeper comes back next block.
                account.queued = true;
                self.queue.entry(self.block + 1).or_default().push(index);
            } else {
                self.reindex(index);
            }
        }
        Ok(())
    }

    fn liquidate(
        &mut self,
        index: u32,
        coll: &CollateralRule,
        seizure: Seizure,
        sink: Sink<'_>,
    ) -> Result<(), SynthError> {
        let protocol = self.config.protocol;
        let detail = match protocol {
            Protocol::Maker => {
                self.auctions += 1;
                LiquidationDetail::MakerDog {
                    due: Some(Amount(seizure.debt_repaid)),
                    art: Some(Amount(seizure.debt_units)),
                    auction: Some(self.auctions),
                }
            }
            Protocol::CompoundV2 | Protocol::Liquity => LiquidationDetail::Compound {
                seize_tokens: Amount(seizure.coll_units),
            },
            Protocol::AaveV2 | Protocol::AaveV3 => LiquidationDetail::Aave {
                receive_a_token: Some(false),
            },
        };
        let keeper = self.keeper_rng.below(KEEPERS);
        let payload = Payload::Liquidation(Box::new(Liquidation {
            protocol,
            market: market::market_id(protocol, coll.info),
            account: self.account_id(index),
            liquidator: Some(Id::Address(tagged_address(KEEPER_TAG, keeper))),
            collateral_asset: Id::name(coll.info.symbol),
            collateral_seized: Amount(seizure.coll_underlying),
            debt_asset: Id::name(self.debt.info.symbol),
            debt_repaid: Amount(seizure.debt_repaid),
            detail,
        }));
        self.emit(payload, sink)?;
        let account = &mut self.accounts[index as usize];
        account.coll = account.coll.saturating_sub(to_u128(seizure.coll_units));
        account.debt = account.debt.saturating_sub(to_u128(seizure.debt_units));
        if protocol == Protocol::Maker {
            // Dog.bark takes the whole vault: grab clears ink and art together.
            account.coll = 0;
            account.debt = 0;
        }
        self.liquidated[index as usize] = true;
        Ok(())
    }

    fn reindex(&mut self, index: u32) {
        let account = &mut self.accounts[index as usize];
        if account.queued {
            return;
        }
        let coll = &self.collateral[usize::from(account.asset)];
        // A loop's collateral and debt are one asset at one price: no price makes it unsafe
        // (synthetic Aave and Compound debt accrues no interest), so it is never indexed.
        let key = if account.looped {
            0
        } else {
            book::unsafe_below(account, coll, &self.debt, RELATIVE_UNIT)
        };
        self.index.update(index, account, key);
    }

    /// The debt token of an account: the market's, or for a loop its collateral's underlying
    /// (Aave and Compound borrow in underlying base units, without a rate).
    fn debt_rule(&self, looped: bool, coll: CollateralRule) -> DebtRule {
        if looped {
            DebtRule {
                info: coll.info,
                rate: pow10(27),
            }
        } else {
            self.debt
        }
    }

    /// Opens account `index`: draws its collateral, size and target health, and writes its
    /// opening events (a looped position: several rounds of borrowing and re-supplying).
    fn open(&mut self, index: u32, sink: Sink<'_>) -> Result<(), SynthError> {
        let rng = &mut self.accounts_rng;
        let drawn = pick_weighted(rng, &self.collateral);
        let mut target_bps = sample_health_bps(rng);
        let value_cents = sample_size_cents(rng);
        let a = self
            .slots
            .as_ref()
            .and_then(|slots| slots.asset(index))
            .map_or(drawn, usize::from);
        let depth = self.loop_depth();
        if depth > 0 {
            target_bps = sample_looper_health_bps(&mut self.loops_rng);
            self.summary.looped += 1;
        }
        let coll = self.collateral[a];
        let steps = LoopSteps::new(depth, coll.risk, target_bps);
        let protocol = self.config.protocol;
        // Sized in USD at market prices; the target health is approximate by design.
        let price = self.oracles[a].usd;
        // A loop borrows its own collateral asset: what it borrows is what it re-supplies.
        let (debt_info, debt_price) = if steps.looped() {
            (coll.info, price)
        } else {
            (self.debt.info, self.oracles[self.collateral.len()].usd)
        };
        // USD (8 decimals) of collateral, and the debt that puts the account at its target.
        let mut value = U256::from(value_cents) * U256::from(1_000_000u32);
        let mut debt_value = steps.debt_for(value);
        let dust = U256::from(market::MAKER_DUST_DAI) * pow10(8);
        let least = steps.least_debt(dust);
        if protocol == Protocol::Maker && debt_value < least {
            // Maker vaults cannot hold less debt than dust: small owners borrow the minimum and
            // post the collateral their target needs.
            debt_value = least;
            value = steps.collateral_for(least);
        }
        let underlying = book::amount_of(value, coll.decimals, price);
        let units = coll.units(underlying);
        let borrowed = book::amount_of(debt_value, debt_info.decimals, debt_price);
        let market_id = market::market_id(protocol, coll.info);
        let account_id = self.account_id(index);
        let change = |asset: &AssetInfo, amount: U256, shares: Option<U256>| PositionChange {
            protocol,
            market: market_id,
            account: account_id,
            asset: Id::name(asset.symbol),
            amount: Amount(amount),
            shares: shares.map(Amount),
        };
        let deposit = |units: U256| {
            Payload::Deposit(Box::new(change(
                coll.info,
                coll.underlying(to_u128(units)),
                coll.exchange_rate.map(|_| units),
            )))
        };
        let supplies = steps.supplies(units);
        if protocol == Protocol::Maker {
            let owner = self.vault_owner(index);
            self.emit(
                Payload::VaultOpen(Box::new(VaultOpen {
                    protocol,
                    market: market_id,
                    account: account_id,
                    owner: Some(owner),
                })),
                sink,
            )?;
            self.emit(deposit(supplies[0]), sink)?;
        } else {
            self.emit(deposit(supplies[0]), sink)?;
            self.emit(
                Payload::CollateralToggle(Box::new(CollateralToggle {
                    protocol,
                    market: market_id,
                    account: account_id,
                    asset: Id::name(coll.info.symbol),
                    enabled: true,
                })),
                sink,
            )?;
        }
        let debt = self.debt_rule(steps.looped(), coll);
        let mut debt_units = U256::ZERO;
        for (k, amount) in steps.borrows(borrowed).into_iter().enumerate() {
            let units = debt.units(amount);
            debt_units += units;
            let borrow = change(
                debt_info,
                amount,
                (protocol == Protocol::Maker).then_some(units),
            );
            self.emit(Payload::Borrow(Box::new(borrow)), sink)?;
            if let Some(&again) = supplies.get(k + 1) {
                // The borrowed tokens, swapped into the collateral, go back in.
                self.emit(deposit(again), sink)?;
            }
        }
        let account = &mut self.accounts[index as usize];
        *account = Account {
            coll: to_u128(units),
            debt: to_u128(debt_units),
            key: 0,
            asset: a as u8,
            target_bps: target_bps as u16,
            queued: false,
            looped: steps.looped(),
            stamp: 0,
        };
        self.reindex(index);
        Ok(())
    }

    /// How many re-supply rounds the next position makes: 0 (not looped), or 1 to
    /// [`MAX_LOOP_DEPTH`] for a share `loops_ppm` of Aave and Compound positions. Maker vaults
    /// never loop: they borrow only DAI, which no vault holds as collateral.
    fn loop_depth(&mut self) -> u64 {
        let share = u64::from(self.config.loops_ppm);
        if share == 0
            || self.config.protocol == Protocol::Maker
            || self.loops_rng.below(PPM) >= share
        {
            return 0;
        }
        1 + self.loops_rng.below(MAX_LOOP_DEPTH)
    }

    /// One user action on a random account, steering it towards its target health.
    fn act(&mut self, sink: Sink<'_>) -> Result<(), SynthError> {
        let protocol = self.config.protocol;
        let rng = &mut self.activity_rng;
        let index = rng.below(u64::from(self.config.accounts)) as u32;
        let roll = rng.below(100);
        // Fractions drawn as parts per million, quantised before use.
        let part = 50_000 + rng.below(950_001);
        let account = self.accounts[index as usize];
        if account.coll == 0 || account.queued {
            // Liquidated away, or about to be: the owner stays out.
            return Ok(());
        }
        let a = usize::from(account.asset);
        let coll = self.collateral[a];
        let price = self.oracles[a].visible;
        let debt = self.debt_rule(account.looped, coll);
        let debt_price = if account.looped {
            price
        } else {
            self.debt_price()
        };
        let coll_value = coll.value(account.coll, price);
        let debt_value = debt.value(account.debt, debt_price);
        let threshold = U256::from(coll.risk.threshold_bps);
        let target = U256::from(account.target_bps);
        let ppm = |x: U256| x * U256::from(part) / U256::from(1_000_000u32);
        // Room to borrow or withdraw while keeping the target health, in the oracle's base.
        let max_debt = coll_value * threshold / target;
        let min_coll = debt_value * target / threshold;
        // While prices fall, a fifth of the owners who act defend their position.
        let defending = self.crashing && roll < 20;
        let want = match roll {
            _ if defending => EventKind::Repay,
            0..=29 => EventKind::Deposit,
            30..=54 => EventKind::Borrow,
            55..=79 => EventKind::Repay,
            _ => EventKind::Withdraw,
        };
        let kind = match want {
            EventKind::Borrow if max_debt <= debt_value => EventKind::Deposit,
            EventKind::Withdraw if coll_value <= min_coll => EventKind::Repay,
            EventKind::Repay if account.debt == 0 => EventKind::Borrow,
            other => other,
        };
        let dust = U256::from(market::MAKER_DUST_DAI) * pow10(debt.info.decimals);
        let owed = debt.owed(account.debt);
        let (amount, units) = match kind {
            EventKind::Deposit => {
                let units = ppm(U256::from(account.coll)) / U256::from(2u8);
                (coll.underlying(to_u128(units)), units)
            }
            EventKind::Withdraw => {
                let room = book::amount_of(coll_value - min_coll, coll.decimals, price);
                let units = coll.units(ppm(room));
                (coll.underlying(to_u128(units)), units)
            }
            EventKind::Borrow => {
                if max_debt <= debt_value {
                    return Ok(());
                }
                let amount =
                    book::amount_of(ppm(max_debt - debt_value), debt.info.decimals, debt_price);
                if protocol == Protocol::Maker && account.debt == 0 && amount < dust {
                    // A vault without debt may only draw at least `dust`.
                    return Ok(());
                }
                (amount, debt.units(amount))
            }
            _ => {
                let mut amount = ppm(owed);
                if part > 950_000 || (protocol == Protocol::Maker && owed - amount < dust) {
                    amount = owed;
                }
                let units = if amount == owed {
                    U256::from(account.debt)
                } else {
                    debt.units(amount)
                };
                (amount, units)
            }
        };
        if amount.is_zero() || units.is_zero() {
            return Ok(());
        }
        let (asset, shares) = match kind {
            EventKind::Deposit | EventKind::Withdraw => {
                (coll.info, coll.exchange_rate.map(|_| units))
            }
            _ => (debt.info, (protocol == Protocol::Maker).then_some(units)),
        };
        let change = PositionChange {
            protocol,
            market: market::market_id(protocol, coll.info),
            account: self.account_id(index),
            asset: Id::name(asset.symbol),
            amount: Amount(amount),
            shares: shares.map(Amount),
        };
        let payload = match kind {
            EventKind::Deposit => Payload::Deposit(Box::new(change)),
            EventKind::Withdraw => Payload::Withdraw(Box::new(change)),
            EventKind::Borrow => Payload::Borrow(Box::new(change)),
            _ => Payload::Repay(Box::new(change)),
        };
        self.emit(payload, sink)?;
        let account = &mut self.accounts[index as usize];
        let units = to_u128(units);
        match kind {
            EventKind::Deposit => account.coll += units,
            EventKind::Withdraw => account.coll -= units.min(account.coll),
            EventKind::Borrow => account.debt += units,
            _ => account.debt -= units.min(account.debt),
        }
        self.reindex(index);
        Ok(())
    }
}

/// The market's collateral assets, in `--assets` order without repeats.
pub(crate) fn collateral_infos(
    config: &SynthConfig,
) -> Result<Vec<&'static AssetInfo>, SynthError> {
    let names: Vec<&str> = if config.assets.is_empty() {
        DEFAULT_COLLATERAL.to_vec()
    } else {
        config.assets.iter().map(String::as_str).collect()
    };
    let known = || {
        ASSETS
            .iter()
            .filter(|a| a.volatile)
            .map(|a| a.symbol)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut infos: Vec<&'static AssetInfo> = Vec::new();
    for name in names {
        let info =
            market::asset(name)
                .filter(|a| a.volatile)
                .ok_or_else(|| SynthError::UnknownAsset {
                    name: name.to_owned(),
                    known: known(),
                })?;
        if !infos.iter().any(|i| i.symbol == info.symbol) {
            infos.push(info);
        }
    }
    Ok(infos)
}

/// A USD price (8 decimals) in the oracle base: itself, or ETH with 18 decimals given the
/// ETH/USD price (Aave v2's oracle).
fn base_price(usd: u128, weth_usd: Option<u128>) -> u128 {
    match weth_usd {
        Some(weth) => (U256::from(usd) * pow10(ETH_DECIMALS) / U256::from(weth.max(1)))
            .try_into()
            .unwrap_or(u128::MAX),
        None => usd,
    }
}

/// First of `total` items spread evenly over `slots` slots that falls in slot `slot` or later.
fn first_index(slot: u64, total: u64, slots: u64) -> u64 {
    ((u128::from(slot) * u128::from(total)).div_ceil(u128::from(slots))) as u64
}

fn to_u128(value: U256) -> u128 {
    u128::try_from(value).unwrap_or(u128::MAX)
}

/// A collateral asset by the table's weights.
fn pick_weighted(rng: &mut Sampler, collateral: &[CollateralRule]) -> usize {
    let total: u64 = collateral.iter().map(|c| u64::from(c.info.weight)).sum();
    let mut roll = rng.below(total.max(1));
    for (i, c) in collateral.iter().enumerate() {
        let w = u64::from(c.info.weight);
        if roll < w {
            return i;
        }
        roll -= w;
    }
    0
}

/// Target health factor, bps: a mixture of 35% "active" owners near the edge (1.04 + log-normal
/// with median 0.16) and 65% "passive" ones further out (1 + log-normal with median 1.0), capped at
/// 5.0. See `docs/synthetic.md` for the resulting quantiles.
pub(crate) fn sample_health_bps(rng: &mut Sampler) -> u32 {
    let hf = if rng.chance(0.35) {
        1.04 + rng.log_normal(0.16, 0.55)
    } else {
        1.0 + rng.log_normal(1.0, 0.6)
    };
    let hf = hf.clamp(1.04, 5.0);
    (hf * 10_000.0) as u32
}

/// Target health factor of a looped position, bps: loopers run close to the edge, as the "active"
/// owners do (1.04 + log-normal with median 0.16), capped at 2.0.
fn sample_looper_health_bps(rng: &mut Sampler) -> u32 {
    let hf = (1.04 + rng.log_normal(0.16, 0.55)).clamp(1.04, 2.0);
    (hf * 10_000.0) as u32
}

/// How a position's collateral and debt are split into opening steps.
///
/// A plain position deposits once and borrows once. A looped one of depth `n` deposits its
/// equity, then `n` times borrows its collateral asset and re-supplies it: the k-th borrow is the
/// room the position has at its target health or under the LTV, whichever is less, so every step
/// is worth `rho^k` of the equity, `rho = min(threshold / target, ltv)` (the health right after
/// each borrow is at least the target; the final one, after the last re-supply, is higher).
/// Weights are parts per million of the equity.
struct LoopSteps {
    /// Weight of each deposit: the equity (`PPM`), then one per re-supply.
    supply: Vec<u64>,
    /// Weight of each borrow (a plain position: one borrow of weight `PPM`).
    borrow: Vec<u64>,
    threshold_bps: u32,
    target_bps: u32,
}

impl LoopSteps {
    fn new(depth: u64, risk: Risk, target_bps: u32) -> Self {
        let threshold_bps = risk.threshold_bps;
        // Each borrow stays within the protocol's LTV as well as at the target health.
        let rho = (u64::from(threshold_bps) * PPM / u64::from(target_bps.max(1)))
            .min(u64::from(risk.ltv_bps) * PPM / 10_000);
        let mut supply = vec![PPM];
        for _ in 0..depth {
            let last = supply[supply.len() - 1];
            supply.push(last * rho / PPM);
        }
        let borrow = if depth == 0 {
            vec![PPM]
        } else {
            supply[1..].to_vec()
        };
        Self {
            supply,
            borrow,
            threshold_bps,
            target_bps,
        }
    }

    fn supplied(&self) -> U256 {
        U256::from(self.supply.iter().sum::<u64>())
    }

    fn borrowed(&self) -> U256 {
        U256::from(self.borrow.iter().sum::<u64>())
    }

    fn looped(&self) -> bool {
        self.supply.len() > 1
    }

    /// The debt (USD) of a position with collateral worth `value`.
    fn debt_for(&self, value: U256) -> U256 {
        if self.looped() {
            value * self.borrowed() / self.supplied()
        } else {
            value * U256::from(self.threshold_bps) / U256::from(self.target_bps)
        }
    }

    /// The collateral (USD) of a position with debt `debt`.
    fn collateral_for(&self, debt: U256) -> U256 {
        if self.looped() {
            debt * self.supplied() / self.borrowed()
        } else {
            debt * U256::from(self.target_bps) / U256::from(self.threshold_bps)
        }
    }

    /// The least total debt whose first borrow is at least `floor`.
    fn least_debt(&self, floor: U256) -> U256 {
        (floor * self.borrowed()).div_ceil(U256::from(self.borrow[0]))
    }

    /// `units` of collateral split by the deposit weights; the equity deposit takes the rounding.
    fn supplies(&self, units: U256) -> Vec<U256> {
        split(units, &self.supply, self.supplied())
    }

    /// `amount` of debt split by the borrow weights; the first borrow takes the rounding.
    fn borrows(&self, amount: U256) -> Vec<U256> {
        split(amount, &self.borrow, self.borrowed())
    }
}

/// `total` in parts proportional to `weights` (summing to `sum`), each rounded down, the first
/// part taking what rounding left, so the parts add up to `total` exactly.
fn split(total: U256, weights: &[u64], sum: U256) -> Vec<U256> {
    let mut parts: Vec<U256> = weights
        .iter()
        .map(|&w| total * U256::from(w) / sum)
        .collect();
    let rest: U256 = parts[1..].iter().copied().fold(U256::ZERO, |a, b| a + b);
    parts[0] = total - rest;
    parts
}

/// Collateral value, whole cents: log-normal with median 4,000 USD and sigma 1.6 (heavy right
/// tail: the top 1% hold about a third of all collateral), clamped to 50 USD .. 250M USD.
pub(crate) fn sample_size_cents(rng: &mut Sampler) -> u64 {
    let usd = rng.log_normal(4_000.0, 1.6).clamp(50.0, 250_000_000.0);
    (usd * 100.0) as u64
}

/// Maker `JUG.ilks.duty` of synthetic ilks as a per-second ray: `RAY + RAY * ln(1 + duty) /
/// year`, quantised once here (the engine's exact conversion differs below 1e-9 over the window).
fn maker_per_second_duty() -> U256 {
    let annual = f64::from(market::MAKER_DUTY_BPS) / 10_000.0;
    let per_second = sample::ln(1.0 + annual) / 31_536_000.0;
    // per_second ~ 6e-10: scaled by 1e27 it needs ~18 significant digits, more than f64 holds,
    // so quantise at 1e-24 and scale up exactly.
    let scaled = (per_second * 1e24) as u128;
    pow10(27) + U256::from(scaled) * U256::from(1_000u32)
}

/// `x^n` in base `b`, rounding half up at each step (dss `Jug.rpow`).
fn rpow(x: U256, n: u64, b: U256) -> U256 {
    let half = b / U256::from(2u8);
    let mut z = if n.is_multiple_of(2) { b } else { x };
    let mut x = x;
    let mut n = n / 2;
    while n > 0 {
        x = (x * x + half) / b;
        if n % 2 == 1 {
            z = (z * x + half) / b;
        }
        n /= 2;
    }
    z
}
