//! Maker in the registry: its settings ([`MakerConfig`]) build its model.

use cascade_events::{EventKind, Protocol};
use cascade_run::RunConfig;

use super::{MakerConfig, MakerModel, MakerParam, OracleMode};
use crate::oracle::replay_oracle;
use crate::protocol::ProtocolModel;
use crate::protocol::param::ProtocolParam;
use crate::protocol::registry::{ProtocolSet, ProtocolSettings, ProtocolSpec, ReplayKind};

impl MakerConfig {
    /// Maker's settings in `set` (every set built from the registry has them).
    pub fn of(set: &ProtocolSet) -> &MakerConfig {
        set.settings().expect("Maker is registered")
    }

    /// Maker's settings in `set`, to change.
    pub fn of_mut(set: &mut ProtocolSet) -> &mut MakerConfig {
        set.settings_mut().expect("Maker is registered")
    }
}

impl ProtocolSettings for MakerConfig {
    fn protocol(&self) -> Protocol {
        Protocol::Maker
    }

    fn describe(&self, config: &mut RunConfig) {
        config.maker = Some(MakerConfig::describe(self));
    }

    fn build(&self, kind: ReplayKind) -> Box<dyn ProtocolModel> {
        let mut config = self.clone();
        config.oracle = replay_oracle(config.oracle, kind);
        Box::new(MakerModel::new(config))
    }

    fn set_oracle(&mut self, mode: OracleMode) {
        self.oracle = mode;
    }
}

/// Maker in the registry.
pub const MAKER: ProtocolSpec = ProtocolSpec {
    protocol: Protocol::Maker,
    settings: || Box::new(MakerConfig::default()),
    parse_param: |name| MakerParam::parse(name).map(|p| p.id(Protocol::Maker)),
    consumes: &[
        EventKind::VaultOpen,
        EventKind::Deposit,
        EventKind::Withdraw,
        EventKind::Borrow,
        EventKind::Repay,
        EventKind::IndexUpdate,
        EventKind::ParamChange,
        EventKind::Liquidation,
        EventKind::AuctionKick,
        EventKind::AuctionTake,
        EventKind::OracleValue,
        EventKind::OracleSourceChange,
        EventKind::PositionSnapshot,
    ],
};
