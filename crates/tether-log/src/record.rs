//! The on-disk record format: pure encode/decode, no I/O.
//!
//! ```text
//! frame   = len:u32le  crc:u32le  body[len]        crc = CRC-32 (IEEE) of body
//! body    = version:u8 (=1)  offset:u64le  publish_time:i64le
//!           topic_len:u16le topic  attr_count:u16le (key_len:u16le key val_len:u32le val)*
//!           data_len:u32le data
//! ```
//! The length comes first so a reader can check it against the maximum before
//! allocating; the CRC covers the whole body, so a torn or flipped record is
//! detected before any field is trusted.

use std::collections::BTreeMap;
use std::fmt;

use crate::Message;

/// Bytes before the body: length and CRC.
pub(crate) const FRAME_HEADER_LEN: usize = 8;
/// The body prefix a header-only scan reads: version, offset, publish time.
pub(crate) const BODY_PREFIX_LEN: usize = 1 + 8 + 8;
/// The smallest valid body: prefix, empty topic, no attributes, empty data.
const MIN_BODY_LEN: usize = BODY_PREFIX_LEN + 2 + 2 + 4;
const VERSION: u8 = 1;

/// Why a record could not be decoded. Shown in
/// [`LogError::Corrupt`](crate::LogError::Corrupt).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptReason {
    /// The length prefix exceeds the configured maximum record size.
    LengthTooLarge {
        /// Length read from the file.
        len: u64,
        /// Configured maximum.
        max: u64,
    },
    /// The length prefix is smaller than any valid record.
    LengthTooSmall {
        /// Length read from the file.
        len: u64,
    },
    /// The file ends inside the record (a torn write).
    Truncated {
        /// Bytes the record needs.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// The stored CRC does not match the body.
    ChecksumMismatch {
        /// CRC stored in the frame.
        stored: u32,
        /// CRC computed over the body.
        computed: u32,
    },
    /// The body starts with a version this build does not know.
    UnknownVersion(u8),
    /// The record's offset is not the next one in sequence.
    UnexpectedOffset {
        /// Offset the position implies.
        expected: u64,
        /// Offset stored in the record.
        found: u64,
    },
    /// A field runs past the end of the body, or bytes are left over.
    Malformed(&'static str),
}

impl fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LengthTooLarge { len, max } => {
                write!(
                    f,
                    "length prefix {len} exceeds the maximum record size {max}"
                )
            }
            Self::LengthTooSmall { len } => {
                write!(f, "length prefix {len} is smaller than any valid record")
            }
            Self::Truncated { needed, available } => write!(
                f,
                "file ends inside the record ({needed} bytes needed, {available} left): torn write"
            ),
            Self::ChecksumMismatch { stored, computed } => write!(
                f,
                "CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Self::UnknownVersion(v) => write!(f, "unknown record version {v}"),
            Self::UnexpectedOffset { expected, found } => {
                write!(f, "stored offset {found} where {expected} was expected")
            }
            Self::Malformed(what) => write!(f, "malformed body: {what}"),
        }
    }
}

/// Why a message cannot be encoded at all (the caller's fault, not the disk's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EncodeError {
    FieldTooLong(&'static str),
    TooLarge(u64),
}

/// The whole frame size of `message`, or why it cannot be stored.
pub(crate) fn frame_len(message: &Message, max_body: u64) -> Result<u64, EncodeError> {
    if message.topic.len() > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong("topic longer than 65535 bytes"));
    }
    if message.attributes.len() > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong("more than 65535 attributes"));
    }
    let mut body = (MIN_BODY_LEN + message.topic.len()) as u64;
    for (k, v) in &message.attributes {
        if k.len() > usize::from(u16::MAX) {
            return Err(EncodeError::FieldTooLong(
                "attribute name longer than 65535 bytes",
            ));
        }
        body += (2 + k.len() + 4 + v.len()) as u64;
    }
    body += message.data.len() as u64;
    // The u32 length fields are covered by this check as long as max_body fits
    // in a u32, which LogConfig::validate ensures.
    if body > max_body {
        return Err(EncodeError::TooLarge(body));
    }
    Ok(FRAME_HEADER_LEN as u64 + body)
}

/// Appends the frame of `message` at `offset` to `out`. The caller has checked
/// [`frame_len`] first, so every length fits its field.
pub(crate) fn encode(offset: u64, message: &Message, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    out.push(VERSION);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&message.publish_time.to_le_bytes());
    put_u16(out, message.topic.len());
    out.extend_from_slice(message.topic.as_bytes());
    put_u16(out, message.attributes.len());
    for (k, v) in &message.attributes {
        put_u16(out, k.len());
        out.extend_from_slice(k.as_bytes());
        put_u32(out, v.len());
        out.extend_from_slice(v.as_bytes());
    }
    put_u32(out, message.data.len());
    out.extend_from_slice(&message.data);

    let body = &out[start + FRAME_HEADER_LEN..];
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

