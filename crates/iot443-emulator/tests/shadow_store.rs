//! Shadows kept in the emulator's folder: they survive a restart, and the cloud side
//! (`cloud_request`, behind `iot443 emulator shadow`) reaches a running emulator or, when none
//! runs, the store itself.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use iot443_emulator::server::{Emulator, EmulatorOptions, cloud_request};
use iot443_proto::aws::shadow::{ShadowId, ShadowName, ShadowOperation, ThingName};
use serde_json::Value;
use std::path::PathBuf;

fn options(dir: &std::path::Path) -> EmulatorOptions {
    let mut options = EmulatorOptions::new(dir);
    options.alpn_port = 0;
    options.mqtts_port = None;
    options.https_port = None;
    options
}

async fn cloud(
    dir: PathBuf,
    id: ShadowId,
    operation: ShadowOperation,
    payload: &'static str,
) -> Result<Value, Value> {
    tokio::task::spawn_blocking(move || {
        match cloud_request(&dir, &id, operation, payload.as_bytes()).unwrap() {
            Ok(document) => Ok(serde_json::from_slice(&document).unwrap()),
            Err(document) => Err(serde_json::from_slice(&document).unwrap()),
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadows_survive_a_restart_and_the_cloud_side_reaches_the_running_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let lamp = ShadowId::classic(ThingName::new("lamp").unwrap());
    let named =
        ShadowId::named(ThingName::new("lamp").unwrap(), ShadowName::new("config").unwrap());
    let path = dir.path().to_path_buf();

    let emulator = Emulator::start(options(dir.path())).await.unwrap();
    let accepted = cloud(
        path.clone(),
        lamp.clone(),
        ShadowOperation::Update,
        r#"{"state":{"reported":{"on":true}}}"#,
    )
    .await
    .unwrap();
    assert_eq!(accepted["version"], 1);
    cloud(
        path.clone(),
        lamp.clone(),
        ShadowOperation::Update,
        r#"{"state":{"desired":{"on":false}}}"#,
    )
    .await
    .unwrap();
    cloud(path.clone(), named.clone(), ShadowOperation::Update, r#"{"state":{"desired":{"n":1}}}"#)
        .await
        .unwrap();
    cloud(path.clone(), named.clone(), ShadowOperation::Delete, "").await.unwrap();
    let conflict = cloud(
        path.clone(),
        lamp.clone(),
        ShadowOperation::Update,
        r#"{"state":{"reported":{}},"version":9}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(conflict["code"], 409);
    emulator.stop().await;

    let emulator = Emulator::start(options(dir.path())).await.unwrap();
    let got = cloud(path.clone(), lamp.clone(), ShadowOperation::Get, "").await.unwrap();
    assert_eq!(got["version"], 2, "{got}");
    assert_eq!(got["state"]["reported"]["on"], true, "{got}");
    assert_eq!(got["state"]["delta"]["on"], false, "{got}");
    let deleted = cloud(path.clone(), named.clone(), ShadowOperation::Get, "").await.unwrap_err();
    assert_eq!(deleted["code"], 404, "a deleted shadow stays deleted: {deleted}");
    let again = cloud(
        path.clone(),
        named.clone(),
        ShadowOperation::Update,
        r#"{"state":{"desired":{"n":2}}}"#,
    )
    .await
    .unwrap();
    assert_eq!(again["version"], 2, "its version continues: {again}");
    emulator.stop().await;

    // No emulator running: the store itself answers.
    let offline = cloud(path, lamp, ShadowOperation::Get, r#"{"clientToken":"c"}"#).await.unwrap();
    assert_eq!(offline["version"], 2);
    assert_eq!(offline["clientToken"], "c");
}
