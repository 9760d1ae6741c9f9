//! The broker behind one lock, the connection tasks' wake-up handles, and the timer task.

use crate::broker::{Broker, BrokerEvent, CloseReason, ConnectionId, PeerIdentity};
use iot443_proto::Instant;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// Why a connection task must end, as others tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Closing {
    /// The broker closed the connection, or recorded that its transport ended.
    Broker {
        /// Why.
        reason: CloseReason,
        /// Messages dropped for the client while the connection was open (see
        /// [`BrokerEvent::Close`]).
        dropped: u64,
    },
    /// The emulator is stopping.
    Stopping,
}

/// What a connection task is told by others.
#[derive(Debug, Default)]
pub(super) struct ConnectionHandle {
    /// Woken when the broker has output for this connection or closes it.
    pub(super) wake: Notify,
    /// Set when the broker closed the connection or the emulator stops; the task flushes and
    /// ends.
    close: Mutex<Option<Closing>>,
}

impl ConnectionHandle {
    /// Why the task must end, if it must; taken once.
    pub(super) fn take_close(&self) -> Option<Closing> {
        self.close.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Tells the task to end for `closing` (a close from the broker wins over a stop) and
    /// wakes it.
    fn set_close(&self, closing: Closing) {
        let mut close = self.close.lock().unwrap_or_else(PoisonError::into_inner);
        match (&*close, &closing) {
            (Some(Closing::Broker { .. }), Closing::Stopping) => {}
            _ => *close = Some(closing),
        }
        drop(close);
        self.wake.notify_one();
    }
}

/// A connection the broker closed (or whose transport ended), as
/// [`InMemoryEmulator`](super::InMemoryEmulator) reports it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedConnection {
    /// The connection.
    pub conn: ConnectionId,
    /// The client id, if CONNECT had been accepted.
    pub client_id: Option<String>,
    /// Why it was closed.
    pub reason: CloseReason,
    /// Messages for the client dropped while the connection was open because it did not keep
    /// up (see [`BrokerEvent::Close`]).
    pub dropped: u64,
}

pub(super) struct State {
    pub(super) broker: Broker,
    connections: HashMap<ConnectionId, Arc<ConnectionHandle>>,
    /// The deadline the timer task sleeps until, if any.
    armed: Option<Instant>,
    shutting_down: bool,
    /// Every close so far, when the closes are recorded (in-memory serving for tests).
    closes: Option<Vec<ClosedConnection>>,
    /// Where changed shadows go to be stored, when there is a store.
    pub(super) store: Option<std::sync::mpsc::Sender<super::shadow_store::Change>>,
}

