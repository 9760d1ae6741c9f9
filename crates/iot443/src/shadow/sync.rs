//! The device-side pattern: keep the reported state in sync with what is desired, at start, after
//! every reconnect, and at every delta.

use super::Shadow;
use super::answers::UpdateAccepted;
use super::error::ShadowError;
use super::streams::DeltaStream;
use super::update::ShadowUpdate;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Reports kept for [`ShadowSync::next_report`] before the oldest unread are dropped.
const REPORTS_KEPT: usize = 64;

/// A running [`Shadow::keep_reported_in_sync`]. Dropping it (or [`stop`](ShadowSync::stop))
/// ends the synchronisation.
///
/// ```no_run
/// # async fn demo(shadow: iot443::shadow::Shadow) -> Result<(), iot443::shadow::ShadowError> {
/// let mut sync = shadow.keep_reported_in_sync(serde_json::json!({"on": false}), |delta| delta.clone()).await?;
/// if let Some(report) = sync.next_report().await {
///     println!("reported, version {}", report?.version);
/// }
/// sync.stop();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ShadowSync {
    reports: mpsc::Receiver<Result<UpdateAccepted, ShadowError>>,
    task: JoinHandle<()>,
}

impl ShadowSync {
    /// The outcome of the next report the synchronisation sends (after a reconnect or a delta):
    /// the accepted answer, or why it failed (the synchronisation goes on after a failure; the
    /// next reconnect or delta tries again). `None` once it has ended (the client ended).
    /// Outcomes nobody reads are kept up to 64, then dropped.
    ///
    /// ```no_run
    /// # async fn demo(mut sync: iot443::shadow::ShadowSync) {
    /// while let Some(report) = sync.next_report().await {
    ///     match report {
    ///         Ok(accepted) => println!("reported at version {}", accepted.version),
    ///         Err(error) => eprintln!("{error}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn next_report(&mut self) -> Option<Result<UpdateAccepted, ShadowError>> {
        self.reports.recv().await
    }

    /// Ends the synchronisation.
    ///
    /// ```no_run
    /// # fn demo(sync: iot443::shadow::ShadowSync) {
    /// sync.stop(); // no more gets or reports
    /// # }
    /// ```
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for ShadowSync {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shadow {
    /// Keeps this shadow's `reported` state in step with the device, as the AWS device SDKs'
    /// samples do:
    ///
    /// 1. subscribes to the deltas, reports `initial_reported`, gets the document and, if it
    ///    has a delta, calls `apply` with it and reports what `apply` returns (all before this
    ///    call returns, so that its errors are this call's);
    /// 2. after every reconnect ([`Client::connection_changes`](crate::Client::connection_changes)),
    ///    gets the document again and does the same with its delta;
    /// 3. for each delta that arrives, newer than the last version handled (older ones are
    ///    stale: state is cumulative), calls `apply` and reports the result.
    ///
    /// `apply` gets the delta's `state` (the desired members that differ from reported, a JSON
    /// object) and returns what to report: an object merged into `reported` (usually the
    /// members it changed on the device).
    ///
    /// ```no_run
    /// # async fn demo(client: iot443::Client) -> Result<(), iot443::shadow::ShadowError> {
    /// use serde_json::json;
    ///
    /// let shadow = client.shadow("tls-test")?;
    /// let mut sync = shadow
    ///     .keep_reported_in_sync(json!({"windowOpen": false}), |delta| {
    ///         // Open or close the window, then report its new state.
    ///         json!({"windowOpen": delta["windowOpen"].as_bool().unwrap_or(false)})
    ///     })
    ///     .await?;
    /// while let Some(report) = sync.next_report().await {
    ///     println!("{:?}", report.map(|accepted| accepted.version));
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The first round's: an invalid `initial_reported`, a rejection, a timeout, the client's.
    pub async fn keep_reported_in_sync<F>(
        &self,
        initial_reported: Value,
        mut apply: F,
    ) -> Result<ShadowSync, ShadowError>
    where
        F: FnMut(&Value) -> Value + Send + 'static,
    {
        let mut changes = self.inner.client.connection_changes();
        changes.borrow_and_update();
        let deltas = self.deltas().await?;
        self.update(ShadowUpdate::new().reported(initial_reported)).await?;
        let mut handled = 0;
        self.resync(&mut apply, &mut handled).await?;
        let (reports_tx, reports) = mpsc::channel(REPORTS_KEPT);
        let shadow = self.clone();
        let task = tokio::spawn(async move {
            shadow.run_sync(deltas, changes, apply, handled, reports_tx).await;
        });
        Ok(ShadowSync { reports, task })
    }

    /// Steps 2 and 3 of [`keep_reported_in_sync`](Shadow::keep_reported_in_sync), until the
    /// client ends.
    async fn run_sync<F>(
        &self,
        mut deltas: DeltaStream,
        mut changes: tokio::sync::watch::Receiver<u64>,
        mut apply: F,
        mut handled: u64,
        reports: mpsc::Sender<Result<UpdateAccepted, ShadowError>>,
    ) where
        F: FnMut(&Value) -> Value + Send + 'static,
    {
        loop {
            let outcome = tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    changes.borrow_and_update();
                    self.resync(&mut apply, &mut handled).await
                }
                delta = deltas.recv() => {
                    let Some(delta) = delta else { return };
                    if delta.version <= handled {
                        continue;
                    }
                    handled = delta.version;
                    let reported = apply(&delta.state);
                    self.update(ShadowUpdate::new().reported(reported)).await.map(Some)
                }
            };
            let report = match outcome {
                Ok(Some(accepted)) => Ok(accepted),
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(shadow = self.label(), "shadow synchronisation: {error}");
                    Err(error)
                }
            };
            let _ = reports.try_send(report);
        }
    }

    /// Gets the document and, when it has a delta, applies and reports it. `None`: no delta.
    async fn resync<F>(
        &self,
        apply: &mut F,
        handled: &mut u64,
    ) -> Result<Option<UpdateAccepted>, ShadowError>
    where
        F: FnMut(&Value) -> Value,
    {
        let document = match self.get().await {
            Ok(document) => document,
            Err(error) if error.rejection_code() == Some(404) => return Ok(None),
            Err(error) => return Err(error),
        };
        *handled = (*handled).max(document.version);
        let Some(delta) = document.state.delta else { return Ok(None) };
        let reported = apply(&delta);
        self.update(ShadowUpdate::new().reported(reported)).await.map(Some)
    }
}
