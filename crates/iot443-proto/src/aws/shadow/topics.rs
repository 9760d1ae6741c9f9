//! Typed shadow topics (AWS-IOT.md §4.1): `$aws/things/<thing>/shadow[/name/<shadow>]/<operation>[/<suffix>]`,
//! parsed into their parts and built from them.
//!
//! ```
//! use iot443_proto::aws::shadow::{ShadowOperation, ShadowSuffix, ShadowTopic};
//!
//! let topic = ShadowTopic::parse("$aws/things/lamp/shadow/name/config/update/accepted").unwrap();
//! assert_eq!(topic.id.thing().as_str(), "lamp");
//! assert_eq!(topic.id.name().map(|n| n.as_str()), Some("config"));
//! assert_eq!((topic.operation, topic.suffix), (ShadowOperation::Update, ShadowSuffix::Accepted));
//! assert_eq!(topic.to_string(), "$aws/things/lamp/shadow/name/config/update/accepted");
//!
//! // The request topic of the same shadow.
//! let request = topic.id.topic(ShadowOperation::Get, ShadowSuffix::Request).unwrap();
//! assert_eq!(request.to_string(), "$aws/things/lamp/shadow/name/config/get");
//!
//! // Not a shadow topic at all.
//! assert!(ShadowTopic::parse("$aws/things/lamp/jobs/get").is_none());
//! ```

use core::fmt;

use super::names::{NameError, ShadowName, ThingName};

/// Which shadow: a thing's classic (unnamed) shadow or one of its named shadows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShadowId {
    thing: ThingName,
    name: Option<ShadowName>,
}

impl ShadowId {
    /// The classic shadow of `thing`.
    pub fn classic(thing: ThingName) -> Self {
        Self { thing, name: None }
    }

    /// The shadow `name` of `thing`.
    pub fn named(thing: ThingName, name: ShadowName) -> Self {
        Self { thing, name: Some(name) }
    }

    /// The thing.
    pub fn thing(&self) -> &ThingName {
        &self.thing
    }

    /// The shadow's name, `None` for the classic shadow.
    pub fn name(&self) -> Option<&ShadowName> {
        self.name.as_ref()
    }

    /// The topic of `operation` and `suffix` for this shadow.
    ///
    /// # Errors
    /// [`ShadowTopicError::NoSuchTopic`] for `delta` or `documents` of an operation other than
    /// update.
    pub fn topic(
        &self,
        operation: ShadowOperation,
        suffix: ShadowSuffix,
    ) -> Result<ShadowTopic, ShadowTopicError> {
        ShadowTopic::new(self.clone(), operation, suffix)
    }

    /// `$aws/things/<thing>/shadow` or `$aws/things/<thing>/shadow/name/<shadow>`.
    pub fn prefix(&self) -> alloc::string::String {
        alloc::format!("{self}")
    }
}

impl fmt::Display for ShadowId {
    /// The topic prefix of the shadow.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "$aws/things/{}/shadow", self.thing)?;
        if let Some(name) = &self.name {
            write!(f, "/name/{name}")?;
        }
        Ok(())
    }
}

/// A shadow operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShadowOperation {
    /// `get`: read the document.
    Get,
    /// `update`: change desired and/or reported.
    Update,
    /// `delete`: remove the shadow.
    Delete,
}

impl ShadowOperation {
    /// The topic level: `get`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// What follows the operation in a shadow topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShadowSuffix {
    /// Nothing: the request a device or application publishes.
    Request,
    /// `/accepted`: the service's answer to an accepted request.
    Accepted,
    /// `/rejected`: the service's error document.
    Rejected,
    /// `/delta` (update only): desired differs from reported.
    Delta,
    /// `/documents` (update only): the previous and current documents.
    Documents,
}

impl ShadowSuffix {
    /// The last topic level, `None` for a request.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Self::Request => None,
            Self::Accepted => Some("accepted"),
            Self::Rejected => Some("rejected"),
            Self::Delta => Some("delta"),
            Self::Documents => Some("documents"),
        }
    }
}

/// A shadow topic: which shadow, which operation, which message of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ShadowTopic {
    /// The shadow.
    pub id: ShadowId,
    /// The operation.
    pub operation: ShadowOperation,
    /// Request, accepted, rejected, delta or documents.
    pub suffix: ShadowSuffix,
}

