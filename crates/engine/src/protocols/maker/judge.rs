//! Judging a recorded `bite`/`bark` against the rebuilt vault: the verdict, the oracle evidence
//! and, for a mismatch, which input would have to differ.

use super::*;
use crate::run::{InputKind, MissingInput};

/// Everything [`MakerModel::judge_inner`]'s take of a liquidation depends on: the record, the
/// vault, and its ilk's and the Dog's or Cat's parameters and limits as they stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TakeInputs {
    market: Id,
    account: Id,
    collateral_seized: U256,
    debt_repaid: U256,
    urn: Urn,
    spot: U256,
    rate: U256,
    dust: U256,
    dog_live: bool,
    dog_chop: U256,
    dog_room: Option<U256>,
    cat_chop: U256,
    dunk: U256,
    cat_room: Option<U256>,
}

/// A liquidation's take as judged, with the inputs it was judged from: applying the liquidation
/// right after its judgement (as the replay does) reuses it instead of judging again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct JudgedTake {
    pub(super) inputs: TakeInputs,
    pub(super) take: Option<Take>,
}

impl MakerModel {
    /// The inputs of `liquidation`'s take; `None` without its ilk or vault.
    pub(super) fn take_inputs(&self, liquidation: &Liquidation) -> Option<TakeInputs> {
        let ilk = self.ilks.get(&liquidation.market)?;
        let vault = ilk.vaults.get(&liquidation.account)?;
        Some(TakeInputs {
            market: liquidation.market,
            account: liquidation.account,
            collateral_seized: liquidation.collateral_seized.0,
            debt_repaid: liquidation.debt_repaid.0,
            urn: vault.urn(),
            spot: ilk.spot,
            rate: ilk.rate,
            dust: ilk.dust,
            dog_live: ilk.dog_live,
            dog_chop: ilk.dog_chop,
            dog_room: ilk.dog_room(self.dog_hole.map(|hole| (hole, self.dog_dirt))),
            cat_chop: ilk.cat_chop,
            dunk: ilk.dunk,
            cat_room: self.cat_box.map(|b| b.saturating_sub(self.cat_litter)),
        })
    }

    /// The oracle evidence of a verdict on `urn` at OSM value `value`; with `break_even`, the
    /// value at which the verdict would flip.
    pub(super) fn evidence(
        &self,
        ilk_id: &Id,
        value: U256,
        urn: Urn,
        break_even: bool,
    ) -> Result<OracleEvidence, EngineError> {
        let ilk = &self.ilks[ilk_id];
        let break_even = if break_even {
            rules::break_even_value(urn, ilk.mat, ilk.rate)?.map(|value| Quantity::new(value, 18))
        } else {
            None
        };
        if let Some(recorded) = self.recorded_for(ilk_id) {
            // The oracle's own value: no market point was read, it was emitted at `time`.
            let mut evidence = OracleEvidence::new(
                Quantity::new(value, 18),
                Some(recorded.oracle),
                Some(recorded.time),
                None,
                break_even,
            );
            evidence.recorded = Some(RecordedOracle {
                event: recorded.source.name().into(),
                oracle: recorded.oracle,
                time: recorded.time,
            });
            return Ok(evidence);
        }
        let reading = self.osm_reading(ilk_id);
        Ok(OracleEvidence::new(
            Quantity::new(value, 18),
            reading.map(|r| r.point.feed),
            reading.map(|r| r.point.time),
            reading.map(|r| r.read_at),
            break_even,
        ))
    }

