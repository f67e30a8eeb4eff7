//! What an unsafe episode gathers while it is open, and the cause decided from it.
//!
//! At every check that finds an account unsafe, a model that explains episodes
//! ([`ProtocolModel::explains_episodes`]) reports what the check saw ([`EpisodeCheck`]): the
//! health, whether the contract's liquidation call would revert, the room and dust it would be
//! judged against, and where the oracle price came from. The episode keeps the extremes and
//! counts; when it closes, [`cause`] decides by the first rule that holds, in this order:
//!
//! 1. `liquidation-refused`: the call would have reverted at every check. No keeper could act,
//!    whatever the price or the export (the contract's own rule, e.g. dog.sol `bark`'s
//!    `Dog/liquidation-limit-hit`).
//! 2. `rebuilt-state-disagrees`: what next happened to the account after the stretch shows its
//!    rebuilt debt higher than the chain's ([`mark_disagreements`], decided when the run ends),
//!    by at least the shortfall at the lowest check, or, where the price error alone (rule 4)
//!    does not reach the lowest health, by enough to bring it within that error: the health the
//!    checks computed is not the chain's.
//! 3. `below-dust`: the debt stayed below `dust` at every check: legal to liquidate, but an
//!    auction too small to pay for a keeper's gas.
//! 4. `price-evidence`: the lowest health stayed within the estimated oracle price's measured
//!    error of the threshold ([`price_margin_bps`]: the Median's spread plus the error of the
//!    feed that priced the check of lowest health).
//! 5. `unexplained`: none of these.
//!
//! The gathered evidence is monitoring bookkeeping: it is in checkpoints, not in the state hash.

use std::borrow::Cow;

use cascade_events::{Id, Protocol, Timestamp, U256};

use crate::EngineError;
use crate::math::WAD;
use crate::protocol::{EpisodeCheck, Quantity, Verdict};
use crate::run::{EpisodeCause, EpisodeEvidence, LiquidationRecord, Origin, UnsafeEpisode};
use crate::state::{StateReader, StateWriter};

/// The Median's spread, basis points: its relayers push a new value only when the market has
/// left the current one by more (Maker's `relayer.conf`, `oracleSpread` 1.0 for `ETHUSD`; the
/// modelled Median's `MedianRule::ETH_USD`), so the OSM can read a value this far from any
/// market price, whichever feed estimates that price.
const MEDIAN_SPREAD_BPS: u64 = 100;

/// The 95th percentile of a feed kind's error against the minute market at the OSM's reading
/// times (whole hours), basis points, measured on `../shared/data` (docs/fidelity.md, "How far
/// each feed is off"): CoinGecko's hourly prints interpolated to the hour against Binance's
/// minute close, 556 hours of 43 days, 2.17%; Binance's minute bars are the market, off only by
/// their conversion through CoinGecko's USDT/USD, whose hour-to-hour move is 0.61% at the 95th
/// percentile (18,827 hours). Other feeds (the 10-minute bars: 32 comparable hours, too few for
/// a 95th percentile) are allowed the spread alone.
const FEED_ERROR_BPS: [(&str, u64); 2] = [("price-csv", 217), ("binance-klines", 61)];

/// How far below the threshold, in basis points of health, an estimated oracle price from
/// `feed` can put a vault the chain held safe: the Median's spread plus the feed's measured
/// error. Health is proportional to the OSM value, so a price error of `x`% is a health error
/// of `x`%.
pub fn price_margin_bps(feed: Option<&Id>) -> u64 {
    let feed_error = feed.map_or(0, |feed| {
        FEED_ERROR_BPS
            .iter()
            .find(|(kind, _)| *feed == Id::name(kind))
            .map_or(0, |(_, bps)| *bps)
    });
    MEDIAN_SPREAD_BPS + feed_error
}

