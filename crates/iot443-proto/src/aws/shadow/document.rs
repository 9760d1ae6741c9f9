//! One shadow as the service keeps it: `desired` and `reported` with per-leaf metadata and a
//! version, and the answers to get, update and delete as AWS shapes them (AWS-IOT.md §4.1-§4.3).
//!
//! ```
//! use iot443_proto::aws::shadow::{Shadow, ShadowId, ThingName, UpdateRequest};
//!
//! let id = ShadowId::classic(ThingName::new("lamp").unwrap());
//! let mut shadow = Shadow::new();
//! let answers = shadow
//!     .update(&UpdateRequest::parse(br#"{"state":{"desired":{"on":true}},"clientToken":"c1"}"#).unwrap(), 100)
//!     .unwrap();
//! assert_eq!(
//!     answers.accepted,
//!     br#"{"state":{"desired":{"on":true}},"metadata":{"desired":{"on":{"timestamp":100}}},"version":1,"timestamp":100,"clientToken":"c1"}"#
//! );
//! assert_eq!(
//!     answers.delta.unwrap(),
//!     br#"{"version":1,"timestamp":100,"state":{"on":true},"metadata":{"on":{"timestamp":100}},"clientToken":"c1"}"#
//! );
//! assert_eq!(
//!     shadow.get(&id, None, 101).unwrap(),
//!     br#"{"state":{"desired":{"on":true},"delta":{"on":true}},"metadata":{"desired":{"on":{"timestamp":100}}},"version":1,"timestamp":101}"#
//! );
//! ```

use alloc::vec::Vec;

use serde_json::Value;

use super::JsonObject;
use super::errors::{RejectReason, Rejection};
use super::json;
use super::names::ClientToken;
use super::request::{SectionUpdate, UpdateRequest};
use super::topics::ShadowId;
use super::tree::{self, Meta, MetaMap};

mod persist;
pub use persist::StoredShadowError;

/// The most bytes `desired` plus `reported` may take, written as compact JSON (metadata does not
/// count). An update that would leave more is rejected with 413.
pub const MAX_STATE_BYTES: usize = 8 * 1024;

/// The deepest nesting accepted in `desired` or `reported` (see [`UpdateRequest::check`] for how
/// levels are counted).
pub const MAX_DEPTH: usize = 6;

/// One section (`desired` or `reported`): its members and their metadata. Empty means absent.
#[derive(Debug, Clone, PartialEq, Default)]
struct Section {
    values: JsonObject,
    meta: MetaMap,
}

impl Section {
    fn apply(&mut self, update: &SectionUpdate, now: u64) {
        match update {
            SectionUpdate::Unchanged => {}
            SectionUpdate::Remove => *self = Self::default(),
            SectionUpdate::Merge(patch) => {
                tree::merge(&mut self.values, &mut self.meta, patch, now)
            }
        }
    }

    /// Its compact JSON size (0 when absent).
    fn size(&self) -> usize {
        if self.values.is_empty() {
            0
        } else {
            json::compact_len(&Value::Object(self.values.clone()))
        }
    }
}

/// The stored state of an existing shadow.
#[derive(Debug, Clone, PartialEq, Default)]
struct State {
    desired: Section,
    reported: Section,
}

/// One shadow (classic or named) as the service keeps it. Time is an argument: `now` is unix
/// seconds, used for metadata and each answer's `timestamp`.
///
/// A new `Shadow` does not exist yet (get and delete answer 404); the first accepted update
/// creates it. Delete removes the state but keeps the version, so a shadow created again
/// continues the numbering (AWS keeps it for 48 hours; forgetting it after that is the store's
/// business, by dropping the value).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shadow {
    state: Option<State>,
    version: u64,
}

/// What an accepted update publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateAnswers {
    /// For `…/update/accepted`: the request's sections as sent, their metadata, `version`,
    /// `timestamp`, `clientToken`.
    pub accepted: Vec<u8>,
    /// For `…/update/delta`, when the request changed `desired` and, at the paths it named, desired
    /// still differs from reported.
    ///
    /// UNCONFIRMED: AWS says the delta topic carries "only the desired attributes that differ" and
    /// is published when "the request state document contains different values for desired and
    /// reported"; this reads it as the delta at the request's desired paths, and nothing for an
    /// update of reported alone.
    pub delta: Option<Vec<u8>>,
    /// For `…/update/documents`: `previous` (left out when the shadow did not exist; UNCONFIRMED)
    /// and `current`, each with `state`, `metadata` and `version`, then `timestamp` and
    /// `clientToken`.
    pub documents: Vec<u8>,
    /// The shadow's version after the update.
    pub version: u64,
}

