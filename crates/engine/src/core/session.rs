//! Replaying a log directory end to end: open the log, resume from the best checkpoint, drive
//! the [`Engine`] over the events, store checkpoints on the way, and build the run.
//!
//! Checkpoints live in the log's catalog under a namespace made of the engine configuration's
//! fingerprint, the scenario's fingerprint and the log's generation (a rewrite of the log starts a
//! new generation, which retires every older checkpoint; appends keep them valid). Beside the
//! checkpoints, a small index (`<namespace>/times` in the catalog state) lists the time of each,
//! so `--from TIME` finds the last one before TIME without loading any. A catalog that cannot be
//! opened (a log on read-only storage, a damaged catalog) costs the checkpoints, never the
//! replay: the segments are the source of truth. This module never changes the log itself.

use std::path::Path;

use cascade_events::{Event, Timestamp};
use cascade_log::{Catalog, LogReader};

use crate::EngineError;
use crate::core::replay::{Engine, EngineConfig, Mode};
use crate::protocol::WARM_BATCH;
use crate::protocol::accounts::AccountsCapture;
use crate::run::{LogInfo, Run};

/// How to replay a log directory.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    /// Engine settings (including the `--from` window).
    pub config: EngineConfig,
    /// Store a checkpoint every this many events (`None`: none).
    pub checkpoint_every: Option<u64>,
    /// Whether a `--from` replay may resume from a stored checkpoint (tests switch it off to
    /// compare with a replay from the start).
    pub resume: bool,
    /// Build only what the run's summary prints ([`Engine::totals_only`]): the totals, verdicts,
    /// unsafe episodes and state hash are the same; the lists a run file holds (samples over
    /// time, books, accounts, liquidation records) are left empty. For a caller that writes no
    /// run file: at a million accounts the hourly samples are most of the work.
    pub totals_only: bool,
}

/// A finished replay.
pub struct ReplayOutcome {
    /// The run file content.
    pub run: Run,
    /// Events the engine applied (including the silent ones before the window).
    pub applied: u64,
    /// Checkpoints stored during this replay.
    pub checkpoints_written: u64,
    /// The checkpoint the replay resumed from (its seq), if any. Not part of the run file: a
    /// resumed replay and one from the start give the same run.
    pub resumed_from: Option<u64>,
    /// The accounts captured at the times [`Capture::at`] asked for.
    pub accounts: Vec<AccountsCapture>,
}

/// Every account's position at some times of a replay ([`Engine::capture_accounts_at`]).
#[derive(Clone, Debug, Default)]
pub struct Capture {
    /// The times asked for.
    pub at: Vec<Timestamp>,
    /// Stop reading the log once every capture is taken (`cascade state`): the run then covers
    /// the log up to there only.
    pub stop_when_taken: bool,
}

/// The log's catalog, or `None` when it cannot be opened: checkpoints and stored summaries only
/// save work, so a replay goes on from the segments without them (the CLI says so).
pub(crate) fn open_catalog(dir: &Path) -> Option<Catalog> {
    Catalog::open(dir).ok()
}

