//! The broker's timers for many connections and sessions: a min-heap of `(instant, key)`
//! entries, so that the next deadline is known in O(1) and a due one found in O(log n), where
//! scanning every connection at every event made 10,000 idle connections cost most of a core.
//!
//! Entries may be stale: a keep-alive deadline only moves later as packets arrive, and the heap
//! is not touched for that. The owner checks an entry when it comes due and either acts on it
//! or schedules the key again at its current deadline; a key gone meanwhile is skipped. So
//! [`Deadlines::next`] may be earlier than the real next deadline (a wake-up that finds nothing
//! to do), never later.

use iot443_proto::Instant;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A min-heap of deadlines by key (see the module's docs).
#[derive(Debug)]
pub(crate) struct Deadlines<K: Ord> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines { heap: BinaryHeap::new() }
    }
}

impl<K: Ord> Deadlines<K> {
    /// Adds an entry for `key` at `at` (an earlier entry of the same key stays until it is due).
    pub(crate) fn schedule(&mut self, at: Instant, key: K) {
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest entry's instant: no deadline is earlier.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| entry)
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
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
    fn pops_only_what_is_due_in_order() {
        let mut deadlines = Deadlines::default();
        deadlines.schedule(at(30), "b");
        deadlines.schedule(at(10), "a");
        deadlines.schedule(at(30), "c");
        assert_eq!(deadlines.next(), Some(at(10)));
        assert_eq!(deadlines.pop_due(at(9)), None);
        assert_eq!(deadlines.pop_due(at(30)), Some((at(10), "a")));
        assert_eq!(deadlines.pop_due(at(30)), Some((at(30), "b")));
        assert_eq!(deadlines.pop_due(at(30)), Some((at(30), "c")));
        assert_eq!(deadlines.pop_due(at(99)), None);
        assert_eq!(deadlines.next(), None);
    }

    proptest! {
        /// Whatever was scheduled comes out once, when due, earliest first.
        #[test]
        fn every_entry_comes_out_once_when_due(times in proptest::collection::vec(0u64..100, 0..50), now in 0u64..100) {
            let mut deadlines = Deadlines::default();
            for (key, secs) in times.iter().enumerate() {
                deadlines.schedule(at(*secs), key);
            }
            let mut popped = Vec::new();
            while let Some((when, key)) = deadlines.pop_due(at(now)) {
                prop_assert!(when <= at(now));
                prop_assert_eq!(times.get(key).map(|secs| at(*secs)), Some(when));
                popped.push(when);
            }
            prop_assert!(popped.is_sorted());
            prop_assert_eq!(popped.len(), times.iter().filter(|secs| **secs <= now).count());
            prop_assert_eq!(deadlines.len(), times.len() - popped.len());
        }
    }
}
