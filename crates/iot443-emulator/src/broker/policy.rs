//! An optional authorization policy: which client ids a device certificate may connect with,
//! and which topics it may publish and subscribe to.
//!
//! A much simplified stand-in for IoT Core's IAM-style policies, loaded from JSON with
//! [`Policy::from_json`]. Without a policy, everything is allowed.
//!
//! # Format
//!
//! ```json
//! {
//!   "statements": [
//!     {
//!       "common_name": "device",
//!       "client_ids": ["device", "device-*"],
//!       "publish": ["sensors/${iot:ClientId}/#"],
//!       "subscribe": ["commands/${iot:ClientId}/+", "broadcast/#"]
//!     },
//!     { "common_name": "*", "client_ids": ["guest-*"], "subscribe": ["public/#"] }
//!   ]
//! }
//! ```
//!
//! * `common_name` (required): the subject common name of the device certificate the statement
//!   is for, or `"*"` for any certificate (also one without a common name).
//! * `client_ids` (default `["*"]`): client id patterns, each exact or ending with one `*` that
//!   matches any suffix (`"*"` alone matches every client id).
//! * `publish` and `subscribe` (default `[]`): MQTT topic filters (`+`, `#`). The text
//!   `${iot:ClientId}` is replaced by the connection's client id before use.
//!
//! A statement *applies* to a connection when its `common_name` and one of its `client_ids`
//! match. Then:
//!
//! * **connect** is allowed when at least one statement applies (else CONNACK 5 and close);
//! * **publish** to a topic is allowed when an applying statement has a `publish` filter that
//!   matches the topic under IoT Core's rule (`a/#` matches `a/b` but not `a`);
//! * **subscribe** to a filter is allowed when an applying statement has a `subscribe` filter
//!   that is equal to it or *covers* it level by level: a policy `+` covers one level (a
//!   literal or `+`), a policy `#` covers one or more remaining levels (anything, including
//!   `+` and `#`), a literal covers only the same literal. So `a/#` covers `a/+/c` and `a/#`,
//!   `a/+` covers `a/b` and `a/+` but not `a/#`, and no policy filter starting with a wildcard
//!   covers a `$` filter.
//!
//! A denied publish or subscribe closes the connection, as IoT Core does under MQTT 3.1.1.
//! A will topic must be allowed for publish at CONNECT time.
//!
//! If the client id contains `+` or `#`, filters using `${iot:ClientId}` allow nothing for that
//! connection: the substitution must not smuggle a wildcard into the policy.
//!
//! # Peers without a certificate common name
//!
//! A connection on the WebSocket road (SigV4, no client certificate) has no common name; its
//! certificate id is `sigv4:<access key id>`
//! (`server::SIGV4_IDENTITY_PREFIX`). Only statements with
//! `"common_name": "*"` apply to it (a stand-in for IoT Core's IAM policies, which the emulator
//! does not model). An HTTPS publish has a certificate but no client id: the policy sees the
//! empty client id, which `"*"` and any `prefix*` pattern with an empty prefix match, and
//! `${iot:ClientId}` becomes empty.

use iot443_proto::topic::{MatchRule, TopicError, TopicFilter, TopicName};
use serde::Deserialize;
use std::borrow::Cow;

/// The placeholder replaced by the connection's client id in `publish` and `subscribe` filters.
pub const CLIENT_ID_VARIABLE: &str = "${iot:ClientId}";

/// A loaded, validated policy. See the [module documentation](self) for the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// One statement of a [`Policy`], its filters parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    common_name: String,
    client_ids: Vec<String>,
    publish: Vec<PolicyFilter>,
    subscribe: Vec<PolicyFilter>,
}

/// A `publish` or `subscribe` entry of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PolicyFilter {
    /// Without `${iot:ClientId}`: parsed once, when the policy is loaded.
    Fixed(TopicFilter),
    /// With `${iot:ClientId}`: the text as written, substituted for each connection.
    Templated(String),
}

impl PolicyFilter {
    /// The filter for the connection of `client_id`, or `None` if the substitution would not
    /// give a plain filter.
    fn resolve(&self, client_id: &str) -> Option<Cow<'_, TopicFilter>> {
        match self {
            PolicyFilter::Fixed(filter) => Some(Cow::Borrowed(filter)),
            PolicyFilter::Templated(text) => substitute(text, client_id).map(Cow::Owned),
        }
    }
}

/// One statement as written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementFile {
    common_name: String,
    #[serde(default = "any_client_id")]
    client_ids: Vec<String>,
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    subscribe: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    statements: Vec<StatementFile>,
}

fn any_client_id() -> Vec<String> {
    vec!["*".to_owned()]
}

