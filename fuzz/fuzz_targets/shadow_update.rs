//! Fuzz target `shadow_update`: arbitrary bytes as a shadow update request (and, read as lossy
//! UTF-8, as a shadow topic).
//!
//! It checks that parsing never panics; that every rejection's error document is JSON; that an
//! accepted request written back by `to_json` reads as itself; that applying it to a shadow
//! answers with JSON documents (accepted, delta, documents, get) or rejects without changing the
//! shadow; and that applying it a second time at the same time leaves the same state.
#![no_main]

use iot443_proto::aws::shadow::{Shadow, ShadowId, ShadowTopic, ThingName, UpdateRequest};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes).is_ok()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(topic) = ShadowTopic::parse(&text) {
        assert_eq!(topic.to_string(), text, "a parsed shadow topic prints as itself");
    }

    let request = match UpdateRequest::parse(data) {
        Ok(request) => request,
        Err(rejection) => {
            assert!(is_json(&rejection.to_json(Some(1))));
            return;
        }
    };
    assert_eq!(UpdateRequest::parse(&request.to_json()).as_ref(), Ok(&request));

    // A shadow with some state for the request to collide with.
    let mut shadow = Shadow::new();
    let seed = UpdateRequest::parse(br#"{"state":{"desired":{"a":1,"b":{"c":[1,2]}},"reported":{"a":2,"d":"x"}}}"#)
        .expect("the seed request is valid");
    shadow.update(&seed, 1).expect("the seed request applies");
    let id = ShadowId::classic(ThingName::new("fuzz").expect("valid thing name"));

    let before = shadow.clone();
    match shadow.update(&request, 2) {
        Ok(answers) => {
            assert!(is_json(&answers.accepted));
            assert!(is_json(&answers.documents));
            assert!(answers.delta.as_deref().is_none_or(is_json));
            assert!(is_json(&shadow.get(&id, None, 3).expect("an updated shadow exists")));
            let once = (shadow.desired().cloned(), shadow.reported().cloned());
            let mut again = request.clone();
            again.version = None;
            shadow.update(&again, 2).expect("an accepted update applies again");
            assert_eq!(once, (shadow.desired().cloned(), shadow.reported().cloned()), "idempotent");
        }
        Err(rejection) => {
            assert_eq!(shadow, before, "a rejected update changes nothing");
            assert!(is_json(&rejection.to_json(None)));
        }
    }
});
