//! Request documents: an update (`state.desired` and/or `state.reported`, `version`,
//! `clientToken`) and the optional `{"clientToken":…}` of a get or delete, read and checked as the
//! service does, and written as a client sends them.
//!
//! ```
//! use iot443_proto::aws::shadow::{RejectReason, SectionUpdate, UpdateRequest};
//!
//! let request = UpdateRequest::parse(br#"{"state":{"reported":{"on":true},"desired":null},"version":3}"#).unwrap();
//! assert_eq!(request.desired, SectionUpdate::Remove);
//! assert_eq!(request.version, Some(3));
//! assert_eq!(request.to_json(), br#"{"state":{"desired":null,"reported":{"on":true}},"version":3}"#);
//!
//! let refused = UpdateRequest::parse(br#"{"state":{"desired":[1,null]}}"#).unwrap_err();
//! assert_eq!(refused.reason, RejectReason::DesiredNotObject);
//! ```

use alloc::vec::Vec;

use serde_json::Value;

use super::errors::{RejectReason, Rejection};
use super::json;
use super::names::ClientToken;
use super::tree::{null_in_array, within_depth};
use super::{JsonObject, MAX_DEPTH};

/// What an update does to one section (`desired` or `reported`).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SectionUpdate {
    /// The request does not name the section.
    #[default]
    Unchanged,
    /// The request sets the section to `null`: it is removed.
    Remove,
    /// A partial update: members set to `null` are removed, objects merge, other values replace.
    Merge(JsonObject),
}

impl SectionUpdate {
    /// The section as the request writes it, or `None` when it is not named.
    pub fn to_value(&self) -> Option<Value> {
        match self {
            Self::Unchanged => None,
            Self::Remove => Some(Value::Null),
            Self::Merge(members) => Some(Value::Object(members.clone())),
        }
    }

    /// Reads `state.<section>`; `not_object` is the rejection for a value of another type.
    fn parse(value: Option<&Value>, not_object: RejectReason) -> Result<Self, RejectReason> {
        match value {
            None => Ok(Self::Unchanged),
            Some(Value::Null) => Ok(Self::Remove),
            Some(Value::Object(members)) => Ok(Self::Merge(members.clone())),
            Some(_) => Err(not_object),
        }
    }

    /// The nesting and `null`-in-array rules.
    fn check(&self) -> Result<(), RejectReason> {
        let Self::Merge(members) = self else { return Ok(()) };
        // UNCONFIRMED (AWS-IOT.md §4.3): the section object itself is level 1 and an array is a
        // level like an object, so `{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}` (6) is the deepest
        // accepted section. This is the stricter of the two readings of AWS's "maximum is 6".
        let section = Value::Object(members.clone());
        if !within_depth(&section, MAX_DEPTH) {
            return Err(RejectReason::TooDeep);
        }
        if null_in_array(&section, false) {
            return Err(RejectReason::InvalidNode);
        }
        Ok(())
    }
}

/// An update request document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateRequest {
    /// The change to `state.desired`.
    pub desired: SectionUpdate,
    /// The change to `state.reported`.
    pub reported: SectionUpdate,
    /// Apply only if the shadow is at this version (else 409 "Version conflict").
    pub version: Option<u64>,
    /// Echoed in every answer to this request.
    pub client_token: Option<ClientToken>,
}

impl UpdateRequest {
    /// Reads an update as the shadow service does. Only `state.desired`, `state.reported`,
    /// `version` and `clientToken` count; other fields are ignored (AWS-IOT.md §4.2). `state: null`
    /// is accepted and changes nothing ("setting the whole state to null does not delete the
    /// shadow"). A `null` `version` or `clientToken` reads as absent.
    ///
    /// # Errors
    /// A [`Rejection`] (400, or 415 for bytes that are not UTF-8) carrying the request's
    /// `clientToken` when that one was valid.
    pub fn parse(payload: &[u8]) -> Result<Self, Rejection> {
        let document = parse_object(payload)?;
        let client_token = client_token_of(&document)?;
        let reject = |reason| Rejection::new(reason).with_client_token(client_token.clone());
        let version = match document.get("version") {
            None | Some(Value::Null) => None,
            Some(version) => {
                Some(version.as_u64().ok_or_else(|| reject(RejectReason::InvalidVersion))?)
            }
        };
        let (desired, reported) = match document.get("state") {
            None => return Err(reject(RejectReason::MissingState)),
            Some(Value::Null) => (SectionUpdate::Unchanged, SectionUpdate::Unchanged),
            Some(Value::Object(state)) => (
                SectionUpdate::parse(state.get("desired"), RejectReason::DesiredNotObject)
                    .map_err(reject)?,
                SectionUpdate::parse(state.get("reported"), RejectReason::ReportedNotObject)
                    .map_err(reject)?,
            ),
            Some(_) => return Err(reject(RejectReason::StateNotObject)),
        };
        let request = Self { desired, reported, version, client_token };
        request.check()?;
        Ok(request)
    }

    /// Checks what the service checks before looking at the shadow: nesting depth and `null`
    /// inside arrays. [`UpdateRequest::parse`] and [`super::Shadow::update`] call it; a client can
    /// call it before sending. (The size limit needs the stored state, so only the service can
    /// apply it.)
    ///
    /// # Errors
    /// 400 "JSON contains too many levels of nesting" or "State contains an invalid node".
    pub fn check(&self) -> Result<(), Rejection> {
        self.desired
            .check()
            .and_then(|()| self.reported.check())
            .map_err(|reason| Rejection::new(reason).with_client_token(self.client_token.clone()))
    }

