//! The run file's line form (`docs/run-format.md`, "Line form"): the same schema as JSON lines,
//! for runs too large to be one JSON document (a 300,000-account market writes hundreds of
//! megabytes). Line 1 is the run without its nine lists, plus `lines`: how many records of each
//! list follow; every further line is one record, `{"<list>": {...}}`, lists in schema order.
//! A reader can take it a record at a time, and the counts make a truncated file an error
//! instead of a shorter run.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::binary::{self, BinaryError};
use crate::header::Header;
use crate::{
    AccountRecord, HealthSample, HealthSnapshot, LadderRung, LeverageSample, LiquidationRecord,
    OverlapReport, Run, TimelinePoint, UnsafeEpisode,
};

/// The run's lists, in the order their records follow the header.
pub const LIST_KEYS: [&str; 9] = [
    "liquidations",
    "unsafe_unliquidated",
    "timeline",
    "health_distribution",
    "health_over_time",
    "leverage_over_time",
    "liquidation_ladder",
    "overlap",
    "accounts",
];

/// The header key holding the record counts; its presence on line 1 marks the line form.
pub const COUNTS_KEY: &str = "lines";

/// Why text is not a run file in line form.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LinesError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong there.
    pub reason: String,
}

/// One record line: `{"<list>": item}`.
struct RecordLine<'a, T>(&'static str, &'a T);

impl<T: Serialize> Serialize for RecordLine<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.0, self.1)?;
        map.end()
    }
}

/// Writes `run` in line form to `out`, a record at a time, each line ending in a newline. Every
/// object's keys come in the JSON form's order, so a record line is its list item of the JSON
/// form, compact.
pub fn write_lines<W: Write>(run: &Run, mut out: W) -> io::Result<()> {
    write_line(&mut out, &Header::of(run))?;
    write_records(&mut out, LIST_KEYS[0], &run.liquidations)?;
    write_records(&mut out, LIST_KEYS[1], &run.unsafe_unliquidated)?;
    write_records(&mut out, LIST_KEYS[2], &run.timeline)?;
    write_records(&mut out, LIST_KEYS[3], &run.health_distribution)?;
    write_records(&mut out, LIST_KEYS[4], &run.health_over_time)?;
    write_records(&mut out, LIST_KEYS[5], &run.leverage_over_time)?;
    write_records(&mut out, LIST_KEYS[6], &run.liquidation_ladder)?;
    write_records(&mut out, LIST_KEYS[7], &run.overlap)?;
    write_records(&mut out, LIST_KEYS[8], &run.accounts)?;
    out.flush()
}

/// The run in line form.
pub fn to_lines(run: &Run) -> Vec<u8> {
    let mut out = Vec::new();
    write_lines(run, &mut out).expect("writing to memory does not fail");
    out
}

