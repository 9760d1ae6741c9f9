//! The error of the test PKI.

use std::io;
use std::path::PathBuf;

/// Why the emulator's test PKI could not be loaded, created or extended.
///
/// Every message names the file or folder concerned and says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The PKI folder could not be created.
    #[error(
        "could not create the PKI folder {path}: {source}; check the permissions of its parent \
         folder or choose another folder"
    )]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file of the PKI could not be read.
    #[error("could not read {path}: {source}; check that it exists and is readable")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file of the PKI could not be written.
    #[error(
        "could not write {path}: {source}; check the permissions of its folder and the free \
         disk space"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// One file of a certificate/key pair exists without the other.
    #[error(
        "found {present} but not {missing}: restore the missing file, or delete both so that the \
         emulator generates a new pair (a new CA means every device certificate must be \
         distributed again)"
    )]
    Incomplete {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// A file exists but does not hold what it should.
    #[error(
        "could not use {path} as {what}: {detail}; replace it with a valid file or delete it so \
         that the emulator generates it again"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What the file should hold ("the CA certificate", "a PKCS#8 private key" ...).
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A device name is not usable as a file name and client id.
    #[error(
        "device name {name:?} is not valid: use 1 to 128 characters among A-Z, a-z, 0-9, '_' and \
         '-', other than \"ca\" and \"server\" (which name the CA's and the server's files)"
    )]
    InvalidDeviceName {
        /// The rejected name.
        name: String,
    },
    /// An extra server host name is neither a DNS name nor an IP address.
    #[error(
        "extra server name {hostname:?} is neither a DNS name nor an IP address; pass names such \
         as iot.example.test or 192.0.2.10"
    )]
    InvalidHostname {
        /// The rejected name.
        hostname: String,
    },
    /// A key pair could not be generated.
    #[error(
        "could not generate {what}: {detail}; the operating system's random source may be unavailable"
    )]
    KeyGeneration {
        /// Which key ("the CA key", "the RSA key of device \"d1\"" ...).
        what: String,
        /// The generator's message.
        detail: String,
    },
    /// A certificate could not be built or signed.
    #[error("could not issue {what}: {source}")]
    Issue {
        /// Which certificate ("the server certificate", "the certificate of device \"d1\"" ...).
        what: String,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },
}
