#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Shadow requests against a scripted endpoint, in virtual time: answers are matched by
//! `clientToken` (others ignored), at most 10 requests of one client are in flight (the 11th
//! waits for a slot), a request without an answer times out and frees its token, rejections
//! become typed errors, bad input is refused before anything is sent, and a request in flight
//! across a reconnect still gets its answer.

mod common;

use bytes::Bytes;
use common::scripted::{Peer, config, connect};
use iot443::shadow::{MAX_IN_FLIGHT, RequestProblem, ShadowError, ShadowOperation, ShadowUpdate};
use iot443::{ErrorKind, QoS};
use iot443_proto::codec::{Packet, Publish, PublishQos};
use iot443_test_support::packets::{puback, publish_fields, suback, topic};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::{Instant, timeout};

/// Grants the next SUBSCRIBE (whatever its filters) and returns its filters.
async fn grant(peer: &mut Peer) -> Vec<String> {
    match peer.expect_not_ping().await {
        Packet::Subscribe(subscribe) => {
            let granted = vec![QoS::AtLeastOnce; subscribe.filters.len()];
            peer.send(&suback(subscribe.packet_id.get(), &granted)).await;
            subscribe.filters.iter().map(|f| f.filter.as_str().to_owned()).collect()
        }
        other => panic!("expected SUBSCRIBE, got {other:?}"),
    }
}

/// Takes the next PUBLISH (a request), acknowledges it, and returns its topic, token and dup.
async fn take_request(peer: &mut Peer) -> (String, String, bool) {
    let packet = peer.expect_not_ping().await;
    let (topic, id, dup, payload) = publish_fields(&packet).expect("a PUBLISH");
    let token = serde_json::from_slice::<Value>(payload).unwrap()["clientToken"]
        .as_str()
        .expect("every request carries a clientToken")
        .to_owned();
    let topic = topic.to_owned();
    peer.send(&puback(id.expect("requests go at QoS 1"))).await;
    (topic, token, dup)
}

/// Publishes `payload` on `topic_name` at QoS 0, as the service answers.
async fn answer(peer: &mut Peer, topic_name: &str, payload: Value) {
    let publish =
        Publish::new(topic(topic_name), PublishQos::AtMostOnce, Bytes::from(payload.to_string()));
    peer.send(&Packet::Publish(publish)).await;
}

fn get_accepted(version: u64, token: &str) -> Value {
    json!({"state":{"reported":{"v":version}},"metadata":{},"version":version,"timestamp":1,"clientToken":token})
}

#[tokio::test(start_paused = true)]
async fn answers_with_other_tokens_are_ignored() {
    let (client, _events, _endpoint, mut peer) = connect(&config("device")).await;
    let shadow = client.shadow("lamp").unwrap();
    let request = tokio::spawn({
        let shadow = shadow.clone();
        async move { shadow.get().await }
    });
    let filters = grant(&mut peer).await;
    assert_eq!(
        filters,
        ["$aws/things/lamp/shadow/get/accepted", "$aws/things/lamp/shadow/get/rejected"]
    );
    let (topic, token, _) = take_request(&mut peer).await;
    assert_eq!(topic, "$aws/things/lamp/shadow/get");
    assert!(token.len() <= 64);
    // Another client's answer, one without a token, one that is not JSON: none is this one's.
    answer(&mut peer, "$aws/things/lamp/shadow/get/accepted", get_accepted(7, "someone-else"))
        .await;
    answer(&mut peer, "$aws/things/lamp/shadow/get/accepted", json!({"version": 8})).await;
    answer(&mut peer, "$aws/things/lamp/shadow/get/rejected", json!({"code": 404, "message": "x"}))
        .await;
    answer(&mut peer, "$aws/things/lamp/shadow/get/accepted", get_accepted(9, &token)).await;
    let document = timeout(Duration::from_secs(5), request).await.unwrap().unwrap().unwrap();
    assert_eq!(document.version, 9);
    assert_eq!(document.client_token.as_deref(), Some(token.as_str()));

    // A second get of the same handle subscribes no more, and gets a new token.
    let request = tokio::spawn(async move { shadow.get().await });
    let (_, second, _) = take_request(&mut peer).await;
    assert_ne!(second, token);
    answer(&mut peer, "$aws/things/lamp/shadow/get/accepted", get_accepted(10, &second)).await;
    assert_eq!(request.await.unwrap().unwrap().version, 10);
}

