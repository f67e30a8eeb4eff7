//! The protocol parameters a scenario may override: their names, the names the event log gives
//! them, their units and the values each accepts.
//!
//! Values are in the same human units as the governance `ParamChange` events in the log (Maker
//! `mat` 1.3, `chop` 0.13, `dust` in DAI; Aave thresholds as fractions), so an override is exactly
//! "a governance change that happened at `from` and pinned the value". Converting to a contract's
//! own representation (ray, wad, basis points) is the protocol model's job, never this module's.

use std::fmt;

use cascade_events::{Fixed, Protocol, U256};
use serde::{Serialize, Serializer};

/// What a parameter's value means, for validation and documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamUnit {
    /// A ratio of collateral value to debt, at least 1 (Maker `mat`, Clipper `buf`).
    Ratio,
    /// A fraction from 0 to 1 (Aave threshold, Compound collateral factor, Clipper `cusp`).
    Fraction,
    /// A multiplier of at least 1 on the debt repaid (Aave `liquidationBonus` 1.05).
    Multiplier,
    /// An amount of the protocol's debt token in whole tokens (DAI for Maker).
    DebtAmount,
    /// Whole seconds.
    Seconds,
    /// A yearly rate as the export writes it (Maker `duty` 0.06 = 6% a year).
    YearlyRate,
}

impl ParamUnit {
    /// How the unit is described to users.
    pub fn describe(self) -> &'static str {
        match self {
            ParamUnit::Ratio => "a ratio of at least 1 (e.g. 1.5)",
            ParamUnit::Fraction => "a fraction from 0 to 1 (e.g. 0.825 or 82.5%)",
            ParamUnit::Multiplier => "a multiplier of at least 1 (e.g. 1.05 for a 5% bonus)",
            ParamUnit::DebtAmount => "an amount of the debt token in whole tokens (e.g. 15000)",
            ParamUnit::Seconds => "whole seconds or a duration (e.g. 8400 or \"2h20m\")",
            ParamUnit::YearlyRate => "a yearly rate as a fraction (e.g. 0.06)",
        }
    }
}

/// Whether a parameter belongs to one market or to the whole protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One ilk, reserve or cToken: `market` is required.
    Market,
    /// The whole protocol (Dog `Hole`, Compound `closeFactor`): `market` is `"*"` or absent.
    Global,
}

/// A parameter a scenario can override.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Param {
    /// Maker `Spotter.ilks.mat`: liquidation ratio.
    MakerMat,
    /// Maker liquidation penalty (`Dog.ilks.chop`, and `Cat.ilks.chop` before Liquidations 2.0),
    /// as the penalty fraction the export writes (0.13); the contract's 1.13 is accepted too.
    MakerChop,
    /// Maker `Vat.ilks.dust`: minimum vault debt, DAI.
    MakerDust,
    /// Maker `Clipper.buf`: auction starting price over the oracle price.
    MakerBuf,
    /// Maker `Clipper.tail`: seconds before an auction needs a reset.
    MakerTail,
    /// Maker `Clipper.cusp`: price drop (fraction of the start price) before a reset.
    MakerCusp,
    /// Maker `Clipper.chip`: keeper incentive, fraction of the tab.
    MakerChip,
    /// Maker `Clipper.tip`: flat keeper incentive, DAI.
    MakerTip,
    /// Maker `Dog.ilks.hole`: DAI that may be in this ilk's auctions at once.
    MakerHole,
    /// Maker `Dog.Hole`: DAI that may be in all auctions at once.
    MakerGlobalHole,
    /// Maker `Cat.ilks.dunk`: DAI auctioned per bite before Liquidations 2.0.
    MakerDunk,
    /// Maker `Jug.ilks.duty`: stability fee, yearly.
    MakerDuty,
    /// Aave reserve liquidation threshold.
    AaveLiquidationThreshold,
    /// Aave reserve loan-to-value.
    AaveLtv,
    /// Aave reserve liquidation bonus (the contract's multiplier: 1.05 = 5%).
    AaveLiquidationBonus,
    /// Aave close factor (v2 0.5; v3 0.5, or 1 below the health-factor threshold).
    AaveCloseFactor,
    /// Compound v2 market collateral factor.
    CompoundCollateralFactor,
    /// Compound v2 liquidation incentive (multiplier, 1.08).
    CompoundLiquidationIncentive,
    /// Compound v2 close factor.
    CompoundCloseFactor,
}