impl Shadow {
    /// A shadow that does not exist yet, at version 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the shadow exists (was updated and not deleted since).
    pub fn exists(&self) -> bool {
        self.state.is_some()
    }

    /// The current version: the number of accepted updates, deletes not resetting it.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The desired state, `None` when absent.
    pub fn desired(&self) -> Option<&JsonObject> {
        self.state.as_ref().map(|state| &state.desired.values).filter(|values| !values.is_empty())
    }

    /// The reported state, `None` when absent.
    pub fn reported(&self) -> Option<&JsonObject> {
        self.state.as_ref().map(|state| &state.reported.values).filter(|values| !values.is_empty())
    }

    /// The delta: desired members that differ from reported, `None` when there is none.
    pub fn delta(&self) -> Option<JsonObject> {
        let delta = tree::delta(self.desired()?, self.reported());
        (!delta.is_empty()).then_some(delta)
    }

    /// Applies an update and returns what to publish. On a rejection the shadow is unchanged.
    ///
    /// # Errors
    /// 400 for a request [`UpdateRequest::check`] refuses, 409 when its `version` is not the
    /// current one, 413 when desired plus reported would exceed [`MAX_STATE_BYTES`], 500 if the
    /// version would overflow. Each carries the request's `clientToken`.
    pub fn update(
        &mut self,
        request: &UpdateRequest,
        now: u64,
    ) -> Result<UpdateAnswers, Rejection> {
        request.check()?;
        let reject =
            |reason| Rejection::new(reason).with_client_token(request.client_token.clone());
        if request.version.is_some_and(|version| version != self.version) {
            return Err(reject(RejectReason::VersionConflict));
        }
        let version =
            self.version.checked_add(1).ok_or_else(|| reject(RejectReason::InternalFailure))?;
        let mut state = self.state.clone().unwrap_or_default();
        state.desired.apply(&request.desired, now);
        state.reported.apply(&request.reported, now);
        if state.desired.size() + state.reported.size() > MAX_STATE_BYTES {
            return Err(reject(RejectReason::PayloadTooLarge));
        }
        let previous = core::mem::replace(self, Self { state: Some(state), version });
        let token = request.client_token.as_ref();
        Ok(UpdateAnswers {
            accepted: self.accepted(request, now),
            delta: self.update_delta(request, now),
            documents: documents(&previous, self, now, token),
            version,
        })
    }

    /// The answer to a get: `state` (`desired`, `reported`, `delta` when present), `metadata`,
    /// `version`, `timestamp`, `clientToken`.
    ///
    /// # Errors
    /// 404 "No shadow exists with name" when the shadow does not exist; `id` names it.
    pub fn get(
        &self,
        id: &ShadowId,
        client_token: Option<&ClientToken>,
        now: u64,
    ) -> Result<Vec<u8>, Rejection> {
        let state = self.existing(id, client_token)?;
        let mut out = json::Object::new();
        let mut body = state_object(state);
        if let Some(delta) = self.delta() {
            body.field_value("delta", &Value::Object(delta));
        }
        out.field_object("state", body);
        out.field_object("metadata", metadata_object(state));
        out.field_u64("version", self.version);
        Ok(finish_answer(out, now, client_token))
    }

    /// Deletes the shadow and returns the answer for `…/delete/accepted`: `version`, `timestamp`,
    /// `clientToken`. The version is kept for the next update.
    ///
    /// # Errors
    /// 404 when the shadow does not exist.
    pub fn delete(
        &mut self,
        id: &ShadowId,
        client_token: Option<&ClientToken>,
        now: u64,
    ) -> Result<Vec<u8>, Rejection> {
        self.existing(id, client_token)?;
        self.state = None;
        let mut out = json::Object::new();
        out.field_u64("version", self.version);
        Ok(finish_answer(out, now, client_token))
    }

