//! Property tests for `iot443_proto::topic`: validation never panics, and the matcher agrees
//! with simple truths about names, `+` and `#` under both matching rules.
//!
//! The number of cases is 256 locally and 10,000 when `CI=true`.

use iot443_proto::topic::{MatchRule, TopicFilter, TopicName};
use proptest::prelude::*;

fn cases() -> u32 {
    if std::env::var("CI").as_deref() == Ok("true") { 10_000 } else { 256 }
}

/// Valid topic names: 1 to 6 levels of ordinary, `$`, space and non-ASCII characters.
fn topic_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9_$ é/]{0,4}", 1..6)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("non-empty", |s| !s.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn new_never_panics(s in any::<String>()) {
        let _ = TopicName::new(s.clone()).map(|n| n.check_aws_limits());
        let _ = TopicFilter::new(s).map(|f| f.check_aws_limits());
    }

    #[test]
    fn new_never_panics_on_topic_alphabet(s in "[a$+#/\0é]{0,12}") {
        let name = TopicName::new(s.clone());
        if let Ok(n) = &name {
            let _ = n.check_aws_limits();
        }
        if let Ok(f) = TopicFilter::new(s) {
            let _ = f.check_aws_limits();
            if let Ok(n) = name {
                let _ = f.matches(&n, MatchRule::Mqtt);
            }
        }
    }

    #[test]
    fn a_name_is_a_filter_matching_itself(s in topic_name()) {
        let n = TopicName::new(s.clone()).unwrap();
        let f = TopicFilter::new(s).unwrap();
        prop_assert_eq!(&f, &TopicFilter::from(n.clone()));
        prop_assert!(f.matches(&n, MatchRule::Mqtt));
        prop_assert!(f.matches(&n, MatchRule::AwsIot));
    }

    #[test]
    fn plus_replacing_one_level_matches(s in topic_name(), index in any::<prop::sample::Index>()) {
        let n = TopicName::new(s).unwrap();
        let mut levels: Vec<&str> = n.levels().collect();
        let i = index.index(levels.len());
        levels[i] = "+";
        let f = TopicFilter::new(levels.join("/")).unwrap();
        let expected = !(i == 0 && n.as_str().starts_with('$'));
        prop_assert_eq!(f.matches(&n, MatchRule::Mqtt), expected);
        prop_assert_eq!(f.matches(&n, MatchRule::AwsIot), expected);
    }

    #[test]
    fn hash_matches_every_topic_not_starting_with_dollar(s in topic_name()) {
        let n = TopicName::new(s).unwrap();
        let all = TopicFilter::new("#").unwrap();
        let expected = !n.as_str().starts_with('$');
        prop_assert_eq!(all.matches(&n, MatchRule::Mqtt), expected);
        prop_assert_eq!(all.matches(&n, MatchRule::AwsIot), expected);
    }

    #[test]
    fn trailing_hash_matches_parent_only_under_mqtt(s in topic_name()) {
        let n = TopicName::new(s.clone()).unwrap();
        let f = TopicFilter::new(format!("{s}/#")).unwrap();
        prop_assert!(f.matches(&n, MatchRule::Mqtt));
        prop_assert!(!f.matches(&n, MatchRule::AwsIot));
    }
}
