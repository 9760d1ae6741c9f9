//! SUBSCRIBE: the client asks for messages matching one or more filters (MQTT 3.1.1 §3.8).

use super::error::{DecodeError, EncodeError};
use super::wire::{Reader, prefixed_len, put_prefixed, require_filters};
use super::{PacketId, PacketType, ProtocolVersion, QoS};
use crate::topic::TopicFilter;
use alloc::vec::Vec;
use bytes::BufMut;

/// A SUBSCRIBE packet. Build it with [`Subscribe::new`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The packet id the SUBACK will carry.
    pub packet_id: PacketId,
    /// The filters with their requested QoS; never empty on the wire. IoT Core takes at most 8.
    pub filters: Vec<SubscribeFilter>,
}

/// One topic filter of a SUBSCRIBE with the maximum QoS requested for it. Build it with
/// [`SubscribeFilter::new`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscribeFilter {
    /// The filter.
    pub filter: TopicFilter,
    /// The maximum QoS requested.
    pub qos: QoS,
}

pub(super) fn decode(
    version: ProtocolVersion,
    reader: &mut Reader,
) -> Result<Subscribe, DecodeError> {
    // MQTT 5: properties follow the packet id, and the options byte gains more fields.
    let ProtocolVersion::V311 = version;
    let packet_id = reader.packet_id()?;
    let mut filters = Vec::new();
    while reader.has_remaining() {
        let filter = TopicFilter::new(reader.string()?)
            .map_err(|source| DecodeError::InvalidTopic { packet: reader.packet(), source })?;
        let options = reader.u8()?;
        if options & !0b11 != 0 {
            return Err(DecodeError::InvalidSubscriptionOptions(options));
        }
        filters.push(SubscribeFilter::new(filter, QoS::from_u8(options)?));
    }
    if filters.is_empty() {
        return Err(DecodeError::EmptySubscribe);
    }
    Ok(Subscribe { packet_id, filters })
}

impl SubscribeFilter {
    /// `filter` at a requested maximum of `qos`.
    pub const fn new(filter: TopicFilter, qos: QoS) -> Self {
        SubscribeFilter { filter, qos }
    }
}

impl Subscribe {
    /// A SUBSCRIBE to `filters` with `packet_id`, or [`EncodeError::NoTopicFilters`] when
    /// `filters` is empty (MQTT requires at least one).
    ///
    /// ```
    /// use iot443_proto::codec::{EncodeError, PacketId, Subscribe, SubscribeFilter};
    /// use iot443_proto::topic::TopicFilter;
    /// use iot443_proto::QoS;
    ///
    /// let filter = SubscribeFilter::new(TopicFilter::new("sdkTest/#").unwrap(), QoS::AtLeastOnce);
    /// assert!(Subscribe::new(PacketId::MIN, vec![filter]).is_ok());
    /// assert!(matches!(
    ///     Subscribe::new(PacketId::MIN, vec![]),
    ///     Err(EncodeError::NoTopicFilters(_))
    /// ));
    /// ```
    pub fn new(packet_id: PacketId, filters: Vec<SubscribeFilter>) -> Result<Self, EncodeError> {
        require_filters(PacketType::Subscribe, &filters)?;
        Ok(Subscribe { packet_id, filters })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let ProtocolVersion::V311 = version;
        require_filters(PacketType::Subscribe, &self.filters)?;
        self.filters.iter().try_fold(2, |len, entry| {
            Ok(len + prefixed_len("topic filter", entry.filter.as_str().len())? + 1)
        })
    }

    pub(super) fn encode_body<B: BufMut>(&self, version: ProtocolVersion, out: &mut B) {
        let ProtocolVersion::V311 = version;
        out.put_u16(self.packet_id.get());
        for entry in &self.filters {
            put_prefixed(out, entry.filter.as_str().as_bytes());
            out.put_u8(entry.qos as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_wire, decode_all};
    use super::super::{Codec, Packet};
    use super::*;
    use alloc::vec;

    fn filter(text: &str, qos: QoS) -> SubscribeFilter {
        SubscribeFilter::new(TopicFilter::new(text).unwrap(), qos)
    }

    #[test]
    fn subscribe_two_filters() {
        assert_wire(
            &Packet::Subscribe(
                Subscribe::new(
                    PacketId::new(1).unwrap(),
                    vec![filter("a/+", QoS::AtLeastOnce), filter("#", QoS::AtMostOnce)],
                )
                .unwrap(),
            ),
            &[
                0x82, // SUBSCRIBE, reserved flags 0b0010
                0x0C, // remaining length 12
                0x00, 0x01, // packet id 1
                0x00, 0x03, b'a', b'/', b'+', 0x01, // "a/+" at QoS 1
                0x00, 0x01, b'#', 0x00, // "#" at QoS 0
            ],
        );
    }

    #[test]
    fn empty_subscribe() {
        assert_eq!(decode_all(&[0x82, 0x02, 0x00, 0x01]), Err(DecodeError::EmptySubscribe));
        assert_eq!(
            Subscribe::new(PacketId::MIN, vec![]),
            Err(EncodeError::NoTopicFilters(PacketType::Subscribe))
        );
        // The fields are public: a SUBSCRIBE emptied after it was built is refused by encode.
        let mut subscribe =
            Subscribe::new(PacketId::MIN, vec![filter("a", QoS::AtMostOnce)]).unwrap();
        subscribe.filters.clear();
        let packet = Packet::Subscribe(subscribe);
        assert_eq!(
            Codec::default().encode(&packet, &mut alloc::vec::Vec::new()),
            Err(EncodeError::NoTopicFilters(PacketType::Subscribe))
        );
    }

    #[test]
    fn requested_qos_three() {
        assert_eq!(
            decode_all(&[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x03]),
            Err(DecodeError::InvalidQos(3))
        );
    }

    #[test]
    fn reserved_bits_in_options() {
        assert_eq!(
            decode_all(&[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x41]),
            Err(DecodeError::InvalidSubscriptionOptions(0x41))
        );
    }

    #[test]
    fn filter_without_its_options_byte() {
        assert_eq!(
            decode_all(&[0x82, 0x05, 0x00, 0x01, 0x00, 0x01, b'a']),
            Err(DecodeError::Truncated { packet: PacketType::Subscribe })
        );
    }

    #[test]
    fn zero_packet_id() {
        assert_eq!(
            decode_all(&[0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0x00]),
            Err(DecodeError::ZeroPacketId { packet: PacketType::Subscribe })
        );
    }

    #[test]
    fn misplaced_wildcard() {
        assert!(matches!(
            decode_all(&[0x82, 0x07, 0x00, 0x01, 0x00, 0x02, b'a', b'#', 0x00]),
            Err(DecodeError::InvalidTopic { packet: PacketType::Subscribe, .. })
        ));
    }
}
