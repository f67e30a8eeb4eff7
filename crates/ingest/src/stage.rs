//! Staging: turning the batches of any number of sources into one correctly ordered log.
//!
//! An ingest reads every new source completely first (nothing is written if any fails), then:
//! 1. skips sources whose content hash the catalog already knows (a re-ingest is a no-op);
//! 2. stamps each event with the source id the catalog will assign and sorts the new events by
//!    the total order of [`crate::order`];
//! 3. drops identical duplicates and refuses conflicting ones ([`crate::dedup`]), against the
//!    log's existing events as well as among the new ones;
//! 4. writes: when every new event (duplicates dropped) sorts after the log's last event it
//!    **appends** (one commit); otherwise it **merges** the existing events with the new ones and
//!    replaces the log atomically with `cascade_log::rewrite`, so a later ingest of an earlier
//!    time range still yields one correctly ordered log;
//! 5. registers the sources in the catalog, then writes rejected rows to the quarantine file.
//!
//! The log itself records which sources its events came from (its generation manifest, see
//! `cascade_log::Manifest`): an append first writes, durably, the manifest naming the new sources
//! and the seq range about to be appended (`LogWriter::begin_batch`); a merge writes them into the
//! new generation before the atomic switch. A process that dies (or a write that fails) half-way
//! through an append therefore leaves a batch the segments do not reach: readers refuse the log,
//! and the next ingest (or `cascade log repair`) rolls it back to the tip before it. Before
//! anything else, an ingest recovers the log that way and makes the catalog's source registry
//! equal to the manifest (rebuilding a deleted or unreadable catalog), so duplicate protection
//! never depends on the catalog having survived.
//!
//! Must never: leave part of an ingest in the log after an error, register a source whose events
//! are not all in the log, or order events by ingest order.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::OpenOptions;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cascade_events::{Event, EventKind, Id, Payload, Timestamp};
use cascade_log::{Catalog, LogError, LogReader, LogWriter, SourceRecord, WriterOptions};
use serde::Serialize;

use crate::batch::{Context, EventBuffer, SourceBatch, SourceReport};
use crate::dedup::{self, Identity};
use crate::error::IngestError;
use crate::mapping::Mapping;
use crate::order::OrderKey;
use crate::progress::Progress;
use crate::source::SourceKind;
use crate::{
    aave_subgraph, binance_klines, chainlink_rounds, eth_logs, maker_flipside, ohlcv_json,
    price_csv,
};

/// One input of an ingest: a source kind, its path and its options.
#[derive(Debug)]
pub enum Source {
    /// A Maker Flipside export folder.
    MakerFlipside {
        /// The folder.
        folder: PathBuf,
    },
    /// The Aave v2 subgraph liquidation export.
    AaveSubgraphLiquidations {
        /// `liquidations.csv`.
        path: PathBuf,
        /// Flags.
        options: aave_subgraph::Options,
    },
    /// A Chainlink rounds dump.
    ChainlinkRounds {
        /// The CSV file.
        path: PathBuf,
        /// Flags.
        options: chainlink_rounds::Options,
    },
    /// OHLCV bars as JSON.
    OhlcvJson {
        /// The JSON file.
        path: PathBuf,
        /// Flags.
        options: ohlcv_json::Options,
    },
    /// `symbol,timestamp,price` CSV.
    PriceCsv {
        /// The CSV file.
        path: PathBuf,
        /// Flags.
        options: price_csv::Options,
    },
    /// Binance kline archive CSV.
    BinanceKlines {
        /// The CSV file.
        path: PathBuf,
        /// Flags.
        options: binance_klines::Options,
    },
    /// `eth_getLogs` results.
    EthLogs {
        /// The JSON (array or lines) file.
        path: PathBuf,
        /// Flags.
        options: eth_logs::Options,
    },
    /// Any CSV through a mapping.
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// The mapping.
        mapping: Mapping,
    },
    /// A Parquet file through a mapping.
    Parquet {
        /// The Parquet file.
        path: PathBuf,
        /// The mapping.
        mapping: Mapping,
    },
}

impl Source {
    /// The source kind.
    pub fn kind(&self) -> SourceKind {
        match self {
            Source::MakerFlipside { .. } => SourceKind::MakerFlipside,
            Source::AaveSubgraphLiquidations { .. } => SourceKind::AaveSubgraphLiquidations,
            Source::ChainlinkRounds { .. } => SourceKind::ChainlinkRounds,
            Source::OhlcvJson { .. } => SourceKind::OhlcvJson,
            Source::PriceCsv { .. } => SourceKind::PriceCsv,
            Source::BinanceKlines { .. } => SourceKind::BinanceKlines,
            Source::EthLogs { .. } => SourceKind::EthLogs,
            Source::Csv { mapping, .. } | Source::Parquet { mapping, .. }
                if !mapping.prices_are_series() =>
            {
                SourceKind::CsvRows
            }
            Source::Csv { mapping, .. } | Source::Parquet { mapping, .. }
                if mapping.keeps_file_order() =>
            {
                SourceKind::CsvFileOrder
            }
            Source::Csv { .. } => SourceKind::Csv,
            Source::Parquet { .. } => SourceKind::Parquet,
        }
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        match self {
            Source::MakerFlipside { folder } => folder,
            Source::AaveSubgraphLiquidations { path, .. }
            | Source::ChainlinkRounds { path, .. }
            | Source::OhlcvJson { path, .. }
            | Source::PriceCsv { path, .. }
            | Source::BinanceKlines { path, .. }
            | Source::EthLogs { path, .. }
            | Source::Csv { path, .. }
            | Source::Parquet { path, .. } => path,
        }
    }

