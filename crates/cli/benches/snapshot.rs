//! Criterion benchmark of the snapshot workflow at scale (issue #15: "a 1M-account snapshot
//! ingests and replays to its first accounts file in under 10 s"): the `cascade` binary ingests a
//! generated positions export of one million Aave v2 accounts through a `snapshot` mapping, then
//! replays the log to its first `--accounts-at` file, as a user runs them. One iteration is both
//! commands from a fresh log; the accounts file is written in full (CSV, two rows per account).
//!
//! The export, written to a temp dir before measuring (deterministic), has the columns of the
//! documented workflow's `fixtures/ingest/snapshot/positions.csv` and is read by its
//! `positions.toml` with its `tokens.csv` (the reserves' decimals, thresholds, bonuses and ETH
//! prices): one row per account and reserve, each account 0.5 to 50 WETH of collateral against
//! USDC debt of 20% to 90% of its value (so a share is liquidatable).
//! Alongside the wall time of each iteration, the commands' CPU time (user + system of the
//! children, from `/proc/self/stat`) is printed: the machine is shared, and the CPU time is what
//! an idle machine would take. Results and method: `docs/benchmarks.md`, "Snapshot to accounts".

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

/// Accounts of the export: a million in a measurement, ten thousand in CI's smoke run
/// (`CASCADE_BENCH_SMOKE=1`), which only proves the benchmark still works.
fn accounts() -> u64 {
    if std::env::var_os("CASCADE_BENCH_SMOKE").is_some_and(|v| v != "0") {
        10_000
    } else {
        1_000_000
    }
}

/// The documented snapshot workflow's mapping and reserves file (`docs/ingest.md`, "Position
/// snapshots"), which the generated export follows.
fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/ingest/snapshot")
        .join(name)
}

/// Writes the export, the reserves file and the mapping into `dir`.
fn write_export(dir: &Path) {
    for name in ["tokens.csv", "positions.toml"] {
        std::fs::copy(fixture(name), dir.join(name)).expect("copy the workflow's fixture");
    }
    let file = std::fs::File::create(dir.join("positions.csv")).expect("create the export");
    let mut out = std::io::BufWriter::new(file);
    writeln!(
        out,
        "user,symbol,aTokenBalance,variableDebt,usageAsCollateralEnabled"
    )
    .expect("write");
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for account in 0..accounts() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // 0.5 to 50 WETH in thousandths; debt 20% to 90% of its value, in USDC at 0.0005 ETH.
        let thousandths = 500 + state % 49_500;
        let share = 20 + (state >> 20) % 71;
        let usdc = thousandths * 2 * share / 100;
        let user = format!("0x{:040x}", account + 1);
        writeln!(
            out,
            "{user},WETH,{}.{:03},0,true\n{user},USDC,0,{usdc},false",
            thousandths / 1000,
            thousandths % 1000
        )
        .expect("write");
    }
    out.flush().expect("flush");
}

/// User plus system CPU time of this process's waited-for children so far (`/proc/self/stat`
/// fields 16 and 17, in clock ticks of 1/100 s).
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    let after_name = &stat[stat.rfind(')').expect("a process name") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // After the name, field 3 (state) is index 0: cutime is field 16, cstime 17.
    let ticks: u64 =
        fields[13].parse::<u64>().expect("cutime") + fields[14].parse::<u64>().expect("cstime");
    Duration::from_millis(ticks * 10)
}

fn cascade(args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .output()
        .expect("run cascade");
    assert!(
        output.status.success(),
        "cascade {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Ingests the export into a fresh log and replays it to its accounts file.
fn snapshot_to_accounts(dir: &Path) {
    let path = |name: &str| dir.join(name).to_str().expect("utf-8 path").to_owned();
    let log = path("log");
    if Path::new(&log).exists() {
        std::fs::remove_dir_all(&log).expect("remove the previous log");
    }
    cascade(&[
        "ingest",
        "--log",
        &log,
        "--source",
        "csv",
        "--mapping",
        &path("positions.toml"),
        &path("positions.csv"),
        "-q",
    ]);
    cascade(&[
        "replay",
        &log,
        "--accounts-at",
        "2021-05-19T00:00:00Z",
        "--accounts-out",
        &path("accounts.csv"),
        "-q",
    ]);
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    write_export(dir.path());
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.bench_function(format!("{}_accounts_to_accounts_file", accounts()), |b| {
        b.iter_custom(|iterations| {
            let cpu = children_cpu();
            let start = Instant::now();
            for _ in 0..iterations {
                snapshot_to_accounts(dir.path());
            }
            let wall = start.elapsed();
            let cpu = children_cpu() - cpu;
            eprintln!(
                "  {iterations} iteration(s): wall {:.2} s, commands' CPU {:.2} s per iteration",
                wall.as_secs_f64() / iterations as f64,
                cpu.as_secs_f64() / iterations as f64
            );
            wall
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
