//! The run file's compact binary form (`docs/run-format.md`, "Binary form"), for runs too large
//! to be read comfortably as text: the bincode layout written by `wincode` (as events are), about
//! a third of the JSON size, written and read a record at a time.
//!
//! Layout: the 8 bytes [`MAGIC`], the layout version [`BINARY_VERSION`] (u32, little-endian), the
//! run without its nine lists plus how many records each holds (one `wincode` value), then every
//! record of the lists in schema order ([`crate::lines::LIST_KEYS`]), each one `wincode` value. The counts make a truncated file an error
//! instead of a shorter run, and bytes after the last record are refused. Amounts keep their
//! exact integer and decimals, so a run read back writes the same JSON.

use std::io::{self, Write};

use wincode::io::std_write::WriteAdapter;
use wincode::{SchemaRead, SchemaWrite};

use crate::header::{Counts, Header};
use crate::{
    CounterfactualReport, LogInfo, Run, RunConfig, ScenarioInfo, SnapshotDifferences, Totals,
    Window, lines::LIST_KEYS,
};

/// The first bytes of a binary run file.
pub const MAGIC: [u8; 8] = *b"CASCRUN\0";

/// Version of the binary layout. It is the layout of the model's types, so it changes with any
/// change of their fields, even one the JSON form reads unchanged (an added optional key): bump
/// it then, and rewrite the golden bytes (`binary_golden.bin`). A file of another version is
/// refused with a hint to re-run or to use the JSON form.
pub const BINARY_VERSION: u32 = 5;

/// Why bytes are not a binary run file.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    /// Not a binary run file at all.
    #[error("not a binary run file (it does not start with the cascade run magic bytes)")]
    NotBinary,
    /// A layout this version does not read.
    #[error(
        "binary run file of layout version {found}; this cascade reads version {BINARY_VERSION} (replay again, or write the JSON form, `--out run.json`, which every version reads)"
    )]
    Version {
        /// The file's version.
        found: u32,
    },
    /// The file ends early or holds bytes that do not decode.
    #[error("{part}: {reason} (truncated or damaged file)")]
    Damaged {
        /// Which part failed (`header`, `timeline record 7 of 9`).
        part: String,
        /// What failed.
        reason: String,
    },
    /// Bytes after the last announced record.
    #[error("{0} bytes after the last record (damaged file, or two files joined)")]
    Trailing(usize),
}

/// The run without its lists, and how many records of each list follow: the owned twin of
/// [`Header`], read back from the same layout.
#[derive(SchemaRead)]
struct OwnedHeader {
    schema_version: u32,
    log: LogInfo,
    window: Window,
    scenario: Option<ScenarioInfo>,
    config: RunConfig,
    state_hash: String,
    totals: Totals,
    snapshot_differences: SnapshotDifferences,
    counterfactual: Option<CounterfactualReport>,
    lines: Counts,
}

fn io_error(error: wincode::WriteError) -> io::Error {
    match error {
        wincode::WriteError::Io(wincode::io::WriteError::Io(error)) => error,
        other => io::Error::other(other.to_string()),
    }
}

/// Writes `run` in binary form to `out`, a record at a time.
pub fn write_binary<W: Write>(run: &Run, mut out: W) -> io::Result<()> {
    out.write_all(&MAGIC)?;
    out.write_all(&BINARY_VERSION.to_le_bytes())?;
    let mut writer = WriteAdapter::new(&mut out);
    let header = Header::of(run);
    wincode::serialize_into(&mut writer, &header).map_err(io_error)?;
    records(&mut writer, &run.liquidations)?;
    records(&mut writer, &run.unsafe_unliquidated)?;
    records(&mut writer, &run.timeline)?;
    records(&mut writer, &run.health_distribution)?;
    records(&mut writer, &run.health_over_time)?;
    records(&mut writer, &run.leverage_over_time)?;
    records(&mut writer, &run.liquidation_ladder)?;
    records(&mut writer, &run.overlap)?;
    records(&mut writer, &run.accounts)?;
    wincode::io::Writer::finish(&mut writer).map_err(|e| io_error(e.into()))?;
    out.flush()
}

fn records<W: wincode::io::Writer, T>(writer: &mut W, items: &[T]) -> io::Result<()>
where
    T: SchemaWrite<wincode::config::DefaultConfig, Src = T>,
{
    for item in items {
        wincode::serialize_into(&mut *writer, item).map_err(io_error)?;
    }
    Ok(())
}

/// The run in binary form.
pub fn to_binary(run: &Run) -> Vec<u8> {
    let mut out = Vec::new();
    write_binary(run, &mut out).expect("writing to memory does not fail");
    out
}

