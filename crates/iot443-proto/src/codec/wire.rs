//! Reading and writing the primitive fields of a packet body: integers, UTF-8 strings and
//! binary data, each with a two-byte length prefix.

use super::PacketId;
use super::error::{DecodeError, EncodeError};
use super::header::PacketType;
use alloc::string::String;
use alloc::sync::Arc;
use bytes::{Buf, BufMut, Bytes};

/// A cursor over one packet's body. Every read is bounds-checked and fails with
/// [`DecodeError::Truncated`] naming the packet; nothing here can panic.
pub(super) struct Reader {
    packet: PacketType,
    body: Bytes,
}

impl Reader {
    pub(super) fn new(packet: PacketType, body: Bytes) -> Self {
        Reader { packet, body }
    }

    /// The packet being read, for error messages.
    pub(super) fn packet(&self) -> PacketType {
        self.packet
    }

    pub(super) fn has_remaining(&self) -> bool {
        self.body.has_remaining()
    }

    pub(super) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.body.get_u8())
    }

    pub(super) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2)?;
        Ok(self.body.get_u16())
    }

    /// A packet id, refusing zero.
    pub(super) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        let id = self.u16()?;
        PacketId::new(id).ok_or(DecodeError::ZeroPacketId { packet: self.packet })
    }

    /// Length-prefixed binary data, zero-copy.
    pub(super) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        self.need(len)?;
        Ok(self.body.split_to(len))
    }

    /// A length-prefixed UTF-8 string without U+0000 (MQTT 3.1.1 §1.5.3).
    pub(super) fn string(&mut self) -> Result<String, DecodeError> {
        self.checked_str(|text| String::from(text))
    }

    /// Like [`Reader::string`], as shared text (a topic: one allocation, cheap clones).
    pub(super) fn shared_string(&mut self) -> Result<Arc<str>, DecodeError> {
        self.checked_str(|text| Arc::from(text))
    }

    fn checked_str<T>(&mut self, own: impl FnOnce(&str) -> T) -> Result<T, DecodeError> {
        let bytes = self.binary()?;
        let text = core::str::from_utf8(&bytes)
            .map_err(|_| DecodeError::InvalidUtf8 { packet: self.packet })?;
        if text.contains('\0') {
            return Err(DecodeError::NulCharacter { packet: self.packet });
        }
        Ok(own(text))
    }

    /// Everything that is left, zero-copy.
    pub(super) fn rest(&mut self) -> Bytes {
        self.body.split_off(0)
    }

    /// Succeeds only if the whole body has been read.
    pub(super) fn finish(&self) -> Result<(), DecodeError> {
        match self.body.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes { packet: self.packet, extra }),
        }
    }

    fn need(&self, len: usize) -> Result<(), DecodeError> {
        if self.body.remaining() < len {
            return Err(DecodeError::Truncated { packet: self.packet });
        }
        Ok(())
    }
}

/// Bytes a length-prefixed field of `len` bytes takes, or an error naming `field` when `len`
/// does not fit in the two-byte prefix.
pub(super) fn prefixed_len(field: &'static str, len: usize) -> Result<usize, EncodeError> {
    if len > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong { field, len });
    }
    Ok(2 + len)
}

/// [`EncodeError::NoTopicFilters`] for a SUBSCRIBE or UNSUBSCRIBE without filters, which MQTT
/// forbids.
pub(super) fn require_filters<T>(packet: PacketType, filters: &[T]) -> Result<(), EncodeError> {
    if filters.is_empty() {
        return Err(EncodeError::NoTopicFilters(packet));
    }
    Ok(())
}

/// Writes a length-prefixed field. The caller has checked its length with [`prefixed_len`].
pub(super) fn put_prefixed<B: BufMut>(out: &mut B, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.put_u16(len);
    out.put_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
}
