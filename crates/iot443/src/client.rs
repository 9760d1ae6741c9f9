//! The application's handle: [`Client`], with [`Delivery`] and [`Subscription`].

use crate::config::Config;
use crate::connect::{Connector, Given, Opened, TlsConnector};
use crate::driver::{Channels, Command, Driver, DriverSetup, DurableSetup};
use crate::error::ClientError;
use crate::message::{ConnectionInfo, Event, Message};
use crate::offline_queue::OfflineQueue;
#[cfg(feature = "outbox")]
use crate::outbox::{Outbox, OutboxWorker};
use crate::reconnect::ReconnectPolicy;
use crate::topic_cache::TopicCache;
use bytes::Bytes;
use iot443_proto::QoS;
use iot443_proto::codec::{AWS_MAX_PAYLOAD, SubscribeFilter};
use iot443_proto::session::SessionConfig;
use iot443_proto::topic::{TopicFilter, TopicName};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

/// Commands waiting for the driver. When full, [`Client::publish`] and the other commands wait
/// (they are `async`) instead of buffering without bound.
pub const COMMAND_QUEUE: usize = 256;

/// Messages buffered per [`Subscription`] (and for the [`Events`] stream). When the application
/// does not consume them, the driver stops reading the socket: TCP pushes back on the endpoint,
/// nothing is dropped and memory stays bounded — these queues plus at most one read (16 KiB of
/// packets, one TLS record) parked behind them. The client keeps sending PINGREQ meanwhile, so
/// the endpoint keeps the connection, and it acknowledges a QoS 1 message only once it is in its
/// queue.
pub const SUBSCRIPTION_QUEUE: usize = 1024;

/// AWS IoT Core's limit on filters in one SUBSCRIBE.
pub const MAX_FILTERS_PER_SUBSCRIBE: usize = iot443_proto::codec::AWS_MAX_FILTERS_PER_SUBSCRIBE;

/// A connected MQTT client. Cheap to clone; every clone drives the same connection.
///
/// One driver task per client owns the socket (see the crate docs). Commands are checked
/// against AWS IoT Core's limits before anything is sent: a bad topic or an oversize payload
/// is an error for that call only, and the connection stays up.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use iot443::{Client, Config, QoS};
///
/// let config = Config::load("iot443.toml".as_ref())?;
/// let (client, _events) = Client::connect(&config).await?;
/// let mut subscription = client.subscribe("sdkTest/sub", QoS::AtLeastOnce).await?;
/// client.publish("sdkTest/sub", QoS::AtLeastOnce, "hello").await?.await?;
/// let message = subscription.recv().await.ok_or("subscription closed")?;
/// println!("{}: {:?}", message.topic, message.payload);
/// client.disconnect().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    info: Arc<ConnectionInfo>,
    /// QoS 1 publishes go to the outbox: `publish` returns once they are on disk.
    durable: bool,
    /// Connections accepted so far (see [`Client::connection_changes`]).
    connections: watch::Receiver<u64>,
    /// The shadow requests this client may have in flight (IoT Core's limit per connection),
    /// shared by every [`Shadow`](crate::shadow::Shadow) handle of it.
    #[cfg(feature = "shadow")]
    pub(crate) shadow_slots: Arc<tokio::sync::Semaphore>,
    /// The last topic published to, already checked.
    last_topic: Arc<TopicCache>,
}

/// The stream of [`Event`]s of one client.
#[derive(Debug)]
pub struct Events {
    receiver: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event; `None` once the client's driver has ended and every event was taken.
    pub async fn recv(&mut self) -> Option<Event> {
        self.receiver.recv().await
    }

    /// The next event if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.receiver.try_recv().ok()
    }
}

impl Client {
    /// Connects as `config` says: checks the credential files, opens TCP (with `TCP_NODELAY`),
    /// runs the TLS handshake (ALPN `x-amzn-mqtt-ca` on port 443), sends CONNECT and returns once
    /// CONNACK has accepted the connection.
    pub async fn connect(config: &Config) -> Result<(Client, Events), ClientError> {
        Client::builder(config).connect().await
    }