    /// Every file whose bytes shape the events, in a fixed order.
    fn inputs(&self) -> Result<Vec<PathBuf>, IngestError> {
        Ok(match self {
            Source::MakerFlipside { folder } => maker_flipside::input_files(folder)?.to_vec(),
            Source::AaveSubgraphLiquidations { path, options } => {
                vec![path.clone(), aave_subgraph::reserves_path(path, options)]
            }
            Source::EthLogs { path, options } => {
                let mut inputs = vec![path.clone()];
                inputs.extend(options.blocks.iter().cloned());
                inputs
            }
            Source::Csv { path, mapping } | Source::Parquet { path, mapping } => {
                let mut inputs = vec![path.clone()];
                inputs.extend(mapping.lookup_files(path));
                inputs
            }
            other => vec![other.path().to_owned()],
        })
    }

    /// The options that shape the events, as text.
    fn recipe(&self) -> String {
        match self {
            Source::MakerFlipside { .. } => String::new(),
            Source::AaveSubgraphLiquidations { .. } => String::new(),
            Source::ChainlinkRounds { options, .. } => format!("{options:?}"),
            Source::OhlcvJson { options, .. } => format!("{options:?}"),
            Source::PriceCsv { options, .. } => format!("{options:?}"),
            Source::BinanceKlines { options, .. } => format!("{options:?}"),
            Source::EthLogs { options, .. } => options.recipe(),
            Source::Csv { mapping, .. } | Source::Parquet { mapping, .. } => {
                mapping.text().to_owned()
            }
        }
    }

    /// BLAKE3 over the source kind, the options that shape its events and the bytes of every
    /// input file: the same content ingested the same way twice has the same hash.
    pub fn content_hash(&self) -> Result<[u8; 32], IngestError> {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.kind().name().as_bytes());
        hasher.update(&[0]);
        let recipe = self.recipe();
        hasher.update(&(recipe.len() as u64).to_le_bytes());
        hasher.update(recipe.as_bytes());
        for input in self.inputs()? {
            let mut file = std::fs::File::open(&input).map_err(|source| IngestError::Io {
                path: input.clone(),
                source,
            })?;
            let mut buffer = vec![0u8; 1 << 16];
            let mut length = 0u64;
            let mut file_hasher = blake3::Hasher::new();
            loop {
                let read = file.read(&mut buffer).map_err(|source| IngestError::Io {
                    path: input.clone(),
                    source,
                })?;
                if read == 0 {
                    break;
                }
                length += read as u64;
                file_hasher.update(&buffer[..read]);
            }
            hasher.update(&length.to_le_bytes());
            hasher.update(file_hasher.finalize().as_bytes());
        }
        Ok(*hasher.finalize().as_bytes())
    }

    /// Total bytes of the input files (for progress).
    pub fn input_bytes(&self) -> u64 {
        self.inputs()
            .map(|inputs| {
                inputs
                    .iter()
                    .filter_map(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// The quote asset whose USD price the engine needs to use this source's prices (a kline
    /// file quoted in USDT), if any.
    fn needs_usd_rate(&self) -> Option<Id> {
        match self {
            Source::BinanceKlines { options, .. } if options.quote != Id::name(USD) => {
                Some(options.quote)
            }
            _ => None,
        }
    }

    /// Runs the adapter.
    pub fn read(&self, context: &Context<'_>) -> Result<SourceBatch, IngestError> {
        match self {
            Source::MakerFlipside { folder } => maker_flipside::read(folder, context),
            Source::AaveSubgraphLiquidations { path, options } => {
                aave_subgraph::read(path, options, context)
            }
            Source::ChainlinkRounds { path, options } => {
                chainlink_rounds::read(path, options, context)
            }
            Source::OhlcvJson { path, options } => {
                ohlcv_json::read(std::slice::from_ref(path), options, context)
            }
            Source::PriceCsv { path, options } => {
                price_csv::read(std::slice::from_ref(path), options, context)
            }
            Source::BinanceKlines { path, options } => {
                binance_klines::read(std::slice::from_ref(path), options, context)
            }
            Source::EthLogs { path, options } => eth_logs::read(path, options, context),
            Source::Csv { path, mapping } => {
                crate::mapped_csv::read(std::slice::from_ref(path), mapping, context)
            }
            Source::Parquet { path, mapping } => {
                crate::mapped_parquet::read(std::slice::from_ref(path), mapping, context)
            }
        }
    }
}

/// How an ingest runs.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Quarantine bad rows instead of failing.
    pub skip_invalid: bool,
    /// Where quarantined rows go (default: `<log dir>.quarantine.jsonl` beside the log).
    pub quarantine: Option<PathBuf>,
    /// Chain id for sources that do not name one.
    pub chain_id: u64,
    /// Log writer options.
    pub writer: WriterOptions,
    /// When this ingest happens, as recorded in the catalog (the library reads no clock).
    pub ingested_at: Timestamp,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            skip_invalid: false,
            quarantine: None,
            chain_id: 1,
            writer: WriterOptions::default(),
            ingested_at: Timestamp(0),
        }
    }
}

