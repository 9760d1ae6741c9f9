//! SigV4 verification of a presigned request, as IoT Core checks the WebSocket upgrade
//! `GET /mqtt?X-Amz-…` (`AWS-IOT-ROADS.md` §1.1–1.2, checklist E3–E6). Pure functions, no I/O.
//!
//! * Query parameters may come in any order; they are percent-decoded, then encoded again per
//!   SigV4 (unreserved characters kept, everything else `%XX`), sorted by encoded name.
//! * `X-Amz-Signature` and `X-Amz-Security-Token` are left out of the canonical query (IoT Core
//!   does not sign the token, wherever it stands). A token is accepted and not checked: the
//!   emulator issues no temporary credentials (its own choice).
//! * `X-Amz-Expires` is optional and does not extend the time window; when present it may
//!   shorten it (`now` must not be past `X-Amz-Date + X-Amz-Expires`).
//! * The signed headers are taken from the request exactly as received (the `host` header with
//!   a port if the client sent one), lower-cased names, trimmed values.
//! * The payload hash is that of the empty body.
//! * The signature is compared in constant time ([`ring::hmac::verify`]).
//!
//! [`presign`] builds such a query (the AWS JavaScript sample's algorithm) for tests and tools.

use ring::{digest, hmac};
use std::fmt;
use std::time::Duration;

/// The only algorithm SigV4 query signing knows.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The service name of the WebSocket upgrade in the credential scope.
pub const SERVICE_IOT_DEVICE_GATEWAY: &str = "iotdevicegateway";

/// The data-plane signing name, also accepted by the emulator (its choice; UNCONFIRMED for IoT
/// Core).
pub const SERVICE_IOT_DATA: &str = "iotdata";

/// The default window around the emulator's clock in which `X-Amz-Date` must fall.
pub const DEFAULT_DATE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// SHA-256 of the empty payload, hex.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An access key pair. `Debug` shows the access key id only.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// The access key id (`AKIA…`, 20 characters for keys the emulator creates).
    pub access_key_id: String,
    /// The secret access key (40 characters for keys the emulator creates). Never logged.
    pub secret_access_key: String,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// The parts of a received request that SigV4 covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The path as received, e.g. `/mqtt`.
    pub path: &'a str,
    /// The raw query string as received (without `?`).
    pub query: &'a str,
    /// The request headers as received (name, value).
    pub headers: &'a [(&'a str, &'a str)],
}

/// What a verification accepts.
#[derive(Debug, Clone, Copy)]
pub struct VerifyRules<'a> {
    /// The emulator's region; the credential scope must name it.
    pub region: &'a str,
    /// The accepted service names of the credential scope.
    pub services: &'a [&'a str],
    /// How far `X-Amz-Date` may be from `now`, either way.
    pub window: Duration,
}

/// A request whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key id that signed it.
    pub access_key_id: String,
    /// The service of the credential scope.
    pub service: String,
    /// Whether an `X-Amz-Security-Token` was sent (its value is not kept).
    pub had_session_token: bool,
}

/// Why a presigned request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigV4Refusal {
    /// A parameter is missing, repeated or unreadable.
    #[error("malformed SigV4 parameter {parameter}: {problem}")]
    Malformed {
        /// The parameter (`X-Amz-Credential`, …), or `query` for the whole query.
        parameter: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The access key id is not the emulator's.
    #[error(
        "unknown access key id {access_key_id}: sign with the key in the emulator's \
         aws-credentials file"
    )]
    UnknownAccessKey {
        /// The access key id of the credential scope.
        access_key_id: String,
    },
    /// The credential scope names another service.
    #[error("the credential scope names service {service:?}; expected {expected}")]
    WrongService {
        /// The service of the scope.
        service: String,
        /// The accepted services, comma-separated.
        expected: String,
    },
    /// The credential scope names another region.
    #[error("the credential scope names region {region:?}; the emulator's region is {expected:?}")]
    WrongRegion {
        /// The region of the scope.
        region: String,
        /// The emulator's region.
        expected: String,
    },
    /// `X-Amz-Date` is too far from the emulator's clock.
    #[error(
        "X-Amz-Date is {} s {} the emulator's clock, outside the window of {} s: check the \
         client's clock",
        off_by_secs.unsigned_abs(),
        if *off_by_secs < 0 { "behind" } else { "ahead of" },
        window.as_secs()
    )]
    DateOutsideWindow {
        /// `X-Amz-Date` minus now, in seconds.
        off_by_secs: i64,
        /// The allowed window.
        window: Duration,
    },
    /// `X-Amz-Date + X-Amz-Expires` has passed.
    #[error("the presigned request expired {expired_for_secs} s ago (X-Amz-Expires)")]
    Expired {
        /// Seconds since the expiry.
        expired_for_secs: u64,
    },
    /// The signature does not match the request.
    #[error(
        "the signature does not match: check the secret key, the signed host header (with or \
         without port) and that X-Amz-Security-Token is not signed"
    )]
    BadSignature,
}

