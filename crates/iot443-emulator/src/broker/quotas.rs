//! IoT Core's rate quotas as token buckets on the caller's clock (AWS-IOT.md §3.3, §3.6).
//!
//! Only enforced with [`BrokerConfig::strict_rates`](super::BrokerConfig::strict_rates):
//!
//! | quota | bucket | excess |
//! |---|---|---|
//! | publishes per connection, inbound + outbound | 100 per second, burst 100 | discarded and counted |
//! | CONNECT per client id | 1 per second, burst 1 | connection closed, no CONNACK |
//! | replay of stored messages to a resumed session | 10 per second, burst 10 | waits |
//!
//! A bucket holds up to `burst` tokens and gains `rate` tokens per second; an action takes one
//! token or is refused. It is implemented as a generic cell rate algorithm (one instant, no
//! floating point): the bucket remembers when it will be full again.

use iot443_proto::Instant;
use std::collections::BTreeMap;
use std::time::Duration;

/// IoT Core's publish quota per connection (inbound and outbound together), per second.
pub const PUBLISHES_PER_SECOND: u32 = 100;
/// IoT Core's CONNECT quota per client id, per second.
pub const CONNECTS_PER_SECOND: u32 = 1;
/// IoT Core's pace for replaying stored messages to a resumed persistent session, per second.
pub const REPLAY_PER_SECOND: u32 = 10;

/// A token bucket: `burst` tokens at most, refilled at `rate` per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenBucket {
    /// Time to earn one token.
    interval: Duration,
    /// Time to earn a full bucket.
    burst: Duration,
    /// When the bucket is full again (the "theoretical arrival time"); a full bucket has it in
    /// the past.
    full_at: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `per_second` tokens per second.
    pub(crate) fn new(per_second: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / per_second.max(1);
        TokenBucket { interval, burst: interval * burst.max(1), full_at: Instant::ZERO }
    }

    /// Whether a token is available at `now`.
    pub(crate) fn has_token(&self, now: Instant) -> bool {
        let base = self.full_at.max(now);
        (base + self.interval).saturating_duration_since(now) <= self.burst
    }

    /// Takes a token if one is available at `now`.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        if !self.has_token(now) {
            return false;
        }
        self.full_at = self.full_at.max(now) + self.interval;
        true
    }

    /// The earliest instant at which a token is available (in the past if one is now).
    pub(crate) fn next_token_at(&self) -> Instant {
        // A token is available at t when full_at + interval - t <= burst.
        let due = (self.full_at + self.interval).duration_since_origin().saturating_sub(self.burst);
        Instant::from_duration(due)
    }
}

/// The 1 CONNECT per second per client id quota: one bucket per recently seen client id.
#[derive(Debug, Default)]
pub(crate) struct ConnectLimiter {
    buckets: BTreeMap<String, TokenBucket>,
}

impl ConnectLimiter {
    /// Takes a CONNECT token for `client_id`; `false` when the client id is over its quota.
    pub(crate) fn try_connect(&mut self, now: Instant, client_id: &str) -> bool {
        match self.buckets.get_mut(client_id) {
            Some(bucket) => bucket.try_take(now),
            None => {
                let mut bucket = TokenBucket::new(CONNECTS_PER_SECOND, 1);
                let taken = bucket.try_take(now);
                self.buckets.insert(client_id.to_owned(), bucket);
                taken
            }
        }
    }

    /// Forgets client ids whose bucket is full again (they would be created full anyway).
    pub(crate) fn prune(&mut self, now: Instant) {
        self.buckets.retain(|_, bucket| bucket.full_at > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ms(ms: u64) -> Instant {
        Instant::from_duration(Duration::from_millis(ms))
    }

    #[test]
    fn a_full_bucket_allows_a_burst_then_refills_at_the_rate() {
        let mut bucket = TokenBucket::new(10, 10);
        let now = at_ms(5_000);
        assert_eq!((0..20).filter(|_| bucket.try_take(now)).count(), 10);
        assert_eq!(bucket.next_token_at(), at_ms(5_100));
        assert!(!bucket.try_take(at_ms(5_099)));
        assert!(bucket.try_take(at_ms(5_100)));
        assert!(!bucket.try_take(at_ms(5_100)));
        // After a long pause the bucket is full again, not fuller.
        assert_eq!((0..20).filter(|_| bucket.try_take(at_ms(60_000))).count(), 10);
    }

    #[test]
    fn connect_limiter_allows_one_per_second_per_client_id() {
        let mut limiter = ConnectLimiter::default();
        assert!(limiter.try_connect(at_ms(0), "a"));
        assert!(limiter.try_connect(at_ms(0), "b"));
        assert!(!limiter.try_connect(at_ms(999), "a"));
        assert!(limiter.try_connect(at_ms(1_000), "a"));
        limiter.prune(at_ms(5_000));
        assert!(limiter.buckets.is_empty());
    }
}
