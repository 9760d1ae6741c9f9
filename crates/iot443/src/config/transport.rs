//! Which road MQTT takes to the endpoint: [`Transport`].

use std::fmt;
use std::str::FromStr;

/// How the client reaches the endpoint (`transport = "tls" | "websocket" | "https"`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    /// MQTT over TLS with the device certificate (ALPN `x-amzn-mqtt-ca` on port 443). The default.
    #[default]
    Tls,
    /// MQTT over a WebSocket (`wss://endpoint/mqtt`) signed with SigV4 from AWS credentials: no
    /// device certificate, and it passes proxies that inspect TLS when `root_ca` trusts them.
    WebSocket,
    /// HTTPS publish (`POST /topics/…`), publish-only: `iot443 pub --transport https`. The MQTT
    /// client refuses it.
    Https,
}

impl Transport {
    /// The names [`Transport::from_str`] accepts, as written in a file or on the command line.
    pub const NAMES: [&'static str; 3] = ["tls", "websocket", "https"];

    /// The name as written in a file: `tls`, `websocket` or `https`.
    pub const fn name(self) -> &'static str {
        match self {
            Transport::Tls => "tls",
            Transport::WebSocket => "websocket",
            Transport::Https => "https",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A transport name that is none of `tls`, `websocket`, `https`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a transport: use \"tls\" (the default), \"websocket\" or \"https\"")]
pub struct InvalidTransport(pub String);

impl FromStr for Transport {
    type Err = InvalidTransport;

    /// Parses `tls`, `websocket` (also `wss`, `ws`) or `https`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Transport, InvalidTransport> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tls" | "mqtts" => Ok(Transport::Tls),
            "websocket" | "websockets" | "wss" | "ws" => Ok(Transport::WebSocket),
            "https" => Ok(Transport::Https),
            _ => Err(InvalidTransport(s.to_owned())),
        }
    }
}
