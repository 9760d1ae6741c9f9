//! Everything the session has to send: control packets, the queue of publishes waiting for the
//! in-flight window, the window itself, and SUBSCRIBE/UNSUBSCRIBE requests awaiting their ack.

use super::event::MessageId;
use crate::codec::{Packet, PacketId, PacketType, Publish, PublishQos};
use crate::time::Instant;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// One packet ready for the transport.
#[derive(Debug)]
pub(super) enum Outgoing {
    /// CONNECT, PUBACK, PINGREQ, DISCONNECT: meaningful only on the current transport.
    Control(Packet),
    /// SUBSCRIBE or UNSUBSCRIBE; a copy stays in `requests` until acknowledged.
    Request(Packet),
    /// A QoS 0 publish; reported as sent once written.
    Qos0 { id: MessageId, packet: Packet },
    /// A QoS 1 publish; a copy stays in `inflight` until PUBACK.
    Qos1(Packet),
}

impl Outgoing {
    pub(super) fn packet(&self) -> &Packet {
        match self {
            Outgoing::Control(packet)
            | Outgoing::Request(packet)
            | Outgoing::Qos0 { packet, .. }
            | Outgoing::Qos1(packet) => packet,
        }
    }
}

/// A QoS 1 publish awaiting its PUBACK.
#[derive(Debug)]
struct InFlight {
    id: MessageId,
    publish: Publish,
    /// When it was last written; `None` until then (and again once it is to be re-sent).
    sent_at: Option<Instant>,
}

/// A SUBSCRIBE or UNSUBSCRIBE awaiting its acknowledgement.
#[derive(Debug)]
struct Request {
    packet: Packet,
    /// When it was last written; `None` until then (and again once it is to be re-sent).
    sent_at: Option<Instant>,
}

/// The send side of a session.
#[derive(Debug)]
pub(super) struct Outbound {
    /// Ready to write, in order.
    outgoing: VecDeque<Outgoing>,
    /// Publishes accepted but not yet in the window (or not yet sent at QoS 0), in order.
    waiting: VecDeque<(MessageId, Publish)>,
    /// QoS 1 publishes sent and awaiting PUBACK, in the order they were first sent.
    inflight: VecDeque<InFlight>,
    /// SUBSCRIBE and UNSUBSCRIBE packets awaiting their ack, in order.
    requests: VecDeque<Request>,
    /// Payload bytes of the publishes in `waiting`.
    waiting_bytes: usize,
    /// Packet ids in use by `inflight` and `requests`: one bit per id, so that allocating an id
    /// costs the same with 1 or 65,535 outstanding; grown as ids are first used, up to 8 KiB
    /// (a connection that sent 640 messages holds 80 bytes).
    ids_in_use: Vec<u64>,
    max_inflight: usize,
    next_packet_id: PacketId,
    next_message_id: u64,
}

impl Outbound {
    pub(super) fn new(max_inflight: u16) -> Self {
        Outbound {
            outgoing: VecDeque::new(),
            waiting: VecDeque::new(),
            inflight: VecDeque::new(),
            requests: VecDeque::new(),
            waiting_bytes: 0,
            ids_in_use: Vec::new(),
            max_inflight: usize::from(max_inflight),
            next_packet_id: PacketId::MIN,
            next_message_id: 0,
        }
    }

    pub(super) fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    pub(super) fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    pub(super) fn front(&self) -> Option<&Outgoing> {
        self.outgoing.front()
    }

    pub(super) fn pop_front(&mut self) -> Option<Outgoing> {
        self.outgoing.pop_front()
    }

    pub(super) fn push_control(&mut self, packet: Packet) {
        self.outgoing.push_back(Outgoing::Control(packet));
    }

    /// Records a SUBSCRIBE or UNSUBSCRIBE; it is sent now when `connected`, else after CONNACK.
    pub(super) fn push_request(&mut self, packet: Packet, connected: bool) {
        if connected {
            self.outgoing.push_back(Outgoing::Request(packet.clone()));
        }
        self.requests.push_back(Request { packet, sent_at: None });
    }

    /// After a write at `now`: every publish and request written for the first time since it
    /// was queued (or re-queued) is stamped with `now`, the start of its acknowledgement wait.
    ///
    /// New entries are at the back, so this stops at the first entry stamped before.
    pub(super) fn stamp_sent(&mut self, now: Instant) {
        for entry in self.inflight.iter_mut().rev() {
            if entry.sent_at.is_some() {
                break;
            }
            entry.sent_at = Some(now);
        }
        for request in self.requests.iter_mut().rev() {
            if request.sent_at.is_some() {
                break;
            }
            request.sent_at = Some(now);
        }
    }

    /// When the oldest written QoS 1 publish was written, if one awaits its PUBACK.
    pub(super) fn oldest_inflight_sent_at(&self) -> Option<Instant> {
        self.inflight.front().and_then(|entry| entry.sent_at)
    }