    /// The request document as a client publishes it on `…/update`, compact:
    /// `{"state":{"desired":…,"reported":…},"clientToken":"…","version":…}`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = json::Object::new();
        out.field_object("state", self.state_object());
        if let Some(token) = &self.client_token {
            out.field_str("clientToken", token.as_str());
        }
        if let Some(version) = self.version {
            out.field_u64("version", version);
        }
        out.finish()
    }

    /// `{"desired":…,"reported":…}` with the sections the request names, as it named them.
    pub(crate) fn state_object(&self) -> json::Object {
        let mut state = json::Object::new();
        for (key, section) in [("desired", &self.desired), ("reported", &self.reported)] {
            if let Some(value) = section.to_value() {
                state.field_value(key, &value);
            }
        }
        state
    }
}

/// Reads the `clientToken` of a get or delete request, whose payload is empty or
/// `{"clientToken":"…"}`.
///
/// ```
/// use iot443_proto::aws::shadow::request_client_token;
///
/// assert_eq!(request_client_token(b""), Ok(None));
/// assert_eq!(request_client_token(br#"{"clientToken":"abc"}"#).unwrap().unwrap().as_str(), "abc");
/// assert!(request_client_token(b"{").is_err());
/// ```
///
/// # Errors
/// 400 "Invalid JSON" or "Invalid clientToken", 415 for bytes that are not UTF-8.
pub fn request_client_token(payload: &[u8]) -> Result<Option<ClientToken>, Rejection> {
    if payload.is_empty() {
        return Ok(None);
    }
    client_token_of(&parse_object(payload)?)
}

/// The payload as a JSON object.
fn parse_object(payload: &[u8]) -> Result<JsonObject, Rejection> {
    let text = core::str::from_utf8(payload)
        .map_err(|_| Rejection::new(RejectReason::UnsupportedEncoding))?;
    match serde_json::from_str(text) {
        Ok(Value::Object(document)) => Ok(document),
        _ => Err(Rejection::new(RejectReason::InvalidJson)),
    }
}

/// The document's `clientToken`: absent, `null`, or a string of at most 64 bytes.
fn client_token_of(document: &JsonObject) -> Result<Option<ClientToken>, Rejection> {
    match document.get("clientToken") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(token)) => ClientToken::new(token.as_str())
            .map(Some)
            .map_err(|_| Rejection::new(RejectReason::InvalidClientToken)),
        Some(_) => Err(Rejection::new(RejectReason::InvalidClientToken)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn reason(payload: &str) -> RejectReason {
        match UpdateRequest::parse(payload.as_bytes()) {
            Err(rejection) => rejection.reason,
            Ok(request) => panic!("{payload} was accepted as {request:?}"),
        }
    }

    #[test]
    fn malformed_updates_get_the_texts_of_section_4_4() {
        assert_eq!(reason("{"), RejectReason::InvalidJson);
        assert_eq!(reason("[1]"), RejectReason::InvalidJson);
        assert_eq!(reason(r#"{"version":1}"#), RejectReason::MissingState);
        assert_eq!(reason(r#"{"state":3}"#), RejectReason::StateNotObject);
        assert_eq!(reason(r#"{"state":{"desired":"x"}}"#), RejectReason::DesiredNotObject);
        assert_eq!(reason(r#"{"state":{"reported":[1]}}"#), RejectReason::ReportedNotObject);
        assert_eq!(reason(r#"{"state":{},"version":-1}"#), RejectReason::InvalidVersion);
        assert_eq!(reason(r#"{"state":{},"version":"1"}"#), RejectReason::InvalidVersion);
        assert_eq!(reason(r#"{"state":{},"clientToken":7}"#), RejectReason::InvalidClientToken);
        assert_eq!(reason(r#"{"state":{"reported":{"a":[1,null]}}}"#), RejectReason::InvalidNode);
        assert_eq!(
            UpdateRequest::parse(b"{\"state\":\xff}").map_err(|r| r.reason),
            Err(RejectReason::UnsupportedEncoding)
        );
    }

    #[test]
    fn a_rejection_echoes_a_valid_token_and_a_65_byte_token_is_refused() {
        let refused = UpdateRequest::parse(br#"{"clientToken":"t","state":5}"#).unwrap_err();
        assert_eq!(refused.client_token.map(|t| String::from(t.as_str())), Some("t".into()));
        let long = alloc::format!(r#"{{"clientToken":"{}","state":{{}}}}"#, "x".repeat(65));
        assert_eq!(reason(&long), RejectReason::InvalidClientToken);
        let limit = alloc::format!(r#"{{"clientToken":"{}","state":{{}}}}"#, "x".repeat(64));
        assert!(UpdateRequest::parse(limit.as_bytes()).is_ok());
    }

    #[test]
    fn other_fields_are_ignored_and_state_null_changes_nothing() {
        let request =
            UpdateRequest::parse(br#"{"state":{"delta":{"a":1},"desired":{"b":2}},"metadata":{}}"#)
                .unwrap();
        assert_eq!(request.reported, SectionUpdate::Unchanged);
        assert!(matches!(request.desired, SectionUpdate::Merge(_)));
        let request = UpdateRequest::parse(br#"{"state":null}"#).unwrap();
        assert_eq!(
            (request.desired, request.reported),
            (SectionUpdate::Unchanged, SectionUpdate::Unchanged)
        );
    }

    #[test]
    fn depth_six_is_accepted_and_seven_refused() {
        assert!(
            UpdateRequest::parse(br#"{"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}}"#)
                .is_ok()
        );
        assert_eq!(
            reason(r#"{"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}}"#),
            RejectReason::TooDeep
        );
        // Arrays count as a level.
        assert_eq!(
            reason(r#"{"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":[1]}}}}}}}}"#),
            RejectReason::TooDeep
        );
    }
}
