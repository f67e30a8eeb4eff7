//! `--fail-on`: thresholds on a run's totals that make `cascade replay` and `cascade check` exit
//! 1, so CI can fail on what a replay found (`--fail-on not-liquidatable>0`), not only on a
//! changed golden file.

use std::fmt;
use std::str::FromStr;

use cascade_diff::Num;
use cascade_engine::Verdict;
use cascade_engine::run::Totals;

/// Totals a threshold can name besides the verdicts.
const OTHER_METRICS: [&str; 7] = [
    "liquidations",
    "accounts-liquidated",
    "unsafe-unliquidated",
    "explained-percent",
    "seize-consistent-percent",
    "events",
    "recorded-liquidations-skipped",
];

/// How a metric is compared with its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparison {
    Above,
    AtLeast,
    Below,
    AtMost,
    Equal,
}

impl Comparison {
    fn symbol(self) -> &'static str {
        match self {
            Comparison::Above => ">",
            Comparison::AtLeast => ">=",
            Comparison::Below => "<",
            Comparison::AtMost => "<=",
            Comparison::Equal => "=",
        }
    }

    fn holds(self, value: Num, limit: Num) -> bool {
        match self {
            Comparison::Above => value > limit,
            Comparison::AtLeast => value >= limit,
            Comparison::Below => value < limit,
            Comparison::AtMost => value <= limit,
            Comparison::Equal => value == limit,
        }
    }
}

/// One `--fail-on` condition: `METRIC OP NUMBER`, failing the command when it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Threshold {
    metric: String,
    comparison: Comparison,
    limit: Num,
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let at = compact.find(['>', '<', '=']).ok_or_else(|| {
            format!(
                "{text:?}: expected METRIC>N, >=, <, <= or =, e.g. 'not-liquidatable>0' (quoted: \
                 the shell reads > as a redirection)"
            )
        })?;
        let (metric, rest) = compact.split_at(at);
        let (comparison, number) = [
            (">=", Comparison::AtLeast),
            ("<=", Comparison::AtMost),
            (">", Comparison::Above),
            ("<", Comparison::Below),
            ("=", Comparison::Equal),
        ]
        .into_iter()
        .find_map(|(symbol, comparison)| rest.strip_prefix(symbol).map(|n| (comparison, n)))
        .ok_or_else(|| format!("{text:?}: no comparison"))?;
        let known = Verdict::ALL
            .iter()
            .map(|verdict| verdict.name())
            .chain(OTHER_METRICS)
            .any(|name| name == metric);
        if !known {
            let names: Vec<&str> = Verdict::ALL
                .iter()
                .map(|verdict| verdict.name())
                .chain(OTHER_METRICS)
                .collect();
            return Err(format!(
                "{text:?}: unknown metric {metric:?}; one of {}",
                names.join(", ")
            ));
        }
        let limit =
            Num::parse(number).ok_or_else(|| format!("{text:?}: {number:?} is not a number"))?;
        Ok(Threshold {
            metric: metric.to_owned(),
            comparison,
            limit,
        })
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.metric,
            self.comparison.symbol(),
            self.limit
        )
    }
}

impl Threshold {
    /// The metric's value in `totals` (`None`: no such percentage, nothing was judged or
    /// seize-checked; no accounts count in a file before schema version 5).
    fn value(&self, totals: &Totals) -> Option<Num> {
        let count = |n: u64| Some(Num::from_int(n.into()));
        match self.metric.as_str() {
            "liquidations" => count(totals.liquidations),
            "accounts-liquidated" => totals.accounts_liquidated.and_then(count),
            "unsafe-unliquidated" => count(totals.unsafe_unliquidated),
            "events" => count(totals.events),
            "recorded-liquidations-skipped" => count(totals.recorded_liquidations_skipped),
            "explained-percent" => totals.explained_percent.as_deref().and_then(Num::parse),
            "seize-consistent-percent" => totals
                .seize_consistent_percent
                .as_deref()
                .and_then(Num::parse),
            verdict => count(totals.verdicts.get(verdict).copied().unwrap_or(0)),
        }
    }
}

/// The thresholds that hold for a run's `totals`, each as a line.
pub fn tripped(thresholds: &[Threshold], totals: &Totals) -> Vec<String> {
    thresholds
        .iter()
        .filter_map(|threshold| {
            let value = threshold.value(totals)?;
            threshold
                .comparison
                .holds(value, threshold.limit)
                .then(|| format!("--fail-on {threshold}: {} is {value}", threshold.metric))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_and_name_what_is_wrong() {
        let threshold: Threshold = "not-liquidatable>0".parse().unwrap();
        assert_eq!(threshold.to_string(), "not-liquidatable>0");
        assert_eq!(
            "explained-percent < 95.5"
                .parse::<Threshold>()
                .unwrap()
                .to_string(),
            "explained-percent<95.5"
        );
        assert_eq!(
            "no-price>=2".parse::<Threshold>().unwrap().comparison,
            Comparison::AtLeast
        );
        let unknown = "not-liquidated>0".parse::<Threshold>().unwrap_err();
        assert!(
            unknown.contains("one of explained, amount-mismatch"),
            "{unknown}"
        );
        assert!("explained".parse::<Threshold>().is_err());
        assert!("explained>x".parse::<Threshold>().is_err());
    }

    #[test]
    fn a_threshold_trips_on_the_run_totals() {
        let mut totals = Totals::default();
        totals.verdicts.insert("not-liquidatable".to_owned(), 3);
        totals.explained_percent = Some("90".to_owned());
        let parse = |text: &str| text.parse::<Threshold>().unwrap();
        let lines = tripped(
            &[
                parse("not-liquidatable>0"),
                parse("no-price>0"),
                parse("explained-percent<95"),
                parse("explained-percent<90"),
            ],
            &totals,
        );
        assert_eq!(
            lines,
            [
                "--fail-on not-liquidatable>0: not-liquidatable is 3",
                "--fail-on explained-percent<95: explained-percent is 90"
            ]
        );
    }

    #[test]
    fn seize_checks_and_accounts_can_be_thresholds() {
        let mut totals = Totals::default();
        let parse = |text: &str| text.parse::<Threshold>().unwrap();
        let thresholds = [
            parse("seize-consistent-percent<85"),
            parse("accounts-liquidated>=2"),
        ];
        // A file without seize checks or an accounts count trips neither.
        assert!(tripped(&thresholds, &totals).is_empty());
        totals.seize_consistent_percent = Some("64.49".to_owned());
        totals.accounts_liquidated = Some(2);
        assert_eq!(
            tripped(&thresholds, &totals),
            [
                "--fail-on seize-consistent-percent<85: seize-consistent-percent is 64.49",
                "--fail-on accounts-liquidated>=2: accounts-liquidated is 2"
            ]
        );
    }
}