/// Why a policy file cannot be loaded.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The text is not JSON of the documented shape (unknown fields are refused too).
    #[error("policy is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    /// A client id pattern has a `*` that is not its last character, or is empty.
    #[error(
        "statement {statement}: client id pattern {pattern:?} must be non-empty with at most one '*', at the end"
    )]
    InvalidClientIdPattern {
        /// Index of the statement, from 0.
        statement: usize,
        /// The pattern.
        pattern: String,
    },
    /// A `publish` or `subscribe` entry is not a valid MQTT topic filter.
    #[error("statement {statement}: {filter:?} is not a valid topic filter: {error}")]
    InvalidFilter {
        /// Index of the statement, from 0.
        statement: usize,
        /// The filter as written.
        filter: String,
        /// Why it is invalid.
        error: TopicError,
    },
    /// A `${...}` variable other than `${iot:ClientId}`.
    #[error(
        "statement {statement}: {filter:?} uses an unknown variable; only ${{iot:ClientId}} is supported"
    )]
    UnknownVariable {
        /// Index of the statement, from 0.
        statement: usize,
        /// The filter as written.
        filter: String,
    },
}

impl Policy {
    /// Parses and validates a policy (format in the [module documentation](self)).
    ///
    /// # Errors
    ///
    /// [`PolicyError`] naming the statement and the entry at fault.
    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = serde_json::from_str(text)?;
        let mut statements = Vec::with_capacity(file.statements.len());
        for (index, statement) in file.statements.into_iter().enumerate() {
            for pattern in &statement.client_ids {
                let star = pattern.find('*');
                if pattern.is_empty() || star.is_some_and(|at| at + 1 != pattern.len()) {
                    return Err(PolicyError::InvalidClientIdPattern {
                        statement: index,
                        pattern: pattern.clone(),
                    });
                }
            }
            let parse = |filters: Vec<String>| -> Result<Vec<PolicyFilter>, PolicyError> {
                filters.into_iter().map(|filter| parse_filter(index, filter)).collect()
            };
            // Publish entries are checked before subscribe entries, as the file lists them.
            let publish = parse(statement.publish)?;
            let subscribe = parse(statement.subscribe)?;
            statements.push(Statement {
                common_name: statement.common_name,
                client_ids: statement.client_ids,
                publish,
                subscribe,
            });
        }
        Ok(Policy { statements })
    }

    /// Whether a device with certificate common name `common_name` may connect as `client_id`.
    pub fn allows_connect(&self, common_name: Option<&str>, client_id: &str) -> bool {
        self.applying(common_name, client_id).next().is_some()
    }

    /// Whether the connection may publish to `topic`.
    pub fn allows_publish(
        &self,
        common_name: Option<&str>,
        client_id: &str,
        topic: &TopicName,
    ) -> bool {
        self.applying(common_name, client_id)
            .flat_map(|statement| statement.publish.iter())
            .filter_map(|filter| filter.resolve(client_id))
            .any(|filter| filter.matches(topic, MatchRule::AwsIot))
    }

    /// Whether the connection may subscribe to `requested` (equal to, or covered by, a policy
    /// filter; see the [module documentation](self)).
    pub fn allows_subscribe(
        &self,
        common_name: Option<&str>,
        client_id: &str,
        requested: &TopicFilter,
    ) -> bool {
        self.applying(common_name, client_id)
            .flat_map(|statement| statement.subscribe.iter())
            .filter_map(|filter| filter.resolve(client_id))
            .any(|filter| covers(&filter, requested))
    }

    fn applying<'a>(
        &'a self,
        common_name: Option<&'a str>,
        client_id: &'a str,
    ) -> impl Iterator<Item = &'a Statement> + 'a {
        self.statements.iter().filter(move |statement| {
            (statement.common_name == "*" || Some(statement.common_name.as_str()) == common_name)
                && statement.client_ids.iter().any(|pattern| client_id_matches(pattern, client_id))
        })
    }
}

/// Whether `client_id` matches an exact pattern or a `prefix*` pattern.
fn client_id_matches(pattern: &str, client_id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => client_id.starts_with(prefix),
        None => pattern == client_id,
    }
}

/// Validates the `publish` or `subscribe` entry `filter` of statement `statement`: a filter
/// without `${iot:ClientId}` is parsed for good, one with it is kept as text.
fn parse_filter(statement: usize, filter: String) -> Result<PolicyFilter, PolicyError> {
    let templated = filter.contains(CLIENT_ID_VARIABLE);
    let probe = filter.replace(CLIENT_ID_VARIABLE, "client");
    if probe.contains("${") {
        return Err(PolicyError::UnknownVariable { statement, filter });
    }
    let parsed = match TopicFilter::new(probe) {
        Ok(parsed) => parsed,
        Err(error) => return Err(PolicyError::InvalidFilter { statement, filter, error }),
    };
    Ok(if templated { PolicyFilter::Templated(filter) } else { PolicyFilter::Fixed(parsed) })
}

/// The filter with `${iot:ClientId}` replaced, or `None` if that would not be a plain filter.
fn substitute(filter: &str, client_id: &str) -> Option<TopicFilter> {
    if client_id.contains(['+', '#']) {
        return None;
    }
    TopicFilter::new(filter.replace(CLIENT_ID_VARIABLE, client_id)).ok()
}

