//! What can go wrong with an HTTPS publish: the checks, the connection, the answer, and each
//! of IoT Core's refusals with its status, `x-amzn-ErrorType`, message and traceId.

use crate::error::{ClientError, ErrorKind};
use std::fmt;
use std::sync::Arc;

/// IoT Core's refusal of one publish, as it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// `host:port`.
    pub addr: String,
    /// The topic published to.
    pub topic: String,
    /// The device certificate file used.
    pub certificate: String,
    /// The HTTP status code.
    pub status: u16,
    /// The `x-amzn-ErrorType` header, e.g. `ForbiddenException:`.
    pub error_type: Option<String>,
    /// The body's `message`, e.g. `Missing Authentication Token`.
    pub message: Option<String>,
    /// The body's `traceId` (quote it to AWS support).
    pub trace_id: Option<String>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} answered the publish to {:?} with {}", self.addr, self.topic, self.status)?;
        if let Some(error_type) = &self.error_type {
            write!(f, " {}", error_type.trim_end_matches(':'))?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(trace_id) = &self.trace_id {
            write!(f, " (traceId {trace_id})")?;
        }
        Ok(())
    }
}

impl Refusal {
    /// Whether the answer says the request was not authenticated at all (as opposed to a
    /// policy that does not allow the publish).
    fn authentication(&self) -> bool {
        let text = format!("{:?} {:?}", self.error_type, self.message).to_ascii_lowercase();
        text.contains("authenticat") || text.contains("token") || text.contains("certificate")
    }

    fn forbidden_hint(&self) -> String {
        if self.authentication() {
            format!(
                "the request was not authenticated: the device certificate {} did not reach \
                 the endpoint or is not registered and ACTIVE in AWS IoT; on port 443 HTTPS \
                 publish needs ALPN x-amzn-http-ca (port 8443 needs none); a TLS-inspecting \
                 proxy also removes the certificate",
                self.certificate
            )
        } else {
            format!(
                "the policy attached to the certificate {} does not allow iot:Publish on topic \
                 {:?} (resource arn:aws:iot:REGION:ACCOUNT:topic/{}): check the policy",
                self.certificate, self.topic, self.topic
            )
        }
    }
}

/// Why an HTTPS publish failed. Nothing was sent for the checks; for a refusal, IoT Core
/// answered and did not publish the message.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpsError {
    /// The message breaks a rule of MQTT or IoT Core (topic, payload size, QoS), or the
    /// configuration or the connection failed (TCP, proxy, TLS): as for the MQTT client.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Writing the request or reading the answer failed.
    #[error("HTTPS publish to {addr}: {during} failed: {source}; check the network and retry")]
    Io {
        /// `host:port`.
        addr: String,
        /// "writing the request", "reading the answer".
        during: &'static str,
        /// The error.
        source: Arc<std::io::Error>,
    },
    /// The endpoint closed the connection without answering.
    #[error(
        "HTTPS publish to {addr}: the endpoint closed the connection without answering; on port \
         443 it needs ALPN x-amzn-http-ca and a registered, ACTIVE device certificate"
    )]
    NoAnswer {
        /// `host:port`.
        addr: String,
    },
    /// The answer is not an HTTP response IoT Core would send.
    #[error(
        "HTTPS publish to {addr}: {detail}; is this an AWS IoT Core data endpoint (the \
         iot:Data-ATS one) and its HTTPS port (443 with ALPN x-amzn-http-ca, or 8443)?"
    )]
    BadResponse {
        /// `host:port`.
        addr: String,
        /// What is wrong with it.
        detail: String,
    },
    /// 400: IoT Core found the request invalid.
    #[error("{0}; the request was invalid (topic, qos or payload): fix it, nothing was published")]
    InvalidRequest(Box<Refusal>),
    /// 401: the request was not authorised.
    #[error("{0}; check that the device certificate {certificate} is registered and ACTIVE", certificate = .0.certificate)]
    Unauthorized(Box<Refusal>),
    /// 403: authentication or the certificate's policy refused the publish.
    #[error("{0}; {hint}", hint = .0.forbidden_hint())]
    Forbidden(Box<Refusal>),
    /// 404: no such resource; usually not the data endpoint.
    #[error(
        "{0}; use the data endpoint of `aws iot describe-endpoint --endpoint-type iot:Data-ATS`"
    )]
    NotFound(Box<Refusal>),
    /// 405: the method is not allowed there.
    #[error("{0}; the endpoint does not take POST there: is it the iot:Data-ATS endpoint?")]
    MethodNotAllowed(Box<Refusal>),
    /// 413: the payload is too large.
    #[error("{0}; AWS IoT Core accepts at most 128 KiB per message")]
    PayloadTooLarge(Box<Refusal>),
    /// 429: throttled.
    #[error("{0}; AWS IoT Core throttled the request: retry later, publish less often")]
    Throttling(Box<Refusal>),
    /// 5xx: IoT Core failed.
    #[error("{0}; AWS IoT Core failed internally: retry later")]
    ServerError(Box<Refusal>),
    /// Another status than 200 that IoT Core does not document for a publish.
    #[error("{0}")]
    Unexpected(Box<Refusal>),
}

impl HttpsError {
    /// The error for a status other than 200.
    pub(crate) fn refused(refusal: Refusal) -> HttpsError {
        let refusal = Box::new(refusal);
        match refusal.status {
            400 => HttpsError::InvalidRequest(refusal),
            401 => HttpsError::Unauthorized(refusal),
            403 => HttpsError::Forbidden(refusal),
            404 => HttpsError::NotFound(refusal),
            405 => HttpsError::MethodNotAllowed(refusal),
            413 => HttpsError::PayloadTooLarge(refusal),
            429 => HttpsError::Throttling(refusal),
            500..=599 => HttpsError::ServerError(refusal),
            _ => HttpsError::Unexpected(refusal),
        }
    }

    /// IoT Core's answer, when it refused the publish.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            HttpsError::InvalidRequest(refusal)
            | HttpsError::Unauthorized(refusal)
            | HttpsError::Forbidden(refusal)
            | HttpsError::NotFound(refusal)
            | HttpsError::MethodNotAllowed(refusal)
            | HttpsError::PayloadTooLarge(refusal)
            | HttpsError::Throttling(refusal)
            | HttpsError::ServerError(refusal)
            | HttpsError::Unexpected(refusal) => Some(refusal),
            _ => None,
        }
    }

    /// The broad category, for programs and the CLI's exit codes: 401 and 403 are
    /// [`ErrorKind::TlsOrAuth`]; 429 and 5xx (worth retrying later) [`ErrorKind::Connection`];
    /// the other refusals [`ErrorKind::Rejected`]; a bad answer [`ErrorKind::Protocol`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            HttpsError::Client(error) => error.kind(),
            HttpsError::Io { .. } | HttpsError::Throttling(_) | HttpsError::ServerError(_) => {
                ErrorKind::Connection
            }
            HttpsError::NoAnswer { .. }
            | HttpsError::Unauthorized(_)
            | HttpsError::Forbidden(_) => ErrorKind::TlsOrAuth,
            HttpsError::BadResponse { .. } => ErrorKind::Protocol,
            HttpsError::InvalidRequest(_)
            | HttpsError::NotFound(_)
            | HttpsError::MethodNotAllowed(_)
            | HttpsError::PayloadTooLarge(_)
            | HttpsError::Unexpected(_) => ErrorKind::Rejected,
        }
    }
}
