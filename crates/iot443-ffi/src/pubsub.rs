//! Messages: `iot443_subscribe`, `iot443_unsubscribe`, `iot443_publish` and
//! `iot443_publish_async`.
//!
//! Every publish, waiting or not, goes through one queue per client, so messages leave in the
//! order of the calls.

use crate::callbacks::{Job, UserData, on_library_thread};
use crate::client::{client_ref, iot443_client};
use crate::error::{
    Failure, IOT443_ERR_CLOSED, IOT443_ERR_TIMEOUT, IOT443_ERR_WOULD_BLOCK, IOT443_OK, code_of,
    guard,
};
use crate::strings::{bytes_arg, qos_arg, qos_number, str_arg};
use bytes::Bytes;
use iot443_core::{Client, ClientError, Message, QoS};
use std::ffi::{c_char, c_int, c_void};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Publishes waiting for the network thread, per client. `iot443_publish_async` waits for room
/// when it is full, except from inside a callback, where it returns `IOT443_ERR_WOULD_BLOCK`.
pub const IOT443_PUBLISH_QUEUE: usize = 1024;

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

/// The completion callback of `iot443_publish_async`: `result` is `IOT443_OK` once the message
/// was delivered (PUBACK at QoS 1, written at QoS 0), else an `IOT443_ERR_*` code, and `error`
/// then says what failed (NUL-terminated; NULL on success). Runs on the client's callback
/// thread; `error` is valid for the call only.
pub type iot443_publish_cb =
    Option<unsafe extern "C" fn(result: c_int, error: *const c_char, user_data: *mut c_void)>;

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

/// Who learns how a publish ended.
#[derive(Debug)]
pub(crate) enum Completion {
    /// `iot443_publish`, waiting.
    Wait(oneshot::Sender<Result<(), ClientError>>),
    /// `iot443_publish_async`: a callback, or nobody.
    Callback(iot443_publish_cb, UserData),
}

/// A publish on its way to the network thread.
#[derive(Debug)]
pub(crate) struct PublishJob {
    topic: String,
    payload: Bytes,
    qos: QoS,
    completion: Completion,
}

/// The publisher task: takes publishes in order, queues each with the library, and reports
/// each one's end. With an outbox, a waiting QoS 1 publish ends once the message is on disk.
pub(crate) async fn run_publisher(
    client: Client,
    mut queue: mpsc::Receiver<PublishJob>,
    jobs: mpsc::Sender<Job>,
    durable: bool,
) {
    while let Some(PublishJob { topic, payload, qos, completion }) = queue.recv().await {
        let queued = client.start_publish(&topic, qos, payload, false).await;
        let jobs = jobs.clone();
        tokio::spawn(async move {
            let result = match queued {
                Err(error) => Err(error),
                Ok(queued) => match queued.accepted().await {
                    Err(error) => Err(error),
                    Ok(_) if durable && qos == QoS::AtLeastOnce && waits(&completion) => Ok(()),
                    Ok(delivery) => delivery.await,
                },
            };
            complete(completion, result, &jobs).await;
        });
    }
}

fn waits(completion: &Completion) -> bool {
    matches!(completion, Completion::Wait(_))
}

async fn complete(
    completion: Completion,
    result: Result<(), ClientError>,
    jobs: &mpsc::Sender<Job>,
) {
    match completion {
        Completion::Wait(done) => {
            let _ = done.send(result);
        }
        Completion::Callback(None, _) => {}
        Completion::Callback(Some(callback), user_data) => {
            let (code, error) = match &result {
                Ok(()) => (IOT443_OK, None),
                Err(error) => (
                    code_of(error),
                    std::ffi::CString::new(error.to_string().replace('\0', " ")).ok(),
                ),
            };
            let job: Job = Box::new(move || {
                let error_ptr = error.as_ref().map_or(std::ptr::null(), |text| text.as_ptr());
                // SAFETY: the C program's callback of this signature; `error_ptr` is NULL or
                // a string alive until the call returns.
                unsafe { callback(code, error_ptr, user_data.get()) }
            });
            let _ = jobs.send(job).await;
        }
    }
}

/// The checked arguments of a publish.
///
/// # Safety
/// As for `iot443_publish`.
unsafe fn publish_args(
    topic: *const c_char,
    payload: *const c_void,
    payload_len: usize,
    qos: c_int,
) -> Result<(String, Bytes, QoS), Failure> {
    // SAFETY: the caller's promise of a NUL-terminated string.
    let topic = unsafe { str_arg(topic, "topic") }?;
    // SAFETY: the caller's promise of `payload_len` readable bytes.
    let payload = unsafe { bytes_arg(payload, payload_len, "payload") }?;
    let qos = qos_arg(qos)?;
    Client::check_publish(topic, qos, payload.len())?;
    Ok((topic.to_owned(), Bytes::copy_from_slice(payload), qos))
}

/// Subscribes to `filter` (wildcards `+` and `#` allowed) at `qos` 0 or 1, and returns once
/// SUBACK granted it, or after `timeout_ms` (0: the library's acknowledgement timeout, 30 s by
/// default). `callback` then runs for every matching message, on the client's callback
/// thread, until `iot443_unsubscribe`; the subscription is restored after every reconnect.
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
        let (library, _) = client.connected()?;
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
        let (library, _) = client.connected()?;
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

