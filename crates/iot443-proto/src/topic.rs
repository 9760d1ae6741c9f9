//! Topic names and topic filters: MQTT 3.1.1 rules when they are built, AWS IoT Core's limits as
//! an explicit extra check, and a wildcard matcher whose rule the caller chooses.
//!
//! * [`TopicName`] is what a PUBLISH is sent to: no wildcards.
//! * [`TopicFilter`] is what a SUBSCRIBE asks for: `+` fills one whole level, `#` fills the last.
//!
//! Both are checked against MQTT 3.1.1 (§1.5.3, §4.7) by their constructors, so a value of either
//! type is always valid MQTT. IoT Core is stricter (256 bytes, 7 slashes, reserved `$` topics, see
//! AWS-IOT.md §3.3 and §3.5); `check_aws_limits` applies those rules on request, because an
//! emulator or a plain MQTT broker may want the MQTT rules alone.
//!
//! ```
//! use iot443_proto::topic::{MatchRule, TopicFilter, TopicName};
//!
//! let topic = TopicName::new("sensor/42/temp").unwrap();
//! let filter = TopicFilter::new("sensor/+/temp").unwrap();
//! assert!(filter.matches(&topic, MatchRule::AwsIot));
//!
//! // IoT Core's `#` does not match the parent level; MQTT's does.
//! let parent = TopicName::new("sensor").unwrap();
//! let all = TopicFilter::new("sensor/#").unwrap();
//! assert!(all.matches(&parent, MatchRule::Mqtt));
//! assert!(!all.matches(&parent, MatchRule::AwsIot));
//!
//! assert!(TopicName::new("$aws/things/lamp/shadow/update").unwrap().check_aws_limits().is_ok());
//! ```

use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;
use core::str::FromStr;

/// The longest topic name or filter MQTT can encode: a UTF-8 string has a 16-bit length prefix.
pub const MQTT_MAX_TOPIC_LEN: usize = 65_535;

/// The longest topic AWS IoT Core accepts, in UTF-8 bytes (without a Basic Ingest prefix or a
/// `$share/<name>/` prefix).
pub const AWS_MAX_TOPIC_LEN: usize = 256;

/// The most `/` separators AWS IoT Core accepts in a topic name or filter (so at most 8 levels).
pub const AWS_MAX_TOPIC_SLASHES: usize = 7;

/// The longest `<ShareName>` of a `$share/<ShareName>/<filter>` IoT Core accepts, in characters.
const AWS_MAX_SHARE_NAME_CHARS: usize = 128;

/// Why a topic name or filter is not valid.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The topic is the empty string; MQTT topic names and filters have at least one character.
    #[error("topic is empty: MQTT topic names and filters need at least one character")]
    Empty,
    /// The topic is longer than a limit: MQTT's 65,535 bytes, IoT Core's 256 bytes, or (measured
    /// in characters) IoT Core's 128 for the `<ShareName>` of a shared subscription.
    #[error(
        "topic is too long: {len} bytes (characters for a $share name), at most {max} allowed; shorten it"
    )]
    TooLong {
        /// The length found.
        len: usize,
        /// The limit that was exceeded.
        max: usize,
    },
    /// The topic contains U+0000, which MQTT 3.1.1 §1.5.3 forbids in any string.
    #[error("topic contains the NUL character U+0000, which MQTT forbids; remove it")]
    NulCharacter,
    /// A topic name (what a PUBLISH is sent to) contains `+` or `#`.
    #[error(
        "topic name contains a wildcard ('+' or '#'): publish to a concrete topic, wildcards are only for subscription filters"
    )]
    WildcardInName,
    /// A filter has `+` or `#` sharing a level with other characters, or `#` before the last level.
    #[error(
        "invalid wildcard in topic filter: '+' must be a whole level and '#' the whole last level (e.g. \"a/+/c\", \"a/#\")"
    )]
    InvalidWildcard,
    /// The topic has more `/` separators than IoT Core allows.
    #[error("topic has {slashes} '/' separators where AWS IoT Core allows {max}; use fewer levels")]
    TooManyLevels {
        /// The number of `/` counted (without a Basic Ingest or `$share/<name>/` prefix).
        slashes: usize,
        /// The limit that was exceeded.
        max: usize,
    },
    /// The topic starts with `$` but is not one of the reserved topics IoT Core lets clients use.
    #[error(
        "topic starts with '$' but is not a topic AWS IoT Core lets clients use ($aws/things/<thing>/shadow/..., $aws/things/<thing>/jobs/..., $aws/provisioning-templates/..., ...; subscribe only: $aws/events/..., $share/<name>/<filter>; publish only: $aws/rules/<rule>/<topic>); remove the '$' or use a documented topic"
    )]
    ReservedTopic,
}

