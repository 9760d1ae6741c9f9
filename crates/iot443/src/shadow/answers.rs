//! The service's answers, read into types: the document of a get, the accepted answer of an
//! update or a delete, a delta, a `documents` message. Each keeps the payload as it came
//! (`raw`), for programs that print or forward it.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

/// `state` of a shadow document: each section as a JSON object, `None` when absent.
///
/// ```
/// use iot443::shadow::ShadowDocument;
///
/// let document = ShadowDocument::parse(br#"{"state":{"reported":{"on":true}},"version":2}"#).unwrap();
/// assert_eq!(document.state.reported, Some(serde_json::json!({"on": true})));
/// assert_eq!((document.state.desired, document.state.delta), (None, None));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ShadowState {
    /// What the application wants. In an update's acceptance, `Some(Value::Null)` when the
    /// update removed the section.
    #[serde(deserialize_with = "present")]
    pub desired: Option<Value>,
    /// What the device reports (`Some(Value::Null)` as for `desired`).
    #[serde(deserialize_with = "present")]
    pub reported: Option<Value>,
    /// The desired members that differ from reported (only in a get's answer).
    pub delta: Option<Value>,
}

/// The whole document, as `…/get/accepted` carries it.
///
/// ```
/// use iot443::shadow::ShadowDocument;
///
/// let payload = br#"{"state":{"desired":{"on":true},"delta":{"on":true}},"metadata":{"desired":{"on":{"timestamp":100}}},"version":1,"timestamp":101}"#;
/// let document = ShadowDocument::parse(payload).unwrap();
/// assert_eq!(document.version, 1);
/// assert_eq!(document.state.delta, Some(serde_json::json!({"on": true})));
/// assert_eq!(document.state.reported, None);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ShadowDocument {
    /// `desired`, `reported` and `delta`.
    pub state: ShadowState,
    /// Per-leaf `{"timestamp": …}` mirroring the state, when sent.
    pub metadata: Option<Value>,
    /// The shadow's version.
    pub version: u64,
    /// When the service answered, in unix seconds (0 when absent).
    pub timestamp: u64,
    /// The request's `clientToken`.
    pub client_token: Option<String>,
    /// The payload as the service sent it.
    pub raw: Bytes,
}

/// The answer on `…/update/accepted`: the sections the update named, their metadata and the new
/// version.
///
/// ```
/// use iot443::shadow::UpdateAccepted;
///
/// let accepted = UpdateAccepted::parse(br#"{"state":{"reported":{"on":true}},"metadata":{"reported":{"on":{"timestamp":5}}},"version":3,"timestamp":5,"clientToken":"t"}"#).unwrap();
/// assert_eq!((accepted.version, accepted.client_token.as_deref()), (3, Some("t")));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UpdateAccepted {
    /// The sections as the request named them (`desired`, `reported`).
    pub state: ShadowState,
    /// Their metadata.
    pub metadata: Option<Value>,
    /// The shadow's version after the update.
    pub version: u64,
    /// When the service answered, in unix seconds (0 when absent).
    pub timestamp: u64,
    /// The request's `clientToken`.
    pub client_token: Option<String>,
    /// The payload as the service sent it.
    pub raw: Bytes,
}

/// The answer on `…/delete/accepted`.
///
/// ```
/// use iot443::shadow::DeleteAccepted;
///
/// let deleted = DeleteAccepted::parse(br#"{"version":4,"timestamp":7}"#).unwrap();
/// assert_eq!(deleted.version, 4);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeleteAccepted {
    /// The version of the deleted shadow (kept: a new shadow continues from it).
    pub version: u64,
    /// When the service answered, in unix seconds (0 when absent).
    pub timestamp: u64,
    /// The request's `clientToken`.
    pub client_token: Option<String>,
    /// The payload as the service sent it.
    pub raw: Bytes,
}

/// A message on `…/update/delta`: the desired members that differ from reported.
///
/// ```
/// use iot443::shadow::ShadowDelta;
///
/// let delta = ShadowDelta::parse(br#"{"version":4,"timestamp":9,"state":{"windowOpen":true},"metadata":{"windowOpen":{"timestamp":9}}}"#).unwrap();
/// assert_eq!((delta.version, delta.state["windowOpen"].as_bool()), (4, Some(true)));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ShadowDelta {
    /// The shadow's version.
    pub version: u64,
    /// The differing desired members, nested paths kept (a JSON object).
    pub state: Value,
    /// Their metadata.
    pub metadata: Option<Value>,
    /// When the service sent it, in unix seconds (0 when absent).
    pub timestamp: u64,
    /// The `clientToken` of the update that caused it.
    pub client_token: Option<String>,
    /// The payload as the service sent it.
    pub raw: Bytes,
}

/// One side of a `documents` message.
///
/// ```
/// use iot443::shadow::ShadowDocuments;
///
/// let message = ShadowDocuments::parse(br#"{"previous":{"state":{"reported":{"on":false}},"version":1},"current":{"state":{"reported":{"on":true}},"version":2},"timestamp":9}"#).unwrap();
/// let (before, after) = (message.previous.unwrap(), message.current);
/// assert_eq!((before.version, after.version), (1, 2));
/// assert_eq!(after.state.reported, Some(serde_json::json!({"on": true})));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct DocumentSnapshot {
    /// `desired` and `reported`.
    pub state: ShadowState,
    /// Their metadata.
    pub metadata: Option<Value>,
    /// The version of this side.
    pub version: u64,
}

