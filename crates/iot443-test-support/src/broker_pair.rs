//! Client [`Session`]s joined to the emulator's real sans-IO [`Broker`] with a virtual clock.
//!
//! Where [`Pair`](crate::Pair) scripts the server by hand, a [`BrokerPair`] lets the broker
//! answer as the emulator does: IoT Core's keep-alive (1.5 ×), its quotas, its routing. Bytes
//! move both ways until neither side has anything to send, and [`BrokerPair::advance`] fires
//! every timer of both sides at its due instant, like quinn's test `Pair`.

use crate::VirtualClock;
use iot443_emulator::broker::{
    Broker, BrokerConfig, BrokerEvent, CloseReason, ConnectionId, PeerIdentity,
};
use iot443_proto::Instant;
use iot443_proto::session::{Event, Session, SessionConfig};
use std::collections::VecDeque;
use std::time::Duration;

/// One of the clients of a [`BrokerPair`], as [`BrokerPair::add_client`] returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientRef(usize);

/// One or more client [`Session`]s, the emulator's [`Broker`] and a [`VirtualClock`].
#[derive(Debug)]
pub struct BrokerPair {
    /// The broker, with the rules of the [`BrokerConfig`] it was made with.
    pub broker: Broker,
    /// The clock of both sides.
    pub clock: VirtualClock,
    clients: Vec<PairClient>,
    /// What the broker reported, with the instant, not yet taken.
    broker_events: VecDeque<(Instant, BrokerEvent)>,
}

#[derive(Debug)]
struct PairClient {
    session: Session,
    /// The broker's connection while the link is up.
    link: Option<ConnectionId>,
    /// The client hangs: it sends nothing, reads nothing, fires no timer.
    silenced: bool,
    events: VecDeque<Event>,
    /// When and why the broker closed the client's last link.
    closed: Option<(Instant, CloseReason)>,
}

impl BrokerPair {
    /// A broker with `config` and no client; the clock at [`Instant::ZERO`].
    pub fn new(config: BrokerConfig) -> Self {
        BrokerPair {
            broker: Broker::new(config),
            clock: VirtualClock::new(),
            clients: Vec::new(),
            broker_events: VecDeque::new(),
        }
    }

    /// Adds a disconnected client with `config`. Panics if the configuration is invalid.
    pub fn add_client(&mut self, config: SessionConfig) -> ClientRef {
        self.clients.push(PairClient {
            session: Session::new(config).expect("valid session config"),
            link: None,
            silenced: false,
            events: VecDeque::new(),
            closed: None,
        });
        ClientRef(self.clients.len() - 1)
    }

    /// Opens a link for `client` (its certificate's common name is its client id; a link it
    /// still had is closed first), connects and moves bytes until idle. Returns the CONNACK's session-present flag; the `Connected`
    /// event is consumed. Panics if the broker does not accept the connection.
    pub fn connect(&mut self, client: ClientRef) -> bool {
        let now = self.clock.now();
        if let Some(old) = self.side(client).link.take() {
            self.broker.handle_closed(now, old);
            self.collect_broker_events(now);
        }
        let side = self.side(client);
        let common_name = Some(side.session.config().client_id.clone());
        let peer = PeerIdentity { common_name, certificate_sha256: "00".repeat(32) };
        side.closed = None;
        side.session.connect(now);
        let conn = self.broker.open(now, peer);
        self.side(client).link = Some(conn);
        self.transfer();
        let side = self.side(client);
        let Some(index) =
            side.events.iter().position(|event| matches!(event, Event::Connected { .. }))
        else {
            panic!("no Connected event: {:?} (broker: {:?})", side.events, side.closed);
        };
        match side.events.remove(index) {
            Some(Event::Connected { session_present }) => session_present,
            other => panic!("expected Connected, got {other:?}"),
        }
    }

    /// The session of `client`, for commands (publish, subscribe…); call
    /// [`transfer`](BrokerPair::transfer) afterwards.
    pub fn session(&mut self, client: ClientRef) -> &mut Session {
        &mut self.side(client).session
    }

    /// `client` hangs from now on: it sends nothing, reads nothing and fires no timer, as a
    /// device whose process froze. Its link stays open until the broker closes it.
    pub fn silence(&mut self, client: ClientRef) {
        self.side(client).silenced = true;
    }

    /// Whether `client` has a link to the broker.
    pub fn is_linked(&mut self, client: ClientRef) -> bool {
        self.side(client).link.is_some()
    }

    /// When and why the broker closed `client`'s last link, if it did.
    pub fn closed(&mut self, client: ClientRef) -> Option<(Instant, CloseReason)> {
        self.side(client).closed.clone()
    }

    /// Takes the events `client`'s session reported so far.
    pub fn take_events(&mut self, client: ClientRef) -> Vec<Event> {
        self.side(client).events.drain(..).collect()
    }

    /// Takes the events the broker reported so far, each with the instant it was reported at.
    pub fn take_broker_events(&mut self) -> Vec<(Instant, BrokerEvent)> {
        self.broker_events.drain(..).collect()
    }

