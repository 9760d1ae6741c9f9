//! The emulator's test PKI: a certificate authority, a server certificate and device identities,
//! generated with rcgen at first start in a folder and reused afterwards. No private key is ever
//! committed: every key is born on the machine that uses it.
//!
//! The folder after [`Pki::load_or_create`]:
//!
//! | file | content | mode |
//! |---|---|---|
//! | `ca.pem`, `ca.key` | the CA (EC P-256, self-signed, path length 0) | 0644, 0600 |
//! | `server.crt`, `server.key` | the server certificate: `localhost`, `127.0.0.1`, `::1` and the extra host names | 0644, 0600 |
//! | `device.crt`, `device.key` | the default device (CN `device`, client authentication) | 0644, 0600 |
//! | `NAME.crt`, `NAME.key` | devices added by [`Pki::issue_device`] | 0644, 0600 |
//! | `iot443.toml` | a client configuration for the default device, pointing at the emulator, with the emulator's `region` and `aws_credentials = "aws-credentials"` | 0644 |
//! | `aws-credentials` | an AWS access key for SigV4 (shared credentials file, profile `default`), random at first start | 0600 |
//!
//! On later starts the CA is reused as it is. The server certificate is issued again when the
//! host names changed, when it expired, or when it is missing or unusable; the default device
//! likewise when it is missing, expired, not issued by the CA, or of another key kind than asked.
//! EC keys are written as PKCS#8 (`PRIVATE KEY`), RSA keys as PKCS#1 (`RSA PRIVATE KEY`), the
//! form in which the AWS console hands them out.
//!
//! Key generation is CPU-bound and RSA-2048 takes long in debug builds: async code calls these
//! functions from `tokio::task::spawn_blocking`.

mod credentials;
mod error;
mod files;
mod issue;

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rcgen::{Issuer, KeyPair, PublicKeyData as _};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::sigv4::AwsCredentials;

pub use credentials::{CREDENTIALS_FILE, DEFAULT_REGION};
pub use error::PkiError;
use files::Access;

/// The name of the device created at first start (`device.crt`, `device.key`).
pub const DEFAULT_DEVICE: &str = "device";
/// The client configuration written at first start.
pub const CONFIG_FILE: &str = "iot443.toml";
/// The CA certificate (PEM), the trust anchor a client configures as `root_ca`.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA's private key (PKCS#8 PEM).
pub const CA_KEY_FILE: &str = "ca.key";
/// The server certificate (PEM).
pub const SERVER_CERT_FILE: &str = "server.crt";
/// The server's private key (PKCS#8 PEM).
pub const SERVER_KEY_FILE: &str = "server.key";

/// The port written to a new `iot443.toml` when [`PkiOptions::endpoint_port`] is not given.
const DEFAULT_CONFIG_PORT: u16 = 443;
/// The server names every server certificate carries.
const BUILTIN_SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// Longest device name accepted: a device name is also the suggested client id, so IoT Core's
/// client id limit applies (thing names have the same 128-byte limit).
const MAX_DEVICE_NAME: usize = iot443_proto::codec::AWS_MAX_CLIENT_ID_BYTES;

/// The key type of a device identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DeviceKeyKind {
    /// EC NIST P-256, written as PKCS#8 PEM. Fast to generate; the default.
    #[default]
    EcP256,
    /// RSA 2048 bits, written as PKCS#1 PEM (`RSA PRIVATE KEY`), like the keys AWS
    /// `CreateKeysAndCertificate` and the console hand out.
    Rsa2048,
}

/// What [`Pki::load_or_create`] needs to know beyond the folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkiOptions {
    /// Extra server names (DNS names or IP addresses) for the server certificate, besides
    /// `localhost`, `127.0.0.1` and `::1`.
    pub hostnames: Vec<String>,
    /// The key type of the default device, used when it is (re)issued.
    pub device_key: DeviceKeyKind,
    /// The port written into `iot443.toml` (443 for a new file when `None`; an existing file
    /// keeps its port when `None`).
    pub endpoint_port: Option<u16>,
    /// The region written into `iot443.toml` (kept in step with the file on every start);
    /// [`DEFAULT_REGION`] when `None`.
    pub region: Option<String>,
}

