//! Subscriptions, retained messages, and the way a message reaches each session.
//!
//! * Filters without wildcards are looked up by topic; filters with wildcards are matched one
//!   by one under [`MatchRule::AwsIot`] (`a/#` does not match `a`).
//! * A client subscribed with several filters matching one topic gets the message once, at the
//!   highest QoS granted among them (MQTT 3.1.1 §3.3.5 allows this; IoT Core's behaviour is
//!   not documented).
//! * The delivered QoS is the lower of the PUBLISH's QoS and the granted QoS. Live messages go
//!   out with RETAIN = 0; a retained message sent because of a SUBSCRIBE has RETAIN = 1.
//! * Retained messages: one per topic, replaced by the next retained PUBLISH; a retained PUBLISH
//!   with an empty payload deletes it (and is still forwarded). Sent on SUBSCRIBE only for a
//!   filter without wildcards (AWS-IOT.md §3.7).

use super::Broker;
use super::sessions::{MAX_INFLIGHT, Message};
use crate::peer_text::peer_text;
use bytes::Bytes;
use iot443_proto::Instant;
use iot443_proto::codec::{Packet, PublishQos, QoS};
use iot443_proto::topic::{MatchRule, TopicFilter, TopicName};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A stored retained message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Retained {
    pub(crate) payload: Bytes,
    pub(crate) qos: QoS,
}

/// The subscription index and the retained store.
///
/// Client ids are shared (`Arc<str>`, ordered like `str`): routing a message copies no client
/// id.
#[derive(Debug, Default)]
pub(crate) struct Router {
    /// Filters without wildcards, by topic: client id → granted QoS.
    exact: BTreeMap<String, BTreeMap<Arc<str>, QoS>>,
    /// Filters with wildcards: client id → granted QoS.
    wildcard: BTreeMap<TopicFilter, BTreeMap<Arc<str>, QoS>>,
    retained: BTreeMap<TopicName, Retained>,
}

impl Router {
    /// Adds or updates `client_id`'s subscription to `filter`.
    pub(crate) fn subscribe(&mut self, client_id: &str, filter: &TopicFilter, qos: QoS) {
        let subscribers = if filter.has_wildcards() {
            self.wildcard.entry(filter.clone()).or_default()
        } else {
            self.exact.entry(filter.as_str().to_owned()).or_default()
        };
        match subscribers.get_mut(client_id) {
            Some(granted) => *granted = qos,
            None => {
                subscribers.insert(Arc::from(client_id), qos);
            }
        }
    }

    /// Removes `client_id`'s subscription to `filter`, if any.
    pub(crate) fn unsubscribe(&mut self, client_id: &str, filter: &TopicFilter) {
        if filter.has_wildcards() {
            if let Some(subscribers) = self.wildcard.get_mut(filter) {
                subscribers.remove(client_id);
                if subscribers.is_empty() {
                    self.wildcard.remove(filter);
                }
            }
        } else if let Some(subscribers) = self.exact.get_mut(filter.as_str()) {
            subscribers.remove(client_id);
            if subscribers.is_empty() {
                self.exact.remove(filter.as_str());
            }
        }
    }

    /// Every client id with a filter matching `topic`, with the highest QoS granted, in client
    /// id order.
    pub(crate) fn subscribers(&self, topic: &TopicName) -> BTreeMap<Arc<str>, QoS> {
        let mut found: BTreeMap<Arc<str>, QoS> = BTreeMap::new();
        let mut add = |subscribers: &BTreeMap<Arc<str>, QoS>| {
            for (client_id, &qos) in subscribers {
                let best = found.entry(Arc::clone(client_id)).or_insert(qos);
                *best = (*best).max(qos);
            }
        };
        if let Some(subscribers) = self.exact.get(topic.as_str()) {
            add(subscribers);
        }
        for (filter, subscribers) in &self.wildcard {
            if filter.matches(topic, MatchRule::AwsIot) {
                add(subscribers);
            }
        }
        found
    }

