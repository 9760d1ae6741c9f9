//! The broker behind one lock, the connection tasks' wake-up handles, and the timer task.

use crate::broker::{Broker, BrokerEvent, ConnectionId};
use iot443_proto::Instant;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// What a connection task is told by others.
#[derive(Debug, Default)]
pub(super) struct ConnectionHandle {
    /// Woken when the broker has output for this connection or closes it.
    pub(super) wake: Notify,
    /// Set, with the reason, when the broker closed the connection or the emulator stops; the
    /// task flushes and ends.
    pub(super) close: Mutex<Option<String>>,
}

impl ConnectionHandle {
    pub(super) fn take_close(&self) -> Option<String> {
        self.close.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

pub(super) struct State {
    pub(super) broker: Broker,
    pub(super) connections: HashMap<ConnectionId, Arc<ConnectionHandle>>,
    /// The deadline the timer task sleeps until, if any.
    armed: Option<Instant>,
    shutting_down: bool,
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
pub(super) struct Shared {
    state: Mutex<State>,
    origin: std::time::Instant,
    /// Woken whenever the broker's next deadline may have moved.
    pub(super) timer_changed: Notify,
}

impl Shared {
    pub(super) fn new(broker: Broker) -> Self {
        Shared {
            state: Mutex::new(State {
                broker,
                connections: HashMap::new(),
                armed: None,
                shutting_down: false,
            }),
            origin: std::time::Instant::now(),
            timer_changed: Notify::new(),
        }
    }

    pub(super) fn now(&self) -> Instant {
        Instant::from_duration(self.origin.elapsed())
    }

    /// Locks the state. A panic elsewhere never poisons the emulator for good.
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
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
        dispatch_events(&mut state);
        let rearm = state.timer_moved_earlier();
        drop(state);
        if rearm {
            self.timer_changed.notify_one();
        }
    }

    /// Registers a new connection and returns its id and handle; `None` while shutting down.
    pub(super) fn open(
        &self,
        peer: crate::broker::PeerIdentity,
    ) -> Option<(ConnectionId, Arc<ConnectionHandle>)> {
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

    /// Closes every connection.
    pub(super) fn shut_down(&self) {
        let mut state = self.lock();
        state.shutting_down = true;
        for handle in state.connections.values() {
            let mut close = handle.close.lock().unwrap_or_else(PoisonError::into_inner);
            close.get_or_insert_with(|| "the emulator is stopping".to_owned());
            drop(close);
            handle.wake.notify_one();
        }
    }
}

fn dispatch_events(state: &mut State) {
    while let Some(event) = state.broker.poll_event() {
        match event {
            BrokerEvent::Wake(id) => {
                if let Some(handle) = state.connections.get(&id) {
                    handle.wake.notify_one();
                }
            }
            // The broker logs closes and connects itself, with more detail than the shell has.
            BrokerEvent::Close { conn, reason, .. } => {
                if let Some(handle) = state.connections.get(&conn) {
                    *handle.close.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(reason.to_string());
                    handle.wake.notify_one();
                }
            }
            BrokerEvent::Connected { .. } => {}
        }
    }
}

/// Fires the broker's timers (CONNECT timeout, keep-alive, session expiry, quotas).
pub(super) async fn run_timers(shared: Arc<Shared>, stop: Arc<Notify>) {
    let stopped = stop.notified();
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
                    let wait = at.saturating_duration_since(shared.now());
                    tokio::time::sleep(wait).await;
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
