//! Synthetic markets: a seeded generator that writes a lending market going through a crash as a
//! normal stream of events, for demos, tests and benchmarks at sizes real data does not reach.
//!
//! The market has `accounts` positions of one protocol (Maker, Aave v2/v3, Compound v2), or of
//! several sharing the same assets and price paths, where a share of the owners hold positions in
//! more than one ([`plan`]) and a share of the Aave and Compound positions are loops (borrow the
//! collateral asset, re-supply it, n times). Each position has one collateral asset and the
//! protocol's debt token (a loop: its collateral asset), heavy-tailed sizes and health factors
//! clustered above 1 (see `docs/synthetic.md` for the distributions). Time runs in 12-second
//! blocks from a fixed start (2024-03-01T00:00:00Z): governance parameters and first prices, then
//! positions opening during the first three quarters of the calm warm-up, then ongoing user
//! activity (deposits, borrows, repayments, withdrawals) until the end. Market prices follow the
//! [`ShockSpec`] path; the oracle publishes them on a Chainlink-like rule (deviation threshold or
//! heartbeat). A keeper liquidates accounts the published prices made unsafe (Maker: through the
//! one-hour OSM delay), a few blocks later and at most a fixed number per block, by the protocol's
//! own formula: those are the market's recorded liquidations.
//!
//! Events are produced in time order and handed to a sink one at a time, so a million-account
//! market streams into the log without being held in memory; only the positions are (about 64
//! bytes each).
//!
//! Same configuration, same events, bit for bit, on every machine: all randomness comes from
//! ChaCha8 streams keyed by the seed, and floats never reach an event unquantised (see
//! [`sample`]).
//!
//! Must never: read a clock or any entropy besides the seed, or iterate a hash map.

mod book;
mod generator;
mod market;
mod multi;
mod plan;
mod sample;
mod shock;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cascade_events::{Event, Protocol, Timestamp};

pub use market::{ASSETS, AssetInfo, BLOCK_SECS, DEFAULT_COLLATERAL, START_BLOCK, START_TIME};
pub use shock::ShockSpec;

use generator::Generator;

/// Why a synthetic market could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The `--shock` text does not follow the grammar in [`ShockSpec`].
    #[error("invalid shock spec {spec:?}: {reason}")]
    BadShock {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An asset name the generator does not know, or one that cannot be collateral.
    #[error("unknown collateral asset {name:?} (known: {known})")]
    UnknownAsset {
        /// The name as given.
        name: String,
        /// The names that would work.
        known: String,
    },
    /// The configuration is outside what the generator supports.
    #[error("invalid synthetic market: {0}")]
    Config(String),
    /// The output directory already holds a log with events: a synthetic market is written to a
    /// fresh log, so that the same seed always gives the same log.
    #[error("{} already holds a log of {events} events; synthetic markets need an empty directory", dir.display())]
    NotEmpty {
        /// The directory.
        dir: PathBuf,
        /// Events already in it.
        events: u64,
    },
    /// The log could not be opened, written or committed.
    #[error(transparent)]
    Log(#[from] cascade_log::LogError),
    /// The sink refused an event (e.g. the log writer failed).
    #[error("writing synthetic event {seq}: {source}")]
    Sink {
        /// Position of the event in the generated stream.
        seq: u64,
        /// What the sink reported.
        source: SinkError,
    },
}

/// What market to generate.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// Protocol whose rules the accounts live under (Liquity is not supported).
    pub protocol: Protocol,
    /// Number of accounts (Maker: vaults).
    pub accounts: u32,
    /// Seed of every random choice.
    pub seed: u64,
    /// Collateral assets by symbol ([`DEFAULT_COLLATERAL`] when empty).
    pub assets: Vec<String>,
    /// The crash.
    pub shock: ShockSpec,
    /// Average user events per account, counting the opening ones (Maker: open, deposit, borrow;
    /// Aave and Compound: deposit, collateral enable, borrow); the rest is ongoing activity.
    pub events_per_account: u32,
    /// Source id written in every event (the log catalog's id for this synthetic source).
    pub source: u32,
    /// Further protocols whose markets share the assets and price paths (`--protocol
    /// maker,aave-v2,compound-v2`: Maker here is `protocol`, the others are listed here). The
    /// `accounts` positions are then spread over all of them (see [`plan`]).
    pub also: Vec<Protocol>,
    /// Share of owners holding a position in every protocol of the market, parts per million.
    pub overlap_ppm: u32,
    /// Share of Aave and Compound positions opened as loops, parts per million.
    pub loops_ppm: u32,
}

impl SynthConfig {
    /// A market with the default crash, assets and activity.
    pub fn new(protocol: Protocol, accounts: u32, seed: u64) -> Self {
        Self {
            protocol,
            accounts,
            seed,
            assets: Vec::new(),
            shock: ShockSpec::default(),
            events_per_account: 5,
            source: 0,
            also: Vec::new(),
            overlap_ppm: 0,
            loops_ppm: 0,
        }
    }

    /// Every protocol of the market, `protocol` first.
    pub fn protocols(&self) -> Vec<Protocol> {
        std::iter::once(self.protocol)
            .chain(self.also.iter().copied())
            .collect()
    }
}

/// Opening events per account.
const OPENING_EVENTS: u32 = 3;

