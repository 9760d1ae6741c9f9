#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The Device Shadow document rules of AWS-IOT.md §4.2-§4.4, one test per rule, on the answers
//! as bytes: partial updates, `null` deletion, arrays, metadata, versions, delta, delete, limits.

use iot443_proto::aws::shadow::{
    JsonObject, MAX_STATE_BYTES, RejectReason, Shadow, ShadowId, ShadowName, ThingName,
    UpdateRequest,
};
use serde_json::{Value, json};

fn id() -> ShadowId {
    ShadowId::classic(ThingName::new("lamp").unwrap())
}

fn request(payload: Value) -> UpdateRequest {
    UpdateRequest::parse(payload.to_string().as_bytes()).unwrap()
}

fn update(shadow: &mut Shadow, payload: Value, now: u64) -> Result<Value, RejectReason> {
    shadow
        .update(&request(payload), now)
        .map(|answers| serde_json::from_slice(&answers.accepted).unwrap())
        .map_err(|rejection| rejection.reason)
}

fn get(shadow: &Shadow, now: u64) -> Value {
    serde_json::from_slice(&shadow.get(&id(), None, now).unwrap()).unwrap()
}

fn object(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap()
}

#[test]
fn an_update_changes_only_the_fields_it_names() {
    let mut shadow = Shadow::new();
    update(&mut shadow, json!({"state": {"reported": {"a": 1, "b": {"c": 2, "d": 3}}}}), 10)
        .unwrap();
    update(&mut shadow, json!({"state": {"reported": {"b": {"c": 20}}}}), 11).unwrap();
    assert_eq!(shadow.reported(), Some(&object(json!({"a": 1, "b": {"c": 20, "d": 3}}))));
}

#[test]
fn null_deletes_a_field_and_a_whole_section() {
    let mut shadow = Shadow::new();
    update(&mut shadow, json!({"state": {"desired": {"x": 1}, "reported": {"a": 1, "b": 2}}}), 10)
        .unwrap();
    // A field.
    update(&mut shadow, json!({"state": {"reported": {"a": null}}}), 11).unwrap();
    assert_eq!(shadow.reported(), Some(&object(json!({"b": 2}))));
    // A section.
    update(&mut shadow, json!({"state": {"desired": null}}), 12).unwrap();
    assert_eq!(shadow.desired(), None);
    // The whole state set to null deletes nothing, and the update still counts.
    update(&mut shadow, json!({"state": null}), 13).unwrap();
    assert!(shadow.exists());
    assert_eq!((shadow.reported(), shadow.version()), (Some(&object(json!({"b": 2}))), 4));
}

