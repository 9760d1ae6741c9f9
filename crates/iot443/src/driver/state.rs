//! The connection's states and every transition between them: an attempt opening a transport,
//! a transport up, backing off before the next attempt, ended.

use super::Driver;
use super::link::{Ended, Ending, classify_attempt, classify_end};
use super::unwritten::Unwritten;
use crate::connect::{BoxTransport, Connecting, Opened};
use crate::error::ClientError;
use crate::message::Event;
use crate::reconnect::Cause;
use bytes::{Buf, BytesMut};
use iot443_proto::session::MessageId;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};

/// Size of the transport's read buffer: one TLS record's plaintext at most, so that one read
/// takes a whole record and an idle connection of a fleet holds no more.
const READ_BUFFER: usize = 16 * 1024;

/// Where the connection stands. Each state owns what exists only in it.
pub(super) enum Link {
    /// An attempt is opening a transport (TCP, proxy tunnel, TLS; with `port = "auto"` also
    /// CONNECT and CONNACK).
    Opening(Connecting),
    /// A transport is up and the session runs over it (CONNACK may still be awaited).
    Up(Up),
    /// The last connection was lost; the next attempt starts at `until`.
    BackingOff { until: tokio::time::Instant },
    /// No transport will be opened any more; `closing` is a transport still to shut down.
    Ended { reason: String, closing: Option<Output> },
}

/// A transport that is up, split into its two directions.
pub(super) struct Up {
    pub(super) input: Input,
    pub(super) output: Output,
    /// When it opened.
    since: tokio::time::Instant,
    /// It has proven healthy: up for `healthy_after`, or the endpoint acknowledged something.
    healthy: bool,
    /// The connection's tracing span (attempt, port, transport).
    span: tracing::Span,
}

/// The reading half and what was read.
pub(super) struct Input {
    reader: ReadHalf<BoxTransport>,
    buf: BytesMut,
}

/// The writing half, what waits to be written, and the QoS 0 publishes in it.
pub(super) struct Output {
    writer: WriteHalf<BoxTransport>,
    buf: BytesMut,
    /// Bytes were written since the last flush.
    needs_flush: bool,
    /// QoS 0 publishes in `buf`, answered once flushed.
    unwritten: Unwritten<MessageId>,
}

/// What one step of output achieved.
pub(super) enum Written {
    Bytes(usize),
    Flushed,
}

impl Link {
    pub(super) fn is_ended(&self) -> bool {
        matches!(self, Link::Ended { .. })
    }

    /// The current connection's span, when a transport is up.
    pub(super) fn span(&self) -> Option<tracing::Span> {
        match self {
            Link::Up(up) => Some(up.span.clone()),
            _ => None,
        }
    }

    /// Bytes waiting to be written.
    pub(super) fn write_backlog(&self) -> usize {
        match self {
            Link::Up(up) => up.output.buf.len(),
            _ => 0,
        }
    }

    /// The parts the driver waits on, borrowed apart: the input and output of a transport that
    /// is up, an attempt in progress, or the end of the backoff.
    pub(super) fn parts(
        &mut self,
    ) -> (
        Option<&mut Input>,
        Option<&mut Output>,
        Option<&mut Connecting>,
        Option<tokio::time::Instant>,
    ) {
        match self {
            Link::Up(up) => (Some(&mut up.input), Some(&mut up.output), None, None),
            Link::Opening(attempt) => (None, None, Some(attempt), None),
            Link::BackingOff { until } => (None, None, None, Some(*until)),
            Link::Ended { .. } => (None, None, None, None),
        }
    }
}

impl Input {
    /// Reads what the transport has (cancel-safe); pending for ever without an input.
    pub(super) async fn read_some(input: Option<&mut Input>) -> std::io::Result<usize> {
        match input {
            Some(input) => input.reader.read_buf(&mut input.buf).await,
            None => std::future::pending().await,
        }
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub(super) fn clear(&mut self) {
        self.buf.clear();
    }
}

impl Output {
    /// Whether there is something to write or flush.
    pub(super) fn has_work(&self) -> bool {
        !self.buf.is_empty() || self.needs_flush
    }

    /// Writes what is buffered (one `write`, cancel-safe), or flushes once the buffer is empty;
    /// pending for ever without an output.
    pub(super) async fn write_some(output: Option<&mut Output>) -> std::io::Result<Written> {
        let Some(output) = output else { return std::future::pending().await };
        if output.buf.is_empty() {
            output.writer.flush().await.map(|()| Written::Flushed)
        } else {
            output.writer.write(&output.buf).await.map(Written::Bytes)
        }
    }

