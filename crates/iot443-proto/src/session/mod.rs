//! The client side of one MQTT session, as a sans-IO state machine.
//!
//! See [`Session`] for the contract a driver follows.

mod config;
mod event;
mod outbound;
mod subscriptions;

pub use config::{DEFAULT_ACK_TIMEOUT, DEFAULT_MAX_INFLIGHT, SessionConfig, SessionError};
pub use event::{Event, LinkDeadReason, MessageId, ProtocolError};

use crate::codec::{
    Codec, ConnAck, Connect, EncodeError, Packet, PacketId, PacketType, ProtocolVersion, PubAck,
    Publish, PublishQos, QoS, SubscribeFilter,
};
use crate::time::Instant;
use crate::topic::{TopicFilter, TopicName};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::{BufMut, Bytes, BytesMut};
use core::time::Duration;
use outbound::{Outbound, Outgoing};

/// Filters per SUBSCRIBE when the session restores its subscriptions (IoT Core's limit).
const RESUBSCRIBE_CHUNK: usize = crate::codec::AWS_MAX_FILTERS_PER_SUBSCRIBE;

/// Where the session stands with its current transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No transport, or a transport that must be closed. Commands are queued.
    Disconnected,
    /// CONNECT is queued or sent; waiting for CONNACK until the deadline.
    AwaitingConnAck { deadline: Instant },
    /// CONNACK accepted the connection.
    Connected,
}

/// Keep-alive bookkeeping while connected.
///
/// A PINGREQ is due `keep_alive` after the *older* of the last packet sent and the last packet
/// received. MQTT only requires the former, but then a client that keeps sending (QoS 0, or
/// QoS 1 slower than its in-flight window fills) into a dead link never pings and never notices
/// that nothing comes back; with both, a dead link is noticed within keep-alive + ping timeout
/// whatever the client sends. Traffic both ways (publishes and their PUBACKs) still needs no
/// ping at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeepAlive {
    /// When the last byte was handed to the transport.
    last_sent: Instant,
    /// When the last packet arrived from the server.
    last_received: Instant,
    /// A PINGREQ is outstanding; the link is dead if nothing arrives by then.
    ping_deadline: Option<Instant>,
    /// The driver does not read the transport (the application is slow): see
    /// [`Session::pause_reading`].
    reading_paused: bool,
    /// A PINGREQ was sent while reading was paused (or was outstanding when it paused): its
    /// PINGRESP is awaited from the moment reading resumes.
    ping_awaited: bool,
    /// When reading last resumed: acknowledgement waits count from then at the earliest.
    resumed_at: Instant,
}

impl KeepAlive {
    const fn new(now: Instant) -> Self {
        KeepAlive {
            last_sent: now,
            last_received: now,
            ping_deadline: None,
            reading_paused: false,
            ping_awaited: false,
            resumed_at: now,
        }
    }
}

