//! Run files (`docs/run-format.md`) as the diff and the report read them: `cascade-run`'s typed
//! model, read through its reader, plus what the comparison needs on top (asset names,
//! per-market price series; sums in `cascade-run`'s [`Num`]). Nothing here goes through floats
//! except chart coordinates, and nothing here writes a run file.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::Path;

use cascade_events::Timestamp;
pub use cascade_run::LiquidationRecord;
use cascade_run::lines::ReadError;
pub use cascade_run::num::Num;
use cascade_run::{HealthSnapshot, Moment, RUN_SCHEMA_VERSION, Run};

use crate::DiffError;

/// An asset's name for comparisons and labels: a wrapped token and its native coin are one
/// asset, named by the token the protocols hold (`ETH` -> `WETH`, `BTC` -> `WBTC`; `WETH` stays
/// `WETH`). Recorded Maker liquidations name the ilk's gem as the export does (`ETH`, which the
/// ETH ilks hold as WETH) while simulated ones name the priced asset (`WETH`).
pub fn canonical_asset(name: &str) -> &str {
    match name {
        "ETH" => "WETH",
        "BTC" => "WBTC",
        other => other,
    }
}

/// What the comparison reads of a liquidation beyond its fields.
pub trait LiquidationExt {
    /// The collateral asset, [`canonical_asset`].
    fn collateral_name(&self) -> String;
    /// `protocol market account`: the account's identity across runs.
    fn key(&self) -> AccountKey;
    /// Collateral seized.
    fn collateral(&self) -> Num;
    /// Collateral the account lost: what was sold where the run says, else what was seized.
    fn collateral_lost(&self) -> Num;
    /// Debt repaid.
    fn debt(&self) -> Num;
}

impl LiquidationExt for LiquidationRecord {
    fn collateral_name(&self) -> String {
        canonical_asset(&self.collateral_asset.to_string()).to_owned()
    }

    fn key(&self) -> AccountKey {
        AccountKey {
            protocol: self.protocol.name().to_owned(),
            market: self.market.to_string(),
            account: self.account.to_string(),
        }
    }

    fn collateral(&self) -> Num {
        Num::of(&self.collateral_seized)
    }

    fn collateral_lost(&self) -> Num {
        self.collateral_sold
            .as_ref()
            .map_or_else(|| self.collateral(), Num::of)
    }

    fn debt(&self) -> Num {
        Num::of(&self.debt_repaid)
    }
}

/// An account across runs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct AccountKey {
    /// Protocol.
    pub protocol: String,
    /// Market.
    pub market: String,
    /// Account.
    pub account: String,
}

impl fmt::Display for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.protocol, self.market, self.account)
    }
}

/// A run file and where it was read from.
#[derive(Clone, Debug)]
pub struct RunFile {
    /// Where it was read from (not in the file).
    pub path: String,
    /// The run.
    pub run: Run,
}

impl Deref for RunFile {
    type Target = Run;

    fn deref(&self) -> &Run {
        &self.run
    }
}

impl DerefMut for RunFile {
    fn deref_mut(&mut self) -> &mut Run {
        &mut self.run
    }
}

impl RunFile {
    /// Reads and parses a run file.
    pub fn load(path: &Path) -> Result<RunFile, DiffError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| DiffError::Read {
            file: file.clone(),
            source,
        })?;
        RunFile::from_slice(&bytes, &file)
    }

    /// Parses a run file of any form (one JSON document, the line form of
    /// [`cascade_run::lines`], or the binary form of [`cascade_run::binary`]); `file` names it in
    /// errors.
    pub fn from_slice(bytes: &[u8], file: &str) -> Result<RunFile, DiffError> {
        let run = cascade_run::lines::read(bytes).map_err(|error| match error {
            ReadError::Text {
                line,
                column,
                reason,
            } => DiffError::NotARun {
                file: file.to_owned(),
                line,
                column,
                reason,
            },
            ReadError::Binary(source) => DiffError::NotABinaryRun {
                file: file.to_owned(),
                source,
            },
        })?;
        // Version 2 only added `health_distribution`: a version 1 file reads as one without it.
        if !(1..=RUN_SCHEMA_VERSION).contains(&run.schema_version) {
            return Err(DiffError::SchemaVersion {
                file: file.to_owned(),
                found: run.schema_version,
                expected: RUN_SCHEMA_VERSION,
            });
        }
        Ok(RunFile {
            path: file.to_owned(),
            run,
        })
    }

    /// Whether the run replaced the recorded liquidations by the simulated liquidator.
    pub fn is_counterfactual(&self) -> bool {
        self.scenario.is_some()
    }

    /// How tables and charts name the run: `historical`, or the scenario's label.
    pub fn label(&self) -> String {
        match &self.scenario {
            None => "historical".to_owned(),
            Some(scenario) => scenario.label.clone(),
        }
    }

    /// The deepest cascade round of its simulated liquidations (`None` for a historical run).
    pub fn cascade_depth(&self) -> Option<u32> {
        self.is_counterfactual().then(|| {
            self.liquidations
                .iter()
                .filter_map(|l| l.round)
                .max()
                .unwrap_or(0)
        })
    }

    /// The `moment` health distribution of `protocol market`, if the run has one.
    pub fn health(&self, protocol: &str, market: &str, moment: Moment) -> Option<&HealthSnapshot> {
        self.health_distribution
            .iter()
            .find(|h| h.protocol == protocol && h.market == market && h.moment == moment)
    }

    /// The oracle price series of each market (`protocol market` -> `(seq, time, price)`), in
    /// log order, from the timeline.
    pub fn prices(&self) -> BTreeMap<(String, String), PriceSeries> {
        let mut series: BTreeMap<(String, String), PriceSeries> = BTreeMap::new();
        for point in &self.timeline {
            if let Some(price) = &point.oracle_price {
                series
                    .entry((point.protocol.clone(), point.market.clone()))
                    .or_default()
                    .push((point.seq, point.time, Num::of(price)));
            }
        }
        series
    }

    /// The prices of `asset` (a collateral of a market priced per asset) that moved the
    /// timeline points of `protocol market`, in log order: `(seq, time, price)`.
    pub fn asset_prices(&self, (protocol, market): &(String, String), asset: &str) -> PriceSeries {
        self.timeline
            .iter()
            .filter(|p| &p.protocol == protocol && &p.market == market)
            .filter_map(|p| {
                let trigger = p.trigger.as_ref()?;
                (canonical_asset(&trigger.asset) == asset)
                    .then(|| (p.seq, p.time, Num::of(&trigger.price)))
            })
            .collect()
    }
}

/// An oracle price series: `(seq, time, price)` in log order.
pub type PriceSeries = Vec<(u64, Timestamp, Num)>;

/// The price in `series` in effect at `seq` (the last at or before it, else the first after).
pub fn price_at(series: &[(u64, Timestamp, Num)], seq: u64) -> Option<Num> {
    let after = series.partition_point(|(s, _, _)| *s <= seq);
    match after {
        0 => series.first().map(|(_, _, p)| *p),
        n => Some(series[n - 1].2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_lookup_takes_the_last_at_or_before() {
        let series = vec![
            (5, Timestamp(0), Num::from_int(10)),
            (9, Timestamp(1), Num::from_int(8)),
        ];
        assert_eq!(price_at(&series, 2), Some(Num::from_int(10)));
        assert_eq!(price_at(&series, 5), Some(Num::from_int(10)));
        assert_eq!(price_at(&series, 100), Some(Num::from_int(8)));
        assert_eq!(price_at(&[], 1), None);
    }
}