    /// `n` bytes of the buffer were written.
    pub(super) fn advance(&mut self, n: usize) {
        self.buf.advance(n);
        self.unwritten.written(n);
        self.needs_flush = true;
    }

    /// After a flush: the QoS 0 publishes now wholly on the transport.
    pub(super) fn flushed(&mut self) -> Vec<MessageId> {
        self.needs_flush = false;
        self.unwritten.flushed()
    }

    pub(super) fn buf_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    pub(super) fn unwritten_mut(&mut self) -> &mut Unwritten<MessageId> {
        &mut self.unwritten
    }

    /// Writes everything buffered, flushes and shuts the transport down, within `bound`.
    /// Returns whether it all went out.
    pub(super) async fn close(&mut self, bound: std::time::Duration) -> bool {
        let Output { writer, buf, .. } = self;
        let all = async {
            writer.write_all(buf).await?;
            writer.flush().await?;
            writer.shutdown().await
        };
        let done = matches!(tokio::time::timeout(bound, all).await, Ok(Ok(())));
        buf.clear();
        done
    }

    /// Shuts the transport down without writing what is left, within `bound`.
    pub(super) async fn shut_down(&mut self, bound: std::time::Duration) {
        let _ = tokio::time::timeout(bound, self.writer.shutdown()).await;
    }
}

/// Waits for an attempt; pending for ever without one.
pub(super) async fn wait_attempt(attempt: Option<&mut Connecting>) -> Result<Opened, ClientError> {
    match attempt {
        Some(attempt) => attempt.await,
        None => std::future::pending().await,
    }
}

impl Driver {
    /// The transport proved healthy: the backoff starts again from its minimum.
    pub(super) fn mark_healthy(&mut self) {
        if let Link::Up(up) = &mut self.link
            && !up.healthy
            && self.session.is_connected()
        {
            up.healthy = true;
            self.reconnect.backoff.reset();
        }
    }

    /// A connection up for `healthy_after` has proven healthy.
    pub(super) fn check_health(&mut self) {
        let healthy_after = self.reconnect.backoff.policy().healthy_after;
        let due = matches!(&self.link, Link::Up(up) if !up.healthy && up.since.elapsed() >= healthy_after);
        if due {
            self.mark_healthy();
        }
    }

    /// Opening → Up, or Opening → BackingOff when the attempt failed.
    pub(super) fn attempt_finished(&mut self, attempt: Result<Opened, ClientError>) {
        self.expire_outbox();
        match attempt {
            Ok(Opened { transport, info, read_ahead }) => {
                self.reconnect.generation += 1;
                let span = tracing::info_span!(
                    "connection",
                    attempt = self.reconnect.generation,
                    port = info.port,
                    transport = if info.tls_version.is_empty() { "stream" } else { "tls" },
                );
                let (reader, writer) = tokio::io::split(transport);
                self.info = info;
                self.link = Link::Up(Up {
                    input: Input { reader, buf: BytesMut::with_capacity(READ_BUFFER) },
                    output: Output {
                        writer,
                        buf: BytesMut::new(),
                        needs_flush: false,
                        unwritten: Unwritten::default(),
                    },
                    since: tokio::time::Instant::now(),
                    healthy: false,
                    span,
                });
                let now = self.now();
                match read_ahead {
                    // The connector exchanged CONNECT and CONNACK itself: what it read.
                    Some(bytes) => {
                        self.session.connect_written(now);
                        self.session.handle_bytes(now, &bytes);
                    }
                    None => self.session.connect(now),
                }
            }
            Err(error) => {
                if self.app.connected.is_some() {
                    // The first connection failed: Client::connect reports it.
                    self.end_with(error);
                    return;
                }
                let cause = classify_attempt(&error);
                // A refused attempt (certificate, proxy) says nothing about any message: it is
                // retried with the refusal backoff, and no packet is blamed.
                tracing::warn!("reconnect attempt failed: {error}");
                self.schedule_reconnect(cause);
            }
        }
    }

    /// BackingOff → Opening.
    pub(super) fn start_attempt(&mut self) {
        let connect = self.session.connect_packet();
        self.link = Link::Opening(self.connector.connect(&connect));
    }

    /// → BackingOff, with the backoff's next delay for `cause`.
    pub(super) fn schedule_reconnect(&mut self, cause: Cause) {
        let delay = self.reconnect.backoff.next_delay(&cause, &mut self.reconnect.rng);
        let attempt = self.reconnect.backoff.attempt();
        tracing::info!(attempt, ?delay, "reconnecting: {cause}");
        let _ = self.app.events.try_send(Event::Reconnecting {
            attempt,
            delay,
            cause: cause.to_string(),
        });
        self.link = Link::BackingOff { until: tokio::time::Instant::now() + delay };
    }

