#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Property tests for `iot443_proto::codec`:
//!
//! * every packet type survives encode → decode unchanged, the decoder consumes exactly the
//!   bytes written, and `encoded_len` predicts them;
//! * every CONNACK and SUBACK return code, unknown ones included, survives decode → encode and
//!   is kept by the version-neutral reason a session reports;
//! * arbitrary and corrupted bytes never make the decoder panic, and whatever it does accept
//!   survives a second round trip;
//! * a stream of packets cut at arbitrary points and fed piece by piece decodes to the same
//!   packets, in order, with `Ok(None)` while a packet is incomplete.
//!
//! The number of cases is 256 locally and 10,000 when `CI=true`.

use bytes::{Bytes, BytesMut};
use iot443_proto::codec::{
    ConnAck, Connect, ConnectReason, ConnectReturnCode, LastWill, ProtocolVersion, PubAck, PubComp,
    PubRec, PubRel, Publish, PublishQos, SubAck, SubAckReturnCode, Subscribe, SubscribeFilter,
    SubscribeReason, UnsubAck, Unsubscribe,
};
use iot443_proto::topic::{TopicFilter, TopicName};
use iot443_proto::{Codec, EncodeError, Packet, PacketId, QoS};
use proptest::prelude::*;
use proptest::sample::Index;

fn cases() -> u32 {
    if std::env::var("CI").as_deref() == Ok("true") { 10_000 } else { 256 }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// One ordinary topic level (may be empty: `a//b` is a valid topic).
fn level() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_-]{0,8}"
}

/// Valid topic names: 1 to 6 levels joined by `/` (the empty string is filtered out).
fn topic_name() -> impl Strategy<Value = TopicName> {
    prop::collection::vec(level(), 1..6)
        .prop_filter_map("valid topic name", |levels| TopicName::new(levels.join("/")).ok())
}

/// Valid topic filters: ordinary and `+` levels, optionally ending in `#`.
fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    let level_or_plus = prop_oneof![3 => level(), 1 => Just("+".to_owned())];
    (prop::collection::vec(level_or_plus, 0..6), any::<bool>()).prop_filter_map(
        "valid topic filter",
        |(mut levels, hash)| {
            if hash {
                levels.push("#".to_owned());
            }
            TopicFilter::new(levels.join("/")).ok()
        },
    )
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|id| PacketId::new(id).unwrap())
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce), Just(QoS::ExactlyOnce)]
}

fn bytes(max_len: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max_len).prop_map(Bytes::from)
}

/// MQTT strings: any Unicode text without U+0000.
fn mqtt_string(max_chars: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>().prop_filter("no NUL", |&c| c != '\0'), 0..max_chars)
        .prop_map(|chars| chars.into_iter().collect())
}

fn last_will() -> impl Strategy<Value = LastWill> {
    (topic_name(), bytes(256), qos(), any::<bool>()).prop_map(|(topic, payload, qos, retain)| {
        LastWill::new(topic, payload, qos).with_retain(retain)
    })
}

/// CONNECT with and without will, user name and password (a password only with a user name,
/// as MQTT 3.1.1 requires).
fn connect() -> impl Strategy<Value = Connect> {
    (
        mqtt_string(32),
        any::<u16>(),
        any::<bool>(),
        prop::option::of(last_will()),
        prop::option::of(mqtt_string(32)),
        prop::option::of(bytes(64)),
    )
        .prop_map(|(client_id, keep_alive, clean_session, will, username, password)| {
            let mut connect = Connect::new(client_id)
                .with_protocol(ProtocolVersion::V311)
                .with_keep_alive(keep_alive)
                .with_clean_session(clean_session);
            if let Some(will) = will {
                connect = connect.with_will(will);
            }
            if let Some(username) = username {
                connect = connect.with_username(username);
                if let Some(password) = password {
                    connect = connect.with_password(password);
                }
            }
            connect
        })
}

