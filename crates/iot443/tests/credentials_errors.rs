#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Credential mistakes against the emulator: each gives an error that names the file at fault,
//! and the ones the client can see for itself stop it before any connection.

mod common;

use common::{TestEmulator, within};
use iot443::{Client, ClientError, ConfigError, ErrorKind};
use iot443_emulator::pki::{DeviceKeyKind, Pki, PkiOptions};
use std::time::Duration;

#[tokio::test]
async fn root_ca_of_another_endpoint_fails_the_handshake_naming_the_root_ca_file() {
    let emulator = TestEmulator::start().await;
    // Another emulator's CA: a well-formed root that did not sign this server's certificate.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = Pki::load_or_create(elsewhere.path(), &PkiOptions::default()).unwrap();
    let other_ca = other.dir.join("ca.pem");
    let mut config = emulator.config("wrong-ca");
    config.root_ca = Some(other_ca.clone());

    let error = within("connect", Client::connect(&config)).await.unwrap_err();
    let ClientError::Tls { addr, detail, hint, .. } = &error else {
        panic!("expected ClientError::Tls, got {error:?}");
    };
    assert_eq!(addr, &format!("localhost:{}", emulator.alpn_port()));
    assert!(detail.contains("not signed by a trusted root"), "{detail}");
    assert!(hint.contains(&format!("check root_ca ({})", other_ca.display())), "{hint}");
    assert!(error.to_string().contains(&other_ca.display().to_string()), "{error}");
    assert_eq!(error.kind(), ErrorKind::TlsOrAuth);
}

#[tokio::test]
async fn key_of_another_device_is_refused_before_any_connection() {
    let emulator = TestEmulator::start().await;
    let other = emulator.emulator.pki.issue_device("other", DeviceKeyKind::EcP256).unwrap();
    // A listener that records any connection attempt: nothing may reach it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut config = emulator.config("wrong-key");
    config.port = listener.local_addr().unwrap().port();
    config.private_key = other.private_key_path.clone();

    let error = within("connect", Client::connect(&config)).await.unwrap_err();
    let ClientError::Config(ConfigError::KeyDoesNotMatchCertificate { certificate, private_key }) =
        &error
    else {
        panic!("expected ConfigError::KeyDoesNotMatchCertificate, got {error:?}");
    };
    assert_eq!(certificate, &config.certificate);
    assert_eq!(private_key, &other.private_key_path);
    let message = error.to_string();
    assert!(message.contains(&config.certificate.display().to_string()), "{message}");
    assert!(message.contains(&other.private_key_path.display().to_string()), "{message}");
    assert!(message.contains("does not belong to certificate"), "{message}");
    assert_eq!(error.kind(), ErrorKind::Usage);

    // A TCP connect that had completed would wait in the accept queue.
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the client connected although its key is wrong: {accepted:?}"
    );
}

#[tokio::test]
async fn expired_certificate_is_refused_naming_the_file() {
    let emulator = TestEmulator::start().await;
    let now = time::OffsetDateTime::now_utc();
    let (config, expired) = emulator.config_with_device_valid(
        "expired",
        "expired",
        now - time::Duration::days(30),
        now - time::Duration::days(1),
    );

    let error = within("connect", Client::connect(&config)).await.unwrap_err();
    let ClientError::Config(ConfigError::CertificateExpired { path, not_after }) = &error else {
        panic!("expected ConfigError::CertificateExpired, got {error:?}");
    };
    assert_eq!(path, &expired.certificate_path);
    assert!(*not_after < now);
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "certificate {} expired on ",
            expired.certificate_path.display()
        )),
        "{message}"
    );
    assert!(message.contains("UTC"), "{message}");
    assert!(message.contains("create a new certificate"), "{message}");
    assert_eq!(error.kind(), ErrorKind::Usage);
}

#[tokio::test]
async fn certificate_not_valid_yet_is_refused_naming_the_file() {
    let emulator = TestEmulator::start().await;
    let now = time::OffsetDateTime::now_utc();
    let (config, future) = emulator.config_with_device_valid(
        "future",
        "future",
        now + time::Duration::days(1),
        now + time::Duration::days(30),
    );

    let error = within("connect", Client::connect(&config)).await.unwrap_err();
    let ClientError::Config(ConfigError::CertificateNotYetValid { path, .. }) = &error else {
        panic!("expected ConfigError::CertificateNotYetValid, got {error:?}");
    };
    assert_eq!(path, &future.certificate_path);
    assert!(error.to_string().contains("check the device clock"), "{error}");
    assert_eq!(error.kind(), ErrorKind::Usage);
}

#[tokio::test]
async fn missing_key_file_is_named() {
    let emulator = TestEmulator::start().await;
    let mut config = emulator.config("no-key");
    config.private_key = emulator.dir().join("nowhere.key");

    let error = within("connect", Client::connect(&config)).await.unwrap_err();
    let ClientError::Config(ConfigError::Io { path, .. }) = &error else {
        panic!("expected ConfigError::Io, got {error:?}");
    };
    assert_eq!(path, &config.private_key);
    assert!(error.to_string().contains("nowhere.key"), "{error}");
    assert_eq!(error.kind(), ErrorKind::Usage);
}

#[tokio::test]
async fn another_device_of_the_same_ca_connects() {
    // The counterpart of the refusals above: a second identity issued by the emulator's CA is
    // accepted, so the refusals are about the files, not about the setup.
    let emulator = TestEmulator::start().await;
    let second = emulator.emulator.pki.issue_device("second", DeviceKeyKind::EcP256).unwrap();
    let mut config = emulator.config("second");
    config.certificate = second.certificate_path;
    config.private_key = second.private_key_path;
    config.connect_timeout = Duration::from_secs(10);

    let (client, _events) = within("connect", Client::connect(&config)).await.unwrap();
    within("disconnect", client.disconnect()).await.unwrap();
}
