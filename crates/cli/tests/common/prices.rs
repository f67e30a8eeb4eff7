//! Generated price inputs for the crash and disk-full tests.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Writes `dir/name`: a `price-csv` file of `rows` WETH prices, one per `step_ms`, from `first_ms`.
pub fn price_file(dir: &Path, name: &str, first_ms: u64, step_ms: u64, rows: u64) -> PathBuf {
    let mut csv = String::from("symbol,timestamp,USD_price\n");
    for i in 0..rows {
        let ms = first_ms + i * step_ms;
        writeln!(csv, "WETH,{ms},{}.{:03}", 1500 + i % 89, i % 1000).unwrap();
    }
    let file = dir.join(name);
    std::fs::write(&file, csv).unwrap();
    file
}