/// A device identity issued by the CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// The device name: certificate common name, file stem, suggested client id.
    pub name: String,
    /// The key type.
    pub kind: DeviceKeyKind,
    /// `NAME.crt`.
    pub certificate_path: PathBuf,
    /// `NAME.key` (mode 0600).
    pub private_key_path: PathBuf,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// Lowercase hex SHA-256 of the certificate's DER: what the TLS listener reports as
    /// `PeerInfo::certificate_sha256`, and IoT Core's certificate id.
    pub certificate_sha256: String,
}

/// The emulator's test PKI, loaded from or created in [`Pki::dir`].
pub struct Pki {
    /// The folder holding the files.
    pub dir: PathBuf,
    /// The CA certificate, PEM (the content of `ca.pem`).
    pub ca_cert_pem: String,
    ca: Ca,
    roots: RootCertStore,
    server_names: Vec<String>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    aws_credentials: AwsCredentials,
    region: String,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .field("server_names", &self.server_names)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// Loads the PKI from `dir`, creating whatever is missing (see the module documentation).
    ///
    /// Blocking: it reads and writes files and may generate keys.
    pub fn load_or_create(dir: &Path, options: &PkiOptions) -> Result<Pki, PkiError> {
        let server_names = server_names(&options.hostnames)?;
        files::ensure_dir(dir)?;
        let (ca, ca_created) = Ca::load_or_create(dir)?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert_der.clone()).map_err(|e| PkiError::Invalid {
            path: dir.join(CA_CERT_FILE),
            what: "a CA certificate usable as a trust anchor",
            detail: e.to_string(),
        })?;

        let (server_chain, server_key) = load_or_issue_server(dir, &ca, ca_created, &server_names)?;
        let aws_credentials = credentials::load_or_create(dir)?;
        let region = options.region.clone().unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let pki = Pki {
            dir: dir.to_owned(),
            ca_cert_pem: ca.cert_pem.clone(),
            ca,
            roots,
            server_names,
            server_chain,
            server_key,
            aws_credentials,
            region,
        };

