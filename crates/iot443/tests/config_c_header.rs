#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Reading the Embedded C SDK's `aws_iot_config.h` as its `subscribe_publish_sample` ships it.

use iot443::config::{Config, ConfigError, Credentials};
use std::path::{Path, PathBuf};

/// `fixtures/aws_iot_config.h`, laid out like `samples/linux/subscribe_publish_sample/
/// aws_iot_config.h` of SDK v3.1.x: the define block as the user edited it (values from the
/// seed article), ///< doc comments, a tab in the thing-name line, and the SDK's other defines
/// around it.
const SAMPLE_HEADER: &str = include_str!("fixtures/aws_iot_config.h");

const CERT_FILES: [&str; 3] = ["rootCA.crt", "cert.pem", "privkey.pem"];

/// Writes `header` at `<root>/<header_dir>/aws_iot_config.h` and the three (placeholder) files in
/// `<root>/<certs_dir>/`; returns the header's path.
fn lay_out(root: &Path, header_dir: &str, certs_dir: &str, header: &str) -> PathBuf {
    let header_dir = root.join(header_dir);
    std::fs::create_dir_all(&header_dir).unwrap();
    let certs = root.join(certs_dir);
    std::fs::create_dir_all(&certs).unwrap();
    for name in CERT_FILES {
        std::fs::write(certs.join(name), "placeholder").unwrap();
    }
    let path = header_dir.join("aws_iot_config.h");
    std::fs::write(&path, header).unwrap();
    path
}

#[test]
fn sample_header_with_certs_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let header = lay_out(dir.path(), "", "certs", SAMPLE_HEADER);
    let certs = dir.path().join("certs");

    let config = Config::from_c_sdk_header(&header, None).unwrap();
    assert_eq!(config.endpoint, "a3gevvffsj7zer-ats.iot.ap-northeast-1.amazonaws.com");
    assert_eq!(config.port, 443);
    assert_eq!(config.client_id, "tls-test");
    assert_eq!(config.thing_name.as_deref(), Some("tls-test"));
    assert_eq!(config.root_ca, Some(certs.join("rootCA.crt")));
    assert_eq!(config.certificate, certs.join("cert.pem"));
    assert_eq!(config.private_key, certs.join("privkey.pem"));
    assert_eq!(config.alpn_protocol(), Some("x-amzn-mqtt-ca"));
    assert_eq!(config.keep_alive, Config::DEFAULT_KEEP_ALIVE);
    assert!(config.clean_session);
    assert_eq!(config.source.as_deref(), Some(header.as_path()));

    // `Config::load` recognises the header by its extension.
    assert_eq!(Config::load(&header).unwrap(), config);
}

#[test]
fn sample_header_in_the_sdk_tree_finds_the_sdk_certs_folder() {
    // The sample runs in samples/linux/subscribe_publish_sample with certDirectory
    // "../../../certs", i.e. the SDK's top-level certs/.
    let dir = tempfile::tempdir().unwrap();
    let header = lay_out(
        dir.path(),
        "sdk/samples/linux/subscribe_publish_sample",
        "sdk/certs",
        SAMPLE_HEADER,
    );
    let config = Config::from_c_sdk_header(&header, None).unwrap();
    let certs = dir.path().join("sdk/certs");
    assert_eq!(config.certificate, certs.join("cert.pem"));
    assert_eq!(config.private_key, certs.join("privkey.pem"));
    assert_eq!(config.root_ca, Some(certs.join("rootCA.crt")));
}

#[test]
fn explicit_cert_dir_wins() {
    let dir = tempfile::tempdir().unwrap();
    let header = lay_out(dir.path(), "", "certs", SAMPLE_HEADER);
    let elsewhere = dir.path().join("elsewhere");
    let config = Config::from_c_sdk_header(&header, Some(&elsewhere)).unwrap();
    assert_eq!(config.certificate, elsewhere.join("cert.pem"));
}

