//! What the driver tells people when a connection ends before or without CONNACK.

use super::Driver;
use crate::error::ClientError;

impl Driver {
    pub(super) fn no_connack_hint(&self) -> String {
        if let Some(note) = &self.info.interception {
            return format!("; TLS succeeded but the endpoint never answered CONNECT: {note}");
        }
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

    /// What a connection that ends before CONNACK usually means.
    pub(super) fn before_connack_hint(&self) -> String {
        if let Some(note) = &self.info.interception {
            return format!("; it ended before CONNACK: {note}");
        }
        match self.info.alpn.as_deref() {
            Some(crate::config::Config::ALPN_MQTT_CA) => "; it ended before CONNACK: the endpoint \
                 probably refused the certificate (not registered or not ACTIVE) or the client id"
                .to_owned(),
            selected => format!(
                "; it ended before CONNACK and the endpoint selected {}: on port 443 AWS IoT Core \
                 needs ALPN x-amzn-mqtt-ca (set alpn = \"x-amzn-mqtt-ca\"), otherwise check the \
                 certificate and the client id",
                selected
                    .map_or_else(|| "no ALPN protocol".to_owned(), |alpn| format!("ALPN {alpn:?}"))
            ),
        }
    }

    /// An HTTP answer where CONNACK should be (`HTTP/1.1 400 Bad Request`): the endpoint served
    /// this connection as HTTP, which AWS IoT Core (and the emulator) do on port 443 when the
    /// ClientHello does not offer ALPN `x-amzn-mqtt-ca`. `None` for anything else.
    pub(super) fn http_before_connack(&self, bytes: &[u8]) -> Option<ClientError> {
        if !bytes.starts_with(b"HTTP/") {
            return None;
        }
        let line_end = bytes.iter().position(|b| *b == b'\r' || *b == b'\n').unwrap_or(bytes.len());
        let status: String = bytes
            .get(..line_end.min(80))
            .unwrap_or_default()
            .iter()
            .map(|b| if b.is_ascii_graphic() || *b == b' ' { char::from(*b) } else { '.' })
            .collect();
        let offered = match self.info.alpn.as_deref() {
            Some(alpn) => format!("the server selected ALPN {alpn:?}"),
            None => "no ALPN was negotiated".to_owned(),
        };
        Some(ClientError::lost(
            self.info.addr(),
            format!(
                "the endpoint answered HTTP ({status:?}) instead of CONNACK and {offered}: on \
                 port 443 AWS IoT Core (and the iot443 emulator) serve HTTP (WebSocket, HTTPS \
                 publish) unless the ClientHello offers ALPN x-amzn-mqtt-ca; set alpn = \
                 \"x-amzn-mqtt-ca\" (or use port 8883), or transport = \"websocket\" for the \
                 WebSocket road"
            ),
        ))
    }
}
