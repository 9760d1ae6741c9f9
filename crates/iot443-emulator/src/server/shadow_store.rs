//! Shadows on disk: `<dir>/shadows.sqlite3`, so that they survive a restart of the emulator the
//! way the cloud's do, and a way for the cloud side to reach a running emulator.
//!
//! * Table `shadows(thing, name, document)`: one row per shadow (`name` is `''` for the classic
//!   shadow), `document` as [`Shadow::to_stored`] writes it (a deleted shadow keeps its version).
//! * Table `requests(id, thing, name, operation, payload, answer, accepted)`: requests of the cloud
//!   side (`iot443 emulator shadow …`, see [`cloud_request`]). A running emulator takes the
//!   unanswered rows every [`REQUEST_POLL`], runs them as the shadow service (publishing their
//!   answers to subscribed devices) and writes the answer into the row.
//!
//! While an emulator serves a folder it holds an exclusive lock on `<dir>/shadows.lock`; the
//! cloud side uses the store directly when nobody holds it.
//!
//! The emulator writes on a thread of its own (`StoreThread`): the broker's lock is never held
//! across a disk write.

use crate::broker::Broker;
use iot443_proto::aws::shadow::{Shadow, ShadowId, ShadowName, ShadowOperation, ThingName};
use rusqlite::{Connection, OptionalExtension, params};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// The store's file name in the emulator's folder.
pub const SHADOW_STORE_FILE: &str = "shadows.sqlite3";
/// The lock a running emulator holds in its folder.
pub const SHADOW_LOCK_FILE: &str = "shadows.lock";
/// How often a running emulator looks for requests of the cloud side.
pub const REQUEST_POLL: Duration = Duration::from_millis(100);
/// How long the cloud side waits for a running emulator's answer.
pub const CLOUD_ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// A failure of the shadow store.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ShadowStoreError {
    /// SQLite refused an operation.
    #[error(
        "shadow store {path}: {what} failed: {source}; check that the folder is writable, or remove the file to start with no shadows"
    )]
    Sqlite {
        /// The store's file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The lock file could not be opened.
    #[error("shadow store lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A running emulator did not answer in time.
    #[error(
        "the emulator serving {dir} did not answer within {limit:?}; is it stuck? (its log says more)"
    )]
    NoAnswer {
        /// The folder.
        dir: PathBuf,
        /// How long was waited.
        limit: Duration,
    },
}

/// The open store.
#[derive(Debug)]
pub struct ShadowStore {
    path: PathBuf,
    conn: Connection,
}

fn key(id: &ShadowId) -> (&str, &str) {
    (id.thing().as_str(), id.name().map_or("", ShadowName::as_str))
}

fn id_of(thing: &str, name: &str) -> Option<ShadowId> {
    let thing = ThingName::new(thing).ok()?;
    if name.is_empty() {
        Some(ShadowId::classic(thing))
    } else {
        Some(ShadowId::named(thing, ShadowName::new(name).ok()?))
    }
}

fn operation_of(text: &str) -> Option<ShadowOperation> {
    match text {
        "get" => Some(ShadowOperation::Get),
        "update" => Some(ShadowOperation::Update),
        "delete" => Some(ShadowOperation::Delete),
        _ => None,
    }
}

