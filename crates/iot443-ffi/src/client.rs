//! The client's life: `iot443_client_new`, `iot443_connect`, `iot443_disconnect`,
//! `iot443_client_free`, and the event callback.

use crate::callbacks::{CallbackThread, Job, UserData, on_library_thread};
use crate::config::iot443_config;
use crate::error::{Failure, IOT443_ERR_CONFIG, IOT443_ERR_INTERNAL, IOT443_ERR_TIMEOUT, guard};
use crate::event::{deliver, iot443_event_cb};
use crate::publish::{IOT443_PUBLISH_QUEUE, Pending, PublishJob, run_completer, run_publisher};
use crate::strings::str_arg;
use iot443_core::{Client, Config, Events};
use std::ffi::{c_char, c_int, c_void};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::sync::{oneshot, watch};
use tokio::task::AbortHandle;

/// How long `iot443_client_free` lets the network thread finish.
const SHUTDOWN: Duration = Duration::from_secs(5);

/// How long `iot443_client_free` lets the library's client end (DISCONNECT not sent, the
/// outbox closed) before the network thread stops.
const DRIVER_END: Duration = Duration::from_secs(2);

/// A client (opaque): its configuration, its two threads, and the connection once connected.
#[derive(Debug)]
pub struct iot443_client {
    config: Config,
    runtime: Option<Runtime>,
    /// Taken (stopped) by `iot443_client_free` before anything else is torn down.
    callbacks: Mutex<Option<CallbackThread>>,
    event_handler: Arc<Mutex<EventHandler>>,
    session: Mutex<Option<Session>>,
    /// Held by `iot443_connect` from its check to the new session, so that two threads
    /// connecting at once make one connection.
    connecting: Mutex<()>,
}

/// The event callback and its `user_data`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventHandler {
    callback: iot443_event_cb,
    user_data: UserData,
}

/// A connection made by `iot443_connect` (the library reconnects it by itself).
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) client: Client,
    /// To the publisher task (publishes made inside callbacks).
    publishes: mpsc::Sender<PublishJob>,
    /// To the completer task (the ends of `iot443_publish_async`).
    completions: mpsc::UnboundedSender<Pending>,
    /// `true` once the event task has handed over the last event (`Disconnected`).
    events_ended: watch::Receiver<bool>,
    /// The tasks that hand each subscription's messages to the callback thread, by filter.
    pub(crate) subscriptions: Vec<(String, AbortHandle)>,
    tasks: Vec<AbortHandle>,
}

/// Clones of what a call needs from the session.
pub(crate) struct Handles {
    pub(crate) client: Client,
    pub(crate) publishes: mpsc::Sender<PublishJob>,
    pub(crate) completions: mpsc::UnboundedSender<Pending>,
    events_ended: watch::Receiver<bool>,
}

impl Session {
    /// Whether the library's client has ended for good (disconnected, or a fatal error).
    fn ended(&self) -> bool {
        self.client.connection_changes().has_changed().is_err()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for task in self.tasks.iter().chain(self.subscriptions.iter().map(|(_, task)| task)) {
            task.abort();
        }
    }
}

