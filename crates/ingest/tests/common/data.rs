//! Where the real data is: `../shared/data` beside the workspace, absent in a fresh clone.

use std::path::PathBuf;

/// `../shared/data/<sub>`, or `None` (with a notice) when it is absent.
pub fn shared_data(sub: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(sub);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipping: ../shared/data not found");
        None
    }
}
