//! The streams of a shadow's `…/update/delta` and `…/update/documents` messages.

use super::answers::{ShadowDelta, ShadowDocuments};
use crate::Subscription;

/// The deltas of one shadow, from [`Shadow::deltas`](crate::shadow::Shadow::deltas).
///
/// A message that is not a delta document is skipped (and logged at `warn`): one bad message
/// does not end the stream.
#[derive(Debug)]
pub struct DeltaStream {
    subscription: Subscription,
    topic: String,
}

impl DeltaStream {
    pub(crate) fn new(subscription: Subscription, topic: String) -> Self {
        Self { subscription, topic }
    }

    /// The next delta; `None` once the client has ended and every delta was taken.
    ///
    /// ```no_run
    /// # async fn demo(shadow: iot443::shadow::Shadow) -> Result<(), iot443::shadow::ShadowError> {
    /// let mut deltas = shadow.deltas().await?;
    /// while let Some(delta) = deltas.recv().await {
    ///     println!("version {}: {}", delta.version, delta.state);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn recv(&mut self) -> Option<ShadowDelta> {
        loop {
            let message = self.subscription.recv().await?;
            match ShadowDelta::parse(&message.payload) {
                Ok(delta) => return Some(delta),
                Err(detail) => tracing::warn!(topic = self.topic, "{detail}; skipped"),
            }
        }
    }

    /// The topic this stream reads, `$aws/things/<thing>/shadow[/name/<shadow>]/update/delta`.
    ///
    /// ```no_run
    /// # async fn demo(shadow: iot443::shadow::Shadow) -> Result<(), iot443::shadow::ShadowError> {
    /// let deltas = shadow.deltas().await?;
    /// assert!(deltas.topic().ends_with("/update/delta"));
    /// # Ok(()) }
    /// ```
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

/// The `documents` messages of one shadow, from
/// [`Shadow::documents`](crate::shadow::Shadow::documents).
///
/// A message that is not a documents message is skipped (and logged at `warn`).
#[derive(Debug)]
pub struct DocumentsStream {
    subscription: Subscription,
    topic: String,
}

impl DocumentsStream {
    pub(crate) fn new(subscription: Subscription, topic: String) -> Self {
        Self { subscription, topic }
    }

    /// The next message; `None` once the client has ended and every message was taken.
    ///
    /// ```no_run
    /// # async fn demo(shadow: iot443::shadow::Shadow) -> Result<(), iot443::shadow::ShadowError> {
    /// let mut documents = shadow.documents().await?;
    /// if let Some(change) = documents.recv().await {
    ///     println!("now at version {}", change.current.version);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn recv(&mut self) -> Option<ShadowDocuments> {
        loop {
            let message = self.subscription.recv().await?;
            match ShadowDocuments::parse(&message.payload) {
                Ok(documents) => return Some(documents),
                Err(detail) => tracing::warn!(topic = self.topic, "{detail}; skipped"),
            }
        }
    }

    /// The topic this stream reads, `…/update/documents`.
    ///
    /// ```no_run
    /// # async fn demo(shadow: iot443::shadow::Shadow) -> Result<(), iot443::shadow::ShadowError> {
    /// let documents = shadow.documents().await?;
    /// assert!(documents.topic().ends_with("/update/documents"));
    /// # Ok(()) }
    /// ```
    pub fn topic(&self) -> &str {
        &self.topic
    }
}
