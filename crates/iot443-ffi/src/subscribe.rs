//! Messages in: `iot443_subscribe` with its callback, and `iot443_unsubscribe`.

use crate::callbacks::{Job, UserData, on_library_thread};
use crate::client::{client_ref, iot443_client};
use crate::error::{Failure, guard};
use crate::strings::{qos_arg, qos_number, str_arg};
use iot443_core::Message;
use std::ffi::{c_char, c_int, c_void};

/// A message handed to a subscription's callback, valid for the duration of the call only.
#[repr(C)]
#[derive(Debug)]
pub struct iot443_message {
    /// The topic, `topic_len` bytes of UTF-8, not NUL-terminated.
    pub topic: *const c_char,
    /// The topic's length in bytes.
    pub topic_len: usize,
    /// The payload, `payload_len` bytes.
    pub payload: *const u8,
    /// The payload's length in bytes.
    pub payload_len: usize,
    /// The QoS it was delivered with, 0 or 1.
    pub qos: c_int,
    /// A retained message delivered on subscribe.
    pub retain: bool,
    /// The endpoint says it may have delivered this message before.
    pub dup: bool,
}

/// A subscription's callback: runs on the client's callback thread, for every message that
/// matches its filter, in order.
pub type iot443_message_cb =
    Option<unsafe extern "C" fn(message: *const iot443_message, user_data: *mut c_void)>;

/// Runs `body` with `message` as C sees it.
pub(crate) fn with_c_message(message: &Message, body: impl FnOnce(&iot443_message)) {
    let c_message = iot443_message {
        topic: message.topic.as_ptr().cast(),
        topic_len: message.topic.len(),
        payload: message.payload.as_ptr(),
        payload_len: message.payload.len(),
        qos: qos_number(message.qos),
        retain: message.retain,
        dup: message.dup,
    };
    body(&c_message);
}

/// Subscribes to `filter` (wildcards `+` and `#` allowed) at `qos` 0 or 1, and returns once
/// SUBACK granted it, or after `timeout_ms` (0: the library's acknowledgement timeout, 30 s by
/// default). `callback` then runs for every matching message, on the client's callback
/// thread, until `iot443_unsubscribe`; the subscription is restored after every reconnect. A
/// subscribe that timed out may still be granted by the endpoint: unsubscribe to be sure.
///
/// # Safety
/// `client` is NULL or a live pointer from `iot443_client_new*`; `filter` is NULL or a
/// NUL-terminated string; `callback`, when not NULL, stays callable until the client is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_subscribe(
    client: *mut iot443_client,
    filter: *const c_char,
    qos: c_int,
    callback: iot443_message_cb,
    user_data: *mut c_void,
    timeout_ms: u32,
) -> c_int {
    guard("iot443_subscribe", || {
        // SAFETY: the caller's promise.
        let client = unsafe { client_ref(client, "iot443_subscribe") }?;
        // SAFETY: the caller's promise of a NUL-terminated string.
        let filter = unsafe { str_arg(filter, "filter") }?;
        let qos = qos_arg(qos)?;
        let Some(callback) = callback else {
            return Err(Failure::invalid(format!(
                "iot443_subscribe to {filter:?}: callback is NULL"
            )));
        };
        if on_library_thread() {
            return Err(Failure::in_callback("iot443_subscribe"));
        }
        let library = client.connected()?.client;
        let owned = filter.to_owned();
        let mut subscription = client.block("iot443_subscribe", timeout_ms, async move {
            library.subscribe(&owned, qos).await
        })??;
        let jobs = client.jobs()?;
        let user_data = UserData(user_data);
        let task = client.spawn(async move {
            while let Some(message) = subscription.recv().await {
                let job: Job = Box::new(move || {
                    with_c_message(&message, |c_message| {
                        // SAFETY: the C program's callback of this signature; `c_message` and
                        // the bytes it points to live until the call returns.
                        unsafe { callback(c_message, user_data.get()) }
                    });
                });
                if jobs.send(job).await.is_err() {
                    break;
                }
            }
        })?;
        match client.session().as_mut() {
            Some(session) => session.subscriptions.push((filter.to_owned(), task)),
            None => task.abort(),
        }
        Ok(())
    })
}

/// Removes the subscription to exactly `filter` and returns on UNSUBACK, or after
/// `timeout_ms` (0: the library's acknowledgement timeout). Its callback is not called for
/// messages that arrive afterwards; messages already handed to the callback thread may still
/// be delivered.
///
/// # Safety
/// `client` is NULL or a live pointer from `iot443_client_new*`; `filter` is NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_unsubscribe(
    client: *mut iot443_client,
    filter: *const c_char,
    timeout_ms: u32,
) -> c_int {
    guard("iot443_unsubscribe", || {
        // SAFETY: the caller's promise.
        let client = unsafe { client_ref(client, "iot443_unsubscribe") }?;
        // SAFETY: the caller's promise of a NUL-terminated string.
        let filter = unsafe { str_arg(filter, "filter") }?;
        if on_library_thread() {
            return Err(Failure::in_callback("iot443_unsubscribe"));
        }
        let library = client.connected()?.client;
        let owned = filter.to_owned();
        client.block("iot443_unsubscribe", timeout_ms, async move {
            library.unsubscribe(&owned).await
        })??;
        if let Some(session) = client.session().as_mut() {
            session.subscriptions.retain(|(subscribed, task)| {
                let keep = subscribed != filter;
                if !keep {
                    task.abort();
                }
                keep
            });
        }
        Ok(())
    })
}
