//! The run file's line form (`docs/run-format.md`, "Line form"): the same schema as JSON lines,
//! for runs too large to be one JSON document (a 300,000-account market writes hundreds of
//! megabytes). Line 1 is the run without its eight lists, plus `lines`: how many records of each
//! list follow; every further line is one record, `{"<list>": {...}}`, lists in schema order.
//! A reader can take it a record at a time, and the counts make a truncated file an error
//! instead of a shorter run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    CounterfactualReport, HealthSample, HealthSnapshot, LadderRung, LeverageSample,
    LiquidationRecord, LogInfo, OverlapReport, Run, RunConfig, ScenarioInfo, TimelinePoint, Totals,
    UnsafeEpisode, Window,
};

/// The run's lists, in the order their records follow the header.
pub const LIST_KEYS: [&str; 8] = [
    "liquidations",
    "unsafe_unliquidated",
    "timeline",
    "health_distribution",
    "health_over_time",
    "leverage_over_time",
    "liquidation_ladder",
    "overlap",
];

/// The header key holding the record counts; its presence on line 1 marks the line form.
pub const COUNTS_KEY: &str = "lines";

/// Why bytes are not a run file of either form.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LinesError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong there.
    pub reason: String,
}

/// The run without its lists, as line 1 of the line form holds it (keys sorted, as in every
/// line of this form). Borrows the run: a large run is never copied to write its header.
#[derive(Serialize)]
struct Header<'a> {
    schema_version: u32,
    log: &'a LogInfo,
    window: &'a Window,
    scenario: &'a Option<ScenarioInfo>,
    config: &'a RunConfig,
    state_hash: &'a str,
    totals: &'a Totals,
    #[serde(skip_serializing_if = "Option::is_none")]
    counterfactual: &'a Option<CounterfactualReport>,
    lines: BTreeMap<&'static str, usize>,
}

/// The run in line form, each line ending in a newline. Deterministic like the JSON form: the
/// bytes are those of [`value_to_lines`] of the run's JSON document, written a record at a time.
pub fn to_lines(run: &Run) -> Vec<u8> {
    let header = Header {
        schema_version: run.schema_version,
        log: &run.log,
        window: &run.window,
        scenario: &run.scenario,
        config: &run.config,
        state_hash: &run.state_hash,
        totals: &run.totals,
        counterfactual: &run.counterfactual,
        lines: BTreeMap::from([
            (LIST_KEYS[0], run.liquidations.len()),
            (LIST_KEYS[1], run.unsafe_unliquidated.len()),
            (LIST_KEYS[2], run.timeline.len()),
            (LIST_KEYS[3], run.health_distribution.len()),
            (LIST_KEYS[4], run.health_over_time.len()),
            (LIST_KEYS[5], run.leverage_over_time.len()),
            (LIST_KEYS[6], run.liquidation_ladder.len()),
            (LIST_KEYS[7], run.overlap.len()),
        ]),
    };
    let mut out = Vec::new();
    push_line(&mut out, &sorted(&header));
    push_records(&mut out, LIST_KEYS[0], &run.liquidations);
    push_records(&mut out, LIST_KEYS[1], &run.unsafe_unliquidated);
    push_records(&mut out, LIST_KEYS[2], &run.timeline);
    push_records(&mut out, LIST_KEYS[3], &run.health_distribution);
    push_records(&mut out, LIST_KEYS[4], &run.health_over_time);
    push_records(&mut out, LIST_KEYS[5], &run.leverage_over_time);
    push_records(&mut out, LIST_KEYS[6], &run.liquidation_ladder);
    push_records(&mut out, LIST_KEYS[7], &run.overlap);
    out
}

/// `value` as a JSON value: objects with their keys sorted, as the line form writes them.
fn sorted(value: &impl Serialize) -> Value {
    serde_json::to_value(value).expect("a run holds only strings, integers, maps and lists")
}

fn push_records<T: Serialize>(out: &mut Vec<u8>, key: &str, items: &[T]) {
    for item in items {
        push_line(out, &BTreeMap::from([(key, sorted(item))]));
    }
}

/// A run document (or a compact golden file) in line form: lists it lacks count zero.
pub fn value_to_lines(mut run: Value) -> Vec<u8> {
    let header = run.as_object_mut().expect("a run is a JSON object");
    let lists: Vec<(&str, Vec<Value>)> = LIST_KEYS
        .iter()
        .map(|key| match header.remove(*key) {
            Some(Value::Array(items)) => (*key, items),
            _ => (*key, Vec::new()),
        })
        .collect();
    let counts: Map<String, Value> = lists
        .iter()
        .map(|(key, items)| ((*key).to_owned(), Value::from(items.len())))
        .collect();
    header.insert(COUNTS_KEY.to_owned(), Value::Object(counts));
    let mut out = Vec::new();
    push_line(&mut out, &run);
    for (key, items) in &lists {
        for item in items {
            push_line(&mut out, &BTreeMap::from([(key, item)]));
        }
    }
    out
}

