//! A protocol's parameter history brought as a TOML file (`--params FILE`, docs/engine.md):
//! governance changes the log does not carry, each with its time and public source, applied by
//! the replay at their time exactly like the log's own `param-change` events.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cascade_events::{Fixed, Id, Protocol, Timestamp};
use chrono::DateTime;
use serde::Deserialize;
use toml::Spanned;

use crate::protocol::param::ParamSetting;
use crate::protocol::registry::ProtocolSet;

/// Why a parameter history file was refused; every variant names the file and the line.
#[derive(Debug, thiserror::Error)]
pub enum ParamHistoryError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not TOML of the documented shape, or a value is refused.
    #[error("{file}:{line}: {key}: {reason}")]
    Entry {
        /// The file.
        file: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// The key (`change[3].value`).
        key: String,
        /// What is wrong, with the value.
        reason: String,
    },
}

/// One governance change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamEntry {
    /// When it took effect.
    pub time: Timestamp,
    /// The parameter name as written (the protocol's own, as the log's `param-change` events
    /// name it), for the run file.
    pub name: String,
    /// The change, parsed: protocol, parameter, market (always given) and value in the same
    /// human units as a `param-change` event.
    pub setting: ParamSetting,
    /// Where the change is documented (a URL or a proposal id).
    pub source: String,
    /// 1-based line of the entry's `time` in the file (for errors found later).
    pub line: usize,
}

/// The changes of a history file, in time order (file order at equal times).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParamHistory {
    /// The file the changes came from.
    pub file: PathBuf,
    /// The changes.
    pub entries: Vec<ParamEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    change: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    time: Spanned<String>,
    protocol: Spanned<String>,
    market: Spanned<String>,
    param: Spanned<String>,
    value: Spanned<toml::Value>,
    source: Spanned<String>,
}

