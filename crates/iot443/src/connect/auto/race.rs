//! `port = "auto"`: the staggered race between 8883 and 443 (ALPN `x-amzn-mqtt-ca`) to CONNACK,
//! with the WebSocket road (SigV4, on the 443 port) as the last contestant when AWS credentials
//! can be found, and the memory of the winner ([`super::memory`]).
//!
//! Each contestant opens its transport on its own; the MQTT stage is taken in turns (one CONNECT
//! in flight at a time, since a second CONNECT with the same client id makes the endpoint drop
//! the first connection). The first contestant to read an accepted CONNACK wins; the others are
//! dropped, which closes their sockets.

use super::memory::{self as port_memory, Remembered};
use crate::config::{AutoPort, Config, Credentials, Transport as Road};
#[cfg(feature = "websocket")]
use crate::connect::websocket;
use crate::connect::{BoxTransport, transport};
use crate::error::{ClientError, refusal_hint};
use crate::message::{ConnectionInfo, PortChoice};
use bytes::BytesMut;
use iot443_proto::session::ProtocolError;
use iot443_proto::{Codec, Packet};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

/// How long after the 443 attempt started the WebSocket road joins the race, when the 443
/// attempt has not failed sooner: a multiple of the stagger.
const WEBSOCKET_STAGGERS: u32 = 4;

/// A connection on which CONNECT was written and a CONNACK (at the front of `read_ahead`) read.
pub(crate) struct Handshaken {
    pub(crate) transport: BoxTransport,
    pub(crate) info: ConnectionInfo,
    /// Everything read after CONNECT: the CONNACK, perhaps followed by more packets.
    pub(crate) read_ahead: BytesMut,
}

impl Handshaken {
    /// Whether this is the WebSocket road.
    fn is_websocket(&self) -> bool {
        self.info.url.is_some()
    }
}

/// The WebSocket road's contestant, when `config` can take it: `port = "auto"` on the TLS road
/// and AWS credentials and a region that can be found (read on the blocking pool). `None`
/// otherwise: the race is between the two certificate roads only.
#[cfg(not(feature = "websocket"))]
async fn websocket_contestant(_config: &Config, _auto: &AutoPort) -> Option<Config> {
    // The WebSocket road is compiled out (feature `websocket`): the two certificate roads race.
    None
}

/// The WebSocket road's contestant, when `config` can take it: `port = "auto"` on the TLS road
/// and AWS credentials and a region that can be found (read on the blocking pool). `None`
/// otherwise: the race is between the two certificate roads only.
#[cfg(feature = "websocket")]
async fn websocket_contestant(config: &Config, auto: &AutoPort) -> Option<Config> {
    if config.transport != Road::Tls || !auto.websocket {
        return None;
    }
    let mut contestant = auto.contestant(config, auto.alpn_port);
    contestant.transport = Road::WebSocket;
    contestant.alpn = None;
    match websocket::find_identity(&contestant).await {
        Ok(_) => Some(contestant),
        Err(why) => {
            tracing::debug!("port auto: the WebSocket road stays out of the race: {why}");
            None
        }
    }
}

/// Connects as `auto` says: the remembered port alone when the memory is fresh, else (or when
/// it fails) the race. `connect_packet` is the encoded CONNECT to send.
pub(crate) async fn connect(
    config: &Config,
    auto: &AutoPort,
    connect_packet: &[u8],
) -> Result<Handshaken, ClientError> {
    // Credentials once, before any port: a bad file is not a failure of either port, and the
    // contestants share what was read.
    let credentials = transport::load_credentials(config).await?;
    let credentials = &credentials;
    let websocket = websocket_contestant(config, auto).await;
    let now = SystemTime::now();
    // The file is read and written on the blocking pool: a slow disk must not stall the
    // runtime (the write syncs).
    let recalled = match auto.state_file.clone() {
        Some(path) => {
            let endpoint = config.endpoint.clone();
            let recall = move || port_memory::recall(&path, &endpoint);
            tokio::task::spawn_blocking(recall).await.ok().flatten()
        }
        None => None,
    };
    let remembered = recalled
        .filter(|memory| memory.port == auto.mqtts_port || memory.port == auto.alpn_port)
        .filter(|memory| !memory.websocket || websocket.is_some())
        .filter(|memory| memory.is_fresh(now, auto.recheck_after));
    if let Some(memory) = remembered {
        let turn = Mutex::new(());
        let attempted = match &websocket {
            Some(road) if memory.websocket => attempt_websocket(road, connect_packet, &turn).await,
            _ => {
                let contestant = auto.contestant(config, memory.port);
                attempt(&contestant, credentials, connect_packet, &turn).await
            }
        };
        let road = if memory.websocket { " (WebSocket)" } else { "" };
        match attempted {
            Ok((mut handshaken, started)) => {
                handshaken.info.port_choice =
                    Some(PortChoice::Remembered { connack_after: started.elapsed() });
                return Ok(handshaken);
            }
            Err(error) => tracing::warn!(
                "port {}{road} (remembered from the last race) failed: {error}; racing {} and {} \
                 again",
                memory.port,
                auto.mqtts_port,
                auto.alpn_port
            ),
        }
    }
    let handshaken = race(config, auto, credentials, websocket.as_ref(), connect_packet).await?;
    if let Some(path) = auto.state_file.clone() {
        let winner = Remembered {
            port: handshaken.info.port,
            at: SystemTime::now(),
            websocket: handshaken.is_websocket(),
        };
        let endpoint = config.endpoint.clone();
        let write = {
            let path = path.clone();
            move || port_memory::remember(&path, &endpoint, winner)
        };
        let port = winner.port;
        match tokio::task::spawn_blocking(write).await {
            Ok(Ok(())) => tracing::debug!("remembered port {port} in {}", path.display()),
            Ok(Err(error)) => tracing::warn!(
                "cannot remember port {port} in {}: {error}; the next start races again",
                path.display()
            ),
            Err(error) => tracing::warn!("remembering port {port} failed: {error}"),
        }
    }
    Ok(handshaken)
}

