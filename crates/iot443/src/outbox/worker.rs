//! The outbox on its own thread: SQLite's syncs never stall the driver's task (nor, on a
//! current-thread runtime, every other task of the program).
//!
//! The driver sends [`Job`]s in order and the thread runs them in that order, so a removal
//! sent after a push always finds the row. A push answers on a oneshot channel, which the
//! driver awaits among its other wake-ups; the rest is fire-and-forget (a failure is logged:
//! at least once, the row is replayed at the next start).

#[cfg(feature = "outbox")]
use super::{NewMessage, Outbox};
use super::{OutboxError, OutboxId};
use bytes::Bytes;
use std::sync::Arc;
#[cfg(feature = "outbox")]
use std::sync::mpsc;
use tokio::sync::oneshot;

/// A QoS 1 message to store, owned so that it can cross to the thread.
// Without the feature `outbox` it is built (the driver's code is the same) but never stored.
#[cfg_attr(not(feature = "outbox"), allow(dead_code))]
#[derive(Debug, Clone)]
pub(crate) struct ToStore {
    pub(crate) topic: iot443_proto::topic::TopicName,
    pub(crate) payload: Bytes,
    pub(crate) retain: bool,
    pub(crate) expires_at_ms: Option<i64>,
}

/// What the outbox thread is asked to do.
#[cfg(feature = "outbox")]
enum Job {
    Push(Vec<ToStore>, oneshot::Sender<Result<Vec<OutboxId>, Arc<OutboxError>>>),
    Remove(Vec<OutboxId>),
    DeadLetter { id: OutboxId, reason: String, at_ms: i64 },
}

/// The driver's handle on the outbox thread. Dropping it ends the thread once the jobs sent
/// before are done (and closes the file, releasing its lock).
#[cfg(feature = "outbox")]
#[derive(Debug)]
pub(crate) struct OutboxWorker {
    jobs: mpsc::Sender<Job>,
    path: std::path::PathBuf,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[cfg(feature = "outbox")]
impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Push(messages, _) => write!(f, "Push({} messages)", messages.len()),
            Job::Remove(ids) => write!(f, "Remove({} ids)", ids.len()),
            Job::DeadLetter { id, .. } => write!(f, "DeadLetter({id:?})"),
        }
    }
}

#[cfg(feature = "outbox")]
impl OutboxWorker {
    /// Moves `outbox` to a thread of its own.
    pub(crate) fn start(outbox: Outbox) -> Result<OutboxWorker, OutboxError> {
        let path = outbox.path().to_path_buf();
        let (jobs, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("iot443-outbox".into())
            .spawn(move || run(outbox, receiver))
            .map_err(|source| OutboxError::Unwritable { path: path.clone(), source })?;
        Ok(OutboxWorker { jobs, path, thread: Some(thread) })
    }

    /// The outbox file.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Stores `messages` in one transaction; the answer comes once they are synced.
    pub(crate) fn push(
        &self,
        messages: Vec<ToStore>,
    ) -> oneshot::Receiver<Result<Vec<OutboxId>, Arc<OutboxError>>> {
        let (answer, receiver) = oneshot::channel();
        // A send fails only when the thread is gone; the dropped `answer` then says so.
        let _ = self.jobs.send(Job::Push(messages, answer));
        receiver
    }

    /// Removes acknowledged (or expired) rows.
    pub(crate) fn remove(&self, ids: Vec<OutboxId>) {
        if !ids.is_empty() {
            let _ = self.jobs.send(Job::Remove(ids));
        }
    }

    /// Moves a row to the dead letters.
    pub(crate) fn dead_letter(&self, id: OutboxId, reason: String, at_ms: i64) {
        let _ = self.jobs.send(Job::DeadLetter { id, reason, at_ms });
    }

    /// Ends the thread after the jobs already sent, and waits for it on the blocking pool (the
    /// file's lock is released when this returns).
    pub(crate) async fn close(mut self) {
        let thread = self.thread.take();
        drop(self);
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

#[cfg(feature = "outbox")]
fn run(mut outbox: Outbox, jobs: mpsc::Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Push(messages, answer) => {
                let rows: Vec<NewMessage<'_>> = messages
                    .iter()
                    .map(|message| NewMessage {
                        topic: message.topic.as_str(),
                        payload: &message.payload,
                        qos: 1,
                        retain: message.retain,
                        expires_at_ms: message.expires_at_ms,
                    })
                    .collect();
                let result = outbox.push(&rows).map_err(|error| {
                    tracing::error!("{error}");
                    Arc::new(error)
                });
                let _ = answer.send(result);
            }
            Job::Remove(ids) => {
                // At least once: a row that stays is replayed (again) at the next start.
                if let Err(error) = outbox.remove(&ids) {
                    tracing::error!("{error}");
                }
            }
            Job::DeadLetter { id, reason, at_ms } => {
                if let Err(error) = outbox.dead_letter(id, &reason, at_ms) {
                    tracing::error!("{error}");
                }
            }
        }
    }
}

/// Without the feature `outbox` there is no outbox to run: no value of this type exists, so the
/// driver's outbox paths are compiled but can never be taken (and cost nothing).
#[cfg(not(feature = "outbox"))]
#[derive(Debug)]
pub(crate) enum OutboxWorker {}

#[cfg(not(feature = "outbox"))]
impl OutboxWorker {
    /// The outbox file.
    pub(crate) fn path(&self) -> &std::path::Path {
        match *self {}
    }

    /// Stores `messages` (never called: there is no worker).
    pub(crate) fn push(
        &self,
        _messages: Vec<ToStore>,
    ) -> oneshot::Receiver<Result<Vec<OutboxId>, Arc<OutboxError>>> {
        match *self {}
    }

    /// Removes rows (never called: there is no worker).
    pub(crate) fn remove(&self, _ids: Vec<OutboxId>) {
        match *self {}
    }

    /// Moves a row to the dead letters (never called: there is no worker).
    pub(crate) fn dead_letter(&self, _id: OutboxId, _reason: String, _at_ms: i64) {
        match *self {}
    }

    /// Ends the thread (never called: there is no worker).
    pub(crate) async fn close(self) {
        match self {}
    }
}
