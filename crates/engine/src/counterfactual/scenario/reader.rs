//! A span-aware walk over a parsed TOML document: every value knows its key path and its line and
//! column, so every validation error can name the file, the key, the value and where it is.
//!
//! Numbers are taken from the text the user wrote (the TOML parser keeps it), never through `f64`:
//! `value = 1.3` and `value = "1.3"` both become exactly 13/10. This module only reads; what the
//! values mean is decided by the callers in [`super`].

use std::ops::Range;

use cascade_events::{Fixed, Id, Protocol, Timestamp, U256};
use chrono::DateTime;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ScenarioError;

/// The text being read and the name to report it by.
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Source<'_> {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map_or(0, |tail| tail.chars().count())
            + 1;
        (line, column)
    }

    /// An error about the value at `span`.
    pub fn invalid(
        &self,
        key: &str,
        span: Range<usize>,
        reason: impl Into<String>,
    ) -> ScenarioError {
        let (line, column) = self.position(span.start);
        let value = self.text.get(span).unwrap_or("").trim().to_owned();
        ScenarioError::Invalid {
            file: self.file.to_owned(),
            line,
            column,
            key: key.to_owned(),
            value,
            reason: reason.into(),
        }
    }

    /// An error about a table missing a required key.
    pub fn missing(&self, table: &str, span: Range<usize>, key: &str) -> ScenarioError {
        let (line, column) = self.position(span.start);
        ScenarioError::Missing {
            file: self.file.to_owned(),
            line,
            column,
            key: if table.is_empty() {
                key.to_owned()
            } else {
                format!("{table}.{key}")
            },
        }
    }

    /// An error about a key that the format does not have.
    pub fn unknown(&self, key: &str, span: Range<usize>, expected: &[&str]) -> ScenarioError {
        let (line, column) = self.position(span.start);
        ScenarioError::UnknownKey {
            file: self.file.to_owned(),
            line,
            column,
            key: key.to_owned(),
            expected: expected.join(", "),
        }
    }
}

/// One TOML table with its key path (`override[2]`, `liquidator`).
pub(crate) struct Table<'a, 'i> {
    pub src: Source<'a>,
    pub path: String,
    pub span: Range<usize>,
    table: &'a DeTable<'i>,
}

impl<'a, 'i> Table<'a, 'i> {
    /// The document's root table.
    pub fn root(src: Source<'a>, root: &'a Spanned<DeTable<'i>>) -> Self {
        Table {
            src,
            path: String::new(),
            span: root.span(),
            table: root.get_ref(),
        }
    }

    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Fails on the first key not in `allowed`, listing the allowed ones.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ScenarioError> {
        for (key, _) in self.table.iter() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                return Err(self
                    .src
                    .unknown(&self.key_path(key.get_ref()), key.span(), allowed));
            }
        }
        Ok(())
    }

    /// The value at `key`, if present.
    pub fn get(&self, key: &str) -> Option<Value<'a, 'i>> {
        self.table.get(key).map(|value| Value {
            src: self.src,
            path: self.key_path(key),
            span: value.span(),
            value: value.get_ref(),
        })
    }

    /// The value at `key`, or an error naming the table's position.
    pub fn require(&self, key: &str) -> Result<Value<'a, 'i>, ScenarioError> {
        self.get(key)
            .ok_or_else(|| self.src.missing(&self.path, self.span.clone(), key))
    }

    /// The sub-table at `key`, if present; an error when `key` holds something else.
    pub fn table(&self, key: &str) -> Result<Option<Table<'a, 'i>>, ScenarioError> {
        self.get(key).map(|value| value.table()).transpose()
    }

    /// Every key with its value (in the parser's order: sort what depends on it).
    pub fn entries(&self) -> impl Iterator<Item = (String, Value<'a, 'i>)> + '_ {
        self.table.iter().map(|(key, value)| {
            let key = key.get_ref().to_string();
            let value = Value {
                src: self.src,
                path: self.key_path(&key),
                span: value.span(),
                value: value.get_ref(),
            };
            (key, value)
        })
    }

    /// The tables of an array of tables (`[[override]]`), or of a single table written as
    /// `[override]`; empty when absent.
    pub fn tables(&self, key: &str) -> Result<Vec<Table<'a, 'i>>, ScenarioError> {
        let Some(value) = self.get(key) else {
            return Ok(Vec::new());
        };
        match value.value {
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    Value {
                        src: self.src,
                        path: format!("{}[{index}]", value.path),
                        span: item.span(),
                        value: item.get_ref(),
                    }
                    .table()
                })
                .collect(),
            DeValue::Table(_) => Ok(vec![value.table()?]),
            _ => Err(value.invalid("expected a table or an array of tables")),
        }
    }
}

