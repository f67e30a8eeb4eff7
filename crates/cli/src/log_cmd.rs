//! `cascade log verify|stats|cat|repair|upgrade`: inspect, repair and upgrade an event log.
//!
//! Only argument handling and printing live here; checks and statistics come from `cascade-log`.
//! Damage to the log is a finding (exit 1) reported with file and offset, by `stats` and `cat` too
//! (on stderr, their stdout being statistics and events): a torn tail they read around is still
//! damage. Anything that stops the command from running (no such directory, I/O failure) is an
//! error (exit 2).

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use cascade_events::{Event, Payload, Timestamp};
use cascade_log::{
    Catalog, LogError, LogReader, LogSummary, Period, PeriodCounts, SourceRecord, TornTail,
    counts_by_period, verify,
};

use crate::Outcome;

/// Arguments of `cascade log`.
#[derive(clap::Args)]
pub struct LogArgs {
    #[command(subcommand)]
    command: LogCommand,
}

#[derive(clap::Subcommand)]
enum LogCommand {
    /// Check every segment header, record checksum and sequence number; exit 1 on damage.
    Verify {
        /// Log directory.
        dir: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Summarise the log: events per kind, time range, assets, protocols, sources; exit 1 on
    /// damage (reported on stderr).
    Stats {
        /// Log directory.
        dir: PathBuf,
        /// Print the statistics as JSON.
        #[arg(long)]
        json: bool,
        /// Also count events by kind per UTC day or hour.
        #[arg(long, value_name = "PERIOD")]
        by: Option<PeriodArg>,
    },
    /// Print events, one per line; exit 1 on damage (reported on stderr).
    Cat {
        /// Log directory.
        dir: PathBuf,
        /// First sequence number to print.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Print at most this many events.
        #[arg(long)]
        limit: Option<u64>,
        /// Print JSON lines (the events' serde form) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild what can be rebuilt (CURRENT, the manifest, the catalog), roll back an
    /// interrupted ingest, and say what was done; exit 1 when damage remains.
    Repair {
        /// Log directory.
        dir: PathBuf,
    },
    /// Rewrite a log of segment format version 1 in the current format (atomically).
    Upgrade {
        /// Log directory.
        dir: PathBuf,
    },
}

/// Runs a `cascade log` subcommand.
pub fn run(args: LogArgs) -> anyhow::Result<Outcome> {
    let (LogCommand::Verify { dir, .. }
    | LogCommand::Stats { dir, .. }
    | LogCommand::Cat { dir, .. }
    | LogCommand::Repair { dir }
    | LogCommand::Upgrade { dir }) = &args.command;
    crate::existing_log(dir)?;
    let what = match &args.command {
        LogCommand::Verify { .. } => "verifying every segment and record of",
        LogCommand::Stats { .. } => "summarising",
        LogCommand::Cat { .. } => "printing the events of",
        LogCommand::Repair { .. } => "repairing",
        LogCommand::Upgrade { .. } => "upgrading",
    };
    tracing::info!("{what} the log at {}", dir.display());
    let result = match args.command {
        LogCommand::Verify { dir, json } => verify_cmd(&dir, json),
        LogCommand::Stats { dir, json, by } => stats_cmd(&dir, json, by),
        LogCommand::Cat {
            dir,
            from,
            limit,
            json,
        } => cat_cmd(&dir, from, limit, json),
        LogCommand::Repair { dir } => repair_cmd(&dir),
        LogCommand::Upgrade { dir } => upgrade_cmd(&dir),
    };
    match result {
        Err(error) if is_broken_pipe(&error) => Ok(Outcome::Clean),
        other => other,
    }
}

/// `cascade log cat | head` closes the pipe early; that is not a failure.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// Prints a finding about damage and turns it into the findings outcome; other errors pass.
/// `verify` prints it on stdout (its report), the others on stderr.
fn finding(error: LogError, json: bool, on_stdout: bool) -> anyhow::Result<Outcome> {
    if !error.is_corruption() {
        return Err(error.into());
    }
    if json {
        let value = serde_json::json!({ "ok": false, "corruption": error.to_string() });
        println!("{value}");
    } else if matches!(error, LogError::UnfinishedIngest { .. }) {
        if on_stdout {
            println!("INTERRUPTED: {error}");
        } else {
            eprintln!("INTERRUPTED: {error}");
        }
    } else if on_stdout {
        println!("CORRUPT: {error}");
    } else {
        eprintln!("CORRUPT: {error}");
    }
    Ok(Outcome::Findings)
}

/// After `stats` or `cat` read what is readable: a torn tail is damage they must not pass over
/// in silence.
fn torn_finding(reader: &LogReader) -> Outcome {
    match reader.torn_tail() {
        Some(torn) => {
            eprintln!("TORN: {}", torn_text(torn));
            Outcome::Findings
        }
        None => Outcome::Clean,
    }
}

fn torn_text(torn: &TornTail) -> String {
    format!(
        "{}: torn tail at byte offset {} ({} bytes, {}); the next writer open truncates it",
        torn.segment.display(),
        torn.offset,
        torn.bytes,
        torn.problem
    )
}

fn repair_cmd(dir: &Path) -> anyhow::Result<Outcome> {
    let report = cascade_log::repair(dir)
        .with_context(|| format!("repairing the log at {}", dir.display()))?;
    print!("{report}");
    Ok(if report.problems.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

fn upgrade_cmd(dir: &Path) -> anyhow::Result<Outcome> {
    // The catalog's sources become the new generation's manifest (version-1 logs had none).
    let sources = Catalog::open(dir)
        .and_then(|catalog| catalog.sources())
        .with_context(|| format!("reading the sources of {} from its catalog", dir.display()))?;
    let records = cascade_log::upgrade(dir, sources.clone())
        .with_context(|| format!("upgrading the log at {}", dir.display()))?;
    println!(
        "{}: rewrote {records} records in segment format version {} with {} source(s) in its manifest",
        dir.display(),
        cascade_log::format::FORMAT_VERSION,
        sources.len()
    );
    Ok(Outcome::Clean)
}

/// The catalog's record of a longer log in the same generation than the segments hold: records
/// were lost (a deleted last segment, a truncated file). `None` when it agrees or is unavailable.
fn catalog_tip_finding(dir: &Path, generation: u64, events: u64) -> Option<String> {
    if !dir.join("catalog").is_dir() {
        return None;
    }
    let catalog = Catalog::open(dir).ok()?;
    let (recorded_generation, recorded) = catalog.recorded_tip().ok()??;
    (recorded_generation == generation && recorded > events).then(|| {
        format!(
            "{}: the catalog recorded {recorded} events in generation {generation}, the segments hold {events}: records are missing",
            dir.display()
        )
    })
}

fn verify_cmd(dir: &Path, json: bool) -> anyhow::Result<Outcome> {
    let report = match verify(dir) {
        Ok(report) => report,
        Err(error) => return finding(error, json, true),
    };
    if let Some(lost) = catalog_tip_finding(dir, report.generation, report.records) {
        if json {
            println!("{}", serde_json::json!({ "ok": false, "corruption": lost }));
        } else {
            println!("CORRUPT: {lost}");
        }
        return Ok(Outcome::Findings);
    }
    let outcome = if report.torn_tail.is_some() {
        Outcome::Findings
    } else {
        Outcome::Clean
    };
    if json {
        let value = serde_json::json!({
            "ok": report.torn_tail.is_none(),
            "generation": report.generation,
            "segments": report.segments.len(),
            "events": report.records,
            "payload_bytes": report.payload_bytes,
            "identity": report.identity,
            "torn_tail": report.torn_tail.as_ref().map(torn_text),
        });
        println!("{value}");
        return Ok(outcome);
    }
    println!(
        "{}: {} events in {} segments (generation {}), {} payload bytes",
        dir.display(),
        report.records,
        report.segments.len(),
        report.generation,
        report.payload_bytes
    );
    println!("identity: blake3 {}", report.identity.hash_hex());
    match &report.torn_tail {
        Some(torn) => println!("TORN: {}", torn_text(torn)),
        None => println!("ok: every record checked"),
    }
    Ok(outcome)
}

/// `--by`: the period events are counted in.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum PeriodArg {
    /// UTC calendar days.
    Day,
    /// UTC hours.
    Hour,
}

impl PeriodArg {
    fn period(self) -> Period {
        match self {
            PeriodArg::Day => Period::Day,
            PeriodArg::Hour => Period::Hour,
        }
    }

    fn name(self) -> &'static str {
        match self {
            PeriodArg::Day => "day",
            PeriodArg::Hour => "hour",
        }
    }
}

fn stats_cmd(dir: &Path, json: bool, by: Option<PeriodArg>) -> anyhow::Result<Outcome> {
    let reader = match LogReader::open(dir) {
        Ok(reader) => reader,
        Err(error) => return finding(error, json, false),
    };
    // The catalog may be held by a running writer process (sled locks it): then compute the
    // statistics straight from the segments and say the sources are unknown.
    let (summary, sources) = match Catalog::open(dir) {
        Ok(catalog) => {
            let summary = catalog.refresh(&reader);
            (
                summary,
                Some(catalog.sources().context("reading the catalog's sources")?),
            )
        }
        Err(error) => {
            eprintln!("warning: catalog unavailable ({error}); statistics read from the segments");
            (LogSummary::of(&reader), None)
        }
    };
    // The catalog's stored summary was computed when the log was written: every record is
    // read again (checksums and identity, no decoding) so damage since then is reported, and
    // a summary for other content is not shown.
    let checked = summary.and_then(|summary| {
        let identity = reader.identity()?;
        if summary.identity == identity {
            Ok(summary)
        } else {
            LogSummary::of(&reader)
        }
    });
    let summary = match checked {
        Ok(summary) => summary,
        Err(error) => return finding(error, json, false),
    };
    let periods = match by
        .map(|by| counts_by_period(&reader, by.period()))
        .transpose()
    {
        Ok(periods) => periods,
        Err(error) => return finding(error, json, false),
    };
    if json {
        let mut value =
            serde_json::to_value(&summary.stats).context("serialising the statistics")?;
        value["log"] = serde_json::json!(dir);
        value["identity"] = serde_json::to_value(summary.identity)?;
        value["sources"] = serde_json::to_value(&sources)?;
        if let (Some(by), Some(periods)) = (by, &periods) {
            let rows: Vec<serde_json::Value> = periods
                .iter()
                .map(|(start, counts)| {
                    serde_json::json!({
                        "start": start.to_rfc3339(),
                        "events": counts.events,
                        "by_kind": counts.by_kind,
                    })
                })
                .collect();
            value["by_period"] = serde_json::json!({ "period": by.name(), "periods": rows });
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_stats(dir, &summary, sources.as_deref());
        if let (Some(by), Some(periods)) = (by, &periods) {
            print_periods(by, periods);
        }
    }
    Ok(torn_finding(&reader))
}

fn print_periods(by: PeriodArg, periods: &BTreeMap<Timestamp, PeriodCounts>) {
    println!("by {}", by.name());
    for (start, counts) in periods {
        let kinds: Vec<String> = counts
            .by_kind
            .iter()
            .map(|(kind, count)| format!("{} {count}", kind.name()))
            .collect();
        println!(
            "  {}  {:>8} events: {}",
            start.to_rfc3339(),
            counts.events,
            kinds.join(", ")
        );
    }
}

fn print_stats(dir: &Path, summary: &LogSummary, sources: Option<&[SourceRecord]>) {
    let stats = &summary.stats;
    let time = |t: Option<cascade_events::Timestamp>| t.map_or("-".into(), |t| t.to_rfc3339());
    let seq = |s: Option<u64>| s.map_or("-".into(), |s| s.to_string());
    println!("log         {}", dir.display());
    println!("events      {}", stats.events);
    println!(
        "seq         {} .. {}",
        seq(stats.first_seq),
        seq(stats.last_seq)
    );
    println!(
        "time        {} .. {}",
        time(stats.first_time),
        time(stats.last_time)
    );
    println!("identity    blake3 {}", summary.identity.hash_hex());
    if stats.out_of_order > 0 {
        println!(
            "ORDER       {} events earlier than their predecessor",
            stats.out_of_order
        );
    }
    println!("by kind");
    for (kind, count) in &stats.by_kind {
        println!("  {:<18} {count}", kind.name());
    }
    println!("protocols");
    for (protocol, count) in &stats.protocols {
        let markets: Vec<String> = stats
            .markets
            .get(protocol)
            .map(|m| m.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        println!(
            "  {:<18} {count} events; markets: {}",
            protocol.name(),
            markets.join(", ")
        );
    }
    let assets: Vec<String> = stats.assets.iter().map(ToString::to_string).collect();
    println!("assets      {}", assets.join(", "));
    match sources {
        None => println!("sources     (catalog unavailable)"),
        Some(sources) => {
            println!("sources     {}", sources.len());
            for source in sources {
                let events = stats.by_source.get(&source.id).copied().unwrap_or(0);
                println!(
                    "  #{:<3} {:<26} {} ({} events in log)",
                    source.id, source.kind, source.path, events
                );
            }
        }
    }
}

fn cat_cmd(dir: &Path, from: u64, limit: Option<u64>, json: bool) -> anyhow::Result<Outcome> {
    let reader = match LogReader::open(dir) {
        Ok(reader) => reader,
        // Events go to stdout; a finding there would read as one.
        Err(error) => return finding(error, false, false),
    };
    tracing::debug!(
        "events from seq {from}, at most {}, below seq {}",
        limit.map_or("all".to_owned(), |n| n.to_string()),
        reader.next_seq()
    );
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let limit = limit.unwrap_or(u64::MAX);
    for result in reader
        .events(from)
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
    {
        let event = match result {
            Ok(event) => event,
            Err(error) => {
                out.flush()?;
                return finding(error, false, false);
            }
        };
        if json {
            let line = serde_json::to_string(&event).context("serialising an event")?;
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{}", event_line(&event))?;
        }
    }
    out.flush()?;
    Ok(torn_finding(&reader))
}

/// One readable line: seq, time, block, source, kind, then the payload's essentials.
fn event_line(event: &Event) -> String {
    let block = event.block.map_or("-".into(), |b| b.to_string());
    let head = format!(
        "{:>8} {} blk {:<9} src {:<2} {:<17}",
        event.seq,
        event.time,
        block,
        event.source,
        event.kind().name()
    );
    let body = match &event.payload {
        Payload::Price(p) => format!("{}/{} {} feed {}", p.asset, p.quote, p.price, p.feed),
        Payload::VaultOpen(v) => format!("{} {} {}", v.protocol, v.market, v.account),
        Payload::Deposit(c) | Payload::Withdraw(c) | Payload::Borrow(c) | Payload::Repay(c) => {
            format!(
                "{} {} {} {} {}",
                c.protocol, c.market, c.account, c.amount, c.asset
            )
        }
        Payload::Liquidation(l) => format!(
            "{} {} {} seized {} {} repaid {} {}",
            l.protocol,
            l.market,
            l.account,
            l.collateral_seized,
            l.collateral_asset,
            l.debt_repaid,
            l.debt_asset
        ),
        Payload::PartialLiquidation(l) => {
            let side = |amount: Option<cascade_events::Amount>| {
                amount.map_or_else(|| "unknown".to_owned(), |a| a.to_string())
            };
            format!(
                "{} {} {} seized {} {} repaid {} {}",
                l.protocol,
                l.market,
                l.account,
                side(l.collateral_seized),
                l.collateral_asset,
                side(l.debt_repaid),
                l.debt_asset
            )
        }
        Payload::CollateralToggle(t) => format!(
            "{} {} {} {} {}",
            t.protocol,
            t.market,
            t.account,
            t.asset,
            if t.enabled { "on" } else { "off" }
        ),
        Payload::IndexUpdate(i) => {
            let show = |f: Option<cascade_events::Fixed>| f.map_or("-".into(), |f| f.to_string());
            format!(
                "{} {} {} supply {} borrow {}",
                i.protocol,
                i.market,
                i.asset,
                show(i.supply_index),
                show(i.borrow_index)
            )
        }
        Payload::ParamChange(p) => format!("{} {} {} = {}", p.protocol, p.market, p.param, p.value),
        Payload::AuctionKick(k) => format!(
            "{} {} auction {} {} tab {} lot {} top {}",
            k.protocol, k.market, k.auction, k.account, k.tab, k.lot, k.start_price
        ),
        Payload::AuctionTake(t) => format!(
            "{} {} auction {} {} owe {} at {} left tab {} lot {}",
            t.protocol, t.market, t.auction, t.account, t.owe, t.price, t.tab_left, t.lot_left
        ),
        Payload::OracleValue(v) => format!(
            "{} {} {} {} from {}",
            v.protocol,
            v.market,
            v.source.name(),
            v.value,
            v.oracle
        ),
        Payload::OracleSourceChange(c) => format!(
            "{} oracle {} {} reads {}",
            c.protocol, c.oracle, c.asset, c.source
        ),
        Payload::PositionSnapshot(p) => format!(
            "{} {} {} {} collateral {} debt {}{}",
            p.protocol,
            p.market,
            p.account,
            p.asset,
            p.collateral,
            p.debt,
            if p.scaled { " (scaled)" } else { "" }
        ),
        Payload::AccountTotals(t) => format!(
            "{} {} {} totals collateral {} debt {} threshold {}{}",
            t.protocol,
            t.market,
            t.account,
            t.collateral,
            t.debt,
            t.liquidation_threshold,
            t.health_factor
                .map(|health| format!(" health {health}"))
                .unwrap_or_default()
        ),
    };
    format!("{head} {body}")
}
