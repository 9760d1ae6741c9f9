//! Subscriptions: SUBSCRIBE and UNSUBSCRIBE requests, the filters granted, their restoration
//! after a reconnect without a stored session, and giving up a request the server refuses.

use super::{Event, ProtocolError, RESUBSCRIBE_CHUNK, Session, SessionError};
use crate::QoS;
use crate::codec::{Packet, PacketId, PacketType, SubAck, SubscribeFilter};
use crate::topic::TopicFilter;
use alloc::vec::Vec;

impl Session {
    /// The filters the server has granted and the session restores after a reconnect.
    pub fn subscriptions(&self) -> &[SubscribeFilter] {
        &self.subscriptions
    }

    /// The oldest SUBSCRIBE or UNSUBSCRIBE not yet acknowledged (with the session's own
    /// SUBSCRIBEs restoring subscriptions after a reconnect).
    pub fn oldest_request(&self) -> Option<&Packet> {
        self.outbound.oldest_request()
    }

    /// Gives up the SUBSCRIBE or UNSUBSCRIBE `packet_id` that is not acknowledged yet, for
    /// example one the server keeps refusing by closing the connection: it is not sent again
    /// and its packet id is free. The filters of a SUBSCRIBE are also dropped from those the
    /// session restores after a reconnect. Returns the packet, `None` if there is no such
    /// request.
    pub fn discard_request(&mut self, packet_id: PacketId) -> Option<Packet> {
        let packet = self.outbound.discard_request(packet_id)?;
        self.resubscribe_ids.retain(|id| *id != packet_id);
        if let Packet::Subscribe(subscribe) = &packet {
            self.subscriptions
                .retain(|known| subscribe.filters.iter().all(|gone| gone.filter != known.filter));
        }
        Some(packet)
    }

    /// For the session's own SUBSCRIBE `packet_id` restoring several filters after a reconnect:
    /// restores those filters from now on each in a SUBSCRIBE of its own, so that a refusal
    /// (a server that closes the connection, which does not say which filter it refused) can be
    /// pinned on one filter instead of costing the others. Returns `false`, changing nothing,
    /// for any other request.
    pub fn split_restore(&mut self, packet_id: PacketId) -> bool {
        if !self.resubscribe_ids.contains(&packet_id) {
            return false;
        }
        let Some(Packet::Subscribe(subscribe)) = self.outbound.request(packet_id) else {
            return false;
        };
        if subscribe.filters.len() < 2 {
            return false;
        }
        let filters: Vec<TopicFilter> =
            subscribe.filters.iter().map(|entry| entry.filter.clone()).collect();
        for filter in filters {
            if !self.restore_singly.contains(&filter) {
                self.restore_singly.push(filter);
            }
        }
        true
    }

    /// Queues a SUBSCRIBE and returns its packet id; [`Event::SubscribeAcked`] answers it.
    pub fn subscribe(&mut self, filters: Vec<SubscribeFilter>) -> Result<PacketId, SessionError> {
        if let Some(entry) = filters.iter().find(|entry| entry.qos == QoS::ExactlyOnce) {
            return Err(SessionError::QosNotSupported(entry.qos));
        }
        let empty = filters.is_empty();
        let build = |packet_id| Packet::Subscribe(crate::codec::Subscribe { packet_id, filters });
        self.request(empty, build)
    }

    /// Queues an UNSUBSCRIBE and returns its packet id; [`Event::UnsubscribeAcked`] answers it.
    pub fn unsubscribe(&mut self, filters: Vec<TopicFilter>) -> Result<PacketId, SessionError> {
        let empty = filters.is_empty();
        let build =
            |packet_id| Packet::Unsubscribe(crate::codec::Unsubscribe { packet_id, filters });
        self.request(empty, build)
    }

    pub(super) fn request(
        &mut self,
        empty: bool,
        build: impl FnOnce(PacketId) -> Packet,
    ) -> Result<PacketId, SessionError> {
        if empty {
            return Err(SessionError::NoTopicFilters);
        }
        let packet_id =
            self.outbound.allocate_packet_id().ok_or(SessionError::PacketIdsExhausted)?;
        let packet = build(packet_id);
        if let Err(error) = self.codec.checked_len(&packet) {
            self.outbound.release_packet_id(packet_id);
            return Err(error.into());
        }
        self.outbound.push_request(packet, self.is_connected());
        Ok(packet_id)
    }

    /// Subscribes again to every granted filter (the server kept no session), at most 8
    /// filters per SUBSCRIBE as IoT Core allows.
    pub(super) fn restore_subscriptions(&mut self) {
        let granted = &self.subscriptions;
        self.restore_singly.retain(|filter| granted.iter().any(|entry| entry.filter == *filter));
        let (single, grouped): (Vec<SubscribeFilter>, Vec<SubscribeFilter>) = self
            .subscriptions
            .iter()
            .cloned()
            .partition(|entry| self.restore_singly.contains(&entry.filter));
        let chunks = grouped.chunks(RESUBSCRIBE_CHUNK).chain(single.chunks(1));
        for chunk in chunks {
            let Some(packet_id) = self.outbound.allocate_packet_id() else { return };
            let packet =
                Packet::Subscribe(crate::codec::Subscribe { packet_id, filters: chunk.to_vec() });
            self.outbound.push_request(packet, true);
            self.resubscribe_ids.push(packet_id);
        }
    }

    pub(super) fn handle_suback(&mut self, suback: SubAck) {
        let SubAck { packet_id, return_codes } = suback;
        match self.outbound.acknowledge_request(PacketType::Subscribe, packet_id) {
            Some(Packet::Subscribe(subscribe)) if subscribe.filters.len() != return_codes.len() => {
                self.fail(Event::ProtocolError(ProtocolError::SubAckLength {
                    packet_id,
                    expected: subscribe.filters.len(),
                    got: return_codes.len(),
                }));
            }
            Some(Packet::Subscribe(subscribe)) => {
                let restoring = self.resubscribe_ids.contains(&packet_id);
                self.resubscribe_ids.retain(|id| *id != packet_id);
                for (entry, code) in subscribe.filters.iter().zip(&return_codes) {
                    self.subscriptions.retain(|known| known.filter != entry.filter);
                    if code.granted_qos().is_some() {
                        self.subscriptions.push(entry.clone());
                    } else if restoring {
                        self.events
                            .push_back(Event::RestoreRefused { filter: entry.filter.clone() });
                    }
                }
                // A restoring SUBSCRIBE is the session's own business: the application asked
                // for nothing and waits for no answer.
                if !restoring {
                    let return_codes = return_codes.into_iter().map(Into::into).collect();
                    self.events.push_back(Event::SubscribeAcked { packet_id, return_codes });
                }
            }
            Some(_) | None => self.unexpected_ack(PacketType::SubAck, packet_id),
        }
    }
}