fn write_line<W: Write>(out: &mut W, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

fn write_records<W: Write, T: Serialize>(
    out: &mut W,
    key: &'static str,
    items: &[T],
) -> io::Result<()> {
    for item in items {
        write_line(out, &RecordLine(key, item))?;
    }
    Ok(())
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

/// Reads a run file of any form as one JSON document (the line form with its lists put back,
/// [`COUNTS_KEY`] removed; the binary form as the JSON form writes it). The error names the
/// line, or the binary form's part.
pub fn parse(bytes: &[u8]) -> Result<Value, ReadError> {
    if binary::is_binary(bytes) {
        let run = binary::read_binary(bytes)?;
        return Ok(serde_json::to_value(&run).expect("a run is strings, integers, maps and lists"));
    }
    let Some((mut header, records)) = split(bytes) else {
        return serde_json::from_slice(bytes).map_err(|error| ReadError::json(&error, 0));
    };
    let mut lists: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut last_line = 1;
    for (line, text) in records {
        let (key, value) = record(line, text).map_err(ReadError::from)?;
        lists.entry(key).or_default().push(value);
        last_line = line;
    }
    let found = lists
        .iter()
        .map(|(key, items)| (key.clone(), items.len() as u64))
        .collect();
    check_counts(&header, &found, last_line).map_err(ReadError::from)?;
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
pub enum ReadError {
    /// The JSON document or the line form: where the text is wrong.
    #[error("line {line}, column {column}: {reason}")]
    Text {
        /// 1-based line.
        line: usize,
        /// 1-based column (1 where the fault is a whole line).
        column: usize,
        /// What is wrong there.
        reason: String,
    },
    /// The binary form.
    #[error(transparent)]
    Binary(#[from] BinaryError),
}

impl ReadError {
    fn json(error: &serde_json::Error, line: usize) -> Self {
        ReadError::Text {
            line: line.max(error.line()),
            column: error.column(),
            reason: error.to_string(),
        }
    }
}

impl From<LinesError> for ReadError {
    fn from(error: LinesError) -> Self {
        ReadError::Text {
            line: error.line,
            column: 1,
            reason: error.reason,
        }
    }
}

/// One record line of the line form: `{"<list>": item}`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    Liquidations(Box<LiquidationRecord>),
    UnsafeUnliquidated(Box<UnsafeEpisode>),
    Timeline(TimelinePoint),
    HealthDistribution(HealthSnapshot),
    HealthOverTime(HealthSample),
    LeverageOverTime(LeverageSample),
    LiquidationLadder(LadderRung),
    Overlap(OverlapReport),
    Accounts(Box<AccountRecord>),
}

/// Reads a run file of any form (one JSON document, the line form, or the binary form) into
/// the typed run. A text run file of any schema version is read as far as its keys go; checking
/// the version is the reader's call.
pub fn read(bytes: &[u8]) -> Result<Run, ReadError> {
    if binary::is_binary(bytes) {
        return Ok(binary::read_binary(bytes)?);
    }
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
                run.unsafe_unliquidated.push(*item);
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
            Record::Accounts(item) => {
                run.accounts.push(*item);
                LIST_KEYS[8]
            }
        };
        *found.entry(list.to_owned()).or_default() += 1;
        last_line = line;
    }
    check_counts(&header, &found, last_line).map_err(ReadError::from)?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_typed_run_writes_its_json_items_as_lines_and_reads_back_to_the_same_bytes() {
        let run = crate::sample::run();
        let bytes = to_lines(&run);
        let text = String::from_utf8(bytes.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10, "{text}");
        // A record line is its item of the JSON form, compact, keys in the same order.
        assert_eq!(
            lines[1],
            format!(
                r#"{{"liquidations":{}}}"#,
                serde_json::to_string(&run.liquidations[0]).unwrap()
            )
        );
        assert!(lines[0].ends_with(r#""lines":{"accounts":1,"health_distribution":1,"health_over_time":1,"leverage_over_time":1,"liquidation_ladder":1,"liquidations":2,"overlap":1,"timeline":1,"unsafe_unliquidated":0}}"#), "{}", lines[0]);
        assert_eq!(
            parse(&bytes).unwrap(),
            serde_json::to_value(&run).unwrap(),
            "the same document as the JSON form"
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
            "accounts": [],
            "counterfactual": null
        })
    }

    #[test]
    fn the_line_form_reads_back_as_the_same_document() {
        let bytes = value_to_lines(document());
        let text = String::from_utf8(bytes.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].contains(r#""lines":{"accounts":0,"health_distribution":1,"health_over_time":0,"leverage_over_time":0,"liquidation_ladder":0,"liquidations":2,"overlap":0,"timeline":1,"unsafe_unliquidated":0}"#), "{}", lines[0]);
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
                .to_string()
                .contains("announces 1 timeline records, the file has 0"),
            "{error}"
        );
        let line = |error: ReadError| match error {
            ReadError::Text { line, .. } => line,
            ReadError::Binary(error) => panic!("{error}"),
        };
        let damaged = text.replacen(r#"{"timeline":"#, r#"{"timelines":"#, 1);
        assert_eq!(line(parse(damaged.as_bytes()).unwrap_err()), 4);
        let broken = text.replacen(r#""seq":5}"#, r#""seq":5"#, 1);
        assert_eq!(line(parse(broken.as_bytes()).unwrap_err()), 3);
    }
}
