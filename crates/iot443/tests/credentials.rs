#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Loading and checking the certificate, key and roots before any connection, and the TLS client
//! configuration built from them. Certificates are generated here (rcgen; RSA through the
//! `openssl` binary when present): no private key is committed.

use iot443::config::{Config, ConfigError, CredentialWarning, Credentials, KeyFormat, KeyKind};
use iot443::tls;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
    PKCS_ECDSA_P384_SHA384, PKCS_ED25519, SignatureAlgorithm,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const ENDPOINT: &str = "abc123-ats.iot.test.example";

/// A test CA in a temporary folder, issuing device and server certificates as files.
struct Pki {
    dir: tempfile::TempDir,
    ca_params: CertificateParams,
    ca_key: KeyPair,
    ca_pem: String,
}

/// A device certificate and key written to files.
struct Device {
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "iot443 test root CA");
        let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
        Pki { dir: tempfile::tempdir().unwrap(), ca_params, ca_key, ca_pem }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to `name` with permissions 0600 (a private key's proper mode).
    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        set_mode(&path, 0o600);
        path
    }

    fn root_ca(&self) -> PathBuf {
        self.write("rootCA.crt", &self.ca_pem)
    }

    /// A device certificate valid from `not_before` to `not_after`, with a new key of `alg`.
    fn device_with(
        &self,
        name: &str,
        alg: &'static SignatureAlgorithm,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Device {
        let key = KeyPair::generate_for(alg).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.signed_by(&key, &Issuer::from_params(&self.ca_params, &self.ca_key));
        Device {
            cert: self.write(&format!("{name}-certificate.pem.crt"), &cert.unwrap().pem()),
            key: self.write(&format!("{name}-private.pem.key"), &key.serialize_pem()),
        }
    }

    /// An EC P-256 device certificate valid for a year around now.
    fn device(&self, name: &str) -> Device {
        let now = OffsetDateTime::now_utc();
        self.device_with(
            name,
            &PKCS_ECDSA_P256_SHA256,
            now - Duration::days(1),
            now + Duration::days(365),
        )
    }

    /// A server certificate for `ENDPOINT` signed by the CA, with its key.
    fn server(&self) -> (CertificateDer<'static>, rustls::pki_types::PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec![ENDPOINT.to_owned()]).unwrap();
        let cert = params.signed_by(&key, &Issuer::from_params(&self.ca_params, &self.ca_key));
        let key_der = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
        (cert.unwrap().der().clone(), key_der.into())
    }
}

fn config(device: &Device) -> Config {
    Config::builder(ENDPOINT, "device-1", &device.cert, &device.key).build().unwrap()
}

fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

/// Runs `openssl` with `args` in `dir`; `None` (with a note) when the binary is missing.
fn openssl(dir: &Path, args: &[&str]) -> Option<()> {
    let out = openssl_output(dir, args)?;
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

fn openssl_output(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(out) => Some(out),
        Err(e) => {
            eprintln!("note: skipping this test, the openssl binary is not usable here: {e}");
            None
        }
    }
}

#[test]
fn good_ec_key_and_certificate_load() {
    let pki = Pki::new();
    let device = pki.device("device-1");
    let credentials = Credentials::load(&config(&device)).unwrap();
    assert_eq!(credentials.key_kind, KeyKind::EcP256);
    assert_eq!(credentials.key_format, KeyFormat::Pkcs8);
    assert_eq!(credentials.cert_chain.len(), 1);
    assert!(credentials.warnings.is_empty(), "{:?}", credentials.warnings);
    assert!(credentials.not_after > OffsetDateTime::now_utc() + Duration::days(300));

    // The key never shows in Debug output.
    let debug = format!("{credentials:?}");
    assert!(debug.contains("elided"), "{debug}");
    let key_pem = std::fs::read_to_string(&device.key).unwrap();
    let key_body = key_pem.lines().nth(1).unwrap();
    assert!(!debug.contains(key_body));
}

#[test]
fn ec_p384_key_loads() {
    let pki = Pki::new();
    let now = OffsetDateTime::now_utc();
    let device = pki.device_with(
        "p384",
        &PKCS_ECDSA_P384_SHA384,
        now - Duration::days(1),
        now + Duration::days(90),
    );
    let credentials = Credentials::load(&config(&device)).unwrap();
    assert_eq!(credentials.key_kind, KeyKind::EcP384);
}

