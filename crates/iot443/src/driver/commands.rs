//! The application's commands: publish (with the offline queue's bounds), subscribe,
//! unsubscribe, disconnect.

use super::requests::{Pending, PendingSubscribe};
use super::{COMMAND_BATCH, Command, Driver, Reply, refuse, reply};
use crate::error::ClientError;
use crate::offline_queue::WhenFull;
use crate::outbox::OutboxId;
use bytes::Bytes;
use iot443_proto::QoS;
use iot443_proto::codec::EncodeError;
use iot443_proto::session::SessionError;
use iot443_proto::topic::TopicName;

impl Driver {
    /// Handles `first` and whatever else is already queued (up to a batch), so that publishes
    /// bound for the outbox are committed to disk together.
    pub(super) fn handle_commands(&mut self, first: Command) {
        let mut batch = vec![first];
        while batch.len() < COMMAND_BATCH {
            match self.app.commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        if let Some(batch) = self.persist(batch) {
            for command in batch {
                self.apply(command);
            }
        }
    }

    /// Carries out one command that needs nothing from the outbox.
    pub(super) fn apply(&mut self, command: Command) {
        match command {
            Command::Publish { topic, qos, payload, retain, accepted, done } => {
                self.publish(topic, qos, payload, retain, None, accepted, done);
            }
            Command::Subscribe { filters, messages, done } => {
                match self.session.subscribe(filters.clone()) {
                    Ok(packet_id) => {
                        for entry in &filters {
                            self.app.deliveries.add_route(entry.filter.clone(), messages.clone());
                        }
                        self.waiting
                            .subscribes
                            .insert(packet_id, PendingSubscribe { filters, done });
                    }
                    Err(error) => {
                        let _ = done.send(Err(session_error(error, String::new())));
                    }
                }
            }
            Command::Unsubscribe { filter, done } => {
                match self.session.unsubscribe(vec![filter.clone()]) {
                    Ok(packet_id) => {
                        self.waiting.unsubscribes.insert(packet_id, (filter, done));
                    }
                    Err(error) => {
                        let _ = done.send(Err(session_error(error, filter.into_string())));
                    }
                }
            }
            Command::Disconnect { done } => self.app.disconnecting = Some(done),
        }
    }

    /// Queues a publish in the session. `outbox`: its row and expiry, when it is on disk.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn publish(
        &mut self,
        topic: TopicName,
        qos: QoS,
        payload: Bytes,
        retain: bool,
        outbox: Option<(OutboxId, Option<i64>)>,
        accepted: Option<Reply<()>>,
        done: Reply<()>,
    ) {
        if let Err(error) = self.make_room(payload.len()) {
            if let (Some((id, _)), Some(durable)) = (outbox, self.durable.as_mut()) {
                durable.acknowledged(id);
            }
            refuse(accepted, done, error);
            return;
        }
        // A clone of a topic shares its text (a reference count, no copy).
        match self.session.publish(topic.clone(), qos, payload, retain) {
            Ok(id) => {
                let (outbox_id, expires_at_ms) =
                    outbox.map_or((None, None), |(id, at)| (Some(id), at));
                let pending = Pending { done: Some(done), outbox_id, expires_at_ms };
                self.waiting.publishes.insert(id, pending);
                reply(accepted, Ok(()));
            }
            Err(error) => refuse(accepted, done, session_error(error, topic.into_string())),
        }
    }

    /// Applies the offline queue's bounds before one more message of `size` bytes is queued.
    fn make_room(&mut self, size: usize) -> Result<(), ClientError> {
        loop {
            let count = self.session.queued_len();
            let bytes = self.session.queued_bytes();
            if count < self.offline_queue.max_messages
                && bytes + size <= self.offline_queue.max_bytes
            {
                return Ok(());
            }
            let full = ClientError::QueueFull { messages: count, bytes };
            if self.offline_queue.when_full != WhenFull::DropOldestQos0 {
                return Err(full);
            }
            let Some(oldest) = self.session.oldest_queued_qos0() else { return Err(full) };
            let dropped = self.session.discard_publish(oldest);
            if let Some(pending) = self.waiting.publishes.remove(&oldest) {
                let topic = dropped.map(|publish| publish.topic.into_string()).unwrap_or_default();
                reply(pending.done, Err(ClientError::Dropped { topic }));
            }
        }
    }
}

/// A session refusal as a client error, naming the topic.
pub(super) fn session_error(error: SessionError, topic: String) -> ClientError {
    match error {
        SessionError::QosNotSupported(_) => ClientError::QosNotSupported,
        SessionError::Encode(EncodeError::PacketTooLarge { size, max }) => {
            ClientError::PayloadTooLarge { topic, size, max }
        }
        other => ClientError::Session(other),
    }
}