        match pki.default_device_problem(ca_created, options.device_key) {
            None => {}
            Some(reason) => {
                tracing::info!(dir = %dir.display(), "issuing the default device certificate: {reason}");
                let (not_before, not_after) = issue::default_validity();
                pki.issue_device_with_validity(
                    DEFAULT_DEVICE,
                    options.device_key,
                    not_before,
                    not_after,
                )?;
            }
        }
        pki.write_config(options.endpoint_port)?;
        Ok(pki)
    }

    /// Issues (or issues again, replacing the files) the device `name`: `NAME.crt` and
    /// `NAME.key` in [`Pki::dir`], valid from an hour ago to the end of 2049.
    ///
    /// `name` must be 1 to 128 characters among `A-Z a-z 0-9 _ -`, and not `ca` or `server`.
    /// Blocking (key generation).
    pub fn issue_device(
        &self,
        name: &str,
        kind: DeviceKeyKind,
    ) -> Result<DeviceIdentity, PkiError> {
        let (not_before, not_after) = issue::default_validity();
        self.issue_device_with_validity(name, kind, not_before, not_after)
    }

    /// Like [`Pki::issue_device`] with an explicit validity period, for tests (an expired
    /// certificate, one not valid yet).
    pub fn issue_device_with_validity(
        &self,
        name: &str,
        kind: DeviceKeyKind,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<DeviceIdentity, PkiError> {
        validate_device_name(name)?;
        let key = issue::generate_device_key(kind, &format!("the key of device {name:?}"))?;
        let params = issue::device_params(name, not_before, not_after)?;
        let cert =
            self.ca.sign(&params, &key.public, &format!("the certificate of device {name:?}"))?;
        let (certificate_path, private_key_path) = self.device_paths(name);
        files::write_atomic(&private_key_path, key.pem.as_bytes(), Access::Private)?;
        let certificate_pem = cert.pem();
        files::write_atomic(&certificate_path, certificate_pem.as_bytes(), Access::Public)?;
        Ok(DeviceIdentity {
            name: name.to_owned(),
            kind,
            certificate_path,
            private_key_path,
            certificate_sha256: certificate_sha256(cert.der()),
            certificate_pem,
        })
    }

    /// The existing device `name`, read from its files.
    pub fn device(&self, name: &str) -> Result<DeviceIdentity, PkiError> {
        validate_device_name(name)?;
        let (certificate_path, private_key_path) = self.device_paths(name);
        let certificate_pem = files::read_text(&certificate_path)?;
        let der = first_certificate(&certificate_path, &certificate_pem)?;
        let facts = LeafFacts::parse(&der).map_err(|detail| PkiError::Invalid {
            path: certificate_path.clone(),
            what: "a device certificate",
            detail,
        })?;
        Ok(DeviceIdentity {
            name: name.to_owned(),
            kind: facts.kind,
            certificate_sha256: certificate_sha256(&der),
            certificate_path,
            private_key_path,
            certificate_pem,
        })
    }

    /// The server's certificate chain (the leaf; the CA is the client's trust anchor).
    pub fn server_cert_chain(&self) -> Vec<CertificateDer<'static>> {
        self.server_chain.clone()
    }

    /// The server's private key.
    pub fn server_key(&self) -> PrivateKeyDer<'static> {
        self.server_key.clone_key()
    }

    /// The server names in the server certificate: `localhost`, `127.0.0.1`, `::1`, then the
    /// extra host names, IP addresses in canonical form and DNS names in lowercase.
    pub fn server_names(&self) -> &[String] {
        &self.server_names
    }

    /// A root store holding only this PKI's CA: what clients trust, and what the server
    /// verifies device certificates against.
    pub fn ca_roots(&self) -> RootCertStore {
        self.roots.clone()
    }

    /// The CA certificate, DER.
    pub fn ca_cert_der(&self) -> &CertificateDer<'static> {
        &self.ca.cert_der
    }

    /// The certificate chain of device `name` as a client presents it (the leaf).
    pub fn device_cert_chain(&self, name: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
        validate_device_name(name)?;
        let (path, _) = self.device_paths(name);
        let pem = files::read_text(&path)?;
        Ok(vec![first_certificate(&path, &pem)?])
    }

    /// The private key of device `name`.
    pub fn device_key(&self, name: &str) -> Result<PrivateKeyDer<'static>, PkiError> {
        validate_device_name(name)?;
        let (_, path) = self.device_paths(name);
        let pem = files::read_text(&path)?;
        PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| PkiError::Invalid {
            path,
            what: "a private key (PEM: PKCS#8, PKCS#1 or SEC1)",
            detail: e.to_string(),
        })
    }

    /// The paths of device `name`'s certificate and key (whether or not they exist).
    pub fn device_paths(&self, name: &str) -> (PathBuf, PathBuf) {
        (self.dir.join(format!("{name}.crt")), self.dir.join(format!("{name}.key")))
    }

    /// The AWS access key of `aws-credentials`, which the WebSocket listener accepts for SigV4.
    pub fn aws_credentials(&self) -> &AwsCredentials {
        &self.aws_credentials
    }

    /// The emulator's region, as written into `iot443.toml`.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The path of `aws-credentials`.
    pub fn credentials_path(&self) -> PathBuf {
        self.dir.join(CREDENTIALS_FILE)
    }

    /// The path of `iot443.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// Why the default device must be issued (again), if it must.
    fn default_device_problem(&self, ca_created: bool, kind: DeviceKeyKind) -> Option<String> {
        if ca_created {
            return Some("the CA is new".to_owned());
        }
        let (cert_path, key_path) = self.device_paths(DEFAULT_DEVICE);
        if !key_path.is_file() {
            return Some(format!("{} is missing", key_path.display()));
        }
        let pem = match files::read_text(&cert_path) {
            Ok(pem) => pem,
            Err(e) => return Some(e.to_string()),
        };
        let der = match first_certificate(&cert_path, &pem) {
            Ok(der) => der,
            Err(e) => return Some(e.to_string()),
        };
        match LeafFacts::parse_issued(&der, &self.ca.cert_der) {
            Err(reason) => Some(format!("{}: {reason}", cert_path.display())),
            Ok(facts) if facts.kind != kind => {
                Some(format!("its key is {:?} and {kind:?} was asked for", facts.kind))
            }
            Ok(_) => None,
        }
    }

    fn write_config(&self, port: Option<u16>) -> Result<(), PkiError> {
        let path = self.config_path();
        if !path.exists() {
            let config = files::initial_config(port.unwrap_or(DEFAULT_CONFIG_PORT));
            let config = files::config_with_region(&config, &self.region);
            let config = files::config_with_credentials(&config, CREDENTIALS_FILE);
            return files::write_atomic(&path, config.as_bytes(), Access::Public);
        }
        let current = files::read_text(&path)?;
        let updated = match port {
            Some(port) => files::config_with_port(&current, port),
            None => current.clone(),
        };
        let updated = files::config_with_region(&updated, &self.region);
        let updated = files::config_with_credentials(&updated, CREDENTIALS_FILE);
        if updated != current {
            files::write_atomic(&path, updated.as_bytes(), Access::Public)?;
        }
        Ok(())
    }
}

