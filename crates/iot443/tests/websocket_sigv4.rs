#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The SigV4 query signer against AWS's published test vectors (`tests/sigv4-vectors/`), and the
//! IoT form of the presigned URL: the session token exactly once, after the signature, and out
//! of the canonical request; the `Host` value signed as sent.

use aws_credential_types::Credentials;
use iot443::connect::sigv4::{
    self, DEFAULT_EXPIRES_IN, IOT_SERVICE, PresignRequest, SigningInputs, presign_query,
};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn vector(case: &str, file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sigv4-vectors").join(case);
    std::fs::read_to_string(path.join(file)).unwrap()
}

/// `2015-08-30T12:36:00Z` as a `SystemTime`.
fn parse_time(text: &str) -> SystemTime {
    let date = time::Date::from_calendar_date(
        text[0..4].parse().unwrap(),
        time::Month::try_from(text[5..7].parse::<u8>().unwrap()).unwrap(),
        text[8..10].parse().unwrap(),
    )
    .unwrap();
    let clock = time::Time::from_hms(
        text[11..13].parse().unwrap(),
        text[14..16].parse().unwrap(),
        text[17..19].parse().unwrap(),
    )
    .unwrap();
    let at = time::PrimitiveDateTime::new(date, clock).assume_utc();
    UNIX_EPOCH + Duration::from_secs(u64::try_from(at.unix_timestamp()).unwrap())
}

/// `name=value` pairs of an encoded query, in order.
fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// The canonical query string of an encoded query as an IoT verifier rebuilds it: every
/// parameter but the signature and the token, sorted.
fn canonical_query(query: &str) -> String {
    let mut kept: Vec<(String, String)> = pairs(query)
        .into_iter()
        .filter(|(name, _)| name != "X-Amz-Signature" && name != "X-Amz-Security-Token")
        .collect();
    kept.sort();
    kept.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("&")
}

/// Runs one vector through `presign_query`; returns the query it produced.
fn run(case: &str) -> String {
    let context: serde_json::Value = serde_json::from_str(&vector(case, "context.json")).unwrap();
    let request = vector(case, "request.txt");
    let mut lines = request.lines();
    let mut first = lines.next().unwrap().split(' ');
    let method = first.next().unwrap();
    let target = first.next().unwrap();
    let host = lines
        .find_map(|line| line.strip_prefix("Host:"))
        .expect("the vector has a Host header")
        .trim();
    let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let query: Vec<(&str, &str)> = if raw_query.is_empty() {
        Vec::new()
    } else {
        raw_query.split('&').map(|p| p.split_once('=').unwrap()).collect()
    };

    let creds = &context["credentials"];
    let credentials = Credentials::new(
        creds["access_key_id"].as_str().unwrap(),
        creds["secret_access_key"].as_str().unwrap(),
        creds["token"].as_str().map(str::to_owned),
        None,
        "test vector",
    );
    let inputs = SigningInputs {
        credentials: &credentials,
        region: context["region"].as_str().unwrap(),
        service: context["service"].as_str().unwrap(),
        time: parse_time(context["timestamp"].as_str().unwrap()),
        expires_in: Duration::from_secs(context["expiration_in_seconds"].as_u64().unwrap()),
    };
    presign_query(&PresignRequest { method, host, path, query: &query }, &inputs).unwrap()
}

/// The vector's expected canonical request, signature and signed request, checked against the
/// query produced.
fn check(case: &str, produced: &str) {
    let params = pairs(produced);
    let signature = &params.iter().find(|(n, _)| n == "X-Amz-Signature").unwrap().1;
    assert_eq!(signature, vector(case, "query-signature.txt").trim(), "{case}: signature");

    // The canonical request rebuilt from what we send is the vector's: X-Amz-Expires in it
    // (aws-sigv4 always adds one), the token out of it.
    let creq = vector(case, "query-canonical-request.txt");
    let expected_query = creq.lines().nth(2).unwrap();
    assert_eq!(canonical_query(produced), expected_query, "{case}: canonical query");

    // Same parameters as the vector's signed request (the order may differ).
    let signed = vector(case, "query-signed-request.txt");
    let target = signed.lines().next().unwrap().split(' ').nth(1).unwrap();
    let mut expected = pairs(target.split_once('?').unwrap().1);
    let mut ours = params.clone();
    expected.sort();
    ours.sort();
    assert_eq!(ours, expected, "{case}: parameters of the signed request");
}

