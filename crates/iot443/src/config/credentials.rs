//! The device certificate, its private key and the trust roots, loaded and checked before any
//! connection: files readable and parseable, key matching the certificate, certificate within its
//! validity (a warning within 30 days of its end), key file not readable by others (a warning).

use super::{Config, ConfigError};
use rustls::RootCertStore;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// A certificate closer than this to its end of validity gives [`CredentialWarning::ExpiresSoon`].
const EXPIRY_WARNING: time::Duration = time::Duration::days(30);

/// The certificate chain, private key and trust roots of a [`Config`], loaded and checked.
///
/// Build with [`Credentials::load`]; hand to [`crate::tls::client_config`]. Its `Debug` output
/// never shows the key.
#[non_exhaustive]
pub struct Credentials {
    /// The device certificate first, then any intermediates from the same file.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The device private key.
    pub key: PrivateKeyDer<'static>,
    /// The trust roots for the server certificate: the `root_ca` file, or the Mozilla roots.
    pub roots: RootCertStore,
    /// The end of the device certificate's validity.
    pub not_after: OffsetDateTime,
    /// The key's algorithm and size.
    pub key_kind: KeyKind,
    /// How the key file encodes the key.
    pub key_format: KeyFormat,
    /// Problems that do not stop a connection but need attention; log or print them.
    pub warnings: Vec<CredentialWarning>,
}

/// A private key's algorithm and size.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA with a modulus of this many bits (AWS IoT Core creates 2048-bit keys).
    Rsa {
        /// Modulus size.
        bits: usize,
    },
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA {bits}"),
            KeyKind::EcP256 => f.write_str("EC P-256"),
            KeyKind::EcP384 => f.write_str("EC P-384"),
        }
    }
}

/// How a private key is encoded.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyFormat {
    /// PKCS#1 `RSA PRIVATE KEY`, as the AWS IoT console hands out.
    Pkcs1,
    /// PKCS#8 `PRIVATE KEY`.
    Pkcs8,
    /// SEC1 `EC PRIVATE KEY`.
    Sec1,
}

/// Something about the credentials that works today but needs attention.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialWarning {
    /// The device certificate ends its validity within 30 days.
    ExpiresSoon {
        /// The certificate file.
        path: PathBuf,
        /// Whole days left.
        days_left: i64,
    },
    /// The private key file can be read (or written) by its group or by others.
    KeyReadableByOthers {
        /// The key file.
        path: PathBuf,
        /// The file's permission bits, e.g. `0o644`.
        mode: u32,
    },
}

impl fmt::Display for CredentialWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialWarning::ExpiresSoon { path, days_left } => write!(
                f,
                "certificate {} expires in {days_left} day{}; create a new certificate in AWS \
                 IoT (same policy and thing) and replace the file before then",
                path.display(),
                if *days_left == 1 { "" } else { "s" }
            ),
            CredentialWarning::KeyReadableByOthers { path, mode } => write!(
                f,
                "private key {} is accessible to other users (mode {mode:04o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        }
    }
}

impl Credentials {
    /// Loads and checks the files a configuration names, at the current time.
    pub fn load(config: &Config) -> Result<Credentials, ConfigError> {
        Credentials::load_at(config, OffsetDateTime::now_utc())
    }

