//! PUBLISH: an application message, either way (MQTT 3.1.1 §3.3).

use super::error::DecodeError;
use super::wire::{Reader, put_prefixed};
use super::{PacketId, PacketType, ProtocolVersion, QoS};
use crate::topic::TopicName;
use bytes::{BufMut, Bytes};

const FLAG_RETAIN: u8 = 0b0001;
const FLAG_QOS_SHIFT: u8 = 1;
const FLAG_QOS_MASK: u8 = 0b0110;
const FLAG_DUP: u8 = 0b1000;

/// A PUBLISH packet. Build it with [`Publish::new`], then [`with_retain`](Publish::with_retain)
/// and [`with_dup`](Publish::with_dup) as needed.
///
/// ```
/// use bytes::Bytes;
/// use iot443_proto::codec::{PacketId, Publish, PublishQos};
/// use iot443_proto::topic::TopicName;
///
/// let topic = TopicName::new("sdkTest/sub").unwrap();
/// let id = PacketId::new(7).unwrap();
/// let publish = Publish::new(topic, PublishQos::AtLeastOnce(id), "hello").with_retain(true);
/// assert!(publish.retain && !publish.dup);
/// assert_eq!(publish.payload, Bytes::from_static(b"hello"));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Set on a re-delivery. Only meaningful at QoS 1 and 2; never encoded at QoS 0.
    pub dup: bool,
    /// The QoS, with the packet id it requires.
    pub qos: PublishQos,
    /// Ask the server to keep this message for future subscribers.
    pub retain: bool,
    /// Where the message goes. Never contains wildcards.
    pub topic: TopicName,
    /// The application payload: a zero-copy slice of the received frame when decoded.
    pub payload: Bytes,
}

/// The QoS of a PUBLISH with its packet id: QoS 0 has none, QoS 1 and 2 always have one.
///
/// Encoding the pair in one type makes "QoS 1 without a packet id" impossible to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublishQos {
    /// QoS 0: no packet id.
    AtMostOnce,
    /// QoS 1 with its packet id.
    AtLeastOnce(PacketId),
    /// QoS 2 with its packet id.
    ExactlyOnce(PacketId),
}

impl PublishQos {
    /// The QoS level.
    pub const fn qos(self) -> QoS {
        match self {
            PublishQos::AtMostOnce => QoS::AtMostOnce,
            PublishQos::AtLeastOnce(_) => QoS::AtLeastOnce,
            PublishQos::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }

    /// The packet id, for QoS 1 and 2.
    pub const fn packet_id(self) -> Option<PacketId> {
        match self {
            PublishQos::AtMostOnce => None,
            PublishQos::AtLeastOnce(id) | PublishQos::ExactlyOnce(id) => Some(id),
        }
    }

    /// `qos` with `packet_id`; the id is ignored for QoS 0.
    pub const fn with_packet_id(qos: QoS, packet_id: PacketId) -> Self {
        match qos {
            QoS::AtMostOnce => PublishQos::AtMostOnce,
            QoS::AtLeastOnce => PublishQos::AtLeastOnce(packet_id),
            QoS::ExactlyOnce => PublishQos::ExactlyOnce(packet_id),
        }
    }
}

pub(super) fn decode(
    version: ProtocolVersion,
    flags: u8,
    reader: &mut Reader,
) -> Result<Publish, DecodeError> {
    // MQTT 5: properties come between the packet id and the payload.
    let ProtocolVersion::V311 = version;
    let qos = QoS::from_u8((flags & FLAG_QOS_MASK) >> FLAG_QOS_SHIFT)?;
    let dup = flags & FLAG_DUP != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::DupOnQos0);
    }
    let topic = TopicName::new(reader.shared_string()?)
        .map_err(|source| DecodeError::InvalidTopic { packet: PacketType::Publish, source })?;
    let qos = match qos {
        QoS::AtMostOnce => PublishQos::AtMostOnce,
        QoS::AtLeastOnce => PublishQos::AtLeastOnce(reader.packet_id()?),
        QoS::ExactlyOnce => PublishQos::ExactlyOnce(reader.packet_id()?),
    };
    let payload = reader.rest();
    Ok(Publish { dup, qos, retain: flags & FLAG_RETAIN != 0, topic, payload })
}

impl Publish {
    /// A PUBLISH of `payload` to `topic` at `qos`, neither retained nor a re-delivery.
    pub fn new(topic: TopicName, qos: PublishQos, payload: impl Into<Bytes>) -> Self {
        Publish { dup: false, qos, retain: false, topic, payload: payload.into() }
    }

    /// The same PUBLISH, asking the server to keep it for future subscribers (or not).
    #[must_use]
    pub fn with_retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// The same PUBLISH, marked as a re-delivery (or not). The flag is only encoded at QoS 1
    /// and 2.
    #[must_use]
    pub fn with_dup(mut self, dup: bool) -> Self {
        self.dup = dup;
        self
    }

    /// The fixed-header flags: DUP (only at QoS 1 and 2), QoS and RETAIN.
    pub(super) fn flags(&self) -> u8 {
        let mut flags = (self.qos.qos() as u8) << FLAG_QOS_SHIFT;
        if self.dup && self.qos.packet_id().is_some() {
            flags |= FLAG_DUP;
        }
        if self.retain {
            flags |= FLAG_RETAIN;
        }
        flags
    }

