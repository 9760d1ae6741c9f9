//! What the session reports (acknowledgements, messages, refusals, a dead link), turned into
//! replies to the application's calls and events.

use super::Driver;
use super::state::Link;
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
            if let Link::Up(up) = &mut self.link {
                let appended = self.session.poll_transmit(now, up.output.buf_mut());
                up.output.unwritten_mut().appended(appended);
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
                // Before the first connection's caller hears of it, so that its client already
                // reads 1.
                self.app.connections.send_modify(|accepted| *accepted += 1);
                if let Some(connected) = self.app.connected.take() {
                    let _ = connected.send(Ok(self.info.clone()));
                }
                let _ = self.app.events.try_send(Event::Connected(self.info.clone()));
            }
            SessionEvent::ConnectionRefused { code } => {
                let error = ClientError::ConnectionRefused {
                    addr: self.info.addr(),
                    code,
                    hint: refusal_hint(code),
                };
                let cause = Cause::Refused(error.to_string());
                self.lose_link(cause, error, false);
            }
            SessionEvent::Message(publish) => {
                let generation = self.reconnect.generation;
                self.app.deliveries.route(publish, generation, &self.app.events);
                self.send_owed_acks();
            }
            // Encoded into the write buffer: answered once its bytes are flushed.
            SessionEvent::PublishSent { id } => {
                if let Link::Up(up) = &mut self.link {
                    up.output.unwritten_mut().encoded(id);
                }
            }
            SessionEvent::PublishDropped { id } => {
                let error = ClientError::lost(
                    self.info.addr(),
                    "the QoS 0 message could not be encoded and was not sent",
                );
                self.answer(id, Err(error));
            }
            SessionEvent::PublishAcked { id, .. } => {
                self.mark_healthy();
                self.answer(id, Ok(()));
            }
            SessionEvent::SubscribeAcked { packet_id, return_codes } => {
                self.mark_healthy();
                let Some(pending) = self.waiting.subscribes.remove(&packet_id) else { return };
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
                        self.app.deliveries.remove_routes(&filters);
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
                if let Some((filter, done)) = self.waiting.unsubscribes.remove(&packet_id) {
                    self.app.deliveries.remove_routes(std::slice::from_ref(&filter));
                    let _ = done.send(Ok(()));
                }
            }
            SessionEvent::RestoreRefused { filter } => {
                tracing::warn!(
                    filter = filter.as_str(),
                    "the endpoint refused to restore a subscription after reconnecting"
                );
                self.app.deliveries.remove_routes(std::slice::from_ref(&filter));
            }
            SessionEvent::UnexpectedAck { packet, packet_id } => {
                tracing::warn!(
                    %packet,
                    %packet_id,
                    "acknowledgement for nothing outstanding (a late answer, or an endpoint \
                     that mixed up packet ids); ignored"
                );
            }
            SessionEvent::RequestTimedOut { packet_id, packet } => {
                self.request_timed_out(packet_id, &packet);
            }
            SessionEvent::LinkDead { reason } => {
                let error = match reason {
                    LinkDeadReason::ConnAckTimeout => ClientError::Timeout {
                        addr: self.info.addr(),
                        stage: "CONNACK",
                        after: self.session.config().connect_timeout,
                        hint: self.no_connack_hint(),
                    },
                    _ => ClientError::lost(self.info.addr(), reason.to_string()),
                };
                // A PUBLISH (or a restoring SUBSCRIBE) left without an answer is what IoT Core
                // does to an operation it throttles: counted against it like a refusal, so
                // that one the endpoint never answers ends in the dead letters.
                let (cause, blame) = match reason {
                    LinkDeadReason::ConnAckTimeout => (Cause::Refused(error.to_string()), false),
                    LinkDeadReason::PubAckTimeout | LinkDeadReason::SubAckTimeout => {
                        (Cause::Refused(error.to_string()), true)
                    }
                    _ => (Cause::Network(error.to_string()), false),
                };
                self.lose_link(cause, error, blame);
            }
            SessionEvent::ProtocolError(source) => {
                let error = ClientError::Protocol { addr: self.info.addr(), source };
                self.lose_link(Cause::Refused(error.to_string()), error, false);
            }
            other => tracing::debug!(?other, "session event"),
        }
    }
}

impl Driver {
    /// An application's SUBSCRIBE or UNSUBSCRIBE got no answer in time: its caller learns it,
    /// and a SUBSCRIBE's filters get no messages.
    fn request_timed_out(
        &mut self,
        packet_id: iot443_proto::PacketId,
        packet: &iot443_proto::Packet,
    ) {
        let request = super::refusals::describe_request(packet);
        let after = self.session.config().ack_timeout;
        tracing::warn!(%packet_id, "no acknowledgement within {after:?} for {request}; given up");
        let error = ClientError::NotAcknowledged { addr: self.info.addr(), request, after };
        if let Some(pending) = self.waiting.subscribes.remove(&packet_id) {
            let filters: Vec<TopicFilter> =
                pending.filters.iter().map(|entry| entry.filter.clone()).collect();
            self.app.deliveries.remove_routes(&filters);
            let _ = pending.done.send(Err(error));
        } else if let Some((_, done)) = self.waiting.unsubscribes.remove(&packet_id) {
            let _ = done.send(Err(error));
        }
    }
}
