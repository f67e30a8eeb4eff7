//! Shock-to-liquidatable-set latency: after a -30% price move over a Maker market of 1 million
//! vaults, how long the engine takes to know exactly which vaults are liquidatable, through its
//! index ([`cascade_engine::LiquidationIndex`], via `ProtocolModel::liquidatable`) and through the
//! baseline of testing every vault (`MakerModel::unsafe_by_full_scan`). The quoted result is the
//! ratio. Target (issue #4): under 20 ms for the index.
//!
//! The market is built in the benchmark (no log): vaults with 1 to 100 ETH and debt putting their
//! liquidation price between 45% and 73% of the 2,000 USD starting price (health 1.37 to 2.2),
//! so the -30% shock (to 1,400) makes the vaults whose liquidation price lies above 1,400
//! liquidatable (about a tenth of them). The OSM delay is off (`hop = 0`) so the shock reaches `spot` at once.
//!
//! `CASCADE_BENCH_SMOKE=1` shrinks the market to 10k vaults for CI.

// The crate's clippy.toml bans the wall clock from engine code; a benchmark's job is timing.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use cascade_engine::math::WAD;
use cascade_engine::protocols::maker::{MakerConfig, MakerModel};
use cascade_engine::{PriceBook, ProtocolModel};
use cascade_events::{
    Amount, Event, Fixed, Id, ParamChange, Payload, PositionChange, PriceUpdate, Protocol, Symbol,
    Timestamp, U256,
};
use criterion::{Criterion, criterion_group, criterion_main};

fn smoke() -> bool {
    std::env::var_os("CASCADE_BENCH_SMOKE").is_some_and(|v| v != "0")
}

fn event(time: i64, payload: Payload) -> Event {
    Event::at(1, Timestamp(time), payload)
}

fn change(vault: u64, asset: &str, amount: U256) -> PositionChange {
    PositionChange {
        protocol: Protocol::Maker,
        market: Id::name("ETH-A"),
        account: Id::Number(vault),
        asset: Id::name(asset),
        amount: Amount(amount),
        shares: None,
    }
}

fn price(usd: u64) -> PriceUpdate {
    PriceUpdate {
        asset: Id::name("WETH"),
        quote: Id::name("USD"),
        price: Fixed::new(U256::from(usd), 0),
        feed: Id::name("bench"),
        round: None,
    }
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

struct Market {
    model: MakerModel,
    book: PriceBook,
    time: i64,
}

impl Market {
    fn set_price(&mut self, usd: u64) {
        let update = price(usd);
        self.time += 1;
        self.model
            .advance(Timestamp(self.time), &self.book)
            .expect("advance");
        self.book.record(&update, Timestamp(self.time));
        self.model
            .on_price(&update, Timestamp(self.time), &self.book)
            .expect("price");
    }
}

fn market(vaults: u64) -> Market {
    let mut model = MakerModel::new(MakerConfig {
        hop: 0,
        ..MakerConfig::default()
    });
    let book = PriceBook::default();
    for (name, value) in [
        ("SPOTTER.ilks.mat", "1.5"),
        ("JUG.ilks.duty", "0"),
        ("DOG.ilks.chop", "0.13"),
    ] {
        let change = ParamChange {
            protocol: Protocol::Maker,
            market: Id::name("ETH-A"),
            param: Symbol::new(name).expect("name"),
            value: Fixed::parse_exact(value).expect("value"),
        };
        model
            .apply(&event(0, Payload::ParamChange(Box::new(change))), &book)
            .expect("param");
    }
    let mut rng = Rng(0x5eed_cafe_f00d_beef);
    for vault in 0..vaults {
        let ink = U256::from(1 + rng.next() % 100) * WAD;
        // Liquidation price between 900 and 1,459: debt = ink * liq_price / mat.
        let liq_price = 900 + rng.next() % 560;
        let debt = ink * U256::from(liq_price) * U256::from(2u8) / U256::from(3u8);
        model
            .apply(
                &event(1, Payload::Deposit(Box::new(change(vault, "ETH", ink)))),
                &book,
            )
            .expect("deposit");
        model
            .apply(
                &event(1, Payload::Borrow(Box::new(change(vault, "DAI", debt)))),
                &book,
            )
            .expect("borrow");
    }
    let mut market = Market {
        model,
        book,
        time: 1,
    };
    market.set_price(2000);
    market
}

fn bench(c: &mut Criterion) {
    let vaults = if smoke() { 10_000 } else { 1_000_000 };
    let mut market = market(vaults);
    let mut found = Vec::new();
    market.set_price(1400);
    market
        .model
        .liquidatable(Timestamp(market.time), &mut found)
        .expect("index");
    let scanned = market
        .model
        .unsafe_by_full_scan(Timestamp(market.time))
        .expect("scan");
    assert_eq!(found.len(), scanned.len(), "index and scan disagree");
    eprintln!(
        "{vaults} vaults, {} liquidatable after the -30% shock",
        found.len()
    );

    let mut group = c.benchmark_group("shock_to_liquidatable");
    group.sample_size(if smoke() { 10 } else { 20 });
    group.measurement_time(Duration::from_secs(if smoke() { 1 } else { 10 }));
    group.bench_function(format!("index/{vaults}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                market.set_price(2000);
                let start = Instant::now();
                market.set_price(1400);
                found.clear();
                market
                    .model
                    .liquidatable(Timestamp(market.time), &mut found)
                    .expect("index");
                total += start.elapsed();
                black_box(found.len());
            }
            total
        });
    });
    group.bench_function(format!("full_scan/{vaults}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                market.set_price(2000);
                let start = Instant::now();
                market.set_price(1400);
                let set = market
                    .model
                    .unsafe_by_full_scan(Timestamp(market.time))
                    .expect("scan");
                total += start.elapsed();
                black_box(set.len());
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
