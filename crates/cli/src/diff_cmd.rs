//! `cascade diff A B`: compares two runs of one log.

use std::path::PathBuf;

use cascade_diff::{DiffError, Format, RunFile, compare, compare_across_logs, render};
use clap::{Args, ValueEnum};

use crate::Outcome;

/// `cascade diff A B [--format table|json|md|html] [--out FILE]`.
#[derive(Args)]
pub struct DiffArgs {
    /// First run file (usually the historical replay).
    a: PathBuf,
    /// Second run file (usually a counterfactual).
    b: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: DiffFormat,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Compare runs of two logs of one history (the second gained a price file, say): each run
    /// over its whole window, liquidations matched by identity, not by position in the log.
    #[arg(long)]
    across_logs: bool,
}

/// Output formats on the command line.
#[derive(Clone, Copy, ValueEnum)]
enum DiffFormat {
    /// Aligned text.
    Table,
    /// Stable JSON (docs/diff.md).
    Json,
    /// Markdown tables.
    Md,
    /// Self-contained HTML page.
    Html,
}

/// Runs `cascade diff`: exit 0 when the runs show no difference, 1 when they do.
pub fn run(args: DiffArgs) -> anyhow::Result<Outcome> {
    tracing::info!("comparing {} with {}", args.a.display(), args.b.display());
    let a = RunFile::load(&args.a)?;
    let b = RunFile::load(&args.b)?;
    tracing::debug!(
        "{}: {} liquidations; {}: {} liquidations",
        a.label(),
        a.liquidations.len(),
        b.label(),
        b.liquidations.len()
    );
    let comparison = if args.across_logs {
        compare_across_logs(&a, &b)?
    } else {
        compare(&a, &b).map_err(|error| match error {
            DiffError::DifferentLogs { .. } => anyhow::anyhow!(
                "{error}\nhint: runs of two logs of one history compare with --across-logs"
            ),
            other => other.into(),
        })?
    };
    let format = match args.format {
        DiffFormat::Table => Format::Table,
        DiffFormat::Json => Format::Json,
        DiffFormat::Md => Format::Markdown,
        DiffFormat::Html => Format::Html,
    };
    tracing::info!(
        "{}",
        if comparison.differs() {
            "the runs differ"
        } else {
            "no difference"
        }
    );
    let text = render(&comparison, format);
    match &args.out {
        Some(path) => crate::out::write_file(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(if comparison.differs() {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}
