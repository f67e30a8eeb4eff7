//! Reading run files (`docs/run-format.md`) as the diff and the report need them.
//!
//! Only the keys these tools use are read; unknown keys are ignored, so a run file that gains
//! keys stays readable. Amounts arrive as exact decimal text and become [`Num`]s; nothing here
//! goes through floats. This module never writes a run file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use cascade_engine::run_lines;
use cascade_events::{Fixed, Timestamp};
use serde::Deserialize;
use serde_json::Value;

use crate::DiffError;

/// A signed decimal with 18 fractional digits, as an `i128` (about ±1.7e20 whole units: far
/// more than any total a run reports). Sums saturate instead of wrapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Num(pub i128);

const SCALE: i128 = 1_000_000_000_000_000_000;

impl Num {
    /// Zero.
    pub const ZERO: Num = Num(0);

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

/// The log a run was computed from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct LogView {
    /// First sequence number.
    #[serde(default)]
    pub first_seq: Option<u64>,
    /// Last sequence number.
    #[serde(default)]
    pub last_seq: Option<u64>,
    /// Content hash of the log (hex).
    #[serde(default)]
    pub content_hash: String,
}

/// The part of the log a run reports on.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WindowView {
    /// The `--from` time the run reports from (`null`: from the start of the log).
    pub from_time: Option<String>,
    /// The `--to` time (or a scenario's `window.to`) the run stops before (absent: the end of
    /// the log).
    pub to_time: Option<String>,
    /// First event reported on.
    pub first_seq: Option<u64>,
    /// Last event reported on.
    pub last_seq: Option<u64>,
}

/// Totals as the run reports them. Every key is required: a run file missing one was cut or
/// edited, and comparing it as zeros would report a difference (or none) that is not there.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TotalsView {
    /// Liquidations in the window.
    pub liquidations: u64,
    /// Recorded liquidations per verdict (historical runs).
    pub verdicts: BTreeMap<String, u64>,
    /// Collateral seized per asset.
    pub collateral_seized: BTreeMap<String, String>,
    /// Debt repaid per asset.
    pub debt_repaid: BTreeMap<String, String>,
    /// Bad debt per asset.
    pub bad_debt: BTreeMap<String, String>,
    /// Recorded liquidations a counterfactual run skipped.
    pub recorded_liquidations_skipped: u64,
    /// User actions clamped, per reason.
    pub clamped: BTreeMap<String, u64>,
    /// User actions skipped, per reason.
    pub skipped: BTreeMap<String, u64>,
}

/// One liquidation of a run.
#[derive(Clone, Debug, Deserialize)]
pub struct LiquidationView {
    /// Log position.
    pub seq: u64,
    /// Time.
    pub time: Timestamp,
    /// `recorded` or `simulated`.
    #[serde(default)]
    pub origin: String,
    /// Protocol.
    pub protocol: String,
    /// Market.
    pub market: String,
    /// Account.
    pub account: String,
    /// Transaction hash, where the source recorded it.
    #[serde(default)]
    pub tx_hash: Option<String>,
    /// Log index in the block, where the source recorded it.
    #[serde(default)]
    pub log_index: Option<u32>,
    /// Verdict of a recorded liquidation.
    #[serde(default)]
    pub verdict: Option<String>,
    /// Cascade round of a simulated liquidation.
    #[serde(default)]
    pub round: Option<u32>,
    /// Collateral asset.
    pub collateral_asset: String,
    /// Collateral seized, whole tokens.
    pub collateral_seized: String,
    /// Debt asset.
    pub debt_asset: String,
    /// Debt repaid, whole tokens.
    pub debt_repaid: String,
    /// Bad debt left, whole tokens.
    #[serde(default)]
    pub bad_debt: Option<String>,
    /// Collateral the simulated liquidator sold (the rest of a Maker lot went back), whole
    /// tokens; absent for recorded liquidations.
    #[serde(default)]
    pub collateral_sold: Option<String>,
    /// The account's health at that moment.
    #[serde(default)]
    pub health: Option<String>,
    /// Why a verdict is not `explained`.
    #[serde(default)]
    pub note: Option<String>,
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

impl LiquidationView {
    /// The collateral asset, [`canonical_asset`].
    pub fn collateral_name(&self) -> &str {
        canonical_asset(&self.collateral_asset)
    }

    /// `protocol market account`: the account's identity across runs.
    pub fn key(&self) -> AccountKey {
        AccountKey {
            protocol: self.protocol.clone(),
            market: self.market.clone(),
            account: self.account.clone(),
        }
    }

