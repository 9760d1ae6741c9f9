//! What the broker writes to the log cannot be inflated by a peer: drops for a slow client are
//! logged per run, not per message, and text from a peer is cut to a bounded length.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use common::{Harness, capture_logs};
use iot443_emulator::broker::{
    BrokerConfig, BrokerEvent, CloseReason, MAX_INFLIGHT, MAX_PENDING_OUTPUT,
};
use iot443_proto::codec::{Packet, QoS};

/// The longest line a log may get from one event, whatever the peer sent.
const BOUNDED_LINE: usize = 1_024;

fn lines_with<'a>(lines: &'a [String], text: &str) -> Vec<&'a String> {
    lines.iter().filter(|line| line.contains(text)).collect()
}

/// The `dropped` count of the close event of `conn`.
fn dropped_at_close(h: &Harness, conn: iot443_emulator::broker::ConnectionId) -> u64 {
    h.events
        .iter()
        .find_map(|event| match event {
            BrokerEvent::Close { conn: closed, dropped, .. } if *closed == conn => Some(*dropped),
            _ => None,
        })
        .expect("a close event")
}

#[test]
fn a_session_queue_overflow_is_logged_when_it_starts_and_when_it_ends() {
    const QUEUED: usize = 10;
    const DROPPED: usize = 3_311;
    let mut config = BrokerConfig::default();
    config.max_queued_per_session = QUEUED;
    let mut h = Harness::with_config(config);
    let sub = h.connect("sub");
    h.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    let publisher = h.connect("publisher");

    let ((), lines) = capture_logs(|| {
        for _ in 0..MAX_INFLIGHT + QUEUED + DROPPED {
            h.publish(publisher, "t", QoS::AtLeastOnce, false, b"x");
        }
        // The window and the queue are full; acknowledging the window drains the queue.
        let in_flight = h.publishes(sub);
        assert_eq!(in_flight.len(), MAX_INFLIGHT);
        h.ack_all(sub, &in_flight);
        assert_eq!(h.publishes(sub).len(), QUEUED);
        h.close_transport(sub);
    });

    let overflow = lines_with(&lines, "session queue");
    assert_eq!(overflow.len(), 2, "{overflow:#?}");
    assert!(overflow[0].contains("session queue full"), "{}", overflow[0]);
    assert!(
        overflow[1].contains(&format!("{DROPPED} QoS 1 messages were dropped")),
        "{}",
        overflow[1]
    );
    let close = lines_with(&lines, "closing connection");
    assert_eq!(close.len(), 1, "{close:#?}");
    assert!(close[0].contains(&format!("dropped_qos1={DROPPED}")), "{}", close[0]);
    assert_eq!(dropped_at_close(&h, sub), DROPPED as u64);
}

#[test]
fn an_offline_overflow_ends_when_the_resumed_session_drains() {
    let mut config = BrokerConfig::default();
    config.max_queued_per_session = 5;
    let mut h = Harness::with_config(config);
    let (sub, _) = h.connect_session("sub", false);
    h.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    h.send(sub, &Packet::Disconnect);
    let publisher = h.connect("publisher");

    let ((), lines) = capture_logs(|| {
        for n in 0..505u32 {
            h.publish(publisher, "t", QoS::AtLeastOnce, false, &n.to_be_bytes());
        }
        let (sub, present) = h.connect_session("sub", false);
        assert!(present);
        assert_eq!(h.payloads(sub).len(), 5);
    });

    let overflow = lines_with(&lines, "session queue");
    assert_eq!(overflow.len(), 2, "{overflow:#?}");
    assert!(overflow[0].contains("offline session queue full"), "{}", overflow[0]);
    assert!(overflow[1].contains("500 QoS 1 messages were dropped"), "{}", overflow[1]);
}

