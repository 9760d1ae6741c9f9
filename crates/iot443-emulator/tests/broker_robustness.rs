//! Hostile input affects only the connection it arrives on, and never panics the broker.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use bytes::BytesMut;
use common::Harness;
use iot443_emulator::broker::{CloseReason, ConnectionId};
use iot443_proto::codec::{Codec, Connect, DecodeError, Packet, PubAck, QoS};
use proptest::prelude::*;
use std::time::Duration;

#[test]
fn malformed_packet_closes_only_that_connection() {
    let mut h = Harness::new();
    let good = h.connect("good");
    h.subscribe(good, &[("t", QoS::AtLeastOnce)]);
    let bad = h.connect("bad");
    h.send_raw(bad, &[0xF0, 0x00]); // packet type 15 is reserved
    h.assert_closed(bad, &CloseReason::Malformed(DecodeError::InvalidPacketType(15)));
    h.assert_open(good);
    h.publish(good, "t", QoS::AtLeastOnce, false, b"still here");
    let received = h.received(good);
    assert!(received.iter().any(|p| matches!(p, Packet::PubAck(_))));
    assert!(
        received.iter().any(|p| matches!(p, Packet::Publish(m) if &m.payload[..] == b"still here"))
    );
}

#[test]
fn oversized_packet_is_refused_before_its_body_arrives() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    // PUBLISH declaring 4 MiB: refused from the fixed header alone.
    h.send_raw(conn, &[0x30, 0x80, 0x80, 0x80, 0x02]);
    assert!(matches!(
        h.close_reason(conn),
        Some(CloseReason::Malformed(DecodeError::PacketTooLarge { .. }))
    ));
}

#[test]
fn packets_split_across_reads_and_many_packets_in_one_read_are_all_handled() {
    let mut h = Harness::new();
    let conn = h.open();
    let mut wire = BytesMut::new();
    Codec::default().encode(&Packet::Connect(Connect::new("dev")), &mut wire).unwrap();
    for byte in wire.chunks(1) {
        h.send_raw(conn, byte);
    }
    assert_eq!(h.received(conn).len(), 1, "CONNACK");
    // 150,000 PINGREQs (300 KB, more than the maximum packet size) in one read.
    let pings = [0xC0u8, 0x00].repeat(150_000);
    h.send_raw(conn, &pings);
    assert_eq!(h.received(conn).len(), 150_000);
    h.assert_open(conn);
}

/// One step of hostile input: bytes for connection `conn`, then time moves by `advance_ms`.
#[derive(Debug, Clone)]
struct Step {
    conn: usize,
    bytes: Vec<u8>,
    advance_ms: u64,
}

fn step() -> impl Strategy<Value = Step> {
    (0..3usize, proptest::collection::vec(any::<u8>(), 0..64), 0..20_000u64)
        .prop_map(|(conn, bytes, advance_ms)| Step { conn, bytes, advance_ms })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(iot443_test_support::proptest_cases()))]

    #[test]
    fn arbitrary_bytes_never_panic_and_the_broker_keeps_serving_a_good_client(
        connect_first in proptest::collection::vec(any::<bool>(), 3),
        steps in proptest::collection::vec(step(), 0..12),
    ) {
        let mut h = Harness::new();
        // The well-behaved client: keep-alive 1200 s outlasts the at most 240 s of the steps.
        let good = h.open();
        h.send(good, &Packet::Connect(Connect::new("good-client").with_keep_alive(1200)));
        h.subscribe(good, &[("probe/#", QoS::AtLeastOnce)]);
        h.received(good);
        let hostile: Vec<ConnectionId> = connect_first
            .iter()
            .enumerate()
            .map(|(n, &connect)| {
                let conn = h.open();
                if connect {
                    let packet = Connect::new(format!("hostile-{n}"))
                        .with_keep_alive(30)
                        .with_clean_session(n % 2 == 0);
                    h.send(conn, &Packet::Connect(packet));
                }
                conn
            })
            .collect();
        for step in steps {
            h.send_raw(hostile[step.conn], &step.bytes);
            h.received(hostile[step.conn]);
            h.advance(Duration::from_millis(step.advance_ms));
        }
        for conn in &hostile {
            h.close_transport(*conn);
        }
        h.assert_open(good);
        let id = h.packet_id();
        h.send(good, &Packet::Publish(common::publish_packet("probe/x", QoS::AtLeastOnce, id, false, b"probe")));
        let received = h.received(good);
        let ack = Packet::PubAck(PubAck::new(id));
        prop_assert!(received.contains(&ack), "no PUBACK in {:?}", received);
        prop_assert!(received.iter().any(|p| matches!(p, Packet::Publish(m) if &m.payload[..] == b"probe")));
        prop_assert_eq!(h.broker.connection_count(), 1);
        // Nothing hostile is left behind but (possibly) offline persistent sessions.
        prop_assert!(h.broker.session_count() <= 1 + hostile.len());
    }
}

#[test]
fn qos0_flood_towards_a_subscriber_that_never_reads_is_bounded() {
    let mut harness = Harness::new();
    let slow = harness.connect("slow-reader");
    harness.subscribe(slow, &[("flood/#", QoS::AtMostOnce)]);
    let flooder = harness.connect("flooder");
    let payload = vec![0u8; 64 * 1024];
    // 16 MiB of QoS 0 towards a client that takes none of its output.
    for _ in 0..256 {
        harness.publish(flooder, "flood/x", QoS::AtMostOnce, false, &payload);
    }
    let backlog = harness.publishes(slow);
    let bytes: usize = backlog.iter().map(|publish| publish.payload.len()).sum();
    assert!(
        bytes <= iot443_emulator::broker::MAX_PENDING_OUTPUT + payload.len(),
        "{bytes} bytes queued for a client that never read"
    );
    assert!(backlog.len() < 256, "nothing was dropped");
    // The flooder and the slow reader both stay connected; the reader gets fresh messages
    // once it has taken its output.
    harness.assert_open(flooder);
    harness.assert_open(slow);
    harness.publish(flooder, "flood/x", QoS::AtMostOnce, false, b"after");
    assert_eq!(harness.payloads(slow), vec![b"after".to_vec()]);
}
