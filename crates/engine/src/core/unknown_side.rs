//! A recorded liquidation whose source declared a side unknown ([`PartialLiquidation`]: a mapping's
//! `debt_repaid = { unknown = true }`): the missing amount is derived from the protocol's own
//! formula, through the model's judge, so the liquidation is judged on what is known, applied as
//! the contract computed it, and its note says what was derived and from what
//! (`docs/engine.md`, "A liquidation with an unknown side").
//!
//! The judge is the formula: for Aave and Compound it gives the collateral a repayment seizes
//! (`_calculateAvailableCollateralToLiquidate`, `liquidateCalculateSeizeTokens`) with the close
//! factor and the collateral cap applied, and for Maker the collateral and debt a `bark` or `bite`
//! takes from the vault whatever was recorded. Where the liquidator chose the repayment, an unknown
//! repayment is found by inverting the seize formula: the smallest offer whose seizure reaches the
//! recorded collateral, and the repayment the contract makes of that offer.
//!
//! Must never: return an amount the formula did not give. When nothing can be derived (a price or
//! the account is missing, the account was safe, neither side is known where the liquidator
//! chooses the repayment) the judgement of the known side is returned with a note saying so, and
//! the position is left as it was.

use cascade_events::{Amount, Liquidation, PartialLiquidation, Timestamp, U256};

use crate::EngineError;
use crate::protocol::{Applied, Judgement, ProtocolModel, Quantity, Verdict};

/// What became of a partial liquidation's unknown side.
#[derive(Debug)]
pub enum Completion {
    /// The liquidation with every amount, the unknown ones as the formula gives them, to judge and
    /// apply as a recorded one; `derived` says which were derived and from what.
    Derived {
        /// The completed liquidation.
        liquidation: Liquidation,
        /// The note's first part: `debt repaid not recorded: 10 derived from ...`.
        derived: String,
    },
    /// Nothing could be derived: the liquidation with its unknown sides at zero, only for the
    /// record's identity (its amounts are not to be added anywhere), and the judgement of what is
    /// known, whose note says why. Nothing is applied.
    Underived {
        /// The partial liquidation with its unknown sides at zero.
        liquidation: Liquidation,
        /// The judgement of the known side (boxed: it is four times the size of the other
        /// variant).
        judgement: Box<Judgement>,
    },
}

/// The run file's `skipped` reason of a liquidation whose unknown side could not be derived: it was
/// judged on what is known and not applied.
pub const UNDERIVED: &str = "liquidation-side-unknown-not-derived";

/// Offers above this many base units are not tried when inverting the seize formula (3.4e38: no
/// token supply comes near it, and products with prices stay within 256 bits).
const LARGEST_OFFER_BITS: usize = 128;

/// Judges and applies `partial` as the replay loop does a recorded liquidation: `prepare_judge`,
/// then its unknown sides derived ([`complete`]), the completed liquidation judged (its note led by
/// what was derived) and applied. Returns the liquidation as recorded in the run file, its
/// judgement, and what applying it did: `None` when nothing could be derived and nothing was
/// applied.
pub fn judge_and_apply(
    model: &mut dyn ProtocolModel,
    partial: &PartialLiquidation,
    time: Timestamp,
) -> Result<(Liquidation, Judgement, Option<Applied>), EngineError> {
    let zero = Amount(U256::ZERO);
    let known = partial.with_amounts(
        partial.collateral_seized.unwrap_or(zero),
        partial.debt_repaid.unwrap_or(zero),
    );
    model.prepare_judge(&known, time)?;
    match complete(model, partial, time)? {
        Completion::Derived {
            liquidation,
            derived,
        } => {
            let mut judgement = model.judge(&liquidation, time)?;
            judgement.note = Some(match judgement.note.take() {
                Some(note) if !derived.is_empty() => format!("{derived}; {note}"),
                Some(note) => note,
                None => derived,
            });
            let applied = model.apply_liquidation(&liquidation, &judgement, time)?;
            Ok((liquidation, judgement, Some(applied)))
        }
        Completion::Underived {
            liquidation,
            judgement,
        } => Ok((liquidation, *judgement, None)),
    }
}