    /// When the oldest written request was written, with its packet id.
    pub(super) fn oldest_request_sent_at(&self) -> Option<(Instant, PacketId)> {
        let request = self.requests.front()?;
        Some((request.sent_at?, request_id(&request.packet)?))
    }

    /// Queues a publish behind those already waiting and returns its id.
    pub(super) fn enqueue_publish(&mut self, publish: Publish) -> MessageId {
        let id = MessageId(self.next_message_id);
        self.next_message_id += 1;
        self.waiting_bytes += publish.payload.len();
        self.waiting.push_back((id, publish));
        id
    }

    /// Payload bytes of the publishes waiting.
    pub(super) fn waiting_bytes(&self) -> usize {
        self.waiting_bytes
    }

    /// The oldest QoS 1 publish awaiting PUBACK.
    pub(super) fn oldest_inflight(&self) -> Option<(MessageId, &Publish)> {
        self.inflight.front().map(|entry| (entry.id, &entry.publish))
    }

    /// The oldest waiting QoS 0 publish.
    pub(super) fn oldest_waiting_qos0(&self) -> Option<MessageId> {
        self.waiting
            .iter()
            .find(|(_, publish)| publish.qos == PublishQos::AtMostOnce)
            .map(|(id, _)| *id)
    }

    /// Forgets the publish `id`, wherever it waits, and returns it.
    pub(super) fn discard(&mut self, id: MessageId) -> Option<Publish> {
        if let Some(index) = self.waiting.iter().position(|(entry, _)| *entry == id) {
            let (_, publish) = self.waiting.remove(index)?;
            self.waiting_bytes = self.waiting_bytes.saturating_sub(publish.payload.len());
            return Some(publish);
        }
        let index = self.inflight.iter().position(|entry| entry.id == id)?;
        let publish = self.inflight.remove(index)?.publish;
        let packet_id = publish.qos.packet_id();
        self.release(packet_id);
        self.outgoing.retain(|outgoing| match outgoing {
            Outgoing::Qos1(Packet::Publish(queued)) => queued.qos.packet_id() != packet_id,
            _ => true,
        });
        Some(publish)
    }

    /// Moves waiting publishes to the transport, in order, while the window has room.
    ///
    /// Silly-window avoidance: while a backlog waits and messages are in flight, the window is
    /// refilled only once a quarter of it is free, so that one write carries a batch of
    /// publishes instead of one per PUBACK (an endpoint that acknowledges in small records
    /// would otherwise set the pace of tiny writes). Light traffic goes out at once.
    pub(super) fn fill_window(&mut self) {
        let batch = (self.max_inflight / 4).max(1);
        let free = self.max_inflight.saturating_sub(self.inflight.len());
        let hold = !self.inflight.is_empty() && self.waiting.len() >= batch && free < batch;
        while let Some((_, front)) = self.waiting.front() {
            let is_qos0 = front.qos == PublishQos::AtMostOnce;
            if !is_qos0 && (hold || self.inflight.len() >= self.max_inflight) {
                return;
            }
            let packet_id = if is_qos0 {
                None
            } else {
                match self.allocate_packet_id() {
                    Some(packet_id) => Some(packet_id),
                    None => return,
                }
            };
            let Some((id, mut publish)) = self.waiting.pop_front() else { return };
            self.waiting_bytes = self.waiting_bytes.saturating_sub(publish.payload.len());
            match packet_id {
                None => {
                    self.outgoing.push_back(Outgoing::Qos0 { id, packet: Packet::Publish(publish) })
                }
                Some(packet_id) => {
                    publish.qos = PublishQos::AtLeastOnce(packet_id);
                    self.outgoing.push_back(Outgoing::Qos1(Packet::Publish(publish.clone())));
                    self.inflight.push_back(InFlight { id, publish, sent_at: None });
                }
            }
        }
    }

    /// Removes the in-flight publish with `packet_id`; `None` if there is none.
    pub(super) fn acknowledge_publish(&mut self, packet_id: PacketId) -> Option<MessageId> {
        let index = self
            .inflight
            .iter()
            .position(|entry| entry.publish.qos.packet_id() == Some(packet_id))?;
        self.release(Some(packet_id));
        self.inflight.remove(index).map(|entry| entry.id)
    }

    /// The outstanding SUBSCRIBE or UNSUBSCRIBE with `packet_id`.
    pub(super) fn request(&self, packet_id: PacketId) -> Option<&Packet> {
        self.requests
            .iter()
            .map(|request| &request.packet)
            .find(|packet| request_id(packet) == Some(packet_id))
    }

    /// The oldest SUBSCRIBE or UNSUBSCRIBE awaiting its acknowledgement.
    pub(super) fn oldest_request(&self) -> Option<&Packet> {
        self.requests.front().map(|request| &request.packet)
    }

