//! The protocol models, one folder each, every one implementing
//! [`crate::protocol::ProtocolModel`] with its typed parameters and registered once below.

pub mod aave;
pub mod compound;
pub mod maker;

use crate::protocol::registry::{ProtocolSet, ProtocolSpec};

/// Every protocol the engine models, in the order a replay advances and checks them.
pub const REGISTRY: &[ProtocolSpec] = &[
    maker::MAKER,
    aave::spec::AAVE_V2,
    aave::spec::AAVE_V3,
    compound::spec::COMPOUND_V2,
];

impl Default for ProtocolSet {
    /// Every registered protocol with its default settings. Defined beside [`REGISTRY`] so that
    /// neither the registry's types nor the replay loop name a protocol.
    fn default() -> Self {
        ProtocolSet::new(REGISTRY)
    }
}

#[cfg(test)]
mod tests {
    use cascade_events::{EventKind, Protocol};

    use super::*;
    use crate::counterfactual::scenario::PARAMS;
    use crate::protocol::registry::ReplayKind;

    #[test]
    fn each_protocol_registers_once_and_builds_its_own_model() {
        let set = ProtocolSet::default();
        let models = set.build(ReplayKind::Historical);
        assert_eq!(models.len(), REGISTRY.len());
        for (spec, model) in REGISTRY.iter().zip(&models) {
            assert_eq!(model.protocol(), spec.protocol);
            assert_eq!(
                REGISTRY
                    .iter()
                    .filter(|s| s.protocol == spec.protocol)
                    .count(),
                1
            );
            assert!(!spec.consumes.contains(&EventKind::Price));
        }
        for kind in EventKind::ALL {
            assert!(
                kind == EventKind::Price || REGISTRY.iter().any(|s| s.consumes.contains(&kind)),
                "no protocol consumes {kind:?}"
            );
        }
    }

    #[test]
    fn every_scenario_parameter_names_a_registered_parameter() {
        let set = ProtocolSet::default();
        for spec in PARAMS {
            for protocol in spec.protocols {
                for name in spec.engine_names {
                    let id = set.parse_param(*protocol, name).unwrap();
                    assert_eq!(id.protocol, *protocol);
                }
            }
        }
        assert!(set.parse_param(Protocol::AaveV2, "mat").is_err());
        assert!(set.parse_param(Protocol::Liquity, "mat").is_err());
    }
}
