//! The payload of a bench message: a mark, its sequence number and its send time, so that a
//! subscriber in the same process measures each message's latency and finds losses.
//!
//! `b"i4b1"`, the sequence number (u32, big-endian), microseconds since the load's epoch (u64,
//! big-endian), then zeros up to the size asked for.

use bytes::{BufMut, Bytes, BytesMut};
use std::time::Duration;
use tokio::time::Instant;

/// The mark of a bench payload.
const MARK: &[u8; 4] = b"i4b1";
/// The bytes every bench payload starts with.
pub const HEADER: usize = 16;

/// A payload of `size` bytes (at least [`HEADER`]) for message `sequence`, sent now.
pub fn payload(sequence: u32, epoch: Instant, size: usize) -> Bytes {
    let micros = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
    let size = size.max(HEADER);
    let mut payload = BytesMut::with_capacity(size);
    payload.put_slice(MARK);
    payload.put_u32(sequence);
    payload.put_u64(micros);
    payload.resize(size, 0);
    payload.freeze()
}

/// The sequence number and latency of a bench payload received now; `None` for any other
/// payload.
pub fn read(payload: &[u8], epoch: Instant) -> Option<(u32, Duration)> {
    let header = payload.get(..HEADER)?;
    if header.get(..4)? != MARK {
        return None;
    }
    let sequence = u32::from_be_bytes(header.get(4..8)?.try_into().ok()?);
    let sent = Duration::from_micros(u64::from_be_bytes(header.get(8..16)?.try_into().ok()?));
    Some((sequence, epoch.elapsed().saturating_sub(sent)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[tokio::test(start_paused = true)]
    async fn a_payload_reads_back_with_its_latency() {
        let epoch = Instant::now();
        tokio::time::advance(Duration::from_millis(3)).await;
        let message = payload(41, epoch, 100);
        assert_eq!(message.len(), 100);
        tokio::time::advance(Duration::from_millis(2)).await;
        assert_eq!(read(&message, epoch), Some((41, Duration::from_millis(2))));
    }

    proptest! {
        #[test]
        fn any_other_payload_is_not_read(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let epoch = Instant::now();
            let read_back = read(&bytes, epoch);
            prop_assert_eq!(read_back.is_some(), bytes.len() >= HEADER && bytes.starts_with(MARK));
        }
    }
}
