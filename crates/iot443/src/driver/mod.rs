//! The driver task: one per client, alive for the client's whole life (not per connection),
//! owning the socket, the sans-IO [`Session`] and, when configured, the durable outbox.
//!
//! Each turn of its loop waits on everything at once — a command from any `Client` clone,
//! bytes from the socket, room in the socket for bytes to write, a reconnect attempt finishing,
//! the backoff timer and the session's next deadline — then drains the session: bytes to write
//! go into one buffer (one TLS record batch per wake-up), events are handed on.
//!
//! The connection state (`Connecting → Connected → Backoff → Connecting …`) lives here; the
//! session survives reconnects, which is what makes redelivery with DUP and re-subscription
//! natural. Messages go to bounded per-subscription queues; when one is full the driver stops
//! reading the socket until there is room (TCP pushes back) instead of dropping or buffering
//! without bound.

mod connection;
mod delivery;
mod durable;
mod hints;
mod id_hash;
mod link;
mod refusals;
mod session_events;
mod unwritten;

pub(crate) use link::{BoxTransport, CLOSED_BEFORE_CONNACK, Connector, Opened, open};

use crate::error::ClientError;
use crate::message::{ConnectionInfo, Event, Message};
use crate::offline_queue::{OfflineQueue, WhenFull};
use crate::outbox::{Outbox, OutboxId};
use crate::reconnect::{Backoff, ReconnectPolicy};
use bytes::{Buf, Bytes, BytesMut};
use delivery::Deliveries;
use durable::error_text;
use id_hash::IdMap;
use iot443_proto::codec::{EncodeError, PacketId, SubscribeFilter};
use iot443_proto::session::{MessageId, Session, SessionConfig, SessionError};
use iot443_proto::topic::{TopicFilter, TopicName};
use iot443_proto::{Instant, QoS};
use link::{Connecting, Ending};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};

/// Size of the socket read buffer.
const READ_BUFFER: usize = 64 * 1024;
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

/// Everything a driver starts with.
pub(crate) struct DriverSetup {
    pub(crate) opened: Opened,
    pub(crate) connector: Connector,
    pub(crate) session: SessionConfig,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) offline_queue: OfflineQueue,
    pub(crate) outbox: Option<Outbox>,
    pub(crate) message_expiry: Option<std::time::Duration>,
}

/// How a driver talks with its client: commands in, events out, and the first connection's
/// outcome.
pub(crate) struct Channels {
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::Sender<Event>,
    pub(crate) connected: oneshot::Sender<Result<ConnectionInfo, ClientError>>,
}

struct PendingSubscribe {
    filters: Vec<SubscribeFilter>,
    done: Reply<Vec<QoS>>,
}

/// A publish the application waits for.
struct Pending {
    done: Option<Reply<()>>,
    outbox_id: Option<OutboxId>,
}

/// Facts about the current transport, while there is one.
struct Link {
    since: tokio::time::Instant,
    healthy: bool,
}

pub(crate) struct Driver {
    reader: Option<ReadHalf<BoxTransport>>,
    writer: Option<WriteHalf<BoxTransport>>,
    link: Option<Link>,
    connecting: Option<Connecting>,
    retry_at: Option<tokio::time::Instant>,
    connector: Connector,
    session: Session,
    origin: tokio::time::Instant,
    info: ConnectionInfo,
    /// What the first transport's connector read after writing CONNECT itself, until `run`.
    read_ahead: Option<BytesMut>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    connected: Option<oneshot::Sender<Result<ConnectionInfo, ClientError>>>,
    pending: IdMap<MessageId, Pending>,
    subscribes: IdMap<PacketId, PendingSubscribe>,
    unsubscribes: IdMap<PacketId, (TopicFilter, Reply<()>)>,
    deliveries: Deliveries,
    backoff: Backoff,
    offline_queue: OfflineQueue,
    outbox: Option<Outbox>,
    /// With an outbox: how long a QoS 1 message may wait for its PUBACK.
    message_expiry: Option<std::time::Duration>,
    /// Outbox rows acknowledged and not yet removed (removed in groups).
    acknowledged: Vec<OutboxId>,
    /// The oldest unacknowledged message at the last refusals, and how many in a row.
    refusal_streak: (Option<refusals::Culprit>, u32),
    read_buf: BytesMut,
    write_buf: BytesMut,
    needs_flush: bool,
    /// QoS 0 publishes in `write_buf`, answered once flushed.
    unwritten: unwritten::Unwritten<MessageId>,
    disconnecting: Option<Reply<()>>,
    /// Set when the driver is done, with the reason.
    ended: Option<String>,
}

