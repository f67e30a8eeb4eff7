//! Compound v2's parameters and its entry in the registry.

use cascade_events::Protocol;

use super::CompoundModel;
use super::exp::Rounding;
use crate::oracle::{OracleMode, replay_oracle};
use crate::protocol::ProtocolModel;
use crate::protocol::param::ProtocolParam;
use crate::protocol::registry::{POOL_EVENTS, ProtocolSettings, ProtocolSpec, ReplayKind};

/// A Comptroller or market parameter, under the Comptroller's names (with or without
/// `Mantissa`) and the scenario table's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompoundParam {
    /// `closeFactorMantissa`, Comptroller-wide.
    CloseFactor,
    /// `liquidationIncentiveMantissa`, Comptroller-wide.
    LiquidationIncentive,
    /// A market's `collateralFactorMantissa`.
    CollateralFactor,
    /// A cToken's `protocolSeizeShareMantissa`.
    ProtocolSeizeShare,
    /// The underlying token's decimals.
    Decimals,
    /// A market setting that does not bear on liquidations (reserve factor, caps).
    Untracked,
}

impl ProtocolParam for CompoundParam {
    const ALL: &'static [Self] = &[
        CompoundParam::CloseFactor,
        CompoundParam::LiquidationIncentive,
        CompoundParam::CollateralFactor,
        CompoundParam::ProtocolSeizeShare,
        CompoundParam::Decimals,
        CompoundParam::Untracked,
    ];

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "closeFactor" | "close-factor" | "closeFactorMantissa" => CompoundParam::CloseFactor,
            "liquidationIncentive" | "liquidation-incentive" | "liquidationIncentiveMantissa" => {
                CompoundParam::LiquidationIncentive
            }
            "collateralFactor" | "collateral-factor" | "collateralFactorMantissa" => {
                CompoundParam::CollateralFactor
            }
            "protocolSeizeShare" | "protocolSeizeShareMantissa" => {
                CompoundParam::ProtocolSeizeShare
            }
            "decimals" => CompoundParam::Decimals,
            "reserveFactor" | "reserveFactorMantissa" | "borrowCap" | "supplyCap" => {
                CompoundParam::Untracked
            }
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            CompoundParam::CloseFactor => "closeFactor",
            CompoundParam::LiquidationIncentive => "liquidationIncentive",
            CompoundParam::CollateralFactor => "collateralFactor",
            CompoundParam::ProtocolSeizeShare => "protocolSeizeShare",
            CompoundParam::Decimals => "decimals",
            CompoundParam::Untracked => "untracked",
        }
    }
}

/// Compound's settings: the oracle values it reads; the Comptroller's `Exp` rounding is the
/// current contracts'.
#[derive(Clone, Debug)]
struct CompoundSettings {
    oracle: OracleMode,
}

impl ProtocolSettings for CompoundSettings {
    fn protocol(&self) -> Protocol {
        Protocol::CompoundV2
    }

    fn build(&self, kind: ReplayKind) -> Box<dyn ProtocolModel> {
        let model = CompoundModel::new(Rounding::Truncate);
        Box::new(model.with_oracle(replay_oracle(self.oracle, kind)))
    }

    fn set_oracle(&mut self, mode: OracleMode) {
        self.oracle = mode;
    }
}

/// Compound v2 in the registry.
pub const COMPOUND_V2: ProtocolSpec = ProtocolSpec {
    protocol: Protocol::CompoundV2,
    settings: || {
        Box::new(CompoundSettings {
            oracle: OracleMode::Auto,
        })
    },
    parse_param: |name| CompoundParam::parse(name).map(|p| p.id(Protocol::CompoundV2)),
    consumes: POOL_EVENTS,
};