    /// The identity that matches it across runs and logs
    /// ([`cascade_engine::run_diff::liquidation_identity`]).
    pub fn identity(&self) -> String {
        cascade_engine::run_diff::identity_of(
            [
                &self.time.to_rfc3339(),
                &self.origin,
                &self.protocol,
                &self.market,
                &self.account,
            ],
            self.tx_hash.as_deref().zip(self.log_index.map(u64::from)),
        )
    }

    /// Collateral seized.
    pub fn collateral(&self) -> Num {
        Num::parse(&self.collateral_seized).unwrap_or_default()
    }

    /// Collateral the account lost: what was sold where the run says, else what was seized.
    pub fn collateral_lost(&self) -> Num {
        self.collateral_sold
            .as_deref()
            .and_then(Num::parse)
            .unwrap_or_else(|| self.collateral())
    }

    /// Debt repaid.
    pub fn debt(&self) -> Num {
        Num::parse(&self.debt_repaid).unwrap_or_default()
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

/// One risk snapshot.
#[derive(Clone, Debug, Deserialize)]
pub struct PointView {
    /// Log position.
    pub seq: u64,
    /// Time.
    pub time: Timestamp,
    /// Protocol.
    pub protocol: String,
    /// Market.
    pub market: String,
    /// Price the protocol's oracle reads.
    #[serde(default)]
    pub oracle_price: Option<String>,
    /// Accounts liquidatable.
    #[serde(default)]
    pub accounts_unsafe: u64,
    /// Market-level bad debt.
    #[serde(default)]
    pub bad_debt: Option<String>,
    /// The price update behind the point, on markets priced per asset (Aave pools, Compound).
    #[serde(default)]
    pub trigger: Option<TriggerView>,
}

/// The price update behind a timeline point of a market priced per asset.
#[derive(Clone, Debug, Deserialize)]
pub struct TriggerView {
    /// The asset whose price moved.
    pub asset: String,
    /// Its new price, exact decimal text.
    pub price: String,
}

/// One health bucket of a [`HealthView`].
#[derive(Clone, Debug, Deserialize)]
pub struct BucketView {
    /// Health factor range (`<1`, `1-1.05`, ..., `>=3`).
    pub range: String,
    /// Accounts in it.
    pub accounts: u64,
    /// Their debt, protocol base currency.
    pub debt: String,
}

/// A market's accounts by health factor at one moment (`before` or `after`).
#[derive(Clone, Debug, Deserialize)]
pub struct HealthView {
    /// `before` or `after`.
    pub moment: String,
    /// Log position where it was taken.
    pub seq: u64,
    /// Time it was taken.
    pub time: Timestamp,
    /// Protocol.
    pub protocol: String,
    /// Market.
    pub market: String,
    /// Buckets, lowest health first.
    pub buckets: Vec<BucketView>,
    /// Accounts without debt.
    #[serde(default)]
    pub accounts_without_debt: u64,
    /// Accounts whose health could not be computed.
    #[serde(default)]
    pub accounts_unpriced: u64,
}

/// A run file, as the diff and report read it.
#[derive(Clone, Debug, Deserialize)]
pub struct RunFile {
    /// Where it was read from (not in the file).
    #[serde(skip)]
    pub path: String,
    /// Layout version.
    pub schema_version: u32,
    /// The log replayed.
    pub log: LogView,
    /// The events reported on.
    pub window: WindowView,
    /// The scenario (`null` for a historical run).
    #[serde(default)]
    pub scenario: Option<Value>,
    /// Final state hash.
    pub state_hash: String,
    /// Totals.
    pub totals: TotalsView,
    /// Liquidations in log order.
    pub liquidations: Vec<LiquidationView>,
    /// Risk snapshots in log order.
    pub timeline: Vec<PointView>,
    /// Health distributions before and after (absent from schema version 1 files).
    #[serde(default)]
    pub health_distribution: Vec<HealthView>,
    /// Counterfactual extras (cascade graph, liquidator statistics), where present.
    #[serde(default)]
    pub counterfactual: Option<Value>,
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
    /// [`cascade_engine::run_lines`]); `file` names it in errors.
    pub fn from_slice(bytes: &[u8], file: &str) -> Result<RunFile, DiffError> {
        let not_a_run = |error: serde_json::Error, line: usize| DiffError::NotARun {
            file: file.to_owned(),
            line: line.max(error.line()),
            column: error.column(),
            reason: error.to_string(),
        };
        let mut run: RunFile = match run_lines::split(bytes) {
            None => serde_json::from_slice(bytes).map_err(|error| not_a_run(error, 0))?,
            Some((header, records)) => {
                // The header holds the run without its lists; a list it announces a count for
                // starts empty and is filled from the record lines (a list it does not announce
                // stays missing, and a required one is refused as in the document form).
                let mut document = header.clone();
                let announced = header.get(run_lines::COUNTS_KEY).and_then(Value::as_object);
                for key in run_lines::LIST_KEYS {
                    if announced.is_some_and(|counts| counts.contains_key(key)) {
                        document.insert(key.to_owned(), Value::Array(Vec::new()));
                    }
                }
                let mut run: RunFile = serde_json::from_value(Value::Object(document))
                    .map_err(|error| not_a_run(error, 1))?;
                let mut found: BTreeMap<String, u64> = BTreeMap::new();
                let mut last_line = 1;
                for (line, text) in records {
                    let record: Record =
                        serde_json::from_slice(text).map_err(|error| DiffError::NotARun {
                            file: file.to_owned(),
                            line,
                            column: error.column(),
                            reason: error.to_string(),
                        })?;
                    let list = match record {
                        Record::Liquidations(item) => {
                            run.liquidations.push(*item);
                            "liquidations"
                        }
                        Record::UnsafeUnliquidated(_) => "unsafe_unliquidated",
                        Record::Timeline(item) => {
                            run.timeline.push(item);
                            "timeline"
                        }
                        Record::HealthDistribution(item) => {
                            run.health_distribution.push(item);
                            "health_distribution"
                        }
                    };
                    *found.entry(list.to_owned()).or_default() += 1;
                    last_line = line;
                }
                run_lines::check_counts(&header, &found, last_line).map_err(|error| {
                    DiffError::NotARun {
                        file: file.to_owned(),
                        line: error.line,
                        column: 1,
                        reason: error.reason,
                    }
                })?;
                run
            }
        };
        // Version 2 only added `health_distribution`: a version 1 file reads as one without it.
        if !(1..=cascade_engine::run::RUN_SCHEMA_VERSION).contains(&run.schema_version) {
            return Err(DiffError::SchemaVersion {
                file: file.to_owned(),
                found: run.schema_version,
                expected: cascade_engine::run::RUN_SCHEMA_VERSION,
            });
        }
        run.path = file.to_owned();
        Ok(run)
    }

    /// Whether the run replaced the recorded liquidations by the simulated liquidator.
    pub fn is_counterfactual(&self) -> bool {
        self.scenario.is_some()
    }

    /// How tables and charts name the run: `historical`, the scenario's label, or its name.
    pub fn label(&self) -> String {
        match &self.scenario {
            None => "historical".to_owned(),
            Some(scenario) => ["label", "name"]
                .iter()
                .find_map(|key| scenario.get(key).and_then(Value::as_str))
                .unwrap_or("counterfactual")
                .to_owned(),
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

    /// The `moment` (`before`, `after`) health distribution of `protocol market`, if the run has
    /// one.
    pub fn health(&self, protocol: &str, market: &str, moment: &str) -> Option<&HealthView> {
        self.health_distribution
            .iter()
            .find(|h| h.protocol == protocol && h.market == market && h.moment == moment)
    }

    /// The oracle price series of each market (`protocol market` -> `(seq, time, price)`), in
    /// log order, from the timeline.
    pub fn prices(&self) -> BTreeMap<(String, String), PriceSeries> {
        let mut series: BTreeMap<(String, String), PriceSeries> = BTreeMap::new();
        for point in &self.timeline {
            if let Some(price) = point.oracle_price.as_deref().and_then(Num::parse) {
                series
                    .entry((point.protocol.clone(), point.market.clone()))
                    .or_default()
                    .push((point.seq, point.time, price));
            }
        }
        series
    }
}

impl RunFile {
    /// The prices of `asset` (a collateral of a market priced per asset) that moved the
    /// timeline points of `protocol market`, in log order: `(seq, time, price)`.
    pub fn asset_prices(&self, (protocol, market): &(String, String), asset: &str) -> PriceSeries {
        self.timeline
            .iter()
            .filter(|p| &p.protocol == protocol && &p.market == market)
            .filter_map(|p| {
                let trigger = p.trigger.as_ref()?;
                (canonical_asset(&trigger.asset) == asset)
                    .then(|| Num::parse(&trigger.price))
                    .flatten()
                    .map(|price| (p.seq, p.time, price))
            })
            .collect()
    }
}

/// One record line of the line form: `{"<list>": item}`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    Liquidations(Box<LiquidationView>),
    UnsafeUnliquidated(serde::de::IgnoredAny),
    Timeline(PointView),
    HealthDistribution(HealthView),
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
