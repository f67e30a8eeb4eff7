//! Aave's parameters and its entries in the registry (v2 and v3 share the parameters).

use cascade_events::Protocol;

use super::AaveModel;
use super::logic::AaveVersion;
use crate::oracle::{OracleMode, replay_oracle};
use crate::protocol::ProtocolModel;
use crate::protocol::param::ProtocolParam;
use crate::protocol::registry::{POOL_EVENTS, ProtocolSettings, ProtocolSpec, ReplayKind};

/// An Aave pool or reserve parameter, under the names of `PoolConfigurator`, the reserve
/// configuration and the scenario table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AaveParam {
    /// `LIQUIDATION_CLOSE_FACTOR_PERCENT`, pool-wide.
    CloseFactor,
    /// The v3 rule generation (3.2 or 3.3), pool-wide.
    PoolVersion,
    /// A reserve's token decimals.
    Decimals,
    /// A reserve's liquidation threshold.
    LiquidationThreshold,
    /// A reserve's loan-to-value.
    Ltv,
    /// A reserve's liquidation bonus (multiplier).
    LiquidationBonus,
    /// A reserve's liquidation protocol fee (v3).
    LiquidationProtocolFee,
    /// A reserve setting that does not bear on liquidations (reserve factor, caps, flags).
    Untracked,
}

impl ProtocolParam for AaveParam {
    const ALL: &'static [Self] = &[
        AaveParam::CloseFactor,
        AaveParam::PoolVersion,
        AaveParam::Decimals,
        AaveParam::LiquidationThreshold,
        AaveParam::Ltv,
        AaveParam::LiquidationBonus,
        AaveParam::LiquidationProtocolFee,
        AaveParam::Untracked,
    ];

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "closeFactor" | "close-factor" | "LIQUIDATION_CLOSE_FACTOR_PERCENT" => {
                AaveParam::CloseFactor
            }
            "poolVersion" | "version" => AaveParam::PoolVersion,
            "decimals" => AaveParam::Decimals,
            "liquidationThreshold"
            | "liquidation-threshold"
            | "threshold"
            | "lt"
            | "reserveLiquidationThreshold" => AaveParam::LiquidationThreshold,
            "ltv" | "LTV" | "baseLTVasCollateral" => AaveParam::Ltv,
            "liquidationBonus" | "liquidation-bonus" | "bonus" | "reserveLiquidationBonus" => {
                AaveParam::LiquidationBonus
            }
            "liquidationProtocolFee" | "liquidation-protocol-fee" => {
                AaveParam::LiquidationProtocolFee
            }
            "reserveFactor"
            | "borrowingEnabled"
            | "stableBorrowRateEnabled"
            | "usageAsCollateralEnabled"
            | "supplyCap"
            | "borrowCap" => AaveParam::Untracked,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            AaveParam::CloseFactor => "closeFactor",
            AaveParam::PoolVersion => "poolVersion",
            AaveParam::Decimals => "decimals",
            AaveParam::LiquidationThreshold => "liquidationThreshold",
            AaveParam::Ltv => "ltv",
            AaveParam::LiquidationBonus => "liquidationBonus",
            AaveParam::LiquidationProtocolFee => "liquidationProtocolFee",
            AaveParam::Untracked => "untracked",
        }
    }
}

/// Aave's settings: the pool generation each entry builds and the oracle values it reads.
#[derive(Clone, Debug)]
struct AaveSettings {
    protocol: Protocol,
    oracle: OracleMode,
}

impl ProtocolSettings for AaveSettings {
    fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn build(&self, kind: ReplayKind) -> Box<dyn ProtocolModel> {
        let model = match self.protocol {
            Protocol::AaveV2 => AaveModel::v2(),
            _ => AaveModel::v3(AaveVersion::V3),
        };
        Box::new(model.with_oracle(replay_oracle(self.oracle, kind)))
    }

    fn set_oracle(&mut self, mode: OracleMode) {
        self.oracle = mode;
    }
}

/// Aave v2 in the registry.
pub const AAVE_V2: ProtocolSpec = ProtocolSpec {
    protocol: Protocol::AaveV2,
    settings: || {
        Box::new(AaveSettings {
            protocol: Protocol::AaveV2,
            oracle: OracleMode::Auto,
        })
    },
    parse_param: |name| AaveParam::parse(name).map(|p| p.id(Protocol::AaveV2)),
    consumes: POOL_EVENTS,
};

/// Aave v3 in the registry.
pub const AAVE_V3: ProtocolSpec = ProtocolSpec {
    protocol: Protocol::AaveV3,
    settings: || {
        Box::new(AaveSettings {
            protocol: Protocol::AaveV3,
            oracle: OracleMode::Auto,
        })
    },
    parse_param: |name| AaveParam::parse(name).map(|p| p.id(Protocol::AaveV3)),
    consumes: POOL_EVENTS,
};