#[test]
fn a_clean_session_closed_during_an_overflow_logs_its_end() {
    let mut config = BrokerConfig::default();
    config.max_queued_per_session = 0;
    let mut h = Harness::with_config(config);
    let sub = h.connect("sub");
    h.subscribe(sub, &[("t", QoS::AtLeastOnce)]);
    let publisher = h.connect("publisher");

    let ((), lines) = capture_logs(|| {
        for _ in 0..MAX_INFLIGHT + 40 {
            h.publish(publisher, "t", QoS::AtLeastOnce, false, b"x");
        }
        h.close_transport(sub);
    });

    let overflow = lines_with(&lines, "session queue");
    assert_eq!(overflow.len(), 1, "{overflow:#?}");
    let ended = lines_with(&lines, "session discarded while its queue was full");
    assert_eq!(ended.len(), 1, "{lines:#?}");
    assert!(ended[0].contains("40 QoS 1 messages were dropped"), "{}", ended[0]);
    assert_eq!(dropped_at_close(&h, sub), 40);
}

#[test]
fn qos0_drops_for_a_slow_reader_are_logged_per_run() {
    let mut h = Harness::new();
    let sub = h.connect("sub");
    h.subscribe(sub, &[("t", QoS::AtMostOnce)]);
    let publisher = h.connect("publisher");
    let payload = vec![0u8; 128 * 1024];
    // Enough 128 KiB messages to fill the unread output, then 25 that do not fit.
    let fitting = MAX_PENDING_OUTPUT.div_ceil(payload.len());

    let ((), lines) = capture_logs(|| {
        for _ in 0..fitting + 25 {
            h.publish(publisher, "t", QoS::AtMostOnce, false, &payload);
        }
        assert_eq!(h.publishes(sub).len(), fitting, "the client reads its output");
        h.publish(publisher, "t", QoS::AtMostOnce, false, &payload);
        assert_eq!(h.publishes(sub).len(), 1, "it gets messages again");
    });

    let slow = lines_with(&lines, "QoS 0 messages");
    assert_eq!(slow.len(), 2, "{slow:#?}");
    assert!(slow[0].contains("client reads too slowly"), "{}", slow[0]);
    assert!(slow[1].contains("25 QoS 0 messages were dropped"), "{}", slow[1]);
    h.close_transport(sub);
    assert_eq!(dropped_at_close(&h, sub), 25);
}

#[test]
fn a_refused_65535_byte_topic_gives_a_bounded_line() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    let topic = "a".repeat(65_535);

    let ((), lines) = capture_logs(|| h.publish(conn, &topic, QoS::AtMostOnce, false, b"x"));

    assert!(
        matches!(h.close_reason(conn), Some(CloseReason::TopicLimit { topic: t, .. }) if *t == topic)
    );
    let close = lines_with(&lines, "closing connection");
    assert_eq!(close.len(), 1, "{lines:#?}");
    assert!(close[0].contains("…(65535 bytes)"), "{}", close[0]);
    for line in &lines {
        assert!(line.len() < BOUNDED_LINE, "a line of {} bytes: {}", line.len(), &line[..200]);
    }
}

#[test]
fn a_long_topic_filter_cannot_forge_log_lines() {
    let mut h = Harness::new();
    let conn = h.connect("dev");
    let filter = format!("x\nWARN forged\n{}", "b/".repeat(30_000));

    let (_, lines) = capture_logs(|| h.subscribe(conn, &[(&filter, QoS::AtMostOnce)]));

    assert!(matches!(h.close_reason(conn), Some(CloseReason::TopicLimit { .. })));
    assert!(!lines.iter().any(|line| line.starts_with("WARN forged")), "{lines:#?}");
    assert!(lines.iter().all(|line| line.len() < BOUNDED_LINE), "{lines:#?}");
    let reason = h.close_reason(conn).expect("closed").to_string();
    assert!(reason.len() < BOUNDED_LINE, "{} bytes", reason.len());
    assert!(reason.contains(&format!("…({} bytes)", filter.len())), "{reason}");
}
