//! Callbacks against the emulator: messages and events arrive on the callback thread, a
//! blocking call from a callback refuses instead of deadlocking, and `iot443_publish_async`
//! from a callback works.

use super::support::{FreeOnDrop, Seen, TestEmulator, last_error};
use crate::client::*;
use crate::error::*;
use crate::event::*;
use crate::publish::*;
use crate::subscribe::*;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;

/// What the test's callbacks saw, shared with them through `user_data`.
#[derive(Default)]
struct Observed {
    /// (topic, payload, qos, thread name)
    messages: Seen<(String, Vec<u8>, c_int, String)>,
    /// What the blocking calls made from inside the message callback returned.
    nested_results: Seen<(c_int, String)>,
    /// (kind, port, alpn)
    events: Seen<(iot443_event_kind, u16, Option<String>)>,
    completions: Seen<c_int>,
    client: std::sync::atomic::AtomicPtr<iot443_client>,
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

unsafe extern "C" fn on_message(message: *const iot443_message, user_data: *mut c_void) {
    // SAFETY: `user_data` is the test's `Observed`, alive for the whole test; `message` and
    // what it points to are valid during the call.
    let (observed, message) = unsafe { (&*user_data.cast::<Observed>(), &*message) };
    // SAFETY: as above: `topic_len` bytes at `topic`, `payload_len` at `payload`.
    let (topic, payload) = unsafe {
        (
            std::slice::from_raw_parts(message.topic.cast::<u8>(), message.topic_len),
            std::slice::from_raw_parts(message.payload, message.payload_len),
        )
    };
    let topic = String::from_utf8(topic.to_vec()).unwrap();
    if topic == "ffi/ping" {
        let client = observed.client.load(std::sync::atomic::Ordering::Acquire);
        let reply = c"ffi/pong";
        // SAFETY: `client` is live while the test runs; the strings are NUL-terminated.
        unsafe {
            let rc = iot443_publish(client, reply.as_ptr(), b"x".as_ptr().cast(), 1, 1, 1000);
            observed.nested_results.push((rc, super::support::last_error()));
            let rc = iot443_subscribe(client, reply.as_ptr(), 1, Some(on_message), user_data, 1000);
            observed.nested_results.push((rc, super::support::last_error()));
            let rc = iot443_connect(client, 1000);
            observed.nested_results.push((rc, super::support::last_error()));
            let rc = iot443_publish_async(
                client,
                reply.as_ptr(),
                b"pong".as_ptr().cast(),
                4,
                1,
                Some(on_completion),
                user_data,
            );
            observed.nested_results.push((rc, super::support::last_error()));
        }
    }
    observed.messages.push((topic, payload.to_vec(), message.qos, thread_name()));
}

unsafe extern "C" fn on_completion(result: c_int, error: *const c_char, user_data: *mut c_void) {
    // SAFETY: `user_data` is the test's `Observed`.
    let observed = unsafe { &*user_data.cast::<Observed>() };
    assert_eq!(result == IOT443_OK, error.is_null());
    observed.completions.push(result);
}

unsafe extern "C" fn on_event(event: *const iot443_event, user_data: *mut c_void) {
    // SAFETY: as for `on_message`.
    let (observed, event) = unsafe { (&*user_data.cast::<Observed>(), &*event) };
    let alpn = (!event.alpn.is_null())
        // SAFETY: a NUL-terminated string valid during the call.
        .then(|| unsafe { CStr::from_ptr(event.alpn) }.to_string_lossy().into_owned());
    observed.events.push((event.kind, event.port, alpn));
}

#[test]
fn callbacks_get_messages_and_events_and_may_call_back_into_the_api() {
    let emulator = TestEmulator::start();
    let observed = Box::new(Observed::default());
    let user_data = ptr::from_ref(&*observed).cast_mut().cast::<c_void>();
    let mut client = ptr::null_mut();
    let (ping, pong) = (c"ffi/ping", c"ffi/pong");
    // SAFETY: `client` is live until freed at the end; `observed` outlives it.
    unsafe {
        assert_eq!(iot443_client_new(emulator.config_path().as_ptr(), &mut client), IOT443_OK);
    }
    let owned = FreeOnDrop(client);
    // SAFETY: as above.
    unsafe {
        observed.client.store(client, std::sync::atomic::Ordering::Release);
        assert_eq!(iot443_set_event_callback(client, Some(on_event), user_data), IOT443_OK);
        assert_eq!(iot443_connect(client, 20_000), IOT443_OK, "{}", last_error());
        for filter in [ping, pong] {
            let rc =
                iot443_subscribe(client, filter.as_ptr(), 1, Some(on_message), user_data, 20_000);
            assert_eq!(rc, IOT443_OK, "{}", last_error());
        }
        let rc = iot443_publish(client, ping.as_ptr(), b"ping".as_ptr().cast(), 4, 1, 20_000);
        assert_eq!(rc, IOT443_OK, "{}", last_error());
    }

    let messages = observed
        .messages
        .wait_until("ping and pong", |seen| seen.iter().any(|(topic, ..)| topic == "ffi/pong"));
    let ping_seen = messages.iter().find(|(topic, ..)| topic == "ffi/ping").unwrap();
    assert_eq!((&ping_seen.1[..], ping_seen.2), (&b"ping"[..], 1));
    assert_eq!(ping_seen.3, "iot443-callbacks", "callbacks run on the callback thread");
    let pong_seen = messages.iter().find(|(topic, ..)| topic == "ffi/pong").unwrap();
    assert_eq!(&pong_seen.1[..], b"pong", "only the asynchronous publish was sent");

    let nested = observed.nested_results.wait_until("the nested calls", |seen| seen.len() == 4);
    for (rc, message) in &nested[..3] {
        assert_eq!(*rc, IOT443_ERR_IN_CALLBACK, "{message}");
        assert!(message.contains("from inside an iot443 callback"), "{message}");
    }
    assert_eq!(nested[3].0, IOT443_OK, "publish_async from a callback: {}", nested[3].1);
    assert_eq!(
        observed.completions.wait_until("the completion", |seen| !seen.is_empty()),
        [IOT443_OK]
    );

    let port = emulator.emulator.as_ref().unwrap().alpn_addr.port();
    let events = observed.events.wait_until("connected", |seen| !seen.is_empty());
    assert_eq!(
        events[0],
        (iot443_event_kind::IOT443_EVENT_CONNECTED, port, Some("x-amzn-mqtt-ca".to_owned()))
    );
    // SAFETY: `client` is live; freed once.
    unsafe {
        assert_eq!(iot443_disconnect(client, 20_000), IOT443_OK, "{}", last_error());
        // No waiting: disconnect returns after the disconnected event's callback ran.
        let events = observed.events.wait_until("nothing", |_| true);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[1].0, iot443_event_kind::IOT443_EVENT_DISCONNECTED, "{events:?}");
        assert_eq!(
            iot443_publish(client, ping.as_ptr(), ptr::null(), 0, 0, 1000),
            IOT443_ERR_CLOSED
        );
    }
    drop(owned);
}

