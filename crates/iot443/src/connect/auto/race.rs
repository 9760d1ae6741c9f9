//! `port = "auto"`: the staggered race between 8883 and 443 (ALPN `x-amzn-mqtt-ca`) to CONNACK,
//! and the memory of the winner ([`super::memory`]).
//!
//! Each contestant opens TCP and TLS on its own; the MQTT stage is taken in turns (one CONNECT
//! in flight at a time, since a second CONNECT with the same client id makes the endpoint drop
//! the first connection). The first contestant to read an accepted CONNACK wins; the other is dropped,
//! which closes its socket.

use super::memory as port_memory;
use crate::config::{AutoPort, Config, Credentials};
use crate::connect::transport::{self, Connection};
use crate::error::{ClientError, refusal_hint};
use crate::message::PortChoice;
use bytes::BytesMut;
use iot443_proto::session::ProtocolError;
use iot443_proto::{Codec, Packet};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

/// A connection on which CONNECT was written and a CONNACK (at the front of `read_ahead`) read.
pub(crate) struct Handshaken {
    pub(crate) connection: Connection,
    /// Everything read after CONNECT: the CONNACK, perhaps followed by more packets.
    pub(crate) read_ahead: BytesMut,
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
        .filter(|memory| memory.is_fresh(now, auto.recheck_after));
    if let Some(memory) = remembered {
        let turn = Mutex::new(());
        let contestant = auto.contestant(config, memory.port);
        match attempt(&contestant, credentials, connect_packet, &turn).await {
            Ok((mut handshaken, started)) => {
                handshaken.connection.info.port_choice =
                    Some(PortChoice::Remembered { connack_after: started.elapsed() });
                return Ok(handshaken);
            }
            Err(error) => tracing::warn!(
                "port {} (remembered from the last race) failed: {error}; racing {} and {} again",
                memory.port,
                auto.mqtts_port,
                auto.alpn_port
            ),
        }
    }
    let handshaken = race(config, auto, credentials, connect_packet).await?;
    if let Some(path) = auto.state_file.clone() {
        let port = handshaken.connection.info.port;
        let endpoint = config.endpoint.clone();
        let write = {
            let path = path.clone();
            move || port_memory::remember(&path, &endpoint, port, SystemTime::now())
        };
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

/// 8883 first, 443 `stagger` later (or as soon as 8883 fails); the first accepted CONNACK wins.
async fn race(
    config: &Config,
    auto: &AutoPort,
    credentials: &Credentials,
    connect_packet: &[u8],
) -> Result<Handshaken, ClientError> {
    let first = auto.contestant(config, auto.mqtts_port);
    let second = auto.contestant(config, auto.alpn_port);
    let race_start = Instant::now();
    let turn = Mutex::new(());
    let first_failed = Notify::new();
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
        attempt(&second, credentials, connect_packet, &turn).await
    });

    let mut failures: Vec<(u16, ClientError)> = Vec::new();
    let (mut first_done, mut second_done) = (false, false);
    loop {
        let (port, result) = tokio::select! {
            result = &mut first_attempt, if !first_done => {
                first_done = true;
                (first.port, result)
            }
            result = &mut second_attempt, if !second_done => {
                second_done = true;
                (second.port, result)
            }
        };
        match result {
            Ok((mut handshaken, started)) => {
                let mut others: Vec<String> =
                    failures.iter().map(|(port, error)| format!("port {port}: {error}")).collect();
                if !first_done {
                    others.push(format!("port {}: no CONNACK yet, closed", first.port));
                }
                if !second_done {
                    others.push(if second_started.load(Ordering::Relaxed) {
                        format!("port {}: no CONNACK yet, closed", second.port)
                    } else {
                        format!("port {}: not tried", second.port)
                    });
                }
                handshaken.connection.info.port_choice = Some(PortChoice::Raced {
                    connack_after: started.elapsed(),
                    since_race_start: race_start.elapsed(),
                    others,
                });
                return Ok(handshaken);
            }
            Err(error) => {
                tracing::debug!(port, "port auto: attempt failed: {error}");
                failures.push((port, error));
            }
        }
        if first_done && second_done {
            return Err(all_failed(config, auto, failures));
        }
    }
}

fn all_failed(config: &Config, auto: &AutoPort, failures: Vec<(u16, ClientError)>) -> ClientError {
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

/// One contestant: TCP and TLS, then (in its turn) CONNECT and the first packet back.
/// Returns when its attempt started, for the report.
async fn attempt(
    config: &Config,
    credentials: &Credentials,
    connect_packet: &[u8],
    turn: &Mutex<()>,
) -> Result<(Handshaken, Instant), ClientError> {
    let started = Instant::now();
    let mut connection = transport::connect_with(config, credentials).await?;
    let _turn = turn.lock().await;
    let addr = config.server_addr();
    // A chain that was not Amazon's explains an end before CONNACK better than anything else.
    let interception = connection.info.interception.clone();
    let lost = |reason: String| match &interception {
        Some(note) => ClientError::lost(addr.clone(), format!("{reason}; {note}")),
        None => ClientError::lost(addr.clone(), reason),
    };
    let exchange = async {
        connection
            .stream
            .write_all(connect_packet)
            .await
            .map_err(|error| lost(format!("writing CONNECT failed: {error}")))?;
        connection.stream.flush().await.map_err(|error| lost(format!("flush failed: {error}")))?;
        let mut read_ahead = BytesMut::with_capacity(64);
        let codec = Codec::default();
        loop {
            let read = connection
                .stream
                .read_buf(&mut read_ahead)
                .await
                .map_err(|error| lost(format!("reading CONNACK failed: {error}")))?;
            if read == 0 {
                return Err(lost(crate::connect::CLOSED_BEFORE_CONNACK.into()));
            }
            // Only an accepted CONNACK wins (the session decodes it again from `read_ahead`);
            // a refusal or anything else is this port's failure.
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
    Ok((Handshaken { connection, read_ahead }, started))
}
