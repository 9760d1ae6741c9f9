//! What the driver tells people when a connection ends before or without CONNACK.

use super::Driver;

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
}
