//! Bounds of the queue of publishes made while the client is disconnected: [`OfflineQueue`]
//! and [`WhenFull`].

/// What to do with a new publish when the offline queue is full.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// The publish fails with [`ClientError::QueueFull`](crate::ClientError::QueueFull).
    #[default]
    Error,
    /// The oldest queued QoS 0 message is dropped to make room (QoS 1 messages are never
    /// dropped; with none of QoS 0 to drop, the publish fails).
    DropOldestQos0,
}

/// Bounds of the queue of publishes waiting while the client is disconnected (and behind the
/// in-flight window).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineQueue {
    /// Most messages queued. Default 100,000.
    pub max_messages: usize,
    /// Most payload bytes queued. Default 64 MiB.
    pub max_bytes: usize,
    /// What happens when a bound is reached.
    pub when_full: WhenFull,
}

impl Default for OfflineQueue {
    fn default() -> Self {
        OfflineQueue {
            max_messages: 100_000,
            max_bytes: 64 * 1024 * 1024,
            when_full: WhenFull::Error,
        }
    }
}
