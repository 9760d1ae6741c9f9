//! Rejections: why the shadow service refuses a request, with the code and text of AWS-IOT.md §4.4,
//! and the error document published on `…/rejected`.
//!
//! ```
//! use iot443_proto::aws::shadow::{ClientToken, ErrorDocument, RejectReason, Rejection};
//!
//! let rejection = Rejection::new(RejectReason::VersionConflict)
//!     .with_client_token(Some(ClientToken::new("t1").unwrap()));
//! let json = rejection.to_json(Some(1_700_000_000));
//! assert_eq!(
//!     json,
//!     br#"{"code":409,"message":"Version conflict","timestamp":1700000000,"clientToken":"t1"}"#
//! );
//!
//! // The client reads it back.
//! let document = ErrorDocument::parse(&json).unwrap();
//! assert_eq!((document.code, document.message.as_str()), (409, "Version conflict"));
//! ```

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::Value;

use super::document::MAX_DEPTH;
use super::json;
use super::names::ClientToken;

/// Why the shadow service refuses a request; `Display` is the message AWS sends.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// 400: the payload is not JSON, or not a JSON object.
    #[error("Invalid JSON")]
    InvalidJson,
    /// 400: an update without `state`.
    #[error("Missing required node: state")]
    MissingState,
    /// 400: `state` is neither an object nor `null`.
    #[error("State node must be an object")]
    StateNotObject,
    /// 400: `state.desired` is neither an object nor `null`.
    #[error("Desired node must be an object")]
    DesiredNotObject,
    /// 400: `state.reported` is neither an object nor `null`.
    #[error("Reported node must be an object")]
    ReportedNotObject,
    /// 400: `version` is not a non-negative integer.
    #[error("Invalid version")]
    InvalidVersion,
    /// 400: `clientToken` is not a string or is longer than 64 bytes.
    #[error("Invalid clientToken")]
    InvalidClientToken,
    /// 400: `desired` or `reported` nests deeper than [`MAX_DEPTH`].
    #[error("JSON contains too many levels of nesting; maximum is {MAX_DEPTH}")]
    TooDeep,
    /// 400: the state holds something the service does not store, such as `null` inside an array.
    #[error("State contains an invalid node")]
    InvalidNode,
    /// 401.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403.
    #[error("Forbidden")]
    Forbidden,
    /// 404: the thing does not exist.
    #[error("Thing not found")]
    ThingNotFound,
    /// 404: get or delete of a shadow that does not exist (or was deleted). `name` is the shadow's
    /// name for a named shadow and the thing's name for the classic one.
    ///
    /// UNCONFIRMED: AWS-IOT.md §4.4 gives the text without saying which name the classic shadow
    /// reports; the thing name is what the REST examples of S13 imply.
    #[error("No shadow exists with name: '{name}'")]
    NoShadow {
        /// The shadow (or, for the classic shadow, the thing) name.
        name: String,
    },
    /// 409: the request's `version` is not the shadow's current version.
    #[error("Version conflict")]
    VersionConflict,
    /// 413: `desired` plus `reported` would exceed [`MAX_STATE_BYTES`](super::MAX_STATE_BYTES).
    #[error("The payload exceeds the maximum size allowed")]
    PayloadTooLarge,
    /// 415: the payload is not UTF-8.
    #[error("Unsupported documented encoding; supported encoding is UTF-8")]
    UnsupportedEncoding,
    /// 429: more than 10 requests in flight on one connection.
    ///
    /// UNCONFIRMED: AWS-IOT.md §4.4 gives the code without its text; this is the HTTP reason
    /// phrase.
    #[error("Too Many Requests")]
    TooManyRequests,
    /// 500.
    #[error("Internal service failure")]
    InternalFailure,
}

impl RejectReason {
    /// The HTTP status code AWS puts in the error document's `code`.
    pub fn code(&self) -> u16 {
        match self {
            Self::InvalidJson
            | Self::MissingState
            | Self::StateNotObject
            | Self::DesiredNotObject
            | Self::ReportedNotObject
            | Self::InvalidVersion
            | Self::InvalidClientToken
            | Self::TooDeep
            | Self::InvalidNode => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::ThingNotFound | Self::NoShadow { .. } => 404,
            Self::VersionConflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedEncoding => 415,
            Self::TooManyRequests => 429,
            Self::InternalFailure => 500,
        }
    }
}

/// A refused request: the reason and the request's `clientToken`, when it had a valid one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {reason}", reason.code())]
pub struct Rejection {
    /// Why the request was refused.
    pub reason: RejectReason,
    /// The request's token, echoed in the error document.
    pub client_token: Option<ClientToken>,
}