/// The fixed facts about one [`Param`].
pub struct ParamSpec {
    /// The parameter.
    pub param: Param,
    /// Which protocols have it.
    pub protocols: &'static [Protocol],
    /// The name written in scenario files and sweep keys.
    pub name: &'static str,
    /// Other names accepted for it (contract-qualified names as in the log, Aave's camelCase).
    pub aliases: &'static [&'static str],
    /// The names handed to `ProtocolModel::set_param` to apply it (Maker: bare names, so a
    /// Clipper override does not switch an ilk to Liquidations 2.0 by itself; `chop` sets both
    /// the Cat's and the Dog's penalty).
    pub engine_names: &'static [&'static str],
    /// Its unit.
    pub unit: ParamUnit,
    /// Market or global.
    pub scope: Scope,
    /// Smallest value allowed, inclusive, as decimal text.
    pub min: &'static str,
    /// Largest value allowed, inclusive, as decimal text; `None` for unbounded.
    pub max: Option<&'static str>,
}

const MAKER: &[Protocol] = &[Protocol::Maker];
const AAVE: &[Protocol] = &[Protocol::AaveV2, Protocol::AaveV3];
const COMPOUND: &[Protocol] = &[Protocol::CompoundV2];

/// Every parameter, in [`Param`] order.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        param: Param::MakerMat,
        protocols: MAKER,
        name: "mat",
        aliases: &["SPOTTER.mat", "SPOTTER.ilks.mat"],
        engine_names: &["mat"],
        unit: ParamUnit::Ratio,
        scope: Scope::Market,
        min: "1",
        max: Some("100"),
    },
    ParamSpec {
        param: Param::MakerChop,
        protocols: MAKER,
        name: "chop",
        aliases: &["DOG.chop", "DOG.ilks.chop", "CAT.chop", "CAT.ilks.chop"],
        engine_names: &["chop", "CAT.chop"],
        unit: ParamUnit::Fraction,
        scope: Scope::Market,
        min: "0",
        max: Some("1"),
    },
    ParamSpec {
        param: Param::MakerDust,
        protocols: MAKER,
        name: "dust",
        aliases: &["VAT.dust", "VAT.ilks.dust"],
        engine_names: &["dust"],
        unit: ParamUnit::DebtAmount,
        scope: Scope::Market,
        min: "0",
        max: None,
    },
    ParamSpec {
        param: Param::MakerBuf,
        protocols: MAKER,
        name: "buf",
        aliases: &["CLIPPER.buf"],
        engine_names: &["buf"],
        unit: ParamUnit::Ratio,
        scope: Scope::Market,
        min: "1",
        max: Some("10"),
    },
    ParamSpec {
        param: Param::MakerTail,
        protocols: MAKER,
        name: "tail",
        aliases: &["CLIPPER.tail"],
        engine_names: &["tail"],
        unit: ParamUnit::Seconds,
        scope: Scope::Market,
        min: "1",
        max: None,
    },
    ParamSpec {
        param: Param::MakerCusp,
        protocols: MAKER,
        name: "cusp",
        aliases: &["CLIPPER.cusp"],
        engine_names: &["cusp"],
        unit: ParamUnit::Fraction,
        scope: Scope::Market,
        min: "0",
        max: Some("1"),
    },
    ParamSpec {
        param: Param::MakerChip,
        protocols: MAKER,
        name: "chip",
        aliases: &["CLIPPER.chip"],
        engine_names: &["chip"],
        unit: ParamUnit::Fraction,
        scope: Scope::Market,
        min: "0",
        max: Some("1"),
    },
    ParamSpec {
        param: Param::MakerTip,
        protocols: MAKER,
        name: "tip",
        aliases: &["CLIPPER.tip"],
        engine_names: &["tip"],
        unit: ParamUnit::DebtAmount,
        scope: Scope::Market,
        min: "0",
        max: None,
    },
    ParamSpec {
        param: Param::MakerHole,
        protocols: MAKER,
        name: "hole",
        aliases: &["DOG.hole", "DOG.ilks.hole"],
        engine_names: &["hole"],
        unit: ParamUnit::DebtAmount,
        scope: Scope::Market,
        min: "0",
        max: None,
    },
    ParamSpec {
        param: Param::MakerGlobalHole,
        protocols: MAKER,
        name: "Hole",
        aliases: &["DOG.Hole"],
        engine_names: &["DOG.Hole"],
        unit: ParamUnit::DebtAmount,
        scope: Scope::Global,
        min: "0",
        max: None,
    },
    ParamSpec {
        param: Param::MakerDunk,
        protocols: MAKER,
        name: "dunk",
        aliases: &["CAT.dunk", "CAT.ilks.dunk"],
        engine_names: &["CAT.dunk"],
        unit: ParamUnit::DebtAmount,
        scope: Scope::Market,
        min: "0",
        max: None,
    },
    ParamSpec {
        param: Param::MakerDuty,
        protocols: MAKER,
        name: "duty",
        aliases: &["JUG.duty", "JUG.ilks.duty"],
        engine_names: &["duty"],
        unit: ParamUnit::YearlyRate,
        scope: Scope::Market,
        min: "0",
        max: Some("10"),
    },
    ParamSpec {
        param: Param::AaveLiquidationThreshold,
        protocols: AAVE,
        name: "liquidation-threshold",
        aliases: &[
            "liquidationThreshold",
            "threshold",
            "lt",
            "reserveLiquidationThreshold",
        ],
        engine_names: &["liquidationThreshold"],
        unit: ParamUnit::Fraction,
        scope: Scope::Market,
        min: "0",
        max: Some("1"),
    },
    ParamSpec {
        param: Param::AaveLtv,
        protocols: AAVE,
        name: "ltv",
        aliases: &["LTV", "baseLTVasCollateral"],
        engine_names: &["ltv"],
        unit: ParamUnit::Fraction,
        scope: Scope::Market,
        min: "0",
        max: Some("1"),
    },
    ParamSpec {
        param: Param::AaveLiquidationBonus,
        protocols: AAVE,
        name: "liquidation-bonus",
        aliases: &["liquidationBonus", "bonus", "reserveLiquidationBonus"],
        engine_names: &["liquidationBonus"],
        unit: ParamUnit::Multiplier,
        scope: Scope::Market,
        min: "1",
        max: Some("2"),
    },
    ParamSpec {
        param: Param::AaveCloseFactor,
        protocols: AAVE,
        name: "close-factor",
        aliases: &["closeFactor", "LIQUIDATION_CLOSE_FACTOR_PERCENT"],
        engine_names: &["closeFactor"],
        unit: ParamUnit::Fraction,
        scope: Scope::Global,
        min: "0",
        max: Some("1"),
    },
    ParamSpec {
        param: Param::CompoundCollateralFactor,
        protocols: COMPOUND,
        name: "collateral-factor",
        aliases: &["collateralFactor", "collateralFactorMantissa"],
        engine_names: &["collateralFactor"],
        unit: ParamUnit::Fraction,
        scope: Scope::Market,
        // Comptroller.collateralFactorMaxMantissa = 0.9
        min: "0",
        max: Some("0.9"),
    },
    ParamSpec {
        param: Param::CompoundLiquidationIncentive,
        protocols: COMPOUND,
        name: "liquidation-incentive",
        aliases: &["liquidationIncentive", "liquidationIncentiveMantissa"],
        engine_names: &["liquidationIncentive"],
        unit: ParamUnit::Multiplier,
        scope: Scope::Global,
        min: "1",
        max: Some("2"),
    },
    ParamSpec {
        param: Param::CompoundCloseFactor,
        protocols: COMPOUND,
        name: "close-factor",
        aliases: &["closeFactor", "closeFactorMantissa"],
        engine_names: &["closeFactor"],
        unit: ParamUnit::Fraction,
        scope: Scope::Global,
        // Comptroller.closeFactorMinMantissa = 0.05, closeFactorMaxMantissa = 0.9
        min: "0.05",
        max: Some("0.9"),
    },
];

