//! Shared by the behaviour tests: an in-process emulator on ephemeral loopback ports, client
//! configurations for it, and waiting with a deadline instead of sleeping.
#![allow(dead_code, unreachable_pub)]

pub mod connect_proxy;
pub mod events;
pub mod faults;
pub mod in_memory;
pub mod scripted;
pub mod tls_server;

use iot443::{Client, Config, Event, Events, Message, Subscription};
use iot443_emulator::pki::{DeviceIdentity, DeviceKeyKind};
use iot443_emulator::server::{Emulator, EmulatorOptions};
use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// The longest any single wait may take before the test fails. Generous: waits end on a signal,
/// never on this deadline, unless something is broken.
pub const WAIT: Duration = Duration::from_secs(30);

/// A short connect timeout, so that the tests about a missing CONNACK end quickly.
pub const SHORT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// An emulator running in this test's runtime, with its PKI in a temporary folder.
pub struct TestEmulator {
    pub emulator: Emulator,
    dir: tempfile::TempDir,
}

impl TestEmulator {
    /// ALPN listener and MQTTS listener on ephemeral ports of 127.0.0.1, default rules.
    pub async fn start() -> TestEmulator {
        TestEmulator::start_with(|_| {}).await
    }

    /// Like [`TestEmulator::start`], with `customise` applied to the options first.
    pub async fn start_with(customise: impl FnOnce(&mut EmulatorOptions)) -> TestEmulator {
        let dir = tempfile::tempdir().unwrap();
        let mut options = EmulatorOptions::new(dir.path());
        options.alpn_port = 0;
        options.mqtts_port = Some(0);
        options.https_port = None;
        customise(&mut options);
        let emulator = Emulator::start(options).await.expect("the emulator starts");
        TestEmulator { emulator, dir }
    }

    /// Stops this emulator and starts another on the same ports and PKI, with `customise`
    /// applied to its options (another policy, say): to the clients, the same endpoint back
    /// with other rules and no sessions.
    pub async fn restart_with(self, customise: impl FnOnce(&mut EmulatorOptions)) -> TestEmulator {
        let TestEmulator { emulator, dir } = self;
        let alpn_port = emulator.alpn_addr.port();
        let mqtts_port = emulator.mqtts_addr.map(|addr| addr.port());
        emulator.stop().await;
        let mut options = EmulatorOptions::new(dir.path());
        options.alpn_port = alpn_port;
        options.mqtts_port = mqtts_port;
        options.https_port = None;
        customise(&mut options);
        let emulator = Emulator::start(options).await.expect("the emulator starts again");
        TestEmulator { emulator, dir }
    }

    /// The emulator's folder (PKI, `iot443.toml`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The port of the listener that behaves like IoT Core's port 443 (ALPN required).
    pub fn alpn_port(&self) -> u16 {
        self.emulator.alpn_addr.port()
    }

    /// The port of the plain MQTTS listener (no ALPN, like IoT Core's 8883).
    pub fn mqtts_port(&self) -> u16 {
        self.emulator.mqtts_addr.expect("an MQTTS listener").port()
    }

    /// The emulator's `iot443.toml` as written, read with [`Config::load`]: endpoint
    /// `localhost`, the ALPN listener's port, the default device's files.
    pub fn file_config(&self) -> Config {
        let config = Config::load(&self.emulator.pki.config_path()).unwrap();
        assert_eq!(config.port, self.alpn_port(), "iot443.toml names the ALPN listener");
        config
    }

    /// A configuration for the ALPN listener with client id `client_id`. The port is not 443,
    /// so ALPN `x-amzn-mqtt-ca` is asked for explicitly.
    pub fn config(&self, client_id: &str) -> Config {
        let mut config = self.file_config();
        config.client_id = client_id.to_owned();
        config.alpn = Some(Config::ALPN_MQTT_CA.to_owned());
        config.connect_timeout = Duration::from_secs(10);
        config.validate().unwrap();
        config
    }

    /// A configuration for the MQTTS listener, offering no ALPN.
    pub fn mqtts_config(&self, client_id: &str) -> Config {
        let mut config = self.config(client_id);
        config.port = self.mqtts_port();
        config.alpn = None;
        config.validate().unwrap();
        config
    }

    /// A configuration for the ALPN listener with the credentials of a new device `name`,
    /// signed by the emulator's CA and valid from `not_before` to `not_after`.
    pub fn config_with_device_valid(
        &self,
        name: &str,
        client_id: &str,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> (Config, DeviceIdentity) {
        let device = self
            .emulator
            .pki
            .issue_device_with_validity(name, DeviceKeyKind::EcP256, not_before, not_after)
            .unwrap();
        let mut config = self.config(client_id);
        config.certificate = device.certificate_path.clone();
        config.private_key = device.private_key_path.clone();
        (config, device)
    }

    /// A client connected to the ALPN listener.
    pub async fn connect(&self, client_id: &str) -> (Client, Events) {
        let config = self.config(client_id);
        within("connect", Client::connect(&config)).await.expect("the client connects")
    }
}

/// Awaits `future`, failing the test if it takes longer than [`WAIT`].
#[track_caller]
pub fn within<F: Future>(what: &str, future: F) -> impl Future<Output = F::Output> {
    let what = what.to_owned();
    let location = std::panic::Location::caller();
    async move {
        match tokio::time::timeout(WAIT, future).await {
            Ok(output) => output,
            Err(_) => panic!("timed out after {WAIT:?} waiting for {what} ({location})"),
        }
    }
}

/// The next message of `subscription`, failing the test if none comes within [`WAIT`] or the
/// subscription ends.
pub async fn next_message(subscription: &mut Subscription, what: &str) -> Message {
    within(what, subscription.recv()).await.unwrap_or_else(|| panic!("{what}: subscription ended"))
}

/// The messages already queued on `subscription`, without waiting for more.
pub fn queued_messages(subscription: &mut Subscription) -> Vec<Message> {
    let mut messages = Vec::new();
    while let Some(Some(message)) = poll_once(subscription.recv()) {
        messages.push(message);
    }
    messages
}

/// The events already queued on `events`, without waiting for more.
pub fn queued_events(events: &mut Events) -> Vec<Event> {
    let mut queued = Vec::new();
    while let Some(Some(event)) = poll_once(events.recv()) {
        queued.push(event);
    }
    queued
}

/// Polls `future` once: `Some(output)` if it is ready now, `None` if it would wait.
pub fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}
