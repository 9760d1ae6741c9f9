//! What a load counts: latencies with their percentiles, and failures by cause.

use iot443::{ClientError, ErrorKind};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Durations recorded one by one (to the microsecond), summarised as percentiles.
#[derive(Debug, Default)]
pub struct Latencies {
    micros: Vec<u64>,
}

/// The percentiles of a set of latencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// The median.
    pub p50: Duration,
    /// The 90th percentile.
    pub p90: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The largest.
    pub max: Duration,
}

impl Latencies {
    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        self.micros.push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    /// Adds what `other` recorded.
    pub fn extend(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
    }

    /// The nearest-rank percentiles, `None` when nothing was recorded.
    pub fn percentiles(&mut self) -> Option<Percentiles> {
        self.micros.sort_unstable();
        let sorted = &self.micros;
        let rank = |per_mille: usize| -> Option<Duration> {
            let index = (sorted.len() * per_mille).div_ceil(1000).saturating_sub(1);
            sorted.get(index).map(|micros| Duration::from_micros(*micros))
        };
        Some(Percentiles { p50: rank(500)?, p90: rank(900)?, p99: rank(990)?, max: rank(1000)? })
    }
}

impl Percentiles {
    /// `p50 1.20 ms · p90 … · p99 … · max …`.
    pub fn text(&self) -> String {
        format!(
            "p50 {} · p90 {} · p99 {} · max {}",
            millis(self.p50),
            millis(self.p90),
            millis(self.p99),
            millis(self.max)
        )
    }

    /// `{"p50_ms": …, "p90_ms": …, "p99_ms": …, "max_ms": …}`.
    pub fn json(&self) -> Value {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        json!({"p50_ms": ms(self.p50), "p90_ms": ms(self.p90), "p99_ms": ms(self.p99), "max_ms": ms(self.max)})
    }
}

/// `1.23 ms`.
pub fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

/// Failures grouped by cause: the error's kind, with how many and the first one's text.
#[derive(Debug, Default)]
pub struct Failures {
    by_cause: BTreeMap<&'static str, (u64, String)>,
}

impl Failures {
    /// Counts one failure.
    pub fn record(&mut self, error: &ClientError) {
        let entry =
            self.by_cause.entry(cause(error.kind())).or_insert_with(|| (0, error.to_string()));
        entry.0 += 1;
    }

    /// Adds what `other` counted (keeping the first text seen here).
    pub fn extend(&mut self, other: Failures) {
        for (cause, (count, first)) in other.by_cause {
            self.by_cause.entry(cause).or_insert((0, first)).0 += count;
        }
    }

    /// Failures in all.
    pub fn total(&self) -> u64 {
        self.by_cause.values().map(|(count, _)| count).sum()
    }

    /// One line per cause: `4 × connection (first: …)`.
    pub fn lines(&self) -> Vec<String> {
        self.by_cause
            .iter()
            .map(|(cause, (count, first))| format!("{count} × {cause} (first: {first})"))
            .collect()
    }

    /// `{"connection": {"count": 4, "first": "…"}, …}`.
    pub fn json(&self) -> Value {
        let map = self
            .by_cause
            .iter()
            .map(|(cause, (count, first))| {
                ((*cause).to_owned(), json!({"count": count, "first": first}))
            })
            .collect::<serde_json::Map<_, _>>();
        Value::Object(map)
    }
}

/// The name of a cause, as the exit codes name it.
fn cause(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Usage => "configuration",
        ErrorKind::TlsOrAuth => "tls-or-authentication",
        ErrorKind::Connection => "connection",
        ErrorKind::Protocol => "protocol",
        ErrorKind::Storage => "storage",
        ErrorKind::Rejected => "rejected",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut latencies = Latencies::default();
        for ms in (1..=100).rev() {
            latencies.record(Duration::from_millis(ms));
        }
        let p = latencies.percentiles().unwrap();
        assert_eq!(p.p50, Duration::from_millis(50));
        assert_eq!(p.p90, Duration::from_millis(90));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.max, Duration::from_millis(100));
    }

    #[test]
    fn one_latency_is_every_percentile_and_none_is_none() {
        let mut latencies = Latencies::default();
        assert_eq!(latencies.percentiles(), None);
        latencies.record(Duration::from_micros(1500));
        let p = latencies.percentiles().unwrap();
        assert_eq!((p.p50, p.max), (Duration::from_micros(1500), Duration::from_micros(1500)));
        assert_eq!(p.text(), "p50 1.50 ms · p90 1.50 ms · p99 1.50 ms · max 1.50 ms");
    }

    #[test]
    fn failures_are_grouped_by_cause_with_the_first_text() {
        let mut failures = Failures::default();
        failures.record(&ClientError::Closed);
        failures.record(&ClientError::Closed);
        let mut other = Failures::default();
        other.record(&ClientError::QosNotSupported);
        other.record(&ClientError::Closed);
        failures.extend(other);
        assert_eq!(failures.total(), 4);
        let lines = failures.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().any(|line| line.starts_with("3 × connection")), "{lines:?}");
        assert_eq!(failures.json()["configuration"]["count"], 1);
    }
}
