//! The durable outbox: QoS 1 messages kept in a file until the endpoint acknowledges them.
//!
//! With `outbox = "FILE"` the driver [`push`](Outbox::push)es each QoS 1 publish before the
//! caller's `publish` returns, [`remove`](Outbox::remove)s it on PUBACK, and at start replays
//! [`pending`](Outbox::pending) in order. The API is synchronous; a client runs it on a thread of
//! its own, so that a sync never stalls the client's keep-alive or its other messages, and
//! stores the publishes that arrived together in one transaction (one sync).
//!
//! # What is stored
//!
//! One SQLite file (rusqlite, SQLite bundled) with two tables, one per queue:
//!
//! - `outbox`: the messages not yet acknowledged: id, topic, payload, QoS, retain, creation time
//!   and optional expiry (unix milliseconds);
//! - `dead_letter`: messages set aside by [`Outbox::dead_letter`] (for example refused by policy
//!   again and again), with the reason and when. They stay until someone deletes them.
//!
//! [`OutboxId`]s increase in insertion order and are never reused (`AUTOINCREMENT`).
//!
//! # Durability
//!
//! The file is in WAL mode with `synchronous = FULL`: each [`push`](Outbox::push) (one
//! transaction per batch, so a batch costs one disk sync) has been synced to the device when it
//! returns `Ok`, so the message survives a crash of the process or a power loss. A batch is
//! stored whole or not at all. Delivery is *at least once*: a message acknowledged by the
//! endpoint is replayed once more if the process dies between the PUBACK and
//! [`remove`](Outbox::remove). A `push` that returns an error should be treated as not stored,
//! although after an I/O error at commit the batch may still turn up at the next start.
//!
//! # Locking
//!
//! One client per file. [`Outbox::open`] sets SQLite's `PRAGMA locking_mode = EXCLUSIVE` before
//! reading the file and then runs a write transaction, so the connection holds an exclusive lock
//! on the database file until the [`Outbox`] is dropped. A second process, or a second `Outbox`
//! in the same process, gets [`OutboxError::Locked`] at once (no waiting). The lock is the
//! operating system's (POSIX advisory locks through SQLite's VFS), so it goes away with the
//! process, even after SIGKILL: there is no stale lock file to clean up. In this mode WAL keeps
//! its index in memory, so there is a `FILE-wal` but no `FILE-shm`. A side effect: tools such
//! as the `sqlite3` shell cannot read the file while the client runs ("database is locked").
//!
//! # Schema and safety of the file
//!
//! `PRAGMA application_id` is `0x69343433` ("i443") and `PRAGMA user_version` the schema
//! version (now 1). At open, before anything is written:
//! an empty or new file becomes an outbox; a file that is not SQLite, or fails
//! `PRAGMA quick_check`, is [`OutboxError::Corrupt`]; a database of another program is
//! [`OutboxError::NotAnOutbox`]; a newer schema is [`OutboxError::SchemaVersion`]; a file or
//! folder that cannot be written is [`OutboxError::Unwritable`]. The outbox never resets,
//! deletes or rewrites a file it cannot use.
//!
//! ```no_run
//! use iot443::outbox::{NewMessage, Outbox};
//! # fn main() -> Result<(), iot443::outbox::OutboxError> {
//! let mut outbox = Outbox::open(std::path::Path::new("outbox.db"))?;
//! let ids = outbox.push(&[NewMessage {
//!     topic: "sensors/t1",
//!     payload: b"21.5",
//!     qos: 1,
//!     retain: false,
//!     expires_at_ms: None,
//! }])?;
//! // … sent, PUBACK received:
//! outbox.remove(&ids)?;
//! # Ok(()) }
//! ```

mod error;
mod schema;
mod worker;

pub use error::OutboxError;
pub(crate) use worker::{OutboxWorker, ToStore};

use bytes::Bytes;
use rusqlite::{Connection, Row, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A QoS 1 message kept on disk until the endpoint acknowledges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its place in the outbox; replay goes in this order.
    pub id: OutboxId,
    /// The topic to publish to.
    pub topic: String,
    /// The payload.
    pub payload: Bytes,
    /// The QoS it is published with.
    pub qos: u8,
    /// The MQTT retain flag.
    pub retain: bool,
    /// When it was pushed, in unix milliseconds (the system clock at [`Outbox::push`]).
    pub created_at_ms: i64,
    /// When it stops being worth sending, in unix milliseconds; see [`Outbox::take_expired`].
    pub expires_at_ms: Option<i64>,
}

