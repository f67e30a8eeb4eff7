//! `cascade ingest`: normalise exports into an event log.
//!
//! Only argument handling, the progress bar and printing live here; adapters, ordering, duplicate
//! rules and staging come from `cascade-ingest` (see `docs/ingest.md`). Exit codes: 0 when every
//! row was ingested (or the sources were already in the log), 1 when rows were quarantined with
//! `--skip-invalid`, 2 when the ingest could not run (nothing is written then).

use std::path::PathBuf;

use anyhow::{Context, bail};
use cascade_events::{Address, Id, Timestamp};
use cascade_ingest::feeds::FeedTable;
use cascade_ingest::{
    IngestOptions, Mapping, Progress, Source, SourceKind, aave_subgraph, binance_klines,
    chainlink_rounds, eth_logs, ohlcv_json, price_csv,
};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use indicatif::ProgressBar;

use crate::Outcome;

/// Arguments of `cascade ingest`.
#[derive(clap::Args)]
pub struct IngestArgs {
    /// Log directory (created if absent; several ingests into one log interleave by time).
    #[arg(long)]
    log: PathBuf,
    /// Source kind (docs/ingest.md).
    #[arg(long, value_parser = source_kinds())]
    source: SourceKind,
    /// Input files (a folder for maker-flipside); each is one source in the catalog.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// TOML mapping for `--source csv` and `--source parquet` (format in docs/ingest.md).
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// csv, parquet: read the mapping's `[[lookup]]` table NAME from FILE instead of its `path`;
    /// repeatable.
    #[arg(long = "lookup", value_name = "NAME=FILE", value_parser = parse_lookup)]
    lookups: Vec<(String, PathBuf)>,
    /// Move bad rows to the quarantine file with the reason, and ingest the rest.
    #[arg(long)]
    skip_invalid: bool,
    /// Quarantine file (JSON lines; default: `<log>.quarantine.jsonl` beside the log).
    #[arg(long)]
    quarantine: Option<PathBuf>,
    /// Chain id stamped on events whose source does not name one.
    #[arg(long, default_value_t = 1)]
    chain_id: u64,
    /// chainlink-rounds: the feed's address (default: the address in the file name).
    #[arg(long)]
    feed: Option<String>,
    /// chainlink-rounds, ohlcv-json, binance-klines (required for the last two): the asset priced.
    #[arg(long)]
    asset: Option<String>,
    /// chainlink-rounds, ohlcv-json, price-csv, binance-klines (default USDT): the unit of the
    /// price.
    #[arg(long)]
    quote: Option<String>,
    /// chainlink-rounds: decimals of the answer; ohlcv-json, price-csv, binance-klines: decimals
    /// stored.
    #[arg(long)]
    decimals: Option<u8>,
    /// chainlink-rounds, eth-logs: a TOML feeds file (`[[feed]] address, asset, quote, decimals`).
    #[arg(long)]
    feeds: Option<PathBuf>,
    /// aave-subgraph-liquidations: the reserves file (default: tokens.csv beside the export).
    #[arg(long)]
    reserves: Option<PathBuf>,
    /// eth-logs: CSV `block,timestamp` for logs without `blockTimestamp`.
    #[arg(long)]
    blocks: Option<PathBuf>,
    /// eth-logs: name a contract, `ADDRESS=KIND` (aave-v2, aave-v3, compound-v2[:SYMBOL], chainlink,
    /// maker-dog, maker-clipper[:ILK], maker-spotter, maker-osm:GEM, maker-median:ASSET,
    /// compound-oracle, aave-v2-oracle, aave-v3-oracle); repeatable. Oracle events need their
    /// emitter named.
    #[arg(long = "contract", value_parser = eth_logs::parse_contract)]
    contracts: Vec<(Address, eth_logs::Contract)>,
    /// eth-logs: a contract table, CSV `address,kind` (kinds as for --contract); --contract
    /// flags override its rows.
    #[arg(long = "contracts", value_name = "FILE")]
    contracts_file: Option<PathBuf>,
}

/// Every source kind as clap's possible values, so `--help` and errors list them all;
/// `csv-rows` and `csv-file-order` (only how catalogs record a csv source whose mapping says
/// `prices = "per-row"` or `instant_order = "file"`) are accepted but hidden, so that
/// [`check_flags`] can say to give `csv`.
fn source_kinds() -> impl TypedValueParser<Value = SourceKind> {
    let values = SourceKind::ALL.map(|kind| {
        PossibleValue::new(kind.name()).hide(matches!(
            kind,
            SourceKind::CsvRows | SourceKind::CsvFileOrder
        ))
    });
    PossibleValuesParser::new(values).try_map(|text| text.parse::<SourceKind>())
}

