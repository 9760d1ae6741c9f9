#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Property tests for the Device Shadow document: a delta applied to reported leaves no delta, an
//! update is idempotent, `null` removes, the size and depth limits hold exactly at the limit, and
//! request parsing never panics and round-trips.
//!
//! The number of cases is 256 locally and 10,000 when `CI=true`.

use iot443_proto::aws::shadow::{
    ClientToken, JsonObject, MAX_DEPTH, MAX_STATE_BYTES, RejectReason, SectionUpdate, Shadow,
    ShadowId, ThingName, UpdateRequest,
};
use iot443_test_support::proptest_cases;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Scalars and arrays of scalars; `null` only when `nulls` (a deletion in a patch).
fn leaf(nulls: bool) -> BoxedStrategy<Value> {
    let scalar = prop_oneof![
        any::<bool>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        "[xy]{0,2}".prop_map(Value::from),
    ];
    let array = prop::collection::vec(scalar.clone(), 0..3).prop_map(Value::from);
    if nulls {
        prop_oneof![1 => Just(Value::Null), 3 => scalar, 1 => array].boxed()
    } else {
        prop_oneof![3 => scalar, 1 => array].boxed()
    }
}

/// An object of up to 3 levels with few distinct keys, so that updates collide with the state.
fn object(nulls: bool) -> BoxedStrategy<JsonObject> {
    let value = leaf(nulls).prop_recursive(2, 16, 3, |inner| {
        prop::collection::btree_map("[a-c]", inner, 0..3)
            .prop_map(|members| Value::Object(members.into_iter().collect()))
    });
    prop::collection::btree_map("[a-d]", value, 0..4)
        .prop_map(|members| members.into_iter().collect())
        .boxed()
}

fn section(nulls: bool) -> impl Strategy<Value = SectionUpdate> {
    prop_oneof![
        1 => Just(SectionUpdate::Unchanged),
        1 => Just(SectionUpdate::Remove),
        4 => object(nulls).prop_map(SectionUpdate::Merge),
    ]
}

fn update_request() -> impl Strategy<Value = UpdateRequest> {
    (section(true), section(true), prop::option::of(0u64..3), prop::option::of("[a-z0-9]{0,64}"))
        .prop_map(|(desired, reported, version, token)| UpdateRequest {
            desired,
            reported,
            version,
            client_token: token.map(|token| ClientToken::new(token).unwrap()),
        })
}

fn merge(desired: SectionUpdate, reported: SectionUpdate) -> UpdateRequest {
    UpdateRequest { desired, reported, ..UpdateRequest::default() }
}

/// A shadow holding `desired` and `reported`.
fn shadow_with(desired: JsonObject, reported: JsonObject) -> Shadow {
    let mut shadow = Shadow::new();
    shadow
        .update(&merge(SectionUpdate::Merge(desired), SectionUpdate::Merge(reported)), 1)
        .unwrap();
    shadow
}

