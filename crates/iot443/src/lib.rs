#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod client;
pub mod config;
pub mod connect;
#[cfg(feature = "doctor")]
pub mod diagnose;
mod driver;
mod error;
#[cfg(feature = "https")]
pub mod https;
mod message;
mod offline_queue;
pub mod outbox;
pub mod reconnect;
#[cfg(feature = "shadow")]
pub mod shadow;
pub mod tls;
mod topic_cache;

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
#[cfg(feature = "outbox")]
pub use outbox::Outbox;
pub use outbox::OutboxError;
pub use reconnect::ReconnectPolicy;
