//! What can go wrong with a shadow request: a request the client refuses to send (with the limit
//! it hit), the service's rejection, no answer in time, an answer that cannot be read, or the
//! client itself.

use crate::error::{ClientError, ErrorKind};
use iot443_proto::aws::shadow::{NameError, RejectReason, ShadowId, ShadowOperation};
use std::time::Duration;

/// Why a shadow operation failed.
///
/// [`ShadowError::kind`] gives the broad category; the `iot443` command exits with its
/// [`exit_code`](ErrorKind::exit_code): 7 for a rejection, 2 for a request refused before
/// sending, 4 for a timeout.
///
/// ```
/// use iot443::shadow::{ShadowError, ShadowOperation};
///
/// let error = ShadowError::Rejected {
///     operation: ShadowOperation::Update,
///     shadow: "tls-test".into(),
///     code: 409,
///     message: "Version conflict".into(),
/// };
/// assert_eq!(error.to_string(), "shadow update of tls-test rejected: 409 Version conflict");
/// assert_eq!(error.kind().exit_code(), 7);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum ShadowError {
    /// A thing or shadow name breaks AWS's rules (nothing was sent).
    #[error("invalid shadow: {0}; nothing was sent")]
    InvalidName(#[from] NameError),
    /// The request breaks a rule the client can check itself (nothing was sent).
    #[error("shadow {} of {shadow} not sent: {problem}", operation.as_str())]
    InvalidRequest {
        /// The operation.
        operation: ShadowOperation,
        /// The shadow, as [`Shadow::label`](crate::shadow::Shadow::label) writes it.
        shadow: String,
        /// What is wrong, with the limit that was hit.
        problem: RequestProblem,
    },
    /// The shadow service refused the request (its error document on `…/rejected`).
    #[error("shadow {} of {shadow} rejected: {code} {message}", operation.as_str())]
    Rejected {
        /// The operation.
        operation: ShadowOperation,
        /// The shadow, as [`Shadow::label`](crate::shadow::Shadow::label) writes it.
        shadow: String,
        /// The HTTP status code: 400, 401, 403, 404, 409, 413, 415, 429, 500.
        code: u16,
        /// The service's message, e.g. "Version conflict".
        message: String,
    },
    /// No answer came within the request timeout. The request may still have been applied
    /// (an answer lost with a connection, say): get the document to know.
    #[error(
        "no answer to the shadow {} of {shadow} within {after:?}; the service may be slow or the \
         answer lost with the connection: get the document to see whether it was applied, or \
         raise the timeout",
        operation.as_str()
    )]
    Timeout {
        /// The operation.
        operation: ShadowOperation,
        /// The shadow, as [`Shadow::label`](crate::shadow::Shadow::label) writes it.
        shadow: String,
        /// The timeout.
        after: Duration,
    },
    /// The answer on `topic` could not be read as the document it should be.
    #[error("unreadable answer on {topic}: {detail}")]
    UnreadableAnswer {
        /// The topic it came on.
        topic: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The client failed: subscribing, publishing, or the connection.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// What is wrong with a request the client refused to send.
///
/// ```
/// use iot443::shadow::{RequestProblem, ShadowUpdate};
///
/// let problem = ShadowUpdate::new().reported(serde_json::json!([1])).check().unwrap_err();
/// assert_eq!(problem, RequestProblem::NotAnObject { section: "reported" });
/// assert_eq!(problem.to_string(), "state.reported must be a JSON object, or null to remove it");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestProblem {
    /// A request document that is not JSON (or not a JSON object).
    #[error("the request document is not a JSON object: {0}")]
    InvalidJson(String),
    /// `desired` or `reported` is neither a JSON object nor `null`.
    #[error("state.{section} must be a JSON object, or null to remove it")]
    NotAnObject {
        /// `"desired"` or `"reported"`.
        section: &'static str,
    },
    /// The update names neither `desired` nor `reported`.
    #[error("the update names neither desired nor reported; give at least one")]
    NothingToUpdate,
    /// A `clientToken` longer than AWS accepts.
    #[error("clientToken is {len} bytes long, at most {max} allowed")]
    ClientTokenTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit ([`MAX_CLIENT_TOKEN_BYTES`](iot443_proto::aws::shadow::MAX_CLIENT_TOKEN_BYTES)).
        max: usize,
    },
    /// A `clientToken` already used by a request of this handle still waiting for its answer.
    #[error("clientToken {0:?} is already used by a request waiting for its answer")]
    ClientTokenInUse(String),
    /// `desired` plus `reported` would take more than AWS's limit.
    #[error(
        "desired and reported take {size} bytes as compact JSON, more than the {max} bytes a shadow may hold"
    )]
    TooLarge {
        /// Their size, compact, after removing the `null`s.
        size: usize,
        /// The limit ([`MAX_STATE_BYTES`](iot443_proto::aws::shadow::MAX_STATE_BYTES)).
        max: usize,
    },
    /// `desired` or `reported` nests deeper than AWS accepts.
    #[error(
        "state nests more than {max} levels deep (the section counts as one, each object or array one more)"
    )]
    TooDeep {
        /// The limit ([`MAX_DEPTH`](iot443_proto::aws::shadow::MAX_DEPTH)).
        max: usize,
    },
    /// Another rule of the service, with its text (`null` inside an array, `version` not a
    /// number, a missing `state`, …).
    #[error("the service would refuse it: {0}")]
    Refused(RejectReason),
}

impl ShadowError {
    /// The broad category: [`ErrorKind::Rejected`] for the service's rejection,
    /// [`ErrorKind::Usage`] for a request refused before sending, [`ErrorKind::Connection`] for
    /// a timeout, [`ErrorKind::Protocol`] for an unreadable answer, the client's own otherwise.
    ///
    /// ```
    /// use iot443::ErrorKind;
    /// use iot443::shadow::{ShadowError, ThingName};
    ///
    /// let error = ShadowError::from(ThingName::new("a/b").unwrap_err());
    /// assert_eq!(error.kind(), ErrorKind::Usage);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            ShadowError::InvalidName(_) | ShadowError::InvalidRequest { .. } => ErrorKind::Usage,
            ShadowError::Rejected { .. } => ErrorKind::Rejected,
            ShadowError::Timeout { .. } => ErrorKind::Connection,
            ShadowError::UnreadableAnswer { .. } => ErrorKind::Protocol,
            ShadowError::Client(error) => error.kind(),
        }
    }

    /// The HTTP status code of a rejection, `None` for other failures.
    ///
    /// ```
    /// # use iot443::shadow::{ShadowError, ShadowOperation};
    /// let error = ShadowError::Rejected {
    ///     operation: ShadowOperation::Get,
    ///     shadow: "lamp".into(),
    ///     code: 404,
    ///     message: "No shadow exists with name: 'lamp'".into(),
    /// };
    /// assert_eq!(error.rejection_code(), Some(404));
    /// ```
    pub fn rejection_code(&self) -> Option<u16> {
        match self {
            ShadowError::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// How errors name a shadow: `lamp` for a thing's classic shadow, `lamp (named shadow config)`
/// for a named one.
pub(crate) fn label(id: &ShadowId) -> String {
    match id.name() {
        None => id.thing().to_string(),
        Some(name) => format!("{} (named shadow {name})", id.thing()),
    }
}
