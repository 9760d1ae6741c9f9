//! Waiting for a client's events: the next one of a kind, skipping the others. A client that
//! gives up (`Disconnected`) or ends fails the test with the reason.

use iot443::{ConnectionInfo, Event, Events};

/// The first event that `pick` accepts, skipping the others.
pub async fn next_event<T>(events: &mut Events, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    loop {
        match events.recv().await.expect("the client is still running") {
            Event::Disconnected { reason } => panic!("the client gave up: {reason}"),
            event => {
                if let Some(found) = pick(event) {
                    return found;
                }
            }
        }
    }
}

/// The next `Connected` event's connection.
pub async fn next_connected(events: &mut Events) -> ConnectionInfo {
    next_event(events, |event| match event {
        Event::Connected(info) => Some(info),
        _ => None,
    })
    .await
}

/// The next `Reconnecting` event's cause.
pub async fn next_reconnecting(events: &mut Events) -> String {
    next_event(events, |event| match event {
        Event::Reconnecting { cause, .. } => Some(cause),
        _ => None,
    })
    .await
}

/// The next `SubscriptionDropped` event: (filter, reason).
pub async fn next_subscription_dropped(events: &mut Events) -> (String, String) {
    next_event(events, |event| match event {
        Event::SubscriptionDropped { filter, reason } => Some((filter, reason)),
        _ => None,
    })
    .await
}