    /// [`Credentials::load`], with the validity of the certificate checked at `now`.
    pub fn load_at(config: &Config, now: OffsetDateTime) -> Result<Credentials, ConfigError> {
        let mut warnings = Vec::new();

        let cert_path = &config.certificate;
        let cert_chain =
            read_certificates(cert_path, |path| ConfigError::NoCertificateInFile { path })?;
        let end_entity = cert_chain
            .first()
            .ok_or_else(|| ConfigError::NoCertificateInFile { path: cert_path.clone() })?;
        let not_after = check_validity(cert_path, end_entity, now, &mut warnings)?;

        let key_path = &config.private_key;
        let key_bytes = read(key_path)?;
        if let Some(warning) = key_permissions(key_path) {
            warnings.push(warning);
        }
        let key = parse_key(key_path, &key_bytes)?;
        let key_format = match &key {
            PrivateKeyDer::Pkcs1(_) => KeyFormat::Pkcs1,
            PrivateKeyDer::Sec1(_) => KeyFormat::Sec1,
            _ => KeyFormat::Pkcs8,
        };
        let signing_key = any_supported_type(&key).map_err(|_| ConfigError::UnsupportedKey {
            path: key_path.clone(),
            detail: format!(
                "it is not an RSA key of 2048 bits or more, nor an EC key on P-256 or P-384 \
                 (the {key_format:?} data did not load); AWS IoT Core accepts those kinds: create \
                 the key with `openssl ecparam -name prime256v1 -genkey` or let AWS IoT create it"
            ),
        })?;
        let key_kind = key_kind(key_path, signing_key.as_ref())?;

        match CertifiedKey::new(cert_chain.clone(), signing_key).keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(_)) => {
                return Err(ConfigError::KeyDoesNotMatchCertificate {
                    certificate: cert_path.clone(),
                    private_key: key_path.clone(),
                });
            }
            Err(e) => {
                return Err(ConfigError::BadCertificate {
                    path: cert_path.clone(),
                    detail: format!("its first certificate cannot be used by TLS: {e}"),
                });
            }
        }

        let roots = load_roots(config)?;

        tracing::debug!(
            certificate = %cert_path.display(),
            private_key = %key_path.display(),
            %key_kind,
            ?key_format,
            roots = roots.len(),
            "credentials loaded"
        );
        Ok(Credentials { cert_chain, key, roots, not_after, key_kind, key_format, warnings })
    }
}

impl Clone for Credentials {
    fn clone(&self) -> Self {
        Credentials {
            cert_chain: self.cert_chain.clone(),
            key: self.key.clone_key(),
            roots: self.roots.clone(),
            not_after: self.not_after,
            key_kind: self.key_kind,
            key_format: self.key_format,
            warnings: self.warnings.clone(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("cert_chain", &format_args!("{} certificate(s)", self.cert_chain.len()))
            .field("key", &"[secret key elided]")
            .field("roots", &format_args!("{} root(s)", self.roots.len()))
            .field("not_after", &self.not_after)
            .field("key_kind", &self.key_kind)
            .field("key_format", &self.key_format)
            .field("warnings", &self.warnings)
            .finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source: std::sync::Arc::new(source),
    })
}

/// The certificates of a PEM file (or of a single DER certificate); `empty` makes the error for a
/// file without any.
fn read_certificates(
    path: &Path,
    empty: impl FnOnce(PathBuf) -> ConfigError,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = read(path)?;
    let certs =
        CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>().map_err(|e| {
            ConfigError::BadCertificate {
                path: path.to_owned(),
                detail: format!("its PEM text is damaged ({e}); download the file again"),
            }
        })?;
    if !certs.is_empty() {
        return Ok(certs);
    }
    // A binary (DER) certificate, such as AmazonRootCA1.cer.
    if bytes.first() == Some(&0x30) && x509_parser::parse_x509_certificate(&bytes).is_ok() {
        return Ok(vec![CertificateDer::from(bytes)]);
    }
    Err(empty(path.to_owned()))
}

/// Checks the end-entity certificate's validity at `now`; returns its end.
fn check_validity(
    path: &Path,
    cert: &CertificateDer<'_>,
    now: OffsetDateTime,
    warnings: &mut Vec<CredentialWarning>,
) -> Result<OffsetDateTime, ConfigError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert).map_err(|e| ConfigError::BadCertificate {
            path: path.to_owned(),
            detail: format!("its first certificate is not valid X.509 ({e})"),
        })?;
    let validity = parsed.validity();
    let not_before = validity.not_before.to_datetime();
    let not_after = validity.not_after.to_datetime();
    if now < not_before {
        return Err(ConfigError::CertificateNotYetValid { path: path.to_owned(), not_before });
    }
    if now > not_after {
        return Err(ConfigError::CertificateExpired { path: path.to_owned(), not_after });
    }
    let left = not_after - now;
    if left < EXPIRY_WARNING {
        warnings.push(CredentialWarning::ExpiresSoon {
            path: path.to_owned(),
            days_left: left.whole_days(),
        });
    }
    Ok(not_after)
}

