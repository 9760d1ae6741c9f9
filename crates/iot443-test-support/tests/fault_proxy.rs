//! The fault proxy against a small echo server on loopback: forwarding, cuts, black hole,
//! refusal, delay, counters, shutdown.
//!
//! No test waits by sleeping: each waits on a socket or a channel under a timeout. The only
//! timeouts that must elapse are "nothing arrives" checks, whose outcome does not depend on speed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use core::time::Duration;
use iot443_test_support::fault_proxy::{FaultProxy, Faults, ProxyStats};
use std::future::Future;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Upper bound for anything that should happen promptly.
const PROMPTLY: Duration = Duration::from_secs(10);
/// How long a black-holed or delayed link must stay silent.
const SILENCE: Duration = Duration::from_millis(300);

/// An echo server on `127.0.0.1:0`. When a connection ends it reports how many bytes it read.
struct Echo {
    addr: SocketAddr,
    finished: mpsc::UnboundedReceiver<u64>,
}

impl Echo {
    async fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, finished) = mpsc::unbounded_channel();
        // Ends with the test's runtime.
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut received = 0_u64;
                    let mut echoing = true;
                    let mut buf = vec![0; 8192];
                    // Keep reading after a failed echo so that every byte that arrived is counted.
                    while let Ok(n @ 1..) = stream.read(&mut buf).await {
                        received += n as u64;
                        if echoing && stream.write_all(&buf[..n]).await.is_err() {
                            echoing = false;
                        }
                    }
                    let _ = tx.send(received);
                });
            }
        });
        Echo { addr, finished }
    }

    /// Bytes read on the next connection to end.
    async fn next_finished(&mut self) -> u64 {
        within(self.finished.recv()).await.expect("echo server gone")
    }
}

async fn within<T>(future: impl Future<Output = T>) -> T {
    timeout(PROMPTLY, future).await.expect("timed out")
}

async fn connect(proxy: &FaultProxy) -> TcpStream {
    within(TcpStream::connect(proxy.addr())).await.unwrap()
}

/// Sends `message` and reads the same number of bytes back.
async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Vec<u8> {
    stream.write_all(message).await.unwrap();
    let mut back = vec![0; message.len()];
    within(stream.read_exact(&mut back)).await.unwrap();
    back
}

/// Waits until the peer closed or reset the connection; panics if data arrives instead.
async fn assert_closed(stream: &mut TcpStream) {
    let mut buf = [0; 64];
    match within(stream.read(&mut buf)).await {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("expected the connection closed, read {n} bytes"),
    }
}