/// Whether the policy filter `policy` allows subscribing to `requested`.
fn covers(policy: &TopicFilter, requested: &TopicFilter) -> bool {
    if policy == requested {
        return true;
    }
    if requested.as_str().starts_with('$') && policy.as_str().starts_with(['+', '#']) {
        return false;
    }
    let mut allowed = policy.as_str().split('/');
    let mut asked = requested.as_str().split('/');
    loop {
        match (allowed.next(), asked.next()) {
            (Some("#"), Some(_)) => return true,
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(text: &str) -> TopicFilter {
        TopicFilter::new(text).unwrap()
    }

    const EXAMPLE: &str = r#"{
      "statements": [
        {
          "common_name": "device",
          "client_ids": ["device", "device-*"],
          "publish": ["sensors/${iot:ClientId}/#"],
          "subscribe": ["commands/${iot:ClientId}/+", "broadcast/#"]
        },
        { "common_name": "*", "client_ids": ["guest-*"], "subscribe": ["public/#"] }
      ]
    }"#;

    #[test]
    fn the_documented_example_loads_and_means_what_it_says() {
        let policy = Policy::from_json(EXAMPLE).unwrap();
        let cn = Some("device");
        assert!(policy.allows_connect(cn, "device"));
        assert!(policy.allows_connect(cn, "device-7"));
        assert!(!policy.allows_connect(cn, "other"));
        assert!(!policy.allows_connect(None, "device"));
        assert!(policy.allows_connect(None, "guest-1"));
        let topic = |t: &str| TopicName::new(t).unwrap();
        assert!(policy.allows_publish(cn, "device-7", &topic("sensors/device-7/temp")));
        assert!(!policy.allows_publish(cn, "device-7", &topic("sensors/device-7")));
        assert!(!policy.allows_publish(cn, "device-7", &topic("sensors/device/temp")));
        assert!(policy.allows_subscribe(cn, "device", &filter("commands/device/+")));
        assert!(policy.allows_subscribe(cn, "device", &filter("commands/device/reboot")));
        assert!(!policy.allows_subscribe(cn, "device", &filter("commands/device/#")));
        assert!(policy.allows_subscribe(cn, "device", &filter("broadcast/+/x")));
        assert!(!policy.allows_subscribe(cn, "device", &filter("public/x")));
        assert!(policy.allows_subscribe(None, "guest-1", &filter("public/x")));
    }

    #[test]
    fn a_client_id_with_wildcards_gets_nothing_from_substituted_filters() {
        let text = r#"{"statements": [
            {"common_name": "*", "publish": ["a/${iot:ClientId}"], "subscribe": ["c/${iot:ClientId}"]}
        ]}"#;
        let policy = Policy::from_json(text).unwrap();
        let topic = TopicName::new("a/x").unwrap();
        assert!(policy.allows_publish(None, "x", &topic));
        assert!(policy.allows_subscribe(None, "x", &filter("c/x")));
        // "a/${iot:ClientId}" must not become "a/#" for the client id "#".
        assert!(policy.allows_connect(None, "#"));
        assert!(!policy.allows_publish(None, "#", &topic));
        assert!(!policy.allows_subscribe(None, "#", &filter("c/#")));
        assert!(!policy.allows_subscribe(None, "+", &filter("c/+")));
    }

    #[test]
    fn covers_table() {
        for (policy, requested, expected) in [
            ("a/#", "a/b", true),
            ("a/#", "a/+/c", true),
            ("a/#", "a/#", true),
            ("a/#", "a", false),
            ("a/+", "a/b", true),
            ("a/+", "a/+", true),
            ("a/+", "a/#", false),
            ("a/+", "a/b/c", false),
            ("a/b", "a/+", false),
            ("#", "$aws/things/x/shadow/update", false),
            ("$aws/things/+/shadow/#", "$aws/things/x/shadow/update", true),
        ] {
            assert_eq!(
                covers(&filter(policy), &filter(requested)),
                expected,
                "{policy} {requested}"
            );
        }
    }

    #[test]
    fn invalid_files_are_refused_with_the_entry_at_fault() {
        assert!(matches!(Policy::from_json("{"), Err(PolicyError::Json(_))));
        let unknown = r#"{"statements": [{"common_name": "*", "publsh": []}]}"#;
        assert!(matches!(Policy::from_json(unknown), Err(PolicyError::Json(_))));
        let star = r#"{"statements": [{"common_name": "*", "client_ids": ["a*b"]}]}"#;
        assert!(matches!(
            Policy::from_json(star),
            Err(PolicyError::InvalidClientIdPattern { statement: 0, .. })
        ));
        let bad =
            r#"{"statements": [{"common_name": "*"}, {"common_name": "*", "publish": ["a/#/b"]}]}"#;
        assert!(matches!(
            Policy::from_json(bad),
            Err(PolicyError::InvalidFilter {
                statement: 1,
                error: TopicError::InvalidWildcard,
                ..
            })
        ));
        let var = r#"{"statements": [{"common_name": "*", "publish": ["${iot:Thing}/x"]}]}"#;
        assert!(matches!(Policy::from_json(var), Err(PolicyError::UnknownVariable { .. })));
    }
}