/// What the checks of one open episode saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Gathered {
    checks: u64,
    lowest_health: U256,
    highest_health: U256,
    refused_checks: u64,
    refusal: Option<Cow<'static, str>>,
    least_room: Option<U256>,
    /// Debt, dust and feed at the check of lowest health.
    debt: U256,
    dust: U256,
    feed: Option<Id>,
    below_dust_checks: u64,
    oldest_price_seconds: Option<i64>,
    recorded_checks: u64,
}

impl Gathered {
    /// Folds in one check.
    pub(super) fn observe(&mut self, check: &EpisodeCheck) {
        if self.checks == 0 || check.health < self.lowest_health {
            self.lowest_health = check.health;
            self.debt = check.debt;
            self.dust = check.dust;
            self.feed = check.feed;
        }
        if self.checks == 0 || check.health > self.highest_health {
            self.highest_health = check.health;
        }
        self.checks += 1;
        if let Some(reason) = check.refusal {
            self.refused_checks += 1;
            self.refusal = Some(Cow::Borrowed(reason));
        }
        if let Some(room) = check.room {
            self.least_room = Some(self.least_room.map_or(room, |least| least.min(room)));
        }
        if check.debt < check.dust {
            self.below_dust_checks += 1;
        }
        if let Some(age) = check.age {
            self.oldest_price_seconds = Some(self.oldest_price_seconds.map_or(age, |a| a.max(age)));
        }
        if check.recorded {
            self.recorded_checks += 1;
        }
    }

    /// The run file's evidence (cause decided without a later mismatch: see [`cause`]); `None`
    /// when no check gave evidence.
    pub(super) fn evidence(&self) -> Option<EpisodeEvidence> {
        if self.checks == 0 {
            return None;
        }
        let wad = |value: U256| Quantity::new(value, 18);
        let mut evidence = EpisodeEvidence {
            cause: EpisodeCause::Unexplained,
            checks: self.checks,
            lowest_health: wad(self.lowest_health),
            highest_health: wad(self.highest_health),
            refused_checks: self.refused_checks,
            refusal: self.refusal.as_ref().map(|reason| reason.to_string()),
            least_room: self.least_room.map(wad),
            debt: wad(self.debt),
            dust: wad(self.dust),
            below_dust_checks: self.below_dust_checks,
            feed: self.feed,
            oldest_price_seconds: self.oldest_price_seconds,
            recorded_checks: self.recorded_checks,
            disagreement: None,
            disagreement_at: None,
            excess_debt: None,
        };
        evidence.cause = cause(&evidence);
        Some(evidence)
    }

    pub(super) fn encode(&self, out: &mut StateWriter) {
        out.u64(self.checks);
        out.u256(self.lowest_health);
        out.u256(self.highest_health);
        out.u64(self.refused_checks);
        out.option(self.refusal.as_ref(), |out, reason| {
            out.blob(reason.as_bytes())
        });
        out.option(self.least_room.as_ref(), |out, room| out.u256(*room));
        out.u256(self.debt);
        out.u256(self.dust);
        out.option(self.feed.as_ref(), |out, feed| out.id(feed));
        out.u64(self.below_dust_checks);
        out.option(self.oldest_price_seconds.as_ref(), |out, age| out.i64(*age));
        out.u64(self.recorded_checks);
    }

    pub(super) fn decode(input: &mut StateReader<'_>) -> Result<Self, EngineError> {
        Ok(Self {
            checks: input.u64()?,
            lowest_health: input.u256()?,
            highest_health: input.u256()?,
            refused_checks: input.u64()?,
            refusal: input.option(|input| {
                Ok(Cow::Owned(
                    String::from_utf8_lossy(input.blob()?).into_owned(),
                ))
            })?,
            least_room: input.option(StateReader::u256)?,
            debt: input.u256()?,
            dust: input.u256()?,
            feed: input.option(StateReader::id)?,
            below_dust_checks: input.u64()?,
            oldest_price_seconds: input.option(StateReader::i64)?,
            recorded_checks: input.u64()?,
        })
    }
}

