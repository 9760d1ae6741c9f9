//! A publish made over the HTTPS publish API (`POST /topics/<topic>`): the same checks as an
//! MQTT PUBLISH (size, topic limits, QoS, retain on `$` topics, the policy), then routed to
//! subscribers, the retained store, or the shadow service, as MQTT would.
//!
//! There is no client id over HTTPS (`AWS-IOT-ROADS.md` §2.2): the policy sees the empty client
//! id, so a statement applies when its `client_ids` hold `"*"` (the default) or a pattern that
//! matches the empty string, and `${iot:ClientId}` becomes the empty string. Strict rates do not
//! apply to HTTPS publishes (IoT Core's HTTPS quotas are not modelled).

use super::{Broker, PeerIdentity};
use crate::peer_text::peer_text;
use bytes::Bytes;
use iot443_proto::Instant;
use iot443_proto::aws::shadow::{ShadowSuffix, ShadowTopic};
use iot443_proto::codec::{AWS_MAX_PAYLOAD, QoS};
use iot443_proto::topic::{TopicError, TopicName};

/// Why [`Broker::publish_from_http`] refused a publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpPublishRefusal {
    /// The payload is larger than IoT Core's 128 KiB.
    #[error("the payload is {size} bytes, more than IoT Core's {AWS_MAX_PAYLOAD}")]
    PayloadTooLarge {
        /// The payload's size.
        size: usize,
    },
    /// The topic is not a valid topic name under IoT Core's limits.
    #[error("invalid topic: {error}")]
    InvalidTopic {
        /// What is wrong.
        error: TopicError,
    },
    /// QoS 2 (IoT Core supports 0 and 1).
    #[error("qos must be 0 or 1")]
    InvalidQoS,
    /// A retained message on a reserved (`$`) topic.
    #[error("retain is not allowed on reserved topics ($…)")]
    RetainOnReservedTopic,
    /// The policy does not allow this certificate to publish to the topic.
    #[error("the policy does not allow publishing to {topic:?}")]
    PolicyDenied {
        /// The topic.
        topic: String,
    },
}

impl Broker {
    /// Publishes `payload` to `topic` for the certificate `peer` (an HTTPS publish; there is no
    /// connection and no client id), under the rules of an MQTT PUBLISH. A publish to a shadow
    /// request topic goes to the shadow service, whose answers reach the subscribers of its
    /// answer topics.
    ///
    /// # Errors
    /// The first rule the publish breaks; nothing was published then.
    pub fn publish_from_http(
        &mut self,
        now: Instant,
        peer: &PeerIdentity,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
    ) -> Result<(), HttpPublishRefusal> {
        if payload.len() > AWS_MAX_PAYLOAD {
            return Err(HttpPublishRefusal::PayloadTooLarge { size: payload.len() });
        }
        let topic = TopicName::new(topic.to_owned())
            .and_then(|topic| topic.check_aws_limits().map(|()| topic))
            .map_err(|error| HttpPublishRefusal::InvalidTopic { error })?;
        if qos == QoS::ExactlyOnce {
            return Err(HttpPublishRefusal::InvalidQoS);
        }
        if retain && topic.as_str().starts_with('$') {
            return Err(HttpPublishRefusal::RetainOnReservedTopic);
        }
        if let Some(policy) = &self.config.policy
            && !policy.allows_publish(peer.common_name.as_deref(), "", &topic)
        {
            return Err(HttpPublishRefusal::PolicyDenied { topic: topic.into_string() });
        }
        tracing::debug!(topic = ?peer_text(topic.as_str()), bytes = payload.len(), ?qos, retain,
            common_name = ?peer.common_name.as_deref().map(peer_text), "HTTPS publish");
        match ShadowTopic::parse(topic.as_str()) {
            Some(shadow) if shadow.suffix == ShadowSuffix::Request => {
                // The answer goes to `…/accepted` or `…/rejected` subscribers; the HTTP caller
                // gets 200 either way, as IoT Core's publish API does.
                let _ = self.shadow_request(now, &shadow.id, shadow.operation, &payload);
            }
            _ => self.route(now, &topic, &payload, qos, retain),
        }
        Ok(())
    }
}
