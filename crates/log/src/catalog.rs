//! The catalog: a sled database at `<dir>/catalog` holding what is derived from, or kept beside,
//! the segments: dataset statistics and the log identity, ingested sources with their content
//! hashes, engine checkpoints, and small named state (Kafka publish progress).
//!
//! The segments are the source of truth. Statistics and identity are stored with the log "tip"
//! they were computed for and recomputed from the segments whenever the tip differs, so they can
//! never describe another content. The catalog must never be the only copy of an event.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use cascade_events::{Event, EventKind, Id, Payload, Protocol, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::reader::{IdentityHasher, LogIdentity, LogReader};
use crate::{LogError, layout};

/// One ingested source file or folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Id the events from this source carry in `Event::source`; assigned by
    /// [`Catalog::add_source`] (dense from 0, in ingest order).
    pub id: u32,
    /// Source kind (`maker-flipside`, `chainlink-rounds`, ...).
    pub kind: String,
    /// Path as given at ingest.
    pub path: String,
    /// BLAKE3 of the source content (64 hex digits in JSON): the same content ingested twice is
    /// recognised by it.
    #[serde(with = "crate::hex32")]
    pub content_hash: [u8; 32],
    /// Rows (or records) read from the source.
    pub rows_read: u64,
    /// Events written to the log from it.
    pub events_written: u64,
    /// Earliest event time from this source.
    pub first_time: Option<Timestamp>,
    /// Latest event time from this source.
    pub last_time: Option<Timestamp>,
    /// When it was ingested, as the caller says (the library reads no clock).
    pub ingested_at: Timestamp,
}

/// What a log contains, summarised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Number of events.
    pub events: u64,
    /// First seq (`None` when empty).
    pub first_seq: Option<u64>,
    /// Last seq (`None` when empty).
    pub last_seq: Option<u64>,
    /// Earliest event time.
    pub first_time: Option<Timestamp>,
    /// Latest event time.
    pub last_time: Option<Timestamp>,
    /// Events per kind, keyed by [`EventKind::name`] in JSON.
    pub by_kind: BTreeMap<EventKind, u64>,
    /// Events per protocol (prices belong to none and are not counted here).
    pub protocols: BTreeMap<Protocol, u64>,
    /// Events per source id.
    pub by_source: BTreeMap<u32, u64>,
    /// Chain ids seen.
    pub chains: BTreeSet<u64>,
    /// Assets seen (priced, moved, seized, repaid, indexed).
    pub assets: BTreeSet<Id>,
    /// Markets (ilks, pools, comptrollers) seen per protocol.
    pub markets: BTreeMap<Protocol, BTreeSet<Id>>,
    /// Events whose time is earlier than the event before them: 0 in a correctly ordered log.
    pub out_of_order: u64,
    /// Time of the last event added, for `out_of_order`.
    #[serde(skip)]
    last_event_time: Timestamp,
}

impl DatasetStats {
    /// Counts one more event; events must be added in seq order.
    pub fn add(&mut self, event: &Event) {
        if self.events > 0 && self.last_event_time > event.time {
            self.out_of_order += 1;
        }
        self.events += 1;
        self.first_seq.get_or_insert(event.seq);
        self.last_seq = Some(event.seq);
        self.first_time = Some(self.first_time.map_or(event.time, |t| t.min(event.time)));
        self.last_time = Some(self.last_time.map_or(event.time, |t| t.max(event.time)));
        self.last_event_time = event.time;
        *self.by_kind.entry(event.kind()).or_default() += 1;
        *self.by_source.entry(event.source).or_default() += 1;
        self.chains.insert(event.chain_id);
        if let Some(protocol) = event.payload.protocol() {
            *self.protocols.entry(protocol).or_default() += 1;
        }
        let (market, assets): (Option<Id>, [Option<Id>; 2]) = match &event.payload {
            Payload::Price(p) => (None, [Some(p.asset), None]),
            Payload::VaultOpen(e) => (Some(e.market), [None, None]),
            Payload::Deposit(e) | Payload::Withdraw(e) | Payload::Borrow(e) | Payload::Repay(e) => {
                (Some(e.market), [Some(e.asset), None])
            }
            Payload::Liquidation(e) => (
                Some(e.market),
                [Some(e.collateral_asset), Some(e.debt_asset)],
            ),
            Payload::PartialLiquidation(e) => (
                Some(e.market),
                [Some(e.collateral_asset), Some(e.debt_asset)],
            ),
            Payload::CollateralToggle(e) => (Some(e.market), [Some(e.asset), None]),
            Payload::IndexUpdate(e) => (Some(e.market), [Some(e.asset), None]),
            Payload::ParamChange(e) => (Some(e.market), [None, None]),
            Payload::AuctionKick(e) => (Some(e.market), [None, None]),
            Payload::AuctionTake(e) => (Some(e.market), [None, None]),
            Payload::OracleValue(e) => (Some(e.market), [None, None]),
            Payload::OracleSourceChange(e) => (Some(e.oracle), [Some(e.asset), None]),
            Payload::PositionSnapshot(e) => (Some(e.market), [Some(e.asset), None]),
            Payload::AccountTotals(e) => (Some(e.market), [None, None]),
        };
        self.assets.extend(assets.into_iter().flatten());
        if let (Some(market), Some(protocol)) = (market, event.payload.protocol()) {
            self.markets.entry(protocol).or_default().insert(market);
        }
    }
}

