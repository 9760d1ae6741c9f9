//! A TCP proxy on loopback that injects network faults, for the "never lose a message" tests.
//!
//! [`FaultProxy::start`] listens on `127.0.0.1:0` and forwards every accepted connection to an
//! upstream address (the emulator, an echo server). [`FaultProxy::set_faults`] changes the
//! [`Faults`] at any time; they apply to new connections and to open ones alike, from the moment
//! they are set.
//!
//! ```no_run
//! # async fn demo(emulator: std::net::SocketAddr) -> std::io::Result<()> {
//! use core::time::Duration;
//! use iot443_test_support::fault_proxy::{FaultProxy, Faults};
//!
//! let proxy = FaultProxy::start(emulator).await?;
//! // Point the client at `proxy.addr()`, then cut every connection 0.2–1 s after it opens.
//! proxy.set_faults(Faults {
//!     cut_every: Some((Duration::from_millis(200), Duration::from_secs(1))),
//!     seed: 7,
//!     ..Faults::default()
//! });
//! // ... publish, count at the receiver ...
//! println!("{:?}", proxy.stats());
//! proxy.stop().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Semantics
//!
//! * **A cut is a reset.** Both sockets of the connection get `SO_LINGER` 0 and are closed, so
//!   each peer receives a TCP RST: its next read fails with `ConnectionReset` (after any bytes
//!   already in its receive buffer), its next write fails too. Bytes the proxy held but had not
//!   written yet are lost, as on a real cut. A connection ended by a cut counts in
//!   [`ProxyStats::cuts`] once, whatever triggered it ([`Faults::cut_every`],
//!   [`Faults::cut_at_byte`] or [`FaultProxy::cut_all`]).
//! * **Black hole drops.** While [`Faults::black_hole`] is set the proxy keeps reading both
//!   sockets and throws the bytes away (they are not counted in the stats), so the peers' writes
//!   succeed and nothing arrives: a dead, half-open link. Lifting the fault does not bring those
//!   bytes back; traffic from then on flows again. An end of stream (FIN) that arrives during a
//!   black hole is held until the fault is lifted, so the link neither carries nor closes.
//! * **Delay is latency.** Each chunk read is written `delay` later; chunks keep their order, and
//!   a direction keeps up to 64 chunks of 16 KiB in flight, so throughput is not divided by the
//!   delay. A chunk whose time comes during a black hole is dropped.
//! * **Draws are replayable.** Connection number *n* (0 for the first accepted one) draws its
//!   cut moment and its cut offset from RNGs seeded with ([`Faults::seed`] in force when it was
//!   accepted, *n*). The same seed and the same sequence of connections give the same cut
//!   points; a cut moment still depends on the scheduler by a few milliseconds.
//! * **Changes apply from now on.** Setting [`Faults::cut_every`] on an open connection draws
//!   its cut moment from the time of the change (not from when it opened); setting
//!   [`Faults::cut_at_byte`] draws its offset from the bytes forwarded so far. A draw is only
//!   redone when that field changes, so `set_faults` with an unchanged range keeps the pending
//!   cut. Setting a field to `None` cancels its pending cut.
//! * **Refusal resets.** With [`Faults::refuse_new`] the proxy still accepts (the client's
//!   `connect` succeeds) and resets the connection at once; it counts in
//!   [`ProxyStats::refused`], not in [`ProxyStats::accepted`]. Open connections are not touched.
//! * **Clean ends pass through.** A FIN from either peer is passed on as a FIN
//!   (`shutdown(Write)`) and the other direction keeps flowing; a connection both of whose
//!   peers closed cleanly ends without a reset. A reset or I/O error on one side resets the other.
//! * **Shutdown.** [`FaultProxy::stop`] closes the listener and resets every connection, then
//!   returns once every task ended. Dropping the proxy closes everything too, abruptly: its tasks
//!   are aborted and the sockets close as they drop (usually a FIN).

use core::time::Duration;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// The faults the proxy injects. The default injects none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Cut each connection at a moment drawn uniformly from `[min, max]` after it opens (each
    /// connection draws its own).
    pub cut_every: Option<(Duration, Duration)>,
    /// Cut each connection when its client→server traffic reaches a byte offset drawn uniformly
    /// from `[min, max]`: exactly that many bytes reach the server, so cuts fall mid-packet.
    pub cut_at_byte: Option<(u64, u64)>,
    /// Stop forwarding in both directions without closing (a half-open link). Bytes sent
    /// meanwhile are dropped, not delivered later.
    pub black_hole: bool,
    /// Hold each forwarded chunk this long before writing it.
    pub delay: Option<Duration>,
    /// Accept new connections and reset them at once. Open connections are not touched.
    pub refuse_new: bool,
    /// Seed of the random draws, so a failing run can be replayed.
    pub seed: u64,
}