/// The private key of a PEM (or DER) file. Errors never quote the file's content.
fn parse_key(path: &Path, bytes: &[u8]) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let has = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    if has("-----BEGIN ENCRYPTED PRIVATE KEY-----") || has("Proc-Type: 4,ENCRYPTED") {
        return Err(ConfigError::UnsupportedKey {
            path: path.to_owned(),
            detail: format!(
                "it is encrypted with a passphrase; write a decrypted copy with `openssl pkey \
                 -in {0} -out {0}.plain`, keep it private (chmod 600) and use that",
                path.display()
            ),
        });
    }
    match PrivateKeyDer::from_pem_slice(bytes) {
        Ok(key) => Ok(key),
        Err(rustls_pki_types::pem::Error::NoItemsFound) => {
            // A binary (DER) key; never a certificate, whose DER also starts with a SEQUENCE.
            if x509_parser::parse_x509_certificate(bytes).is_err()
                && let Ok(key) = PrivateKeyDer::try_from(bytes)
            {
                return Ok(key.clone_key());
            }
            Err(ConfigError::NoPrivateKeyInFile { path: path.to_owned() })
        }
        Err(_) => Err(ConfigError::UnsupportedKey {
            path: path.to_owned(),
            detail: "its PEM text is damaged (bad base64 or a missing END line); copy the key \
                     file again"
                .to_owned(),
        }),
    }
}

/// The algorithm and size of a loaded key, from its public half.
fn key_kind(path: &Path, key: &dyn rustls::sign::SigningKey) -> Result<KeyKind, ConfigError> {
    let unsupported =
        |detail: String| ConfigError::UnsupportedKey { path: path.to_owned(), detail };
    if key.algorithm() == rustls::SignatureAlgorithm::ED25519 {
        return Err(unsupported(
            "it is an Ed25519 key, which AWS IoT Core does not accept; use RSA (2048 bits or \
             more) or EC P-256/P-384"
                .to_owned(),
        ));
    }
    let spki_der = key
        .public_key()
        .ok_or_else(|| unsupported("its public key cannot be derived".to_owned()))?;
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der.as_ref())
        .map_err(|_| unsupported("its public key cannot be read".to_owned()))?;
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        let bits = match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => modulus_bits(rsa.modulus),
            _ => return Err(unsupported("its RSA public key cannot be read".to_owned())),
        };
        return Ok(KeyKind::Rsa { bits });
    }
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
        if curve.as_ref() == Some(&OID_EC_P256) {
            return Ok(KeyKind::EcP256);
        }
        if curve.as_ref() == Some(&OID_NIST_EC_P384) {
            return Ok(KeyKind::EcP384);
        }
    }
    Err(unsupported(format!(
        "its algorithm ({algorithm}) is not RSA, EC P-256 or EC P-384, the kinds AWS IoT Core accepts"
    )))
}

/// The size in bits of a big-endian unsigned integer.
fn modulus_bits(modulus: &[u8]) -> usize {
    let mut bytes = modulus.iter().skip_while(|b| **b == 0);
    match bytes.next() {
        Some(first) => (bytes.count() * 8) + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}

/// The trust roots `config` names: its `root_ca` file, else the Mozilla roots (which hold
/// Amazon Root CA 1-4). Reads a file: call it on the blocking pool.
pub(crate) fn load_roots(config: &Config) -> Result<RootCertStore, ConfigError> {
    match &config.root_ca {
        Some(path) => read_roots(path),
        #[cfg(feature = "webpki-roots")]
        None => Ok(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }),
        #[cfg(not(feature = "webpki-roots"))]
        None => Err(super::features::default_roots(&config.origin())),
    }
}

/// The trust roots of a `root_ca` file.
fn read_roots(path: &Path) -> Result<RootCertStore, ConfigError> {
    let certs = read_certificates(path, |path| ConfigError::NoRootInFile { path })?;
    let total = certs.len();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(ConfigError::BadCertificate {
            path: path.to_owned(),
            detail: format!(
                "none of its {total} certificate(s) can serve as a trust root; use \
                 AmazonRootCA1.pem (or remove `root_ca` to use the built-in Mozilla roots)"
            ),
        });
    }
    Ok(roots)
}

/// A warning when the key file is accessible to its group or to others (unix only).
#[cfg(unix)]
fn key_permissions(path: &Path) -> Option<CredentialWarning> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0)
        .then(|| CredentialWarning::KeyReadableByOthers { path: path.to_owned(), mode })
}

#[cfg(not(unix))]
fn key_permissions(_path: &Path) -> Option<CredentialWarning> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_sizes() {
        assert_eq!(modulus_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(modulus_bits(&[0x01, 0x00]), 9);
        assert_eq!(modulus_bits(&[]), 0);
    }
}
