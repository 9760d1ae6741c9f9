//! [`OutboxError`]: what can go wrong with the outbox file, naming the file and what to do.

use super::OutboxId;
#[cfg(feature = "outbox")]
use rusqlite::ErrorCode;
use std::io;
#[cfg(feature = "outbox")]
use std::path::Path;
use std::path::PathBuf;

/// Why an [`Outbox`](super::Outbox) operation failed.
///
/// Every message names the outbox file and says what to do. No variant is ever handled by
/// deleting or resetting the file: a file the outbox cannot use is left as it was.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The file, or its folder, cannot be created or written (missing folder, a path through a
    /// regular file, no permission, read-only file system).
    #[error(
        "cannot create or write the outbox {}: {source}; check that its folder exists and that \
         this user may create and write files in it (SQLite also writes `<file>-wal` beside it)",
        .path.display()
    )]
    Unwritable {
        /// The outbox file.
        path: PathBuf,
        /// What the operating system or SQLite said.
        source: io::Error,
    },
    /// Another process, or another [`Outbox`](super::Outbox) in this one, has the file open.
    #[error(
        "the outbox {} is in use by another iot443 client (another process, or another Outbox \
         on the same file); stop that client, or give each client its own outbox file",
        .path.display()
    )]
    Locked {
        /// The outbox file.
        path: PathBuf,
    },
    /// The file is damaged, or is not an SQLite database at all. It was left untouched.
    #[error(
        "the outbox {} is damaged: {detail}; it was left untouched: move it aside (`sqlite3 FILE \
         .recover` may save its messages) and start again to create a new, empty outbox",
        .path.display()
    )]
    Corrupt {
        /// The outbox file.
        path: PathBuf,
        /// What SQLite found.
        detail: String,
    },
    /// The file is an SQLite database that belongs to something else. It was left untouched.
    #[error(
        "{} is an SQLite database but not an iot443 outbox (application_id {application_id:#x}, \
         user_version {user_version}); it was left untouched: point `outbox` at another file",
        .path.display()
    )]
    NotAnOutbox {
        /// The file.
        path: PathBuf,
        /// Its `PRAGMA application_id`.
        application_id: i32,
        /// Its `PRAGMA user_version`.
        user_version: i32,
    },
    /// The outbox was written by a newer iot443 with a schema this version does not know.
    #[error(
        "the outbox {} has schema version {found}, this iot443 knows versions up to {supported}; \
         it was left untouched: upgrade iot443, or point `outbox` at another file",
        .path.display()
    )]
    SchemaVersion {
        /// The outbox file.
        path: PathBuf,
        /// The version in the file (`PRAGMA user_version`).
        found: i32,
        /// The newest version this build reads and writes.
        supported: i32,
    },
    /// The disk (or quota) holding the outbox is full. The operation stored nothing.
    #[error(
        "the disk holding the outbox {} is full; nothing was stored by this call: free space, \
         or let the client deliver what is queued",
        .path.display()
    )]
    DiskFull {
        /// The outbox file.
        path: PathBuf,
    },
    /// [`Outbox::dead_letter`](super::Outbox::dead_letter) named a message that is not pending.
    #[error(
        "message {} is not pending in the outbox {} (already acknowledged, expired or set aside); \
         nothing was moved",
        .id.0,
        .path.display()
    )]
    NotPending {
        /// The outbox file.
        path: PathBuf,
        /// The id asked for.
        id: OutboxId,
    },
    /// Any other SQLite failure (an I/O error of the device, for example).
    #[error(
        "outbox {}: {operation} failed: {source}; check the device's storage and the system log",
        .path.display()
    )]
    Storage {
        /// The outbox file.
        path: PathBuf,
        /// What was being done: "push", "remove", "open", …
        operation: &'static str,
        /// What SQLite said.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

#[cfg(feature = "outbox")]
impl OutboxError {
    /// Sorts an SQLite error into the variant a caller can act on.
    pub(super) fn sqlite(path: &Path, operation: &'static str, error: rusqlite::Error) -> Self {
        let path = path.to_path_buf();
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                OutboxError::Locked { path }
            }
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                OutboxError::Corrupt { path, detail: error.to_string() }
            }
            Some(ErrorCode::CannotOpen) => {
                OutboxError::Unwritable { path, source: io::Error::other(error) }
            }
            Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => OutboxError::Unwritable {
                path,
                source: io::Error::new(io::ErrorKind::PermissionDenied, error),
            },
            Some(ErrorCode::DiskFull) => OutboxError::DiskFull { path },
            _ => match error {
                // A value of the wrong type or range in a row: the file was edited or damaged.
                rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::IntegralValueOutOfRange(..) => {
                    OutboxError::Corrupt { path, detail: format!("unexpected value: {error}") }
                }
                other => OutboxError::Storage { path, operation, source: Box::new(other) },
            },
        }
    }
}