fn parse_lookup(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, file)) if !name.is_empty() && !file.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(file)))
        }
        _ => Err(format!("{text:?} is not NAME=FILE")),
    }
}

/// Which flags each kind reads; any other kind-specific flag is a mistake worth reporting.
fn check_flags(args: &IngestArgs) -> anyhow::Result<()> {
    let kind = args.source;
    if kind == SourceKind::CsvRows {
        bail!(
            "csv-rows is how the catalog records a csv source whose mapping says prices = \"per-row\": give --source csv"
        );
    }
    if kind == SourceKind::CsvFileOrder {
        bail!(
            "csv-file-order is how the catalog records a csv source whose mapping says instant_order = \"file\": give --source csv"
        );
    }
    let given: [(&str, bool, &[SourceKind]); 11] = [
        (
            "--mapping",
            args.mapping.is_some(),
            &[SourceKind::Csv, SourceKind::Parquet],
        ),
        (
            "--lookup",
            !args.lookups.is_empty(),
            &[SourceKind::Csv, SourceKind::Parquet],
        ),
        (
            "--feed",
            args.feed.is_some(),
            &[
                SourceKind::ChainlinkRounds,
                SourceKind::OhlcvJson,
                SourceKind::PriceCsv,
                SourceKind::BinanceKlines,
            ],
        ),
        (
            "--asset",
            args.asset.is_some(),
            &[
                SourceKind::ChainlinkRounds,
                SourceKind::OhlcvJson,
                SourceKind::BinanceKlines,
            ],
        ),
        (
            "--quote",
            args.quote.is_some(),
            &[
                SourceKind::ChainlinkRounds,
                SourceKind::OhlcvJson,
                SourceKind::PriceCsv,
                SourceKind::BinanceKlines,
            ],
        ),
        (
            "--decimals",
            args.decimals.is_some(),
            &[
                SourceKind::ChainlinkRounds,
                SourceKind::OhlcvJson,
                SourceKind::PriceCsv,
                SourceKind::BinanceKlines,
            ],
        ),
        (
            "--feeds",
            args.feeds.is_some(),
            &[SourceKind::ChainlinkRounds, SourceKind::EthLogs],
        ),
        (
            "--reserves",
            args.reserves.is_some(),
            &[SourceKind::AaveSubgraphLiquidations],
        ),
        ("--blocks", args.blocks.is_some(), &[SourceKind::EthLogs]),
        (
            "--contract",
            !args.contracts.is_empty(),
            &[SourceKind::EthLogs],
        ),
        (
            "--contracts",
            args.contracts_file.is_some(),
            &[SourceKind::EthLogs],
        ),
    ];
    for (flag, present, kinds) in given {
        if present && !kinds.contains(&kind) {
            let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
            bail!(
                "{flag} does not apply to --source {kind} (only to {})",
                names.join(", ")
            );
        }
    }
    if kind == SourceKind::BinanceKlines && args.asset.is_none() {
        bail!("--source binance-klines needs --asset (the asset the pair prices, e.g. WETH)");
    }
    if matches!(kind, SourceKind::Csv | SourceKind::Parquet) && args.mapping.is_none() {
        bail!("--source {kind} needs --mapping FILE");
    }
    Ok(())
}

fn parse_id(flag: &str, text: &Option<String>) -> anyhow::Result<Option<Id>> {
    text.as_deref()
        .map(|t| t.parse::<Id>().with_context(|| format!("{flag} {t:?}")))
        .transpose()
}