impl SigV4Refusal {
    /// A short machine-readable name of the reason, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            SigV4Refusal::Malformed { .. } => "malformed",
            SigV4Refusal::UnknownAccessKey { .. } => "unknown_access_key",
            SigV4Refusal::WrongService { .. } => "wrong_service",
            SigV4Refusal::WrongRegion { .. } => "wrong_region",
            SigV4Refusal::DateOutsideWindow { .. } => "date_outside_window",
            SigV4Refusal::Expired { .. } => "expired",
            SigV4Refusal::BadSignature => "bad_signature",
        }
    }
}

fn malformed(parameter: &'static str, problem: impl Into<String>) -> SigV4Refusal {
    SigV4Refusal::Malformed { parameter, problem: problem.into() }
}

/// The decoded query parameters, in the order received.
struct Params(Vec<(Vec<u8>, Vec<u8>)>);

impl Params {
    fn parse(query: &str) -> Result<Params, SigV4Refusal> {
        let mut out = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name).ok_or_else(|| malformed("query", "bad %-escape"))?;
            let value = percent_decode(value).ok_or_else(|| malformed("query", "bad %-escape"))?;
            out.push((name, value));
        }
        Ok(Params(out))
    }

    /// The one value of `name`, as text.
    fn one(&self, name: &'static str) -> Result<Option<&str>, SigV4Refusal> {
        let mut values = self.0.iter().filter(|(n, _)| n.as_slice() == name.as_bytes());
        let Some((_, value)) = values.next() else { return Ok(None) };
        if values.next().is_some() {
            return Err(malformed(name, "sent more than once"));
        }
        std::str::from_utf8(value).map(Some).map_err(|_| malformed(name, "not UTF-8"))
    }

    fn required(&self, name: &'static str) -> Result<&str, SigV4Refusal> {
        self.one(name)?.ok_or_else(|| malformed(name, "missing"))
    }
}

/// The credential scope `<akid>/<yyyymmdd>/<region>/<service>/aws4_request`.
struct Scope<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl<'a> Scope<'a> {
    fn parse(text: &'a str) -> Result<Scope<'a>, SigV4Refusal> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [access_key_id, date, region, service, "aws4_request"] if !access_key_id.is_empty() => {
                Ok(Scope { access_key_id, date, region, service })
            }
            _ => Err(malformed(
                "X-Amz-Credential",
                "expected <access key id>/<yyyymmdd>/<region>/<service>/aws4_request",
            )),
        }
    }

    fn text(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date, self.region, self.service)
    }
}

