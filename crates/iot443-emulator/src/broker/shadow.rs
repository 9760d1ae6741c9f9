//! The Device Shadow service (AWS-IOT.md §4): an internal participant of the broker.
//!
//! A PUBLISH on a request topic, `$aws/things/<thing>/shadow[/name/<shadow>]/{get,update,delete}`,
//! passes the checks every publish passes (size, topic limits, the policy), is acknowledged, and
//! goes to this service instead of to subscribers. The answers — `…/accepted`, `…/rejected`,
//! `…/update/delta`, `…/update/documents` — are routed as ordinary QoS 1 publishes, so they reach
//! the clients subscribed to them under the same policy as any message. The documents are built by
//! [`iot443_proto::aws::shadow::Shadow`], compact and shaped as AWS sends them.
//!
//! **In flight.** The service answers at the end of each [`Broker::handle_bytes`] call, not inside
//! the packet handler: the requests of one read of a connection are in flight together. A
//! connection with more than [`MAX_SHADOW_IN_FLIGHT`] requests in one read gets 429 for the
//! later ones. (UNCONFIRMED: how IoT Core counts in-flight requests is not documented; a client
//! that waits for answers, as the SDKs and `iot443::shadow` do, never sees 429 here.)
//!
//! **Codes produced:** 400 (every text of §4.4), 404 "No shadow exists", 409, 413, 415, 429.
//! Not produced, for want of a cause in the emulator: 401 and 403 (a request the policy denies
//! closes the connection, as any denied publish on IoT Core does), 404 "Thing not found" (the
//! emulator has no thing registry; shadows exist without things, as on IoT Core over MQTT), and
//! 500 (only on a version overflow).
//!
//! **Time.** Answers carry unix seconds: [`Broker::set_unix_time`] anchors the broker's
//! [`Instant`]s to the wall clock (the shell does it at start; tests pick a fixed anchor).

use super::{Broker, ConnectionId};
use crate::peer_text::peer_text;
use bytes::Bytes;
use iot443_proto::Instant;
use iot443_proto::QoS;
use iot443_proto::aws::shadow::{
    Answered, RejectReason, Rejection, Shadow, ShadowId, ShadowOperation, ShadowSuffix,
    ShadowTopic, UpdateAnswers, request_client_token,
};
use iot443_proto::topic::TopicName;
use std::collections::{BTreeMap, BTreeSet};

/// The most requests of one connection in flight at once; more are answered 429 (AWS-IOT.md §4.3).
pub const MAX_SHADOW_IN_FLIGHT: usize = 10;

/// A request waiting for the end of the read it came in.
#[derive(Debug)]
struct Pending {
    conn: ConnectionId,
    topic: ShadowTopic,
    payload: Bytes,
    too_many: bool,
}

/// Every shadow of the emulator, the requests of the current read, and what changed since the
/// shell last asked.
#[derive(Debug, Default)]
pub(crate) struct ShadowService {
    shadows: BTreeMap<ShadowId, Shadow>,
    pending: Vec<Pending>,
    changed: BTreeSet<ShadowId>,
    /// `(instant, unix seconds)`: the wall-clock time of one broker instant.
    anchor: Option<(Instant, u64)>,
}

impl ShadowService {
    fn unix_seconds(&self, now: Instant) -> u64 {
        match self.anchor {
            Some((at, unix)) => {
                let since = now.saturating_duration_since(at).as_secs();
                unix.saturating_add(since)
            }
            None => now.duration_since_origin().as_secs(),
        }
    }
}

impl Broker {
    /// Anchors the broker's clock to the wall clock: `now` is `unix_seconds` since the epoch.
    /// Shadow answers carry their `timestamp`s from it. Without an anchor, the broker's own
    /// origin counts as the epoch.
    pub fn set_unix_time(&mut self, now: Instant, unix_seconds: u64) {
        self.shadows.anchor = Some((now, unix_seconds));
    }

    /// Puts a stored shadow back, at start (the shell reads its store).
    pub fn restore_shadow(&mut self, id: ShadowId, shadow: Shadow) {
        self.shadows.shadows.insert(id, shadow);
    }

    /// A shadow, as the service holds it now (`None` when it was never updated).
    pub fn shadow(&self, id: &ShadowId) -> Option<&Shadow> {
        self.shadows.shadows.get(id)
    }

    /// The next shadow changed since the last call, with its new value, for the shell to store.
    pub fn poll_shadow_change(&mut self) -> Option<(ShadowId, Shadow)> {
        let id = self.shadows.changed.pop_first()?;
        let shadow = self.shadows.shadows.get(&id).cloned().unwrap_or_default();
        Some((id, shadow))
    }

    /// Runs a request made outside MQTT (the cloud side: `iot443 emulator shadow`, like AWS's
    /// `GetThingShadow` / `UpdateThingShadow` / `DeleteThingShadow`) and publishes its answers to the
    /// shadow's subscribers, as a request on the topic would. Returns the `…/accepted` document,
    /// or the error document.
    ///
    /// # Errors
    /// The error document, as `…/rejected` carries it.
    pub fn shadow_request(
        &mut self,
        now: Instant,
        id: &ShadowId,
        operation: ShadowOperation,
        payload: &[u8],
    ) -> Result<Vec<u8>, Vec<u8>> {
        self.run_request(now, None, id, operation, payload)
    }

