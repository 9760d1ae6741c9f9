//! The HTTPS publish request: checks (the same as an MQTT publish) and its bytes.

use crate::error::ClientError;
use bytes::{BufMut, Bytes, BytesMut};
use iot443_proto::QoS;
use iot443_proto::codec::AWS_MAX_PAYLOAD;
use iot443_proto::topic::TopicName;

/// One message to publish over HTTPS: `POST /topics/<topic>?qos=N&retain=…`.
///
/// ```
/// use iot443::https::HttpsPublish;
/// let request = HttpsPublish::new("sensors/door", "open").qos(iot443::QoS::AtLeastOnce);
/// assert_eq!(request.topic, "sensors/door");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpsPublish {
    /// The topic name (no wildcards; IoT Core's limits apply).
    pub topic: String,
    /// The message body.
    pub payload: Bytes,
    /// 0 or 1. At QoS 1 the answer 200 means IoT Core accepted the message.
    pub qos: QoS,
    /// Whether IoT Core keeps the message as the topic's retained message (an empty payload
    /// with `retain` deletes it).
    pub retain: bool,
}

impl HttpsPublish {
    /// A QoS 0 message, not retained.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> HttpsPublish {
        HttpsPublish {
            topic: topic.into(),
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
        }
    }

    /// This message at `qos`.
    #[must_use]
    pub fn qos(mut self, qos: QoS) -> HttpsPublish {
        self.qos = qos;
        self
    }

    /// This message with the retain flag `retain`.
    #[must_use]
    pub fn retain(mut self, retain: bool) -> HttpsPublish {
        self.retain = retain;
        self
    }

    /// Checks the message with the rules of an MQTT publish (topic name and IoT Core's limits,
    /// 128 KiB payload, QoS 0 or 1).
    pub(crate) fn check(&self) -> Result<(), ClientError> {
        let invalid = |source| ClientError::InvalidTopic { topic: self.topic.clone(), source };
        let name = TopicName::new(self.topic.as_str()).map_err(invalid)?;
        name.check_aws_limits().map_err(invalid)?;
        if self.payload.len() > AWS_MAX_PAYLOAD {
            return Err(ClientError::PayloadTooLarge {
                topic: self.topic.clone(),
                size: self.payload.len(),
                max: AWS_MAX_PAYLOAD,
            });
        }
        if self.qos == QoS::ExactlyOnce {
            return Err(ClientError::QosNotSupported);
        }
        Ok(())
    }

    /// The request path and query: `/topics/<percent-encoded topic>?qos=N&retain=true|false`.
    pub(crate) fn path(&self) -> String {
        let qos = if self.qos == QoS::AtMostOnce { 0 } else { 1 };
        format!("/topics/{}?qos={qos}&retain={}", percent_encode(&self.topic), self.retain)
    }

    /// The whole request for `host` (the `Host` header: the endpoint, with the port when it is
    /// not 443).
    pub(crate) fn encode(&self, host: &str) -> Bytes {
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nUser-Agent: iot443/{}\r\n\r\n",
            self.path(),
            self.payload.len(),
            env!("CARGO_PKG_VERSION"),
        );
        let mut bytes = BytesMut::with_capacity(head.len() + self.payload.len());
        bytes.put_slice(head.as_bytes());
        bytes.put_slice(&self.payload);
        bytes.freeze()
    }
}

/// Percent-encodes every byte of `text` except RFC 3986's unreserved characters, as AWS's SDKs
/// encode a path label (so `/` becomes `%2F`).
pub(crate) fn percent_encode(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing into a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_encodes_the_topic_and_carries_qos_and_retain() {
        let request = HttpsPublish::new("a/b c/ü", "x").qos(QoS::AtLeastOnce).retain(true);
        assert_eq!(request.path(), "/topics/a%2Fb%20c%2F%C3%BC?qos=1&retain=true");
        assert_eq!(HttpsPublish::new("t", "").path(), "/topics/t?qos=0&retain=false");
    }

    #[test]
    fn the_request_has_host_and_content_length_and_the_payload_as_body() {
        let bytes = HttpsPublish::new("t", "hello").encode("example.com:8443");
        let text = std::str::from_utf8(&bytes).unwrap_or_default();
        assert!(text.starts_with("POST /topics/t?qos=0&retain=false HTTP/1.1\r\n"), "{text}");
        assert!(text.contains("\r\nHost: example.com:8443\r\n"), "{text}");
        assert!(text.contains("\r\nContent-Length: 5\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nhello"), "{text}");
    }

    #[test]
    fn the_checks_are_those_of_an_mqtt_publish() {
        assert!(matches!(
            HttpsPublish::new("a/+", "").check(),
            Err(ClientError::InvalidTopic { .. })
        ));
        assert!(matches!(
            HttpsPublish::new("t", vec![0_u8; AWS_MAX_PAYLOAD + 1]).check(),
            Err(ClientError::PayloadTooLarge { .. })
        ));
        assert!(matches!(
            HttpsPublish::new("t", "").qos(QoS::ExactlyOnce).check(),
            Err(ClientError::QosNotSupported)
        ));
        assert!(HttpsPublish::new("a/b", "x").check().is_ok());
    }
}