// Lengths were checked by `frame_len`; saturating keeps this panic-free anyway.
fn put_u16(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

/// Splits a frame header into (body length, stored CRC).
pub(crate) fn parse_frame_header(h: &[u8; FRAME_HEADER_LEN]) -> (u32, u32) {
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    (len, crc)
}

/// Checks a body length against the limits, before anything is allocated.
pub(crate) fn check_len(len: u32, max_body: u64) -> Result<(), CorruptReason> {
    let len = u64::from(len);
    if len > max_body {
        return Err(CorruptReason::LengthTooLarge { len, max: max_body });
    }
    if len < MIN_BODY_LEN as u64 {
        return Err(CorruptReason::LengthTooSmall { len });
    }
    Ok(())
}

/// Reads (offset, publish_time) from the start of a body, without the CRC.
pub(crate) fn parse_prefix(p: &[u8; BODY_PREFIX_LEN]) -> Result<(u64, i64), CorruptReason> {
    if p[0] != VERSION {
        return Err(CorruptReason::UnknownVersion(p[0]));
    }
    let mut c = Cursor { buf: &p[1..] };
    Ok((c.u64()?, c.i64()?))
}

/// Verifies the CRC and decodes a whole body.
pub(crate) fn decode_body(body: &[u8], stored_crc: u32) -> Result<(u64, Message), CorruptReason> {
    let computed = crc32fast::hash(body);
    if computed != stored_crc {
        return Err(CorruptReason::ChecksumMismatch {
            stored: stored_crc,
            computed,
        });
    }
    let Some((&version, rest)) = body.split_first() else {
        return Err(CorruptReason::Malformed("empty body"));
    };
    if version != VERSION {
        return Err(CorruptReason::UnknownVersion(version));
    }
    let mut c = Cursor { buf: rest };
    let offset = c.u64()?;
    let publish_time = c.i64()?;
    let topic_len = usize::from(c.u16()?);
    let topic = c.string(topic_len, "topic is not UTF-8")?;
    let count = c.u16()?;
    let mut attributes = BTreeMap::new();
    for _ in 0..count {
        let klen = usize::from(c.u16()?);
        let key = c.string(klen, "attribute name is not UTF-8")?;
        let vlen = c.u32_len()?;
        let value = c.string(vlen, "attribute value is not UTF-8")?;
        attributes.insert(key, value);
    }
    let dlen = c.u32_len()?;
    let data = c.take(dlen)?.to_vec();
    if !c.buf.is_empty() {
        return Err(CorruptReason::Malformed("bytes left after the payload"));
    }
    Ok((
        offset,
        Message {
            topic,
            data,
            attributes,
            publish_time,
        },
    ))
}

struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CorruptReason> {
        if n > self.buf.len() {
            return Err(CorruptReason::Malformed(
                "a field runs past the end of the record",
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CorruptReason> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u16(&mut self) -> Result<u16, CorruptReason> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32_len(&mut self) -> Result<usize, CorruptReason> {
        usize::try_from(u32::from_le_bytes(self.array()?))
            .map_err(|_| CorruptReason::Malformed("length does not fit in memory"))
    }

    fn u64(&mut self) -> Result<u64, CorruptReason> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, CorruptReason> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn string(&mut self, n: usize, what: &'static str) -> Result<String, CorruptReason> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| CorruptReason::Malformed(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        Message {
            topic: "projects/p/topics/t".into(),
            data: b"hello".to_vec(),
            attributes: BTreeMap::from([("deviceId".into(), "d1".into())]),
            publish_time: -5,
        }
    }

    fn split(frame: &[u8]) -> (u32, u32, &[u8]) {
        let mut h = [0; FRAME_HEADER_LEN];
        h.copy_from_slice(&frame[..FRAME_HEADER_LEN]);
        let (len, crc) = parse_frame_header(&h);
        (len, crc, &frame[FRAME_HEADER_LEN..])
    }

    #[test]
    fn round_trip_and_predicted_length() {
        let m = msg();
        let mut out = vec![];
        encode(42, &m, &mut out);
        assert_eq!(frame_len(&m, 1 << 20), Ok(out.len() as u64));
        let (len, crc, body) = split(&out);
        assert_eq!(len as usize, body.len());
        assert_eq!(check_len(len, 1 << 20), Ok(()));
        assert_eq!(decode_body(body, crc), Ok((42, m)));
        let mut p = [0; BODY_PREFIX_LEN];
        p.copy_from_slice(&body[..BODY_PREFIX_LEN]);
        assert_eq!(parse_prefix(&p), Ok((42, -5)));
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let mut out = vec![];
        encode(1, &msg(), &mut out);
        let (_, crc, body) = split(&out);
        for i in 0..body.len() * 8 {
            let mut b = body.to_vec();
            b[i / 8] ^= 1 << (i % 8);
            assert!(decode_body(&b, crc).is_err(), "bit {i}");
        }
    }

    #[test]
    fn garbage_with_a_matching_crc_never_panics() {
        for len in 0..64usize {
            let body: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let _ = decode_body(&body, crc32fast::hash(&body));
        }
    }

    #[test]
    fn oversized_messages_are_refused_before_encoding() {
        let mut m = msg();
        m.data = vec![0; 100];
        assert!(matches!(frame_len(&m, 50), Err(EncodeError::TooLarge(_))));
        assert!(matches!(
            check_len(u32::MAX, 1 << 20),
            Err(CorruptReason::LengthTooLarge { .. })
        ));
        assert!(matches!(
            check_len(3, 1 << 20),
            Err(CorruptReason::LengthTooSmall { len: 3 })
        ));
    }
}
