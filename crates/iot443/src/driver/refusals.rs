//! Refusals in a row: the endpoint closing the connection again and again right after the same
//! unacknowledged PUBLISH, SUBSCRIBE or UNSUBSCRIBE (a policy that forbids it). After K of them
//! in a row that packet is given up instead of being re-sent into the same wall forever: a QoS 1
//! message goes to the dead letters, a SUBSCRIBE or UNSUBSCRIBE fails.

use super::{Driver, reply};
use crate::error::ClientError;
use crate::message::Event;
use crate::reconnect::Cause;
use iot443_proto::Packet;
use iot443_proto::codec::PacketId;
use iot443_proto::session::MessageId;

/// What a refusal is blamed on: the oldest unacknowledged packet when the endpoint closed.
/// A request is known by what it asks (`a SUBSCRIBE to a/#`), not by its packet id, which
/// changes when the session restores its subscriptions after each reconnect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Culprit {
    Publish(MessageId),
    Request(String),
}

/// `a SUBSCRIBE to a/#, b/+` or `an UNSUBSCRIBE from a/#`, for the cause of a refusal.
pub(super) fn describe_request(packet: &Packet) -> String {
    match packet {
        Packet::Subscribe(_) => format!("a SUBSCRIBE to {}", filters_of(packet)),
        Packet::Unsubscribe(_) => format!("an UNSUBSCRIBE from {}", filters_of(packet)),
        other => format!("a {}", other.packet_type()),
    }
}

/// The filters of a SUBSCRIBE or UNSUBSCRIBE, comma-separated.
fn filters_of(packet: &Packet) -> String {
    let filters: Vec<&str> = match packet {
        Packet::Subscribe(subscribe) => {
            subscribe.filters.iter().map(|e| e.filter.as_str()).collect()
        }
        Packet::Unsubscribe(unsubscribe) => {
            unsubscribe.filters.iter().map(|f| f.as_str()).collect()
        }
        _ => Vec::new(),
    };
    filters.join(", ")
}

fn request_id(packet: &Packet) -> Option<PacketId> {
    match packet {
        Packet::Subscribe(subscribe) => Some(subscribe.packet_id),
        Packet::Unsubscribe(unsubscribe) => Some(unsubscribe.packet_id),
        _ => None,
    }
}

impl Driver {
    /// Counts a refusal against the oldest unacknowledged packet; the K-th in a row against the
    /// same one gives it up.
    ///
    /// A SUBSCRIBE or UNSUBSCRIBE is blamed before a PUBLISH: after a reconnect the session
    /// sends its requests first, and the endpoint answers in order, so a request still
    /// unanswered when the endpoint closed is the one it refused (or one behind it, which is
    /// cleared at the next attempt and restarts the count).
    pub(super) fn count_refusal(&mut self, cause: &Cause) {
        let request = self
            .session
            .oldest_request()
            .map(|packet| (describe_request(packet), request_id(packet)));
        let head = match &request {
            Some((described, _)) => Some(Culprit::Request(described.clone())),
            None => self.session.oldest_unacknowledged().map(|(id, _)| Culprit::Publish(id)),
        };
        let (last, count) = &self.reconnect.refusal_streak;
        let count = if head.is_some() && head == *last { count + 1 } else { 1 };
        self.reconnect.refusal_streak = (head.clone(), count);
        let Some(head) = head else { return };
        if count < self.reconnect.backoff.policy().refusals_before_dead_letter {
            return;
        }
        self.reconnect.refusal_streak = (None, 0);
        let reason = format!("refused {count} times in a row: {cause}");
        match (head, request) {
            (Culprit::Publish(id), _) => self.dead_letter(id, reason),
            (Culprit::Request(_), Some((_, Some(packet_id)))) => {
                self.give_up_request(packet_id, reason)
            }
            (Culprit::Request(_), _) => {}
        }
    }

    /// Sets the QoS 1 message `id` aside (in the outbox's dead letters when there is one).
    fn dead_letter(&mut self, id: MessageId, reason: String) {
        let Some(publish) = self.session.discard_publish(id) else { return };
        let topic = publish.topic.as_str().to_owned();
        tracing::error!(topic, "message set aside as a dead letter: {reason}");
        if let Some(pending) = self.waiting.publishes.remove(&id) {
            if let (Some(durable), Some(outbox_id)) = (self.durable.as_ref(), pending.outbox_id) {
                durable.dead_letter(outbox_id, &reason);
            }
            reply(
                pending.done,
                Err(ClientError::DeadLettered { topic: topic.clone(), reason: reason.clone() }),
            );
        }
        let _ = self.app.events.try_send(Event::DeadLettered { topic, reason });
    }

    /// Gives up a SUBSCRIBE or UNSUBSCRIBE: its caller gets the refusal, and a SUBSCRIBE's
    /// filters are no longer restored after reconnects (an event names each).
    fn give_up_request(&mut self, packet_id: PacketId, reason: String) {
        // A restore of several filters: the endpoint does not say which one it refuses, so
        // they are restored one by one from now on, and only the refused one is given up.
        if self.session.split_restore(packet_id) {
            tracing::warn!("restoring the filters one by one to find the refused one: {reason}");
            return;
        }
        let Some(packet) = self.session.discard_request(packet_id) else { return };
        let described = describe_request(&packet);
        tracing::error!("gave up {described}: {reason}");
        let addr = self.info.addr();
        let filter_list = filters_of(&packet);
        match packet {
            Packet::Subscribe(subscribe) => {
                let filters: Vec<_> = subscribe.filters.iter().map(|e| e.filter.clone()).collect();
                self.app.deliveries.remove_routes(&filters);
                if let Some(pending) = self.waiting.subscribes.remove(&packet_id) {
                    let refused = ClientError::SubscriptionRefused { addr, filter: filter_list };
                    let _ = pending.done.send(Err(refused));
                }
                for filter in filters {
                    let _ = self.app.events.try_send(Event::SubscriptionDropped {
                        filter: filter.as_str().to_owned(),
                        reason: reason.clone(),
                    });
                }
            }
            Packet::Unsubscribe(_) => {
                if let Some((_, done)) = self.waiting.unsubscribes.remove(&packet_id) {
                    let _ = done.send(Err(ClientError::lost(
                        addr,
                        format!("gave up {described}: {reason}"),
                    )));
                }
            }
            _ => {}
        }
    }
}
