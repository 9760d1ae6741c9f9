//! The emulator's test PKI: files, modes, reuse, certificate contents, device identities.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::path::Path;

use iot443_emulator::pki::{DeviceKeyKind, Pki, PkiError, PkiOptions};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[cfg(unix)]
fn mode(dir: &Path, name: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777
}

fn first_der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::pem_slice_iter(pem.as_bytes()).next().unwrap().unwrap()
}

fn sans(pem: &str) -> BTreeSet<String> {
    let der = first_der(pem);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().expect("a SAN extension");
    san.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => (*dns).to_owned(),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(*bytes).unwrap()).to_string(),
                _ => IpAddr::from(<[u8; 16]>::try_from(*bytes).unwrap()).to_string(),
            },
            other => panic!("unexpected SAN {other:?}"),
        })
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|&s| s.to_owned()).collect()
}

#[test]
fn first_start_creates_every_file_with_the_right_modes() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    assert_eq!(pki.dir, dir.path());
    assert_eq!(pki.ca_cert_pem, read(dir.path(), "ca.pem"));
    for file in
        ["ca.pem", "ca.key", "server.crt", "server.key", "device.crt", "device.key", "iot443.toml"]
    {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    #[cfg(unix)]
    {
        for key in ["ca.key", "server.key", "device.key"] {
            assert_eq!(mode(dir.path(), key), 0o600, "{key}");
        }
        for public in ["ca.pem", "server.crt", "device.crt", "iot443.toml"] {
            assert_eq!(mode(dir.path(), public), 0o644, "{public}");
        }
    }
    // No temporary file is left behind.
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[cfg(unix)]
#[test]
fn a_created_folder_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("a/b/pki");
    Pki::load_or_create(&dir, &PkiOptions::default()).unwrap();
    assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
}

#[test]
fn second_start_reuses_the_files() {
    let dir = tempfile::tempdir().unwrap();
    Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    let before: Vec<String> =
        ["ca.pem", "ca.key", "server.crt", "server.key", "device.crt", "device.key", "iot443.toml"]
            .iter()
            .map(|f| read(dir.path(), f))
            .collect();

    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    let after: Vec<String> =
        ["ca.pem", "ca.key", "server.crt", "server.key", "device.crt", "device.key", "iot443.toml"]
            .iter()
            .map(|f| read(dir.path(), f))
            .collect();
    assert_eq!(before, after);
    assert_eq!(pki.ca_cert_pem, before[0]);
}

#[test]
fn server_certificate_has_the_sans_and_is_reissued_when_hostnames_change() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    assert_eq!(sans(&read(dir.path(), "server.crt")), names(&["localhost", "127.0.0.1", "::1"]));
    assert_eq!(pki.server_names(), ["localhost", "127.0.0.1", "::1"]);
    let ca = read(dir.path(), "ca.pem");

    let options = PkiOptions {
        hostnames: vec!["iot.example.test".into(), "192.0.2.10".into()],
        ..PkiOptions::default()
    };
    let pki = Pki::load_or_create(dir.path(), &options).unwrap();
    assert_eq!(
        sans(&read(dir.path(), "server.crt")),
        names(&["localhost", "127.0.0.1", "::1", "iot.example.test", "192.0.2.10"])
    );
    assert_eq!(pki.server_names().len(), 5);
    assert_eq!(read(dir.path(), "ca.pem"), ca, "the CA is kept");

    // The same names again: nothing is re-issued.
    let server = read(dir.path(), "server.crt");
    Pki::load_or_create(dir.path(), &options).unwrap();
    assert_eq!(read(dir.path(), "server.crt"), server);
}

#[test]
fn certificates_carry_the_expected_subjects_and_usages() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();

    let device_pem = read(dir.path(), "device.crt");
    let device_der = first_der(&device_pem);
    let (_, device) = X509Certificate::from_der(&device_der).unwrap();
    let cn = device.subject().iter_common_name().next().unwrap().as_str().unwrap();
    assert_eq!(cn, "device");
    let eku = device.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);

    let (_, ca) = X509Certificate::from_der(pki.ca_cert_der()).unwrap();
    assert!(ca.is_ca());
    device.verify_signature(Some(ca.public_key())).unwrap();

    let server_der = first_der(&read(dir.path(), "server.crt"));
    let (_, server) = X509Certificate::from_der(&server_der).unwrap();
    assert!(server.extended_key_usage().unwrap().unwrap().value.server_auth);
    server.verify_signature(Some(ca.public_key())).unwrap();
    assert_eq!(pki.server_cert_chain(), vec![server_der.clone()]);
}