/// Verifies the presigned `request` against `credentials` under `rules` at `now_unix`
/// (seconds since the Unix epoch).
///
/// # Errors
/// The first check that fails, in the order: parameters, access key, service, region, date,
/// signature.
pub fn verify_presigned(
    request: &SignedRequest<'_>,
    rules: &VerifyRules<'_>,
    credentials: &AwsCredentials,
    now_unix: i64,
) -> Result<Verified, SigV4Refusal> {
    let params = Params::parse(request.query)?;
    let algorithm = params.required("X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return Err(malformed("X-Amz-Algorithm", format!("{algorithm:?} is not {ALGORITHM}")));
    }
    let credential = params.required("X-Amz-Credential")?;
    let amz_date = params.required("X-Amz-Date")?;
    let signed_headers = params.required("X-Amz-SignedHeaders")?;
    let signature = params.required("X-Amz-Signature")?;
    let expires = params.one("X-Amz-Expires")?;
    let had_session_token = params.one("X-Amz-Security-Token")?.is_some();
    let scope = Scope::parse(credential)?;

    if scope.access_key_id != credentials.access_key_id {
        return Err(SigV4Refusal::UnknownAccessKey { access_key_id: scope.access_key_id.into() });
    }
    if !rules.services.contains(&scope.service) {
        return Err(SigV4Refusal::WrongService {
            service: scope.service.into(),
            expected: rules.services.join(", "),
        });
    }
    if scope.region != rules.region {
        return Err(SigV4Refusal::WrongRegion {
            region: scope.region.into(),
            expected: rules.region.into(),
        });
    }
    let signed_at = parse_amz_date(amz_date)?;
    if amz_date.get(..8) != Some(scope.date) {
        return Err(malformed("X-Amz-Credential", "its date is not the date of X-Amz-Date"));
    }
    let off_by_secs = signed_at - now_unix;
    if off_by_secs.unsigned_abs() > rules.window.as_secs() {
        return Err(SigV4Refusal::DateOutsideWindow { off_by_secs, window: rules.window });
    }
    if let Some(expires) = expires {
        let expires: u32 =
            expires.parse().map_err(|_| malformed("X-Amz-Expires", "not a number of seconds"))?;
        let expired_for = now_unix - (signed_at + i64::from(expires));
        if expired_for > 0 {
            return Err(SigV4Refusal::Expired { expired_for_secs: expired_for.unsigned_abs() });
        }
    }
    let signature = decode_hex(signature)
        .ok_or_else(|| malformed("X-Amz-Signature", "expected 64 hex digits"))?;

    let creq = canonical_request(request, &params, signed_headers)?;
    let key = signing_key(&credentials.secret_access_key, &scope);
    let sts = string_to_sign(amz_date, &scope, &creq);
    hmac::verify(&key, sts.as_bytes(), &signature).map_err(|_| SigV4Refusal::BadSignature)?;
    Ok(Verified {
        access_key_id: scope.access_key_id.into(),
        service: scope.service.into(),
        had_session_token,
    })
}

/// The canonical request of E4.
fn canonical_request(
    request: &SignedRequest<'_>,
    params: &Params,
    signed_headers: &str,
) -> Result<String, SigV4Refusal> {
    let mut query: Vec<(String, String)> = params
        .0
        .iter()
        .filter(|(name, _)| {
            name.as_slice() != b"X-Amz-Signature" && name.as_slice() != b"X-Amz-Security-Token"
        })
        .map(|(name, value)| (uri_encode(name, true), uri_encode(value, true)))
        .collect();
    query.sort();
    let query: Vec<String> = query.into_iter().map(|(n, v)| format!("{n}={v}")).collect();

    let mut headers = String::new();
    for name in signed_headers.split(';') {
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(malformed("X-Amz-SignedHeaders", "expected lower-case names split by ;"));
        }
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Err(malformed(
                "X-Amz-SignedHeaders",
                format!("names header {name:?}, which the request does not carry"),
            ));
        }
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let path = if request.path.is_empty() { "/" } else { request.path };
    Ok(format!(
        "{}\n{}\n{}\n{headers}\n{signed_headers}\n{EMPTY_SHA256}",
        request.method,
        uri_encode(path.as_bytes(), false),
        query.join("&"),
    ))
}

fn string_to_sign(amz_date: &str, scope: &Scope<'_>, creq: &str) -> String {
    let hash = digest::digest(&digest::SHA256, creq.as_bytes());
    format!("{ALGORITHM}\n{amz_date}\n{}\n{}", scope.text(), hex(hash.as_ref()))
}

fn signing_key(secret: &str, scope: &Scope<'_>) -> hmac::Key {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [scope.date, scope.region, scope.service, "aws4_request"] {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes());
        key = tag.as_ref().to_vec();
    }
    hmac::Key::new(hmac::HMAC_SHA256, &key)
}

/// A presigned query for `GET /mqtt` (the AWS JavaScript sample's algorithm, `AWS-IOT-ROADS.md`
/// §1.6–1.7): Algorithm, Credential, Date, \[Expires\], SignedHeaders=host, Signature, then the
/// session token if any (not signed). `host` is the `Host` header value the client will send;
/// `amz_date` is `yyyymmddTHHMMSSZ`.
pub fn presign(
    credentials: &AwsCredentials,
    region: &str,
    service: &str,
    host: &str,
    amz_date: &str,
    expires: Option<u32>,
    session_token: Option<&str>,
) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = Scope { access_key_id: &credentials.access_key_id, date, region, service };
    let credential = format!("{}/{}", credentials.access_key_id, scope.text());
    let mut query = format!(
        "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={amz_date}",
        uri_encode(credential.as_bytes(), true)
    );
    if let Some(expires) = expires {
        query.push_str(&format!("&X-Amz-Expires={expires}"));
    }
    query.push_str("&X-Amz-SignedHeaders=host");
    let headers = [("host", host)];
    let request = SignedRequest { method: "GET", path: "/mqtt", query: &query, headers: &headers };
    // The query above is well-formed by construction; an error cannot happen, and an empty
    // signature (refused by every verifier) would be the outcome if it did.
    let signature = Params::parse(&query)
        .and_then(|params| canonical_request(&request, &params, "host"))
        .map(|creq| {
            let sts = string_to_sign(amz_date, &scope, &creq);
            hex(hmac::sign(&signing_key(&credentials.secret_access_key, &scope), sts.as_bytes())
                .as_ref())
        })
        .unwrap_or_default();
    query.push_str(&format!("&X-Amz-Signature={signature}"));
    if let Some(token) = session_token {
        query.push_str(&format!("&X-Amz-Security-Token={}", uri_encode(token.as_bytes(), true)));
    }
    query
}