/// `debt * (1 - health)` (health wad, below one): how much less debt would have made the account
/// safe at that check.
fn shortfall(debt: U256, health: U256) -> U256 {
    debt.saturating_mul(WAD.saturating_sub(health)) / WAD
}

/// `health * debt / (debt - excess)`: the health with `excess` less debt (wad; `U256::MAX`
/// when the excess is the whole debt).
fn health_without(health: U256, debt: U256, excess: U256) -> U256 {
    if excess >= debt {
        U256::MAX
    } else {
        health.saturating_mul(debt) / (debt - excess)
    }
}

/// The lowest health an estimated oracle price's error can account for (wad, `1 - margin`), or
/// `None` when a check read the oracle's recorded value, which leaves no such error.
fn price_floor(evidence: &EpisodeEvidence) -> Option<U256> {
    let margin = U256::from(price_margin_bps(evidence.feed.as_ref()));
    (evidence.recorded_checks == 0).then(|| WAD - WAD * margin / U256::from(10_000u64))
}

/// The cause of an episode with this evidence: the first rule of the module's list that holds.
pub fn cause(evidence: &EpisodeEvidence) -> EpisodeCause {
    let health = evidence.lowest_health.value;
    let debt = evidence.debt.value;
    let floor = price_floor(evidence);
    let within_price_error =
        |health: U256| health < WAD && floor.is_some_and(|floor| health >= floor);
    if evidence.refused_checks == evidence.checks {
        EpisodeCause::LiquidationRefused
    } else if evidence.excess_debt.is_some_and(|excess| {
        excess.value >= shortfall(debt, health)
            || (!within_price_error(health)
                && within_price_error(health_without(health, debt, excess.value)))
    }) {
        EpisodeCause::RebuiltStateDisagrees
    } else if evidence.below_dust_checks == evidence.checks {
        EpisodeCause::BelowDust
    } else if within_price_error(health) {
        EpisodeCause::PriceEvidence
    } else {
        EpisodeCause::Unexplained
    }
}

/// What [`mark_disagreements`] reads of a recorded liquidation: whose it was, when, and how
/// much higher the rebuilt debt was than the recorded repayment. A run that keeps only totals
/// keeps this instead of the whole record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RecordedOutcome {
    pub protocol: Protocol,
    pub market: Id,
    pub account: Id,
    pub time: Timestamp,
    /// For an `amount-mismatch` in debt with the rebuilt debt above the recorded repayment, the
    /// difference; `None` otherwise.
    pub excess_debt: Option<U256>,
}

impl RecordedOutcome {
    /// The outcome of a recorded liquidation's record; `None` for a simulated one.
    pub fn of(record: &LiquidationRecord) -> Option<Self> {
        (record.origin == Origin::Recorded).then(|| Self {
            protocol: record.protocol,
            market: record.market,
            account: record.account,
            time: record.time,
            excess_debt: excess_debt(
                record.verdict,
                record.mismatch.as_deref().map(|mismatch| &*mismatch.input),
                record.expected_debt,
                record.debt_repaid,
            ),
        })
    }
}

