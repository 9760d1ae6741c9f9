//! The sans-IO broker core: AWS IoT Core's MQTT 3.1.1 behaviour with no sockets, no TLS and no
//! clock (STYLE.md habits 1 and 2).
//!
//! [`Broker`] holds every connection, session, subscription and retained message of the
//! emulator. A shell (one tokio task per TLS connection, the broker behind a mutex) feeds it
//! bytes and time and drains its output; see [`Broker`] for the contract.
//!
//! | file | concern |
//! |---|---|
//! | [`config`](BrokerConfig) | settings and their IoT Core defaults |
//! | `connection` | one connection: before CONNECT, keep-alive, output buffer |
//! | `handlers` | what each packet from a client does |
//! | `sessions` | sessions by client id: persistence, expiry, the QoS 1 window and queues |
//! | `routing` | subscription matching, retained messages, delivery |
//! | [`quotas`] | IoT Core's rate quotas (strict rates only) |
//! | [`policy`] | the optional authorization policy file |
//! | [`close`](CloseReason) | why a connection was closed |
//! | `shadow` | the Device Shadow service: requests on `$aws/things/…/shadow/…` and their answers |
//! | `drops` | runs of messages dropped for a client that does not keep up, logged twice each |
//!
//! Choices where IoT Core's behaviour is not documented (AWS-IOT.md §8) are listed on
//! [`Broker`].

mod close;
mod config;
mod connection;
mod deadlines;
mod drops;
mod handlers;
mod http_publish;
pub mod policy;
pub mod quotas;
mod routing;
mod sessions;
mod shadow;

pub use close::CloseReason;
pub use config::{
    BrokerConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_QUEUED_PER_SESSION, DEFAULT_SESSION_EXPIRY,
};
pub use connection::MAX_PENDING_OUTPUT;
pub use connection::{MAX_KEEP_ALIVE_SECS, MIN_KEEP_ALIVE_SECS, clamp_keep_alive};
pub use handlers::{MAX_CLIENT_ID_BYTES, MAX_FILTERS_PER_SUBSCRIBE, MAX_SUBSCRIPTIONS};
pub use http_publish::HttpPublishRefusal;
pub use policy::{Policy, PolicyError};
pub use sessions::MAX_INFLIGHT;
pub use shadow::MAX_SHADOW_IN_FLIGHT;

use crate::peer_text::peer_text;
use bytes::{BufMut, BytesMut};
use connection::{ConnState, Connection};
use deadlines::Deadlines;
use iot443_proto::Instant;
use iot443_proto::codec::{Codec, Packet, ProtocolVersion};
use quotas::ConnectLimiter;
use routing::Router;
use sessions::SessionStore;
use shadow::ShadowService;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// Identifies one connection of a [`Broker`]; never reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ConnectionId(u64);

impl ConnectionId {
    /// The number behind the id (for logs).
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Who is at the other end of a connection, from the verified TLS client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The subject common name of the client certificate, if it has one (used by the policy).
    pub common_name: Option<String>,
    /// SHA-256 of the client certificate (DER), lower-case hex.
    pub certificate_sha256: String,
}

/// What the broker asks of its shell. Drain with [`Broker::poll_event`] after every call.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerEvent {
    /// The connection has output: call [`Broker::poll_transmit`] for it. Reported once each
    /// time its output goes from empty to non-empty.
    Wake(ConnectionId),
    /// Close the connection: first write what [`Broker::poll_transmit`] still returns for it
    /// (a CONNACK refusal, for example), then close the transport. The broker has already
    /// forgotten the connection; further calls for it are ignored.
    Close {
        /// The connection.
        conn: ConnectionId,
        /// The client id, if CONNECT had been accepted.
        client_id: Option<String>,
        /// Why.
        reason: CloseReason,
        /// Messages for the client dropped while the connection was open because it did not
        /// keep up: QoS 1 beyond [`BrokerConfig::max_queued_per_session`], QoS 0 beyond
        /// [`MAX_PENDING_OUTPUT`] of unread output. 0 when none were.
        dropped: u64,
    },
    /// A CONNECT was accepted (CONNACK 0 is in the connection's output).
    Connected {
        /// The connection.
        conn: ConnectionId,
        /// The client id.
        client_id: String,
        /// The CONNECT's clean-session flag.
        clean_session: bool,
        /// Whether a stored session was resumed (the CONNACK's flag).
        session_present: bool,
        /// The keep-alive in force, after IoT Core's clamping (see [`clamp_keep_alive`]).
        keep_alive: u16,
    },
}

