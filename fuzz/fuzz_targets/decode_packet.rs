//! Fuzz target `decode_packet`: arbitrary bytes fed to `Codec::decode`.
//!
//! Decodes packet after packet from one buffer until the decoder wants more bytes or reports
//! an error. It checks that decoding never panics, and that every packet it accepts encodes
//! (with `encoded_len` equal to the bytes written) and decodes back to the same packet, leaving
//! nothing behind.
#![no_main]

use bytes::BytesMut;
use iot443_proto::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let codec = Codec::default();
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        let packet = match codec.decode(&mut buf) {
            Ok(Some(packet)) => packet,
            Ok(None) | Err(_) => break,
        };
        assert!(buf.len() < before, "decoded {packet:?} without consuming bytes");

        let mut wire = BytesMut::new();
        let written = codec.encode(&packet, &mut wire).expect("a decoded packet encodes");
        assert_eq!(written, wire.len(), "encode's count for {packet:?}");
        assert_eq!(codec.encoded_len(&packet), Ok(written), "encoded_len of {packet:?}");
        assert_eq!(codec.decode(&mut wire), Ok(Some(packet)));
        assert!(wire.is_empty(), "re-decoding left {} bytes", wire.len());
    }
});
