//! The chain of certificates a server presented, recorded during the handshake whatever the
//! verdict, and what it says about a TLS-inspecting (intercepting) proxy in the way.
//!
//! [`RecordingVerifier`] wraps rustls' [`WebPkiServerVerifier`]: it keeps a copy of the chain
//! the server sent, then lets the WebPKI verifier decide. [`ChainFacts`] reads that chain: who
//! issued its top certificate, whether it ends at an Amazon root, and, with the endpoint's name,
//! whether interception is the probable cause of a failure.

use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::{Arc, Mutex};

/// The roots AWS IoT Core's ATS endpoints chain to (AWS-IOT.md §2.2): Amazon Root CA 1 to 4,
/// and Starfield Services Root Certificate Authority - G2, which cross-signs them.
const AMAZON_ROOT_CNS: [&str; 5] = [
    "Amazon Root CA 1",
    "Amazon Root CA 2",
    "Amazon Root CA 3",
    "Amazon Root CA 4",
    "Starfield Services Root Certificate Authority - G2",
];

/// Words in the names of the CAs that TLS-inspecting products sign with (Zscaler, Netskope,
/// Fortinet, Palo Alto, Cisco Umbrella, Sophos, Blue Coat, mitmproxy, Charles Proxy, Fiddler,
/// Burp…).
/// Used only where the endpoint's name says nothing (not an `amazonaws.com` endpoint).
const INSPECTION_WORDS: [&str; 21] = [
    "inspection",
    "intercept",
    "proxy",
    "zscaler",
    "netskope",
    "fortinet",
    "fortigate",
    "palo alto",
    "umbrella",
    "sophos",
    "blue coat",
    "bluecoat",
    "mitmproxy",
    "fiddler",
    "burp",
    "portswigger",
    "forcepoint",
    "websense",
    "checkpoint",
    "check point",
    "ssl decrypt",
];

/// A shared slot for the chain presented in one handshake (the latest, when a configuration is
/// used for several).
#[derive(Debug, Clone, Default)]
pub(crate) struct Presented(Arc<Mutex<Option<Vec<CertificateDer<'static>>>>>);

impl Presented {
    /// The facts of the chain recorded last, if a server presented one.
    pub(crate) fn facts(&self) -> Option<ChainFacts> {
        let chain = self.0.lock().ok()?.clone()?;
        ChainFacts::read(&chain)
    }

    fn record(&self, end_entity: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) {
        let chain: Vec<CertificateDer<'static>> = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|cert| cert.clone().into_owned())
            .collect();
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(chain);
        }
    }
}

/// Records the presented chain into a [`Presented`], then verifies as `inner` does.
#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    presented: Presented,
}

impl RecordingVerifier {
    /// A verifier deciding as `inner`, recording into `presented`.
    pub(crate) fn new(inner: Arc<WebPkiServerVerifier>, presented: Presented) -> Self {
        RecordingVerifier { inner, presented }
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.presented.record(end_entity, intermediates);
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A certificate name, as far as a person recognises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    /// The common name (CN), when there is one.
    pub(crate) common_name: Option<String>,
    /// The organisation (O), when there is one.
    pub(crate) organisation: Option<String>,
    /// The whole name, e.g. `CN=Corporate TLS Inspection CA, O=Example Corp`.
    pub(crate) full: String,
}

impl Name {
    fn read(name: &x509_parser::x509::X509Name<'_>) -> Name {
        Name {
            common_name: first(name.iter_common_name()),
            organisation: first(name.iter_organization()),
            full: name.to_string(),
        }
    }

    /// `"CN" (O "…")`, the way messages name an issuer.
    pub(crate) fn describe(&self) -> String {
        match (&self.common_name, &self.organisation) {
            (Some(cn), Some(o)) => format!("{cn:?} (O={o:?})"),
            (Some(cn), None) => format!("{cn:?}"),
            (None, Some(o)) => format!("O={o:?}"),
            (None, None) => format!("{:?}", self.full),
        }
    }

    fn is_amazon_root(&self) -> bool {
        self.common_name.as_deref().is_some_and(|cn| AMAZON_ROOT_CNS.contains(&cn))
    }

    fn sounds_like_inspection(&self) -> bool {
        let text = self.full.to_lowercase();
        INSPECTION_WORDS.iter().any(|word| text.contains(word))
    }
}

/// The first of `values` that is a string.
fn first<'a>(
    mut values: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
) -> Option<String> {
    values.find_map(|value| value.as_str().ok().map(str::to_owned))
}

