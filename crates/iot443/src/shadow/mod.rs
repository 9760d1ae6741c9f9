//! Device Shadow (AWS-IOT.md §4): a [`Shadow`] handle for a thing's classic shadow or a named
//! shadow, over a [`Client`].
//!
//! * [`Shadow::get`], [`Shadow::update`] and [`Shadow::delete`] publish a request and wait for
//!   its answer. Before an operation's first request, the handle subscribes (QoS 1) to that
//!   operation's `accepted` and `rejected` topics, once; the client restores the subscriptions
//!   after every reconnect.
//! * Answers are matched to requests by a `clientToken` generated per request; answers with
//!   other tokens (another client's, another handle's) are ignored.
//! * At most [`MAX_IN_FLIGHT`] requests of one [`Client`] wait for answers at once, whatever
//!   the number of handles (IoT Core answers 429 beyond); more wait for a free slot.
//! * Each request waits at most [`Shadow::timeout`] ([`DEFAULT_TIMEOUT`] unless set) from its
//!   publish; a rejection is a [`ShadowError::Rejected`] with the code and message.
//! * Bad input is refused before anything is sent, with the limit it hit: a section that is not
//!   an object, a `clientToken` over 64 bytes, desired and reported over 8 KB, nesting over 6
//!   levels, an invalid thing or shadow name ([`ShadowError::InvalidRequest`],
//!   [`ShadowError::InvalidName`]). The rules are those of `iot443_proto::aws::shadow`, which
//!   the emulator's service runs too.
//! * [`Shadow::deltas`] and [`Shadow::documents`] stream `…/update/delta` and
//!   `…/update/documents`; [`Shadow::keep_reported_in_sync`] runs the device-side pattern.
//!
//! ```no_run
//! # async fn demo(client: iot443::Client) -> Result<(), iot443::shadow::ShadowError> {
//! use iot443::shadow::ShadowUpdate;
//! use serde_json::json;
//!
//! let shadow = client.shadow("tls-test")?;
//! let accepted = shadow.update(ShadowUpdate::new().reported(json!({"windowOpen": false}))).await?;
//! println!("version {}", accepted.version);
//! let document = shadow.get().await?;
//! println!("reported: {:?}, delta: {:?}", document.state.reported, document.state.delta);
//! let mut deltas = shadow.deltas().await?;
//! while let Some(delta) = deltas.recv().await {
//!     println!("asked to change {}", delta.state);
//! }
//! # Ok(()) }
//! ```

mod answers;
mod correlate;
mod error;
mod streams;
mod sync;
mod update;

pub use answers::{
    DeleteAccepted, DocumentSnapshot, ShadowDelta, ShadowDocument, ShadowDocuments, ShadowState,
    UpdateAccepted,
};
pub use error::{RequestProblem, ShadowError};
pub use iot443_proto::aws::shadow::{ShadowId, ShadowName, ShadowOperation, ThingName};
pub use streams::{DeltaStream, DocumentsStream};
pub use sync::ShadowSync;
pub use update::ShadowUpdate;

use crate::{Client, ClientError};
use bytes::Bytes;
use correlate::{Answer, Tokens, Waiting};
use iot443_proto::QoS;
use iot443_proto::aws::shadow::{ErrorDocument, ShadowSuffix};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OnceCell, watch};

/// Shadow requests one [`Client`] may have waiting for answers at once (IoT Core answers 429
/// to more than 10 in flight on one connection). The rest wait for a free slot.
///
/// ```
/// assert_eq!(iot443::shadow::MAX_IN_FLIGHT, 10);
/// ```
pub const MAX_IN_FLIGHT: usize = 10;

/// How long a request waits for its answer unless [`Shadow::with_timeout`] says otherwise.
///
/// ```
/// assert_eq!(iot443::shadow::DEFAULT_TIMEOUT, std::time::Duration::from_secs(10));
/// ```
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A handle on one shadow: a thing's classic shadow or one of its named shadows. Cheap to clone;
/// clones share their subscriptions and their pending requests.
///
/// ```no_run
/// # async fn demo(client: iot443::Client) -> Result<(), iot443::shadow::ShadowError> {
/// let classic = client.shadow("tls-test")?;
/// let config = client.named_shadow("tls-test", "config")?;
/// assert_eq!(config.label(), "tls-test (named shadow config)");
/// match classic.get().await {
///     Ok(document) => println!("{}", String::from_utf8_lossy(&document.raw)),
///     Err(error) if error.rejection_code() == Some(404) => println!("no shadow yet"),
///     Err(error) => return Err(error),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Shadow {
    inner: Arc<Inner>,
    timeout: Duration,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    id: ShadowId,
    label: String,
    tokens: Tokens,
    waiting: Arc<Waiting>,
    /// Whether each operation's answer topics are subscribed (get, update, delete).
    subscribed: [OnceCell<()>; 3],
    /// Dropped with the last handle: the answer-reading tasks then end.
    alive: watch::Sender<()>,
}