/// Asserts nothing arrives for [`SILENCE`] and the connection stays open meanwhile.
async fn assert_silent(stream: &mut TcpStream) {
    let mut buf = [0; 64];
    if let Ok(read) = timeout(SILENCE, stream.read(&mut buf)).await {
        panic!("expected silence, got {read:?}");
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn forwards_both_ways_passes_fin_and_counts_bytes() {
    let mut echo = Echo::start().await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let data = pattern(200_000);

    let mut stream = connect(&proxy).await;
    let (mut read, mut write) = stream.split();
    let send = async {
        write.write_all(&data).await.unwrap();
        // The FIN travels through the proxy, the echo server closes, its FIN comes back.
        write.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    within(async { tokio::join!(send, read.read_to_end(&mut back)) }).await.1.unwrap();

    assert!(back == data, "echoed bytes differ");
    assert_eq!(echo.next_finished().await, 200_000);
    assert_eq!(
        proxy.stats(),
        ProxyStats { accepted: 1, refused: 0, cuts: 0, bytes_up: 200_000, bytes_down: 200_000 }
    );
    proxy.stop().await;
}

#[tokio::test]
async fn cut_all_resets_every_open_connection() {
    let mut echo = Echo::start().await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let mut first = connect(&proxy).await;
    let mut second = connect(&proxy).await;
    assert_eq!(round_trip(&mut first, b"one").await, b"one");
    assert_eq!(round_trip(&mut second, b"two").await, b"two");

    proxy.cut_all();
    assert_closed(&mut first).await;
    assert_closed(&mut second).await;
    // Both sides: the echo server saw both connections end.
    echo.next_finished().await;
    echo.next_finished().await;
    assert_eq!(proxy.stats().cuts, 2);

    // The proxy keeps accepting.
    let mut third = connect(&proxy).await;
    assert_eq!(round_trip(&mut third, b"three").await, b"three");
    assert_eq!(proxy.stats().accepted, 3);
    assert_eq!(proxy.stats().cuts, 2);
    proxy.stop().await;
}

/// Streams client→server until the link fails; returns what the echo server received.
async fn stream_until_cut(proxy: &FaultProxy, echo: &mut Echo) -> u64 {
    let mut stream = connect(proxy).await;
    let (mut read, mut write) = stream.split();
    let data = pattern(64 * 1024);
    let send = async {
        for piece in data.chunks(1000) {
            if write.write_all(piece).await.is_err() {
                return;
            }
        }
    };
    let drain = async {
        let mut buf = vec![0; 8192];
        while let Ok(1..) = read.read(&mut buf).await {}
    };
    within(async { tokio::join!(send, drain) }).await;
    echo.next_finished().await
}

#[tokio::test]
async fn cut_at_byte_cuts_within_the_range() {
    let mut echo = Echo::start().await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    proxy.set_faults(Faults { cut_at_byte: Some((10_000, 20_000)), seed: 1, ..Faults::default() });

    for connection in 1..=3 {
        let received = stream_until_cut(&proxy, &mut echo).await;
        assert!((10_000..=20_000).contains(&received), "cut after {received} bytes");
        let stats = proxy.stats();
        assert_eq!(stats.cuts, connection);
        assert_eq!(stats.accepted, connection);
    }
    proxy.stop().await;
}

#[tokio::test]
async fn the_same_seed_replays_the_same_cut_offset() {
    let faults = Faults { cut_at_byte: Some((1, 50_000)), seed: 42, ..Faults::default() };
    let mut offsets = Vec::new();
    for _ in 0..2 {
        let mut echo = Echo::start().await;
        let proxy = FaultProxy::start(echo.addr).await.unwrap();
        proxy.set_faults(faults.clone());
        offsets.push(stream_until_cut(&proxy, &mut echo).await);
        assert_eq!(proxy.stats().bytes_up, offsets[offsets.len() - 1]);
        proxy.stop().await;
    }
    assert_eq!(offsets[0], offsets[1]);
}

#[tokio::test]
async fn cut_every_cuts_each_connection() {
    let echo = Echo::start().await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    proxy.set_faults(Faults {
        cut_every: Some((Duration::from_millis(20), Duration::from_millis(80))),
        seed: 3,
        ..Faults::default()
    });
    for connection in 1..=3 {
        let mut stream = connect(&proxy).await;
        assert_closed(&mut stream).await;
        assert_eq!(proxy.stats().cuts, connection);
    }
    proxy.stop().await;
}

#[tokio::test]
async fn cut_every_set_on_an_open_connection_cuts_it() {
    let echo = Echo::start().await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let mut stream = connect(&proxy).await;
    assert_eq!(round_trip(&mut stream, b"before").await, b"before");
    proxy.set_faults(Faults {
        cut_every: Some((Duration::from_millis(10), Duration::from_millis(20))),
        ..Faults::default()
    });
    assert_closed(&mut stream).await;
    assert_eq!(proxy.stats().cuts, 1);
    proxy.stop().await;
}

#[tokio::test]
async fn black_hole_drops_traffic_and_keeps_the_link_open() {
    let echo = Echo::start().await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let mut stream = connect(&proxy).await;
    assert_eq!(round_trip(&mut stream, b"hello").await, b"hello");

    proxy.set_faults(Faults { black_hole: true, ..Faults::default() });
    // The write succeeds (it only reaches the proxy), nothing comes back, nothing closes.
    stream.write_all(b"lost").await.unwrap();
    assert_silent(&mut stream).await;
    let stats = proxy.stats();
    assert_eq!((stats.cuts, stats.bytes_up, stats.bytes_down), (0, 5, 5));

    // Lifted: traffic flows again on the same connection, and "lost" stays lost.
    proxy.set_faults(Faults::default());
    assert_eq!(round_trip(&mut stream, b"after").await, b"after");
    assert_eq!(proxy.stats().bytes_up, 10);
    proxy.stop().await;
}

#[tokio::test]
async fn black_hole_holds_a_fin_until_lifted() {
    let mut echo = Echo::start().await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let mut stream = connect(&proxy).await;
    assert_eq!(round_trip(&mut stream, b"hi").await, b"hi");

    proxy.set_faults(Faults { black_hole: true, ..Faults::default() });
    stream.shutdown().await.unwrap();
    assert_silent(&mut stream).await;

    // Lifted: the FIN goes on, the echo server closes, and its FIN comes back.
    proxy.set_faults(Faults::default());
    assert_closed(&mut stream).await;
    assert_eq!(echo.next_finished().await, 2);
    assert_eq!(proxy.stats().cuts, 0);
    proxy.stop().await;
}

#[tokio::test]
async fn refuse_new_resets_new_connections_only() {
    let echo = Echo::start().await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let mut open = connect(&proxy).await;
    assert_eq!(round_trip(&mut open, b"open").await, b"open");

    proxy.set_faults(Faults { refuse_new: true, ..Faults::default() });
    for refused in 1..=2 {
        let mut stream = connect(&proxy).await;
        assert_closed(&mut stream).await;
        assert_eq!(proxy.stats().refused, refused);
    }
    // The connection opened before is untouched.
    assert_eq!(round_trip(&mut open, b"still").await, b"still");

    proxy.set_faults(Faults::default());
    let mut stream = connect(&proxy).await;
    assert_eq!(round_trip(&mut stream, b"back").await, b"back");
    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.refused, stats.cuts), (2, 2, 0));
    proxy.stop().await;
}

#[tokio::test]
async fn delay_holds_data_back_and_keeps_order() {
    let echo = Echo::start().await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    // Each way: the echo comes back no sooner than twice this.
    proxy.set_faults(Faults { delay: Some(SILENCE), ..Faults::default() });
    let mut stream = connect(&proxy).await;

    for piece in [&b"first "[..], b"second ", b"third"] {
        stream.write_all(piece).await.unwrap();
    }
    // Must elapse: the proxy cannot deliver before the delay, however fast the machine.
    assert_silent(&mut stream).await;
    let mut back = vec![0; b"first second third".len()];
    within(stream.read_exact(&mut back)).await.unwrap();
    assert_eq!(back, b"first second third");
    proxy.stop().await;
}

#[tokio::test]
async fn stop_resets_connections_and_closes_the_listener() {
    let echo = Echo::start().await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let addr = proxy.addr();
    let mut stream = connect(&proxy).await;
    assert_eq!(round_trip(&mut stream, b"ping").await, b"ping");

    within(proxy.stop()).await;
    assert_closed(&mut stream).await;
    assert!(TcpStream::connect(addr).await.is_err(), "listener still open");
}

#[tokio::test]
async fn dropping_the_proxy_ends_its_connections() {
    let mut echo = Echo::start().await;
    let proxy = FaultProxy::start(echo.addr).await.unwrap();
    let mut stream = connect(&proxy).await;
    assert_eq!(round_trip(&mut stream, b"ping").await, b"ping");

    drop(proxy);
    assert_closed(&mut stream).await;
    assert_eq!(echo.next_finished().await, 4);
}