impl iot443_client {
    fn new(config: Config) -> Result<iot443_client, Failure> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("iot443-runtime")
            .enable_all()
            .build()
            .map_err(|error| {
                Failure::new(
                    IOT443_ERR_INTERNAL,
                    format!("cannot start the network thread: {error}"),
                )
            })?;
        let callbacks = CallbackThread::start().map_err(|error| {
            Failure::new(IOT443_ERR_INTERNAL, format!("cannot start the callback thread: {error}"))
        })?;
        Ok(iot443_client {
            config,
            runtime: Some(runtime),
            callbacks: Mutex::new(Some(callbacks)),
            event_handler: Arc::new(Mutex::new(EventHandler {
                callback: None,
                user_data: UserData(std::ptr::null_mut()),
            })),
            session: Mutex::new(None),
            connecting: Mutex::new(()),
        })
    }

    fn runtime(&self) -> Result<&Runtime, Failure> {
        self.runtime.as_ref().ok_or_else(|| Failure::new(IOT443_ERR_INTERNAL, "no runtime"))
    }

    /// A sender to the callback thread.
    pub(crate) fn jobs(&self) -> Result<mpsc::Sender<Job>, Failure> {
        lock(&self.callbacks)
            .as_ref()
            .map(CallbackThread::sender)
            .ok_or_else(|| Failure::new(IOT443_ERR_INTERNAL, "no callback thread"))
    }

    /// Spawns `task` on the network thread.
    pub(crate) fn spawn(
        &self,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> Result<AbortHandle, Failure> {
        Ok(self.runtime()?.spawn(task).abort_handle())
    }

    /// Runs `operation` on the network thread and waits for it, at most `timeout_ms` (0: as
    /// long as the library's own timeouts allow). Refused on a library thread (a callback).
    pub(crate) fn block<F: Future>(
        &self,
        function: &str,
        timeout_ms: u32,
        operation: F,
    ) -> Result<F::Output, Failure> {
        if on_library_thread() {
            return Err(Failure::in_callback(function));
        }
        self.runtime()?.block_on(async {
            if timeout_ms == 0 {
                return Ok(operation.await);
            }
            tokio::time::timeout(Duration::from_millis(u64::from(timeout_ms)), operation)
                .await
                .map_err(|_| {
                    Failure::new(
                        IOT443_ERR_TIMEOUT,
                        format!(
                            "{function} with {} did not finish within {timeout_ms} ms; \
                             check that the endpoint is reachable (iot443 doctor), or allow more \
                             time",
                            self.addr()
                        ),
                    )
                })
        })
    }

    /// `host:port` of the endpoint, for messages.
    pub(crate) fn addr(&self) -> String {
        self.config.server_addr()
    }

    /// The session, locked.
    pub(crate) fn session(&self) -> MutexGuard<'_, Option<Session>> {
        lock(&self.session)
    }

    /// Handles on the connected client and its publish tasks, or [`Failure::closed`].
    pub(crate) fn connected(&self) -> Result<Handles, Failure> {
        match self.session().as_ref() {
            Some(session) if !session.ended() => Ok(Handles {
                client: session.client.clone(),
                publishes: session.publishes.clone(),
                completions: session.completions.clone(),
                events_ended: session.events_ended.clone(),
            }),
            _ => Err(Failure::closed_at(&self.addr())),
        }
    }

    /// Whether QoS 1 publishes go to an outbox first.
    pub(crate) fn durable(&self) -> bool {
        self.config.outbox.is_some()
    }

    fn connect(&self, timeout_ms: u32) -> Result<(), Failure> {
        if on_library_thread() {
            return Err(Failure::in_callback("iot443_connect"));
        }
        let _connecting = lock(&self.connecting);
        if self.session().as_ref().is_some_and(|session| !session.ended()) {
            return Ok(());
        }
        let config = self.config.clone();
        let (client, events) = self
            .block("iot443_connect", timeout_ms, async move { Client::connect(&config).await })??;
        let jobs = self.jobs()?;
        let (publishes, queue) = mpsc::channel(IOT443_PUBLISH_QUEUE);
        let (completions, pending) = mpsc::unbounded_channel();
        let (events_done, events_ended) = watch::channel(false);
        // The session is in place before the first event reaches a callback, so that a callback
        // of the connected event may publish.
        let mut session = self.session();
        let tasks = vec![
            self.spawn(forward_events(
                events,
                self.event_handler.clone(),
                jobs.clone(),
                events_done,
            ))?,
            self.spawn(run_publisher(client.clone(), queue, completions.clone(), jobs.clone()))?,
            self.spawn(run_completer(pending, jobs))?,
        ];
        let subscriptions = Vec::new();
        *session =
            Some(Session { client, publishes, completions, events_ended, subscriptions, tasks });
        Ok(())
    }

    fn disconnect(&self, timeout_ms: u32) -> Result<(), Failure> {
        let Ok(Handles { client, completions, mut events_ended, .. }) = self.connected() else {
            return Ok(());
        };
        let (barrier, reached) = oneshot::channel();
        let result = self.block("iot443_disconnect", timeout_ms, async move {
            let result = client.disconnect().await;
            // The disconnected event is queued for the callback thread once the event task has
            // ended; every completion callback of what was published before, and that event,
            // have run once the barrier has passed the completer and the callback thread.
            let _ = events_ended.wait_for(|ended| *ended).await;
            if completions.send(Pending::Barrier(barrier)).is_ok() {
                let _ = reached.await;
            }
            result
        })?;
        // Keep the session (its event task reports the disconnection); `connect` makes a new one.
        match result {
            Ok(()) | Err(iot443_core::ClientError::Closed) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// `iot443_client_free`'s first steps, through a shared reference: no callback runs any
    /// more (the one running now is waited for, unless this is its thread), then the session
    /// ends and the library's client is given a moment to finish (its outbox file closed).
    fn tear_down(&self) {
        // Taken first: a callback still running may call in, and lock it, while stop() waits.
        let callbacks = lock(&self.callbacks).take();
        if let Some(callbacks) = callbacks {
            callbacks.stop();
        }
        let Some(session) = self.session().take() else { return };
        let mut changes = session.client.connection_changes();
        drop(session);
        if let Ok(runtime) = self.runtime() {
            runtime.block_on(async {
                let ended = async { while changes.changed().await.is_ok() {} };
                let _ = tokio::time::timeout(DRIVER_END, ended).await;
            });
        }
    }
}

/// `mutex`, locked, whether or not a thread panicked while holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for iot443_client {
    fn drop(&mut self) {
        let callbacks = lock(&self.callbacks).take();
        if let Some(callbacks) = callbacks {
            callbacks.stop();
        }
        drop(self.session().take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(SHUTDOWN);
        }
    }
}