#[test]
fn iot443_toml_points_at_the_emulator_and_follows_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let options = PkiOptions { endpoint_port: Some(8443), ..PkiOptions::default() };
    Pki::load_or_create(dir.path(), &options).unwrap();
    let config = read(dir.path(), "iot443.toml");
    for line in [
        "endpoint    = \"localhost\"",
        "port        = 8443",
        "client_id   = \"device\"",
        "thing_name  = \"device\"",
        "root_ca     = \"ca.pem\"",
        "certificate = \"device.crt\"",
        "private_key = \"device.key\"",
    ] {
        assert!(config.lines().any(|l| l == line), "{line:?} not in\n{config}");
    }

    // A user comment survives a port change; no port keeps the file as it is.
    fs::write(dir.path().join("iot443.toml"), format!("# mine\n{config}")).unwrap();
    let options = PkiOptions { endpoint_port: Some(44300), ..PkiOptions::default() };
    Pki::load_or_create(dir.path(), &options).unwrap();
    let config = read(dir.path(), "iot443.toml");
    assert!(config.starts_with("# mine\n"));
    assert!(config.lines().any(|l| l == "port        = 44300"), "{config}");
    assert!(!config.contains("8443"));
    Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    assert_eq!(read(dir.path(), "iot443.toml"), config);
}

#[test]
fn new_config_defaults_to_port_443() {
    let dir = tempfile::tempdir().unwrap();
    Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    assert!(read(dir.path(), "iot443.toml").lines().any(|l| l == "port        = 443"));
}

#[test]
fn issue_device_adds_files_signed_by_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    let identity = pki.issue_device("sensor-7_b", DeviceKeyKind::EcP256).unwrap();
    assert_eq!(identity.name, "sensor-7_b");
    assert_eq!(identity.kind, DeviceKeyKind::EcP256);
    assert_eq!(identity.certificate_path, dir.path().join("sensor-7_b.crt"));
    assert_eq!(identity.private_key_path, dir.path().join("sensor-7_b.key"));
    assert_eq!(identity.certificate_pem, read(dir.path(), "sensor-7_b.crt"));
    assert_eq!(identity.certificate_sha256.len(), 64);
    #[cfg(unix)]
    assert_eq!(mode(dir.path(), "sensor-7_b.key"), 0o600);

    // EC keys are PKCS#8.
    let key = read(dir.path(), "sensor-7_b.key");
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{key}");
    assert!(matches!(pki.device_key("sensor-7_b").unwrap(), PrivateKeyDer::Pkcs8(_)));

    let chain = pki.device_cert_chain("sensor-7_b").unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(iot443_emulator::pki::certificate_sha256(&chain[0]), identity.certificate_sha256);
    assert_eq!(pki.device("sensor-7_b").unwrap(), identity);
    let (_, ca) = X509Certificate::from_der(pki.ca_cert_der()).unwrap();
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    leaf.verify_signature(Some(ca.public_key())).unwrap();
}

#[test]
fn rsa_default_device_is_pkcs1_and_an_ec_request_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = PkiOptions { device_key: DeviceKeyKind::Rsa2048, ..PkiOptions::default() };
    let pki = Pki::load_or_create(dir.path(), &options).unwrap();
    let key = read(dir.path(), "device.key");
    assert!(key.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"), "{key}");
    assert!(matches!(pki.device_key("device").unwrap(), PrivateKeyDer::Pkcs1(_)));
    let identity = pki.device("device").unwrap();
    assert_eq!(identity.kind, DeviceKeyKind::Rsa2048);
    let der = &pki.device_cert_chain("device").unwrap()[0];
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    assert!(matches!(
        cert.public_key().parsed().unwrap(),
        x509_parser::public_key::PublicKey::RSA(rsa) if rsa.key_size() == 2048
    ));

    // Same options: the RSA identity is reused (no second, slow RSA generation).
    Pki::load_or_create(dir.path(), &options).unwrap();
    assert_eq!(read(dir.path(), "device.key"), key);

    // Asking for EC now re-issues the default device with an EC key.
    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    assert_eq!(pki.device("device").unwrap().kind, DeviceKeyKind::EcP256);
    assert!(read(dir.path(), "device.key").starts_with("-----BEGIN PRIVATE KEY-----\n"));
}

#[test]
fn device_names_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    for bad in ["", "ca", "server", "../x", "a b", "a.b", &"x".repeat(129)] {
        let err = pki.issue_device(bad, DeviceKeyKind::EcP256).unwrap_err();
        assert!(matches!(err, PkiError::InvalidDeviceName { .. }), "{bad:?}: {err}");
    }
    assert!(pki.issue_device(&"x".repeat(128), DeviceKeyKind::EcP256).is_ok());
}

#[test]
fn expired_device_certificate_can_be_issued() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    let now = OffsetDateTime::now_utc();
    pki.issue_device_with_validity(
        "old",
        DeviceKeyKind::EcP256,
        now - time::Duration::days(30),
        now - time::Duration::days(1),
    )
    .unwrap();
    let der = &pki.device_cert_chain("old").unwrap()[0];
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    assert!(!cert.validity().is_valid());
}