    /// Stores (or, for an empty payload, deletes) the retained message of `topic`.
    pub(crate) fn retain(&mut self, topic: &TopicName, payload: &Bytes, qos: QoS) {
        if payload.is_empty() {
            self.retained.remove(topic);
        } else {
            self.retained.insert(topic.clone(), Retained { payload: payload.clone(), qos });
        }
    }

    /// The retained message of `topic`.
    pub(crate) fn retained(&self, topic: &TopicName) -> Option<&Retained> {
        self.retained.get(topic)
    }

    /// Number of retained messages.
    pub(crate) fn retained_count(&self) -> usize {
        self.retained.len()
    }
}

impl Broker {
    /// Routes a message published by a client (or a last will) to every matching session, and
    /// updates the retained store when `retain` is set.
    pub(crate) fn route(
        &mut self,
        now: Instant,
        topic: &TopicName,
        payload: &Bytes,
        qos: QoS,
        retain: bool,
    ) {
        if retain {
            self.router.retain(topic, payload, qos);
        }
        for (client_id, granted) in self.router.subscribers(topic) {
            let message = Message { topic: topic.clone(), payload: payload.clone(), retain: false };
            self.deliver(now, &client_id, message, qos.min(granted));
        }
    }

    /// Sends the retained message of `topic` to `client_id`, just subscribed at `granted`.
    pub(crate) fn deliver_retained(
        &mut self,
        now: Instant,
        client_id: &str,
        topic: &TopicName,
        granted: QoS,
    ) {
        let Some(retained) = self.router.retained(topic) else { return };
        let qos = retained.qos.min(granted);
        let message =
            Message { topic: topic.clone(), payload: retained.payload.clone(), retain: true };
        self.deliver(now, client_id, message, qos);
    }

    /// Hands one message to a session at `qos` (0 or 1).
    ///
    /// Online: sent at once (QoS 0, or QoS 1 with room in the in-flight window and nothing
    /// waiting), else queued behind the window. With strict rates, each live delivery takes a
    /// token of the connection's publish quota or is discarded. Offline persistent session:
    /// QoS 1 is stored, QoS 0 dropped.
    pub(crate) fn deliver(&mut self, now: Instant, client_id: &str, message: Message, qos: QoS) {
        let max_queued = self.config.max_queued_per_session;
        let Some(session) = self.sessions.get_mut(client_id) else { return };
        let connection = session.connection.and_then(|id| self.connections.get_mut(&id));
        let Some(conn) = connection else {
            if session.persistent && qos != QoS::AtMostOnce {
                if session.queued() < max_queued {
                    session.backlog.push_back(message);
                } else if session.overflow.record() {
                    tracing::warn!(client_id = ?peer_text(client_id), max_queued,
                        "offline session queue full: dropping QoS 1 messages for it until it resumes and its queue drains to half");
                }
            }
            return;
        };
        if self.config.strict_rates
            && !conn.take_publish_token(
                now,
                &mut self.discarded,
                "outbound",
                client_id,
                &message.topic,
            )
        {
            return;
        }
        match qos {
            QoS::AtMostOnce => {
                let publish = message.publish(PublishQos::AtMostOnce, false);
                conn.send(&self.codec, &Packet::Publish(publish), &mut self.events);
            }
            _ if session.window_open() && session.waiting.is_empty() => {
                let publish = session.start_inflight(message);
                conn.send(&self.codec, &Packet::Publish(publish), &mut self.events);
            }
            _ if session.queued() < max_queued => session.waiting.push_back(message),
            _ => {
                conn.dropped_qos1 += 1;
                if session.overflow.record() {
                    tracing::warn!(conn = %conn.id, client_id = ?peer_text(client_id), max_queued,
                        inflight = MAX_INFLIGHT,
                        "session queue full: dropping QoS 1 messages for this client until its queue drains to half");
                }
            }
        }
    }