/// What a run file says about the log replayed: from the catalog's stored summary when there is
/// a catalog, else read from the segments.
pub(crate) fn log_info(
    catalog: Option<&Catalog>,
    reader: &LogReader,
) -> Result<LogInfo, EngineError> {
    let identity = match catalog {
        Some(catalog) => catalog.identity()?,
        None => reader.identity()?,
    };
    Ok(LogInfo {
        first_seq: identity.last_seq.map(|_| identity.first_seq),
        last_seq: identity.last_seq,
        content_hash: identity.hash.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// Replays the log at `dir` in `mode`.
pub fn replay_log(
    dir: &Path,
    options: &ReplayOptions,
    mode: Mode,
) -> Result<ReplayOutcome, EngineError> {
    replay_log_observed(dir, options, mode, &mut |_, _| {})
}

/// [`replay_log`], calling `progress(next_seq, end)` after each batch of events (`end`: the
/// log's next sequence number), for a progress bar. It sees positions only, never the state.
pub fn replay_log_observed(
    dir: &Path,
    options: &ReplayOptions,
    mode: Mode,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReplayOutcome, EngineError> {
    replay_log_capturing(dir, options, mode, &Capture::default(), progress)
}

/// [`replay_log_observed`], capturing every account's position at the times `capture` asks
/// for. A checkpoint is resumed only when its time is before every one of them (its state must
/// not have passed a time asked for).
pub fn replay_log_capturing(
    dir: &Path,
    options: &ReplayOptions,
    mode: Mode,
    capture: &Capture,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReplayOutcome, EngineError> {
    let reader = LogReader::open(dir)?;
    let end = reader.next_seq();
    let catalog = open_catalog(dir);
    let mut engine = Engine::new(options.config.clone(), mode);
    engine.capture_accounts_at(&capture.at);
    if options.totals_only {
        engine.totals_only();
    }
    let first_capture = capture.at.iter().min().map(|at| at.0);
    let namespace = format!("{}-g{}", engine.namespace(), reader.generation());
    let times_key = format!("{namespace}/times");
    let stored_times = match &catalog {
        Some(catalog) => catalog.get_state(&times_key)?,
        None => None,
    };
    let mut times = decode_times(stored_times.as_deref());
    let mut resumed_from = None;
    if options.resume
        && let Some(catalog) = &catalog
        && let Some(from) = options.config.from
        && let Some(&(seq, _)) = times
            .iter()
            .rev()
            .find(|(_, time)| *time < from.0 && first_capture.is_none_or(|at| *time < at))
        && let Some((found, bytes)) = catalog.checkpoint_at_or_before(&namespace, seq)?
        && found == seq
    {
        engine.restore(&bytes, seq)?;
        resumed_from = Some(seq);
    }
    let start = engine.next_seq().unwrap_or(0);
    let mut applied = 0;
    let mut written = 0;
    let mut events = reader.events(start);
    // Events are read a batch ahead: the engine warms the records of the next batch (see
    // `Engine::warm`) before it applies the current one.
    let mut read_batch = |into: &mut Vec<Event>| -> Result<(), EngineError> {
        into.clear();
        for event in events.by_ref().take(WARM_BATCH) {
            into.push(event?);
        }
        Ok(())
    };
    let mut batch: Vec<Event> = Vec::with_capacity(WARM_BATCH);
    let mut ahead: Vec<Event> = Vec::with_capacity(WARM_BATCH);
    read_batch(&mut ahead)?;
    let mut warmed = engine.warm(&ahead);
    // The log is in time order: the first event past the window's end ends the replay.
    'events: while !ahead.is_empty() {
        std::mem::swap(&mut batch, &mut ahead);
        read_batch(&mut ahead)?;
        warmed ^= engine.warm(&ahead);
        for event in &batch {
            if options.config.past_window(event.time) {
                break 'events;
            }
            engine.apply(event)?;
            applied += 1;
            if let (Some(every), Some(next), Some(catalog)) =
                (options.checkpoint_every, engine.next_seq(), &catalog)
                && every > 0
                && next % every == 0
                && !times.iter().any(|(seq, _)| *seq == next)
            {
                catalog.put_checkpoint(&namespace, next, &engine.checkpoint()?)?;
                times.push((next, engine.now().unwrap_or_default().0));
                times.sort_unstable();
                catalog.put_state(&times_key, &encode_times(&times))?;
                written += 1;
            }
        }
        progress(engine.next_seq().unwrap_or(end), end);
        if capture.stop_when_taken && !engine.captures_pending() {
            break;
        }
    }
    std::hint::black_box(warmed);
    if let Some(catalog) = catalog.as_ref().filter(|_| written > 0) {
        catalog.flush()?;
    }
    let log = log_info(catalog.as_ref(), &reader)?;
    let (accounts, run) = engine.finish_capturing(log)?;
    Ok(ReplayOutcome {
        accounts,
        run,
        applied,
        checkpoints_written: written,
        resumed_from,
    })
}

fn encode_times(times: &[(u64, i64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(times.len() * 16);
    for (seq, time) in times {
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&time.to_le_bytes());
    }
    out
}

/// The checkpoint index; an unreadable one is derived data and is treated as empty.
fn decode_times(bytes: Option<&[u8]>) -> Vec<(u64, i64)> {
    let Some(bytes) = bytes else {
        return Vec::new();
    };
    if bytes.len() % 16 != 0 {
        return Vec::new();
    }
    bytes
        .chunks_exact(16)
        .map(|chunk| {
            let mut seq = [0u8; 8];
            let mut time = [0u8; 8];
            seq.copy_from_slice(&chunk[..8]);
            time.copy_from_slice(&chunk[8..]);
            (u64::from_le_bytes(seq), i64::from_le_bytes(time))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_index_round_trips_and_tolerates_damage() {
        let times = vec![(100, 1_600_000_000), (200, 1_600_003_600)];
        assert_eq!(decode_times(Some(&encode_times(&times))), times);
        assert!(decode_times(Some(&[1, 2, 3])).is_empty());
        assert!(decode_times(None).is_empty());
    }
}
