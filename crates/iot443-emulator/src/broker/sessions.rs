//! Sessions by client id: subscriptions and the QoS 1 state that outlives a connection.
//!
//! A session belongs to a client id, not to a connection. A clean session (CONNECT with
//! `clean_session = 1`) ends with its connection; a persistent one stays, offline, until
//! [`BrokerConfig::session_expiry`](super::BrokerConfig::session_expiry) after its connection
//! ended, and a CONNECT with `clean_session = 0` resumes it (AWS-IOT.md §3.6).
//!
//! Outbound QoS 1 messages move through three queues:
//!
//! * `inflight`: sent and not yet acknowledged, at most [`MAX_INFLIGHT`] (IoT Core's quota);
//!   sent again with DUP when the session is resumed;
//! * `waiting`: live messages that arrived while the window was full, sent in order as PUBACKs
//!   free it;
//! * `backlog`: messages stored while the session was offline (and `waiting` ones left when the
//!   connection ended), replayed after a resume, at 10 per second with strict rates.
//!
//! `waiting` and `backlog` together hold at most `max_queued_per_session` messages. Messages
//! beyond that are dropped in runs ([`DropRun`]): logged when a run starts, and when the queue
//! has drained to half the limit or the session ends.

use super::ConnectionId;
use super::deadlines::Deadlines;
use super::drops::DropRun;
use bytes::Bytes;
use iot443_proto::Instant;
use iot443_proto::codec::{PacketId, Publish, PublishQos, QoS};
use iot443_proto::topic::{TopicFilter, TopicName};
use std::collections::{BTreeMap, VecDeque};

/// IoT Core's limit of unacknowledged QoS 1 publishes towards one client
/// ([`AWS_MAX_INFLIGHT`](iot443_proto::codec::AWS_MAX_INFLIGHT)).
pub const MAX_INFLIGHT: usize = iot443_proto::codec::AWS_MAX_INFLIGHT as usize;

/// A message queued for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) topic: TopicName,
    pub(crate) payload: Bytes,
    /// Set only for a retained message delivered because of a SUBSCRIBE.
    pub(crate) retain: bool,
}

impl Message {
    /// The PUBLISH carrying this message.
    pub(crate) fn publish(&self, qos: PublishQos, dup: bool) -> Publish {
        Publish::new(self.topic.clone(), qos, self.payload.clone())
            .with_dup(dup)
            .with_retain(self.retain)
    }
}

/// One client id's session.
#[derive(Debug)]
pub(crate) struct Session {
    /// Created by a CONNECT with `clean_session = 0`: survives its connection.
    pub(crate) persistent: bool,
    /// The connection using the session, if any.
    pub(crate) connection: Option<ConnectionId>,
    /// When an offline persistent session is discarded.
    pub(crate) expires_at: Option<Instant>,
    /// Topic filters with their granted QoS.
    pub(crate) subscriptions: BTreeMap<TopicFilter, QoS>,
    inflight: VecDeque<(PacketId, Message)>,
    pub(crate) waiting: VecDeque<Message>,
    pub(crate) backlog: VecDeque<Message>,
    /// QoS 1 messages dropped because `waiting` and `backlog` were full.
    pub(crate) overflow: DropRun,
    next_packet_id: PacketId,
}

impl Session {
    /// An empty session attached to `connection`.
    pub(crate) fn new(persistent: bool, connection: ConnectionId) -> Self {
        Session {
            persistent,
            connection: Some(connection),
            expires_at: None,
            subscriptions: BTreeMap::new(),
            inflight: VecDeque::new(),
            waiting: VecDeque::new(),
            backlog: VecDeque::new(),
            overflow: DropRun::default(),
            next_packet_id: PacketId::MIN,
        }
    }

    /// Whether another QoS 1 publish may be sent now.
    pub(crate) fn window_open(&self) -> bool {
        self.inflight.len() < MAX_INFLIGHT
    }

    /// Messages waiting to be sent (live and stored).
    pub(crate) fn queued(&self) -> usize {
        self.waiting.len() + self.backlog.len()
    }

    /// Puts `message` in flight under a fresh packet id and returns the PUBLISH to send.
    pub(crate) fn start_inflight(&mut self, message: Message) -> Publish {
        let id = self.fresh_packet_id();
        let publish = message.publish(PublishQos::AtLeastOnce(id), false);
        self.inflight.push_back((id, message));
        publish
    }

    /// Removes the in-flight message `id`; `false` if there was none.
    pub(crate) fn acknowledge(&mut self, id: PacketId) -> bool {
        match self.inflight.iter().position(|(inflight, _)| *inflight == id) {
            Some(index) => self.inflight.remove(index).is_some(),
            None => false,
        }
    }

    /// The in-flight messages again, with DUP, in their original order (after a resume).
    pub(crate) fn redeliveries(&self) -> impl Iterator<Item = Publish> + '_ {
        self.inflight
            .iter()
            .map(|(id, message)| message.publish(PublishQos::AtLeastOnce(*id), true))
    }

    /// Detaches the session from its connection at `now`; `waiting` joins the end of
    /// `backlog`. Returns whether the session stays (persistent).
    pub(crate) fn detach(&mut self, now: Instant, expiry: std::time::Duration) -> bool {
        self.connection = None;
        let waiting = std::mem::take(&mut self.waiting);
        self.backlog.extend(waiting);
        self.expires_at = Some(now + expiry);
        self.persistent
    }

    /// A packet id not in flight. With at most [`MAX_INFLIGHT`] in flight, one is always
    /// found within `MAX_INFLIGHT + 1` tries.
    fn fresh_packet_id(&mut self) -> PacketId {
        let mut id = self.next_packet_id;
        for _ in 0..=MAX_INFLIGHT {
            if !self.inflight.iter().any(|(used, _)| *used == id) {
                break;
            }
            id = id.next();
        }
        self.next_packet_id = id.next();
        id
    }
}