/// 8883 first, 443 `stagger` later (or as soon as 8883 fails), and the WebSocket road
/// (`websocket`, when it can be taken) last: as soon as the 443 attempt fails, or
/// [`WEBSOCKET_STAGGERS`] staggers after it started. The first accepted CONNACK wins.
async fn race(
    config: &Config,
    auto: &AutoPort,
    credentials: &Credentials,
    websocket: Option<&Config>,
    connect_packet: &[u8],
) -> Result<Handshaken, ClientError> {
    let first = auto.contestant(config, auto.mqtts_port);
    let second = auto.contestant(config, auto.alpn_port);
    let race_start = Instant::now();
    let turn = Mutex::new(());
    let first_failed = Notify::new();
    let second_failed = Notify::new();
    tracing::debug!(port = first.port, "port auto: first attempt");

    let mut first_attempt = pin!(async {
        let result = attempt(&first, credentials, connect_packet, &turn).await;
        if result.is_err() {
            first_failed.notify_one();
        }
        result
    });
    let second_started = AtomicBool::new(false);
    let mut second_attempt = pin!(async {
        tokio::select! {
            () = tokio::time::sleep(auto.stagger) => {}
            () = first_failed.notified() => {}
        }
        second_started.store(true, Ordering::Relaxed);
        tracing::debug!(port = second.port, "port auto: second attempt");
        let result = attempt(&second, credentials, connect_packet, &turn).await;
        if result.is_err() {
            second_failed.notify_one();
        }
        result
    });
    let third_started = AtomicBool::new(false);
    let mut third_attempt = pin!(async {
        let Some(road) = websocket else {
            return std::future::pending().await;
        };
        tokio::select! {
            () = tokio::time::sleep(auto.stagger * (WEBSOCKET_STAGGERS + 1)) => {}
            () = second_failed.notified() => {}
        }
        third_started.store(true, Ordering::Relaxed);
        tracing::debug!(port = road.port, "port auto: the WebSocket road joins the race");
        attempt_websocket(road, connect_packet, &turn).await
    });

    let websocket_name = |port: u16| format!("port {port} (WebSocket)");
    let mut failures: Vec<(String, ClientError)> = Vec::new();
    let (mut first_done, mut second_done, mut third_done) = (false, false, websocket.is_none());
    loop {
        let (name, result) = tokio::select! {
            result = &mut first_attempt, if !first_done => {
                first_done = true;
                (format!("port {}", first.port), result)
            }
            result = &mut second_attempt, if !second_done => {
                second_done = true;
                (format!("port {}", second.port), result)
            }
            result = &mut third_attempt, if !third_done => {
                third_done = true;
                (websocket_name(second.port), result)
            }
        };
        match result {
            Ok((mut handshaken, started)) => {
                let mut others: Vec<String> =
                    failures.iter().map(|(name, error)| format!("{name}: {error}")).collect();
                if !first_done {
                    others.push(format!("port {}: no CONNACK yet, closed", first.port));
                }
                let pending = |started: &AtomicBool, name: String| {
                    if started.load(Ordering::Relaxed) {
                        format!("{name}: no CONNACK yet, closed")
                    } else {
                        format!("{name}: not tried")
                    }
                };
                if !second_done {
                    others.push(pending(&second_started, format!("port {}", second.port)));
                }
                if !third_done {
                    others.push(pending(&third_started, websocket_name(second.port)));
                }
                handshaken.info.port_choice = Some(PortChoice::Raced {
                    connack_after: started.elapsed(),
                    since_race_start: race_start.elapsed(),
                    others,
                });
                return Ok(handshaken);
            }
            Err(error) => {
                tracing::debug!(road = %name, "port auto: attempt failed: {error}");
                failures.push((name, error));
            }
        }
        if first_done && second_done && third_done {
            return Err(all_failed(config, auto, failures));
        }
    }
}

