#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The durable outbox: order, reopen, remove, batches, dead letters, expiry, the files it
//! refuses (corrupt, locked, unwritable, foreign, newer), and a SIGKILLed writer losing nothing
//! whose push had returned.
//!
//! Two tests run this test binary again as a child process (see [`child_process`]): one that
//! pushes until it is killed, one that holds the outbox open while the parent tries to open it.

use iot443::outbox::{NewMessage, Outbox, OutboxError, OutboxId};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Set in a child process: `push:<file>` or `hold:<file>`.
const CHILD_ENV: &str = "IOT443_OUTBOX_TEST_CHILD";

/// How long the parent waits for a line from a child before giving up (and killing it).
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

fn msg<'a>(topic: &'a str, payload: &'a [u8]) -> NewMessage<'a> {
    NewMessage { topic, payload, qos: 1, retain: false, expires_at_ms: None }
}

fn expiring<'a>(topic: &'a str, expires_at_ms: Option<i64>) -> NewMessage<'a> {
    NewMessage { topic, payload: b"x", qos: 1, retain: false, expires_at_ms }
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("outbox.db")
}

fn topics(outbox: &Outbox) -> Vec<String> {
    outbox.pending().unwrap().into_iter().map(|e| e.topic).collect()
}

/// Opens `path` with plain SQLite, as another program (or a person with `sqlite3`) would.
fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn pushed_messages_are_pending_in_order_with_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(&db(&dir)).unwrap();
    assert_eq!(outbox.len().unwrap(), 0);
    assert!(outbox.is_empty().unwrap());
    assert_eq!(outbox.path(), db(&dir));

    let before =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as i64;
    let first = outbox.push(&[msg("a/1", b"one")]).unwrap();
    let second = outbox
        .push(&[NewMessage {
            topic: "a/2",
            payload: &[0, 255, 7],
            qos: 0,
            retain: true,
            expires_at_ms: Some(1_900_000_000_000),
        }])
        .unwrap();
    let third = outbox.push(&[msg("a/3", b"")]).unwrap();
    assert!(first[0] < second[0] && second[0] < third[0]);

    let pending = outbox.pending().unwrap();
    assert_eq!(pending.len(), 3);
    assert_eq!(outbox.len().unwrap(), 3);
    assert_eq!(pending.iter().map(|e| e.id).collect::<Vec<_>>(), [first[0], second[0], third[0]]);
    assert_eq!(pending[0].topic, "a/1");
    assert_eq!(&pending[0].payload[..], b"one");
    assert_eq!((pending[0].qos, pending[0].retain, pending[0].expires_at_ms), (1, false, None));
    assert_eq!(&pending[1].payload[..], [0, 255, 7]);
    assert_eq!((pending[1].qos, pending[1].retain), (0, true));
    assert_eq!(pending[1].expires_at_ms, Some(1_900_000_000_000));
    assert!(pending[2].payload.is_empty());
    assert!(pending[0].created_at_ms >= before, "created_at_ms is the push time");
}

#[test]
fn an_outbox_can_move_to_the_drivers_thread() {
    fn send<T: Send + 'static>() {}
    send::<Outbox>();
    send::<OutboxError>();
}

#[test]
fn pending_messages_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let ids = {
        let mut outbox = Outbox::open(&db(&dir)).unwrap();
        outbox.push(&[msg("t/1", b"1"), msg("t/2", b"2")]).unwrap()
    };
    let mut outbox = Outbox::open(&db(&dir)).unwrap();
    let pending = outbox.pending().unwrap();
    assert_eq!(pending.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
    assert_eq!(topics(&outbox), ["t/1", "t/2"]);

    // New ids continue after the old ones.
    let more = outbox.push(&[msg("t/3", b"3")]).unwrap();
    assert!(more[0] > ids[1]);
}