/// What the presented chain shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainFacts {
    /// The subject of the server's own certificate.
    pub(crate) leaf_subject: Name,
    /// The issuer of the top certificate sent: the root the chain claims to end at.
    pub(crate) top_issuer: Name,
    /// One certificate, issued by itself.
    pub(crate) self_signed: bool,
    /// The top issuer is an Amazon root (Amazon Root CA 1–4, Starfield Services G2).
    pub(crate) ends_at_amazon: bool,
}

impl ChainFacts {
    /// Reads `chain` (the server's certificate first); `None` when it is empty or the top
    /// certificate does not parse.
    pub(crate) fn read(chain: &[CertificateDer<'_>]) -> Option<ChainFacts> {
        let (_, leaf) = x509_parser::parse_x509_certificate(chain.first()?).ok()?;
        let (_, top) = x509_parser::parse_x509_certificate(chain.last()?).ok()?;
        let top_issuer = Name::read(top.issuer());
        let self_signed = chain.len() == 1 && leaf.subject().as_raw() == leaf.issuer().as_raw();
        Some(ChainFacts {
            leaf_subject: Name::read(leaf.subject()),
            ends_at_amazon: top_issuer.is_amazon_root(),
            top_issuer,
            self_signed,
        })
    }

    /// Whether a TLS-inspecting proxy is the probable cause of a chain that was not trusted,
    /// for `endpoint`: an `amazonaws.com` endpoint whose chain does not end at an Amazon root,
    /// or elsewhere a chain (not self-signed) whose issuer is named like an inspecting proxy.
    pub(crate) fn probably_intercepted(&self, endpoint: &str) -> bool {
        if is_amazon_endpoint(endpoint) {
            !self.ends_at_amazon
        } else {
            !self.self_signed && self.top_issuer.sounds_like_inspection()
        }
    }

    /// The facts as a sentence: `the server presented a certificate for "…" issued by "…"
    /// (O=…); the chain does not end at an Amazon root`.
    pub(crate) fn describe(&self) -> String {
        let leaf = self.leaf_subject.describe();
        let amazon = if self.ends_at_amazon {
            "the chain ends at an Amazon root"
        } else {
            "the chain does not end at an Amazon root"
        };
        if self.self_signed {
            format!("the server presented a self-signed certificate {leaf}; {amazon}")
        } else {
            format!(
                "the server presented a certificate for {leaf} issued by {}; {amazon}",
                self.top_issuer.describe()
            )
        }
    }
}

/// Whether `endpoint` is an AWS host name (`….amazonaws.com` or `….amazonaws.com.cn`).
pub(crate) fn is_amazon_endpoint(endpoint: &str) -> bool {
    let host = endpoint.trim_end_matches('.').to_ascii_lowercase();
    host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")
}

/// The region in an IoT endpoint's name (`abc-ats.iot.eu-west-1.amazonaws.com` → `eu-west-1`).
pub(crate) fn endpoint_region(endpoint: &str) -> Option<&str> {
    let mut labels = endpoint.split('.');
    labels.by_ref().find(|label| *label == "iot")?;
    labels.next().filter(|region| !region.is_empty() && *region != "amazonaws")
}

/// What works through a TLS-inspecting proxy, for `endpoint`.
pub(crate) fn interception_remedy(endpoint: &str) -> String {
    let bypass = match endpoint_region(endpoint) {
        Some(region) => format!("*.iot.{region}.amazonaws.com"),
        None => endpoint.to_owned(),
    };
    format!(
        "such a proxy answers TLS itself and cannot present the device certificate to AWS IoT \
         Core, so certificate authentication cannot pass it; what works: the WebSocket road \
         (transport = \"websocket\", SigV4 credentials) with that proxy's CA as root_ca, or \
         asking the network's administrators for a TLS-inspection bypass for {bypass}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amazon_endpoints_and_their_regions() {
        assert!(is_amazon_endpoint("abc-ats.iot.eu-west-1.amazonaws.com"));
        assert!(is_amazon_endpoint("abc-ats.iot.cn-north-1.amazonaws.com.cn"));
        assert!(!is_amazon_endpoint("localhost"));
        assert!(!is_amazon_endpoint("amazonaws.com.example.org"));
        assert_eq!(endpoint_region("abc-ats.iot.eu-west-1.amazonaws.com"), Some("eu-west-1"));
        assert_eq!(endpoint_region("localhost"), None);
        assert!(
            interception_remedy("abc-ats.iot.eu-west-1.amazonaws.com")
                .contains("*.iot.eu-west-1.amazonaws.com")
        );
    }

    /// A CA named `cn`/`o` and a certificate for `host` it issued, server first.
    fn chain(cn: &str, o: &str, host: &str) -> Vec<CertificateDer<'static>> {
        let ca_key = rcgen::KeyPair::generate().ok();
        let leaf_key = rcgen::KeyPair::generate().ok();
        let (Some(ca_key), Some(leaf_key)) = (ca_key, leaf_key) else { return Vec::new() };
        let Ok(mut ca) = rcgen::CertificateParams::new(Vec::<String>::new()) else {
            return Vec::new();
        };
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, cn);
        ca.distinguished_name.push(rcgen::DnType::OrganizationName, o);
        let Ok(ca_cert) = ca.self_signed(&ca_key) else { return Vec::new() };
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let Ok(leaf) = rcgen::CertificateParams::new(vec![host.to_owned()]) else {
            return Vec::new();
        };
        let Ok(leaf) = leaf.signed_by(&leaf_key, &issuer) else { return Vec::new() };
        vec![leaf.der().clone(), ca_cert.der().clone()]
    }

    const AWS: &str = "abc-ats.iot.eu-west-1.amazonaws.com";

    #[test]
    fn a_chain_issued_by_an_amazon_root_is_amazons() {
        let facts = ChainFacts::read(&chain("Amazon Root CA 1", "Amazon", AWS));
        assert_eq!(facts.as_ref().map(|f| f.ends_at_amazon), Some(true));
        assert_eq!(facts.as_ref().map(|f| f.probably_intercepted(AWS)), Some(false));
        let starfield = ChainFacts::read(&chain(
            "Starfield Services Root Certificate Authority - G2",
            "Starfield Technologies, Inc.",
            AWS,
        ));
        assert_eq!(starfield.map(|f| f.ends_at_amazon), Some(true));
    }

    #[test]
    fn for_an_amazonaws_endpoint_any_other_issuer_is_probably_interception() {
        let facts = ChainFacts::read(&chain("Some Private CA", "Example Corp", AWS));
        assert_eq!(facts.as_ref().map(|f| f.probably_intercepted(AWS)), Some(true));
        let described = facts.map(|f| f.describe()).unwrap_or_default();
        assert!(
            described.contains("issued by \"Some Private CA\" (O=\"Example Corp\")"),
            "{described}"
        );
        assert!(described.contains("does not end at an Amazon root"), "{described}");
    }

    #[test]
    fn elsewhere_only_an_issuer_named_like_an_inspecting_proxy_is() {
        let proxy =
            ChainFacts::read(&chain("Zscaler Intermediate Root CA", "Zscaler Inc.", "localhost"));
        assert_eq!(proxy.map(|f| f.probably_intercepted("localhost")), Some(true));
        let mitm = ChainFacts::read(&chain("mitmproxy", "mitmproxy", "localhost"));
        assert_eq!(mitm.map(|f| f.probably_intercepted("localhost")), Some(true));
        let emulator = ChainFacts::read(&chain("iot443 emulator CA", "iot443", "localhost"));
        assert_eq!(emulator.map(|f| f.probably_intercepted("localhost")), Some(false));
    }

    #[test]
    fn a_self_signed_server_certificate_is_named_as_such() {
        let key = rcgen::KeyPair::generate().ok();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).ok();
        let cert = key.zip(params).and_then(|(key, params)| params.self_signed(&key).ok());
        let chain: Vec<CertificateDer<'static>> =
            cert.map(|c| c.der().clone()).into_iter().collect();
        let facts = ChainFacts::read(&chain);
        assert_eq!(facts.as_ref().map(|f| f.self_signed), Some(true));
        assert_eq!(facts.as_ref().map(|f| f.probably_intercepted("localhost")), Some(false));
        let described = facts.map(|f| f.describe()).unwrap_or_default();
        assert!(described.contains("self-signed certificate"), "{described}");
    }

    #[test]
    fn an_empty_or_unparsable_chain_gives_no_facts() {
        assert_eq!(ChainFacts::read(&[]), None);
        assert_eq!(ChainFacts::read(&[CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])]), None);
    }
}
