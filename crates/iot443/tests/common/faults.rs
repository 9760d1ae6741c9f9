//! Shared by the fault tests (cuts, dead links, refusals, crashes): a fast reconnect policy,
//! clients that go through a [`FaultProxy`], counting ids at the receiver, and tallying a
//! client's connection events.

use super::TestEmulator;
use iot443::{Config, Event, Events, ReconnectPolicy, Subscription};
use iot443_test_support::fault_proxy::FaultProxy;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Reconnects quickly, so that a test spans many reconnects in a few seconds: backoff ceilings
/// from 20 ms to 200 ms, at least 200 ms after a refusal.
pub fn fast_policy() -> ReconnectPolicy {
    let mut policy = ReconnectPolicy::default();
    policy.min_delay = Duration::from_millis(20);
    policy.max_delay = Duration::from_millis(200);
    policy.refused_min_delay = Duration::from_millis(200);
    policy
}

/// A proxy in front of the emulator's ALPN listener, with no faults yet.
pub async fn proxy_for(emulator: &TestEmulator) -> FaultProxy {
    FaultProxy::start(emulator.emulator.alpn_addr).await.expect("the fault proxy starts")
}

/// `config` going through `proxy`: only the port changes (the endpoint stays `localhost` for
/// SNI and the certificate, ALPN stays offered).
pub fn via(proxy: &FaultProxy, mut config: Config) -> Config {
    config.port = proxy.addr().port();
    config
}

/// The payload carrying message number `id`.
pub fn payload(id: usize) -> String {
    id.to_string()
}

/// The message number in a payload made by [`payload`].
pub fn id_of(payload: &[u8]) -> usize {
    std::str::from_utf8(payload)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("not a numbered payload: {payload:?}"))
}

/// How often each message number arrived.
#[derive(Debug, Clone)]
pub struct Tally {
    counts: Vec<u32>,
    unique: usize,
    duplicates: usize,
}

impl Tally {
    /// Expects messages `0..expected`.
    pub fn new(expected: usize) -> Tally {
        Tally { counts: vec![0; expected], unique: 0, duplicates: 0 }
    }

    /// Counts one arrival of `id`.
    pub fn record(&mut self, id: usize) {
        let count = self.counts.get_mut(id).unwrap_or_else(|| panic!("unexpected id {id}"));
        *count += 1;
        if *count == 1 {
            self.unique += 1;
        } else {
            self.duplicates += 1;
        }
    }

    /// Every expected id arrived at least once.
    pub fn is_complete(&self) -> bool {
        self.unique == self.counts.len()
    }

    /// Distinct ids received.
    pub fn unique(&self) -> usize {
        self.unique
    }

    /// Arrivals beyond the first of each id.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// Whether `id` arrived.
    pub fn has(&self, id: usize) -> bool {
        self.counts.get(id).is_some_and(|count| *count > 0)
    }

    /// The ids that did not arrive (the first few), for failure messages.
    pub fn missing(&self, at_most: usize) -> Vec<usize> {
        (0..self.counts.len()).filter(|id| !self.has(*id)).take(at_most).collect()
    }
}

/// Receives numbered messages on `subscription` until every one of `0..expected` arrived (or
/// `deadline` passes, or the subscription ends); returns the tally either way.
pub fn count_ids(
    mut subscription: Subscription,
    expected: usize,
    deadline: Duration,
) -> JoinHandle<Tally> {
    tokio::spawn(async move {
        let mut tally = Tally::new(expected);
        let give_up = Instant::now() + deadline;
        while !tally.is_complete() {
            match tokio::time::timeout_at(give_up, subscription.recv()).await {
                Ok(Some(message)) => tally.record(id_of(&message.payload)),
                Ok(None) | Err(_) => break,
            }
        }
        // Duplicates that are already queued count too; do not wait for more.
        while let Some(Some(message)) = super::poll_once(subscription.recv()) {
            tally.record(id_of(&message.payload));
        }
        tally
    })
}

/// What a client reported about its connection.
#[derive(Debug, Default, Clone)]
pub struct ConnectionLog {
    /// `Event::Reconnecting`: connections lost or attempts failed.
    pub reconnecting: usize,
    /// Of those, the ones whose cause is a refusal by the endpoint.
    pub refused: usize,
    /// `Event::Connected`, the first connection included.
    pub connected: usize,
    /// `Event::DeadLettered`.
    pub dead_lettered: Vec<(String, String)>,
    /// From each first `Reconnecting` after a connection to the next `Connected`.
    pub outages: Vec<Duration>,
    /// The causes, in order (at most 20 kept).
    pub causes: Vec<String>,
}

impl ConnectionLog {
    /// Reconnects that succeeded (connections after the first).
    pub fn reconnects(&self) -> usize {
        self.connected.saturating_sub(1)
    }

    /// Shortest, mean and longest outage, in milliseconds, for printing.
    pub fn outage_summary(&self) -> String {
        if self.outages.is_empty() {
            return "none".to_owned();
        }
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        let min = self.outages.iter().map(ms).fold(f64::INFINITY, f64::min);
        let max = self.outages.iter().map(ms).fold(0.0, f64::max);
        let mean = self.outages.iter().map(ms).sum::<f64>() / self.outages.len() as f64;
        format!("min {min:.0} ms, mean {mean:.0} ms, max {max:.0} ms over {}", self.outages.len())
    }
}

/// Tallies `events` until the client's driver ends (after `disconnect`).
pub fn log_connection(mut events: Events) -> JoinHandle<ConnectionLog> {
    tokio::spawn(async move {
        let mut log = ConnectionLog::default();
        let mut down_since: Option<Instant> = None;
        while let Some(event) = events.recv().await {
            match event {
                Event::Reconnecting { cause, .. } => {
                    log.reconnecting += 1;
                    if cause.starts_with("refused") {
                        log.refused += 1;
                    }
                    if log.causes.len() < 20 {
                        log.causes.push(cause);
                    }
                    down_since.get_or_insert_with(Instant::now);
                }
                Event::Connected(_) => {
                    log.connected += 1;
                    if let Some(since) = down_since.take() {
                        log.outages.push(since.elapsed());
                    }
                }
                Event::DeadLettered { topic, reason } => log.dead_lettered.push((topic, reason)),
                _ => {}
            }
        }
        log
    })
}
