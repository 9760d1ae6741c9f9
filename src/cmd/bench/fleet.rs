//! Many clients of one endpoint: their ids and certificates, and opening them at a bounded
//! pace and concurrency.

use super::stop::Stop;
use super::tally::{Failures, Latencies};
use crate::args::BenchCommon;
use iot443::{Client, Config, Event, Events};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Counters the progress line reads while the clients run.
#[derive(Debug, Default)]
pub struct FleetCounters {
    /// Connections made.
    pub connected: AtomicU64,
    /// Connection attempts that failed.
    pub failed: AtomicU64,
    /// Connections lost after they were made (each reconnect counts).
    pub lost: AtomicU64,
    /// Clients that ended for good.
    pub ended: AtomicU64,
}

/// The configuration of each client: one id each from the pattern, one certificate each when a
/// folder is given.
pub struct Identities {
    base: Config,
    pattern: String,
    certs: Option<std::path::PathBuf>,
}

impl Identities {
    /// Identities from `--client-ids` and `--certs`.
    pub fn new(base: &Config, common: &BenchCommon) -> Identities {
        let pattern = if common.client_ids.contains("{n}") {
            common.client_ids.clone()
        } else {
            format!("{}-{{n}}", common.client_ids)
        };
        Identities { base: base.clone(), pattern, certs: common.certs.clone() }
    }

    /// The client id of client `index`.
    pub fn client_id(&self, index: u64) -> String {
        self.pattern.replace("{n}", &index.to_string())
    }

    /// The configuration of client `index` (suffix: a role such as `-sub`, appended to its id).
    pub fn config(&self, index: u64, suffix: &str) -> Config {
        let mut config = self.base.clone();
        config.client_id = format!("{}{suffix}", self.client_id(index));
        if let Some(dir) = &self.certs {
            config.certificate = dir.join(format!("{}.crt", config.client_id));
            config.private_key = dir.join(format!("{}.key", config.client_id));
        }
        config
    }
}

/// What opening a fleet gives.
pub struct Opened {
    /// The clients that connected, by index.
    pub clients: Vec<(u64, Client)>,
    /// Time from each attempt's start to its CONNACK.
    pub connect_times: Latencies,
    /// The failed attempts, by cause.
    pub failures: Failures,
    /// From the first attempt to the last answer.
    pub span: Duration,
}

/// Opens `count` clients with `configure(index)`, at most `concurrency` attempts at once and
/// `rate` starts per second (0: no pace), until done or stopped. Each client's events are
/// counted into `counters` by a task of its own.
pub async fn open(
    count: u64,
    configure: impl Fn(u64) -> Config,
    concurrency: u32,
    rate: u32,
    counters: &Arc<FleetCounters>,
    stop: &Stop,
) -> Opened {
    let started = Instant::now();
    let mut stop = stop.clone();
    let mut attempts = JoinSet::new();
    let mut opened = Opened {
        clients: Vec::with_capacity(usize::try_from(count).unwrap_or(0)),
        connect_times: Latencies::default(),
        failures: Failures::default(),
        span: Duration::ZERO,
    };
    let pace = (rate > 0).then(|| Duration::from_secs(1) / rate);
    let mut next = 0u64;
    loop {
        let due = match pace {
            Some(pace) => started + pace * u32::try_from(next).unwrap_or(u32::MAX),
            None => started,
        };
        let can_start = next < count && attempts.len() < concurrency as usize;
        if !can_start && attempts.is_empty() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(due), if can_start => {
                let config = configure(next);
                let index = next;
                attempts.spawn(async move {
                    let began = Instant::now();
                    let result = Client::connect(&config).await;
                    (index, began.elapsed(), result)
                });
                next += 1;
            }
            Some(joined) = attempts.join_next(), if !attempts.is_empty() => {
                let Ok((index, took, result)) = joined else { continue };
                match result {
                    Ok((client, events)) => {
                        counters.connected.fetch_add(1, Ordering::Relaxed);
                        opened.connect_times.record(took);
                        tokio::spawn(count_events(events, Arc::clone(counters)));
                        opened.clients.push((index, client));
                    }
                    Err(error) => {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        opened.failures.record(&error);
                    }
                }
            }
            _ = stop.wait() => break,
        }
    }
    attempts.abort_all();
    opened.span = started.elapsed();
    opened
}

/// Counts a client's lost connections and its end.
async fn count_events(mut events: Events, counters: Arc<FleetCounters>) {
    while let Some(event) = events.recv().await {
        match event {
            Event::Reconnecting { .. } => {
                counters.lost.fetch_add(1, Ordering::Relaxed);
            }
            Event::Disconnected { .. } => break,
            _ => {}
        }
    }
    counters.ended.fetch_add(1, Ordering::Relaxed);
}

/// Disconnects every client, `concurrency` at a time, within `limit`.
pub async fn close(clients: Vec<(u64, Client)>, concurrency: u32, limit: Duration) {
    let closing = async {
        let mut pending = JoinSet::new();
        for (_, client) in clients {
            if pending.len() >= concurrency as usize {
                pending.join_next().await;
            }
            pending.spawn(async move { client.disconnect().await });
        }
        while pending.join_next().await.is_some() {}
    };
    let _ = tokio::time::timeout(limit, closing).await;
}