#[test]
fn freeing_a_connected_client_from_inside_its_own_callback_does_not_deadlock() {
    let emulator = TestEmulator::start();
    let observed = Box::new(Observed::default());
    let user_data = ptr::from_ref(&*observed).cast_mut().cast::<c_void>();
    let mut client = ptr::null_mut();
    let topic = c"ffi/free";
    unsafe extern "C" fn free_on_message(_: *const iot443_message, user_data: *mut c_void) {
        // SAFETY: `user_data` is the test's `Observed`; the client is freed once, here, after
        // the test's own calls have returned (`nested_results` says so).
        let observed = unsafe { &*user_data.cast::<Observed>() };
        observed.nested_results.wait_until("the publish to return", |seen| !seen.is_empty());
        let client = observed.client.swap(ptr::null_mut(), std::sync::atomic::Ordering::AcqRel);
        // SAFETY: the live client, freed once; no other call on it is running.
        unsafe { iot443_client_free(client) };
        observed.completions.push(IOT443_OK);
    }
    // SAFETY: `client` is live until the callback frees it; the test makes no call on it after
    // saying its publish returned.
    unsafe {
        assert_eq!(iot443_client_new(emulator.config_path().as_ptr(), &mut client), IOT443_OK);
        observed.client.store(client, std::sync::atomic::Ordering::Release);
        assert_eq!(iot443_connect(client, 20_000), IOT443_OK, "{}", last_error());
        let rc =
            iot443_subscribe(client, topic.as_ptr(), 0, Some(free_on_message), user_data, 20_000);
        assert_eq!(rc, IOT443_OK, "{}", last_error());
        let rc = iot443_publish(client, topic.as_ptr(), ptr::null(), 0, 1, 20_000);
        observed.nested_results.push((rc, last_error()));
        assert_eq!(rc, IOT443_OK);
    }
    observed.completions.wait_until("the free from the callback", |seen| !seen.is_empty());
}

/// A gate a callback waits at until the test opens it.
#[derive(Default)]
struct Gate {
    entered: Seen<()>,
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
}

unsafe extern "C" fn block_at_gate(_: *const iot443_message, user_data: *mut c_void) {
    // SAFETY: `user_data` is the test's `Gate`, alive while the client is.
    let gate = unsafe { &*user_data.cast::<Gate>() };
    gate.entered.push(());
    let open = gate.open.lock().unwrap();
    let _open =
        gate.opened.wait_timeout_while(open, super::support::PATIENCE, |open| !*open).unwrap();
}