/// Counters since the proxy started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted and forwarded (refused ones are not counted here).
    pub accepted: u64,
    /// Connections reset at once because of [`Faults::refuse_new`].
    pub refused: u64,
    /// Connections ended by a cut ([`Faults::cut_every`], [`Faults::cut_at_byte`],
    /// [`FaultProxy::cut_all`]). Counted before the sockets are reset.
    pub cuts: u64,
    /// Bytes written to the upstream (client→server), black-holed bytes excluded.
    pub bytes_up: u64,
    /// Bytes written to clients (server→client), black-holed bytes excluded.
    pub bytes_down: u64,
}

/// A TCP proxy on `127.0.0.1` that forwards to one upstream address and injects [`Faults`].
///
/// Needs a tokio runtime with IO and time enabled. See the [module docs](self) for what each
/// fault does exactly.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    faults: watch::Sender<Faults>,
    /// Bumped by [`FaultProxy::cut_all`]; each connection remembers the value it was born with.
    cut_generation: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    counters: Arc<Counters>,
    accept_task: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Binds `127.0.0.1:0` and starts forwarding to `upstream`, with no faults.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (faults, faults_rx) = watch::channel(Faults::default());
        let (cut_generation, cut_rx) = watch::channel(0);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let signals = Signals {
            upstream,
            faults: faults_rx,
            cut_generation: cut_rx,
            shutdown: shutdown_rx,
            counters: Arc::clone(&counters),
        };
        let accept_task = tokio::spawn(accept_loop(listener, signals));
        Ok(FaultProxy {
            addr,
            faults,
            cut_generation,
            shutdown,
            counters,
            accept_task: Some(accept_task),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the faults. They apply to traffic from now on, on open connections too.
    pub fn set_faults(&self, faults: Faults) {
        self.faults.send_replace(faults);
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.faults.borrow().clone()
    }

    /// Cuts (resets) every open connection, both sides. The resets happen on the proxy's tasks
    /// right after this returns; wait for them on the client side (a read returning an error or
    /// 0). A connection the proxy had not accepted yet is not cut.
    pub fn cut_all(&self) {
        self.cut_generation.send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    /// The counters so far.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.counters;
        ProxyStats {
            accepted: c.accepted.load(Ordering::SeqCst),
            refused: c.refused.load(Ordering::SeqCst),
            cuts: c.cuts.load(Ordering::SeqCst),
            bytes_up: c.bytes_up.load(Ordering::SeqCst),
            bytes_down: c.bytes_down.load(Ordering::SeqCst),
        }
    }

    /// Closes the listener, resets every open connection and waits for every task to end.
    pub async fn stop(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.accept_task.take() {
            // The accept task only ends by itself or by a panic; either way it is gone.
            let _ = task.await;
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.accept_task.take() {
            // Aborting drops its `JoinSet`, which aborts every connection task.
            task.abort();
        }
    }
}

/// How long [`FaultProxy::stop`] lets connection tasks reset their sockets before aborting them.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Largest chunk read at once.
const CHUNK: usize = 16 * 1024;
/// Chunks in flight per direction (read, waiting out their delay).
const IN_FLIGHT_CHUNKS: usize = 64;
/// Pause after a failed `accept` (say, out of file descriptors) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(10);

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    cuts: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// What every task listens to.
#[derive(Debug, Clone)]
struct Signals {
    upstream: SocketAddr,
    faults: watch::Receiver<Faults>,
    cut_generation: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    counters: Arc<Counters>,
}

/// Why a connection ended other than by both peers closing cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// An injected cut.
    Cut,
    /// The proxy is stopping.
    Shutdown,
    /// A peer reset the connection or an I/O call failed.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Client → server.
    Up,
    /// Server → client.
    Down,
}

#[derive(Debug)]
enum Chunk {
    Data { bytes: Vec<u8>, due: Option<Instant> },
    Eof,
}

async fn accept_loop(listener: TcpListener, mut signals: Signals) {
    let mut connections = JoinSet::new();
    let mut shutdown = signals.shutdown.clone();
    loop {
        tokio::select! {
            () = shutdown_requested(&mut shutdown) => break,
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else {
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                };
                let (refuse, seed) = {
                    let faults = signals.faults.borrow();
                    (faults.refuse_new, faults.seed)
                };
                if refuse {
                    signals.counters.refused.fetch_add(1, Ordering::SeqCst);
                    reset(client);
                    continue;
                }
                let number = signals.counters.accepted.fetch_add(1, Ordering::SeqCst);
                // The connection is open from now on: a later `cut_all` cuts it.
                let born = *signals.cut_generation.borrow_and_update();
                let connection = Connection {
                    number,
                    seed,
                    born,
                    signals: signals.clone(),
                };
                connections.spawn(connection.run(client));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Connections see the shutdown signal and reset their sockets; abort any that lag.
    let drain = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(STOP_GRACE, drain).await;
    connections.shutdown().await;
}

/// One proxied connection.
#[derive(Debug)]
struct Connection {
    /// 0 for the first accepted connection.
    number: u64,
    seed: u64,
    /// The cut generation when it was accepted.
    born: u64,
    signals: Signals,
}

impl Connection {
    async fn run(self, mut client: TcpStream) {
        let _ = client.set_nodelay(true);
        let counters = Arc::clone(&self.signals.counters);
        let mut trigger = std::pin::pin!(cut_trigger(self.signals.clone(), self.born, self.rng(0)));
        let connected = tokio::select! {
            end = &mut trigger => {
                finish(&counters, end, client, None);
                return;
            }
            connected = TcpStream::connect(self.signals.upstream) => connected,
        };
        let Ok(mut upstream) = connected else {
            finish(&counters, End::Failed, client, None);
            return;
        };
        let _ = upstream.set_nodelay(true);
        let end = {
            let (client_read, client_write) = client.split();
            let (upstream_read, upstream_write) = upstream.split();
            let up = pump(client_read, upstream_write, Direction::Up, &self.signals, self.rng(1));
            let down =
                pump(upstream_read, client_write, Direction::Down, &self.signals, self.rng(2));
            tokio::select! {
                end = &mut trigger => Some(end),
                done = async { tokio::try_join!(up, down) } => done.err(),
            }
        };
        match end {
            // Both peers closed cleanly and each FIN was passed on: a plain close.
            None => {}
            Some(end) => finish(&counters, end, client, Some(upstream)),
        }
    }

    /// The RNG for one stream of draws (`stream` tells them apart) of this connection.
    fn rng(&self, stream: u64) -> StdRng {
        StdRng::seed_from_u64(
            self.seed
                ^ self.number.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ stream.wrapping_mul(0xC2B2_AE3D_27D4_EB4F),
        )
    }
}

/// Resets both sockets, counting injected cuts first (so a peer that sees the reset also sees
/// the count).
fn finish(counters: &Counters, end: End, client: TcpStream, upstream: Option<TcpStream>) {
    if end == End::Cut {
        counters.cuts.fetch_add(1, Ordering::SeqCst);
    }
    reset(client);
    if let Some(upstream) = upstream {
        reset(upstream);
    }
}

/// Closes a socket with a TCP RST (`SO_LINGER` 0), discarding unsent bytes.
#[allow(deprecated)] // Deprecated for non-zero linger, which blocks on drop; zero does not.
// (`set_zero_linger` needs tokio 1.50; the workspace allows 1.45.)
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Resolves when the connection must be cut: its `cut_every` moment, `cut_all`, or shutdown.
async fn cut_trigger(mut signals: Signals, born: u64, mut rng: StdRng) -> End {
    let mut every = signals.faults.borrow_and_update().cut_every;
    let mut deadline = every.map(|range| Instant::now() + draw_duration(&mut rng, range));
    loop {
        tokio::select! {
            () = sleep_until_or_forever(deadline) => return End::Cut,
            end = cut_all_requested(&mut signals.cut_generation, born) => return end,
            () = shutdown_requested(&mut signals.shutdown) => return End::Shutdown,
            changed = signals.faults.changed() => {
                if changed.is_err() {
                    return End::Shutdown;
                }
                let now_every = signals.faults.borrow_and_update().cut_every;
                if now_every != every {
                    every = now_every;
                    deadline = every.map(|range| Instant::now() + draw_duration(&mut rng, range));
                }
            }
        }
    }
}

/// Forwards one direction until end of stream (passed on), a cut or an error.
async fn pump(
    from: ReadHalf<'_>,
    to: WriteHalf<'_>,
    direction: Direction,
    signals: &Signals,
    rng: StdRng,
) -> Result<(), End> {
    let (tx, rx) = mpsc::channel(IN_FLIGHT_CHUNKS);
    tokio::try_join!(
        read_side(from, tx, signals.faults.clone()),
        write_side(to, rx, direction, signals, rng),
    )?;
    Ok(())
}

/// Reads chunks, drops them in a black hole, stamps the others with their due time.
async fn read_side(
    mut from: ReadHalf<'_>,
    tx: mpsc::Sender<Chunk>,
    faults: watch::Receiver<Faults>,
) -> Result<(), End> {
    loop {
        let mut bytes = vec![0; CHUNK];
        let n = from.read(&mut bytes).await.map_err(|_| End::Failed)?;
        if n == 0 {
            // The writer is gone only when the whole pump is being dropped.
            let _ = tx.send(Chunk::Eof).await;
            return Ok(());
        }
        bytes.truncate(n);
        let (black_hole, delay) = {
            let faults = faults.borrow();
            (faults.black_hole, faults.delay)
        };
        if black_hole {
            continue;
        }
        let due = delay.map(|delay| Instant::now() + delay);
        if tx.send(Chunk::Data { bytes, due }).await.is_err() {
            return Ok(());
        }
    }
}

/// Writes chunks when due, unless black-holed by then; cuts at the drawn byte offset (upstream
/// direction only); passes an end of stream on.
async fn write_side(
    mut to: WriteHalf<'_>,
    mut rx: mpsc::Receiver<Chunk>,
    direction: Direction,
    signals: &Signals,
    mut rng: StdRng,
) -> Result<(), End> {
    let mut faults = signals.faults.clone();
    let mut forwarded = 0_u64;
    let cut_range_now = |faults: &Faults| match direction {
        Direction::Up => faults.cut_at_byte,
        Direction::Down => None,
    };
    let mut cut_range = cut_range_now(&faults.borrow());
    let mut cut_at = cut_range.map(|range| draw_u64(&mut rng, range));
    while let Some(chunk) = rx.recv().await {
        let mut bytes = match chunk {
            Chunk::Data { bytes, due } => {
                if let Some(due) = due {
                    tokio::time::sleep_until(due).await;
                }
                bytes
            }
            Chunk::Eof => {
                // A dead link does not carry a FIN either: hold it until the black hole lifts.
                faults.wait_for(|faults| !faults.black_hole).await.map_err(|_| End::Shutdown)?;
                let _ = to.shutdown().await;
                return Ok(());
            }
        };
        let (black_hole, range) = {
            let faults = faults.borrow();
            (faults.black_hole, cut_range_now(&faults))
        };
        if black_hole {
            continue;
        }
        if range != cut_range {
            // The range changed on a live connection: count the offset from here.
            cut_range = range;
            cut_at = range.map(|range| forwarded + draw_u64(&mut rng, range));
        }
        let cut = match cut_at {
            Some(at) if forwarded + bytes.len() as u64 >= at => {
                let keep = usize::try_from(at.saturating_sub(forwarded)).unwrap_or(usize::MAX);
                bytes.truncate(keep);
                true
            }
            _ => false,
        };
        to.write_all(&bytes).await.map_err(|_| End::Failed)?;
        forwarded += bytes.len() as u64;
        let counter = match direction {
            Direction::Up => &signals.counters.bytes_up,
            Direction::Down => &signals.counters.bytes_down,
        };
        counter.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        if cut {
            return Err(End::Cut);
        }
    }
    // The reader ended without an end of stream: the pump is being dropped.
    Ok(())
}

async fn sleep_until_or_forever(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => core::future::pending().await,
    }
}

async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    // A dropped sender means the proxy is gone: shut down as well.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn cut_all_requested(generation: &mut watch::Receiver<u64>, born: u64) -> End {
    match generation.wait_for(|generation| *generation != born).await {
        Ok(_) => End::Cut,
        Err(_) => End::Shutdown,
    }
}

fn draw_duration(rng: &mut StdRng, (min, max): (Duration, Duration)) -> Duration {
    rng.random_range(min.min(max)..=min.max(max))
}

fn draw_u64(rng: &mut StdRng, (min, max): (u64, u64)) -> u64 {
    rng.random_range(min.min(max)..=min.max(max))
}
