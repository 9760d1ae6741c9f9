//! The driver task: one per client, alive for the client's whole life (not per connection),
//! owning the transport, the sans-IO [`Session`] and, when configured, the durable outbox.
//!
//! # Shape
//!
//! The connection is one [`Link`](state::Link), whose states own what they need:
//!
//! ```text
//!            ┌──────────── attempt failed ─────────────┐
//!            ▼                                         │
//!   Opening(attempt) ── opened ──► Up(reader, writer, buffers) ── lost ──► BackingOff(until)
//!            ▲                          │                                     │
//!            └──────────────────────────┼──────────── until reached ──────────┘
//!                                       ▼
//!        disconnect, a refusal that ends the first connect, no reconnect ──► Ended(reason)
//! ```
//!
//! The rest is grouped by concern: the application's side (commands, events, subscriptions'
//! queues), the callers waiting for an answer ([`Waiting`](requests::Waiting)), the durable
//! side ([`Durable`](durable::Durable): the outbox on its own thread), and reconnecting (backoff,
//! refusal streak, a seeded jitter source).
//!
//! # The loop
//!
//! Each turn reads top-down: move what the session has ready (bytes into the write buffer,
//! events to the application), finish a requested disconnect, tell the session whether reading
//! is paused, wait for the next wake-up ([`Wakeup`]) — a command, bytes read, bytes written, an
//! attempt finishing, the backoff or the session's timer, room in a subscription's queue, the
//! outbox's sync — and handle it. Every state transition lives in `state.rs`.
//!
//! Messages go to bounded per-subscription queues; when one is full the driver stops reading
//! the transport (TCP pushes back) and tells the session, which keeps sending PINGREQ without
//! holding the unread PINGRESPs against the link. A QoS 1 message is acknowledged only once it
//! is in its queue: what the client holds beyond the queues is at most what one read brought
//! (16 KiB of packets, one TLS record), and the endpoint keeps the rest.

mod commands;
mod delivery;
mod durable;
mod finish;
mod hints;
mod id_hash;
mod link;
mod refusals;
mod requests;
mod session_events;
mod state;
mod unwritten;

use crate::connect::{Connector, Opened};
use crate::error::ClientError;
use crate::message::{ConnectionInfo, Event, Message};
use crate::offline_queue::OfflineQueue;
use crate::outbox::{OutboxEntry, OutboxError, OutboxId, OutboxWorker};
use crate::reconnect::{Backoff, ReconnectPolicy};
use bytes::Bytes;
use delivery::Deliveries;
use durable::Durable;
use iot443_proto::codec::SubscribeFilter;
use iot443_proto::session::{Session, SessionConfig};
use iot443_proto::topic::{TopicFilter, TopicName};
use iot443_proto::{Instant, QoS};
use rand::SeedableRng;
use rand::rngs::StdRng;
use requests::Waiting;
use state::{Input, Link, Output, Written};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most commands taken in one turn, so that outbox writes are committed in groups.
const COMMAND_BATCH: usize = 256;
/// While connected, commands wait in the (bounded) command channel once this many publishes
/// are queued behind the in-flight window: memory stays flat and callers feel backpressure.
/// While disconnected the offline queue's own bounds apply instead.
const QUEUED_AHEAD_OF_WINDOW: usize = 256;
/// Likewise, commands wait while this many bytes are written-but-not-yet-sent (QoS 0 floods).
const WRITE_BUFFER_HIGH_WATER: usize = 1024 * 1024;

type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

/// What a `Client` asks of its driver.
#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        topic: TopicName,
        qos: QoS,
        payload: Bytes,
        retain: bool,
        /// Answered once the message is accepted (on disk, with an outbox).
        accepted: Option<Reply<()>>,
        done: Reply<()>,
    },
    Subscribe {
        filters: Vec<SubscribeFilter>,
        messages: mpsc::Sender<Message>,
        done: Reply<Vec<QoS>>,
    },
    Unsubscribe {
        filter: TopicFilter,
        done: Reply<()>,
    },
    Disconnect {
        done: Reply<()>,
    },
}

/// The durable outbox a driver starts with: its thread, and what it kept from an earlier run.
pub(crate) struct DurableSetup {
    pub(crate) worker: OutboxWorker,
    pub(crate) replay: Vec<OutboxEntry>,
    /// How long a QoS 1 message may wait for its PUBACK.
    pub(crate) message_expiry: Option<std::time::Duration>,
}

/// Everything a driver starts with.
pub(crate) struct DriverSetup {
    pub(crate) opened: Opened,
    pub(crate) connector: Arc<dyn Connector>,
    pub(crate) session: SessionConfig,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) offline_queue: OfflineQueue,
    pub(crate) durable: Option<DurableSetup>,
}

/// How a driver talks with its client: commands in, events out, and the first connection's
/// outcome.
pub(crate) struct Channels {
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::Sender<Event>,
    pub(crate) connected: oneshot::Sender<Result<ConnectionInfo, ClientError>>,
    /// Connections accepted so far (CONNACKs), for [`Client::connection_changes`](crate::Client::connection_changes).
    pub(crate) connections: tokio::sync::watch::Sender<u64>,
}

