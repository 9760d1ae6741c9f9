//! What each packet from a client does to the broker.

use super::connection::{Attached, ConnState, clamp_keep_alive, keep_alive_grace};
use super::sessions::Session;
use super::{Broker, BrokerEvent, CloseReason, ConnectionId};
use crate::peer_text::peer_text;
use iot443_proto::Instant;
use iot443_proto::codec::{
    AWS_MAX_CLIENT_ID_BYTES, AWS_MAX_FILTERS_PER_SUBSCRIBE, AWS_MAX_PAYLOAD, ConnAck, Connect,
    ConnectReturnCode, DecodeError, Packet, PubAck, Publish, QoS, SubAck, SubAckReturnCode,
    Subscribe, UnsubAck, Unsubscribe,
};

/// IoT Core's longest client id, in bytes ([`AWS_MAX_CLIENT_ID_BYTES`]).
pub const MAX_CLIENT_ID_BYTES: usize = AWS_MAX_CLIENT_ID_BYTES;
/// IoT Core's most topic filters in one SUBSCRIBE ([`AWS_MAX_FILTERS_PER_SUBSCRIBE`]).
pub const MAX_FILTERS_PER_SUBSCRIBE: usize = AWS_MAX_FILTERS_PER_SUBSCRIBE;
/// IoT Core's most subscriptions per connection.
pub const MAX_SUBSCRIPTIONS: usize = 50;