/// One value with its key path and span.
pub(crate) struct Value<'a, 'i> {
    pub src: Source<'a>,
    pub path: String,
    pub span: Range<usize>,
    value: &'a DeValue<'i>,
}

impl<'a, 'i> Value<'a, 'i> {
    /// An error about this value.
    pub fn invalid(&self, reason: impl Into<String>) -> ScenarioError {
        self.src.invalid(&self.path, self.span.clone(), reason)
    }

    /// The value as a table.
    pub fn table(&self) -> Result<Table<'a, 'i>, ScenarioError> {
        match self.value {
            DeValue::Table(table) => Ok(Table {
                src: self.src,
                path: self.path.clone(),
                span: self.span.clone(),
                table,
            }),
            other => Err(self.invalid(format!("expected a table, found a {}", other.type_str()))),
        }
    }

    /// The value as a string.
    pub fn string(&self) -> Result<&'a str, ScenarioError> {
        match self.value {
            DeValue::String(text) => Ok(text.as_ref()),
            other => Err(self.invalid(format!("expected a string, found a {}", other.type_str()))),
        }
    }

    /// The value as an array of strings.
    pub fn strings(&self) -> Result<Vec<String>, ScenarioError> {
        let DeValue::Array(items) = self.value else {
            return Err(self.invalid(format!(
                "expected an array of strings, found a {}",
                self.value.type_str()
            )));
        };
        items
            .iter()
            .map(|item| match item.get_ref() {
                DeValue::String(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
                other => Err(self.invalid(format!(
                    "expected a non-empty string for every asset, found a {}",
                    other.type_str()
                ))),
            })
            .collect()
    }

    /// The text of a number or a string, as written.
    fn number_text(&self) -> Result<String, ScenarioError> {
        match self.value {
            DeValue::String(text) => Ok(text.trim().to_owned()),
            DeValue::Integer(integer) if integer.radix() == 10 => {
                Ok(integer.as_str().replace('_', ""))
            }
            DeValue::Float(float) => Ok(float.as_str().replace('_', "")),
            other => Err(self.invalid(format!(
                "expected a decimal number (e.g. \"1.5\"), found a {}",
                other.type_str()
            ))),
        }
    }

    /// A non-negative decimal, exactly as written. A trailing `%` divides by 100 (`"82.5%"` is
    /// 0.825) when `percent` allows it.
    pub fn decimal(&self, percent: bool) -> Result<Fixed, ScenarioError> {
        let text = self.number_text()?;
        let (digits, is_percent) = match text.strip_suffix('%') {
            Some(digits) if percent => (digits.trim_end(), true),
            Some(_) => return Err(self.invalid("a percentage is not allowed here")),
            None => (text.as_str(), false),
        };
        let fixed = Fixed::parse_exact(digits).map_err(|error| self.invalid(error.to_string()))?;
        if !is_percent {
            return Ok(fixed);
        }
        fixed
            .decimals
            .checked_add(2)
            .map(|decimals| Fixed::new(fixed.value, decimals))
            .ok_or_else(|| self.invalid("too many decimals"))
    }

    /// A whole non-negative number.
    pub fn count(&self) -> Result<u32, ScenarioError> {
        let text = self.number_text()?;
        text.parse::<u32>()
            .map_err(|_| self.invalid("expected a whole number from 0 to 4294967295"))
    }

    /// A signed duration in seconds: an integer number of seconds, or text such as `"90s"`,
    /// `"10m"`, `"1h30m"`, `"2d"`, `"-30m"`.
    pub fn duration(&self) -> Result<i64, ScenarioError> {
        let text = self.number_text()?;
        parse_duration(&text).map_err(|reason| self.invalid(reason))
    }

    /// A duration that cannot be negative.
    pub fn non_negative_duration(&self) -> Result<u64, ScenarioError> {
        let seconds = self.duration()?;
        u64::try_from(seconds).map_err(|_| self.invalid("a negative duration is not allowed here"))
    }

    /// A UTC time: RFC 3339 text or a TOML offset date-time (`2022-06-13T00:00:00Z`), or a bare
    /// date (`2022-06-13`, midnight UTC).
    pub fn time(&self) -> Result<Timestamp, ScenarioError> {
        let text = match self.value {
            DeValue::String(text) => text.trim().to_owned(),
            DeValue::Datetime(datetime) => datetime.to_string(),
            other => {
                return Err(self.invalid(format!(
                    "expected a UTC time such as 2022-06-13T00:00:00Z, found a {}",
                    other.type_str()
                )));
            }
        };
        parse_time(&text).map_err(|reason| self.invalid(reason))
    }

    /// An asset, market or account identity (`ETH-B`, `WETH`, `0x…`, `#16175`).
    pub fn id(&self) -> Result<Id, ScenarioError> {
        let text = self.string()?;
        if text.trim().is_empty() {
            return Err(self.invalid("must not be empty"));
        }
        text.trim()
            .parse::<Id>()
            .map_err(|error| self.invalid(error.to_string()))
    }

    /// A protocol name (`maker`, `aave-v2`, `aave-v3`, `compound-v2`).
    pub fn protocol(&self) -> Result<Protocol, ScenarioError> {
        self.string()?
            .parse::<Protocol>()
            .map_err(|reason| self.invalid(reason))
    }

    /// One of `choices`, returning its index.
    pub fn choice(&self, choices: &[&str]) -> Result<usize, ScenarioError> {
        let text = self.string()?;
        choices
            .iter()
            .position(|c| *c == text)
            .ok_or_else(|| self.invalid(format!("expected one of: {}", choices.join(", "))))
    }
}

