//! `iot443 doctor` with a TLS-inspecting proxy in the way: an in-test server presents a
//! certificate for the endpoint issued by "Corporate TLS Inspection CA"; the doctor fails at the
//! tls step (exit 14) and its hint names the interception, the issuer and what works.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use iot443_emulator::pki::{Pki, PkiOptions};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;

/// Accepts TLS connections with a certificate for `localhost` issued by the inspection CA.
fn interceptor() -> u16 {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "Corporate TLS Inspection CA");
    ca.distinguished_name.push(rcgen::DnType::OrganizationName, "Example Corp");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), ca_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { return };
            let Ok(mut connection) = rustls::ServerConnection::new(Arc::clone(&config)) else {
                return;
            };
            // The client refuses the certificate: the handshake ends with its alert.
            while connection.is_handshaking() {
                if connection.complete_io(&mut tcp).is_err() {
                    break;
                }
            }
        }
    });
    port
}

#[test]
fn the_doctor_names_the_interceptor_its_issuer_and_what_works() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    let port = interceptor();

    let output = Command::new(env!("CARGO_BIN_EXE_iot443"))
        .arg("doctor")
        .arg("--config")
        .arg(pki.config_path())
        .args(["-p", &port.to_string()])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(14), "fails at tls: {stdout}");
    let tls = stdout.lines().skip_while(|line| !line.starts_with("✘ tls:")).collect::<Vec<_>>();
    let text = tls.join("\n");
    assert!(text.contains("Corporate TLS Inspection CA"), "{stdout}");
    assert!(
        text.contains("hint: a TLS-inspecting (intercepting) proxy is probably in the way"),
        "{stdout}"
    );
    assert!(text.contains("transport = \"websocket\""), "{stdout}");
}