/// `{"k": …}` or `[…]` wrapped `levels - 1` times around 1, inside a section object: depth `levels`.
fn nested(levels: usize, arrays: &[bool]) -> JsonObject {
    let mut value = Value::from(1);
    for level in 1..levels {
        value = if arrays.get(level).copied().unwrap_or(false) {
            Value::Array(vec![value])
        } else {
            Value::Object(Map::from_iter([("k".to_string(), value)]))
        };
    }
    Map::from_iter([("top".to_string(), value)])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases()))]

    /// Reporting exactly the delta settles the shadow: no delta is left.
    #[test]
    fn a_delta_applied_to_reported_leaves_no_delta(desired in object(false), reported in object(false)) {
        let mut shadow = shadow_with(desired, reported);
        if let Some(delta) = shadow.delta() {
            shadow.update(&merge(SectionUpdate::Unchanged, SectionUpdate::Merge(delta)), 2).unwrap();
        }
        prop_assert_eq!(shadow.delta(), None);
    }

    /// The same update applied twice (at the same time) leaves the same document as applying it once.
    #[test]
    fn an_update_is_idempotent(desired in object(false), reported in object(false), mut request in update_request()) {
        request.version = None;
        let mut shadow = shadow_with(desired, reported);
        let id = ShadowId::classic(ThingName::new("t").unwrap());
        shadow.update(&request, 5).unwrap();
        let once = (shadow.desired().cloned(), shadow.reported().cloned(), shadow.delta());
        let once_doc: Value = serde_json::from_slice(&shadow.get(&id, None, 6).unwrap()).unwrap();
        shadow.update(&request, 5).unwrap();
        let twice_doc: Value = serde_json::from_slice(&shadow.get(&id, None, 6).unwrap()).unwrap();
        prop_assert_eq!(once, (shadow.desired().cloned(), shadow.reported().cloned(), shadow.delta()));
        prop_assert_eq!(&once_doc["state"], &twice_doc["state"]);
        prop_assert_eq!(&once_doc["metadata"], &twice_doc["metadata"]);
    }

    /// Setting a present member (at the top or one level down) to `null` removes it and nothing else.
    #[test]
    fn null_removes(mut reported in object(false), anchor in leaf(false), pick in any::<prop::sample::Index>()) {
        // One member that is never an empty object, so that something is stored.
        reported.insert("e".into(), anchor);
        let mut shadow = shadow_with(JsonObject::new(), reported);
        // What was stored: the generated object without its empty objects.
        let reported = shadow.reported().cloned().unwrap_or_default();
        let (key, value) = reported.iter().nth(pick.index(reported.len())).map(|(k, v)| (k.clone(), v.clone())).unwrap();
        let (patch, expected) = match value.as_object().and_then(|inner| inner.keys().next().cloned()) {
            Some(inner_key) => {
                let mut expected = reported.clone();
                let inner = expected.get_mut(&key).and_then(Value::as_object_mut).unwrap();
                inner.remove(&inner_key);
                if inner.is_empty() {
                    expected.remove(&key);
                }
                let patch = Map::from_iter([(key, Value::Object(Map::from_iter([(inner_key, Value::Null)])))]);
                (patch, expected)
            }
            None => {
                let mut expected = reported.clone();
                expected.remove(&key);
                (Map::from_iter([(key, Value::Null)]), expected)
            }
        };
        shadow.update(&merge(SectionUpdate::Unchanged, SectionUpdate::Merge(patch)), 2).unwrap();
        prop_assert_eq!(shadow.reported().cloned().unwrap_or_default(), expected);
    }

    /// Desired plus reported of exactly 8,192 bytes is accepted, split any way; one byte more is 413.
    #[test]
    fn size_is_enforced_exactly_at_the_limit(split in 0usize..=(MAX_STATE_BYTES - 16), extra_on_desired in any::<bool>()) {
        let fill = MAX_STATE_BYTES - 16; // `{"a":""}` and `{"b":""}` take 8 bytes each
        let sections = |a: usize, b: usize| merge(
            SectionUpdate::Merge(Map::from_iter([("a".to_string(), Value::from("x".repeat(a)))])),
            SectionUpdate::Merge(Map::from_iter([("b".to_string(), Value::from("x".repeat(b)))])),
        );
        prop_assert!(Shadow::new().update(&sections(split, fill - split), 1).is_ok());
        let over = if extra_on_desired { sections(split + 1, fill - split) } else { sections(split, fill - split + 1) };
        prop_assert_eq!(Shadow::new().update(&over, 1).unwrap_err().reason, RejectReason::PayloadTooLarge);
    }

    /// A section nested `levels` deep (objects or arrays) is accepted exactly when `levels <= 6`,
    /// parsed or built.
    #[test]
    fn depth_is_enforced_exactly_at_the_limit(levels in 1usize..=MAX_DEPTH + 3, arrays in prop::collection::vec(any::<bool>(), MAX_DEPTH + 3)) {
        let desired = nested(levels, &arrays);
        let request = merge(SectionUpdate::Merge(desired.clone()), SectionUpdate::Unchanged);
        let parsed = UpdateRequest::parse(&request.to_json());
        let applied = Shadow::new().update(&request, 1);
        if levels <= MAX_DEPTH {
            prop_assert!(parsed.is_ok() && applied.is_ok());
        } else {
            prop_assert_eq!(parsed.unwrap_err().reason, RejectReason::TooDeep);
            prop_assert_eq!(applied.unwrap_err().reason, RejectReason::TooDeep);
        }
    }

    /// A request written by `to_json` reads back as itself.
    #[test]
    fn update_requests_round_trip(request in update_request()) {
        prop_assert_eq!(UpdateRequest::parse(&request.to_json()), Ok(request));
    }

    /// A shadow written for a store reads back as itself, after any sequence of updates (each
    /// at its own time) and an optional delete.
    #[test]
    fn stored_shadows_read_back_as_themselves(
        requests in prop::collection::vec(update_request(), 1..5),
        delete in any::<bool>(),
    ) {
        let mut shadow = Shadow::new();
        for (at, request) in requests.iter().enumerate() {
            let _ = shadow.update(request, 1_000 + at as u64);
        }
        if delete {
            let id = iot443_proto::aws::shadow::ShadowId::classic(
                iot443_proto::aws::shadow::ThingName::new("t").unwrap(),
            );
            let _ = shadow.delete(&id, None, 2_000);
        }
        prop_assert_eq!(Shadow::from_stored(&shadow.to_stored()), Ok(shadow));
    }

    /// Any bytes: parsing answers or rejects, never panics, and a rejection's document is JSON.
    #[test]
    fn parsing_arbitrary_bytes_never_panics(payload in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Err(rejection) = UpdateRequest::parse(&payload) {
            prop_assert!(serde_json::from_slice::<Value>(&rejection.to_json(Some(1))).is_ok());
        }
    }
}
