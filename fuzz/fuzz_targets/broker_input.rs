//! Fuzz target `broker_input`: the emulator's sans-IO `Broker` fed arbitrary bytes on two
//! connections, with time passing in between.
//!
//! The first byte sets the scene: bit 0 turns `strict_rates` on, bit 1 makes the first
//! connection's CONNECT persistent (clean session 0), bit 2 gives the broker a small policy.
//! Connection A starts with a valid CONNECT (client id `fuz`); connection B starts with nothing.
//!
//! Then each step is a control byte `c` with `n = (c & 0x3F) + 1` and the action `c >> 6`:
//!
//! | `c >> 6` | action |
//! |----------|--------|
//! | 0        | the next `n` bytes arrive on connection A (`handle_bytes`) |
//! | 1        | the next `n` bytes arrive on connection B |
//! | 2        | `n` × 700 ms pass, then `handle_timeout` |
//! | 3        | the transport of A (`n` odd) or B closes (`handle_closed`) and a new connection replaces it; the new A sends the valid CONNECT again |
//!
//! After every step the target drains `poll_event` and `poll_transmit` for both connections and
//! checks: nothing panics; everything the broker writes is valid MQTT; a connection the broker
//! closed is forgotten; after `handle_timeout(now)` no deadline is at or before `now`.
#![no_main]

use bytes::BytesMut;
use core::time::Duration;
use iot443_emulator::broker::{
    Broker, BrokerConfig, BrokerEvent, ConnectionId, PeerIdentity, Policy,
};
use iot443_proto::{Codec, Instant};
use libfuzzer_sys::fuzz_target;

/// CONNECT, MQTT 3.1.1, clean session, keep-alive 60 s, client id "fuz".
const CONNECT_CLEAN: [u8; 17] = [
    0x10, 0x0F, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x03, b'f', b'u',
    b'z',
];

const POLICY: &str = r##"{"statements": [
    {"common_name": "fuzz", "client_ids": ["fuz", "b*"], "publish": ["t/#", "${iot:ClientId}/+"],
     "subscribe": ["t/+", "#"]}
]}"##;

struct Driver {
    broker: Broker,
    now: Instant,
    codec: Codec,
    conns: [ConnectionId; 2],
    connect: [u8; 17],
}

fn peer() -> PeerIdentity {
    PeerIdentity { common_name: Some("fuzz".into()), certificate_sha256: "00".repeat(32) }
}

impl Driver {
    /// Opens a new connection in `slot` (0 is A, which sends the valid CONNECT at once).
    fn open(&mut self, slot: usize) {
        let conn = self.broker.open(self.now, peer());
        if slot == 0 {
            let connect = self.connect;
            self.broker.handle_bytes(self.now, conn, &connect);
        }
        self.conns[slot] = conn;
    }

    fn drain(&mut self) {
        let mut closed = Vec::new();
        while let Some(event) = self.broker.poll_event() {
            if let BrokerEvent::Close { conn, .. } = event {
                closed.push(conn);
            }
            if let BrokerEvent::Wake(conn) | BrokerEvent::Close { conn, .. } = event {
                self.transmit(conn);
            }
        }
        for conn in self.conns {
            self.transmit(conn);
        }
        let before = self.broker.connection_count();
        for conn in closed {
            // Forgotten: further calls are ignored.
            self.broker.handle_bytes(self.now, conn, &[0xC0, 0x00]);
            assert_eq!(self.broker.poll_transmit(conn, &mut BytesMut::new()), 0);
        }
        assert_eq!(self.broker.connection_count(), before);
        assert!(self.broker.poll_event().is_none());
    }

    /// Takes the output of `conn` and checks it is a sequence of whole, valid MQTT packets.
    fn transmit(&mut self, conn: ConnectionId) {
        let mut out = BytesMut::new();
        let n = self.broker.poll_transmit(conn, &mut out);
        assert_eq!(n, out.len());
        while !out.is_empty() {
            match self.codec.decode(&mut out) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the broker wrote a partial packet"),
                Err(error) => panic!("the broker wrote invalid MQTT: {error}"),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&scene, mut input)) = data.split_first() else { return };
    let mut config = BrokerConfig::default();
    config.strict_rates = scene & 0b1 != 0;
    if scene & 0b100 != 0 {
        config.policy = Some(Policy::from_json(POLICY).expect("valid policy"));
    }
    let mut connect = CONNECT_CLEAN;
    if scene & 0b10 != 0 {
        connect[9] = 0x00; // clean session 0
    }
    let mut broker = Broker::new(config);
    let a = broker.open(Instant::ZERO, peer());
    broker.handle_bytes(Instant::ZERO, a, &connect);
    let b = broker.open(Instant::ZERO, peer());
    let mut driver =
        Driver { broker, now: Instant::ZERO, codec: Codec::default(), conns: [a, b], connect };
    driver.drain();

    while let Some((&control, rest)) = input.split_first() {
        input = rest;
        let n = usize::from(control & 0x3F) + 1;
        match control >> 6 {
            action @ (0 | 1) => {
                let take = n.min(input.len());
                let (chunk, rest) = input.split_at(take);
                input = rest;
                let conn = driver.conns[usize::from(action)];
                driver.broker.handle_bytes(driver.now, conn, chunk);
            }
            2 => {
                driver.now = driver.now + Duration::from_millis(700) * n as u32;
                driver.broker.handle_timeout(driver.now);
                if let Some(next) = driver.broker.poll_timeout() {
                    assert!(next > driver.now, "a timer at or before now survived handle_timeout");
                }
            }
            _ => {
                let slot = if n % 2 == 1 { 0 } else { 1 };
                driver.broker.handle_closed(driver.now, driver.conns[slot]);
                driver.drain();
                driver.open(slot);
            }
        }
        driver.drain();
    }
});