/// Hands the client's events to the event callback, on the callback thread.
async fn forward_events(
    mut events: Events,
    handler: Arc<Mutex<EventHandler>>,
    jobs: mpsc::Sender<Job>,
    ended: watch::Sender<bool>,
) {
    forward_each_event(&mut events, &handler, &jobs).await;
    let _ = ended.send(true);
}

async fn forward_each_event(
    events: &mut Events,
    handler: &Mutex<EventHandler>,
    jobs: &mpsc::Sender<Job>,
) {
    while let Some(event) = events.recv().await {
        let EventHandler { callback, user_data } = *lock(handler);
        if callback.is_none() {
            continue;
        }
        if jobs.send(Box::new(move || deliver(callback, user_data, &event))).await.is_err() {
            break;
        }
    }
}

/// The client at `client`, or an error naming `function`.
///
/// # Safety
/// `client` is NULL or a live pointer from `iot443_client_new*`.
pub(crate) unsafe fn client_ref<'a>(
    client: *const iot443_client,
    function: &str,
) -> Result<&'a iot443_client, Failure> {
    // SAFETY: the caller's promise: NULL or live until `iot443_client_free`.
    unsafe { client.as_ref() }
        .ok_or_else(|| Failure::invalid(format!("{function}: client is NULL")))
}

/// Writes a new client to `out`.
///
/// # Safety
/// `out` is not NULL and points to writable storage for a pointer.
unsafe fn hand_out(config: Config, out: *mut *mut iot443_client) -> Result<(), Failure> {
    let client = Box::new(iot443_client::new(config)?);
    // SAFETY: the caller's promise.
    unsafe { *out = Box::into_raw(client) };
    Ok(())
}

/// Checks `out` and clears it, so that a failure leaves NULL there.
///
/// # Safety
/// `out` is NULL or points to writable storage for a pointer.
unsafe fn clear_out(out: *mut *mut iot443_client, function: &str) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::invalid(format!("{function}: out is NULL")));
    }
    // SAFETY: not NULL, writable by the caller's promise.
    unsafe { *out = std::ptr::null_mut() };
    Ok(())
}

/// Creates a client from a configuration file — `iot443.toml`, or the Embedded C SDK's
/// `aws_iot_config.h` (a name ending in `.h`; certificates in its `certs/` folder) — with the
/// `IOT443_*` variables applied on top, as the `iot443` command reads them. Checks the settings
/// but does not connect. On success writes the client to `*out`; free it with
/// `iot443_client_free`.
///
/// # Safety
/// `config_path` is NULL or a NUL-terminated string; `out` is NULL or points to writable
/// storage for a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_client_new(
    config_path: *const c_char,
    out: *mut *mut iot443_client,
) -> c_int {
    guard("iot443_client_new", || {
        // SAFETY: the caller's promise.
        unsafe { clear_out(out, "iot443_client_new") }?;
        // SAFETY: the caller's promise of a NUL-terminated string.
        let path = unsafe { str_arg(config_path, "config_path") }?;
        let configuration_failure =
            |error: iot443_core::ConfigError| Failure::new(IOT443_ERR_CONFIG, error.to_string());
        let mut config = Config::load(Path::new(path)).map_err(configuration_failure)?;
        config.apply_process_env().map_err(configuration_failure)?;
        config.validate().map_err(configuration_failure)?;
        // SAFETY: `out` was checked above.
        unsafe { hand_out(config, out) }
    })
}

