//! Ending the driver: the application's disconnect (once everything queued is delivered), and
//! the last step, bounded, whatever the application does with its subscriptions.

use super::Driver;
use super::state::Link;
use crate::message::Event;
use std::time::Duration;

/// How long parked messages may wait at the end for room in a subscription's queue.
const HAND_ON_AT_THE_END: Duration = Duration::from_secs(1);

impl Driver {
    /// Finishes a requested disconnect once nothing is in flight or queued: DISCONNECT is
    /// written and the transport shut down within the connect timeout.
    pub(super) async fn maybe_finish_disconnect(&mut self) {
        if self.link.is_ended() || self.app.disconnecting.is_none() {
            return;
        }
        if self.session.inflight_len() > 0 || self.session.queued_len() > 0 {
            return;
        }
        let now = self.now();
        self.session.disconnect(now);
        let bound = self.session.config().connect_timeout;
        let (flushed, lost) = match &mut self.link {
            Link::Up(up) => {
                let appended = self.session.poll_transmit(now, up.output.buf_mut());
                up.output.unwritten_mut().appended(appended);
                let flushed = up.output.close(bound).await;
                if !flushed {
                    tracing::debug!("DISCONNECT could not be flushed; closing anyway");
                }
                (flushed, up.output.unwritten_mut().lost())
            }
            _ => (false, Vec::new()),
        };
        for id in lost {
            let result = if flushed { Ok(()) } else { Err(self.not_written()) };
            self.answer(id, result);
        }
        // Refuse further commands before answering, so that a call made after `disconnect`
        // returned fails with `Closed` at once instead of being queued for a driver that ends.
        // The answer itself waits for the end of `finish`: once `disconnect` returns, the
        // outbox file is closed (its lock released).
        self.app.commands.close();
        self.app.disconnected = self.app.disconnecting.take();
        self.link = Link::Ended { reason: "disconnected by the application".into(), closing: None };
    }

    /// The last step: the transport shut down, parked messages handed on within a bound, the
    /// queues closed, `Disconnected` reported, the outbox's thread ended.
    pub(super) async fn finish(mut self) {
        self.flush_outbox_removals();
        let (reason, closing) = match std::mem::replace(
            &mut self.link,
            Link::Ended { reason: String::new(), closing: None },
        ) {
            Link::Ended { reason, closing } => (reason, closing),
            _ => (String::new(), None),
        };
        if let Some(mut output) = closing {
            output.shut_down(self.session.config().connect_timeout).await;
        }
        self.app.deliveries.flush(&self.app.events, HAND_ON_AT_THE_END).await;
        let _ = self.app.events.try_send(Event::Disconnected { reason });
        if let Some(durable) = self.durable.take() {
            durable.close().await;
        }
        if let Some(done) = self.app.disconnected.take() {
            let _ = done.send(Ok(()));
        }
    }
}