/// What happened to one source.
#[derive(Debug)]
pub enum SourceStatus {
    /// Its content hash was already in the catalog: nothing read, nothing written.
    AlreadyIngested {
        /// The existing source id.
        id: u32,
    },
    /// The same source was named twice in this ingest; the first is used.
    Repeated,
    /// Read and written.
    Ingested {
        /// The source id assigned.
        id: u32,
        /// What the adapter read, rejected and noticed.
        report: SourceReport,
        /// Events written to the log.
        events_written: u64,
        /// Events dropped as identical duplicates of events in the log or earlier in the ingest.
        duplicates: u64,
        /// Earliest event time.
        first_time: Option<Timestamp>,
        /// Latest event time.
        last_time: Option<Timestamp>,
    },
}

/// One source's line in the summary.
#[derive(Debug)]
pub struct SourceOutcome {
    /// Source kind.
    pub kind: SourceKind,
    /// Path as given.
    pub path: PathBuf,
    /// What happened.
    pub status: SourceStatus,
}

/// How the log was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// No new events.
    Nothing,
    /// New events appended after the existing ones.
    Appended {
        /// Seq of the first appended event.
        from_seq: u64,
    },
    /// Existing and new events merged and the log rewritten atomically.
    Rewrote {
        /// Events the log held before.
        existing: u64,
    },
}

/// The result of an ingest, for the summary the command prints.
#[derive(Debug)]
pub struct IngestSummary {
    /// The log directory.
    pub log: PathBuf,
    /// One entry per source given, in the order given.
    pub sources: Vec<SourceOutcome>,
    /// Events written, per kind.
    pub events_written: BTreeMap<EventKind, u64>,
    /// How the log was changed.
    pub write: WriteMode,
    /// Events in the log after the ingest.
    pub log_events: u64,
    /// The quarantine file and how many rows were written to it.
    pub quarantine: Option<(PathBuf, u64)>,
    /// What recovery did before this ingest: an interrupted ingest rolled back, a catalog
    /// rebuilt (one line each).
    pub recovery: Vec<String>,
}

impl IngestSummary {
    /// Rows read by the sources ingested now.
    pub fn rows_read(&self) -> u64 {
        self.ingested().map(|(report, ..)| report.rows_read).sum()
    }

    /// Rows rejected (quarantined).
    pub fn rejected(&self) -> u64 {
        self.ingested()
            .map(|(report, ..)| report.rejected.len() as u64)
            .sum()
    }

    /// Duplicates dropped, by adapters and by the identity rule.
    pub fn duplicates(&self) -> u64 {
        self.ingested()
            .map(|(report, duplicates, ..)| report.duplicates + duplicates)
            .sum()
    }

    /// Time range of the events written now.
    pub fn time_range(&self) -> Option<(Timestamp, Timestamp)> {
        let firsts = self.ingested().filter_map(|(_, _, first, _)| first);
        let lasts = self.ingested().filter_map(|(_, _, _, last)| last);
        Some((firsts.min()?, lasts.max()?))
    }

    /// Total events written.
    pub fn total_written(&self) -> u64 {
        self.events_written.values().sum()
    }

    fn ingested(
        &self,
    ) -> impl Iterator<Item = (&SourceReport, u64, Option<Timestamp>, Option<Timestamp>)> {
        self.sources
            .iter()
            .filter_map(|outcome| match &outcome.status {
                SourceStatus::Ingested {
                    report,
                    duplicates,
                    first_time,
                    last_time,
                    ..
                } => Some((report, *duplicates, *first_time, *last_time)),
                _ => None,
            })
    }
}

