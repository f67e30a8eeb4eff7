//! Event fixtures shared by the integration tests.

use cascade_events::{
    Address, Amount, Event, Fixed, Id, Payload, PositionChange, PriceUpdate, Protocol, Timestamp,
    U256,
};

/// A deterministic, varied event for position `i` (prices and deposits alternate).
pub fn event(i: u64) -> Event {
    let payload = if i.is_multiple_of(3) {
        Payload::Price(Box::new(PriceUpdate {
            asset: Id::name("WETH"),
            quote: Id::name("USD"),
            price: Fixed::new(U256::from(200_000_000_000_u64 + i), 8),
            feed: Id::Address(Address::repeat_byte(0x5f)),
            round: Some(u128::from(i)),
        }))
    } else {
        Payload::Deposit(Box::new(PositionChange {
            protocol: if i.is_multiple_of(2) {
                Protocol::Maker
            } else {
                Protocol::AaveV2
            },
            market: Id::name("ETH-B"),
            account: Id::Number(i),
            asset: Id::name("ETH"),
            amount: Amount::from_units(u128::from(i) * 1_000_000_000),
            shares: None,
        }))
    };
    Event {
        seq: 0,
        chain_id: 1,
        block: Some(12_000_000 + i),
        time: Timestamp(1_621_382_400 + i as i64),
        tx_index: Some((i % 200) as u32),
        log_index: None,
        tx_hash: None,
        source: (i % 2) as u32,
        payload,
    }
}

/// `event(i)` with its seq set, as a reader returns it.
pub fn event_at(i: u64) -> Event {
    Event { seq: i, ..event(i) }
}