#[test]
fn removed_messages_are_gone_and_removing_twice_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(&db(&dir)).unwrap();
    let ids =
        outbox.push(&[msg("r/1", b""), msg("r/2", b""), msg("r/3", b""), msg("r/4", b"")]).unwrap();

    outbox.remove(&[ids[0], ids[2]]).unwrap();
    assert_eq!(topics(&outbox), ["r/2", "r/4"]);
    outbox.remove(&[ids[0], OutboxId(9_999)]).unwrap();
    outbox.remove(&[]).unwrap();
    assert_eq!(outbox.len().unwrap(), 2);

    drop(outbox);
    let mut outbox = Outbox::open(&db(&dir)).unwrap();
    assert_eq!(topics(&outbox), ["r/2", "r/4"]);
    outbox.remove(&[ids[1], ids[3]]).unwrap();
    assert!(outbox.is_empty().unwrap());
}

#[test]
fn ids_are_never_reused_even_after_the_newest_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(&db(&dir)).unwrap();
    let ids = outbox.push(&[msg("n/1", b""), msg("n/2", b"")]).unwrap();
    outbox.remove(&ids).unwrap();
    drop(outbox);
    let mut outbox = Outbox::open(&db(&dir)).unwrap();
    let next = outbox.push(&[msg("n/3", b"")]).unwrap();
    assert!(next[0] > ids[1], "{next:?} after {ids:?}");
}

#[test]
fn a_batch_gets_contiguous_ordered_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(&db(&dir)).unwrap();
    outbox.push(&[msg("before", b"")]).unwrap();
    let names: Vec<String> = (0..250).map(|i| format!("batch/{i}")).collect();
    let batch: Vec<NewMessage<'_>> = names.iter().map(|t| msg(t, t.as_bytes())).collect();
    let ids = outbox.push(&batch).unwrap();

    assert_eq!(ids.len(), 250);
    for pair in ids.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "ids of one batch are contiguous");
    }
    let pending = outbox.pending().unwrap();
    assert_eq!(pending.len(), 251);
    for (entry, (id, name)) in pending[1..].iter().zip(ids.iter().zip(&names)) {
        assert_eq!((&entry.id, &entry.topic), (id, name));
    }
    assert!(outbox.push(&[]).unwrap().is_empty());
}

#[test]
fn a_batch_that_fails_midway_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(Outbox::open(&path).unwrap());
    // Make the third insert of the batch fail, from inside SQLite.
    raw(&path)
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON outbox WHEN NEW.topic = 'boom' \
             BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END;",
        )
        .unwrap();

    let mut outbox = Outbox::open(&path).unwrap();
    outbox.push(&[msg("kept", b"")]).unwrap();
    let err = outbox
        .push(&[msg("one", b""), msg("two", b""), msg("boom", b""), msg("four", b"")])
        .unwrap_err();
    assert!(matches!(err, OutboxError::Storage { operation: "push", .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    assert_eq!(topics(&outbox), ["kept"], "none of the failed batch is stored");

    // The outbox still works, and the same holds after a reopen.
    outbox.push(&[msg("after", b"")]).unwrap();
    drop(outbox);
    assert_eq!(topics(&Outbox::open(&path).unwrap()), ["kept", "after"]);
}

#[test]
fn dead_letter_moves_a_message_atomically_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(&db(&dir)).unwrap();
    let ids = outbox.push(&[msg("d/1", b"1"), msg("d/forbidden", b"2"), msg("d/3", b"3")]).unwrap();
    let original = outbox.pending().unwrap()[1].clone();

    outbox.dead_letter(ids[1], "refused 3 times: policy?", 1_234).unwrap();
    assert_eq!(topics(&outbox), ["d/1", "d/3"]);
    let letters = outbox.dead_letters().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].entry, original, "the entry moves unchanged, id included");
    assert_eq!(letters[0].reason, "refused 3 times: policy?");
    assert_eq!(letters[0].at_ms, 1_234);

    // Not pending any more: nothing to move, nothing changes.
    let err = outbox.dead_letter(ids[1], "again", 5).unwrap_err();
    assert!(matches!(err, OutboxError::NotPending { id, .. } if id == ids[1]), "{err:?}");
    let err = outbox.dead_letter(OutboxId(777), "never pushed", 5).unwrap_err();
    assert!(matches!(err, OutboxError::NotPending { .. }), "{err:?}");
    assert_eq!(outbox.dead_letters().unwrap().len(), 1);

    outbox.dead_letter(ids[2], "second", 2_000).unwrap();
    drop(outbox);
    let outbox = Outbox::open(&db(&dir)).unwrap();
    assert_eq!(topics(&outbox), ["d/1"]);
    let letters = outbox.dead_letters().unwrap();
    assert_eq!(
        letters.iter().map(|l| (l.entry.id, l.reason.as_str())).collect::<Vec<_>>(),
        [(ids[1], "refused 3 times: policy?"), (ids[2], "second")],
        "oldest first, kept across reopen"
    );
}