/// Lowercase hex SHA-256 of `der` (a certificate's fingerprint, IoT Core's certificate id).
pub fn certificate_sha256(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The CA's key and certificate.
struct Ca {
    key: KeyPair,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

impl Ca {
    /// Loads `ca.pem` + `ca.key`, or creates both when neither exists. Returns whether the CA
    /// was created.
    fn load_or_create(dir: &Path) -> Result<(Ca, bool), PkiError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => Ok((Ca::load(&cert_path, &key_path)?, false)),
            (true, false) => Err(PkiError::Incomplete { present: cert_path, missing: key_path }),
            (false, true) => Err(PkiError::Incomplete { present: key_path, missing: cert_path }),
            (false, false) => {
                tracing::info!(dir = %dir.display(), "creating the emulator's test CA");
                let key = issue::generate_ec("the CA key")?;
                let cert = issue::ca_params()?.self_signed(&key).map_err(|source| {
                    PkiError::Issue { what: "the CA certificate".to_owned(), source }
                })?;
                files::write_atomic(&key_path, key.serialize_pem().as_bytes(), Access::Private)?;
                let cert_pem = cert.pem();
                files::write_atomic(&cert_path, cert_pem.as_bytes(), Access::Public)?;
                Ok((Ca { key, cert_der: cert.der().clone(), cert_pem }, true))
            }
        }
    }

    fn load(cert_path: &Path, key_path: &Path) -> Result<Ca, PkiError> {
        let cert_pem = files::read_text(cert_path)?;
        let cert_der = first_certificate(cert_path, &cert_pem)?;
        let key_pem = files::read_text(key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::Invalid {
            path: key_path.to_owned(),
            what: "the CA's private key (PKCS#8 PEM, EC P-256)",
            detail: e.to_string(),
        })?;
        let invalid_cert = |detail: String| PkiError::Invalid {
            path: cert_path.to_owned(),
            what: "the CA certificate",
            detail,
        };
        let (_, parsed) =
            X509Certificate::from_der(&cert_der).map_err(|e| invalid_cert(e.to_string()))?;
        if parsed.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(invalid_cert(format!(
                "its public key does not match the private key in {}",
                key_path.display()
            )));
        }
        Ok(Ca { key, cert_der, cert_pem })
    }

    fn sign(
        &self,
        params: &rcgen::CertificateParams,
        public: &impl rcgen::PublicKeyData,
        what: &str,
    ) -> Result<rcgen::Certificate, PkiError> {
        let issue_err = |source| PkiError::Issue { what: what.to_owned(), source };
        let issuer = Issuer::from_ca_cert_der(&self.cert_der, &self.key).map_err(issue_err)?;
        params.signed_by(public, &issuer).map_err(issue_err)
    }
}

/// Loads `server.crt` + `server.key` when they are usable for `names`, else issues new ones.
fn load_or_issue_server(
    dir: &Path,
    ca: &Ca,
    ca_created: bool,
    names: &[String],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
    let cert_path = dir.join(SERVER_CERT_FILE);
    let key_path = dir.join(SERVER_KEY_FILE);
    let problem = if ca_created {
        "the CA is new".to_owned()
    } else {
        match load_server(&cert_path, &key_path, ca, names) {
            Ok(loaded) => return Ok(loaded),
            Err(problem) => problem,
        }
    };
    tracing::info!(dir = %dir.display(), names = ?names, "issuing the server certificate: {problem}");
    let key = issue::generate_ec("the server key")?;
    let params = issue::server_params(names)?;
    let cert = ca.sign(&params, &key, "the server certificate")?;
    let key_pem = key.serialize_pem();
    files::write_atomic(&key_path, key_pem.as_bytes(), Access::Private)?;
    files::write_atomic(&cert_path, cert.pem().as_bytes(), Access::Public)?;
    let key_der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    Ok((vec![cert.der().clone()], key_der))
}

/// The existing server files, or why they cannot be used.
fn load_server(
    cert_path: &Path,
    key_path: &Path,
    ca: &Ca,
    names: &[String],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    if !cert_path.is_file() || !key_path.is_file() {
        return Err("no server certificate and key yet".to_owned());
    }
    let pem = files::read_text(cert_path).map_err(|e| e.to_string())?;
    let der = first_certificate(cert_path, &pem).map_err(|e| e.to_string())?;
    let facts = LeafFacts::parse_issued(&der, &ca.cert_der)?;
    let wanted: BTreeSet<String> = names.iter().cloned().collect();
    if facts.names != wanted {
        return Err(format!("its names {:?} differ from {:?}", facts.names, wanted));
    }
    let key_pem = files::read_text(key_path).map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("{} is not a usable private key: {e}", key_path.display()))?;
    Ok((vec![der], key))
}

