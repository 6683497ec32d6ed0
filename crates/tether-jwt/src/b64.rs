//! base64url as JWS uses it (RFC 7515 §2: URL-safe alphabet, no padding), plus a
//! lenient decoder that also takes what IoT Core took: `=` padding and the standard
//! `+/` alphabet, reporting each so a device can be fixed.

use core::fmt;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Length of the unpadded base64url encoding of `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    (n / 3) * 4 + [0, 2, 3][n % 3]
}

/// Upper bound of the decoded length of `n` characters.
pub const fn decoded_len_max(n: usize) -> usize {
    n / 4 * 3 + 2
}

/// Encodes `input` as unpadded base64url into `out`; `None` if `out` is too small.
pub fn encode_into(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = encoded_len(input.len());
    let out = out.get_mut(..len)?;
    let mut o = 0;
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out[o] = ALPHABET[((n >> (18 - 6 * i)) & 63) as usize];
            o += 1;
        }
    }
    Some(len)
}

/// What the lenient decoder accepted that strict base64url forbids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Offset of the first `=` (padding), if any.
    pub padding_at: Option<usize>,
    /// Offset of the first `+` or `/` (standard alphabet), if any.
    pub standard_alphabet_at: Option<usize>,
    /// Offset of a last character whose unused low bits are not zero.
    pub nonzero_trailing_bits_at: Option<usize>,
}

impl Quirks {
    /// Whether the input was exactly canonical unpadded base64url.
    pub fn is_canonical(&self) -> bool {
        *self == Quirks::default()
    }
}

/// Why input is not base64 at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A byte outside both alphabets at this offset.
    InvalidByte {
        /// Offset in the input.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// `=` followed by something other than `=`.
    PaddingNotAtEnd {
        /// Offset of the first `=`.
        offset: usize,
    },
    /// A length no encoding produces (one character left over).
    InvalidLength {
        /// Number of data characters.
        len: usize,
    },
    /// The output buffer is too small.
    BufferTooSmall,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::InvalidByte { offset, byte }
                if byte.is_ascii_graphic() || byte == b' ' =>
            {
                write!(
                    f,
                    "'{}' at offset {offset} is not a base64url character",
                    byte as char
                )
            }
            DecodeError::InvalidByte { offset, byte } => {
                write!(
                    f,
                    "byte 0x{byte:02x} at offset {offset} is not a base64url character"
                )
            }
            DecodeError::PaddingNotAtEnd { offset } => {
                write!(f, "'=' at offset {offset} is followed by more data")
            }
            DecodeError::InvalidLength { len } => write!(
                f,
                "{len} characters cannot be base64 (a length of 4n+1 is never produced; \
                 the segment is truncated or has an extra character)"
            ),
            DecodeError::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl core::error::Error for DecodeError {}

const INVALID: u8 = 0x80;
const STANDARD: u8 = 0x40;

/// Character → 6-bit value; `STANDARD` marks `+` and `/`, `INVALID` everything else.
const DECODE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t[b'+' as usize] = 62 | STANDARD;
    t[b'/' as usize] = 63 | STANDARD;
    t
};

/// Decodes base64url, also accepting padding and the standard alphabet, into `out`.
/// Returns the decoded length and the [`Quirks`] found. Never allocates.
pub fn decode_into(input: &[u8], out: &mut [u8]) -> Result<(usize, Quirks), DecodeError> {
    let mut quirks = Quirks::default();
    let data_len = match input.iter().position(|&c| c == b'=') {
        Some(p) => {
            if input[p..].iter().any(|&c| c != b'=') {
                return Err(DecodeError::PaddingNotAtEnd { offset: p });
            }
            quirks.padding_at = Some(p);
            p
        }
        None => input.len(),
    };
    let data = &input[..data_len];
    // One pass over the table finds both invalid bytes and the standard alphabet.
    let mut seen = 0u8;
    for &c in data {
        seen |= DECODE[usize::from(c)];
    }
    if seen & (INVALID | STANDARD) != 0 {
        for (i, &c) in data.iter().enumerate() {
            let v = DECODE[usize::from(c)];
            if v & INVALID != 0 {
                return Err(DecodeError::InvalidByte { offset: i, byte: c });
            }
            if v & STANDARD != 0 && quirks.standard_alphabet_at.is_none() {
                quirks.standard_alphabet_at = Some(i);
            }
        }
    }
    if data_len % 4 == 1 {
        return Err(DecodeError::InvalidLength { len: data_len });
    }
    let out_len = data_len / 4 * 3 + [0, 0, 1, 2][data_len % 4];
    let out = out.get_mut(..out_len).ok_or(DecodeError::BufferTooSmall)?;
    let val = |c: u8| u32::from(DECODE[usize::from(c)] & 63);
    let mut chunks = data.chunks_exact(4);
    let mut o = 0;
    for q in &mut chunks {
        let n = (val(q[0]) << 18) | (val(q[1]) << 12) | (val(q[2]) << 6) | val(q[3]);
        out[o..o + 3].copy_from_slice(&n.to_be_bytes()[1..]);
        o += 3;
    }
    let rest = chunks.remainder();
    if rest.len() >= 2 {
        let mut n = (val(rest[0]) << 18) | (val(rest[1]) << 12);
        if rest.len() == 3 {
            n |= val(rest[2]) << 6;
        }
        let bytes = n.to_be_bytes();
        let used = rest.len() - 1;
        out[o..o + used].copy_from_slice(&bytes[1..1 + used]);
        // Bits of the last character that fall outside the decoded bytes must be zero.
        let spare = if rest.len() == 2 {
            n & 0xf000
        } else {
            n & 0xc0
        };
        if spare != 0 {
            quirks.nonzero_trailing_bits_at = Some(data_len - 1);
        }
        o += used;
    }
    Ok((o, quirks))
}

/// Decodes into a new vector (see [`decode_into`]).
#[cfg(feature = "alloc")]
pub fn decode(input: &[u8]) -> Result<(alloc::vec::Vec<u8>, Quirks), DecodeError> {
    let mut out = alloc::vec![0u8; decoded_len_max(input.len())];
    let (n, q) = decode_into(input, &mut out)?;
    out.truncate(n);
    Ok((out, q))
}

/// Encodes into a new string (see [`encode_into`]).
#[cfg(feature = "alloc")]
pub fn encode(input: &[u8]) -> alloc::string::String {
    let mut out = alloc::vec![0u8; encoded_len(input.len())];
    let n = encode_into(input, &mut out).unwrap_or(0);
    out.truncate(n);
    // The alphabet is ASCII.
    alloc::string::String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(input: &[u8]) -> ([u8; 64], usize) {
        let mut out = [0u8; 64];
        let n = encode_into(input, &mut out).unwrap_or(usize::MAX);
        (out, n)
    }

    #[test]
    fn rfc4648_vectors_without_padding() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"fooba", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (raw, text) in cases {
            let (out, n) = enc(raw);
            assert_eq!(&out[..n], text.as_bytes());
            let mut back = [0u8; 16];
            let (m, q) = decode_into(text.as_bytes(), &mut back).expect("decodes");
            assert_eq!(&back[..m], raw);
            assert!(q.is_canonical());
        }
    }

    #[test]
    fn url_alphabet_is_used() {
        let (out, n) = enc(&[0xfb, 0xff]);
        assert_eq!(&out[..n], b"-_8");
    }

    #[test]
    fn lenient_decoding_reports_quirks() {
        let mut out = [0u8; 16];
        let (n, q) = decode_into(b"+/8=", &mut out).expect("decodes");
        assert_eq!(&out[..n], &[0xfb, 0xff]);
        assert_eq!(q.padding_at, Some(3));
        assert_eq!(q.standard_alphabet_at, Some(0));
        let (_, q) = decode_into(b"Zh", &mut out).expect("decodes");
        assert_eq!(q.nonzero_trailing_bits_at, Some(1));
    }

    #[test]
    fn errors_name_the_offset() {
        let mut out = [0u8; 16];
        assert_eq!(
            decode_into(b"ab.c", &mut out),
            Err(DecodeError::InvalidByte {
                offset: 2,
                byte: b'.'
            })
        );
        assert_eq!(
            decode_into(b"ab=c", &mut out),
            Err(DecodeError::PaddingNotAtEnd { offset: 2 })
        );
        assert_eq!(
            decode_into(b"abcde", &mut out),
            Err(DecodeError::InvalidLength { len: 5 })
        );
        assert_eq!(
            decode_into(b"abcdef", &mut out[..2]),
            Err(DecodeError::BufferTooSmall)
        );
    }
}
