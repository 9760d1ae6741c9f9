//! One TLS connection as the broker sees it: before CONNECT, then attached to a client id.

use super::drops::DropRun;
use super::quotas::{PUBLISHES_PER_SECOND, REPLAY_PER_SECOND, TokenBucket};
use super::{BrokerEvent, ConnectionId, PeerIdentity};
use crate::peer_text::peer_text;
use bytes::BytesMut;
use iot443_proto::Instant;
use iot443_proto::codec::{Codec, LastWill, Packet};
use iot443_proto::topic::TopicName;
use std::collections::VecDeque;
use std::time::Duration;

/// IoT Core's default and maximum keep-alive, in seconds.
pub const MAX_KEEP_ALIVE_SECS: u16 = 1200;
/// IoT Core's minimum keep-alive, in seconds.
pub const MIN_KEEP_ALIVE_SECS: u16 = 30;

/// The keep-alive IoT Core uses for a requested one (AWS-IOT.md §3.4): 0 or more than 1200 s
/// becomes 1200 s, 1 to 29 s becomes 30 s.
///
/// ```
/// use iot443_emulator::broker::clamp_keep_alive;
/// assert_eq!(clamp_keep_alive(0), 1200);
/// assert_eq!(clamp_keep_alive(5), 30);
/// assert_eq!(clamp_keep_alive(60), 60);
/// assert_eq!(clamp_keep_alive(3600), 1200);
/// ```
pub const fn clamp_keep_alive(requested: u16) -> u16 {
    match requested {
        0 => MAX_KEEP_ALIVE_SECS,
        r if r > MAX_KEEP_ALIVE_SECS => MAX_KEEP_ALIVE_SECS,
        r if r < MIN_KEEP_ALIVE_SECS => MIN_KEEP_ALIVE_SECS,
        r => r,
    }
}

/// How long a client may stay silent: 1.5 times its keep-alive.
pub(crate) fn keep_alive_grace(keep_alive_secs: u16) -> Duration {
    Duration::from_millis(u64::from(keep_alive_secs) * 1500)
}

/// Where a connection stands.
#[derive(Debug)]
pub(crate) enum ConnState {
    /// Accepted; closed at `deadline` unless a CONNECT arrives.
    AwaitingConnect {
        /// End of the connect timeout.
        deadline: Instant,
    },
    /// CONNECT accepted.
    Connected(Attached),
}

/// A connection after its CONNECT was accepted.
#[derive(Debug)]
pub(crate) struct Attached {
    /// The client id, whose session the connection uses.
    pub(crate) client_id: String,
    /// The keep-alive in force, after clamping.
    pub(crate) keep_alive: u16,
    /// Closed at this instant unless a packet arrives first.
    pub(crate) deadline: Instant,
    /// Published on an abnormal close; cleared by DISCONNECT.
    pub(crate) will: Option<LastWill>,
}

/// Output a client may leave unread before QoS 0 messages for it are dropped: 8 MiB.
pub const MAX_PENDING_OUTPUT: usize = 8 * 1024 * 1024;

/// One connection: its state, buffers and rate buckets.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) id: ConnectionId,
    pub(crate) peer: PeerIdentity,
    pub(crate) state: ConnState,
    /// Received bytes not yet decoded: less than one packet between calls.
    pub(crate) rx: BytesMut,
    /// Encoded output the shell has not taken yet.
    pub(crate) tx: BytesMut,
    /// IoT Core's 100 publishes per second, inbound and outbound (strict rates only).
    pub(crate) publish_bucket: TokenBucket,
    /// IoT Core's 10 stored messages per second on resume (strict rates only).
    pub(crate) replay_bucket: TokenBucket,
    /// Publishes discarded by the publish quota.
    pub(crate) discarded: u64,
    /// QoS 0 messages dropped because the client did not read its output, while it was open.
    pub(crate) dropped_qos0: u64,
    /// The run of QoS 0 drops under way: from the first drop until the client has taken half
    /// of [`MAX_PENDING_OUTPUT`].
    pub(crate) slow_reader: DropRun,
    /// QoS 1 messages dropped because its session's queue was full, while it was open.
    pub(crate) dropped_qos1: u64,
}

impl Connection {
    /// A connection accepted at `now`, waiting for CONNECT until `now + connect_timeout`.
    pub(crate) fn new(
        id: ConnectionId,
        peer: PeerIdentity,
        now: Instant,
        connect_timeout: Duration,
    ) -> Self {
        Connection {
            id,
            peer,
            state: ConnState::AwaitingConnect { deadline: now + connect_timeout },
            rx: BytesMut::new(),
            tx: BytesMut::new(),
            publish_bucket: TokenBucket::new(PUBLISHES_PER_SECOND, PUBLISHES_PER_SECOND),
            replay_bucket: TokenBucket::new(REPLAY_PER_SECOND, REPLAY_PER_SECOND),
            discarded: 0,
            dropped_qos0: 0,
            slow_reader: DropRun::default(),
            dropped_qos1: 0,
        }
    }

