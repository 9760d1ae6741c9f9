//! [`Outbox`]: the SQLite file itself (feature `outbox`).

use super::{DeadLetter, NewMessage, OutboxEntry, OutboxError, OutboxId, now_ms, schema};
use bytes::Bytes;
use rusqlite::{Connection, Row, TransactionBehavior, params};
use std::path::{Path, PathBuf};

/// The durable outbox: one SQLite file, held exclusively while this value lives.
///
/// See the [module documentation](super) for what is stored, durability and locking.
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
