//! How the CLI talks on stderr: `-v`/`-vv` tracing, `--quiet`, progress bars and spinners.
//!
//! Progress is drawn only when stderr is a terminal (indicatif hides it otherwise) and never with
//! `--quiet`; tracing lines carry ANSI colours only on a terminal. stdout stays for results.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static QUIET: OnceLock<bool> = OnceLock::new();

/// Sets up stderr for the whole command: tracing at `verbose` (0: warnings, 1: info, 2 and
/// more: debug; `RUST_LOG` overrides), and whether progress is drawn.
pub fn init(verbose: u8, quiet: bool) {
    let _ = QUIET.set(quiet);
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "cascade={level},cascade_ingest={level},cascade_engine={level},cascade_log={level},cascade_kafka={level},cascade_diff={level}"
        ))
    });
    // A subscriber set earlier (by a test harness) keeps precedence; that is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .try_init();
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.get().copied().unwrap_or(false)
}

fn target() -> ProgressDrawTarget {
    if quiet() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}

/// A bar of `total` units on stderr: `{what} [=====>    ] done/total (rate, eta)`; `bytes`
/// shows the counts as sizes.
pub fn bar(what: &str, total: u64, bytes: bool) -> ProgressBar {
    let counts = if bytes {
        "{bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
    } else {
        "{human_pos}/{human_len} (eta {eta})"
    };
    let bar = ProgressBar::with_draw_target(Some(total), target());
    bar.set_style(
        ProgressStyle::with_template(&format!("{{spinner}} {what} [{{bar:30}}] {counts}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// A spinner with the elapsed time, for work whose size is not known ahead.
pub fn spinner(what: &str) -> ProgressBar {
    let spinner = ProgressBar::with_draw_target(None, target());
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.set_message(what.to_owned());
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}
