//! Builders for packets tests use often. They panic on invalid input: tests only.

use bytes::Bytes;
use iot443_proto::codec::{
    ConnAck, Connect, ConnectReturnCode, Packet, PacketId, PubAck, Publish, PublishQos, QoS,
    SubAck, SubAckReturnCode, SubscribeFilter, UnsubAck,
};
use iot443_proto::topic::{TopicFilter, TopicName};

/// A packet id from a number; panics on 0.
pub fn id(n: u16) -> PacketId {
    PacketId::new(n).expect("packet id 0")
}

/// A topic name; panics if invalid.
pub fn topic(name: &str) -> TopicName {
    TopicName::new(name).expect("invalid topic name")
}

/// A subscription entry; panics if the filter is invalid.
pub fn filter(text: &str, qos: QoS) -> SubscribeFilter {
    SubscribeFilter::new(TopicFilter::new(text).expect("invalid filter"), qos)
}

/// A CONNECT for `client_id` with a clean session and a keep-alive of `keep_alive_secs`.
pub fn connect(client_id: &str, keep_alive_secs: u16) -> Packet {
    Packet::Connect(Connect::new(client_id).with_keep_alive(keep_alive_secs))
}

/// An accepting CONNACK.
pub fn connack(session_present: bool) -> Packet {
    Packet::ConnAck(ConnAck::new(session_present, ConnectReturnCode::ACCEPTED))
}

/// A refusing CONNACK.
pub fn connack_refused(code: ConnectReturnCode) -> Packet {
    Packet::ConnAck(ConnAck::new(false, code))
}

/// PUBACK for `n`.
pub fn puback(n: u16) -> Packet {
    Packet::PubAck(PubAck::new(id(n)))
}

/// SUBACK for `n` granting `granted`.
pub fn suback(n: u16, granted: &[QoS]) -> Packet {
    Packet::SubAck(SubAck::new(
        id(n),
        granted.iter().map(|&qos| SubAckReturnCode::granted(qos)).collect(),
    ))
}

/// UNSUBACK for `n`.
pub fn unsuback(n: u16) -> Packet {
    Packet::UnsubAck(UnsubAck::new(id(n)))
}

/// A QoS 0 PUBLISH.
pub fn publish_qos0(topic_name: &str, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish::new(
        topic(topic_name),
        PublishQos::AtMostOnce,
        Bytes::from_static(payload),
    ))
}

/// A QoS 1 PUBLISH with packet id `n`.
pub fn publish_qos1(topic_name: &str, n: u16, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish::new(
        topic(topic_name),
        PublishQos::AtLeastOnce(id(n)),
        Bytes::from_static(payload),
    ))
}

/// The fields of a PUBLISH the tests check: (topic, packet id, dup, payload).
pub fn publish_fields(packet: &Packet) -> Option<(&str, Option<u16>, bool, &[u8])> {
    match packet {
        Packet::Publish(publish) => Some((
            publish.topic.as_str(),
            publish.qos.packet_id().map(PacketId::get),
            publish.dup,
            &publish.payload[..],
        )),
        _ => None,
    }
}