/// The client side of an MQTT 3.1.1 session: packet ids, the QoS 1 in-flight window, keep-alive
/// and redelivery, with no IO and no clock.
///
/// A `Session` outlives its connections: after a transport is lost, the driver opens a new one
/// and calls [`Session::connect`] again. Once CONNACK arrives, unacknowledged SUBSCRIBEs and
/// UNSUBSCRIBEs are sent again; then, when the server kept no session, every filter it had
/// granted is subscribed again; then the unacknowledged QoS 1 publishes go out again with DUP,
/// each list in its original order. (Subscriptions before publishes: a request whose answer
/// comes on a subscribed topic, such as a Device Shadow request, finds that topic subscribed.)
///
/// # Contract for a driver
///
/// 1. Open a transport (TCP + TLS), then call [`connect`](Session::connect).
/// 2. Loop, and after every wake-up call, in this order, until each has nothing more:
///    * [`poll_transmit`](Session::poll_transmit): write what it appended to the transport,
///      in one write;
///    * [`poll_event`](Session::poll_event): hand events on. After
///      [`Event::LinkDead`], [`Event::ConnectionRefused`] or [`Event::ProtocolError`] the
///      session is disconnected: close the transport;
///    * [`poll_timeout`](Session::poll_timeout): sleep until that instant at the latest.
/// 3. The wake-ups are: bytes read ([`handle_bytes`](Session::handle_bytes)), the deadline
///    reached ([`handle_timeout`](Session::handle_timeout)), the transport closed or failed
///    ([`handle_connection_lost`](Session::handle_connection_lost)), or an application command
///    ([`publish`](Session::publish), [`subscribe`](Session::subscribe),
///    [`unsubscribe`](Session::unsubscribe), [`disconnect`](Session::disconnect)).
///
/// Commands are accepted in every state: while disconnected they wait and go out after the
/// next CONNACK. Time is always an argument; the session never reads a clock.
///
/// # Example
///
/// ```
/// use bytes::Bytes;
/// use core::time::Duration;
/// use iot443_proto::session::{Event, Session, SessionConfig};
/// use iot443_proto::{Instant, QoS, topic::TopicName};
///
/// let mut session = Session::new(SessionConfig::new("tls-test")).unwrap();
/// let now = Instant::ZERO;
/// session.connect(now);
/// let id = session
///     .publish(TopicName::new("sdkTest/sub").unwrap(), QoS::AtLeastOnce, Bytes::from("hi"), false)
///     .unwrap();
///
/// let mut wire = Vec::new();
/// session.poll_transmit(now, &mut wire);
/// assert_eq!(wire[0], 0x10); // only CONNECT goes out before CONNACK
///
/// // The server accepts: CONNACK, session not present.
/// session.handle_bytes(now, &[0x20, 0x02, 0x00, 0x00]);
/// assert_eq!(session.poll_event(), Some(Event::Connected { session_present: false }));
/// wire.clear();
/// session.poll_transmit(now, &mut wire);
/// assert_eq!(wire[0], 0x32); // now the QoS 1 PUBLISH, packet id 1
///
/// session.handle_bytes(now, &[0x40, 0x02, 0x00, 0x01]); // PUBACK 1
/// assert!(matches!(session.poll_event(), Some(Event::PublishAcked { id: acked, .. }) if acked == id));
/// assert_eq!(session.poll_timeout(), Some(now + Duration::from_secs(60))); // next PINGREQ
/// ```
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    codec: Codec,
    state: State,
    keep_alive: KeepAlive,
    /// Bytes received and not yet decoded (at most one partial packet after `handle_bytes`).
    rx: BytesMut,
    outbound: Outbound,
    events: VecDeque<Event>,
    /// Filters the server granted, re-subscribed after a CONNACK without a stored session.
    subscriptions: Vec<SubscribeFilter>,
    /// Packet ids of the SUBSCRIBEs the session sent by itself to restore `subscriptions`.
    resubscribe_ids: Vec<PacketId>,
    /// Filters restored each in a SUBSCRIBE of its own (see [`Session::split_restore`]).
    restore_singly: Vec<TopicFilter>,
}

