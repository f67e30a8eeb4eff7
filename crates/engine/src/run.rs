//! The run file the replay fills: its model is `cascade-run`'s (`docs/run-format.md`), shared
//! with the tools that read it; this module adds what only the engine knows how to build.

pub use cascade_run::{
    AccountAsset, AccountRecord, AccountState, BookMoment, CascadeReport, ChainLink, CountBucket,
    CounterfactualReport, CrossLoop, CrossProtocolLink, EpisodeCause, EpisodeEvidence, GroupAmount,
    HealthBucket, HealthSample, HealthSnapshot, InputKind, LadderRung, LargestLoss, LeverageSample,
    LiquidationRecord, LiquidatorReport, Listed, LogInfo, MakerSettings, MedianRuleSetting,
    MismatchEvidence, MissingInput, Moment, OracleEvidence, Origin, OverlapOwners, OverlapReport,
    ParamHistoryEntry, PriceTrigger, QuoteConversionSetting, RUN_SCHEMA_VERSION, RecordedOracle,
    RoundReport, Run, RunConfig, SNAPSHOT_DIFFERENCES_LISTED, ScenarioInfo, SeizeCheck,
    SeizeResult, SnapshotDifferenceRecord, SnapshotDifferences, SnapshotHolding, TimelinePoint,
    Totals, TriggeredLiquidations, UnsafeEpisode, Window, percent, signed_decimal,
};

use cascade_events::{Amount, Timestamp};

use crate::protocol::accounts::{SnapshotDifference, SnapshotSide};
use crate::protocol::{HEALTH_BUCKET_NAMES, HealthDistribution, Quantity};

/// The run's [`SnapshotDifferences`] of every difference the window found, in log order.
pub fn snapshot_differences(found: &[SnapshotDifference]) -> SnapshotDifferences {
    let holding = |side: &SnapshotSide| SnapshotHolding {
        collateral: Amount(side.collateral),
        debt: Amount(side.debt),
        collateral_enabled: side.collateral_enabled,
    };
    SnapshotDifferences {
        count: found.len() as u64,
        listed: found
            .iter()
            .take(SNAPSHOT_DIFFERENCES_LISTED)
            .map(|difference| SnapshotDifferenceRecord {
                time: difference.time,
                protocol: difference.protocol,
                market: difference.market,
                account: difference.account,
                asset: difference.asset,
                rebuilt: holding(&difference.rebuilt),
                snapshot: holding(&difference.snapshot),
            })
            .collect(),
    }
}

/// The snapshot of `distribution` taken at `moment`, event `seq` at `time`.
pub fn health_snapshot(
    moment: Moment,
    seq: u64,
    time: Timestamp,
    distribution: &HealthDistribution,
) -> HealthSnapshot {
    HealthSnapshot {
        moment,
        seq,
        time,
        protocol: distribution.protocol.name().to_owned(),
        market: distribution.market.to_string(),
        buckets: health_buckets(distribution),
        accounts_without_debt: distribution.without_debt,
        accounts_unpriced: distribution.unpriced,
    }
}

/// The buckets of `distribution` as run files list them, lowest first, every one present.
pub fn health_buckets(distribution: &HealthDistribution) -> Vec<HealthBucket> {
    HEALTH_BUCKET_NAMES
        .iter()
        .enumerate()
        .map(|(index, range)| HealthBucket {
            range: (*range).into(),
            accounts: distribution.accounts[index],
            debt: Quantity::new(distribution.debt[index], distribution.debt_decimals),
        })
        .collect()
}