/// Whether `bytes` start like a binary run file.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Reads a binary run file.
pub fn read_binary(bytes: &[u8]) -> Result<Run, BinaryError> {
    let body = bytes.strip_prefix(&MAGIC).ok_or(BinaryError::NotBinary)?;
    let Some((version, mut rest)) = body.split_first_chunk::<4>() else {
        return Err(BinaryError::Damaged {
            part: "layout version".to_owned(),
            reason: "the file ends inside it".to_owned(),
        });
    };
    let found = u32::from_le_bytes(*version);
    if found != BINARY_VERSION {
        return Err(BinaryError::Version { found });
    }
    let header: OwnedHeader =
        wincode::deserialize_from(&mut rest).map_err(|error| BinaryError::Damaged {
            part: "header".to_owned(),
            reason: error.to_string(),
        })?;
    let counts = header.lines;
    let mut run = Run {
        schema_version: header.schema_version,
        log: header.log,
        window: header.window,
        scenario: header.scenario,
        config: header.config,
        state_hash: header.state_hash,
        totals: header.totals,
        snapshot_differences: header.snapshot_differences,
        liquidations: read_list(&mut rest, 0, counts.liquidations)?,
        unsafe_unliquidated: Vec::new(),
        timeline: Vec::new(),
        health_distribution: Vec::new(),
        health_over_time: Vec::new(),
        leverage_over_time: Vec::new(),
        liquidation_ladder: Vec::new(),
        overlap: Vec::new(),
        accounts: Vec::new(),
        counterfactual: header.counterfactual,
    };
    run.unsafe_unliquidated = read_list(&mut rest, 1, counts.unsafe_unliquidated)?;
    run.timeline = read_list(&mut rest, 2, counts.timeline)?;
    run.health_distribution = read_list(&mut rest, 3, counts.health_distribution)?;
    run.health_over_time = read_list(&mut rest, 4, counts.health_over_time)?;
    run.leverage_over_time = read_list(&mut rest, 5, counts.leverage_over_time)?;
    run.liquidation_ladder = read_list(&mut rest, 6, counts.liquidation_ladder)?;
    run.overlap = read_list(&mut rest, 7, counts.overlap)?;
    run.accounts = read_list(&mut rest, 8, counts.accounts)?;
    if !rest.is_empty() {
        return Err(BinaryError::Trailing(rest.len()));
    }
    Ok(run)
}