    /// A client for `config` with a choice of connector or outbox; see [`ClientBuilder`].
    pub fn builder(config: &Config) -> ClientBuilder {
        ClientBuilder {
            config: config.clone(),
            connector: None,
            #[cfg(feature = "outbox")]
            outbox: None,
        }
    }

    /// Runs MQTT over a transport the caller has opened (any `AsyncRead + AsyncWrite`: a TLS
    /// stream of your own, a proxy tunnel, an in-memory pipe in tests). `info` describes it.
    /// Such a client cannot reconnect: when the transport ends, so does the client.
    pub async fn connect_over<S>(
        stream: S,
        session: SessionConfig,
        info: ConnectionInfo,
    ) -> Result<(Client, Events), ClientError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let timeout = session.connect_timeout;
        let setup = DriverSetup {
            opened: Opened::new(stream, info),
            connector: Arc::new(Given),
            session,
            reconnect: ReconnectPolicy::default(),
            offline_queue: OfflineQueue::default(),
            durable: None,
        };
        Self::start(setup, timeout).await
    }

    async fn start(
        setup: DriverSetup,
        connect_timeout: Duration,
    ) -> Result<(Client, Events), ClientError> {
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let (event_tx, receiver) = mpsc::channel(SUBSCRIPTION_QUEUE);
        let (connected_tx, connected_rx) = oneshot::channel();
        let (connections_tx, connections) = watch::channel(0);
        let addr = setup.opened.info().addr();
        let durable = setup.durable.is_some();
        let span = tracing::info_span!("iot443", addr = %addr);
        let channels = Channels {
            commands: command_rx,
            events: event_tx,
            connected: connected_tx,
            connections: connections_tx,
        };
        let driver = Driver::new(setup, channels)?;
        tokio::spawn(driver.run().instrument(span));
        let info = match tokio::time::timeout(
            connect_timeout + Duration::from_secs(1),
            connected_rx,
        )
        .await
        {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(ClientError::lost(addr, "driver ended")),
            Err(_) => {
                return Err(ClientError::Timeout {
                    addr,
                    stage: "CONNACK",
                    after: connect_timeout,
                    hint: String::new(),
                });
            }
        };
        let client = Client {
            commands,
            info: Arc::new(info),
            durable,
            connections,
            #[cfg(feature = "shadow")]
            shadow_slots: Arc::new(tokio::sync::Semaphore::new(crate::shadow::MAX_IN_FLIGHT)),
            last_topic: Arc::default(),
        };
        Ok((client, Events { receiver }))
    }

    /// How this client is connected (port, TLS version, cipher suite, ALPN).
    pub fn connection_info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// The number of connections this client has had accepted (CONNACK) so far: 1 once
    /// [`connect`](Client::connect) returns, one more after every reconnect. The receiver sees
    /// each change, so a task can do something after every reconnect (the shadow's
    /// [`keep_reported_in_sync`](crate::shadow::Shadow::keep_reported_in_sync) gets the document
    /// again). Once the client has ended for good, `changed()` returns an error.
    ///
    /// ```no_run
    /// # async fn demo(client: iot443::Client) {
    /// let mut changes = client.connection_changes();
    /// while changes.changed().await.is_ok() {
    ///     println!("connection number {}", *changes.borrow_and_update());
    /// }
    /// # }
    /// ```
    pub fn connection_changes(&self) -> watch::Receiver<u64> {
        self.connections.clone()
    }

    /// Publishes `payload` to `topic`. Returns once the message is queued; await the returned
    /// [`Delivery`] to know it arrived (PUBACK at QoS 1, written to the socket at QoS 0).
    ///
    /// At most 100 QoS 1 messages are in flight (IoT Core's limit); more wait in order. Checked
    /// first, with nothing sent on failure: the topic (no wildcards, 256 bytes, 7 slashes,
    /// reserved `$` topics), the payload (128 KiB) and the QoS (0 or 1).
    pub async fn publish(
        &self,
        topic: &str,
        qos: QoS,
        payload: impl Into<Bytes>,
    ) -> Result<Delivery, ClientError> {
        self.publish_with_retain(topic, qos, payload, false).await
    }

    /// Like [`publish`](Client::publish), asking the endpoint to retain the message.
    pub async fn publish_with_retain(
        &self,
        topic: &str,
        qos: QoS,
        payload: impl Into<Bytes>,
        retain: bool,
    ) -> Result<Delivery, ClientError> {
        self.start_publish(topic, qos, payload, retain).await?.accepted().await
    }

    /// Queues a publish and returns without waiting for the outbox to have it on disk; await
    /// [`Queued::accepted`] for that (and for the [`Delivery`]). Without an outbox, or at QoS 0,
    /// it is accepted at once.
    ///
    /// With an outbox, queuing several messages before awaiting the first acceptance lets the
    /// client write them to disk together, with one sync instead of one per message. The
    /// messages keep the order of the calls. Checked first, as by [`publish`](Client::publish).
    ///
    /// ```no_run
    /// # async fn demo(client: iot443::Client) -> Result<(), iot443::ClientError> {
    /// let mut queued = Vec::new();
    /// for n in 0..100 {
    ///     queued.push(client.start_publish("t/x", iot443::QoS::AtLeastOnce, n.to_string(), false).await?);
    /// }
    /// for message in queued {
    ///     message.accepted().await?.await?; // on disk, then acknowledged
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn start_publish(
        &self,
        topic: &str,
        qos: QoS,
        payload: impl Into<Bytes>,
        retain: bool,
    ) -> Result<Queued, ClientError> {
        let payload = payload.into();
        let topic_name = self.last_topic.get_or_check(topic, checked_topic)?;
        check_payload_and_qos(topic, qos, payload.len())?;
        let (done, receiver) = oneshot::channel();
        let (accepted, on_disk) = if self.durable && qos == QoS::AtLeastOnce {
            let (accepted, on_disk) = oneshot::channel();
            (Some(accepted), Some(on_disk))
        } else {
            (None, None)
        };
        let command = Command::Publish { topic: topic_name, qos, payload, retain, accepted, done };
        self.send(command).await?;
        Ok(Queued { on_disk, delivery: Delivery { receiver } })
    }

    /// The checks [`publish`](Client::publish) makes before anything is queued: the topic (no
    /// wildcards, 256 bytes, 7 slashes, reserved `$` topics), the payload size (128 KiB) and the
    /// QoS (0 or 1). For callers that must refuse a message at once, before handing it on.
    ///
    /// ```
    /// use iot443::{Client, QoS};
    /// assert!(Client::check_publish("sdkTest/sub", QoS::AtLeastOnce, 100).is_ok());
    /// assert!(Client::check_publish("sdkTest/#", QoS::AtLeastOnce, 100).is_err());
    /// assert!(Client::check_publish("sdkTest/sub", QoS::ExactlyOnce, 100).is_err());
    /// ```
    pub fn check_publish(
        topic: &str,
        qos: QoS,
        payload_len: usize,
    ) -> Result<TopicName, ClientError> {
        let topic_name = checked_topic(topic)?;
        check_payload_and_qos(topic, qos, payload_len)?;
        Ok(topic_name)
    }

    /// Subscribes to one filter and returns once SUBACK granted it. Messages that match arrive
    /// on the returned [`Subscription`] (IoT Core's matching: `a/#` does not match `a`).
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<Subscription, ClientError> {
        self.subscribe_many(&[(filter, qos)]).await
    }

    /// Subscribes to up to 8 filters in one SUBSCRIBE; one [`Subscription`] receives messages
    /// matching any of them.
    pub async fn subscribe_many(
        &self,
        filters: &[(&str, QoS)],
    ) -> Result<Subscription, ClientError> {
        if filters.len() > MAX_FILTERS_PER_SUBSCRIBE {
            return Err(ClientError::TooManyFilters { count: filters.len() });
        }
        let mut checked = Vec::with_capacity(filters.len());
        for &(filter, qos) in filters {
            if qos == QoS::ExactlyOnce {
                return Err(ClientError::QosNotSupported);
            }
            checked.push(SubscribeFilter::new(checked_filter(filter)?, qos));
        }
        if checked.is_empty() {
            return Err(ClientError::TooManyFilters { count: 0 });
        }
        let (messages_tx, messages) = mpsc::channel(SUBSCRIPTION_QUEUE);
        let (done, receiver) = oneshot::channel();
        self.send(Command::Subscribe { filters: checked, messages: messages_tx, done }).await?;
        let granted = receiver.await.map_err(|_| ClientError::Closed)??;
        Ok(Subscription { messages, granted })
    }

    /// Removes a subscription made with exactly this filter; returns on UNSUBACK.
    pub async fn unsubscribe(&self, filter: &str) -> Result<(), ClientError> {
        let filter = checked_filter(filter)?;
        let (done, receiver) = oneshot::channel();
        self.send(Command::Unsubscribe { filter, done }).await?;
        receiver.await.map_err(|_| ClientError::Closed)?
    }

    /// Waits until every publish queued so far is delivered, then sends DISCONNECT and closes
    /// the connection. Other clones of this client stop working too.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        let (done, receiver) = oneshot::channel();
        self.send(Command::Disconnect { done }).await?;
        receiver.await.map_err(|_| ClientError::Closed)?
    }

    async fn send(&self, command: Command) -> Result<(), ClientError> {
        self.commands.send(command).await.map_err(|_| ClientError::Closed)
    }
}

