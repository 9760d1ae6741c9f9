//! The live progress line: drawn on stderr by a thread of its own, from counters the load
//! updates, so that a slow terminal never slows the load.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the line is redrawn.
const REDRAW: Duration = Duration::from_millis(100);

/// A progress line, or nothing when stderr is not a terminal.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Draws `line()` every 100 ms while stderr is a terminal (and nothing otherwise).
    pub fn start(line: impl Fn() -> String + Send + 'static) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Progress { stop, thread: None };
        }
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("iot443-progress".to_owned())
            .spawn(move || {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                bar.set_style(style);
                while !stopping.load(Ordering::Relaxed) {
                    bar.set_message(line());
                    bar.tick();
                    std::thread::sleep(REDRAW);
                }
                bar.finish_and_clear();
            })
            .ok();
        Progress { stop, thread }
    }

    /// Clears the line (before the summary is printed).
    pub async fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
