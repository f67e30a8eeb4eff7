//! Helpers of the real-data tests: find `../shared/data` and run the `cascade` binary on it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `../shared/data`, or `None` with a notice on stderr when it is absent.
pub fn shared_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/data not found");
        None
    }
}

/// Runs `cascade` with `args`, asserts it succeeded and returns its stdout.
pub fn cascade(args: &[&str]) -> Vec<u8> {
    let output = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .output()
        .expect("runs cascade");
    assert!(
        output.status.success(),
        "cascade {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// `cascade ingest --log LOG --source SOURCE EXTRA... PATHS...`.
pub fn ingest(log: &Path, source: &str, paths: &[PathBuf], extra: &[&str]) {
    let log = log.to_str().expect("UTF-8 temp path");
    let mut args = vec!["ingest", "--log", log, "--source", source];
    args.extend_from_slice(extra);
    let paths: Vec<&str> = paths
        .iter()
        .map(|p| p.to_str().expect("UTF-8 data path"))
        .collect();
    args.extend(paths);
    cascade(&args);
}

/// `DIR/ethb`: the Maker ETH-B export and CoinGecko's hourly WETH prices from `data`, ingested
/// as `docs/postmortems/README.md` does.
pub fn ethb_hourly_log(data: &Path, dir: &Path) -> PathBuf {
    let log = dir.join("ethb");
    ingest(&log, "maker-flipside", &[data.join("maker-ethb")], &[]);
    ingest(
        &log,
        "price-csv",
        &[data.join("prices/coingecko-hourly/WETH_usd.csv")],
        &[],
    );
    log
}