/// A topic name a PUBLISH is sent to: valid UTF-8, 1 to 65,535 bytes, no NUL, no wildcards.
///
/// Built only through [`TopicName::new`] (or `TryFrom`/`FromStr`), so every value is valid MQTT.
/// IoT Core's extra rules are checked by [`TopicName::check_aws_limits`].
///
/// Clones share the text (a reference count): a topic travels from the application's call to
/// the in-flight window and the encoder without being copied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(Arc<str>);

impl TopicName {
    /// Checks `name` against the MQTT 3.1.1 rules for a topic name.
    ///
    /// # Errors
    ///
    /// [`TopicError::Empty`], [`TopicError::TooLong`] (over [`MQTT_MAX_TOPIC_LEN`] bytes),
    /// [`TopicError::NulCharacter`] or [`TopicError::WildcardInName`].
    pub fn new(name: impl Into<Arc<str>>) -> Result<Self, TopicError> {
        let name = name.into();
        check_mqtt_common(&name)?;
        if name.contains(['+', '#']) {
            return Err(TopicError::WildcardInName);
        }
        Ok(TopicName(name))
    }

    /// The topic as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The topic as an owned string (a copy of the shared text).
    pub fn into_string(self) -> String {
        String::from(&*self.0)
    }

    /// The levels of the topic, split on `/` (`"a//b"` has three levels, the middle one empty).
    pub fn levels(&self) -> core::str::Split<'_, char> {
        self.0.split('/')
    }

    /// Checks AWS IoT Core's extra rules (AWS-IOT.md §3.3, §3.5).
    ///
    /// * A topic starting with `$` must belong to a reserved family clients may publish to (see
    ///   `AWS_FAMILIES` in the source); `$aws/rules/<rule>/<topic>` (Basic Ingest) needs a
    ///   non-empty rule name and a non-empty `<topic>`. `$aws/events/...` and
    ///   `$aws/things/<thing>/tunnels/notify` are published by IoT Core only, so they fail.
    /// * At most [`AWS_MAX_TOPIC_LEN`] bytes and [`AWS_MAX_TOPIC_SLASHES`] slashes, neither
    ///   counting a leading `$aws/rules/<rule>/` Basic Ingest prefix.
    ///
    /// # Errors
    ///
    /// [`TopicError::ReservedTopic`], [`TopicError::TooLong`] or [`TopicError::TooManyLevels`],
    /// checked in that order.
    pub fn check_aws_limits(&self) -> Result<(), TopicError> {
        let name = self.as_str();
        let mut counted = name;
        if name.starts_with('$') {
            if !reserved_allowed(name, Direction::Publish) {
                return Err(TopicError::ReservedTopic);
            }
            if let Some((_rule, rest)) =
                name.strip_prefix("$aws/rules/").and_then(|r| r.split_once('/'))
            {
                counted = rest;
            }
        }
        check_aws_size(counted)
    }
}

/// A filter a SUBSCRIBE asks for: 1 to 65,535 bytes, no NUL, `+` alone in its level, `#` alone in
/// the last level.
///
/// Built only through [`TopicFilter::new`] (or `TryFrom`/`FromStr`/`From<TopicName>`), so every
/// value is valid MQTT. IoT Core's extra rules are checked by [`TopicFilter::check_aws_limits`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(String);

