//! The engine's one error type.
//!
//! Every variant names what a user needs to find the problem: the event's sequence number, the
//! quantity that overflowed, the parameter and value that were refused.

/// Why the engine could not apply an event or restore a state.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Integer arithmetic left 256 bits; the quantity names which product or sum.
    #[error("arithmetic overflow computing {quantity}")]
    Overflow {
        /// The quantity being computed (`art * rate`, `rpow`).
        quantity: &'static str,
    },
    /// A divisor was zero where the rules need a positive value.
    #[error("division by zero computing {quantity}")]
    DivisionByZero {
        /// The quantity being computed.
        quantity: &'static str,
    },
    /// A governance parameter value the engine cannot represent or that the contract would
    /// reject.
    #[error("parameter {param} = {value}: {reason}")]
    InvalidParam {
        /// The parameter name as given.
        param: String,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An event's time is earlier than the one before it: the log is not in replay order.
    #[error(
        "event seq {seq} at {time} is earlier than the previous event at {previous}: the log is not time-ordered"
    )]
    TimeWentBackwards {
        /// The offending event.
        seq: u64,
        /// Its time (RFC 3339).
        time: String,
        /// The previous event's time.
        previous: String,
    },
    /// An event's sequence number is not the one after the previous event.
    #[error("expected event seq {expected}, got {found}: events must be replayed densely in order")]
    OutOfSequence {
        /// The sequence number expected next.
        expected: u64,
        /// The one received.
        found: u64,
    },
    /// A checkpoint could not be read back.
    #[error("checkpoint is unreadable at byte {offset}: {reason}")]
    BadCheckpoint {
        /// Byte offset in the checkpoint where decoding failed.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
    /// The log or its catalog failed (I/O, corruption, a record that does not decode).
    #[error(transparent)]
    Log(#[from] cascade_log::LogError),
    /// Another event source failed (a broken stream).
    #[error("reading events: {0}")]
    Source(String),
    /// A scenario cannot be applied to this log (it names an asset the log never prices).
    #[error(transparent)]
    Scenario(#[from] crate::counterfactual::scenario::ScenarioError),
}