/// The application's side: its commands, its events, its subscriptions' queues.
struct Application {
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    /// The first connection's outcome, until it is known (`Client::connect` waits for it).
    connected: Option<oneshot::Sender<Result<ConnectionInfo, ClientError>>>,
    /// Connections accepted so far, bumped at every CONNACK that accepts one.
    connections: tokio::sync::watch::Sender<u64>,
    deliveries: Deliveries,
    /// The application asked to disconnect; answered once everything queued is delivered.
    disconnecting: Option<Reply<()>>,
    /// The disconnect is done; answered at the very end, once the outbox is closed.
    disconnected: Option<Reply<()>>,
}

/// Reconnecting: when, and how many refusals in a row.
struct Reconnect {
    backoff: Backoff,
    /// The oldest unacknowledged message at the last refusals, and how many in a row.
    refusal_streak: (Option<refusals::Culprit>, u32),
    /// The jitter's random source (seeded by [`ReconnectPolicy::jitter_seed`] for tests).
    rng: StdRng,
    /// Transports opened so far, for the connection's span and for acknowledging a message
    /// only on the connection that brought it.
    generation: u64,
}

pub(crate) struct Driver {
    link: Link,
    connector: Arc<dyn Connector>,
    session: Session,
    origin: tokio::time::Instant,
    /// How the current (or last) transport is connected, for messages and events.
    info: ConnectionInfo,
    app: Application,
    waiting: Waiting,
    durable: Option<Durable>,
    reconnect: Reconnect,
    offline_queue: OfflineQueue,
}

/// What woke the driver up.
enum Wakeup {
    Command(Option<Command>),
    Read(std::io::Result<usize>),
    Output(std::io::Result<Written>),
    /// Boxed: an opened transport with its `ConnectionInfo` is far larger than the others.
    AttemptFinished(Box<Result<Opened, ClientError>>),
    RetryDue,
    /// The first parked message's queue has room (`true`) or is closed (`false`).
    Room(bool),
    Timer,
    /// The outbox's answer to the commit in progress; `None` when its thread ended.
    Stored(Option<Result<Vec<OutboxId>, Arc<OutboxError>>>),
}

impl Driver {
    pub(crate) fn new(mut setup: DriverSetup, channels: Channels) -> Result<Self, ClientError> {
        // Received QoS 1 messages are acknowledged once handed on (see `delivery`).
        setup.session.manual_acks = true;
        let session = Session::new(setup.session).map_err(ClientError::Session)?;
        let rng = match setup.reconnect.jitter_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let info = setup.opened.info.clone();
        let (durable, replay) = match setup.durable {
            Some(durable) => {
                (Some(Durable::new(durable.worker, durable.message_expiry)), durable.replay)
            }
            None => (None, Vec::new()),
        };
        let mut driver = Driver {
            // The first transport takes the same transition as every later one.
            link: Link::Opening(Box::pin(std::future::ready(Ok(setup.opened)))),
            connector: setup.connector,
            session,
            origin: tokio::time::Instant::now(),
            info,
            app: Application {
                commands: channels.commands,
                events: channels.events,
                connected: Some(channels.connected),
                connections: channels.connections,
                deliveries: Deliveries::default(),
                disconnecting: None,
                disconnected: None,
            },
            waiting: Waiting::default(),
            durable,
            reconnect: Reconnect {
                backoff: Backoff::new(setup.reconnect),
                refusal_streak: (None, 0),
                rng,
                generation: 0,
            },
            offline_queue: setup.offline_queue,
        };
        driver.replay_outbox(replay)?;
        Ok(driver)
    }

    fn now(&self) -> Instant {
        Instant::from_duration(self.origin.elapsed())
    }

    /// Runs until the client disconnects or the connection is lost for good.
    pub(crate) async fn run(mut self) {
        loop {
            self.drain_session();
            self.flush_outbox_removals();
            self.maybe_finish_disconnect().await;
            if self.link.is_ended() {
                break;
            }
            self.check_health();
            self.pause_reading_while_stalled();
            let wakeup = self.next_wakeup().await;
            let span = self.link.span();
            let _entered = span.as_ref().map(tracing::Span::enter);
            self.handle(wakeup);
        }
        self.finish().await;
    }

    /// Whether new commands are taken now: not while disconnecting, not while a batch waits for
    /// the outbox (the next batch gathers meanwhile: group commit), and not while the
    /// connection has a backlog.
    fn accepting(&self) -> bool {
        let backlogged = self.session.is_connected()
            && (self.session.queued_len() >= QUEUED_AHEAD_OF_WINDOW
                || self.link.write_backlog() >= WRITE_BUFFER_HIGH_WATER);
        let committing = self.durable.as_ref().is_some_and(Durable::is_committing);
        self.app.disconnecting.is_none() && !backlogged && !committing
    }

