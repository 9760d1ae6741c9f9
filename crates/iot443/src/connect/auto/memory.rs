//! The state file of `port = "auto"`: which port reached CONNACK last, per endpoint, and when.
//!
//! A small text file (by default `~/.local/state/iot443/ports`), one line per endpoint:
//!
//! ```text
//! # iot443: the port that won the last race to CONNACK, per endpoint (port = "auto")
//! # endpoint port unix-seconds
//! abc123-ats.iot.eu-west-1.amazonaws.com 443 1764250000
//! def456-ats.iot.eu-west-1.amazonaws.com 443 1764250000 websocket
//! ```
//!
//! A fourth field `websocket` says that the WebSocket road (SigV4) won on that port.
//!
//! The file is a cache: a line that cannot be read is ignored, and a file that cannot be
//! written costs only a race at the next start (it is logged, never an error).

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

const HEADER: &str = "# iot443: the port that won the last race to CONNACK, per endpoint (port = \"auto\")\n\
                      # endpoint port unix-seconds [websocket]\n";

/// A remembered winner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Remembered {
    pub(crate) port: u16,
    /// When the race that this port won took place.
    pub(crate) at: SystemTime,
    /// The WebSocket road (SigV4) won, not TLS with the device certificate.
    pub(crate) websocket: bool,
}

impl Remembered {
    /// Younger than `max_age` at `now`. A date in the future counts as young when it is less
    /// than `max_age` ahead (a clock set back a little), else as stale (a bad date is raced
    /// again rather than trusted forever).
    pub(crate) fn is_fresh(&self, now: SystemTime, max_age: Duration) -> bool {
        match now.duration_since(self.at) {
            Ok(age) => age < max_age,
            Err(ahead) => ahead.duration() < max_age,
        }
    }
}

/// The port remembered for `endpoint` in the file at `path`, if any.
pub(crate) fn recall(path: &Path, endpoint: &str) -> Option<Remembered> {
    let text = match read(path) {
        Ok(text) => text,
        Err(error) => {
            tracing::debug!("cannot read the port state file {}: {error}", path.display());
            return None;
        }
    };
    entries(&text).find(|(name, _)| *name == endpoint).map(|(_, remembered)| remembered)
}

/// The file's text; a missing file is empty, and bytes that are not UTF-8 are replaced (their
/// lines are then skipped as malformed) rather than making the file unreadable for good.
fn read(path: &Path) -> io::Result<String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(error) => Err(error),
    }
}