/// Statistics and identity of one log content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSummary {
    /// What the log contains.
    pub stats: DatasetStats,
    /// Its content identity.
    pub identity: LogIdentity,
}

/// What the derived data was computed for (see [`LogReader`]'s tip).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tip {
    pub generation: u64,
    pub next_seq: u64,
    pub last_crc: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct Derived {
    tip: Tip,
    summary: LogSummary,
}

const DERIVED_KEY: &str = "summary";
const MAX_NAME_LEN: usize = 255;

/// The sled catalog of one log directory.
///
/// Opening the same catalog again in the same process returns a handle to the same database
/// (sled itself allows one open per directory per process); another process gets
/// [`LogError::CatalogBusy`]. Handles are cheap to clone and can be shared between threads. Writes
/// become durable at [`Catalog::flush`] (sources are flushed when added or updated), within
/// sled's background flush interval (500 ms), or when the last handle is dropped.
#[derive(Clone)]
pub struct Catalog {
    dir: PathBuf,
    shared: Arc<Shared>,
}

struct Trees {
    db: sled::Db,
    sources: sled::Tree,
    hashes: sled::Tree,
    checkpoints: sled::Tree,
    state: sled::Tree,
    derived: sled::Tree,
}

/// One open database, shared by every handle of this process.
struct Shared {
    /// Canonical path of the catalog directory: the registry key.
    path: PathBuf,
    /// Taken (closing the database) while the registry is locked, so a concurrent open never
    /// meets a database that is still closing.
    trees: Option<Trees>,
}

/// The catalogs open in this process.
static OPEN: Mutex<BTreeMap<PathBuf, Weak<Shared>>> = Mutex::new(BTreeMap::new());

fn registry() -> std::sync::MutexGuard<'static, BTreeMap<PathBuf, Weak<Shared>>> {
    OPEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for Shared {
    fn drop(&mut self) {
        let mut open = registry();
        drop(self.trees.take());
        if open
            .get(&self.path)
            .is_some_and(|weak| weak.strong_count() == 0)
        {
            open.remove(&self.path);
        }
    }
}

