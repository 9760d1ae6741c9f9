//! SUBSCRIBE: the client asks for messages matching one or more filters (MQTT 3.1.1 §3.8).

use super::error::{DecodeError, EncodeError};
use super::wire::{Reader, prefixed_len, put_prefixed};
use super::{PacketId, PacketType, QoS};
use crate::topic::TopicFilter;
use alloc::vec::Vec;
use bytes::BufMut;

/// A SUBSCRIBE packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The packet id the SUBACK will carry.
    pub packet_id: PacketId,
    /// The filters with their requested QoS; never empty on the wire. IoT Core takes at most 8.
    pub filters: Vec<SubscribeFilter>,
}

/// One topic filter of a SUBSCRIBE with the maximum QoS requested for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscribeFilter {
    /// The filter.
    pub filter: TopicFilter,
    /// The maximum QoS requested.
    pub qos: QoS,
}

pub(super) fn decode(reader: &mut Reader) -> Result<Subscribe, DecodeError> {
    let packet_id = reader.packet_id()?;
    let mut filters = Vec::new();
    while reader.has_remaining() {
        let filter = TopicFilter::new(reader.string()?)
            .map_err(|source| DecodeError::InvalidTopic { packet: reader.packet(), source })?;
        let options = reader.u8()?;
        if options & !0b11 != 0 {
            return Err(DecodeError::InvalidSubscriptionOptions(options));
        }
        filters.push(SubscribeFilter { filter, qos: QoS::from_u8(options)? });
    }
    if filters.is_empty() {
        return Err(DecodeError::EmptySubscribe);
    }
    Ok(Subscribe { packet_id, filters })
}

impl Subscribe {
    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters(PacketType::Subscribe));
        }
        self.filters.iter().try_fold(2, |len, entry| {
            Ok(len + prefixed_len("topic filter", entry.filter.as_str().len())? + 1)
        })
    }

    pub(super) fn encode_body<B: BufMut>(&self, out: &mut B) {
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
        SubscribeFilter { filter: TopicFilter::new(text).unwrap(), qos }
    }

    #[test]
    fn subscribe_two_filters() {
        assert_wire(
            &Packet::Subscribe(Subscribe {
                packet_id: PacketId::new(1).unwrap(),
                filters: vec![filter("a/+", QoS::AtLeastOnce), filter("#", QoS::AtMostOnce)],
            }),
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
        let packet = Packet::Subscribe(Subscribe { packet_id: PacketId::MIN, filters: vec![] });
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
