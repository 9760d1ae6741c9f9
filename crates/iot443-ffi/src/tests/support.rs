//! What the boundary tests share: an emulator on its own runtime, C strings, and a place where
//! callbacks leave what they saw, waited on with a timeout.

use crate::error::iot443_last_error;
use iot443_emulator::server::{Emulator, EmulatorOptions};
use std::ffi::{CStr, CString, c_char};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for something to happen before it fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// A `CString` for `text`.
pub(crate) fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// This thread's last error, as a Rust string.
pub(crate) fn last_error() -> String {
    // SAFETY: iot443_last_error returns a NUL-terminated string owned by this thread.
    unsafe { CStr::from_ptr(iot443_last_error()) }.to_string_lossy().into_owned()
}

/// A static string from the library.
pub(crate) fn library_str(text: *const c_char) -> String {
    assert!(!text.is_null());
    // SAFETY: the library's static, NUL-terminated strings.
    unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
}

/// The emulator, running on a runtime of the test's own (not the client's).
pub(crate) struct TestEmulator {
    pub(crate) emulator: Option<Emulator>,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl TestEmulator {
    pub(crate) fn start() -> TestEmulator {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut options = EmulatorOptions::new(dir.path());
        options.alpn_port = 0;
        options.mqtts_port = None;
        options.https_port = None;
        let emulator = runtime.block_on(Emulator::start(options)).unwrap();
        TestEmulator { emulator: Some(emulator), _runtime: runtime, _dir: dir }
    }

    /// The `iot443.toml` the emulator wrote.
    pub(crate) fn config_path(&self) -> CString {
        let path = self.emulator.as_ref().unwrap().pki.config_path();
        c(path.to_str().unwrap())
    }
}

impl Drop for TestEmulator {
    fn drop(&mut self) {
        // Dropping it tells it to stop; the runtime goes with the test.
        drop(self.emulator.take());
    }
}

/// What callbacks saw, with a condition variable to wait on.
pub(crate) struct Seen<T> {
    items: Mutex<Vec<T>>,
    changed: Condvar,
}

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Seen { items: Mutex::new(Vec::new()), changed: Condvar::new() }
    }
}

impl<T: Clone> Seen<T> {
    pub(crate) fn push(&self, item: T) {
        self.items.lock().unwrap().push(item);
        self.changed.notify_all();
    }

    /// Waits until `done` holds for what was seen, at most [`PATIENCE`].
    pub(crate) fn wait_until(&self, what: &str, done: impl Fn(&[T]) -> bool) -> Vec<T> {
        let deadline = Instant::now() + PATIENCE;
        let mut items = self.items.lock().unwrap();
        while !done(&items) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}");
            items = self.changed.wait_timeout(items, left).unwrap().0;
        }
        items.clone()
    }
}

/// Frees a client when dropped, so that a failing test stops its callbacks before what they
/// point to goes away. Declare it after what the callbacks use.
pub(crate) struct FreeOnDrop(pub(crate) *mut crate::client::iot443_client);

impl Drop for FreeOnDrop {
    fn drop(&mut self) {
        // SAFETY: a client from iot443_client_new*, freed only here.
        unsafe { crate::client::iot443_client_free(self.0) }
    }
}
