//! The emulator's real broker in memory, for tests in virtual time: [`Broker`] is a connector
//! whose every attempt is a fresh in-memory connection to one [`InMemoryEmulator`], with IoT
//! Core's rules (takeover of a client id, 1.5 × keep-alive, quotas) and no TLS.

use iot443::connect::{Connecting, Connector, Opened};
use iot443::{Client, Config, ConnectionInfo, Events};
use iot443_emulator::broker::BrokerConfig;
use iot443_emulator::server::InMemoryEmulator;
use iot443_proto::codec::Connect;
use std::sync::Arc;

/// Connects clients to one in-memory emulator.
#[derive(Clone)]
pub struct Broker {
    emulator: Arc<InMemoryEmulator>,
}

impl Connector for Broker {
    fn connect(&self, _connect: &Connect) -> Connecting {
        let stream = self.emulator.connect(Some("device"));
        Box::pin(async move { Ok(Opened::new(stream, ConnectionInfo::new("in-memory", 443))) })
    }
}

impl Broker {
    /// An emulator with IoT Core's default rules, in this test's runtime.
    pub fn start() -> Broker {
        Broker { emulator: Arc::new(InMemoryEmulator::start(BrokerConfig::default())) }
    }

    /// The emulator, to read how its connections closed.
    pub fn emulator(&self) -> &InMemoryEmulator {
        &self.emulator
    }

    /// Connects a client configured by `config` (see [`super::scripted::config`]).
    pub async fn connect(&self, config: &Config) -> (Client, Events) {
        Client::builder(config)
            .connector(Arc::new(self.clone()))
            .connect()
            .await
            .expect("the client connects to the in-memory emulator")
    }
}