#[test]
fn get_vanilla_query_order_key_case_signs_as_aws_publishes() {
    let case = "get-vanilla-query-order-key-case";
    let produced = run(case);
    check(case, &produced);
    assert_eq!(
        vector(case, "query-signature.txt").trim(),
        "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5"
    );
    assert!(
        produced.starts_with("Param2=value2&Param1=value1&"),
        "own parameters first: {produced}"
    );
    assert!(produced.contains("X-Amz-Expires=3600"), "{produced}");
    assert!(!produced.contains("X-Amz-Security-Token"), "no token without one: {produced}");
}

#[test]
fn post_sts_header_after_leaves_the_token_out_of_the_signature_and_appends_it_once() {
    let case = "post-sts-header-after";
    let produced = run(case);
    check(case, &produced);
    assert_eq!(
        vector(case, "query-signature.txt").trim(),
        "2ce6e6d2e0cf2f9d1b55fafec88cd20574c31dc2e7631979f71ba2310083e95b"
    );
    let params = pairs(&produced);
    let tokens = params.iter().filter(|(n, _)| n == "X-Amz-Security-Token").count();
    assert_eq!(tokens, 1, "the token exactly once: {produced}");
    let position = |name: &str| params.iter().position(|(n, _)| n == name).unwrap();
    assert!(
        position("X-Amz-Security-Token") > position("X-Amz-Signature"),
        "token after the signature"
    );
    assert_eq!(position("X-Amz-Security-Token"), params.len() - 1, "the token last");
}

fn iot_inputs(credentials: &Credentials) -> SigningInputs<'_> {
    SigningInputs {
        credentials,
        region: "eu-west-1",
        service: IOT_SERVICE,
        time: parse_time("2015-08-30T12:36:00Z"),
        expires_in: DEFAULT_EXPIRES_IN,
    }
}

#[test]
fn the_iot_url_signs_get_mqtt_for_iotdevicegateway_with_the_host_header_as_sent() {
    let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
    let host = "abc123-ats.iot.eu-west-1.amazonaws.com";
    let (url, host_header) = sigv4::websocket_url(host, 443, &iot_inputs(&credentials)).unwrap();
    assert_eq!(host_header, host, "no port on 443");
    let query = url.strip_prefix(&format!("wss://{host}/mqtt?")).expect("wss://host/mqtt?…");
    assert!(
        query.contains(
            "X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Feu-west-1%2Fiotdevicegateway%2Faws4_request"
        ),
        "{query}"
    );
    assert!(query.contains("X-Amz-SignedHeaders=host&"), "{query}");
    assert!(query.contains("X-Amz-Expires=86400"), "{query}");
    assert!(!query.contains("X-Amz-Security-Token"), "{query}");

    let (other_port, header) = sigv4::websocket_url(host, 8443, &iot_inputs(&credentials)).unwrap();
    assert_eq!(header, format!("{host}:8443"));
    assert!(other_port.starts_with(&format!("wss://{host}:8443/mqtt?")));
    let signature = |url: &str| {
        pairs(url.split_once('?').unwrap().1).into_iter().find(|(n, _)| n == "X-Amz-Signature")
    };
    assert_ne!(signature(&url), signature(&other_port), "the host header is signed");
}

#[test]
fn with_a_session_token_the_iot_url_carries_it_once_encoded_and_redact_hides_it() {
    let token = "FwoGZXIvYXdzE+/token==";
    let credentials = Credentials::new("AKIDEXAMPLE", "secret", Some(token.to_owned()), None, "t");
    let without = Credentials::new("AKIDEXAMPLE", "secret", None, None, "t");
    let host = "abc123-ats.iot.eu-west-1.amazonaws.com";
    let (url, _) = sigv4::websocket_url(host, 443, &iot_inputs(&credentials)).unwrap();
    let (url_without, _) = sigv4::websocket_url(host, 443, &iot_inputs(&without)).unwrap();
    assert_eq!(url.matches("X-Amz-Security-Token=").count(), 1, "{url}");
    assert!(url.ends_with("&X-Amz-Security-Token=FwoGZXIvYXdzE%2B%2Ftoken%3D%3D"), "{url}");
    // The token is not signed: the signature is the same with and without it.
    let signature = |url: &str| url.split("X-Amz-Signature=").nth(1).unwrap()[..64].to_owned();
    assert_eq!(signature(&url), signature(&url_without));

    let redacted = sigv4::redact(&url);
    assert!(!redacted.contains(&signature(&url)), "{redacted}");
    assert!(!redacted.contains("FwoGZXIvYXdzE"), "{redacted}");
    assert!(
        redacted.contains("X-Amz-Signature=***") && redacted.contains("X-Amz-Security-Token=***")
    );
    assert!(redacted.contains("X-Amz-Credential=AKIDEXAMPLE"), "the rest stays: {redacted}");
}