fn connack() -> impl Strategy<Value = ConnAck> {
    (any::<bool>(), any::<u8>()).prop_map(|(session_present, code)| {
        ConnAck::new(session_present, ConnectReturnCode::new(code))
    })
}

fn publish_qos() -> impl Strategy<Value = PublishQos> {
    prop_oneof![
        Just(PublishQos::AtMostOnce),
        packet_id().prop_map(PublishQos::AtLeastOnce),
        packet_id().prop_map(PublishQos::ExactlyOnce),
    ]
}

/// PUBLISH at every QoS with DUP and RETAIN and payloads of 0 to 2,047 bytes. DUP is never
/// encoded at QoS 0, so it is generated as `false` there.
fn publish() -> impl Strategy<Value = Publish> {
    (any::<bool>(), publish_qos(), any::<bool>(), topic_name(), bytes(2048)).prop_map(
        |(dup, qos, retain, topic, payload)| {
            Publish::new(topic, qos, payload)
                .with_dup(dup && qos != PublishQos::AtMostOnce)
                .with_retain(retain)
        },
    )
}

fn subscribe() -> impl Strategy<Value = Subscribe> {
    let entry = (topic_filter(), qos()).prop_map(|(filter, qos)| SubscribeFilter::new(filter, qos));
    (packet_id(), prop::collection::vec(entry, 1..=8))
        .prop_map(|(packet_id, filters)| Subscribe::new(packet_id, filters).unwrap())
}

fn suback() -> impl Strategy<Value = SubAck> {
    let code = prop_oneof![
        Just(SubAckReturnCode::GRANTED_QOS0),
        Just(SubAckReturnCode::GRANTED_QOS1),
        Just(SubAckReturnCode::GRANTED_QOS2),
        Just(SubAckReturnCode::FAILURE),
        any::<u8>().prop_map(SubAckReturnCode::new),
    ];
    (packet_id(), prop::collection::vec(code, 0..=8))
        .prop_map(|(packet_id, return_codes)| SubAck::new(packet_id, return_codes))
}

fn unsubscribe() -> impl Strategy<Value = Unsubscribe> {
    (packet_id(), prop::collection::vec(topic_filter(), 1..=8))
        .prop_map(|(packet_id, filters)| Unsubscribe::new(packet_id, filters).unwrap())
}

