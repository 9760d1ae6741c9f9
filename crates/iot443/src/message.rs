//! Messages received, and what the client reports about its connection.

use bytes::Bytes;
use iot443_proto::QoS;
use std::net::SocketAddr;
use std::time::Duration;

/// An application message received from the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published to.
    pub topic: String,
    /// The payload, shared without copying.
    pub payload: Bytes,
    /// The QoS it was delivered with.
    pub qos: QoS,
    /// A retained message delivered on subscribe.
    pub retain: bool,
    /// The endpoint says it may have delivered this message before.
    pub dup: bool,
}

/// How the client is connected: the facts that prove the path (port 443, ALPN, TLS version).
///
/// For a transport of your own ([`Client::connect_over`](crate::Client::connect_over)), start
/// from [`ConnectionInfo::new`] and set what you know:
///
/// ```
/// let mut info = iot443::ConnectionInfo::new("gateway.local", 8883);
/// info.tls_version = "TLS1.3".to_owned();
/// assert_eq!(info.addr(), "gateway.local:8883");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The endpoint's host name as configured (and sent as SNI).
    pub host: String,
    /// The port connected to.
    pub port: u16,
    /// The remote address connected to, when the transport is TCP (the proxy's, through a
    /// proxy).
    pub remote_addr: Option<SocketAddr>,
    /// `"TLS1.3"` or `"TLS1.2"`; empty when the transport is not TLS.
    pub tls_version: String,
    /// The negotiated cipher suite, e.g. `"TLS13_AES_128_GCM_SHA256"`.
    pub cipher_suite: String,
    /// The ALPN protocol the server selected, e.g. `"x-amzn-mqtt-ca"`.
    pub alpn: Option<String>,
    /// The server resumed a stored session.
    pub session_present: bool,
    /// The HTTP proxy tunnelled through, as `host:port` (never with credentials).
    pub proxy: Option<String>,
    /// With `port = "auto"`: how [`port`](ConnectionInfo::port) was chosen.
    pub port_choice: Option<PortChoice>,
    /// Set when the server's chain was trusted (through `root_ca`) but, for an `amazonaws.com`
    /// endpoint, does not end at an Amazon root: a TLS-inspecting proxy is probably in the way,
    /// and certificate authentication cannot pass it. Says so, names the issuer and what works.
    pub interception: Option<String>,
    /// On the WebSocket road, the URL without its signature, e.g. `wss://host/mqtt`; `None`
    /// for MQTT straight over TLS.
    pub url: Option<String>,
}

/// How `port = "auto"` chose the port ([`AutoPort`](crate::config::AutoPort)).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortChoice {
    /// The port remembered from an earlier race was tried alone and reached CONNACK.
    Remembered {
        /// From the start of the attempt (TCP connect) to CONNACK.
        connack_after: Duration,
    },
    /// The port won a race to CONNACK.
    Raced {
        /// From the start of this port's own attempt to CONNACK.
        connack_after: Duration,
        /// From the start of the race (the first attempt) to CONNACK.
        since_race_start: Duration,
        /// How the other port fared, e.g. `port 8883: TCP connect … timed out`, `port 8883: no
        /// CONNACK yet, closed` or `port 443: not tried`.
        others: Vec<String>,
    },
}

impl std::fmt::Display for PortChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: &Duration| d.as_secs_f64() * 1e3;
        match self {
            PortChoice::Remembered { connack_after } => write!(
                f,
                "remembered from the last race, reached CONNACK {:.1} ms after the attempt started",
                ms(connack_after)
            ),
            PortChoice::Raced { connack_after, since_race_start, others } => {
                write!(
                    f,
                    "raced, reached CONNACK {:.1} ms after its attempt started ({:.1} ms after the race started)",
                    ms(connack_after),
                    ms(since_race_start)
                )?;
                for other in others {
                    write!(f, "; {other}")?;
                }
                Ok(())
            }
        }
    }
}

impl ConnectionInfo {
    /// A transport to `host:port` about which nothing else is known yet: no TLS, no ALPN, no
    /// proxy.
    pub fn new(host: impl Into<String>, port: u16) -> ConnectionInfo {
        ConnectionInfo {
            host: host.into(),
            port,
            remote_addr: None,
            tls_version: String::new(),
            cipher_suite: String::new(),
            alpn: None,
            session_present: false,
            proxy: None,
            port_choice: None,
            interception: None,
            url: None,
        }
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// One line for people, e.g.
    /// `connected to host:443 via TLS1.3 TLS13_AES_128_GCM_SHA256 alpn=x-amzn-mqtt-ca`, followed
    /// by ` via proxy HOST:PORT` through a proxy.
    pub fn summary(&self) -> String {
        let alpn = self.alpn.as_deref().unwrap_or("none");
        let mut summary = if self.tls_version.is_empty() {
            format!("connected to {} (no TLS) alpn={alpn}", self.addr())
        } else {
            format!(
                "connected to {} via {} {} alpn={alpn}",
                self.addr(),
                self.tls_version,
                self.cipher_suite
            )
        };
        if let Some(url) = &self.url {
            summary.push_str(" over ");
            summary.push_str(url);
        }
        if let Some(proxy) = &self.proxy {
            summary.push_str(" via proxy ");
            summary.push_str(proxy);
        }
        if let Some(choice) = &self.port_choice {
            summary.push_str(&format!(" (port auto: {choice})"));
        }
        summary
    }
}

/// What happened to the connection, for the application's event stream.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// CONNACK accepted the connection.
    Connected(ConnectionInfo),
    /// A message that matched no [`Subscription`](crate::Subscription) of this client (for
    /// example one queued by a persistent session before the application subscribed again).
    Message(Message),
    /// The connection was lost; the client reconnects after `delay`. Publishes are kept and
    /// subscriptions restored.
    Reconnecting {
        /// Attempts since the last healthy connection (1 for the first).
        attempt: u32,
        /// The wait before the attempt (exponential backoff with full jitter).
        delay: std::time::Duration,
        /// Why: the network, or the endpoint refusing the client (with the likely cause).
        cause: String,
    },
    /// A QoS 1 message the endpoint kept refusing was set aside instead of re-sent forever.
    DeadLettered {
        /// Its topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// The endpoint kept closing the connection right after a SUBSCRIBE (a policy that forbids
    /// the filter): the subscription was given up, and is no longer restored after reconnects.
    /// When a restore of several filters is refused, they are restored one by one until the
    /// refused one is found, so the others are kept.
    SubscriptionDropped {
        /// The topic filter.
        filter: String,
        /// Why.
        reason: String,
    },
    /// A QoS 1 message expired in the outbox before it was acknowledged, and was dropped.
    Expired {
        /// Its topic.
        topic: String,
    },
    /// The connection ended for good; the client accepts no more operations.
    Disconnected {
        /// Why, in words.
        reason: String,
    },
}