impl ShadowStore {
    /// Opens (creating it if needed) the store of the emulator folder `dir`.
    ///
    /// # Errors
    /// When SQLite cannot open or set up the file.
    pub fn open(dir: &Path) -> Result<ShadowStore, ShadowStoreError> {
        /// The store's tables (and WAL), created when missing.
        const SCHEMA: &str = "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS shadows (
                 thing TEXT NOT NULL, name TEXT NOT NULL, document BLOB NOT NULL,
                 PRIMARY KEY (thing, name));
             CREATE TABLE IF NOT EXISTS requests (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, thing TEXT NOT NULL, name TEXT NOT NULL,
                 operation TEXT NOT NULL, payload BLOB NOT NULL, answer BLOB, accepted INTEGER);";
        /// How long the file may stay busy (locked by the other side) before opening fails.
        const BUSY_LIMIT: Duration = Duration::from_secs(5);
        /// The pause between two tries of the set-up while the file is busy.
        const BUSY_RETRY: Duration = Duration::from_millis(20);
        let path = dir.join(SHADOW_STORE_FILE);
        let fail = |what| {
            let path = path.clone();
            move |source| ShadowStoreError::Sqlite { path, what, source }
        };
        let conn = Connection::open(&path).map_err(fail("open"))?;
        conn.busy_timeout(BUSY_LIMIT).map_err(fail("open"))?;
        // SQLite answers SQLITE_BUSY without waiting in its busy handler when the other side
        // (the emulator's store thread, or `cloud_request` of another process) is setting the
        // file up at the same moment: the set-up is idempotent, so it is tried again.
        let started = std::time::Instant::now();
        loop {
            match conn.execute_batch(SCHEMA) {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(error, _))
                    if error.code == rusqlite::ErrorCode::DatabaseBusy
                        && started.elapsed() < BUSY_LIMIT =>
                {
                    std::thread::sleep(BUSY_RETRY);
                }
                Err(error) => return Err(fail("creating the tables")(error)),
            }
        }
        Ok(ShadowStore { path, conn })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, what: &'static str) -> impl FnOnce(rusqlite::Error) -> ShadowStoreError {
        let path = self.path.clone();
        move |source| ShadowStoreError::Sqlite { path, what, source }
    }

    /// Every stored shadow. A row that cannot be read is skipped with a warning.
    ///
    /// # Errors
    /// When SQLite cannot read the table.
    pub fn load(&self) -> Result<Vec<(ShadowId, Shadow)>, ShadowStoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT thing, name, document FROM shadows")
            .map_err(self.fail("reading the shadows"))?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, Vec<u8>>(2)?))
            })
            .map_err(self.fail("reading the shadows"))?;
        let mut shadows = Vec::new();
        for row in rows {
            let (thing, name, document) = row.map_err(self.fail("reading the shadows"))?;
            match (id_of(&thing, &name), Shadow::from_stored(&document)) {
                (Some(id), Ok(shadow)) => shadows.push((id, shadow)),
                (_, outcome) => tracing::warn!(path = %self.path.display(), thing, name,
                    error = ?outcome.err(), "a stored shadow cannot be read; it is ignored"),
            }
        }
        Ok(shadows)
    }

    /// One stored shadow (`None` when it was never stored).
    ///
    /// # Errors
    /// When SQLite cannot read it.
    pub fn get(&self, id: &ShadowId) -> Result<Option<Shadow>, ShadowStoreError> {
        let (thing, name) = key(id);
        let document: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT document FROM shadows WHERE thing = ?1 AND name = ?2",
                params![thing, name],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.fail("reading a shadow"))?;
        Ok(document.and_then(|document| Shadow::from_stored(&document).ok()))
    }

    /// Writes shadows in one transaction.
    ///
    /// # Errors
    /// When SQLite cannot write them.
    pub fn save(&mut self, shadows: &[(ShadowId, Vec<u8>)]) -> Result<(), ShadowStoreError> {
        let path = self.path.clone();
        let fail = |source| ShadowStoreError::Sqlite {
            path: path.clone(),
            what: "writing shadows",
            source,
        };
        let transaction = self.conn.transaction().map_err(fail)?;
        for (id, document) in shadows {
            let (thing, name) = key(id);
            transaction
                .execute(
                    "INSERT INTO shadows (thing, name, document) VALUES (?1, ?2, ?3)
                     ON CONFLICT (thing, name) DO UPDATE SET document = excluded.document",
                    params![thing, name, document],
                )
                .map_err(fail)?;
        }
        transaction.commit().map_err(fail)
    }

    /// Runs the cloud side's unanswered requests with `run` and writes their answers.
    fn serve_requests(&self, run: &mut RunRequest) -> Result<(), ShadowStoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT id, thing, name, operation, payload FROM requests WHERE answer IS NULL ORDER BY id")
            .map_err(self.fail("reading requests"))?;
        let pending: Vec<(i64, String, String, String, Vec<u8>)> = statement
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
            })
            .map_err(self.fail("reading requests"))?
            .collect::<Result<_, _>>()
            .map_err(self.fail("reading requests"))?;
        for (row, thing, name, operation, payload) in pending {
            let outcome = match (id_of(&thing, &name), operation_of(&operation)) {
                (Some(id), Some(operation)) => run(&id, operation, &payload),
                _ => Err(br#"{"code":400,"message":"Invalid request"}"#.to_vec()),
            };
            let (answer, accepted) = match outcome {
                Ok(document) => (document, 1),
                Err(document) => (document, 0),
            };
            self.conn
                .execute(
                    "UPDATE requests SET answer = ?1, accepted = ?2 WHERE id = ?3",
                    params![answer, accepted, row],
                )
                .map_err(self.fail("answering a request"))?;
        }
        Ok(())
    }
}

/// Unix seconds now.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Runs a cloud request on the live broker: the accepted or the error document.
pub(super) type RunRequest =
    dyn FnMut(&ShadowId, ShadowOperation, &[u8]) -> Result<Vec<u8>, Vec<u8>> + Send;

/// A change for the store thread: the shadow as it is now, written there.
pub(super) type Change = (ShadowId, Shadow);

/// The thread that writes changed shadows and serves the cloud side's requests. It ends when
/// every sender of changes is dropped, after writing what they sent.
#[derive(Debug)]
pub(super) struct StoreThread {
    thread: Option<std::thread::JoinHandle<()>>,
    _lock: File,
}

