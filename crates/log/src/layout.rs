//! Where things live in a log directory, and the small atomic file operations on them.
//!
//! ```text
//! <dir>/CURRENT                      names the active generation ("gen-<20 digits>\n")
//! <dir>/LOCK                         held (flock) by the one writer or rewrite
//! <dir>/gen-<20 digits>/<first seq, 20 digits>.seg   segments of that generation
//! <dir>/gen-<20 digits>/<first seq, 20 digits>.idx   sparse index of a sealed segment
//! <dir>/catalog/                     sled catalog (derived data)
//! ```
//!
//! Every file that must appear whole (a segment with its header, `CURRENT`, an index) is written
//! under a `.tmp` name, fsynced, renamed, and its directory fsynced. This module never deletes
//! anything it cannot prove is a leftover.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::LogError;
use crate::format::{self, HeaderProblem, SEGMENT_HEADER_LEN};
use crate::storage::storage;

/// The file naming the active generation.
pub(crate) const CURRENT: &str = "CURRENT";
const CURRENT_TMP: &str = "CURRENT.tmp";
/// The writer's lock file.
pub(crate) const LOCK: &str = "LOCK";
/// The sled catalog's directory.
pub(crate) const CATALOG: &str = "catalog";
const GENERATION_PREFIX: &str = "gen-";
const TMP_SUFFIX: &str = ".tmp";

/// The directory name of generation `generation`.
pub(crate) fn generation_name(generation: u64) -> String {
    format!("{GENERATION_PREFIX}{generation:020}")
}

fn parse_generation_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(GENERATION_PREFIX)?;
    parse_twenty_digits(digits)
}

fn parse_twenty_digits(digits: &str) -> Option<u64> {
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The file name of the segment whose first record is `first_seq`.
pub(crate) fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// The file name of the sparse index of that segment.
pub(crate) fn index_name(first_seq: u64) -> String {
    format!("{first_seq:020}.idx")
}

/// The sparse index sidecar of a segment file.
pub(crate) fn index_path(segment: &Path) -> PathBuf {
    segment.with_extension("idx")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    parse_twenty_digits(name.strip_suffix(".seg")?)
}

/// fsyncs a directory, so renames and creations inside it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    storage()
        .sync_dir(dir)
        .map_err(|e| LogError::io("fsync directory", dir, e))
}

/// Removes a file through the storage.
pub(crate) fn remove_file(path: &Path) -> Result<(), LogError> {
    storage()
        .remove_file(path)
        .map_err(|e| LogError::io("remove", path, e))
}

/// Removes a directory tree through the storage.
pub(crate) fn remove_dir_all(path: &Path) -> Result<(), LogError> {
    storage()
        .remove_dir_all(path)
        .map_err(|e| LogError::io("remove", path, e))
}

/// Writes `bytes` to `dir/name` atomically: temp file, fsync, rename, fsync `dir`.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), LogError> {
    write_atomic_observed(dir, name, bytes, || {})
}

/// [`write_atomic`], calling `between` once the temp file is durable and before the rename.
fn write_atomic_observed(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    between: impl FnOnce(),
) -> Result<(), LogError> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let path = dir.join(name);
    let storage = storage();
    let mut file = storage
        .create(&tmp)
        .map_err(|e| LogError::io("create", &tmp, e))?;
    storage
        .write(&mut file, &tmp, bytes)
        .and_then(|()| storage.sync(&file, &tmp))
        .map_err(|e| LogError::io("write", &tmp, e))?;
    between();
    storage
        .rename(&tmp, &path)
        .map_err(|e| LogError::io("rename", &tmp, e))?;
    sync_dir(dir)
}

/// The active generation, or `None` for a directory that has never held a log.
pub(crate) fn read_current(dir: &Path) -> Result<Option<u64>, LogError> {
    let path = dir.join(CURRENT);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io("read", path, e)),
    };
    let generation = text
        .strip_suffix('\n')
        .and_then(parse_generation_name)
        .ok_or_else(|| LogError::NotALog {
            dir: dir.to_path_buf(),
            reason: format!("{CURRENT} holds {text:?}, not a generation name"),
        })?;
    let gen_dir = dir.join(generation_name(generation));
    if !gen_dir.is_dir() {
        return Err(LogError::NotALog {
            dir: dir.to_path_buf(),
            reason: format!("{CURRENT} names {} which does not exist", gen_dir.display()),
        });
    }
    Ok(Some(generation))
}

/// Makes `generation` the active one, atomically.
pub(crate) fn write_current(dir: &Path, generation: u64) -> Result<(), LogError> {
    write_current_steps(dir, generation, || {})
}

