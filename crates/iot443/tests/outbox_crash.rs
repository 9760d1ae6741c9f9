#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! A publisher with a durable outbox is killed with SIGKILL at a random point while streaming
//! 5,000 QoS 1 messages, then started again on the same outbox with the rest of the input: every
//! message whose `publish` had returned (it was on disk) is received, and so is the rest.
//! Duplicates are counted at the receiver (a persistent-session subscriber) and printed.
//!
//! The publisher is this test binary run again as a child process ([`child_process`], selected
//! by [`CHILD_ENV`]); it prints `returned N` once `publish` of message N has returned.

mod common;

use common::TestEmulator;
use common::faults::{count_ids, fast_policy, payload};
use iot443::outbox::Outbox;
use iot443::{Client, Config, Delivery, QoS};
use rand::Rng as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;

/// Set in the child process: what it is to do, as `key=value` lines (see [`ChildSpec`]).
const CHILD_ENV: &str = "IOT443_OUTBOX_CRASH_CHILD";
const MESSAGES: usize = 5_000;
const TOPIC: &str = "crash/stream";
/// How long the parent waits for one line from a child.
const LINE_TIMEOUT: Duration = Duration::from_secs(60);
/// The whole test.
const WHOLE_TEST: Duration = Duration::from_secs(120);
/// How long the receiver counts: less than the whole test, so that a loss fails with the list
/// of missing messages rather than with the test's timeout.
const RECEIVING: Duration = Duration::from_secs(100);

/// What a child publishes, and how it connects.
struct ChildSpec {
    /// The emulator's `iot443.toml`.
    config: PathBuf,
    outbox: PathBuf,
    client_id: String,
    /// The first message number to publish; it publishes up to `MESSAGES - 1`.
    start: usize,
}

impl ChildSpec {
    fn encode(&self) -> String {
        format!(
            "config={}\noutbox={}\nclient_id={}\nstart={}",
            self.config.display(),
            self.outbox.display(),
            self.client_id,
            self.start
        )
    }

    fn decode(text: &str) -> ChildSpec {
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("{CHILD_ENV} lacks {name}"))
                .to_owned()
        };
        ChildSpec {
            config: field("config").into(),
            outbox: field("outbox").into(),
            client_id: field("client_id"),
            start: field("start").parse().unwrap(),
        }
    }
}

/// A running child and the lines it prints, read on a thread of their own.
struct Publisher {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Publisher {
    fn spawn(spec: &ChildSpec) -> Publisher {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_process", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, spec.encode())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Publisher { child, lines }
    }

    /// The next line; `None` once the child's output has ended.
    async fn next_line(&mut self) -> Option<String> {
        match tokio::time::timeout(LINE_TIMEOUT, self.lines.recv()).await {
            Ok(line) => line,
            Err(_) => {
                let _ = self.child.kill();
                panic!("no output from the publisher in {LINE_TIMEOUT:?}")
            }
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // A failing test must not leave the child behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number in a `returned N` line.
fn returned(line: &str) -> Option<usize> {
    line.strip_prefix("returned ").map(|n| n.parse().unwrap())
}

async fn crash_and_restart() {
    let emulator = TestEmulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox.db");

    // The receiver: a persistent session, so that nothing is missed while it is busy.
    let mut subscriber_config = emulator.config("crash-sub");
    subscriber_config.clean_session = false;
    let (subscriber, _subscriber_events) = Client::connect(&subscriber_config).await.unwrap();
    let subscription = subscriber.subscribe(TOPIC, QoS::AtLeastOnce).await.unwrap();
    let received = count_ids(subscription, MESSAGES, RECEIVING);

    let spec = |start| ChildSpec {
        config: emulator.emulator.pki.config_path(),
        outbox: outbox.clone(),
        client_id: "crash-pub".to_owned(),
        start,
    };

    // First run: killed after a random number of returned publishes.
    let kill_after = rand::rng().random_range(500..=3_000);
    let mut first = Publisher::spawn(&spec(0));
    let mut returned_count = 0;
    let mut last_returned = None;
    while returned_count < kill_after {
        let line = first.next_line().await.expect("the publisher runs until killed");
        if let Some(id) = returned(&line) {
            assert_eq!(id, last_returned.map_or(0, |last| last + 1), "publishes return in order");
            last_returned = Some(id);
            returned_count += 1;
        }
    }
    first.child.kill().unwrap(); // SIGKILL
    let status = first.child.wait().unwrap();
    assert!(!status.success(), "killed: {status}");
    // Lines printed before the kill still count: those publishes had returned.
    while let Some(line) = first.next_line().await {
        if let Some(id) = returned(&line) {
            last_returned = Some(id);
        }
    }
    let last = last_returned.unwrap();
    let left_in_outbox = Outbox::open(&outbox).unwrap().len().unwrap();

    // Second run: the rest of the input, on the same outbox.
    let mut second = Publisher::spawn(&spec(last + 1));
    let mut done = false;
    while let Some(line) = second.next_line().await {
        done |= line == "done";
    }
    let status = second.child.wait().unwrap();
    assert!(status.success() && done, "the second run completes: {status}");

    let tally = received.await.unwrap();
    let missing_returned: Vec<usize> = (0..=last).filter(|id| !tally.has(*id)).take(20).collect();
    assert!(
        missing_returned.is_empty(),
        "messages whose publish had returned before the kill were lost: {missing_returned:?}"
    );
    let missing_rest: Vec<usize> =
        (last + 1..MESSAGES).filter(|id| !tally.has(*id)).take(20).collect();
    assert!(missing_rest.is_empty(), "messages of the second run were lost: {missing_rest:?}");
    assert!(Outbox::open(&outbox).unwrap().is_empty().unwrap(), "the outbox is drained");
    println!(
        "outbox crash: killed after {} returned publishes (last returned {last}), {left_in_outbox} \
         messages unacknowledged in the outbox at restart; {} of {MESSAGES} received, {} \
         duplicates",
        last + 1,
        tally.unique(),
        tally.duplicates()
    );
    subscriber.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_whose_publish_returned_survives_a_sigkill() {
    tokio::time::timeout(WHOLE_TEST, crash_and_restart())
        .await
        .unwrap_or_else(|_| panic!("not done within {WHOLE_TEST:?}"));
}

/// The publisher side; does nothing in a normal test run.
#[tokio::test]
async fn child_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let spec = ChildSpec::decode(&spec);
    publish_from(&spec).await;
}

async fn publish_from(spec: &ChildSpec) {
    let mut out = std::io::stdout();
    // libtest has printed "test child_process ... " without a line end: start a line of our own.
    writeln!(out).unwrap();
    let mut config = Config::load(Path::new(&spec.config)).unwrap();
    config.client_id = spec.client_id.clone();
    config.alpn = Some(Config::ALPN_MQTT_CA.to_owned());
    config.outbox = Some(spec.outbox.clone());
    config.reconnect = fast_policy();
    let (client, _events) = Client::connect(&config).await.unwrap();
    let mut deliveries: Vec<Delivery> = Vec::with_capacity(MESSAGES);
    for id in spec.start..MESSAGES {
        // With an outbox, `publish` returns once the message is on disk.
        deliveries.push(client.publish(TOPIC, QoS::AtLeastOnce, payload(id)).await.unwrap());
        writeln!(out, "returned {id}").unwrap();
        out.flush().unwrap();
    }
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    client.disconnect().await.unwrap();
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
}
