#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The rejection table of AWS-IOT.md §4.4, end to end between the client and the emulator's
//! shadow service (its real sans-IO broker in memory, in virtual time). For each row: who answers
//! and with what. Where the client can know a request would be refused, the `Shadow` handle
//! refuses it before sending (and the shadow is left as it was); the same request sent as raw
//! bytes gets the service's error document with AWS's code and message.
//!
//! Rows the emulator does not produce, and why, are in the emulator's README: 401 and 403 (a
//! denied publish closes the connection), 404 "Thing not found" (no thing registry), 500. 429
//! needs more than 10 requests in one read of a connection, which the handle's cap of 10 in
//! flight never sends: it is tested on the broker (`broker_shadow.rs`) and with raw bursts there.

mod common;

use common::WAIT;
use common::in_memory::Broker;
use common::scripted::config;
use iot443::shadow::{RequestProblem, ShadowError, ShadowOperation, ShadowUpdate};
use iot443::{Client, QoS};
use serde_json::{Value, json};
use tokio::time::timeout;

/// Publishes `payload` on the raw thing's update topic and returns the error document that comes
/// back on `…/update/rejected`.
async fn raw_rejection(
    client: &Client,
    rejected: &mut iot443::Subscription,
    payload: Vec<u8>,
) -> Value {
    client
        .publish("$aws/things/raw-lamp/shadow/update", QoS::AtLeastOnce, payload)
        .await
        .unwrap()
        .await
        .unwrap();
    let message = timeout(WAIT, rejected.recv()).await.expect("no rejection came").unwrap();
    serde_json::from_slice(&message.payload).unwrap()
}

/// Whether a refusal's problem is the one expected.
type IsExpected = fn(&RequestProblem) -> bool;

fn nested(levels: usize) -> Value {
    (0..levels).fold(json!(1), |inner, _| json!({ "a": inner }))
}

#[tokio::test(start_paused = true)]
async fn every_row_of_the_rejection_table_end_to_end() {
    let broker = Broker::start();
    let (client, _events) = broker.connect(&config("device")).await;
    let mut rejected = client
        .subscribe("$aws/things/raw-lamp/shadow/update/rejected", QoS::AtLeastOnce)
        .await
        .unwrap();
    let shadow = client.shadow("lamp").unwrap();

    // 404, through the handle: get and delete of a shadow that does not exist.
    for (operation, error) in [
        (ShadowOperation::Get, shadow.get().await.unwrap_err()),
        (ShadowOperation::Delete, shadow.delete().await.unwrap_err()),
    ] {
        match &error {
            ShadowError::Rejected { operation: op, code: 404, message, .. } => {
                assert_eq!(*op, operation);
                assert_eq!(message, "No shadow exists with name: 'lamp'");
            }
            other => panic!("expected 404, got {other}"),
        }
        assert_eq!(error.kind().exit_code(), 7, "a rejection maps to exit code 7");
    }
    let created = shadow.update(ShadowUpdate::new().reported(json!({"v": 0}))).await.unwrap();
    assert_eq!(created.version, 1);

    // 409, through the handle: a stale expected version.
    let conflict =
        shadow.update(ShadowUpdate::new().reported(json!({"v": 1})).version(0)).await.unwrap_err();
    assert_eq!(conflict.rejection_code(), Some(409), "{conflict}");
    assert_eq!(conflict.to_string(), "shadow update of lamp rejected: 409 Version conflict");

    // Refused by the handle before sending, with the limit that was hit.
    let long_token = "t".repeat(65);
    let refusals: Vec<(ShadowUpdate, IsExpected)> = vec![
        (ShadowUpdate::new().reported(json!({"v": 2})).client_token(long_token.clone()), |p| {
            matches!(p, RequestProblem::ClientTokenTooLong { len: 65, max: 64 })
        }),
        (ShadowUpdate::new().reported(json!({"big": "x".repeat(8 * 1024)})), |p| {
            matches!(p, RequestProblem::TooLarge { max: 8192, .. })
        }),
        (ShadowUpdate::new().reported(nested(7)), |p| {
            matches!(p, RequestProblem::TooDeep { max: 6 })
        }),
        (ShadowUpdate::new().reported(json!([1])), |p| {
            matches!(p, RequestProblem::NotAnObject { section: "reported" })
        }),
        (ShadowUpdate::new().reported(json!({"list": [1, null]})), |p| {
            matches!(p, RequestProblem::Refused(_))
        }),
    ];
    for (update, expected) in refusals {
        match shadow.update(update).await {
            Err(ShadowError::InvalidRequest { problem, .. }) => {
                assert!(expected(&problem), "unexpected problem: {problem}");
            }
            other => panic!("expected a refusal before sending, got {other:?}"),
        }
    }
    assert_eq!(shadow.get().await.unwrap().version, 1, "nothing refused was sent or applied");

    // The same and the other 400s, 413 and 415 as raw bytes: the service's error documents.
    let big = "x".repeat(8 * 1024);
    let rows: Vec<(Vec<u8>, u64, &str)> = vec![
        (b"{".to_vec(), 400, "Invalid JSON"),
        (br#"{"clientToken":"m"}"#.to_vec(), 400, "Missing required node: state"),
        (br#"{"state":true}"#.to_vec(), 400, "State node must be an object"),
        (br#"{"state":{"desired":[1]}}"#.to_vec(), 400, "Desired node must be an object"),
        (br#"{"state":{"reported":1}}"#.to_vec(), 400, "Reported node must be an object"),
        (br#"{"state":{"reported":{}},"version":"one"}"#.to_vec(), 400, "Invalid version"),
        (
            format!(r#"{{"state":{{"reported":{{}}}},"clientToken":"{long_token}"}}"#).into_bytes(),
            400,
            "Invalid clientToken",
        ),
        (
            json!({"state": {"reported": nested(7)}}).to_string().into_bytes(),
            400,
            "JSON contains too many levels of nesting; maximum is 6",
        ),
        (br#"{"state":{"reported":{"l":[null]}}}"#.to_vec(), 400, "State contains an invalid node"),
        (
            format!(r#"{{"state":{{"reported":{{"big":"{big}"}}}}}}"#).into_bytes(),
            413,
            "The payload exceeds the maximum size allowed",
        ),
        (
            vec![0xff, b'{', b'}'],
            415,
            "Unsupported documented encoding; supported encoding is UTF-8",
        ),
    ];
    for (payload, code, message) in rows {
        let shown = String::from_utf8_lossy(&payload).chars().take(60).collect::<String>();
        let document = raw_rejection(&client, &mut rejected, payload).await;
        assert_eq!(document["code"], code, "{shown}: {document}");
        assert_eq!(document["message"], message, "{shown}: {document}");
        let stamp = document["timestamp"].as_u64().unwrap_or_default();
        assert!(stamp > 1_700_000_000, "a wall-clock timestamp in unix seconds: {document}");
    }
    client.disconnect().await.unwrap();
}
