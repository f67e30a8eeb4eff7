//! Shock-to-liquidatable-set latency for Aave v3 and Compound v2: after a -30% move of the
//! collateral prices over a market of 1 million accounts, how long the model takes to list
//! exactly the liquidatable accounts through its index (`ProtocolModel::liquidatable`), next to
//! the baseline of judging every account (`scan_all_liquidatable`). The quoted result is the
//! ratio. Target (issue #4): under 20 ms for the index.
//!
//! The market is built in the benchmark (no log), with a fixed-seed generator: every account
//! holds one collateral (WETH or WBTC, 1 to 100 whole-token lots) and one debt (USDC or DAI), in
//! four pairs; its health factor (Aave) or weighted-collateral-to-borrow ratio (Compound) before
//! the shock is uniform in [1.05, 8.60). The shock takes WETH from 2,000 to 1,400 USD and WBTC from
//! 30,000 to 21,000, so the accounts whose ratio was below 1/0.7 = 1.43, about 5% of them, become
//! liquidatable (the benchmark prints the exact count and checks it against the full scan).
//! Each timed iteration restores the pre-shock prices (untimed), then times the two price
//! updates plus the query into a reused vector.
//!
//! `CASCADE_BENCH_SMOKE=1` shrinks the market to 10k accounts for CI; `CASCADE_BENCH_ACCOUNTS=N`
//! picks another size.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cascade_engine::protocols::aave::AaveModel;
use cascade_engine::protocols::aave::logic::AaveVersion;
use cascade_engine::protocols::compound::CompoundModel;
use cascade_engine::protocols::compound::exp::Rounding;
use cascade_engine::{Candidate, MarketRisk, PriceBook, ProtocolModel};
use cascade_events::{
    Address, Amount, Event, Fixed, Id, ParamChange, Payload, PositionChange, PriceUpdate, Protocol,
    Symbol, Timestamp, U256,
};
use criterion::{Criterion, criterion_group, criterion_main};

fn smoke() -> bool {
    std::env::var_os("CASCADE_BENCH_SMOKE").is_some_and(|v| v != "0")
}

fn accounts() -> u64 {
    if let Some(n) = std::env::var_os("CASCADE_BENCH_ACCOUNTS") {
        return n
            .to_string_lossy()
            .trim()
            .parse()
            .expect("CASCADE_BENCH_ACCOUNTS is a number of accounts");
    }
    if smoke() { 10_000 } else { 1_000_000 }
}

fn event(time: i64, payload: Payload) -> Event {
    Event::at(1, Timestamp(time), payload)
}

/// A fixed-seed xorshift: the same market every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// (symbol, decimals, USD price before the shock, after it).
const ASSETS: [(&str, u8, u64, u64); 4] = [
    ("WETH", 18, 2_000, 1_400),
    ("WBTC", 8, 30_000, 21_000),
    ("USDC", 6, 1, 1),
    ("DAI", 18, 1, 1),
];

/// (collateral, debt) indices into [`ASSETS`], with their share of accounts in percent.
const PAIRS: [(usize, usize, u64); 4] = [(0, 2, 50), (0, 3, 25), (1, 2, 15), (1, 3, 10)];

/// One generated account: pair, whole collateral tokens, ratio before the shock in thousandths.
struct Shape {
    collateral: usize,
    debt: usize,
    tokens: u64,
    ratio_milli: u64,
}

fn shapes(count: u64) -> Vec<Shape> {
    let mut rng = Rng(0x5eed_cafe_f00d_beef);
    (0..count)
        .map(|_| {
            let mut pick = rng.next() % 100;
            let mut pair = PAIRS[0];
            for candidate in PAIRS {
                if pick < candidate.2 {
                    pair = candidate;
                    break;
                }
                pick -= candidate.2;
            }
            Shape {
                collateral: pair.0,
                debt: pair.1,
                tokens: 1 + rng.next() % 100,
                ratio_milli: 1_050 + rng.next() % 7_550,
            }
        })
        .collect()
}

fn unit(decimals: u8) -> U256 {
    U256::from(10u8).pow(U256::from(decimals))
}