impl StoreThread {
    /// Opens the store of `dir`, loads its shadows into `broker`, and starts the thread. `run`
    /// executes a cloud request on the live broker.
    pub(super) fn start(
        dir: &Path,
        broker: &mut Broker,
        run: Box<RunRequest>,
    ) -> Result<(StoreThread, mpsc::Sender<Change>), ShadowStoreError> {
        let lock_path = dir.join(SHADOW_LOCK_FILE);
        let lock = File::create(&lock_path)
            .map_err(|source| ShadowStoreError::Lock { path: lock_path.clone(), source })?;
        if let Err(error) = lock.try_lock() {
            tracing::warn!(path = %lock_path.display(), "another emulator may serve this folder ({error}); shadows are shared through the same store");
        }
        let mut store = ShadowStore::open(dir)?;
        let shadows = store.load()?;
        tracing::info!(path = %store.path().display(), shadows = shadows.len(), "shadow store opened");
        for (id, shadow) in shadows {
            broker.restore_shadow(id, shadow);
        }
        let (changes, receiver) = mpsc::channel::<Change>();
        let mut run = run;
        let thread = std::thread::Builder::new()
            .name("iot443-shadows".into())
            .spawn(move || {
                loop {
                    let first = match receiver.recv_timeout(REQUEST_POLL) {
                        Ok(change) => Some(change),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    };
                    let mut batch: Vec<Change> = first.into_iter().collect();
                    batch.extend(receiver.try_iter());
                    save_logged(&mut store, &batch);
                    if let Err(error) = store.serve_requests(&mut *run) {
                        tracing::warn!("{error}");
                    }
                }
                let rest: Vec<Change> = receiver.try_iter().collect();
                save_logged(&mut store, &rest);
            })
            .map_err(|source| ShadowStoreError::Lock { path: lock_path, source })?;
        Ok((StoreThread { thread: Some(thread), _lock: lock }, changes))
    }

    /// Waits until the thread has written everything (call after dropping every sender).
    pub(super) fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn save_logged(store: &mut ShadowStore, batch: &[Change]) {
    if batch.is_empty() {
        return;
    }
    // The latest value of each shadow is enough; it is serialised here, off the broker's lock.
    let mut latest: std::collections::BTreeMap<&ShadowId, &Shadow> =
        std::collections::BTreeMap::new();
    for (id, shadow) in batch {
        latest.insert(id, shadow);
    }
    let rows: Vec<(ShadowId, Vec<u8>)> =
        latest.into_iter().map(|(id, shadow)| (id.clone(), shadow.to_stored())).collect();
    if let Err(error) = store.save(&rows) {
        tracing::error!("{error}; {} shadow change(s) not stored", rows.len());
    }
}

/// A request of the cloud side on the emulator folder `dir`, like `aws iot-data
/// get-thing-shadow` / `update-thing-shadow` / `delete-thing-shadow`: when an emulator serves
/// `dir`, it runs the request (publishing the answers to subscribed devices); otherwise the store
/// is changed directly. Returns the accepted document, or the error document.
///
/// # Errors
/// When the store cannot be used, or a running emulator does not answer within
/// [`CLOUD_ANSWER_LIMIT`].
pub fn cloud_request(
    dir: &Path,
    id: &ShadowId,
    operation: ShadowOperation,
    payload: &[u8],
) -> Result<Result<Vec<u8>, Vec<u8>>, ShadowStoreError> {
    let lock_path = dir.join(SHADOW_LOCK_FILE);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| ShadowStoreError::Lock { path: lock_path, source })?;
    let mut store = ShadowStore::open(dir)?;
    if lock.try_lock().is_ok() {
        return offline(&mut store, id, operation, payload);
    }
    let (thing, name) = key(id);
    store
        .conn
        .execute(
            "INSERT INTO requests (thing, name, operation, payload) VALUES (?1, ?2, ?3, ?4)",
            params![thing, name, operation.as_str(), payload],
        )
        .map_err(store.fail("queuing a request"))?;
    let row = store.conn.last_insert_rowid();
    let started = std::time::Instant::now();
    while started.elapsed() < CLOUD_ANSWER_LIMIT {
        let answer: Option<(Vec<u8>, i64)> = store
            .conn
            .query_row(
                "SELECT answer, accepted FROM requests WHERE id = ?1 AND answer IS NOT NULL",
                params![row],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(store.fail("reading an answer"))?;
        if let Some((document, accepted)) = answer {
            let _ = store.conn.execute("DELETE FROM requests WHERE id = ?1", params![row]);
            return Ok(if accepted == 1 { Ok(document) } else { Err(document) });
        }
        std::thread::sleep(REQUEST_POLL / 2);
    }
    Err(ShadowStoreError::NoAnswer { dir: dir.to_path_buf(), limit: CLOUD_ANSWER_LIMIT })
}

/// The request run on the store itself, no emulator running.
fn offline(
    store: &mut ShadowStore,
    id: &ShadowId,
    operation: ShadowOperation,
    payload: &[u8],
) -> Result<Result<Vec<u8>, Vec<u8>>, ShadowStoreError> {
    let now = unix_now();
    let mut shadow = store.get(id)?.unwrap_or_default();
    let outcome =
        shadow.answer(id, operation, payload, now).map(|answered| answered.accepted().to_vec());
    match outcome {
        Ok(document) => {
            if operation != ShadowOperation::Get {
                store.save(&[(id.clone(), shadow.to_stored())])?;
            }
            Ok(Ok(document))
        }
        Err(rejection) => Ok(Err(rejection.to_json(Some(now)))),
    }
}
