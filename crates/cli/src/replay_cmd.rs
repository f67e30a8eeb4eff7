//! `cascade replay` and `cascade check`: run the engine over a log, write a run file, or compare
//! one with a golden file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cascade_engine::{Capture, Run};
use cascade_run::compare::{DiffOptions, DiffSummary, golden_fields, project};
use cascade_run::lines as run_lines;
use cascade_run::{RunDiff, RunForm, diff_runs};
use clap::Args;
use serde::Serialize;

use crate::Outcome;
use crate::engine_args::{EngineArgs, parse_time};
use crate::fail_on::{self, Threshold};
use crate::out::{write_file, write_file_with};
use crate::state_cmd;

/// `cascade replay DIR`.
#[derive(Args)]
pub struct ReplayArgs {
    /// Log directory.
    dir: PathBuf,
    /// Write the run file here: one JSON document; JSON lines when the name ends in `.jsonl`;
    /// the compact binary form when it ends in `.bin` (`run.run.bin`). Both are for large runs
    /// (docs/run-format.md); `cascade run cat` prints either as JSON. Without --out (or --json)
    /// only what the summary prints is built: no hourly samples, books or accounts.
    #[arg(long, value_name = "RUN")]
    out: Option<PathBuf>,
    /// Print the run file on stdout instead of the summary.
    #[arg(long)]
    json: bool,
    /// Capture every account's position at these times (RFC 3339 or YYYY-MM-DD, UTC;
    /// comma-separated): each once every event of the first instant at or after it is applied
    /// (the log's end when there is none). Needs --accounts-out.
    #[arg(
        long,
        value_name = "TIME",
        value_delimiter = ',',
        requires = "accounts_out"
    )]
    accounts_at: Vec<String>,
    /// Write the captured accounts here: JSON lines when the name ends in `.jsonl` or `.json`,
    /// else CSV (one row per account and asset).
    #[arg(long, value_name = "FILE", requires = "accounts_at")]
    accounts_out: Option<PathBuf>,
    #[command(flatten)]
    fail_on: FailOnArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

