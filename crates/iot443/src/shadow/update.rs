//! [`ShadowUpdate`]: an update request, checked against the service's rules before it is sent.

use super::error::RequestProblem;
use iot443_proto::aws::shadow::{
    ClientToken, MAX_CLIENT_TOKEN_BYTES, MAX_DEPTH, MAX_STATE_BYTES, NameError, RejectReason,
    SectionUpdate, UpdateRequest,
};
use serde_json::Value;

/// An update of a shadow: `desired` and/or `reported` (each a JSON object merged into the
/// stored one, members set to `null` removed, or `null` to remove the whole section), and
/// optionally the `version` the shadow must be at (else 409 "Version conflict").
///
/// ```
/// use iot443::shadow::ShadowUpdate;
/// use serde_json::json;
///
/// // The device reports; a stale version would be refused.
/// let update = ShadowUpdate::new().reported(json!({"temperature": 21, "windowOpen": false})).version(7);
/// assert!(update.check().is_ok());
/// // The application removes the whole desired section.
/// assert!(ShadowUpdate::new().desired(serde_json::Value::Null).check().is_ok());
/// // Not an object: refused before anything is sent.
/// assert!(ShadowUpdate::new().desired(json!([1, 2])).check().is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShadowUpdate {
    desired: Option<Value>,
    reported: Option<Value>,
    version: Option<u64>,
    client_token: Option<String>,
}

impl ShadowUpdate {
    /// An update that names no section yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `state.desired`: an object (merged) or `null` (the section removed).
    #[must_use]
    pub fn desired(mut self, desired: Value) -> Self {
        self.desired = Some(desired);
        self
    }

    /// Sets `state.reported`: an object (merged) or `null` (the section removed).
    #[must_use]
    pub fn reported(mut self, reported: Value) -> Self {
        self.reported = Some(reported);
        self
    }

    /// Applies the update only if the shadow is at `version` (else 409 "Version conflict").
    #[must_use]
    pub fn version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// Uses `token` as the request's `clientToken` instead of a generated one: at most 64
    /// bytes, and not the token of another request of the same handle still in flight.
    #[must_use]
    pub fn client_token(mut self, token: impl Into<String>) -> Self {
        self.client_token = Some(token.into());
        self
    }

    /// Reads a whole request document, as published on `…/update`
    /// (`{"state":{"desired":…,"reported":…},"version":…,"clientToken":…}`), with the
    /// service's own rules; fields other than these are ignored, as the service does.
    ///
    /// ```
    /// use iot443::shadow::{RequestProblem, ShadowUpdate};
    ///
    /// let update = ShadowUpdate::from_json(br#"{"state":{"desired":{"on":true}},"version":2}"#)?;
    /// assert!(update.check().is_ok());
    /// assert!(matches!(ShadowUpdate::from_json(b"{"), Err(RequestProblem::InvalidJson(_))));
    /// assert_eq!(
    ///     ShadowUpdate::from_json(br#"{"state":{"desired":3}}"#),
    ///     Err(RequestProblem::NotAnObject { section: "desired" })
    /// );
    /// # Ok::<(), RequestProblem>(())
    /// ```
    ///
    /// # Errors
    /// [`RequestProblem`]: not JSON, no `state`, a section that is not an object, a 65-byte
    /// `clientToken`, too deep, …
    pub fn from_json(document: &[u8]) -> Result<Self, RequestProblem> {
        // The JSON itself first, for an error that says where it breaks.
        serde_json::from_slice::<Value>(document)
            .map_err(|error| RequestProblem::InvalidJson(error.to_string()))?;
        let request =
            UpdateRequest::parse(document).map_err(|rejection| problem(rejection.reason))?;
        Ok(Self {
            desired: request.desired.to_value(),
            reported: request.reported.to_value(),
            version: request.version,
            client_token: request.client_token.map(|token| token.as_str().to_owned()),
        })
    }

    /// The `clientToken` the caller chose, if any.
    pub fn token(&self) -> Option<&str> {
        self.client_token.as_deref()
    }

    /// Checks what the client can know before sending: at least one section, each an object
    /// or `null`, the nesting limit, no `null` inside arrays, a token of at most 64 bytes, and
    /// `desired` plus `reported` within [`MAX_STATE_BYTES`] (counting what the request stores:
    /// what is stored already only the service knows, and it answers 413 for it).
    ///
    /// # Errors
    /// The [`RequestProblem`] with the limit that was hit.
    pub fn check(&self) -> Result<(), RequestProblem> {
        self.request(None).map(drop)
    }

    /// The request to publish, with `token` when given (else the chosen one), checked as by
    /// [`check`](ShadowUpdate::check).
    pub(crate) fn request(&self, token: Option<&str>) -> Result<UpdateRequest, RequestProblem> {
        let desired = section(self.desired.as_ref(), "desired")?;
        let reported = section(self.reported.as_ref(), "reported")?;
        if desired == SectionUpdate::Unchanged && reported == SectionUpdate::Unchanged {
            return Err(RequestProblem::NothingToUpdate);
        }
        let client_token = match token.or(self.token()) {
            Some(token) => Some(ClientToken::new(token).map_err(|error| match error {
                NameError::TooLong { len, max, .. } => {
                    RequestProblem::ClientTokenTooLong { len, max }
                }
                _ => RequestProblem::Refused(RejectReason::InvalidClientToken),
            })?),
            None => None,
        };
        let size = stored_size(&desired) + stored_size(&reported);
        let request = UpdateRequest { desired, reported, version: self.version, client_token };
        request.check().map_err(|rejection| problem(rejection.reason))?;
        if size > MAX_STATE_BYTES {
            return Err(RequestProblem::TooLarge { size, max: MAX_STATE_BYTES });
        }
        Ok(request)
    }
}