    /// Judges with the vault as it is now, its ilk dripped and poked by
    /// [`ProtocolModel::prepare_judge`], and what the rules take from it; `rule` names the
    /// regime.
    pub(super) fn judge_inner(
        &self,
        liquidation: &Liquidation,
    ) -> Result<(Judgement, Option<Take>), EngineError> {
        let value = self.resolved_osm_value(&liquidation.market);
        let Some(ilk) = self.ilks.get(&liquidation.market) else {
            return Ok((
                Judgement::bare(
                    Verdict::UnknownAccount,
                    "cat-bite",
                    COLLATERAL_DECIMALS,
                    DAI_DECIMALS,
                ),
                None,
            ));
        };
        let rule = Self::rule_name(ilk);
        let mut judgement = Judgement::bare(
            Verdict::UnknownAccount,
            rule,
            COLLATERAL_DECIMALS,
            DAI_DECIMALS,
        );
        let Some(vault) = ilk.vaults.get(&liquidation.account).copied() else {
            return Ok((judgement, None));
        };
        if ilk.spot.is_zero() {
            let missing = if ilk.mat.is_zero() {
                MissingInput::new(InputKind::LiquidationRatio, liquidation.market)
            } else {
                let gem = self
                    .price_asset(&liquidation.market)
                    .unwrap_or_else(|| Id::name(&gem_of(&liquidation.market)));
                MissingInput::new(InputKind::Price, gem)
            };
            let judgement = Judgement::no_price(rule, COLLATERAL_DECIMALS, DAI_DECIMALS, missing);
            return Ok((judgement, None));
        }
        let urn = vault.urn();
        judgement.health = rules::health(urn, ilk.spot, ilk.rate)?.map(|h| Quantity::new(h, 18));
        let osm_value = value.unwrap_or_default();
        if !rules::is_unsafe(urn, ilk.spot, ilk.rate)? {
            judgement.verdict = Verdict::NotLiquidatable;
            judgement.note = Some(format!(
                "safe at OSM price {} (spot {}, rate {})",
                crate::math::decimal(value.unwrap_or_default(), 18),
                crate::math::decimal(ilk.spot, 27),
                crate::math::decimal(ilk.rate, 27)
            ));
            judgement.oracle = Some(self.evidence(&liquidation.market, osm_value, urn, true)?);
            return Ok((judgement, None));
        }
        let take = match self.take(&self.ilks[&liquidation.market], urn)? {
            Ok(take) => take,
            Err(refusal) => {
                judgement.oracle =
                    Some(self.evidence(&liquidation.market, osm_value, urn, true)?);
                judgement.verdict = Verdict::NotLiquidatable;
                judgement.note = Some(format!("unsafe but the rules refuse: {}", refusal.reason()));
                return Ok((judgement, None));
            }
        };
        let expected_debt = take.due / RAY;
        judgement.expected_collateral = Some(Quantity::new(take.dink, COLLATERAL_DECIMALS));
        judgement.expected_debt = Some(Quantity::new(expected_debt, DAI_DECIMALS));
        let recorded_debt = liquidation.debt_repaid.0;
        let recorded_collateral = liquidation.collateral_seized.0;
        let debt_gap = expected_debt.abs_diff(recorded_debt);
        let debt_allowed = mul_div(
            recorded_debt.max(expected_debt),
            U256::from(self.config.debt_tolerance_ppm),
            U256::from(1_000_000u32),
            "debt tolerance",
        )? + U256::ONE;
        let collateral_gap = take.dink.abs_diff(recorded_collateral);
        let mut notes = Vec::new();
        if collateral_gap > self.config.collateral_tolerance {
            notes.push(format!(
                "collateral differs by {} (tolerance {})",
                crate::math::decimal(collateral_gap, 18),
                crate::math::decimal(self.config.collateral_tolerance, 18)
            ));
        }
        if debt_gap > debt_allowed {
            notes.push(format!(
                "debt differs by {} DAI (tolerance {} ppm)",
                crate::math::decimal(debt_gap, 18),
                self.config.debt_tolerance_ppm
            ));
        }
        let explained = notes.is_empty();
        judgement.oracle = Some(self.evidence(&liquidation.market, osm_value, urn, !explained)?);
        if explained {
            judgement.verdict = Verdict::Explained;
        } else {
            judgement.verdict = Verdict::AmountMismatch;
            judgement.note = Some(notes.join("; "));
            let mismatch = mismatch_input(
                &take,
                expected_debt,
                (recorded_collateral, recorded_debt),
                collateral_gap > self.config.collateral_tolerance,
                debt_gap > debt_allowed,
            )?;
            let partial = mismatch.input == "liquidation-limit";
            judgement.mismatch = Some(mismatch);
            if partial {
                return Ok((
                    judgement,
                    Some(
                        self.partial_take(&liquidation.market, urn, recorded_debt)?
                            .unwrap_or(take),
                    ),
                ));
            }
        }
        Ok((judgement, Some(take)))
    }
}

