//! A bounds-checked cursor over one packet body. Every read names its field so that
//! a short packet says which field did not fit.

use super::PacketType;
use crate::error::DecodeError;
use crate::qos::PacketId;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    packet: PacketType,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], packet: PacketType) -> Self {
        Self { buf, packet }
    }

    pub(crate) fn packet(&self) -> PacketType {
        self.packet
    }

    /// The bytes left, without consuming them.
    pub(crate) fn peek(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        match *self.take(4, field)? {
            [a, b, c, d] => Ok(u32::from_be_bytes([a, b, c, d])),
            _ => Err(DecodeError::Truncated {
                packet: self.packet,
                field,
            }),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated {
                packet: self.packet,
                field,
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        let bytes = self.take(1, field)?;
        Ok(bytes.first().copied().unwrap_or_default())
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        match *self.take(2, field)? {
            [hi, lo] => Ok(u16::from_be_bytes([hi, lo])),
            _ => Err(DecodeError::Truncated {
                packet: self.packet,
                field,
            }),
        }
    }

    /// A two-byte packet identifier, which is never 0 ([MQTT-2.3.1-1]).
    pub(crate) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        let value = self.u16("packet identifier")?;
        PacketId::new(value).ok_or(DecodeError::ZeroPacketId {
            packet: self.packet,
        })
    }

    /// Binary data (§1.5.3 length prefix): two-byte length, then the bytes.
    pub(crate) fn binary(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u16(field)?;
        self.take(usize::from(len), field)
    }

    /// A UTF-8 encoded string: well-formed ([MQTT-1.5.3-1]) and without U+0000
    /// ([MQTT-1.5.3-2]).
    pub(crate) fn string(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let bytes = self.binary(field)?;
        let text = core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { field })?;
        if text.contains('\0') {
            return Err(DecodeError::NulInString { field });
        }
        Ok(text)
    }

    /// Everything left (a PUBLISH payload).
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    /// Fails if anything is left over.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                packet: self.packet,
                count: self.buf.len(),
            })
        }
    }
}