#[test]
fn arrays_are_replaced_whole_and_may_not_hold_null() {
    let mut shadow = Shadow::new();
    update(&mut shadow, json!({"state": {"reported": {"colors": ["RED", "GREEN", "BLUE"]}}}), 10)
        .unwrap();
    update(&mut shadow, json!({"state": {"reported": {"colors": ["RED"]}}}), 11).unwrap();
    assert_eq!(shadow.reported(), Some(&object(json!({"colors": ["RED"]}))));
    let refused =
        UpdateRequest::parse(br#"{"state":{"reported":{"colors":["RED",null]}}}"#).unwrap_err();
    assert_eq!((refused.code(), refused.reason), (400, RejectReason::InvalidNode));
}

#[test]
fn metadata_has_a_timestamp_per_leaf_from_its_last_write() {
    let mut shadow = Shadow::new();
    update(&mut shadow, json!({"state": {"reported": {"a": 1, "n": {"b": true}}}}), 100).unwrap();
    update(&mut shadow, json!({"state": {"reported": {"a": 2}}}), 200).unwrap();
    let document = get(&shadow, 300);
    assert_eq!(
        document["metadata"],
        json!({"reported": {"a": {"timestamp": 200}, "n": {"b": {"timestamp": 100}}}})
    );
    // Each answer carries the time it was made.
    assert_eq!(document["timestamp"], 300);
}

#[test]
fn the_accepted_answer_echoes_the_request_with_the_metadata_of_what_it_named() {
    let mut shadow = Shadow::new();
    update(&mut shadow, json!({"state": {"reported": {"a": 1, "b": 2}}}), 5).unwrap();
    let answers = shadow
        .update(&request(json!({"state": {"reported": {"a": null}}, "clientToken": "t"})), 6)
        .unwrap();
    assert_eq!(
        answers.accepted,
        br#"{"state":{"reported":{"a":null}},"metadata":{"reported":{"a":{"timestamp":6}}},"version":2,"timestamp":6,"clientToken":"t"}"#
    );
}

#[test]
fn version_rises_by_one_and_a_stale_version_is_a_conflict_that_changes_nothing() {
    let mut shadow = Shadow::new();
    assert_eq!(
        update(&mut shadow, json!({"state": {"reported": {"a": 1}}, "version": 0}), 1).unwrap()["version"],
        1
    );
    assert_eq!(
        update(&mut shadow, json!({"state": {"reported": {"a": 2}}}), 2).unwrap()["version"],
        2
    );
    let before = shadow.clone();
    assert_eq!(
        update(&mut shadow, json!({"state": {"reported": {"a": 3}}, "version": 1}), 3),
        Err(RejectReason::VersionConflict)
    );
    assert_eq!(shadow, before);
    assert_eq!(
        update(&mut shadow, json!({"state": {"reported": {"a": 3}}, "version": 2}), 4).unwrap()["version"],
        3
    );
}

#[test]
fn delta_includes_desired_fields_missing_from_reported_and_only_those_that_differ() {
    let mut shadow = Shadow::new();
    update(
        &mut shadow,
        json!({"state": {"desired": {"on": true, "level": 3, "cfg": {"x": 1, "y": 2}}, "reported": {"on": true, "level": 1, "cfg": {"x": 1}, "extra": 9}}}),
        1,
    )
    .unwrap();
    assert_eq!(shadow.delta(), Some(object(json!({"level": 3, "cfg": {"y": 2}}))));
    // A field removed from reported but still desired comes back into the delta.
    update(
        &mut shadow,
        json!({"state": {"reported": {"on": null, "level": 3, "cfg": {"y": 2}}}}),
        2,
    )
    .unwrap();
    assert_eq!(shadow.delta(), Some(object(json!({"on": true}))));
    assert_eq!(get(&shadow, 3)["state"]["delta"], json!({"on": true}));
}

#[test]
fn the_delta_topic_carries_the_requested_desired_paths_that_differ_with_desired_metadata() {
    let mut shadow = Shadow::new();
    update(&mut shadow, json!({"state": {"desired": {"a": 1}}}), 1).unwrap();
    let answers = shadow
        .update(&request(json!({"state": {"desired": {"b": {"c": 2}}}, "clientToken": "k"})), 2)
        .unwrap();
    // `a` still differs too, but this update named only `b`.
    assert_eq!(
        answers.delta.unwrap(),
        br#"{"version":2,"timestamp":2,"state":{"b":{"c":2}},"metadata":{"b":{"c":{"timestamp":2}}},"clientToken":"k"}"#
    );
    // An update of reported alone publishes no delta, even where differences remain.
    let answers = shadow.update(&request(json!({"state": {"reported": {"z": 0}}})), 3).unwrap();
    assert_eq!(answers.delta, None);
    // Nor does a desired update that matches reported.
    let answers = shadow.update(&request(json!({"state": {"desired": {"z": 0}}})), 4).unwrap();
    assert_eq!(answers.delta, None);
}

#[test]
fn documents_carry_previous_and_current() {
    let mut shadow = Shadow::new();
    let first = shadow.update(&request(json!({"state": {"reported": {"a": 1}}})), 1).unwrap();
    // No previous document for a shadow that did not exist.
    assert_eq!(
        first.documents,
        br#"{"current":{"state":{"reported":{"a":1}},"metadata":{"reported":{"a":{"timestamp":1}}},"version":1},"timestamp":1}"#
    );
    let second = shadow
        .update(&request(json!({"state": {"reported": {"a": 2}}, "clientToken": "c"})), 2)
        .unwrap();
    let documents: Value = serde_json::from_slice(&second.documents).unwrap();
    assert_eq!(documents["previous"]["state"], json!({"reported": {"a": 1}}));
    assert_eq!(documents["previous"]["version"], 1);
    assert_eq!(documents["current"]["state"], json!({"reported": {"a": 2}}));
    assert_eq!(
        (documents["current"]["version"].clone(), documents["clientToken"].clone()),
        (json!(2), json!("c"))
    );
}

#[test]
fn get_and_delete_of_a_missing_shadow_are_404_naming_it() {
    let mut shadow = Shadow::new();
    let refused = shadow.get(&id(), None, 1).unwrap_err();
    assert_eq!(
        refused.to_json(Some(1)),
        br#"{"code":404,"message":"No shadow exists with name: 'lamp'","timestamp":1}"#
    );
    let named = ShadowId::named(ThingName::new("lamp").unwrap(), ShadowName::new("cfg").unwrap());
    assert_eq!(
        shadow.delete(&named, None, 1).unwrap_err().reason,
        RejectReason::NoShadow { name: "cfg".into() }
    );
}

#[test]
fn delete_removes_the_state_and_the_version_continues() {
    let mut shadow = Shadow::new();
    update(&mut shadow, json!({"state": {"reported": {"a": 1}}}), 1).unwrap();
    update(&mut shadow, json!({"state": {"reported": {"a": 2}}}), 2).unwrap();
    assert_eq!(shadow.delete(&id(), None, 3).unwrap(), br#"{"version":2,"timestamp":3}"#);
    assert!(!shadow.exists());
    assert!(shadow.get(&id(), None, 4).is_err());
    assert_eq!(
        update(&mut shadow, json!({"state": {"reported": {"b": 1}}}), 5).unwrap()["version"],
        3
    );
    assert_eq!(shadow.reported(), Some(&object(json!({"b": 1}))));
}

#[test]
fn desired_plus_reported_may_take_8_kb_and_not_a_byte_more() {
    // `{"a":"…"}` is 8 bytes around its string; two sections of them.
    let fill = MAX_STATE_BYTES - 16;
    let at_limit = json!({"state": {"desired": {"a": "x".repeat(fill / 2)}, "reported": {"b": "x".repeat(fill - fill / 2)}}});
    let mut shadow = Shadow::new();
    update(&mut shadow, at_limit, 1).unwrap();
    let before = shadow.clone();
    assert_eq!(
        update(
            &mut shadow,
            json!({"state": {"reported": {"b": "x".repeat(fill - fill / 2 + 1)}}}),
            2
        ),
        Err(RejectReason::PayloadTooLarge)
    );
    assert_eq!(shadow, before);
    // Metadata does not count, and shrinking is always allowed.
    assert!(update(&mut shadow, json!({"state": {"reported": {"b": null}}}), 3).is_ok());
}

#[test]
fn bad_requests_are_rejected_with_their_client_token_in_the_error_document() {
    let refused =
        UpdateRequest::parse(br#"{"state":{"desired":7},"clientToken":"abc"}"#).unwrap_err();
    assert_eq!(
        refused.to_json(Some(9)),
        br#"{"code":400,"message":"Desired node must be an object","timestamp":9,"clientToken":"abc"}"#
    );
}
