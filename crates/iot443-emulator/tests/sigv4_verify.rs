//! SigV4 verification of presigned requests: AWS's published test vectors, a golden IoT
//! WebSocket case, each refusal reason, and a property test over the test signer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;
use std::time::Duration;

use iot443_emulator::sigv4::{
    AwsCredentials, DEFAULT_DATE_WINDOW, SERVICE_IOT_DATA, SERVICE_IOT_DEVICE_GATEWAY,
    SigV4Refusal, SignedRequest, VerifyRules, amz_date, presign, verify_presigned,
};
use proptest::prelude::*;

/// 2015-08-30T12:36:00Z, the test suite's time.
const SUITE_TIME: i64 = 1_440_938_160;

/// Verifies `query-signed-request.txt` of a suite case with its context's credentials.
fn verify_case(case: &str) -> Result<(), SigV4Refusal> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sigv4-vectors").join(case);
    let context: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("context.json")).unwrap()).unwrap();
    let credentials = AwsCredentials {
        access_key_id: context["credentials"]["access_key_id"].as_str().unwrap().into(),
        secret_access_key: context["credentials"]["secret_access_key"].as_str().unwrap().into(),
    };
    let signed = std::fs::read_to_string(dir.join("query-signed-request.txt")).unwrap();
    let mut lines = signed.lines();
    let request_line: Vec<&str> = lines.next().unwrap().split(' ').collect();
    let (method, target) = (request_line[0], request_line[1]);
    let (path, query) = target.split_once('?').unwrap();
    let headers: Vec<(&str, &str)> =
        lines.filter(|l| !l.is_empty()).map(|l| l.split_once(':').unwrap()).collect();
    let request = SignedRequest { method, path, query, headers: &headers };
    let service = context["service"].as_str().unwrap();
    let rules = VerifyRules {
        region: context["region"].as_str().unwrap(),
        services: &[service],
        window: DEFAULT_DATE_WINDOW,
    };
    verify_presigned(&request, &rules, &credentials, SUITE_TIME).map(|_| ())
}

#[test]
fn suite_get_vanilla_query_order_key_case_verifies() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sigv4-vectors/get-vanilla-query-order-key-case/query-signature.txt");
    let expected = "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5";
    assert_eq!(std::fs::read_to_string(dir).unwrap().trim(), expected);
    verify_case("get-vanilla-query-order-key-case").unwrap();
}

#[test]
fn suite_post_sts_header_after_verifies_with_the_unsigned_token() {
    verify_case("post-sts-header-after").unwrap();
}

#[test]
fn suite_case_with_a_signed_token_is_refused_as_iot_core_does() {
    assert_eq!(verify_case("get-vanilla-with-session-token"), Err(SigV4Refusal::BadSignature));
}

const IOT_HOST: &str = "abc123-ats.iot.eu-west-1.amazonaws.com";
/// 2026-12-02T15:00:00Z.
const IOT_TIME: i64 = 1_796_223_600;

fn iot_credentials() -> AwsCredentials {
    AwsCredentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
    }
}

fn iot_rules() -> VerifyRules<'static> {
    VerifyRules {
        region: "eu-west-1",
        services: &[SERVICE_IOT_DEVICE_GATEWAY, SERVICE_IOT_DATA],
        window: DEFAULT_DATE_WINDOW,
    }
}

fn verify_iot(query: &str, host: &str, now: i64) -> Result<(), SigV4Refusal> {
    let headers = [("Host", host), ("Sec-WebSocket-Protocol", "mqtt")];
    let request = SignedRequest { method: "GET", path: "/mqtt", query, headers: &headers };
    verify_presigned(&request, &iot_rules(), &iot_credentials(), now).map(|_| ())
}

/// Computed independently (Python `hmac`/`hashlib`) with the algorithm of the AWS JavaScript
/// sample: four parameters, no `X-Amz-Expires`, host header only, empty payload.
const GOLDEN_IOT_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261202%2Feu-west-1%2Fiotdevicegateway%2Faws4_request&X-Amz-Date=20261202T150000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=1fe85f4b7bc723ad23df93cb0718d16c8c34ca1b20b9f1a7510a03b6a94e9a6a";

