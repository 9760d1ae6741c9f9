//! Opening the file: lock, identify, check, create. Nothing here writes to a file before it is
//! known to be an empty database or an iot443 outbox of a version this build knows.

use super::OutboxError;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::io;
use std::path::Path;
use std::time::Duration;

/// `PRAGMA application_id` of an outbox: "i443" in ASCII.
pub(super) const APPLICATION_ID: i32 = 0x6934_3433;

/// `PRAGMA user_version` this build reads and writes.
pub(super) const SCHEMA_VERSION: i32 = 1;

/// The schema, version 1. `AUTOINCREMENT` keeps ids increasing even after the newest row is
/// removed, so an id is never reused (a dead letter keeps the id it had in `outbox`).
const SCHEMA_V1: &str = "
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    topic         TEXT    NOT NULL,
    payload       BLOB    NOT NULL,
    qos           INTEGER NOT NULL,
    retain        INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER
);
CREATE INDEX outbox_expiry ON outbox (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
CREATE TABLE dead_letter (
    seq           INTEGER PRIMARY KEY,
    id            INTEGER NOT NULL UNIQUE,
    topic         TEXT    NOT NULL,
    payload       BLOB    NOT NULL,
    qos           INTEGER NOT NULL,
    retain        INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER,
    reason        TEXT    NOT NULL,
    at_ms         INTEGER NOT NULL
);
";

/// Opens `path`, creating an empty outbox if the file is new or empty, and returns the
/// connection holding the exclusive lock.
pub(super) fn open(path: &Path) -> Result<Connection, OutboxError> {
    let sqlite = |operation| move |e| OutboxError::sqlite(path, operation, e);
    check_folder(path)?;

    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(sqlite("open"))?;
    // SQLite quietly opens a file it may not write read-only; every write would then fail.
    if conn.is_readonly(rusqlite::MAIN_DB).map_err(sqlite("open"))? {
        return Err(OutboxError::Unwritable {
            path: path.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::PermissionDenied,
                "this user may only read the file",
            ),
        });
    }
    // Another holder of the lock is an error now, not a wait.
    conn.busy_timeout(Duration::ZERO).map_err(sqlite("open"))?;
    // Before the first read: the lock taken by the first read or write is then held until the
    // connection closes, and WAL keeps its index in this process's memory (no `-shm` file).
    conn.query_row("PRAGMA locking_mode = EXCLUSIVE", [], |_| Ok(())).map_err(sqlite("lock"))?;

    // Identify the file before changing anything in it (the journal mode is in its header).
    let (application_id, user_version, objects) = conn
        .query_row(
            "SELECT (SELECT application_id FROM pragma_application_id), \
                    (SELECT user_version FROM pragma_user_version), \
                    (SELECT count(*) FROM sqlite_schema)",
            [],
            |row| Ok((row.get::<_, i32>(0)?, row.get::<_, i32>(1)?, row.get::<_, i64>(2)?)),
        )
        .map_err(sqlite("open"))?;
    let fresh = application_id == 0 && user_version == 0 && objects == 0;
    if !fresh {
        if application_id != APPLICATION_ID {
            return Err(OutboxError::NotAnOutbox {
                path: path.to_path_buf(),
                application_id,
                user_version,
            });
        }
        if user_version > SCHEMA_VERSION {
            return Err(OutboxError::SchemaVersion {
                path: path.to_path_buf(),
                found: user_version,
                supported: SCHEMA_VERSION,
            });
        }
        if user_version < 1 {
            return Err(OutboxError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("invalid schema version {user_version}"),
            });
        }
        quick_check(&conn, path)?;
    }

    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(sqlite("switch to WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OutboxError::Storage {
            path: path.to_path_buf(),
            operation: "switch to WAL",
            source: format!("SQLite kept journal mode {mode:?}").into(),
        });
    }
    // FULL: every commit syncs the WAL, so a returned push survives power loss.
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA journal_size_limit = 8388608;")
        .map_err(sqlite("configure"))?;

    // A write transaction, fresh file or not: it takes the exclusive lock now.
    let tx =
        conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite("lock"))?;
    if fresh {
        tx.execute_batch(SCHEMA_V1).map_err(sqlite("create"))?;
        tx.pragma_update(None, "application_id", APPLICATION_ID).map_err(sqlite("create"))?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(sqlite("create"))?;
    }
    let tables: i64 = tx
        .query_row(
            "SELECT count(*) FROM sqlite_schema \
             WHERE type = 'table' AND name IN ('outbox', 'dead_letter')",
            [],
            |row| row.get(0),
        )
        .map_err(sqlite("open"))?;
    if tables != 2 {
        return Err(OutboxError::Corrupt {
            path: path.to_path_buf(),
            detail: "the tables `outbox` and `dead_letter` are not both there".to_owned(),
        });
    }
    tx.commit().map_err(sqlite("create"))?;
    Ok(conn)
}

/// An empty path, a missing folder, a "folder" that is a file, or a path that is a folder: said
/// plainly rather than as SQLite's "unable to open database file".
fn check_folder(path: &Path) -> Result<(), OutboxError> {
    let unwritable = |source| OutboxError::Unwritable { path: path.to_path_buf(), source };
    if path.as_os_str().is_empty() {
        // SQLite would quietly use a temporary file.
        return Err(unwritable(io::Error::new(io::ErrorKind::InvalidInput, "the path is empty")));
    }
    if path.is_dir() {
        return Err(unwritable(io::Error::new(io::ErrorKind::IsADirectory, "it is a folder")));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let metadata = std::fs::metadata(folder).map_err(|e| {
        unwritable(io::Error::new(e.kind(), format!("folder {}: {e}", folder.display())))
    })?;
    if !metadata.is_dir() {
        return Err(unwritable(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a folder", folder.display()),
        )));
    }
    Ok(())
}

/// `PRAGMA quick_check`: the b-trees are well formed (not the indexes' contents).
fn quick_check(conn: &Connection, path: &Path) -> Result<(), OutboxError> {
    let sqlite = |e| OutboxError::sqlite(path, "check", e);
    let mut stmt = conn.prepare("PRAGMA quick_check(5)").map_err(sqlite)?;
    let findings = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(sqlite)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sqlite)?;
    match findings.as_slice() {
        [ok] if ok == "ok" => Ok(()),
        _ => Err(OutboxError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("PRAGMA quick_check found: {}", findings.join("; ")),
        }),
    }
}