    fn existing(
        &self,
        id: &ShadowId,
        client_token: Option<&ClientToken>,
    ) -> Result<&State, Rejection> {
        self.state.as_ref().ok_or_else(|| {
            let name = id.name().map_or(id.thing().as_str(), |name| name.as_str()).into();
            Rejection::new(RejectReason::NoShadow { name }).with_client_token(client_token.cloned())
        })
    }

    /// `…/update/accepted`: the request's sections and the metadata of what they named.
    fn accepted(&self, request: &UpdateRequest, now: u64) -> Vec<u8> {
        let mut out = json::Object::new();
        out.field_object("state", request.state_object());
        let mut metadata = json::Object::new();
        for (key, section) in [("desired", &request.desired), ("reported", &request.reported)] {
            match section {
                SectionUpdate::Unchanged => {}
                SectionUpdate::Remove => metadata.field_value(key, &Meta::Leaf(now).to_value()),
                SectionUpdate::Merge(members) => {
                    metadata.field_value(key, &stamp_request(members, now))
                }
            }
        }
        out.field_object("metadata", metadata);
        out.field_u64("version", self.version);
        finish_answer(out, now, request.client_token.as_ref())
    }

    /// `…/update/delta`, if the request's desired paths still differ from reported.
    fn update_delta(&self, request: &UpdateRequest, now: u64) -> Option<Vec<u8>> {
        let SectionUpdate::Merge(asked) = &request.desired else { return None };
        let delta = tree::restrict(&self.delta()?, asked);
        if delta.is_empty() {
            return None;
        }
        let desired_meta = self.state.as_ref().map(|state| &state.desired.meta)?;
        let mut out = json::Object::new();
        out.field_u64("version", self.version);
        out.field_u64("timestamp", now);
        out.field_value("state", &Value::Object(delta.clone()));
        out.field_value("metadata", &tree::meta_of(&delta, desired_meta, now));
        if let Some(token) = &request.client_token {
            out.field_str("clientToken", token.as_str());
        }
        Some(out.finish())
    }
}

/// The metadata of a request's section: every member it names stamped `now`, `null`s included.
fn stamp_request(members: &JsonObject, now: u64) -> Value {
    tree::map_to_value(&tree::stamp_map(members, now))
}

/// `{"desired":…,"reported":…}` with the sections present.
fn state_object(state: &State) -> json::Object {
    let mut out = json::Object::new();
    for (key, section) in [("desired", &state.desired), ("reported", &state.reported)] {
        if !section.values.is_empty() {
            out.field_value(key, &Value::Object(section.values.clone()));
        }
    }
    out
}

/// The metadata of the sections present.
fn metadata_object(state: &State) -> json::Object {
    let mut out = json::Object::new();
    for (key, section) in [("desired", &state.desired), ("reported", &state.reported)] {
        if !section.values.is_empty() {
            out.field_value(key, &tree::map_to_value(&section.meta));
        }
    }
    out
}

/// `{"state":…,"metadata":…,"version":…}` of one side of `…/update/documents`.
fn snapshot(state: &State, version: u64) -> json::Object {
    let mut out = json::Object::new();
    out.field_object("state", state_object(state));
    out.field_object("metadata", metadata_object(state));
    out.field_u64("version", version);
    out
}

/// `…/update/documents` for an update from `previous` to `current`.
fn documents(
    previous: &Shadow,
    current: &Shadow,
    now: u64,
    token: Option<&ClientToken>,
) -> Vec<u8> {
    let mut out = json::Object::new();
    if let Some(state) = &previous.state {
        out.field_object("previous", snapshot(state, previous.version));
    }
    let empty = State::default();
    out.field_object(
        "current",
        snapshot(current.state.as_ref().unwrap_or(&empty), current.version),
    );
    finish_answer(out, now, token)
}

/// Appends `timestamp` and `clientToken`, the last fields of every answer.
fn finish_answer(mut out: json::Object, now: u64, token: Option<&ClientToken>) -> Vec<u8> {
    out.field_u64("timestamp", now);
    if let Some(token) = token {
        out.field_str("clientToken", token.as_str());
    }
    out.finish()
}
