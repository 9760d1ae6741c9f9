#![cfg_attr(feature = "server", doc = include_str!("../README.md"))]
#![cfg_attr(
    not(feature = "server"),
    doc = "A local AWS IoT Core endpoint for development and tests, built here without the \
           `server` feature: only its sans-IO MQTT broker core."
)]
//!
//! # Modules
//!
//! | module | concern |
//! |---|---|
//! | [`pki`] | a test certificate authority, a server certificate and device identities, generated at first start (rcgen) and reused afterwards |
//! | [`tls`] | the TLS listeners' rules: the port-443-style listener's routing on ALPN (MQTT, HTTPS publish, the WebSocket road), client certificates, optional strict SNI |
//! | [`sigv4`] | SigV4 verification of the presigned WebSocket upgrade `GET /mqtt?X-Amz-…` |
//! | [`broker`] | a sans-IO MQTT 3.1.1 broker core with IoT Core's rules and quotas |
//! | [`server`] | the tokio shell: listeners, one task per connection (MQTT, MQTT over WebSocket, HTTPS publish), the broker's timers; [`Emulator`](server::Emulator) in-process, [`InMemoryEmulator`](server::InMemoryEmulator) for tests |
//!
//! Every module but [`broker`] needs the `server` feature (on by default); [`sigv4`] alone
//! needs only the `sigv4` feature, which `server` includes.
#![forbid(unsafe_code)]

pub mod broker;
mod peer_text;
#[cfg(feature = "server")]
pub mod pki;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "sigv4")]
pub mod sigv4;
#[cfg(feature = "server")]
pub mod tls;
