//! Matching answers to requests by `clientToken`: each request registers its token and waits;
//! one task per operation and handle reads that operation's `accepted` and `rejected` topics and
//! hands each answer to the request with its token. Answers with other tokens (another client's,
//! another handle's, a request that already timed out) are dropped.

use crate::Subscription;
use crate::message::Message;
use bytes::Bytes;
use iot443_proto::aws::shadow::{ShadowSuffix, ShadowTopic};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{oneshot, watch};

/// An answer to one request.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The payload of `…/accepted`.
    Accepted(Bytes),
    /// The payload of `…/rejected`.
    Rejected(Bytes),
}

/// The requests of one handle waiting for their answers, by token.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    requests: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
}

impl Waiting {
    /// Registers `token`; `None` when a request with it is already waiting.
    pub(crate) fn register(
        self: &Arc<Self>,
        token: &str,
    ) -> Option<(Registration, oneshot::Receiver<Answer>)> {
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        if requests.contains_key(token) {
            return None;
        }
        let (sender, receiver) = oneshot::channel();
        requests.insert(token.to_owned(), sender);
        Some((Registration { waiting: Arc::clone(self), token: token.to_owned() }, receiver))
    }

    /// Hands `answer` to the request with `token`; false when none waits for it.
    fn answer(&self, token: &str, answer: Answer) -> bool {
        let sender = self.requests.lock().unwrap_or_else(PoisonError::into_inner).remove(token);
        sender.is_some_and(|sender| sender.send(answer).is_ok())
    }

    /// How many requests wait.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// A registered token; dropping it (the request answered, timed out or cancelled) frees it.
#[derive(Debug)]
pub(crate) struct Registration {
    waiting: Arc<Waiting>,
    token: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.waiting.requests.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.token);
    }
}

/// Reads `subscription` (an operation's accepted and rejected topics) and hands each answer on,
/// until the handle is dropped (`alive` closes) or the client ends.
pub(crate) fn spawn_dispatcher(
    mut subscription: Subscription,
    waiting: Arc<Waiting>,
    mut alive: watch::Receiver<()>,
) {
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                message = subscription.recv() => message,
                _ = alive.changed() => None,
            };
            let Some(message) = message else { return };
            dispatch(&waiting, message);
        }
    });
}

/// Hands one message to the request whose token it carries.
fn dispatch(waiting: &Waiting, message: Message) {
    let suffix = ShadowTopic::parse(&message.topic).map(|topic| topic.suffix);
    let token = token_of(&message.payload);
    let answer = match suffix {
        Some(ShadowSuffix::Accepted) => Answer::Accepted(message.payload),
        Some(ShadowSuffix::Rejected) => Answer::Rejected(message.payload),
        _ => return,
    };
    let handed = token.is_some_and(|token| waiting.answer(&token, answer));
    if !handed {
        tracing::debug!(topic = message.topic, "shadow answer for no request of this handle");
    }
}

/// The `clientToken` of an answer, if it has one. Only that member is read: the request reads
/// the rest into its own type.
fn token_of(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Token {
        #[serde(rename = "clientToken")]
        client_token: Option<String>,
    }
    serde_json::from_slice::<Token>(payload).ok()?.client_token
}

/// Generates `clientToken`s unique per request: a random prefix per handle and a counter
/// (`iot443-<16 hex>-<n>`, at most 47 bytes).
#[derive(Debug)]
pub(crate) struct Tokens {
    prefix: String,
    next: AtomicU64,
}

impl Tokens {
    pub(crate) fn new() -> Self {
        Self { prefix: format!("iot443-{:016x}", rand::random::<u64>()), next: AtomicU64::new(1) }
    }

    pub(crate) fn next(&self) -> String {
        format!("{}-{}", self.prefix, self.next.fetch_add(1, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use iot443_proto::QoS;

    fn message(topic: &str, payload: &str) -> Message {
        Message {
            topic: topic.into(),
            payload: Bytes::from(payload.to_owned()),
            qos: QoS::AtLeastOnce,
            retain: false,
            dup: false,
        }
    }

    #[test]
    fn answers_go_to_their_token_only() {
        let waiting = Arc::new(Waiting::default());
        let (registration, mut receiver) = waiting.register("mine").unwrap();
        assert!(waiting.register("mine").is_none(), "a token waits once");
        dispatch(&waiting, message("$aws/things/t/shadow/get/accepted", r#"{"clientToken":"x"}"#));
        dispatch(&waiting, message("$aws/things/t/shadow/get/accepted", r#"{"version":1}"#));
        dispatch(&waiting, message("$aws/things/t/shadow/get/accepted", "not json"));
        assert!(receiver.try_recv().is_err());
        dispatch(
            &waiting,
            message("$aws/things/t/shadow/get/rejected", r#"{"clientToken":"mine"}"#),
        );
        assert!(matches!(receiver.try_recv(), Ok(Answer::Rejected(_))));
        drop(registration);
        assert_eq!(waiting.len(), 0);
    }

    #[test]
    fn a_dropped_registration_frees_its_token() {
        let waiting = Arc::new(Waiting::default());
        let (registration, _receiver) = waiting.register("t").unwrap();
        drop(registration);
        assert!(waiting.register("t").is_some());
        let tokens = Tokens::new();
        let (a, b) = (tokens.next(), tokens.next());
        assert_ne!(a, b);
        assert!(a.len() <= 64);
    }
}