/// The emulator's MQTT 3.1.1 broker with AWS IoT Core's rules, as a sans-IO state machine.
///
/// # Contract for a shell
///
/// 1. When a TLS connection has been accepted (client certificate verified), call
///    [`open`](Broker::open) with the peer's identity; keep the returned [`ConnectionId`].
/// 2. Feed every read to [`handle_bytes`](Broker::handle_bytes). When the transport reaches
///    end of file or fails, call [`handle_closed`](Broker::handle_closed).
/// 3. Sleep until [`poll_timeout`](Broker::poll_timeout) at the latest, then call
///    [`handle_timeout`](Broker::handle_timeout) (CONNECT timeout, keep-alive, session
///    expiry, paced replay).
/// 4. After every call above, drain [`poll_event`](Broker::poll_event) until `None`. Events
///    concern any connection, not only the one of the call (a PUBLISH wakes its subscribers, a
///    takeover closes the older connection):
///    * [`BrokerEvent::Wake`]: call [`poll_transmit`](Broker::poll_transmit) for that
///      connection and write the bytes;
///    * [`BrokerEvent::Close`]: call `poll_transmit` one last time, write, then close;
///    * [`BrokerEvent::Connected`]: for the log.
///
/// Time is always an argument ([`Instant`], from an origin the shell picks). Nothing that
/// arrives from the network panics: malformed input closes that connection only.
///
/// ```
/// use iot443_emulator::broker::{Broker, BrokerConfig, BrokerEvent, PeerIdentity};
/// use iot443_proto::Instant;
/// use std::time::Duration;
///
/// let mut broker = Broker::new(BrokerConfig::default());
/// let peer = PeerIdentity { common_name: Some("device".into()), certificate_sha256: "ab".repeat(32) };
/// let now = Instant::ZERO;
/// let conn = broker.open(now, peer);
/// // CONNECT: MQTT 3.1.1, clean session, keep-alive 60 s, client id "dev".
/// let connect = [0x10, 15, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 3, b'd', b'e', b'v'];
/// broker.handle_bytes(now, conn, &connect);
/// assert_eq!(broker.poll_event(), Some(BrokerEvent::Wake(conn)));
/// assert!(matches!(broker.poll_event(), Some(BrokerEvent::Connected { keep_alive: 60, .. })));
/// let mut out = Vec::new();
/// broker.poll_transmit(conn, &mut out);
/// assert_eq!(out, [0x20, 0x02, 0x00, 0x00]); // CONNACK: accepted, no session present
/// // The keep-alive timer: 1.5 × 60 s of silence closes the connection.
/// assert_eq!(broker.poll_timeout(), Some(now + Duration::from_secs(90)));
/// ```
///
/// # IoT Core rules (AWS-IOT.md §3)
///
/// MQTT 3.1.1 only; client id of 1 to 128 bytes not starting with `$`; keep-alive clamped to
/// 30..=1200 s and the connection closed after 1.5 × keep-alive of silence; takeover of a client
/// id by a newer connection; clean and persistent sessions (expiry 1 h); QoS 0 and 1 with at
/// most [`MAX_INFLIGHT`] unacknowledged towards a client; QoS 2 PUBLISH and SUBSCRIBE ignored
/// without an answer; retained messages delivered for exact-topic subscriptions only; `#` does
/// not match the parent level; 128 KiB payloads, 256-byte topics with 7 slashes at most,
/// reserved `$` topics, 8 filters per SUBSCRIBE, 50 subscriptions; the last will on any close
/// but DISCONNECT; an optional [`Policy`]; with [`BrokerConfig::strict_rates`] the [`quotas`].
///
/// # Choices where IoT Core's behaviour is unconfirmed
///
/// * An empty client id gets CONNACK 2 (identifier rejected), even with a clean session:
///   IoT Core's MQTT 5 endpoint assigns one, its MQTT 3.1.1 behaviour is not documented.
/// * An over-long or `$` client id gets CONNACK 2 as well; a refused connect (policy) gets
///   CONNACK 5 (the 2022 documentation said IoT Core sends 5, or 7 in some revisions).
/// * A CONNECT over the 1/s quota is closed without CONNACK (lifecycle reason `THROTTLED`).
/// * A topic over IoT Core's limits, more than 8 filters or more than 50 subscriptions close
///   the connection; a `$share/...` shared subscription is answered with SUBACK failure (0x80):
///   shared subscriptions are not emulated.
/// * A QoS 1 PUBLISH discarded by the 100/s quota is still acknowledged (MQTT 5 would carry
///   0x97 "quota exceeded" in the PUBACK), so a client's in-flight window never stalls.
/// * Stored messages replayed after a resume are paced (10/s, strict rates only); in-flight
///   messages sent again with DUP on resume are not.
/// * A will at QoS 2 closes the connection at CONNECT (MQTT 5 answers CONNACK 0x9B).
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    codec: Codec,
    next_id: u64,
    connections: BTreeMap<ConnectionId, Connection>,
    /// Every connection's connect or keep-alive deadline ([`Connection::deadline`]).
    deadlines: Deadlines<ConnectionId>,
    /// Output of closed connections, until the shell takes it.
    closing: BTreeMap<ConnectionId, BytesMut>,
    sessions: SessionStore,
    router: Router,
    connect_limiter: ConnectLimiter,
    events: VecDeque<BrokerEvent>,
    discarded: u64,
    shadows: ShadowService,
}