impl fmt::Display for IngestSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.recovery {
            writeln!(f, "recovery: {line}")?;
        }
        for outcome in &self.sources {
            let path = outcome.path.display();
            match &outcome.status {
                SourceStatus::AlreadyIngested { id } => {
                    writeln!(f, "{path}: already ingested as source #{id}: nothing to do")?
                }
                SourceStatus::Repeated => writeln!(f, "{path}: named twice, ingested once")?,
                SourceStatus::Ingested {
                    id,
                    report,
                    events_written,
                    duplicates,
                    ..
                } => {
                    writeln!(
                        f,
                        "{path} ({}, source #{id}): {} rows read, {events_written} events written, {} duplicates dropped, {} rows rejected",
                        outcome.kind,
                        report.rows_read,
                        report.duplicates + duplicates,
                        report.rejected.len()
                    )?;
                    for (name, count) in &report.counters {
                        writeln!(f, "    {name}: {count}")?;
                    }
                    const SHOWN: usize = 5;
                    for line in report.flagged.iter().take(SHOWN) {
                        writeln!(f, "    flagged: {line}")?;
                    }
                    if report.flagged.len() > SHOWN {
                        writeln!(
                            f,
                            "    flagged: ... and {} more",
                            report.flagged.len() - SHOWN
                        )?;
                    }
                }
            }
        }
        writeln!(
            f,
            "rows read: {}; events written: {}; duplicates dropped: {}; rows rejected: {}",
            self.rows_read(),
            self.total_written(),
            self.duplicates(),
            self.rejected()
        )?;
        for (kind, count) in &self.events_written {
            writeln!(f, "    {kind}: {count}")?;
        }
        if let Some((first, last)) = self.time_range() {
            writeln!(f, "time range: {first} .. {last}")?;
        }
        match self.write {
            WriteMode::Nothing => writeln!(
                f,
                "log {}: unchanged ({} events)",
                self.log.display(),
                self.log_events
            )?,
            WriteMode::Appended { from_seq } => writeln!(
                f,
                "log {}: appended from seq {from_seq}, now {} events",
                self.log.display(),
                self.log_events
            )?,
            WriteMode::Rewrote { existing } => writeln!(
                f,
                "log {}: new events interleave with the {existing} already there: merged and rewritten atomically, now {} events",
                self.log.display(),
                self.log_events
            )?,
        }
        if let Some((path, rows)) = &self.quarantine {
            writeln!(f, "quarantine: {rows} rows written to {}", path.display())?;
        }
        Ok(())
    }
}

/// The default quarantine file of a log: `<log dir>.quarantine.jsonl` beside it.
pub fn default_quarantine(log: &Path) -> PathBuf {
    let name = log
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "log".to_owned());
    log.with_file_name(format!("{name}.quarantine.jsonl"))
}

/// Where the log stands: its generation and length, `None` before its first write.
fn log_tip(dir: &Path) -> Result<Option<(u64, u64)>, IngestError> {
    if !dir.join("CURRENT").exists() {
        return Ok(None);
    }
    let reader = LogReader::open(dir).map_err(log_error)?;
    Ok(Some((reader.generation(), reader.next_seq())))
}

/// Bytes of the log's segments (what a merge rewrites).
fn existing_log_bytes(dir: &Path) -> u64 {
    LogReader::open(dir)
        .map(|reader| {
            reader
                .segment_paths()
                .iter()
                .filter_map(|path| std::fs::metadata(path).ok())
                .map(|meta| meta.len())
                .sum()
        })
        .unwrap_or(0)
}

fn log_error(error: LogError) -> IngestError {
    IngestError::Log(Box::new(error))
}

/// Recovers the log at `dir` before an ingest: a writer open rolls back an interrupted ingest
/// (and truncates a torn tail); the catalog is opened (rebuilt when sled cannot read it) and its
/// source registry made equal to the log's manifest. Returns the catalog and what was done.
fn recover(dir: &Path, options: WriterOptions) -> Result<(Catalog, Vec<String>), IngestError> {
    let mut notes = Vec::new();
    let sources = if dir.join("CURRENT").exists() {
        let (writer, report) = LogWriter::open(dir, options).map_err(log_error)?;
        if let Some(rolled) = &report.rolled_back {
            notes.push(format!(
                "an interrupted ingest had written {} of its {} events; rolled the log back to seq {} (its {} source(s) were not registered)",
                rolled.records,
                rolled.batch.to_seq - rolled.batch.from_seq,
                rolled.batch.from_seq,
                rolled.sources.len()
            ));
        }
        writer.manifest().sources.clone()
    } else {
        // Refuses a directory whose generations hold records but whose CURRENT is gone.
        match LogReader::open(dir) {
            Err(error @ LogError::MissingCurrent { .. }) => return Err(log_error(error)),
            _ => Vec::new(),
        }
    };
    let (catalog, damage) = Catalog::open_rebuilding(dir).map_err(log_error)?;
    if let Some(damage) = damage {
        notes.push(format!(
            "the catalog was unreadable ({damage}); rebuilt it from the log (checkpoints are recomputed by the next replay)"
        ));
    }
    let known = catalog.sources().map_err(log_error)?;
    if catalog.sync_sources(&sources).map_err(log_error)? {
        notes.push(format!(
            "the catalog's source registry ({} source(s)) disagreed with the log's manifest ({}); rebuilt it from the manifest",
            known.len(),
            sources.len()
        ));
    }
    Ok((catalog, notes))
}

