//! How adapters report how far they are, without knowing who listens.
//!
//! The library never draws anything: the `cascade` binary implements [`Progress`] with a
//! progress bar on stderr, tests and benchmarks pass [`NoProgress`].

/// Receives the number of input bytes consumed since the last call.
pub trait Progress: Sync {
    /// `bytes` more input bytes have been read.
    fn advance(&self, bytes: u64);
}

/// Ignores progress.
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _bytes: u64) {}
}