    /// The connect or keep-alive deadline.
    pub(crate) fn deadline(&self) -> Instant {
        match &self.state {
            ConnState::AwaitingConnect { deadline } => *deadline,
            ConnState::Connected(attached) => attached.deadline,
        }
    }

    /// The attached state, once CONNECT was accepted.
    pub(crate) fn attached(&self) -> Option<&Attached> {
        match &self.state {
            ConnState::Connected(attached) => Some(attached),
            ConnState::AwaitingConnect { .. } => None,
        }
    }

    /// A packet arrived at `now`: the keep-alive timer starts again.
    pub(crate) fn touch(&mut self, now: Instant) {
        if let ConnState::Connected(attached) = &mut self.state {
            attached.deadline = now + keep_alive_grace(attached.keep_alive);
        }
    }

    /// Takes a token of the 100 publishes/s quota at `now` (strict rates) for a publish
    /// `direction` (`"inbound"` or `"outbound"`) on `topic`. Without a token the publish is
    /// discarded: counted here and in `total`, logged, and `false` returned.
    pub(crate) fn take_publish_token(
        &mut self,
        now: Instant,
        total: &mut u64,
        direction: &'static str,
        client_id: &str,
        topic: &TopicName,
    ) -> bool {
        if self.publish_bucket.try_take(now) {
            return true;
        }
        self.discarded += 1;
        *total += 1;
        tracing::debug!(conn = %self.id, client_id = ?peer_text(client_id),
            topic = ?peer_text(topic.as_str()), "{direction} publish over 100/s discarded (strict rates)");
        false
    }

    /// Appends `packet` to the output and reports [`BrokerEvent::Wake`] if the output was
    /// empty. A packet that cannot be encoded is logged and dropped. A QoS 0 PUBLISH for a
    /// client that has not taken [`MAX_PENDING_OUTPUT`] bytes of output yet is dropped too: a
    /// flood towards a slow subscriber costs that subscriber messages, not the emulator memory.
    /// (QoS 1 is bounded by the 100 unacknowledged messages each way.) Such drops are logged
    /// as a run (see [`DropRun`]), ended by [`Connection::output_taken`] or [`Connection::end_runs`].
    pub(crate) fn send(
        &mut self,
        codec: &Codec,
        packet: &Packet,
        events: &mut VecDeque<BrokerEvent>,
    ) {
        if self.tx.len() >= MAX_PENDING_OUTPUT
            && matches!(packet, Packet::Publish(publish) if publish.qos.packet_id().is_none())
        {
            self.dropped_qos0 += 1;
            if self.slow_reader.record() {
                tracing::warn!(conn = %self.id, max_pending_output = MAX_PENDING_OUTPUT,
                    "client reads too slowly: dropping QoS 0 messages for it until it has read half its pending output");
            }
            return;
        }
        let was_empty = self.tx.is_empty();
        if let Err(error) = codec.encode(packet, &mut self.tx) {
            tracing::warn!(conn = %self.id, %error, "dropping an outgoing packet that does not encode");
            return;
        }
        if was_empty && !self.tx.is_empty() {
            events.push_back(BrokerEvent::Wake(self.id));
        }
    }

    /// The shell took output: a run of QoS 0 drops ends once less than half of
    /// [`MAX_PENDING_OUTPUT`] is left.
    pub(crate) fn output_taken(&mut self) {
        if self.slow_reader.is_running()
            && self.tx.len() <= MAX_PENDING_OUTPUT / 2
            && let Some(dropped) = self.slow_reader.end()
        {
            tracing::warn!(conn = %self.id, dropped,
                "client caught up: {dropped} QoS 0 messages were dropped while it read too slowly");
        }
    }

    /// The connection closes: a run of QoS 0 drops under way ends with it.
    pub(crate) fn end_runs(&mut self) {
        if let Some(dropped) = self.slow_reader.end() {
            tracing::warn!(conn = %self.id, dropped,
                "connection closed while the client read too slowly: {dropped} QoS 0 messages were dropped");
        }
    }

    /// Messages for the client dropped while the connection was open (QoS 0 for reading too
    /// slowly, QoS 1 for a full session queue).
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped_qos0 + self.dropped_qos1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_clamping_follows_iot_core() {
        assert_eq!(clamp_keep_alive(0), 1200);
        assert_eq!(clamp_keep_alive(1), 30);
        assert_eq!(clamp_keep_alive(29), 30);
        assert_eq!(clamp_keep_alive(30), 30);
        assert_eq!(clamp_keep_alive(1200), 1200);
        assert_eq!(clamp_keep_alive(1201), 1200);
        assert_eq!(clamp_keep_alive(u16::MAX), 1200);
        assert_eq!(keep_alive_grace(30), Duration::from_secs(45));
    }
}