    /// Body length. The topic is a [`TopicName`], at most 65,535 bytes, so this cannot fail.
    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        let ProtocolVersion::V311 = version;
        let id_len = if self.qos.packet_id().is_some() { 2 } else { 0 };
        2 + self.topic.as_str().len() + id_len + self.payload.len()
    }

    pub(super) fn encode_body<B: BufMut>(&self, version: ProtocolVersion, out: &mut B) {
        let ProtocolVersion::V311 = version;
        put_prefixed(out, self.topic.as_str().as_bytes());
        if let Some(id) = self.qos.packet_id() {
            out.put_u16(id.get());
        }
        out.put_slice(&self.payload);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_wire, decode_all};
    use super::super::{Codec, Packet};
    use super::*;
    use bytes::BytesMut;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    #[test]
    fn qos0_publish() {
        assert_wire(
            &Packet::Publish(Publish::new(
                TopicName::new("a/b").unwrap(),
                PublishQos::AtMostOnce,
                Bytes::from_static(b"hi"),
            )),
            &[
                0x30, // PUBLISH, QoS 0
                0x07, // remaining length 7
                0x00, 0x03, b'a', b'/', b'b', // topic "a/b"
                b'h', b'i', // payload (no packet id at QoS 0)
            ],
        );
    }

    #[test]
    fn qos1_publish_with_dup_and_retain() {
        assert_wire(
            &Packet::Publish(
                Publish::new(TopicName::new("t").unwrap(), PublishQos::AtLeastOnce(id(10)), "x")
                    .with_dup(true)
                    .with_retain(true),
            ),
            &[
                0x3B, // PUBLISH, DUP | QoS 1 | RETAIN
                0x06, // remaining length 6
                0x00, 0x01, b't', // topic "t"
                0x00, 0x0A, // packet id 10
                b'x', // payload
            ],
        );
    }

    #[test]
    fn qos2_publish_and_empty_payload() {
        assert_wire(
            &Packet::Publish(Publish::new(
                TopicName::new("t").unwrap(),
                PublishQos::ExactlyOnce(id(0x0102)),
                Bytes::new(),
            )),
            &[
                0x34, // PUBLISH, QoS 2
                0x05, // remaining length 5
                0x00, 0x01, b't', // topic "t"
                0x01, 0x02, // packet id 0x0102, then no payload
            ],
        );
    }

    #[test]
    fn dup_is_not_encoded_at_qos0() {
        let publish =
            Publish::new(TopicName::new("t").unwrap(), PublishQos::AtMostOnce, Bytes::new())
                .with_dup(true);
        let mut out = BytesMut::new();
        Codec::default().encode(&Packet::Publish(publish), &mut out).unwrap();
        assert_eq!(out[0], 0x30);
    }

    #[test]
    fn payload_is_a_slice_of_the_received_frame() {
        let mut buf = BytesMut::from(&[0x30, 0x06, 0x00, 0x01, b't', b'a', b'b', b'c'][..]);
        let frame_start = buf.as_ptr() as usize;
        let Some(Packet::Publish(publish)) = Codec::default().decode(&mut buf).unwrap() else {
            panic!("not a publish")
        };
        assert_eq!(&publish.payload[..], b"abc");
        assert_eq!(publish.payload.as_ptr() as usize, frame_start + 5, "payload was copied");
    }

    #[test]
    fn qos_three() {
        assert_eq!(
            decode_all(&[0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01]),
            Err(DecodeError::InvalidQos(3))
        );
    }

    #[test]
    fn dup_at_qos0() {
        assert_eq!(decode_all(&[0x38, 0x03, 0x00, 0x01, b't']), Err(DecodeError::DupOnQos0));
    }

    #[test]
    fn packet_id_zero() {
        assert_eq!(
            decode_all(&[0x32, 0x05, 0x00, 0x01, b't', 0x00, 0x00]),
            Err(DecodeError::ZeroPacketId { packet: PacketType::Publish })
        );
    }

    #[test]
    fn wildcard_in_topic() {
        assert!(matches!(
            decode_all(&[0x30, 0x03, 0x00, 0x01, b'+']),
            Err(DecodeError::InvalidTopic { packet: PacketType::Publish, .. })
        ));
    }

    #[test]
    fn empty_topic() {
        assert!(matches!(
            decode_all(&[0x30, 0x02, 0x00, 0x00]),
            Err(DecodeError::InvalidTopic { packet: PacketType::Publish, .. })
        ));
    }

    #[test]
    fn invalid_utf8_topic() {
        assert_eq!(
            decode_all(&[0x30, 0x04, 0x00, 0x02, 0xC3, 0x28]),
            Err(DecodeError::InvalidUtf8 { packet: PacketType::Publish })
        );
    }

    #[test]
    fn nul_in_topic() {
        assert_eq!(
            decode_all(&[0x30, 0x04, 0x00, 0x02, b'a', 0x00]),
            Err(DecodeError::NulCharacter { packet: PacketType::Publish })
        );
    }

    #[test]
    fn topic_longer_than_the_packet() {
        assert_eq!(
            decode_all(&[0x30, 0x03, 0x00, 0x05, b't']),
            Err(DecodeError::Truncated { packet: PacketType::Publish })
        );
    }
}
