//! Device Shadow (AWS-IOT.md §4): the document logic, once, for the client and the emulator.
//!
//! * [`topics`]: `$aws/things/<thing>/shadow[/name/<shadow>]/…` parsed and built ([`ShadowTopic`]).
//! * [`names`]: thing names, shadow names and `clientToken`s, checked when built.
//! * [`request`]: update requests read and checked as the service does ([`UpdateRequest`]).
//! * [`document`]: one [`Shadow`]: partial updates with `null` deletion, arrays replaced whole,
//!   per-leaf metadata, `version`, the delta, the 8 KB and nesting limits, and every answer as
//!   compact JSON shaped as AWS sends it.
//! * [`operation`]: one request of any operation run on a shadow ([`Shadow::answer`]).
//! * [`errors`]: [`Rejection`]s with the codes and texts AWS uses, and their error documents.
//!
//! Timestamps are unix seconds passed in by the caller. JSON values are `serde_json`'s, built
//! without `std`; objects keep their members sorted by key, so output is deterministic.
//!
//! # Example: the service side of an update, then a get
//!
//! ```
//! use iot443_proto::aws::shadow::{Shadow, ShadowTopic, UpdateRequest, RejectReason};
//!
//! let topic = ShadowTopic::parse("$aws/things/lamp/shadow/update").unwrap();
//! let mut shadow = Shadow::new();
//!
//! let request = UpdateRequest::parse(br#"{"state":{"reported":{"on":false}}}"#).unwrap();
//! let answers = shadow.update(&request, 1_700_000_000).unwrap();
//! assert_eq!(answers.version, 1);
//! assert!(answers.delta.is_none());
//!
//! // A stale version is refused and the error document says so.
//! let stale = UpdateRequest::parse(br#"{"state":{"desired":{"on":true}},"version":0,"clientToken":"x"}"#).unwrap();
//! let rejection = shadow.update(&stale, 1_700_000_001).unwrap_err();
//! assert_eq!(rejection.reason, RejectReason::VersionConflict);
//! assert_eq!(
//!     rejection.to_json(Some(1_700_000_001)),
//!     br#"{"code":409,"message":"Version conflict","timestamp":1700000001,"clientToken":"x"}"#
//! );
//!
//! let got = shadow.get(&topic.id, None, 1_700_000_002).unwrap();
//! assert_eq!(
//!     got,
//!     br#"{"state":{"reported":{"on":false}},"metadata":{"reported":{"on":{"timestamp":1700000000}}},"version":1,"timestamp":1700000002}"#
//! );
//! ```

pub mod document;
pub mod errors;
mod json;
pub mod names;
pub mod operation;
pub mod request;
pub mod topics;
mod tree;

pub use document::{MAX_DEPTH, MAX_STATE_BYTES, Shadow, StoredShadowError, UpdateAnswers};
pub use errors::{ErrorDocument, ErrorDocumentError, RejectReason, Rejection};
pub use names::{
    ClientToken, MAX_CLIENT_TOKEN_BYTES, MAX_SHADOW_NAME_LEN, MAX_THING_NAME_LEN, NameError,
    ShadowName, ThingName,
};
pub use operation::Answered;
pub use request::{SectionUpdate, UpdateRequest, request_client_token};
pub use topics::{ShadowId, ShadowOperation, ShadowSuffix, ShadowTopic, ShadowTopicError};

/// A JSON object: `serde_json`'s map, members sorted by key.
pub type JsonObject = serde_json::Map<alloc::string::String, serde_json::Value>;
