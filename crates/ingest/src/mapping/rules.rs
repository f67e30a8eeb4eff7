//! Row rules of a mapping beyond "each table makes an event": conditions on cells
//! (`when`/`unless`), per-table row counts (`count`), the `[duplicates]` rule and the
//! plausibility check of a liquidation against its prices (`plausible_within`).
//!
//! Must never: drop a row without counting it, or decide on anything but the row's own text and
//! its converted values.

use std::collections::{BTreeMap, HashMap};

use cascade_events::{Fixed, U256};
use serde::Deserialize;

use crate::batch::SourceReport;
use crate::error::Position;
use crate::table::Row;

/// Counter of rows dropped because an earlier row had the same key and the same text.
pub(super) const IDENTICAL: &str = "identical duplicate rows dropped";
/// Counter of rows dropped because an earlier row had the same key but other text elsewhere.
pub(super) const DIFFERING: &str = "duplicate rows differing outside the key dropped (first kept)";
/// Counter of rows that share the `similar` columns with an earlier row but not its key.
pub(super) const SIMILAR: &str =
    "rows like an earlier row in the `similar` columns, key differs (kept)";
/// Counter of liquidations whose two values were compared.
pub(super) const CHECKED: &str = "liquidations checked against their own prices";
/// Counter of liquidations lacking a price for the comparison.
pub(super) const UNCHECKED: &str = "liquidations without both prices (plausibility not checkable)";

/// One condition on a cell: a column name (the cell is non-blank) or `{ column, equals }` (the
/// trimmed cell is this text, or one of these texts).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum Condition {
    /// The cell is non-blank.
    NonBlank(String),
    /// The trimmed cell equals one of the texts.
    Equals(EqualsSpec),
}

/// `{ column = "version", equals = "V2" }` or `equals = ["V2", "v2"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EqualsSpec {
    column: String,
    equals: OneOrMany,
}

/// One text or a list of texts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Condition {
    /// The column the condition reads.
    pub(super) fn column(&self) -> &String {
        match self {
            Condition::NonBlank(column) | Condition::Equals(EqualsSpec { column, .. }) => column,
        }
    }

    /// The texts the cell must equal, or `None` for "non-blank".
    fn values(&self) -> Option<Vec<String>> {
        match self {
            Condition::NonBlank(_) => None,
            Condition::Equals(spec) => Some(match &spec.equals {
                OneOrMany::One(text) => vec![text.clone()],
                OneOrMany::Many(texts) => texts.clone(),
            }),
        }
    }
}

/// One condition or a list of them (`when = "a"`, `when = ["a", { column = "b", equals = "x" }]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum ColumnList {
    /// Several conditions (first: serde would read a two-element list as an `EqualsSpec`).
    Many(Vec<Condition>),
    /// A single condition.
    One(Condition),
}

impl ColumnList {
    /// The conditions, in the order written.
    pub(super) fn conditions(&self) -> &[Condition] {
        match self {
            ColumnList::One(condition) => std::slice::from_ref(condition),
            ColumnList::Many(conditions) => conditions,
        }
    }
}

/// A condition compiled against a header.
pub(super) struct Test {
    column: usize,
    equals: Option<Vec<String>>,
}

impl Test {
    /// `condition` reading the column at `column`.
    pub(super) fn new(condition: &Condition, column: usize) -> Self {
        Test {
            column,
            equals: condition.values(),
        }
    }

    fn holds(&self, row: &Row<'_>) -> bool {
        match &self.equals {
            None => !row.is_blank(self.column),
            Some(values) => {
                let cell = row.text(self.column).trim();
                values.iter().any(|value| value == cell)
            }
        }
    }
}

/// When a table produces its event, and the counter its rows add to.
pub(super) struct Gate {
    /// Conditions that must all hold.
    pub(super) when: Vec<Test>,
    /// Conditions none of which may hold (`unless = "a"`: the cell is blank; `unless = { column,
    /// equals }`: the cell is not that text).
    pub(super) unless: Vec<Test>,
    /// Report counter of the rows (kept, not dropped or rejected) that took this table.
    pub(super) count: Option<String>,
}

impl Gate {
    /// True when the row meets the table's condition.
    pub(super) fn opens(&self, row: &Row<'_>) -> bool {
        self.when.iter().all(|test| test.holds(row))
            && !self.unless.iter().any(|test| test.holds(row))
    }
}

/// `[duplicates]`: the columns that identify a row.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DuplicatesSpec {
    /// A later row with the same text in these columns as a kept row is dropped.
    pub(super) key: Vec<String>,
    /// A kept row with the same text in these columns as an earlier kept row but another key is
    /// counted and flagged (two events that look alike, kept because their key differs).
    #[serde(default)]
    pub(super) similar: Vec<String>,
}

/// What the duplicate rule says about a row.
pub(super) enum Verdict {
    /// A row whose key is new: kept; `key` is passed back to [`Duplicates::keep`].
    New(String),
    /// Dropped (and counted): same key as an earlier kept row.
    Dropped,
}

/// The compiled `[duplicates]` rule with the rows seen so far.
pub(super) struct Duplicates {
    key: Vec<usize>,
    similar: Vec<usize>,
    /// Key text -> (position, whole row) of kept rows.
    seen: HashMap<String, (Position, String)>,
    /// Text of the `similar` columns -> key text of the first row that had it.
    first_key: HashMap<String, String>,
}

/// Joins cells with a separator no CSV cell of an export holds.
fn cells(row: &Row<'_>, columns: &[usize]) -> String {
    let mut text = String::new();
    for &column in columns {
        text.push_str(row.text(column));
        text.push('\u{1f}');
    }
    text
}