#[test]
fn take_expired_removes_and_returns_only_what_expired() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(&db(&dir)).unwrap();
    outbox
        .push(&[
            expiring("e/100", Some(100)),
            expiring("e/never", None),
            expiring("e/200", Some(200)),
            expiring("e/150", Some(150)),
        ])
        .unwrap();

    assert!(outbox.take_expired(99).unwrap().is_empty());
    let expired = outbox.take_expired(150).unwrap();
    assert_eq!(expired.iter().map(|e| e.topic.as_str()).collect::<Vec<_>>(), ["e/100", "e/150"]);
    assert_eq!(expired[0].expires_at_ms, Some(100));
    assert_eq!(topics(&outbox), ["e/never", "e/200"]);
    assert!(outbox.take_expired(150).unwrap().is_empty(), "taken once");

    let expired = outbox.take_expired(i64::MAX).unwrap();
    assert_eq!(expired.iter().map(|e| e.topic.as_str()).collect::<Vec<_>>(), ["e/200"]);
    assert_eq!(topics(&outbox), ["e/never"], "no expiry: kept until sent");
}

fn assert_names(err: &OutboxError, path: &Path) {
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
}

#[test]
fn a_file_of_garbage_is_corrupt_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let garbage: Vec<u8> =
        (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();

    let err = Outbox::open(&path).unwrap_err();
    assert!(matches!(&err, OutboxError::Corrupt { path: p, .. } if *p == path), "{err:?}");
    assert_names(&err, &path);
    assert!(err.to_string().contains("left untouched"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "never reset");
    // And again: still an error, not a fresh outbox.
    assert!(matches!(Outbox::open(&path), Err(OutboxError::Corrupt { .. })));
}

#[test]
fn a_damaged_page_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let mut outbox = Outbox::open(&path).unwrap();
        let payload = vec![7u8; 600];
        let batch: Vec<NewMessage<'_>> = (0..200).map(|_| msg("p", &payload)).collect();
        outbox.push(&batch).unwrap();
    } // closed: the WAL is checkpointed into the file and removed
    assert!(!dir.path().join("outbox.db-wal").exists());
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8 * 4096);
    let page_size = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    // Scribble over the b-tree pages after the first two (keep the header and the schema).
    for byte in &mut bytes[page_size * 2..page_size * 6] {
        *byte = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();

    let err = Outbox::open(&path).unwrap_err();
    assert!(matches!(&err, OutboxError::Corrupt { .. }), "{err:?}");
    assert_names(&err, &path);
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "never reset");
}

#[test]
fn an_empty_file_becomes_an_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    std::fs::write(&path, b"").unwrap();
    let mut outbox = Outbox::open(&path).unwrap();
    outbox.push(&[msg("e", b"")]).unwrap();
    assert_eq!(outbox.len().unwrap(), 1);
}

#[test]
fn a_second_open_in_the_same_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut first = Outbox::open(&path).unwrap();
    first.push(&[msg("first", b"")]).unwrap();

    let err = Outbox::open(&path).unwrap_err();
    assert!(matches!(&err, OutboxError::Locked { path: p } if *p == path), "{err:?}");
    assert_names(&err, &path);
    first.push(&[msg("still works", b"")]).unwrap();

    drop(first);
    let second = Outbox::open(&path).unwrap();
    assert_eq!(topics(&second), ["first", "still works"]);
}

