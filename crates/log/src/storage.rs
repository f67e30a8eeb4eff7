//! The one door through which the log changes files: every create, write, fsync, rename,
//! truncate and removal of a segment, index, manifest or `CURRENT` goes through [`Storage`].
//!
//! Production uses [`OsStorage`] (plain `std::fs`). A test can [`install`] another implementation
//! once per process, before the first log operation, to fail any chosen operation with an I/O
//! error or to stop the process's writes as a crash would; the fault-injection suite
//! (`crates/ingest/tests/faults.rs`) does that. The implementation is chosen once and called
//! through one pointer per file operation, never per record.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::OnceLock;

/// Every operation that changes a log's files. Reads do not go through it.
pub trait Storage: Send + Sync {
    /// Creates a directory (its parent must exist).
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates (or truncates) a file for writing.
    fn create(&self, path: &Path) -> io::Result<File>;
    /// Opens an existing file for appending.
    fn open_append(&self, path: &Path) -> io::Result<File>;
    /// Writes all of `bytes` to `file` (at its position).
    fn write(&self, file: &mut File, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Makes a file's data durable (`fdatasync`).
    fn sync(&self, file: &File, path: &Path) -> io::Result<()>;
    /// Truncates a file to `len` bytes and makes that durable.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Renames a file (atomically replacing `to`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Makes a directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// The operating system's file system, through `std::fs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsStorage;

impl Storage for OsStorage {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        fs::create_dir(path)
    }

    fn create(&self, path: &Path) -> io::Result<File> {
        File::create(path)
    }

    fn open_append(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().append(true).open(path)
    }

    fn write(&self, file: &mut File, _path: &Path, bytes: &[u8]) -> io::Result<()> {
        file.write_all(bytes)
    }

    fn sync(&self, file: &File, _path: &Path) -> io::Result<()> {
        file.sync_data()
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}

static STORAGE: OnceLock<Box<dyn Storage>> = OnceLock::new();

/// Makes `storage` the one every log operation of this process uses. Only possible before the
/// first log operation (which fixes [`OsStorage`]); returns `storage` back otherwise.
pub fn install(storage: Box<dyn Storage>) -> Result<(), Box<dyn Storage>> {
    let mut offered = Some(storage);
    STORAGE.get_or_init(|| offered.take().expect("taken once"));
    offered.map_or(Ok(()), Err)
}

/// The storage of this process.
pub(crate) fn storage() -> &'static dyn Storage {
    STORAGE.get_or_init(|| Box::new(OsStorage)).as_ref()
}
