//! Fuzz target `sigv4_presigned`: the emulator's SigV4 verification of a presigned WebSocket
//! upgrade (`iot443_emulator::sigv4`).
//!
//! The input, read as lossy UTF-8, is split at its first two newlines into a query, a `Host`
//! header and a clock (Unix seconds; 2015-08-30 12:36:00 UTC when it does not parse). It checks
//! that verifying any query never panics; that a query `presign` builds for the same host and
//! clock verifies; and that changing one character of that query's signature makes it fail.
#![no_main]

use iot443_emulator::sigv4::{
    AwsCredentials, SERVICE_IOT_DEVICE_GATEWAY, SignedRequest, VerifyRules, amz_date, presign,
    verify_presigned,
};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

/// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
const DEFAULT_NOW: i64 = 1_440_938_160;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let query = parts.next().unwrap_or_default();
    let host = parts.next().unwrap_or("localhost");
    let now = parts
        .next()
        .and_then(|clock| clock.trim().parse::<i64>().ok())
        .filter(|clock| (0..=253_402_300_799).contains(clock))
        .unwrap_or(DEFAULT_NOW);

    let credentials = AwsCredentials {
        access_key_id: "AKIDEXAMPLE".to_owned(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
    };
    let services = [SERVICE_IOT_DEVICE_GATEWAY];
    let rules =
        VerifyRules { region: "us-east-1", services: &services, window: Duration::from_secs(300) };
    let headers = [("host", host)];
    let request = SignedRequest { method: "GET", path: "/mqtt", query, headers: &headers };
    // Any query: an answer, never a panic.
    let _ = verify_presigned(&request, &rules, &credentials, now);

    // A query signed for this host and time verifies; one changed signature character does not.
    if host.is_empty() || host.chars().any(|c| c.is_control()) {
        return;
    }
    let signed = presign(
        &credentials,
        "us-east-1",
        SERVICE_IOT_DEVICE_GATEWAY,
        host,
        &amz_date(now),
        None,
        None,
    );
    let request = SignedRequest { method: "GET", path: "/mqtt", query: &signed, headers: &headers };
    assert!(
        verify_presigned(&request, &rules, &credentials, now).is_ok(),
        "a presigned query must verify: {signed}"
    );
    let Some(position) = signed.rfind("X-Amz-Signature=").map(|at| at + 16) else { return };
    let mut tampered = signed.clone().into_bytes();
    let Some(digit) = tampered.get_mut(position + data.len() % 64) else { return };
    *digit = if *digit == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap_or_default();
    let request =
        SignedRequest { method: "GET", path: "/mqtt", query: &tampered, headers: &headers };
    assert!(
        verify_presigned(&request, &rules, &credentials, now).is_err(),
        "a changed signature must not verify: {tampered}"
    );
});
