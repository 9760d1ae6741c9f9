//! 1,000 concurrent TLS device connections held for 60 s with keep-alive, against the
//! `iot443 emulator` process: none may be dropped. Reports the emulator's memory per connection.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use iot443::{Client, Config, Event, QoS};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CONNECTIONS: usize = 1_000;
const HOLD: Duration = Duration::from_secs(60);
/// IoT Core's smallest keep-alive: the emulator drops a silent client after 45 s, so holding
/// for 60 s proves the keep-alive works on every connection.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// Kills the emulator when the test ends, however it ends.
struct Emulator(Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stress: 1,000 TLS connections held for 60 s; run by .ci/interop"]
async fn thousand_tls_connections_held_for_a_minute_with_keep_alive() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_iot443"))
        .args(["emulator", "--alpn-port", "0", "--mqtts-port", "0", "--https-port", "0", "--dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let pid = child.id();
    let _guard = Emulator(child);
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let port = loop {
        let line = lines_rx.recv_timeout(Duration::from_secs(30)).expect("emulator did not start");
        if let Some(addr) = line.strip_prefix("iot443-emulator listening mqtt-alpn ") {
            break addr.rsplit(':').next().unwrap().parse::<u16>().unwrap();
        }
    };
    let base = Config::load(&dir.path().join("iot443.toml")).unwrap();
    let rss_before = rss_kib(pid);

    let mut clients = Vec::with_capacity(CONNECTIONS);
    for index in 0..CONNECTIONS {
        let mut config = base.clone();
        config.port = port;
        config.alpn = Some("x-amzn-mqtt-ca".into());
        config.client_id = format!("stress-{index}");
        config.keep_alive = KEEP_ALIVE;
        let connected = tokio::time::timeout(Duration::from_secs(30), Client::connect(&config))
            .await
            .unwrap_or_else(|_| panic!("connection {index} timed out"))
            .unwrap_or_else(|error| panic!("connection {index} failed: {error}"));
        clients.push(connected);
    }
    let rss_connected = rss_kib(pid);
    let per_connection = (rss_connected.saturating_sub(rss_before)) as f64 / CONNECTIONS as f64;
    println!(
        "emulator RSS: {rss_before} KiB idle, {rss_connected} KiB with {CONNECTIONS} connections \
         = {per_connection:.1} KiB per connection"
    );

    // Hold: every client's driver sends PINGREQ when idle for the keep-alive.
    tokio::time::sleep(HOLD).await;

    // None dropped: no client saw a disconnect, and every one still gets a PUBACK.
    let mut deliveries = Vec::with_capacity(CONNECTIONS);
    for (index, (client, events)) in clients.iter_mut().enumerate() {
        while let Some(event) = events.try_recv() {
            if let Event::Disconnected { reason } = event {
                panic!("connection {index} dropped during the hold: {reason}");
            }
        }
        deliveries.push(
            client.publish("stress/after-hold", QoS::AtLeastOnce, "still here").await.unwrap(),
        );
    }
    for (index, delivery) in deliveries.into_iter().enumerate() {
        tokio::time::timeout(Duration::from_secs(30), delivery)
            .await
            .unwrap_or_else(|_| panic!("no PUBACK for connection {index}"))
            .unwrap_or_else(|error| panic!("connection {index} dropped: {error}"));
    }
    println!(
        "{CONNECTIONS} connections held for {HOLD:?} with keep-alive {KEEP_ALIVE:?}: none dropped; \
         emulator RSS now {} KiB",
        rss_kib(pid)
    );
    for (client, _) in &clients {
        client.disconnect().await.unwrap();
    }
}
