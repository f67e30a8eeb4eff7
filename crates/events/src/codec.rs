//! The record encoding of events: one schema-version byte, then the bincode layout of [`Event`]
//! (without its sequence number) as written by `wincode`.
//!
//! bincode's layout is fixed-width little-endian integers, `u32` enum tags, a `u8` tag for
//! `Option`, and fields in declaration order. Changing a field or variant order changes the bytes,
//! which the golden tests below catch; a deliberate change must bump [`SCHEMA_VERSION`] and keep a
//! decoder for the old version.

use crate::Event;

/// The schema version written in front of every encoded event.
pub const SCHEMA_VERSION: u8 = 1;

/// Why bytes are not an encoded event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No bytes at all, not even the version.
    #[error("empty record: no schema version byte")]
    Empty,
    /// A schema version this build cannot read.
    #[error("unknown schema version {found} (this build reads version {SCHEMA_VERSION})")]
    UnknownVersion {
        /// The version byte found.
        found: u8,
    },
    /// The bytes after the version do not form an event of this schema.
    #[error("malformed event body: {0}")]
    Malformed(String),
}

/// Encodes an event into a new buffer.
pub fn encode(event: &Event) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(128);
    encode_into(event, &mut buffer);
    buffer
}

/// Appends the encoding of an event to `buffer`, so batch writers can reuse one allocation.
pub fn encode_into(event: &Event, buffer: &mut Vec<u8>) {
    buffer.push(SCHEMA_VERSION);
    wincode::serialize_into(&mut *buffer, event)
        .expect("writing a fixed-shape value into a growable Vec cannot fail");
}

