#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! A configuration that asks for a road compiled out of this build (a cargo feature left out)
//! is a [`ConfigError::FeatureDisabled`] naming the field and the feature, from every place a
//! setting can come from (a TOML file, an `IOT443_*` variable, `HTTPS_PROXY`, the builder, a
//! field set by hand before connecting: refused before any connection), never a silent
//! ignore. Each test runs only in a build without its feature:
//! `cargo test -p iot443 --no-default-features --test features_off`.

mod common;

#[allow(unused_imports)]
use iot443::{ClientError, Config, ConfigError};
#[allow(unused_imports)]
use std::path::Path;

/// A TOML configuration with the four required settings and `extra` after them.
#[allow(dead_code)]
fn toml_with(extra: &str) -> String {
    format!(
        "endpoint = \"abc123-ats.iot.eu-west-1.amazonaws.com\"\nclient_id = \"dev\"\n\
         certificate = \"cert.pem\"\nprivate_key = \"key.pem\"\n{extra}\n"
    )
}

/// Checks that `error` is `FeatureDisabled` for `field` and `feature`, and that its message
/// says what to do.
#[allow(dead_code)]
fn assert_disabled(error: &ConfigError, field: &str, feature: &str) {
    match error {
        ConfigError::FeatureDisabled { field: f, feature: c, .. } => {
            assert_eq!((*f, *c), (field, feature), "{error}");
        }
        other => panic!("expected FeatureDisabled for `{field}`, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains(&format!("rebuild with the cargo feature `{feature}`")), "{message}");
    assert!(message.contains(&format!("`{field}`")), "{message}");
}

/// Checks that a connect failed with `FeatureDisabled` for `field` and `feature`.
#[allow(dead_code)]
fn assert_connect_disabled(
    result: Result<(iot443::Client, iot443::Events), ClientError>,
    field: &str,
    feature: &str,
) {
    match result {
        Err(ClientError::Config(error)) => assert_disabled(&error, field, feature),
        Err(other) => panic!("expected a configuration error, got {other:?}"),
        Ok(_) => panic!("connected although `{field}` needs the feature `{feature}`"),
    }
}

#[cfg(not(feature = "websocket"))]
#[test]
fn websocket_transport_without_the_feature_is_refused_wherever_it_is_set() {
    let error = Config::from_toml_str(&toml_with("transport = \"websocket\""), Path::new("/base"))
        .unwrap_err();
    assert_disabled(&error, "transport", "websocket");

    let error = Config::websocket_builder("abc123-ats.iot.eu-west-1.amazonaws.com", "dev")
        .build()
        .unwrap_err();
    assert_disabled(&error, "transport", "websocket");

    let mut config = Config::from_toml_str(&toml_with(""), Path::new("/base")).unwrap();
    let error = config
        .apply_env(|name| (name == "IOT443_TRANSPORT").then(|| "websocket".to_owned()))
        .unwrap_err();
    assert_disabled(&error, "transport", "websocket");
    assert!(error.to_string().contains("IOT443_TRANSPORT"), "{error}");
}

#[cfg(not(feature = "websocket"))]
#[tokio::test]
async fn websocket_transport_set_by_hand_fails_at_connect_before_any_connection() {
    let mut config = Config::from_toml_str(&toml_with(""), Path::new("/base")).unwrap();
    config.transport = iot443::config::Transport::WebSocket;
    let connected = common::within("connect", iot443::Client::connect(&config)).await;
    assert_connect_disabled(connected, "transport", "websocket");
}

#[cfg(not(feature = "https"))]
#[test]
fn https_transport_without_the_feature_is_refused() {
    let error =
        Config::from_toml_str(&toml_with("transport = \"https\""), Path::new("/base")).unwrap_err();
    assert_disabled(&error, "transport", "https");
}

#[cfg(not(feature = "proxy"))]
#[test]
fn a_proxy_without_the_feature_is_refused_wherever_it_is_set() {
    let error = Config::from_toml_str(
        &toml_with("proxy = \"http://proxy.example:3128\""),
        Path::new("/base"),
    )
    .unwrap_err();
    assert_disabled(&error, "proxy", "proxy");

    let proxy = iot443::config::ProxyConfig::parse("http://proxy.example:3128").unwrap();
    let error = Config::builder("abc123-ats.iot.eu-west-1.amazonaws.com", "dev", "c", "k")
        .proxy(proxy)
        .build()
        .unwrap_err();
    assert_disabled(&error, "proxy", "proxy");

    for var in ["IOT443_PROXY", "HTTPS_PROXY", "https_proxy"] {
        let mut config = Config::from_toml_str(&toml_with(""), Path::new("/base")).unwrap();
        let before = config.clone();
        let error = config
            .apply_env(|name| (name == var).then(|| "http://proxy.example:3128".to_owned()))
            .unwrap_err();
        assert_disabled(&error, "proxy", "proxy");
        assert!(error.to_string().contains(var), "{var}: {error}");
        assert_eq!(config.proxy, before.proxy, "{var}: the configuration is left unchanged");
    }
}

#[cfg(not(feature = "proxy"))]
#[tokio::test]
async fn a_proxy_set_by_hand_fails_at_connect_before_any_connection() {
    let mut config = Config::from_toml_str(&toml_with(""), Path::new("/base")).unwrap();
    config.proxy = Some(iot443::config::ProxyConfig::parse("http://127.0.0.1:9").unwrap());
    let connected = common::within("connect", iot443::Client::connect(&config)).await;
    assert_connect_disabled(connected, "proxy", "proxy");
}

#[cfg(not(feature = "outbox"))]
#[test]
fn an_outbox_without_the_feature_is_refused_wherever_it_is_set() {
    let error = Config::from_toml_str(&toml_with("outbox = \"outbox.db\""), Path::new("/base"))
        .unwrap_err();
    assert_disabled(&error, "outbox", "outbox");

    let error = Config::builder("abc123-ats.iot.eu-west-1.amazonaws.com", "dev", "c", "k")
        .outbox("outbox.db")
        .build()
        .unwrap_err();
    assert_disabled(&error, "outbox", "outbox");
}

#[cfg(not(feature = "outbox"))]
#[tokio::test]
async fn an_outbox_set_by_hand_fails_at_connect_and_no_file_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::from_toml_str(&toml_with(""), dir.path()).unwrap();
    let path = dir.path().join("outbox.db");
    config.outbox = Some(path.clone());
    let connected = common::within("connect", iot443::Client::connect(&config)).await;
    assert_connect_disabled(connected, "outbox", "outbox");
    assert!(!path.exists(), "no outbox file is created");
}

#[cfg(not(feature = "webpki-roots"))]
#[tokio::test]
async fn no_root_ca_without_the_built_in_roots_is_refused_and_a_root_ca_works() {
    let emulator = common::TestEmulator::start().await;
    let with_root = emulator.config("roots-off");
    assert!(with_root.root_ca.is_some(), "the emulator's configuration names its root");
    iot443::config::Credentials::load(&with_root).expect("a root_ca file needs no feature");

    let mut config = with_root.clone();
    config.root_ca = None;
    let error = iot443::config::Credentials::load(&config).unwrap_err();
    assert_disabled(&error, "root_ca", "webpki-roots");
    assert!(error.to_string().contains("AmazonRootCA1.pem"), "{error}");

    let connected = common::within("connect", iot443::Client::connect(&config)).await;
    assert_connect_disabled(connected, "root_ca", "webpki-roots");
}

/// In a build with every feature, the same settings are accepted (the error is only for a build
/// that leaves the feature out).
#[cfg(all(feature = "websocket", feature = "proxy", feature = "outbox", feature = "https"))]
#[test]
fn with_every_feature_the_same_settings_are_accepted() {
    for extra in [
        "transport = \"websocket\"",
        "transport = \"https\"",
        "proxy = \"http://proxy.example:3128\"",
        "outbox = \"outbox.db\"",
    ] {
        Config::from_toml_str(&toml_with(extra), Path::new("/base")).unwrap();
    }
}