#[test]
fn another_process_holding_the_outbox_locks_it_until_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(Outbox::open(&path).unwrap());

    let mut child = ChildProcess::spawn(&format!("hold:{}", path.display()));
    child.wait_for_line("holding");
    let err = Outbox::open(&path).unwrap_err();
    assert!(matches!(err, OutboxError::Locked { .. }), "{err:?}");
    // Plain SQLite readers are kept out too.
    let reader = raw(&path);
    reader.busy_timeout(Duration::ZERO).unwrap();
    let raw_err = reader.query_row("SELECT count(*) FROM outbox", [], |r| r.get::<_, i64>(0));
    assert!(raw_err.is_err(), "{raw_err:?}");

    child.kill(); // SIGKILL: the lock goes with the process
    let outbox = Outbox::open(&path).unwrap();
    assert_eq!(topics(&outbox), ["held"]);
}

#[test]
fn an_unwritable_place_is_unwritable_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file used as a folder: fails for root too.
    let file = dir.path().join("file.txt");
    std::fs::write(&file, b"not a folder").unwrap();
    let under_file = file.join("outbox.db");
    let err = Outbox::open(&under_file).unwrap_err();
    assert!(matches!(&err, OutboxError::Unwritable { path, .. } if *path == under_file), "{err:?}");
    assert_names(&err, &under_file);

    let missing = dir.path().join("no/such/folder/outbox.db");
    let err = Outbox::open(&missing).unwrap_err();
    assert!(matches!(&err, OutboxError::Unwritable { .. }), "{err:?}");
    assert_names(&err, &missing);
    assert!(!dir.path().join("no").exists(), "folders are not created");

    let err = Outbox::open(dir.path()).unwrap_err();
    assert!(matches!(&err, OutboxError::Unwritable { .. }), "a folder: {err:?}");
    let err = Outbox::open(Path::new("")).unwrap_err();
    assert!(matches!(&err, OutboxError::Unwritable { .. }), "an empty path: {err:?}");
}

#[test]
fn a_newer_schema_version_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let mut outbox = Outbox::open(&path).unwrap();
        outbox.push(&[msg("from the future", b"")]).unwrap();
    }
    raw(&path).pragma_update(None, "user_version", 2).unwrap();
    let before = std::fs::read(&path).unwrap();

    let err = Outbox::open(&path).unwrap_err();
    assert!(matches!(err, OutboxError::SchemaVersion { found: 2, supported: 1, .. }), "{err:?}");
    assert_names(&err, &path);
    assert!(err.to_string().contains("upgrade"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn another_programs_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    raw(&path)
        .execute_batch("CREATE TABLE readings (t REAL); INSERT INTO readings VALUES (1.5);")
        .unwrap();
    let before = std::fs::read(&path).unwrap();

    let err = Outbox::open(&path).unwrap_err();
    assert!(matches!(err, OutboxError::NotAnOutbox { .. }), "{err:?}");
    assert_names(&err, &path);
    assert_eq!(std::fs::read(&path).unwrap(), before, "not even switched to WAL");
    assert!(!dir.path().join("app.db-wal").exists());
}

/// SIGKILL a process that pushes in a loop: every id it printed (after `push` returned) is
/// pending when the file is opened again.
#[test]
fn every_returned_push_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let mut child = ChildProcess::spawn(&format!("push:{}", path.display()));

    // Kill at a random point, some hundreds of pushes in.
    let kill_after = 150 + usize::from(rand::random::<u16>() % 600);
    let mut acknowledged: Vec<(i64, String)> = Vec::new();
    let mut record = |line: &str| {
        if let Some(rest) = line.strip_prefix("pushed ") {
            let (id, payload) = rest.split_once(' ').unwrap();
            acknowledged.push((id.parse().unwrap(), payload.to_owned()));
        }
    };
    let mut seen = 0;
    while seen < kill_after {
        let line = child.next_line().expect("child ended before it was killed");
        seen += usize::from(line.starts_with("pushed "));
        record(&line);
    }
    child.kill();
    // Lines already in the pipe were printed after their push returned: they count too.
    while let Some(line) = child.next_line() {
        record(&line);
    }

    let outbox = Outbox::open(&path).unwrap();
    let pending = outbox.pending().unwrap();
    let by_id: std::collections::HashMap<i64, String> =
        pending.iter().map(|e| (e.id.0, String::from_utf8(e.payload.to_vec()).unwrap())).collect();
    for (id, payload) in &acknowledged {
        assert_eq!(by_id.get(id), Some(payload), "message {id} was acknowledged by push");
    }
    assert!(pending.windows(2).all(|w| w[0].id < w[1].id));
    println!(
        "killed after {} acknowledged pushes; {} pending after reopen",
        acknowledged.len(),
        pending.len()
    );
}

