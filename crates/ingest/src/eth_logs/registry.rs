//! Which decoder reads a log: every decoder file lists the events it decodes once, in its
//! `EVENTS` (topic0, the family that emits the event, the decode function), and [`DECODERS`]
//! lists the files. A log is dispatched by its topic0 through that table.

use std::collections::HashMap;
use std::sync::LazyLock;

use alloy_primitives::{Address, B256, LogData, U256};
use alloy_sol_types::SolEvent;
use cascade_events::{Amount, Id, Payload, PositionChange, Protocol};

use super::{Contract, Options, aave, chainlink, compound, maker};

/// Every decoder file's events.
const DECODERS: [&[EventDecoder]; 4] = [
    aave::EVENTS,
    compound::EVENTS,
    chainlink::EVENTS,
    maker::EVENTS,
];

static BY_TOPIC: LazyLock<HashMap<B256, &'static EventDecoder>> = LazyLock::new(|| {
    DECODERS
        .into_iter()
        .flatten()
        .map(|decoder| (decoder.topic0, decoder))
        .collect()
});

/// The decoder of the event whose signature hashes to `topic0`, if any decoder registered it.
pub(super) fn find(topic0: B256) -> Option<&'static EventDecoder> {
    BY_TOPIC.get(&topic0).copied()
}

/// What a decode function makes of a log: its payloads (one, except for configuration events
/// that set several parameters at once), or the counter naming why it is skipped (not an
/// error), or a problem.
pub(super) type Decoding = Result<Result<Vec<Payload>, &'static str>, DecodeProblem>;

/// The decoding of a log that carries one payload.
pub(super) fn one(payload: Payload) -> Decoding {
    Ok(Ok(vec![payload]))
}

/// One event a decoder file understands.
pub(super) struct EventDecoder {
    /// The name errors give (`does not decode as AaveLiquidation: ...`).
    pub name: &'static str,
    /// The event's signature hash, the log's first topic.
    pub topic0: B256,
    /// Who emits the event; `None` when Aave v2 and v3 share its signature and only the
    /// contract table can tell them apart.
    pub family: Option<Family>,
    /// Turns the log into a payload.
    pub decode: fn(&Log<'_>) -> Decoding,
}

impl EventDecoder {
    /// Who emits this event, given the contract table's word on the address (`known`); an error
    /// is the counter naming why the log is skipped.
    pub(super) fn family(&self, known: Option<&Contract>) -> Result<Family, &'static str> {
        let table = known.map(|contract| match contract {
            Contract::AaveV2Pool => Family::AaveV2,
            Contract::AaveV3Pool => Family::AaveV3,
            Contract::CompoundCToken(_) => Family::CompoundV2,
            Contract::ChainlinkAggregator => Family::Chainlink,
            Contract::MakerDog
            | Contract::MakerClipper(_)
            | Contract::MakerSpotter
            | Contract::MakerVat
            | Contract::MakerJug
            | Contract::MakerCat
            | Contract::MakerOsm(_)
            | Contract::MakerMedian(_) => Family::Maker,
            Contract::CompoundOracle | Contract::CompoundComptroller => Family::CompoundV2,
            Contract::AaveConfigurator(Protocol::AaveV3) => Family::AaveV3Configurator,
            Contract::AaveConfigurator(_) => Family::AaveV2Configurator,
            Contract::AaveOracle(Protocol::AaveV3) => Family::AaveV3Oracle,
            Contract::AaveOracle(_) => Family::AaveV2Oracle,
        });
        match (self.family, table) {
            // The oracle's kind in the table says which Aave; the decoder refuses any other
            // emitter.
            (Some(Family::AaveV2Oracle), _) => Ok(Family::AaveV2Oracle),
            // v2 and v3 configurators share the event: the table's kind says which.
            (
                Some(Family::AaveV2Configurator),
                Some(family @ (Family::AaveV2Configurator | Family::AaveV3Configurator)),
            ) => Ok(family),
            (Some(Family::AaveV2Configurator), _) => Err(
                "Aave configurator events from contracts not known as a configurator skipped (use --contract ADDRESS=aave-v2-configurator|aave-v3-configurator)",
            ),
            (None, Some(family @ (Family::AaveV2 | Family::AaveV3))) => Ok(family),
            (None, _) => Err(
                "Aave v2/v3 events from contracts not known as an Aave pool skipped (use --contract ADDRESS=aave-v2|aave-v3)",
            ),
            (Some(own), Some(table)) if own != table => {
                Err("events from a contract the table knows as another protocol skipped")
            }
            (Some(own), _) => Ok(own),
        }
    }
}

/// Who emits an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    AaveV2,
    AaveV3,
    CompoundV2,
    Chainlink,
    Maker,
    AaveV2Oracle,
    AaveV3Oracle,
    AaveV2Configurator,
    AaveV3Configurator,
}

impl Family {
    /// The protocol of the events; Chainlink prices belong to none and never ask.
    pub(super) fn protocol(self) -> Protocol {
        match self {
            Family::AaveV2 | Family::AaveV2Oracle | Family::AaveV2Configurator => Protocol::AaveV2,
            Family::AaveV3 | Family::AaveV3Oracle | Family::AaveV3Configurator => Protocol::AaveV3,
            Family::CompoundV2 => Protocol::CompoundV2,
            Family::Chainlink | Family::Maker => Protocol::Maker,
        }
    }
}

/// A log whose topic0 a decoder registered, with what the adapter knows of its emitter.
pub(super) struct Log<'a> {
    /// The protocol of the emitter's family.
    pub protocol: Protocol,
    /// The emitting contract.
    pub address: Address,
    /// The contract table's word on the emitter.
    pub known: Option<&'a Contract>,
    /// Topics and data.
    pub data: &'a LogData,
    /// The adapter's flags (contract and feed tables).
    pub options: &'a Options,
}

impl Log<'_> {
    /// The emitting contract as an id (the pool, cToken, aggregator or oracle).
    pub(super) fn emitter(&self) -> Id {
        Id::Address(self.address)
    }

    /// The log as the event `E`, validated against its layout.
    pub(super) fn decode<E: SolEvent>(&self) -> Result<E, DecodeProblem> {
        E::decode_raw_log_validate(self.data.topics().iter().copied(), &self.data.data)
            .map_err(DecodeProblem::Layout)
    }

    /// A position change in the emitting market (an Aave pool, a cToken).
    pub(super) fn change(
        &self,
        account: Address,
        asset: Address,
        amount: U256,
        shares: Option<U256>,
    ) -> PositionChange {
        PositionChange {
            protocol: self.protocol,
            market: self.emitter(),
            account: Id::Address(account),
            asset: Id::Address(asset),
            amount: Amount(amount),
            shares: shares.map(Amount),
        }
    }
}

/// Why a registered event's log did not decode.
pub(super) enum DecodeProblem {
    /// The topics or data do not have the event's layout.
    Layout(alloy_sol_types::Error),
    /// The layout is right but a value is impossible (field, reason).
    Value(&'static str, String),
    /// An oracle event from a contract the table does not name as that oracle (the event, the
    /// kind it must be named as).
    Emitter(&'static str, &'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_is_registered_once_under_its_own_name() {
        let all: Vec<&EventDecoder> = DECODERS.into_iter().flatten().collect();
        assert_eq!(BY_TOPIC.len(), all.len(), "a topic0 is registered twice");
        let mut names: Vec<&str> = all.iter().map(|decoder| decoder.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "two decoders share a name");
        for decoder in all {
            assert_eq!(
                find(decoder.topic0).map(|found| found.name),
                Some(decoder.name)
            );
        }
    }
}