impl ParamHistory {
    /// Reads and checks the file at `path`: times, protocols, parameter names and values are
    /// checked against the engine's own typed parameters.
    pub fn load(path: &Path) -> Result<Self, ParamHistoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| ParamHistoryError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as the history file `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ParamHistoryError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let error = |offset: usize, key: String, reason: String| ParamHistoryError::Entry {
            file: path.to_owned(),
            line: line_of(offset),
            key,
            reason,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            error(offset, "file".to_owned(), e.message().to_owned())
        })?;
        let protocols = ProtocolSet::default();
        let mut entries = Vec::with_capacity(raw.change.len());
        for (index, entry) in raw.change.into_iter().enumerate() {
            let key = |field: &str| format!("change[{}].{field}", index + 1);
            let time = DateTime::parse_from_rfc3339(entry.time.get_ref())
                .map(|t| Timestamp(t.timestamp()))
                .map_err(|e| {
                    error(
                        entry.time.span().start,
                        key("time"),
                        format!(
                            "{:?} is not an RFC 3339 UTC time ({e})",
                            entry.time.get_ref()
                        ),
                    )
                })?;
            let protocol: Protocol = entry
                .protocol
                .get_ref()
                .parse()
                .map_err(|e: String| error(entry.protocol.span().start, key("protocol"), e))?;
            let market: Id = entry.market.get_ref().parse().map_err(|e| {
                error(
                    entry.market.span().start,
                    key("market"),
                    format!("{:?}: {e}", entry.market.get_ref()),
                )
            })?;
            let value_text = match entry.value.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                other => {
                    return Err(error(
                        entry.value.span().start,
                        key("value"),
                        format!(
                            "{other}: write the value as an integer or a decimal string (\"1.1\"), never a float"
                        ),
                    ));
                }
            };
            let value: Fixed = value_text.parse().map_err(|e| {
                error(
                    entry.value.span().start,
                    key("value"),
                    format!("{value_text:?}: {e}"),
                )
            })?;
            let name = entry.param.get_ref().clone();
            let param_error =
                |reason: String| error(entry.param.span().start, key("param"), reason);
            let param = protocols
                .parse_param(protocol, &name)
                .map_err(|reason| param_error(format!("parameter {name} = {value}: {reason}")))?;
            let setting = ParamSetting {
                param,
                market: Some(market),
                value,
            };
            protocols
                .check(&setting)
                .map_err(|e| param_error(e.to_string()))?;
            if entry.source.get_ref().trim().is_empty() {
                return Err(error(
                    entry.source.span().start,
                    key("source"),
                    "every change names its source (a URL or a proposal id)".to_owned(),
                ));
            }
            entries.push(ParamEntry {
                time,
                name,
                setting,
                source: entry.source.get_ref().clone(),
                line: line_of(entry.time.span().start),
            });
        }
        entries.sort_by_key(|entry| entry.time);
        Ok(Self {
            file: path.to_owned(),
            entries,
        })
    }

    /// Refuses an entry for a market `known` (the markets the log names, per protocol) lacks: a
    /// misspelt reserve would otherwise change nothing, silently.
    pub fn check_markets(
        &self,
        known: &BTreeMap<Protocol, BTreeSet<Id>>,
    ) -> Result<(), ParamHistoryError> {
        for entry in &self.entries {
            let protocol = entry.setting.param.protocol;
            let market = entry.setting.market;
            if !known
                .get(&protocol)
                .zip(market)
                .is_some_and(|(markets, market)| markets.contains(&market))
            {
                return Err(ParamHistoryError::Entry {
                    file: self.file.clone(),
                    line: entry.line,
                    key: "market".to_owned(),
                    reason: format!(
                        "the log never names {} market {}",
                        protocol.name(),
                        market.map(|m| m.to_string()).unwrap_or_default(),
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ParamHistory, ParamHistoryError> {
        ParamHistory::parse(Path::new("h.toml"), text)
    }

    const ONE: &str = r#"
[[change]]
time = "2021-04-26T12:00:00Z"
protocol = "aave-v2"
market = "WBTC"
param = "liquidationBonus"
value = "1.1"
source = "https://example.org/proposal/1"
"#;

    #[test]
    fn reads_an_entry() {
        let history = parse(ONE).unwrap();
        assert_eq!(history.entries.len(), 1);
        let entry = &history.entries[0];
        assert_eq!(entry.time, Timestamp(1_619_438_400));
        assert_eq!(entry.setting.param.protocol, Protocol::AaveV2);
        assert_eq!(entry.setting.market, Some("WBTC".parse::<Id>().unwrap()));
        assert_eq!(entry.setting.value, "1.1".parse::<Fixed>().unwrap());
        assert_eq!(entry.name, "liquidationBonus");
        assert_eq!(entry.line, 3);
    }

    #[test]
    fn errors_name_line_key_and_value() {
        let bad = ONE.replace("liquidationBonus", "liquidationBogus");
        let message = parse(&bad).unwrap_err().to_string();
        assert!(
            message.starts_with("h.toml:6: change[1].param:"),
            "{message}"
        );
        assert!(message.contains("liquidationBogus"), "{message}");

        let float = ONE.replace("\"1.1\"", "1.1");
        let message = parse(&float).unwrap_err().to_string();
        assert!(
            message.starts_with("h.toml:7: change[1].value:"),
            "{message}"
        );

        let time = ONE.replace("2021-04-26T12:00:00Z", "26/04/2021");
        let message = parse(&time).unwrap_err().to_string();
        assert!(
            message.starts_with("h.toml:3: change[1].time:"),
            "{message}"
        );
        assert!(message.contains("26/04/2021"), "{message}");

        let source = ONE.replace("https://example.org/proposal/1", " ");
        assert!(parse(&source).unwrap_err().to_string().contains("source"));
        let missing = ONE.replace("source = \"https://example.org/proposal/1\"\n", "");
        assert!(parse(&missing).unwrap_err().to_string().contains("source"));
    }

    #[test]
    fn refuses_a_market_the_log_never_names() {
        let history = parse(ONE).unwrap();
        let mut known = BTreeMap::new();
        known.insert(
            Protocol::AaveV2,
            BTreeSet::from(["WETH".parse::<Id>().unwrap()]),
        );
        let message = history.check_markets(&known).unwrap_err().to_string();
        assert_eq!(
            message,
            "h.toml:3: market: the log never names aave-v2 market WBTC"
        );
        known
            .get_mut(&Protocol::AaveV2)
            .unwrap()
            .insert("WBTC".parse().unwrap());
        history.check_markets(&known).unwrap();
    }
}
