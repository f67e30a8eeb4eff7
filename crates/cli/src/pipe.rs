//! A closed stdout (`cascade ... | head`) ends the program quietly with exit 0.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe fails with `BrokenPipe`: `println!` panics
//! with it, and a `writeln!(...)?` returns it as an error. Neither is a failure of the command:
//! the reader simply had enough. This module turns both into a silent exit 0; it must never hide
//! any other panic or error.

use std::io;

/// Installs a panic hook that exits 0 without a message when the panic is `println!` failing on
/// a closed stdout; every other panic goes to the previous hook unchanged.
pub fn exit_quietly_on_closed_stdout() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if is_closed_stdout_panic(message) {
            std::process::exit(0);
        }
        previous(info);
    }));
}

/// The message `println!` panics with when stdout is a closed pipe.
fn is_closed_stdout_panic(message: &str) -> bool {
    let broken = io::Error::from(io::ErrorKind::BrokenPipe).to_string();
    let os_broken = io::Error::from_raw_os_error(32).to_string();
    message.starts_with("failed printing to stdout")
        && (message.contains(&broken) || (cfg!(unix) && message.contains(&os_broken)))
}

/// Whether `error` comes from writing to a closed pipe.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_stdout_broken_pipe_panic_is_quiet() {
        let os = io::Error::from_raw_os_error(32);
        assert!(is_closed_stdout_panic(&format!(
            "failed printing to stdout: {os}"
        )));
        assert!(!is_closed_stdout_panic(&format!(
            "failed printing to stderr: {os}"
        )));
        assert!(!is_closed_stdout_panic(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!is_closed_stdout_panic("index out of bounds"));
    }

    #[test]
    fn broken_pipe_is_found_under_context() {
        let error = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("writing events");
        assert!(is_broken_pipe(&error));
        assert!(!is_broken_pipe(&anyhow::anyhow!(
            "broken pipe, but as text"
        )));
    }
}
