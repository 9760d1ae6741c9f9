//! iot443: MQTT to AWS IoT Core through TCP port 443.
//!
//! AWS IoT Core accepts MQTT with X.509 client certificates on port 443 when the TLS
//! ClientHello offers the ALPN protocol `x-amzn-mqtt-ca`. This crate makes that the default:
//! a [`Config`] (TOML, `IOT443_*` variables, or the C SDK's `aws_iot_config.h`), a [`Client`]
//! that connects, publishes and subscribes, and errors that say what to fix.
//!
//! # Architecture
//!
//! ```text
//!  Client (Clone) ──commands──► driver task ──► iot443_proto::Session (sans-IO)
//!       ▲                          │   ▲
//!   Delivery / Subscription        ▼   │ bytes
//!                         TCP ─► TLS (rustls, ALPN x-amzn-mqtt-ca on 443, client certificate)
//! ```
//!
//! One driver task per client owns the socket and the session. [`Client::publish`] returns a
//! [`Delivery`] that completes on PUBACK (QoS 1); [`Client::subscribe`] returns on SUBACK with a
//! [`Subscription`] of matching messages.
#![forbid(unsafe_code)]

mod client;
pub mod config;
pub mod connect;
pub mod diagnose;
mod driver;
mod error;
mod message;
mod offline_queue;
pub mod outbox;
mod port_memory;
mod port_race;
pub mod reconnect;
pub mod tls;
mod tls_failure;
mod transport;
mod tunnel;

pub use client::{
    COMMAND_QUEUE, Client, ClientBuilder, Delivery, Events, MAX_FILTERS_PER_SUBSCRIBE, Queued,
    SUBSCRIPTION_QUEUE, Subscription,
};
pub use config::{
    Config, ConfigBuilder, ConfigError, CredentialWarning, Credentials, KeyFormat, KeyKind,
};
pub use error::{ClientError, ErrorKind, LostCause};
pub use iot443_proto::QoS;
pub use iot443_proto::session::SessionConfig;
pub use message::{ConnectionInfo, Event, Message, PortChoice};
pub use offline_queue::{OfflineQueue, WhenFull};
pub use outbox::{Outbox, OutboxError};
pub use reconnect::ReconnectPolicy;