/// The session settings a [`Config`] implies.
fn session_config(config: &Config) -> SessionConfig {
    let mut session = SessionConfig::new(config.client_id.clone());
    session.keep_alive = config.keep_alive;
    session.clean_session = config.clean_session;
    session.connect_timeout = config.connect_timeout;
    session.ack_timeout = config.ack_timeout;
    session
}

/// Connects a [`Client`] with a choice of how: a [`Connector`] of your own (another transport,
/// an in-memory endpoint in tests) instead of TLS as the [`Config`] says, or an [`Outbox`]
/// opened beforehand instead of the configured `outbox` file.
///
/// ```no_run
/// # #[cfg(feature = "outbox")]
/// # async fn demo(config: iot443::Config) -> Result<(), iot443::ClientError> {
/// let outbox = iot443::outbox::Outbox::open("outbox.db".as_ref())?;
/// let (client, _events) = iot443::Client::builder(&config).outbox(outbox).connect().await?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct ClientBuilder {
    config: Config,
    connector: Option<Arc<dyn Connector>>,
    #[cfg(feature = "outbox")]
    outbox: Option<Outbox>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("ClientBuilder");
        f.field("config", &self.config).field("custom_connector", &self.connector.is_some());
        #[cfg(feature = "outbox")]
        f.field("outbox", &self.outbox);
        f.finish()
    }
}

