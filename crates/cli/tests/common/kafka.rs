//! Running the built `cascade`, and the broker address of the Kafka tests (`CASCADE_KAFKA_BROKERS`;
//! without it they print a notice and pass vacuously, as the Kafka crate's tests do, except under
//! CI=true, where the broker is part of the setup).

use std::process::{Command, Output};

/// Runs the built `cascade` with `args`.
pub fn cascade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .output()
        .unwrap()
}

/// `output`, after checking the command succeeded (else its stdout and stderr are the message).
pub fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The broker address, or `None` after a notice that `test` is skipped.
pub fn brokers(test: &str) -> Option<String> {
    match std::env::var("CASCADE_KAFKA_BROKERS") {
        Ok(brokers) if !brokers.trim().is_empty() => Some(brokers),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("{test}: CI=true but CASCADE_KAFKA_BROKERS is not set; run tests/run.sh")
        }
        _ => {
            eprintln!("skipping {test}: CASCADE_KAFKA_BROKERS is not set (tests/kafka/kafka.sh)");
            None
        }
    }
}