#[test]
fn golden_iot_websocket_url_verifies_and_the_test_signer_builds_it() {
    verify_iot(GOLDEN_IOT_QUERY, IOT_HOST, IOT_TIME).unwrap();
    let built = presign(
        &iot_credentials(),
        "eu-west-1",
        SERVICE_IOT_DEVICE_GATEWAY,
        IOT_HOST,
        &amz_date(IOT_TIME),
        None,
        None,
    );
    assert_eq!(built, GOLDEN_IOT_QUERY);
}

#[test]
fn golden_iot_url_with_a_token_anywhere_still_verifies() {
    let after = format!("{GOLDEN_IOT_QUERY}&X-Amz-Security-Token=FQoG%2Fabc%3D%3D");
    verify_iot(&after, IOT_HOST, IOT_TIME).unwrap();
    let (head, signature) = GOLDEN_IOT_QUERY.rsplit_once('&').unwrap();
    let before = format!("X-Amz-Security-Token=tok&{signature}&{head}");
    verify_iot(&before, IOT_HOST, IOT_TIME).unwrap();
}

#[test]
fn host_header_is_taken_as_received() {
    let with_port = format!("{IOT_HOST}:443");
    assert_eq!(verify_iot(GOLDEN_IOT_QUERY, &with_port, IOT_TIME), Err(SigV4Refusal::BadSignature));
    let signed_with_port = presign(
        &iot_credentials(),
        "eu-west-1",
        SERVICE_IOT_DEVICE_GATEWAY,
        &with_port,
        &amz_date(IOT_TIME),
        None,
        None,
    );
    verify_iot(&signed_with_port, &with_port, IOT_TIME).unwrap();
}

fn signed(region: &str, service: &str, at: i64, expires: Option<u32>) -> String {
    presign(&iot_credentials(), region, service, IOT_HOST, &amz_date(at), expires, None)
}

#[test]
fn every_refusal_reason() {
    let at = IOT_TIME;
    let query = signed("eu-west-1", "iotdata", at, Some(3600));
    verify_iot(&query, IOT_HOST, at).unwrap();

    let query = signed("eu-west-1", "s3", at, None);
    assert!(matches!(
        verify_iot(&query, IOT_HOST, at),
        Err(SigV4Refusal::WrongService { service, .. }) if service == "s3"
    ));
    let query = signed("us-east-1", SERVICE_IOT_DEVICE_GATEWAY, at, None);
    assert!(matches!(
        verify_iot(&query, IOT_HOST, at),
        Err(SigV4Refusal::WrongRegion { region, expected }) if region == "us-east-1" && expected == "eu-west-1"
    ));
    let query = signed("eu-west-1", SERVICE_IOT_DEVICE_GATEWAY, at, None);
    let late = verify_iot(&query, IOT_HOST, at + 600).unwrap_err();
    assert_eq!(
        late,
        SigV4Refusal::DateOutsideWindow { off_by_secs: -600, window: DEFAULT_DATE_WINDOW }
    );
    assert!(late.to_string().contains("600 s behind"), "{late}");
    let early = verify_iot(&query, IOT_HOST, at - 3600).unwrap_err();
    assert!(early.to_string().contains("3600 s ahead of"), "{early}");
    verify_iot(&query, IOT_HOST, at + 299).unwrap();

    let query = signed("eu-west-1", SERVICE_IOT_DEVICE_GATEWAY, at, Some(60));
    assert_eq!(
        verify_iot(&query, IOT_HOST, at + 90),
        Err(SigV4Refusal::Expired { expired_for_secs: 30 })
    );
    // X-Amz-Expires does not extend the window.
    let query = signed("eu-west-1", SERVICE_IOT_DEVICE_GATEWAY, at, Some(86_400));
    assert!(matches!(
        verify_iot(&query, IOT_HOST, at + 3600),
        Err(SigV4Refusal::DateOutsideWindow { .. })
    ));

    let other_key = query.replace("AKIAIOSFODNN7EXAMPLE", "AKIAOTHERKEY00000000");
    assert!(matches!(
        verify_iot(&other_key, IOT_HOST, at),
        Err(SigV4Refusal::UnknownAccessKey { access_key_id }) if access_key_id == "AKIAOTHERKEY00000000"
    ));
}