/// Sets `rebuilt-state-disagrees` on the episodes of accounts where what next happened after
/// the stretch shows the rebuilt debt too high: a recorded liquidation judged `amount-mismatch`
/// in debt (rebuilt above recorded), or debt the model cleared on its own (`corrections`: a
/// repayment the export misses), by at least the episode's shortfall at its lowest check
/// (`debt * (1 - health)`: with that much less debt the vault was safe at every check). `ends`
/// gives each episode's (protocol, market, account, last unsafe check); `liquidations` and
/// `corrections` are in log order.
pub(super) fn mark_disagreements(
    episodes: &mut [UnsafeEpisode],
    ends: &[(Protocol, Id, Id, Timestamp)],
    liquidations: &[RecordedOutcome],
    corrections: &[(Protocol, Id, Id, Timestamp, U256)],
) {
    for (episode, (protocol, market, account, end)) in episodes.iter_mut().zip(ends) {
        let Some(evidence) = episode.evidence.as_mut() else {
            continue;
        };
        let liquidation = liquidations.iter().find(|outcome| {
            outcome.protocol == *protocol
                && outcome.market == *market
                && outcome.account == *account
                && outcome.time >= *end
        });
        let correction = corrections
            .iter()
            .find(|(p, m, a, time, _)| p == protocol && m == market && a == account && time >= end)
            .map(|(_, _, _, time, debt)| (*time, *debt));
        let found = match (liquidation, correction) {
            (Some(outcome), Some((time, debt))) if time < outcome.time => {
                Some(("missing-repayment-inferred", time, debt))
            }
            (Some(outcome), _) => outcome
                .excess_debt
                .map(|excess| ("amount-mismatch", outcome.time, excess)),
            (None, Some((time, debt))) => Some(("missing-repayment-inferred", time, debt)),
            (None, None) => None,
        };
        let Some((kind, time, excess)) = found else {
            continue;
        };
        evidence.disagreement = Some(kind.to_owned());
        evidence.disagreement_at = Some(time.to_rfc3339());
        evidence.excess_debt = Some(Quantity::new(excess, evidence.debt.decimals));
        evidence.cause = cause(evidence);
    }
}