/// Builds one source per path from the flags.
fn sources(args: &IngestArgs) -> anyhow::Result<Vec<Source>> {
    let table = match &args.feeds {
        Some(path) => FeedTable::with_file(path).context("reading the feeds file")?,
        None => FeedTable::built_in(),
    };
    let asset = parse_id("--asset", &args.asset)?;
    let quote = parse_id("--quote", &args.quote)?;
    let mut mapping = args
        .mapping
        .as_deref()
        .map(Mapping::from_file)
        .transpose()
        .context("reading the mapping")?;
    if let Some(mapping) = &mut mapping {
        for (name, file) in &args.lookups {
            mapping
                .set_lookup_path(name, file)
                .context("--lookup NAME=FILE")?;
        }
    }
    let mut contracts = eth_logs::Options::default().contracts;
    if let Some(file) = &args.contracts_file {
        contracts.extend(eth_logs::read_contracts(file).context("reading --contracts")?);
    }
    contracts.extend(args.contracts.iter().cloned());
    args.paths
        .iter()
        .map(|path| {
            let path = path.clone();
            Ok(match args.source {
                SourceKind::MakerFlipside => Source::MakerFlipside { folder: path },
                SourceKind::AaveSubgraphLiquidations => Source::AaveSubgraphLiquidations {
                    path,
                    options: aave_subgraph::Options {
                        reserves: args.reserves.clone(),
                    },
                },
                SourceKind::ChainlinkRounds => Source::ChainlinkRounds {
                    path,
                    options: chainlink_rounds::Options {
                        feed: args
                            .feed
                            .as_deref()
                            .map(|f| {
                                f.parse::<Address>()
                                    .with_context(|| format!("--feed {f:?} is not an address"))
                            })
                            .transpose()?,
                        asset,
                        quote,
                        decimals: args.decimals,
                        table: table.clone(),
                    },
                },
                SourceKind::OhlcvJson => {
                    let defaults = ohlcv_json::Options::default();
                    Source::OhlcvJson {
                        path,
                        options: ohlcv_json::Options {
                            asset,
                            quote: quote.unwrap_or(defaults.quote),
                            feed: parse_id("--feed", &args.feed)?.unwrap_or(defaults.feed),
                            decimals: args.decimals.unwrap_or(defaults.decimals),
                        },
                    }
                }
                SourceKind::PriceCsv => {
                    let defaults = price_csv::Options::default();
                    Source::PriceCsv {
                        path,
                        options: price_csv::Options {
                            quote,
                            feed: parse_id("--feed", &args.feed)?.unwrap_or(defaults.feed),
                            decimals: args.decimals.unwrap_or(defaults.decimals),
                        },
                    }
                }
                SourceKind::BinanceKlines => {
                    let defaults = binance_klines::Options::for_asset(
                        asset.context("--source binance-klines needs --asset")?,
                    );
                    Source::BinanceKlines {
                        path,
                        options: binance_klines::Options {
                            quote: quote.unwrap_or(defaults.quote),
                            feed: parse_id("--feed", &args.feed)?.unwrap_or(defaults.feed),
                            decimals: args.decimals.unwrap_or(defaults.decimals),
                            ..defaults
                        },
                    }
                }
                SourceKind::EthLogs => Source::EthLogs {
                    path,
                    options: eth_logs::Options {
                        blocks: args.blocks.clone(),
                        contracts: contracts.clone(),
                        feeds: table.clone(),
                    },
                },
                SourceKind::Csv | SourceKind::CsvRows | SourceKind::CsvFileOrder => Source::Csv {
                    path,
                    mapping: mapping
                        .clone()
                        .context("--source csv needs --mapping FILE")?,
                },
                SourceKind::Parquet => Source::Parquet {
                    path,
                    mapping: mapping
                        .clone()
                        .context("--source parquet needs --mapping FILE")?,
                },
            })
        })
        .collect()
}

/// The progress bar ingest advances (`crate::talk::bar`).
struct Bar(ProgressBar);

impl Progress for Bar {
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

/// Runs `cascade ingest`.
pub fn run(args: IngestArgs) -> anyhow::Result<Outcome> {
    check_flags(&args)?;
    let sources = sources(&args)?;
    let total: u64 = sources.iter().map(Source::input_bytes).sum();
    let bar = crate::talk::bar("ingesting", total, true);
    let options = IngestOptions {
        skip_invalid: args.skip_invalid,
        quarantine: args.quarantine.clone(),
        chain_id: args.chain_id,
        ingested_at: Timestamp(chrono::Utc::now().timestamp()),
        ..IngestOptions::default()
    };
    let result = cascade_ingest::ingest(&args.log, sources, &options, &Bar(bar.clone()));
    bar.finish_and_clear();
    let summary = result.map_err(|error| {
        // A rejected row has a known way out; other errors (unreadable files) do not.
        let hint = matches!(error, cascade_ingest::IngestError::Row(_)) && !args.skip_invalid;
        let error = anyhow::Error::new(error).context(format!("ingesting into {}", args.log.display()));
        if hint {
            anyhow::anyhow!(
                "{error:#}\nhint: --skip-invalid moves rejected rows to a quarantine file with the reason and ingests the rest"
            )
        } else {
            error
        }
    })?;
    print!("{summary}");
    Ok(if summary.rejected() > 0 {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}