/// How long an open waits for sled's lock before calling the catalog busy.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens the database, waiting a little for its file lock: sled's background flusher keeps the
/// lock for a moment after the last handle of a closed database is dropped, so an immediate
/// reopen in the same process (a replay right after another) would otherwise see it as held by a
/// stranger.
fn open_db(path: &Path) -> sled::Result<sled::Db> {
    let started = std::time::Instant::now();
    loop {
        match sled::open(path) {
            Err(sled::Error::Io(io)) if is_lock_conflict(&io) && started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

fn is_lock_conflict(io: &std::io::Error) -> bool {
    io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock")
}

fn open_trees(path: &Path) -> Result<Trees, LogError> {
    let failed = |source: sled::Error| match &source {
        // sled 0.34 reports its lock conflict as an `Other` I/O error with this message.
        sled::Error::Io(io) if is_lock_conflict(io) => LogError::CatalogBusy {
            path: path.to_path_buf(),
        },
        _ => LogError::Catalog {
            path: path.to_path_buf(),
            source,
        },
    };
    let db = open_db(path).map_err(failed)?;
    let tree = |name: &str| db.open_tree(name).map_err(failed);
    Ok(Trees {
        sources: tree("sources")?,
        hashes: tree("source_hashes")?,
        checkpoints: tree("checkpoints")?,
        state: tree("state")?,
        derived: tree("derived")?,
        db,
    })
}

impl Catalog {
    /// Opens (creating if absent) the catalog of the log at `dir`, or joins the handle already
    /// open in this process.
    pub fn open(dir: &Path) -> Result<Catalog, LogError> {
        let path = dir.join(layout::CATALOG);
        std::fs::create_dir_all(&path).map_err(|e| LogError::io("create directory", &path, e))?;
        let path = path
            .canonicalize()
            .map_err(|e| LogError::io("resolve", &path, e))?;
        loop {
            let mut open = registry();
            match open.get(&path).map(Weak::upgrade) {
                Some(Some(shared)) => {
                    return Ok(Catalog {
                        dir: dir.to_path_buf(),
                        shared,
                    });
                }
                // The last handle is being dropped: let it finish closing the database.
                Some(None) => {
                    drop(open);
                    std::thread::yield_now();
                }
                None => {
                    let shared = Arc::new(Shared {
                        trees: Some(open_trees(&path)?),
                        path: path.clone(),
                    });
                    open.insert(path, Arc::downgrade(&shared));
                    return Ok(Catalog {
                        dir: dir.to_path_buf(),
                        shared,
                    });
                }
            }
        }
    }

    fn trees(&self) -> &Trees {
        self.shared
            .trees
            .as_ref()
            .expect("the trees are taken only when the last handle is dropped")
    }

    fn sled<T>(&self, result: sled::Result<T>) -> Result<T, LogError> {
        result.map_err(|source| LogError::Catalog {
            path: self.shared.path.clone(),
            source,
        })
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), LogError> {
        self.sled(self.trees().db.flush()).map(drop)
    }

    /// Ingested sources in ingest (id) order.
    pub fn sources(&self) -> Result<Vec<SourceRecord>, LogError> {
        self.trees()
            .sources
            .iter()
            .map(|entry| {
                let (key, value) = self.sled(entry)?;
                parse_json(&format!("sources/{key:?}"), &value)
            })
            .collect()
    }

    /// The source with this content hash, if it was ingested.
    pub fn find_source(&self, content_hash: &[u8; 32]) -> Result<Option<SourceRecord>, LogError> {
        let Some(id) = self.sled(self.trees().hashes.get(content_hash))? else {
            return Ok(None);
        };
        let value =
            self.sled(self.trees().sources.get(&id))?
                .ok_or_else(|| LogError::CatalogEntry {
                    key: format!("source_hashes/{}", crate::hex32::to_hex(content_hash)),
                    reason: "names a source that does not exist".into(),
                })?;
        parse_json("sources", &value).map(Some)
    }

    /// Records a new source, assigning its id (the `id` field given is ignored) and flushing.
    /// A source whose content hash is already present is [`LogError::DuplicateSource`].
    pub fn add_source(&self, mut source: SourceRecord) -> Result<u32, LogError> {
        if let Some(existing) = self.find_source(&source.content_hash)? {
            return Err(LogError::DuplicateSource {
                existing: existing.id,
                hash: crate::hex32::to_hex(&source.content_hash),
            });
        }
        let id = match self.sled(self.trees().sources.last())? {
            Some((key, _)) => decode_id(&key)? + 1,
            None => 0,
        };
        source.id = id;
        let key = id.to_be_bytes();
        self.sled(self.trees().sources.insert(key, to_json(&source)))?;
        self.sled(self.trees().hashes.insert(source.content_hash, &key))?;
        self.flush()?;
        Ok(id)
    }

    /// Replaces the record of an existing source (same id and content hash), e.g. to fill in
    /// counts known only after its events were written. Flushes.
    pub fn update_source(&self, source: &SourceRecord) -> Result<(), LogError> {
        let key = source.id.to_be_bytes();
        let Some(old) = self.sled(self.trees().sources.get(key))? else {
            return Err(LogError::UnknownSource(source.id));
        };
        let old: SourceRecord = parse_json("sources", &old)?;
        if old.content_hash != source.content_hash {
            return Err(LogError::CatalogEntry {
                key: format!("sources/{}", source.id),
                reason: "update changes the content hash".into(),
            });
        }
        self.sled(self.trees().sources.insert(key, to_json(source)))?;
        self.flush()
    }

    /// Makes the source registry equal to `sources` (the log manifest's, which is the source of
    /// truth): when they differ, both source trees are cleared and refilled. Returns whether
    /// anything changed. Flushes.
    pub fn sync_sources(&self, sources: &[SourceRecord]) -> Result<bool, LogError> {
        if self.sources()? == sources {
            return Ok(false);
        }
        let trees = self.trees();
        self.sled(trees.sources.clear())?;
        self.sled(trees.hashes.clear())?;
        for source in sources {
            let key = source.id.to_be_bytes();
            self.sled(trees.sources.insert(key, to_json(source)))?;
            self.sled(trees.hashes.insert(source.content_hash, &key))?;
        }
        self.flush()?;
        Ok(true)
    }

    /// Opens the catalog, and when sled cannot open or read it (a crash or a full disk can leave
    /// it unreadable), deletes it and starts an empty one: everything in it is derived or
    /// recomputable (sources from the manifest, statistics from the segments, checkpoints by
    /// replaying). Returns the catalog and, when it was rebuilt, the error that made it necessary.
    /// A catalog held by another process is still [`LogError::CatalogBusy`].
    pub fn open_rebuilding(dir: &Path) -> Result<(Catalog, Option<LogError>), LogError> {
        let damage = match Catalog::open(dir).and_then(|catalog| {
            catalog.sources()?;
            Ok(catalog)
        }) {
            Ok(catalog) => return Ok((catalog, None)),
            Err(error @ (LogError::Catalog { .. } | LogError::CatalogEntry { .. })) => error,
            Err(error) => return Err(error),
        };
        let path = dir.join(layout::CATALOG);
        std::fs::remove_dir_all(&path).map_err(|e| LogError::io("remove", &path, e))?;
        Ok((Catalog::open(dir)?, Some(damage)))
    }

    /// The log tip (generation, next seq) the stored statistics were computed for, if any.
    pub fn recorded_tip(&self) -> Result<Option<(u64, u64)>, LogError> {
        let Some(value) = self.sled(self.trees().derived.get(DERIVED_KEY))? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<Derived>(&value)
            .ok()
            .map(|derived| (derived.tip.generation, derived.tip.next_seq)))
    }

    /// Statistics of the log's current content (recomputed from the segments when stale).
    pub fn stats(&self) -> Result<DatasetStats, LogError> {
        Ok(self.summary()?.stats)
    }

    /// Identity of the log's current content (recomputed from the segments when stale).
    pub fn identity(&self) -> Result<LogIdentity, LogError> {
        Ok(self.summary()?.identity)
    }

    /// Statistics and identity of the log's current content. A directory without a log yet has
    /// empty statistics.
    pub fn summary(&self) -> Result<LogSummary, LogError> {
        if layout::read_current(&self.dir)?.is_none() {
            return Ok(LogSummary {
                stats: DatasetStats::default(),
                identity: IdentityHasher::new().finish(),
            });
        }
        self.refresh(&LogReader::open(&self.dir)?)
    }

    /// Statistics and identity for the content `reader` sees: the stored ones when they were
    /// computed for the same tip, otherwise recomputed by reading every event and stored.
    pub fn refresh(&self, reader: &LogReader) -> Result<LogSummary, LogError> {
        let tip = reader.tip();
        if let Some(value) = self.sled(self.trees().derived.get(DERIVED_KEY))? {
            // An unreadable entry is only derived data: recompute it.
            if let Ok(derived) = serde_json::from_slice::<Derived>(&value)
                && derived.tip == tip
            {
                return Ok(derived.summary);
            }
        }
        let summary = summarize(reader)?;
        let derived = Derived {
            tip,
            summary: summary.clone(),
        };
        self.sled(self.trees().derived.insert(DERIVED_KEY, to_json(&derived)))?;
        Ok(summary)
    }

    /// Stores engine state for `namespace` (e.g. a scenario hash) as of `seq` (the state after
    /// applying every event before `seq`, by the engine's own convention).
    pub fn put_checkpoint(&self, namespace: &str, seq: u64, state: &[u8]) -> Result<(), LogError> {
        let key = checkpoint_key(namespace, seq)?;
        self.sled(self.trees().checkpoints.insert(key, state))
            .map(drop)
    }

    /// The checkpoint of `namespace` with the largest seq not above `seq`.
    pub fn checkpoint_at_or_before(
        &self,
        namespace: &str,
        seq: u64,
    ) -> Result<Option<(u64, Vec<u8>)>, LogError> {
        let low = checkpoint_key(namespace, 0)?;
        let high = checkpoint_key(namespace, seq)?;
        let Some(entry) = self.trees().checkpoints.range(low..=high).next_back() else {
            return Ok(None);
        };
        let (key, value) = self.sled(entry)?;
        let seq_bytes = key[key.len() - 8..]
            .try_into()
            .map_err(|_| LogError::CatalogEntry {
                key: format!("checkpoints/{namespace}"),
                reason: "key without a seq".into(),
            })?;
        Ok(Some((u64::from_be_bytes(seq_bytes), value.to_vec())))
    }

    /// Removes every checkpoint of `namespace`; returns how many there were.
    pub fn clear_checkpoints(&self, namespace: &str) -> Result<u64, LogError> {
        let mut prefix = name_bytes("checkpoint namespace", namespace)?;
        prefix.push(0);
        let mut removed = 0;
        for entry in self.trees().checkpoints.scan_prefix(&prefix) {
            let (key, _) = self.sled(entry)?;
            self.sled(self.trees().checkpoints.remove(key))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Stores a small named value.
    pub fn put_state(&self, key: &str, value: &[u8]) -> Result<(), LogError> {
        let key = name_bytes("state key", key)?;
        self.sled(self.trees().state.insert(key, value)).map(drop)
    }

    /// Reads a named value.
    pub fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>, LogError> {
        let key = name_bytes("state key", key)?;
        Ok(self.sled(self.trees().state.get(key))?.map(|v| v.to_vec()))
    }
}

impl LogSummary {
    /// Computes statistics and identity by reading every event of `reader`'s snapshot once,
    /// without a catalog (for tools that cannot open it, e.g. while another process holds it).
    pub fn of(reader: &LogReader) -> Result<LogSummary, LogError> {
        summarize(reader)
    }
}

/// Reads every event of the snapshot once, computing statistics and identity together.
fn summarize(reader: &LogReader) -> Result<LogSummary, LogError> {
    let mut stats = DatasetStats::default();
    let mut hasher = IdentityHasher::new();
    let mut failure = None;
    let mut cursor = reader.cursor(0);
    while let Some((seq, payload)) = cursor.next_record()? {
        hasher.push(payload);
        match cascade_events::decode(seq, payload) {
            Ok(event) => stats.add(&event),
            Err(source) => {
                failure = Some((seq, source));
                break;
            }
        }
    }
    if let Some((seq, source)) = failure {
        let file = reader.segment_for(seq).unwrap_or_default();
        return Err(LogError::Decode { file, seq, source });
    }
    Ok(LogSummary {
        stats,
        identity: hasher.finish(),
    })
}

fn name_bytes(what: &'static str, name: &str) -> Result<Vec<u8>, LogError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > MAX_NAME_LEN {
        "longer than 255 bytes"
    } else if name.contains('\0') {
        "contains a NUL byte"
    } else {
        return Ok(name.as_bytes().to_vec());
    };
    Err(LogError::InvalidKey {
        what,
        value: name.to_owned(),
        reason,
    })
}

/// `namespace`, NUL, seq big-endian: sled's byte order then sorts a namespace's checkpoints by seq.
fn checkpoint_key(namespace: &str, seq: u64) -> Result<Vec<u8>, LogError> {
    let mut key = name_bytes("checkpoint namespace", namespace)?;
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    Ok(key)
}

fn decode_id(key: &[u8]) -> Result<u32, LogError> {
    let bytes: [u8; 4] = key.try_into().map_err(|_| LogError::CatalogEntry {
        key: format!("sources/{key:02x?}"),
        reason: "source key is not 4 bytes".into(),
    })?;
    Ok(u32::from_be_bytes(bytes))
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("catalog values are plain data that always serialise")
}

fn parse_json<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, LogError> {
    serde_json::from_slice(bytes).map_err(|e| LogError::CatalogEntry {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}