#[test]
fn a_callback_that_blocks_does_not_stop_the_network_thread() {
    let emulator = TestEmulator::start();
    let gate = Box::new(Gate::default());
    let user_data = ptr::from_ref(&*gate).cast_mut().cast::<c_void>();
    let (blocking, other) = (c"ffi/block", c"ffi/other");
    let mut client = ptr::null_mut();
    // SAFETY: `client` is live until `owned` frees it, before `gate` goes.
    unsafe {
        assert_eq!(iot443_client_new(emulator.config_path().as_ptr(), &mut client), IOT443_OK);
    }
    let owned = FreeOnDrop(client);
    // SAFETY: as above.
    unsafe {
        assert_eq!(iot443_connect(client, 20_000), IOT443_OK, "{}", last_error());
        let rc =
            iot443_subscribe(client, blocking.as_ptr(), 1, Some(block_at_gate), user_data, 20_000);
        assert_eq!(rc, IOT443_OK, "{}", last_error());
        assert_eq!(iot443_publish(client, blocking.as_ptr(), ptr::null(), 0, 1, 20_000), IOT443_OK);
    }
    gate.entered.wait_until("the callback to block", |seen| !seen.is_empty());
    // The callback thread is stuck; the network thread still publishes and gets PUBACKs, and
    // subscribes.
    // SAFETY: as above.
    unsafe {
        for _ in 0..3 {
            let rc = iot443_publish(client, other.as_ptr(), b"x".as_ptr().cast(), 1, 1, 20_000);
            assert_eq!(rc, IOT443_OK, "a publish while a callback blocks: {}", last_error());
        }
        let rc =
            iot443_subscribe(client, other.as_ptr(), 0, Some(block_at_gate), user_data, 20_000);
        assert_eq!(rc, IOT443_OK, "a subscribe while a callback blocks: {}", last_error());
    }
    *gate.open.lock().unwrap() = true;
    gate.opened.notify_all();
    // SAFETY: as above.
    unsafe { assert_eq!(iot443_disconnect(client, 20_000), IOT443_OK, "{}", last_error()) };
    drop(owned);
}

unsafe extern "C" fn count_completion(result: c_int, _: *const c_char, user_data: *mut c_void) {
    // SAFETY: `user_data` is the test's `Observed`.
    let observed = unsafe { &*user_data.cast::<Observed>() };
    observed.completions.push(result);
}

unsafe extern "C" fn publish_when_connected(event: *const iot443_event, user_data: *mut c_void) {
    // SAFETY: as for `on_event`.
    let (observed, event) = unsafe { (&*user_data.cast::<Observed>(), &*event) };
    if event.kind == iot443_event_kind::IOT443_EVENT_CONNECTED {
        let client = observed.client.load(std::sync::atomic::Ordering::Acquire);
        let topic = c"ffi/hello";
        // SAFETY: the live client; a NUL-terminated topic.
        let rc = unsafe {
            iot443_publish_async(
                client,
                topic.as_ptr(),
                ptr::null(),
                0,
                1,
                Some(count_completion),
                user_data,
            )
        };
        observed.nested_results.push((rc, last_error()));
    }
}

#[test]
fn disconnect_returns_after_every_completion_callback_and_the_connected_event_may_publish() {
    let emulator = TestEmulator::start();
    let observed = Box::new(Observed::default());
    let user_data = ptr::from_ref(&*observed).cast_mut().cast::<c_void>();
    let mut client = ptr::null_mut();
    let topic = c"ffi/many";
    // SAFETY: `client` is live until `owned` frees it, before `observed` goes.
    unsafe {
        assert_eq!(iot443_client_new(emulator.config_path().as_ptr(), &mut client), IOT443_OK);
    }
    let owned = FreeOnDrop(client);
    observed.client.store(client, std::sync::atomic::Ordering::Release);
    // SAFETY: as above.
    unsafe {
        let rc = iot443_set_event_callback(client, Some(publish_when_connected), user_data);
        assert_eq!(rc, IOT443_OK);
        assert_eq!(iot443_connect(client, 20_000), IOT443_OK, "{}", last_error());
    }
    let nested = observed.nested_results.wait_until("the connected event", |seen| !seen.is_empty());
    assert_eq!(nested[0].0, IOT443_OK, "publish_async from the connected event: {}", nested[0].1);
    // SAFETY: as above; the payloads outlive the calls.
    unsafe {
        for n in 0..300u32 {
            let payload = n.to_string();
            let rc = iot443_publish_async(
                client,
                topic.as_ptr(),
                payload.as_ptr().cast(),
                payload.len(),
                c_int::from(n % 2 == 0),
                Some(count_completion),
                user_data,
            );
            assert_eq!(rc, IOT443_OK, "{}", last_error());
        }
        assert_eq!(iot443_disconnect(client, 20_000), IOT443_OK, "{}", last_error());
    }
    // No waiting: disconnect returned after the callbacks ran.
    let completions = observed.completions.wait_until("nothing", |_| true);
    assert_eq!(completions.len(), 301, "every completion was reported before disconnect returned");
    assert!(completions.iter().all(|rc| *rc == IOT443_OK), "{completions:?}");
    drop(owned);
}
