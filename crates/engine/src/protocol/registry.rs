//! The registry: each protocol describes itself once, in a [`ProtocolSpec`], and the replay,
//! the scenario reader and the `--params` reader find protocols only through it.
//!
//! The list itself is [`crate::protocols::REGISTRY`] (this module never names a protocol); here is
//! what an entry holds and the [`ProtocolSet`] a replay is configured with (each registered
//! protocol with its settings).

use std::any::Any;
use std::fmt::Debug;

use cascade_events::{EventKind, Protocol, Timestamp};
use cascade_run::RunConfig;

use crate::EngineError;
use crate::oracle::OracleMode;
use crate::protocol::ProtocolModel;
use crate::protocol::param::{ParamId, ParamSetting};

/// Which kind of replay a model is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayKind {
    /// History as recorded.
    Historical,
    /// A scenario that reshapes market prices: a model whose oracle could follow recorded oracle
    /// values reads its estimate from the published prices instead.
    Counterfactual,
}

/// Settings that shape one protocol's results (Maker: the OSM delay, price sources,
/// tolerances), and the constructor of its model.
pub trait ProtocolSettings: Any + Debug + Send + Sync + SettingsClone {
    /// The protocol these settings are for.
    fn protocol(&self) -> Protocol;

    /// Writes these settings into the run file's `config` (its own section there; a protocol
    /// with nothing that shapes results writes nothing).
    fn describe(&self, _config: &mut RunConfig) {}

    /// A fresh model with these settings.
    fn build(&self, kind: ReplayKind) -> Box<dyn ProtocolModel>;

    /// Which oracle values the model reads (`--oracle`); a protocol without recorded oracle
    /// values to read ignores it.
    fn set_oracle(&mut self, _mode: OracleMode) {}
}

/// A copy of boxed settings (every settings type is `Clone`).
pub trait SettingsClone {
    /// A deep copy behind a box.
    fn clone_settings(&self) -> Box<dyn ProtocolSettings>;
}

impl<T: ProtocolSettings + Clone> SettingsClone for T {
    fn clone_settings(&self) -> Box<dyn ProtocolSettings> {
        Box::new(self.clone())
    }
}

/// The events of a lending pool without vaults or auctions (Aave, Compound).
pub const POOL_EVENTS: &[EventKind] = &[
    EventKind::Deposit,
    EventKind::Withdraw,
    EventKind::Borrow,
    EventKind::Repay,
    EventKind::CollateralToggle,
    EventKind::IndexUpdate,
    EventKind::ParamChange,
    EventKind::Liquidation,
    EventKind::PositionSnapshot,
    EventKind::OracleValue,
    EventKind::OracleSourceChange,
    EventKind::AccountTotals,
];

/// One protocol as the engine knows it.
pub struct ProtocolSpec {
    /// The protocol; events with this [`cascade_events::Payload::protocol`] go to its model.
    pub protocol: Protocol,
    /// Its default settings (and through them its model constructor).
    pub settings: fn() -> Box<dyn ProtocolSettings>,
    /// Reads a parameter name into the protocol's typed parameter.
    pub parse_param: fn(&str) -> Option<ParamId>,
    /// The event kinds its model consumes (besides prices, which every model sees).
    pub consumes: &'static [EventKind],
}

/// The protocols a replay models, each with its settings, in registry order. Its `Default`
/// (beside [`crate::protocols::REGISTRY`]) is every registered protocol with default settings.
#[derive(Debug)]
pub struct ProtocolSet {
    registry: &'static [ProtocolSpec],
    settings: Vec<Box<dyn ProtocolSettings>>,
}

impl Debug for ProtocolSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.protocol.name())
    }
}

impl Clone for ProtocolSet {
    fn clone(&self) -> Self {
        Self {
            registry: self.registry,
            settings: self.settings.iter().map(|s| s.clone_settings()).collect(),
        }
    }
}

impl ProtocolSet {
    /// Every protocol of `registry` with its default settings.
    pub fn new(registry: &'static [ProtocolSpec]) -> Self {
        Self {
            registry,
            settings: registry.iter().map(|spec| (spec.settings)()).collect(),
        }
    }

    /// The spec of `protocol`, when it is registered.
    pub fn spec(&self, protocol: Protocol) -> Option<&'static ProtocolSpec> {
        self.registry.iter().find(|spec| spec.protocol == protocol)
    }

    /// The settings of type `T`, when that protocol is in the set.
    pub fn settings<T: ProtocolSettings>(&self) -> Option<&T> {
        self.settings
            .iter()
            .find_map(|s| (s.as_ref() as &dyn Any).downcast_ref::<T>())
    }

    /// The settings of type `T` to change, when that protocol is in the set.
    pub fn settings_mut<T: ProtocolSettings>(&mut self) -> Option<&mut T> {
        self.settings
            .iter_mut()
            .find_map(|s| (s.as_mut() as &mut dyn Any).downcast_mut::<T>())
    }

    /// Every protocol's models read oracle values under `mode` (`--oracle`).
    pub fn set_oracle(&mut self, mode: OracleMode) {
        for settings in &mut self.settings {
            settings.set_oracle(mode);
        }
    }

    /// One fresh model per protocol, in registry order.
    pub fn build(&self, kind: ReplayKind) -> Vec<Box<dyn ProtocolModel>> {
        self.settings.iter().map(|s| s.build(kind)).collect()
    }

    /// Writes every protocol's settings into the run file's `config`.
    pub fn describe(&self, config: &mut RunConfig) {
        for settings in &self.settings {
            settings.describe(config);
        }
    }

    /// Checks that `setting` is one its protocol's model takes (the value's units and range), by
    /// applying it to a fresh model.
    pub fn check(&self, setting: &ParamSetting) -> Result<(), EngineError> {
        let settings = self
            .settings
            .iter()
            .find(|s| s.protocol() == setting.param.protocol)
            .ok_or_else(|| setting.foreign())?;
        settings
            .build(ReplayKind::Historical)
            .set_param(setting, Timestamp(0))
            .map(|_| ())
    }

    /// Reads `name` as a parameter of `protocol`; the error says which is unknown.
    pub fn parse_param(&self, protocol: Protocol, name: &str) -> Result<ParamId, &'static str> {
        let spec = self
            .spec(protocol)
            .ok_or("the engine models no such protocol")?;
        (spec.parse_param)(name).ok_or("not a parameter this protocol's model knows")
    }
}