impl Driver {
    pub(crate) fn new(setup: DriverSetup, channels: Channels) -> Result<Self, ClientError> {
        let session = Session::new(setup.session).map_err(ClientError::Session)?;
        let Opened { transport, info, read_ahead } = setup.opened;
        let (reader, writer) = tokio::io::split(transport);
        let now = tokio::time::Instant::now();
        let mut driver = Driver {
            reader: Some(reader),
            writer: Some(writer),
            link: Some(Link { since: now, healthy: false }),
            connecting: None,
            retry_at: None,
            connector: setup.connector,
            session,
            origin: now,
            info,
            read_ahead,
            commands: channels.commands,
            events: channels.events,
            connected: Some(channels.connected),
            pending: IdMap::default(),
            subscribes: IdMap::default(),
            unsubscribes: IdMap::default(),
            deliveries: Deliveries::default(),
            backoff: Backoff::new(setup.reconnect),
            offline_queue: setup.offline_queue,
            outbox: setup.outbox,
            message_expiry: setup.message_expiry,
            acknowledged: Vec::new(),
            refusal_streak: (None, 0),
            read_buf: BytesMut::with_capacity(READ_BUFFER),
            write_buf: BytesMut::new(),
            needs_flush: false,
            unwritten: unwritten::Unwritten::default(),
            disconnecting: None,
            ended: None,
        };
        driver.replay_outbox()?;
        Ok(driver)
    }

    fn now(&self) -> Instant {
        Instant::from_duration(self.origin.elapsed())
    }

    /// Runs until the client disconnects or the connection is lost for good.
    pub(crate) async fn run(mut self) {
        let read_ahead = self.read_ahead.take();
        self.start_session(read_ahead);
        loop {
            self.drain_session();
            self.flush_outbox_removals();
            self.maybe_finish_disconnect().await;
            if self.ended.is_some() {
                break;
            }
            self.check_health();
            let deadline =
                self.session.poll_timeout().map(|at| self.origin + at.duration_since_origin());
            let stalled = self.deliveries.is_stalled();
            let linked = self.link.is_some();
            let writing = linked && (!self.write_buf.is_empty() || self.needs_flush);
            let backlogged = self.session.is_connected()
                && (self.session.queued_len() >= QUEUED_AHEAD_OF_WINDOW
                    || self.write_buf.len() >= WRITE_BUFFER_HIGH_WATER);
            let accepting = self.disconnecting.is_none() && !backlogged;
            let connecting = self.connecting.is_some();
            let backing_off = self.retry_at.is_some();
            let retry_at = self.retry_at;
            tokio::select! {
                command = self.commands.recv(), if accepting => match command {
                    Some(command) => self.handle_commands(command),
                    // Every Client clone is gone: nobody can wait for anything any more.
                    None => self.disconnecting = Some(oneshot::channel().0),
                },
                read = read_some(self.reader.as_mut(), &mut self.read_buf), if linked && !stalled => match read {
                    Ok(0) => self.link_ended(Ending::ClosedByEndpoint),
                    Ok(_) => {
                        let now = self.now();
                        self.session.handle_bytes(now, &self.read_buf);
                        self.read_buf.clear();
                    }
                    Err(error) => self.link_ended(Ending::Broken(format!("read failed: {error}"))),
                },
                output = write_or_flush(self.writer.as_mut(), &self.write_buf), if writing => match output {
                    Ok(Output::Written(0)) => self.link_ended(Ending::Broken("the connection closed while writing".into())),
                    Ok(Output::Written(n)) => {
                        self.write_buf.advance(n);
                        self.unwritten.written(n);
                        self.needs_flush = true;
                    }
                    Ok(Output::Flushed) => {
                        self.needs_flush = false;
                        for id in self.unwritten.flushed() {
                            self.answer(id, Ok(()));
                        }
                    }
                    Err(error) => self.link_ended(Ending::Broken(format!("write failed: {error}"))),
                },
                attempt = wait_connecting(&mut self.connecting), if connecting => {
                    self.connecting = None;
                    self.attempt_finished(attempt);
                },
                () = sleep_until(retry_at), if backing_off => {
                    self.retry_at = None;
                    self.connecting = self.connector.connect(self.session.connect_packet());
                },
                room = self.deliveries.wait_for_room(&self.events), if stalled => {
                    if room {
                        self.deliveries.release(&self.events);
                    } else {
                        self.deliveries.drop_first();
                    }
                },
                () = sleep_until(deadline), if deadline.is_some() => {
                    let now = self.now();
                    self.session.handle_timeout(now);
                },
            }
        }
        self.finish().await;
    }

