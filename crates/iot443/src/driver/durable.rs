//! The driver's side of the durable outbox: replay at start, group commit of QoS 1
//! publishes, removal on PUBACK, expiry.

use super::{Command, Driver, Pending, reply};
use crate::error::ClientError;
use crate::message::Event;
use crate::outbox::{NewMessage, OutboxId, now_ms};
use iot443_proto::QoS;
use iot443_proto::topic::TopicName;

impl Driver {
    /// Queues what the outbox kept from an earlier run, in order, before anything new.
    pub(super) fn replay_outbox(&mut self) -> Result<(), ClientError> {
        self.expire_outbox();
        let Some(outbox) = &self.outbox else { return Ok(()) };
        let entries = outbox.pending()?;
        if !entries.is_empty() {
            tracing::info!(count = entries.len(), path = %outbox.path().display(), "replaying the outbox");
        }
        for entry in entries {
            let Ok(topic) = TopicName::new(entry.topic.clone()) else {
                tracing::warn!(topic = entry.topic, "outbox entry with an invalid topic skipped");
                continue;
            };
            let qos = if entry.qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
            let id = self.session.publish(topic, qos, entry.payload.clone(), entry.retain)?;
            self.pending.insert(id, Pending { done: None, outbox_id: Some(entry.id) });
        }
        Ok(())
    }

    /// Writes the batch's QoS 1 publishes to the outbox in one transaction. One result per
    /// such publish, in order.
    pub(super) fn persist(&mut self, batch: &[Command]) -> Vec<Result<OutboxId, String>> {
        let Some(outbox) = self.outbox.as_mut() else { return Vec::new() };
        let expires_at_ms = self.message_expiry.map(|expiry| {
            now_ms().saturating_add(i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX))
        });
        let messages: Vec<NewMessage<'_>> = batch
            .iter()
            .filter_map(|command| match command {
                Command::Publish { topic, qos: QoS::AtLeastOnce, payload, retain, .. } => {
                    Some(NewMessage {
                        topic: topic.as_str(),
                        payload,
                        qos: 1,
                        retain: *retain,
                        expires_at_ms,
                    })
                }
                _ => None,
            })
            .collect();
        if messages.is_empty() {
            return Vec::new();
        }
        match outbox.push(&messages) {
            Ok(ids) => ids.into_iter().map(Ok).collect(),
            Err(error) => {
                let text = error.to_string();
                tracing::error!("{text}");
                messages.iter().map(|_| Err(text.clone())).collect()
            }
        }
    }

    /// Drops the outbox's expired messages (at start and before every reconnect) and reports
    /// them; a message that expired is not sent late.
    pub(super) fn expire_outbox(&mut self) {
        let Some(outbox) = self.outbox.as_mut() else { return };
        if self.message_expiry.is_none() {
            return;
        }
        let expired = match outbox.take_expired(now_ms()) {
            Ok(expired) => expired,
            Err(error) => {
                tracing::error!("{error}");
                return;
            }
        };
        for entry in expired {
            tracing::warn!(
                topic = entry.topic,
                "message expired before it was acknowledged; dropped"
            );
            let found =
                self.pending.iter().find(|(_, pending)| pending.outbox_id == Some(entry.id));
            if let Some(id) = found.map(|(id, _)| *id) {
                self.session.discard_publish(id);
                if let Some(pending) = self.pending.remove(&id) {
                    reply(pending.done, Err(ClientError::Expired { topic: entry.topic.clone() }));
                }
            }
            let _ = self.events.try_send(Event::Expired { topic: entry.topic });
        }
    }

    pub(super) fn flush_outbox_removals(&mut self) {
        if self.acknowledged.is_empty() {
            return;
        }
        let Some(outbox) = self.outbox.as_mut() else {
            self.acknowledged.clear();
            return;
        };
        // At-least-once: if this fails, the rows are replayed (again) at the next start.
        if let Err(error) = outbox.remove(&self.acknowledged) {
            tracing::error!("{error}");
        }
        self.acknowledged.clear();
    }
}

pub(super) fn error_text(error: Option<String>) -> String {
    error.unwrap_or_else(|| "the outbox returned fewer ids than messages".to_owned())
}