/// Parses `"90"`, `"90s"`, `"10m"`, `"1h30m"`, `"2d"`, `"-30m"` into seconds.
pub(crate) fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if body.is_empty() {
        return Err("expected a duration such as \"90s\", \"10m\", \"1h30m\"".to_owned());
    }
    let bad =
        || format!("{text:?} is not a duration (write e.g. \"90s\", \"10m\", \"1h30m\", \"2d\")");
    let mut total: i64 = 0;
    let mut number: Option<i64> = None;
    for c in body.chars() {
        if let Some(digit) = c.to_digit(10) {
            number = Some(
                number
                    .unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(i64::from(digit)))
                    .ok_or_else(bad)?,
            );
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let amount = number.take().ok_or_else(bad)?;
        total = amount
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(bad)?;
    }
    if let Some(seconds) = number {
        total = total.checked_add(seconds).ok_or_else(bad)?;
    }
    Ok(if negative { -total } else { total })
}

/// Parses an RFC 3339 time (any offset, converted to UTC) or a bare `YYYY-MM-DD` date.
pub(crate) fn parse_time(text: &str) -> Result<Timestamp, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(Timestamp(time.timestamp()));
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(midnight) = date.and_hms_opt(0, 0, 0)
    {
        return Ok(Timestamp(midnight.and_utc().timestamp()));
    }
    Err(format!(
        "{text:?} is not a UTC time (write e.g. \"2022-06-13T00:00:00Z\" or \"2022-06-13\")"
    ))
}

/// `fixed` at `decimals` precision, failing when digits would be lost.
pub(crate) fn exact_at(fixed: Fixed, decimals: u8) -> Option<U256> {
    let scaled = fixed.rescale(decimals)?;
    (Fixed::new(scaled, decimals).rescale(fixed.decimals) == Some(fixed.value)).then_some(scaled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("1h30m"), Ok(5_400));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("-30m"), Ok(-1_800));
        assert_eq!(parse_duration("1h5"), Ok(3_605));
        for bad in ["", "h", "1x", "1.5h", "--1m", "99999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_time("2022-06-13T00:00:00Z"),
            Ok(Timestamp(1_655_078_400))
        );
        assert_eq!(
            parse_time("2022-06-13T02:00:00+02:00"),
            Ok(Timestamp(1_655_078_400))
        );
        assert_eq!(parse_time("2022-06-13"), Ok(Timestamp(1_655_078_400)));
        assert!(parse_time("13/06/2022").is_err());
    }

    #[test]
    fn positions_are_one_based() {
        let src = Source {
            file: "f.toml",
            text: "a = 1\nbé = \"x\"\n",
        };
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(6), (2, 1));
        // `é` is two bytes but one column.
        assert_eq!(src.position(11), (2, 5));
    }

    #[test]
    fn exact_rescaling() {
        let fixed = Fixed::parse_exact("1.50").unwrap();
        assert_eq!(exact_at(fixed, 1), Some(U256::from(15u8)));
        assert_eq!(exact_at(fixed, 3), Some(U256::from(1_500u16)));
        assert_eq!(exact_at(Fixed::parse_exact("1.55").unwrap(), 1), None);
    }
}
