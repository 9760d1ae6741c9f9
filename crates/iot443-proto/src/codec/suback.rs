//! SUBACK: the server's answer to SUBSCRIBE, one return code per filter (MQTT 3.1.1 §3.9).

use super::error::DecodeError;
use super::wire::Reader;
use super::{PacketId, ProtocolVersion, QoS};
use alloc::vec::Vec;
use bytes::BufMut;
use core::fmt;

/// A SUBACK packet. Build it with [`SubAck::new`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// The id of the SUBSCRIBE answered.
    pub packet_id: PacketId,
    /// One code per filter of the SUBSCRIBE, in the same order.
    pub return_codes: Vec<SubAckReturnCode>,
}

/// An MQTT 3.1.1 SUBACK return code: the granted QoS, or failure. A newtype so that codes
/// outside MQTT 3.1.1 survive decoding and can be reported as they came.
///
/// This is the wire value of one version; what a session reports is the version-neutral
/// [`SubscribeReason`](super::SubscribeReason), which a `SubAckReturnCode` converts into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubAckReturnCode(u8);

impl SubAckReturnCode {
    /// Granted at QoS 0.
    pub const GRANTED_QOS0: Self = Self(0x00);
    /// Granted at QoS 1.
    pub const GRANTED_QOS1: Self = Self(0x01);
    /// Granted at QoS 2.
    pub const GRANTED_QOS2: Self = Self(0x02);
    /// Refused.
    pub const FAILURE: Self = Self(0x80);

    /// The code for a wire value.
    pub const fn new(code: u8) -> Self {
        Self(code)
    }

    /// The code granting `qos`.
    pub const fn granted(qos: QoS) -> Self {
        Self(qos as u8)
    }

    /// The wire value.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The granted QoS, or `None` for a failure or an unknown code.
    pub const fn granted_qos(self) -> Option<QoS> {
        match self.0 {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    /// A short description, or `None` for a code MQTT 3.1.1 does not define.
    pub const fn description(self) -> Option<&'static str> {
        Some(match self.0 {
            0x00 => "granted QoS 0",
            0x01 => "granted QoS 1",
            0x02 => "granted QoS 2",
            0x80 => "failure",
            _ => return None,
        })
    }
}

impl fmt::Display for SubAckReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        super::reason::fmt_v311(f, self.description(), self.0)
    }
}

pub(super) fn decode(version: ProtocolVersion, reader: &mut Reader) -> Result<SubAck, DecodeError> {
    // MQTT 5: properties come before the codes, which are reason codes.
    let ProtocolVersion::V311 = version;
    let packet_id = reader.packet_id()?;
    let return_codes = reader.rest().iter().map(|&code| SubAckReturnCode(code)).collect();
    Ok(SubAck { packet_id, return_codes })
}

impl SubAck {
    /// A SUBACK answering the SUBSCRIBE `packet_id` with one code per filter, in order.
    ///
    /// Any number of codes is accepted, none included: how many a SUBSCRIBE needs is for the
    /// one who answers it to know, and the receiving session checks it.
    pub const fn new(packet_id: PacketId, return_codes: Vec<SubAckReturnCode>) -> Self {
        SubAck { packet_id, return_codes }
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        let ProtocolVersion::V311 = version;
        2 + self.return_codes.len()
    }

    pub(super) fn encode_body<B: BufMut>(&self, version: ProtocolVersion, out: &mut B) {
        let ProtocolVersion::V311 = version;
        out.put_u16(self.packet_id.get());
        for code in &self.return_codes {
            out.put_u8(code.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_wire, decode_all};
    use super::super::{Packet, PacketType};
    use super::*;
    use alloc::vec;

    #[test]
    fn suback_with_grants_and_a_failure() {
        let suback = SubAck::new(
            PacketId::new(9).unwrap(),
            vec![
                SubAckReturnCode::GRANTED_QOS1,
                SubAckReturnCode::FAILURE,
                SubAckReturnCode::GRANTED_QOS0,
            ],
        );
        assert_wire(
            &Packet::SubAck(suback.clone()),
            &[
                0x90, // SUBACK
                0x05, // remaining length 5
                0x00, 0x09, // packet id 9
                0x01, // granted QoS 1
                0x80, // failure
                0x00, // granted QoS 0
            ],
        );
        assert_eq!(suback.return_codes[0].granted_qos(), Some(QoS::AtLeastOnce));
        assert_eq!(suback.return_codes[1].granted_qos(), None);
    }

    #[test]
    fn zero_packet_id() {
        assert_eq!(
            decode_all(&[0x90, 0x03, 0x00, 0x00, 0x00]),
            Err(DecodeError::ZeroPacketId { packet: PacketType::SubAck })
        );
    }

    #[test]
    fn unknown_code_survives() {
        let bytes = [
            0x90, // SUBACK
            0x03, // remaining length 3
            0x00, 0x01, // packet id 1
            0x42, // return code 0x42: not defined by MQTT 3.1.1
        ];
        let Some(Packet::SubAck(suback)) = decode_all(&bytes).unwrap() else {
            panic!("not a SUBACK")
        };
        assert_eq!(suback.return_codes, vec![SubAckReturnCode::new(0x42)]);
        assert_eq!(suback.return_codes[0].description(), None);
        assert_eq!(suback.return_codes[0].granted_qos(), None);
        assert_wire(&Packet::SubAck(suback), &bytes);
    }

    #[test]
    fn empty_suback() {
        // SUBACK, remaining length 2, packet id 1, no codes: well formed, for the session to
        // refuse as not matching its SUBSCRIBE.
        assert_wire(&Packet::SubAck(SubAck::new(PacketId::MIN, vec![])), &[0x90, 0x02, 0x00, 0x01]);
    }
}