/// Identifies a message in an outbox. Ids increase in insertion order and are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutboxId(pub i64);

/// A message to [`push`](Outbox::push).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewMessage<'a> {
    /// The topic to publish to.
    pub topic: &'a str,
    /// The payload.
    pub payload: &'a [u8],
    /// The QoS it is published with.
    pub qos: u8,
    /// The MQTT retain flag.
    pub retain: bool,
    /// When it stops being worth sending, in unix milliseconds; `None` keeps it until sent.
    pub expires_at_ms: Option<i64>,
}

/// A message set aside by [`Outbox::dead_letter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message as it was in the outbox, with its id.
    pub entry: OutboxEntry,
    /// Why it was set aside.
    pub reason: String,
    /// When, in unix milliseconds.
    pub at_ms: i64,
}

/// The durable outbox: one SQLite file, held exclusively while this value lives.
///
/// See the [module documentation](self) for what is stored, durability and locking.
#[derive(Debug)]
pub struct Outbox {
    conn: Connection,
    path: PathBuf,
    /// A test hook run by each push before it commits (a slow disk on purpose).
    before_commit: Option<CommitHook>,
}

/// What [`Outbox::before_commit`] runs.
struct CommitHook(Box<dyn FnMut() + Send>);

impl std::fmt::Debug for CommitHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitHook")
    }
}

const INSERT: &str = "INSERT INTO outbox (topic, payload, qos, retain, created_at_ms, \
                      expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const COLUMNS: &str = "id, topic, payload, qos, retain, created_at_ms, expires_at_ms";

impl Outbox {
    /// Opens the outbox at `path`, creating it if the file does not exist or is empty.
    ///
    /// Takes the exclusive lock for the life of the returned value, checks the file
    /// (`PRAGMA quick_check`) and its schema version. Errors: [`OutboxError::Locked`],
    /// [`OutboxError::Corrupt`], [`OutboxError::NotAnOutbox`], [`OutboxError::SchemaVersion`],
    /// [`OutboxError::Unwritable`]; the file is never reset.
    pub fn open(path: &Path) -> Result<Outbox, OutboxError> {
        let conn = schema::open(path)?;
        Ok(Outbox { conn, path: path.to_path_buf(), before_commit: None })
    }

    /// A test hook: every [`push`](Outbox::push) runs `hook` before it commits — a sleep for a
    /// slow disk, or a wait for the test's signal — to show that a client's keep-alive and
    /// acknowledgements do not wait for its outbox. Not for production use.
    #[doc(hidden)]
    pub fn before_commit(&mut self, hook: impl FnMut() + Send + 'static) {
        self.before_commit = Some(CommitHook(Box::new(hook)));
    }

    /// Stores `messages` in one transaction and returns their ids, in the same order.
    ///
    /// When this returns `Ok` the whole batch is on disk (synced); on `Err` none of it is
    /// (see the module documentation for the one exception). Batching many messages in one call
    /// costs one disk sync instead of one each.
    pub fn push(&mut self, messages: &[NewMessage<'_>]) -> Result<Vec<OutboxId>, OutboxError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let path = &self.path;
        let sqlite = |e| OutboxError::sqlite(path, "push", e);
        let created_at_ms = now_ms();
        let tx =
            self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite)?;
        let mut ids = Vec::with_capacity(messages.len());
        {
            let mut insert = tx.prepare_cached(INSERT).map_err(sqlite)?;
            for m in messages {
                let id = insert
                    .insert(params![
                        m.topic,
                        m.payload,
                        m.qos,
                        m.retain,
                        created_at_ms,
                        m.expires_at_ms
                    ])
                    .map_err(sqlite)?;
                ids.push(OutboxId(id));
            }
        }
        if let Some(CommitHook(hook)) = self.before_commit.as_mut() {
            hook();
        }
        tx.commit().map_err(sqlite)?;
        Ok(ids)
    }