/// All sessions, by client id.
#[derive(Debug, Default)]
pub(crate) struct SessionStore {
    sessions: BTreeMap<String, Session>,
    /// When the offline sessions expire, by client id.
    expiries: Deadlines<String>,
}

impl SessionStore {
    /// The session of `client_id`.
    pub(crate) fn get(&self, client_id: &str) -> Option<&Session> {
        self.sessions.get(client_id)
    }

    /// The session of `client_id`, mutable.
    pub(crate) fn get_mut(&mut self, client_id: &str) -> Option<&mut Session> {
        self.sessions.get_mut(client_id)
    }

    /// Stores `session` for `client_id`, replacing any other.
    pub(crate) fn insert(&mut self, client_id: String, session: Session) {
        self.forget_expiry(&client_id);
        if let Some(at) = session.expires_at.filter(|_| session.connection.is_none()) {
            self.expiries.insert(at, client_id.clone());
        }
        self.sessions.insert(client_id, session);
    }

    /// Detaches `client_id`'s session from `conn` at `now` ([`Session::detach`]) and schedules
    /// its expiry. `None` when the session is not `conn`'s (gone, or taken over); else whether
    /// it stays (persistent) — the caller discards one that does not.
    pub(crate) fn detach(
        &mut self,
        client_id: &str,
        conn: ConnectionId,
        now: Instant,
        expiry: std::time::Duration,
    ) -> Option<bool> {
        let session = self.sessions.get_mut(client_id).filter(|s| s.connection == Some(conn))?;
        let stays = session.detach(now, expiry);
        if let Some(at) = session.expires_at.filter(|_| stays) {
            self.expiries.insert(at, client_id.to_owned());
        }
        Some(stays)
    }

    /// Attaches `client_id`'s stored session to `conn`, which stops its expiry; `false` when
    /// there is none.
    pub(crate) fn resume(&mut self, client_id: &str, conn: ConnectionId) -> bool {
        self.forget_expiry(client_id);
        let Some(session) = self.sessions.get_mut(client_id) else { return false };
        session.connection = Some(conn);
        session.expires_at = None;
        true
    }

    /// Removes the expiry entry of `client_id`'s session, if it has one.
    fn forget_expiry(&mut self, client_id: &str) {
        if let Some(at) = self.sessions.get(client_id).and_then(|session| session.expires_at) {
            self.expiries.remove(at, client_id.to_owned());
        }
    }

    /// Removes and returns the session of `client_id`.
    pub(crate) fn remove(&mut self, client_id: &str) -> Option<Session> {
        self.forget_expiry(client_id);
        self.sessions.remove(client_id)
    }

    /// Takes the client ids of the offline sessions expired at `now`, for the caller to discard.
    pub(crate) fn expired(&mut self, now: Instant) -> Vec<String> {
        let mut expired = Vec::new();
        while let Some((_, client_id)) = self.expiries.pop_due(now) {
            expired.push(client_id);
        }
        expired
    }

    /// The earliest expiry of an offline session.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.expiries.next()
    }

    /// Number of sessions, online and offline.
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(n: u8) -> Message {
        Message {
            topic: TopicName::new("t").unwrap(),
            payload: Bytes::from(vec![n]),
            retain: false,
        }
    }

    #[test]
    fn packet_ids_skip_those_in_flight_and_the_window_closes_at_100() {
        let mut session = Session::new(true, ConnectionId(1));
        let first = session.start_inflight(message(0));
        assert_eq!(first.qos.packet_id(), PacketId::new(1));
        for n in 1..MAX_INFLIGHT {
            assert!(session.window_open());
            session.start_inflight(message(n as u8));
        }
        assert!(!session.window_open());
        assert!(session.acknowledge(PacketId::new(1).unwrap()));
        assert!(!session.acknowledge(PacketId::new(1).unwrap()));
        assert!(session.window_open());
        // Start the search at 2: ids 2..=100 are in flight, so 101 is the first free one.
        session.next_packet_id = PacketId::new(2).unwrap();
        let next = session.start_inflight(message(200));
        assert_eq!(next.qos.packet_id(), PacketId::new(101));
        let dups: Vec<_> = session.redeliveries().collect();
        assert_eq!(dups.len(), MAX_INFLIGHT);
        assert!(dups.iter().all(|p| p.dup));
    }

    #[test]
    fn detaching_moves_waiting_behind_the_backlog() {
        let mut session = Session::new(true, ConnectionId(1));
        session.backlog.push_back(message(1));
        session.waiting.push_back(message(2));
        assert!(session.detach(Instant::ZERO, std::time::Duration::from_secs(5)));
        assert_eq!(session.backlog, [message(1), message(2)]);
        assert_eq!(session.queued(), 2);
        let mut store = SessionStore::default();
        store.insert("c".into(), session);
        assert_eq!(store.next_expiry(), Some(Instant::ZERO + std::time::Duration::from_secs(5)));
        assert!(store.expired(Instant::ZERO).is_empty());
        assert_eq!(store.expired(Instant::ZERO + std::time::Duration::from_secs(5)), ["c"]);
    }
}
