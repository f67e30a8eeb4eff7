//! Where the hand-made fixtures are: the repository's `fixtures/` folder.

use std::path::PathBuf;

/// `fixtures/<sub>` in the repository.
pub fn fixtures(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(sub)
}
