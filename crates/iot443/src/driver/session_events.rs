//! What the session reports (acknowledgements, messages, refusals, a dead link), turned into
//! replies to the application's calls and events.

use super::Driver;
use crate::error::{ClientError, refusal_hint};
use crate::message::Event;
use crate::reconnect::Cause;
use iot443_proto::session::{Event as SessionEvent, LinkDeadReason};
use iot443_proto::topic::TopicFilter;

impl Driver {
    /// Moves everything the session has ready: bytes into the write buffer, events onwards.
    pub(super) fn drain_session(&mut self) {
        loop {
            let now = self.now();
            if self.link.is_some() {
                let appended = self.session.poll_transmit(now, &mut self.write_buf);
                self.unwritten.appended(appended);
            }
            let Some(event) = self.session.poll_event() else { break };
            self.handle_session_event(event);
        }
    }

    pub(super) fn handle_session_event(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::Connected { session_present } => {
                self.info.session_present = session_present;
                tracing::info!("{}", self.info.summary());
                if let Some(connected) = self.connected.take() {
                    let _ = connected.send(Ok(self.info.clone()));
                }
                let _ = self.events.try_send(Event::Connected(self.info.clone()));
            }
            SessionEvent::ConnectionRefused { code } => {
                let error = ClientError::ConnectionRefused {
                    addr: self.info.addr(),
                    code,
                    hint: refusal_hint(code),
                };
                let cause = Cause::Refused(error.to_string());
                self.lose_link(cause, Some(error), false);
            }
            SessionEvent::Message(publish) => self.deliveries.route(publish, &self.events),
            // Encoded into the write buffer: answered once its bytes are flushed.
            SessionEvent::PublishSent { id } => self.unwritten.encoded(id),
            SessionEvent::PublishDropped { id } => {
                let error = ClientError::ConnectionLost {
                    addr: self.info.addr(),
                    reason: "the QoS 0 message could not be encoded and was not sent".into(),
                };
                self.answer(id, Err(error));
            }
            SessionEvent::PublishAcked { id, .. } => {
                self.mark_healthy();
                self.answer(id, Ok(()));
            }
            SessionEvent::SubscribeAcked { packet_id, return_codes } => {
                self.mark_healthy();
                let Some(pending) = self.subscribes.remove(&packet_id) else { return };
                let refused = pending
                    .filters
                    .iter()
                    .zip(&return_codes)
                    .find(|(_, code)| code.granted_qos().is_none())
                    .map(|(entry, _)| entry.filter.as_str().to_owned());
                match refused {
                    Some(filter) => {
                        let filters: Vec<TopicFilter> =
                            pending.filters.iter().map(|entry| entry.filter.clone()).collect();
                        self.deliveries.remove_routes(&filters);
                        let _ = pending.done.send(Err(ClientError::SubscriptionRefused {
                            addr: self.info.addr(),
                            filter,
                        }));
                    }
                    None => {
                        let granted =
                            return_codes.iter().filter_map(|code| code.granted_qos()).collect();
                        let _ = pending.done.send(Ok(granted));
                    }
                }
            }
            SessionEvent::UnsubscribeAcked { packet_id } => {
                self.mark_healthy();
                if let Some((filter, done)) = self.unsubscribes.remove(&packet_id) {
                    self.deliveries.remove_routes(std::slice::from_ref(&filter));
                    let _ = done.send(Ok(()));
                }
            }
            SessionEvent::RestoreRefused { filter } => {
                tracing::warn!(
                    filter = filter.as_str(),
                    "the endpoint refused to restore a subscription after reconnecting"
                );
                self.deliveries.remove_routes(std::slice::from_ref(&filter));
            }
            SessionEvent::UnexpectedAck { packet, packet_id } => {
                tracing::debug!(%packet, %packet_id, "acknowledgement for nothing outstanding");
            }
            SessionEvent::LinkDead { reason } => {
                let error = match reason {
                    LinkDeadReason::ConnAckTimeout => ClientError::Timeout {
                        addr: self.info.addr(),
                        stage: "CONNACK",
                        after: self.session.config().connect_timeout,
                        hint: self.no_connack_hint(),
                    },
                    _ => ClientError::ConnectionLost {
                        addr: self.info.addr(),
                        reason: reason.to_string(),
                    },
                };
                let cause = match reason {
                    LinkDeadReason::ConnAckTimeout => Cause::Refused(error.to_string()),
                    _ => Cause::Network(error.to_string()),
                };
                self.lose_link(cause, Some(error), false);
            }
            SessionEvent::ProtocolError(source) => {
                let error = ClientError::Protocol { addr: self.info.addr(), source };
                self.lose_link(Cause::Refused(error.to_string()), Some(error), false);
            }
            other => tracing::debug!(?other, "session event"),
        }
    }
}