#[test]
fn ec_key_in_sec1_format_loads() {
    let pki = Pki::new();
    let device = pki.device("sec1");
    let dir = pki.dir.path();
    let Some(()) = openssl(dir, &["ec", "-in", "sec1-private.pem.key", "-out", "sec1.key"]) else {
        return;
    };
    set_mode(&pki.path("sec1.key"), 0o600);
    assert!(
        std::fs::read_to_string(pki.path("sec1.key")).unwrap().contains("BEGIN EC PRIVATE KEY")
    );
    let config =
        Config::builder(ENDPOINT, "id", &device.cert, pki.path("sec1.key")).build().unwrap();
    let credentials = Credentials::load(&config).unwrap();
    assert_eq!(credentials.key_kind, KeyKind::EcP256);
    assert_eq!(credentials.key_format, KeyFormat::Sec1);
}

#[test]
fn rsa_key_in_pkcs1_and_pkcs8_formats_loads() {
    // ring cannot generate RSA keys: make a throw-away one, as the AWS console hands them out
    // (PKCS#1 `BEGIN RSA PRIVATE KEY`).
    let pki = Pki::new();
    let dir = pki.dir.path();
    let Some(out) = openssl_output(dir, &["genrsa", "-traditional", "-out", "rsa.key", "2048"])
    else {
        return;
    };
    if !out.status.success() {
        // OpenSSL 1.1 has no -traditional: its genrsa writes PKCS#1 already.
        openssl(dir, &["genrsa", "-out", "rsa.key", "2048"]).unwrap();
    }
    openssl(
        dir,
        &[
            "req", "-new", "-x509", "-key", "rsa.key", "-subj", "/CN=rsa", "-days", "30", "-out",
            "rsa.crt",
        ],
    )
    .unwrap();
    openssl(dir, &["pkcs8", "-topk8", "-nocrypt", "-in", "rsa.key", "-out", "rsa8.key"]).unwrap();
    assert!(
        std::fs::read_to_string(pki.path("rsa.key")).unwrap().contains("BEGIN RSA PRIVATE KEY")
    );

    for (key, format) in [("rsa.key", KeyFormat::Pkcs1), ("rsa8.key", KeyFormat::Pkcs8)] {
        set_mode(&pki.path(key), 0o600);
        let config =
            Config::builder(ENDPOINT, "id", pki.path("rsa.crt"), pki.path(key)).build().unwrap();
        let credentials = Credentials::load(&config).unwrap();
        assert_eq!(credentials.key_kind, KeyKind::Rsa { bits: 2048 }, "{key}");
        assert_eq!(credentials.key_format, format, "{key}");
        tls::client_config(&config, &credentials).unwrap();
    }
}

