//! `cascade stream publish|replay|record`: events through Kafka.
//!
//! Argument handling and printing only; publishing, consuming and their guarantees live in
//! `cascade-kafka`. Values given with `--kafka-config` are never printed (they may be passwords).
//! Dead-lettered records are findings (exit 1); anything that stops a command is an error (exit 2).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cascade_engine::Run;
use cascade_kafka::{
    ClientOptions, ConsumeOptions, ConsumeReport, EngineSink, InvalidRecords, LogSink, Packing,
    Partitioning, PublishOptions, PublishReport, Speed, consume, publish_log, stop_on_ctrl_c,
};

use crate::Outcome;
use crate::cluster_args::Cluster;
use crate::engine_args::EngineArgs;

/// Arguments of `cascade stream`.
#[derive(clap::Args)]
pub struct StreamArgs {
    #[command(subcommand)]
    command: StreamCommand,
}

#[derive(clap::Subcommand)]
enum StreamCommand {
    /// Publish a log onto a topic, in order; re-running resumes after what the topic holds.
    Publish(PublishArgs),
    /// Replay the events of a topic through the engine and write the run file.
    // Boxed: the engine flags make it several times the size of the other variants.
    Replay(Box<ReplayArgs>),
    /// Mirror a topic into a local log.
    Record(RecordArgs),
}

/// Where the cluster is.
#[derive(clap::Args)]
struct Connection {
    /// Bootstrap servers, host:port[,host:port...].
    #[arg(long)]
    brokers: String,
    /// Topic.
    #[arg(long)]
    topic: String,
    #[command(flatten)]
    cluster: Cluster,
}

impl Connection {
    fn client(&self) -> anyhow::Result<ClientOptions> {
        self.cluster.client(&self.brokers)
    }
}

#[derive(clap::Args)]
struct PublishArgs {
    /// Log directory.
    dir: PathBuf,
    #[command(flatten)]
    connection: Connection,
    /// First sequence number, on a topic that holds no events yet.
    #[arg(long)]
    from: Option<u64>,
    /// Pace: `max`, or a factor of the historical pace from event timestamps (60 = 60x).
    #[arg(long, default_value = "max")]
    speed: Speed,
    /// Keys and partitions: `global` (partition 0, the log's order) or `account` (keyed by
    /// account, per-account order; docs/kafka.md).
    #[arg(long = "partitions-by", default_value = "global")]
    partitions_by: Partitioning,
    /// Partitions of the topic when this command creates it.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Events per Kafka record (1: the value is exactly one log record; more: a pack, faster,
    /// see docs/kafka.md).
    #[arg(long, default_value_t = 1)]
    pack: usize,
    /// Events per transaction.
    #[arg(long, default_value_t = 20_000)]
    transaction_events: u64,
    /// Publish at most this many events in this run.
    #[arg(long)]
    limit: Option<u64>,
}

#[derive(clap::Args)]
struct ConsumeArgs {
    #[command(flatten)]
    connection: Connection,
    /// Consumer group: offsets are committed under it after the events are applied, and a
    /// re-run with the same group resumes. Without one the topic is read from the beginning.
    #[arg(long)]
    group: Option<String>,
    /// Keep waiting for new events at the end of the topic (stop with Ctrl-C).
    #[arg(long)]
    follow: bool,
    /// Count malformed records and write them to the dead-letter file instead of stopping.
    #[arg(long)]
    skip_invalid: bool,
    /// Dead-letter file (JSON lines) for --skip-invalid [default: <topic>.dead-letter.jsonl].
    #[arg(long, requires = "skip_invalid")]
    dead_letter: Option<PathBuf>,
    /// Persist and commit offsets after this many events.
    #[arg(long, default_value_t = 50_000)]
    commit_every: u64,
}

impl ConsumeArgs {
    fn options(&self) -> ConsumeOptions {
        let topic = &self.connection.topic;
        let mut options = ConsumeOptions::new(topic);
        options.group = self.group.clone();
        options.follow = self.follow;
        options.commit_every = self.commit_every.max(1);
        if self.skip_invalid {
            let path = self
                .dead_letter
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{topic}.dead-letter.jsonl")));
            options.invalid = InvalidRecords::DeadLetter(path);
        }
        if self.follow {
            options.stop = Some(stop_on_ctrl_c());
        }
        options
    }
}

#[derive(clap::Args)]
struct ReplayArgs {
    #[command(flatten)]
    consume: ConsumeArgs,
    /// Directory where the replay keeps its state (a local copy of the consumed events) so that
    /// a re-run with the same --group resumes; required with --group and --checkpoint-every.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Write the run file here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The engine flags of `cascade replay`. With --scenario or --checkpoint-every the topic is
    /// first mirrored into the state directory (or a temporary one), which is then replayed
    /// exactly as `cascade replay` replays a log.
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(clap::Args)]
struct RecordArgs {
    #[command(flatten)]
    consume: ConsumeArgs,
    /// Log directory to append to (created if absent).
    #[arg(long)]
    log: PathBuf,
}