/// What the PKI needs to know about an existing leaf certificate.
struct LeafFacts {
    kind: DeviceKeyKind,
    /// DNS names (lowercase) and IP addresses (canonical text) of the subject alternative names.
    names: BTreeSet<String>,
}

impl LeafFacts {
    fn parse(der: &[u8]) -> Result<LeafFacts, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        Self::from_parsed(&cert)
    }

    /// Parses `der` and checks that it is currently valid and signed by the CA `ca_der`.
    fn parse_issued(der: &[u8], ca_der: &[u8]) -> Result<LeafFacts, String> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        let (_, ca) = X509Certificate::from_der(ca_der).map_err(|e| e.to_string())?;
        cert.verify_signature(Some(ca.public_key()))
            .map_err(|_| "it was not issued by the current CA".to_owned())?;
        if !cert.validity().is_valid() {
            return Err("it is expired or not valid yet".to_owned());
        }
        Self::from_parsed(&cert)
    }

    fn from_parsed(cert: &X509Certificate<'_>) -> Result<LeafFacts, String> {
        let kind = match cert.public_key().parsed() {
            Ok(PublicKey::RSA(_)) => DeviceKeyKind::Rsa2048,
            Ok(PublicKey::EC(_)) => DeviceKeyKind::EcP256,
            Ok(_) | Err(_) => return Err("its key is neither RSA nor EC".to_owned()),
        };
        let mut names = BTreeSet::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => {
                        names.insert(dns.to_ascii_lowercase());
                    }
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            names.insert(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(LeafFacts { kind, names })
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    <[u8; 16]>::try_from(bytes).ok().map(|v6| IpAddr::V6(Ipv6Addr::from(v6)))
}

/// The first certificate of a PEM file.
fn first_certificate(path: &Path, pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    let invalid = |detail: String| PkiError::Invalid {
        path: path.to_owned(),
        what: "a PEM certificate",
        detail,
    };
    match CertificateDer::pem_slice_iter(pem.as_bytes()).next() {
        Some(Ok(der)) => Ok(der),
        Some(Err(e)) => Err(invalid(e.to_string())),
        None => Err(invalid("no CERTIFICATE block found".to_owned())),
    }
}

/// The built-in names followed by the extra ones, normalised and without duplicates.
fn server_names(extra: &[String]) -> Result<Vec<String>, PkiError> {
    let mut names: Vec<String> = BUILTIN_SERVER_NAMES.iter().map(|&n| n.to_owned()).collect();
    for hostname in extra {
        let invalid = || PkiError::InvalidHostname { hostname: hostname.clone() };
        let normalised = match ServerName::try_from(hostname.as_str()).map_err(|_| invalid())? {
            ServerName::DnsName(dns) => dns.as_ref().to_ascii_lowercase(),
            ServerName::IpAddress(ip) => IpAddr::from(ip).to_string(),
            _ => return Err(invalid()),
        };
        if !names.contains(&normalised) {
            names.push(normalised);
        }
    }
    Ok(names)
}

fn validate_device_name(name: &str) -> Result<(), PkiError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_DEVICE_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && name != "ca"
        && name != "server";
    if valid { Ok(()) } else { Err(PkiError::InvalidDeviceName { name: name.to_owned() }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        assert!(validate_device_name("device").is_ok());
        assert!(validate_device_name("a-B_9").is_ok());
        assert!(validate_device_name(&"x".repeat(128)).is_ok());
        for bad in ["", "ca", "server", "a.b", "a/b", "..", "é", &"x".repeat(129)] {
            assert!(validate_device_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn server_names_are_normalised_and_deduplicated() {
        let names = server_names(&["IoT.Example.test".into(), "::0001".into(), "localhost".into()])
            .unwrap();
        assert_eq!(names, ["localhost", "127.0.0.1", "::1", "iot.example.test"]);
        assert!(matches!(
            server_names(&["not a name".into()]),
            Err(PkiError::InvalidHostname { .. })
        ));
    }

    #[test]
    fn fingerprint_is_lowercase_hex() {
        assert_eq!(
            certificate_sha256(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