impl Broker {
    /// Handles one decoded packet from `conn`.
    pub(super) fn handle_packet(&mut self, now: Instant, conn: ConnectionId, packet: Packet) {
        let Some(connection) = self.connections.get(&conn) else { return };
        let connected = connection.attached().is_some();
        match packet {
            Packet::Connect(connect) if !connected => self.handle_connect(now, conn, connect),
            _ if !connected => self.close(
                now,
                conn,
                CloseReason::ProtocolViolation("the first packet of a connection must be CONNECT"),
            ),
            Packet::Connect(_) => self.close(
                now,
                conn,
                CloseReason::ProtocolViolation("second CONNECT on one connection"),
            ),
            Packet::Publish(publish) => self.handle_publish(now, conn, publish),
            Packet::PubAck(PubAck { packet_id, .. }) => {
                let Some(client_id) = self.client_id(conn) else { return };
                if let Some(session) = self.sessions.get_mut(&client_id)
                    && !session.acknowledge(packet_id)
                {
                    tracing::debug!(conn = %conn, %packet_id, "PUBACK for no message in flight");
                }
                self.pump(now, &client_id);
            }
            Packet::Subscribe(subscribe) => self.handle_subscribe(now, conn, subscribe),
            Packet::Unsubscribe(unsubscribe) => self.handle_unsubscribe(conn, unsubscribe),
            Packet::PingReq => self.send(conn, &Packet::PingResp),
            Packet::Disconnect => self.close(now, conn, CloseReason::ClientDisconnected),
            Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_) => self.close(
                now,
                conn,
                CloseReason::ProtocolViolation(
                    "PUBREC, PUBREL and PUBCOMP are not supported: IoT Core has no QoS 2",
                ),
            ),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                self.close(
                    now,
                    conn,
                    CloseReason::ProtocolViolation("the client sent a server-to-client packet"),
                );
            }
            // A packet kind the codec may learn with a later protocol version.
            _ => self.close(
                now,
                conn,
                CloseReason::ProtocolViolation("a packet kind the emulator does not support"),
            ),
        }
    }

    /// Answers a CONNECT that failed to decode with CONNACK 1 when the protocol level is the
    /// problem, and closes the connection.
    pub(super) fn handle_decode_error(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        error: DecodeError,
    ) {
        let awaiting = self.connections.get(&conn).is_some_and(|c| c.attached().is_none());
        match (awaiting, &error, error.connect_return_code()) {
            (true, DecodeError::UnsupportedProtocolLevel(level), Some(code)) => {
                let level = *level;
                self.refuse(now, conn, code, CloseReason::UnsupportedProtocolLevel(level));
            }
            (false, DecodeError::UnsupportedProtocolLevel(_), _) => self.close(
                now,
                conn,
                CloseReason::ProtocolViolation("second CONNECT on one connection"),
            ),
            _ => self.close(now, conn, CloseReason::Malformed(error)),
        }
    }

    fn handle_connect(&mut self, now: Instant, conn: ConnectionId, connect: Connect) {
        let client_id = connect.client_id;
        if let Some(problem) = client_id_problem(&client_id) {
            let reason = CloseReason::ClientIdRejected(problem);
            return self.refuse(now, conn, ConnectReturnCode::IDENTIFIER_REJECTED, reason);
        }
        if self.config.strict_rates && !self.connect_limiter.try_connect(now, &client_id) {
            return self.close(now, conn, CloseReason::ConnectRateExceeded { client_id });
        }
        let common_name = self.connections.get(&conn).and_then(|c| c.peer.common_name.clone());
        if let Some(policy) = &self.config.policy
            && !policy.allows_connect(common_name.as_deref(), &client_id)
        {
            let reason = CloseReason::PolicyDenied { action: "connect", resource: client_id };
            return self.refuse(now, conn, ConnectReturnCode::NOT_AUTHORIZED, reason);
        }
        if let Some(will) = &connect.will {
            let refusal = if will.payload.len() > AWS_MAX_PAYLOAD {
                Some(CloseReason::PayloadTooLarge { size: will.payload.len() })
            } else if will.qos == QoS::ExactlyOnce {
                Some(CloseReason::ProtocolViolation(
                    "last will at QoS 2: IoT Core supports QoS 0 and 1",
                ))
            } else if let Err(error) = will.topic.check_aws_limits() {
                Some(CloseReason::TopicLimit { topic: will.topic.to_string(), error })
            } else if will.retain && will.topic.as_str().starts_with('$') {
                Some(CloseReason::RetainOnReservedTopic { topic: will.topic.to_string() })
            } else {
                None
            };
            if let Some(reason) = refusal {
                return self.close(now, conn, reason);
            }
            if let Some(policy) = &self.config.policy
                && !policy.allows_publish(common_name.as_deref(), &client_id, &will.topic)
            {
                let resource = will.topic.to_string();
                let reason = CloseReason::PolicyDenied { action: "publish", resource };
                return self.refuse(now, conn, ConnectReturnCode::NOT_AUTHORIZED, reason);
            }
        }

        // Takeover: the older connection with this client id goes (its will is published).
        if let Some(older) = self.sessions.get(&client_id).and_then(|s| s.connection) {
            self.close(now, older, CloseReason::Takeover);
        }

        // The session: a clean CONNECT discards any stored one, a persistent one resumes it.
        let stored =
            self.sessions.get(&client_id).map(|s| s.expires_at.is_some_and(|at| at <= now));
        if connect.clean_session || stored == Some(true) {
            self.discard_session(&client_id);
        }
        let session_present = self.sessions.resume(&client_id, conn);
        if !session_present {
            let session = Session::new(!connect.clean_session, conn);
            self.sessions.insert(client_id.clone(), session);
        }

        let keep_alive = clamp_keep_alive(connect.keep_alive);
        let Some(connection) = self.connections.get_mut(&conn) else { return };
        let connect_deadline = connection.deadline();
        let deadline = now + keep_alive_grace(keep_alive);
        connection.state = ConnState::Connected(Attached {
            client_id: client_id.clone(),
            keep_alive,
            deadline,
            will: connect.will,
        });
        self.deadlines.reschedule(connect_deadline, deadline, conn);
        let connack = ConnAck::new(session_present, ConnectReturnCode::ACCEPTED);
        connection.send(&self.codec, &Packet::ConnAck(connack), &mut self.events);
        if let Some(session) = self.sessions.get(&client_id) {
            for publish in session.redeliveries() {
                connection.send(&self.codec, &Packet::Publish(publish), &mut self.events);
            }
        }
        tracing::info!(
            conn = %conn,
            client_id = ?peer_text(&client_id),
            clean_session = connect.clean_session,
            session_present,
            keep_alive,
            "client connected"
        );
        self.events.push_back(BrokerEvent::Connected {
            conn,
            client_id: client_id.clone(),
            clean_session: connect.clean_session,
            session_present,
            keep_alive,
        });
        self.pump(now, &client_id);
    }

    fn handle_publish(&mut self, now: Instant, conn: ConnectionId, publish: Publish) {
        let Some((client_id, common_name)) = self.identity(conn) else { return };
        if publish.payload.len() > AWS_MAX_PAYLOAD {
            let reason = CloseReason::PayloadTooLarge { size: publish.payload.len() };
            return self.close(now, conn, reason);
        }
        if let Err(error) = publish.topic.check_aws_limits() {
            let reason = CloseReason::TopicLimit { topic: publish.topic.into_string(), error };
            return self.close(now, conn, reason);
        }
        if publish.qos.qos() == QoS::ExactlyOnce {
            tracing::info!(conn = %conn, client_id = ?peer_text(&client_id),
                topic = ?peer_text(publish.topic.as_str()), "QoS 2 PUBLISH dropped without PUBREC: IoT Core supports QoS 0 and 1 only");
            return;
        }
        if publish.retain && publish.topic.as_str().starts_with('$') {
            let reason = CloseReason::RetainOnReservedTopic { topic: publish.topic.into_string() };
            return self.close(now, conn, reason);
        }
        if let Some(policy) = &self.config.policy
            && !policy.allows_publish(common_name.as_deref(), &client_id, &publish.topic)
        {
            let resource = publish.topic.into_string();
            return self.close(
                now,
                conn,
                CloseReason::PolicyDenied { action: "publish", resource },
            );
        }
        let admitted = match self.connections.get_mut(&conn) {
            Some(connection) if self.config.strict_rates => connection.take_publish_token(
                now,
                &mut self.discarded,
                "inbound",
                &client_id,
                &publish.topic,
            ),
            _ => true,
        };
        if admitted && !self.take_shadow_request(conn, &publish.topic, &publish.payload) {
            self.route(now, &publish.topic, &publish.payload, publish.qos.qos(), publish.retain);
        }
        if let Some(packet_id) = publish.qos.packet_id() {
            self.send(conn, &Packet::PubAck(PubAck::new(packet_id)));
        }
    }

    fn handle_subscribe(&mut self, now: Instant, conn: ConnectionId, subscribe: Subscribe) {
        let Some((client_id, common_name)) = self.identity(conn) else { return };
        let count = subscribe.filters.len();
        if count > MAX_FILTERS_PER_SUBSCRIBE {
            return self.close(now, conn, CloseReason::TooManyFiltersInSubscribe { count });
        }
        for entry in &subscribe.filters {
            if let Err(error) = entry.filter.check_aws_limits() {
                let reason = CloseReason::TopicLimit { topic: entry.filter.to_string(), error };
                return self.close(now, conn, reason);
            }
        }
        if subscribe.filters.iter().any(|entry| entry.qos == QoS::ExactlyOnce) {
            tracing::info!(conn = %conn, client_id = ?peer_text(&client_id),
                "SUBSCRIBE with a QoS 2 filter ignored without SUBACK: IoT Core supports QoS 0 and 1 only");
            return;
        }
        if let Some(policy) = &self.config.policy {
            let denied = subscribe.filters.iter().find(|entry| {
                !policy.allows_subscribe(common_name.as_deref(), &client_id, &entry.filter)
            });
            if let Some(entry) = denied {
                let resource = entry.filter.to_string();
                return self.close(
                    now,
                    conn,
                    CloseReason::PolicyDenied { action: "subscribe", resource },
                );
            }
        }
        let Some(session) = self.sessions.get_mut(&client_id) else { return };
        let mut after = session.subscriptions.len();
        for (index, entry) in subscribe.filters.iter().enumerate() {
            let repeated = subscribe.filters.iter().take(index).any(|e| e.filter == entry.filter);
            if !is_shared(entry) && !repeated && !session.subscriptions.contains_key(&entry.filter)
            {
                after += 1;
            }
        }
        if after > MAX_SUBSCRIPTIONS {
            return self.close(now, conn, CloseReason::TooManySubscriptions { count: after });
        }
        let mut return_codes = Vec::with_capacity(count);
        for entry in &subscribe.filters {
            if is_shared(entry) {
                return_codes.push(SubAckReturnCode::FAILURE);
                continue;
            }
            session.subscriptions.insert(entry.filter.clone(), entry.qos);
            self.router.subscribe(&client_id, &entry.filter, entry.qos);
            return_codes.push(SubAckReturnCode::granted(entry.qos));
        }
        let suback = SubAck::new(subscribe.packet_id, return_codes);
        self.send(conn, &Packet::SubAck(suback));
        for entry in subscribe.filters.iter().filter(|e| !is_shared(e) && !e.filter.has_wildcards())
        {
            if let Ok(topic) = iot443_proto::topic::TopicName::new(entry.filter.as_str()) {
                self.deliver_retained(now, &client_id, &topic, entry.qos);
            }
        }
    }

    fn handle_unsubscribe(&mut self, conn: ConnectionId, unsubscribe: Unsubscribe) {
        let Some(client_id) = self.client_id(conn) else { return };
        if let Some(session) = self.sessions.get_mut(&client_id) {
            for filter in &unsubscribe.filters {
                if session.subscriptions.remove(filter).is_some() {
                    self.router.unsubscribe(&client_id, filter);
                }
            }
        }
        self.send(conn, &Packet::UnsubAck(UnsubAck::new(unsubscribe.packet_id)));
    }

    /// Appends `packet` to `conn`'s output.
    fn send(&mut self, conn: ConnectionId, packet: &Packet) {
        if let Some(connection) = self.connections.get_mut(&conn) {
            connection.send(&self.codec, packet, &mut self.events);
        }
    }

    /// The client id of a connected connection.
    fn client_id(&self, conn: ConnectionId) -> Option<String> {
        Some(self.connections.get(&conn)?.attached()?.client_id.clone())
    }

    /// The client id of a connected connection and, when a policy is configured (the only
    /// use of it), its certificate common name.
    fn identity(&self, conn: ConnectionId) -> Option<(String, Option<String>)> {
        let connection = self.connections.get(&conn)?;
        let client_id = connection.attached()?.client_id.clone();
        let common_name = match &self.config.policy {
            Some(_) => connection.peer.common_name.clone(),
            None => None,
        };
        Some((client_id, common_name))
    }
}

/// Why IoT Core would refuse `client_id`, if it would.
fn client_id_problem(client_id: &str) -> Option<String> {
    if client_id.is_empty() {
        Some("empty client id (this emulator does not assign client ids under MQTT 3.1.1)".into())
    } else if client_id.len() > MAX_CLIENT_ID_BYTES {
        Some(format!(
            "client id of {} bytes; IoT Core allows at most {MAX_CLIENT_ID_BYTES}",
            client_id.len()
        ))
    } else if client_id.starts_with('$') {
        Some("client ids starting with '$' are reserved by IoT Core".into())
    } else {
        None
    }
}

/// Whether the entry is a `$share/<name>/<filter>` shared subscription (not emulated).
fn is_shared(entry: &iot443_proto::codec::SubscribeFilter) -> bool {
    entry.filter.as_str().starts_with("$share/")
}
