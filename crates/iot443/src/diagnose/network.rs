//! The network steps of `iot443 doctor`: DNS, then TCP and TLS on each route to the endpoint
//! (the configured port and AWS IoT Core's other port, or both ports of `port = "auto"`), directly
//! or through the HTTP proxy.

use super::Step;
use crate::config::{Config, Credentials};
use crate::connect::server_chain::{ChainFacts, Presented};
use crate::connect::{tls_failure, tunnel};
use crate::error::ClientError;
use crate::tls;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How long the TLS step waits after the handshake for the server to refuse the device
/// certificate (with TLS 1.3 the client finishes its handshake before the server checks it).
const REFUSAL_WINDOW: Duration = Duration::from_millis(300);

/// The longest wait for a port that the connection does not need (AWS IoT Core's other port).
const EXTRA_PORT_TIMEOUT: Duration = Duration::from_secs(2);

/// One way to the endpoint.
pub(super) struct Route {
    /// The configuration for this port: ALPN `x-amzn-mqtt-ca` on 443 (or the auto race's ALPN
    /// port), none on the other.
    config: Config,
    /// Whether connecting depends on it. With `port = "auto"` both are needed, and either one
    /// working is enough.
    needed: bool,
}

impl Route {
    fn port(&self) -> u16 {
        self.config.port
    }

    fn timeout(&self) -> Duration {
        if self.needed {
            self.config.connect_timeout
        } else {
            self.config.connect_timeout.min(EXTRA_PORT_TIMEOUT)
        }
    }
}

/// The routes worth checking for `config`, the needed ones first.
pub(super) fn routes(config: &Config) -> Vec<Route> {
    if let Some(auto) = &config.auto_port {
        return [auto.mqtts_port, auto.alpn_port]
            .into_iter()
            .map(|port| Route { config: auto.contestant(config, port), needed: true })
            .collect();
    }
    let mut routes = vec![Route { config: config.clone(), needed: true }];
    let other = match config.port {
        443 => Some(8883),
        8883 => Some(443),
        _ => None,
    };
    if let Some(port) = other {
        // The default rule (`Config::alpn_protocol`) gives each port its ALPN.
        let mut other = config.clone();
        other.port = port;
        other.alpn = None;
        routes.push(Route { config: other, needed: false });
    }
    routes
}

/// What one route gave in one step.
struct Outcome {
    needed: bool,
    ok: bool,
    detail: String,
    hint: Option<String>,
}

/// Combines the routes' outcomes into the step: it passes when a needed route passed (with
/// `port = "auto"` either is enough; otherwise there is one needed route). The hint is the
/// first failing needed route's.
fn combine(name: &'static str, prefix: String, outcomes: &[Outcome]) -> Step {
    let ok = outcomes.iter().any(|o| o.needed && o.ok);
    let details: Vec<&str> = outcomes.iter().map(|o| o.detail.as_str()).collect();
    let detail = format!("{prefix}{}", details.join(" | "));
    if ok {
        return Step::pass(name, detail);
    }
    let hint = outcomes
        .iter()
        .filter(|o| o.needed && !o.ok)
        .find_map(|o| o.hint.clone())
        .unwrap_or_else(|| "no route to the endpoint worked".to_owned());
    Step::fail(name, detail, hint)
}

/// Resolves the endpoint, or through a proxy the proxy's host (the proxy resolves the
/// endpoint itself).
pub(super) async fn check_dns(config: &Config) -> Result<(Step, Vec<SocketAddr>), Step> {
    let (host, port, whose) = match &config.proxy {
        Some(proxy) => (proxy.host().to_owned(), proxy.port(), "proxy "),
        None => (config.endpoint.clone(), config.port, ""),
    };
    let lookup = tokio::net::lookup_host((host.as_str(), port));
    let hint = || dns_hint(config);
    match tokio::time::timeout(config.connect_timeout, lookup).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                return Err(Step::fail("dns", format!("{whose}{host} has no address"), hint()));
            }
            let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            let mut detail = format!("{whose}{host} → {}", list.join(", "));
            if config.proxy.is_some() {
                detail.push_str(&format!("; the proxy resolves {}", config.endpoint));
            }
            Ok((Step::pass("dns", detail), addrs))
        }
        Ok(Err(error)) => {
            Err(Step::fail("dns", format!("cannot resolve {whose}{host}: {error}"), hint()))
        }
        Err(_) => Err(Step::fail(
            "dns",
            format!("resolving {whose}{host} timed out after {:?}", config.connect_timeout),
            hint(),
        )),
    }
}

