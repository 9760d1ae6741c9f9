//! SigV4 query-string signing (a presigned request) with AWS's own signer, `aws-sigv4`, as AWS
//! IoT Core wants the WebSocket upgrade: service `iotdevicegateway`, `GET /mqtt`, only `host`
//! signed, an empty body, and the session token left out of the signature and appended after
//! it, exactly once.
//!
//! [`presign_query`] is general (method, host, path, query) so that AWS's published test
//! vectors run through it; [`websocket_url`] is the IoT form.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SessionTokenMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

/// The service name AWS IoT Core's WebSocket endpoint verifies in the credential scope.
pub const IOT_SERVICE: &str = "iotdevicegateway";
/// The path of AWS IoT Core's MQTT-over-WebSocket endpoint.
pub const MQTT_PATH: &str = "/mqtt";
/// `X-Amz-Expires` of the presigned upgrade. aws-sigv4 requires one for query signing; IoT Core
/// checks the request date, and the URL is used at once.
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(86_400);
/// The query parameter that carries the session token.
pub const SECURITY_TOKEN_PARAM: &str = "X-Amz-Security-Token";
/// The query parameter that carries the signature.
pub const SIGNATURE_PARAM: &str = "X-Amz-Signature";

/// The request to presign.
#[derive(Debug, Clone, Copy)]
pub struct PresignRequest<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    /// The `Host` header exactly as it will be sent (`host`, or `host:port` off port 443): the
    /// signed value must be identical to it.
    pub host: &'a str,
    /// The path, already percent-encoded, e.g. `/mqtt`.
    pub path: &'a str,
    /// Query parameters already in the request, in order, as raw (not encoded) text.
    pub query: &'a [(&'a str, &'a str)],
}

/// Who signs, for which region and service, at what time.
#[derive(Debug, Clone, Copy)]
pub struct SigningInputs<'a> {
    /// The credentials (a session token, if any, goes after the signature).
    pub credentials: &'a Credentials,
    /// The region in the credential scope.
    pub region: &'a str,
    /// The service in the credential scope ([`IOT_SERVICE`] for IoT Core).
    pub service: &'a str,
    /// The signing time (`SystemTime::now()` outside tests).
    pub time: SystemTime,
    /// `X-Amz-Expires` ([`DEFAULT_EXPIRES_IN`]).
    pub expires_in: Duration,
}

/// The signer refused its input (a host or path that is not a valid URI…).
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the request: {0}")]
pub struct SignError(String);

/// The query string of the presigned `request`, encoded, without the leading `?`: the
/// request's own parameters, then `X-Amz-Algorithm`, `-Credential`, `-Date`, `-Expires`,
/// `-SignedHeaders`, `-Signature`, and last, when the credentials carry one,
/// `X-Amz-Security-Token` — once, and outside the signature (`SessionTokenMode::Exclude`).
pub fn presign_query(
    request: &PresignRequest<'_>,
    inputs: &SigningInputs<'_>,
) -> Result<String, SignError> {
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.session_token_mode = SessionTokenMode::Exclude;
    settings.expires_in = Some(inputs.expires_in);

    let identity: Identity = inputs.credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(inputs.region)
        .name(inputs.service)
        .time(inputs.time)
        .settings(settings)
        .build()
        .map_err(|e| SignError(e.to_string()))?
        .into();

    let mut query = String::new();
    for (name, value) in request.query {
        push_param(&mut query, name, value);
    }
    let uri = if query.is_empty() {
        format!("https://{}{}", request.host, request.path)
    } else {
        format!("https://{}{}?{query}", request.host, request.path)
    };
    let signable = SignableRequest::new(
        request.method,
        uri,
        std::iter::once(("host", request.host)),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| SignError(e.to_string()))?;
    let (instructions, _signature) =
        sign(signable, &params).map_err(|e| SignError(e.to_string()))?.into_parts();
    let (_headers, signed_params) = instructions.into_parts();

    // Whatever this aws-sigv4 version returns about the token, it goes out once, last.
    for (name, value) in &signed_params {
        if !name.eq_ignore_ascii_case(SECURITY_TOKEN_PARAM) {
            push_param(&mut query, name, value);
        }
    }
    if let Some(token) = inputs.credentials.session_token() {
        push_param(&mut query, SECURITY_TOKEN_PARAM, token);
    }
    Ok(query)
}

/// The presigned `wss://HOST[:PORT]/mqtt?…` URL of AWS IoT Core's WebSocket endpoint, and the
/// `Host` header to send with it (`host` alone on 443, `host:port` otherwise).
pub fn websocket_url(
    host: &str,
    port: u16,
    inputs: &SigningInputs<'_>,
) -> Result<(String, String), SignError> {
    let host_header = host_header(host, port);
    let request = PresignRequest { method: "GET", host: &host_header, path: MQTT_PATH, query: &[] };
    let query = presign_query(&request, inputs)?;
    Ok((format!("wss://{host_header}{MQTT_PATH}?{query}"), host_header))
}

/// The `Host` header for `host:port`: the host alone on 443 (what IoT Core signs against),
/// IPv6 literals in brackets.
pub fn host_header(host: &str, port: u16) -> String {
    super::host_header(host, port)
}

/// `url` with the values of `X-Amz-Signature` and `X-Amz-Security-Token` replaced by `***`, for
/// debug logs.
pub fn redact(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else { return url.to_owned() };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _))
                if name.eq_ignore_ascii_case(SIGNATURE_PARAM)
                    || name.eq_ignore_ascii_case(SECURITY_TOKEN_PARAM) =>
            {
                format!("{name}=***")
            }
            _ => param.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

/// Appends `name=value` to a query string, both encoded as SigV4 wants (every byte but
/// `A-Z a-z 0-9 - _ . ~` as `%XX`).
fn push_param(query: &mut String, name: &str, value: &str) {
    if !query.is_empty() {
        query.push('&');
    }
    encode(query, name);
    query.push('=');
    encode(query, value);
}

fn encode(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
}
