//! The WebSocket road: TCP (or the HTTP proxy's tunnel) → TLS without a client certificate,
//! ALPN `http/1.1` → the upgrade `GET /mqtt?<SigV4>` with `Sec-WebSocket-Protocol: mqtt` → MQTT in
//! binary frames ([`WebSocketTransport`]).
//!
//! Every connect finds the AWS credentials and the region again (on the blocking pool: they may
//! have rotated) and signs anew. The server is verified as on the TLS road: `root_ca` or the
//! Mozilla roots, and the endpoint's host name.
//!
//! Secrets: iot443 logs the upgrade URL only with its signature and token replaced by `***`
//! ([`sigv4::redact`]). tungstenite itself logs the whole request at `trace` level: keep the
//! `tungstenite` target at `debug` or above in a subscriber that may be shared (the `iot443`
//! command does).

use super::Opened;
use super::sigv4::{self, DEFAULT_EXPIRES_IN, IOT_SERVICE, SigningInputs};
use super::transport;
use super::tunnel;
use super::ws_stream::WebSocketTransport;
use crate::config::{Config, ConfigError, SigningIdentity, aws_credentials};
use crate::error::ClientError;
use crate::message::ConnectionInfo;
use crate::tls;
use rustls::{ClientConfig, RootCertStore};
use std::sync::Arc;
use std::time::SystemTime;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Response};
use tokio_tungstenite::tungstenite::{self, Error as WsError};

/// The WebSocket subprotocol MQTT asks for (and the 101 must echo).
pub const SUBPROTOCOL: &str = "mqtt";
/// The ALPN protocol offered on the WebSocket road.
pub const ALPN_HTTP1: &str = "http/1.1";

/// Opens an MQTT-over-WebSocket transport as `config` says (`transport = "websocket"`).
pub(crate) async fn connect(config: &Config) -> Result<Opened, ClientError> {
    let addr = config.server_addr();
    let (identity, roots) = load(config).await?;
    tracing::debug!(
        access_key_id = identity.credentials.access_key_id(),
        credentials_from = %identity.credentials_from,
        region = %identity.region,
        region_from = %identity.region_from,
        "signing the WebSocket upgrade"
    );
    let inputs = SigningInputs {
        credentials: &identity.credentials,
        region: &identity.region,
        service: IOT_SERVICE,
        time: SystemTime::now(),
        expires_in: DEFAULT_EXPIRES_IN,
    };
    let (url, host_header) = sigv4::websocket_url(&config.endpoint, config.port, &inputs)
        .map_err(|error| config_invalid(config, "endpoint", error.to_string()))?;
    tracing::debug!(url = %sigv4::redact(&url), "WebSocket upgrade");

    let timeout = config.connect_timeout;
    let tcp = match &config.proxy {
        Some(proxy) => {
            tracing::debug!(proxy = %proxy, target = %addr, "opening an HTTP CONNECT tunnel");
            tunnel::open(proxy, &addr, timeout).await?
        }
        None => transport::direct(config, &addr, timeout).await?,
    };
    let remote_addr = tcp.peer_addr().ok();

    let tls_config = client_config(roots)?;
    let server_name = tls::server_name(config)?;
    let connector = tokio_rustls::TlsConnector::from(tls_config);
    let stream = match tokio::time::timeout(timeout, connector.connect(server_name, tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            return Err(ClientError::Tls {
                addr,
                detail: error.to_string(),
                hint: "; on the WebSocket road the server certificate is checked against \
                       `root_ca` (or the Mozilla roots): behind a TLS-inspecting proxy, set \
                       `root_ca` to that proxy's CA"
                    .to_owned(),
                source: super::tls_failure::rustls_error(&error).cloned().map(Arc::new),
            });
        }
        Err(_) => return Err(timed_out(addr, "TLS handshake", timeout)),
    };
    let negotiated = tls::negotiated(stream.get_ref().1);

    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|error| config_invalid(config, "endpoint", error.to_string()))?;
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
    let host = HeaderValue::from_str(&host_header)
        .map_err(|error| config_invalid(config, "endpoint", error.to_string()))?;
    headers.insert("Host", host);

    let upgrade = tokio_tungstenite::client_async(request, stream);
    let (ws, response) = match tokio::time::timeout(timeout, upgrade).await {
        Ok(Ok(upgraded)) => upgraded,
        Ok(Err(error)) => return Err(upgrade_error(&addr, &identity, error)),
        Err(_) => return Err(timed_out(addr, "WebSocket upgrade", timeout)),
    };
    let echoed = response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok());
    if echoed != Some(SUBPROTOCOL) {
        return Err(ClientError::WebSocketProtocol {
            addr,
            detail: format!(
                "the 101 answer selected subprotocol {echoed:?} instead of \"{SUBPROTOCOL}\""
            ),
        });
    }

    // The WebSocket road is the one that passes an inspecting proxy: nothing to warn of.
    let info = ConnectionInfo {
        url: Some(format!("wss://{host_header}{}", sigv4::MQTT_PATH)),
        ..transport::connection_info(config, remote_addr, negotiated)
    };
    let transport = WebSocketTransport::new(ws, addr, config.websocket_max_age);
    Ok(Opened::new(transport, info))
}

/// Finds the AWS credentials and region for `config` on the blocking pool (they may be in
/// files); the error says what is missing. For the callers that only ask whether the WebSocket
/// road can be taken (the `port = "auto"` race, the doctor).
pub(crate) async fn find_identity(config: &Config) -> Result<SigningIdentity, String> {
    let owned = config.clone();
    let found = tokio::task::spawn_blocking(move || {
        aws_credentials::resolve(&owned, &|name| std::env::var(name).ok())
    });
    match found.await {
        Ok(found) => found.map_err(|error| error.to_string()),
        Err(error) => Err(format!("finding the AWS credentials did not finish: {error}")),
    }
}

