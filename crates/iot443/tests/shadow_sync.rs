#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! `Shadow::keep_reported_in_sync` against the emulator's shadow service (in memory, virtual
//! time): at start it reports the initial state and applies a pending delta; a delta while
//! connected is applied and reported; a desired change made while the device was away (so its
//! delta never reached it) is found by the get after the reconnect, applied and reported.

mod common;

use common::WAIT;
use common::scripted::config;
use iot443::connect::{Connecting, Connector, Opened};
use iot443::shadow::{ShadowDocument, ShadowUpdate, UpdateAccepted};
use iot443::{Client, ConnectionInfo};
use iot443_emulator::broker::BrokerConfig;
use iot443_emulator::server::InMemoryEmulator;
use iot443_proto::codec::Connect;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, Semaphore};
use tokio::time::timeout;

/// In-memory connections to one emulator, each relayed so that the test can cut it, and each
/// attempt waiting for a permit so that the test decides when the client gets back.
struct Cuttable {
    emulator: Arc<InMemoryEmulator>,
    permits: Arc<Semaphore>,
    cut: Arc<Notify>,
    attempts: Mutex<u32>,
}

impl Connector for Cuttable {
    fn connect(&self, _connect: &Connect) -> Connecting {
        *self.attempts.lock().unwrap() += 1;
        let (emulator, permits, cut) =
            (Arc::clone(&self.emulator), Arc::clone(&self.permits), Arc::clone(&self.cut));
        Box::pin(async move {
            permits.acquire().await.map_err(|_| iot443::ClientError::Closed)?.forget();
            let mut upstream = emulator.connect(Some("device"));
            let (client_end, mut relay) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut relay, &mut upstream) => {}
                    () = cut.notified() => {}
                }
            });
            Ok(Opened::new(client_end, ConnectionInfo::new("in-memory", 443)))
        })
    }
}

async fn report(sync: &mut iot443::shadow::ShadowSync) -> UpdateAccepted {
    timeout(WAIT, sync.next_report()).await.expect("a report in time").unwrap().unwrap()
}

async fn document(shadow: &iot443::shadow::Shadow) -> ShadowDocument {
    shadow.get().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn reported_follows_desired_at_start_on_deltas_and_after_a_reconnect() {
    let emulator = Arc::new(InMemoryEmulator::start(BrokerConfig::default()));
    let app_connector = Cuttable {
        emulator: Arc::clone(&emulator),
        permits: Arc::new(Semaphore::new(1_000)),
        cut: Arc::new(Notify::new()),
        attempts: Mutex::new(0),
    };
    let (app, _app_events) =
        Client::builder(&config("app")).connector(Arc::new(app_connector)).connect().await.unwrap();
    let app_shadow = app.shadow("lamp").unwrap();
    // Something is desired before the device starts.
    app_shadow.update(ShadowUpdate::new().desired(json!({"level": 3}))).await.unwrap();

    let device_connector = Arc::new(Cuttable {
        emulator: Arc::clone(&emulator),
        permits: Arc::new(Semaphore::new(1)),
        cut: Arc::new(Notify::new()),
        attempts: Mutex::new(0),
    });
    let (device, mut events) = Client::builder(&config("device"))
        .connector(Arc::clone(&device_connector) as _)
        .connect()
        .await
        .unwrap();
    assert_eq!(*device.connection_changes().borrow(), 1);
    let applied = Arc::new(Mutex::new(Vec::<Value>::new()));
    let seen = Arc::clone(&applied);
    let shadow = device.shadow("lamp").unwrap();
    let mut sync = shadow
        .keep_reported_in_sync(json!({"level": 0, "on": false}), move |delta| {
            seen.lock().unwrap().push(delta.clone());
            delta.clone()
        })
        .await
        .unwrap();
    // The start: the initial report, then the pending delta applied.
    assert_eq!(applied.lock().unwrap().as_slice(), [json!({"level": 3})]);
    assert_eq!(document(&shadow).await.state.delta, None);

    // A delta while connected.
    app_shadow.update(ShadowUpdate::new().desired(json!({"on": true}))).await.unwrap();
    let accepted = report(&mut sync).await;
    assert_eq!(accepted.state.reported, Some(json!({"on": true})));

    // The device goes away; a desired change meanwhile reaches no one.
    let mut changes = device.connection_changes();
    changes.borrow_and_update();
    device_connector.cut.notify_waiters();
    common::events::next_reconnecting(&mut events).await;
    app_shadow.update(ShadowUpdate::new().desired(json!({"level": 7}))).await.unwrap();
    assert_eq!(document(&app_shadow).await.state.delta, Some(json!({"level": 7})));
    // It comes back: the get after the reconnect finds the delta, which is applied.
    device_connector.permits.add_permits(1);
    timeout(WAIT, changes.changed()).await.unwrap().unwrap();
    assert_eq!(*changes.borrow(), 2);
    let accepted = report(&mut sync).await;
    assert_eq!(accepted.state.reported, Some(json!({"level": 7})));
    assert_eq!(applied.lock().unwrap().last(), Some(&json!({"level": 7})));
    let document = document(&app_shadow).await;
    assert_eq!(document.state.delta, None);
    assert_eq!(document.state.reported, Some(json!({"level": 7, "on": true})));
    assert!(*device_connector.attempts.lock().unwrap() >= 2);
    sync.stop();
}
