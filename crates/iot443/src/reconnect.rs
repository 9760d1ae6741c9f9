//! When and how fast to reconnect: [`ReconnectPolicy`], the full-jitter backoff, and how a
//! lost connection is classified ([`Cause`]).
//!
//! Two kinds of failure are told apart. The network failing (unreachable, timed out, cut) is
//! retried with exponential backoff and full jitter. The endpoint *refusing* the client (a TLS
//! alert, a CONNACK refusal, or the connection closed right after CONNECT or right after a
//! PUBLISH/SUBSCRIBE that got no acknowledgement — a policy denial or a duplicate client id) is
//! reported with its likely cause and retried more slowly, so that a misconfigured fleet does not
//! storm the endpoint.

pub use crate::offline_queue::{OfflineQueue, WhenFull};
use rand::Rng;
use std::fmt;
use std::time::Duration;

/// How the client reconnects after losing its connection.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Reconnect at all. Default true.
    pub enabled: bool,
    /// The first backoff ceiling. Default 1 s.
    pub min_delay: Duration,
    /// The largest backoff ceiling. Default 120 s.
    pub max_delay: Duration,
    /// The smallest delay after a refusal by the endpoint. Default 5 s.
    pub refused_min_delay: Duration,
    /// A connection up this long is healthy: the backoff starts again from `min_delay`.
    /// Default 30 s. A connection on which the endpoint acknowledged traffic is healthy too.
    pub healthy_after: Duration,
    /// After this many refusals in a row with the same oldest unacknowledged QoS 1 message,
    /// that message is set aside as probably refused by policy. Default 3.
    pub refusals_before_dead_letter: u32,
    /// Seeds the jitter's random source, so that a test sees the same delays every run;
    /// `None` (the default) seeds it from the operating system.
    pub jitter_seed: Option<u64>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            enabled: true,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(120),
            refused_min_delay: Duration::from_secs(5),
            healthy_after: Duration::from_secs(30),
            refusals_before_dead_letter: 3,
            jitter_seed: None,
        }
    }
}

/// Why a connection ended or a connection attempt failed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The network: unreachable, timed out, reset, cut, or a dead link (no PINGRESP).
    Network(String),
    /// The endpoint refused the client; the text gives the likely cause.
    Refused(String),
}

impl Cause {
    /// Whether the endpoint refused the client (as opposed to the network failing).
    pub fn is_refusal(&self) -> bool {
        matches!(self, Cause::Refused(_))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Network(text) => write!(f, "network: {text}"),
            Cause::Refused(text) => write!(f, "refused by the endpoint: {text}"),
        }
    }
}

/// Exponential backoff with full jitter: the n-th delay is uniform in
/// `[0, min(max_delay, min_delay × 2ⁿ)]`, and at least `refused_min_delay` after a refusal.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    policy: ReconnectPolicy,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(policy: ReconnectPolicy) -> Self {
        Backoff { policy, attempt: 0 }
    }

    /// The policy the delays come from.
    pub(crate) fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// Attempts since the last healthy connection.
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The connection proved healthy: start again from the smallest delay.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before the next attempt, drawn with `rng`.
    pub(crate) fn next_delay(&mut self, cause: &Cause, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let jittered = ceiling.mul_f64(rng.random::<f64>());
        if cause.is_refusal() { jittered.max(self.policy.refused_min_delay) } else { jittered }
    }

    /// `min(max_delay, min_delay × 2^attempt)`.
    pub(crate) fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(31));
        self.policy.min_delay.saturating_mul(factor).min(self.policy.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn ceiling_doubles_from_one_second_to_two_minutes() {
        let mut backoff = Backoff::new(ReconnectPolicy::default());
        let mut rng = StdRng::seed_from_u64(7);
        let network = Cause::Network("cut".into());
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            ceilings.push(backoff.ceiling().as_secs());
            let delay = backoff.next_delay(&network, &mut rng);
            assert!(delay <= Duration::from_secs(120));
        }
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 64, 120, 120, 120]);
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_delays_below_the_ceiling() {
        let mut rng = StdRng::seed_from_u64(1);
        let network = Cause::Network("cut".into());
        let delays: Vec<Duration> = (0..100)
            .map(|_| {
                let mut backoff = Backoff::new(ReconnectPolicy::default());
                backoff.attempt = 5; // ceiling 32 s
                backoff.next_delay(&network, &mut rng)
            })
            .collect();
        assert!(delays.iter().all(|delay| *delay <= Duration::from_secs(32)));
        assert!(delays.iter().any(|delay| *delay < Duration::from_secs(8)));
        assert!(delays.iter().any(|delay| *delay > Duration::from_secs(24)));
    }

    #[test]
    fn a_refusal_waits_at_least_the_refusal_delay() {
        let mut backoff = Backoff::new(ReconnectPolicy::default());
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..20 {
            backoff.reset();
            let delay = backoff.next_delay(&Cause::Refused("policy".into()), &mut rng);
            assert!(delay >= Duration::from_secs(5), "{delay:?}");
        }
    }
}