    // ---- commands ----------------------------------------------------------------------------

    /// Handles `first` and whatever else is already queued (up to a batch), so that publishes
    /// bound for the outbox are committed to disk together.
    fn handle_commands(&mut self, first: Command) {
        let mut batch = vec![first];
        while batch.len() < COMMAND_BATCH {
            match self.commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let durable_ids = self.persist(&batch);
        let mut durable_ids = durable_ids.into_iter();
        for command in batch {
            match command {
                Command::Publish { topic, qos, payload, retain, accepted, done } => {
                    let outbox_id = if self.outbox.is_some() && qos == QoS::AtLeastOnce {
                        match durable_ids.next() {
                            Some(Ok(id)) => Some(id),
                            other => {
                                let error = error_text(other.and_then(Result::err));
                                reply(accepted, Err(ClientError::Outbox(error.clone())));
                                let _ = done.send(Err(ClientError::Outbox(error)));
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    self.publish(topic, qos, payload, retain, outbox_id, accepted, done);
                }
                Command::Subscribe { filters, messages, done } => {
                    match self.session.subscribe(filters.clone()) {
                        Ok(packet_id) => {
                            for entry in &filters {
                                self.deliveries.add_route(entry.filter.clone(), messages.clone());
                            }
                            self.subscribes.insert(packet_id, PendingSubscribe { filters, done });
                        }
                        Err(error) => {
                            let _ = done.send(Err(session_error(error, String::new())));
                        }
                    }
                }
                Command::Unsubscribe { filter, done } => {
                    match self.session.unsubscribe(vec![filter.clone()]) {
                        Ok(packet_id) => {
                            self.unsubscribes.insert(packet_id, (filter, done));
                        }
                        Err(error) => {
                            let _ = done.send(Err(session_error(error, filter.into_string())));
                        }
                    }
                }
                Command::Disconnect { done } => self.disconnecting = Some(done),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn publish(
        &mut self,
        topic: TopicName,
        qos: QoS,
        payload: Bytes,
        retain: bool,
        outbox_id: Option<OutboxId>,
        accepted: Option<Reply<()>>,
        done: Reply<()>,
    ) {
        if let Err(error) = self.make_room(payload.len()) {
            if let Some(id) = outbox_id {
                self.acknowledged.push(id);
            }
            reply(accepted, Err(error.clone_for_reply()));
            let _ = done.send(Err(error));
            return;
        }
        // A clone of a topic shares its text (a reference count, no copy).
        match self.session.publish(topic.clone(), qos, payload, retain) {
            Ok(id) => {
                self.pending.insert(id, Pending { done: Some(done), outbox_id });
                reply(accepted, Ok(()));
            }
            Err(error) => {
                let error = session_error(error, topic.into_string());
                reply(accepted, Err(error.clone_for_reply()));
                let _ = done.send(Err(error));
            }
        }
    }

    /// Applies the offline queue's bounds before one more message of `size` bytes is queued.
    fn make_room(&mut self, size: usize) -> Result<(), ClientError> {
        loop {
            let count = self.session.queued_len();
            let bytes = self.session.queued_bytes();
            if count < self.offline_queue.max_messages
                && bytes + size <= self.offline_queue.max_bytes
            {
                return Ok(());
            }
            let full = ClientError::QueueFull { messages: count, bytes };
            if self.offline_queue.when_full != WhenFull::DropOldestQos0 {
                return Err(full);
            }
            let Some(oldest) = self.session.oldest_queued_qos0() else { return Err(full) };
            let dropped = self.session.discard_publish(oldest);
            if let Some(pending) = self.pending.remove(&oldest) {
                let topic = dropped.map(|publish| publish.topic.into_string()).unwrap_or_default();
                reply(pending.done, Err(ClientError::Dropped { topic }));
            }
        }
    }

    /// Answers the publish `id`'s caller (and lets the outbox forget it on success).
    fn answer(&mut self, id: MessageId, result: Result<(), ClientError>) {
        if let Some(pending) = self.pending.remove(&id) {
            if result.is_ok()
                && let Some(outbox_id) = pending.outbox_id
            {
                self.acknowledged.push(outbox_id);
            }
            reply(pending.done, result);
        }
    }

    /// The error of a QoS 0 publish whose bytes were lost with the connection.
    fn not_written(&self) -> ClientError {
        ClientError::ConnectionLost {
            addr: self.info.addr(),
            reason: "the connection ended before this QoS 0 message was written".into(),
        }
    }

    async fn maybe_finish_disconnect(&mut self) {
        if self.ended.is_some() || self.disconnecting.is_none() {
            return;
        }
        if self.session.inflight_len() > 0 || self.session.queued_len() > 0 {
            return;
        }
        let now = self.now();
        self.session.disconnect(now);
        let mut flushed = false;
        if let Some(writer) = self.writer.as_mut() {
            self.session.poll_transmit(now, &mut self.write_buf);
            let buf = &self.write_buf;
            let flush = async {
                writer.write_all(buf).await?;
                writer.flush().await?;
                writer.shutdown().await
            };
            match tokio::time::timeout(self.session.config().connect_timeout, flush).await {
                Ok(Ok(())) => flushed = true,
                Err(_) | Ok(Err(_)) => {
                    tracing::debug!("DISCONNECT could not be flushed; closing anyway");
                }
            }
        }
        self.write_buf.clear();
        let written = self.unwritten.lost();
        for id in written {
            let result = if flushed { Ok(()) } else { Err(self.not_written()) };
            self.answer(id, result);
        }
        // Refuse further commands before answering, so that a call made after `disconnect`
        // returned fails with `Closed` at once instead of being queued for a driver that ends.
        self.commands.close();
        if let Some(done) = self.disconnecting.take() {
            let _ = done.send(Ok(()));
        }
        self.ended = Some("disconnected by the application".into());
    }

    /// Ends the driver: every waiting caller gets `error`.
    fn end_with(&mut self, error: ClientError) {
        if self.ended.is_some() {
            return;
        }
        tracing::warn!("{error}");
        // No command is taken any more: later calls fail with `Closed` at once.
        self.commands.close();
        let reason = error.to_string();
        let addr = self.info.addr();
        let lost = || ClientError::ConnectionLost { addr: addr.clone(), reason: reason.clone() };
        if let Some(connected) = self.connected.take() {
            let _ = connected.send(Err(error));
        }
        for (_, pending) in self.pending.drain() {
            reply(pending.done, Err(lost()));
        }
        for (_, pending) in self.subscribes.drain() {
            let _ = pending.done.send(Err(lost()));
        }
        for (_, (_, done)) in self.unsubscribes.drain() {
            let _ = done.send(Err(lost()));
        }
        if let Some(done) = self.disconnecting.take() {
            let _ = done.send(Err(lost()));
        }
        self.ended = Some(reason);
    }

    async fn finish(mut self) {
        let reason = self.ended.take().unwrap_or_default();
        self.flush_outbox_removals();
        self.deliveries.flush(&self.events).await;
        let _ = self.events.try_send(Event::Disconnected { reason });
        if let Some(mut writer) = self.writer.take() {
            let _ = writer.shutdown().await;
        }
    }
}

fn reply(sender: Option<Reply<()>>, result: Result<(), ClientError>) {
    if let Some(sender) = sender {
        let _ = sender.send(result);
    }
}

/// What one step of output achieved.
enum Output {
    Written(usize),
    Flushed,
}

/// Writes what is buffered (one `write`, cancel-safe), or flushes once the buffer is empty.
async fn write_or_flush<W: AsyncWrite + Unpin>(
    writer: Option<&mut W>,
    buf: &[u8],
) -> std::io::Result<Output> {
    let Some(writer) = writer else { return std::future::pending().await };
    if buf.is_empty() {
        writer.flush().await.map(|()| Output::Flushed)
    } else {
        writer.write(buf).await.map(Output::Written)
    }
}

async fn read_some<R: tokio::io::AsyncRead + Unpin>(
    reader: Option<&mut R>,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    match reader {
        Some(reader) => reader.read_buf(buf).await,
        None => std::future::pending().await,
    }
}

async fn wait_connecting(connecting: &mut Option<Connecting>) -> Result<Opened, ClientError> {
    match connecting.as_mut() {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A session refusal as a client error, naming the topic.
fn session_error(error: SessionError, topic: String) -> ClientError {
    match error {
        SessionError::QosNotSupported(_) => ClientError::QosNotSupported,
        SessionError::Encode(EncodeError::PacketTooLarge { size, max }) => {
            ClientError::PayloadTooLarge { topic, size, max }
        }
        other => ClientError::Session(other),
    }
}
