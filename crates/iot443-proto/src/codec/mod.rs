//! MQTT packets and their wire format.
//!
//! One [`Codec`] serves the client and the emulator alike (STYLE.md habit 8). The protocol version
//! is a parameter of the codec, so MQTT 5 can be added beside 3.1.1 without a second tree.
//!
//! * [`Codec::decode`] takes whole packets off the front of a [`BytesMut`]. It returns `Ok(None)`
//!   until a packet is complete (that is not an error), checks the declared length against the
//!   maximum packet size *before* waiting for the body, and never allocates more than the body it
//!   has validated. PUBLISH payloads are [`Bytes`] slices of the received frame: no copy.
//! * [`Codec::encode`] appends a packet to any [`BufMut`] and returns the number of bytes written.
//!
//! Each packet kind lives in its own file with its decoder and encoder side by side and tests on
//! annotated bytes (STYLE.md habit 3).
//!
//! # Packets grow without breaking their users
//!
//! [`Packet`] and every packet struct are `#[non_exhaustive]`: their fields are public to read,
//! and they are built with constructors ([`Publish::new`], [`Subscribe::new`],
//! [`Connect::new`] with its `with_*` methods, [`PubAck::new`], …), so a field or a packet kind
//! that a later version brings is not a breaking change. The return codes of 3.1.1
//! ([`ConnectReturnCode`], [`SubAckReturnCode`]) are `u8` newtypes, so an unknown code survives
//! decoding and encoding; what the session reports is version-neutral ([`ConnectReason`],
//! [`SubscribeReason`], in MQTT 5's numbering), so an MQTT 5 reason code fits the same events.
//!
//! # Adding a protocol version
//!
//! The codec's [`ProtocolVersion`] reaches every packet's decoder and encoder (CONNECT excepted:
//! it names its own version, in its protocol level and [`Connect::protocol`]). Each of them starts
//! with `let ProtocolVersion::V311 = version;`, which says the layout is the same in every version
//! the codec knows. To add MQTT 5:
//!
//! 1. add `ProtocolVersion::V5` (level 5) in this file and accept level 5 in `connect.rs`;
//! 2. build: the compiler now stops at each of those `let`s, the places whose layout differs
//!    (properties, reason codes); turn each into a `match` on the version, and give the packet
//!    struct in that file the new fields, with defaults in its constructor;
//! 3. add `V5` arms to [`ConnectReason::from_wire`] and [`SubscribeReason::from_wire`] (MQTT 5
//!    codes pass through unchanged), and new packet kinds (AUTH) to [`Packet`] and
//!    [`PacketType`];
//! 4. a server decodes CONNECT with any codec, then answers with `Codec::new(connect.protocol)`.
//!
//! No public signature changes on the way, with one exception still to make: DISCONNECT is the
//! unit variant [`Packet::Disconnect`], so the reason code MQTT 5 gives it will need the variant
//! to carry a struct, as the other packets do.

mod connack;
mod connect;
mod error;
mod header;
mod ping;
mod puback;
mod publish;
mod reason;
mod suback;
mod subscribe;
mod unsubscribe;
mod wire;

use bytes::{BufMut, Bytes, BytesMut};
use core::fmt;
use core::num::NonZeroU16;

pub use connack::{ConnAck, ConnectReturnCode};
pub use connect::{Connect, LastWill};
pub use error::{DecodeError, EncodeError};
pub use header::{MAX_REMAINING_LENGTH, PacketType};
pub use puback::{PubAck, PubComp, PubRec, PubRel, UnsubAck};
pub use publish::{Publish, PublishQos};
pub use reason::{ConnectReason, SubscribeReason};
pub use suback::{SubAck, SubAckReturnCode};
pub use subscribe::{Subscribe, SubscribeFilter};
pub use unsubscribe::Unsubscribe;

use wire::Reader;

/// The largest PUBLISH payload AWS IoT Core accepts: 128 KiB.
pub const AWS_MAX_PAYLOAD: usize = 128 * 1024;