/// Debt in the debt token's base units that puts `shape` at its ratio, for a collateral weight
/// (liquidation threshold or collateral factor) in basis points.
fn debt_amount(shape: &Shape, weight_bps: u64) -> U256 {
    let (_, _, c_usd, _) = ASSETS[shape.collateral];
    let (_, d_dec, d_usd, _) = ASSETS[shape.debt];
    // debt_usd = tokens * price_c * weight / ratio
    U256::from(shape.tokens) * U256::from(c_usd) * U256::from(weight_bps) * unit(d_dec)
        / (U256::from(shape.ratio_milli) * U256::from(10u8) * U256::from(d_usd))
}

fn account_id(n: u64) -> Id {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    bytes[12..].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    Id::Address(Address::from(bytes))
}

fn param(protocol: Protocol, market: &str, name: &str, value: &str) -> Payload {
    Payload::ParamChange(Box::new(ParamChange {
        protocol,
        market: Id::name(market),
        param: Symbol::new(name).expect("parameter name"),
        value: Fixed::parse_exact(value).expect("parameter value"),
    }))
}

/// Wall time and CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`): on this shared
/// 2-core machine the CPU time approximates what the same work takes on an idle core.
struct Clock {
    wall: Instant,
    cpu: Duration,
}

fn thread_cpu() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

impl Clock {
    // The engine's clippy.toml bans clocks from engine logic; measuring is this file's purpose.
    #[allow(clippy::disallowed_methods)]
    fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: thread_cpu(),
        }
    }

    fn elapsed(&self) -> (Duration, Duration) {
        (self.wall.elapsed(), thread_cpu().saturating_sub(self.cpu))
    }
}

/// A model over a market of `count` accounts, with a price book.
struct Market<M> {
    model: M,
    book: PriceBook,
    time: i64,
}

impl<M: ProtocolModel> Market<M> {
    fn set_prices(&mut self, after_shock: bool) {
        self.time += 1;
        let time = Timestamp(self.time);
        for (symbol, _, before, after) in &ASSETS[..2] {
            let update = PriceUpdate {
                asset: Id::name(symbol),
                quote: Id::name("USD"),
                price: Fixed::new(U256::from(if after_shock { *after } else { *before }), 0),
                feed: Id::name("bench"),
                round: None,
            };
            self.book.record(&update, time);
            self.model
                .on_price(&update, time, &self.book)
                .expect("price update");
        }
    }

    fn build(mut model: M, params: &[Payload], weight_bps: u64, count: u64) -> Self {
        let protocol = model.protocol();
        let mut book = PriceBook::default();
        for payload in params {
            model
                .apply(&event(0, payload.clone()), &book)
                .expect("parameter");
        }
        for (symbol, _, before, _) in ASSETS {
            let update = PriceUpdate {
                asset: Id::name(symbol),
                quote: Id::name("USD"),
                price: Fixed::new(U256::from(before), 0),
                feed: Id::name("bench"),
                round: None,
            };
            book.record(&update, Timestamp(0));
            model
                .on_price(&update, Timestamp(0), &book)
                .expect("price update");
        }
        let pool = Id::name("bench-pool");
        for (n, shape) in shapes(count).iter().enumerate() {
            let change = |asset: usize, amount: U256| PositionChange {
                protocol,
                market: pool,
                account: account_id(n as u64),
                asset: Id::name(ASSETS[asset].0),
                amount: Amount(amount),
                shares: None,
            };
            let collateral = U256::from(shape.tokens) * unit(ASSETS[shape.collateral].1);
            model
                .apply(
                    &event(
                        1,
                        Payload::Deposit(Box::new(change(shape.collateral, collateral))),
                    ),
                    &book,
                )
                .expect("deposit");
            model
                .apply(
                    &event(
                        1,
                        Payload::Borrow(Box::new(change(
                            shape.debt,
                            debt_amount(shape, weight_bps),
                        ))),
                    ),
                    &book,
                )
                .expect("borrow");
        }
        Self {
            model,
            book,
            time: 1,
        }
    }