    /// A PUBLISH on `topic` from `conn`: queued when it is a shadow request. Returns whether it
    /// was (then it must not be routed to subscribers).
    pub(crate) fn take_shadow_request(
        &mut self,
        conn: ConnectionId,
        topic: &TopicName,
        payload: &Bytes,
    ) -> bool {
        let Some(shadow_topic) = ShadowTopic::parse(topic.as_str()) else { return false };
        if shadow_topic.suffix != ShadowSuffix::Request {
            return false;
        }
        let queued = self.shadows.pending.iter().filter(|p| p.conn == conn).count();
        self.shadows.pending.push(Pending {
            conn,
            topic: shadow_topic,
            payload: payload.clone(),
            too_many: queued >= MAX_SHADOW_IN_FLIGHT,
        });
        true
    }

    /// Answers the requests queued during the current read, in order.
    pub(crate) fn answer_shadow_requests(&mut self, now: Instant) {
        for request in std::mem::take(&mut self.shadows.pending) {
            self.answer(now, request);
        }
    }

    fn answer(&mut self, now: Instant, request: Pending) {
        let Pending { conn, topic, payload, too_many } = request;
        if too_many {
            let unix = self.shadows.unix_seconds(now);
            let token = request_client_token(&payload).ok().flatten();
            let rejection = Rejection::new(RejectReason::TooManyRequests).with_client_token(token);
            self.reject(now, Some(conn), &topic.id, topic.operation, &rejection, unix);
            return;
        }
        let _ = self.run_request(now, Some(conn), &topic.id, topic.operation, &payload);
    }

    /// Runs one request and publishes its answers; returns the accepted or error document.
    fn run_request(
        &mut self,
        now: Instant,
        conn: Option<ConnectionId>,
        id: &ShadowId,
        operation: ShadowOperation,
        payload: &[u8],
    ) -> Result<Vec<u8>, Vec<u8>> {
        let unix = self.shadows.unix_seconds(now);
        match self.apply_request(id, operation, payload, unix) {
            Ok(Answered::Document(document)) => {
                self.publish_answer(now, id, operation, ShadowSuffix::Accepted, document.clone());
                Ok(document)
            }
            Ok(Answered::Update(answers)) => {
                let accepted = answers.accepted.clone();
                self.publish_update_answers(now, id, *answers);
                Ok(accepted)
            }
            Err(rejection) => Err(self.reject(now, conn, id, operation, &rejection, unix)),
        }
    }

    /// Publishes a rejection on `…/rejected` and returns its error document.
    fn reject(
        &mut self,
        now: Instant,
        conn: Option<ConnectionId>,
        id: &ShadowId,
        operation: ShadowOperation,
        rejection: &Rejection,
        unix: u64,
    ) -> Vec<u8> {
        tracing::info!(conn = ?conn.map(ConnectionId::get), shadow = ?peer_text(&id.to_string()),
            operation = operation.as_str(), code = rejection.code(),
            "shadow request rejected: {}", rejection.reason);
        let document = rejection.to_json(Some(unix));
        self.publish_answer(now, id, operation, ShadowSuffix::Rejected, document.clone());
        document
    }

    /// Runs one request on the shadow `id`. A shadow that still does not exist afterwards (a
    /// rejected first update, a get or delete of nothing) is not kept.
    fn apply_request(
        &mut self,
        id: &ShadowId,
        operation: ShadowOperation,
        payload: &[u8],
        unix: u64,
    ) -> Result<Answered, Rejection> {
        let mut shadow = self.shadows.shadows.remove(id).unwrap_or_default();
        let outcome = shadow.answer(id, operation, payload, unix);
        if outcome.is_ok() && operation != ShadowOperation::Get {
            self.shadows.changed.insert(id.clone());
            tracing::debug!(shadow = ?peer_text(&id.to_string()),
                operation = operation.as_str(), version = shadow.version(), "shadow changed");
        }
        if shadow != Shadow::default() {
            self.shadows.shadows.insert(id.clone(), shadow);
        }
        outcome
    }

    fn publish_update_answers(&mut self, now: Instant, id: &ShadowId, answers: UpdateAnswers) {
        let update = ShadowOperation::Update;
        self.publish_answer(now, id, update, ShadowSuffix::Accepted, answers.accepted);
        if let Some(delta) = answers.delta {
            self.publish_answer(now, id, update, ShadowSuffix::Delta, delta);
        }
        self.publish_answer(now, id, update, ShadowSuffix::Documents, answers.documents);
    }

    fn publish_answer(
        &mut self,
        now: Instant,
        id: &ShadowId,
        operation: ShadowOperation,
        suffix: ShadowSuffix,
        document: Vec<u8>,
    ) {
        let Ok(topic) = id.topic(operation, suffix) else { return };
        let Ok(name) = TopicName::new(topic.to_string()) else {
            tracing::warn!(topic = %topic, "a shadow answer topic is not a valid topic name");
            return;
        };
        self.route(now, &name, &Bytes::from(document), QoS::AtLeastOnce, false);
    }
}