impl TopicFilter {
    /// Checks `filter` against the MQTT 3.1.1 rules for a topic filter (§4.7.1).
    ///
    /// # Errors
    ///
    /// [`TopicError::Empty`], [`TopicError::TooLong`] (over [`MQTT_MAX_TOPIC_LEN`] bytes),
    /// [`TopicError::NulCharacter`] or [`TopicError::InvalidWildcard`].
    pub fn new(filter: impl Into<String>) -> Result<Self, TopicError> {
        let filter = filter.into();
        check_mqtt_common(&filter)?;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            let is_last = levels.peek().is_none();
            let valid = match level {
                "+" => true,
                "#" => is_last,
                other => !other.contains(['+', '#']),
            };
            if !valid {
                return Err(TopicError::InvalidWildcard);
            }
        }
        Ok(TopicFilter(filter))
    }

    /// The filter as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The filter as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Whether the filter has a `+` or `#` level (if not, it matches exactly one topic).
    pub fn has_wildcards(&self) -> bool {
        // Validation guarantees that '+' and '#' only ever appear as whole levels.
        self.0.contains(['+', '#'])
    }

    /// Checks AWS IoT Core's extra rules (AWS-IOT.md §3.3, §3.5).
    ///
    /// * `$share/<ShareName>/<filter>` is a shared subscription: `<ShareName>` has 1 to 128
    ///   characters and is not a wildcard, `<filter>` is not empty and follows the rules below.
    /// * A filter starting with `$` must be able to match at least one topic of a reserved family
    ///   clients may subscribe to (see `AWS_FAMILIES` in the source): `$aws/things/+/shadow/#`
    ///   and `$aws/events/#` pass, `$aws/rules/...` (publish only) and `$foo/#` do not. A `#`
    ///   must cover at least one level (IoT Core's `#` does not match the parent).
    /// * At most [`AWS_MAX_TOPIC_LEN`] bytes and [`AWS_MAX_TOPIC_SLASHES`] slashes, neither
    ///   counting a `$share/<ShareName>/` prefix.
    ///
    /// # Errors
    ///
    /// [`TopicError::ReservedTopic`] (also for a `$share` without a share name and a filter),
    /// [`TopicError::TooLong`] (also for a share name over 128 characters),
    /// [`TopicError::InvalidWildcard`] (a share name `+`), [`TopicError::Empty`] (nothing after
    /// `$share/<ShareName>/`) or [`TopicError::TooManyLevels`].
    pub fn check_aws_limits(&self) -> Result<(), TopicError> {
        let mut body = self.as_str();
        if let Some(shared) = body.strip_prefix("$share/") {
            let (share_name, inner) = shared.split_once('/').ok_or(TopicError::ReservedTopic)?;
            if share_name.is_empty() {
                return Err(TopicError::ReservedTopic);
            }
            if share_name == "+" {
                return Err(TopicError::InvalidWildcard);
            }
            let chars = share_name.chars().count();
            if chars > AWS_MAX_SHARE_NAME_CHARS {
                return Err(TopicError::TooLong { len: chars, max: AWS_MAX_SHARE_NAME_CHARS });
            }
            if inner.is_empty() {
                return Err(TopicError::Empty);
            }
            body = inner;
        }
        // A nested "$share/..." inside a shared subscription is not a family: ReservedTopic.
        if body.starts_with('$') && !reserved_allowed(body, Direction::Subscribe) {
            return Err(TopicError::ReservedTopic);
        }
        check_aws_size(body)
    }

    /// Whether `topic` matches this filter under `rule` (MQTT 3.1.1 §4.7). Allocation-free.
    ///
    /// * A filter without wildcards matches the equal topic only (topics are case sensitive).
    /// * `+` matches exactly one level, which may be empty: `a/+` matches `a/` but not `a/b/c`.
    /// * `#` matches any number of remaining levels. Under [`MatchRule::Mqtt`] that includes
    ///   zero (`a/#` matches `a`); under [`MatchRule::AwsIot`] it does not.
    /// * A filter starting with `+` or `#` never matches a topic starting with `$` (§4.7.2).
    ///
    /// A `$share/<name>/` prefix is matched literally, like any other level: a broker routing
    /// shared subscriptions strips it first.
    pub fn matches(&self, topic: &TopicName, rule: MatchRule) -> bool {
        let (filter, topic) = (self.as_str(), topic.as_str());
        if !self.has_wildcards() {
            return filter == topic;
        }
        if topic.starts_with('$') && filter.starts_with(['+', '#']) {
            return false;
        }
        let mut filter_levels = filter.split('/');
        let mut topic_levels = topic.split('/');
        loop {
            match (filter_levels.next(), topic_levels.next()) {
                (Some("#"), Some(_)) => return true,
                (Some("#"), None) => return rule == MatchRule::Mqtt,
                (Some("+"), Some(_)) => {}
                (Some(f), Some(t)) if f == t => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

impl From<TopicName> for TopicFilter {
    /// A topic name is always a valid filter (it matches that topic only).
    fn from(name: TopicName) -> Self {
        TopicFilter(String::from(&*name.0))
    }
}

/// Which wildcard-matching rule to apply; the caller always chooses explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchRule {
    /// MQTT 3.1.1 §4.7: `a/#` matches `a` (the parent) too; filters starting with a wildcard do
    /// not match topics starting with `$`.
    Mqtt,
    /// AWS IoT Core: like [`MatchRule::Mqtt`] except `a/#` does NOT match `a` (it matches `a/`,
    /// `a/b`, `a/b/c`).
    AwsIot,
}

macro_rules! string_newtype_impls {
    ($ty:ident) => {
        impl TryFrom<String> for $ty {
            type Error = TopicError;
            fn try_from(value: String) -> Result<Self, TopicError> {
                $ty::new(value)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = TopicError;
            fn try_from(value: &str) -> Result<Self, TopicError> {
                $ty::new(value)
            }
        }

        impl FromStr for $ty {
            type Err = TopicError;
            fn from_str(s: &str) -> Result<Self, TopicError> {
                $ty::new(s)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype_impls!(TopicName);
string_newtype_impls!(TopicFilter);

/// The MQTT rules shared by names and filters: not empty, fits a 16-bit length, no NUL.
fn check_mqtt_common(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > MQTT_MAX_TOPIC_LEN {
        return Err(TopicError::TooLong { len: topic.len(), max: MQTT_MAX_TOPIC_LEN });
    }
    if topic.contains('\0') {
        return Err(TopicError::NulCharacter);
    }
    Ok(())
}

/// IoT Core's size limits on the counted part of a topic (prefixes already removed).
fn check_aws_size(counted: &str) -> Result<(), TopicError> {
    if counted.len() > AWS_MAX_TOPIC_LEN {
        return Err(TopicError::TooLong { len: counted.len(), max: AWS_MAX_TOPIC_LEN });
    }
    let slashes = counted.bytes().filter(|&b| b == b'/').count();
    if slashes > AWS_MAX_TOPIC_SLASHES {
        return Err(TopicError::TooManyLevels { slashes, max: AWS_MAX_TOPIC_SLASHES });
    }
    Ok(())
}

/// Whether a reserved topic is used to publish (a [`TopicName`]) or to subscribe (a filter).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Publish,
    Subscribe,
}

/// One level of a reserved family.
enum Seg {
    /// This exact text.
    Lit(&'static str),
    /// A name chosen by the user (thing, rule): any non-empty level.
    Var,
}

/// What clients may do with a family's topics.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Publish requests and subscribe to responses.
    Both,
    /// Only publish (Basic Ingest: nothing is ever delivered on these topics).
    PublishOnly,
    /// Only subscribe (IoT Core alone publishes there).
    SubscribeOnly,
}

/// A family of reserved `$aws` topics a client may use.
struct Family {
    /// The fixed first levels.
    levels: &'static [Seg],
    /// Whether more levels follow (`/...`: at least one, not all empty), or the topic ends here.
    tail: bool,
    /// Whether clients may publish, subscribe or both.
    allowed: Use,
}

const fn fam(levels: &'static [Seg], tail: bool, allowed: Use) -> Family {
    Family { levels, tail, allowed }
}

/// The `$aws/...` families clients may use (AWS-IOT.md §3.5, from the IoT Core reserved-topics
/// page). Everything else starting with `$` is [`TopicError::ReservedTopic`].
///
/// The levels below the family (`update/accepted`, `notify-next`, ...) are not checked: AWS adds
/// new ones, and the broker answers unknown ones itself. Direction is checked per family only:
/// lifecycle events and tunnel notifications come from IoT Core, Basic Ingest topics deliver
/// nothing; within the other families a wrong direction is the policy's business.
const AWS_FAMILIES: &[Family] = {
    use Seg::{Lit, Var};
    use Use::{Both, PublishOnly, SubscribeOnly};
    &[
        fam(&[Lit("$aws"), Lit("things"), Var, Lit("shadow")], true, Both),
        fam(&[Lit("$aws"), Lit("things"), Var, Lit("jobs")], true, Both),
        fam(&[Lit("$aws"), Lit("things"), Var, Lit("defender"), Lit("metrics")], true, Both),
        fam(
            &[Lit("$aws"), Lit("things"), Var, Lit("tunnels"), Lit("notify")],
            false,
            SubscribeOnly,
        ),
        fam(&[Lit("$aws"), Lit("things"), Var, Lit("streams")], true, Both),
        fam(&[Lit("$aws"), Lit("events")], true, SubscribeOnly),
        fam(&[Lit("$aws"), Lit("certificates"), Lit("create")], true, Both),
        fam(&[Lit("$aws"), Lit("certificates"), Lit("create-from-csr")], true, Both),
        fam(&[Lit("$aws"), Lit("provisioning-templates")], true, Both),
        // Basic Ingest: `$aws/rules/<rule>/<topic>` goes straight to a rule.
        fam(&[Lit("$aws"), Lit("rules"), Var], true, PublishOnly),
    ]
};

/// Whether `topic` (a name, or a filter which may contain wildcards) can address at least one
/// topic of an allowed family for `direction`. A `+` stands for any single level; a `#` for one
/// or more levels (IoT Core's rule). For a name this is plain membership.
fn reserved_allowed(topic: &str, direction: Direction) -> bool {
    AWS_FAMILIES
        .iter()
        .filter(|family| match direction {
            Direction::Publish => family.allowed != Use::SubscribeOnly,
            Direction::Subscribe => family.allowed != Use::PublishOnly,
        })
        .any(|family| family_may_match(family, topic))
}

/// Whether `topic` (name or filter) can address a topic of `family`; see [`reserved_allowed`].
fn family_may_match(family: &Family, topic: &str) -> bool {
    let fixed = family.levels.len();
    let mut tail_len = 0usize; // bytes of the tail levels, without separators
    let mut count = 0usize;
    for (i, level) in topic.split('/').enumerate() {
        count = i + 1;
        if level == "#" {
            return i < fixed || family.tail;
        }
        match family.levels.get(i) {
            Some(Seg::Lit(text)) if level == "+" || level == *text => {}
            Some(Seg::Var) if !level.is_empty() => {}
            Some(_) => return false,
            None if family.tail => tail_len += level.len(),
            None => return false,
        }
    }
    if family.tail {
        // `$aws/things/x/shadow/` or `.../shadow//` is no topic of the family.
        count > fixed && tail_len > 0
    } else {
        count == fixed
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use std::vec::Vec;

    fn name(s: &str) -> TopicName {
        TopicName::new(s).unwrap()
    }

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::new(s).unwrap()
    }

    #[test]
    fn both_reject_empty() {
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert_eq!(TopicFilter::new(""), Err(TopicError::Empty));
    }

    #[test]
    fn both_reject_over_mqtt_length_and_accept_at_it() {
        let max = "a".repeat(MQTT_MAX_TOPIC_LEN);
        assert!(TopicName::new(max.clone()).is_ok());
        assert!(TopicFilter::new(max.clone()).is_ok());
        let over = format!("{max}b");
        let err = TopicError::TooLong { len: 65_536, max: MQTT_MAX_TOPIC_LEN };
        assert_eq!(TopicName::new(over.clone()), Err(err.clone()));
        assert_eq!(TopicFilter::new(over), Err(err));
    }

    #[test]
    fn both_reject_nul() {
        assert_eq!(TopicName::new("a/\0/b"), Err(TopicError::NulCharacter));
        assert_eq!(TopicFilter::new("a/\0"), Err(TopicError::NulCharacter));
    }

    #[test]
    fn name_rejects_wildcards() {
        for bad in ["+", "#", "a/+", "a/#", "a+b", "sensor/#/x"] {
            assert_eq!(TopicName::new(bad), Err(TopicError::WildcardInName), "{bad}");
        }
    }

    #[test]
    fn filter_rejects_misplaced_wildcards() {
        for bad in ["a+", "a/b#", "#/a", "a/#/b", "++", "+#", "a/#/#", "a/+b/c", "##"] {
            assert_eq!(TopicFilter::new(bad), Err(TopicError::InvalidWildcard), "{bad}");
        }
        for good in ["+", "#", "+/+", "a/+/c", "a/#", "/#", "+/#", "a//b", "/", "$SYS/#"] {
            assert!(TopicFilter::new(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn conversions_and_accessors() {
        let n: TopicName = "a/b/c".parse().unwrap();
        assert_eq!(n.levels().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(n.to_string(), "a/b/c");
        assert_eq!(TopicName::try_from("a/b/c".to_string()), Ok(n.clone()));
        let f = TopicFilter::from(n.clone());
        assert_eq!(f.as_ref(), "a/b/c");
        assert!(!f.has_wildcards());
        assert!(filter("a/+").has_wildcards() && filter("#").has_wildcards());
        assert_eq!(TopicFilter::try_from("x/#"), Ok(filter("x/#")));
        assert_eq!(n.into_string(), f.into_string());
    }

    #[test]
    fn matcher_table() {
        use MatchRule::{AwsIot, Mqtt};
        // (filter, topic, matches under Mqtt, matches under AwsIot)
        let table = [
            ("a/#", "a", true, false),
            ("a/#", "a/", true, true),
            ("a/#", "a/b", true, true),
            ("a/#", "a/b/c", true, true),
            ("a/#", "ab", false, false),
            ("#", "a", true, true),
            ("#", "/", true, true),
            ("#", "$aws/things/x/shadow/update", false, false),
            ("#", "$SYS/b", false, false),
            ("+/b", "$SYS/b", false, false),
            ("+/b", "x/b", true, true),
            ("$SYS/#", "$SYS/b", true, true),
            ("$SYS/+", "$SYS/b", true, true),
            ("$aws/things/+/shadow/#", "$aws/things/x/shadow/update", true, true),
            ("a/+", "a/", true, true),
            ("a/+", "a", false, false),
            ("a/+", "a/b/c", false, false),
            ("+", "a/b", false, false),
            ("+", "a", true, true),
            ("/+", "/a", true, true),
            ("+/+", "/", true, true),
            ("a/+/c", "a/b/c", true, true),
            ("a/+/c", "a//c", true, true),
            ("a/+/c", "a/b/d", false, false),
            ("a/+/c", "a/b/c/d", false, false),
            ("a/+/#", "a/b", true, false),
            ("a/+/#", "a/b/c/d", true, true),
            ("a//b", "a//b", true, true),
            ("a/b", "a/B", false, false),
            ("a/b", "a/b/", false, false),
            ("a/b/", "a/b", false, false),
            ("$share/g/a", "a", false, false),
        ];
        for (f, t, mqtt, aws) in table {
            let topic = name(t);
            assert_eq!(filter(f).matches(&topic, Mqtt), mqtt, "{f} vs {t} (Mqtt)");
            assert_eq!(filter(f).matches(&topic, AwsIot), aws, "{f} vs {t} (AwsIot)");
        }
    }

    #[test]
    fn aws_length_limit() {
        assert_eq!(name(&"a".repeat(256)).check_aws_limits(), Ok(()));
        let err = TopicError::TooLong { len: 257, max: AWS_MAX_TOPIC_LEN };
        assert_eq!(name(&"a".repeat(257)).check_aws_limits(), Err(err.clone()));
        assert_eq!(filter(&"a".repeat(256)).check_aws_limits(), Ok(()));
        assert_eq!(filter(&"a".repeat(257)).check_aws_limits(), Err(err));
        // Bytes, not characters: 128 two-byte characters are 256 bytes.
        assert_eq!(name(&"é".repeat(128)).check_aws_limits(), Ok(()));
        assert!(name(&format!("{}a", "é".repeat(128))).check_aws_limits().is_err());
    }

    #[test]
    fn aws_slash_limit() {
        assert_eq!(name("1/2/3/4/5/6/7/8").check_aws_limits(), Ok(()));
        let err = TopicError::TooManyLevels { slashes: 8, max: AWS_MAX_TOPIC_SLASHES };
        assert_eq!(name("1/2/3/4/5/6/7/8/9").check_aws_limits(), Err(err.clone()));
        assert_eq!(filter("+/2/3/4/5/6/7/#").check_aws_limits(), Ok(()));
        assert_eq!(filter("+/2/3/4/5/6/7/8/#").check_aws_limits(), Err(err.clone()));
        assert_eq!(name("////////").check_aws_limits(), Err(err));
    }

    #[test]
    fn aws_basic_ingest_prefix_not_counted() {
        let eight_levels = "1/2/3/4/5/6/7/8";
        assert_eq!(name(&format!("$aws/rules/my_rule/{eight_levels}")).check_aws_limits(), Ok(()));
        let long = format!("$aws/rules/my_rule/{}", "a".repeat(256));
        assert_eq!(name(&long).check_aws_limits(), Ok(()));
        let err = TopicError::TooLong { len: 257, max: AWS_MAX_TOPIC_LEN };
        assert_eq!(name(&format!("{long}a")).check_aws_limits(), Err(err));
        let nine = format!("$aws/rules/r/{eight_levels}/9");
        let err = TopicError::TooManyLevels { slashes: 8, max: AWS_MAX_TOPIC_SLASHES };
        assert_eq!(name(&nine).check_aws_limits(), Err(err));
        for bad in ["$aws/rules/r", "$aws/rules/r/", "$aws/rules//x", "$aws/rules"] {
            assert_eq!(name(bad).check_aws_limits(), Err(TopicError::ReservedTopic), "{bad}");
        }
    }

    #[test]
    fn aws_share_prefix() {
        assert_eq!(filter("$share/g/1/2/3/4/5/6/7/#").check_aws_limits(), Ok(()));
        let err = TopicError::TooManyLevels { slashes: 8, max: AWS_MAX_TOPIC_SLASHES };
        assert_eq!(filter("$share/g/1/2/3/4/5/6/7/8/#").check_aws_limits(), Err(err));
        let long = format!("$share/g/{}", "a".repeat(256));
        assert_eq!(filter(&long).check_aws_limits(), Ok(()));
        let err = TopicError::TooLong { len: 257, max: AWS_MAX_TOPIC_LEN };
        assert_eq!(filter(&format!("{long}a")).check_aws_limits(), Err(err));
        let share = "é".repeat(128);
        assert_eq!(filter(&format!("$share/{share}/a")).check_aws_limits(), Ok(()));
        let err = TopicError::TooLong { len: 129, max: 128 };
        assert_eq!(filter(&format!("$share/{share}x/a")).check_aws_limits(), Err(err));
        assert_eq!(filter("$share/+/a").check_aws_limits(), Err(TopicError::InvalidWildcard));
        assert_eq!(filter("$share/g/").check_aws_limits(), Err(TopicError::Empty));
        for bad in ["$share", "$share/g", "$share//a", "$share/#", "$share/g/$share/h/a"] {
            assert_eq!(filter(bad).check_aws_limits(), Err(TopicError::ReservedTopic), "{bad}");
        }
        assert_eq!(filter("$share/g/$aws/things/+/shadow/#").check_aws_limits(), Ok(()));
        // A $share topic name is just a reserved topic nobody may publish to.
        assert_eq!(name("$share/g/a").check_aws_limits(), Err(TopicError::ReservedTopic));
    }

    #[test]
    fn aws_reserved_names() {
        for good in [
            "$aws/things/x/shadow/update",
            "$aws/things/x/shadow/name/n/update/accepted",
            "$aws/things/x/jobs/notify-next",
            "$aws/things/x/defender/metrics/json",
            "$aws/things/x/streams/s/data/json",
            "$aws/certificates/create/json",
            "$aws/certificates/create-from-csr/json",
            "$aws/provisioning-templates/t/provision/json",
            "$aws/rules/r/x",
        ] {
            assert_eq!(name(good).check_aws_limits(), Ok(()), "{good}");
        }
        for bad in [
            "$foo/bar",
            "$SYS/b",
            "$",
            "$aws",
            "$aws/",
            "$aws/things/x/shadow",
            "$aws/things/x/shadow/",
            "$aws/things//shadow/update",
            "$aws/things/x/tunnels/notify",
            "$aws/things/x/tunnels/notify/x",
            "$aws/events/presence/connected/c1",
            "$aws/things/x/other/y",
            "$aws/certificates/createx/json",
            "$AWS/things/x/shadow/update",
        ] {
            assert_eq!(name(bad).check_aws_limits(), Err(TopicError::ReservedTopic), "{bad}");
        }
    }

    #[test]
    fn aws_reserved_filters() {
        for good in [
            "$aws/things/x/shadow/update/accepted",
            "$aws/things/+/shadow/#",
            "$aws/things/+/shadow/+/accepted",
            "$aws/things/x/tunnels/notify",
            "$aws/things/+/tunnels/+",
            "$aws/events/#",
            "$aws/events/presence/connected/c1",
            "$aws/+/x/jobs/#",
            "$aws/#",
            "#",
            "+/x",
        ] {
            assert_eq!(filter(good).check_aws_limits(), Ok(()), "{good}");
        }
        for bad in [
            "$aws/rules/r/x",
            "$aws/rules/#",
            "$foo/bar",
            "$foo/#",
            "$SYS/#",
            "$aws/things/x/tunnels/notify/#",
            "$aws/things/x/shadow",
            "$aws/nope/#",
        ] {
            assert_eq!(filter(bad).check_aws_limits(), Err(TopicError::ReservedTopic), "{bad}");
        }
    }
}