    /// Removes the messages `ids` (acknowledged), in one transaction. Ids that are not pending
    /// are ignored, so removing twice is harmless.
    pub fn remove(&mut self, ids: &[OutboxId]) -> Result<(), OutboxError> {
        if ids.is_empty() {
            return Ok(());
        }
        let path = &self.path;
        let sqlite = |e| OutboxError::sqlite(path, "remove", e);
        let tx =
            self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite)?;
        {
            let mut delete =
                tx.prepare_cached("DELETE FROM outbox WHERE id = ?1").map_err(sqlite)?;
            for id in ids {
                delete.execute([id.0]).map_err(sqlite)?;
            }
        }
        tx.commit().map_err(sqlite)
    }

    /// Every message not yet removed, in id (insertion) order: what to replay at start.
    pub fn pending(&self) -> Result<Vec<OutboxEntry>, OutboxError> {
        let sqlite = |e| OutboxError::sqlite(&self.path, "read pending messages", e);
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM outbox ORDER BY id"))
            .map_err(sqlite)?;
        let entries = stmt.query_map([], entry).map_err(sqlite)?;
        entries.collect::<Result<_, _>>().map_err(sqlite)
    }

    /// How many messages are pending.
    pub fn len(&self) -> Result<u64, OutboxError> {
        self.conn
            .query_row("SELECT count(*) FROM outbox", [], |row| row.get::<_, i64>(0))
            .map(i64::unsigned_abs)
            .map_err(|e| OutboxError::sqlite(&self.path, "count pending messages", e))
    }

    /// Whether no message is pending.
    pub fn is_empty(&self) -> Result<bool, OutboxError> {
        Ok(self.len()? == 0)
    }

    /// Moves message `id` from the outbox to the dead-letter table, with `reason` and the time
    /// `at_ms` (unix milliseconds), in one transaction: it is in exactly one of the two tables
    /// whatever happens. [`OutboxError::NotPending`] if `id` is not in the outbox.
    pub fn dead_letter(
        &mut self,
        id: OutboxId,
        reason: &str,
        at_ms: i64,
    ) -> Result<(), OutboxError> {
        let path = &self.path;
        let sqlite = |e| OutboxError::sqlite(path, "set a message aside", e);
        let tx =
            self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite)?;
        let copied = tx
            .prepare_cached(&format!(
                "INSERT INTO dead_letter ({COLUMNS}, reason, at_ms) \
                 SELECT {COLUMNS}, ?2, ?3 FROM outbox WHERE id = ?1"
            ))
            .and_then(|mut insert| insert.execute(params![id.0, reason, at_ms]))
            .map_err(sqlite)?;
        if copied == 0 {
            return Err(OutboxError::NotPending { path: path.clone(), id });
        }
        tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")
            .and_then(|mut delete| delete.execute([id.0]))
            .map_err(sqlite)?;
        tx.commit().map_err(sqlite)
    }

    /// Every message set aside by [`Outbox::dead_letter`], oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, OutboxError> {
        let sqlite = |e| OutboxError::sqlite(&self.path, "read dead letters", e);
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS}, reason, at_ms FROM dead_letter ORDER BY seq"
            ))
            .map_err(sqlite)?;
        let letters = stmt
            .query_map([], |row| {
                Ok(DeadLetter { entry: entry(row)?, reason: row.get(7)?, at_ms: row.get(8)? })
            })
            .map_err(sqlite)?;
        letters.collect::<Result<_, _>>().map_err(sqlite)
    }

    /// Removes and returns, in id order, the messages whose `expires_at_ms <= now_ms`, in one
    /// transaction. The caller reports them; they are not kept anywhere else.
    pub fn take_expired(&mut self, now_ms: i64) -> Result<Vec<OutboxEntry>, OutboxError> {
        let path = &self.path;
        let sqlite = |e| OutboxError::sqlite(path, "drop expired messages", e);
        let tx =
            self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite)?;
        let expired: Vec<OutboxEntry> = {
            let mut select = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM outbox \
                     WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?1 ORDER BY id"
                ))
                .map_err(sqlite)?;
            let rows = select.query_map([now_ms], entry).map_err(sqlite)?;
            rows.collect::<Result<_, _>>().map_err(sqlite)?
        };
        if expired.is_empty() {
            return Ok(expired);
        }
        tx.prepare_cached(
            "DELETE FROM outbox WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?1",
        )
        .and_then(|mut delete| delete.execute([now_ms]))
        .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        Ok(expired)
    }

    /// The outbox file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A row of `SELECT {COLUMNS}`.
fn entry(row: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
    Ok(OutboxEntry {
        id: OutboxId(row.get(0)?),
        topic: row.get(1)?,
        payload: Bytes::from(row.get::<_, Vec<u8>>(2)?),
        qos: row.get(3)?,
        retain: row.get(4)?,
        created_at_ms: row.get(5)?,
        expires_at_ms: row.get(6)?,
    })
}

/// The system clock in unix milliseconds (0 before 1970, saturating far in the future).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
