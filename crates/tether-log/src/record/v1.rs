//! Record format 1, the first one: read only. Segments written before format 2
//! stay readable; nothing is written in this format any more.
//!
//! ```text
//! frame   = len:u32le  crc:u32le  body[len]        crc = CRC-32 (IEEE) of body
//! body    = version:u8 (=1)  offset:u64le  publish_time:i64le
//!           topic_len:u16le topic  attr_count:u16le (key_len:u16le key val_len:u32le val)*
//!           data_len:u32le data
//! ```

use std::collections::BTreeMap;

use super::{CorruptReason, Cursor};
use crate::Message;

/// Bytes before the body: length and CRC.
pub(crate) const FRAME_HEADER_LEN: usize = 8;
/// The body prefix a header-only scan reads: version, offset, publish time.
pub(crate) const BODY_PREFIX_LEN: usize = 1 + 8 + 8;
/// The smallest valid body: prefix, empty topic, no attributes, empty data.
pub(crate) const MIN_BODY_LEN: usize = BODY_PREFIX_LEN + 2 + 2 + 4;
const VERSION: u8 = 1;

/// Reads (offset, publish_time) from the start of a body, without the CRC.
pub(crate) fn parse_prefix(p: &[u8; BODY_PREFIX_LEN]) -> Result<(u64, i64), CorruptReason> {
    if p[0] != VERSION {
        return Err(CorruptReason::UnknownVersion(p[0]));
    }
    let mut c = Cursor { buf: &p[1..] };
    Ok((
        u64::from_le_bytes(c.array()?),
        i64::from_le_bytes(c.array()?),
    ))
}

/// Verifies the CRC and decodes a whole body.
pub(crate) fn decode_body(body: &[u8], stored_crc: u32) -> Result<(u64, Message), CorruptReason> {
    super::check_crc(body, stored_crc)?;
    let Some((&version, rest)) = body.split_first() else {
        return Err(CorruptReason::Malformed("empty body"));
    };
    if version != VERSION {
        return Err(CorruptReason::UnknownVersion(version));
    }
    let mut c = Cursor { buf: rest };
    let offset = u64::from_le_bytes(c.array()?);
    let publish_time = i64::from_le_bytes(c.array()?);
    let topic_len = usize::from(u16::from_le_bytes(c.array()?));
    let topic = c.string(topic_len, "topic is not UTF-8")?;
    let count = u16::from_le_bytes(c.array()?);
    let mut attributes = BTreeMap::new();
    for _ in 0..count {
        let klen = usize::from(u16::from_le_bytes(c.array()?));
        let key = c.string(klen, "attribute name is not UTF-8")?;
        let vlen = u32_len(&mut c)?;
        let value = c.string(vlen, "attribute value is not UTF-8")?;
        attributes.insert(key, value);
    }
    let dlen = u32_len(&mut c)?;
    let data = c.take(dlen)?.to_vec();
    if !c.buf.is_empty() {
        return Err(CorruptReason::Malformed("bytes left after the payload"));
    }
    Ok((
        offset,
        Message {
            topic,
            data,
            attributes: attributes.into(),
            publish_time,
        },
    ))
}

fn u32_len(c: &mut Cursor<'_>) -> Result<usize, CorruptReason> {
    usize::try_from(u32::from_le_bytes(c.array()?))
        .map_err(|_| CorruptReason::Malformed("length does not fit in memory"))
}

/// The format-1 encoder, kept for the tests only: they write old segments
/// with it, and check it against files the format-1 code wrote.
#[cfg(test)]
pub(crate) fn encode(offset: u64, message: &Message, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    out.push(VERSION);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&message.publish_time.to_le_bytes());
    out.extend_from_slice(&(message.topic.len() as u16).to_le_bytes());
    out.extend_from_slice(message.topic.as_bytes());
    out.extend_from_slice(&(message.attributes.len() as u16).to_le_bytes());
    for (k, v) in message.attributes.iter() {
        out.extend_from_slice(&(k.len() as u16).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(&(message.data.len() as u32).to_le_bytes());
    out.extend_from_slice(&message.data);
    let body = &out[start + FRAME_HEADER_LEN..];
    let len = body.len() as u32;
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::record::check_len;

    fn msg() -> Message {
        Message {
            topic: "projects/p/topics/t".into(),
            data: b"hello".to_vec(),
            attributes: BTreeMap::from([("deviceId".into(), "d1".into())]).into(),
            publish_time: -5,
        }
    }

    /// (body length, stored CRC, the rest) of a frame.
    fn split(frame: &[u8]) -> (u32, u32, &[u8]) {
        let word =
            |i: usize| u32::from_le_bytes([frame[i], frame[i + 1], frame[i + 2], frame[i + 3]]);
        (word(0), word(4), &frame[FRAME_HEADER_LEN..])
    }

    #[test]
    fn round_trip() {
        let m = msg();
        let mut out = vec![];
        encode(42, &m, &mut out);
        let (len, crc, body) = split(&out);
        assert_eq!(len as usize, body.len());
        assert_eq!(check_len(len.into(), MIN_BODY_LEN, 1 << 20), Ok(()));
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
    fn bad_lengths_are_refused_before_reading() {
        assert!(matches!(
            check_len(u32::MAX.into(), MIN_BODY_LEN, 1 << 20),
            Err(CorruptReason::LengthTooLarge { .. })
        ));
        assert!(matches!(
            check_len(3, MIN_BODY_LEN, 1 << 20),
            Err(CorruptReason::LengthTooSmall { len: 3 })
        ));
    }

    /// Decoding every record of the checked-in format-1 log and encoding it
    /// again gives the same bytes: the test encoder is the format-1 writer.
    #[test]
    fn the_test_encoder_writes_what_format_1_wrote() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1/telemetry");
        let mut files = 0;
        for topic in std::fs::read_dir(&root).expect("fixture") {
            for file in std::fs::read_dir(topic.expect("entry").path()).expect("topic") {
                let bytes = std::fs::read(file.expect("entry").path()).expect("segment");
                let mut rest = &bytes[..];
                let mut again = Vec::new();
                while !rest.is_empty() {
                    let (len, crc, tail) = split(rest);
                    let (body, tail) = tail.split_at(len as usize);
                    let (offset, message) = decode_body(body, crc).expect("record");
                    encode(offset, &message, &mut again);
                    rest = tail;
                }
                assert_eq!(again, bytes);
                files += 1;
            }
        }
        assert!(files >= 4, "{files} fixture segments");
    }
}
