//! Fuzz target `session_input`: a client `Session` driven by the fuzz data.
//!
//! The first byte sets the scene: bits 0-1 pick the state before any input (0: never connected,
//! 1: CONNECT sent and waiting for CONNACK, 2 and 3: connected by an accepting CONNACK), bit 2
//! turns keep-alive off (otherwise 10 s), bits 3-4 set the in-flight window (1 to 4) and bit 5
//! queues a few publishes and a SUBSCRIBE first.
//!
//! Then each step is a control byte `c` with `n = (c & 0x1F) + 1` and the action `c >> 5`:
//!
//! | `c >> 5` | action |
//! |----------|--------|
//! | 0 to 3   | the next `n` bytes arrive from the server (`handle_bytes`) |
//! | 4        | `n` × 500 ms pass, then `handle_timeout` |
//! | 5        | the application publishes `n` bytes, at QoS 1 if `n` is odd, else QoS 0 |
//! | 6        | the application subscribes (`n` odd) or unsubscribes |
//! | 7        | the transport is lost; if `n` is odd, a new one is opened (`connect`) |
//!
//! After every step the target drains `poll_transmit`, `poll_event` and `poll_timeout` and
//! checks: the session never panics; what it writes is valid MQTT from a client; an event that
//! ends the connection leaves it disconnected with no timer; after `handle_timeout(now)` no
//! deadline is at or before `now`; the in-flight window is respected.
#![no_main]

use bytes::{Bytes, BytesMut};
use core::time::Duration;
use iot443_proto::codec::SubscribeFilter;
use iot443_proto::session::{Event, Session, SessionConfig};
use iot443_proto::topic::{TopicFilter, TopicName};
use iot443_proto::{Codec, Instant, Packet, QoS};
use libfuzzer_sys::fuzz_target;

const CONNACK_ACCEPTED: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

fuzz_target!(|data: &[u8]| {
    let Some((&scene, mut input)) = data.split_first() else { return };

    let mut config = SessionConfig::new("fuzz");
    config.keep_alive = if scene & 0b100 != 0 { Duration::ZERO } else { Duration::from_secs(10) };
    config.max_inflight = u16::from((scene >> 3) & 0b11) + 1;
    let max_inflight = usize::from(config.max_inflight);
    let mut driver =
        Driver { session: Session::new(config).expect("valid config"), now: Instant::ZERO };

    if scene & 0b10_0000 != 0 {
        for (qos, size) in [(QoS::AtLeastOnce, 3), (QoS::AtMostOnce, 1), (QoS::AtLeastOnce, 0)] {
            driver.publish(qos, size);
        }
        driver.subscribe();
    }
    match scene & 0b11 {
        0 => {}
        1 => driver.session.connect(driver.now),
        _ => {
            driver.session.connect(driver.now);
            driver.session.handle_bytes(driver.now, &CONNACK_ACCEPTED);
            assert!(driver.session.is_connected(), "an accepting CONNACK connects");
        }
    }
    driver.drain();

    while let Some((&control, rest)) = input.split_first() {
        input = rest;
        let n = usize::from(control & 0x1F) + 1;
        match control >> 5 {
            0..=3 => {
                let (chunk, rest) = input.split_at(n.min(input.len()));
                input = rest;
                driver.session.handle_bytes(driver.now, chunk);
            }
            4 => {
                driver.now = driver.now + Duration::from_millis(500 * n as u64);
                driver.session.handle_timeout(driver.now);
                let after = driver.session.poll_timeout();
                assert!(
                    after.is_none_or(|deadline| deadline > driver.now),
                    "a due timer did not fire: {after:?} at {:?}",
                    driver.now
                );
            }
            5 => {
                let qos = if n % 2 == 1 { QoS::AtLeastOnce } else { QoS::AtMostOnce };
                driver.publish(qos, n);
            }
            6 => {
                if n % 2 == 1 {
                    driver.subscribe();
                } else {
                    let filters = vec![TopicFilter::new("fuzz/#").expect("valid filter")];
                    driver.session.unsubscribe(filters).expect("UNSUBSCRIBE accepted");
                }
            }
            _ => {
                driver.session.handle_connection_lost(driver.now);
                assert!(!driver.session.is_connected());
                assert_eq!(driver.session.poll_timeout(), None);
                if n % 2 == 1 {
                    driver.session.connect(driver.now);
                }
            }
        }
        driver.drain();
        assert!(driver.session.inflight_len() <= max_inflight, "window exceeded");
    }
});

struct Driver {
    session: Session,
    now: Instant,
}

impl Driver {
    fn publish(&mut self, qos: QoS, size: usize) {
        let topic = TopicName::new("fuzz/t").expect("valid topic");
        self.session.publish(topic, qos, Bytes::from(vec![0xA5; size]), false).expect("publish");
    }

    fn subscribe(&mut self) {
        let filter = TopicFilter::new("fuzz/#").expect("valid filter");
        let filters = vec![SubscribeFilter::new(filter, QoS::AtLeastOnce)];
        self.session.subscribe(filters).expect("SUBSCRIBE accepted");
    }

    /// What a driver does after every wake-up, with the checks on its results.
    fn drain(&mut self) {
        let mut out = BytesMut::new();
        let written = self.session.poll_transmit(self.now, &mut out);
        assert_eq!(written, out.len(), "poll_transmit's count");
        let codec = Codec::default();
        while !out.is_empty() {
            match codec.decode(&mut out) {
                Ok(Some(packet)) => assert!(
                    matches!(
                        packet,
                        Packet::Connect(_)
                            | Packet::Publish(_)
                            | Packet::PubAck(_)
                            | Packet::Subscribe(_)
                            | Packet::Unsubscribe(_)
                            | Packet::PingReq
                            | Packet::Disconnect
                    ),
                    "the client sent {packet:?}"
                ),
                other => panic!("the client wrote invalid MQTT: {other:?}"),
            }
        }
        let mut ended = false;
        while let Some(event) = self.session.poll_event() {
            ended |= matches!(
                event,
                Event::LinkDead { .. } | Event::ConnectionRefused { .. } | Event::ProtocolError(_)
            );
        }
        if ended {
            assert!(!self.session.is_connected(), "connected after a fatal event");
            assert_eq!(self.session.poll_timeout(), None, "a timer after a fatal event");
        }
    }
}