/// Runs a `cascade stream` subcommand.
pub fn run(args: StreamArgs) -> anyhow::Result<Outcome> {
    match args.command {
        StreamCommand::Publish(args) => publish_cmd(&args),
        StreamCommand::Replay(args) => replay_cmd(&args),
        StreamCommand::Record(args) => record_cmd(&args),
    }
}

fn publish_cmd(args: &PublishArgs) -> anyhow::Result<Outcome> {
    let connection = &args.connection;
    let client = connection.client()?;
    let mut options = PublishOptions::new(&connection.topic);
    options.from = args.from;
    options.speed = args.speed;
    options.partitioning = args.partitions_by;
    options.partitions = args.partitions;
    options.packing = if args.pack > 1 {
        Packing::events(args.pack)
    } else {
        Packing::SINGLE
    };
    options.transaction_events = args.transaction_events.max(1);
    options.limit = args.limit;
    options.stop = Some(stop_on_ctrl_c());
    crate::existing_log(&args.dir)?;
    let end = cascade_log::LogReader::open(&args.dir)
        .with_context(|| format!("opening log {}", args.dir.display()))?
        .next_seq();
    let started = Instant::now();
    tracing::info!(
        "publishing {} (seqs below {end}) to topic {:?} at {}",
        args.dir.display(),
        connection.topic,
        connection.brokers
    );
    let bar = crate::talk::bar("publishing", end, false);
    let report = publish_log(&client, &options, &args.dir, &mut |report| {
        bar.set_position(report.next_seq);
    });
    bar.finish_and_clear();
    let report = report.with_context(|| {
        format!(
            "publishing {} to topic {:?} at {}",
            args.dir.display(),
            connection.topic,
            connection.brokers
        )
    })?;
    print_publish(&report, &connection.topic, started.elapsed());
    Ok(Outcome::Clean)
}

fn print_publish(report: &PublishReport, topic: &str, took: Duration) {
    if report.started_at > 0 {
        let saved = report
            .saved_progress
            .map_or_else(|| "nothing".to_owned(), |seq| format!("seq {seq}"));
        println!(
            "resumed at seq {} (what topic {topic:?} holds; the catalog had {saved})",
            report.started_at
        );
    }
    let rate = per_second(report.events, took);
    println!(
        "published {} events in {} records and {} transactions to {topic:?} in {:.2} s \
         ({rate} events/s); the topic now holds seqs up to {} (exclusive)",
        report.events,
        report.records,
        report.transactions,
        took.as_secs_f64(),
        report.next_seq
    );
}

fn replay_cmd(args: &ReplayArgs) -> anyhow::Result<Outcome> {
    let connection = &args.consume.connection;
    let client = connection.client()?;
    let options = args.consume.options();
    if options.group.is_some() && args.state.is_none() {
        bail!(
            "--group commits the replay's position, so the replay must keep its state: add \
             --state DIR (or drop --group to replay the whole topic)"
        );
    }
    if args.engine.checkpoint_every.is_some() && args.state.is_none() {
        bail!(
            "--checkpoint-every stores checkpoints in the catalog of the replay's local log: add \
             --state DIR"
        );
    }
    let config = args.engine.config()?;
    if args.engine.scenario.is_some()
        || args.engine.checkpoint_every.is_some()
        || args.engine.to.is_some()
    {
        return mirrored_replay(args, &client, &options);
    }
    let mut sink = match &args.state {
        Some(dir) => EngineSink::with_state(config, dir)
            .with_context(|| format!("restoring the replay state in {}", dir.display()))?,
        None => EngineSink::in_memory(config),
    };
    if sink.restored() > 0 && !crate::talk::quiet() {
        eprintln!(
            "restored {} events from the state directory",
            sink.restored()
        );
    }
    let started = Instant::now();
    tracing::info!(
        "replaying topic {:?} from {}",
        connection.topic,
        connection.brokers
    );
    let spinner = crate::talk::spinner(&format!("replaying topic {:?}", connection.topic));
    let report = consume(&client, &options, &mut sink);
    spinner.finish_and_clear();
    let report = report.with_context(|| {
        format!(
            "replaying topic {:?} from {}",
            connection.topic, connection.brokers
        )
    })?;
    print_consume(&report, &options, started.elapsed());
    let run = sink
        .finish()
        .with_context(|| format!("replaying topic {:?}", connection.topic))?;
    finish_replay(&run, args.out.as_deref())?;
    Ok(findings(&report))
}

