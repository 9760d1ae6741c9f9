//! One request of any operation, as the service runs it: the payload read for its operation
//! (get and delete: empty or `{"clientToken":…}`; update: an [`UpdateRequest`]) and applied to a
//! [`Shadow`]. The emulator's MQTT service and its store (the cloud side) both answer this way.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::document::{Shadow, UpdateAnswers};
use super::errors::Rejection;
use super::request::{UpdateRequest, request_client_token};
use super::topics::{ShadowId, ShadowOperation};

/// What an accepted request publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// The `…/accepted` document of a get or a delete.
    Document(Vec<u8>),
    /// An update's accepted, delta and documents.
    Update(Box<UpdateAnswers>),
}

impl Answered {
    /// The `…/accepted` document.
    pub fn accepted(&self) -> &[u8] {
        match self {
            Self::Document(document) => document,
            Self::Update(answers) => &answers.accepted,
        }
    }
}

impl Shadow {
    /// Runs one `operation` request with `payload` on this shadow (`id` names it in a 404).
    ///
    /// ```
    /// use iot443_proto::aws::shadow::{Shadow, ShadowId, ShadowOperation, ThingName};
    ///
    /// let id = ShadowId::classic(ThingName::new("lamp").unwrap());
    /// let mut shadow = Shadow::new();
    /// let update = br#"{"state":{"reported":{"on":true}}}"#;
    /// shadow.answer(&id, ShadowOperation::Update, update, 5).unwrap();
    /// let got = shadow.answer(&id, ShadowOperation::Get, b"", 6).unwrap();
    /// assert!(got.accepted().starts_with(br#"{"state":{"reported":{"on":true}}"#));
    /// ```
    ///
    /// # Errors
    /// The rejection the service publishes on `…/rejected`; the shadow is then unchanged.
    pub fn answer(
        &mut self,
        id: &ShadowId,
        operation: ShadowOperation,
        payload: &[u8],
        now: u64,
    ) -> Result<Answered, Rejection> {
        match operation {
            ShadowOperation::Get => request_client_token(payload)
                .and_then(|token| self.get(id, token.as_ref(), now))
                .map(Answered::Document),
            ShadowOperation::Delete => request_client_token(payload)
                .and_then(|token| self.delete(id, token.as_ref(), now))
                .map(Answered::Document),
            ShadowOperation::Update => UpdateRequest::parse(payload)
                .and_then(|update| self.update(&update, now))
                .map(|answers| Answered::Update(Box::new(answers))),
        }
    }
}
