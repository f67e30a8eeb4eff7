//! `cascade run cat FILE`: a run file of any form (`docs/run-format.md`) as one JSON document.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::Outcome;
use crate::replay_cmd::parse_run_file;

/// `cascade run ...`.
#[derive(Args)]
pub struct RunArgs {
    #[command(subcommand)]
    command: RunCommand,
}

#[derive(Subcommand)]
enum RunCommand {
    /// Print a run file (one JSON document, JSON lines or the binary form) as one pretty JSON
    /// document.
    Cat {
        /// The run file.
        file: PathBuf,
    },
}

/// Runs `cascade run`.
pub fn run(args: RunArgs) -> anyhow::Result<Outcome> {
    let RunCommand::Cat { file } = args.command;
    if !file.exists() {
        anyhow::bail!("{} does not exist", file.display());
    }
    tracing::info!("reading the run file {}", file.display());
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    tracing::debug!("{} bytes read", bytes.len());
    let document = parse_run_file(&file, &bytes)?;
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    // serde_json wraps the write error; unwrapped, a closed pipe (`| head`) is seen as one.
    serde_json::to_writer_pretty(&mut stdout, &document)
        .map_err(std::io::Error::from)
        .context("writing the run")?;
    writeln!(stdout).context("writing the run")?;
    stdout.flush().context("writing the run")?;
    Ok(Outcome::Clean)
}
