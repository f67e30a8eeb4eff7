//! `cascade`: replays DeFi liquidation cascades from history and asks "what if".
//!
//! This binary only parses arguments and wires the library crates together; every rule lives in a
//! library. Each subcommand group has its own module. Exit codes: 0 clean, 1 findings
//! (differences, corruption, unexplained liquidations where asked), 2 could not run.

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check_suite_cmd;
mod cluster_args;
mod demo_cmd;
mod diff_cmd;
mod engine_args;
mod fail_on;
mod ingest_cmd;
mod log_cmd;
mod out;
mod pipe;
mod replay_cmd;
mod report_cmd;
mod run_cmd;
mod state_cmd;
mod stream_cmd;
mod sweep_cmd;
mod synth_cmd;
mod talk;
mod work_task;
mod worker_cmd;

/// Replays DeFi liquidation cascades from history and asks "what if".
#[derive(Parser)]
#[command(name = "cascade", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log what the command does to stderr (-v: info, -vv: debug; RUST_LOG overrides).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// No progress bars and no messages on stderr but errors.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect an event log: verify it, summarise it, print its events.
    Log(log_cmd::LogArgs),
    /// Normalise exports (CSV, JSON, eth_getLogs) into an event log, ordered and validated.
    Ingest(ingest_cmd::IngestArgs),
    /// Build a small synthetic crash, replay it, and show what cascade reports.
    Demo(demo_cmd::DemoArgs),
    /// Write a synthetic market going through a crash into a new event log.
    Synth(synth_cmd::SynthArgs),
    /// Replay a log through the protocol rules and judge every recorded liquidation.
    Replay(replay_cmd::ReplayArgs),
    /// Replay a log and compare the run with a golden run file (exit 1 on differences).
    Check(replay_cmd::CheckArgs),
    /// Stream events through Kafka: publish a log, replay or record a topic.
    Stream(stream_cmd::StreamArgs),
    /// Compare two runs of one log (exit 1 when they differ).
    Diff(diff_cmd::DiffArgs),
    /// Write the HTML and Markdown post-mortem of runs of one log.
    Report(report_cmd::ReportArgs),
    /// Every account's position at a time: health factor, collateral, debt, liquidation price.
    State(state_cmd::StateArgs),
    /// Read run files: `cascade run cat FILE` prints any form (JSON, JSON lines, binary) as one
    /// JSON document.
    Run(run_cmd::RunArgs),
    /// Run one counterfactual per point of a parameter grid, in parallel.
    Sweep(sweep_cmd::SweepArgs),
    /// Run the tasks coordinators publish to a Kafka work topic (sweep points, check cases).
    Worker(worker_cmd::WorkerArgs),
    /// Run a suite of (log, scenario, golden) cases and print one summary (exit 1 on failures).
    CheckSuite(check_suite_cmd::CheckSuiteArgs),
}

/// What a command found, for the exit code: scripts tell "ran, found problems" from "could not run".
pub enum Outcome {
    /// Ran and found nothing wrong.
    Clean,
    /// Ran and found differences or corruption.
    Findings,
}

fn main() -> ExitCode {
    pipe::exit_quietly_on_closed_stdout();
    let cli = Cli::parse();
    talk::init(cli.verbose, cli.quiet);
    tracing::debug!(
        "command line: {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    let result: anyhow::Result<Outcome> = match cli.command {
        Command::Log(args) => log_cmd::run(args),
        Command::Ingest(args) => ingest_cmd::run(args),
        Command::Demo(args) => demo_cmd::run(args),
        Command::Synth(args) => synth_cmd::run(args),
        Command::Replay(args) => replay_cmd::replay(args),
        Command::Check(args) => replay_cmd::check(args),
        Command::Stream(args) => stream_cmd::run(args),
        Command::Diff(args) => diff_cmd::run(args),
        Command::Report(args) => report_cmd::run(args),
        Command::Run(args) => run_cmd::run(args),
        Command::State(args) => state_cmd::run(args),
        Command::Sweep(args) => sweep_cmd::run(args),
        Command::Worker(args) => worker_cmd::run(args),
        Command::CheckSuite(args) => check_suite_cmd::run(args),
    };
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Err(error) if pipe::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", message(&error));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, each said once: a library error that names its OS error and also
/// returns it as its source would otherwise print the OS error twice.
fn message(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Fails with a plain "does not exist" when a log directory a command reads is missing (the log
/// would say it has no CURRENT file, which hides the cause).
pub fn existing_log(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    anyhow::bail!(
        "{} does not exist\nhint: `cascade ingest --log {} --source KIND FILE...` makes a log there",
        dir.display(),
        dir.display()
    )
}
