//! The callback thread: every callback of one client runs on it, one at a time, in order, so
//! that a callback that blocks never holds up the network thread (keep-alive, acknowledgements).
//!
//! The network thread hands callbacks over through a bounded queue: when the callback thread
//! falls behind, the queue fills, the subscription queues behind it fill, and the client stops
//! reading from the socket (TCP pushes back on the endpoint) while it keeps sending PINGREQ.

use crate::error::panic_message;
use std::cell::Cell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

/// Callbacks waiting for the callback thread.
pub(crate) const CALLBACK_QUEUE: usize = 1024;

/// A callback to run on the callback thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The `user_data` pointer a C program registers with a callback, handed back to it as is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserData(pub(crate) *mut c_void);

impl UserData {
    /// The pointer. (A method, so that closures capture the whole `Send` wrapper, not the
    /// raw pointer field.)
    pub(crate) fn get(self) -> *mut c_void {
        self.0
    }
}

// SAFETY: the library never dereferences `user_data`; it only passes it back to the C
// program's callback, on the callback thread. The C API documents that callbacks run on that
// thread, so the program promises that its `user_data` may be used from there.
unsafe impl Send for UserData {}

thread_local! {
    /// Set on a callback thread: blocking calls made here refuse instead of deadlocking.
    static ON_CALLBACK_THREAD: Cell<bool> = const { Cell::new(false) };
    /// Set on a callback thread whose client was freed from one of its callbacks: the
    /// callbacks left in the job running now are skipped.
    static STOPPING: Cell<bool> = const { Cell::new(false) };
}

/// Whether this callback thread's client was freed (from a callback): run no more callbacks.
pub(crate) fn stopping() -> bool {
    STOPPING.with(Cell::get)
}

/// Whether this thread is a callback thread (or a thread of a library runtime), where a
/// blocking call must refuse.
pub(crate) fn on_library_thread() -> bool {
    ON_CALLBACK_THREAD.with(Cell::get) || tokio::runtime::Handle::try_current().is_ok()
}

/// One client's callback thread and the queue to it.
#[derive(Debug)]
pub(crate) struct CallbackThread {
    jobs: mpsc::Sender<Job>,
    stopped: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CallbackThread {
    /// Starts the thread.
    pub(crate) fn start() -> std::io::Result<CallbackThread> {
        let (jobs, mut receiver) = mpsc::channel::<Job>(CALLBACK_QUEUE);
        let stopped = Arc::new(AtomicBool::new(false));
        let stop = stopped.clone();
        let thread =
            std::thread::Builder::new().name("iot443-callbacks".into()).spawn(move || {
                ON_CALLBACK_THREAD.with(|flag| flag.set(true));
                while let Some(job) = receiver.blocking_recv() {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(job)) {
                        tracing::error!(
                            "an iot443 callback panicked (a bug in iot443): {}",
                            panic_message(&panic)
                        );
                    }
                }
            })?;
        Ok(CallbackThread { jobs, stopped, thread: Some(thread) })
    }

    /// A sender for the network thread's tasks.
    pub(crate) fn sender(&self) -> mpsc::Sender<Job> {
        self.jobs.clone()
    }

    /// Runs no more callbacks, and waits for the one running now unless it is this thread's
    /// own (`iot443_client_free` called from a callback): that thread ends after it returns.
    /// The queue must have no other sender left for the thread to end.
    pub(crate) fn stop(mut self) {
        self.stopped.store(true, Ordering::Release);
        let own_thread = self
            .thread
            .as_ref()
            .is_some_and(|thread| thread.thread().id() == std::thread::current().id());
        if own_thread {
            STOPPING.with(|stopping| stopping.set(true));
        }
        let CallbackThread { jobs, thread, .. } = &mut self;
        // Wake the thread if it waits for a job: the stop flag ends it.
        let _ = jobs.try_send(Box::new(|| {}));
        drop(std::mem::replace(jobs, mpsc::channel(1).0));
        if let Some(thread) = thread.take()
            && !own_thread
        {
            let _ = thread.join();
        }
    }
}