fn dns_hint(config: &Config) -> String {
    if config.proxy.is_some() {
        "check the proxy's host name (--proxy, IOT443_PROXY, the file's `proxy` or HTTPS_PROXY) \
         and the DNS settings of this network"
            .to_owned()
    } else {
        "check the endpoint name (`aws iot describe-endpoint --endpoint-type iot:Data-ATS`) and \
         the DNS settings of this network"
            .to_owned()
    }
}

/// A route whose TCP connection (or proxy tunnel) is open.
pub(super) struct Open {
    route: Route,
    tcp: TcpStream,
}

/// TCP to each route's port, or a `CONNECT` tunnel through the proxy.
pub(super) async fn check_tcp(
    config: &Config,
    addrs: &[SocketAddr],
) -> Result<(Step, Vec<Open>), Step> {
    let mut outcomes = Vec::new();
    let mut open = Vec::new();
    for route in routes(config) {
        match connect_route(config, &route, addrs).await {
            Ok((tcp, detail)) => {
                outcomes.push(Outcome { needed: route.needed, ok: true, detail, hint: None });
                open.push(Open { route, tcp });
            }
            Err((detail, hint)) => {
                outcomes.push(Outcome { needed: route.needed, ok: false, detail, hint: Some(hint) })
            }
        }
    }
    let prefix = match &config.proxy {
        Some(proxy) => format!("through proxy {}: ", proxy.addr()),
        None => String::new(),
    };
    let step = combine("tcp", prefix, &outcomes);
    if step.ok { Ok((step, open)) } else { Err(step) }
}

async fn connect_route(
    config: &Config,
    route: &Route,
    addrs: &[SocketAddr],
) -> Result<(TcpStream, String), (String, String)> {
    let port = route.port();
    let timeout = route.timeout();
    let extra = if route.needed { "" } else { " (not needed, for information)" };
    if let Some(proxy) = &config.proxy {
        let target = route.config.server_addr();
        return match tunnel::open(proxy, &target, timeout).await {
            Ok(tcp) => Ok((tcp, format!("port {port}: CONNECT {target} → tunnel open{extra}"))),
            Err(error) => {
                let hint = match &error {
                    ClientError::Proxy { hint, .. } if !hint.is_empty() => {
                        hint.trim_start_matches("; ").to_owned()
                    }
                    _ => "the proxy did not open a tunnel to the endpoint".to_owned(),
                };
                Err((format!("port {port}: {error}{extra}"), hint))
            }
        };
    }
    let targets: Vec<SocketAddr> = addrs.iter().map(|a| SocketAddr::new(a.ip(), port)).collect();
    match tokio::time::timeout(timeout, TcpStream::connect(targets.as_slice())).await {
        Ok(Ok(tcp)) => {
            let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            Ok((tcp, format!("port {port}: connected to {peer}{extra}")))
        }
        Ok(Err(error)) => {
            let hint = match error.kind() {
                io::ErrorKind::ConnectionRefused => {
                    "nothing listens there: check the endpoint and the port".to_owned()
                }
                _ => tcp_hint(port),
            };
            Err((
                format!(
                    "port {port}: cannot connect to {}: {error}{extra}",
                    route.config.server_addr()
                ),
                hint,
            ))
        }
        Err(_) => Err((
            format!(
                "port {port}: connecting to {} timed out after {timeout:?} (filtered?){extra}",
                route.config.server_addr()
            ),
            tcp_hint(port),
        )),
    }
}

fn tcp_hint(port: u16) -> String {
    if port == 443 {
        "a firewall or proxy is blocking port 443 to this endpoint: behind a proxy, set `proxy` \
         (or HTTPS_PROXY)"
            .to_owned()
    } else {
        format!(
            "a firewall may be dropping port {port}: try port 443 with ALPN x-amzn-mqtt-ca (or \
             port = \"auto\"), which firewalls usually let out"
        )
    }
}

/// The TLS handshake on each open route.
pub(super) async fn check_tls(credentials: &Credentials, open: Vec<Open>) -> Step {
    let mut outcomes = Vec::new();
    for Open { route, tcp } in open {
        let (ok, detail, hint) = match handshake(&route.config, credentials, tcp).await {
            Ok(summary) => (true, summary, None),
            Err((detail, hint)) => (false, detail, Some(hint)),
        };
        let extra = if route.needed { "" } else { " (not needed, for information)" };
        let detail = format!("port {}: {detail}{extra}", route.port());
        outcomes.push(Outcome { needed: route.needed, ok, detail, hint });
    }
    combine("tls", String::new(), &outcomes)
}