/// The problem a service rejection found in a request.
fn problem(reason: RejectReason) -> RequestProblem {
    match reason {
        RejectReason::DesiredNotObject => RequestProblem::NotAnObject { section: "desired" },
        RejectReason::ReportedNotObject => RequestProblem::NotAnObject { section: "reported" },
        RejectReason::TooDeep => RequestProblem::TooDeep { max: MAX_DEPTH },
        RejectReason::InvalidClientToken => RequestProblem::ClientTokenTooLong {
            len: MAX_CLIENT_TOKEN_BYTES + 1,
            max: MAX_CLIENT_TOKEN_BYTES,
        },
        RejectReason::InvalidJson => RequestProblem::InvalidJson("not a JSON object".into()),
        other => RequestProblem::Refused(other),
    }
}

/// A section as the request names it.
fn section(value: Option<&Value>, name: &'static str) -> Result<SectionUpdate, RequestProblem> {
    match value {
        None => Ok(SectionUpdate::Unchanged),
        Some(Value::Null) => Ok(SectionUpdate::Remove),
        Some(Value::Object(members)) => Ok(SectionUpdate::Merge(members.clone())),
        Some(_) => Err(RequestProblem::NotAnObject { section: name }),
    }
}

/// The compact JSON size of what a section stores at least: its members without the `null`s
/// (which remove) and the objects left empty by them. The shadow after the update holds all of
/// it, so a request over the limit here is over it there.
fn stored_size(section: &SectionUpdate) -> usize {
    let SectionUpdate::Merge(members) = section else { return 0 };
    without_nulls(&Value::Object(members.clone())).map_or(0, |value| value.to_string().len())
}

/// `value` without `null` members and the objects they leave empty; `None` when nothing is left.
fn without_nulls(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(members) => {
            let kept: serde_json::Map<String, Value> = members
                .iter()
                .filter_map(|(key, member)| without_nulls(member).map(|m| (key.clone(), m)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn sections_must_be_objects_or_null_and_one_must_be_named() {
        assert_eq!(
            ShadowUpdate::new().desired(json!([1])).check(),
            Err(RequestProblem::NotAnObject { section: "desired" })
        );
        assert_eq!(
            ShadowUpdate::new().reported(json!("x")).check(),
            Err(RequestProblem::NotAnObject { section: "reported" })
        );
        assert_eq!(ShadowUpdate::new().version(1).check(), Err(RequestProblem::NothingToUpdate));
        let request = ShadowUpdate::new().desired(Value::Null).request(Some("tok")).unwrap();
        assert_eq!(request.to_json(), br#"{"state":{"desired":null},"clientToken":"tok"}"#);
    }

    #[test]
    fn the_size_limit_counts_what_is_stored_exactly_at_the_limit() {
        // {"a":"xxx…"} is 8 bytes of framing around the string.
        let at_limit = json!({ "a": "x".repeat(MAX_STATE_BYTES - 8) });
        assert_eq!(ShadowUpdate::new().reported(at_limit).check(), Ok(()));
        let over = json!({ "a": "x".repeat(MAX_STATE_BYTES - 7) });
        assert_eq!(
            ShadowUpdate::new().reported(over).check(),
            Err(RequestProblem::TooLarge { size: MAX_STATE_BYTES + 1, max: MAX_STATE_BYTES })
        );
        // Nulls remove and are not counted.
        let with_nulls =
            json!({ "a": "x".repeat(MAX_STATE_BYTES - 8), "gone": null, "o": {"n": null} });
        assert_eq!(ShadowUpdate::new().reported(with_nulls).check(), Ok(()));
        // Both sections count.
        let half = json!({ "a": "x".repeat(MAX_STATE_BYTES / 2) });
        assert!(matches!(
            ShadowUpdate::new().reported(half.clone()).desired(half).check(),
            Err(RequestProblem::TooLarge { .. })
        ));
    }

    #[test]
    fn depth_tokens_and_arrays_follow_the_services_rules() {
        let deep = json!({"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}});
        assert_eq!(
            ShadowUpdate::new().desired(deep).check(),
            Err(RequestProblem::TooDeep { max: MAX_DEPTH })
        );
        let at_depth = json!({"a":{"b":{"c":{"d":{"e":{"f":1}}}}}});
        assert_eq!(ShadowUpdate::new().desired(at_depth).check(), Ok(()));
        let update = ShadowUpdate::new().reported(json!({"a": 1}));
        assert_eq!(update.clone().client_token("x".repeat(64)).check(), Ok(()));
        assert_eq!(
            update.client_token("x".repeat(65)).check(),
            Err(RequestProblem::ClientTokenTooLong { len: 65, max: 64 })
        );
        assert_eq!(
            ShadowUpdate::new().reported(json!({"a": [1, null]})).check(),
            Err(RequestProblem::Refused(RejectReason::InvalidNode))
        );
    }

    #[test]
    fn a_whole_document_is_read_with_the_services_rules() {
        let update = ShadowUpdate::from_json(
            br#"{"state":{"reported":{"on":true}},"clientToken":"c","version":3}"#,
        )
        .unwrap();
        assert_eq!(update.token(), Some("c"));
        assert_eq!(
            update.request(None).unwrap().to_json(),
            br#"{"state":{"reported":{"on":true}},"clientToken":"c","version":3}"#
        );
        assert_eq!(
            ShadowUpdate::from_json(br#"{"version":1}"#),
            Err(RequestProblem::Refused(RejectReason::MissingState))
        );
        assert!(matches!(ShadowUpdate::from_json(b"[1"), Err(RequestProblem::InvalidJson(_))));
    }
}