#[test]
fn another_folder_gives_a_foreign_ca() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let pki_a = Pki::load_or_create(a.path(), &PkiOptions::default()).unwrap();
    let pki_b = Pki::load_or_create(b.path(), &PkiOptions::default()).unwrap();
    assert_ne!(pki_a.ca_cert_pem, pki_b.ca_cert_pem);
    let (_, ca_a) = X509Certificate::from_der(pki_a.ca_cert_der()).unwrap();
    let foreign = &pki_b.device_cert_chain("device").unwrap()[0];
    let (_, foreign) = X509Certificate::from_der(foreign).unwrap();
    assert!(foreign.verify_signature(Some(ca_a.public_key())).is_err());
}

#[test]
fn half_a_ca_is_an_error_that_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    fs::remove_file(dir.path().join("ca.key")).unwrap();
    let err = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap_err();
    assert!(matches!(err, PkiError::Incomplete { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("ca.pem") && text.contains("ca.key"), "{text}");
}

#[test]
fn a_mismatched_ca_key_is_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    Pki::load_or_create(a.path(), &PkiOptions::default()).unwrap();
    Pki::load_or_create(b.path(), &PkiOptions::default()).unwrap();
    fs::copy(b.path().join("ca.key"), a.path().join("ca.key")).unwrap();
    let err = Pki::load_or_create(a.path(), &PkiOptions::default()).unwrap_err();
    assert!(matches!(err, PkiError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn a_deleted_server_or_device_file_is_issued_again_under_the_same_ca() {
    let dir = tempfile::tempdir().unwrap();
    Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    let ca = read(dir.path(), "ca.pem");
    let device = read(dir.path(), "device.crt");
    fs::remove_file(dir.path().join("server.key")).unwrap();
    fs::remove_file(dir.path().join("device.key")).unwrap();
    Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    assert!(dir.path().join("server.key").is_file());
    assert!(dir.path().join("device.key").is_file());
    assert_ne!(read(dir.path(), "device.crt"), device);
    assert_eq!(read(dir.path(), "ca.pem"), ca);
}

#[test]
fn invalid_extra_hostname_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = PkiOptions { hostnames: vec!["bad name".into()], ..PkiOptions::default() };
    let err = Pki::load_or_create(dir.path(), &options).unwrap_err();
    assert!(matches!(err, PkiError::InvalidHostname { .. }), "{err}");
}

#[test]
fn aws_credentials_are_created_private_and_reused_and_the_region_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    let credentials = pki.aws_credentials().clone();
    assert_eq!(credentials.access_key_id.len(), 20);
    assert!(credentials.access_key_id.starts_with("AKIA"));
    assert_eq!(credentials.secret_access_key.len(), 40);
    assert!(!format!("{credentials:?}").contains(&credentials.secret_access_key));
    let text = read(dir.path(), "aws-credentials");
    assert!(text.contains("[default]\n"), "{text}");
    assert!(text.contains(&format!("aws_access_key_id = {}\n", credentials.access_key_id)));
    assert!(text.contains(&format!("aws_secret_access_key = {}\n", credentials.secret_access_key)));
    #[cfg(unix)]
    assert_eq!(mode(dir.path(), "aws-credentials"), 0o600);
    assert_eq!(pki.region(), "us-east-1");
    assert!(read(dir.path(), "iot443.toml").contains("region      = \"us-east-1\"\n"));
    assert!(read(dir.path(), "iot443.toml").contains("aws_credentials = \"aws-credentials\"\n"));

    // Later starts load the same key; another region replaces the line and keeps the rest.
    let config = read(dir.path(), "iot443.toml") + "# mine\n";
    fs::write(dir.path().join("iot443.toml"), &config).unwrap();
    let options = PkiOptions { region: Some("eu-central-1".into()), ..PkiOptions::default() };
    let again = Pki::load_or_create(dir.path(), &options).unwrap();
    assert_eq!(again.aws_credentials(), &credentials);
    assert_eq!(again.region(), "eu-central-1");
    let config = read(dir.path(), "iot443.toml");
    assert!(config.contains("region      = \"eu-central-1\"\n") && config.contains("# mine\n"));
    assert_eq!(config.matches("region").count(), 1, "{config}");
}

#[test]
fn a_broken_credentials_file_is_named_without_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("aws-credentials"), "[default]\naws_secret_access_key = TOPSECRET\n")
        .unwrap();
    let error = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, PkiError::Invalid { .. }), "{text}");
    assert!(text.contains("aws-credentials") && !text.contains("TOPSECRET"), "{text}");
}