    /// Fills the in-flight window of `client_id`'s online session from its queues: stored
    /// messages first (with strict rates only when both the replay pace of 10/s and the publish
    /// quota allow), then live ones that waited for the window. A run of drops for a full
    /// queue ends once the queue has drained to half its limit.
    pub(crate) fn pump(&mut self, now: Instant, client_id: &str) {
        let strict = self.config.strict_rates;
        let half = self.config.max_queued_per_session / 2;
        let Some(session) = self.sessions.get_mut(client_id) else { return };
        let Some(conn) = session.connection.and_then(|id| self.connections.get_mut(&id)) else {
            return;
        };
        while session.window_open() {
            let replay_allowed = !strict
                || (conn.replay_bucket.has_token(now) && conn.publish_bucket.has_token(now));
            let next = if replay_allowed && !session.backlog.is_empty() {
                if strict {
                    conn.replay_bucket.try_take(now);
                    conn.publish_bucket.try_take(now);
                }
                session.backlog.pop_front()
            } else {
                session.waiting.pop_front()
            };
            let Some(message) = next else { break };
            let publish = session.start_inflight(message);
            conn.send(&self.codec, &Packet::Publish(publish), &mut self.events);
        }
        if session.overflow.is_running()
            && session.queued() <= half
            && let Some(dropped) = session.overflow.end()
        {
            tracing::warn!(conn = %conn.id, client_id = ?peer_text(client_id), dropped,
                "session queue drained to half: {dropped} QoS 1 messages were dropped while it was full");
        }
    }

    /// When stored messages of a paced replay (strict rates) can next go out, for
    /// [`Broker::poll_timeout`].
    pub(crate) fn next_replay(&self) -> Option<Instant> {
        if !self.config.strict_rates {
            return None;
        }
        self.connections
            .values()
            .filter_map(|conn| {
                let session = self.sessions.get(&conn.attached()?.client_id)?;
                if session.backlog.is_empty() || !session.window_open() {
                    return None;
                }
                Some(conn.replay_bucket.next_token_at().max(conn.publish_bucket.next_token_at()))
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(text: &str) -> TopicFilter {
        TopicFilter::new(text).unwrap()
    }

    fn topic(text: &str) -> TopicName {
        TopicName::new(text).unwrap()
    }

    #[test]
    fn overlapping_filters_give_one_delivery_at_the_highest_qos() {
        let mut router = Router::default();
        router.subscribe("a", &filter("x/+"), QoS::AtMostOnce);
        router.subscribe("a", &filter("x/#"), QoS::AtLeastOnce);
        router.subscribe("b", &filter("x/y"), QoS::AtMostOnce);
        router.subscribe("c", &filter("x/#"), QoS::AtMostOnce);
        let found = router.subscribers(&topic("x/y"));
        assert_eq!(found.len(), 3);
        assert_eq!(found.get("a"), Some(&QoS::AtLeastOnce));
        assert!(router.subscribers(&topic("x")).is_empty());
        router.unsubscribe("a", &filter("x/#"));
        router.unsubscribe("b", &filter("x/y"));
        router.unsubscribe("c", &filter("x/#"));
        assert_eq!(router.subscribers(&topic("x/y")).get("a"), Some(&QoS::AtMostOnce));
        router.unsubscribe("a", &filter("x/+"));
        assert!(router.exact.is_empty() && router.wildcard.is_empty());
    }

    #[test]
    fn empty_retained_payload_deletes() {
        let mut router = Router::default();
        router.retain(&topic("t"), &Bytes::from_static(b"on"), QoS::AtLeastOnce);
        assert_eq!(router.retained_count(), 1);
        router.retain(&topic("t"), &Bytes::new(), QoS::AtMostOnce);
        assert_eq!(router.retained(&topic("t")), None);
    }
}