/// Refuses an ingest that would need more space than the file system holding `dir` has: a full
/// disk met half-way costs a rollback, and sled (the catalog) does not survive it well.
fn check_free_space(dir: &Path, needed: u64) -> Result<(), IngestError> {
    let stat = rustix::fs::statvfs(dir).map_err(|errno| IngestError::Io {
        path: dir.to_owned(),
        source: errno.into(),
    })?;
    let available = stat.f_bavail.saturating_mul(stat.f_frsize);
    // Headroom for the sparse indexes, the manifest and the catalog's own writes.
    let needed = needed + needed / 32 + (256 << 10);
    if available < needed {
        return Err(IngestError::NoSpace {
            dir: dir.to_owned(),
            needed,
            available,
        });
    }
    Ok(())
}

/// The unit the engine's protocols price collateral in; other quotes are converted to it.
const USD: &str = "USD";

/// Refuses prices quoted in a unit the engine must convert (USDT) into a log that would hold no
/// price of that unit in USD, neither already (`old`: the log's events, read whenever new
/// events have identities, as prices do) nor in this ingest: the engine converts such prices
/// through that feed and never takes USDT for USD (docs/engine.md, "Quote conversion").
fn require_usd_rates(
    sources: &[Source],
    staged: &[Staged],
    old: &[Event],
) -> Result<(), IngestError> {
    for source in staged.iter().filter(|s| !s.batch.events.is_empty()) {
        let Some(quote) = sources[source.index].needs_usd_rate() else {
            continue;
        };
        let usd = Id::name(USD);
        let is_rate = |event: &Event| matches!(&event.payload, Payload::Price(p) if p.asset == quote && p.quote == usd);
        let found = old.iter().any(is_rate)
            || staged
                .iter()
                .any(|other| other.batch.events.iter().any(|event| is_rate(&event)));
        if !found {
            return Err(IngestError::Source {
                path: sources[source.index].path().to_owned(),
                message: format!(
                    "prices quoted in {quote} need a {quote}/USD price feed in the log (the replay converts them through it): none found; ingest one first (e.g. --source price-csv {quote}_usd.csv)"
                ),
            });
        }
    }
    Ok(())
}

/// A new source after reading.
struct Staged {
    index: usize,
    kind: SourceKind,
    hash: [u8; 32],
    id: u32,
    batch: SourceBatch,
}

