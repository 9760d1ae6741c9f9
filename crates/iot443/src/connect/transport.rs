//! Opening the transport: TCP (with `TCP_NODELAY`), then TLS with the device certificate and,
//! on port 443, ALPN `x-amzn-mqtt-ca`; through an HTTP proxy, TCP is a `CONNECT` tunnel
//! ([`super::tunnel`]). Failures are explained in terms of their usual causes.

use super::server_chain::{ChainFacts, Presented};
use super::tls_failure;
use super::tunnel;
use crate::config::{Config, Credentials};
use crate::error::ClientError;
use crate::message::ConnectionInfo;
use crate::tls;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A TLS connection ready for MQTT, with the facts about how it was made.
pub(crate) struct Connection {
    pub(crate) stream: TlsStream<TcpStream>,
    pub(crate) info: ConnectionInfo,
}

/// Checks the credentials, then connects TCP and TLS, each within `config.connect_timeout`.
pub(crate) async fn connect(config: &Config) -> Result<Connection, ClientError> {
    let credentials = load_credentials(config).await?;
    connect_with(config, &credentials).await
}

/// Reads and checks the credential files on the blocking pool (file reads never stall the
/// runtime), logging their warnings (a key readable by others…).
pub(crate) async fn load_credentials(config: &Config) -> Result<Credentials, ClientError> {
    let owned = config.clone();
    let read = tokio::task::spawn_blocking(move || Credentials::load(&owned));
    let credentials = match read.await {
        Ok(loaded) => loaded?,
        // Only a panic in the reader (or a runtime shutting down) gets here.
        Err(error) => {
            return Err(ClientError::lost(
                config.server_addr(),
                format!("reading the credential files did not finish: {error}"),
            ));
        }
    };
    for warning in &credentials.warnings {
        tracing::warn!("{warning}");
    }
    Ok(credentials)
}

/// Connects TCP and TLS with credentials already loaded (by [`load_credentials`]).
pub(crate) async fn connect_with(
    config: &Config,
    credentials: &Credentials,
) -> Result<Connection, ClientError> {
    let presented = Presented::default();
    let tls_config = tls::client_config_recording(config, credentials, presented.clone())?;
    let server_name = tls::server_name(config)?;
    let addr = config.server_addr();
    let timeout = config.connect_timeout;

    let tcp = match &config.proxy {
        // The tunnel stands in for the TCP connection; TLS (SNI, ALPN) is unchanged.
        Some(proxy) => {
            tracing::debug!(proxy = %proxy, target = %addr, "opening an HTTP CONNECT tunnel");
            tunnel::open(proxy, &addr, timeout).await?
        }
        None => direct(config, &addr, timeout).await?,
    };
    let remote_addr = tcp.peer_addr().ok();

    let connector = TlsConnector::from(Arc::clone(&tls_config));
    let stream = match tokio::time::timeout(timeout, connector.connect(server_name, tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(tls_error(config, error, presented.facts().as_ref())),
        Err(_) => {
            return Err(ClientError::Timeout {
                addr,
                stage: "TLS handshake",
                after: timeout,
                hint: String::new(),
            });
        }
    };
    let negotiated = tls::negotiated(stream.get_ref().1);
    let chain = presented.facts();
    if let (Some(offered), None) = (tls_failure::alpn_expected(config), &negotiated.alpn) {
        // rustls completes a handshake whose server ignored ALPN; IoT Core never does that.
        let explanation = tls_failure::alpn_dropped(config, offered, chain.as_ref());
        return Err(ClientError::Tls {
            addr,
            detail: explanation.detail,
            hint: format!("; {}", explanation.hint),
            source: None,
        });
    }
    let interception = tls_failure::trusted_interceptor(config, chain.as_ref());
    if let Some(note) = &interception {
        tracing::warn!(endpoint = %addr, "{note}");
    }
    let info = ConnectionInfo { interception, ..connection_info(config, remote_addr, negotiated) };
    Ok(Connection { stream, info })
}

/// What is known of a connection just made to `config`'s endpoint and port over TLS, before
/// CONNACK: no port choice, no URL, no interception noted.
pub(crate) fn connection_info(
    config: &Config,
    remote_addr: Option<std::net::SocketAddr>,
    negotiated: tls::Negotiated,
) -> ConnectionInfo {
    ConnectionInfo {
        host: config.endpoint.clone(),
        port: config.port,
        remote_addr,
        tls_version: negotiated.version.unwrap_or_default(),
        cipher_suite: negotiated.cipher_suite.unwrap_or_default(),
        alpn: negotiated.alpn,
        session_present: false,
        proxy: config.proxy.as_ref().map(|proxy| proxy.addr()),
        port_choice: None,
        url: None,
        interception: None,
    }
}

/// TCP straight to the endpoint, with `TCP_NODELAY`.
pub(crate) async fn direct(
    config: &Config,
    addr: &str,
    timeout: Duration,
) -> Result<TcpStream, ClientError> {
    let tcp = match tokio::time::timeout(
        timeout,
        TcpStream::connect((config.endpoint.as_str(), config.port)),
    )
    .await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(source)) => return Err(tcp_error(addr.to_owned(), config.port, source)),
        Err(_) => {
            return Err(ClientError::Timeout {
                addr: addr.to_owned(),
                stage: "TCP connect",
                after: timeout,
                hint: port_hint(config.port),
            });
        }
    };
    tcp.set_nodelay(true).map_err(|source| tcp_error(addr.to_owned(), config.port, source))?;
    Ok(tcp)
}

fn port_hint(port: u16) -> String {
    if port == 443 {
        String::new()
    } else {
        format!(
            "; a firewall may be dropping port {port}: try port 443 (ALPN x-amzn-mqtt-ca), which firewalls usually let out"
        )
    }
}

fn tcp_error(addr: String, port: u16, source: io::Error) -> ClientError {
    let hint = match source.kind() {
        io::ErrorKind::ConnectionRefused => {
            "; nothing listens there: is the endpoint and port right?"
        }
        _ if port != 443 => "; if a firewall blocks this port, try port 443",
        _ => "",
    };
    ClientError::Connect { addr, source: Arc::new(source), hint }
}

/// Whether an I/O error is the connection being cut under us (as opposed to closed cleanly).
fn is_cut(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
            | io::ErrorKind::TimedOut
    )
}

/// A TLS failure with the likely cause spelled out.
fn tls_error(config: &Config, error: io::Error, chain: Option<&ChainFacts>) -> ClientError {
    let addr = config.server_addr();
    if tls_failure::rustls_error(&error).is_none() && is_cut(&error) {
        // Reset or aborted in the middle of the handshake, with no TLS alert and no clean
        // close: the network (a cut link, a middlebox, an endpoint restarting), not the
        // endpoint refusing us. The reconnecting driver retries it as such instead of counting
        // it towards setting the oldest unacknowledged message aside as refused.
        return ClientError::Connect {
            addr,
            source: Arc::new(error),
            hint: "; the connection was cut during the TLS handshake",
        };
    }
    let explanation = tls_failure::explain(config, &error, chain);
    let hint =
        if explanation.hint.is_empty() { String::new() } else { format!("; {}", explanation.hint) };
    let detail = explanation.detail;
    let source = tls_failure::rustls_error(&error).cloned().map(Arc::new);
    ClientError::Tls { addr, detail, hint, source }
}