impl Client {
    /// A handle on the classic (unnamed) shadow of `thing`. Nothing is sent until the first
    /// request.
    ///
    /// # Errors
    /// [`ShadowError::InvalidName`] unless `thing` is 1 to 128 characters of `[a-zA-Z0-9:_-]`.
    pub fn shadow(&self, thing: &str) -> Result<Shadow, ShadowError> {
        Ok(Shadow::new(self, ShadowId::classic(ThingName::new(thing)?)))
    }

    /// A handle on the named shadow `name` of `thing`. Nothing is sent until the first request.
    ///
    /// # Errors
    /// [`ShadowError::InvalidName`] for an invalid thing name, or a shadow name that is not 1 to
    /// 64 characters of `[$a-zA-Z0-9:_-]`.
    pub fn named_shadow(&self, thing: &str, name: &str) -> Result<Shadow, ShadowError> {
        Ok(Shadow::new(self, ShadowId::named(ThingName::new(thing)?, ShadowName::new(name)?)))
    }
}

impl Shadow {
    /// A handle on the shadow `id`, through `client`.
    ///
    /// ```no_run
    /// # async fn demo(client: iot443::Client) -> Result<(), iot443::shadow::ShadowError> {
    /// use iot443::shadow::{Shadow, ShadowId, ThingName};
    /// let id = ShadowId::classic(ThingName::new("tls-test")?);
    /// let shadow = Shadow::new(&client, id);
    /// assert_eq!(shadow.label(), "tls-test");
    /// # Ok(()) }
    /// ```
    pub fn new(client: &Client, id: ShadowId) -> Shadow {
        let label = error::label(&id);
        let inner = Inner {
            client: client.clone(),
            id,
            label,
            tokens: Tokens::new(),
            waiting: Arc::default(),
            subscribed: Default::default(),
            alive: watch::channel(()).0,
        };
        Shadow { inner: Arc::new(inner), timeout: DEFAULT_TIMEOUT }
    }