/// The most topic filters AWS IoT Core accepts in one SUBSCRIBE: 8 ("subscriptions per
/// subscribe call" in the AWS IoT Core message broker limits,
/// <https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits>).
pub const AWS_MAX_FILTERS_PER_SUBSCRIBE: usize = 8;

/// The most unacknowledged QoS 1 publishes AWS IoT Core allows in flight per client, in each
/// direction: 100 (AWS IoT Core message broker limits,
/// <https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits>).
pub const AWS_MAX_INFLIGHT: u16 = 100;

/// The longest client id AWS IoT Core accepts: 128 bytes of UTF-8 ("client ID size" in the AWS
/// IoT Core message broker limits,
/// <https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits>).
pub const AWS_MAX_CLIENT_ID_BYTES: usize = 128;

/// Default maximum size of a whole packet (fixed header included): IoT Core's 128 KiB payload plus
/// room for the fixed header, a 65,535-byte topic and a packet id.
pub const DEFAULT_MAX_PACKET_SIZE: usize = AWS_MAX_PAYLOAD + 5 + 2 + 65_535 + 2;

/// The MQTT protocol version a [`Codec`] speaks.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (protocol level 4), what AWS IoT Core's MQTT 3 endpoint speaks.
    #[default]
    V311,
}

impl ProtocolVersion {
    /// The protocol level byte of CONNECT for this version.
    pub const fn level(self) -> u8 {
        match self {
            ProtocolVersion::V311 => 4,
        }
    }

    /// The protocol name CONNECT carries for this version.
    pub const fn protocol_name(self) -> &'static str {
        match self {
            ProtocolVersion::V311 => "MQTT",
        }
    }
}

/// Quality of service of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum QoS {
    /// QoS 0: fire and forget.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: acknowledged with PUBACK, may arrive more than once.
    AtLeastOnce = 1,
    /// QoS 2: four-way handshake. AWS IoT Core does not support it.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a wire value, or [`DecodeError::InvalidQos`] for 3 and above.
    pub const fn from_u8(value: u8) -> Result<QoS, DecodeError> {
        match value {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            2 => Ok(QoS::ExactlyOnce),
            other => Err(DecodeError::InvalidQos(other)),
        }
    }
}

impl TryFrom<u8> for QoS {
    type Error = DecodeError;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        QoS::from_u8(value)
    }
}

/// A packet identifier: never zero (MQTT 3.1.1 §2.3.1).
///
/// ```
/// use iot443_proto::PacketId;
/// assert!(PacketId::new(0).is_none());
/// let last = PacketId::new(u16::MAX).unwrap();
/// assert_eq!(last.next().get(), 1); // wraps around, skipping zero
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// The first packet id, 1.
    pub const MIN: PacketId = PacketId(NonZeroU16::MIN);

    /// `None` for zero, which MQTT forbids.
    pub const fn new(id: u16) -> Option<PacketId> {
        match NonZeroU16::new(id) {
            Some(id) => Some(PacketId(id)),
            None => None,
        }
    }

    /// The id as a number.
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// The following id, wrapping from 65,535 to 1.
    pub const fn next(self) -> PacketId {
        match NonZeroU16::new(self.0.get().wrapping_add(1)) {
            Some(id) => PacketId(id),
            None => PacketId::MIN,
        }
    }
}

impl fmt::Display for PacketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One MQTT control packet.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Client → server: open a session.
    Connect(Connect),
    /// Server → client: answer to CONNECT.
    ConnAck(ConnAck),
    /// Either way: an application message.
    Publish(Publish),
    /// Acknowledges a QoS 1 PUBLISH.
    PubAck(PubAck),
    /// QoS 2, step 2.
    PubRec(PubRec),
    /// QoS 2, step 3.
    PubRel(PubRel),
    /// QoS 2, step 4.
    PubComp(PubComp),
    /// Client → server: add subscriptions.
    Subscribe(Subscribe),
    /// Server → client: answer to SUBSCRIBE, one return code per filter.
    SubAck(SubAck),
    /// Client → server: remove subscriptions.
    Unsubscribe(Unsubscribe),
    /// Server → client: answer to UNSUBSCRIBE.
    UnsubAck(UnsubAck),
    /// Client → server: keep-alive probe.
    PingReq,
    /// Server → client: answer to PINGREQ.
    PingResp,
    /// Client → server: orderly close (the will is not published).
    Disconnect,
}

