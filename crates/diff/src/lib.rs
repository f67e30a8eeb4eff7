//! Comparison of replay runs and post-mortem reports.
//!
//! `cascade diff` and `cascade report` read run files written by the engine
//! (`docs/run-format.md`) and never replay anything themselves:
//! - [`runfile`]: the run file as these tools read it, and exact signed decimals ([`Num`]);
//! - [`compare`]: two runs of one log side by side ([`Comparison`], stable JSON in
//!   `docs/diff.md`);
//! - [`render`]: the comparison as a terminal table, Markdown or HTML;
//! - [`charts`]: SVG charts drawn with `plotters` (floats only here, for coordinates);
//!   [`health_heat`]: the heat map of health buckets per hour; [`leverage_charts`]: leverage
//!   over time, the liquidation ladder and the overlap between protocols;
//! - [`report`]: the self-contained HTML post-mortem and its Markdown twin; [`story`]: its first
//!   screen in words (what happened, what changed, the verdicts);
//! - [`sweep`]: sweep results as tables and a heatmap.
//!
//! Runs of different logs are refused everywhere: comparing them would mean nothing.

pub mod accounts;
pub mod charts;
pub mod compare;
pub mod health_heat;
pub mod leverage_charts;
pub mod render;
pub mod report;
pub mod runfile;
pub mod story;
pub mod sweep;
pub mod waterfall;

pub use compare::{Comparison, DIFF_SCHEMA_VERSION, compare, compare_across_logs};
pub use render::{Format, render};
pub use report::{Report, build as build_report};
pub use runfile::{Num, RunFile};

/// Why runs cannot be compared or reported.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A run file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not run JSON.
    #[error(
        "{file}:{line}:{column}: not a cascade run file: {}",
        cascade_events::clip(reason)
    )]
    NotARun {
        /// The file.
        file: String,
        /// 1-based line where parsing failed.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        reason: String,
    },
    /// A binary run file that does not decode.
    #[error("{file}: {source}")]
    NotABinaryRun {
        /// The file.
        file: String,
        /// What is wrong with it.
        source: cascade_run::binary::BinaryError,
    },
    /// A run file of another layout version.
    #[error("{file}: run schema version {found}, this build reads versions 1 to {expected}")]
    SchemaVersion {
        /// The file.
        file: String,
        /// Version in the file.
        found: u32,
        /// Newest version this build reads.
        expected: u32,
    },
    /// Two runs of different logs.
    #[error(
        "{a} and {b} replay different logs ({a}: {a_log}; {b}: {b_log}): a comparison only means something over the same log"
    )]
    DifferentLogs {
        /// First run file.
        a: String,
        /// Its log.
        a_log: String,
        /// Second run file.
        b: String,
        /// Its log.
        b_log: String,
    },
    /// Runs of two logs whose windows start or end at different times.
    #[error(
        "{a} and {b} report over different windows (--from/--to): across logs only runs of the same window compare"
    )]
    DifferentWindows {
        /// First run file.
        a: String,
        /// Second run file.
        b: String,
    },
    /// A report needs at least one run.
    #[error("a report needs at least one run file")]
    NoRuns,
    /// Drawing a chart failed.
    #[error("drawing a chart: {0}")]
    Chart(String),
}
