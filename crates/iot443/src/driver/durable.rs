//! The driver's side of the durable outbox: replay at start, group commit of QoS 1 publishes
//! (on the outbox's own thread), removal on PUBACK, expiry.
//!
//! A batch of commands that holds QoS 1 publishes is sent to the outbox thread and applied
//! once the rows are synced: only then do the publishes enter the session (and their callers
//! learn that they are accepted). Meanwhile the driver takes no new command — the next batch
//! gathers in the command channel, to be committed together — but it goes on reading,
//! writing, acknowledging and pinging.

use super::requests::Pending;
use super::{Command, Driver, refuse, reply};
use crate::error::ClientError;
use crate::message::Event;
use crate::outbox::{OutboxEntry, OutboxError, OutboxId, OutboxWorker, ToStore, now_ms};
use iot443_proto::QoS;
use iot443_proto::topic::TopicName;
use std::sync::Arc;
use tokio::sync::oneshot;

type Stored = oneshot::Receiver<Result<Vec<OutboxId>, Arc<OutboxError>>>;

/// The outbox's thread and what the driver does with it.
pub(super) struct Durable {
    worker: OutboxWorker,
    /// How long a QoS 1 message may wait for its PUBACK.
    message_expiry: Option<std::time::Duration>,
    /// Rows acknowledged and not yet removed (removed in groups).
    acknowledged: Vec<OutboxId>,
    /// A batch waiting for its publishes to be on disk.
    committing: Option<Commit>,
}

struct Commit {
    batch: Vec<Command>,
    stored: Stored,
    expires_at_ms: Option<i64>,
}

impl Durable {
    pub(super) fn new(worker: OutboxWorker, message_expiry: Option<std::time::Duration>) -> Self {
        Durable { worker, message_expiry, acknowledged: Vec::new(), committing: None }
    }

    pub(super) fn is_committing(&self) -> bool {
        self.committing.is_some()
    }

    /// The answer of the commit in progress, to wait on.
    pub(super) fn stored_mut(&mut self) -> Option<&mut Stored> {
        self.committing.as_mut().map(|commit| &mut commit.stored)
    }

    /// Row `id` was acknowledged: it is removed with the next group.
    pub(super) fn acknowledged(&mut self, id: OutboxId) {
        self.acknowledged.push(id);
    }

    pub(super) fn dead_letter(&self, id: OutboxId, reason: &str) {
        self.worker.dead_letter(id, reason.to_owned(), now_ms());
    }

    /// Ends the outbox's thread after its last jobs (the file's lock is released).
    pub(super) async fn close(self) {
        self.worker.close().await;
    }
}

/// Waits for the outbox's answer (`None` when its thread ended without one); pending for ever
/// without a commit.
pub(super) async fn wait_stored(
    stored: Option<&mut Stored>,
) -> Option<Result<Vec<OutboxId>, Arc<OutboxError>>> {
    match stored {
        Some(stored) => stored.await.ok(),
        None => std::future::pending().await,
    }
}

impl Driver {
    /// Queues what the outbox kept from an earlier run, in order, before anything new.
    pub(super) fn replay_outbox(&mut self, entries: Vec<OutboxEntry>) -> Result<(), ClientError> {
        let Some(durable) = &self.durable else { return Ok(()) };
        if !entries.is_empty() {
            tracing::info!(count = entries.len(), path = %durable.worker.path().display(), "replaying the outbox");
        }
        for entry in entries {
            let Ok(topic) = TopicName::new(entry.topic.clone()) else {
                tracing::warn!(topic = entry.topic, "outbox entry with an invalid topic skipped");
                continue;
            };
            let qos = if entry.qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
            let id = self.session.publish(topic, qos, entry.payload.clone(), entry.retain)?;
            let pending = Pending {
                done: None,
                outbox_id: Some(entry.id),
                expires_at_ms: entry.expires_at_ms,
            };
            self.waiting.publishes.insert(id, pending);
        }
        self.expire_outbox();
        Ok(())
    }