impl Rejection {
    /// A rejection without a client token.
    pub fn new(reason: RejectReason) -> Self {
        Self { reason, client_token: None }
    }

    /// The same rejection echoing `client_token`.
    #[must_use]
    pub fn with_client_token(mut self, client_token: Option<ClientToken>) -> Self {
        self.client_token = client_token;
        self
    }

    /// The HTTP status code of the reason.
    pub fn code(&self) -> u16 {
        self.reason.code()
    }

    /// The error document as AWS publishes it on `…/rejected`, compact:
    /// `{"code":…,"message":"…","timestamp":…,"clientToken":"…"}` (`timestamp` and `clientToken`
    /// only when known).
    pub fn to_json(&self, timestamp: Option<u64>) -> Vec<u8> {
        let mut out = json::Object::new();
        out.field_u64("code", u64::from(self.code()));
        out.field_str("message", &self.reason.to_string());
        if let Some(timestamp) = timestamp {
            out.field_u64("timestamp", timestamp);
        }
        if let Some(token) = &self.client_token {
            out.field_str("clientToken", token.as_str());
        }
        out.finish()
    }
}

impl From<RejectReason> for Rejection {
    fn from(reason: RejectReason) -> Self {
        Self::new(reason)
    }
}

/// An error document as a client receives it on `…/rejected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDocument {
    /// The HTTP status code (400, 404, 409, …).
    pub code: u16,
    /// AWS's message.
    pub message: String,
    /// When the service answered, in unix seconds (AWS does not always send it).
    pub timestamp: Option<u64>,
    /// The request's token.
    pub client_token: Option<String>,
}

/// Why an error document could not be read.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorDocumentError {
    /// The payload is not a JSON object.
    #[error("shadow error document is not a JSON object")]
    NotAnObject,
    /// `code` is missing or not an integer from 100 to 599.
    #[error("shadow error document has no valid \"code\" (an HTTP status)")]
    InvalidCode,
}

impl ErrorDocument {
    /// Reads an error document. A missing `message` reads as empty; unknown fields are ignored.
    ///
    /// # Errors
    /// [`ErrorDocumentError`] when the payload is not an object or has no valid `code`.
    pub fn parse(payload: &[u8]) -> Result<Self, ErrorDocumentError> {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(payload) else {
            return Err(ErrorDocumentError::NotAnObject);
        };
        let code = map
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|code| u16::try_from(code).ok())
            .filter(|code| (100..600).contains(code))
            .ok_or(ErrorDocumentError::InvalidCode)?;
        Ok(Self {
            code,
            message: map.get("message").and_then(Value::as_str).unwrap_or_default().into(),
            timestamp: map.get("timestamp").and_then(Value::as_u64),
            client_token: map.get("clientToken").and_then(Value::as_str).map(Into::into),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_the_code_of_section_4_4() {
        let table = [
            (RejectReason::InvalidJson, 400, "Invalid JSON"),
            (RejectReason::MissingState, 400, "Missing required node: state"),
            (RejectReason::TooDeep, 400, "JSON contains too many levels of nesting; maximum is 6"),
            (RejectReason::Unauthorized, 401, "Unauthorized"),
            (RejectReason::Forbidden, 403, "Forbidden"),
            (
                RejectReason::NoShadow { name: "lamp".into() },
                404,
                "No shadow exists with name: 'lamp'",
            ),
            (RejectReason::VersionConflict, 409, "Version conflict"),
            (RejectReason::PayloadTooLarge, 413, "The payload exceeds the maximum size allowed"),
            (RejectReason::TooManyRequests, 429, "Too Many Requests"),
            (RejectReason::InternalFailure, 500, "Internal service failure"),
        ];
        for (reason, code, message) in table {
            assert_eq!((reason.code(), reason.to_string().as_str()), (code, message));
        }
    }

    #[test]
    fn an_error_document_without_timestamp_or_token_has_only_code_and_message() {
        let json = Rejection::new(RejectReason::InvalidJson).to_json(None);
        assert_eq!(json, br#"{"code":400,"message":"Invalid JSON"}"#);
    }

    #[test]
    fn error_documents_without_a_valid_code_are_refused() {
        assert_eq!(ErrorDocument::parse(b"[]"), Err(ErrorDocumentError::NotAnObject));
        assert_eq!(
            ErrorDocument::parse(br#"{"message":"x"}"#),
            Err(ErrorDocumentError::InvalidCode)
        );
        assert_eq!(
            ErrorDocument::parse(br#"{"code":70000}"#),
            Err(ErrorDocumentError::InvalidCode)
        );
    }
}