impl Session {
    /// A disconnected session. Fails if the configuration cannot work (an empty in-flight
    /// window, a client id over 65,535 bytes, a maximum packet size too small for CONNECT).
    pub fn new(config: SessionConfig) -> Result<Self, SessionError> {
        if config.max_inflight == 0 {
            return Err(SessionError::InvalidConfig("max_inflight must be at least 1"));
        }
        let codec = Codec::new(ProtocolVersion::V311).with_max_packet_size(config.max_packet_size);
        let session = Session {
            codec,
            state: State::Disconnected,
            keep_alive: KeepAlive::new(Instant::ZERO),
            rx: BytesMut::new(),
            outbound: Outbound::new(config.max_inflight),
            events: VecDeque::new(),
            subscriptions: Vec::new(),
            resubscribe_ids: Vec::new(),
            restore_singly: Vec::new(),
            config,
        };
        session.codec.encoded_len(&Packet::Connect(session.connect_packet()))?;
        if session.codec.max_packet_size() < 64 {
            return Err(SessionError::InvalidConfig("max_packet_size must be at least 64 bytes"));
        }
        Ok(session)
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Whether CONNACK has accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// QoS 1 publishes sent and awaiting PUBACK.
    pub fn inflight_len(&self) -> usize {
        self.outbound.inflight_len()
    }

    /// Publishes accepted but not yet sent (waiting for a connection or for room in the window).
    pub fn queued_len(&self) -> usize {
        self.outbound.waiting_len()
    }

    /// Payload bytes of the publishes accepted but not yet sent.
    pub fn queued_bytes(&self) -> usize {
        self.outbound.waiting_bytes()
    }

    /// The oldest QoS 1 publish sent and still awaiting PUBACK, with its topic.
    pub fn oldest_unacknowledged(&self) -> Option<(MessageId, &TopicName)> {
        self.outbound.oldest_inflight().map(|(id, publish)| (id, &publish.topic))
    }

    /// The oldest QoS 0 publish still waiting to be sent.
    pub fn oldest_queued_qos0(&self) -> Option<MessageId> {
        self.outbound.oldest_waiting_qos0()
    }

    /// Gives up on the publish `id` (queued or awaiting PUBACK) and returns it; no event will be
    /// reported for it. Meant for a disconnected session: a message the endpoint keeps refusing
    /// is set aside, or the oldest QoS 0 message makes room in a full queue.
    pub fn discard_publish(&mut self, id: MessageId) -> Option<Publish> {
        self.outbound.discard(id)
    }

    // ---- commands ------------------------------------------------------------------------

    /// Starts a connection over a transport the driver has just opened: queues CONNECT and
    /// waits for CONNACK until `now + connect_timeout`.
    ///
    /// Anything still queued for the previous transport is dropped, except application data:
    /// publishes not yet written go back to the queue in their order, and unacknowledged QoS 1
    /// publishes (with DUP), SUBSCRIBEs and UNSUBSCRIBEs are sent again once CONNACK arrives.
    pub fn connect(&mut self, now: Instant) {
        self.reset_transport();
        self.outbound.push_control(Packet::Connect(self.connect_packet()));
        self.state = State::AwaitingConnAck { deadline: now + self.config.connect_timeout };
    }

    /// Like [`connect`](Session::connect), over a transport on which the driver has already
    /// written the CONNECT that [`connect_packet`](Session::connect_packet) returns (a driver
    /// that races several transports to CONNACK does the handshake itself). Nothing is queued;
    /// the CONNACK is expected from [`handle_bytes`](Session::handle_bytes) as usual.
    pub fn connect_written(&mut self, now: Instant) {
        self.reset_transport();
        self.keep_alive.last_sent = now;
        self.state = State::AwaitingConnAck { deadline: now + self.config.connect_timeout };
    }

    /// The CONNECT this session sends at [`connect`](Session::connect), for a driver that
    /// writes it itself (see [`connect_written`](Session::connect_written)).
    #[must_use]
    pub fn connect_packet(&self) -> Connect {
        self.config.connect_packet()
    }

    /// Queues a publish and returns its id; [`Event::PublishSent`] (QoS 0) or
    /// [`Event::PublishAcked`] (QoS 1) reports it later.
    ///
    /// Publishes keep their order. A QoS 1 publish enters the in-flight window (and gets its
    /// packet id) when there is room; until then it waits.
    pub fn publish(
        &mut self,
        topic: TopicName,
        qos: QoS,
        payload: Bytes,
        retain: bool,
    ) -> Result<MessageId, SessionError> {
        if qos == QoS::ExactlyOnce {
            return Err(SessionError::QosNotSupported(qos));
        }
        let publish = Publish {
            dup: false,
            qos: PublishQos::with_packet_id(qos, PacketId::MIN),
            retain,
            topic,
            payload,
        };
        let packet = Packet::Publish(publish);
        self.codec.checked_len(&packet)?;
        let Packet::Publish(publish) = packet else {
            return Err(SessionError::InvalidConfig("internal: publish packet expected"));
        };
        let id = self.outbound.enqueue_publish(publish);
        if self.is_connected() {
            self.outbound.fill_window();
        }
        Ok(id)
    }

    /// Queues DISCONNECT and ends the connection: the driver writes what
    /// [`poll_transmit`](Session::poll_transmit) still returns, then closes the transport.
    ///
    /// To close without losing anything, wait for the outstanding acknowledgements first.
    pub fn disconnect(&mut self, _now: Instant) {
        if self.is_connected() {
            self.outbound.push_control(Packet::Disconnect);
        }
        self.state = State::Disconnected;
        self.keep_alive.ping_deadline = None;
    }

    /// Acknowledges the QoS 1 PUBLISH `packet_id` received on the current connection, once the
    /// driver has handed it on; only with [`SessionConfig::manual_acks`]. PUBACKs must go out in
    /// the order the PUBLISHes came (MQTT 3.1.1 §4.6), so hand messages on in order.
    ///
    /// Ignored while disconnected: a message received on an earlier connection is sent again
    /// by the server (a persistent session) and must not be acknowledged on a new one, where
    /// its packet id may mean another message. The driver must not pass such ids either.
    pub fn acknowledge(&mut self, packet_id: PacketId) {
        if self.is_connected() {
            self.outbound.push_control(Packet::PubAck(PubAck { packet_id }));
        }
    }

    /// The driver stopped reading the transport because the application does not take
    /// messages (TCP pushes back on the server). Until [`resume_reading`](Session::resume_reading)
    /// the session cannot see a PINGRESP, so it does not hold their absence (nor a missing
    /// CONNACK or acknowledgement) against the link; it still sends PINGREQ every keep-alive
    /// interval, so that the server, which sees them, keeps the connection.
    pub fn pause_reading(&mut self, _now: Instant) {
        if self.keep_alive.reading_paused {
            return;
        }
        self.keep_alive.reading_paused = true;
        if self.keep_alive.ping_deadline.take().is_some() {
            self.keep_alive.ping_awaited = true;
        }
    }

    /// The driver reads the transport again. A PINGRESP still awaited is due within the ping
    /// timeout from `now`; CONNACK and acknowledgement waits count from `now` at the earliest.
    pub fn resume_reading(&mut self, now: Instant) {
        if !self.keep_alive.reading_paused {
            return;
        }
        self.keep_alive.reading_paused = false;
        self.keep_alive.resumed_at = now;
        self.keep_alive.last_received = self.keep_alive.last_received.max(now);
        if core::mem::take(&mut self.keep_alive.ping_awaited) {
            self.keep_alive.ping_deadline = Some(now + self.config.ping_timeout);
        }
        if let State::AwaitingConnAck { deadline } = &mut self.state {
            *deadline = (*deadline).max(now + self.config.connect_timeout);
        }
    }

    /// Whether reading is paused (see [`pause_reading`](Session::pause_reading)).
    pub fn is_reading_paused(&self) -> bool {
        self.keep_alive.reading_paused
    }

    // ---- inputs --------------------------------------------------------------------------

    /// Feeds bytes read from the transport. Every complete packet is handled; a partial one is
    /// kept for the next call. Bytes that arrive while disconnected are ignored.
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        if self.state == State::Disconnected {
            return;
        }
        self.rx.extend_from_slice(bytes);
        while self.state != State::Disconnected {
            match self.codec.decode(&mut self.rx) {
                Ok(Some(packet)) => self.handle_packet(now, packet),
                Ok(None) => break,
                Err(error) => self.fail(Event::ProtocolError(ProtocolError::Malformed(error))),
            }
        }
    }