/// Which input of the rebuilt vault would have to differ for the formula to give the recorded
/// amounts. A full `bark`/`bite` takes the whole vault: a mismatch in one amount only means the
/// rebuilt vault's debt or collateral differs by that much. A take smaller than the vault in
/// both amounts by one ratio is what `Dog.bark` does when the room under `hole`/`Hole` is short
/// (`dart = min(art, room * WAD / rate / chop)`, `dink = ink * dart / art`): then the room the
/// chain had is the recorded debt times `chop`.
pub(super) fn mismatch_input(
    take: &Take,
    expected_debt: U256,
    (recorded_collateral, recorded_debt): (U256, U256),
    collateral_differs: bool,
    debt_differs: bool,
) -> Result<MismatchEvidence, EngineError> {
    let signed = |recorded: U256, rebuilt: U256| {
        crate::run::signed_decimal(recorded < rebuilt, recorded.abs_diff(rebuilt), 18)
    };
    let debt_difference = signed(recorded_debt, expected_debt);
    let collateral_difference = signed(recorded_collateral, take.dink);
    Ok(match (collateral_differs, debt_differs) {
        (false, _) => MismatchEvidence {
            input: "debt".into(),
            detail: format!(
                "the rebuilt vault's debt would have to differ by {debt_difference} DAI (recorded minus rebuilt) with its collateral as rebuilt"
            ),
            difference: debt_difference,
        },
        (true, false) => MismatchEvidence {
            input: "collateral".into(),
            detail: format!(
                "the rebuilt vault's collateral would have to differ by {collateral_difference} ETH (recorded minus rebuilt) with its debt as rebuilt"
            ),
            difference: collateral_difference,
        },
        (true, true) => {
            let partial = recorded_collateral < take.dink && recorded_debt < expected_debt;
            // Same share of both within 1%: the contract's partial take.
            let same_share = partial && {
                let by_collateral = mul_div(recorded_collateral, WAD, take.dink, "share")?;
                let by_debt = mul_div(recorded_debt, WAD, expected_debt.max(U256::ONE), "share")?;
                by_collateral.abs_diff(by_debt) * U256::from(100u8) <= by_debt
            };
            if same_share {
                let room = mul_div(recorded_debt, take.tab, take.due.max(U256::ONE), "room")?;
                MismatchEvidence {
                    input: "liquidation-limit".into(),
                    detail: format!(
                        "the same share of collateral and debt was taken: the room under the liquidation limit (Dog hole/Hole minus Dirt, Cat box minus litter) would have to have been {} DAI (recorded debt times chop), where the engine had room for the whole vault's tab (difference: room minus that tab)",
                        crate::math::decimal(room, 18)
                    ),
                    difference: signed(room, take.tab / RAY),
                }
            } else {
                MismatchEvidence {
                    input: "debt-and-collateral".into(),
                    detail: format!(
                        "both amounts differ, by {collateral_difference} ETH and {debt_difference} DAI (recorded minus rebuilt): the rebuilt vault differs in both"
                    ),
                    difference: debt_difference,
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::judged_after_setup;

    /// A vault of `ilk` with 10 of `gem` and 1,000 DAI, liquidated.
    fn vault_liquidated(ilk: &str, gem: &str) -> Vec<String> {
        let action = |kind: &str, asset: &str, amount: &str| {
            format!(
                r##"{{"kind":"{kind}","protocol":"maker","market":"{ilk}","account":"#90","asset":"{asset}","amount":"{amount}","shares":null}}"##
            )
        };
        vec![
            format!(
                r##"{{"kind":"vault-open","protocol":"maker","market":"{ilk}","account":"#90","owner":null}}"##
            ),
            action("deposit", gem, "10000000000000000000"),
            action("borrow", "DAI", "1000000000000000000000"),
            format!(
                r##"{{"kind":"liquidation","protocol":"maker","market":"{ilk}","account":"#90","liquidator":null,"collateral_asset":"{gem}","collateral_seized":"10000000000000000000","debt_asset":"DAI","debt_repaid":"1000000000000000000000","detail":{{"type":"none"}}}}"##
            ),
        ]
    }

    /// The take judged for a liquidation is reused only while everything it read is unchanged:
    /// a deposit between the judgement and the application makes the application judge again
    /// (reusing the take would seize only the collateral the vault had before the deposit).
    #[test]
    fn applying_after_the_vault_changed_judges_again() {
        let mut events = crate::golden::load("maker", "cat-bite.jsonl");
        let first = events
            .iter()
            .position(|e| matches!(e.payload, Payload::Liquidation(_)))
            .unwrap();
        let event = events[first].clone();
        let Payload::Liquidation(liquidation) = &event.payload else {
            unreachable!("found as a liquidation")
        };
        events.truncate(first);
        // The model as the replay has it at the liquidation: events applied, the OSM advanced.
        let at_liquidation = || {
            let mut model = MakerModel::new(MakerConfig::default());
            crate::golden::replay(&mut model, &events);
            model
                .advance(event.time, &PriceBook::new(Vec::new()))
                .unwrap();
            model.prepare_judge(liquidation, event.time).unwrap();
            model
        };
        let before = at_liquidation();
        let mut deposit = event.clone();
        deposit.payload = serde_json::from_str(&format!(
            r#"{{"kind":"deposit","protocol":"maker","market":"{}","account":"{}","asset":"ETH","amount":"5000000000000000000","shares":null}}"#,
            liquidation.market, liquidation.account
        ))
        .unwrap();
        let judgement = before.judge(liquidation, event.time).unwrap();
        assert_eq!(judgement.verdict, Verdict::Explained);
        // Judged, then applied after the deposit; against applied after the deposit with no
        // judgement kept (a fresh model from the same state).
        let outcome = |judged: bool| {
            let mut model = at_liquidation();
            if judged {
                model.judge(liquidation, event.time).unwrap();
            }
            crate::golden::replay(&mut model, std::slice::from_ref(&deposit));
            model
                .apply_liquidation(liquidation, &judgement, event.time)
                .unwrap();
            model.vault(&liquidation.market, &liquidation.account)
        };
        let (reused, fresh) = (outcome(true), outcome(false));
        assert_eq!(reused, fresh);
        let left = fresh.unwrap();
        assert!(!left.ink.is_zero(), "the deposit stays: {left:?}");
    }

    #[test]
    fn no_price_names_the_collateral_price_or_the_missing_liquidation_ratio() {
        let mut extra = vec![
            r#"{"kind":"param-change","protocol":"maker","market":"LINK-A","param":"SPOTTER.ilks.mat","value":"1.65"}"#.to_owned(),
        ];
        extra.extend(vault_liquidated("LINK-A", "LINK"));
        extra.extend(vault_liquidated("YFI-A", "YFI"));
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let judged = judged_after_setup(
            &mut MakerModel::new(MakerConfig::default()),
            "maker",
            "cat-bite.jsonl",
            "2021-01-04T06:00:00Z",
            &extra,
        );
        assert_eq!(judged.len(), 2, "{judged:?}");
        assert_eq!(judged[0]["verdict"], "no-price");
        crate::golden::assert_missing(&judged[0], "price", "LINK");
        assert_eq!(judged[0]["note"], "no price of LINK");
        assert_eq!(judged[1]["verdict"], "no-price");
        crate::golden::assert_missing(&judged[1], "liquidation-ratio", "YFI-A");
    }
}
