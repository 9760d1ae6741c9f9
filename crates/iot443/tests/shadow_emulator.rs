#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The shadow API end to end against the emulator's shadow service (its real sans-IO broker in
//! memory, in virtual time): a get of a new shadow is 404, an update creates it, a desired
//! change arrives as a delta, named shadows are their own documents, a stale version is 409.

mod common;

use common::WAIT;
use common::in_memory::Broker;
use common::scripted::config;
use iot443::ErrorKind;
use iot443::shadow::{ShadowError, ShadowOperation, ShadowUpdate};
use serde_json::json;
use tokio::time::timeout;

#[tokio::test(start_paused = true)]
async fn get_update_delta_named_shadow_and_conflict() {
    let broker = Broker::start();
    let (client, _events) = broker.connect(&config("device")).await;
    let shadow = client.shadow("lamp").unwrap();

    let missing = shadow.get().await.unwrap_err();
    assert_eq!(missing.rejection_code(), Some(404), "{missing}");
    assert_eq!(missing.kind(), ErrorKind::Rejected);
    assert!(matches!(missing, ShadowError::Rejected { operation: ShadowOperation::Get, .. }));

    let accepted = shadow.update(ShadowUpdate::new().reported(json!({"on": false}))).await.unwrap();
    assert_eq!(accepted.version, 1);
    assert_eq!(accepted.state.reported, Some(json!({"on": false})));

    let mut deltas = shadow.deltas().await.unwrap();
    let mut documents = shadow.documents().await.unwrap();
    let accepted = shadow.update(ShadowUpdate::new().desired(json!({"on": true}))).await.unwrap();
    assert_eq!(accepted.version, 2);
    let delta = timeout(WAIT, deltas.recv()).await.unwrap().unwrap();
    assert_eq!((delta.version, delta.state), (2, json!({"on": true})));
    assert_eq!(delta.client_token, accepted.client_token, "the delta names the update");
    let change = timeout(WAIT, documents.recv()).await.unwrap().unwrap();
    assert_eq!(change.previous.map(|previous| previous.version), Some(1));
    assert_eq!(change.current.version, 2);
    assert_eq!(change.current.state.desired, Some(json!({"on": true})));

    let document = shadow.get().await.unwrap();
    assert_eq!(document.version, 2);
    assert_eq!(document.state.desired, Some(json!({"on": true})));
    assert_eq!(document.state.reported, Some(json!({"on": false})));
    assert_eq!(document.state.delta, Some(json!({"on": true})));

    // A named shadow of the same thing is another document.
    let named = client.named_shadow("lamp", "config").unwrap();
    assert_eq!(named.get().await.unwrap_err().rejection_code(), Some(404));
    let accepted = named.update(ShadowUpdate::new().reported(json!({"rate": 5}))).await.unwrap();
    assert_eq!(accepted.version, 1);
    assert_eq!(shadow.get().await.unwrap().version, 2);

    let conflict =
        shadow.update(ShadowUpdate::new().desired(json!({"on": false})).version(1)).await;
    let conflict = conflict.unwrap_err();
    assert_eq!(conflict.to_string(), "shadow update of lamp rejected: 409 Version conflict");

    let deleted = shadow.delete().await.unwrap();
    assert_eq!(deleted.version, 2);
    assert_eq!(shadow.get().await.unwrap_err().rejection_code(), Some(404));
    let again = shadow.delete().await.unwrap_err();
    assert_eq!(again.rejection_code(), Some(404));
    // Created again, the shadow continues the version numbers.
    let recreated = shadow.update(ShadowUpdate::new().reported(json!({"on": true}))).await.unwrap();
    assert_eq!(recreated.version, 3);
}