/// Publishes `payload_len` bytes at `payload` to `topic` at `qos` 0 or 1 and waits: at QoS 1
/// until PUBACK (with an outbox: until the message is on disk), at QoS 0 until it is written.
/// At most `timeout_ms` (0: the library's acknowledgement timeout); a publish that timed out
/// waiting for its acknowledgement stays queued and is still sent (one that timed out waiting
/// for room in the full publish queue was not queued: the message says which). Checked first, with nothing sent on failure: the topic (no
/// wildcards, 256 bytes, 7 slashes), the payload (128 KiB), the QoS. While the connection is
/// down, messages wait in the offline queue and go out after the reconnect.
///
/// # Safety
/// `client` is NULL or a live pointer from `iot443_client_new*`; `topic` is NULL or a
/// NUL-terminated string; `payload` is NULL (with `payload_len` 0) or points to `payload_len`
/// readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_publish(
    client: *mut iot443_client,
    topic: *const c_char,
    payload: *const c_void,
    payload_len: usize,
    qos: c_int,
    timeout_ms: u32,
) -> c_int {
    guard("iot443_publish", || {
        // SAFETY: the caller's promise.
        let client = unsafe { client_ref(client, "iot443_publish") }?;
        // SAFETY: the caller's promises, passed on.
        let (topic, payload, qos) = unsafe { publish_args(topic, payload, payload_len, qos) }?;
        if on_library_thread() {
            return Err(Failure::in_callback("iot443_publish"));
        }
        let (_, publishes) = client.connected()?;
        let (done, result) = oneshot::channel();
        let described = format!("iot443_publish to {topic:?} via {}", client.addr());
        let job = PublishJob { topic, payload, qos, completion: Completion::Wait(done) };
        let limit = (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms)));
        client.block("iot443_publish", 0, async move {
            let started = tokio::time::Instant::now();
            let queued = publishes.send(job);
            let queued = match limit {
                Some(limit) => tokio::time::timeout(limit, queued).await.map_err(|_| {
                    Failure::new(
                        IOT443_ERR_TIMEOUT,
                        format!(
                            "{described}: the publish queue stayed full for {timeout_ms} ms \
                             (the connection is down or slow); nothing was queued or sent"
                        ),
                    )
                })?,
                None => queued.await,
            };
            queued.map_err(|_| Failure::closed())?;
            let outcome = match limit {
                Some(limit) => {
                    let left = limit.saturating_sub(started.elapsed());
                    tokio::time::timeout(left, result).await.map_err(|_| {
                        Failure::new(
                            IOT443_ERR_TIMEOUT,
                            format!(
                                "{described}: not acknowledged within {timeout_ms} ms; the \
                                 message stays queued and is still sent (reconnecting if need \
                                 be)"
                            ),
                        )
                    })?
                }
                None => result.await,
            };
            outcome.map_err(|_| Failure::closed())?.map_err(Failure::from)
        })?
    })
}

/// Queues a publish and returns without waiting for it to be delivered (it may wait for room
/// in the client's queue of 1024 publishes, except inside a callback: `IOT443_ERR_WOULD_BLOCK`).
/// `callback` (may be NULL) then runs on the callback thread with the result: PUBACK at QoS 1,
/// written at QoS 0. Checked first like `iot443_publish`; a failed check is returned here and
/// the callback is not called. May be called from inside a callback. Messages leave in the
/// order of the calls, waiting or not.
///
/// # Safety
/// As for `iot443_publish`; `callback`, when not NULL, stays callable until the client is
/// freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_publish_async(
    client: *mut iot443_client,
    topic: *const c_char,
    payload: *const c_void,
    payload_len: usize,
    qos: c_int,
    callback: iot443_publish_cb,
    user_data: *mut c_void,
) -> c_int {
    guard("iot443_publish_async", || {
        // SAFETY: the caller's promise.
        let client = unsafe { client_ref(client, "iot443_publish_async") }?;
        // SAFETY: the caller's promises, passed on.
        let (topic, payload, qos) = unsafe { publish_args(topic, payload, payload_len, qos) }?;
        let (_, publishes) = client.connected()?;
        let completion = Completion::Callback(callback, UserData(user_data));
        let job = PublishJob { topic, payload, qos, completion };
        if on_library_thread() {
            return publishes.try_send(job).map_err(|error| match error {
                mpsc::error::TrySendError::Full(job) => Failure::new(
                    IOT443_ERR_WOULD_BLOCK,
                    format!(
                        "iot443_publish_async to {:?} from inside a callback: the publish queue \
                         ({IOT443_PUBLISH_QUEUE}) is full; try again later, outside the callback",
                        job.topic
                    ),
                ),
                mpsc::error::TrySendError::Closed(_) => Failure::closed(),
            });
        }
        publishes.blocking_send(job).map_err(|_| {
            Failure::new(IOT443_ERR_CLOSED, "the client was disconnected; call iot443_connect")
        })
    })
}
