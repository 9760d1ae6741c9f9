//! Handing received messages to their subscriptions, with backpressure: a full queue parks the
//! message (keeping order) and the driver stops reading the socket until there is room.
//!
//! A QoS 1 message is acknowledged once it is handed on: when its last copy is in its queue
//! (or its receiver is gone). Messages leave in arrival order, so the PUBACKs do too, as MQTT
//! 3.1.1 §4.6 asks. [`Ack`]s name the connection that brought the message: a message parked
//! across a reconnect is not acknowledged on the next connection, whose server sends it again.

use crate::message::{Event, Message};
use iot443_proto::codec::{PacketId, Publish, PublishQos};
use iot443_proto::topic::{MatchRule, TopicFilter};
use std::collections::VecDeque;
use tokio::sync::mpsc;

/// Where a received message goes.
#[derive(Debug)]
pub(super) enum Target {
    Subscription(mpsc::Sender<Message>),
    Events,
}

/// A PUBACK owed once a message is handed on: the connection (its generation) and packet id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ack {
    pub(super) generation: u64,
    pub(super) packet_id: PacketId,
}

/// A copy of a message parked for lack of room, with the PUBACK owed after it (on the last
/// copy only).
#[derive(Debug)]
struct Parked {
    target: Target,
    message: Message,
    ack: Option<Ack>,
}

/// Subscriptions' queues and the messages parked for lack of room.
#[derive(Debug, Default)]
pub(super) struct Deliveries {
    routes: Vec<(TopicFilter, mpsc::Sender<Message>)>,
    /// Messages waiting for room in their queue, in arrival order.
    stalled: VecDeque<Parked>,
    /// PUBACKs owed for messages handed on, in order, for the driver to send.
    acks: Vec<Ack>,
}

impl Deliveries {
    pub(super) fn add_route(&mut self, filter: TopicFilter, sender: mpsc::Sender<Message>) {
        self.routes.push((filter, sender));
    }

    pub(super) fn remove_routes(&mut self, filters: &[TopicFilter]) {
        self.routes.retain(|(route, _)| !filters.contains(route));
    }

    /// Whether messages are parked: the driver must not read meanwhile.
    pub(super) fn is_stalled(&self) -> bool {
        !self.stalled.is_empty()
    }

    /// The PUBACKs owed for messages handed on since the last call, in order.
    pub(super) fn take_acks(&mut self) -> std::vec::Drain<'_, Ack> {
        self.acks.drain(..)
    }

    /// Routes a received PUBLISH to every matching subscription (IoT Core's matching), or to
    /// the event stream when none matches. `generation`: the connection it came on.
    pub(super) fn route(
        &mut self,
        publish: Publish,
        generation: u64,
        events: &mpsc::Sender<Event>,
    ) {
        let ack = match publish.qos {
            PublishQos::AtLeastOnce(packet_id) => Some(Ack { generation, packet_id }),
            _ => None,
        };
        let message = Message {
            topic: publish.topic.as_str().to_owned(),
            qos: publish.qos.qos(),
            retain: publish.retain,
            dup: publish.dup,
            payload: publish.payload,
        };
        let mut targets: Vec<Target> = Vec::new();
        for (filter, sender) in &self.routes {
            let already = targets.iter().any(
                |target| matches!(target, Target::Subscription(known) if known.same_channel(sender)),
            );
            if !already && filter.matches(&publish.topic, MatchRule::AwsIot) {
                targets.push(Target::Subscription(sender.clone()));
            }
        }
        if targets.is_empty() {
            targets.push(Target::Events);
        }
        // A copy per extra target; the last one takes the message itself.
        let last = targets.pop();
        for target in targets {
            self.deliver(Parked { target, message: message.clone(), ack: None }, events);
        }
        if let Some(target) = last {
            self.deliver(Parked { target, message, ack }, events);
        }
    }

    fn deliver(&mut self, parked: Parked, events: &mpsc::Sender<Event>) {
        if !self.stalled.is_empty() {
            self.stalled.push_back(parked);
            return;
        }
        let Parked { target, message, ack } = parked;
        match try_deliver(&target, message, events) {
            Err(Some(message)) => self.stalled.push_back(Parked { target, message, ack }),
            Ok(()) | Err(None) => self.acks.extend(ack),
        }
    }

    /// Delivers parked messages while their queues have room.
    pub(super) fn release(&mut self, events: &mpsc::Sender<Event>) {
        while let Some(Parked { target, message, ack }) = self.stalled.pop_front() {
            if let Err(Some(message)) = try_deliver(&target, message, events) {
                self.stalled.push_front(Parked { target, message, ack });
                return;
            }
            self.acks.extend(ack);
        }
    }

    /// Drops the first parked message (its receiver is gone); its PUBACK is owed all the same:
    /// nobody wants it any more.
    pub(super) fn drop_first(&mut self) {
        if let Some(parked) = self.stalled.pop_front() {
            self.acks.extend(parked.ack);
        }
    }

    /// Completes when the first parked message's queue has room (true) or is closed (false).
    pub(super) async fn wait_for_room(&self, events: &mpsc::Sender<Event>) -> bool {
        match self.stalled.front().map(|parked| &parked.target) {
            Some(Target::Subscription(sender)) => sender.reserve().await.is_ok(),
            Some(Target::Events) => events.reserve().await.is_ok(),
            None => std::future::pending().await,
        }
    }

    /// At the end: hands on what is parked as far as the queues take it within `bound`, then
    /// closes every queue. A message that does not fit in time is dropped unacknowledged (the
    /// endpoint keeps it for a persistent session); an unread subscription never holds the
    /// driver beyond `bound`.
    pub(super) async fn flush(&mut self, events: &mpsc::Sender<Event>, bound: std::time::Duration) {
        let stalled = &mut self.stalled;
        let handing_on = async {
            while let Some(Parked { target, message, .. }) = stalled.pop_front() {
                let _ = match target {
                    Target::Subscription(sender) => sender.send(message).await.is_ok(),
                    Target::Events => events.send(Event::Message(message)).await.is_ok(),
                };
            }
        };
        let _ = tokio::time::timeout(bound, handing_on).await;
        self.stalled.clear();
        self.routes.clear();
    }
}

impl super::Driver {
    /// Hands on parked messages now that their queue has room.
    pub(super) fn release_parked(&mut self) {
        self.app.deliveries.release(&self.app.events);
        self.send_owed_acks();
    }

    /// Sends the PUBACKs owed for messages handed on, those of the current connection only.
    pub(super) fn send_owed_acks(&mut self) {
        let generation = self.reconnect.generation;
        for ack in self.app.deliveries.take_acks() {
            if ack.generation == generation {
                self.session.acknowledge(ack.packet_id);
            }
        }
    }
}

/// Hands `message` to `target` without waiting: `Err(Some(message))` gives it back when the
/// queue is full, `Err(None)` means the receiver is gone (the message is dropped).
fn try_deliver(
    target: &Target,
    message: Message,
    events: &mpsc::Sender<Event>,
) -> Result<(), Option<Message>> {
    match target {
        Target::Subscription(sender) => sender.try_send(message).map_err(|error| match error {
            mpsc::error::TrySendError::Full(message) => Some(message),
            mpsc::error::TrySendError::Closed(_) => None,
        }),
        Target::Events => events.try_send(Event::Message(message)).map_err(|error| match error {
            mpsc::error::TrySendError::Full(Event::Message(message)) => Some(message),
            _ => None,
        }),
    }
}