fn push_line(out: &mut Vec<u8>, value: &impl Serialize) {
    serde_json::to_writer(&mut *out, value).expect("JSON values always encode");
    out.push(b'\n');
}

/// A line-form file taken apart: its header, and its record lines as `(1-based line, text)`.
pub type Split<'a> = (Map<String, Value>, Vec<(usize, &'a [u8])>);

/// The header of a line-form file and its record lines; `None` when `bytes` are not in line
/// form (a JSON document: its first line is not an object with [`COUNTS_KEY`]).
pub fn split(bytes: &[u8]) -> Option<Split<'_>> {
    let first_end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(bytes.len());
    let header: Map<String, Value> = serde_json::from_slice(&bytes[..first_end]).ok()?;
    if !header.get(COUNTS_KEY).is_some_and(Value::is_object) {
        return None;
    }
    let records = bytes[first_end..]
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(index, line)| (index + 1, line))
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .collect();
    Some((header, records))
}

/// Checks that `found` records per list (as counted while reading) are what the header of a
/// line-form file announced.
pub fn check_counts(
    header: &Map<String, Value>,
    found: &BTreeMap<String, u64>,
    last_line: usize,
) -> Result<(), LinesError> {
    let announced = header.get(COUNTS_KEY).and_then(Value::as_object);
    for key in LIST_KEYS {
        let expected = announced
            .and_then(|counts| counts.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let got = found.get(key).copied().unwrap_or(0);
        if expected != got {
            return Err(LinesError {
                line: last_line,
                reason: format!(
                    "the header announces {expected} {key} records, the file has {got} (truncated or edited?)"
                ),
            });
        }
    }
    Ok(())
}

/// The single `{"<list>": record}` of a record line.
pub fn record(line: usize, text: &[u8]) -> Result<(String, Value), LinesError> {
    let reason = |reason: String| LinesError { line, reason };
    let object: Map<String, Value> = serde_json::from_slice(text)
        .map_err(|error| reason(format!("not a JSON object: {error}")))?;
    let mut entries = object.into_iter();
    match (entries.next(), entries.next()) {
        (Some((key, value)), None) if LIST_KEYS.contains(&key.as_str()) => Ok((key, value)),
        _ => Err(reason(format!(
            "a record line is one object with one key of {}",
            LIST_KEYS.join(", ")
        ))),
    }
}

/// Reads a run file of either form as one JSON document (the line form with its lists put
/// back, [`COUNTS_KEY`] removed). The error names the line.
pub fn parse(bytes: &[u8]) -> Result<Value, LinesError> {
    let Some((mut header, records)) = split(bytes) else {
        return serde_json::from_slice(bytes).map_err(|error| LinesError {
            line: error.line(),
            reason: format!("column {}: {error}", error.column()),
        });
    };
    let mut lists: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut last_line = 1;
    for (line, text) in records {
        let (key, value) = record(line, text)?;
        lists.entry(key).or_default().push(value);
        last_line = line;
    }
    let found = lists
        .iter()
        .map(|(key, items)| (key.clone(), items.len() as u64))
        .collect();
    check_counts(&header, &found, last_line)?;
    header.remove(COUNTS_KEY);
    for key in LIST_KEYS {
        header.insert(
            key.to_owned(),
            Value::Array(lists.remove(key).unwrap_or_default()),
        );
    }
    Ok(Value::Object(header))
}

/// Why bytes are not a run file.
#[derive(Debug, thiserror::Error)]
#[error("line {line}, column {column}: {reason}")]
pub struct ReadError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (1 where the fault is a whole line).
    pub column: usize,
    /// What is wrong there.
    pub reason: String,
}

impl ReadError {
    fn json(error: &serde_json::Error, line: usize) -> Self {
        ReadError {
            line: line.max(error.line()),
            column: error.column(),
            reason: error.to_string(),
        }
    }
}

/// One record line of the line form: `{"<list>": item}`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    Liquidations(Box<LiquidationRecord>),
    UnsafeUnliquidated(UnsafeEpisode),
    Timeline(TimelinePoint),
    HealthDistribution(HealthSnapshot),
    HealthOverTime(HealthSample),
    LeverageOverTime(LeverageSample),
    LiquidationLadder(LadderRung),
    Overlap(OverlapReport),
}