/// `cascade check DIR --expect EXPECTED.json`.
#[derive(Args)]
pub struct CheckArgs {
    /// Log directory.
    dir: PathBuf,
    /// The golden run file to compare with (`--update` writes it; JSON lines when its name ends
    /// in `.jsonl`).
    #[arg(long, value_name = "EXPECTED")]
    expect: PathBuf,
    /// Rewrite the golden file with this replay's run instead of comparing.
    #[arg(long)]
    update: bool,
    /// Keep only these fields in the golden file written by `--update` (comma-separated
    /// top-level keys, or `key.field` for a field of an object or of every item of a list),
    /// e.g. `liquidations.verdict,totals.verdicts`; when comparing with a full golden, compare
    /// only these. A golden written this way checks only its fields from then on, and
    /// `--update` keeps them.
    #[arg(long, value_name = "FIELDS", value_delimiter = ',')]
    golden_fields: Vec<String>,
    /// Amounts and healths of matched liquidations may move by this many parts per million
    /// of the golden value without counting as a change.
    #[arg(long, value_name = "PPM", default_value_t = 0)]
    tolerance_ppm: u64,
    /// Print the differences as JSON (summary, then every change) instead of text.
    #[arg(long)]
    json: bool,
    /// Show at most this many lines of detail after the summary (0: all).
    #[arg(long, value_name = "N", default_value_t = 40)]
    max_lines: usize,
    #[command(flatten)]
    fail_on: FailOnArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

/// `--fail-on`, shared by `replay` and `check`.
#[derive(Args)]
pub struct FailOnArgs {
    /// Exit 1 when a total of this run crosses a threshold: `METRIC>N` (also `>=`, `<`, `<=`,
    /// `=`; repeatable or comma-separated). Metrics: a verdict (`explained`, `amount-mismatch`,
    /// `not-liquidatable`, `unknown-account`, `no-price`), `liquidations`,
    /// `unsafe-unliquidated`, `explained-percent`, `events`, `recorded-liquidations-skipped`.
    #[arg(long, value_name = "METRIC>N", value_delimiter = ',')]
    fail_on: Vec<Threshold>,
}

impl FailOnArgs {
    /// Prints the thresholds `run` trips on stderr; whether any did.
    fn report(&self, run: &Run) -> bool {
        let lines = fail_on::tripped(&self.fail_on, &run.totals);
        for line in &lines {
            eprintln!("{line}");
        }
        !lines.is_empty()
    }
}

/// `run` as the bytes of a run file at `path`, in the form its name chooses ([`RunForm::of`]).
pub fn run_bytes(run: &Run, path: &Path) -> Vec<u8> {
    run.to_bytes(RunForm::of(path))
}

/// Reads a run or golden file of any form as one JSON document.
pub fn parse_run_file(path: &Path, bytes: &[u8]) -> anyhow::Result<serde_json::Value> {
    run_lines::parse(bytes)
        .map_err(|error| anyhow::anyhow!("{}:{error}: not a run file", path.display()))
}

/// Runs `cascade replay`.
pub fn replay(args: ReplayArgs) -> anyhow::Result<Outcome> {
    let capture = Capture {
        at: args
            .accounts_at
            .iter()
            .map(|time| parse_time("--accounts-at", time))
            .collect::<anyhow::Result<_>>()?,
        stop_when_taken: false,
    };
    // Without a run file to write, only the summary is printed: the run's lists (hourly samples,
    // books, accounts) are not built, which at a million accounts is most of the replay.
    let summary_only = args.out.is_none() && !args.json;
    let (run, accounts) = args
        .engine
        .run_log_capturing(&args.dir, &capture, summary_only)?;
    // A million-account run file is hundreds of megabytes: built only when asked for.
    if let Some(out) = &args.out {
        write_file_with(out, |file| {
            run.write(RunForm::of(out), std::io::BufWriter::new(file))
        })?;
    }
    if let Some(path) = &args.accounts_out {
        state_cmd::write_accounts(path, &accounts)?;
    }
    let text = if args.json {
        run.to_json()
    } else {
        let mut text = run.summary();
        if let Some(out) = &args.out {
            text.push_str(&format!("run written to {}\n", out.display()));
        }
        if let Some(path) = &args.accounts_out {
            let rows: usize = accounts.iter().map(|capture| capture.accounts.len()).sum();
            text.push_str(&format!(
                "accounts at {} time(s) written to {} ({rows} account positions)\n",
                accounts.len(),
                path.display()
            ));
            for capture in &accounts {
                if let Some(recorded) = state_cmd::RecordedHealth::of(&capture.accounts) {
                    text.push_str(&format!(
                        "at {}: {}\n",
                        capture.at.to_rfc3339(),
                        recorded.line()
                    ));
                }
            }
            if let Some(last) = accounts.last()
                && !last.snapshot_differences.is_empty()
            {
                text.push_str(&format!(
                    "{} snapshot differences (account and asset: cascade state {} --at TIME)\n",
                    last.snapshot_differences.len(),
                    args.dir.display()
                ));
            }
        }
        text.into_bytes()
    };
    // A closed pipe (`| head`) ends the output, not the command.
    let _ = std::io::stdout().lock().write_all(&text);
    Ok(if args.fail_on.report(&run) {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}

/// What `cascade check --json` prints.
#[derive(Serialize)]
struct CheckReport<'a> {
    golden: String,
    identical: bool,
    summary: &'a DiffSummary,
    fail_on: Vec<String>,
    diff: &'a RunDiff,
}

/// Runs `cascade check`.
pub fn check(args: CheckArgs) -> anyhow::Result<Outcome> {
    if !args.update && !args.expect.exists() {
        anyhow::bail!(
            "golden file {} does not exist\nhint: the same command with --update writes it from this replay",
            args.expect.display()
        );
    }
    let run = args.engine.run_log(&args.dir)?;
    let tripped = args.fail_on.report(&run);
    let bytes = run_bytes(&run, &args.expect);
    // Parsed only when needed: a million-account run file is hundreds of megabytes.
    let parse = || -> anyhow::Result<serde_json::Value> {
        run_lines::parse(&bytes).context("the engine wrote an invalid run file")
    };
    if args.update {
        // A compact golden stays compact: its own field list, unless --golden-fields names one.
        let fields = if args.golden_fields.is_empty() {
            std::fs::read(&args.expect)
                .ok()
                .and_then(|bytes| run_lines::parse(&bytes).ok())
                .and_then(|golden| golden_fields(&golden))
                .unwrap_or_default()
        } else {
            args.golden_fields.clone()
        };
        if !fields.is_empty() && RunForm::of(&args.expect) == RunForm::Binary {
            anyhow::bail!(
                "{}: a golden of chosen fields is JSON; name it .json or .jsonl (the binary form holds whole runs)",
                args.expect.display()
            );
        }
        // A full golden is the run file itself, byte for byte (`replay --out` writes the same).
        let golden = if fields.is_empty() {
            bytes
        } else if RunForm::of(&args.expect) == RunForm::Lines {
            run_lines::value_to_lines(project(&parse()?, &fields))
        } else {
            let mut text = serde_json::to_string_pretty(&project(&parse()?, &fields))
                .context("encoding the golden file")?;
            text.push('\n');
            text.into_bytes()
        };
        write_file(&args.expect, &golden)?;
        println!("updated {}", args.expect.display());
        return Ok(if tripped {
            Outcome::Findings
        } else {
            Outcome::Clean
        });
    }
    let expected = std::fs::read(&args.expect)
        .with_context(|| format!("reading {}", args.expect.display()))?;
    // The common case of a full golden, byte for byte the same, needs no comparison.
    if expected == bytes && args.golden_fields.is_empty() && !args.json {
        println!("{}: no difference", args.expect.display());
        return Ok(if tripped {
            Outcome::Findings
        } else {
            Outcome::Clean
        });
    }
    let mut expected = parse_run_file(&args.expect, &expected)?;
    if !args.golden_fields.is_empty() {
        expected = project(&expected, &args.golden_fields);
    }
    let options = DiffOptions {
        tolerance_ppm: args.tolerance_ppm,
    };
    let diff = diff_runs(&expected, &parse()?, &options);
    let golden = args.expect.display().to_string();
    let mut out = String::new();
    if args.json {
        let report = CheckReport {
            golden,
            identical: diff.is_empty(),
            summary: &diff.summary,
            fail_on: fail_on::tripped(&args.fail_on.fail_on, &run.totals),
            diff: &diff,
        };
        out = serde_json::to_string_pretty(&report).context("encoding the differences")?;
        out.push('\n');
    } else if diff.is_empty() {
        out.push_str(&format!("{golden}: no difference\n"));
        if diff.summary.within_tolerance > 0 {
            out.push_str(&format!(
                "  ({} items moved within --tolerance-ppm {})\n",
                diff.summary.within_tolerance, args.tolerance_ppm
            ));
        }
    } else {
        out.push_str(&format!("{golden} differs from this replay\n"));
        out.push_str("summary:\n");
        for line in diff.summary_lines() {
            out.push_str(&format!("  {line}\n"));
        }
        out.push_str("details:\n");
        let lines = diff.detail_lines();
        let shown = if args.max_lines == 0 {
            lines.len()
        } else {
            args.max_lines.min(lines.len())
        };
        for line in &lines[..shown] {
            out.push_str(&format!("  {line}\n"));
        }
        if shown < lines.len() {
            out.push_str(&format!(
                "  ... {} more (--max-lines 0 shows all, --json gives every change)\n",
                lines.len() - shown
            ));
        }
    }
    // A closed pipe (`| head`) ends the output, not the command.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(if diff.is_empty() && !tripped {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}