    /// Lets timers fire: the CONNACK deadline, the next PINGREQ, the PINGRESP deadline and the
    /// acknowledgement timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        let paused = self.keep_alive.reading_paused;
        match self.state {
            State::Disconnected => {}
            State::AwaitingConnAck { deadline } => {
                if now >= deadline && !paused {
                    self.fail(Event::LinkDead { reason: LinkDeadReason::ConnAckTimeout });
                }
            }
            State::Connected if paused => {
                // Nothing read can prove the link alive: only keep the server's timer happy.
                if self.next_ping_at().is_some_and(|at| now >= at) {
                    self.outbound.push_control(Packet::PingReq);
                    self.keep_alive.ping_awaited = true;
                }
            }
            State::Connected => {
                if self.keep_alive.ping_deadline.is_some_and(|deadline| now >= deadline) {
                    self.fail(Event::LinkDead { reason: LinkDeadReason::PingTimeout });
                    return;
                }
                if self.acknowledgements_timed_out(now) {
                    return;
                }
                if self.keep_alive.ping_deadline.is_none()
                    && self.next_ping_at().is_some_and(|at| now >= at)
                {
                    self.outbound.push_control(Packet::PingReq);
                    self.keep_alive.ping_deadline = Some(now + self.config.ping_timeout);
                }
            }
        }
    }

    /// The transport closed or failed. The session keeps its queues for the next
    /// [`connect`](Session::connect).
    pub fn handle_connection_lost(&mut self, _now: Instant) {
        self.state = State::Disconnected;
        self.reset_transport();
    }

    // ---- outputs -------------------------------------------------------------------------

    /// Appends every packet ready to send to `buf` and returns the number of bytes appended.
    ///
    /// With a growable buffer (`Vec<u8>`, `BytesMut`) everything ready is appended, so one
    /// write per wake-up carries it all. With a fixed-size buffer, packets that do not fit stay
    /// queued for the next call.
    pub fn poll_transmit<B: BufMut>(&mut self, now: Instant, buf: &mut B) -> usize {
        let mut written = 0;
        while let Some(outgoing) = self.outbound.front() {
            let encoded = match self.codec.encode(outgoing.packet(), buf) {
                Ok(len) => {
                    written += len;
                    true
                }
                Err(EncodeError::BufferFull { .. }) => break,
                // Commands validate their packets, so this is a bug, not a network condition:
                // drop the packet rather than wedge the queue, and say so.
                Err(error) => {
                    self.events.push_back(Event::ProtocolError(ProtocolError::Unencodable {
                        packet: outgoing.packet().packet_type(),
                        error,
                    }));
                    false
                }
            };
            // A QoS 0 publish is reported sent only when its bytes are in `buf`.
            if let Some(Outgoing::Qos0 { id, .. }) = self.outbound.pop_front() {
                let event =
                    if encoded { Event::PublishSent { id } } else { Event::PublishDropped { id } };
                self.events.push_back(event);
            }
        }
        if written > 0 {
            self.keep_alive.last_sent = now;
            if self.is_connected() {
                self.outbound.stamp_sent(now);
            }
        }
        written
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The instant at which [`handle_timeout`](Session::handle_timeout) must be called next,
    /// or `None` when no timer runs.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let paused = self.keep_alive.reading_paused;
        match self.state {
            State::Disconnected => None,
            State::AwaitingConnAck { .. } if paused => None,
            State::AwaitingConnAck { deadline } => Some(deadline),
            State::Connected if paused => self.next_ping_at(),
            State::Connected => {
                let keep_alive = self.keep_alive.ping_deadline.or_else(|| self.next_ping_at());
                earliest(keep_alive, self.ack_deadline())
            }
        }
    }

    // ---- internals -----------------------------------------------------------------------

    /// When the next PINGREQ is due: `keep_alive` after the older of the last packet sent and
    /// received, or, while reading is paused, after the last packet sent.
    fn next_ping_at(&self) -> Option<Instant> {
        if self.config.keep_alive.is_zero() {
            return None;
        }
        // CONNECT caps the keep-alive at 65,535 s and the server times out from that value.
        let interval = self.config.keep_alive.min(Duration::from_secs(u64::from(u16::MAX)));
        let since = if self.keep_alive.reading_paused {
            self.keep_alive.last_sent
        } else {
            self.keep_alive.last_sent.min(self.keep_alive.last_received)
        };
        Some(since + interval)
    }

    /// When the oldest written publish or request runs out of time for its acknowledgement.
    fn ack_deadline(&self) -> Option<Instant> {
        if self.config.ack_timeout.is_zero() {
            return None;
        }
        let request = self.outbound.oldest_request_sent_at().map(|(at, _)| at);
        let oldest = earliest(self.outbound.oldest_inflight_sent_at(), request)?;
        Some(oldest.max(self.keep_alive.resumed_at) + self.config.ack_timeout)
    }

    /// Applies the acknowledgement timeout at `now`: a PUBLISH (or a restoring SUBSCRIBE)
    /// past it ends the connection (returns `true`); an application's request past it is
    /// given up and reported.
    fn acknowledgements_timed_out(&mut self, now: Instant) -> bool {
        if self.config.ack_timeout.is_zero() {
            return false;
        }
        let expired = |sent_at: Instant| {
            now >= sent_at.max(self.keep_alive.resumed_at) + self.config.ack_timeout
        };
        if self.outbound.oldest_inflight_sent_at().is_some_and(expired) {
            self.fail(Event::LinkDead { reason: LinkDeadReason::PubAckTimeout });
            return true;
        }
        while let Some((sent_at, packet_id)) = self.outbound.oldest_request_sent_at() {
            if !expired(sent_at) {
                break;
            }
            if self.resubscribe_ids.contains(&packet_id) {
                self.fail(Event::LinkDead { reason: LinkDeadReason::SubAckTimeout });
                return true;
            }
            if let Some(packet) = self.outbound.discard_request(packet_id) {
                self.events.push_back(Event::RequestTimedOut { packet_id, packet });
            }
        }
        false
    }

    fn reset_transport(&mut self) {
        self.rx.clear();
        self.outbound.transport_lost();
        self.keep_alive.ping_deadline = None;
        self.keep_alive.ping_awaited = false;
    }

    /// Ends the connection with `event` (dead link, refusal, protocol error).
    fn fail(&mut self, event: Event) {
        self.events.push_back(event);
        self.state = State::Disconnected;
        self.reset_transport();
    }

    fn handle_packet(&mut self, now: Instant, packet: Packet) {
        self.keep_alive.last_received = now;
        if let Some(deadline) = self.keep_alive.ping_deadline.as_mut() {
            // Anything from the server proves the link alive; its PINGRESP is behind it.
            *deadline = now + self.config.ping_timeout;
        }
        match (self.state, packet) {
            (State::AwaitingConnAck { .. }, Packet::ConnAck(connack)) => {
                self.handle_connack(now, connack)
            }
            (State::Connected, Packet::Publish(publish)) => self.handle_publish(publish),
            (State::Connected, Packet::PubAck(PubAck { packet_id })) => {
                match self.outbound.acknowledge_publish(packet_id) {
                    Some(id) => self.events.push_back(Event::PublishAcked { id, packet_id }),
                    None => self.unexpected_ack(PacketType::PubAck, packet_id),
                }
                self.outbound.fill_window();
            }
            (State::Connected, Packet::SubAck(suback)) => self.handle_suback(suback),
            (State::Connected, Packet::UnsubAck(unsuback)) => {
                let packet_id = unsuback.packet_id;
                match self.outbound.acknowledge_request(PacketType::Unsubscribe, packet_id) {
                    Some(Packet::Unsubscribe(unsubscribe)) => {
                        self.subscriptions
                            .retain(|known| !unsubscribe.filters.contains(&known.filter));
                        self.events.push_back(Event::UnsubscribeAcked { packet_id });
                    }
                    Some(_) => self.events.push_back(Event::UnsubscribeAcked { packet_id }),
                    None => self.unexpected_ack(PacketType::UnsubAck, packet_id),
                }
            }
            (State::Connected, Packet::PingResp) => self.keep_alive.ping_deadline = None,
            (State::Connected, packet) => {
                self.fail(Event::ProtocolError(ProtocolError::UnexpectedPacket {
                    packet: packet.packet_type(),
                    when: "after CONNACK",
                }))
            }
            (_, packet) => self.fail(Event::ProtocolError(ProtocolError::UnexpectedPacket {
                packet: packet.packet_type(),
                when: "before CONNACK",
            })),
        }
    }

    fn handle_connack(&mut self, now: Instant, connack: ConnAck) {
        if !connack.code.is_accepted() {
            self.fail(Event::ConnectionRefused { code: connack.code.into() });
            return;
        }
        self.state = State::Connected;
        let paused = self.keep_alive.reading_paused;
        self.keep_alive = KeepAlive { reading_paused: paused, ..KeepAlive::new(now) };
        self.events.push_back(Event::Connected { session_present: connack.session_present });
        // Restoring SUBSCRIBEs of an earlier connection are replaced by fresh ones below.
        for packet_id in self.resubscribe_ids.drain(..) {
            self.outbound.acknowledge_request(PacketType::Subscribe, packet_id);
        }
        // Subscriptions first, then the publishes sent again: a request whose answer comes on a
        // subscribed topic (a Device Shadow request, say) finds that topic subscribed again.
        self.outbound.resend_requests();
        if !connack.session_present {
            self.restore_subscriptions();
        }
        self.outbound.resend_inflight();
        self.outbound.fill_window();
    }

    fn handle_publish(&mut self, publish: Publish) {
        match publish.qos {
            PublishQos::AtMostOnce => {}
            PublishQos::AtLeastOnce(packet_id) => {
                if !self.config.manual_acks {
                    self.outbound.push_control(Packet::PubAck(PubAck { packet_id }));
                }
            }
            PublishQos::ExactlyOnce(_) => {
                self.fail(Event::ProtocolError(ProtocolError::UnrequestedQos2));
                return;
            }
        }
        self.events.push_back(Event::Message(publish));
    }

    fn unexpected_ack(&mut self, packet: PacketType, packet_id: PacketId) {
        self.events.push_back(Event::UnexpectedAck { packet, packet_id });
    }
}

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}
