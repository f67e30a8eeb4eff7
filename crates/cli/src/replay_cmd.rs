//! `cascade replay` and `cascade check`: run the engine over a log, write a run file, or compare
//! one with a golden file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use cascade_engine::diff_runs;
use clap::Args;

use crate::Outcome;
use crate::engine_args::EngineArgs;
use crate::out::write_file;

/// `cascade replay DIR`.
#[derive(Args)]
pub struct ReplayArgs {
    /// Log directory.
    dir: PathBuf,
    /// Write the run file (JSON) here.
    #[arg(long, value_name = "RUN")]
    out: Option<PathBuf>,
    /// Print the run file on stdout instead of the summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

/// `cascade check DIR --expect EXPECTED.json`.
#[derive(Args)]
pub struct CheckArgs {
    /// Log directory.
    dir: PathBuf,
    /// The golden run file to compare with.
    #[arg(long, value_name = "EXPECTED")]
    expect: PathBuf,
    /// Rewrite the golden file with this replay's run instead of comparing.
    #[arg(long)]
    update: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Runs `cascade replay`.
pub fn replay(args: ReplayArgs) -> anyhow::Result<Outcome> {
    let run = args.engine.run_log(&args.dir)?;
    // A million-account run file is hundreds of megabytes: built only when asked for.
    let json = (args.out.is_some() || args.json).then(|| run.to_json());
    if let (Some(out), Some(json)) = (&args.out, &json) {
        write_file(out, json)?;
    }
    let text = if let Some(json) = json.filter(|_| args.json) {
        json
    } else {
        let mut text = run.summary();
        if let Some(out) = &args.out {
            text.push_str(&format!("run written to {}\n", out.display()));
        }
        text.into_bytes()
    };
    // A closed pipe (`| head`) ends the output, not the command.
    let _ = std::io::stdout().lock().write_all(&text);
    Ok(Outcome::Clean)
}

/// Runs `cascade check`.
pub fn check(args: CheckArgs) -> anyhow::Result<Outcome> {
    let run = args.engine.run_log(&args.dir)?;
    let actual = run.to_json();
    if args.update {
        write_file(&args.expect, &actual)?;
        println!("updated {}", args.expect.display());
        return Ok(Outcome::Clean);
    }
    let expected = std::fs::read(&args.expect)
        .with_context(|| format!("reading {}", args.expect.display()))?;
    if expected == actual {
        println!("{}: identical", args.expect.display());
        return Ok(Outcome::Clean);
    }
    let expected: serde_json::Value = serde_json::from_slice(&expected)
        .with_context(|| format!("{} is not a run file", args.expect.display()))?;
    let actual: serde_json::Value =
        serde_json::from_slice(&actual).context("the engine wrote invalid JSON")?;
    let diff = diff_runs(&expected, &actual);
    println!("{} differs from this replay:", args.expect.display());
    if diff.is_empty() {
        println!("  (formatting only: the same content written differently)");
    }
    for line in &diff.lines {
        println!("  {line}");
    }
    Ok(Outcome::Findings)
}