/// A message on `…/update/documents`: the shadow before and after an accepted update.
///
/// ```
/// use iot443::shadow::ShadowDocuments;
///
/// let created = ShadowDocuments::parse(br#"{"current":{"state":{"reported":{"on":true}},"version":1},"timestamp":9}"#).unwrap();
/// assert!(created.previous.is_none(), "the update created the shadow");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ShadowDocuments {
    /// The shadow before the update; `None` when the update created it.
    pub previous: Option<DocumentSnapshot>,
    /// The shadow after the update.
    pub current: DocumentSnapshot,
    /// When the service sent it, in unix seconds (0 when absent).
    pub timestamp: u64,
    /// The `clientToken` of the update.
    pub client_token: Option<String>,
    /// The payload as the service sent it.
    pub raw: Bytes,
}

/// `Some` for a member that is there, `null` included (`Option`'s own reading makes `null`
/// `None`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// The fields every answer may carry, as JSON reads them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default)]
    state: Option<Value>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(default)]
    client_token: Option<String>,
    #[serde(default)]
    previous: Option<DocumentSnapshot>,
    #[serde(default)]
    current: Option<DocumentSnapshot>,
}

impl Wire {
    fn read(payload: &[u8]) -> Result<Wire, String> {
        serde_json::from_slice(payload).map_err(|error| format!("not a shadow document: {error}"))
    }

    fn state(&mut self) -> Result<ShadowState, String> {
        match self.state.take() {
            None | Some(Value::Null) => Ok(ShadowState::default()),
            Some(state) => serde_json::from_value(state)
                .map_err(|error| format!("\"state\" is not an object of sections: {error}")),
        }
    }

    fn version(&self) -> Result<u64, String> {
        self.version.ok_or_else(|| "no \"version\"".to_owned())
    }
}

impl ShadowDocument {
    /// Reads the payload of `…/get/accepted`.
    ///
    /// # Errors
    /// What is wrong, when it is not JSON or lacks `version`.
    pub fn parse(payload: &[u8]) -> Result<Self, String> {
        let mut wire = Wire::read(payload)?;
        Ok(Self {
            state: wire.state()?,
            version: wire.version()?,
            metadata: wire.metadata,
            timestamp: wire.timestamp.unwrap_or_default(),
            client_token: wire.client_token,
            raw: Bytes::copy_from_slice(payload),
        })
    }
}

impl UpdateAccepted {
    /// Reads the payload of `…/update/accepted` (the fields of a document's, so read alike).
    ///
    /// # Errors
    /// What is wrong, when it is not JSON or lacks `version`.
    pub fn parse(payload: &[u8]) -> Result<Self, String> {
        let ShadowDocument { state, metadata, version, timestamp, client_token, raw } =
            ShadowDocument::parse(payload)?;
        Ok(Self { state, metadata, version, timestamp, client_token, raw })
    }
}

impl DeleteAccepted {
    /// Reads the payload of `…/delete/accepted`.
    ///
    /// # Errors
    /// What is wrong, when it is not JSON or lacks `version`.
    pub fn parse(payload: &[u8]) -> Result<Self, String> {
        let wire = Wire::read(payload)?;
        Ok(Self {
            version: wire.version()?,
            timestamp: wire.timestamp.unwrap_or_default(),
            client_token: wire.client_token,
            raw: Bytes::copy_from_slice(payload),
        })
    }
}

impl ShadowDelta {
    /// Reads the payload of `…/update/delta`.
    ///
    /// # Errors
    /// What is wrong, when it is not JSON, lacks `version` or has no object `state`.
    pub fn parse(payload: &[u8]) -> Result<Self, String> {
        let wire = Wire::read(payload)?;
        let version = wire.version()?;
        let state = match wire.state {
            Some(state @ Value::Object(_)) => state,
            _ => return Err("\"state\" is not a JSON object".to_owned()),
        };
        Ok(Self {
            version,
            state,
            metadata: wire.metadata,
            timestamp: wire.timestamp.unwrap_or_default(),
            client_token: wire.client_token,
            raw: Bytes::copy_from_slice(payload),
        })
    }
}

impl ShadowDocuments {
    /// Reads the payload of `…/update/documents`.
    ///
    /// # Errors
    /// What is wrong, when it is not JSON or lacks `current`.
    pub fn parse(payload: &[u8]) -> Result<Self, String> {
        let wire = Wire::read(payload)?;
        Ok(Self {
            current: wire.current.ok_or_else(|| "no \"current\"".to_owned())?,
            previous: wire.previous,
            timestamp: wire.timestamp.unwrap_or_default(),
            client_token: wire.client_token,
            raw: Bytes::copy_from_slice(payload),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn answers_without_their_required_fields_are_refused() {
        assert!(ShadowDocument::parse(b"{}").is_err());
        assert!(ShadowDocument::parse(b"nope").is_err());
        assert!(ShadowDelta::parse(br#"{"version":1,"state":3}"#).is_err());
        assert!(ShadowDocuments::parse(br#"{"timestamp":1}"#).is_err());
        assert!(ShadowDocument::parse(br#"{"state":{"desired":5},"version":1}"#).is_ok());
    }

    #[test]
    fn a_documents_message_of_a_new_shadow_has_no_previous() {
        let documents = ShadowDocuments::parse(
            br#"{"current":{"state":{"reported":{"a":1}},"metadata":{},"version":1},"timestamp":5,"clientToken":"t"}"#,
        )
        .unwrap();
        assert_eq!(documents.previous, None);
        assert_eq!(documents.current.version, 1);
        assert_eq!(documents.client_token.as_deref(), Some("t"));
        let removed = UpdateAccepted::parse(br#"{"state":{"desired":null},"version":2}"#).unwrap();
        assert_eq!((removed.state.desired, removed.state.reported), (Some(Value::Null), None));
        let accepted = DeleteAccepted::parse(br#"{"version":3,"timestamp":7}"#).unwrap();
        assert_eq!((accepted.version, accepted.timestamp), (3, 7));
    }
}