impl Broker {
    /// A broker with no connections, sessions or retained messages.
    pub fn new(config: BrokerConfig) -> Self {
        let codec = Codec::new(ProtocolVersion::V311).with_max_packet_size(config.max_packet_size);
        Broker {
            config,
            codec,
            next_id: 1,
            connections: BTreeMap::new(),
            deadlines: Deadlines::default(),
            closing: BTreeMap::new(),
            sessions: SessionStore::default(),
            router: Router::default(),
            connect_limiter: ConnectLimiter::default(),
            events: VecDeque::new(),
            discarded: 0,
            shadows: ShadowService::default(),
        }
    }

    /// A TLS connection from `peer` was accepted at `now`. It must send CONNECT within
    /// [`BrokerConfig::connect_timeout`].
    pub fn open(&mut self, now: Instant, peer: PeerIdentity) -> ConnectionId {
        let id = ConnectionId(self.next_id);
        self.next_id += 1;
        let common_name = peer.common_name.as_deref().map(peer_text);
        tracing::debug!(conn = %id, ?common_name, "connection opened");
        let connection = Connection::new(id, peer, now, self.config.connect_timeout);
        self.deadlines.insert(connection.deadline(), id);
        self.connections.insert(id, connection);
        id
    }

    /// Bytes were read from `conn`. Every whole packet is handled; a partial one waits for
    /// more bytes. Malformed input closes `conn` ([`CloseReason::Malformed`]).
    ///
    /// Shadow requests among them are answered at the end (see the `shadow` module).
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnectionId, bytes: &[u8]) {
        self.decode_and_handle(now, conn, bytes);
        self.answer_shadow_requests(now);
    }

    fn decode_and_handle(&mut self, now: Instant, conn: ConnectionId, bytes: &[u8]) {
        let max = self.codec.max_packet_size();
        let mut rest = bytes;
        while !rest.is_empty() {
            let Some(connection) = self.connections.get_mut(&conn) else { return };
            // Less than one packet is buffered between decodes: the buffer stays below twice
            // the maximum packet size whatever the caller hands in.
            let room = max.saturating_sub(connection.rx.len()).max(1);
            let (chunk, tail) = rest.split_at(room.min(rest.len()));
            rest = tail;
            connection.rx.extend_from_slice(chunk);
            loop {
                let Some(connection) = self.connections.get_mut(&conn) else { return };
                match self.codec.decode(&mut connection.rx) {
                    Ok(Some(packet)) => {
                        let before = connection.deadline();
                        connection.touch(now);
                        self.deadlines.reschedule(before, connection.deadline(), conn);
                        self.handle_packet(now, conn, packet);
                    }
                    Ok(None) => break,
                    Err(error) => {
                        self.handle_decode_error(now, conn, error);
                        return;
                    }
                }
            }
        }
    }

    /// The transport of `conn` closed or failed. Unless the client sent DISCONNECT (then the
    /// broker has already forgotten the connection), its last will is published.
    pub fn handle_closed(&mut self, now: Instant, conn: ConnectionId) {
        self.closing.remove(&conn);
        self.close(now, conn, CloseReason::TransportClosed);
    }

    /// Fires every timer due at `now`: CONNECT timeouts, keep-alive timeouts, session expiry
    /// and (strict rates) the paced replay of stored messages.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due: Vec<(ConnectionId, CloseReason)> = Vec::new();
        while let Some((_, id)) = self.deadlines.pop_due(now) {
            let Some(connection) = self.connections.get(&id) else { continue };
            let reason = match &connection.state {
                ConnState::AwaitingConnect { .. } => CloseReason::ConnectTimeout,
                ConnState::Connected(attached) => {
                    CloseReason::KeepAliveTimeout { keep_alive_secs: attached.keep_alive }
                }
            };
            due.push((id, reason));
        }
        for (conn, reason) in due {
            self.close(now, conn, reason);
        }
        for client_id in self.sessions.expired(now) {
            tracing::info!(client_id = ?peer_text(&client_id), "persistent session expired");
            self.discard_session(&client_id);
        }
        if self.config.strict_rates {
            let online: Vec<String> = self
                .connections
                .values()
                .filter_map(|connection| Some(connection.attached()?.client_id.clone()))
                .collect();
            for client_id in online {
                self.pump(now, &client_id);
            }
            self.connect_limiter.prune(now);
        }
    }

    /// Moves the pending output of `conn` into `buf` and returns the number of bytes moved:
    /// all of it when `buf` can grow (`Vec`, `BytesMut`), else as much as fits (call again).
    /// Returns 0 for an unknown connection.
    pub fn poll_transmit<B: BufMut>(&mut self, conn: ConnectionId, buf: &mut B) -> usize {
        let (tx, closing) = match self.connections.get_mut(&conn) {
            Some(connection) => (&mut connection.tx, false),
            None => match self.closing.get_mut(&conn) {
                Some(tx) => (tx, true),
                None => return 0,
            },
        };
        let n = tx.len().min(buf.remaining_mut());
        buf.put_slice(&tx.split_to(n));
        if closing && tx.is_empty() {
            self.closing.remove(&conn);
        }
        if let Some(connection) = self.connections.get_mut(&conn) {
            connection.output_taken();
        }
        n
    }

    /// The next event for the shell, in order.
    pub fn poll_event(&mut self) -> Option<BrokerEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Broker::handle_timeout) must be called next, if ever. May be in
    /// the past: then call it at once.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.deadlines.next(), self.sessions.next_expiry(), self.next_replay()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Open connections (with or without CONNECT).
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Sessions, online and offline.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Retained messages stored.
    pub fn retained_count(&self) -> usize {
        self.router.retained_count()
    }

    /// Publishes discarded so far by the 100 publishes/s quota (strict rates), inbound and
    /// outbound.
    pub fn discarded_publishes(&self) -> u64 {
        self.discarded
    }

    /// Closes `conn` for `reason`: its output stays available to `poll_transmit`, its session
    /// is detached (a clean one discarded), and its will is published unless `reason` is a
    /// DISCONNECT.
    pub(crate) fn close(&mut self, now: Instant, conn: ConnectionId, reason: CloseReason) {
        let Some(mut connection) = self.connections.remove(&conn) else { return };
        self.deadlines.remove(connection.deadline(), conn);
        let client_id = connection.attached().map(|attached| attached.client_id.clone());
        connection.end_runs();
        tracing::info!(
            conn = %conn,
            client_id = %peer_text(client_id.as_deref().unwrap_or("")),
            lifecycle = reason.lifecycle_reason(),
            discarded_publishes = connection.discarded,
            dropped_qos0 = connection.dropped_qos0,
            dropped_qos1 = connection.dropped_qos1,
            "closing connection: {reason}"
        );
        if !connection.tx.is_empty() {
            self.closing.insert(conn, connection.tx.split());
        }
        let dropped = connection.dropped();
        let will = match connection.state {
            ConnState::Connected(attached) if reason.publishes_will() => attached.will,
            _ => None,
        };
        if let Some(client_id) = &client_id {
            self.detach_session(now, client_id, conn);
        }
        self.events.push_back(BrokerEvent::Close { conn, client_id, reason, dropped });
        if let Some(will) = will {
            tracing::debug!(conn = %conn, topic = ?peer_text(will.topic.as_str()), "publishing last will");
            self.route(now, &will.topic, &will.payload, will.qos, will.retain);
        }
    }

    /// Sends `code` in a CONNACK, then closes `conn` for `reason`.
    pub(crate) fn refuse(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        code: iot443_proto::codec::ConnectReturnCode,
        reason: CloseReason,
    ) {
        if let Some(connection) = self.connections.get_mut(&conn) {
            let connack = iot443_proto::codec::ConnAck::new(false, code);
            connection.send(&self.codec, &Packet::ConnAck(connack), &mut self.events);
        }
        self.close(now, conn, reason);
    }

    /// The connection `conn` using `client_id`'s session ended: a persistent session stays,
    /// offline, until it expires; a clean one is discarded.
    fn detach_session(&mut self, now: Instant, client_id: &str, conn: ConnectionId) {
        let expiry = self.config.session_expiry;
        if self.sessions.detach(client_id, conn, now, expiry) == Some(false) {
            self.discard_session(client_id);
        }
    }

    /// Forgets `client_id`'s session and its subscriptions.
    pub(crate) fn discard_session(&mut self, client_id: &str) {
        if let Some(mut session) = self.sessions.remove(client_id) {
            if let Some(dropped) = session.overflow.end() {
                tracing::warn!(client_id = ?peer_text(client_id), dropped,
                    "session discarded while its queue was full: {dropped} QoS 1 messages were dropped");
            }
            for filter in session.subscriptions.keys() {
                self.router.unsubscribe(client_id, filter);
            }
        }
    }
}
