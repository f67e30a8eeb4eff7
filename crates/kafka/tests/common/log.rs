//! Logs built from synthetic events, and what a log holds, to compare with what went through Kafka.

use std::path::{Path, PathBuf};

use cascade_events::{
    Amount, Event, Fixed, Id, Liquidation, LiquidationDetail, ParamChange, Payload, PositionChange,
    PriceUpdate, Protocol, Symbol, Timestamp, U256, VaultOpen,
};
use cascade_log::{LogReader, LogWriter, WriterOptions};

/// `count` events of several kinds over a few vaults, one second apart.
pub fn events(count: u64) -> Vec<Event> {
    (0..count)
        .map(|i| {
            let vault = Id::Number(1000 + i % 7);
            let ilk = Id::Name(Symbol::new("ETH-B").expect("valid"));
            let payload = match i % 6 {
                0 => Payload::Price(Box::new(PriceUpdate {
                    asset: Id::name("ETH"),
                    quote: Id::name("USD"),
                    price: Fixed::new(U256::from(2_000_000 + i), 3),
                    feed: Id::name("pip"),
                    round: Some(u128::from(i)),
                })),
                1 => Payload::VaultOpen(Box::new(VaultOpen {
                    protocol: Protocol::Maker,
                    market: ilk,
                    account: vault,
                    owner: None,
                })),
                2 => Payload::Deposit(Box::new(PositionChange {
                    protocol: Protocol::Maker,
                    market: ilk,
                    account: vault,
                    asset: Id::name("ETH"),
                    amount: Amount::from_units(u128::from(i) * 1_000_000_000_000_000),
                    shares: None,
                })),
                3 => Payload::Borrow(Box::new(PositionChange {
                    protocol: Protocol::Maker,
                    market: ilk,
                    account: vault,
                    asset: Id::name("DAI"),
                    amount: Amount::from_units(u128::from(i) * 7),
                    shares: None,
                })),
                4 => Payload::ParamChange(Box::new(ParamChange {
                    protocol: Protocol::Maker,
                    market: ilk,
                    param: Symbol::new("SPOTTER.mat").expect("valid"),
                    value: Fixed::new(U256::from(1_300 + i % 5), 3),
                })),
                _ => Payload::Liquidation(Box::new(Liquidation {
                    protocol: Protocol::Maker,
                    market: ilk,
                    account: vault,
                    liquidator: None,
                    collateral_asset: Id::name("ETH"),
                    collateral_seized: Amount::from_units(u128::from(i)),
                    debt_asset: Id::name("DAI"),
                    debt_repaid: Amount::from_units(u128::from(i) * 3),
                    detail: LiquidationDetail::MakerDog {
                        due: None,
                        art: None,
                        auction: Some(i),
                    },
                })),
            };
            Event {
                seq: i,
                chain_id: 1,
                block: Some(12_000_000 + i),
                time: Timestamp(1_621_382_400 + i as i64),
                tx_index: Some((i % 100) as u32),
                log_index: Some((i % 10) as u32),
                tx_hash: None,
                source: 0,
                payload,
            }
        })
        .collect()
}

/// A log at `dir` holding `events`.
pub fn build_log(dir: &Path, events: &[Event]) -> PathBuf {
    let (mut writer, _) = LogWriter::open(dir, WriterOptions::default()).expect("open log");
    for event in events {
        writer.append(event).expect("append");
    }
    writer.commit().expect("commit");
    dir.to_path_buf()
}

/// Every record of a log, as `(seq, bytes)`.
pub fn log_records(dir: &Path) -> Vec<(u64, Vec<u8>)> {
    let reader = LogReader::open(dir).expect("open log");
    reader
        .records(0)
        .collect::<Result<_, _>>()
        .expect("read log")
}
