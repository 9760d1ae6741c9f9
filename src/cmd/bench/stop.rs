//! When a load stops early: Ctrl-C, or its time limit.

use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Resolves when the load must stop; cheap to clone and to wait on from many places.
#[derive(Clone)]
pub struct Stop {
    reason: watch::Receiver<Option<&'static str>>,
}

impl Stop {
    /// Stops at Ctrl-C or after `limit`.
    pub fn at_ctrl_c_or_after(limit: Duration) -> Stop {
        let (set, reason) = watch::channel(None);
        let deadline = Instant::now() + limit;
        tokio::spawn(async move {
            let why = tokio::select! {
                _ = tokio::signal::ctrl_c() => "interrupted (Ctrl-C): the summary so far",
                _ = tokio::time::sleep_until(deadline) => "the --time-limit was reached: the summary so far",
                _ = set.closed() => return,
            };
            let _ = set.send(Some(why));
        });
        Stop { reason }
    }

    /// Waits until the load must stop, and says why.
    pub async fn wait(&mut self) -> &'static str {
        match self.reason.wait_for(Option::is_some).await {
            Ok(reason) => reason.unwrap_or("stopped"),
            // The watcher ended without a reason: the load is over anyway.
            Err(_) => std::future::pending().await,
        }
    }

    /// Why the load stopped, if it did.
    pub fn reason(&self) -> Option<&'static str> {
        *self.reason.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_time_limit_stops_the_load_in_virtual_time() {
        let mut stop = Stop::at_ctrl_c_or_after(Duration::from_secs(300));
        assert_eq!(stop.reason(), None);
        let why = tokio::time::timeout(Duration::from_secs(301), stop.wait()).await.unwrap();
        assert!(why.contains("--time-limit"), "{why}");
        assert!(stop.reason().is_some());
    }
}