#[test]
fn each_missing_define_is_named() {
    let dir = tempfile::tempdir().unwrap();
    for define in [
        "AWS_IOT_MQTT_HOST",
        "AWS_IOT_MQTT_PORT",
        "AWS_IOT_MQTT_CLIENT_ID",
        "AWS_IOT_CERTIFICATE_FILENAME",
        "AWS_IOT_PRIVATE_KEY_FILENAME",
    ] {
        let text: String = SAMPLE_HEADER
            .lines()
            .filter(|line| !line.starts_with(&format!("#define {define} ")))
            .map(|line| format!("{line}\n"))
            .collect();
        let header = lay_out(dir.path(), "", "certs", &text);
        let err = Config::from_c_sdk_header(&header, None).unwrap_err();
        match &err {
            ConfigError::MissingField { origin, field } => {
                assert_eq!(*field, define);
                assert_eq!(origin, &header.display().to_string());
            }
            other => panic!("without {define}: expected MissingField, got {other:?}"),
        }
        assert!(err.to_string().contains(define), "{err}");
    }
}

#[test]
fn thing_name_and_root_ca_are_optional() {
    let dir = tempfile::tempdir().unwrap();
    let text = SAMPLE_HEADER
        .replace("#define AWS_IOT_MY_THING_NAME", "// #define AWS_IOT_MY_THING_NAME")
        .replace("\"rootCA.crt\"", "\"\"");
    let header = lay_out(dir.path(), "", "certs", &text);
    let config = Config::from_c_sdk_header(&header, None).unwrap();
    assert_eq!(config.thing_name, None);
    assert_eq!(config.effective_thing_name(), "tls-test");
    assert_eq!(config.root_ca, None, "empty root CA name: the Mozilla roots");
}

#[test]
fn port_8883_offers_no_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let text = SAMPLE_HEADER.replace("443 ///<", "8883 ///<");
    let header = lay_out(dir.path(), "", "certs", &text);
    let config = Config::from_c_sdk_header(&header, None).unwrap();
    assert_eq!(config.port, 8883);
    assert_eq!(config.alpn_protocol(), None);
}

#[test]
fn a_bad_value_names_the_define_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = SAMPLE_HEADER.replace("443 ///<", "\"443\" ///<");
    let header = lay_out(dir.path(), "", "certs", &text);
    let err = Config::from_c_sdk_header(&header, None).unwrap_err();
    assert!(matches!(err, ConfigError::InvalidValue { field: "AWS_IOT_MQTT_PORT", .. }), "{err:?}");
    let line = SAMPLE_HEADER.lines().position(|l| l.contains("AWS_IOT_MQTT_PORT ")).unwrap() + 1;
    assert!(err.to_string().contains(&format!("line {line}")), "{err}");
}

#[test]
fn missing_header_is_an_io_error() {
    let err = Config::from_c_sdk_header(Path::new("/nonexistent/aws_iot_config.h"), None);
    assert!(matches!(err, Err(ConfigError::Io { .. })));
}

#[test]
fn credentials_load_from_the_sample_layout() {
    let dir = tempfile::tempdir().unwrap();
    let header = lay_out(dir.path(), "", "certs", SAMPLE_HEADER);
    let certs = dir.path().join("certs");

    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Test Root CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let device_key = rcgen::KeyPair::generate().unwrap();
    let device_cert = rcgen::CertificateParams::new(vec!["tls-test".to_owned()])
        .unwrap()
        .signed_by(&device_key, &rcgen::Issuer::new(ca_params, ca_key))
        .unwrap();
    std::fs::write(certs.join("rootCA.crt"), ca_cert.pem()).unwrap();
    std::fs::write(certs.join("cert.pem"), device_cert.pem()).unwrap();
    std::fs::write(certs.join("privkey.pem"), device_key.serialize_pem()).unwrap();

    let config = Config::from_c_sdk_header(&header, None).unwrap();
    let credentials = Credentials::load(&config).unwrap();
    assert_eq!(credentials.roots.len(), 1, "the header's root CA, not the Mozilla set");
    assert_eq!(credentials.cert_chain.len(), 1);
}

#[test]
fn crlf_and_non_utf8_comments_are_tolerated() {
    // A header edited on Windows with Japanese comments saved as Shift_JIS.
    let dir = tempfile::tempdir().unwrap();
    let header = lay_out(dir.path(), "", "certs", "");
    let mut bytes = b"// \x83\x7a\x83\x58\x83\x67\x96\xbc\r\n".to_vec();
    bytes.extend_from_slice(SAMPLE_HEADER.replace('\n', "\r\n").as_bytes());
    std::fs::write(&header, bytes).unwrap();
    let config = Config::from_c_sdk_header(&header, None).unwrap();
    assert_eq!(config.endpoint, "a3gevvffsj7zer-ats.iot.ap-northeast-1.amazonaws.com");
    assert_eq!(config.private_key, dir.path().join("certs/privkey.pem"));
}