/// Why a shadow topic cannot be built.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShadowTopicError {
    /// `delta` and `documents` exist only for update.
    #[error("there is no {operation}/{suffix} shadow topic: delta and documents belong to update")]
    NoSuchTopic {
        /// The operation.
        operation: &'static str,
        /// The suffix.
        suffix: &'static str,
    },
    /// A thing or shadow name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
}

impl ShadowTopic {
    /// A topic of `id`.
    ///
    /// # Errors
    /// [`ShadowTopicError::NoSuchTopic`] for delta or documents of get or delete.
    pub fn new(
        id: ShadowId,
        operation: ShadowOperation,
        suffix: ShadowSuffix,
    ) -> Result<Self, ShadowTopicError> {
        if matches!(suffix, ShadowSuffix::Delta | ShadowSuffix::Documents)
            && operation != ShadowOperation::Update
        {
            return Err(ShadowTopicError::NoSuchTopic {
                operation: operation.as_str(),
                suffix: suffix.as_str().unwrap_or_default(),
            });
        }
        Ok(Self { id, operation, suffix })
    }

    /// Reads a topic name as a shadow topic; `None` when it is not one (another `$aws` topic, an
    /// invalid thing or shadow name, an unknown operation or suffix).
    pub fn parse(topic: &str) -> Option<Self> {
        let rest = topic.strip_prefix("$aws/things/")?;
        let (thing, rest) = rest.split_once('/')?;
        let rest = rest.strip_prefix("shadow/")?;
        let thing = ThingName::new(thing).ok()?;
        let (name, rest) = match rest.strip_prefix("name/") {
            Some(named) => {
                let (name, rest) = named.split_once('/')?;
                (Some(ShadowName::new(name).ok()?), rest)
            }
            None => (None, rest),
        };
        let (operation, suffix) =
            rest.split_once('/').map_or((rest, None), |(op, suffix)| (op, Some(suffix)));
        let operation = match operation {
            "get" => ShadowOperation::Get,
            "update" => ShadowOperation::Update,
            "delete" => ShadowOperation::Delete,
            _ => return None,
        };
        let suffix = match suffix {
            None => ShadowSuffix::Request,
            Some("accepted") => ShadowSuffix::Accepted,
            Some("rejected") => ShadowSuffix::Rejected,
            Some("delta") => ShadowSuffix::Delta,
            Some("documents") => ShadowSuffix::Documents,
            Some(_) => return None,
        };
        Self::new(ShadowId { thing, name }, operation, suffix).ok()
    }
}

impl fmt::Display for ShadowTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.id, self.operation.as_str())?;
        if let Some(suffix) = self.suffix.as_str() {
            write!(f, "/{suffix}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn classic_and_named_topics_round_trip() {
        for topic in [
            "$aws/things/t/shadow/get",
            "$aws/things/t/shadow/update/delta",
            "$aws/things/t/shadow/update/documents",
            "$aws/things/t/shadow/delete/rejected",
            "$aws/things/t/shadow/name/$cfg/get/accepted",
        ] {
            assert_eq!(ShadowTopic::parse(topic).map(|t| t.to_string()).as_deref(), Some(topic));
        }
    }

    #[test]
    fn non_shadow_topics_and_impossible_suffixes_are_not_parsed() {
        for topic in [
            "$aws/things/t/shadow",
            "$aws/things/t/shadow/get/delta",
            "$aws/things/t/shadow/update/accepted/x",
            // The documentation's typo without `/name/`.
            "$aws/things/t/shadow/namedShadow1/update",
            "$aws/things/a+b/shadow/get",
            "$aws/things/t/shadow/name//get",
            "things/t/shadow/get",
        ] {
            assert_eq!(ShadowTopic::parse(topic), None, "{topic}");
        }
    }

    #[test]
    fn delta_exists_only_for_update() {
        let id = ShadowId::classic(ThingName::new("t").unwrap());
        assert!(id.topic(ShadowOperation::Update, ShadowSuffix::Delta).is_ok());
        assert_eq!(
            id.topic(ShadowOperation::Delete, ShadowSuffix::Documents),
            Err(ShadowTopicError::NoSuchTopic { operation: "delete", suffix: "documents" })
        );
        assert_eq!(id.prefix(), "$aws/things/t/shadow");
    }
}
