#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The TOML configuration file, the `IOT443_*` environment layer over it, and the ALPN rule.

use iot443::config::{Config, ConfigError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FULL: &str = r#"
# The layout DESIGN.md documents.
endpoint    = "abc123-ats.iot.ap-northeast-1.amazonaws.com"
port        = 443
client_id   = "tls-test"
thing_name  = "tls-thing"
root_ca     = "certs/rootCA.crt"
certificate = "certs/cert.pem"
private_key = "/etc/iot443/privkey.pem"
keep_alive  = 300
clean_session = false
connect_timeout = 2.5
"#;

const MINIMAL: &str = r#"
endpoint    = "abc123-ats.iot.ap-northeast-1.amazonaws.com"
client_id   = "tls-test"
certificate = "cert.pem"
private_key = "privkey.pem"
"#;

/// Writes `text` as `<tempdir>/conf/iot443.toml` and returns (tempdir, file path).
fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = dir.path().join("conf");
    std::fs::create_dir(&conf_dir).unwrap();
    let path = conf_dir.join("iot443.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |name| map.get(name).cloned()
}

#[test]
fn full_file_is_read_with_paths_relative_to_its_folder() {
    let (_dir, path) = write_config(FULL);
    let conf_dir = path.parent().unwrap();
    let config = Config::from_toml_file(&path).unwrap();

    assert_eq!(config.endpoint, "abc123-ats.iot.ap-northeast-1.amazonaws.com");
    assert_eq!(config.port, 443);
    assert_eq!(config.client_id, "tls-test");
    assert_eq!(config.thing_name.as_deref(), Some("tls-thing"));
    assert_eq!(config.effective_thing_name(), "tls-thing");
    assert_eq!(config.root_ca, Some(conf_dir.join("certs/rootCA.crt")));
    assert_eq!(config.certificate, conf_dir.join("certs/cert.pem"));
    assert_eq!(config.private_key, Path::new("/etc/iot443/privkey.pem"), "absolute stays");
    assert_eq!(config.alpn, None);
    assert_eq!(config.keep_alive, Duration::from_secs(300));
    assert!(!config.clean_session);
    assert_eq!(config.connect_timeout, Duration::from_millis(2500));
    assert_eq!(config.source.as_deref(), Some(path.as_path()));
    assert_eq!(config.server_addr(), "abc123-ats.iot.ap-northeast-1.amazonaws.com:443");
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let config = Config::from_toml_str(MINIMAL, Path::new("/base")).unwrap();
    assert_eq!(config.port, 443);
    assert_eq!(config.thing_name, None);
    assert_eq!(config.effective_thing_name(), "tls-test");
    assert_eq!(config.root_ca, None);
    assert_eq!(config.certificate, Path::new("/base/cert.pem"));
    assert_eq!(config.keep_alive, Duration::from_secs(60));
    assert!(config.clean_session);
    assert_eq!(config.connect_timeout, Duration::from_secs(10));
    assert_eq!(config.source, None);
}

#[test]
fn missing_client_id_names_the_file_and_the_key() {
    let (_dir, path) = write_config(&MINIMAL.replace("client_id   = \"tls-test\"\n", ""));
    let err = Config::from_toml_file(&path).unwrap_err();
    match &err {
        ConfigError::MissingField { origin, field } => {
            assert_eq!(*field, "client_id");
            assert_eq!(origin, &path.display().to_string());
        }
        other => panic!("expected MissingField, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("client_id"), "{message}");
}

#[test]
fn unknown_key_is_an_error_naming_it() {
    let (_dir, path) = write_config(&format!("{MINIMAL}cafile = \"root.pem\"\n"));
    let err = Config::from_toml_file(&path).unwrap_err();
    match &err {
        ConfigError::UnknownKey { path: p, key } => {
            assert_eq!(key, "cafile");
            assert_eq!(p, &path);
        }
        other => panic!("expected UnknownKey, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("`cafile`") && message.contains("root_ca"), "{message}");
}

#[test]
fn keep_alive_outside_iot_core_range_is_an_error() {
    for bad in ["10", "1201", "0"] {
        let text = format!("{MINIMAL}keep_alive = {bad}\n");
        let err = Config::from_toml_str(&text, Path::new("/base")).unwrap_err();
        match &err {
            ConfigError::InvalidValue { field, message, .. } => {
                assert_eq!(*field, "keep_alive");
                assert!(message.contains("30 to 1200"), "{message}");
            }
            other => panic!("keep_alive = {bad}: expected InvalidValue, got {other:?}"),
        }
    }
    for good in ["30", "1200"] {
        let text = format!("{MINIMAL}keep_alive = {good}\n");
        assert!(Config::from_toml_str(&text, Path::new("/base")).is_ok(), "keep_alive = {good}");
    }
}

#[test]
fn bad_values_name_file_and_key() {
    let (_dir, path) = write_config(&MINIMAL.replace("\"tls-test\"", "42"));
    let err = Config::from_toml_file(&path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ConfigError::InvalidValue { field: "client_id", .. }), "{err:?}");
    assert!(message.contains(&path.display().to_string()), "{message}");

    let err =
        Config::from_toml_str(&format!("{MINIMAL}port = 70000\n"), Path::new("/")).unwrap_err();
    assert!(matches!(err, ConfigError::InvalidValue { field: "port", .. }), "{err:?}");

    let text = MINIMAL.replace("abc123-ats", "https://abc123-ats");
    let err = Config::from_toml_str(&text, Path::new("/")).unwrap_err();
    assert!(matches!(err, ConfigError::InvalidValue { field: "endpoint", .. }), "{err:?}");
    assert!(err.to_string().contains("scheme"), "{err}");
}

#[test]
fn port_auto_races_8883_and_443_and_a_number_does_not() {
    let config =
        Config::from_toml_str(&format!("{MINIMAL}port = \"auto\"\n"), Path::new("/")).unwrap();
    let auto = config.auto_port.expect("port = \"auto\" sets auto_port");
    assert_eq!((auto.mqtts_port, auto.alpn_port), (8883, 443));
    assert_eq!(auto.stagger, std::time::Duration::from_millis(250));

    let fixed = Config::from_toml_str(&format!("{MINIMAL}port = 8883\n"), Path::new("/")).unwrap();
    assert_eq!((fixed.port, fixed.auto_port), (8883, None));
    let default = Config::from_toml_str(MINIMAL, Path::new("/")).unwrap();
    assert_eq!((default.port, default.auto_port), (443, None), "443 is the default, not auto");
}

#[test]
fn a_port_that_is_neither_a_number_nor_auto_says_what_is_accepted() {
    let err =
        Config::from_toml_str(&format!("{MINIMAL}port = \"https\"\n"), Path::new("/")).unwrap_err();
    assert!(matches!(err, ConfigError::InvalidValue { field: "port", .. }), "{err:?}");
    assert!(err.to_string().contains("auto"), "{err}");
}

#[test]
fn invalid_toml_names_the_file() {
    let (_dir, path) = write_config("endpoint = \n");
    let err = Config::from_toml_file(&path).unwrap_err();
    assert!(matches!(&err, ConfigError::Toml { path: p, .. } if p == &path), "{err:?}");
    assert!(err.to_string().contains("line 1"), "{err}");
}

#[test]
fn missing_file_is_an_io_error_with_the_path() {
    let path = Path::new("/nonexistent/iot443.toml");
    let err = Config::from_toml_file(path).unwrap_err();
    assert!(matches!(&err, ConfigError::Io { path: p, .. } if p == path), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/iot443.toml"), "{err}");
}

#[test]
fn load_picks_toml_for_other_extensions() {
    let (_dir, path) = write_config(MINIMAL);
    assert_eq!(Config::load(&path).unwrap(), Config::from_toml_file(&path).unwrap());
}

#[test]
fn environment_overrides_the_file() {
    let (_dir, path) = write_config(FULL);
    let mut config = Config::from_toml_file(&path).unwrap();
    config
        .apply_env(env(&[
            ("IOT443_ENDPOINT", "127.0.0.1"),
            ("IOT443_PORT", "8883"),
            ("IOT443_CLIENT_ID", "from-env"),
            ("IOT443_THING_NAME", "env-thing"),
            ("IOT443_ROOT_CA", "/env/root.pem"),
            ("IOT443_CERTIFICATE", "/env/cert.pem"),
            ("IOT443_PRIVATE_KEY", "/env/key.pem"),
            ("IOT443_KEEP_ALIVE", "120"),
            ("IOT443_ALPN", ""), // empty counts as unset
        ]))
        .unwrap();
    assert_eq!(config.endpoint, "127.0.0.1");
    assert_eq!(config.port, 8883);
    assert_eq!(config.client_id, "from-env");
    assert_eq!(config.thing_name.as_deref(), Some("env-thing"));
    assert_eq!(config.root_ca.as_deref(), Some(Path::new("/env/root.pem")));
    assert_eq!(config.certificate, Path::new("/env/cert.pem"));
    assert_eq!(config.private_key, Path::new("/env/key.pem"));
    assert_eq!(config.keep_alive, Duration::from_secs(120));
    assert_eq!(config.alpn, None);
    assert_eq!(config.alpn_protocol(), None, "8883 from the environment: no ALPN");
    // What the environment does not set stays as the file said.
    assert!(!config.clean_session);
}

#[test]
fn iot443_port_auto_turns_the_race_on_and_a_number_turns_it_off() {
    let mut config = Config::from_toml_str(MINIMAL, Path::new("/")).unwrap();
    config.apply_env(env(&[("IOT443_PORT", "auto")])).unwrap();
    assert!(config.auto_port.is_some());
    config.apply_env(env(&[("IOT443_PORT", "8883")])).unwrap();
    assert_eq!((config.port, config.auto_port.is_some()), (8883, false));
}

#[test]
fn invalid_environment_value_names_the_variable_and_changes_nothing() {
    let mut config = Config::from_toml_str(MINIMAL, Path::new("/")).unwrap();
    let before = config.clone();
    for (var, value) in [
        ("IOT443_PORT", "https"),
        ("IOT443_PORT", "0"),
        ("IOT443_KEEP_ALIVE", "5"),
        ("IOT443_KEEP_ALIVE", "sixty"),
        ("IOT443_CLIENT_ID", "$aws-reserved"),
    ] {
        let err = config.apply_env(env(&[("IOT443_ENDPOINT", "other.example.com"), (var, value)]));
        let err = err.unwrap_err();
        assert!(err.to_string().contains(var), "{var}={value}: {err}");
        assert_eq!(config, before, "{var}={value} must leave the config unchanged");
    }
}

#[test]
fn alpn_is_offered_on_443_only_unless_overridden() {
    let on_443 = Config::from_toml_str(MINIMAL, Path::new("/")).unwrap();
    assert_eq!(on_443.alpn_protocol(), Some("x-amzn-mqtt-ca"));

    let on_8883 =
        Config::from_toml_str(&format!("{MINIMAL}port = 8883\n"), Path::new("/")).unwrap();
    assert_eq!(on_8883.alpn_protocol(), None);

    let text = format!("{MINIMAL}port = 8883\nalpn = \"mqtt\"\n");
    let overridden = Config::from_toml_str(&text, Path::new("/")).unwrap();
    assert_eq!(overridden.alpn.as_deref(), Some("mqtt"));
    assert_eq!(overridden.alpn_protocol(), Some("mqtt"));

    let mut from_env = on_8883.clone();
    from_env.apply_env(env(&[("IOT443_ALPN", "x-amzn-mqtt-ca")])).unwrap();
    assert_eq!(from_env.alpn_protocol(), Some("x-amzn-mqtt-ca"));
}

#[test]
fn builder_checks_like_the_file() {
    let config = Config::builder("localhost", "dev-1", "c.pem", "k.pem")
        .port(8883)
        .keep_alive(Duration::from_secs(45))
        .build()
        .unwrap();
    assert_eq!(config.server_addr(), "localhost:8883");
    assert_eq!(config.alpn_protocol(), None);

    let err = Config::builder("localhost", "", "c.pem", "k.pem").build().unwrap_err();
    assert!(matches!(err, ConfigError::InvalidValue { field: "client_id", .. }), "{err:?}");
    let err = Config::builder("host.example.com:8883", "id", "c.pem", "k.pem").build().unwrap_err();
    assert!(err.to_string().contains("port"), "{err}");
    let err = Config::builder("h", "id", "c.pem", "k.pem")
        .keep_alive(Duration::from_secs(1500))
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::InvalidValue { field: "keep_alive", .. }), "{err:?}");
    let err = Config::builder("h", "id", "c.pem", "k.pem").thing_name("bad name").build();
    assert!(matches!(err, Err(ConfigError::InvalidValue { field: "thing_name", .. })));
}

#[test]
fn a_required_key_the_file_lacks_may_be_supplied_and_the_files_keys_win_over_nothing_else() {
    let (_dir, path) = write_config("client_id = \"from-file\"\nport = 8883\n");
    let supplied = |key: &str| match key {
        "endpoint" => Some("supplied.example.com".to_owned()),
        "client_id" => Some("supplied-id".to_owned()),
        "certificate" => Some("/flags/cert.pem".to_owned()),
        "private_key" => Some("/flags/key.pem".to_owned()),
        _ => None,
    };
    let config = Config::from_toml_file_with(&path, supplied).unwrap();
    assert_eq!(config.endpoint, "supplied.example.com");
    assert_eq!(config.client_id, "from-file", "a key in the file is not replaced by the fallback");
    assert_eq!(config.certificate, Path::new("/flags/cert.pem"));
    assert_eq!(config.private_key, Path::new("/flags/key.pem"));
    assert_eq!(config.port, 8883);

    let err =
        Config::from_toml_file_with(&path, |key| (key != "private_key").then(|| "x".to_owned()))
            .unwrap_err();
    assert!(
        matches!(&err, ConfigError::MissingField { field: "private_key", .. }),
        "what nothing supplies is still missing: {err:?}"
    );
}