/// Creates a client from settings made with `iot443_config_new` (see there). Checks them but
/// does not connect; `config` may be freed afterwards.
///
/// # Safety
/// `config` is NULL or a live pointer from `iot443_config_new`; `out` is NULL or points to
/// writable storage for a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_client_new_with_config(
    config: *const iot443_config,
    out: *mut *mut iot443_client,
) -> c_int {
    guard("iot443_client_new_with_config", || {
        // SAFETY: the caller's promise.
        unsafe { clear_out(out, "iot443_client_new_with_config") }?;
        // SAFETY: the caller's promise: NULL or live.
        let Some(config) = (unsafe { config.as_ref() }) else {
            return Err(Failure::invalid("iot443_client_new_with_config: config is NULL"));
        };
        let config = config.build()?;
        // SAFETY: `out` was checked above.
        unsafe { hand_out(config, out) }
    })
}

/// Sets the callback for connection events (`iot443_event`): connected (with port, TLS version
/// and ALPN), reconnecting (with its cause), disconnected, and the others. NULL removes it. It
/// runs on the client's callback thread; call this before `iot443_connect` to see the first
/// connection.
///
/// # Safety
/// `client` is NULL or a live pointer from `iot443_client_new*`; `callback`, when not NULL, is
/// a function of this signature that stays callable until the client is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_set_event_callback(
    client: *mut iot443_client,
    callback: iot443_event_cb,
    user_data: *mut c_void,
) -> c_int {
    guard("iot443_set_event_callback", || {
        // SAFETY: the caller's promise.
        let client = unsafe { client_ref(client, "iot443_set_event_callback") }?;
        *lock(&client.event_handler) = EventHandler { callback, user_data: UserData(user_data) };
        Ok(())
    })
}

/// Connects: reads the certificate, key and root CA, opens TCP, runs the TLS handshake (ALPN
/// `x-amzn-mqtt-ca` on port 443) and returns once CONNACK accepted the connection, or after
/// `timeout_ms` (0: the configuration's connect timeout, 10 s by default, for each step). From
/// then on the library reconnects by itself. Connecting a connected client succeeds at once;
/// after `iot443_disconnect` it connects again.
///
/// # Safety
/// `client` is NULL or a live pointer from `iot443_client_new*`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_connect(client: *mut iot443_client, timeout_ms: u32) -> c_int {
    guard("iot443_connect", || {
        // SAFETY: the caller's promise.
        unsafe { client_ref(client, "iot443_connect") }?.connect(timeout_ms)
    })
}

/// Waits until every publish queued so far is delivered, sends DISCONNECT and closes the
/// connection, within `timeout_ms` (0: no bound), and returns once the completion callbacks of
/// those publishes and the disconnected event's callback have run. A client that is not
/// connected succeeds at once. Subscriptions end; `iot443_connect` may connect again.
///
/// # Safety
/// `client` is NULL or a live pointer from `iot443_client_new*`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_disconnect(client: *mut iot443_client, timeout_ms: u32) -> c_int {
    guard("iot443_disconnect", || {
        // SAFETY: the caller's promise.
        unsafe { client_ref(client, "iot443_disconnect") }?.disconnect(timeout_ms)
    })
}

/// Frees the client. First no callback runs any more: the one running now is waited for (called
/// from a callback of this client, this returns and the callback thread ends when that callback
/// returns), and completions not reported yet are not reported. Then the connection is closed
/// without DISCONNECT (call `iot443_disconnect` first for a clean close: it also waits for
/// the completion callbacks), the network thread stopped (at most a few seconds) and
/// everything the client holds freed, the outbox file closed. NULL is a no-op. No other call
/// on this client may be running, or be made afterwards.
///
/// # Safety
/// `client` is NULL or a pointer from `iot443_client_new*` not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iot443_client_free(client: *mut iot443_client) {
    if client.is_null() {
        return;
    }
    let _ = guard("iot443_client_free", || {
        // SAFETY: live (the caller's promise); only shared references exist until the
        // callback thread is stopped and the session has ended.
        unsafe { &*client }.tear_down();
        // SAFETY: made by `Box::into_raw` in `hand_out`, freed once (the caller's promise); no
        // callback runs any more and no other call is running, so nothing else refers to it.
        drop(unsafe { Box::from_raw(client) });
        Ok(())
    });
}