/// Records that `port` won the race for `endpoint` at `at`, keeping the other endpoints' lines.
/// The file is replaced atomically: written and synced beside it under a name of its own
/// (process and call), then renamed over it. Two processes remembering at the same moment may
/// lose one of their lines, which costs a race at the next start, nothing more.
pub(crate) fn remember(path: &Path, endpoint: &str, winner: Remembered) -> io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let old = read(path)?;
    let mut text = String::from(HEADER);
    for (name, remembered) in entries(&old).filter(|(name, _)| *name != endpoint) {
        text.push_str(&line(name, remembered));
    }
    text.push_str(&line(endpoint, winner));

    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let write = WRITES.fetch_add(1, Ordering::Relaxed);
    let temporary = path.with_extension(format!("tmp.{}.{write}", std::process::id()));
    let written = std::fs::File::create(&temporary).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    written.and_then(|()| std::fs::rename(&temporary, path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

fn line(endpoint: &str, remembered: Remembered) -> String {
    let seconds = remembered.at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let road = if remembered.websocket { " websocket" } else { "" };
    format!("{endpoint} {} {seconds}{road}\n", remembered.port)
}

/// The readable lines of a state file; comments and malformed lines are skipped.
fn entries(text: &str) -> impl Iterator<Item = (&str, Remembered)> {
    text.lines().filter(|line| !line.trim_start().starts_with('#')).filter_map(|line| {
        let mut fields = line.split_whitespace();
        let endpoint = fields.next()?;
        let port = fields.next()?.parse::<u16>().ok().filter(|port| *port != 0)?;
        let seconds = fields.next()?.parse::<u64>().ok()?;
        let websocket = match fields.next() {
            None => false,
            Some("websocket") => true,
            Some(_) => return None,
        };
        if fields.next().is_some() {
            return None;
        }
        let at = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds))?;
        Some((endpoint, Remembered { port, at, websocket }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn tls(port: u16, seconds: u64) -> Remembered {
        Remembered { port, at: at(seconds), websocket: false }
    }

    #[test]
    fn a_remembered_port_is_recalled_per_endpoint_and_replaced_by_the_next_winner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/iot443/ports");
        assert_eq!(recall(&path, "a.example"), None, "no file yet");

        remember(&path, "a.example", tls(443, 1_000)).unwrap();
        remember(&path, "b.example", tls(8883, 2_000)).unwrap();
        remember(&path, "a.example", tls(8883, 3_000)).unwrap();
        let websocket = Remembered { port: 443, at: at(4_000), websocket: true };
        remember(&path, "c.example", websocket).unwrap();

        assert_eq!(recall(&path, "a.example"), Some(tls(8883, 3_000)));
        assert_eq!(recall(&path, "b.example"), Some(tls(8883, 2_000)));
        assert_eq!(recall(&path, "c.example"), Some(websocket));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# iot443"), "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("a.example ")).count(), 1, "{text}");
    }

    #[test]
    fn malformed_lines_are_ignored_not_fatal() {
        let text = "# c\ngarbage\nx.example 0 5\nx.example 443 notanumber\nx.example 443 7 extra\n\
                    x.example 443 7 websocket extra\ny.example 443 9\nz.example 443 9 websocket\n";
        let read: Vec<_> = entries(text).collect();
        let websocket = Remembered { port: 443, at: at(9), websocket: true };
        assert_eq!(read, vec![("y.example", tls(443, 9)), ("z.example", websocket)]);
    }

    #[test]
    fn a_memory_is_fresh_until_max_age() {
        let remembered = tls(443, 1_000);
        let day = Duration::from_secs(86_400);
        assert!(remembered.is_fresh(at(1_000 + 86_399), day));
        assert!(!remembered.is_fresh(at(1_000 + 86_400), day));
        assert!(remembered.is_fresh(at(10), day), "a clock set back does not force a race");
        assert!(
            !remembered.is_fresh(at(1_000) - Duration::from_secs(2 * 86_400), day),
            "a date far in the future is not trusted forever"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            iot443_test_support::proptest_cases()
        ))]

        #[test]
        fn any_text_reads_without_panicking(text in ".*") {
            for (endpoint, remembered) in entries(&text) {
                proptest::prop_assert!(!endpoint.is_empty() && remembered.port != 0);
            }
        }

        #[test]
        fn what_is_written_is_read_back(
            lines in proptest::collection::vec(
                ("[a-z0-9.-]{1,40}", 1_u16.., 0_u64..4_000_000_000, proptest::bool::ANY),
                0..8,
            ),
        ) {
            let mut text = String::from(HEADER);
            for (endpoint, port, seconds, websocket) in &lines {
                let remembered = Remembered { port: *port, at: at(*seconds), websocket: *websocket };
                text.push_str(&line(endpoint, remembered));
            }
            let read: Vec<(String, Remembered)> =
                entries(&text).map(|(e, r)| (e.to_owned(), r)).collect();
            let written: Vec<(String, Remembered)> = lines
                .iter()
                .map(|(e, p, s, w)| (e.clone(), Remembered { port: *p, at: at(*s), websocket: *w }))
                .collect();
            proptest::prop_assert_eq!(read, written);
        }
    }

    #[test]
    fn a_file_with_bytes_that_are_not_utf8_is_still_read_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ports");
        std::fs::write(&path, b"bad\xff line 443 1\nb.example 443 5\n").unwrap();
        assert_eq!(recall(&path, "b.example"), Some(tls(443, 5)));
        remember(&path, "c.example", tls(8883, 6)).unwrap();
        assert_eq!(recall(&path, "c.example").map(|r| r.port), Some(8883));
        assert_eq!(recall(&path, "b.example").map(|r| r.port), Some(443), "kept");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn an_unwritable_place_is_an_error_for_the_caller_to_log() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        assert!(remember(&blocker.join("ports"), "a.example", tls(443, 1)).is_err());
    }
}
