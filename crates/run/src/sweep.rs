//! A parameter sweep's results (`cascade sweep`): the swept axes as results name them and what
//! each point's run found. The engine runs the sweep; `cascade-diff` lays the points out.

use std::collections::BTreeMap;

use cascade_events::{Fixed, Protocol};
use serde::{Deserialize, Serialize};

use crate::Run;
use crate::scenario::MarketSel;

/// One swept parameter as the results show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SweepAxisInfo {
    /// The key as written (`maker.ETH-B.mat`).
    pub key: String,
    /// Protocol.
    pub protocol: Protocol,
    /// Market, or all for a global parameter.
    pub market: MarketSel,
    /// Parameter name.
    pub param: &'static str,
    /// Values in order.
    pub values: Vec<Fixed>,
}

/// What one sweep point found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointResult {
    /// The parameter values, in axis order.
    pub values: Vec<Fixed>,
    /// Simulated liquidations.
    pub liquidations: u64,
    /// Distinct accounts liquidated.
    pub accounts_hit: u64,
    /// Collateral seized per asset, whole tokens.
    pub collateral_seized: BTreeMap<String, String>,
    /// Debt repaid per asset, whole tokens.
    pub debt_repaid: BTreeMap<String, String>,
    /// Bad debt per asset, whole tokens.
    pub bad_debt: BTreeMap<String, String>,
    /// Deepest cascade round.
    pub cascade_depth: u64,
    /// Final state hash of the point's run.
    pub state_hash: String,
}

impl PointResult {
    /// The result of the point at `values` whose run is `run`, `accounts_hit` accounts
    /// liquidated.
    pub fn of(values: Vec<Fixed>, run: &Run, accounts_hit: u64) -> Self {
        let text = |map: &BTreeMap<String, crate::Quantity>| {
            map.iter()
                .map(|(asset, amount)| (asset.clone(), amount.to_string()))
                .collect()
        };
        PointResult {
            values,
            liquidations: run.totals.liquidations,
            accounts_hit,
            collateral_seized: text(&run.totals.collateral_seized),
            debt_repaid: text(&run.totals.debt_repaid),
            bad_debt: text(&run.totals.bad_debt),
            cascade_depth: run
                .counterfactual
                .as_ref()
                .map_or(0, |c| u64::from(c.cascade.depth)),
            state_hash: run.state_hash.clone(),
        }
    }
}
