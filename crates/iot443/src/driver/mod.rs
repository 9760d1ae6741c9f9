//! The driver task: one per client, owning the socket and the sans-IO [`Session`].
//!
//! Each turn of its loop waits on four things at once — a command from any `Client` clone,
//! bytes from the socket, room in the socket for bytes to write, and the session's next
//! deadline — then drains the session: bytes to write go into one buffer (one TLS record batch
//! per wake-up), events are handed on. Messages go to bounded per-subscription queues; when one
//! is full the driver stops reading the socket until there is room (TCP pushes back on the
//! endpoint) instead of dropping or buffering without bound.

use crate::error::{ClientError, refusal_hint};
use crate::message::{ConnectionInfo, Event, Message};
use bytes::{Buf, Bytes, BytesMut};
use iot443_proto::codec::{EncodeError, PacketId, Publish, SubscribeFilter};
use iot443_proto::session::{
    Event as SessionEvent, LinkDeadReason, MessageId, Session, SessionConfig, SessionError,
};
use iot443_proto::topic::{MatchRule, TopicFilter, TopicName};
use iot443_proto::{Instant, QoS};
use std::collections::{HashMap, VecDeque};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};

/// Size of the socket read buffer.
const READ_BUFFER: usize = 64 * 1024;

type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

/// What a `Client` asks of its driver.
#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        topic: TopicName,
        qos: QoS,
        payload: Bytes,
        retain: bool,
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
pub(crate) struct DriverSetup<S> {
    pub(crate) stream: S,
    pub(crate) session: SessionConfig,
    pub(crate) info: ConnectionInfo,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: mpsc::Sender<Event>,
    pub(crate) connected: oneshot::Sender<Result<ConnectionInfo, ClientError>>,
}

/// Where a received message goes.
#[derive(Debug)]
enum Target {
    Subscription(mpsc::Sender<Message>),
    Events,
}

struct PendingSubscribe {
    filters: Vec<SubscribeFilter>,
    done: Reply<Vec<QoS>>,
}