impl ClientBuilder {
    /// Opens every transport with `connector` (default: [`TlsConnector`] for the config).
    pub fn connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Keeps QoS 1 publishes in `outbox` (instead of the config's `outbox` file). Feature
    /// `outbox`.
    #[cfg(feature = "outbox")]
    pub fn outbox(mut self, outbox: Outbox) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// Connects: the outbox first (a locked or corrupt file is an error before any
    /// connection), then the first transport, CONNECT, and CONNACK.
    pub async fn connect(self) -> Result<(Client, Events), ClientError> {
        #[cfg(feature = "outbox")]
        let durable = open_outbox(&self.config, self.outbox).await?;
        #[cfg(not(feature = "outbox"))]
        let durable = no_outbox(&self.config)?;
        let ClientBuilder { config, connector, .. } = self;
        let connector: Arc<dyn Connector> =
            connector.unwrap_or_else(|| Arc::new(TlsConnector::new(config.clone())));
        let session = session_config(&config);
        let opened = connector.connect(&session.connect_packet()).await?;
        let setup = DriverSetup {
            opened,
            connector,
            session,
            reconnect: config.reconnect.clone(),
            offline_queue: config.offline_queue.clone(),
            durable,
        };
        Client::start(setup, config.connect_timeout).await
    }
}

/// Without the feature `outbox`: no outbox, and an `outbox` file configured is an error.
#[cfg(not(feature = "outbox"))]
fn no_outbox(config: &Config) -> Result<Option<DurableSetup>, ClientError> {
    if config.outbox.is_some() {
        crate::config::features::outbox(&config.origin())?;
    }
    Ok(None)
}

/// Opens the outbox (the given one, or the config's file) on the blocking pool, reads what it
/// kept, and moves it to its thread.
#[cfg(feature = "outbox")]
async fn open_outbox(
    config: &Config,
    outbox: Option<Outbox>,
) -> Result<Option<DurableSetup>, ClientError> {
    // The outbox given, or else the file to open.
    let source = match (outbox, config.outbox.clone()) {
        (Some(outbox), _) => Ok(outbox),
        (None, Some(path)) => Err(path),
        (None, None) => return Ok(None),
    };
    let opened = tokio::task::spawn_blocking(move || {
        let outbox = match source {
            Ok(outbox) => outbox,
            Err(path) => Outbox::open(&path)?,
        };
        let replay = outbox.pending()?;
        Ok::<_, crate::outbox::OutboxError>((OutboxWorker::start(outbox)?, replay))
    })
    .await
    .map_err(|error| {
        ClientError::lost(
            config.server_addr(),
            format!("opening the outbox did not finish: {error}"),
        )
    })?;
    let (worker, replay) = opened?;
    Ok(Some(DurableSetup { worker, replay, message_expiry: config.message_expiry }))
}

/// The payload size (128 KiB) and QoS (0 or 1) checks of [`Client::check_publish`].
fn check_payload_and_qos(topic: &str, qos: QoS, payload_len: usize) -> Result<(), ClientError> {
    if payload_len > AWS_MAX_PAYLOAD {
        return Err(ClientError::PayloadTooLarge {
            topic: topic.to_owned(),
            size: payload_len,
            max: AWS_MAX_PAYLOAD,
        });
    }
    if qos == QoS::ExactlyOnce {
        return Err(ClientError::QosNotSupported);
    }
    Ok(())
}

fn checked_topic(topic: &str) -> Result<TopicName, ClientError> {
    let invalid = |source| ClientError::InvalidTopic { topic: topic.to_owned(), source };
    let name = TopicName::new(topic).map_err(invalid)?;
    name.check_aws_limits().map_err(invalid)?;
    Ok(name)
}

fn checked_filter(filter: &str) -> Result<TopicFilter, ClientError> {
    let invalid = |source| ClientError::InvalidTopic { topic: filter.to_owned(), source };
    let parsed = TopicFilter::new(filter).map_err(invalid)?;
    parsed.check_aws_limits().map_err(invalid)?;
    Ok(parsed)
}

/// A publish queued by [`Client::start_publish`], perhaps not yet on disk.
#[derive(Debug)]
#[must_use = "await accepted() to know the message was accepted (on disk, with an outbox)"]
pub struct Queued {
    on_disk: Option<oneshot::Receiver<Result<(), ClientError>>>,
    delivery: Delivery,
}

impl Queued {
    /// Waits until the message is accepted (on disk, with an outbox) and returns its
    /// [`Delivery`]; fails when the outbox could not store it.
    pub async fn accepted(self) -> Result<Delivery, ClientError> {
        if let Some(on_disk) = self.on_disk {
            on_disk.await.map_err(|_| ClientError::Closed)??;
        }
        Ok(self.delivery)
    }
}

/// Completes when a publish has been delivered: PUBACK at QoS 1, written at QoS 0.
#[derive(Debug)]
#[must_use = "a Delivery does nothing unless awaited; drop it to not wait"]
pub struct Delivery {
    receiver: oneshot::Receiver<Result<(), ClientError>>,
}

impl Future for Delivery {
    type Output = Result<(), ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver)
            .poll(cx)
            .map(|result| result.unwrap_or(Err(ClientError::Closed)))
    }
}

/// The messages matching one SUBSCRIBE's filters.
#[derive(Debug)]
pub struct Subscription {
    messages: mpsc::Receiver<Message>,
    granted: Vec<QoS>,
}

impl Subscription {
    /// The next message; `None` once the client is disconnected and every message was taken.
    pub async fn recv(&mut self) -> Option<Message> {
        self.messages.recv().await
    }

    /// The QoS granted for each filter, in order.
    pub fn granted_qos(&self) -> &[QoS] {
        &self.granted
    }
}