    /// The same handle, whose requests wait at most `timeout` for their answers.
    ///
    /// ```no_run
    /// # async fn demo(client: iot443::Client) -> Result<(), iot443::shadow::ShadowError> {
    /// let shadow = client.shadow("tls-test")?.with_timeout(std::time::Duration::from_secs(3));
    /// assert_eq!(shadow.timeout(), std::time::Duration::from_secs(3));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Shadow {
        self.timeout = timeout;
        self
    }

    /// How long a request waits for its answer, from its publish.
    ///
    /// ```no_run
    /// # async fn demo(client: iot443::Client) -> Result<(), iot443::shadow::ShadowError> {
    /// assert_eq!(client.shadow("tls-test")?.timeout(), iot443::shadow::DEFAULT_TIMEOUT);
    /// # Ok(()) }
    /// ```
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Which shadow this is.
    ///
    /// ```no_run
    /// # async fn demo(client: iot443::Client) -> Result<(), iot443::shadow::ShadowError> {
    /// let shadow = client.named_shadow("tls-test", "config")?;
    /// assert_eq!(shadow.id().prefix(), "$aws/things/tls-test/shadow/name/config");
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> &ShadowId {
        &self.inner.id
    }

    /// How errors name this shadow: `tls-test`, or `tls-test (named shadow config)`.
    ///
    /// ```no_run
    /// # async fn demo(client: iot443::Client) -> Result<(), iot443::shadow::ShadowError> {
    /// assert_eq!(client.shadow("tls-test")?.label(), "tls-test");
    /// # Ok(()) }
    /// ```
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// Reads the whole document (`…/get`).
    ///
    /// # Errors
    /// [`ShadowError::Rejected`] with 404 when the shadow does not exist (or was deleted),
    /// [`ShadowError::Timeout`], or the client's error.
    ///
    /// ```no_run
    /// # async fn demo(client: iot443::Client) -> Result<(), iot443::shadow::ShadowError> {
    /// let document = client.shadow("tls-test")?.get().await?;
    /// println!("version {}: {:?}", document.version, document.state.reported);
    /// # Ok(()) }
    /// ```
    pub async fn get(&self) -> Result<ShadowDocument, ShadowError> {
        let operation = ShadowOperation::Get;
        let token = self.inner.tokens.next();
        let answer = self.request(operation, token.clone(), token_payload(&token)).await?;
        ShadowDocument::parse(&answer).map_err(|detail| self.unreadable(operation, detail))
    }

    /// Changes `desired` and/or `reported` (`…/update`) and returns the accepted answer.
    ///
    /// # Errors
    /// [`ShadowError::InvalidRequest`] before anything is sent when the update breaks a rule
    /// the client can check ([`ShadowUpdate::check`]); [`ShadowError::Rejected`] (409 for a
    /// version conflict, 413, 400, …), [`ShadowError::Timeout`], or the client's error.
    ///
    /// ```no_run
    /// # async fn demo(client: iot443::Client) -> Result<(), iot443::shadow::ShadowError> {
    /// use iot443::shadow::ShadowUpdate;
    /// let update = ShadowUpdate::new().desired(serde_json::json!({"windowOpen": true}));
    /// let accepted = client.shadow("tls-test")?.update(update).await?;
    /// println!("now at version {}", accepted.version);
    /// # Ok(()) }
    /// ```
    pub async fn update(&self, update: ShadowUpdate) -> Result<UpdateAccepted, ShadowError> {
        let operation = ShadowOperation::Update;
        let token = update.token().map_or_else(|| self.inner.tokens.next(), str::to_owned);
        let request = update.request(Some(token.as_str())).map_err(|problem| {
            ShadowError::InvalidRequest { operation, shadow: self.inner.label.clone(), problem }
        })?;
        let answer = self.request(operation, token, request.to_json()).await?;
        UpdateAccepted::parse(&answer).map_err(|detail| self.unreadable(operation, detail))
    }

    /// Deletes the shadow (`…/delete`). Its version is kept: a shadow created again continues
    /// from it.
    ///
    /// # Errors
    /// [`ShadowError::Rejected`] with 404 when there is no shadow, [`ShadowError::Timeout`], or
    /// the client's error.
    ///
    /// ```no_run
    /// # async fn demo(client: iot443::Client) -> Result<(), iot443::shadow::ShadowError> {
    /// let deleted = client.shadow("tls-test")?.delete().await?;
    /// println!("deleted at version {}", deleted.version);
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self) -> Result<DeleteAccepted, ShadowError> {
        let operation = ShadowOperation::Delete;
        let token = self.inner.tokens.next();
        let answer = self.request(operation, token.clone(), token_payload(&token)).await?;
        DeleteAccepted::parse(&answer).map_err(|detail| self.unreadable(operation, detail))
    }

    /// Subscribes to `…/update/delta` and returns the stream of deltas. Read it: like any
    /// [`Subscription`](crate::Subscription), an unread stream holds the client's reading
    /// back once its queue is full.
    ///
    /// # Errors
    /// The client's error when the subscription fails.
    pub async fn deltas(&self) -> Result<DeltaStream, ShadowError> {
        let topic = self.topic(ShadowOperation::Update, ShadowSuffix::Delta);
        let subscription = self.inner.client.subscribe(&topic, QoS::AtLeastOnce).await?;
        Ok(DeltaStream::new(subscription, topic))
    }

    /// Subscribes to `…/update/documents` and returns the stream of its messages (the document
    /// before and after each accepted update). Read it, as for [`deltas`](Shadow::deltas).
    ///
    /// # Errors
    /// The client's error when the subscription fails.
    ///
    /// ```no_run
    /// # async fn demo(client: iot443::Client) -> Result<(), iot443::shadow::ShadowError> {
    /// let mut documents = client.shadow("tls-test")?.documents().await?;
    /// while let Some(change) = documents.recv().await {
    ///     println!("version {} -> {}", change.previous.map_or(0, |p| p.version), change.current.version);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn documents(&self) -> Result<DocumentsStream, ShadowError> {
        let topic = self.topic(ShadowOperation::Update, ShadowSuffix::Documents);
        let subscription = self.inner.client.subscribe(&topic, QoS::AtLeastOnce).await?;
        Ok(DocumentsStream::new(subscription, topic))
    }

    /// Publishes one request with `token` and waits for its answer: the accepted payload, or
    /// the rejection as an error.
    async fn request(
        &self,
        operation: ShadowOperation,
        token: String,
        payload: Vec<u8>,
    ) -> Result<Bytes, ShadowError> {
        self.subscribe_answers(operation).await?;
        let request_topic = self.topic(operation, ShadowSuffix::Request);
        let slots = Arc::clone(&self.inner.client.shadow_slots);
        let _slot = slots.acquire_owned().await.map_err(|_| ClientError::Closed)?;
        let (_registration, answer) =
            self.inner.waiting.register(&token).ok_or_else(|| ShadowError::InvalidRequest {
                operation,
                shadow: self.inner.label.clone(),
                problem: RequestProblem::ClientTokenInUse(token.clone()),
            })?;
        let exchange = async {
            let delivery =
                self.inner.client.publish(&request_topic, QoS::AtLeastOnce, payload).await?;
            let mut delivery = std::pin::pin!(delivery);
            let mut answer = std::pin::pin!(answer);
            let mut delivered = false;
            loop {
                tokio::select! {
                    biased;
                    answer = &mut answer => return answer.map_err(|_| ShadowError::from(ClientError::Closed)),
                    result = &mut delivery, if !delivered => {
                        result?;
                        delivered = true;
                    }
                }
            }
        };
        let answer = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer?,
            Err(_) => {
                return Err(ShadowError::Timeout {
                    operation,
                    shadow: self.inner.label.clone(),
                    after: self.timeout,
                });
            }
        };
        match answer {
            Answer::Accepted(payload) => Ok(payload),
            Answer::Rejected(payload) => {
                let document = ErrorDocument::parse(&payload).map_err(|error| {
                    ShadowError::UnreadableAnswer {
                        topic: self.topic(operation, ShadowSuffix::Rejected),
                        detail: error.to_string(),
                    }
                })?;
                Err(ShadowError::Rejected {
                    operation,
                    shadow: self.inner.label.clone(),
                    code: document.code,
                    message: document.message,
                })
            }
        }
    }

    /// Subscribes to the answers of `operation`, the first time only (a failed subscription is
    /// tried again by the next request).
    async fn subscribe_answers(&self, operation: ShadowOperation) -> Result<(), ShadowError> {
        let index = match operation {
            ShadowOperation::Get => 0,
            ShadowOperation::Update => 1,
            ShadowOperation::Delete => 2,
        };
        let Some(cell) = self.inner.subscribed.get(index) else { return Ok(()) };
        cell.get_or_try_init(|| async {
            let accepted = self.topic(operation, ShadowSuffix::Accepted);
            let rejected = self.topic(operation, ShadowSuffix::Rejected);
            let subscription = self
                .inner
                .client
                .subscribe_many(&[(&accepted, QoS::AtLeastOnce), (&rejected, QoS::AtLeastOnce)])
                .await?;
            correlate::spawn_dispatcher(
                subscription,
                Arc::clone(&self.inner.waiting),
                self.inner.alive.subscribe(),
            );
            Ok::<(), ShadowError>(())
        })
        .await
        .map(|_| ())
    }

    /// The topic of `operation` and `suffix` of this shadow. (Building one fails only for delta
    /// or documents of get or delete, which are never asked for.)
    fn topic(&self, operation: ShadowOperation, suffix: ShadowSuffix) -> String {
        self.inner
            .id
            .topic(operation, suffix)
            .map_or_else(|_| self.inner.id.prefix(), |topic| topic.to_string())
    }

    fn unreadable(&self, operation: ShadowOperation, detail: String) -> ShadowError {
        ShadowError::UnreadableAnswer {
            topic: self.topic(operation, ShadowSuffix::Accepted),
            detail,
        }
    }
}

/// The payload of a get or delete: `{"clientToken":"…"}`.
fn token_payload(token: &str) -> Vec<u8> {
    serde_json::json!({ "clientToken": token }).to_string().into_bytes()
}