#[tokio::test(start_paused = true)]
async fn at_most_ten_requests_are_in_flight_per_client_and_the_eleventh_waits() {
    let (client, _events, _endpoint, mut peer) = connect(&config("device")).await;
    // Two handles of one client share the limit.
    // (A timeout longer than the test's waits, so that no slot is freed by one.)
    let long = Duration::from_secs(3600);
    let handles = [
        client.shadow("a").unwrap().with_timeout(long),
        client.named_shadow("a", "b").unwrap().with_timeout(long),
    ];
    let mut requests = Vec::new();
    for n in 0..=MAX_IN_FLIGHT {
        let shadow = handles[n % 2].clone();
        requests.push(tokio::spawn(async move {
            shadow.update(ShadowUpdate::new().reported(json!({"n": n}))).await
        }));
    }
    let mut subscribed = 0;
    let mut received = Vec::new();
    while received.len() < MAX_IN_FLIGHT {
        match peer.expect_not_ping().await {
            Packet::Subscribe(subscribe) => {
                let granted = vec![QoS::AtLeastOnce; subscribe.filters.len()];
                peer.send(&suback(subscribe.packet_id.get(), &granted)).await;
                subscribed += 1;
            }
            packet => {
                let (topic, id, _, payload) = publish_fields(&packet).expect("a PUBLISH");
                peer.send(&puback(id.unwrap())).await;
                let token = serde_json::from_slice::<Value>(payload).unwrap()["clientToken"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                received.push((topic.to_owned(), token));
            }
        }
    }
    assert_eq!(subscribed, 2, "one SUBSCRIBE per handle and operation");
    // The 11th is not sent while ten wait (virtual time: a minute of nothing).
    let nothing = timeout(Duration::from_secs(60), async {
        loop {
            match peer.expect().await {
                Packet::PingReq => peer.send(&Packet::PingResp).await,
                other => return other,
            }
        }
    })
    .await;
    assert!(nothing.is_err(), "the 11th request was sent early: {nothing:?}");
    // One answer frees a slot: the 11th goes out.
    let (first_topic, first_token) = received.remove(0);
    let accepted = first_topic.replace("/update", "/update/accepted");
    answer(
        &mut peer,
        &accepted,
        json!({"state":{},"metadata":{},"version":1,"timestamp":1,"clientToken":first_token}),
    )
    .await;
    let (eleventh_topic, eleventh, _) = take_request(&mut peer).await;
    assert!(received.iter().all(|(_, token)| *token != eleventh));
    received.push((eleventh_topic, eleventh));
    assert_eq!(received.len(), MAX_IN_FLIGHT);
    // Every other request gets its answer.
    for (topic, token) in received {
        let accepted = topic.replace("/update", "/update/accepted");
        answer(
            &mut peer,
            &accepted,
            json!({"state":{},"metadata":{},"version":2,"timestamp":1,"clientToken":token}),
        )
        .await;
    }
    for request in requests {
        timeout(Duration::from_secs(5), request).await.unwrap().unwrap().unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_without_an_answer_times_out_and_a_late_answer_is_ignored() {
    let (client, _events, _endpoint, mut peer) = connect(&config("device")).await;
    let shadow = client.shadow("lamp").unwrap().with_timeout(Duration::from_secs(3));
    let started = Instant::now();
    let request = tokio::spawn({
        let shadow = shadow.clone();
        async move { shadow.delete().await }
    });
    grant(&mut peer).await;
    let (_, token, _) = take_request(&mut peer).await;
    let error = request.await.unwrap().unwrap_err();
    assert!(
        matches!(error, ShadowError::Timeout { operation: ShadowOperation::Delete, after, .. } if after == Duration::from_secs(3)),
        "{error}"
    );
    assert_eq!(error.kind(), ErrorKind::Connection);
    assert!(started.elapsed() >= Duration::from_secs(3), "timed out early (virtual time)");
    // The late answer goes nowhere; the next request gets its own.
    answer(
        &mut peer,
        "$aws/things/lamp/shadow/delete/accepted",
        json!({"version":1,"timestamp":1,"clientToken":token}),
    )
    .await;
    let request = tokio::spawn(async move { shadow.delete().await });
    let (_, next, _) = take_request(&mut peer).await;
    answer(
        &mut peer,
        "$aws/things/lamp/shadow/delete/accepted",
        json!({"version":2,"timestamp":2,"clientToken":next}),
    )
    .await;
    assert_eq!(request.await.unwrap().unwrap().version, 2);
}

#[tokio::test(start_paused = true)]
async fn rejections_become_typed_errors_with_code_and_message() {
    let (client, _events, _endpoint, mut peer) = connect(&config("device")).await;
    let shadow = client.shadow("tls-test").unwrap();
    let request = tokio::spawn({
        let shadow = shadow.clone();
        async move { shadow.update(ShadowUpdate::new().desired(json!({"on": true})).version(3)).await }
    });
    let filters = grant(&mut peer).await;
    assert_eq!(filters[1], "$aws/things/tls-test/shadow/update/rejected");
    let (_, token, _) = take_request(&mut peer).await;
    answer(
        &mut peer,
        "$aws/things/tls-test/shadow/update/rejected",
        json!({"code":409,"message":"Version conflict","timestamp":5,"clientToken":token}),
    )
    .await;
    let error = request.await.unwrap().unwrap_err();
    assert_eq!(error.to_string(), "shadow update of tls-test rejected: 409 Version conflict");
    assert_eq!(
        (error.kind(), error.kind().exit_code(), error.rejection_code()),
        (ErrorKind::Rejected, 7, Some(409))
    );

    // An error document without a code cannot be read: said so, not taken for a success.
    let request =
        tokio::spawn(async move { shadow.update(ShadowUpdate::new().reported(json!({}))).await });
    let (_, token, _) = take_request(&mut peer).await;
    answer(
        &mut peer,
        "$aws/things/tls-test/shadow/update/rejected",
        json!({"message":"?","clientToken":token}),
    )
    .await;
    let error = request.await.unwrap().unwrap_err();
    assert!(matches!(error, ShadowError::UnreadableAnswer { .. }), "{error}");
    assert_eq!(error.kind(), ErrorKind::Protocol);
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_refused_before_anything_is_sent() {
    let (client, _events, _endpoint, mut peer) = connect(&config("device")).await;
    for (thing, name) in [("a/b", None), ("", None), ("ok", Some("no/slash")), ("ok", Some(""))] {
        let handle = match name {
            Some(name) => client.named_shadow(thing, name),
            None => client.shadow(thing),
        };
        assert!(matches!(handle, Err(ShadowError::InvalidName(_))), "{thing} {name:?}");
    }
    assert!(client.shadow(&"t".repeat(129)).is_err());
    let shadow = client.shadow("lamp").unwrap();
    let problem = |update: ShadowUpdate| {
        let shadow = shadow.clone();
        async move {
            match shadow.update(update).await {
                Err(ShadowError::InvalidRequest { problem, .. }) => problem,
                other => panic!("expected a refusal before sending, got {other:?}"),
            }
        }
    };
    let reported = ShadowUpdate::new().reported(json!({"a": 1}));
    assert_eq!(
        problem(reported.clone().client_token("x".repeat(65))).await,
        RequestProblem::ClientTokenTooLong { len: 65, max: 64 }
    );
    assert_eq!(
        problem(ShadowUpdate::new().desired(json!("on"))).await,
        RequestProblem::NotAnObject { section: "desired" }
    );
    assert_eq!(
        problem(ShadowUpdate::new().reported(json!({"a": "x".repeat(8 * 1024)}))).await,
        RequestProblem::TooLarge { size: 8 * 1024 + 8, max: 8 * 1024 }
    );
    assert_eq!(
        problem(ShadowUpdate::new().reported(json!({"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}})))
            .await,
        RequestProblem::TooDeep { max: 6 }
    );
    assert_eq!(problem(ShadowUpdate::new()).await, RequestProblem::NothingToUpdate);
    // Nothing reached the endpoint: the first packet it sees is the SUBSCRIBE of a valid get.
    let request = tokio::spawn(async move { shadow.get().await });
    let filters = grant(&mut peer).await;
    assert_eq!(filters[0], "$aws/things/lamp/shadow/get/accepted");
    let (_, token, _) = take_request(&mut peer).await;
    answer(&mut peer, "$aws/things/lamp/shadow/get/accepted", get_accepted(1, &token)).await;
    assert_eq!(request.await.unwrap().unwrap().version, 1);
}

#[tokio::test(start_paused = true)]
async fn a_request_in_flight_across_a_reconnect_gets_its_answer() {
    let (client, _events, mut endpoint, mut peer) = connect(&config("device")).await;
    let shadow = client.shadow("lamp").unwrap();
    let request = tokio::spawn(async move { shadow.get().await });
    grant(&mut peer).await;
    // The request arrives, but the connection is lost before its PUBACK.
    let packet = peer.expect_not_ping().await;
    assert_eq!(publish_fields(&packet).unwrap().0, "$aws/things/lamp/shadow/get");
    peer.close().await;

    let mut peer = endpoint.accept().await;
    peer.accept_connect().await;
    // The subscriptions come back and the request is sent again (the client re-sends it
    // before it restores the subscriptions); the answer comes once both are there.
    let mut filters = Vec::new();
    let mut request_again = None;
    while filters.is_empty() || request_again.is_none() {
        let packet = peer.expect_not_ping().await;
        match &packet {
            Packet::Subscribe(subscribe) => {
                let granted = vec![QoS::AtLeastOnce; subscribe.filters.len()];
                peer.send(&suback(subscribe.packet_id.get(), &granted)).await;
                filters.extend(subscribe.filters.iter().map(|f| f.filter.as_str().to_owned()));
            }
            _ => {
                let (topic, id, dup, payload) = publish_fields(&packet).expect("a PUBLISH");
                let token = serde_json::from_slice::<Value>(payload).unwrap()["clientToken"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                assert_eq!((topic, dup), ("$aws/things/lamp/shadow/get", true));
                peer.send(&puback(id.unwrap())).await;
                request_again = Some(token);
            }
        }
    }
    assert!(filters.contains(&"$aws/things/lamp/shadow/get/accepted".to_owned()));
    let token = request_again.unwrap();
    answer(&mut peer, "$aws/things/lamp/shadow/get/accepted", get_accepted(4, &token)).await;
    let document = timeout(Duration::from_secs(5), request).await.unwrap().unwrap().unwrap();
    assert_eq!(document.version, 4);
}