impl Packet {
    /// The kind of this packet.
    pub const fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect => PacketType::Disconnect,
        }
    }
}

/// Encoder and decoder for one protocol version, with a maximum packet size.
///
/// `Codec` is `Copy` and holds no buffer: the caller owns the receive and transmit buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    version: ProtocolVersion,
    max_packet_size: usize,
}

impl Default for Codec {
    /// MQTT 3.1.1 with [`DEFAULT_MAX_PACKET_SIZE`].
    fn default() -> Self {
        Codec::new(ProtocolVersion::V311)
    }
}

impl Codec {
    /// A codec for `version` with [`DEFAULT_MAX_PACKET_SIZE`].
    pub const fn new(version: ProtocolVersion) -> Self {
        Codec { version, max_packet_size: DEFAULT_MAX_PACKET_SIZE }
    }

    /// The same codec with another maximum packet size (whole packet, fixed header included).
    ///
    /// Values above what MQTT can express (the fixed header plus [`MAX_REMAINING_LENGTH`]) are
    /// clamped to it.
    pub const fn with_max_packet_size(mut self, max_packet_size: usize) -> Self {
        let wire_max = MAX_REMAINING_LENGTH + 5;
        self.max_packet_size = if max_packet_size > wire_max { wire_max } else { max_packet_size };
        self
    }

