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
//! # #[cfg(feature = "outbox")]
//! # fn main() -> Result<(), iot443::outbox::OutboxError> {
//! use iot443::outbox::{NewMessage, Outbox};
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
//! # #[cfg(not(feature = "outbox"))]
//! # fn main() {}
//! ```

mod error;
#[cfg(feature = "outbox")]
mod schema;
#[cfg(feature = "outbox")]
mod store;
mod worker;

pub use error::OutboxError;
#[cfg(feature = "outbox")]
pub use store::Outbox;
pub(crate) use worker::{OutboxWorker, ToStore};

use bytes::Bytes;
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

/// The system clock in unix milliseconds (0 before 1970, saturating far in the future).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
