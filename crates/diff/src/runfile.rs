//! Run files (`docs/run-format.md`) as the diff and the report read them: `cascade-run`'s typed
//! model, read through its reader, plus what the comparison needs on top (exact sums in
//! [`Num`], asset names, per-market price series). Nothing here goes through floats except
//! chart coordinates, and nothing here writes a run file.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::Path;

use cascade_events::{Fixed, Timestamp};
pub use cascade_run::LiquidationRecord;
use cascade_run::{HealthSnapshot, Moment, Quantity, RUN_SCHEMA_VERSION, Run};

use crate::DiffError;

/// A signed decimal with 18 fractional digits, as an `i128` (about ±1.7e20 whole units: far
/// more than any total a run reports). Sums saturate instead of wrapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Num(pub i128);

const SCALE: i128 = 1_000_000_000_000_000_000;

impl Num {
    /// Zero.
    pub const ZERO: Num = Num(0);

    /// An exact amount of a run file; digits beyond 18 decimals are dropped (rounding toward
    /// zero), an amount beyond the range saturates.
    pub fn of(amount: &Quantity) -> Num {
        amount
            .rescale(18)
            .and_then(|scaled| i128::try_from(scaled).ok())
            .map_or(Num(i128::MAX), Num)
    }

    /// A whole number.
    pub fn from_int(value: i128) -> Self {
        Num(value.saturating_mul(SCALE))
    }

    /// Parses exact decimal text (`"12811.4"`, `"-3"`); digits beyond 18 decimals are dropped
    /// (rounding toward zero).
    pub fn parse(text: &str) -> Option<Num> {
        let (negative, digits) = match text.trim().strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.trim()),
        };
        let fixed = Fixed::parse_exact(digits).ok()?;
        let scaled = fixed.rescale(18)?;
        let value = i128::try_from(scaled).ok()?;
        Some(Num(if negative { -value } else { value }))
    }

    /// `self + other`, saturating.
    pub fn plus(self, other: Num) -> Num {
        Num(self.0.saturating_add(other.0))
    }

    /// `self - other`, saturating.
    pub fn minus(self, other: Num) -> Num {
        Num(self.0.saturating_sub(other.0))
    }

    /// `self * other`, rounded toward zero; saturating.
    pub fn times(self, other: Num) -> Num {
        // (aw S + af)(bw S + bf) / S = aw bw S + aw bf + af bw + af bf / S: every partial
        // product stays far from overflow for the magnitudes a run holds.
        let (aw, af) = (self.0 / SCALE, self.0 % SCALE);
        let (bw, bf) = (other.0 / SCALE, other.0 % SCALE);
        let whole = aw.saturating_mul(bw).saturating_mul(SCALE);
        let cross = aw.saturating_mul(bf).saturating_add(af.saturating_mul(bw));
        let fraction = af.saturating_mul(bf) / SCALE;
        Num(whole.saturating_add(cross).saturating_add(fraction))
    }

    /// The absolute value.
    pub fn abs(self) -> Num {
        Num(self.0.saturating_abs())
    }

    /// Whether the value is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The value as a float, for chart coordinates only.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }

    /// Exact text with an explicit sign for non-zero values (`+5`, `-0.25`, `0`).
    pub fn signed(self) -> String {
        if self.0 > 0 {
            format!("+{self}")
        } else {
            self.to_string()
        }
    }

    /// Text for people: thousands separators and at most `decimals` decimals, rounded half away
    /// from zero (`12,811.4`).
    pub fn human(self, decimals: u32) -> String {
        let unit = 10i128.pow(18 - decimals.min(18));
        let rounded = (self.0.unsigned_abs() + (unit as u128) / 2) / unit as u128;
        let divisor = 10u128.pow(decimals.min(18));
        let whole = (rounded / divisor).to_string();
        let fraction = rounded % divisor;
        let mut grouped = String::new();
        for (index, digit) in whole.chars().enumerate() {
            if index > 0 && (whole.len() - index).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        let sign = if self.0 < 0 && rounded != 0 { "-" } else { "" };
        if decimals == 0 {
            return format!("{sign}{grouped}");
        }
        let fraction = format!("{fraction:0width$}", width = decimals as usize);
        let fraction = fraction.trim_end_matches('0');
        if fraction.is_empty() {
            format!("{sign}{grouped}")
        } else {
            format!("{sign}{grouped}.{fraction}")
        }
    }
}

/// Exact text without trailing zeros (`12811.4`, `-3`, `0`).
impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let whole = magnitude / SCALE as u128;
        let fraction = magnitude % SCALE as u128;
        if fraction == 0 {
            return write!(f, "{sign}{whole}");
        }
        let digits = format!("{fraction:018}");
        write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl serde::Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

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

    /// Parses a run file of either form (one JSON document, or the line form of
    /// [`cascade_run::lines`]); `file` names it in errors.
    pub fn from_slice(bytes: &[u8], file: &str) -> Result<RunFile, DiffError> {
        let run = cascade_run::lines::read(bytes).map_err(|error| DiffError::NotARun {
            file: file.to_owned(),
            line: error.line,
            column: error.column,
            reason: error.reason,
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
    fn numbers_parse_print_and_sum_exactly() {
        let a = Num::parse("12811.4").unwrap();
        assert_eq!(a.to_string(), "12811.4");
        assert_eq!(Num::parse("-3").unwrap().to_string(), "-3");
        assert_eq!(Num::parse("0.000000000000000001").unwrap(), Num(1));
        assert_eq!(Num::parse("1.0000000000000000019").unwrap(), Num(SCALE + 1));
        assert_eq!(Num::parse("abc"), None);
        let b = Num::parse("0.6").unwrap();
        assert_eq!(a.plus(b).to_string(), "12812");
        assert_eq!(b.minus(a).signed(), "-12810.8");
        assert_eq!(a.minus(b).signed(), "+12810.8");
        assert_eq!(Num::ZERO.signed(), "0");
        assert_eq!(
            a.times(Num::parse("1500.5").unwrap()).to_string(),
            "19223505.7"
        );
        assert_eq!(Num(i128::MAX).plus(a), Num(i128::MAX));
    }

    #[test]
    fn human_text_groups_and_rounds() {
        assert_eq!(Num::parse("12811.44").unwrap().human(1), "12,811.4");
        assert_eq!(Num::parse("12811.45").unwrap().human(1), "12,811.5");
        assert_eq!(Num::parse("1234567").unwrap().human(2), "1,234,567");
        assert_eq!(Num::parse("-999.999").unwrap().human(2), "-1,000");
        assert_eq!(Num::parse("-0.001").unwrap().human(2), "0");
        assert_eq!(Num::parse("100").unwrap().human(0), "100");
    }

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