    /// The protocol version.
    pub const fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The largest packet, fixed header included, that this codec decodes or encodes.
    pub const fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    /// Takes one whole packet off the front of `buf`.
    ///
    /// Returns `Ok(None)` and leaves `buf` untouched while the packet is incomplete. On success
    /// the packet's bytes are removed from `buf`. An error means the stream is malformed and the
    /// connection should be closed: a malformed fixed header leaves `buf` untouched, a malformed
    /// body has been removed from it.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some(header) = header::FixedHeader::parse(buf, self.max_packet_size)? else {
            return Ok(None);
        };
        if buf.len() < header.frame_len() {
            return Ok(None);
        }
        let body = buf.split_to(header.frame_len()).freeze().slice(header.header_len..);
        decode_body(self.version, header.packet_type, header.flags, body).map(Some)
    }

    /// Appends `packet` to `out` and returns the number of bytes written.
    ///
    /// Nothing is written when an error is returned.
    pub fn encode<B: BufMut>(&self, packet: &Packet, out: &mut B) -> Result<usize, EncodeError> {
        let (body_len, frame_len) = self.checked_lens(packet)?;
        if out.remaining_mut() < frame_len {
            return Err(EncodeError::BufferFull {
                needed: frame_len,
                available: out.remaining_mut(),
            });
        }
        let packet_type = packet.packet_type();
        header::write(out, packet_type, flags(packet), body_len);
        let version = self.version;
        match packet {
            Packet::Connect(connect) => connect.encode_body(out),
            Packet::ConnAck(connack) => connack.encode_body(version, out),
            Packet::Publish(publish) => publish.encode_body(version, out),
            Packet::PubAck(ack) => ack.encode_body(version, out),
            Packet::PubRec(ack) => ack.encode_body(version, out),
            Packet::PubRel(ack) => ack.encode_body(version, out),
            Packet::PubComp(ack) => ack.encode_body(version, out),
            Packet::UnsubAck(ack) => ack.encode_body(version, out),
            Packet::Subscribe(subscribe) => subscribe.encode_body(version, out),
            Packet::SubAck(suback) => suback.encode_body(version, out),
            Packet::Unsubscribe(unsubscribe) => unsubscribe.encode_body(version, out),
            // MQTT 5: DISCONNECT may carry a reason code and properties.
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => {}
        }
        Ok(frame_len)
    }

    /// The number of bytes [`Codec::encode`] would write for `packet`.
    pub fn encoded_len(&self, packet: &Packet) -> Result<usize, EncodeError> {
        header::frame_len(self.body_len(packet)?)
    }

    /// Like [`Codec::encoded_len`], and also [`EncodeError::PacketTooLarge`] when the packet is
    /// over this codec's [maximum packet size](Codec::max_packet_size): `Ok` means
    /// [`Codec::encode`] accepts the packet (given room in its buffer).
    pub fn checked_len(&self, packet: &Packet) -> Result<usize, EncodeError> {
        self.checked_lens(packet).map(|(_, frame_len)| frame_len)
    }

    /// The body length and the whole frame length of `packet`, the frame within the maximum
    /// packet size.
    fn checked_lens(&self, packet: &Packet) -> Result<(usize, usize), EncodeError> {
        let body_len = self.body_len(packet)?;
        let frame_len = header::frame_len(body_len)?;
        if frame_len > self.max_packet_size {
            return Err(EncodeError::PacketTooLarge { size: frame_len, max: self.max_packet_size });
        }
        Ok((body_len, frame_len))
    }

    fn body_len(&self, packet: &Packet) -> Result<usize, EncodeError> {
        let version = self.version;
        match packet {
            Packet::Connect(connect) => connect.body_len(),
            Packet::ConnAck(connack) => Ok(connack.body_len(version)),
            Packet::Publish(publish) => Ok(publish.body_len(version)),
            Packet::PubAck(ack) => Ok(ack.body_len(version)),
            Packet::PubRec(ack) => Ok(ack.body_len(version)),
            Packet::PubRel(ack) => Ok(ack.body_len(version)),
            Packet::PubComp(ack) => Ok(ack.body_len(version)),
            Packet::UnsubAck(ack) => Ok(ack.body_len(version)),
            Packet::Subscribe(subscribe) => subscribe.body_len(version),
            Packet::SubAck(suback) => Ok(suback.body_len(version)),
            Packet::Unsubscribe(unsubscribe) => unsubscribe.body_len(version),
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => Ok(0),
        }
    }
}