/// Ingests `sources` into the log at `dir` (created if absent); see the module documentation.
///
/// A first ingest that fails leaves no log behind: a directory it created is removed, and an
/// empty directory it was given is emptied again (no half-made catalog for the next command to
/// mistake for a log).
pub fn ingest(
    dir: &Path,
    sources: Vec<Source>,
    options: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestSummary, IngestError> {
    // Some(true): no directory; Some(false): an empty one; None: anything else.
    let first = match std::fs::read_dir(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Some(true),
        Ok(mut entries) => entries.next().is_none().then_some(false),
        Err(_) => None,
    };
    let result = ingest_into(dir, sources, options, progress);
    if let (Err(error), Some(created)) = (&result, first) {
        let cleaned = if created {
            std::fs::remove_dir_all(dir)
        } else {
            std::fs::read_dir(dir).and_then(|entries| {
                entries.into_iter().try_for_each(|entry| {
                    let path = entry?.path();
                    if path.is_dir() {
                        std::fs::remove_dir_all(path)
                    } else {
                        std::fs::remove_file(path)
                    }
                })
            })
        };
        if let Err(cleanup) = cleaned {
            tracing::warn!(%error, %cleanup, dir = %dir.display(), "could not remove what the failed first ingest created");
        }
    }
    result
}

fn ingest_into(
    dir: &Path,
    sources: Vec<Source>,
    options: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestSummary, IngestError> {
    std::fs::create_dir_all(dir).map_err(|source| IngestError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let (catalog, recovery) = recover(dir, options.writer)?;
    let known = catalog.sources().map_err(log_error)?;
    let mut next_id = known.iter().map(|s| s.id + 1).max().unwrap_or(0);

    // Read every new source before touching the log.
    let mut outcomes = Vec::with_capacity(sources.len());
    let mut staged: Vec<Staged> = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let hash = source.content_hash()?;
        let status = if let Some(existing) = catalog.find_source(&hash).map_err(log_error)? {
            Some(SourceStatus::AlreadyIngested { id: existing.id })
        } else if staged.iter().any(|s| s.hash == hash) {
            Some(SourceStatus::Repeated)
        } else {
            None
        };
        if status.is_none() {
            tracing::info!(kind = %source.kind(), path = %source.path().display(), "reading");
            let context = Context {
                source: next_id,
                skip_invalid: options.skip_invalid,
                chain_id: options.chain_id,
                progress,
            };
            let batch = source.read(&context)?;
            tracing::info!(
                events = batch.events.len(),
                rows = batch.report.rows_read,
                "read"
            );
            staged.push(Staged {
                index,
                kind: source.kind(),
                hash,
                id: next_id,
                batch,
            });
            next_id += 1;
        }
        outcomes.push(status);
    }

    // Order the new events: keys beside the events, a permutation sorted by key (events are a few
    // hundred bytes; moving them while sorting a million of them would dominate the ingest).
    // Per source id (ids are dense): its kind, and its place in content-hash order.
    let id_count = next_id as usize;
    let mut kinds: Vec<Option<SourceKind>> = vec![None; id_count];
    let mut hashes: Vec<([u8; 32], u32)> = Vec::new();
    for record in &known {
        if let Some(slot) = kinds.get_mut(record.id as usize) {
            *slot = record.kind.parse::<SourceKind>().ok();
        }
        hashes.push((record.content_hash, record.id));
    }
    for source in &staged {
        kinds[source.id as usize] = Some(source.kind);
        hashes.push((source.hash, source.id));
    }
    hashes.sort_unstable();
    let mut hash_order = vec![u32::MAX; id_count];
    for (order, (_, id)) in hashes.iter().enumerate() {
        if let Some(slot) = hash_order.get_mut(*id as usize) {
            *slot = order as u32;
        }
    }
    let kind_of = |event: &Event| kinds.get(event.source as usize).copied().flatten();
    let key_of = |event: &Event, position: u64| {
        let order = hash_order
            .get(event.source as usize)
            .copied()
            .unwrap_or(u32::MAX);
        OrderKey::of(event, kind_of(event), order, position)
    };
    // The events stay encoded in their batches; a global index runs across them. One pass
    // decodes each event once for its key, its kind and, where it has one, its identity's hash.
    let mut offsets: Vec<usize> = Vec::with_capacity(staged.len());
    let total: usize = staged.iter().map(|s| s.batch.events.len()).sum();
    let mut keys: Vec<OrderKey> = Vec::with_capacity(total);
    let mut event_kinds: Vec<EventKind> = Vec::with_capacity(total);
    let mut identities: Vec<(u32, u64)> = Vec::new();
    for source in &staged {
        offsets.push(keys.len());
        for (position, event) in source.batch.events.iter().enumerate() {
            if let Some(identity) = dedup::identity(&event, Some(source.kind)) {
                identities.push((keys.len() as u32, identity_hash(&identity)));
            }
            keys.push(key_of(&event, position as u64));
            event_kinds.push(event.kind());
        }
    }
    let locate = |index: u32| -> (&EventBuffer, usize) {
        let index = index as usize;
        let source = offsets.partition_point(|&offset| offset <= index) - 1;
        (&staged[source].batch.events, index - offsets[source])
    };
    let event_at = |index: u32| -> Event {
        let (buffer, local) = locate(index);
        buffer.get(local)
    };
    let order = sorted_order(&keys);

    // The existing log: its last key decides append vs merge; its identities catch duplicates.
    let tip = log_tip(dir)?;
    let existing_count = tip.map_or(0, |(_, next_seq)| next_seq);
    let reader = match tip {
        Some(_) => Some(LogReader::open(dir).map_err(log_error)?),
        None => None,
    };
    let last_key = match &reader {
        Some(reader) if existing_count > 0 => reader
            .events(existing_count - 1)
            .next()
            .transpose()
            .map_err(log_error)?
            .map(|event| key_of(&event, event.seq)),
        _ => None,
    };
    // Whether events starting with `first` can simply be appended.
    let sorts_after_log = |first: Option<&u32>| match (last_key, first) {
        (Some(last), Some(&first)) => last < keys[first as usize],
        _ => true,
    };
    // The existing events are needed to catch duplicates (when new events have identities) and
    // to merge (when the new events do not all come after them).
    let needs_identities = existing_count > 0 && !identities.is_empty();
    let mut old: Vec<Event> = Vec::new();
    let mut old_keys: Vec<OrderKey> = Vec::new();
    if let Some(reader) = &reader
        && (needs_identities || !sorts_after_log(order.first()))
    {
        for event in reader.events(0) {
            let event = event.map_err(log_error)?;
            old_keys.push(key_of(&event, event.seq));
            old.push(event);
        }
    }

    require_usd_rates(&sources, &staged, &old)?;

    // Duplicates: rank every event with an identity (existing events first, then the new ones in
    // key order), sort by identity hash, and compare within equal hashes. Sorting keeps memory
    // access sequential where a hash map of a million identities would miss the cache on every
    // lookup.
    let describe = |id: u32| {
        staged
            .iter()
            .find(|s| s.id == id)
            .map(|s| sources[s.index].path().display().to_string())
            .or_else(|| {
                known
                    .iter()
                    .find(|k| k.id == id)
                    .map(|k| format!("source #{id} {}", k.path))
            })
            .unwrap_or_else(|| format!("source #{id}"))
    };
    let old_count = old.len();
    let by_rank = |rank: usize| -> Event {
        if rank < old_count {
            old[rank].clone()
        } else {
            event_at(order[rank - old_count])
        }
    };
    let mut hashed: Vec<(u64, u32)> = Vec::with_capacity(identities.len());
    for (rank, event) in old.iter().enumerate() {
        if let Some(identity) = dedup::identity(event, kind_of(event)) {
            hashed.push((identity_hash(&identity), rank as u32));
        }
    }
    let mut rank_of = vec![0u32; order.len()];
    for (rank, &index) in order.iter().enumerate() {
        rank_of[index as usize] = (old_count + rank) as u32;
    }
    hashed.extend(
        identities
            .iter()
            .map(|&(index, hash)| (hash, rank_of[index as usize])),
    );
    drop(rank_of);
    hashed.sort_unstable();
    let mut duplicate = vec![false; order.len()];
    let mut conflict: Option<(u32, u32)> = None;
    for group in hashed.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() > 1) {
        for (i, &(_, rank)) in group.iter().enumerate() {
            let event = by_rank(rank as usize);
            let identity = dedup::identity(&event, kind_of(&event));
            let first = group[..i].iter().map(|&(_, r)| r).find(|&r| {
                let earlier = by_rank(r as usize);
                dedup::identity(&earlier, kind_of(&earlier)) == identity
            });
            // Disagreements inside the existing log are not this ingest's to judge.
            let Some(first) = first.filter(|_| rank as usize >= old_count) else {
                continue;
            };
            if dedup::same_content(&by_rank(first as usize), &event) {
                duplicate[rank as usize - old_count] = true;
            } else if conflict.is_none_or(|(_, second)| rank < second) {
                conflict = Some((first, rank));
            }
        }
    }
    if let Some((first, second)) = conflict {
        let (first, second) = (by_rank(first as usize), by_rank(second as usize));
        let identity = dedup::identity(&second, kind_of(&second))
            .map(|i| i.to_string())
            .unwrap_or_default();
        return Err(IngestError::Conflict {
            identity,
            first: serde_json::to_string(&first).unwrap_or_default(),
            first_source: describe(first.source),
            second: serde_json::to_string(&second).unwrap_or_default(),
            second_source: describe(second.source),
        });
    }
    let mut dropped: HashMap<u32, u64> = HashMap::new();
    let mut kept: Vec<u32> = Vec::with_capacity(order.len());
    for (&index, &is_duplicate) in order.iter().zip(&duplicate) {
        if is_duplicate {
            let source = &staged[offsets.partition_point(|&o| o <= index as usize) - 1];
            *dropped.entry(source.id).or_default() += 1;
        } else {
            kept.push(index);
        }
    }
    drop(duplicate);
    // Decided on what is kept: a duplicate of the log's last events does not force a merge.
    let append = sorts_after_log(kept.first());

    // Per-source results, known before writing so the pending record can carry them.
    let mut per_kind: BTreeMap<EventKind, u64> = BTreeMap::new();
    let mut written: HashMap<u32, (u64, Option<Timestamp>, Option<Timestamp>)> = HashMap::new();
    for &index in &kept {
        let (kind, time) = (event_kinds[index as usize], keys[index as usize].time);
        let source = staged[offsets.partition_point(|&o| o <= index as usize) - 1].id;
        *per_kind.entry(kind).or_default() += 1;
        let entry = written.entry(source).or_insert((0, None, None));
        entry.0 += 1;
        entry.1 = Some(entry.1.map_or(time, |t: Timestamp| t.min(time)));
        entry.2 = Some(entry.2.map_or(time, |t: Timestamp| t.max(time)));
    }
    let records: Vec<SourceRecord> = staged
        .iter()
        .map(|source| {
            let (count, first, last) = written.get(&source.id).copied().unwrap_or((0, None, None));
            SourceRecord {
                id: source.id,
                kind: source.kind.name().to_owned(),
                path: sources[source.index].path().display().to_string(),
                content_hash: source.hash,
                rows_read: source.batch.report.rows_read,
                events_written: count,
                first_time: first,
                last_time: last,
                ingested_at: options.ingested_at,
            }
        })
        .collect();

    // Write: the manifest names the new sources together with the events (see the module
    // documentation), so the catalog's registration afterwards is derived, never the only record.
    drop(reader);
    let framed = |index: &u32| {
        let (buffer, local) = locate(*index);
        buffer.raw(local).len() as u64 + cascade_log::format::RECORD_HEADER_LEN as u64
    };
    let new_bytes: u64 = kept.iter().map(framed).sum();
    let (write, log_events) = if staged.is_empty() {
        (WriteMode::Nothing, existing_count)
    } else if append || kept.is_empty() {
        check_free_space(dir, new_bytes)?;
        let (mut writer, _) = LogWriter::open(dir, options.writer).map_err(log_error)?;
        writer
            .begin_batch(records.clone(), kept.len() as u64)
            .map_err(log_error)?;
        for &index in &kept {
            let (buffer, local) = locate(index);
            writer.append_raw(buffer.raw(local)).map_err(log_error)?;
        }
        writer.commit().map_err(log_error)?;
        let mode = if kept.is_empty() {
            WriteMode::Nothing
        } else {
            WriteMode::Appended {
                from_seq: existing_count,
            }
        };
        (mode, writer.next_seq())
    } else {
        check_free_space(dir, new_bytes + existing_log_bytes(dir))?;
        // A log written by another tool may not follow the ordering rule: impose it.
        let old_order = sorted_order(&old_keys);
        let merged = merge(&old, &old_keys, &old_order, &event_at, &keys, &kept);
        let count = cascade_log::rewrite_registering(dir, merged, options.writer, records.clone())
            .map_err(log_error)?;
        (
            WriteMode::Rewrote {
                existing: existing_count,
            },
            count,
        )
    };
    let mut registry = known.clone();
    registry.extend(records.iter().cloned());
    catalog.sync_sources(&registry).map_err(log_error)?;

    // Quarantine.
    let quarantine_path = options
        .quarantine
        .clone()
        .unwrap_or_else(|| default_quarantine(dir));
    let rejected: u64 = staged
        .iter()
        .map(|s| s.batch.report.rejected.len() as u64)
        .sum();
    let quarantine = if rejected > 0 {
        write_quarantine(&quarantine_path, &staged, &sources)?;
        Some((quarantine_path, rejected))
    } else {
        None
    };

    let mut staged_by_index: HashMap<usize, Staged> =
        staged.into_iter().map(|s| (s.index, s)).collect();
    let sources = sources
        .iter()
        .zip(outcomes)
        .enumerate()
        .map(|(index, (source, status))| {
            let status = status.unwrap_or_else(|| match staged_by_index.remove(&index) {
                Some(staged) => {
                    let (events_written, first_time, last_time) =
                        written.get(&staged.id).copied().unwrap_or((0, None, None));
                    SourceStatus::Ingested {
                        id: staged.id,
                        events_written,
                        duplicates: dropped.get(&staged.id).copied().unwrap_or(0),
                        first_time,
                        last_time,
                        report: staged.batch.report,
                    }
                }
                None => SourceStatus::Repeated,
            });
            SourceOutcome {
                kind: source.kind(),
                path: source.path().to_owned(),
                status,
            }
        })
        .collect();
    Ok(IngestSummary {
        log: dir.to_owned(),
        sources,
        events_written: per_kind,
        write,
        log_events,
        quarantine,
        recovery,
    })
}

/// The permutation that sorts `keys` (the identity when they are sorted already, as they are
/// for a single time-ordered file).
fn sorted_order(keys: &[OrderKey]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..keys.len() as u32).collect();
    if !keys.is_sorted() {
        order.sort_unstable_by(|&a, &b| keys[a as usize].cmp(&keys[b as usize]));
    }
    order
}

