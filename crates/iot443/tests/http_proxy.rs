#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Through an HTTP CONNECT proxy: a minimal proxy in the test (127.0.0.1, port 0) opens the
//! tunnel, asks for credentials or refuses; TLS with ALPN x-amzn-mqtt-ca runs inside the tunnel
//! to the emulator. Also where the proxy setting comes from (TOML, environment, NO_PROXY).

mod common;

use common::connect_proxy::{Mode, TestProxy};
use common::{TestEmulator, next_message, within};
use iot443::config::ProxyConfig;
use iot443::{Client, ClientError, Config, ErrorKind, QoS};
use std::path::Path;
use tokio::net::TcpListener;

fn via(emulator: &TestEmulator, client_id: &str, proxy_url: &str) -> Config {
    let mut config = emulator.config(client_id);
    config.proxy = Some(ProxyConfig::parse(proxy_url).unwrap());
    config.validate().unwrap();
    config
}

#[tokio::test]
async fn a_client_reaches_the_emulator_through_the_tunnel_with_alpn() {
    let emulator = TestEmulator::start().await;
    let proxy = TestProxy::start(Mode::Open).await;
    let config = via(&emulator, "via-proxy", &proxy.url());

    let (client, _events) = within("connect", Client::connect(&config)).await.unwrap();
    let info = client.connection_info().clone();
    assert_eq!(info.alpn.as_deref(), Some("x-amzn-mqtt-ca"));
    assert_eq!(info.host, "localhost");
    assert_eq!(info.port, emulator.alpn_port());
    assert_eq!(info.proxy, Some(proxy.addr.to_string()));
    assert_eq!(info.remote_addr, Some(proxy.addr), "TCP goes to the proxy");
    let summary = info.summary();
    assert!(summary.ends_with(&format!("via proxy {}", proxy.addr)), "{summary}");

    let mut subscription =
        within("subscribe", client.subscribe("proxy/qos1", QoS::AtLeastOnce)).await.unwrap();
    within("PUBACK", client.publish("proxy/qos1", QoS::AtLeastOnce, "tunnelled").await.unwrap())
        .await
        .unwrap();
    let message = next_message(&mut subscription, "the QoS 1 message").await;
    assert_eq!(&message.payload[..], b"tunnelled");
    within("disconnect", client.disconnect()).await.unwrap();

    let requests = proxy.requests();
    let target = format!("localhost:{}", emulator.alpn_port());
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].starts_with(&format!("CONNECT {target} HTTP/1.1\r\n")), "{requests:?}");
    assert!(requests[0].contains(&format!("\r\nHost: {target}\r\n")), "{requests:?}");
    assert!(!requests[0].contains("Proxy-Authorization"), "{requests:?}");
}

#[tokio::test]
async fn credentials_in_the_url_are_sent_as_basic_authorization() {
    let emulator = TestEmulator::start().await;
    // base64("Aladdin:open sesame")
    let proxy = TestProxy::start(Mode::RequireAuth("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")).await;
    let url = format!("http://Aladdin:open%20sesame@{}", proxy.addr);
    let config = via(&emulator, "proxy-auth", &url);

    let (client, _events) = within("connect", Client::connect(&config)).await.unwrap();
    assert_eq!(client.connection_info().alpn.as_deref(), Some("x-amzn-mqtt-ca"));
    within("disconnect", client.disconnect()).await.unwrap();
    let requests = proxy.requests();
    assert!(
        requests[0].contains("\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"),
        "{requests:?}"
    );
    // The password stays out of the configuration's Debug output.
    let debug = format!("{config:?}");
    assert!(!debug.contains("sesame"), "{debug}");
    assert!(debug.contains("Aladdin:***@"), "{debug}");
}

#[tokio::test]
async fn a_407_asks_for_credentials() {
    let emulator = TestEmulator::start().await;
    let proxy = TestProxy::start(Mode::RequireAuth("Basic dTpw")).await;
    let config = via(&emulator, "proxy-407", &proxy.url());

    let Err(error) = within("connect", Client::connect(&config)).await else {
        panic!("expected a 407")
    };
    let text = error.to_string();
    let ClientError::Proxy { proxy: name, status, detail, hint } = &error else {
        panic!("expected ClientError::Proxy, got {error:?}")
    };
    assert_eq!(*status, Some(407));
    assert_eq!(name, &proxy.url());
    assert!(detail.contains("407 Proxy Authentication Required"), "{text}");
    assert!(
        hint.contains("the proxy needs credentials: proxy = \"http://user:pass@host:port\""),
        "{text}"
    );
    assert_eq!(error.kind(), ErrorKind::TlsOrAuth);

    // Wrong credentials: still a 407, and the password is not in the message.
    let config = via(&emulator, "proxy-407", &format!("http://u:wrong-pw@{}", proxy.addr));
    let Err(error) = within("connect", Client::connect(&config)).await else {
        panic!("expected a 407")
    };
    let text = error.to_string();
    assert!(matches!(error, ClientError::Proxy { status: Some(407), .. }), "{text}");
    assert!(!text.contains("wrong-pw"), "{text}");
    assert!(text.contains("u:***@"), "{text}");
}

