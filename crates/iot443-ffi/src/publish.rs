//! Messages out: `iot443_publish`, which waits, and `iot443_publish_async`, which does not.
//!
//! A publish is handed to the library on the calling thread (the library's queue pushes back
//! when full). `iot443_publish_async` then leaves the message to the completer task, which
//! awaits the publishes in order and hands their completion callbacks to the callback thread
//! in batches: every completion that is ready at once goes in one job, so a stream of
//! acknowledgements wakes the callback thread once per batch, not once per message. From
//! inside a callback, where no call may wait, `iot443_publish_async` goes through a bounded
//! queue to the publisher task instead.

use crate::callbacks::{Job, UserData, on_library_thread};
use crate::client::{client_ref, iot443_client};
use crate::error::{
    Failure, IOT443_ERR_TIMEOUT, IOT443_ERR_WOULD_BLOCK, IOT443_OK, code_of, guard,
};
use crate::strings::{bytes_arg, c_string, qos_arg, str_arg};
use bytes::Bytes;
use iot443_core::{Client, ClientError, Delivery, QoS, Queued};
use std::ffi::{c_char, c_int, c_void};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Publishes from inside callbacks waiting for the publisher task, per client; when it is full,
/// `iot443_publish_async` there returns `IOT443_ERR_WOULD_BLOCK`.
pub const IOT443_PUBLISH_QUEUE: usize = 1024;

/// Completions handed to the callback thread in one job, at most.
const COMPLETION_BATCH: usize = 256;

/// The completion callback of `iot443_publish_async`: `result` is `IOT443_OK` once the message
/// was delivered (PUBACK at QoS 1, written at QoS 0), else an `IOT443_ERR_*` code, and `error`
/// then says what failed (NUL-terminated; NULL on success). Runs on the client's callback
/// thread; `error` is valid for the call only.
pub type iot443_publish_cb =
    Option<unsafe extern "C" fn(result: c_int, error: *const c_char, user_data: *mut c_void)>;

/// A message for the publisher task (made inside a callback).
#[derive(Debug)]
pub(crate) struct PublishJob {
    message: Checked,
    callback: iot443_publish_cb,
    user_data: UserData,
}

/// What the completer task takes, in order.
#[derive(Debug)]
pub(crate) enum Pending {
    /// A publish the library has queued, waiting for its end.
    Publish { queued: Queued, callback: iot443_publish_cb, user_data: UserData },
    /// `iot443_disconnect` waiting until the completion callbacks of everything before it have
    /// run: answered from the callback thread, after them.
    Barrier(oneshot::Sender<()>),
}

/// A message whose arguments were checked.
#[derive(Debug)]
struct Checked {
    topic: String,
    payload: Bytes,
    qos: QoS,
}

/// The publisher task: queues the messages made inside callbacks with the library, in order,
/// and hands each to the completer.
pub(crate) async fn run_publisher(
    client: Client,
    mut queue: mpsc::Receiver<PublishJob>,
    completer: mpsc::UnboundedSender<Pending>,
    jobs: mpsc::Sender<Job>,
) {
    while let Some(PublishJob { message, callback, user_data }) = queue.recv().await {
        match client.start_publish(&message.topic, message.qos, message.payload, false).await {
            Ok(queued) => {
                let _ = completer.send(Pending::Publish { queued, callback, user_data });
            }
            Err(error) => hand_over(&jobs, vec![(callback, user_data, Err(error))], None).await,
        }
    }
}

type Completed = (iot443_publish_cb, UserData, Result<(), ClientError>);

/// The completer task: awaits each publish's end in order, and hands the completion callbacks
/// over in batches of those that are ready together.
pub(crate) async fn run_completer(
    mut pending: mpsc::UnboundedReceiver<Pending>,
    jobs: mpsc::Sender<Job>,
) {
    while let Some(first) = pending.recv().await {
        let mut batch = Vec::new();
        let mut barrier = None;
        match first {
            Pending::Publish { queued, callback, user_data } => {
                batch.push((callback, user_data, finish(queued).await));
            }
            Pending::Barrier(reached) => barrier = Some(reached),
        }
        while barrier.is_none() && batch.len() < COMPLETION_BATCH {
            let (queued, callback, user_data) = match pending.try_recv() {
                Ok(Pending::Publish { queued, callback, user_data }) => {
                    (queued, callback, user_data)
                }
                Ok(Pending::Barrier(reached)) => {
                    barrier = Some(reached);
                    break;
                }
                Err(_) => break,
            };
            // Without an outbox, accepted() is ready at once.
            let mut delivery = match queued.accepted().await {
                Ok(delivery) => delivery,
                Err(error) => {
                    batch.push((callback, user_data, Err(error)));
                    continue;
                }
            };
            match ready(&mut delivery) {
                Some(result) => batch.push((callback, user_data, result)),
                None => {
                    // Not acknowledged yet: what is ready goes now, this one when it is.
                    hand_over(&jobs, std::mem::take(&mut batch), None).await;
                    batch.push((callback, user_data, delivery.await));
                }
            }
        }
        hand_over(&jobs, batch, barrier).await;
    }
}

async fn finish(queued: Queued) -> Result<(), ClientError> {
    match queued.accepted().await {
        Ok(delivery) => delivery.await,
        Err(error) => Err(error),
    }
}

/// The delivery's result if it is there already, without waiting.
fn ready(delivery: &mut Delivery) -> Option<Result<(), ClientError>> {
    match Pin::new(delivery).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => Some(result),
        Poll::Pending => None,
    }
}