/// What a generated market contains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SynthSummary {
    /// Events written.
    pub events: u64,
    /// Events per kind, in [`EventKind::ALL`] order (kinds never written are absent).
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Accounts opened.
    pub accounts: u32,
    /// Distinct accounts liquidated at least once.
    pub accounts_liquidated: u32,
    /// Time of the first and last event.
    pub first_time: Timestamp,
    /// See `first_time`.
    pub last_time: Timestamp,
    /// Oracle price of the first collateral asset at the start and at its lowest, 8 decimals.
    pub start_price: u128,
    /// See `start_price`.
    pub low_price: u128,
    /// Symbol of the first collateral asset.
    pub lead_asset: &'static str,
    /// Positions opened as loops.
    pub looped: u32,
    /// Positions that may loop: the Aave and Compound ones (a Maker vault borrows only DAI).
    pub loopable: u32,
    /// Distinct owners of the positions.
    pub owners: u32,
    /// Owners holding positions in more than one protocol.
    pub shared_owners: u32,
}

/// Generates the market described by `config`, handing each event to `sink` in log order
/// (`seq` dense from 0).
pub fn generate(config: &SynthConfig, sink: Sink<'_>) -> Result<SynthSummary, SynthError> {
    if !config.also.is_empty() {
        return multi::generate(config, sink);
    }
    if config.overlap_ppm > 0 {
        return Err(SynthError::Config(
            "--overlap needs a market of several protocols (--protocol maker,aave-v2)".into(),
        ));
    }
    if config.protocol == Protocol::Maker && config.loops_ppm > 0 {
        return Err(SynthError::Config(
            "--loops needs Aave or Compound positions: a Maker vault borrows only DAI, which it \
             cannot hold as collateral"
                .into(),
        ));
    }
    let mut generator = Generator::new(config)?;
    generator.run(sink)?;
    let mut summary = generator.into_summary();
    summary.owners = summary.accounts;
    Ok(summary)
}

/// A synthetic market written to a log.
#[derive(Clone, Debug)]
pub struct Written {
    /// What was generated.
    pub summary: SynthSummary,
    /// The log's identity after the write (content hash over every record).
    pub identity: cascade_log::LogIdentity,
    /// The catalog id of the synthetic source.
    pub source: u32,
}

/// Generates the market described by `config` into a new log at `dir` (created if absent; it
/// must hold no events), registers it in the log's catalog as a `synth` source, and commits.
/// `ingested_at` is recorded in the catalog only: the log's bytes depend on `config` alone.
pub fn write_log(
    dir: &Path,
    config: &SynthConfig,
    ingested_at: Timestamp,
) -> Result<Written, SynthError> {
    let (mut writer, _) = cascade_log::LogWriter::open(dir, cascade_log::WriterOptions::default())?;
    if writer.next_seq() > 0 {
        return Err(SynthError::NotEmpty {
            dir: dir.to_path_buf(),
            events: writer.next_seq(),
        });
    }
    let catalog = cascade_log::Catalog::open(dir)?;
    let description = describe(config);
    let mut record = cascade_log::SourceRecord {
        id: 0,
        kind: "synth".to_owned(),
        path: description.clone(),
        content_hash: *blake3::hash(description.as_bytes()).as_bytes(),
        rows_read: 0,
        events_written: 0,
        first_time: None,
        last_time: None,
        ingested_at,
    };
    let source = catalog.add_source(record.clone())?;
    let mut config = config.clone();
    config.source = source;
    let summary = generate(&config, &mut |event: &Event| {
        writer.append(event).map(drop).map_err(SinkError::from)
    })?;
    writer.commit()?;
    record.id = source;
    record.events_written = summary.events;
    record.first_time = Some(summary.first_time);
    record.last_time = Some(summary.last_time);
    catalog.update_source(&record)?;
    drop(writer);
    let identity = catalog.identity()?;
    catalog.flush()?;
    Ok(Written {
        summary,
        identity,
        source,
    })
}

/// The configuration as one line of text: what the catalog records as the source's "path", and
/// what its content hash covers.
pub fn describe(config: &SynthConfig) -> String {
    let assets = if config.assets.is_empty() {
        DEFAULT_COLLATERAL.join(",")
    } else {
        config.assets.join(",")
    };
    let protocols: Vec<String> = config.protocols().iter().map(|p| p.to_string()).collect();
    let mut line = format!(
        "synth:{} accounts={} seed={} assets={} shock={} events-per-account={}",
        protocols.join(","),
        config.accounts,
        config.seed,
        assets,
        config.shock,
        config.events_per_account
    );
    // Written only when set, so that one-protocol markets keep the description (and catalog
    // bytes) they always had.
    if config.overlap_ppm > 0 {
        line.push_str(&format!(" overlap={}", ppm_text(config.overlap_ppm)));
    }
    if config.loops_ppm > 0 {
        line.push_str(&format!(" loops={}", ppm_text(config.loops_ppm)));
    }
    line
}

/// Parts per million as a decimal fraction: `300000` as `0.3`.
pub fn ppm_text(ppm: u32) -> String {
    let text = format!("{}.{:06}", ppm / 1_000_000, ppm % 1_000_000);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A fraction `0 ..= 1` with at most six decimals (`0.3`, `0.25`, `1`) as parts per million.
pub fn parse_ppm(text: &str) -> Result<u32, String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(fraction.is_empty() || digits(fraction)) || fraction.len() > 6 {
        return Err(format!(
            "{text:?} is not a fraction like 0.3 (at most six decimals)"
        ));
    }
    let whole: u64 = whole
        .parse()
        .map_err(|_| format!("{text:?} is too large"))?;
    let fraction: u64 = format!("{fraction:0<6}").parse().unwrap_or(0);
    let ppm = whole * 1_000_000 + fraction;
    if ppm > 1_000_000 {
        return Err(format!("{text:?} is above 1"));
    }
    Ok(ppm as u32)
}

/// What a sink may fail with.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Where generated events go, one at a time and in log order.
pub type Sink<'s> = &'s mut dyn FnMut(&Event) -> Result<(), SinkError>;

#[cfg(test)]
mod tests;
