//! Fuzz target `topic_filter`: arbitrary text (bytes read as lossy UTF-8) as a topic name and
//! as a topic filter.
//!
//! It checks that validation, `check_aws_limits` and matching never panic, and these truths
//! under both `MatchRule`s:
//!
//! * a valid name is a valid filter, and the filter made from a name matches that name;
//! * whatever `MatchRule::AwsIot` matches, `MatchRule::Mqtt` matches too;
//! * `#` matches exactly the names that do not start with `$`.
#![no_main]

use iot443_proto::topic::{MatchRule, TopicFilter, TopicName};
use libfuzzer_sys::fuzz_target;

/// Topic names every filter is matched against.
const TOPICS: &[&str] = &[
    "a/b/c",
    "a",
    "a/",
    "a//b",
    "/",
    "sensor",
    "sensor/42/temp",
    "sdkTest/sub",
    "$aws/things/t/shadow/update",
];

/// Filters every name is matched against.
const FILTERS: &[&str] = &["#", "+", "+/+", "a/#", "a/+/c", "sensor/#", "$aws/things/+/shadow/#"];

const RULES: [MatchRule; 2] = [MatchRule::Mqtt, MatchRule::AwsIot];

/// Matches under both rules, checking that `AwsIot` never matches more than `Mqtt`.
fn matches_both(filter: &TopicFilter, topic: &TopicName) -> [bool; 2] {
    let [mqtt, aws] = RULES.map(|rule| filter.matches(topic, rule));
    assert!(mqtt || !aws, "{filter} matches {topic} under AwsIot but not under Mqtt");
    [mqtt, aws]
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let filter = TopicFilter::new(text.as_ref());
    let name = TopicName::new(text.as_ref());

    if let Ok(filter) = &filter {
        let _ = filter.check_aws_limits();
        let _ = filter.has_wildcards();
        for topic in TOPICS {
            let topic = TopicName::new(*topic).expect("fixed topics are valid");
            matches_both(filter, &topic);
        }
    }

    if let Ok(name) = &name {
        let _ = name.check_aws_limits();
        assert_eq!(filter.as_ref().ok().map(TopicFilter::as_str), Some(name.as_str()));
        let own = TopicFilter::from(name.clone());
        assert_eq!(matches_both(&own, name), [true, true], "{own} does not match itself");
        for fixed in FILTERS {
            let fixed = TopicFilter::new(*fixed).expect("fixed filters are valid");
            let matched = matches_both(&fixed, name);
            if fixed.as_str() == "#" {
                let expected = !name.as_str().starts_with('$');
                assert_eq!(matched, [expected, expected], "# against {name}");
            }
        }
    }
});