impl Param {
    /// The parameter's fixed facts.
    pub fn spec(self) -> &'static ParamSpec {
        PARAMS
            .iter()
            .find(|spec| spec.param == self)
            .expect("every Param has a row in PARAMS")
    }

    /// The name written in scenario files.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Finds the parameter `name` (or one of its aliases) of `protocol`; on failure, the names
    /// that protocol accepts.
    pub fn lookup(protocol: Protocol, name: &str) -> Result<Param, Vec<&'static str>> {
        let of_protocol = || {
            PARAMS
                .iter()
                .filter(|spec| spec.protocols.contains(&protocol))
        };
        of_protocol()
            .find(|spec| spec.name == name || spec.aliases.contains(&name))
            .map(|spec| spec.param)
            .ok_or_else(|| of_protocol().map(|spec| spec.name).collect())
    }

    /// The parameter of `protocol` a recorded governance change named `name` sets
    /// (`DOG.ilks.chop`, `SPOTTER.ilks.mat`, `liquidationThreshold`): its full name or alias, else
    /// the contract variable its dotted path ends in; `None` for a change no override can pin.
    pub fn recorded(protocol: Protocol, name: &str) -> Option<Param> {
        Param::lookup(protocol, name).ok().or_else(|| {
            let (_, variable) = name.rsplit_once('.')?;
            Param::lookup(protocol, variable).ok()
        })
    }

    /// Checks `value` against the parameter's unit and bounds and puts it in canonical form
    /// (Maker `chop` 1.13 becomes 0.13); the error says what is accepted.
    pub fn check(self, value: Fixed) -> Result<Fixed, String> {
        let spec = self.spec();
        let value = if self == Param::MakerChop && value >= Fixed::new(U256::from(1u8), 0) {
            // The contract stores 1.13 (wad); the export writes the penalty 0.13. Accept both.
            let one = Fixed::new(U256::from(1u8), 0)
                .rescale(value.decimals)
                .expect("1 fits at any decimals a parsed value has");
            Fixed::new(value.value - one, value.decimals)
        } else {
            value
        };
        let min: Fixed = spec.min.parse().expect("PARAMS bounds are decimals");
        let max: Option<Fixed> = spec
            .max
            .map(|m| m.parse().expect("PARAMS bounds are decimals"));
        let seconds_ok = spec.unit != ParamUnit::Seconds
            || value.rescale(0).map(|v| Fixed::new(v, 0)) == Some(value);
        let in_range = value >= min && max.is_none_or(|max| value <= max);
        if in_range && seconds_ok {
            return Ok(value);
        }
        let bounds = match spec.max {
            Some(max) => format!("from {} to {max}", spec.min),
            None => format!("at least {}", spec.min),
        };
        let hint = match spec.unit {
            ParamUnit::Fraction if value > Fixed::new(U256::from(1u8), 0) => {
                " (write 0.825 or \"82.5%\", not basis points)"
            }
            ParamUnit::Multiplier if value < Fixed::new(U256::from(1u8), 0) => {
                " (the bonus is the contract's multiplier: 1.05 for 5%)"
            }
            _ => "",
        };
        Err(format!(
            "{} {} must be {}, {bounds}{hint}",
            spec.protocols
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join("/"),
            spec.name,
            spec.unit.describe()
        ))
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Param {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(text: &str) -> Fixed {
        text.parse().unwrap()
    }

    #[test]
    fn every_param_has_exactly_one_row() {
        for spec in PARAMS {
            assert_eq!(spec.param.spec().name, spec.name);
            assert!(spec.min.parse::<Fixed>().is_ok());
        }
        assert_eq!(
            PARAMS.iter().filter(|s| s.param == Param::MakerMat).count(),
            1
        );
    }

    #[test]
    fn a_recorded_change_names_its_parameter_by_name_alias_or_contract_path() {
        assert_eq!(
            Param::recorded(Protocol::Maker, "DOG.ilks.chop"),
            Some(Param::MakerChop)
        );
        assert_eq!(
            Param::recorded(Protocol::Maker, "SPOTTER.ilks.mat"),
            Some(Param::MakerMat)
        );
        assert_eq!(
            Param::recorded(Protocol::Maker, "DOG.Hole"),
            Some(Param::MakerGlobalHole)
        );
        assert_eq!(
            Param::recorded(Protocol::AaveV3, "liquidationThreshold"),
            Some(Param::AaveLiquidationThreshold)
        );
        assert_eq!(Param::recorded(Protocol::Maker, "VAT.ilks.line"), None);
        assert_eq!(Param::recorded(Protocol::AaveV2, "DOG.ilks.chop"), None);
    }

    #[test]
    fn lookup_by_name_and_alias_per_protocol() {
        assert_eq!(Param::lookup(Protocol::Maker, "mat"), Ok(Param::MakerMat));
        assert_eq!(
            Param::lookup(Protocol::Maker, "SPOTTER.ilks.mat"),
            Ok(Param::MakerMat)
        );
        assert_eq!(
            Param::lookup(Protocol::Maker, "Hole"),
            Ok(Param::MakerGlobalHole)
        );
        assert_eq!(Param::lookup(Protocol::Maker, "hole"), Ok(Param::MakerHole));
        assert_eq!(
            Param::lookup(Protocol::AaveV3, "liquidationThreshold"),
            Ok(Param::AaveLiquidationThreshold)
        );
        assert_eq!(
            Param::lookup(Protocol::CompoundV2, "close-factor"),
            Ok(Param::CompoundCloseFactor)
        );
        let known = Param::lookup(Protocol::AaveV2, "mat").unwrap_err();
        assert!(known.contains(&"liquidation-threshold") && !known.contains(&"mat"));
        assert!(
            Param::lookup(Protocol::Liquity, "mat")
                .unwrap_err()
                .is_empty()
        );
    }

    #[test]
    fn values_are_checked_against_units() {
        assert_eq!(Param::MakerMat.check(fixed("1.5")), Ok(fixed("1.5")));
        assert!(Param::MakerMat.check(fixed("0.9")).is_err());
        assert_eq!(Param::MakerChop.check(fixed("0.13")), Ok(fixed("0.13")));
        assert_eq!(Param::MakerChop.check(fixed("1.13")), Ok(fixed("0.13")));
        assert!(Param::MakerChop.check(fixed("2.5")).is_err());
        assert_eq!(Param::MakerTail.check(fixed("8400")), Ok(fixed("8400")));
        assert!(Param::MakerTail.check(fixed("1.5")).is_err());
        let bps = Param::AaveLiquidationThreshold
            .check(fixed("8250"))
            .unwrap_err();
        assert!(bps.contains("not basis points"), "{bps}");
        let bonus = Param::AaveLiquidationBonus
            .check(fixed("0.05"))
            .unwrap_err();
        assert!(bonus.contains("1.05 for 5%"), "{bonus}");
        assert!(Param::CompoundCloseFactor.check(fixed("0.04")).is_err());
        assert!(
            Param::CompoundCollateralFactor
                .check(fixed("0.91"))
                .is_err()
        );
    }
}