/// Runs the completion callbacks of `batch` in one job on the callback thread, then answers
/// `barrier`.
async fn hand_over(
    jobs: &mpsc::Sender<Job>,
    batch: Vec<Completed>,
    barrier: Option<oneshot::Sender<()>>,
) {
    if barrier.is_none() && batch.iter().all(|(callback, ..)| callback.is_none()) {
        return;
    }
    let job: Job = Box::new(move || {
        for (callback, user_data, result) in batch {
            // A callback freed the client: the others are not called.
            if crate::callbacks::stopping() {
                return;
            }
            let Some(callback) = callback else { continue };
            let (code, error) = match &result {
                Ok(()) => (IOT443_OK, None),
                Err(error) => (code_of(error), Some(c_string(&error.to_string()))),
            };
            let error_ptr = error.as_ref().map_or(std::ptr::null(), |text| text.as_ptr());
            // SAFETY: the C program's callback of this signature; `error_ptr` is NULL or a
            // string alive until the call returns.
            unsafe { callback(code, error_ptr, user_data.get()) }
        }
        if let Some(barrier) = barrier {
            let _ = barrier.send(());
        }
    });
    let _ = jobs.send(job).await;
}

/// The checked arguments of a publish.
///
/// # Safety
/// As for `iot443_publish`.
unsafe fn checked(
    topic: *const c_char,
    payload: *const c_void,
    payload_len: usize,
    qos: c_int,
) -> Result<Checked, Failure> {
    // SAFETY: the caller's promise of a NUL-terminated string.
    let topic = unsafe { str_arg(topic, "topic") }?;
    // SAFETY: the caller's promise of `payload_len` readable bytes.
    let payload = unsafe { bytes_arg(payload, payload_len, "payload") }?;
    let qos = qos_arg(qos)?;
    Client::check_publish(topic, qos, payload.len())?;
    Ok(Checked { topic: topic.to_owned(), payload: Bytes::copy_from_slice(payload), qos })
}

/// Publishes `payload_len` bytes at `payload` to `topic` at `qos` 0 or 1 and waits: at QoS 1
/// until PUBACK (with an outbox: until the message is on disk), at QoS 0 until it is written.
/// At most `timeout_ms` (0: the library's acknowledgement timeout); a publish that timed out
/// waiting for its acknowledgement stays queued and is still sent (one that timed out waiting
/// for room in the library's full queue was not queued: the message says which). Checked
/// first, with nothing sent on failure: the topic (no wildcards, 256 bytes, 7 slashes), the
/// payload (128 KiB), the QoS. While the connection is down, messages wait in the offline
/// queue and go out after the reconnect.
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
        let Checked { topic, payload, qos } = unsafe { checked(topic, payload, payload_len, qos) }?;
        if on_library_thread() {
            return Err(Failure::in_callback("iot443_publish"));
        }
        let library = client.connected()?.client;
        let durable = client.durable();
        let limit = (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms)));
        let timed_out = |what: &str| {
            let addr = client.addr();
            let text =
                format!("iot443_publish to {topic:?} via {addr}: {what} within {timeout_ms} ms");
            Failure::new(IOT443_ERR_TIMEOUT, text)
        };
        client.block("iot443_publish", 0, async {
            let started = tokio::time::Instant::now();
            let left = || limit.map(|limit| limit.saturating_sub(started.elapsed()));
            let queued = library.start_publish(&topic, qos, payload, false);
            let queued = within(left(), queued).await.ok_or_else(|| {
                timed_out("the library's queue had no room (the connection is down or slow); nothing was queued or sent")
            })??;
            let delivery = within(left(), queued.accepted()).await.ok_or_else(|| {
                timed_out("not written to the outbox; it is still queued")
            })??;
            if durable && qos == QoS::AtLeastOnce {
                return Ok(());
            }
            within(left(), delivery).await.ok_or_else(|| {
                timed_out("not acknowledged; the message stays queued and is still sent (reconnecting if need be)")
            })?.map_err(Failure::from)
        })?
    })
}

/// `future`'s output, or `None` when `limit` passed first (no limit: `None` never).
async fn within<F: Future>(limit: Option<Duration>, future: F) -> Option<F::Output> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future).await.ok(),
        None => Some(future.await),
    }
}

/// Queues a publish and returns without waiting for it to be delivered (it waits only for room
/// in the library's queue, as `iot443_publish` does). `callback` (may be NULL) then runs on
/// the callback thread with the result: PUBACK at QoS 1, written at QoS 0. Checked first like
/// `iot443_publish`; a failed check is returned here and the callback is not called. May be
/// called from inside a callback: there it never waits, and returns `IOT443_ERR_WOULD_BLOCK`
/// when its queue of 1024 is full. Messages from one thread leave in the order of the calls.
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
        let message = unsafe { checked(topic, payload, payload_len, qos) }?;
        let handles = client.connected()?;
        let user_data = UserData(user_data);
        if on_library_thread() {
            let job = PublishJob { message, callback, user_data };
            return handles.publishes.try_send(job).map_err(|error| match error {
                mpsc::error::TrySendError::Full(job) => Failure::new(
                    IOT443_ERR_WOULD_BLOCK,
                    format!(
                        "iot443_publish_async to {:?} from inside a callback: the publish queue \
                         ({IOT443_PUBLISH_QUEUE}) is full; try again later, outside the callback",
                        job.message.topic
                    ),
                ),
                mpsc::error::TrySendError::Closed(_) => Failure::closed(),
            });
        }
        let Checked { topic, payload, qos } = message;
        let library = handles.client;
        let queued = client.block("iot443_publish_async", 0, async move {
            library.start_publish(&topic, qos, payload, false).await
        })??;
        handles
            .completions
            .send(Pending::Publish { queued, callback, user_data })
            .map_err(|_| Failure::closed())
    })
}