/// Merges the existing events (in `old_order`) with the kept new ones (in `kept`), both sorted by
/// key, into one sequence; keys are unique, so ties cannot occur.
fn merge<'a>(
    old: &'a [Event],
    old_keys: &'a [OrderKey],
    old_order: &'a [u32],
    new: &'a dyn Fn(u32) -> Event,
    new_keys: &'a [OrderKey],
    kept: &'a [u32],
) -> impl Iterator<Item = Event> + 'a {
    let mut a = old_order.iter().map(|&i| i as usize).peekable();
    let mut b = kept.iter().copied().peekable();
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(&x), Some(&y)) if old_keys[x] <= new_keys[y as usize] => {
            a.next().map(|i| old[i].clone())
        }
        (Some(_), Some(_)) | (None, Some(_)) => b.next().map(new),
        (Some(_), None) => a.next().map(|i| old[i].clone()),
        (None, None) => None,
    })
}

/// The 64-bit hash of an identity, for grouping candidates before comparing them.
fn identity_hash(identity: &Identity) -> u64 {
    let mut hasher = FastHasher::default();
    identity.hash(&mut hasher);
    hasher.finish()
}

/// A fast, non-cryptographic hasher for grouping identities (the Fx multiply-rotate scheme): the
/// inputs are local files, so hash flooding is not a concern, and equal hashes are always
/// confirmed by comparing the identities.
#[derive(Default)]
struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// One line of the quarantine file.
#[derive(Serialize)]
struct QuarantineLine<'a> {
    source: String,
    kind: &'static str,
    #[serde(flatten)]
    row: &'a crate::error::RowError,
}

fn write_quarantine(path: &Path, staged: &[Staged], sources: &[Source]) -> Result<(), IngestError> {
    let io = |source| IngestError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    let mut text = String::new();
    for source in staged {
        for row in &source.batch.report.rejected {
            let line = QuarantineLine {
                source: sources[source.index].path().display().to_string(),
                kind: source.kind.name(),
                row,
            };
            text.push_str(
                &serde_json::to_string(&line)
                    .map_err(|error| IngestError::Usage(error.to_string()))?,
            );
            text.push('\n');
        }
    }
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}