fn all_failed(
    config: &Config,
    auto: &AutoPort,
    failures: Vec<(String, ClientError)>,
) -> ClientError {
    let unreachable = !failures.iter().any(|(_, error)| error.came_from_the_endpoint());
    let hint = if unreachable && config.proxy.is_some() {
        format!(
            "; the proxy reached neither {} nor {}: check that it allows CONNECT to port 443; \
             `iot443 doctor` checks each step",
            auto.mqtts_port, auto.alpn_port
        )
    } else if unreachable {
        format!(
            "; neither {} nor {} can be reached from here: behind a proxy, set `proxy` (or \
             HTTPS_PROXY); `iot443 doctor` checks each step",
            auto.mqtts_port, auto.alpn_port
        )
    } else {
        "; `iot443 doctor` checks each step".to_owned()
    };
    ClientError::AllPortsFailed { host: config.endpoint.clone(), failures, hint }
}

/// One contestant on the certificate road: TCP and TLS, then (in its turn) CONNECT and the first
/// packet back. Returns when its attempt started, for the report.
async fn attempt(
    config: &Config,
    credentials: &Credentials,
    connect_packet: &[u8],
    turn: &Mutex<()>,
) -> Result<(Handshaken, Instant), ClientError> {
    let started = Instant::now();
    let connection = transport::connect_with(config, credentials).await?;
    let transport: BoxTransport = Box::new(connection.stream);
    let handshaken = exchange(config, transport, connection.info, connect_packet, turn).await?;
    Ok((handshaken, started))
}

/// Without the feature `websocket` there is no WebSocket contestant (never called).
#[cfg(not(feature = "websocket"))]
async fn attempt_websocket(
    config: &Config,
    _connect_packet: &[u8],
    _turn: &Mutex<()>,
) -> Result<(Handshaken, Instant), ClientError> {
    Err(crate::config::features::transport_disabled(&config.origin(), Road::WebSocket).into())
}

/// The WebSocket road's contestant: TCP, TLS and the signed upgrade, then (in its turn) CONNECT
/// and the first packet back.
#[cfg(feature = "websocket")]
async fn attempt_websocket(
    config: &Config,
    connect_packet: &[u8],
    turn: &Mutex<()>,
) -> Result<(Handshaken, Instant), ClientError> {
    let started = Instant::now();
    let opened = websocket::connect(config).await?;
    let handshaken = exchange(config, opened.transport, opened.info, connect_packet, turn).await?;
    Ok((handshaken, started))
}

/// In its turn: CONNECT, then the first packet back, which must be an accepted CONNACK.
async fn exchange(
    config: &Config,
    mut transport: BoxTransport,
    info: ConnectionInfo,
    connect_packet: &[u8],
    turn: &Mutex<()>,
) -> Result<Handshaken, ClientError> {
    let _turn = turn.lock().await;
    let addr = config.server_addr();
    // A chain that was not Amazon's explains an end before CONNACK better than anything else.
    let interception = info.interception.clone();
    let lost = |reason: String| match &interception {
        Some(note) => ClientError::lost(addr.clone(), format!("{reason}; {note}")),
        None => ClientError::lost(addr.clone(), reason),
    };
    let exchange = async {
        transport
            .write_all(connect_packet)
            .await
            .map_err(|error| lost(format!("writing CONNECT failed: {error}")))?;
        transport.flush().await.map_err(|error| lost(format!("flush failed: {error}")))?;
        let mut read_ahead = BytesMut::with_capacity(64);
        let codec = Codec::default();
        loop {
            let read = transport
                .read_buf(&mut read_ahead)
                .await
                .map_err(|error| lost(format!("reading CONNACK failed: {error}")))?;
            if read == 0 {
                return Err(lost(crate::connect::CLOSED_BEFORE_CONNACK.into()));
            }
            // Only an accepted CONNACK wins (the session decodes it again from `read_ahead`);
            // a refusal or anything else is this contestant's failure.
            match codec.decode(&mut read_ahead.clone()) {
                Ok(None) => {}
                Ok(Some(Packet::ConnAck(connack))) if connack.code.is_accepted() => {
                    return Ok(read_ahead);
                }
                Ok(Some(Packet::ConnAck(connack))) => {
                    let code = connack.code.into();
                    let hint = refusal_hint(code);
                    return Err(ClientError::ConnectionRefused { addr: addr.clone(), code, hint });
                }
                Ok(Some(other)) => {
                    let source = ProtocolError::UnexpectedPacket {
                        packet: other.packet_type(),
                        when: "before CONNACK",
                    };
                    return Err(ClientError::Protocol { addr: addr.clone(), source });
                }
                Err(error) => {
                    let source = ProtocolError::Malformed(error);
                    return Err(ClientError::Protocol { addr: addr.clone(), source });
                }
            }
        }
    };
    let timeout = config.connect_timeout;
    let read_ahead = match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(ClientError::Timeout {
                addr,
                stage: "CONNACK",
                after: timeout,
                hint: String::new(),
            });
        }
    };
    Ok(Handshaken { transport, info, read_ahead })
}
