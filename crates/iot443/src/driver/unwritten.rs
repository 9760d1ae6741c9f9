//! QoS 0 publishes encoded into the write buffer but not yet on the socket: their `Delivery`
//! resolves once the bytes that carry them are written and flushed, and fails when the
//! connection is lost first.

use std::collections::VecDeque;

/// Byte offsets in the stream of everything appended to the write buffer of one connection.
/// `Id` is the session's `Id`.
#[derive(Debug)]
pub(super) struct Unwritten<Id> {
    /// Bytes appended to the write buffer since the connection opened.
    appended: u64,
    /// Of those, bytes written to the transport.
    written: u64,
    /// QoS 0 publishes, each with the offset its bytes end at (at the latest).
    waiting: VecDeque<(u64, Id)>,
}

impl<Id> Default for Unwritten<Id> {
    fn default() -> Self {
        Unwritten { appended: 0, written: 0, waiting: VecDeque::new() }
    }
}

impl<Id: Copy> Unwritten<Id> {
    /// `n` more bytes were appended to the write buffer.
    pub(super) fn appended(&mut self, n: usize) {
        self.appended += n as u64;
    }

    /// The QoS 0 publish `id` was encoded into what has been appended so far.
    pub(super) fn encoded(&mut self, id: Id) {
        self.waiting.push_back((self.appended, id));
    }

    /// `n` bytes were written to the transport (maybe still buffered in TLS until a flush).
    pub(super) fn written(&mut self, n: usize) {
        self.written += n as u64;
    }

    /// After a flush: the publishes whose bytes are now all on the socket.
    pub(super) fn flushed(&mut self) -> Vec<Id> {
        let mut done = Vec::new();
        while let Some(&(end, id)) = self.waiting.front() {
            if end > self.written {
                break;
            }
            self.waiting.pop_front();
            done.push(id);
        }
        done
    }

    /// The connection is gone with its write buffer: every waiting publish, and a fresh count.
    pub(super) fn lost(&mut self) -> Vec<Id> {
        self.appended = 0;
        self.written = 0;
        self.waiting.drain(..).map(|(_, id)| id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_is_done_only_when_every_byte_up_to_its_end_is_written() {
        let ids = [10_u64, 11, 12];
        let mut unwritten = Unwritten::default();
        unwritten.appended(10);
        unwritten.encoded(ids[0]);
        unwritten.appended(10);
        unwritten.encoded(ids[1]);
        unwritten.written(15);
        assert_eq!(unwritten.flushed(), vec![ids[0]]);
        unwritten.written(5);
        assert_eq!(unwritten.flushed(), vec![ids[1]]);
        assert!(unwritten.flushed().is_empty());

        unwritten.appended(7);
        unwritten.encoded(ids[2]);
        assert_eq!(unwritten.lost(), vec![ids[2]]);
        unwritten.appended(1);
        unwritten.encoded(ids[0]);
        unwritten.written(1);
        assert_eq!(unwritten.flushed(), vec![ids[0]], "the count starts again per connection");
    }
}
