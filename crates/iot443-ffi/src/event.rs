//! What the client reports about its connection, for the event callback.

use crate::callbacks::UserData;
use crate::strings::c_string;
use crate::subscribe::{iot443_message, with_c_message};
use iot443_core::Event;
use std::ffi::{CString, c_char, c_void};
use std::ptr;

/// The kinds of [`iot443_event`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum iot443_event_kind {
    /// CONNACK accepted a connection (the first one, and every reconnect): `host`, `port`,
    /// `tls_version`, `cipher_suite`, `alpn` and `session_present` say how.
    IOT443_EVENT_CONNECTED = 1,
    /// The connection was lost; the client reconnects after `delay_ms` (attempt `attempt`).
    /// `reason` says why. Publishes are kept and subscriptions restored.
    IOT443_EVENT_RECONNECTING = 2,
    /// The connection ended for good (`iot443_disconnect`, or a fatal error: `reason`).
    IOT443_EVENT_DISCONNECTED = 3,
    /// A message that matched no subscription callback (`message`), e.g. one a persistent
    /// session kept.
    IOT443_EVENT_MESSAGE = 4,
    /// A QoS 1 message to `topic` that the endpoint kept refusing was set aside (`reason`).
    IOT443_EVENT_DEAD_LETTERED = 5,
    /// The endpoint kept closing the connection after a SUBSCRIBE to `topic` (a filter): it is
    /// no longer restored after reconnects (`reason`).
    IOT443_EVENT_SUBSCRIPTION_DROPPED = 6,
    /// A QoS 1 message to `topic` expired in the outbox before it was acknowledged.
    IOT443_EVENT_EXPIRED = 7,
}

/// An event, valid for the duration of the callback only. Strings are NUL-terminated; a field
/// that does not apply to the kind is NULL (pointers) or 0.
#[repr(C)]
#[derive(Debug)]
pub struct iot443_event {
    /// What happened.
    pub kind: iot443_event_kind,
    /// Connected: the endpoint's host name.
    pub host: *const c_char,
    /// Connected: the port, e.g. 443.
    pub port: u16,
    /// Connected: `"TLS1.3"` or `"TLS1.2"`.
    pub tls_version: *const c_char,
    /// Connected: the cipher suite, e.g. `"TLS13_AES_128_GCM_SHA256"`.
    pub cipher_suite: *const c_char,
    /// Connected: the ALPN protocol the endpoint selected, e.g. `"x-amzn-mqtt-ca"`; NULL when
    /// none.
    pub alpn: *const c_char,
    /// Connected: the endpoint resumed a stored session.
    pub session_present: bool,
    /// Reconnecting: attempts since the last healthy connection (1 for the first).
    pub attempt: u32,
    /// Reconnecting: the wait before the attempt, in milliseconds.
    pub delay_ms: u64,
    /// Reconnecting, disconnected, dead-lettered, subscription dropped: why, in words.
    pub reason: *const c_char,
    /// Dead-lettered, expired: the message's topic; subscription dropped: the filter.
    pub topic: *const c_char,
    /// Message: the message.
    pub message: *const iot443_message,
}

/// The event callback: runs on the client's callback thread.
pub type iot443_event_cb =
    Option<unsafe extern "C" fn(event: *const iot443_event, user_data: *mut c_void)>;

/// Owned strings for an [`iot443_event`], alive while the callback runs.
#[derive(Default)]
struct Strings(Vec<CString>);

impl Strings {
    fn keep(&mut self, text: &str) -> *const c_char {
        let text = c_string(text);
        let pointer = text.as_ptr();
        self.0.push(text);
        pointer
    }
}

fn empty(kind: iot443_event_kind) -> iot443_event {
    iot443_event {
        kind,
        host: ptr::null(),
        port: 0,
        tls_version: ptr::null(),
        cipher_suite: ptr::null(),
        alpn: ptr::null(),
        session_present: false,
        attempt: 0,
        delay_ms: 0,
        reason: ptr::null(),
        topic: ptr::null(),
        message: ptr::null(),
    }
}

/// Calls `callback` with `event` as C sees it (on the callback thread). Events C has no kind
/// for are skipped.
pub(crate) fn deliver(callback: iot443_event_cb, user_data: UserData, event: &Event) {
    let Some(callback) = callback else { return };
    let mut strings = Strings::default();
    let call = |c_event: &iot443_event| {
        // SAFETY: `callback` is the C program's function for exactly this signature;
        // `c_event` and every string it points to live until the call returns (`strings`).
        unsafe { callback(c_event, user_data.get()) }
    };
    match event {
        Event::Connected(info) => {
            let mut c_event = empty(iot443_event_kind::IOT443_EVENT_CONNECTED);
            c_event.host = strings.keep(&info.host);
            c_event.port = info.port;
            c_event.tls_version = strings.keep(&info.tls_version);
            c_event.cipher_suite = strings.keep(&info.cipher_suite);
            c_event.alpn = info.alpn.as_deref().map_or(ptr::null(), |alpn| strings.keep(alpn));
            c_event.session_present = info.session_present;
            call(&c_event);
        }
        Event::Reconnecting { attempt, delay, cause } => {
            let mut c_event = empty(iot443_event_kind::IOT443_EVENT_RECONNECTING);
            c_event.attempt = *attempt;
            c_event.delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            c_event.reason = strings.keep(cause);
            call(&c_event);
        }
        Event::Disconnected { reason } => {
            let mut c_event = empty(iot443_event_kind::IOT443_EVENT_DISCONNECTED);
            c_event.reason = strings.keep(reason);
            call(&c_event);
        }
        Event::Message(message) => with_c_message(message, |c_message| {
            let mut c_event = empty(iot443_event_kind::IOT443_EVENT_MESSAGE);
            c_event.message = c_message;
            call(&c_event);
        }),
        Event::DeadLettered { topic, reason } => {
            let mut c_event = empty(iot443_event_kind::IOT443_EVENT_DEAD_LETTERED);
            c_event.topic = strings.keep(topic);
            c_event.reason = strings.keep(reason);
            call(&c_event);
        }
        Event::SubscriptionDropped { filter, reason } => {
            let mut c_event = empty(iot443_event_kind::IOT443_EVENT_SUBSCRIPTION_DROPPED);
            c_event.topic = strings.keep(filter);
            c_event.reason = strings.keep(reason);
            call(&c_event);
        }
        Event::Expired { topic } => {
            let mut c_event = empty(iot443_event_kind::IOT443_EVENT_EXPIRED);
            c_event.topic = strings.keep(topic);
            call(&c_event);
        }
        _ => {}
    }
}
