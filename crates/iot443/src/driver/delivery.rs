//! Handing received messages to their subscriptions, with backpressure: a full queue parks the
//! message (keeping order) and the driver stops reading the socket until there is room.

use crate::message::{Event, Message};
use iot443_proto::codec::Publish;
use iot443_proto::topic::{MatchRule, TopicFilter};
use std::collections::VecDeque;
use tokio::sync::mpsc;

/// Where a received message goes.
#[derive(Debug)]
pub(super) enum Target {
    Subscription(mpsc::Sender<Message>),
    Events,
}

/// Subscriptions' queues and the messages parked for lack of room.
#[derive(Debug, Default)]
pub(super) struct Deliveries {
    routes: Vec<(TopicFilter, mpsc::Sender<Message>)>,
    /// Messages waiting for room in their queue, in arrival order.
    stalled: VecDeque<(Target, Message)>,
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

    /// Routes a received PUBLISH to every matching subscription (IoT Core's matching), or to
    /// the event stream when none matches.
    pub(super) fn route(&mut self, publish: Publish, events: &mpsc::Sender<Event>) {
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
            self.deliver(target, message.clone(), events);
        }
        if let Some(target) = last {
            self.deliver(target, message, events);
        }
    }

    fn deliver(&mut self, target: Target, message: Message, events: &mpsc::Sender<Event>) {
        if !self.stalled.is_empty() {
            self.stalled.push_back((target, message));
            return;
        }
        if let Err(Some(message)) = try_deliver(&target, message, events) {
            self.stalled.push_back((target, message));
        }
    }

    /// Delivers parked messages while their queues have room.
    pub(super) fn release(&mut self, events: &mpsc::Sender<Event>) {
        while let Some((target, message)) = self.stalled.pop_front() {
            if let Err(Some(message)) = try_deliver(&target, message, events) {
                self.stalled.push_front((target, message));
                return;
            }
        }
    }

    /// Drops the first parked message (its receiver is gone).
    pub(super) fn drop_first(&mut self) {
        self.stalled.pop_front();
    }

    /// Completes when the first parked message's queue has room (true) or is closed (false).
    pub(super) async fn wait_for_room(&self, events: &mpsc::Sender<Event>) -> bool {
        match self.stalled.front() {
            Some((Target::Subscription(sender), _)) => sender.reserve().await.is_ok(),
            Some((Target::Events, _)) => events.reserve().await.is_ok(),
            None => std::future::pending().await,
        }
    }

    /// Delivers what is parked before the queues close, as far as the application takes it.
    pub(super) async fn flush(&mut self, events: &mpsc::Sender<Event>) {
        while let Some((target, message)) = self.stalled.pop_front() {
            let _ = match target {
                Target::Subscription(sender) => sender.send(message).await.is_ok(),
                Target::Events => events.send(Event::Message(message)).await.is_ok(),
            };
        }
        self.routes.clear();
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