    /// Forgets the outstanding request with `packet_id` (it is not sent again) and returns it.
    pub(super) fn discard_request(&mut self, packet_id: PacketId) -> Option<Packet> {
        let index = self
            .requests
            .iter()
            .position(|request| request_id(&request.packet) == Some(packet_id))?;
        self.release(Some(packet_id));
        self.outgoing.retain(|outgoing| match outgoing {
            Outgoing::Request(packet) => request_id(packet) != Some(packet_id),
            _ => true,
        });
        self.requests.remove(index).map(|request| request.packet)
    }

    /// Removes the outstanding request of `kind` with `packet_id` and returns it.
    pub(super) fn acknowledge_request(
        &mut self,
        kind: PacketType,
        packet_id: PacketId,
    ) -> Option<Packet> {
        let index = self.requests.iter().position(|request| {
            request.packet.packet_type() == kind && request_id(&request.packet) == Some(packet_id)
        })?;
        self.release(Some(packet_id));
        self.requests.remove(index).map(|request| request.packet)
    }

    /// The transport is gone: control packets are dropped, requests and QoS 1 publishes already
    /// written are kept in their own lists, and publishes never written (QoS 0, and QoS 1 on
    /// their first attempt) go back to the front of the queue, in order: they keep their place
    /// among the other publishes and go out later without DUP.
    pub(super) fn transport_lost(&mut self) {
        let mut unsent: Vec<(MessageId, Publish)> = Vec::new();
        let outgoing: Vec<Outgoing> = self.outgoing.drain(..).collect();
        for outgoing in outgoing {
            match outgoing {
                Outgoing::Qos0 { id, packet: Packet::Publish(publish) } => {
                    unsent.push((id, publish))
                }
                Outgoing::Qos1(Packet::Publish(publish)) if !publish.dup => {
                    let index =
                        self.inflight.iter().position(|entry| entry.publish.qos == publish.qos);
                    if let Some(entry) = index.and_then(|index| self.inflight.remove(index)) {
                        self.release(entry.publish.qos.packet_id());
                        unsent.push((entry.id, entry.publish));
                    }
                }
                _ => {}
            }
        }
        for entry in unsent.into_iter().rev() {
            self.waiting_bytes += entry.1.payload.len();
            self.waiting.push_front(entry);
        }
    }

    /// After CONNACK: sends the outstanding requests (SUBSCRIBE, UNSUBSCRIBE) again, in their
    /// original order.
    pub(super) fn resend_requests(&mut self) {
        for request in &mut self.requests {
            request.sent_at = None;
            self.outgoing.push_back(Outgoing::Request(request.packet.clone()));
        }
    }

    /// After CONNACK, and after the subscriptions are restored: sends the in-flight publishes
    /// again with DUP, in their original order.
    pub(super) fn resend_inflight(&mut self) {
        for entry in &mut self.inflight {
            entry.publish.dup = true;
            entry.sent_at = None;
            self.outgoing.push_back(Outgoing::Qos1(Packet::Publish(entry.publish.clone())));
        }
    }

    /// The next packet id not used by an in-flight publish or an outstanding request.
    pub(super) fn allocate_packet_id(&mut self) -> Option<PacketId> {
        for _ in 0..u16::MAX {
            let candidate = self.next_packet_id;
            self.next_packet_id = candidate.next();
            if !self.packet_id_in_use(candidate) {
                self.mark_in_use(candidate);
                return Some(candidate);
            }
        }
        None
    }

    fn packet_id_in_use(&self, packet_id: PacketId) -> bool {
        let (word, bit) = id_bit(packet_id);
        self.ids_in_use.get(word).is_some_and(|bits| bits & bit != 0)
    }

    fn mark_in_use(&mut self, packet_id: PacketId) {
        let (word, bit) = id_bit(packet_id);
        // Grown as ids are first used (they are taken in order), up to 1,024 words for all.
        if self.ids_in_use.len() <= word {
            self.ids_in_use.resize(word + 1, 0);
        }
        if let Some(bits) = self.ids_in_use.get_mut(word) {
            *bits |= bit;
        }
    }

    /// Gives back an id allocated for a request that was then not sent.
    pub(super) fn release_packet_id(&mut self, packet_id: PacketId) {
        self.release(Some(packet_id));
    }

    fn release(&mut self, packet_id: Option<PacketId>) {
        if let Some(packet_id) = packet_id {
            let (word, bit) = id_bit(packet_id);
            if let Some(bits) = self.ids_in_use.get_mut(word) {
                *bits &= !bit;
            }
        }
    }
}

/// Where a packet id's bit is in `ids_in_use`.
fn id_bit(packet_id: PacketId) -> (usize, u64) {
    let id = usize::from(packet_id.get());
    (id / 64, 1 << (id % 64))
}

/// The packet id of a SUBSCRIBE or UNSUBSCRIBE.
fn request_id(packet: &Packet) -> Option<PacketId> {
    match packet {
        Packet::Subscribe(subscribe) => Some(subscribe.packet_id),
        Packet::Unsubscribe(unsubscribe) => Some(unsubscribe.packet_id),
        _ => None,
    }
}