#[tokio::test]
async fn a_403_says_the_proxy_refused_the_tunnel() {
    let emulator = TestEmulator::start().await;
    let proxy = TestProxy::start(Mode::Forbid).await;
    let config = via(&emulator, "proxy-403", &proxy.url());

    let Err(error) = within("connect", Client::connect(&config)).await else {
        panic!("expected a 403")
    };
    let text = error.to_string();
    assert!(matches!(error, ClientError::Proxy { status: Some(403), .. }), "{text}");
    assert!(text.contains("HTTP/1.1 403 Forbidden"), "{text}");
    let target = format!("localhost:{}", emulator.alpn_port());
    assert!(text.contains(&format!("the proxy refused CONNECT to {target} (is port")), "{text}");
    assert!(text.contains("allowed through it?"), "{text}");
    assert_eq!(error.kind(), ErrorKind::TlsOrAuth);
}

#[tokio::test]
async fn an_unreachable_proxy_is_a_network_error_naming_it() {
    let emulator = TestEmulator::start().await;
    // A port that was free a moment ago: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let config = via(&emulator, "proxy-down", &format!("http://{closed}"));

    let Err(error) = within("connect", Client::connect(&config)).await else {
        panic!("expected no proxy")
    };
    let text = error.to_string();
    assert!(matches!(error, ClientError::Proxy { status: None, .. }), "{text}");
    assert!(text.contains(&format!("cannot reach the proxy {closed}")), "{text}");
    assert_eq!(error.kind(), ErrorKind::Connection);
}

const TOML_BASE: &str = r#"
endpoint = "abc123-ats.iot.eu-west-1.amazonaws.com"
client_id = "dev"
certificate = "cert.pem"
private_key = "key.pem"
"#;

#[test]
fn the_toml_proxy_key_is_parsed_and_https_proxies_are_refused() {
    let text = format!("{TOML_BASE}proxy = \"http://user:pw@proxy.corp:3128\"\n");
    let config = Config::from_toml_str(&text, Path::new("/etc/iot443")).unwrap();
    let proxy = config.proxy.as_ref().unwrap();
    assert_eq!((proxy.host(), proxy.port(), proxy.user()), ("proxy.corp", 3128, Some("user")));
    assert!(proxy.has_credentials());
    assert!(!format!("{config:?}").contains("pw@"));

    let text = format!("{TOML_BASE}proxy = \"https://proxy.corp:3128\"\n");
    let error = Config::from_toml_str(&text, Path::new("/")).unwrap_err().to_string();
    assert!(error.contains("`proxy`") && error.contains("https://"), "{error}");

    assert!(Config::from_toml_str(TOML_BASE, Path::new("/")).unwrap().proxy.is_none());
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn base_config() -> Config {
    Config::from_toml_str(TOML_BASE, Path::new("/")).unwrap()
}

#[test]
fn https_proxy_applies_unless_no_proxy_matches_the_endpoint() {
    let mut config = base_config();
    config.apply_env(env(&[("HTTPS_PROXY", "http://p.corp:3128")])).unwrap();
    assert_eq!(config.proxy.unwrap().addr(), "p.corp:3128");

    let mut config = base_config();
    config.apply_env(env(&[("https_proxy", "p.corp:8080")])).unwrap();
    assert_eq!(config.proxy.unwrap().addr(), "p.corp:8080");

    for no_proxy in
        [".amazonaws.com", "amazonaws.com", "*", "localhost, iot.eu-west-1.amazonaws.com"]
    {
        let mut config = base_config();
        config
            .apply_env(env(&[("HTTPS_PROXY", "http://p.corp:3128"), ("NO_PROXY", no_proxy)]))
            .unwrap();
        assert!(config.proxy.is_none(), "NO_PROXY={no_proxy}");
    }
    let mut config = base_config();
    config
        .apply_env(env(&[("HTTPS_PROXY", "http://p.corp:3128"), ("no_proxy", "example.com")]))
        .unwrap();
    assert!(config.proxy.is_some());

    let mut config = base_config();
    let error = config.apply_env(env(&[("HTTPS_PROXY", "https://p.corp")])).unwrap_err();
    assert!(error.to_string().contains("HTTPS_PROXY"), "{error}");
    assert!(config.proxy.is_none(), "an error leaves the configuration unchanged");
}

#[test]
fn an_explicit_proxy_wins_over_https_proxy() {
    // The file's proxy.
    let text = format!("{TOML_BASE}proxy = \"http://file.corp:1\"\n");
    let mut config = Config::from_toml_str(&text, Path::new("/")).unwrap();
    config.apply_env(env(&[("HTTPS_PROXY", "http://env.corp:2")])).unwrap();
    assert_eq!(config.proxy.as_ref().unwrap().host(), "file.corp");

    // IOT443_PROXY over the file and HTTPS_PROXY, and NO_PROXY does not apply to it.
    config
        .apply_env(env(&[
            ("IOT443_PROXY", "http://iot443.corp:3"),
            ("HTTPS_PROXY", "http://env.corp:2"),
            ("NO_PROXY", "*"),
        ]))
        .unwrap();
    assert_eq!(config.proxy.as_ref().unwrap().host(), "iot443.corp");

    let mut config = base_config();
    let error = config.apply_env(env(&[("IOT443_PROXY", "https://p")])).unwrap_err();
    assert!(error.to_string().contains("IOT443_PROXY"), "{error}");
}
