//! Runs of messages dropped for a client that does not keep up, logged twice each.
//!
//! A slow subscriber can make the broker drop thousands of messages a second, and one log line
//! per message would let it (or whoever floods its topics) grow the log as fast as it likes. A
//! run starts at the first message dropped and ends when the client has caught up to half the
//! limit, or when its session or connection ends. It is logged once when it starts and once
//! when it ends, with the number of messages dropped; the connection's close line gives the
//! count again. A new run needs the client to take half the limit first, so two log lines cost
//! it at least that many messages.

/// One run of dropped messages: how many so far, 0 when no run is under way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DropRun {
    dropped: u64,
}

impl DropRun {
    /// Counts a dropped message. Returns `true` for the first of a run: log that it started.
    pub(crate) fn record(&mut self) -> bool {
        self.dropped += 1;
        self.dropped == 1
    }

    /// Whether a run is under way.
    pub(crate) fn is_running(&self) -> bool {
        self.dropped > 0
    }

    /// Ends the run under way, if any, and returns how many messages it dropped: log that.
    pub(crate) fn end(&mut self) -> Option<u64> {
        let dropped = std::mem::take(&mut self.dropped);
        (dropped > 0).then_some(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_starts_once_and_ends_with_its_count() {
        let mut run = DropRun::default();
        assert_eq!(run.end(), None);
        assert!(run.record());
        assert!(!run.record());
        assert!(!run.record());
        assert!(run.is_running());
        assert_eq!(run.end(), Some(3));
        assert!(!run.is_running());
        assert!(run.record(), "the next drop starts a new run");
    }
}
