//! Codec micro-benchmarks: encode and decode of a QoS 1 PUBLISH with a 100-byte and a 64 KiB
//! payload, one packet per iteration (`Throughput::Elements(1)`, so the report reads as time
//! per operation).
//!
//! * Encode writes into one reused `BytesMut`, cleared before each packet.
//! * Decode takes the packet off a `BytesMut` filled with its bytes outside the timed region;
//!   the PUBLISH payload is a zero-copy slice, so decode time does not grow with the payload.
//!
//! Run with `cargo bench -p iot443-bench --bench codec`.

// Setup failures in a benchmark are bugs to surface loudly, not errors to handle.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use iot443_proto::codec::{Publish, PublishQos};
use iot443_proto::topic::TopicName;
use iot443_proto::{Codec, Packet, PacketId};

/// The cases measured: name in the report, payload size, and how many decode inputs are
/// prepared per timed batch. A batch amortises the timer over several decodes but stays small
/// enough to be in cache, as a packet just read from a socket is (8 x 64 KiB = 512 KiB).
const SIZES: [(&str, usize, u64); 2] =
    [("publish_qos1_100B", 100, 256), ("publish_qos1_64KiB", 64 * 1024, 8)];

fn publish(payload_len: usize) -> Packet {
    Packet::Publish(Publish::new(
        TopicName::new("sdkTest/sub").expect("valid topic"),
        PublishQos::AtLeastOnce(PacketId::new(42).expect("non-zero")),
        Bytes::from(vec![0xA5; payload_len]),
    ))
}

fn encode(c: &mut Criterion) {
    let codec = Codec::default();
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));
    for (name, size, _) in SIZES {
        let packet = publish(size);
        let mut out =
            BytesMut::with_capacity(codec.encoded_len(&packet).expect("encodable packet"));
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                let written = codec.encode(black_box(&packet), &mut out).expect("encodes");
                black_box(&out);
                written
            });
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let codec = Codec::default();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    for (name, size, batch) in SIZES {
        let packet = publish(size);
        let mut wire = BytesMut::new();
        codec.encode(&packet, &mut wire).expect("encodes");
        let wire = wire.freeze();
        {
            // The benchmark measures a successful decode of the whole packet.
            let mut check = BytesMut::from(&wire[..]);
            assert_eq!(codec.decode(&mut check), Ok(Some(packet)));
            assert!(check.is_empty());
        }
        group.bench_function(name, |b| {
            b.iter_batched(
                || BytesMut::from(&wire[..]),
                |mut buf| codec.decode(black_box(&mut buf)).expect("decodes"),
                BatchSize::NumIterations(batch),
            );
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = encode, decode
}
criterion_main!(benches);