/// Decodes one record's bytes into an event at position `seq`, rejecting trailing bytes.
pub fn decode(seq: u64, bytes: &[u8]) -> Result<Event, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != SCHEMA_VERSION {
        return Err(DecodeError::UnknownVersion { found: version });
    }
    let mut event: Event =
        wincode::deserialize_exact(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    event.seq = seq;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;
    use proptest::prelude::*;

    fn address(byte: u8) -> Id {
        Id::Address(Address::repeat_byte(byte))
    }

    fn amount(units: u128) -> Amount {
        Amount::from_units(units)
    }

    fn fixed(value: u128, decimals: u8) -> Fixed {
        Fixed::new(U256::from(value), decimals)
    }

    /// One payload of every variant, in variant order, with every optional field set in at least
    /// one of them.
    fn one_of_each_variant() -> Vec<Payload> {
        let change = PositionChange {
            protocol: Protocol::AaveV2,
            market: address(0xb5),
            account: address(0x11),
            asset: address(0xc0),
            amount: amount(1_500_000_000_000_000_000),
            shares: None,
        };
        vec![
            Payload::Price(Box::new(PriceUpdate {
                asset: Id::name("WETH"),
                quote: Id::name("USD"),
                price: fixed(231_234_567_890, 8),
                feed: address(0x5f),
                round: Some(129_127_208_515_966_861_315),
            })),
            Payload::VaultOpen(Box::new(VaultOpen {
                protocol: Protocol::Maker,
                market: Id::name("ETH-B"),
                account: Id::Number(16175),
                owner: Some(address(0xef)),
            })),
            Payload::Deposit(Box::new(change)),
            Payload::Withdraw(Box::new(PositionChange {
                shares: Some(amount(7)),
                ..change
            })),
            Payload::Borrow(Box::new(PositionChange {
                protocol: Protocol::CompoundV2,
                ..change
            })),
            Payload::Repay(Box::new(PositionChange {
                protocol: Protocol::AaveV3,
                ..change
            })),
            Payload::Liquidation(Box::new(Liquidation {
                protocol: Protocol::Maker,
                market: Id::name("ETH-B"),
                account: Id::Number(23997),
                liquidator: None,
                collateral_asset: Id::name("ETH"),
                collateral_seized: amount(38_000_000_000_000_000_000),
                debt_asset: Id::name("DAI"),
                debt_repaid: amount(60_050_557_807_090_000_000_000),
                detail: LiquidationDetail::MakerDog {
                    due: Some(amount(60_050_557_807_090_000_000_000)),
                    art: None,
                    auction: Some(1234),
                },
            })),
            Payload::CollateralToggle(Box::new(CollateralToggle {
                protocol: Protocol::AaveV2,
                market: address(0xb5),
                account: address(0x11),
                asset: address(0xc0),
                enabled: true,
            })),
            Payload::IndexUpdate(Box::new(IndexUpdate {
                protocol: Protocol::AaveV2,
                market: address(0xb5),
                asset: address(0xc0),
                supply_index: Some(fixed(1_000_000_000_000_000_000_000_000_123, 27)),
                borrow_index: None,
            })),
            Payload::ParamChange(Box::new(ParamChange {
                protocol: Protocol::Maker,
                market: Id::name("ETH-B"),
                param: Symbol::new("SPOTTER.mat").unwrap(),
                value: fixed(13, 1),
            })),
            Payload::AuctionKick(Box::new(AuctionKick {
                protocol: Protocol::Maker,
                market: Id::name("ETH-B"),
                auction: 9,
                account: address(0x22),
                start_price: fixed(2_400, 0),
                tab: amount(1_000),
                lot: amount(2),
                keeper: Some(address(0x33)),
            })),
            Payload::AuctionTake(Box::new(AuctionTake {
                protocol: Protocol::Maker,
                market: Id::name("ETH-B"),
                auction: 9,
                account: address(0x22),
                price: fixed(2_300, 0),
                owe: amount(500),
                tab_left: amount(500),
                lot_left: amount(1),
            })),
            Payload::OracleValue(Box::new(OracleValue {
                protocol: Protocol::Maker,
                market: Id::name("ETH"),
                value: fixed(1_400_000_000_000_000_000_000, 18),
                source: OracleValueSource::OsmLogValue,
                oracle: address(0x81),
            })),
            Payload::OracleSourceChange(Box::new(OracleSourceChange {
                protocol: Protocol::AaveV2,
                oracle: address(0xa5),
                asset: address(0xc0),
                source: address(0x5f),
            })),
            Payload::PositionSnapshot(Box::new(PositionSnapshot {
                protocol: Protocol::AaveV3,
                market: address(0xb5),
                account: address(0x11),
                asset: address(0xc0),
                collateral: amount(2_000),
                debt: amount(700),
                scaled: true,
                collateral_enabled: Some(true),
                e_mode: Some(1),
            })),
            Payload::AccountTotals(Box::new(AccountTotals {
                protocol: Protocol::AaveV2,
                market: address(0xb2),
                account: address(0x12),
                collateral: amount(3_000),
                debt: amount(1_500),
                liquidation_threshold: fixed(8_250, 4),
                ltv: Some(fixed(7_500, 4)),
                health_factor: Some(fixed(1_650_000_000_000_000_000, 18)),
                e_mode: None,
            })),
            Payload::PartialLiquidation(Box::new(PartialLiquidation {
                protocol: Protocol::AaveV2,
                market: address(0xb5),
                account: address(0x11),
                liquidator: Some(address(0x44)),
                collateral_asset: address(0xc0),
                collateral_seized: Some(amount(2_500_000_000_000_000_000)),
                debt_asset: address(0xd0),
                debt_repaid: None,
                detail: LiquidationDetail::Aave {
                    receive_a_token: Some(false),
                },
            })),
        ]
    }

    fn envelope(payload: Payload) -> Event {
        Event {
            seq: 0,
            chain_id: 1,
            block: Some(12_490_991),
            time: Timestamp(1_621_778_834),
            tx_index: Some(3),
            log_index: None,
            tx_hash: Some(B256::repeat_byte(0xab)),
            source: 2,
            payload,
        }
    }

    /// The encoded bytes of every kind, pinned. If this fails, the record format changed: bump
    /// `SCHEMA_VERSION` and keep a decoder for version 1 instead of updating these strings. A new
    /// kind appended at the end (`position-snapshot`, issue #15) leaves every earlier record's
    /// bytes as they were, so version 1 stays: its line is added, none is changed (so did
    /// `account-totals` after it, and the partial liquidation after that, whose kind is
    /// `liquidation`).
    const GOLDEN: [&str; 17] = include!("../tests/golden/v1_events.in");

    #[test]
    fn golden_bytes_of_every_kind() {
        let payloads = one_of_each_variant();
        let kinds = EventKind::ALL.into_iter().chain([EventKind::Liquidation]);
        assert_eq!(payloads.len(), GOLDEN.len());
        for ((payload, golden), kind) in payloads.into_iter().zip(GOLDEN).zip(kinds) {
            assert_eq!(
                payload.kind(),
                kind,
                "test payloads follow the variant order"
            );
            let bytes = encode(&envelope(payload));
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, golden, "encoding of {kind} changed");
        }
    }

    #[test]
    fn envelope_layout_is_bincode() {
        let bytes = encode(&envelope(one_of_each_variant().remove(0)));
        assert_eq!(bytes[0], SCHEMA_VERSION);
        assert_eq!(
            &bytes[1..9],
            &1u64.to_le_bytes(),
            "chain id, u64 little-endian"
        );
        assert_eq!(bytes[9], 1, "Some(block) tag");
        assert_eq!(&bytes[10..18], &12_490_991u64.to_le_bytes());
        assert_eq!(&bytes[18..26], &1_621_778_834i64.to_le_bytes());
        assert_eq!(&bytes[26..31], &[1, 3, 0, 0, 0], "Some(tx index 3)");
        assert_eq!(bytes[31], 0, "None log index");
    }

    #[test]
    fn decode_restores_seq_and_content() {
        for payload in one_of_each_variant() {
            let event = envelope(payload);
            let decoded = decode(42, &encode(&event)).unwrap();
            assert_eq!(decoded, Event { seq: 42, ..event });
        }
    }

    #[test]
    fn decode_rejects_bad_records() {
        let bytes = encode(&envelope(one_of_each_variant().remove(1)));
        assert_eq!(decode(0, &[]), Err(DecodeError::Empty));
        let mut wrong_version = bytes.clone();
        wrong_version[0] = 9;
        assert_eq!(
            decode(0, &wrong_version),
            Err(DecodeError::UnknownVersion { found: 9 })
        );
        assert!(matches!(
            decode(0, &bytes[..bytes.len() - 1]),
            Err(DecodeError::Malformed(_))
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode(0, &trailing),
            Err(DecodeError::Malformed(_))
        ));
        let mut bad_tag = bytes;
        // The payload tag follows the 32-byte envelope prefix with a tx hash and source id.
        let tag_at = 1 + 8 + 9 + 8 + 5 + 1 + 33 + 4;
        bad_tag[tag_at] = 200;
        assert!(matches!(
            decode(0, &bad_tag),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn json_form_is_readable() {
        let json = serde_json::to_value(envelope(one_of_each_variant().remove(0))).unwrap();
        assert_eq!(json["payload"]["kind"], "price");
        assert_eq!(json["payload"]["price"], "2312.34567890");
        assert_eq!(json["time"], "2021-05-23T14:07:14Z");
        assert_eq!(json["tx_hash"], format!("0x{}", "ab".repeat(32)));
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope(one_of_each_variant().remove(0)));
    }

    #[test]
    fn unknown_side_is_null_in_json_and_the_kind_is_a_liquidation() {
        let partial = one_of_each_variant().pop().unwrap();
        assert_eq!(partial.kind(), EventKind::Liquidation);
        let json = serde_json::to_value(envelope(partial.clone())).unwrap();
        assert_eq!(json["payload"]["kind"], "partial-liquidation");
        assert!(json["payload"]["debt_repaid"].is_null());
        assert_eq!(json["payload"]["collateral_seized"], "2500000000000000000");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back.payload, partial);
    }

    fn any_id() -> impl Strategy<Value = Id> {
        prop_oneof![
            any::<[u8; 20]>().prop_map(|b| Id::Address(Address::new(b))),
            any::<u64>().prop_map(Id::Number),
            "[A-Z0-9-]{1,32}".prop_map(|s| Id::name(&s)),
        ]
    }

    proptest! {
        #[test]
        fn any_envelope_round_trips(
            seq in any::<u64>(),
            chain_id in any::<u64>(),
            block in any::<Option<u64>>(),
            time in any::<i64>(),
            tx_index in any::<Option<u32>>(),
            log_index in any::<Option<u32>>(),
            hash in any::<Option<[u8; 32]>>(),
            source in any::<u32>(),
            which in 0usize..12,
            asset in any_id(),
            units in any::<[u64; 4]>(),
        ) {
            let mut payload = one_of_each_variant().remove(which);
            if let Payload::Deposit(change) = &mut payload {
                change.asset = asset;
                change.amount = Amount(U256::from_limbs(units));
            }
            let event = Event {
                seq, chain_id, block, time: Timestamp(time), tx_index, log_index,
                tx_hash: hash.map(B256::new), source, payload,
            };
            prop_assert_eq!(decode(seq, &encode(&event)).unwrap(), event);
        }
    }
}