/// [`write_current`], calling `between` once `CURRENT.tmp` is durable and before the switch.
pub(crate) fn write_current_steps(
    dir: &Path,
    generation: u64,
    between: impl FnOnce(),
) -> Result<(), LogError> {
    let text = format!("{}\n", generation_name(generation));
    write_atomic_observed(dir, CURRENT, text.as_bytes(), between)
}

/// Removes everything a crashed writer, roll or rewrite can leave behind: `CURRENT.tmp`,
/// generation directories other than `keep`, and `*.tmp` files inside `keep`. Returns what it
/// removed. Refuses (as "not a log") a directory holding files it does not know.
pub(crate) fn remove_leftovers(dir: &Path, keep: u64) -> Result<Vec<PathBuf>, LogError> {
    let mut removed = Vec::new();
    for entry in read_dir_sorted(dir)? {
        let name = file_name(&entry);
        let is_known = name == CURRENT || name == LOCK || name == CATALOG;
        if is_known {
            continue;
        }
        if name == CURRENT_TMP {
            remove_file(&entry)?;
        } else if let Some(generation) = parse_generation_name(&name) {
            if generation == keep {
                continue;
            }
            remove_dir_all(&entry)?;
        } else {
            return Err(LogError::NotALog {
                dir: dir.to_path_buf(),
                reason: format!("unexpected entry {name:?}"),
            });
        }
        removed.push(entry);
    }
    let gen_dir = dir.join(generation_name(keep));
    for entry in read_dir_sorted(&gen_dir)? {
        if file_name(&entry).ends_with(TMP_SUFFIX) {
            remove_file(&entry)?;
            removed.push(entry);
        }
    }
    if !removed.is_empty() {
        sync_dir(&gen_dir)?;
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Checks that a directory without `CURRENT` holds nothing but what a crashed first open or the
/// catalog leave, so a writer never adopts (and later deletes) someone else's files.
pub(crate) fn check_fresh(dir: &Path) -> Result<(), LogError> {
    for entry in read_dir_sorted(dir)? {
        let name = file_name(&entry);
        let known = name == LOCK
            || name == CATALOG
            || name == CURRENT_TMP
            || parse_generation_name(&name).is_some();
        if !known {
            return Err(LogError::NotALog {
                dir: dir.to_path_buf(),
                reason: format!("no {CURRENT} file, and it holds {name:?}"),
            });
        }
    }
    Ok(())
}

/// Generation directories of `dir` holding at least one segment with records: what a log
/// directory that lost its `CURRENT` still has.
pub(crate) fn generations_with_records(dir: &Path) -> Result<Vec<PathBuf>, LogError> {
    let mut found = Vec::new();
    if !dir.is_dir() {
        return Ok(found);
    }
    for entry in read_dir_sorted(dir)? {
        if parse_generation_name(&file_name(&entry)).is_none() || !entry.is_dir() {
            continue;
        }
        let has_records = read_dir_sorted(&entry)?.iter().any(|file| {
            parse_segment_name(&file_name(file)).is_some()
                && fs::metadata(file).is_ok_and(|m| m.len() > SEGMENT_HEADER_LEN as u64)
        });
        if has_records {
            found.push(entry);
        }
    }
    Ok(found)
}

/// The generation number a generation directory's name encodes.
pub(crate) fn generation_of(gen_dir: &Path) -> Option<u64> {
    parse_generation_name(&file_name(gen_dir))
}

/// Removes what a crash during the very first open can leave in a directory without `CURRENT`
/// (checked by [`check_fresh`]): `CURRENT.tmp` and generation directories without records. A
/// generation holding records means `CURRENT` was lost, not that the log never started: that is
/// refused ([`LogError::MissingCurrent`]) and nothing is removed.
pub(crate) fn remove_generations(dir: &Path) -> Result<Vec<PathBuf>, LogError> {
    if let Some(generation) = generations_with_records(dir)?.into_iter().next() {
        return Err(LogError::MissingCurrent {
            dir: dir.to_path_buf(),
            generation,
        });
    }
    let mut removed = Vec::new();
    for entry in read_dir_sorted(dir)? {
        let name = file_name(&entry);
        if name == CURRENT_TMP {
            remove_file(&entry)?;
        } else if parse_generation_name(&name).is_some() {
            remove_dir_all(&entry)?;
        } else {
            continue;
        }
        removed.push(entry);
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, LogError> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| LogError::io("list", dir, e))? {
        entries.push(entry.map_err(|e| LogError::io("list", dir, e))?.path());
    }
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One segment file found on disk, its header checked.
#[derive(Debug, Clone)]
pub(crate) struct SegmentFile {
    /// First seq, from the name and the header (they agree).
    pub first_seq: u64,
    /// Full path.
    pub path: PathBuf,
    /// File length when listed.
    pub len: u64,
}

/// Lists the segments of a generation directory in seq order, checking each header and that
/// the first one starts at seq 0. Ignores files that are not `<20 digits>.seg`.
pub(crate) fn list_segments(gen_dir: &Path) -> Result<Vec<SegmentFile>, LogError> {
    let mut segments = Vec::new();
    for path in read_dir_sorted(gen_dir)? {
        let Some(first_seq) = parse_segment_name(&file_name(&path)) else {
            continue;
        };
        let len = check_segment_header(&path, first_seq)?;
        segments.push(SegmentFile {
            first_seq,
            path,
            len,
        });
    }
    segments.sort_by_key(|s| s.first_seq);
    if let Some(first) = segments.first()
        && first.first_seq != 0
    {
        return Err(LogError::MissingStart {
            file: first.path.clone(),
            first_seq: first.first_seq,
        });
    }
    Ok(segments)
}

/// Reads and checks a segment header; returns the file length.
fn check_segment_header(path: &Path, name_seq: u64) -> Result<u64, LogError> {
    let mut file = File::open(path).map_err(|e| LogError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| LogError::io("stat", path, e))?
        .len();
    if len == 0 {
        return Err(LogError::ZeroLengthSegment {
            file: path.to_path_buf(),
        });
    }
    if len < SEGMENT_HEADER_LEN as u64 {
        return Err(LogError::BadHeader {
            file: path.to_path_buf(),
            reason: format!(
                "file is {len} bytes, shorter than the {SEGMENT_HEADER_LEN}-byte header"
            ),
        });
    }
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    file.read_exact(&mut header)
        .map_err(|e| LogError::io("read", path, e))?;
    match format::decode_segment_header(&header) {
        Ok(first_seq) if first_seq == name_seq => Ok(len),
        Ok(first_seq) => Err(LogError::FirstSeqMismatch {
            file: path.to_path_buf(),
            in_header: first_seq,
            in_name: name_seq,
        }),
        Err(HeaderProblem::BadMagic(found)) => Err(LogError::BadMagic {
            file: path.to_path_buf(),
            found,
        }),
        Err(HeaderProblem::OldVersion(found)) => Err(LogError::OldFormat {
            file: path.to_path_buf(),
            found,
        }),
        Err(HeaderProblem::UnknownVersion(found)) => Err(LogError::UnknownVersion {
            file: path.to_path_buf(),
            found,
            expected: format::FORMAT_VERSION,
        }),
        Err(HeaderProblem::Corrupt) => Err(LogError::BadHeader {
            file: path.to_path_buf(),
            reason: "header check failed".into(),
        }),
    }
}

/// Creates the segment starting at `first_seq` in `gen_dir` with its header, atomically, and
/// returns it open for appending.
pub(crate) fn create_segment(gen_dir: &Path, first_seq: u64) -> Result<(File, PathBuf), LogError> {
    let name = segment_name(first_seq);
    write_atomic(gen_dir, &name, &format::encode_segment_header(first_seq))?;
    let path = gen_dir.join(name);
    let file = storage()
        .open_append(&path)
        .map_err(|e| LogError::io("open", &path, e))?;
    Ok((file, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reject_near_misses() {
        assert_eq!(segment_name(184_512), "00000000000000184512.seg");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(
            parse_segment_name("0000000000000018451.seg"),
            None,
            "19 digits"
        );
        assert_eq!(parse_segment_name("00000000000000184512.seg.tmp"), None);
        assert_eq!(parse_segment_name("0000000000000018451x.seg"), None);
        assert_eq!(
            parse_segment_name("99999999999999999999.seg"),
            None,
            "overflows u64"
        );
        assert_eq!(parse_generation_name(&generation_name(3)), Some(3));
        assert_eq!(parse_generation_name("gen-3"), None);
    }

    #[test]
    fn current_must_name_an_existing_generation() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_current(dir.path()).unwrap(), None);
        fs::create_dir(dir.path().join(generation_name(2))).unwrap();
        write_current(dir.path(), 2).unwrap();
        assert_eq!(read_current(dir.path()).unwrap(), Some(2));
        assert!(!dir.path().join(CURRENT_TMP).exists());
        write_current(dir.path(), 5).unwrap();
        let error = read_current(dir.path()).unwrap_err();
        assert!(error.to_string().contains("does not exist"), "{error}");
        fs::write(dir.path().join(CURRENT), "junk").unwrap();
        assert!(matches!(
            read_current(dir.path()),
            Err(LogError::NotALog { .. })
        ));
    }
}