/// Any packet of any type.
fn packet() -> impl Strategy<Value = Packet> {
    prop_oneof![
        connect().prop_map(Packet::Connect),
        connack().prop_map(Packet::ConnAck),
        publish().prop_map(Packet::Publish),
        packet_id().prop_map(|packet_id| Packet::PubAck(PubAck::new(packet_id))),
        packet_id().prop_map(|packet_id| Packet::PubRec(PubRec::new(packet_id))),
        packet_id().prop_map(|packet_id| Packet::PubRel(PubRel::new(packet_id))),
        packet_id().prop_map(|packet_id| Packet::PubComp(PubComp::new(packet_id))),
        subscribe().prop_map(Packet::Subscribe),
        suback().prop_map(Packet::SubAck),
        unsubscribe().prop_map(Packet::Unsubscribe),
        packet_id().prop_map(|packet_id| Packet::UnsubAck(UnsubAck::new(packet_id))),
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        Just(Packet::Disconnect),
    ]
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

fn encode(packet: &Packet) -> BytesMut {
    let mut buf = BytesMut::new();
    Codec::default().encode(packet, &mut buf).expect("a valid packet encodes");
    buf
}

/// Decodes `wire` as exactly one packet.
fn decode_one(wire: &[u8]) -> Result<Option<Packet>, TestCaseError> {
    let mut buf = BytesMut::from(wire);
    let decoded = Codec::default().decode(&mut buf);
    prop_assert!(buf.is_empty(), "decoder left {} bytes", buf.len());
    decoded.map_err(|error| TestCaseError::fail(format!("decoding {wire:02x?}: {error}")))
}

/// Encode, check the length bookkeeping, decode, and get the same packet with nothing left.
fn assert_round_trip(packet: &Packet) -> Result<(), TestCaseError> {
    let codec = Codec::default();
    let mut buf = BytesMut::new();
    let written = codec.encode(packet, &mut buf);
    prop_assert!(written.is_ok(), "encoding {packet:?} failed: {written:?}");
    let written = written.unwrap();
    prop_assert_eq!(written, buf.len(), "encode's return value is the number of bytes written");
    prop_assert_eq!(codec.encoded_len(packet), Ok(written), "encoded_len of {:?}", packet);
    let decoded = codec.decode(&mut buf);
    prop_assert_eq!(decoded, Ok(Some(packet.clone())));
    prop_assert!(buf.is_empty(), "decoder left {} bytes", buf.len());
    Ok(())
}

/// Decodes everything `buf` holds, checking that each packet survives another round trip,
/// until the decoder wants more bytes or reports an error. Must never panic.
fn decode_all_and_round_trip(mut buf: BytesMut) -> Result<(), TestCaseError> {
    let codec = Codec::default();
    loop {
        let before = buf.len();
        match codec.decode(&mut buf) {
            Ok(Some(packet)) => {
                prop_assert!(buf.len() < before, "a decoded packet consumed no bytes");
                assert_round_trip(&packet)?;
            }
            Ok(None) | Err(_) => return Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn connect_round_trips(connect in connect()) {
        assert_round_trip(&Packet::Connect(connect))?;
    }

    #[test]
    fn connack_round_trips(connack in connack()) {
        assert_round_trip(&Packet::ConnAck(connack))?;
    }

    #[test]
    fn publish_round_trips(publish in publish()) {
        assert_round_trip(&Packet::Publish(publish))?;
    }

    #[test]
    fn puback_round_trips(packet_id in packet_id()) {
        assert_round_trip(&Packet::PubAck(PubAck::new(packet_id)))?;
    }

    #[test]
    fn pubrec_round_trips(packet_id in packet_id()) {
        assert_round_trip(&Packet::PubRec(PubRec::new(packet_id)))?;
    }

    #[test]
    fn pubrel_round_trips(packet_id in packet_id()) {
        assert_round_trip(&Packet::PubRel(PubRel::new(packet_id)))?;
    }

    #[test]
    fn pubcomp_round_trips(packet_id in packet_id()) {
        assert_round_trip(&Packet::PubComp(PubComp::new(packet_id)))?;
    }

    #[test]
    fn subscribe_round_trips(subscribe in subscribe()) {
        assert_round_trip(&Packet::Subscribe(subscribe))?;
    }

    #[test]
    fn suback_round_trips(suback in suback()) {
        assert_round_trip(&Packet::SubAck(suback))?;
    }

    #[test]
    fn unsubscribe_round_trips(unsubscribe in unsubscribe()) {
        assert_round_trip(&Packet::Unsubscribe(unsubscribe))?;
    }

    #[test]
    fn unsuback_round_trips(packet_id in packet_id()) {
        assert_round_trip(&Packet::UnsubAck(UnsubAck::new(packet_id)))?;
    }

    #[test]
    fn empty_packets_round_trip(
        packet in prop_oneof![Just(Packet::PingReq), Just(Packet::PingResp), Just(Packet::Disconnect)]
    ) {
        assert_round_trip(&packet)?;
    }

    /// Any CONNACK return code, known to MQTT 3.1.1 or not, survives decode → encode byte for
    /// byte, and the reason a session reports for it keeps the code as it came.
    #[test]
    fn any_connack_code_survives_decode_then_encode(session_present in any::<bool>(), code in any::<u8>()) {
        let wire = [0x20, 0x02, u8::from(session_present), code];
        let Some(Packet::ConnAck(connack)) = decode_one(&wire)? else {
            return Err(TestCaseError::fail("not a CONNACK"));
        };
        prop_assert_eq!(connack.code.get(), code);
        prop_assert_eq!(&encode(&Packet::ConnAck(connack))[..], &wire[..]);
        let reason = ConnectReason::from(connack.code);
        prop_assert_eq!(reason.wire(), code);
        prop_assert_eq!(reason.version(), Some(ProtocolVersion::V311));
        prop_assert_eq!(reason.is_success(), connack.code.is_accepted());
    }

    /// Any SUBACK return codes, known to MQTT 3.1.1 or not, survive decode → encode byte for
    /// byte, and the reasons a session reports for them keep the codes as they came.
    #[test]
    fn any_suback_codes_survive_decode_then_encode(
        packet_id in packet_id(),
        codes in prop::collection::vec(any::<u8>(), 0..=8),
    ) {
        let mut wire = vec![0x90, 2 + codes.len() as u8];
        wire.extend_from_slice(&packet_id.get().to_be_bytes());
        wire.extend_from_slice(&codes);
        let Some(Packet::SubAck(suback)) = decode_one(&wire)? else {
            return Err(TestCaseError::fail("not a SUBACK"));
        };
        let got: Vec<u8> = suback.return_codes.iter().map(|code| code.get()).collect();
        prop_assert_eq!(&got, &codes);
        for &code in &suback.return_codes {
            let reason = SubscribeReason::from(code);
            prop_assert_eq!(reason.wire(), code.get());
            prop_assert_eq!(reason.granted_qos(), code.granted_qos());
        }
        prop_assert_eq!(&encode(&Packet::SubAck(suback))[..], &wire[..]);
    }

    /// A CONNECT with a password and no user name is refused, and nothing is written.
    #[test]
    fn password_without_username_is_refused(connect in connect(), password in bytes(64)) {
        let mut connect = connect.with_password(password);
        connect.username = None;
        let packet = Packet::Connect(connect);
        let mut buf = BytesMut::new();
        prop_assert_eq!(
            Codec::default().encode(&packet, &mut buf),
            Err(EncodeError::PasswordWithoutUsername)
        );
        prop_assert!(buf.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Arbitrary bytes never make the decoder panic; whatever it accepts round-trips.
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all_and_round_trip(BytesMut::from(&data[..]))?;
    }

    /// Like `arbitrary_bytes_never_panic`, but with a well-formed fixed header (any packet type
    /// and flags, a remaining length matching the body) so the body decoders see random input
    /// far more often than with uniformly random bytes.
    #[test]
    fn arbitrary_bodies_never_panic(
        first in any::<u8>(),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut data = vec![first];
        let mut len = body.len();
        loop {
            let byte = (len & 0x7F) as u8;
            len >>= 7;
            data.push(if len > 0 { byte | 0x80 } else { byte });
            if len == 0 {
                break;
            }
        }
        data.extend_from_slice(&body);
        decode_all_and_round_trip(BytesMut::from(&data[..]))?;
    }

    /// A valid packet with one byte changed never makes the decoder panic; whatever it accepts
    /// round-trips.
    #[test]
    fn corrupted_packet_never_panics(packet in packet(), at in any::<Index>(), flip in 1..=u8::MAX) {
        let mut buf = encode(&packet);
        let at = at.index(buf.len());
        buf[at] ^= flip;
        decode_all_and_round_trip(buf)?;
    }

    /// Packets of a stream cut at arbitrary points and fed piece by piece into one buffer come
    /// out unchanged and in order; an incomplete packet is `Ok(None)`, never an error.
    #[test]
    fn split_stream_decodes_in_order(
        packets in prop::collection::vec(packet(), 1..6),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        let codec = Codec::default();
        let mut stream = BytesMut::new();
        for packet in &packets {
            codec.encode(packet, &mut stream).unwrap();
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();

        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut start = 0;
        for end in cuts {
            buf.extend_from_slice(&stream[start..end]);
            start = end;
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(packet)) => decoded.push(packet),
                    Ok(None) => break,
                    Err(error) => prop_assert!(false, "error on a valid stream: {error}"),
                }
            }
        }
        prop_assert!(buf.is_empty(), "{} bytes left over", buf.len());
        prop_assert_eq!(decoded, packets);
    }
}