#[test]
fn malformed_parameters_are_named() {
    let query = signed("eu-west-1", SERVICE_IOT_DEVICE_GATEWAY, IOT_TIME, None);
    let parameter = |query: &str| match verify_iot(query, IOT_HOST, IOT_TIME) {
        Err(SigV4Refusal::Malformed { parameter, .. }) => parameter,
        other => panic!("expected Malformed, got {other:?}"),
    };
    assert_eq!(parameter(""), "X-Amz-Algorithm");
    assert_eq!(parameter(&query.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1")), "X-Amz-Algorithm");
    assert_eq!(parameter(&query.replace("X-Amz-Date=", "X-Amz-Datum=")), "X-Amz-Date");
    assert_eq!(parameter(&query.replace("20261202T", "20261202X")), "X-Amz-Date");
    assert_eq!(parameter(&query.replace("%2Faws4_request", "%2Faws5_request")), "X-Amz-Credential");
    assert_eq!(parameter(&query.replace("%2F20261202%2F", "%2F20261203%2F")), "X-Amz-Credential");
    assert_eq!(parameter(&format!("{query}&X-Amz-Date=20261202T150000Z")), "X-Amz-Date");
    assert_eq!(
        parameter(&query.replace("SignedHeaders=host", "SignedHeaders=host%3Bx-foo")),
        "X-Amz-SignedHeaders"
    );
    assert_eq!(parameter(&format!("{query}0")), "X-Amz-Signature");
    assert_eq!(parameter(&format!("{query}&a=%zz")), "query");
    assert_eq!(parameter(&format!("{query}&X-Amz-Expires=soon")), "X-Amz-Expires");
}

/// Replaces the byte at `index` of the text of parameter `name` with another of the same class.
fn change_one_byte(query: &str, name: &str, index: usize) -> String {
    let start = query.find(&format!("{name}=")).unwrap() + name.len() + 1;
    let end = query[start..].find('&').map_or(query.len(), |e| start + e);
    let mut bytes = query.as_bytes().to_vec();
    let at = start + index % (end - start);
    bytes[at] = match bytes[at] {
        b'0'..=b'8' => bytes[at] + 1,
        b'9' => b'0',
        b'a'..=b'y' | b'A'..=b'Y' => bytes[at] + 1,
        b'z' => b'a',
        b'Z' => b'A',
        _ => b'x',
    };
    String::from_utf8(bytes).unwrap()
}

proptest! {
    #[test]
    fn signed_requests_verify_and_one_changed_byte_does_not(
        offset in -299i64..299,
        expires in proptest::option::of(300u32..100_000),
        index in 0usize..64,
        token in proptest::option::of("[A-Za-z0-9/+=]{1,40}"),
        target in 0usize..4,
    ) {
        let at = IOT_TIME + offset;
        let query = presign(&iot_credentials(), "eu-west-1", SERVICE_IOT_DEVICE_GATEWAY,
            IOT_HOST, &amz_date(at), expires, token.as_deref());
        prop_assert_eq!(verify_iot(&query, IOT_HOST, IOT_TIME), Ok(()));
        let name = ["X-Amz-Signature", "X-Amz-Date", "X-Amz-Credential", "X-Amz-Credential"][target];
        let changed = match target {
            // The region inside the credential scope.
            2 => query.replace("eu-west-1", "eu-west-2"),
            // The access key id inside the credential scope.
            3 => change_one_byte(&query, name, index % 20),
            _ => change_one_byte(&query, name, index),
        };
        prop_assert!(verify_iot(&changed, IOT_HOST, IOT_TIME).is_err(), "{changed}");
        let mut other_secret = iot_credentials();
        other_secret.secret_access_key.replace_range(0..1, "x");
        let headers = [("host", IOT_HOST)];
        let request = SignedRequest { method: "GET", path: "/mqtt", query: &query, headers: &headers };
        prop_assert_eq!(
            verify_presigned(&request, &iot_rules(), &other_secret, IOT_TIME),
            Err(SigV4Refusal::BadSignature)
        );
    }
}

#[test]
fn window_is_configurable() {
    let query = signed("eu-west-1", SERVICE_IOT_DEVICE_GATEWAY, IOT_TIME, None);
    let headers = [("host", IOT_HOST)];
    let request = SignedRequest { method: "GET", path: "/mqtt", query: &query, headers: &headers };
    let rules = VerifyRules { window: Duration::from_secs(3600), ..iot_rules() };
    verify_presigned(&request, &rules, &iot_credentials(), IOT_TIME + 1800).unwrap();
}
