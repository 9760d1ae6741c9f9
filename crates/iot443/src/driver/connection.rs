//! The connection's life: healthy or not, lost (and why), the next attempt, a new transport.

use super::link::{Ended, Ending, Opened, classify_attempt, classify_end};
use super::{Driver, Link};
use crate::error::ClientError;
use crate::message::Event;
use crate::reconnect::Cause;
use bytes::BytesMut;

impl Driver {
    pub(super) fn mark_healthy(&mut self) {
        if let Some(link) = self.link.as_mut()
            && !link.healthy
            && self.session.is_connected()
        {
            link.healthy = true;
            self.backoff.reset();
        }
    }

    /// A connection up for `healthy_after` has proven healthy.
    pub(super) fn check_health(&mut self) {
        let due = self.link.as_ref().is_some_and(|link| {
            !link.healthy && link.since.elapsed() >= self.backoff.policy().healthy_after
        });
        if due {
            self.mark_healthy();
        }
    }

    /// The transport ended under us.
    pub(super) fn link_ended(&mut self, ending: Ending) {
        let after_connack = self.session.is_connected();
        let healthy = self.link.as_ref().is_some_and(|link| link.healthy);
        // The request first: the same order as the blame (see `count_refusal`).
        let unacknowledged =
            self.session.oldest_request().map(super::refusals::describe_request).or_else(|| {
                let oldest = self.session.oldest_unacknowledged();
                oldest.map(|(_, topic)| format!("a PUBLISH to {}", topic.as_str()))
            });
        let cause = classify_end(&Ended {
            ending,
            after_connack,
            unacknowledged: unacknowledged.as_deref(),
            healthy,
        });
        let now = self.now();
        self.session.handle_connection_lost(now);
        let mut reason = cause.to_string();
        if !after_connack {
            reason.push_str(&self.before_connack_hint());
        }
        let error = ClientError::ConnectionLost { addr: self.info.addr(), reason };
        // Only a close right after an unacknowledged packet, on a connection the endpoint had
        // accepted, says anything about that packet.
        let blame = after_connack && unacknowledged.is_some();
        self.lose_link(cause, Some(error), blame);
    }

    /// Drops the transport and either schedules a reconnect or, when none is possible, ends.
    /// `blame`: a refusal counts against the oldest unacknowledged packet (see
    /// [`count_refusal`](Driver::count_refusal)).
    pub(super) fn lose_link(&mut self, cause: Cause, error: Option<ClientError>, blame: bool) {
        self.link = None;
        self.reader = None;
        self.writer = None;
        self.write_buf.clear();
        for id in self.unwritten.lost() {
            let error = self.not_written();
            self.answer(id, Err(error));
        }
        self.needs_flush = false;
        self.read_buf.clear();
        let error = error.unwrap_or_else(|| ClientError::ConnectionLost {
            addr: self.info.addr(),
            reason: cause.to_string(),
        });
        if self.connected.is_some()
            || !self.backoff.policy().enabled
            || !self.connector.can_reconnect()
        {
            // The first connection failed (Client::connect reports it), or no reconnect.
            self.end_with(error);
            return;
        }
        if self.disconnecting.is_some()
            && self.session.inflight_len() == 0
            && self.session.queued_len() == 0
        {
            self.end_with(error);
            return;
        }
        tracing::warn!("connection lost: {cause}");
        if blame && cause.is_refusal() {
            self.count_refusal(&cause);
        }
        self.schedule_reconnect(cause);
    }

    pub(super) fn schedule_reconnect(&mut self, cause: Cause) {
        let delay = self.backoff.next_delay(&cause, &mut rand::rng());
        let attempt = self.backoff.attempt();
        tracing::info!(attempt, ?delay, "reconnecting: {cause}");
        let _ =
            self.events.try_send(Event::Reconnecting { attempt, delay, cause: cause.to_string() });
        self.retry_at = Some(tokio::time::Instant::now() + delay);
    }

    /// Starts the session on the new transport: CONNECT, or, when a connector already
    /// exchanged CONNECT and CONNACK (`read_ahead`), the bytes it read.
    pub(super) fn start_session(&mut self, read_ahead: Option<BytesMut>) {
        let now = self.now();
        match read_ahead {
            Some(bytes) => {
                self.session.connect_written(now);
                self.session.handle_bytes(now, &bytes);
            }
            None => self.session.connect(now),
        }
    }

    pub(super) fn attempt_finished(&mut self, attempt: Result<Opened, ClientError>) {
        self.expire_outbox();
        match attempt {
            Ok(Opened { transport, info, read_ahead }) => {
                let (reader, writer) = tokio::io::split(transport);
                self.reader = Some(reader);
                self.writer = Some(writer);
                self.link = Some(Link { since: tokio::time::Instant::now(), healthy: false });
                self.info = info;
                self.start_session(read_ahead);
            }
            Err(error) => {
                let cause = classify_attempt(&error);
                // A refused attempt (certificate, proxy) says nothing about any message: it is
                // retried with the refusal backoff, and no packet is blamed.
                tracing::warn!("reconnect attempt failed: {error}");
                self.schedule_reconnect(cause);
            }
        }
    }
}
