//! Fault injection at the I/O boundary, the way SQLite's and TigerBeetle's test suites do it:
//! every file operation of the log (create, write, fsync, rename, truncate, remove, directory
//! fsync) goes through `cascade_log::storage::Storage`; this suite installs an implementation that
//! fails the Nth operation, and runs every N over an append ingest and over a merge (rewrite)
//! ingest. The failure is an I/O error (EIO, ENOSPC or EFBIG, in turn) or a crash: that operation
//! and every later one fail, and the bytes written since each file's last fsync are dropped.
//!
//! After each fault: a writer open recovers the log, which must hold exactly the state before the
//! ingest or exactly the state after it; the catalog's sources must equal the log manifest's; and
//! running the ingest again must reach the state of an uninterrupted ingest. The number of fault
//! points covered is printed. (sled, the catalog, does not go through the storage: its failure is
//! covered by rebuilding it, see `catalog_unreadable_is_rebuilt` in `crates/ingest/tests/stage.rs`.)
#![allow(clippy::unwrap_used)] // test helpers, where a failure is the test failing

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cascade_ingest::{IngestOptions, NoProgress, Source, ingest, price_csv};
use cascade_log::storage::{OsStorage, Storage};
use cascade_log::{Catalog, LogIdentity, LogReader, LogWriter, SourceRecord, WriterOptions};

/// What the Nth operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Error(i32),
    Crash,
}

/// The fault for fault point `n`: the three error kinds and a crash in turn.
fn fault_for(n: u64) -> Fault {
    match n % 4 {
        0 => Fault::Error(rustix::io::Errno::IO.raw_os_error()),
        1 => Fault::Error(rustix::io::Errno::NOSPC.raw_os_error()),
        2 => Fault::Error(rustix::io::Errno::FBIG.raw_os_error()),
        _ => Fault::Crash,
    }
}

/// The storage under test: the OS, with one chosen operation failing.
#[derive(Default)]
struct Faulty {
    os: OsStorage,
    ops: AtomicU64,
    /// Fail the operation with this number (1-based); 0 = never.
    fail_at: AtomicU64,
    fault: Mutex<Option<Fault>>,
    crashed: AtomicBool,
    /// Files written since their last fsync, with the length they had then.
    unsynced: Mutex<HashMap<PathBuf, u64>>,
}

impl Faulty {
    fn arm(&self, at: u64, fault: Fault) {
        *self.fault.lock().unwrap() = Some(fault);
        self.ops.store(0, Ordering::SeqCst);
        self.fail_at.store(at, Ordering::SeqCst);
    }

    /// Stops injecting; after a crash, drops what was never fsynced. Returns the operations seen.
    fn disarm(&self) -> u64 {
        self.fail_at.store(0, Ordering::SeqCst);
        let mut unsynced = self.unsynced.lock().unwrap();
        if self.crashed.swap(false, Ordering::SeqCst) {
            for (path, len) in unsynced.drain() {
                if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) {
                    file.set_len(len).unwrap();
                }
            }
        }
        unsynced.clear();
        self.ops.load(Ordering::SeqCst)
    }

    fn step(&self) -> io::Result<()> {
        if self.crashed.load(Ordering::SeqCst) {
            return Err(io::Error::other("the process has crashed"));
        }
        let n = self.ops.fetch_add(1, Ordering::SeqCst) + 1;
        if n != self.fail_at.load(Ordering::SeqCst) {
            return Ok(());
        }
        match self.fault.lock().unwrap().unwrap_or(Fault::Crash) {
            Fault::Error(errno) => Err(io::Error::from_raw_os_error(errno)),
            Fault::Crash => {
                self.crashed.store(true, Ordering::SeqCst);
                Err(io::Error::other("crash injected"))
            }
        }
    }

    fn dirty(&self, path: &Path, len_before: u64) {
        self.unsynced
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_insert(len_before);
    }
}

impl Storage for Faulty {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.step()?;
        self.os.create_dir(path)
    }

    fn create(&self, path: &Path) -> io::Result<File> {
        self.step()?;
        self.unsynced.lock().unwrap().insert(path.to_owned(), 0);
        self.os.create(path)
    }

    fn open_append(&self, path: &Path) -> io::Result<File> {
        self.step()?;
        self.os.open_append(path)
    }

    fn write(&self, file: &mut File, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.step()?;
        self.dirty(path, file.metadata()?.len());
        self.os.write(file, path, bytes)
    }

    fn sync(&self, file: &File, path: &Path) -> io::Result<()> {
        self.step()?;
        self.os.sync(file, path)?;
        self.unsynced.lock().unwrap().remove(path);
        Ok(())
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.step()?;
        self.os.truncate(path, len)?;
        self.unsynced.lock().unwrap().remove(path);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.step()?;
        self.os.rename(from, to)?;
        let mut unsynced = self.unsynced.lock().unwrap();
        unsynced.remove(to);
        if let Some(len) = unsynced.remove(from) {
            unsynced.insert(to.to_owned(), len);
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.step()?;
        self.os.remove_file(path)?;
        self.unsynced.lock().unwrap().remove(path);
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.step()?;
        self.os.remove_dir_all(path)?;
        self.unsynced
            .lock()
            .unwrap()
            .retain(|file, _| !file.starts_with(path));
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.step()?;
        self.os.sync_dir(path)
    }
}

/// Shares the installed storage with the test.
struct Shared(Arc<Faulty>);

macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        impl Storage for Shared {
            $(fn $name(&self, $($arg: $ty),*) -> $ret { self.0.$name($($arg),*) })*
        }
    };
}

