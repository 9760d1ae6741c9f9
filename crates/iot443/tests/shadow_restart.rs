#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Shadows survive a restart of the emulator, as the cloud's do: a device updates its shadow over
//! TLS, the emulator stops and starts again on the same folder, and the device — reconnected on
//! its own — reads the same document and version, and the next update continues the numbering.

mod common;

use common::{TestEmulator, within};
use iot443::Event;
use iot443::shadow::ShadowUpdate;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_state_survives_an_emulator_restart() {
    let emulator = TestEmulator::start().await;
    let (client, mut events) = emulator.connect("shadow-restart").await;
    let shadow = client.shadow("restart-lamp").unwrap();
    let named = client.named_shadow("restart-lamp", "config").unwrap();
    shadow
        .update(ShadowUpdate::new().reported(json!({"on": false, "temperature": 21})))
        .await
        .unwrap();
    shadow.update(ShadowUpdate::new().desired(json!({"on": true}))).await.unwrap();
    named.update(ShadowUpdate::new().reported(json!({"rate": 5}))).await.unwrap();
    named.delete().await.unwrap();

    let emulator = emulator.restart_with(|_| {}).await;
    within("the client reconnects after the restart", async {
        loop {
            if let Some(Event::Connected(_)) = events.recv().await {
                break;
            }
        }
    })
    .await;

    let document = within("the get after the restart", shadow.get()).await.unwrap();
    assert_eq!(document.version, 2);
    assert_eq!(document.state.reported, Some(json!({"on": false, "temperature": 21})));
    assert_eq!(document.state.desired, Some(json!({"on": true})));
    assert_eq!(document.state.delta, Some(json!({"on": true})));
    let deleted = within("the named get", named.get()).await.unwrap_err();
    assert_eq!(deleted.rejection_code(), Some(404), "a deleted shadow stays deleted: {deleted}");
    let again = named.update(ShadowUpdate::new().reported(json!({"rate": 6}))).await.unwrap();
    assert_eq!(again.version, 2, "the version continues after the delete and the restart");
    client.disconnect().await.unwrap();
    drop(emulator);
}
