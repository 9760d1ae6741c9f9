//! Classifying why a connection attempt failed or a transport ended, as the driver sees it.

use crate::connect::CLOSED_BEFORE_CONNACK;
use crate::error::ClientError;
use crate::reconnect::Cause;

/// Whether a failed connection attempt is the network failing or the endpoint refusing us.
pub(crate) fn classify_attempt(error: &ClientError) -> Cause {
    match error {
        ClientError::Connect { .. } | ClientError::Timeout { .. } => {
            Cause::Network(error.to_string())
        }
        // A proxy that refuses the tunnel (credentials, policy) refuses every attempt alike.
        ClientError::Proxy { status: Some(403 | 407), .. } => Cause::Refused(error.to_string()),
        ClientError::Proxy { .. } => Cause::Network(error.to_string()),
        // The same for the WebSocket upgrade: 401/403 is the endpoint refusing the signature;
        // another status (a proxy refusing upgrades, a gateway error) is the path to it.
        ClientError::WebSocketRefused { status: 401 | 403, .. } => {
            Cause::Refused(error.to_string())
        }
        ClientError::WebSocketRefused { .. } => Cause::Network(error.to_string()),
        // Refused only when the endpoint itself refused on some port: a port that a firewall
        // drops or a proxy will not tunnel to (403 for 8883) says nothing about the endpoint.
        ClientError::AllPortsFailed { failures, .. }
            if !failures.iter().any(|(_, failure)| failure.came_from_the_endpoint()) =>
        {
            Cause::Network(error.to_string())
        }
        _ => Cause::Refused(error.to_string()),
    }
}

/// How a transport ended, as the driver saw it.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The endpoint closed the stream cleanly (TLS close_notify, then end of stream): a
    /// decision of the endpoint, not a broken link.
    ClosedByEndpoint,
    /// Reading or writing failed: reset, cut, or end of stream without close_notify.
    Broken {
        /// `"read"` or `"write"`.
        during: &'static str,
        error: std::io::Error,
    },
}

impl Ending {
    /// Reading failed with `error`.
    pub(crate) fn read_failed(error: std::io::Error) -> Ending {
        Ending::Broken { during: "read", error }
    }

    /// Writing failed with `error`.
    pub(crate) fn write_failed(error: std::io::Error) -> Ending {
        Ending::Broken { during: "write", error }
    }
}

/// What the driver knows about a connection when it ends, to classify the cause.
#[derive(Debug)]
pub(crate) struct Ended<'a> {
    pub(crate) ending: &'a Ending,
    pub(crate) after_connack: bool,
    /// A PUBLISH (the topic) or SUBSCRIBE was outstanding without acknowledgement.
    pub(crate) unacknowledged: Option<&'a str>,
    /// The connection had proven healthy (up long enough, or the endpoint acknowledged traffic).
    pub(crate) healthy: bool,
}

/// Classifies the end of a connection: a deliberate close by the endpoint right after CONNECT,
/// or right after an unacknowledged PUBLISH/SUBSCRIBE, is a refusal; the rest is the network.
pub(crate) fn classify_end(ended: &Ended<'_>) -> Cause {
    match (ended.ending, ended.after_connack, ended.unacknowledged) {
        (Ending::Broken { during, error }, _, _) => {
            Cause::Network(format!("{during} failed: {error}"))
        }
        (Ending::ClosedByEndpoint, false, _) => Cause::Refused(CLOSED_BEFORE_CONNACK.into()),
        (Ending::ClosedByEndpoint, true, Some(what)) => Cause::Refused(format!(
            "the endpoint closed the connection right after {what} without acknowledging it: \
             probably not allowed by the policy attached to the certificate"
        )),
        (Ending::ClosedByEndpoint, true, None) if !ended.healthy => Cause::Refused(
            "the endpoint closed the connection shortly after accepting it: another connection \
             probably uses the same client id, or the policy forbids it"
                .into(),
        ),
        (Ending::ClosedByEndpoint, true, None) => {
            Cause::Network("the endpoint closed the connection".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(ending: Ending, after_connack: bool, unacked: Option<&str>, healthy: bool) -> Cause {
        classify_end(&Ended { ending: &ending, after_connack, unacknowledged: unacked, healthy })
    }

    fn proxy_error(status: Option<u16>) -> ClientError {
        ClientError::Proxy {
            proxy: "http://p:3128".into(),
            status,
            detail: String::new(),
            hint: String::new(),
        }
    }

    #[test]
    fn a_proxy_refusing_the_tunnel_is_a_refusal_and_an_unreachable_one_the_network() {
        assert!(classify_attempt(&proxy_error(Some(407))).is_refusal());
        assert!(classify_attempt(&proxy_error(Some(403))).is_refusal());
        assert!(!classify_attempt(&proxy_error(Some(502))).is_refusal());
        assert!(!classify_attempt(&proxy_error(None)).is_refusal());
    }

    fn timeout(port: u16) -> ClientError {
        ClientError::Timeout {
            addr: format!("h:{port}"),
            stage: "TCP connect",
            after: std::time::Duration::from_secs(1),
            hint: String::new(),
        }
    }

    #[test]
    fn a_race_that_no_port_won_is_a_refusal_only_when_the_endpoint_refused_on_some_port() {
        let blocked = ClientError::AllPortsFailed {
            host: "h".into(),
            failures: vec![
                ("port 8883".into(), proxy_error(Some(403))),
                ("port 443".into(), timeout(443)),
            ],
            hint: String::new(),
        };
        assert!(!classify_attempt(&blocked).is_refusal(), "a proxy's 403 for 8883 + a timeout");
        assert_eq!(blocked.kind(), crate::ErrorKind::Connection);

        let refused_tls = ClientError::Tls {
            addr: "h:443".into(),
            detail: "certificate revoked".into(),
            hint: String::new(),
            source: None,
        };
        let refused = ClientError::AllPortsFailed {
            host: "h".into(),
            failures: vec![("port 8883".into(), timeout(8883)), ("port 443".into(), refused_tls)],
            hint: String::new(),
        };
        assert!(classify_attempt(&refused).is_refusal());
        assert_eq!(refused.kind(), crate::ErrorKind::TlsOrAuth);
    }

    #[test]
    fn a_broken_link_is_the_network() {
        assert!(
            !ended(
                Ending::read_failed(std::io::ErrorKind::ConnectionReset.into()),
                true,
                Some("x"),
                false
            )
            .is_refusal()
        );
    }

    #[test]
    fn a_clean_close_before_connack_is_a_refusal() {
        assert!(ended(Ending::ClosedByEndpoint, false, None, false).is_refusal());
    }

    #[test]
    fn a_clean_close_after_an_unacknowledged_publish_is_a_refusal() {
        let cause = ended(Ending::ClosedByEndpoint, true, Some("PUBLISH to t"), true);
        assert!(cause.is_refusal());
        assert!(cause.to_string().contains("policy"));
    }

    #[test]
    fn a_clean_close_of_a_young_idle_connection_is_a_refusal_and_of_a_healthy_one_is_not() {
        assert!(ended(Ending::ClosedByEndpoint, true, None, false).is_refusal());
        assert!(!ended(Ending::ClosedByEndpoint, true, None, true).is_refusal());
    }
}