pub(crate) struct Driver<S> {
    reader: ReadHalf<S>,
    writer: WriteHalf<S>,
    session: Session,
    origin: tokio::time::Instant,
    info: ConnectionInfo,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    connected: Option<oneshot::Sender<Result<ConnectionInfo, ClientError>>>,
    deliveries: HashMap<MessageId, Reply<()>>,
    subscribes: HashMap<PacketId, PendingSubscribe>,
    unsubscribes: HashMap<PacketId, (TopicFilter, Reply<()>)>,
    routes: Vec<(TopicFilter, mpsc::Sender<Message>)>,
    /// Messages waiting for room in their queue, in arrival order; reading pauses meanwhile.
    stalled: VecDeque<(Target, Message)>,
    read_buf: BytesMut,
    write_buf: BytesMut,
    needs_flush: bool,
    disconnecting: Option<Reply<()>>,
    /// Set when the connection is over, with the reason.
    ended: Option<String>,
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Driver<S> {
    pub(crate) fn new(setup: DriverSetup<S>) -> Result<Self, ClientError> {
        let session = Session::new(setup.session).map_err(ClientError::Session)?;
        let (reader, writer) = tokio::io::split(setup.stream);
        Ok(Driver {
            reader,
            writer,
            session,
            origin: tokio::time::Instant::now(),
            info: setup.info,
            commands: setup.commands,
            events: setup.events,
            connected: Some(setup.connected),
            deliveries: HashMap::new(),
            subscribes: HashMap::new(),
            unsubscribes: HashMap::new(),
            routes: Vec::new(),
            stalled: VecDeque::new(),
            read_buf: BytesMut::with_capacity(READ_BUFFER),
            write_buf: BytesMut::new(),
            needs_flush: false,
            disconnecting: None,
            ended: None,
        })
    }

    fn now(&self) -> Instant {
        Instant::from_duration(self.origin.elapsed())
    }

    /// Runs until the connection ends.
    pub(crate) async fn run(mut self) {
        let span = tracing::info_span!("connection", addr = %self.info.addr());
        let _entered = span.enter();
        self.session.connect(self.now());
        loop {
            self.drain_session();
            self.maybe_finish_disconnect().await;
            if self.ended.is_some() {
                break;
            }
            let deadline =
                self.session.poll_timeout().map(|at| self.origin + at.duration_since_origin());
            let reading = self.stalled.is_empty();
            tokio::select! {
                command = self.commands.recv(), if self.disconnecting.is_none() => match command {
                    Some(command) => self.handle_command(command),
                    // Every Client clone is gone: nobody can wait for anything any more.
                    None => self.disconnecting = Some(oneshot::channel().0),
                },
                read = self.reader.read_buf(&mut self.read_buf), if reading => match read {
                    Ok(0) => self.connection_lost("the endpoint closed the connection".into()),
                    Ok(_) => {
                        let now = self.now();
                        self.session.handle_bytes(now, &self.read_buf);
                        self.read_buf.clear();
                    }
                    Err(error) => self.connection_lost(format!("read failed: {error}")),
                },
                output = write_or_flush(&mut self.writer, &self.write_buf), if !self.write_buf.is_empty() || self.needs_flush => match output {
                    Ok(Output::Written(0)) => self.connection_lost("the connection closed while writing".into()),
                    Ok(Output::Written(n)) => {
                        self.write_buf.advance(n);
                        self.needs_flush = true;
                    }
                    Ok(Output::Flushed) => self.needs_flush = false,
                    Err(error) => self.connection_lost(format!("write failed: {error}")),
                },
                room = wait_for_room(self.stalled.front(), &self.events), if !reading => {
                    if room {
                        self.release_stalled();
                    } else if let Some(_dropped) = self.stalled.pop_front() {
                        // The receiver is gone (subscription dropped): nobody to deliver to.
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

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, qos, payload, retain, done } => {
                let topic_text = topic.as_str().to_owned();
                match self.session.publish(topic, qos, payload, retain) {
                    Ok(id) => {
                        self.deliveries.insert(id, done);
                    }
                    Err(error) => {
                        let _ = done.send(Err(session_error(error, topic_text)));
                    }
                }
            }
            Command::Subscribe { filters, messages, done } => {
                match self.session.subscribe(filters.clone()) {
                    Ok(packet_id) => {
                        for entry in &filters {
                            self.routes.push((entry.filter.clone(), messages.clone()));
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

    /// Moves everything the session has ready: bytes into the write buffer, events onwards.
    fn drain_session(&mut self) {
        loop {
            let now = self.now();
            self.session.poll_transmit(now, &mut self.write_buf);
            let Some(event) = self.session.poll_event() else { break };
            self.handle_session_event(event);
        }
    }

    fn handle_session_event(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::Connected { session_present } => {
                self.info.session_present = session_present;
                tracing::info!("{}", self.info.summary());
                if let Some(connected) = self.connected.take() {
                    let _ = connected.send(Ok(self.info.clone()));
                }
                let _ = self.events.try_send(Event::Connected(self.info.clone()));
            }
            SessionEvent::ConnectionRefused { code } => {
                let error = ClientError::ConnectionRefused {
                    addr: self.info.addr(),
                    code,
                    hint: refusal_hint(code),
                };
                self.end_with(error);
            }
            SessionEvent::Message(publish) => self.route(publish),
            SessionEvent::PublishSent { id } | SessionEvent::PublishAcked { id, .. } => {
                if let Some(done) = self.deliveries.remove(&id) {
                    let _ = done.send(Ok(()));
                }
            }
            SessionEvent::SubscribeAcked { packet_id, return_codes } => {
                let Some(pending) = self.subscribes.remove(&packet_id) else { return };
                let refused = pending
                    .filters
                    .iter()
                    .zip(&return_codes)
                    .find(|(_, code)| code.granted_qos().is_none())
                    .map(|(entry, _)| entry.filter.as_str().to_owned());
                match refused {
                    Some(filter) => {
                        self.routes.retain(|(route, _)| {
                            !pending.filters.iter().any(|entry| &entry.filter == route)
                        });
                        let _ = pending.done.send(Err(ClientError::SubscriptionRefused {
                            addr: self.info.addr(),
                            filter,
                        }));
                    }
                    None => {
                        let granted =
                            return_codes.iter().filter_map(|code| code.granted_qos()).collect();
                        let _ = pending.done.send(Ok(granted));
                    }
                }
            }
            SessionEvent::UnsubscribeAcked { packet_id } => {
                if let Some((filter, done)) = self.unsubscribes.remove(&packet_id) {
                    self.routes.retain(|(route, _)| route != &filter);
                    let _ = done.send(Ok(()));
                }
            }
            SessionEvent::UnexpectedAck { packet, packet_id } => {
                tracing::debug!(%packet, %packet_id, "acknowledgement for nothing outstanding");
            }
            SessionEvent::LinkDead { reason } => {
                let error = match reason {
                    LinkDeadReason::ConnAckTimeout => ClientError::Timeout {
                        addr: self.info.addr(),
                        stage: "CONNACK",
                        after: self.session.config().connect_timeout,
                        hint: self.no_connack_hint(),
                    },
                    _ => ClientError::ConnectionLost {
                        addr: self.info.addr(),
                        reason: reason.to_string(),
                    },
                };
                self.end_with(error);
            }
            SessionEvent::ProtocolError(source) => {
                self.end_with(ClientError::Protocol { addr: self.info.addr(), source });
            }
            other => tracing::debug!(?other, "session event"),
        }
    }

    fn no_connack_hint(&self) -> String {
        let tls = !self.info.tls_version.is_empty();
        let mut hint = String::from(if tls {
            "; TLS succeeded but the endpoint never answered CONNECT"
        } else {
            "; the endpoint never answered CONNECT"
        });
        if tls && self.info.alpn.is_none() && self.info.port == 443 {
            hint.push_str(
                ": on port 443 that usually means ALPN x-amzn-mqtt-ca was not offered or not \
                 accepted (set alpn = \"x-amzn-mqtt-ca\", or use port 8883)",
            );
        } else if tls && self.info.alpn.is_none() {
            // Not port 443, but possibly an endpoint that behaves like it (a tunnel, a proxy,
            // the emulator): no ALPN was negotiated, which such an endpoint answers with silence.
            hint.push_str(
                ": no ALPN was negotiated; if this endpoint stands for AWS IoT Core's port 443 \
                 (a tunnel, a proxy, the emulator), ALPN x-amzn-mqtt-ca is probably missing (set \
                 alpn = \"x-amzn-mqtt-ca\"); otherwise check that the certificate is ACTIVE and \
                 its policy allows iot:Connect",
            );
        } else {
            hint.push_str(
                ": check that the certificate is ACTIVE and its policy allows iot:Connect",
            );
        }
        hint
    }

    fn route(&mut self, publish: Publish) {
        let message = Message {
            topic: publish.topic.as_str().to_owned(),
            qos: publish.qos.qos(),
            retain: publish.retain,
            dup: publish.dup,
            payload: publish.payload,
        };
        let mut targets: Vec<Target> = Vec::new();
        for (filter, sender) in &self.routes {
            let already = targets
                .iter()
                .any(|target| matches!(target, Target::Subscription(s) if s.same_channel(sender)));
            if !already && filter.matches(&publish.topic, MatchRule::AwsIot) {
                targets.push(Target::Subscription(sender.clone()));
            }
        }
        if targets.is_empty() {
            targets.push(Target::Events);
        }
        for target in targets {
            self.deliver(target, message.clone());
        }
    }

    /// Hands a message to its queue, or parks it (keeping order) when the queue is full.
    fn deliver(&mut self, target: Target, message: Message) {
        if !self.stalled.is_empty() {
            self.stalled.push_back((target, message));
            return;
        }
        let full = match &target {
            Target::Subscription(sender) => {
                matches!(sender.try_send(message.clone()), Err(mpsc::error::TrySendError::Full(_)))
            }
            Target::Events => {
                matches!(
                    self.events.try_send(Event::Message(message.clone())),
                    Err(mpsc::error::TrySendError::Full(_))
                )
            }
        };
        if full {
            self.stalled.push_back((target, message));
        }
    }

    /// Delivers parked messages while their queues have room.
    fn release_stalled(&mut self) {
        while let Some((target, message)) = self.stalled.pop_front() {
            let result = match &target {
                Target::Subscription(sender) => {
                    sender.try_send(message).map_err(|error| match error {
                        mpsc::error::TrySendError::Full(message) => Some(message),
                        mpsc::error::TrySendError::Closed(_) => None,
                    })
                }
                Target::Events => {
                    self.events.try_send(Event::Message(message)).map_err(|error| match error {
                        mpsc::error::TrySendError::Full(Event::Message(message)) => Some(message),
                        _ => None,
                    })
                }
            };
            if let Err(Some(message)) = result {
                self.stalled.push_front((target, message));
                return;
            }
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
        self.session.poll_transmit(now, &mut self.write_buf);
        let flushed = async {
            self.writer.write_all(&self.write_buf).await?;
            self.writer.flush().await?;
            self.writer.shutdown().await
        };
        let result = tokio::time::timeout(self.session.config().connect_timeout, flushed).await;
        self.write_buf.clear();
        if let Err(_) | Ok(Err(_)) = result {
            tracing::debug!("DISCONNECT could not be flushed; closing anyway");
        }
        // Refuse further commands before answering, so that a call made after `disconnect`
        // returned fails with `Closed` at once instead of being queued for a driver that ends.
        self.commands.close();
        if let Some(done) = self.disconnecting.take() {
            let _ = done.send(Ok(()));
        }
        self.ended = Some("disconnected by the application".into());
    }

    fn connection_lost(&mut self, reason: String) {
        let now = self.now();
        self.session.handle_connection_lost(now);
        let error = if self.connected.is_some() {
            ClientError::ConnectionLost {
                addr: self.info.addr(),
                reason: format!(
                    "{reason} before CONNACK; the endpoint probably refused the certificate, the \
                     client id or (on port 443) the missing ALPN x-amzn-mqtt-ca"
                ),
            }
        } else {
            ClientError::ConnectionLost { addr: self.info.addr(), reason }
        };
        self.end_with(error);
    }

    /// Ends the connection: every waiting caller gets `error`.
    fn end_with(&mut self, error: ClientError) {
        if self.ended.is_some() {
            return;
        }
        tracing::warn!("{error}");
        // No command is taken any more: later calls fail with `Closed` at once.
        self.commands.close();
        let reason = error.to_string();
        let lost =
            || ClientError::ConnectionLost { addr: self.info.addr(), reason: reason.clone() };
        if let Some(connected) = self.connected.take() {
            let _ = connected.send(Err(error));
        }
        for (_, done) in self.deliveries.drain() {
            let _ = done.send(Err(lost()));
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
        // Deliver what is parked before the queues close, as far as the application takes it.
        while let Some((target, message)) = self.stalled.pop_front() {
            let _ = match target {
                Target::Subscription(sender) => sender.send(message).await.is_ok(),
                Target::Events => self.events.send(Event::Message(message)).await.is_ok(),
            };
        }
        let _ = self.events.try_send(Event::Disconnected { reason });
        let _ = self.writer.shutdown().await;
    }
}

/// Completes when the queue of `front` has room (true) or is closed (false).
async fn wait_for_room(front: Option<&(Target, Message)>, events: &mpsc::Sender<Event>) -> bool {
    match front {
        Some((Target::Subscription(sender), _)) => sender.reserve().await.is_ok(),
        Some((Target::Events, _)) => events.reserve().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// What one step of output achieved.
enum Output {
    Written(usize),
    Flushed,
}

/// Writes what is buffered (one `write`, cancel-safe), or flushes once the buffer is empty.
async fn write_or_flush<W: AsyncWrite + Unpin>(
    writer: &mut W,
    buf: &[u8],
) -> std::io::Result<Output> {
    if buf.is_empty() {
        writer.flush().await.map(|()| Output::Flushed)
    } else {
        writer.write(buf).await.map(Output::Written)
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