/// Finds the credentials and region, and reads the trust roots, on the blocking pool.
async fn load(config: &Config) -> Result<(SigningIdentity, RootCertStore), ClientError> {
    let owned = config.clone();
    let read = tokio::task::spawn_blocking(move || {
        let identity = aws_credentials::resolve(&owned, &|name| std::env::var(name).ok())
            .map_err(ConfigError::from)?;
        let roots = crate::config::load_roots(&owned)?;
        Ok::<_, ConfigError>((identity, roots))
    });
    match read.await {
        Ok(loaded) => Ok(loaded?),
        Err(error) => Err(ClientError::lost(
            config.server_addr(),
            format!("reading the AWS credentials did not finish: {error}"),
        )),
    }
}

/// rustls for the WebSocket road: the server verified against `roots` and the host name, no
/// client certificate (SigV4 authenticates), ALPN `http/1.1`.
pub(crate) fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ConfigError::InvalidValue {
            origin: "the TLS settings".to_owned(),
            field: "tls",
            message: format!("rustls refused TLS 1.2 and 1.3 with the ring provider: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN_HTTP1.as_bytes().to_vec()];
    Ok(Arc::new(tls))
}

fn config_invalid(config: &Config, field: &'static str, message: String) -> ClientError {
    ClientError::Config(ConfigError::InvalidValue { origin: config.origin(), field, message })
}

fn timed_out(addr: String, stage: &'static str, after: std::time::Duration) -> ClientError {
    ClientError::Timeout { addr, stage, after, hint: String::new() }
}

/// A failed upgrade as a typed error: the endpoint's refusal (403: authentication), another
/// status, or a broken handshake.
fn upgrade_error(addr: &str, identity: &SigningIdentity, error: WsError) -> ClientError {
    match error {
        WsError::Http(response) => refused(addr, identity, &response, SystemTime::now()),
        WsError::Protocol(tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(
            error,
        )) => ClientError::WebSocketProtocol {
            addr: addr.to_owned(),
            detail: format!("the 101 answer did not select subprotocol \"mqtt\": {error}"),
        },
        WsError::Io(source) => ClientError::Connect {
            addr: addr.to_owned(),
            source: Arc::new(source),
            hint: "; the connection failed during the WebSocket upgrade",
        },
        other => ClientError::WebSocketProtocol {
            addr: addr.to_owned(),
            detail: format!("the WebSocket upgrade failed: {other}"),
        },
    }
}

/// The error for a non-101 answer to the upgrade.
pub(crate) fn refused(
    addr: &str,
    identity: &SigningIdentity,
    response: &Response<Option<Vec<u8>>>,
    now: SystemTime,
) -> ClientError {
    let status = response.status();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
    let mut detail =
        format!("HTTP {} {}", status.as_u16(), status.canonical_reason().unwrap_or_default());
    let body_message = response
        .body()
        .as_deref()
        .and_then(|body| serde_json::from_slice::<serde_json::Value>(body).ok())
        .and_then(|json| json.get("message").and_then(|m| m.as_str()).map(str::to_owned));
    if let Some(kind) = header("x-amzn-ErrorType") {
        detail.push_str(&format!(" ({})", kind.trim_end_matches(':')));
    }
    if let Some(message) = body_message.as_deref().or(header("x-amzn-ErrorMessage")) {
        detail.push_str(&format!(": {}", message.chars().take(300).collect::<String>()));
    }
    let hint = match status.as_u16() {
        401 | 403 => {
            let local = crate::config::utc_time(time::OffsetDateTime::from(now));
            let skew = header("Date").and_then(http_date).map(|server| {
                let skew = time::OffsetDateTime::from(now) - server;
                format!(
                    ", the endpoint's clock says {} ({} s apart)",
                    crate::config::utc_time(server),
                    skew.whole_seconds()
                )
            });
            format!(
                "; the SigV4 signature was refused: check the AWS credentials (access key {}, \
                 from {}), the region {} (from {}) and that the IAM policy allows iot:Connect; \
                 the signature is for service iotdevicegateway; SigV4 refuses a clock more than \
                 a few minutes off: the local time is {local}{}",
                identity.credentials.access_key_id(),
                identity.credentials_from,
                identity.region,
                identity.region_from,
                skew.unwrap_or_default()
            )
        }
        404 => "; the endpoint has no /mqtt WebSocket endpoint: check `endpoint` (the \
                iot:Data-ATS endpoint) and the port"
            .to_owned(),
        _ => "; a proxy or load balancer may refuse WebSocket upgrades: check the proxy's \
              policy, or use the TLS road"
            .to_owned(),
    };
    ClientError::WebSocketRefused { addr: addr.to_owned(), status: status.as_u16(), detail, hint }
}

/// An HTTP date (`Wed, 02 Dec 2026 14:56:45 GMT`, RFC 9110 IMF-fixdate).
fn http_date(text: &str) -> Option<time::OffsetDateTime> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, clock, "GMT"] = parts.as_slice() else { return None };
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| m == month)?;
    let month = time::Month::try_from(u8::try_from(month + 1).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()?;
    let mut hms = clock.split(':').map(|n| n.parse::<u8>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let time = time::Time::from_hms(h, m, s).ok()?;
    Some(time::PrimitiveDateTime::new(date, time).assume_utc())
}
