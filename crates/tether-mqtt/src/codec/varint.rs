//! The remaining-length field (§2.2.3): 1 to 4 bytes, 7 bits each, least significant
//! group first, bit 7 set while more bytes follow.

use alloc::vec::Vec;

use crate::error::DecodeError;

/// The largest remaining length four bytes can carry (256 MB − 1).
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// What the bytes at hand say about a remaining length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Varint {
    /// The whole field is present.
    Complete {
        /// The decoded value.
        value: usize,
        /// How many bytes it used.
        len: usize,
    },
    /// More bytes are needed; the value will be at least `lower_bound` (a valid,
    /// minimal encoding whose continuation bit is set has a non-zero byte to come).
    Partial { lower_bound: usize },
}

/// Decodes the remaining length at the start of `buf`.
///
/// Rejects a fifth byte (four bytes all with the continuation bit) and a non-minimal
/// encoding (a multi-byte field whose last byte is 0) as soon as they are seen.
pub(crate) fn decode(buf: &[u8]) -> Result<Varint, DecodeError> {
    let mut value = 0usize;
    for (i, &byte) in buf.iter().take(4).enumerate() {
        value += usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(DecodeError::RemainingLengthNotMinimal);
            }
            return Ok(Varint::Complete { value, len: i + 1 });
        }
    }
    if buf.len() >= 4 {
        return Err(DecodeError::RemainingLengthTooLong);
    }
    let lower_bound = if buf.is_empty() {
        0
    } else {
        value + (1 << (7 * buf.len()))
    };
    Ok(Varint::Partial { lower_bound })
}

/// How many bytes `value` takes on the wire. `value` must not exceed
/// [`MAX_REMAINING_LENGTH`].
pub(crate) const fn encoded_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Appends `value` (at most [`MAX_REMAINING_LENGTH`]; callers check) to `out`.
pub(crate) fn encode(mut value: usize, out: &mut Vec<u8>) {
    loop {
        // Truncation is the point: the low seven bits.
        let mut byte = (value & 0x7f) as u8;
        value >>= 7;
        if value > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if value == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn enc(value: usize) -> Vec<u8> {
        let mut out = Vec::new();
        encode(value, &mut out);
        out
    }

    /// The boundary values of Table 2.4.
    #[test]
    fn table_2_4_boundaries() {
        for (value, bytes) in [
            (0, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (16_383, vec![0xff, 0x7f]),
            (16_384, vec![0x80, 0x80, 0x01]),
            (2_097_151, vec![0xff, 0xff, 0x7f]),
            (2_097_152, vec![0x80, 0x80, 0x80, 0x01]),
            (268_435_455, vec![0xff, 0xff, 0xff, 0x7f]),
        ] {
            assert_eq!(enc(value), bytes, "{value}");
            assert_eq!(encoded_len(value), bytes.len());
            assert_eq!(
                decode(&bytes),
                Ok(Varint::Complete {
                    value,
                    len: bytes.len()
                })
            );
        }
    }

    #[test]
    fn five_bytes_rejected() {
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(DecodeError::RemainingLengthTooLong)
        );
        // Known to be too long as soon as the fourth continuation byte arrives.
        assert_eq!(
            decode(&[0x80, 0x80, 0x80, 0x80]),
            Err(DecodeError::RemainingLengthTooLong)
        );
    }

    #[test]
    fn non_minimal_rejected() {
        assert_eq!(
            decode(&[0x80, 0x00]),
            Err(DecodeError::RemainingLengthNotMinimal)
        );
        assert_eq!(
            decode(&[0xff, 0x80, 0x00]),
            Err(DecodeError::RemainingLengthNotMinimal)
        );
    }

    #[test]
    fn partial_lower_bounds() {
        assert_eq!(decode(&[]), Ok(Varint::Partial { lower_bound: 0 }));
        assert_eq!(decode(&[0x80]), Ok(Varint::Partial { lower_bound: 128 }));
        assert_eq!(
            decode(&[0xff, 0xff, 0xff]),
            Ok(Varint::Partial {
                lower_bound: 2_097_151 + 2_097_152
            })
        );
    }
}
