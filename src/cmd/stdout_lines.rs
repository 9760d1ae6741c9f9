//! Standard output written on a thread of its own: a reader that stalls (a pipe nobody drains,
//! a paused terminal) stalls that thread, never the client's runtime. The bounded queue in front
//! of it is the backpressure: when it is full, `iot443 sub` stops taking messages, the client
//! stops reading the socket, and keep-alive goes on.

use std::io::{self, Write};
use tokio::sync::mpsc;

/// Lines waiting for stdout; beyond this, [`StdoutLines::send`] waits.
const QUEUED_LINES: usize = 1024;

/// The writer thread's end: lines in, written in order.
pub struct StdoutLines {
    lines: mpsc::Sender<String>,
    writer: std::thread::JoinHandle<io::Result<()>>,
}

impl StdoutLines {
    /// Starts the writer thread.
    pub fn start() -> io::Result<StdoutLines> {
        let (lines, mut queue) = mpsc::channel::<String>(QUEUED_LINES);
        let writer = std::thread::Builder::new().name("iot443-stdout".into()).spawn(move || {
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            while let Some(line) = queue.blocking_recv() {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
                // Flush once nothing more waits: a line is out as soon as it can be, and a burst
                // goes out in few writes.
                if queue.is_empty() {
                    out.flush()?;
                }
            }
            out.flush()
        })?;
        Ok(StdoutLines { lines, writer })
    }

    /// Queues `line` (without its newline), waiting while the queue is full. `false` when stdout
    /// is closed (for example piped into `head`): nothing more can be written.
    pub async fn send(&self, line: String) -> bool {
        self.lines.send(line).await.is_ok()
    }

    /// Writes what is queued and ends the thread (waited for on the blocking pool). An error
    /// other than a closed pipe is returned.
    pub async fn finish(self) -> io::Result<()> {
        let StdoutLines { lines, writer } = self;
        drop(lines);
        let joined = tokio::task::spawn_blocking(move || writer.join()).await;
        match joined {
            Ok(Ok(Err(error))) if error.kind() != io::ErrorKind::BrokenPipe => Err(error),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(io::Error::other("the stdout writer stopped unexpectedly")),
        }
    }
}