    /// Moves bytes both ways, for every linked client, until no side has anything to send.
    /// A close by either side is carried out: the broker's last bytes reach the client, which
    /// then loses its link; a client that gives its link up is reported to the broker.
    pub fn transfer(&mut self) {
        let now = self.clock.now();
        loop {
            let mut moved = false;
            for index in 0..self.clients.len() {
                moved |= self.client_to_broker(now, index);
                self.collect_broker_events(now);
                moved |= self.broker_to_client(now, index);
            }
            if !moved {
                return;
            }
        }
    }

    /// Moves the clock forward by `by`, firing every timer of the broker and of the clients
    /// that are not silenced at its due instant, and moving bytes after each.
    pub fn advance(&mut self, by: Duration) {
        let target = self.clock.now() + by;
        for _ in 0..1_000_000 {
            let next = self.next_timeout();
            let at = match next {
                Some(due) if due <= target => due,
                _ => target,
            };
            self.clock.advance_to(at);
            self.fire_timers();
            self.transfer();
            if at == target && self.next_timeout().is_none_or(|due| due > target) {
                return;
            }
        }
        panic!("timers keep firing at {:?}", self.clock.now());
    }

    fn side(&mut self, client: ClientRef) -> &mut PairClient {
        self.clients.get_mut(client.0).expect("a client of this pair")
    }

    /// Writes what client `index` has to send into the broker; whether there was anything.
    fn client_to_broker(&mut self, now: Instant, index: usize) -> bool {
        let Some(side) = self.clients.get_mut(index) else { return false };
        let Some(conn) = side.link.filter(|_| !side.silenced) else { return false };
        let mut wire = Vec::new();
        side.session.poll_transmit(now, &mut wire);
        if wire.is_empty() {
            return false;
        }
        self.broker.handle_bytes(now, conn, &wire);
        true
    }

    /// Writes what the broker has for client `index` into its session (a silenced client's
    /// bytes are lost); whether there was anything. A session that gives its link up is
    /// reported to the broker as a closed transport.
    fn broker_to_client(&mut self, now: Instant, index: usize) -> bool {
        let Some(side) = self.clients.get_mut(index) else { return false };
        let Some(conn) = side.link else { return false };
        let mut wire = Vec::new();
        self.broker.poll_transmit(conn, &mut wire);
        if side.silenced || wire.is_empty() {
            return false;
        }
        side.session.handle_bytes(now, &wire);
        let link_given_up = collect_session_events(side);
        if link_given_up {
            side.link = None;
            self.broker.handle_closed(now, conn);
            self.collect_broker_events(now);
        }
        true
    }

    /// Keeps the broker's events; a close takes the link from its client, after handing it
    /// the broker's last bytes.
    fn collect_broker_events(&mut self, now: Instant) {
        while let Some(event) = self.broker.poll_event() {
            if let BrokerEvent::Close { conn, reason, .. } = &event {
                let owner = self.clients.iter_mut().find(|side| side.link == Some(*conn));
                if let Some(side) = owner {
                    let mut wire = Vec::new();
                    self.broker.poll_transmit(*conn, &mut wire);
                    if !side.silenced {
                        side.session.handle_bytes(now, &wire);
                        side.session.handle_connection_lost(now);
                        collect_session_events(side);
                    }
                    side.link = None;
                    side.closed = Some((now, reason.clone()));
                }
            }
            self.broker_events.push_back((now, event));
        }
    }

    /// The earliest deadline of the broker and of the clients that are not silenced.
    fn next_timeout(&self) -> Option<Instant> {
        let clients = self
            .clients
            .iter()
            .filter(|side| !side.silenced)
            .filter_map(|side| side.session.poll_timeout());
        clients.chain(self.broker.poll_timeout()).min()
    }

    /// Fires the timers due at the clock's instant.
    fn fire_timers(&mut self) {
        let now = self.clock.now();
        if self.broker.poll_timeout().is_some_and(|due| due <= now) {
            self.broker.handle_timeout(now);
            self.collect_broker_events(now);
        }
        for index in 0..self.clients.len() {
            let Some(side) = self.clients.get_mut(index) else { continue };
            if side.silenced || side.session.poll_timeout().is_none_or(|due| due > now) {
                continue;
            }
            side.session.handle_timeout(now);
            if collect_session_events(side)
                && let Some(conn) = side.link.take()
            {
                self.broker.handle_closed(now, conn);
                self.collect_broker_events(now);
            }
        }
    }
}

/// Keeps the session's events; returns whether one of them gives the link up (the driver
/// would close the transport).
fn collect_session_events(side: &mut PairClient) -> bool {
    let mut link_given_up = false;
    while let Some(event) = side.session.poll_event() {
        link_given_up |= matches!(
            event,
            Event::LinkDead { .. } | Event::ConnectionRefused { .. } | Event::ProtocolError(_)
        );
        side.events.push_back(event);
    }
    link_given_up
}
