//! The summary of a load: a table for people on stdout, or one JSON object with `--json`.

use super::process_stats::Usage;
use serde_json::{Map, Value, json};
use std::io::Write as _;
use std::time::Duration;

/// Bytes in a MiB and a KiB.
const MIB: f64 = 1024.0 * 1024.0;
const KIB: f64 = 1024.0;

/// Rows of `label  text`, and the same facts as JSON fields.
#[derive(Debug)]
pub struct Summary {
    title: String,
    rows: Vec<(String, String)>,
    fields: Map<String, Value>,
}

impl Summary {
    /// A summary of load `load` (conn, pub, sub) against `endpoint`.
    pub fn new(load: &str, endpoint: String) -> Summary {
        let mut fields = Map::new();
        fields.insert("load".to_owned(), json!(load));
        fields.insert("endpoint".to_owned(), json!(endpoint));
        Summary {
            title: format!("iot443 bench {load} against {endpoint}"),
            rows: Vec::new(),
            fields,
        }
    }

    /// A row for people and a field for machines.
    pub fn row(&mut self, label: &str, text: String, key: &str, value: Value) {
        self.rows.push((label.to_owned(), text));
        self.fields.insert(key.to_owned(), value);
    }

    /// A field for machines only.
    pub fn field(&mut self, key: &str, value: Value) {
        self.fields.insert(key.to_owned(), value);
    }

    /// A row saying the load was stopped early, and why.
    pub fn stopped(&mut self, why: Option<&str>) {
        if let Some(why) = why {
            self.row("stopped", why.to_owned(), "stopped", json!(why));
        } else {
            self.field("stopped", Value::Null);
        }
    }

    /// The memory and CPU rows of one process (`who`: client, emulator): its resident memory
    /// now and at its peak, the growth per connection since `before`, and its CPU share over
    /// `rest` (between `at_rest_from` and `now`).
    pub fn usage(
        &mut self,
        who: &str,
        before: Option<Usage>,
        now: Option<Usage>,
        connections: u64,
        rest: Option<(Usage, Duration)>,
    ) {
        let Some(now) = now else {
            self.row(
                &format!("{who} memory"),
                "not measured (no /proc)".to_owned(),
                who,
                Value::Null,
            );
            return;
        };
        let grown = before.map(|before| now.resident.saturating_sub(before.resident));
        let per_connection =
            grown.filter(|_| connections > 0).map(|grown| grown as f64 / connections as f64);
        let mut text = format!(
            "{:.1} MiB resident, peak {:.1} MiB",
            now.resident as f64 / MIB,
            now.peak as f64 / MIB
        );
        if let Some(per) = per_connection {
            text.push_str(&format!(", {:.1} KiB per connection", per / KIB));
        }
        let mut value = json!({
            "resident_bytes": now.resident,
            "peak_bytes": now.peak,
            "per_connection_bytes": per_connection,
            "cpu_seconds": now.cpu.as_secs_f64(),
        });
        self.row(&format!("{who} memory"), text, who, Value::Null);
        if let Some((start, span)) = rest.filter(|(_, span)| !span.is_zero()) {
            let share = now.cpu.saturating_sub(start.cpu).as_secs_f64() / span.as_secs_f64();
            self.rows.push((
                format!("{who} CPU at rest"),
                format!("{:.2} % of a core over {:.0} s", share * 100.0, span.as_secs_f64()),
            ));
            if let Some(fields) = value.as_object_mut() {
                fields.insert("cpu_at_rest_share".to_owned(), json!(share));
            }
        }
        self.fields.insert(who.to_owned(), value);
    }

    /// Prints the table, or the JSON object, on stdout (from the blocking pool).
    pub async fn print(self, as_json: bool) {
        let text = if as_json {
            let mut line = Value::Object(self.fields).to_string();
            line.push('\n');
            line
        } else {
            let width = self.rows.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
            let mut text = format!("{}\n", self.title);
            for (label, value) in &self.rows {
                text.push_str(&format!("  {label:<width$}  {value}\n"));
            }
            text
        };
        let _ = tokio::task::spawn_blocking(move || {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
        })
        .await;
    }
}

/// `12,345.6/s` style rate over `span`.
pub fn per_second(count: u64, span: Duration) -> f64 {
    if span.is_zero() { 0.0 } else { count as f64 / span.as_secs_f64() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(resident: u64, cpu_ms: u64) -> Usage {
        Usage { resident, peak: resident, cpu: Duration::from_millis(cpu_ms) }
    }

    #[test]
    fn usage_rows_give_memory_per_connection_and_cpu_at_rest() {
        let mut summary = Summary::new("conn", "127.0.0.1:443".to_owned());
        let before = usage(10 << 20, 0);
        let rest_start = usage(20 << 20, 1_000);
        let now = usage(20 << 20, 1_100);
        summary.usage(
            "client",
            Some(before),
            Some(now),
            160,
            Some((rest_start, Duration::from_secs(10))),
        );
        let client = &summary.fields["client"];
        assert_eq!(client["per_connection_bytes"], json!(65536.0));
        assert!((client["cpu_at_rest_share"].as_f64().unwrap() - 0.01).abs() < 1e-9);
        assert!(summary.rows.iter().any(|(_, text)| text.contains("64.0 KiB per connection")));
        assert!(summary.rows.iter().any(|(_, text)| text.starts_with("1.00 % of a core")));
    }

    #[test]
    fn rates_over_no_time_are_zero() {
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
        assert_eq!(per_second(10, Duration::from_millis(500)), 20.0);
    }
}