/// One handshake: the summary when it succeeded, else what failed and the hint.
async fn handshake(
    config: &Config,
    credentials: &Credentials,
    tcp: TcpStream,
) -> Result<String, (String, String)> {
    let presented = Presented::default();
    let tls_config = tls::client_config_recording(config, credentials, presented.clone())
        .map_err(|error| (error.to_string(), "the credentials cannot be used by TLS".to_owned()))?;
    let server_name = tls::server_name(config)
        .map_err(|error| (error.to_string(), "fix the endpoint name".to_owned()))?;
    let sni = match &server_name {
        rustls_pki_types::ServerName::DnsName(name) => format!("SNI {}", name.as_ref()),
        _ => "no SNI (the endpoint is an IP address)".to_owned(),
    };
    let offered = config.alpn_protocol().unwrap_or("none").to_owned();
    let connector = TlsConnector::from(Arc::clone(&tls_config));
    let handshake =
        tokio::time::timeout(config.connect_timeout, connector.connect(server_name, tcp)).await;
    let mut stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            let (detail, hint) = tls_failure(config, &error, presented.facts().as_ref());
            return Err((format!("{detail}; ALPN offered {offered}, {sni}"), hint));
        }
        Err(_) => {
            return Err((
                format!("the handshake timed out after {:?}", config.connect_timeout),
                "something between here and the endpoint swallows TLS (a proxy or a captive \
                 portal?)"
                    .to_owned(),
            ));
        }
    };
    let summary = tls_summary(&stream, &offered, &sni);
    let chain = presented.facts();
    if let (Some(offered), None) =
        (tls_failure::alpn_expected(config), stream.get_ref().1.alpn_protocol())
    {
        let explanation = tls_failure::alpn_dropped(config, offered, chain.as_ref());
        return Err((format!("{}; {summary}", explanation.detail), explanation.hint));
    }
    // Trusted through root_ca, but not Amazon's: the mTLS road cannot work through it.
    let trusted_interceptor = tls_failure::trusted_interceptor(config, chain.as_ref());

    // With TLS 1.3 the server checks the device certificate after the client's handshake is
    // done: a refusal arrives as an alert on the first read.
    let mut byte = [0_u8; 1];
    match tokio::time::timeout(REFUSAL_WINDOW, stream.read(&mut byte)).await {
        Ok(Err(error)) => {
            let (detail, hint) = tls_failure(config, &error, chain.as_ref());
            Err((
                format!("{detail} after the handshake; {summary}"),
                trusted_interceptor.unwrap_or(hint),
            ))
        }
        Ok(Ok(0)) => Err((
            format!("the server closed the connection right after the handshake; {summary}"),
            trusted_interceptor.unwrap_or_else(|| tls_failure::refused_certificate_hint(config)),
        )),
        // Nothing to read (the server waits for CONNECT), or unexpected data: the handshake
        // itself is fine.
        Ok(Ok(_)) | Err(_) => Ok(match trusted_interceptor {
            Some(note) => format!("{summary}; warning: {note}"),
            None => summary,
        }),
    }
}

/// Version, cipher suite, ALPN, SNI and the server's chain of an established connection.
fn tls_summary(stream: &TlsStream<TcpStream>, offered: &str, sni: &str) -> String {
    let (_, connection) = stream.get_ref();
    let negotiated = tls::negotiated(connection);
    let version = negotiated.version.unwrap_or_else(|| "unknown version".to_owned());
    let cipher = negotiated.cipher_suite.unwrap_or_default();
    let selected = negotiated.alpn.unwrap_or_else(|| "none".to_owned());
    let certs = connection.peer_certificates().unwrap_or_default();
    let parsed: Vec<Option<(String, String)>> = certs
        .iter()
        .map(|cert| {
            x509_parser::parse_x509_certificate(cert)
                .ok()
                .map(|(_, c)| (c.subject().to_string(), c.issuer().to_string()))
        })
        .collect();
    let chain = if parsed.is_empty() {
        "none".to_owned()
    } else {
        parsed
            .iter()
            .map(|names| match names {
                Some((subject, issuer)) => format!("subject {subject} issued by {issuer}"),
                None => "(unparsable certificate)".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" → ")
    };
    // The server does not send the root; the last certificate's issuer names it.
    let root = match parsed.last() {
        Some(Some((_, issuer))) => issuer.clone(),
        _ => "unknown".to_owned(),
    };
    format!(
        "{version} {cipher}, ALPN offered {offered}, selected {selected}, {sni}; server chain: \
         {chain}; ends at the root {root}"
    )
}

/// What a TLS error says, and what it usually means (the client's own explanation).
fn tls_failure(config: &Config, error: &io::Error, chain: Option<&ChainFacts>) -> (String, String) {
    let explanation = tls_failure::explain(config, error, chain);
    let hint = if explanation.hint.is_empty() {
        "the TLS handshake failed".to_owned()
    } else {
        explanation.hint
    };
    (explanation.detail, hint)
}