    /// The transport ended under us (Up → BackingOff or Ended).
    pub(super) fn link_ended(&mut self, ending: Ending) {
        let after_connack = self.session.is_connected();
        let healthy = matches!(&self.link, Link::Up(up) if up.healthy);
        // The request first: the same order as the blame (see `count_refusal`).
        let unacknowledged =
            self.session.oldest_request().map(super::refusals::describe_request).or_else(|| {
                let oldest = self.session.oldest_unacknowledged();
                oldest.map(|(_, topic)| format!("a PUBLISH to {}", topic.as_str()))
            });
        let cause = classify_end(&Ended {
            ending: &ending,
            after_connack,
            unacknowledged: unacknowledged.as_deref(),
            healthy,
        });
        // The operating system's error itself, with whatever it carries (a TLS alert…).
        let source: Option<crate::error::LostCause> = match ending {
            Ending::Broken { error, .. } => Some(std::sync::Arc::new(error)),
            Ending::ClosedByEndpoint => None,
        };
        let now = self.now();
        self.session.handle_connection_lost(now);
        let mut reason = cause.to_string();
        if !after_connack {
            reason.push_str(&self.before_connack_hint());
        }
        let error = ClientError::ConnectionLost { addr: self.info.addr(), reason, source };
        // Only a close right after an unacknowledged packet, on a connection the endpoint had
        // accepted, says anything about that packet.
        let blame = after_connack && unacknowledged.is_some();
        self.lose_link(cause, error, blame);
    }

    /// Drops the transport and either schedules a reconnect or, when none is possible, ends.
    /// `blame`: a refusal counts against the oldest unacknowledged packet (see
    /// [`count_refusal`](Driver::count_refusal)).
    pub(super) fn lose_link(&mut self, cause: Cause, error: ClientError, blame: bool) {
        drop(self.take_transport());
        let nothing_left = self.session.inflight_len() == 0 && self.session.queued_len() == 0;
        if self.app.connected.is_some()
            || !self.reconnect.backoff.policy().enabled
            || !self.connector.can_reconnect()
            || (self.app.disconnecting.is_some() && nothing_left)
        {
            // The first connection failed (Client::connect reports it), no reconnect, or
            // nothing is left to deliver for a disconnect.
            self.end_with(error);
            return;
        }
        tracing::warn!("connection lost: {cause}");
        if blame && cause.is_refusal() {
            self.count_refusal(&cause);
        }
        self.schedule_reconnect(cause);
    }

    /// → Ended: every waiting caller gets `error` (shared, whole).
    pub(super) fn end_with(&mut self, error: ClientError) {
        if self.link.is_ended() {
            return;
        }
        tracing::warn!("{error}");
        // No command is taken any more: later calls fail with `Closed` at once.
        self.app.commands.close();
        let reason = error.to_string();
        let lost = match &error {
            ClientError::ConnectionLost { .. } => error.clone(),
            _ => ClientError::ConnectionLost {
                addr: self.info.addr(),
                reason: reason.clone(),
                source: Some(std::sync::Arc::new(error.clone())),
            },
        };
        if let Some(connected) = self.app.connected.take() {
            let _ = connected.send(Err(error));
        }
        self.waiting.fail_all(&lost);
        if let Some(done) = self.app.disconnecting.take() {
            let _ = done.send(Err(lost));
        }
        let closing = self.take_transport();
        self.link = Link::Ended { reason, closing };
    }

    /// Takes the transport out of the link (leaving a placeholder that the caller replaces at
    /// once) and fails the QoS 0 publishes whose bytes were still in its buffer; returns its
    /// writing half, to shut down, when there was one.
    fn take_transport(&mut self) -> Option<Output> {
        let Link::Up(mut up) = std::mem::replace(&mut self.link, Link::Opening(never())) else {
            return None;
        };
        for id in up.output.unwritten.lost() {
            let error = self.not_written();
            self.answer(id, Err(error));
        }
        Some(up.output)
    }

    /// The error of a QoS 0 publish whose bytes were lost with the connection.
    pub(super) fn not_written(&self) -> ClientError {
        ClientError::lost(
            self.info.addr(),
            "the connection ended before this QoS 0 message was written",
        )
    }
}

/// An attempt that never finishes: a placeholder while a state is being replaced.
fn never() -> Connecting {
    Box::pin(std::future::pending())
}
