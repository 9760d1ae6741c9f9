//! A [`Shadow`] written to and read back from a store (the emulator keeps shadows in SQLite):
//! `{"version":…,"state":{…},"metadata":{…}}`, `state` and `metadata` left out when the shadow
//! does not exist (deleted, its version kept).

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::Value;

use super::super::JsonObject;
use super::super::json;
use super::super::tree::{Meta, MetaMap};
use super::{Section, Shadow, State, metadata_object, state_object};

/// Why a stored shadow could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoredShadowError {
    /// Not JSON, or not an object.
    #[error("a stored shadow is not a JSON object")]
    NotAnObject,
    /// `version` missing or not an unsigned integer.
    #[error("a stored shadow has no valid version")]
    Version,
    /// `state` present but not an object of objects.
    #[error("a stored shadow's state is not an object")]
    State,
}

impl Shadow {
    /// The shadow as one compact JSON document for a store; [`Shadow::from_stored`] reads it back.
    ///
    /// ```
    /// use iot443_proto::aws::shadow::{Shadow, UpdateRequest};
    ///
    /// let mut shadow = Shadow::new();
    /// shadow.update(&UpdateRequest::parse(br#"{"state":{"reported":{"on":true}}}"#).unwrap(), 7).unwrap();
    /// let stored = shadow.to_stored();
    /// assert_eq!(stored, br#"{"version":1,"state":{"reported":{"on":true}},"metadata":{"reported":{"on":{"timestamp":7}}}}"#);
    /// assert_eq!(Shadow::from_stored(&stored).unwrap(), shadow);
    /// ```
    pub fn to_stored(&self) -> Vec<u8> {
        let mut out = json::Object::new();
        out.field_u64("version", self.version);
        if let Some(state) = &self.state {
            out.field_object("state", state_object(state));
            out.field_object("metadata", metadata_object(state));
        }
        out.finish()
    }

    /// Reads back what [`Shadow::to_stored`] wrote. Metadata missing for a member reads as
    /// timestamp 0.
    ///
    /// # Errors
    /// When the bytes are not such a document.
    pub fn from_stored(bytes: &[u8]) -> Result<Self, StoredShadowError> {
        let Ok(Value::Object(document)) = serde_json::from_slice::<Value>(bytes) else {
            return Err(StoredShadowError::NotAnObject);
        };
        let version =
            document.get("version").and_then(Value::as_u64).ok_or(StoredShadowError::Version)?;
        let state = match document.get("state") {
            None => None,
            Some(Value::Object(sections)) => {
                let metadata = document.get("metadata").and_then(Value::as_object);
                let section = |key: &str| -> Result<Section, StoredShadowError> {
                    match sections.get(key) {
                        None => Ok(Section::default()),
                        Some(Value::Object(values)) => {
                            let meta = metadata.and_then(|m| m.get(key)).and_then(Value::as_object);
                            Ok(Section { meta: meta_for(values, meta), values: values.clone() })
                        }
                        Some(_) => Err(StoredShadowError::State),
                    }
                };
                Some(State { desired: section("desired")?, reported: section("reported")? })
            }
            Some(_) => return Err(StoredShadowError::State),
        };
        Ok(Shadow { state, version })
    }
}

/// The metadata of `values`, read from `meta` guided by the values (a member named `timestamp`
/// is then no ambiguity).
fn meta_for(values: &JsonObject, meta: Option<&JsonObject>) -> MetaMap {
    values
        .iter()
        .map(|(key, value)| {
            let member = meta.and_then(|m| m.get(key)).and_then(Value::as_object);
            let entry = match value {
                Value::Object(inner) => Meta::Object(meta_for(inner, member)),
                _ => Meta::Leaf(
                    member.and_then(|m| m.get("timestamp")).and_then(Value::as_u64).unwrap_or(0),
                ),
            };
            (String::from(key.as_str()), entry)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::shadow::UpdateRequest;

    #[test]
    fn a_deleted_shadow_keeps_its_version() {
        let mut shadow = Shadow::new();
        let request = UpdateRequest::parse(br#"{"state":{"desired":{"a":{"b":[1,2]}}}}"#).unwrap();
        shadow.update(&request, 3).unwrap();
        let id =
            crate::aws::shadow::ShadowId::classic(crate::aws::shadow::ThingName::new("t").unwrap());
        shadow.delete(&id, None, 4).unwrap();
        assert_eq!(shadow.to_stored(), br#"{"version":1}"#);
        assert_eq!(Shadow::from_stored(br#"{"version":1}"#).unwrap(), shadow);
    }

    #[test]
    fn bad_documents_are_errors() {
        assert_eq!(Shadow::from_stored(b"[]"), Err(StoredShadowError::NotAnObject));
        assert_eq!(Shadow::from_stored(b"{}"), Err(StoredShadowError::Version));
        assert_eq!(
            Shadow::from_stored(br#"{"version":1,"state":3}"#),
            Err(StoredShadowError::State)
        );
    }
}
