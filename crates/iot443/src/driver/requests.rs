//! The callers waiting for an answer: publishes until PUBACK (or written, at QoS 0), SUBSCRIBEs
//! until SUBACK, UNSUBSCRIBEs until UNSUBACK.

use super::id_hash::IdMap;
use super::{Reply, reply};
use crate::error::ClientError;
use crate::outbox::OutboxId;
use iot443_proto::QoS;
use iot443_proto::codec::{PacketId, SubscribeFilter};
use iot443_proto::session::MessageId;
use iot443_proto::topic::TopicFilter;

/// A publish the driver answers once it is delivered.
pub(super) struct Pending {
    /// The caller, if one waits (a message replayed from the outbox has none).
    pub(super) done: Option<Reply<()>>,
    /// Its row in the outbox, with an outbox.
    pub(super) outbox_id: Option<OutboxId>,
    /// With an outbox and a message expiry: when it stops being worth sending (unix ms).
    pub(super) expires_at_ms: Option<i64>,
}

/// A SUBSCRIBE the driver answers on SUBACK.
pub(super) struct PendingSubscribe {
    pub(super) filters: Vec<SubscribeFilter>,
    pub(super) done: Reply<Vec<QoS>>,
}

/// Everyone waiting for an answer, by what the session knows them by.
#[derive(Default)]
pub(super) struct Waiting {
    pub(super) publishes: IdMap<MessageId, Pending>,
    pub(super) subscribes: IdMap<PacketId, PendingSubscribe>,
    pub(super) unsubscribes: IdMap<PacketId, (TopicFilter, Reply<()>)>,
}

impl Waiting {
    /// Answers the publish `id`'s caller; on success returns its outbox row, to forget.
    pub(super) fn answer(
        &mut self,
        id: MessageId,
        result: Result<(), ClientError>,
    ) -> Option<OutboxId> {
        let pending = self.publishes.remove(&id)?;
        let delivered = result.is_ok();
        reply(pending.done, result);
        pending.outbox_id.filter(|_| delivered)
    }

    /// Every caller gets `error`.
    pub(super) fn fail_all(&mut self, error: &ClientError) {
        for (_, pending) in self.publishes.drain() {
            reply(pending.done, Err(error.clone()));
        }
        for (_, pending) in self.subscribes.drain() {
            let _ = pending.done.send(Err(error.clone()));
        }
        for (_, (_, done)) in self.unsubscribes.drain() {
            let _ = done.send(Err(error.clone()));
        }
    }
}