/// Not a check: prints push throughput, one message per transaction vs batches of 100.
/// Set IOT443_OUTBOX_BENCH_DIR to measure on another file system; run with `--nocapture`.
#[test]
fn throughput_single_vs_batched() {
    let dir = match std::env::var_os("IOT443_OUTBOX_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let mut outbox = Outbox::open(&db(&dir)).unwrap();
    let payload = [0x42u8; 256];
    let message = msg("bench/device-1/telemetry", &payload);

    let singles = 300;
    let start = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..singles {
        ids.extend(outbox.push(&[message]).unwrap());
    }
    let single_rate = f64::from(singles) / start.elapsed().as_secs_f64();

    let batches = 50;
    let batch = vec![message; 100];
    let start = Instant::now();
    for _ in 0..batches {
        ids.extend(outbox.push(&batch).unwrap());
    }
    let batch_rate = f64::from(batches * 100) / start.elapsed().as_secs_f64();

    let start = Instant::now();
    for chunk in ids.chunks(100) {
        outbox.remove(chunk).unwrap();
    }
    let remove_rate = ids.len() as f64 / start.elapsed().as_secs_f64();
    assert!(outbox.is_empty().unwrap());

    println!(
        "outbox push, 256-byte payloads, synchronous=FULL in {}: single {single_rate:.0} msgs/s; \
         batches of 100 {batch_rate:.0} msgs/s; remove in batches of 100 {remove_rate:.0} msgs/s",
        dir.path().display()
    );
}

/// This test binary run again as a child in [`child_process`]; killed when dropped.
struct ChildProcess {
    child: Child,
    lines: Receiver<String>,
}

impl ChildProcess {
    fn spawn(mode: &str) -> ChildProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_process", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildProcess { child, lines }
    }

    /// The next line the child printed; `None` once its output has ended.
    fn next_line(&mut self) -> Option<String> {
        match self.lines.recv_timeout(CHILD_TIMEOUT) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                panic!("no output from the child in {CHILD_TIMEOUT:?}")
            }
        }
    }

    fn wait_for_line(&mut self, wanted: &str) {
        while let Some(line) = self.next_line() {
            if line == wanted {
                return;
            }
        }
        panic!("the child ended before printing {wanted:?}");
    }

    /// SIGKILL, and reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child side of the process tests; does nothing in a normal test run.
#[test]
fn child_process() {
    let Ok(mode) = std::env::var(CHILD_ENV) else { return };
    let mut out = std::io::stdout();
    // libtest has printed "test child_process ... " without a line end: start a line of our own.
    writeln!(out).unwrap();
    if let Some(path) = mode.strip_prefix("hold:") {
        let mut outbox = Outbox::open(Path::new(path)).unwrap();
        outbox.push(&[msg("held", b"")]).unwrap();
        writeln!(out, "holding").unwrap();
        out.flush().unwrap();
        // Until killed (or stdin closes).
        let _ = std::io::stdin().read_line(&mut String::new());
    } else if let Some(path) = mode.strip_prefix("push:") {
        let mut outbox = Outbox::open(Path::new(path)).unwrap();
        let mut n = 0u64;
        for round in 0..20_000u64 {
            // Batches of 1 to 5 messages.
            let payloads: Vec<String> = (0..=round % 5).map(|i| format!("m{}", n + i)).collect();
            let batch: Vec<NewMessage<'_>> =
                payloads.iter().map(|p| msg("crash/test", p.as_bytes())).collect();
            let ids = outbox.push(&batch).unwrap();
            for (id, payload) in ids.iter().zip(&payloads) {
                writeln!(out, "pushed {} {payload}", id.0).unwrap();
            }
            out.flush().unwrap();
            n += payloads.len() as u64;
        }
    } else {
        panic!("unknown {CHILD_ENV} {mode:?}");
    }
}