    /// Tells the session whether the driver reads: it does not while messages are parked for a
    /// full subscription queue.
    fn pause_reading_while_stalled(&mut self) {
        let stalled = self.app.deliveries.is_stalled();
        if stalled != self.session.is_reading_paused() {
            let now = self.now();
            if stalled {
                self.session.pause_reading(now);
            } else {
                self.session.resume_reading(now);
            }
        }
    }

    /// Waits for the next thing to do.
    async fn next_wakeup(&mut self) -> Wakeup {
        let deadline =
            self.session.poll_timeout().map(|at| self.origin + at.duration_since_origin());
        let accepting = self.accepting();
        let stalled = self.app.deliveries.is_stalled();
        let Driver { link, app, durable, .. } = self;
        let (input, output, attempt, retry_at) = link.parts();
        let reading = input.is_some() && !stalled;
        let writing = output.as_ref().is_some_and(|output| output.has_work());
        let connecting = attempt.is_some();
        let backing_off = retry_at.is_some();
        let stored = durable.as_mut().and_then(Durable::stored_mut);
        let committing = stored.is_some();
        tokio::select! {
            command = app.commands.recv(), if accepting => Wakeup::Command(command),
            read = Input::read_some(input), if reading => Wakeup::Read(read),
            written = Output::write_some(output), if writing => Wakeup::Output(written),
            opened = state::wait_attempt(attempt), if connecting => Wakeup::AttemptFinished(Box::new(opened)),
            () = sleep_until(retry_at), if backing_off => Wakeup::RetryDue,
            room = app.deliveries.wait_for_room(&app.events), if stalled => Wakeup::Room(room),
            result = durable::wait_stored(stored), if committing => Wakeup::Stored(result),
            () = sleep_until(deadline), if deadline.is_some() => Wakeup::Timer,
        }
    }

    fn handle(&mut self, wakeup: Wakeup) {
        match wakeup {
            Wakeup::Command(Some(command)) => self.handle_commands(command),
            // Every Client clone is gone: nobody can wait for anything any more.
            Wakeup::Command(None) => self.app.disconnecting = Some(oneshot::channel().0),
            Wakeup::Read(Ok(0)) => self.link_ended(link::Ending::ClosedByEndpoint),
            Wakeup::Read(Ok(_)) => {
                let now = self.now();
                let http = match &self.link {
                    Link::Up(up) if !self.session.is_connected() => {
                        self.http_before_connack(up.input.bytes())
                    }
                    _ => None,
                };
                if let Some(error) = http {
                    self.lose_link(
                        crate::reconnect::Cause::Refused(error.to_string()),
                        error,
                        false,
                    );
                } else if let Link::Up(up) = &mut self.link {
                    self.session.handle_bytes(now, up.input.bytes());
                    up.input.clear();
                }
            }
            Wakeup::Read(Err(error)) => self.link_ended(link::Ending::read_failed(error)),
            Wakeup::Output(Ok(Written::Bytes(0))) => {
                self.link_ended(link::Ending::write_failed(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    "the connection closed while writing",
                )))
            }
            Wakeup::Output(Ok(Written::Bytes(n))) => {
                if let Link::Up(up) = &mut self.link {
                    up.output.advance(n);
                }
            }
            Wakeup::Output(Ok(Written::Flushed)) => {
                let flushed = match &mut self.link {
                    Link::Up(up) => up.output.flushed(),
                    _ => Vec::new(),
                };
                for id in flushed {
                    self.answer(id, Ok(()));
                }
            }
            Wakeup::Output(Err(error)) => self.link_ended(link::Ending::write_failed(error)),
            Wakeup::AttemptFinished(attempt) => self.attempt_finished(*attempt),
            Wakeup::RetryDue => self.start_attempt(),
            Wakeup::Room(true) => self.release_parked(),
            Wakeup::Room(false) => {
                self.app.deliveries.drop_first();
                self.send_owed_acks();
            }
            Wakeup::Stored(result) => self.batch_stored(result),
            Wakeup::Timer => {
                let now = self.now();
                self.session.handle_timeout(now);
            }
        }
    }
}

impl Driver {
    /// Answers the publish `id`'s caller; once delivered, its outbox row is removed.
    fn answer(&mut self, id: iot443_proto::session::MessageId, result: Result<(), ClientError>) {
        if let (Some(row), Some(durable)) = (self.waiting.answer(id, result), self.durable.as_mut())
        {
            durable.acknowledged(row);
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Sends `result` to a caller, if there is one.
fn reply(sender: Option<Reply<()>>, result: Result<(), ClientError>) {
    if let Some(sender) = sender {
        let _ = sender.send(result);
    }
}

/// Refuses a publish: its acceptance (if awaited) and its delivery both get `error`.
fn refuse(accepted: Option<Reply<()>>, done: Reply<()>, error: ClientError) {
    reply(accepted, Err(error.clone()));
    let _ = done.send(Err(error));
}
