//! The last topic a client published to, checked once: a device that publishes to one topic
//! (the usual case) pays neither the topic checks nor an allocation for each message.

use iot443_proto::topic::TopicName;
use std::sync::Mutex;

/// The last topic checked, shared by a client's clones.
#[derive(Debug, Default)]
pub(crate) struct TopicCache {
    last: Mutex<Option<TopicName>>,
}

impl TopicCache {
    /// `topic` as a checked [`TopicName`]: the cached one when it is the same text, else what
    /// `check` makes of it (kept for the next call when it passed).
    pub(crate) fn get_or_check<E>(
        &self,
        topic: &str,
        check: impl FnOnce(&str) -> Result<TopicName, E>,
    ) -> Result<TopicName, E> {
        if let Ok(last) = self.last.lock()
            && let Some(name) = last.as_ref().filter(|name| name.as_str() == topic)
        {
            return Ok(name.clone());
        }
        let name = check(topic)?;
        if let Ok(mut last) = self.last.lock() {
            *last = Some(name.clone());
        }
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_topic_is_checked_once_and_another_replaces_it() {
        let cache = TopicCache::default();
        let checks = std::cell::Cell::new(0);
        let check = |topic: &str| {
            checks.set(checks.get() + 1);
            TopicName::new(topic)
        };
        let first = cache.get_or_check("a/b", check).unwrap();
        let again = cache.get_or_check("a/b", check).unwrap();
        assert_eq!((first.as_str(), again.as_str()), ("a/b", "a/b"));
        assert_eq!(checks.get(), 1);
        cache.get_or_check("a/c", check).unwrap();
        cache.get_or_check("a/b", check).unwrap();
        assert_eq!(checks.get(), 3);
    }

    #[test]
    fn a_topic_that_fails_its_check_is_not_kept() {
        let cache = TopicCache::default();
        let check = |topic: &str| TopicName::new(topic);
        assert!(cache.get_or_check("a/#", check).is_err());
        assert!(cache.get_or_check("a/#", check).is_err());
        assert!(cache.last.lock().unwrap().is_none());
    }
}
