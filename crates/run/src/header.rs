//! The head of the streamed forms (lines and binary): the run without its lists, and how
//! many records of each list follow it.

use serde::Serialize;
use wincode::{SchemaRead, SchemaWrite};

use crate::{
    CounterfactualReport, LogInfo, Run, RunConfig, ScenarioInfo, SnapshotDifferences, Totals,
    Window,
};

/// The run without its lists, borrowed (a large run is never copied to write its head). Its
/// keys come in the JSON form's order, with [`Counts`] last as `lines`.
#[derive(Serialize, SchemaWrite)]
pub(crate) struct Header<'a> {
    schema_version: &'a u32,
    log: &'a LogInfo,
    window: &'a Window,
    #[serde(serialize_with = "crate::scenario::sorted")]
    scenario: &'a Option<ScenarioInfo>,
    config: &'a RunConfig,
    state_hash: &'a String,
    totals: &'a Totals,
    #[serde(skip_serializing_if = "SnapshotDifferences::is_empty")]
    snapshot_differences: &'a SnapshotDifferences,
    #[serde(skip_serializing_if = "Option::is_none")]
    counterfactual: &'a Option<CounterfactualReport>,
    lines: Counts,
}

impl<'a> Header<'a> {
    /// The head of `run`.
    pub(crate) fn of(run: &'a Run) -> Self {
        Header {
            schema_version: &run.schema_version,
            log: &run.log,
            window: &run.window,
            scenario: &run.scenario,
            config: &run.config,
            state_hash: &run.state_hash,
            totals: &run.totals,
            snapshot_differences: &run.snapshot_differences,
            counterfactual: &run.counterfactual,
            lines: Counts {
                accounts: run.accounts.len() as u64,
                health_distribution: run.health_distribution.len() as u64,
                health_over_time: run.health_over_time.len() as u64,
                leverage_over_time: run.leverage_over_time.len() as u64,
                liquidation_ladder: run.liquidation_ladder.len() as u64,
                liquidations: run.liquidations.len() as u64,
                overlap: run.overlap.len() as u64,
                timeline: run.timeline.len() as u64,
                unsafe_unliquidated: run.unsafe_unliquidated.len() as u64,
            },
        }
    }
}

/// How many records of each list follow the head (keys sorted, as the line form has them).
#[derive(Clone, Copy, Serialize, SchemaWrite, SchemaRead)]
pub(crate) struct Counts {
    pub(crate) accounts: u64,
    pub(crate) health_distribution: u64,
    pub(crate) health_over_time: u64,
    pub(crate) leverage_over_time: u64,
    pub(crate) liquidation_ladder: u64,
    pub(crate) liquidations: u64,
    pub(crate) overlap: u64,
    pub(crate) timeline: u64,
    pub(crate) unsafe_unliquidated: u64,
}