/// Derives `partial`'s unknown sides from `model`'s formula at `time` (after
/// [`ProtocolModel::prepare_judge`]).
pub fn complete(
    model: &dyn ProtocolModel,
    partial: &PartialLiquidation,
    time: Timestamp,
) -> Result<Completion, EngineError> {
    let zero = Amount(U256::ZERO);
    // One base unit is the smallest repayment the contracts accept, so the probe's judgement
    // runs the seize formula (and so says the contract would accept a liquidation of this pair)
    // wherever the account is liquidatable.
    let probe_debt = partial.debt_repaid.unwrap_or(Amount(U256::ONE));
    let probe = model.judge(
        &partial.with_amounts(partial.collateral_seized.unwrap_or(zero), probe_debt),
        time,
    )?;
    let as_zero = partial.with_amounts(
        partial.collateral_seized.unwrap_or(zero),
        partial.debt_repaid.unwrap_or(zero),
    );
    let underived = |judgement: Judgement, why: &str| Completion::Underived {
        liquidation: as_zero,
        judgement: Box::new(unchecked(judgement, partial, why)),
    };
    let Some(formula_collateral) = probe.expected_collateral else {
        return Ok(underived(probe, "the formula cannot run"));
    };
    let collateral_of = |amount: U256| Quantity::new(amount, probe.collateral_decimals);
    let debt_of = |amount: U256| Quantity::new(amount, probe.debt_decimals);
    match (partial.collateral_seized, partial.debt_repaid) {
        (Some(collateral), Some(debt)) => Ok(Completion::Derived {
            liquidation: partial.with_amounts(collateral, debt),
            derived: String::new(),
        }),
        (None, Some(debt)) => Ok(Completion::Derived {
            liquidation: partial.with_amounts(Amount(formula_collateral.value), debt),
            derived: format!(
                "collateral seized not recorded: {formula_collateral} derived from the debt repaid {} by the seize formula",
                debt_of(debt.0)
            ),
        }),
        (collateral, None) if !model.liquidator_chooses_repayment() => {
            let Some(debt) = probe.expected_debt else {
                return Ok(underived(probe, "the rule gives no debt"));
            };
            let mut derived = format!(
                "debt repaid not recorded: {debt} derived from the vault's debt the liquidation takes"
            );
            if collateral.is_none() {
                derived.push_str(&format!(
                    "; collateral seized not recorded: {formula_collateral} derived from the vault's collateral it takes"
                ));
            }
            Ok(Completion::Derived {
                liquidation: partial.with_amounts(
                    collateral.unwrap_or(Amount(formula_collateral.value)),
                    Amount(debt.value),
                ),
                derived,
            })
        }
        (Some(collateral), None) => {
            let seize = |offer: U256| -> Option<(U256, U256)> {
                let judged = model
                    .judge(&partial.with_amounts(collateral, Amount(offer)), time)
                    .ok()?;
                Some((
                    judged.expected_debt?.value,
                    judged.expected_collateral?.value,
                ))
            };
            match smallest_repayment(collateral.0, seize) {
                Some(repaid) => Ok(Completion::Derived {
                    liquidation: partial.with_amounts(collateral, Amount(repaid)),
                    derived: format!(
                        "debt repaid not recorded: {} derived from the collateral seized {} (the repayment whose seizure by the formula is nearest it)",
                        debt_of(repaid),
                        collateral_of(collateral.0)
                    ),
                }),
                None => {
                    let mut completion = underived(
                        probe,
                        "the formula seizes less than the recorded collateral for any repayment the contract allows",
                    );
                    if let Completion::Underived { judgement, .. } = &mut completion {
                        judgement.verdict = Verdict::AmountMismatch;
                    }
                    Ok(completion)
                }
            }
        }
        (None, None) => Ok(underived(
            probe,
            "the seize formula needs one of the two amounts",
        )),
    }
}

/// The repayment, as the contract makes it (capped by the close factor or the collateral), of the
/// offer whose seizure is nearest `collateral`: the smallest offer seizing at least `collateral`,
/// or the one below it when that is nearer. `seize(offer)` is the formula's (repayment, seizure),
/// non-decreasing in the offer, `None` where the contract refuses it. `None` when no offer up to
/// 2^128 reaches `collateral`.
///
/// A recorded seizure is the formula's value at the repayment actually made, so the offer found
/// reproduces it exactly; when a unit of debt moves the seizure by more than one unit of collateral
/// (a debt token with fewer decimals), the repayment is the smallest one giving that seizure.
pub fn smallest_repayment(
    collateral: U256,
    mut seize: impl FnMut(U256) -> Option<(U256, U256)>,
) -> Option<U256> {
    let reaches = |at: Option<(U256, U256)>| at.is_some_and(|(_, seized)| seized >= collateral);
    let mut high = U256::ONE;
    let mut at_high = seize(high);
    while !reaches(at_high) {
        if high.bit_len() > LARGEST_OFFER_BITS {
            return None;
        }
        // A contract that repaid less than offered has capped the repayment: larger offers
        // seize no more.
        if at_high.is_some_and(|(repaid, _)| repaid < high) {
            return None;
        }
        high <<= 1;
        at_high = seize(high);
    }
    let mut low = high >> 1;
    // Invariant: `high` reaches, every offer up to `low` (when not zero) does not.
    while high - low > U256::ONE {
        let middle = low + ((high - low) >> 1);
        let at_middle = seize(middle);
        if reaches(at_middle) {
            high = middle;
            at_high = at_middle;
        } else {
            low = middle;
        }
    }
    let (repaid, seized) = at_high?;
    if low.is_zero() || seized == collateral {
        return Some(repaid);
    }
    match seize(low) {
        Some((below_repaid, below_seized)) if collateral - below_seized < seized - collateral => {
            Some(below_repaid)
        }
        _ => Some(repaid),
    }
}