#[test]
fn key_from_another_pair_names_both_files() {
    let pki = Pki::new();
    let one = pki.device("one");
    let other = pki.device("other");
    let config = Config::builder(ENDPOINT, "id", &one.cert, &other.key).build().unwrap();
    let err = Credentials::load(&config).unwrap_err();
    match &err {
        ConfigError::KeyDoesNotMatchCertificate { certificate, private_key } => {
            assert_eq!(certificate, &one.cert);
            assert_eq!(private_key, &other.key);
        }
        other => panic!("expected KeyDoesNotMatchCertificate, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&one.cert.display().to_string()), "{message}");
    assert!(message.contains(&other.key.display().to_string()), "{message}");
}

#[test]
fn expired_certificate_is_an_error_naming_the_file() {
    let pki = Pki::new();
    let now = OffsetDateTime::now_utc();
    let device = pki.device_with(
        "expired",
        &PKCS_ECDSA_P256_SHA256,
        now - Duration::days(400),
        now - Duration::days(1),
    );
    let err = Credentials::load(&config(&device)).unwrap_err();
    assert!(
        matches!(&err, ConfigError::CertificateExpired { path, .. } if path == &device.cert),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&device.cert.display().to_string()) && message.contains("expired"));
}

#[test]
fn certificate_not_yet_valid_points_at_the_clock() {
    let pki = Pki::new();
    let now = OffsetDateTime::now_utc();
    let device = pki.device_with(
        "future",
        &PKCS_ECDSA_P256_SHA256,
        now + Duration::days(2),
        now + Duration::days(30),
    );
    let err = Credentials::load(&config(&device)).unwrap_err();
    assert!(matches!(err, ConfigError::CertificateNotYetValid { .. }), "{err:?}");
    assert!(err.to_string().contains("clock"), "{err}");
}

#[test]
fn certificate_expiring_in_ten_days_warns() {
    let pki = Pki::new();
    let not_after = rcgen::date_time_ymd(2031, 1, 31);
    let device = pki.device_with(
        "soon",
        &PKCS_ECDSA_P256_SHA256,
        rcgen::date_time_ymd(2030, 1, 1),
        not_after,
    );
    let credentials =
        Credentials::load_at(&config(&device), not_after - Duration::days(10)).unwrap();
    assert_eq!(
        credentials.warnings,
        vec![CredentialWarning::ExpiresSoon { path: device.cert.clone(), days_left: 10 }]
    );
    assert_eq!(credentials.not_after, not_after);
    assert!(credentials.warnings[0].to_string().contains("10 days"));

    // 31 days before: no warning.
    let early = Credentials::load_at(&config(&device), not_after - Duration::days(31)).unwrap();
    assert!(early.warnings.is_empty(), "{:?}", early.warnings);
}

#[cfg(unix)]
#[test]
fn key_readable_by_others_warns() {
    let pki = Pki::new();
    let device = pki.device("open");
    set_mode(&device.key, 0o644);
    let credentials = Credentials::load(&config(&device)).unwrap();
    assert_eq!(
        credentials.warnings,
        vec![CredentialWarning::KeyReadableByOthers { path: device.key.clone(), mode: 0o644 }]
    );
    let message = credentials.warnings[0].to_string();
    assert!(message.contains(&format!("chmod 600 {}", device.key.display())), "{message}");
}

#[test]
fn missing_files_are_io_errors_with_the_path() {
    let pki = Pki::new();
    let device = pki.device("present");
    let missing = pki.path("missing.pem");

    let config = Config::builder(ENDPOINT, "id", &missing, &device.key).build().unwrap();
    let err = Credentials::load(&config).unwrap_err();
    assert!(matches!(&err, ConfigError::Io { path, .. } if path == &missing), "{err:?}");
    assert!(err.to_string().contains(&missing.display().to_string()), "{err}");

    let config = Config::builder(ENDPOINT, "id", &device.cert, &missing).build().unwrap();
    let err = Credentials::load(&config).unwrap_err();
    assert!(matches!(&err, ConfigError::Io { path, .. } if path == &missing), "{err:?}");

    let config = Config::builder(ENDPOINT, "id", &device.cert, &device.key)
        .root_ca(&missing)
        .build()
        .unwrap();
    let err = Credentials::load(&config).unwrap_err();
    assert!(matches!(&err, ConfigError::Io { path, .. } if path == &missing), "{err:?}");
}

#[test]
fn pem_without_a_certificate_is_named() {
    let pki = Pki::new();
    let device = pki.device("swapped");
    // Certificate and key swapped, as happens when copying files by hand.
    let config = Config::builder(ENDPOINT, "id", &device.key, &device.cert).build().unwrap();
    let err = Credentials::load(&config).unwrap_err();
    assert!(
        matches!(&err, ConfigError::NoCertificateInFile { path } if path == &device.key),
        "{err:?}"
    );

    let config = Config::builder(ENDPOINT, "id", &device.cert, &device.cert).build().unwrap();
    let err = Credentials::load(&config).unwrap_err();
    assert!(
        matches!(&err, ConfigError::NoPrivateKeyInFile { path } if path == &device.cert),
        "{err:?}"
    );

    let empty_root = pki.write("empty-root.pem", "no certificates here\n");
    let config = Config::builder(ENDPOINT, "id", &device.cert, &device.key)
        .root_ca(&empty_root)
        .build()
        .unwrap();
    let err = Credentials::load(&config).unwrap_err();
    assert!(matches!(&err, ConfigError::NoRootInFile { path } if path == &empty_root), "{err:?}");
}

#[test]
fn unusable_keys_are_explained_without_quoting_them() {
    let pki = Pki::new();
    let now = OffsetDateTime::now_utc();
    let ed = pki.device_with("ed", &PKCS_ED25519, now - Duration::days(1), now + Duration::days(9));
    let err = Credentials::load(&config(&ed)).unwrap_err();
    assert!(matches!(&err, ConfigError::UnsupportedKey { path, .. } if path == &ed.key), "{err:?}");
    assert!(err.to_string().contains("Ed25519"), "{err}");

    let device = pki.device("damaged");
    let pem = std::fs::read_to_string(&device.key).unwrap();
    let body = pem.lines().nth(1).unwrap().to_owned();
    let damaged = pem.replacen(&body, &format!("{}!!{}", &body[..10], &body[10..]), 1);
    let damaged_path = pki.write("damaged.key", &damaged);
    let config = Config::builder(ENDPOINT, "id", &device.cert, &damaged_path).build().unwrap();
    let err = Credentials::load(&config).unwrap_err();
    assert!(matches!(err, ConfigError::UnsupportedKey { .. }), "{err:?}");
    assert!(!err.to_string().contains(&body[..10]), "the key must not appear: {err}");

    let encrypted = pki.write(
        "encrypted.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let config = Config::builder(ENDPOINT, "id", &device.cert, &encrypted).build().unwrap();
    let err = Credentials::load(&config).unwrap_err();
    assert!(err.to_string().contains("passphrase"), "{err}");
}

#[test]
fn root_ca_file_is_used_when_given() {
    let pki = Pki::new();
    let device = pki.device("device-1");
    let (server_cert, _) = pki.server();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verify = |roots: rustls::RootCertStore| {
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap()
        .verify_server_cert(
            &server_cert,
            &[],
            &ServerName::try_from(ENDPOINT).unwrap(),
            &[],
            UnixTime::now(),
        )
    };

    let with_root = Config::builder(ENDPOINT, "id", &device.cert, &device.key)
        .root_ca(pki.root_ca())
        .build()
        .unwrap();
    let credentials = Credentials::load(&with_root).unwrap();
    assert_eq!(credentials.roots.len(), 1);
    verify(credentials.roots).expect("the test CA from root_ca is trusted");

    // Without `root_ca`: the Mozilla roots (feature `webpki-roots`), which do not trust it.
    #[cfg(feature = "webpki-roots")]
    {
        let credentials = Credentials::load(&config(&device)).unwrap();
        assert_eq!(credentials.roots.len(), webpki_roots::TLS_SERVER_ROOTS.len());
        assert!(verify(credentials.roots).is_err(), "the Mozilla roots do not trust the test CA");
    }
}

#[test]
fn client_config_offers_alpn_exactly_when_expected() {
    let pki = Pki::new();
    let device = pki.device("device-1");
    let alpn = |config: Config| {
        let credentials = Credentials::load(&config).unwrap();
        tls::client_config(&config, &credentials).unwrap().alpn_protocols.clone()
    };
    let base = || Config::builder(ENDPOINT, "id", &device.cert, &device.key);

    assert_eq!(alpn(base().build().unwrap()), vec![b"x-amzn-mqtt-ca".to_vec()]);
    assert_eq!(alpn(base().port(8883).build().unwrap()), Vec::<Vec<u8>>::new());
    assert_eq!(alpn(base().port(8883).alpn("mqtt").build().unwrap()), vec![b"mqtt".to_vec()]);
    assert_eq!(
        alpn(base().port(9443).alpn("x-amzn-mqtt-ca").build().unwrap()),
        vec![b"x-amzn-mqtt-ca".to_vec()]
    );

    let config = base().build().unwrap();
    assert_eq!(tls::server_name(&config).unwrap(), ServerName::try_from(ENDPOINT).unwrap());
}

#[test]
fn handshake_sends_sni_alpn_and_the_client_certificate() {
    let pki = Pki::new();
    let device = pki.device("device-1");
    let config = Config::builder(ENDPOINT, "device-1", &device.cert, &device.key)
        .root_ca(pki.root_ca())
        .build()
        .unwrap();
    let credentials = Credentials::load(&config).unwrap();
    let client_config = tls::client_config(&config, &credentials).unwrap();

    // A server that requires a client certificate from the test CA and speaks x-amzn-mqtt-ca.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client_roots = rustls::RootCertStore::empty();
    client_roots.add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(client_roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let (server_cert, server_key) = pki.server();
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server_cert], server_key)
        .unwrap();
    server_config.alpn_protocols = vec![b"x-amzn-mqtt-ca".to_vec()];

    let mut client =
        rustls::ClientConnection::new(client_config, tls::server_name(&config).unwrap()).unwrap();
    let mut server = rustls::ServerConnection::new(Arc::new(server_config)).unwrap();
    for _ in 0..10 {
        if !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
        let mut buf = Vec::new();
        client.write_tls(&mut buf).unwrap();
        server.read_tls(&mut buf.as_slice()).unwrap();
        server.process_new_packets().unwrap();
        let mut buf = Vec::new();
        server.write_tls(&mut buf).unwrap();
        client.read_tls(&mut buf.as_slice()).unwrap();
        client.process_new_packets().unwrap();
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    assert_eq!(server.server_name(), Some(ENDPOINT), "SNI");
    assert_eq!(server.alpn_protocol(), Some(&b"x-amzn-mqtt-ca"[..]));
    assert_eq!(client.alpn_protocol(), Some(&b"x-amzn-mqtt-ca"[..]));
    assert_eq!(server.peer_certificates().map(|c| c.len()), Some(1), "client certificate");
    assert_eq!(client.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
}