    /// With an outbox, sends the batch's QoS 1 publishes to disk and keeps the batch until they
    /// are stored; returns the batch when there is nothing to store.
    pub(super) fn persist(&mut self, batch: Vec<Command>) -> Option<Vec<Command>> {
        let Some(durable) = self.durable.as_mut() else { return Some(batch) };
        let expires_at_ms = durable.message_expiry.map(|expiry| {
            now_ms().saturating_add(i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX))
        });
        let messages: Vec<ToStore> = batch
            .iter()
            .filter_map(|command| match command {
                Command::Publish { topic, qos: QoS::AtLeastOnce, payload, retain, .. } => {
                    Some(ToStore {
                        topic: topic.clone(),
                        payload: payload.clone(),
                        retain: *retain,
                        expires_at_ms,
                    })
                }
                _ => None,
            })
            .collect();
        if messages.is_empty() {
            return Some(batch);
        }
        let stored = durable.worker.push(messages);
        durable.committing = Some(Commit { batch, stored, expires_at_ms });
        None
    }

    /// The outbox answered the commit in progress (`None`: its thread ended): the batch is
    /// applied now, each QoS 1 publish with its row or refused with the outbox's error.
    pub(super) fn batch_stored(&mut self, result: Option<Result<Vec<OutboxId>, Arc<OutboxError>>>) {
        let Some(commit) = self.durable.as_mut().and_then(|durable| durable.committing.take())
        else {
            return;
        };
        let result =
            result.unwrap_or_else(|| Err(self.outbox_failure("the outbox's thread ended")));
        let (mut ids, failure) = match result {
            Ok(ids) => (ids.into_iter(), None),
            Err(error) => (Vec::new().into_iter(), Some(ClientError::Outbox(error))),
        };
        for command in commit.batch {
            match command {
                Command::Publish {
                    topic,
                    qos: QoS::AtLeastOnce,
                    payload,
                    retain,
                    accepted,
                    done,
                } => match (&failure, ids.next()) {
                    (None, Some(id)) => {
                        let outbox = Some((id, commit.expires_at_ms));
                        self.publish(
                            topic,
                            QoS::AtLeastOnce,
                            payload,
                            retain,
                            outbox,
                            accepted,
                            done,
                        );
                    }
                    (Some(error), _) => refuse(accepted, done, error.clone()),
                    (None, None) => {
                        let missing =
                            self.outbox_failure("the outbox returned fewer ids than messages");
                        refuse(accepted, done, ClientError::Outbox(missing));
                    }
                },
                other => self.apply(other),
            }
        }
    }

    /// An outbox failure that is not SQLite's, naming the outbox file.
    fn outbox_failure(&self, what: &str) -> Arc<OutboxError> {
        Arc::new(OutboxError::Unwritable {
            path: self.outbox_path(),
            source: std::io::Error::other(what),
        })
    }

    fn outbox_path(&self) -> std::path::PathBuf {
        self.durable.as_ref().map(|durable| durable.worker.path().to_path_buf()).unwrap_or_default()
    }

    /// Drops the messages whose expiry has passed (at start and before every reconnect) and
    /// reports them; a message that expired is not sent late.
    pub(super) fn expire_outbox(&mut self) {
        let Some(durable) = self.durable.as_ref() else { return };
        if durable.message_expiry.is_none() {
            return;
        }
        let now = now_ms();
        let mut expired: Vec<_> = self
            .waiting
            .publishes
            .iter()
            .filter(|(_, pending)| pending.expires_at_ms.is_some_and(|at| at <= now))
            .map(|(id, pending)| (*id, pending.outbox_id))
            .collect();
        expired.sort_by_key(|(_, outbox_id)| *outbox_id);
        let mut rows = Vec::new();
        for (id, outbox_id) in expired {
            let Some(publish) = self.session.discard_publish(id) else { continue };
            let topic = publish.topic.as_str().to_owned();
            tracing::warn!(topic, "message expired before it was acknowledged; dropped");
            if let Some(pending) = self.waiting.publishes.remove(&id) {
                reply(pending.done, Err(ClientError::Expired { topic: topic.clone() }));
            }
            rows.extend(outbox_id);
            let _ = self.app.events.try_send(Event::Expired { topic });
        }
        if let Some(durable) = self.durable.as_ref() {
            durable.worker.remove(rows);
        }
    }

    /// Removes the acknowledged rows, in one transaction on the outbox's thread.
    pub(super) fn flush_outbox_removals(&mut self) {
        if let Some(durable) = self.durable.as_mut()
            && !durable.acknowledged.is_empty()
        {
            // At least once: if this fails, the rows are replayed (again) at the next start.
            durable.worker.remove(std::mem::take(&mut durable.acknowledged));
        }
    }
}