/// A counterfactual replay reads the events twice (history up to the scenario's window, the
/// recorded price series its transforms need), checkpoints live in a log's catalog, and a window
/// end (`--to`) stops a replay that the live sink would run to the topic's end, so for any of
/// them the stream is first mirrored into a log (the state directory, or a temporary one) which
/// then replays exactly as `cascade replay` replays it.
fn mirrored_replay(
    args: &ReplayArgs,
    client: &ClientOptions,
    options: &ConsumeOptions,
) -> anyhow::Result<Outcome> {
    let temporary = args.state.is_none().then(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        std::env::temp_dir().join(format!("cascade-stream-{}-{nanos}", std::process::id()))
    });
    let dir = args
        .state
        .clone()
        .or_else(|| temporary.clone())
        .context("a state directory or a temporary one")?;
    let result = (|| {
        let (mut sink, _) = LogSink::open(&dir)
            .with_context(|| format!("opening the replay state {}", dir.display()))?;
        let started = Instant::now();
        let report = consume(client, options, &mut sink).with_context(|| {
            format!(
                "consuming topic {:?} from {}",
                options.topic, args.consume.connection.brokers
            )
        })?;
        drop(sink);
        print_consume(&report, options, started.elapsed());
        let run = args.engine.run_log(&dir)?;
        finish_replay(&run, args.out.as_deref())?;
        Ok(findings(&report))
    })();
    if let Some(temporary) = temporary {
        let _ = std::fs::remove_dir_all(temporary);
    }
    result
}

fn finish_replay(run: &Run, out: Option<&Path>) -> anyhow::Result<()> {
    if let Some(out) = out {
        crate::out::write_file(out, &run.to_json())?;
    }
    println!(
        "replayed {} events: {} liquidations, state hash {}",
        run.window.events, run.totals.liquidations, run.state_hash
    );
    if let Some(out) = out {
        println!("run written to {}", out.display());
    }
    Ok(())
}

fn record_cmd(args: &RecordArgs) -> anyhow::Result<Outcome> {
    let connection = &args.consume.connection;
    let client = connection.client()?;
    let options = args.consume.options();
    let (mut sink, recovery) =
        LogSink::open(&args.log).with_context(|| format!("opening log {}", args.log.display()))?;
    if recovery.torn_tail.is_some() {
        eprintln!(
            "recovered {}: dropped a torn tail of {} bytes",
            args.log.display(),
            recovery.bytes_dropped()
        );
    }
    if let Some(rolled) = &recovery.rolled_back {
        eprintln!(
            "recovered {}: rolled back an interrupted ingest ({} records from seq {})",
            args.log.display(),
            rolled.records,
            rolled.batch.from_seq
        );
    }
    let started = Instant::now();
    tracing::info!(
        "recording topic {:?} from {} into {}",
        connection.topic,
        connection.brokers,
        args.log.display()
    );
    let spinner = crate::talk::spinner(&format!(
        "recording topic {:?} into {}",
        connection.topic,
        args.log.display()
    ));
    let report = consume(&client, &options, &mut sink);
    spinner.finish_and_clear();
    let report = report.with_context(|| {
        format!(
            "recording topic {:?} from {} into {}",
            connection.topic,
            connection.brokers,
            args.log.display()
        )
    })?;
    drop(sink);
    print_consume(&report, &options, started.elapsed());
    println!(
        "{} now holds seqs up to {} (exclusive)",
        args.log.display(),
        report.next_seq
    );
    Ok(findings(&report))
}

fn print_consume(report: &ConsumeReport, options: &ConsumeOptions, took: Duration) {
    let mut out = std::io::stdout().lock();
    let rate = per_second(report.applied, took);
    let _ = writeln!(
        out,
        "consumed {} records from {:?} in {:.2} s: {} events applied ({rate} events/s), {} \
         duplicates skipped",
        report.records,
        options.topic,
        took.as_secs_f64(),
        report.applied,
        report.duplicates
    );
    if let InvalidRecords::DeadLetter(path) = &options.invalid
        && report.invalid_records > 0
    {
        let _ = writeln!(
            out,
            "{} malformed records ({} events) written to {}",
            report.invalid_records,
            report.invalid_events,
            path.display()
        );
    }
}

fn findings(report: &ConsumeReport) -> Outcome {
    if report.invalid_records > 0 {
        Outcome::Findings
    } else {
        Outcome::Clean
    }
}

fn per_second(events: u64, took: Duration) -> u64 {
    let micros = took.as_micros().max(1);
    u64::try_from(u128::from(events) * 1_000_000 / micros).unwrap_or(u64::MAX)
}