/// Reads a run file of either form (one JSON document, or the line form) into the typed run.
/// A run file of any schema version is read as far as its keys go; checking the version is the
/// reader's call.
pub fn read(bytes: &[u8]) -> Result<Run, ReadError> {
    let Some((header, records)) = split(bytes) else {
        return serde_json::from_slice(bytes).map_err(|error| ReadError::json(&error, 0));
    };
    // The header holds the run without its lists; a list it announces a count for starts empty
    // and is filled from the record lines (a list it does not announce stays missing, and a
    // required one is refused as in the document form).
    let mut document = header.clone();
    let announced = header.get(COUNTS_KEY).and_then(Value::as_object);
    for key in LIST_KEYS {
        if announced.is_some_and(|counts| counts.contains_key(key)) {
            document.insert(key.to_owned(), Value::Array(Vec::new()));
        }
    }
    let mut run: Run = serde_json::from_value(Value::Object(document))
        .map_err(|error| ReadError::json(&error, 1))?;
    let mut found: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_line = 1;
    for (line, text) in records {
        let record: Record =
            serde_json::from_slice(text).map_err(|error| ReadError::json(&error, line))?;
        let list = match record {
            Record::Liquidations(item) => {
                run.liquidations.push(*item);
                LIST_KEYS[0]
            }
            Record::UnsafeUnliquidated(item) => {
                run.unsafe_unliquidated.push(item);
                LIST_KEYS[1]
            }
            Record::Timeline(item) => {
                run.timeline.push(item);
                LIST_KEYS[2]
            }
            Record::HealthDistribution(item) => {
                run.health_distribution.push(item);
                LIST_KEYS[3]
            }
            Record::HealthOverTime(item) => {
                run.health_over_time.push(item);
                LIST_KEYS[4]
            }
            Record::LeverageOverTime(item) => {
                run.leverage_over_time.push(item);
                LIST_KEYS[5]
            }
            Record::LiquidationLadder(item) => {
                run.liquidation_ladder.push(item);
                LIST_KEYS[6]
            }
            Record::Overlap(item) => {
                run.overlap.push(item);
                LIST_KEYS[7]
            }
        };
        *found.entry(list.to_owned()).or_default() += 1;
        last_line = line;
    }
    check_counts(&header, &found, last_line).map_err(|error| ReadError {
        line: error.line,
        column: 1,
        reason: error.reason,
    })?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HealthBucket, Moment, Origin, Quantity, Verdict};
    use cascade_events::{Id, Protocol, Timestamp, U256};
    use serde_json::json;

    fn typed_run() -> Run {
        let amount = |value: u64| Quantity::new(U256::from(value), 2);
        Run {
            schema_version: crate::RUN_SCHEMA_VERSION,
            log: LogInfo {
                first_seq: Some(1),
                last_seq: Some(9),
                content_hash: "ab".to_owned(),
            },
            window: Window::default(),
            scenario: None,
            config: RunConfig {
                feed_priority: Vec::new(),
                maker: Some(crate::MakerSettings {
                    collateral_tolerance: Quantity::new(U256::from(51), 2),
                    debt_tolerance_ppm: 1000,
                    feed_lag_seconds: std::collections::BTreeMap::new(),
                    max_price_age_seconds: 172_800,
                    median_rule: None,
                    oracle: None,
                    osm_hop_seconds: 3600,
                    osm_sample: "latest".to_owned(),
                    price_assets: std::collections::BTreeMap::new(),
                    quote: "USD".to_owned(),
                }),
                max_cascade_rounds: 32,
                params: Vec::new(),
                quote_conversions: Vec::new(),
                unsafe_threshold_seconds: 3600,
            },
            state_hash: "cd".to_owned(),
            totals: Totals::default(),
            liquidations: vec![LiquidationRecord {
                seq: 3,
                time: Timestamp(1_622_512_800),
                origin: Origin::Recorded,
                protocol: Protocol::Maker,
                market: Id::name("ETH-B"),
                account: Id::Number(1),
                tx_hash: None,
                log_index: Some(4),
                verdict: Some(Verdict::Explained),
                rule: "dog-bark".into(),
                round: None,
                health: Some(amount(90)),
                collateral_asset: Id::name("ETH"),
                collateral_seized: amount(1000),
                expected_collateral: None,
                debt_asset: Id::name("DAI"),
                debt_repaid: amount(150_050),
                expected_debt: None,
                bad_debt: None,
                collateral_sold: None,
                note: None,
                oracle: None,
                mismatch: None,
            }],
            unsafe_unliquidated: Vec::new(),
            timeline: vec![TimelinePoint {
                seq: 4,
                time: Timestamp(1_622_512_801),
                protocol: "maker".to_owned(),
                market: "ETH-B".to_owned(),
                oracle_price: Some(amount(150_000)),
                trigger: None,
                accounts_unsafe: 1,
                collateral_at_risk: amount(1),
                debt_at_risk: amount(2),
                bad_debt: amount(0),
            }],
            health_distribution: vec![HealthSnapshot {
                moment: Moment::After,
                seq: 9,
                time: Timestamp(1_622_512_900),
                protocol: "maker".to_owned(),
                market: "ETH-B".to_owned(),
                buckets: vec![HealthBucket {
                    range: "<1".into(),
                    accounts: 1,
                    debt: amount(5),
                }],
                accounts_without_debt: 0,
                accounts_unpriced: 0,
            }],
            health_over_time: vec![HealthSample {
                period: Timestamp(1_622_509_200),
                period_seconds: 3600,
                seq: 7,
                time: Timestamp(1_622_509_212),
                protocol: "maker".to_owned(),
                market: "ETH-B".to_owned(),
                buckets: vec![HealthBucket {
                    range: "1-1.05".into(),
                    accounts: 2,
                    debt: amount(7),
                }],
                accounts_without_debt: 1,
                accounts_unpriced: 0,
            }],
            leverage_over_time: Vec::new(),
            liquidation_ladder: vec![crate::LadderRung {
                moment: crate::BookMoment::End,
                seq: 9,
                time: Timestamp(1_622_512_900),
                group: "ETH".to_owned(),
                fall: "5-10%".into(),
                accounts: 2,
                collateral: amount(300),
                debt: amount(150),
                by_protocol: std::collections::BTreeMap::from([("maker".to_owned(), amount(300))]),
            }],
            overlap: Vec::new(),
            counterfactual: None,
        }
    }

    #[test]
    fn a_typed_run_writes_the_bytes_of_its_document_and_reads_back_to_the_same_bytes() {
        let run = typed_run();
        let bytes = to_lines(&run);
        assert_eq!(
            bytes,
            value_to_lines(serde_json::to_value(&run).unwrap()),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        // Amounts read back keep the digits written (`1500` rather than `1500.00`): the same
        // text, so the same bytes.
        let from_lines = read(&bytes).unwrap();
        assert_eq!(from_lines.liquidations[0].debt_repaid.to_string(), "1500.5");
        assert_eq!(to_lines(&from_lines), bytes);
        let json = run.to_json();
        assert_eq!(read(&json).unwrap().to_json(), json);
        assert_eq!(read(&json).unwrap().to_json(), from_lines.to_json());
    }

    fn document() -> Value {
        json!({
            "schema_version": 2,
            "log": {"first_seq": 1, "last_seq": 9, "content_hash": "ab"},
            "totals": {"liquidations": 2},
            "liquidations": [{"seq": 3, "account": "#1"}, {"seq": 5, "account": "#2"}],
            "unsafe_unliquidated": [],
            "timeline": [{"seq": 4, "market": "ETH-A"}],
            "health_distribution": [{"moment": "after", "seq": 9}],
            "health_over_time": [],
            "leverage_over_time": [],
            "liquidation_ladder": [],
            "overlap": [],
            "counterfactual": null
        })
    }

    #[test]
    fn the_line_form_reads_back_as_the_same_document() {
        let bytes = value_to_lines(document());
        let text = String::from_utf8(bytes.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].contains(r#""lines":{"health_distribution":1,"health_over_time":0,"leverage_over_time":0,"liquidation_ladder":0,"liquidations":2,"overlap":0,"timeline":1,"unsafe_unliquidated":0}"#), "{}", lines[0]);
        assert_eq!(lines[1], r##"{"liquidations":{"account":"#1","seq":3}}"##);
        assert_eq!(
            lines[4],
            r#"{"health_distribution":{"moment":"after","seq":9}}"#
        );
        assert_eq!(parse(&bytes).unwrap(), document());
    }

    #[test]
    fn a_json_document_is_read_as_it_is() {
        let bytes = serde_json::to_vec_pretty(&document()).unwrap();
        assert!(split(&bytes).is_none());
        assert_eq!(parse(&bytes).unwrap(), document());
        let compact = serde_json::to_vec(&document()).unwrap();
        assert!(
            split(&compact).is_none(),
            "a one-line document has no record counts"
        );
        assert_eq!(parse(&compact).unwrap(), document());
    }

    #[test]
    fn a_truncated_or_damaged_file_is_an_error_naming_the_line() {
        let bytes = value_to_lines(document());
        let text = String::from_utf8(bytes).unwrap();
        let cut: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
        let error = parse(cut.as_bytes()).unwrap_err();
        assert!(
            error
                .reason
                .contains("announces 1 timeline records, the file has 0"),
            "{error}"
        );
        let damaged = text.replacen(r#"{"timeline":"#, r#"{"timelines":"#, 1);
        let error = parse(damaged.as_bytes()).unwrap_err();
        assert_eq!(error.line, 4, "{error}");
        let broken = text.replacen(r#""seq":5}"#, r#""seq":5"#, 1);
        assert_eq!(parse(broken.as_bytes()).unwrap_err().line, 3);
    }
}