forward! {
    create_dir(path: &Path) -> io::Result<()>;
    create(path: &Path) -> io::Result<File>;
    open_append(path: &Path) -> io::Result<File>;
    write(file: &mut File, path: &Path, bytes: &[u8]) -> io::Result<()>;
    sync(file: &File, path: &Path) -> io::Result<()>;
    truncate(path: &Path, len: u64) -> io::Result<()>;
    rename(from: &Path, to: &Path) -> io::Result<()>;
    remove_file(path: &Path) -> io::Result<()>;
    remove_dir_all(path: &Path) -> io::Result<()>;
    sync_dir(path: &Path) -> io::Result<()>;
}

fn fixtures(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(sub)
}

fn options() -> IngestOptions {
    IngestOptions {
        // Small segments and buffers: the ingest rolls segments and writes many times.
        writer: WriterOptions {
            segment_bytes: 8 << 10,
            buffer_bytes: 1 << 10,
        },
        ..IngestOptions::default()
    }
}

fn prices(path: &Path) -> Source {
    Source::PriceCsv {
        path: path.to_owned(),
        options: price_csv::Options::default(),
    }
}

fn maker() -> Source {
    Source::MakerFlipside {
        folder: fixtures("ingest/maker-flipside"),
    }
}

/// Prices after the Maker fixture's events (they append).
fn later_prices(dir: &Path, rows: u64) -> PathBuf {
    let mut csv = String::from("symbol,timestamp,USD_price\n");
    for i in 0..rows {
        let ms = 1_900_000_000_000u64 + i * 3_600_000;
        writeln!(csv, "WETH,{ms},{}.{:03}", 1500 + i % 89, i % 1000).unwrap();
    }
    let path = dir.join("later.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The log's content and sources after a writer open has recovered it, and the catalog's sources.
fn recovered_state(dir: &Path) -> (LogIdentity, Vec<SourceRecord>, Vec<SourceRecord>) {
    drop(LogWriter::open(dir, WriterOptions::default()).unwrap());
    let reader = LogReader::open(dir).unwrap();
    let catalog = Catalog::open(dir).unwrap().sources().unwrap();
    (
        reader.identity().unwrap(),
        reader.manifest().sources.clone(),
        catalog,
    )
}

/// Runs `make()`'s ingest over a copy of `base` with a fault at every operation in turn, checking
/// recovery after each; returns the number of fault points.
fn every_fault_point(
    faulty: &Faulty,
    work: &Path,
    base: &Path,
    make: &dyn Fn() -> Vec<Source>,
) -> u64 {
    let scratch = work.join("scratch");
    copy_dir(base, &scratch);
    let before = recovered_state(&scratch);
    ingest(&scratch, make(), &options(), &NoProgress).unwrap();
    let after = recovered_state(&scratch);
    assert_ne!(before.0, after.0, "the ingest must change the log");
    assert_eq!(
        after.1, after.2,
        "catalog and manifest agree after a clean ingest"
    );
    std::fs::remove_dir_all(&scratch).unwrap();

    let mut points = 0;
    for n in 1.. {
        let dir = work.join(format!("n{n}"));
        copy_dir(base, &dir);
        let fault = fault_for(n);
        faulty.arm(n, fault);
        let result = ingest(&dir, make(), &options(), &NoProgress);
        let seen = faulty.disarm();
        if seen < n {
            assert!(result.is_ok(), "no fault injected, yet: {result:?}");
            std::fs::remove_dir_all(&dir).unwrap();
            break;
        }
        points += 1;
        let state = recovered_state(&dir);
        match &result {
            Ok(_) => assert_eq!(state.0, after.0, "n={n} {fault:?}: ingest succeeded"),
            Err(_) => assert!(
                state.0 == before.0 || state.0 == after.0,
                "n={n} {fault:?}: the log is neither the state before nor after: {result:?}"
            ),
        }
        if state.0 == before.0 {
            assert_eq!(
                state.1, before.1,
                "n={n} {fault:?}: sources of the old state"
            );
        } else {
            assert_eq!(
                state.1, after.1,
                "n={n} {fault:?}: sources of the new state"
            );
        }
        // The catalog agrees with the segments once the next ingest has recovered the log (it
        // may lag behind the manifest only between a failed write and that recovery).
        let again = ingest(&dir, make(), &options(), &NoProgress);
        assert!(again.is_ok(), "n={n} {fault:?}: re-run failed: {again:?}");
        let rerun = recovered_state(&dir);
        assert_eq!(rerun.0, after.0, "n={n} {fault:?}: re-run content");
        assert_eq!(rerun.1, after.1, "n={n} {fault:?}: re-run manifest");
        assert_eq!(rerun.2, after.1, "n={n} {fault:?}: re-run catalog");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    points
}

#[test]
fn every_file_operation_of_an_ingest_can_fail_or_crash() {
    let faulty = Arc::new(Faulty::default());
    assert!(
        cascade_log::storage::install(Box::new(Shared(Arc::clone(&faulty)))).is_ok(),
        "the fault storage must be installed before any log operation"
    );
    let work = tempfile::tempdir().unwrap();
    let base = work.path().join("base");
    ingest(&base, vec![maker()], &options(), &NoProgress).unwrap();
    let later = later_prices(work.path(), 400);

    let append = every_fault_point(&faulty, work.path(), &base, &|| vec![prices(&later)]);
    // The fixture's prices come before the Maker events: merged and rewritten.
    let earlier = fixtures("ingest/prices.csv");
    let merge = every_fault_point(&faulty, work.path(), &base, &|| vec![prices(&earlier)]);
    println!(
        "fault points covered: {append} over an append ingest, {merge} over a merge ingest; \
         {} in all, each EIO, ENOSPC, EFBIG or a crash in turn: 0 data lost, 0 partial states",
        append + merge
    );
    assert!(append > 50 && merge > 10, "too few operations to be a test");
}