fn read_list<T>(rest: &mut &[u8], list: usize, count: u64) -> Result<Vec<T>, BinaryError>
where
    T: wincode::SchemaReadOwned<wincode::config::DefaultConfig, Dst = T>,
{
    // Every record takes at least one byte: a count beyond the bytes left is damage, found
    // before it reserves memory for records that are not there.
    if count > rest.len() as u64 {
        return Err(BinaryError::Damaged {
            part: format!("{} records", LIST_KEYS[list]),
            reason: format!(
                "the header announces {count}, the file has {} bytes left",
                rest.len()
            ),
        });
    }
    let mut items = Vec::with_capacity(count as usize);
    for index in 0..count {
        let item = wincode::deserialize_from(&mut *rest).map_err(|error| BinaryError::Damaged {
            part: format!("{} record {} of {count}", LIST_KEYS[list], index + 1),
            reason: error.to_string(),
        })?;
        items.push(item);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use cascade_events::{Fixed, Id, Protocol, Timestamp, U256};

    use super::*;
    use crate::Quantity;
    use crate::scenario::{
        CorrelationGroup, ImpactModel, ImpactSpec, LeverageRules, LiquidatorPolicy, Liquidity,
        MarketSel, OracleRule, Override, PriceSource, PriceTransform, ScenarioWindow,
        TransformKind, UpdateRule,
    };

    fn fixed(text: &str) -> Fixed {
        text.parse().unwrap()
    }

    /// The sample run under a scenario with one item of every section.
    fn counterfactual_run() -> Run {
        let wad = |value: u64| Quantity::new(U256::from(value), 2);
        let mut run = crate::sample::run();
        run.scenario = Some(ScenarioInfo {
            baseline: false,
            changes: vec!["maker ETH-B mat = 1.5".to_owned()],
            description: Some("every section".to_owned()),
            impact: vec![ImpactSpec {
                asset: Id::name("ETH"),
                half_life: 600,
                model: ImpactModel::ConstantProduct {
                    fee: wad(3),
                    liquidity: Liquidity::Series {
                        count: 2,
                        interval: 3600,
                        source: "pool.csv".to_owned(),
                        start: Timestamp(1_622_500_000),
                    },
                },
            }],
            label: "ETH-B mat 1.5".to_owned(),
            leverage: LeverageRules {
                correlation: Some(vec![CorrelationGroup {
                    assets: vec!["WETH".to_owned(), "stETH".to_owned()],
                    name: "ETH".to_owned(),
                }]),
                max_loops: Some(1),
                looped_threshold_cut_bps: Some(500),
            },
            liquidator: LiquidatorPolicy {
                assumed_bonus: wad(5),
                block_time: 12,
                gas_cost: wad(0),
                keeper_discount: wad(0),
                latency: 30,
                max_per_block: Some(2),
                min_profit: wad(100),
                pick: "best-bonus".to_owned(),
            },
            name: "mat".to_owned(),
            oracle: vec![OracleRule {
                asset: Some(Id::name("ETH")),
                delay: Some(3600),
                from: None,
                protocol: Some(Protocol::Maker),
                source: Some(PriceSource::Asset(Id::name("STETH"))),
                stale_after: None,
                update: Some(UpdateRule {
                    deviation: Some(fixed("0.005")),
                    heartbeat: Some(3600),
                }),
            }],
            origin: "mat.toml".to_owned(),
            overrides: vec![Override {
                from: Some(Timestamp(1_622_510_000)),
                market: MarketSel::One(Id::name("ETH-B")),
                param: "mat".to_owned(),
                protocol: Protocol::Maker,
                value: fixed("1.5"),
            }],
            prices: vec![PriceTransform {
                asset: Id::name("ETH"),
                from: None,
                to: Some(Timestamp(1_622_600_000)),
                kind: TransformKind::ScaleDrawdown {
                    factor: fixed("2"),
                    reference: None,
                },
            }],
            window: ScenarioWindow {
                from: Some(Timestamp(1_622_400_000)),
                to: None,
            },
        });
        run
    }

    #[test]
    fn a_run_reads_back_whole_and_writes_the_same_json() {
        for run in [crate::sample::run(), counterfactual_run()] {
            let bytes = to_binary(&run);
            assert!(is_binary(&bytes));
            let back = read_binary(&bytes).unwrap();
            assert_eq!(back, run);
            assert_eq!(back.to_json(), run.to_json());
            assert_eq!(crate::lines::read(&bytes).unwrap(), run);
            assert_eq!(
                crate::lines::parse(&bytes).unwrap(),
                serde_json::to_value(&run).unwrap()
            );
            assert!(bytes.len() < run.to_json().len());
        }
    }

    /// The layout is pinned: a change of the model's fields changes these bytes. Bump
    /// [`BINARY_VERSION`] then, and rewrite the file with `CASCADE_UPDATE_GOLDEN=1`.
    #[test]
    fn the_binary_layout_is_pinned_by_golden_bytes() {
        let bytes = to_binary(&counterfactual_run());
        assert_eq!(&bytes[..12], b"CASCRUN\0\x05\0\0\0");
        let hex: String = bytes
            .chunks(32)
            .map(|chunk| {
                let mut line: String = chunk.iter().map(|b| format!("{b:02x}")).collect();
                line.push('\n');
                line
            })
            .collect();
        crate::golden::assert_golden(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/binary-run.hex"),
            hex.as_bytes(),
        );
    }

    #[test]
    fn a_truncated_file_is_refused_at_every_length() {
        let bytes = to_binary(&counterfactual_run());
        for length in 0..bytes.len() {
            let error = crate::lines::read(&bytes[..length]);
            assert!(error.is_err(), "{length} of {} bytes read", bytes.len());
        }
        let error = read_binary(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(
            error.to_string().starts_with("accounts record 1 of 1: "),
            "{error}"
        );
        assert!(error.to_string().ends_with("(truncated or damaged file)"));
    }

    #[test]
    fn another_version_and_trailing_bytes_are_refused() {
        let mut bytes = to_binary(&crate::sample::run());
        let mut joined = bytes.clone();
        joined.extend_from_slice(&bytes[..3]);
        assert_eq!(
            read_binary(&joined).unwrap_err().to_string(),
            "3 bytes after the last record (damaged file, or two files joined)"
        );
        bytes[8] = 9;
        let error = read_binary(&bytes).unwrap_err().to_string();
        assert!(
            error.starts_with("binary run file of layout version 9; this cascade reads version 5"),
            "{error}"
        );
        assert!(matches!(
            read_binary(b"{\"schema_version\": 3}"),
            Err(BinaryError::NotBinary)
        ));
    }
}