/// `yyyymmddTHHMMSSZ` as Unix seconds.
fn parse_amz_date(text: &str) -> Result<i64, SigV4Refusal> {
    let bad = || malformed("X-Amz-Date", "expected yyyymmddTHHMMSSZ");
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes.get(8) != Some(&b'T') || bytes.get(15) != Some(&b'Z') {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| -> Result<u32, SigV4Refusal> {
        let part = text.get(range).ok_or_else(bad)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    let year = i32::try_from(number(0..4)?).map_err(|_| bad())?;
    let month = u8::try_from(number(4..6)?).map_err(|_| bad())?;
    let month = time::Month::try_from(month).map_err(|_| bad())?;
    let day = u8::try_from(number(6..8)?).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
    let hour = u8::try_from(number(9..11)?).map_err(|_| bad())?;
    let minute = u8::try_from(number(11..13)?).map_err(|_| bad())?;
    let second = u8::try_from(number(13..15)?).map_err(|_| bad())?;
    let time = time::Time::from_hms(hour, minute, second).map_err(|_| bad())?;
    Ok(time::PrimitiveDateTime::new(date, time).assume_utc().unix_timestamp())
}

/// Unix seconds as `yyyymmddTHHMMSSZ`, for signers.
pub fn amz_date(unix: i64) -> String {
    let at =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// SigV4's URI encoding: unreserved characters kept, every other byte `%XX` (upper case);
/// `/` kept unless `encode_slash`.
fn uri_encode(bytes: &[u8], encode_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b'.' | b'~')
            || (byte == b'/' && !encode_slash)
        {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (`+` stays `+`); `None` on a broken escape.
pub(crate) fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let high = hex_value(*bytes.get(i + 1)?)?;
            let low = hex_value(*bytes.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    Some(out)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => Some(hex_value(*high)? << 4 | hex_value(*low)?),
            _ => None,
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_query_is_refused_without_panicking(query in "\\PC{0,300}", host in "\\PC{0,40}") {
            let credentials = AwsCredentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "secret".into(),
            };
            let headers = [("host", host.as_str())];
            let request = SignedRequest { method: "GET", path: "/mqtt", query: &query, headers: &headers };
            let rules = VerifyRules { region: "us-east-1", services: &["iotdevicegateway"], window: DEFAULT_DATE_WINDOW };
            proptest::prop_assert!(verify_presigned(&request, &rules, &credentials, 0).is_err());
        }

        #[test]
        fn percent_decoding_inverts_encoding(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
            let encoded = uri_encode(&bytes, true);
            proptest::prop_assert_eq!(percent_decode(&encoded), Some(bytes));
        }
    }

    #[test]
    fn amz_date_round_trips() {
        let unix = parse_amz_date("20150830T123600Z").unwrap_or_default();
        assert_eq!(unix, 1_440_938_160);
        assert_eq!(amz_date(unix), "20150830T123600Z");
        assert!(parse_amz_date("20151330T123600Z").is_err());
        assert!(parse_amz_date("2015083OT123600Z").is_err());
    }

    #[test]
    fn encoding_and_decoding() {
        assert_eq!(uri_encode(b"a/b c+~", true), "a%2Fb%20c%2B~");
        assert_eq!(uri_encode(b"/mqtt", false), "/mqtt");
        assert_eq!(percent_decode("a%2Fb+%7e"), Some(b"a/b+~".to_vec()));
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%zz"), None);
    }

    #[test]
    fn debug_hides_the_secret() {
        let credentials = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "s3cr3t".into(),
        };
        let text = format!("{credentials:?}");
        assert!(text.contains("AKIDEXAMPLE") && !text.contains("s3cr3t"), "{text}");
    }
}