/// Decodes the body of one packet of `version` whose fixed header has been parsed already.
fn decode_body(
    version: ProtocolVersion,
    packet_type: PacketType,
    flags: u8,
    body: Bytes,
) -> Result<Packet, DecodeError> {
    let mut reader = Reader::new(packet_type, body);
    let reader = &mut reader;
    let packet = match packet_type {
        PacketType::Connect => Packet::Connect(connect::decode(reader)?),
        PacketType::ConnAck => Packet::ConnAck(connack::decode(version, reader)?),
        PacketType::Publish => Packet::Publish(publish::decode(version, flags, reader)?),
        PacketType::PubAck => Packet::PubAck(PubAck::decode(version, reader)?),
        PacketType::PubRec => Packet::PubRec(PubRec::decode(version, reader)?),
        PacketType::PubRel => Packet::PubRel(PubRel::decode(version, reader)?),
        PacketType::PubComp => Packet::PubComp(PubComp::decode(version, reader)?),
        PacketType::Subscribe => Packet::Subscribe(subscribe::decode(version, reader)?),
        PacketType::SubAck => Packet::SubAck(suback::decode(version, reader)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(unsubscribe::decode(version, reader)?),
        PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode(version, reader)?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => Packet::Disconnect,
    };
    reader.finish()?;
    Ok(packet)
}

/// The low four bits of the fixed header for `packet`.
fn flags(packet: &Packet) -> u8 {
    match packet {
        Packet::Publish(publish) => publish.flags(),
        Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
        _ => 0,
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Helpers for the annotated-byte tests in each packet file.
    use super::*;

    /// Decodes `bytes` as exactly one packet, asserting nothing is left over.
    pub(crate) fn decode_all(bytes: &[u8]) -> Result<Option<Packet>, DecodeError> {
        let mut buf = BytesMut::from(bytes);
        let result = Codec::default().decode(&mut buf);
        if let Ok(Some(_)) = result {
            assert!(buf.is_empty(), "decoder left {} bytes", buf.len());
        }
        result
    }

    /// Asserts that `bytes` decode to `packet` and that `packet` encodes back to `bytes`, and
    /// that every strict prefix of `bytes` is reported as incomplete.
    pub(crate) fn assert_wire(packet: &Packet, bytes: &[u8]) {
        let mut encoded = BytesMut::new();
        let written = Codec::default().encode(packet, &mut encoded).expect("encode");
        assert_eq!(&encoded[..], bytes, "encoding of {packet:?}");
        assert_eq!(written, bytes.len());
        assert_eq!(Codec::default().encoded_len(packet), Ok(bytes.len()));
        assert_eq!(decode_all(bytes), Ok(Some(packet.clone())));
        for cut in 0..bytes.len() {
            assert_eq!(decode_all(&bytes[..cut]), Ok(None), "prefix of {cut} bytes");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::decode_all;
    use super::*;

    #[test]
    fn decodes_back_to_back_packets_from_one_buffer() {
        let mut buf = BytesMut::from(
            &[
                0xD0, 0x00, // PINGRESP
                0x40, 0x02, 0x00, 0x01, // PUBACK id 1
                0x90, 0x03, 0x00,
                0x02, // SUBACK id 2 … (incomplete: one return code missing)
            ][..],
        );
        let codec = Codec::default();
        assert_eq!(codec.decode(&mut buf), Ok(Some(Packet::PingResp)));
        assert_eq!(
            codec.decode(&mut buf),
            Ok(Some(Packet::PubAck(PubAck::new(PacketId::new(1).unwrap()))))
        );
        assert_eq!(codec.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), 4);
    }

    #[test]
    fn a_malformed_body_is_consumed_and_the_next_packet_stays() {
        let mut buf = BytesMut::from(
            &[
                0x40, 0x03, 0x00, 0x01, 0xFF, // PUBACK with a trailing byte
                0xD0, 0x00, // PINGRESP
            ][..],
        );
        assert_eq!(
            Codec::default().decode(&mut buf),
            Err(DecodeError::TrailingBytes { packet: PacketType::PubAck, extra: 1 })
        );
        assert_eq!(&buf[..], &[0xD0, 0x00]);
    }

    #[test]
    fn encode_refuses_a_packet_over_the_maximum_and_writes_nothing() {
        let codec = Codec::default().with_max_packet_size(10);
        let publish = Packet::Publish(Publish::new(
            crate::topic::TopicName::new("t").unwrap(),
            PublishQos::AtMostOnce,
            Bytes::from_static(&[0; 16]),
        ));
        let mut out = BytesMut::new();
        assert_eq!(
            codec.encode(&publish, &mut out),
            Err(EncodeError::PacketTooLarge { size: 21, max: 10 })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn encode_into_a_full_fixed_buffer_is_an_error_not_a_panic() {
        let mut storage = [0u8; 1];
        let mut out = &mut storage[..];
        assert_eq!(
            Codec::default().encode(&Packet::PingReq, &mut out),
            Err(EncodeError::BufferFull { needed: 2, available: 1 })
        );
    }

    #[test]
    fn packet_id_wraps_around_skipping_zero() {
        assert_eq!(PacketId::new(u16::MAX).unwrap().next(), PacketId::MIN);
        assert_eq!(PacketId::MIN.next().get(), 2);
    }

    #[test]
    fn qos_three_is_an_error() {
        assert_eq!(QoS::from_u8(3), Err(DecodeError::InvalidQos(3)));
    }

    #[test]
    fn an_empty_buffer_is_incomplete() {
        assert_eq!(decode_all(&[]), Ok(None));
    }
}