    /// The liquidatable set after the shock through the index, timed from the price updates:
    /// (wall time, thread CPU time).
    fn shock_and_query(&mut self, found: &mut Vec<Candidate>) -> (Duration, Duration) {
        self.set_prices(false);
        let clock = Clock::start();
        self.set_prices(true);
        found.clear();
        self.model
            .liquidatable(Timestamp(self.time), found)
            .expect("index query");
        clock.elapsed()
    }

    /// As [`Market::shock_and_query`], plus the risk snapshot the replay loop takes for the
    /// timeline after every check: (wall, CPU).
    fn shock_query_and_risk(
        &mut self,
        found: &mut Vec<Candidate>,
        risks: &mut Vec<MarketRisk>,
    ) -> (Duration, Duration) {
        self.set_prices(false);
        let clock = Clock::start();
        self.set_prices(true);
        found.clear();
        risks.clear();
        let time = Timestamp(self.time);
        self.model.liquidatable(time, found).expect("index query");
        self.model.risk(time, risks).expect("risk");
        clock.elapsed()
    }
}

fn aave_market(count: u64) -> Market<AaveModel> {
    let protocol = Protocol::AaveV3;
    let mut params = Vec::new();
    for (symbol, decimals, _, _) in ASSETS {
        params.push(param(protocol, symbol, "decimals", &decimals.to_string()));
        params.push(param(protocol, symbol, "ltv", "0.75"));
        params.push(param(protocol, symbol, "liquidationThreshold", "0.8"));
        params.push(param(protocol, symbol, "liquidationBonus", "1.05"));
    }
    Market::build(AaveModel::v3(AaveVersion::V3), &params, 8_000, count)
}

fn compound_market(count: u64) -> Market<CompoundModel> {
    let protocol = Protocol::CompoundV2;
    let mut params = Vec::new();
    for (symbol, decimals, _, _) in ASSETS {
        params.push(param(protocol, symbol, "decimals", &decimals.to_string()));
        params.push(param(protocol, symbol, "collateralFactor", "0.75"));
    }
    Market::build(
        CompoundModel::new(Rounding::Truncate),
        &params,
        7_500,
        count,
    )
}

/// Checks the index against the full scan once, then times both.
fn measure<M: ProtocolModel>(
    c: &mut Criterion,
    name: &str,
    market: &mut Market<M>,
    scan: impl Fn(&M) -> usize,
) {
    let count = accounts();
    let mut found = Vec::new();
    market.shock_and_query(&mut found);
    let scanned = scan(&market.model);
    assert_eq!(found.len(), scanned, "{name}: index and full scan disagree");
    eprintln!(
        "{name}: {count} accounts, {} liquidatable after the -30% shock",
        found.len()
    );
    let mut group = c.benchmark_group(format!("shock_to_liquidatable/{name}"));
    group.sample_size(if smoke() { 10 } else { 20 });
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(if smoke() { 1 } else { 10 }));
    for (clock, pick) in [("wall", 0usize), ("cpu", 1)] {
        group.bench_function(format!("index/{count}/{clock}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let times = market.shock_and_query(&mut found);
                    total += if pick == 0 { times.0 } else { times.1 };
                    black_box(found.len());
                }
                total
            });
        });
    }
    let mut risks = Vec::new();
    group.bench_function(format!("index_and_risk/{count}/cpu"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += market.shock_query_and_risk(&mut found, &mut risks).1;
                black_box(risks.len());
            }
            total
        });
    });
    group.sample_size(10);
    group.bench_function(format!("full_scan/{count}/cpu"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                market.set_prices(false);
                let clock = Clock::start();
                market.set_prices(true);
                black_box(scan(&market.model));
                total += clock.elapsed().1;
            }
            total
        });
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let count = accounts();
    let mut aave = aave_market(count);
    measure(c, "aave-v3", &mut aave, |model| {
        model.scan_all_liquidatable().expect("full scan").len()
    });
    drop(aave);
    let mut compound = compound_market(count);
    measure(c, "compound-v2", &mut compound, |model| {
        model.scan_all_liquidatable().expect("full scan").len()
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
