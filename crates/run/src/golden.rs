//! Golden files: the one way every test of the workspace compares its output with a committed
//! file, and the one way to rewrite them.
//!
//! A test hands [`assert_golden`] the bytes it produced and the committed file's path. Normally
//! the bytes must be the file's, byte for byte; a difference fails the test with what differs
//! (for run files, [`crate::compare`]'s identity-matched changes; for other files, the first
//! line that differs). With [`UPDATE_VAR`]`=1` in the environment the test writes its bytes to
//! the file instead, and the change is reviewed in the commit's diff. `cascade check --update`
//! is the same rewrite for a user's own golden run files.

use std::path::Path;

use crate::compare::{DiffOptions, diff_runs};

/// The environment variable that makes [`assert_golden`] rewrite golden files.
pub const UPDATE_VAR: &str = "CASCADE_UPDATE_GOLDEN";

/// Whether this test run rewrites golden files ([`UPDATE_VAR`] is set and not `0`).
pub fn updating() -> bool {
    std::env::var_os(UPDATE_VAR).is_some_and(|value| value != "0")
}

/// Why produced bytes do not match a golden file.
#[derive(Debug, thiserror::Error)]
pub enum GoldenError {
    /// The golden file cannot be read (or written when updating).
    #[error("{path}: {source} ({UPDATE_VAR}=1 writes it)")]
    Io {
        /// The golden file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes differ.
    #[error("{path} differs ({UPDATE_VAR}=1 rewrites it; review the diff):\n{detail}")]
    Differs {
        /// The golden file.
        path: String,
        /// What differs, one change per line.
        detail: String,
    },
}

/// Compares `actual` with the golden file at `path`, or rewrites the file when [`updating`].
pub fn check(path: &Path, actual: &[u8]) -> Result<(), GoldenError> {
    let io = |source| GoldenError::Io {
        path: path.display().to_string(),
        source,
    };
    if updating() {
        return std::fs::write(path, actual).map_err(io);
    }
    let expected = std::fs::read(path).map_err(io)?;
    if expected == actual {
        return Ok(());
    }
    Err(GoldenError::Differs {
        path: path.display().to_string(),
        detail: difference(&expected, actual),
    })
}

/// [`check`], panicking with what differs: the form tests call.
#[track_caller]
pub fn assert_golden(path: &Path, actual: &[u8]) {
    if let Err(error) = check(path, actual) {
        panic!("{error}");
    }
}

/// What differs between two byte strings: the changes of two run files matched by identity, or
/// else the first line that differs.
fn difference(expected: &[u8], actual: &[u8]) -> String {
    if let (Ok(old), Ok(new)) = (crate::lines::parse(expected), crate::lines::parse(actual)) {
        let lines = diff_runs(&old, &new, &DiffOptions::default()).detail_lines();
        if !lines.is_empty() {
            return lines.join("\n");
        }
    }
    let old = String::from_utf8_lossy(expected);
    let new = String::from_utf8_lossy(actual);
    let mut old_lines = old.lines();
    let mut new_lines = new.lines();
    for number in 1.. {
        match (old_lines.next(), new_lines.next()) {
            (None, None) => break,
            (a, b) if a == b => continue,
            (a, b) => {
                return format!(
                    "line {number}:\n- {}\n+ {}",
                    a.unwrap_or("(end of file)"),
                    b.unwrap_or("(end of file)")
                );
            }
        }
    }
    "the bytes differ in line endings or a trailing newline".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_differing_line_is_named() {
        assert_eq!(difference(b"a\nb\nc\n", b"a\nB\nc\n"), "line 2:\n- b\n+ B");
        assert_eq!(
            difference(b"a\n", b"a\nb\n"),
            "line 2:\n- (end of file)\n+ b"
        );
        assert_eq!(
            difference(b"a\n", b"a"),
            "the bytes differ in line endings or a trailing newline"
        );
    }

    #[test]
    fn run_files_differ_by_their_changes() {
        let old = br#"{"state_hash": "aa", "liquidations": []}"#;
        let new = br#"{"state_hash": "bb", "liquidations": []}"#;
        assert_eq!(difference(old, new), "state_hash aa -> bb");
    }

    #[test]
    fn a_missing_golden_file_says_how_to_write_it() {
        let dir = std::env::temp_dir().join("cascade-run-golden-missing");
        let error = check(&dir.join("nothing.json"), b"{}").unwrap_err();
        assert!(
            matches!(&error, GoldenError::Io { .. })
                && error
                    .to_string()
                    .contains("CASCADE_UPDATE_GOLDEN=1 writes it"),
            "{error}"
        );
    }
}