/// `judgement` of a liquidation whose unknown sides could not be derived: its amounts from the
/// probe are dropped (they were not the record's), the formula having run means the account was
/// liquidatable and the contract accepts a liquidation of this pair (`explained`: the probe's own
/// amounts may have disagreed with it), and the note says what was not recorded, why nothing was derived
/// and that the position is left as it was.
fn unchecked(mut judgement: Judgement, partial: &PartialLiquidation, why: &str) -> Judgement {
    let ran = judgement.expected_collateral.is_some();
    judgement.expected_collateral = None;
    judgement.expected_debt = None;
    judgement.mismatch = None;
    judgement.seize = None;
    if ran {
        judgement.verdict = Verdict::Explained;
    }
    let sides = match (partial.collateral_seized, partial.debt_repaid) {
        (None, None) => "neither amount recorded",
        (None, Some(_)) => "collateral seized not recorded",
        _ => "debt repaid not recorded",
    };
    // A note of a judgement whose formula ran is about the probe's amounts, not the record's.
    let cause = match judgement.note.take() {
        Some(note) if !ran => format!("{why}: {note}"),
        _ => why.to_owned(),
    };
    judgement.note = Some(format!(
        "{sides}, nothing derived ({cause}); amounts not checked, position left as it was"
    ));
    judgement
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Aave's seize formula without caps: `debt * debt_price * bonus / collateral_price`, the
    /// whole factor given in millionths of a collateral token per debt token, with the debt
    /// token at `debt_decimals` and the collateral at 18, rounded down.
    fn aave_like(debt_decimals: u32, ratio_ppm: u64) -> impl Fn(U256) -> Option<(U256, U256)> {
        move |offer| {
            let scale = U256::from(10u64).pow(U256::from(18 - debt_decimals));
            Some((
                offer,
                offer * scale * U256::from(ratio_ppm) / U256::from(1_000_000u64),
            ))
        }
    }

    #[test]
    fn the_repayment_of_a_seizure_is_found_exactly() {
        // 1,000 USDC (6 decimals) at a collateral worth 2,000 USDC per token with a 5% bonus
        // seizes 1,000 / 2,000 * 1.05 = 0.525 tokens: 525 millionths of a token per USDC.
        let seize = aave_like(6, 525);
        let (_, seized) = seize(U256::from(1_000_000_000u64)).unwrap();
        assert_eq!(seized, U256::from(525_000_000_000_000_000u64));
        assert_eq!(
            smallest_repayment(seized, &seize),
            Some(U256::from(1_000_000_000u64))
        );
    }

    #[test]
    fn a_capped_repayment_is_the_contracts_not_the_offer() {
        // The contract repays at most 500 and seizes twice the repayment; a record of 1,000
        // seized is the cap, reached by any offer of 500 or more.
        let capped = |offer: U256| {
            let repaid = offer.min(U256::from(500u64));
            Some((repaid, repaid * U256::from(2u64)))
        };
        assert_eq!(
            smallest_repayment(U256::from(1_000u64), capped),
            Some(U256::from(500u64))
        );
        // More than the cap can seize is not derivable.
        assert_eq!(smallest_repayment(U256::from(1_001u64), capped), None);
        // A formula that refuses every offer derives nothing.
        assert_eq!(smallest_repayment(U256::from(5u64), |_| None), None);
    }

    proptest! {
        /// The formula's seizure for a known repayment gives back the smallest repayment that
        /// seizes exactly the same: the known one, or below it by less than one unit of
        /// collateral's worth of debt.
        #[test]
        fn deriving_the_debt_from_its_seizure_recovers_it(
            debt in 1u64..u64::MAX,
            ratio_ppm in 1u64..2_000_000_000,
            debt_decimals in prop::sample::select(vec![6u32, 8, 18]),
        ) {
            let seize = aave_like(debt_decimals, ratio_ppm);
            let debt = U256::from(debt);
            let (_, seized) = seize(debt).unwrap();
            prop_assume!(!seized.is_zero());
            let derived = smallest_repayment(seized, &seize).unwrap();
            prop_assert_eq!(seize(derived).unwrap().1, seized);
            prop_assert!(derived <= debt);
            // The one before it seizes less: it is the smallest.
            prop_assert!(seize(derived - U256::ONE).unwrap().1 < seized);
        }
    }
}
