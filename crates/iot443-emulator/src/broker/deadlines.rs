//! The broker's timers for many connections and sessions: an ordered set of `(instant, key)`,
//! kept exact as deadlines move, so that the next deadline is known in O(1) and a due one taken
//! in O(log n) — scanning every connection at every event made 10,000 idle connections cost
//! most of a core at each keep-alive round.

use iot443_proto::Instant;
use std::collections::BTreeSet;

/// Deadlines by key, one entry per key that has one; the owner moves an entry when its
/// deadline moves ([`Deadlines::reschedule`]).
#[derive(Debug)]
pub(crate) struct Deadlines<K: Ord> {
    entries: BTreeSet<(Instant, K)>,
}

impl<K: Ord> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines { entries: BTreeSet::new() }
    }
}

impl<K: Ord> Deadlines<K> {
    /// Adds `key`'s deadline `at`.
    pub(crate) fn insert(&mut self, at: Instant, key: K) {
        self.entries.insert((at, key));
    }

    /// Removes `key`'s deadline `at`, if it is there.
    pub(crate) fn remove(&mut self, at: Instant, key: K) {
        self.entries.remove(&(at, key));
    }

    /// Moves `key`'s deadline from `from` to `to` (nothing when they are equal).
    pub(crate) fn reschedule(&mut self, from: Instant, to: Instant, key: K)
    where
        K: Clone,
    {
        if from != to {
            self.entries.remove(&(from, key.clone()));
            self.entries.insert((to, key));
        }
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.entries.first().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        if self.next()? > now {
            return None;
        }
        self.entries.pop_first()
    }

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn at(secs: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(secs)
    }

    #[test]
    fn pops_only_what_is_due_in_order_and_follows_moves() {
        let mut deadlines = Deadlines::default();
        deadlines.insert(at(30), "b");
        deadlines.insert(at(10), "a");
        deadlines.insert(at(30), "c");
        deadlines.reschedule(at(30), at(50), "c");
        deadlines.remove(at(99), "b"); // not its deadline: stays
        assert_eq!(deadlines.next(), Some(at(10)));
        assert_eq!(deadlines.pop_due(at(9)), None);
        assert_eq!(deadlines.pop_due(at(30)), Some((at(10), "a")));
        assert_eq!(deadlines.pop_due(at(30)), Some((at(30), "b")));
        assert_eq!(deadlines.pop_due(at(30)), None);
        assert_eq!(deadlines.next(), Some(at(50)));
        deadlines.remove(at(50), "c");
        assert_eq!(deadlines.next(), None);
    }

    proptest! {
        /// After any moves, what comes out is each key once, at its last deadline, when due,
        /// earliest first.
        #[test]
        fn every_key_comes_out_once_at_its_last_deadline(
            first in proptest::collection::vec(0u64..100, 0..40),
            moved in proptest::collection::vec(0u64..100, 0..40),
            now in 0u64..100,
        ) {
            let mut deadlines = Deadlines::default();
            let mut last: Vec<u64> = first.clone();
            for (key, secs) in first.iter().enumerate() {
                deadlines.insert(at(*secs), key);
            }
            for (key, secs) in moved.iter().enumerate() {
                if let Some(current) = last.get_mut(key) {
                    deadlines.reschedule(at(*current), at(*secs), key);
                    *current = *secs;
                }
            }
            let mut popped = Vec::new();
            while let Some((when, key)) = deadlines.pop_due(at(now)) {
                prop_assert!(when <= at(now));
                prop_assert_eq!(last.get(key).map(|secs| at(*secs)), Some(when));
                popped.push(when);
            }
            prop_assert!(popped.is_sorted());
            prop_assert_eq!(popped.len(), last.iter().filter(|secs| **secs <= now).count());
            prop_assert_eq!(deadlines.len(), last.len() - popped.len());
        }
    }
}