impl State {
    /// Whether the broker now wants to wake earlier than the timer task sleeps.
    fn timer_moved_earlier(&self) -> bool {
        match (self.broker.poll_timeout(), self.armed) {
            (Some(next), Some(armed)) => next < armed,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// The broker and its connection handles, behind one mutex held only for short, non-blocking
/// sections.
///
/// The broker's clock is tokio's: under `tokio::time::pause()` every timer of the emulator
/// (CONNECT timeout, keep-alive, session expiry, quotas) runs in virtual time.
pub(super) struct Shared {
    state: Mutex<State>,
    origin: tokio::time::Instant,
    /// Woken whenever the broker's next deadline may have moved.
    timer_changed: Notify,
    /// Woken once, for every task, when the emulator stops.
    stop: Notify,
    /// Woken when a close is recorded.
    close_recorded: Notify,
    /// What the WebSocket road verifies; unset, every upgrade is refused with 403.
    web: std::sync::OnceLock<Arc<super::WebRules>>,
}

impl Shared {
    /// Serves `broker`; with `record_closes`, every close is kept for
    /// [`Shared::closes`].
    pub(super) fn new(broker: Broker, record_closes: bool) -> Self {
        Shared {
            state: Mutex::new(State {
                broker,
                connections: HashMap::new(),
                armed: None,
                shutting_down: false,
                closes: record_closes.then(Vec::new),
                store: None,
            }),
            origin: tokio::time::Instant::now(),
            timer_changed: Notify::new(),
            stop: Notify::new(),
            close_recorded: Notify::new(),
            web: std::sync::OnceLock::new(),
        }
    }

    /// Sets what the WebSocket road verifies (once; later calls change nothing).
    pub(super) fn set_web(&self, rules: Arc<super::WebRules>) {
        let _ = self.web.set(rules);
    }

    /// What the WebSocket road verifies, if set.
    pub(super) fn web(&self) -> Option<&super::WebRules> {
        self.web.get().map(Arc::as_ref)
    }

    /// Sends every shadow change from now on to the store thread.
    pub(super) fn set_store(&self, changes: std::sync::mpsc::Sender<super::shadow_store::Change>) {
        self.lock().store = Some(changes);
    }

    /// The broker's time: since the emulator started, on tokio's clock.
    pub(super) fn now(&self) -> Instant {
        Instant::from_duration(self.origin.elapsed())
    }

    /// Locks the state. A panic elsewhere never poisons the emulator for good.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the broker, then hands out its events: wake-ups, closes, logs.
    pub(super) fn with_broker<T>(&self, f: impl FnOnce(&mut Broker, Instant) -> T) -> T {
        let now = self.now();
        let mut state = self.lock();
        let result = f(&mut state.broker, now);
        self.settle(state);
        result
    }

    /// Moves `conn`'s pending output into `buf`. Taking output queues no broker event and moves
    /// no deadline, so neither the dispatch nor the timer check of
    /// [`with_broker`](Shared::with_broker) is needed.
    pub(super) fn poll_transmit(&self, conn: ConnectionId, buf: &mut bytes::BytesMut) -> usize {
        self.lock().broker.poll_transmit(conn, buf)
    }

    /// After a call into the broker: hands out its events, releases the lock, and wakes the
    /// timer task if the broker's next deadline moved earlier.
    fn settle(&self, mut state: MutexGuard<'_, State>) {
        self.dispatch_events(&mut state);
        let rearm = state.timer_moved_earlier();
        drop(state);
        if rearm {
            self.timer_changed.notify_one();
        }
    }

    /// Registers a new connection and returns its id and handle; `None` while shutting down.
    pub(super) fn open(&self, peer: PeerIdentity) -> Option<(ConnectionId, Arc<ConnectionHandle>)> {
        let now = self.now();
        let mut state = self.lock();
        if state.shutting_down {
            return None;
        }
        let id = state.broker.open(now, peer);
        let handle = Arc::new(ConnectionHandle::default());
        state.connections.insert(id, Arc::clone(&handle));
        self.settle(state);
        Some((id, handle))
    }

    /// Forgets a connection whose task has ended.
    pub(super) fn forget(&self, id: ConnectionId) {
        self.lock().connections.remove(&id);
    }

    /// Closes every connection and stops every task waiting on [`Shared::stopped`].
    pub(super) fn shut_down(&self) {
        let mut state = self.lock();
        state.shutting_down = true;
        for handle in state.connections.values() {
            handle.set_close(Closing::Stopping);
        }
        // The store thread writes what it was sent, then ends.
        state.store = None;
        drop(state);
        self.stop.notify_waiters();
    }

    /// Completes when [`Shared::shut_down`] is called after this call (create it before
    /// checking for work, like [`Notify::notified`]).
    pub(super) fn stopped(&self) -> tokio::sync::futures::Notified<'_> {
        self.stop.notified()
    }

    /// The recorded closes from index `from` on (none unless closes are recorded).
    pub(super) fn closes(&self, from: usize) -> Vec<ClosedConnection> {
        let state = self.lock();
        let closes = state.closes.as_deref().unwrap_or_default();
        closes.get(from..).unwrap_or_default().to_vec()
    }

    /// The recorded close at `index`, once there is one.
    pub(super) async fn close_at(&self, index: usize) -> ClosedConnection {
        loop {
            let recorded = self.close_recorded.notified();
            if let Some(closed) = self.closes(index).into_iter().next() {
                return closed;
            }
            recorded.await;
        }
    }

    /// Hands out the broker's events: wake-ups and closes to the connection tasks, changed
    /// shadows to the store.
    fn dispatch_events(&self, state: &mut State) {
        while let Some((id, shadow)) = state.broker.poll_shadow_change() {
            if let Some(store) = &state.store
                && store.send((id, shadow)).is_err()
            {
                tracing::error!(
                    "the shadow store thread has ended: shadow changes are no longer stored"
                );
                state.store = None;
            }
        }
        while let Some(event) = state.broker.poll_event() {
            match event {
                BrokerEvent::Wake(id) => {
                    if let Some(handle) = state.connections.get(&id) {
                        handle.wake.notify_one();
                    }
                }
                // The broker logs closes and connects itself; the connection task adds what
                // only it knows (the peer's address, the transport's error).
                BrokerEvent::Close { conn, client_id, reason, dropped } => {
                    if let Some(closes) = &mut state.closes {
                        let reason = reason.clone();
                        closes.push(ClosedConnection { conn, client_id, reason, dropped });
                        self.close_recorded.notify_waiters();
                    }
                    if let Some(handle) = state.connections.get(&conn) {
                        handle.set_close(Closing::Broker { reason, dropped });
                    }
                }
                BrokerEvent::Connected { .. } => {}
            }
        }
    }
}

/// Fires the broker's timers (CONNECT timeout, keep-alive, session expiry, quotas) until the
/// emulator stops.
pub(super) async fn run_timers(shared: Arc<Shared>) {
    let stopped = shared.stopped();
    tokio::pin!(stopped);
    loop {
        let deadline = {
            let mut state = shared.lock();
            state.armed = state.broker.poll_timeout();
            state.armed
        };
        let sleep = async {
            match deadline {
                Some(at) => {
                    tokio::time::sleep_until(shared.origin + at.duration_since_origin()).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut stopped => return,
            () = shared.timer_changed.notified() => {}
            () = sleep => shared.with_broker(|broker, now| broker.handle_timeout(now)),
        }
    }
}