/// For an `amount-mismatch` in debt (`mismatch_input` is the judgement's mismatch input): how
/// much higher the rebuilt debt (`expected`) was than the recorded one.
pub(super) fn excess_debt(
    verdict: Option<Verdict>,
    mismatch_input: Option<&str>,
    expected: Option<Quantity>,
    repaid: Quantity,
) -> Option<U256> {
    let expected = expected?;
    (verdict == Some(Verdict::AmountMismatch)
        && mismatch_input == Some("debt")
        && expected.decimals == repaid.decimals
        && expected.value > repaid.value)
        .then(|| expected.value - repaid.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wad(text: &str) -> U256 {
        cascade_events::Fixed::parse_with(text, 18).unwrap().value
    }

    fn check(health: &str, debt: &str) -> EpisodeCheck {
        EpisodeCheck {
            health: wad(health),
            refusal: None,
            room: None,
            debt: wad(debt),
            dust: wad("15000"),
            feed: Some(Id::name("binance-klines")),
            age: Some(60),
            recorded: false,
        }
    }

    fn gathered(checks: &[EpisodeCheck]) -> EpisodeEvidence {
        let mut gathered = Gathered::default();
        for check in checks {
            gathered.observe(check);
        }
        gathered.evidence().expect("checks gave evidence")
    }

    #[test]
    fn a_bark_the_dog_refuses_at_every_check_is_not_a_keeper_miss() {
        // Hole full: `Dog/liquidation-limit-hit` at both checks, room 0; health 0.8 would be
        // `unexplained` otherwise.
        let refused = EpisodeCheck {
            refusal: Some("liquidation-limit-hit"),
            room: Some(U256::ZERO),
            ..check("0.8", "100000")
        };
        let evidence = gathered(&[refused, refused]);
        assert_eq!(evidence.cause, EpisodeCause::LiquidationRefused);
        assert_eq!(evidence.refusal.as_deref(), Some("liquidation-limit-hit"));
        assert_eq!(evidence.least_room, Some(Quantity::new(U256::ZERO, 18)));
        // Refused at one check of two: a keeper could have barked at the other.
        assert_eq!(
            gathered(&[refused, check("0.8", "100000")]).cause,
            EpisodeCause::Unexplained
        );
    }

    #[test]
    fn a_vault_below_dust_at_every_check_is_below_dust() {
        // 10,000 DAI of debt under a 15,000 dust at health 0.9.
        let evidence = gathered(&[check("0.9", "10000"), check("0.95", "10000")]);
        assert_eq!(evidence.below_dust_checks, 2);
        assert_eq!(evidence.cause, EpisodeCause::BelowDust);
        // Above dust at one check: not this cause.
        let evidence = gathered(&[check("0.9", "10000"), check("0.95", "20000")]);
        assert_eq!(evidence.cause, EpisodeCause::Unexplained);
    }

    fn priced_by(feed: &str, health: &str) -> EpisodeCheck {
        EpisodeCheck {
            feed: Some(Id::name(feed)),
            ..check(health, "100000")
        }
    }

    #[test]
    fn within_the_feeds_measured_error_on_an_estimated_price_is_price_evidence() {
        // (feed of the lowest check, lowest health at the margin's edge, just below it): the
        // spread (1%) plus the feed's error, 2.17% for hourly prints, 0.61% for minute bars
        // through USDT/USD, nothing more for a feed whose error was not measured.
        for (feed, edge, outside) in [
            ("price-csv", "0.9683", "0.96829"),
            ("binance-klines", "0.9839", "0.98389"),
            ("ohlcv-json", "0.99", "0.98999"),
            ("test-feed", "0.99", "0.98999"),
        ] {
            let evidence = gathered(&[priced_by(feed, "0.998"), priced_by(feed, edge)]);
            assert_eq!(evidence.lowest_health, Quantity::new(wad(edge), 18));
            assert_eq!(evidence.highest_health, Quantity::new(wad("0.998"), 18));
            assert_eq!(
                evidence.cause,
                EpisodeCause::PriceEvidence,
                "{feed} at {edge}"
            );
            assert_eq!(
                gathered(&[priced_by(feed, outside)]).cause,
                EpisodeCause::Unexplained,
                "{feed} at {outside}"
            );
        }
        // No feed named: the spread alone.
        let unnamed = EpisodeCheck {
            feed: None,
            ..check("0.98999", "100000")
        };
        assert_eq!(gathered(&[unnamed]).cause, EpisodeCause::Unexplained);
        // The margin is the lowest check's feed's: a minute-priced low under the hourly margin
        // but outside the minute one is not price evidence.
        let evidence = gathered(&[
            priced_by("price-csv", "0.99"),
            priced_by("binance-klines", "0.98"),
        ]);
        assert_eq!(evidence.feed, Some(Id::name("binance-klines")));
        assert_eq!(evidence.cause, EpisodeCause::Unexplained);
        // The oracle's own recorded value leaves no price error to blame.
        let recorded = EpisodeCheck {
            recorded: true,
            ..priced_by("price-csv", "0.995")
        };
        assert_eq!(gathered(&[recorded]).cause, EpisodeCause::Unexplained);
    }

    fn episode(evidence: EpisodeEvidence) -> UnsafeEpisode {
        UnsafeEpisode {
            protocol: "maker".into(),
            market: "ETH-B".into(),
            account: "#1".into(),
            from: Timestamp(0).to_rfc3339(),
            to: Timestamp(7_200).to_rfc3339(),
            seconds: 7_200,
            open_at_end: false,
            evidence: Some(evidence),
        }
    }

    #[test]
    fn debt_the_export_never_repaid_explains_the_stretch_when_it_covers_the_shortfall() {
        // Lowest health 0.95 on 100,000 DAI, minute-priced: shortfall 100,000 * 0.05 = 5,000
        // DAI, and the minute bars' price error (1.61%) reaches down to 0.9839. A repayment of
        // 3,446 DAI inferred later brings the health within it (95,000 / 96,554 = 0.983905);
        // one of 3,445 does not (95,000 / 96,555 = 0.983895).
        let ends = [(
            Protocol::Maker,
            Id::name("ETH-B"),
            Id::name("#1"),
            Timestamp(7_200),
        )];
        for (cleared, cause) in [
            ("3446", EpisodeCause::RebuiltStateDisagrees),
            ("3445", EpisodeCause::Unexplained),
        ] {
            let mut episodes = [episode(gathered(&[check("0.95", "100000")]))];
            let corrections = [(
                Protocol::Maker,
                Id::name("ETH-B"),
                Id::name("#1"),
                Timestamp(90_000),
                wad(cleared),
            )];
            mark_disagreements(&mut episodes, &ends, &[], &corrections);
            let evidence = episodes[0].evidence.as_ref().unwrap();
            assert_eq!(evidence.cause, cause, "{cleared} DAI cleared");
            assert_eq!(
                evidence.disagreement.as_deref(),
                Some("missing-repayment-inferred")
            );
            assert_eq!(evidence.excess_debt, Some(Quantity::new(wad(cleared), 18)));
        }
        // A correction of another vault, or one before the stretch ended, says nothing.
        let mut episodes = [episode(gathered(&[check("0.95", "100000")]))];
        let corrections = [
            (
                Protocol::Maker,
                Id::name("ETH-B"),
                Id::name("#2"),
                Timestamp(90_000),
                wad("50000"),
            ),
            (
                Protocol::Maker,
                Id::name("ETH-B"),
                Id::name("#1"),
                Timestamp(3_600),
                wad("50000"),
            ),
        ];
        mark_disagreements(&mut episodes, &ends, &[], &corrections);
        assert_eq!(
            episodes[0].evidence.as_ref().unwrap().cause,
            EpisodeCause::Unexplained
        );
    }

    /// An episode's evidence with the rebuilt debt `excess` above the chain's.
    fn with_excess(check: EpisodeCheck, excess: &str) -> EpisodeEvidence {
        let mut evidence = gathered(&[check]);
        evidence.excess_debt = Some(Quantity::new(wad(excess), 18));
        evidence.cause = cause(&evidence);
        evidence
    }

    #[test]
    fn a_missing_repayment_that_brings_the_health_within_the_price_error_explains_it() {
        // Hourly-priced lowest health 0.95 on 100,000 DAI: outside the 3.17% margin alone, and
        // 5,000 DAI short of safe. 1,900 DAI less debt gives 95,000 / 98,100 = 0.96840, within
        // it; 1,800 DAI gives 95,000 / 98,200 = 0.96741, not.
        let hourly = priced_by("price-csv", "0.95");
        assert_eq!(
            with_excess(hourly, "1900").cause,
            EpisodeCause::RebuiltStateDisagrees
        );
        assert_eq!(with_excess(hourly, "1800").cause, EpisodeCause::Unexplained);
        // The minute margin (1.61%) is narrower: 1,900 DAI is not enough there, 3,500 is
        // (95,000 / 96,500 = 0.98446).
        let minute = priced_by("binance-klines", "0.95");
        assert_eq!(with_excess(minute, "1900").cause, EpisodeCause::Unexplained);
        assert_eq!(
            with_excess(minute, "3500").cause,
            EpisodeCause::RebuiltStateDisagrees
        );
        // A recorded oracle value leaves no price error: the excess must cover the shortfall.
        let recorded = EpisodeCheck {
            recorded: true,
            ..hourly
        };
        assert_eq!(
            with_excess(recorded, "1900").cause,
            EpisodeCause::Unexplained
        );
        assert_eq!(
            with_excess(recorded, "5000").cause,
            EpisodeCause::RebuiltStateDisagrees
        );
        // Already within the price error: a small excess does not take the cause from the price.
        assert_eq!(
            with_excess(priced_by("price-csv", "0.98"), "100").cause,
            EpisodeCause::PriceEvidence
        );
    }

    #[test]
    fn evidence_survives_a_checkpoint() {
        let mut gathered = Gathered::default();
        gathered.observe(&EpisodeCheck {
            refusal: Some("dusty-auction-from-partial-liquidation"),
            room: Some(wad("1000")),
            ..check("0.97", "20000")
        });
        gathered.observe(&check("0.99", "20000"));
        let mut out = StateWriter::new();
        gathered.encode(&mut out);
        let bytes = out.into_bytes();
        let mut input = StateReader::new(&bytes);
        assert_eq!(Gathered::decode(&mut input).unwrap(), gathered);
        input.finish().unwrap();
    }
}