impl Duplicates {
    /// The rule over the given column indices.
    pub(super) fn new(key: Vec<usize>, similar: Vec<usize>) -> Self {
        Duplicates {
            key,
            similar,
            seen: HashMap::new(),
            first_key: HashMap::new(),
        }
    }

    /// Classifies `row` against the kept rows; counts and flags what it finds in `tally`.
    pub(super) fn classify(&mut self, row: &Row<'_>, tally: &mut Tally) -> Verdict {
        let key = cells(row, &self.key);
        if let Some((line, text)) = self.seen.get(&key) {
            tally.duplicates += 1;
            if *text == row.raw() {
                tally.count(IDENTICAL);
                return Verdict::Dropped;
            }
            tally.count(DIFFERING);
            tally.flagged.push(format!(
                "{}: same key as {line}, different elsewhere; dropped, {line} kept",
                row.position()
            ));
            return Verdict::Dropped;
        }
        if !self.similar.is_empty() {
            let similar = cells(row, &self.similar);
            match self.first_key.get(&similar) {
                Some(first) if *first != key => {
                    tally.count(SIMILAR);
                    tally.flagged.push(format!(
                        "{}: same {} as an earlier row but another key (kept)",
                        row.position(),
                        "`similar` columns"
                    ));
                }
                Some(_) => {}
                None => {
                    self.first_key.insert(similar, key.clone());
                }
            }
        }
        Verdict::New(key)
    }

    /// Records a kept row under its key.
    pub(super) fn keep(&mut self, key: String, row: &Row<'_>) {
        self.seen.insert(key, (row.position(), row.raw()));
    }
}

/// Counts and notices a mapping collects while reading, merged into the source report.
#[derive(Default)]
pub(super) struct Tally {
    counters: BTreeMap<String, u64>,
    flagged: Vec<String>,
    duplicates: u64,
}

impl Tally {
    /// Adds one to `name`.
    pub(super) fn count(&mut self, name: &str) {
        *self.counters.entry(name.to_owned()).or_default() += 1;
    }

    /// Moves everything into `report`, flagged rows prefixed with `file`.
    pub(super) fn drain_into(&mut self, report: &mut SourceReport, file: &std::path::Path) {
        for (name, count) in std::mem::take(&mut self.counters) {
            report.count(&name, count);
        }
        report.flagged.extend(
            self.flagged
                .drain(..)
                .map(|line| format!("{}: {line}", file.display())),
        );
        report.duplicates += std::mem::take(&mut self.duplicates);
    }
}

/// One side of a liquidation for the plausibility check.
pub(super) struct Side {
    /// Base units.
    pub(super) amount: U256,
    /// The token's decimals.
    pub(super) decimals: u8,
    /// Price of one whole token.
    pub(super) price: Fixed,
}

fn pow10(exp: u32) -> U256 {
    U256::from(10u8).pow(U256::from(exp))
}

/// Checks that the collateral and the debt, valued at their prices, are within a factor
/// `within` of each other; the message says both values otherwise. A liquidation returns the
/// debt plus a bonus of a few percent, so a larger gap means the amounts or prices were read in
/// the wrong unit (the Aave export's switch between base units and whole tokens is 10^6 or more).
pub(super) fn plausible(within: u64, collateral: &Side, debt: &Side) -> Result<(), String> {
    let precision = collateral.price.decimals.max(debt.price.decimals);
    // Both values scaled by 10^(decimals of both tokens + precision): no division loses the ratio.
    let value = |side: &Side, other: &Side| {
        side.amount
            .saturating_mul(side.price.value)
            .saturating_mul(pow10(u32::from(
                other.decimals + (precision - side.price.decimals),
            )))
    };
    let (collateral_value, debt_value) = (value(collateral, debt), value(debt, collateral));
    let ratio = U256::from(within);
    if collateral_value > debt_value.saturating_mul(ratio)
        || debt_value > collateral_value.saturating_mul(ratio)
    {
        let shown = |value: U256| {
            let scale = pow10(u32::from(collateral.decimals) + u32::from(debt.decimals));
            Fixed::new(value / scale, precision)
        };
        return Err(format!(
            "implausible: the collateral is worth {} against {} of debt at the row's own prices (more than {within}x apart: wrong unit?)",
            shown(collateral_value),
            shown(debt_value),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(amount: u128, decimals: u8, price: u64, price_decimals: u8) -> Side {
        Side {
            amount: U256::from(amount),
            decimals,
            price: Fixed::new(U256::from(price), price_decimals),
        }
    }

    #[test]
    fn values_are_compared_across_decimals_and_price_precisions() {
        // 1.05 ETH (18 decimals) at 1 ETH against 2000 USDC (6 decimals) at 0.0005 ETH.
        let eth = side(1_050_000_000_000_000_000, 18, 1, 0);
        let usdc = side(2_000_000_000, 6, 5, 4);
        assert_eq!(plausible(20, &eth, &usdc), Ok(()));
        // The same collateral written in whole tokens read as base units: 1 wei.
        let slipped = side(1, 18, 1, 0);
        let error = plausible(20, &slipped, &usdc).unwrap_err();
        assert!(error.contains("1.0000 of debt"), "{error}");
        assert!(error.contains("0.0000 against"), "{error}");
        // 19x apart passes at 20, fails at 18.
        let nineteen = side(19_000_000_000_000_000_000, 18, 1, 0);
        assert_eq!(plausible(20, &nineteen, &usdc), Ok(()));
        assert!(plausible(18, &nineteen, &usdc).is_err());
        // Either direction: the debt worth 19x the collateral fails at 18 too.
        assert!(plausible(18, &usdc, &nineteen).is_err());
    }
}
