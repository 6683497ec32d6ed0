//! PEM (RFC 7468) without an allocator: the text form keys are stored and registered
//! in. The reader takes the first block of a file, ignoring text around it and any
//! mix of line endings; the writer produces what OpenSSL and `tether keys` write
//! (64-column lines, LF, a final newline), which is the exact text IoT Core registers.

use core::fmt;

use crate::b64;

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";
/// Longest label accepted (`ENCRYPTED PRIVATE KEY` is 21 bytes).
const MAX_LABEL: usize = 64;

/// Why text is not a PEM block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemError {
    /// No `-----BEGIN ...-----` line.
    NoBeginLine,
    /// The BEGIN line's label is not printable ASCII or is too long.
    BadLabel,
    /// No `-----END <label>-----` line matching the BEGIN line.
    NoEndLine,
    /// `Proc-Type:`/`DEK-Info:` headers: a key encrypted the old OpenSSL way.
    Headers,
    /// The body is not base64 (`offset` is in the input).
    Base64 {
        /// Offset of the offending byte in the input.
        offset: usize,
    },
    /// The output buffer cannot hold the decoded bytes.
    BufferTooSmall {
        /// Bytes the DER needs.
        needed: usize,
    },
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemError::NoBeginLine => f.write_str("no -----BEGIN ...----- line: not PEM"),
            PemError::BadLabel => f.write_str("the BEGIN line has no valid label"),
            PemError::NoEndLine => f.write_str("no matching -----END ...----- line"),
            PemError::Headers => {
                f.write_str("the block has headers (Proc-Type/DEK-Info): an encrypted key")
            }
            PemError::Base64 { offset } => {
                write!(f, "the body is not base64 at byte {offset}")
            }
            PemError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
        }
    }
}

impl core::error::Error for PemError {}

/// A decoded block: its label and the length of the DER written to the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block<'a> {
    /// The label, e.g. `PUBLIC KEY` or `EC PRIVATE KEY`.
    pub label: &'a str,
    /// Bytes of DER written to the start of the output buffer.
    pub len: usize,
}

/// Whether `input` holds a PEM BEGIN line (after any leading text).
pub fn is_pem(input: &[u8]) -> bool {
    find(input, BEGIN).is_some()
}

/// Decodes the first PEM block in `input` into `out`.
pub fn decode<'a>(input: &'a [u8], out: &mut [u8]) -> Result<Block<'a>, PemError> {
    let begin = find(input, BEGIN).ok_or(PemError::NoBeginLine)?;
    let label_start = begin + BEGIN.len();
    let label_len = find(&input[label_start..], DASHES).ok_or(PemError::BadLabel)?;
    let label = &input[label_start..label_start + label_len];
    if label.is_empty()
        || label.len() > MAX_LABEL
        || !label.iter().all(|&c| c.is_ascii_graphic() || c == b' ')
    {
        return Err(PemError::BadLabel);
    }
    let body_start = label_start + label_len + DASHES.len();
    let body_len = find(&input[body_start..], END).ok_or(PemError::NoEndLine)?;
    let end_label = &input[body_start + body_len + END.len()..];
    if !end_label.starts_with(label) || !end_label[label.len()..].starts_with(DASHES) {
        return Err(PemError::NoEndLine);
    }
    let body = &input[body_start..body_start + body_len];
    if body.contains(&b':') {
        return Err(PemError::Headers);
    }
    let len = decode_body(body, body_start, out)?;
    // The label was checked to be ASCII.
    let label = core::str::from_utf8(label).map_err(|_| PemError::BadLabel)?;
    Ok(Block { label, len })
}

/// Decodes base64 with line breaks; `base` is the body's offset for error messages.
fn decode_body(body: &[u8], base: usize, out: &mut [u8]) -> Result<usize, PemError> {
    let data_chars = body.iter().filter(|c| !c.is_ascii_whitespace()).count();
    let data = body
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.is_ascii_whitespace());
    let mut quad = [0u8; 4];
    let mut quad_at = [0usize; 4];
    let (mut filled, mut written, mut seen, mut ended) = (0, 0, 0, false);
    let mut needed = 0;
    for (i, &c) in data {
        if ended {
            return Err(PemError::Base64 { offset: base + i });
        }
        quad[filled] = c;
        quad_at[filled] = i;
        filled += 1;
        seen += 1;
        if filled < 4 && seen < data_chars {
            continue;
        }
        let mut bytes = [0u8; 3];
        let (n, quirks) = b64::decode_into(&quad[..filled], &mut bytes).map_err(|e| {
            let at = match e {
                b64::DecodeError::InvalidByte { offset, .. }
                | b64::DecodeError::PaddingNotAtEnd { offset } => quad_at[offset],
                _ => quad_at[filled - 1],
            };
            PemError::Base64 { offset: base + at }
        })?;
        // PEM is the standard alphabet; '=' may only close the body.
        ended = quirks.padding_at.is_some();
        needed += n;
        if let Some(dst) = out.get_mut(written..written + n) {
            dst.copy_from_slice(&bytes[..n]);
            written += n;
        }
        filled = 0;
    }
    if written < needed {
        return Err(PemError::BufferTooSmall { needed });
    }
    Ok(written)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Length of [`encode`]'s output for a label of `label_len` bytes and `der_len` bytes.
pub const fn encoded_len(label_len: usize, der_len: usize) -> usize {
    let chars = der_len.div_ceil(3) * 4;
    let lines = chars.div_ceil(64);
    // "-----BEGIN " label "-----\n" body+newlines "-----END " label "-----\n"
    BEGIN.len() + label_len + DASHES.len() + 1 + chars + lines + END.len() + label_len + 6
}

/// Writes `der` as a PEM block with `label` into `out`; returns its length, or
/// `None` if `out` is shorter than [`encoded_len`].
pub fn encode(label: &str, der: &[u8], out: &mut [u8]) -> Option<usize> {
    let out = out.get_mut(..encoded_len(label.len(), der.len()))?;
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(BEGIN);
    put(label.as_bytes());
    put(DASHES);
    put(b"\n");
    for line in der.chunks(48) {
        let mut text = [0u8; 64];
        let n = b64::encode_into(line, &mut text)?;
        for c in &mut text[..n] {
            // base64url → the standard alphabet PEM uses.
            *c = match *c {
                b'-' => b'+',
                b'_' => b'/',
                c => c,
            };
        }
        put(&text[..n]);
        put(&b"=="[..(4 - n % 4) % 4]);
        put(b"\n");
    }
    put(END);
    put(label.as_bytes());
    put(DASHES);
    put(b"\n");
    Some(at)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    // A P-256 SPKI as `openssl ec -pubout` writes it.
    const SPKI_PEM: &str = "-----BEGIN PUBLIC KEY-----\n\
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJ6NgzZx/n1r9HZc7A0mvGzm1+jx5\n\
e6Ui1cZXl6QmT5h3Dj9nXt4X+3yXq5wLRWq/uZ3qjKpDbzdBEOQ4vD0f8A==\n\
-----END PUBLIC KEY-----\n";

    #[test]
    fn round_trip_matches_openssl_layout() {
        let mut der = [0u8; 128];
        let block = decode(SPKI_PEM.as_bytes(), &mut der).expect("decodes");
        assert_eq!(block.label, "PUBLIC KEY");
        assert_eq!(block.len, 91);
        let mut text = [0u8; 256];
        let n = encode("PUBLIC KEY", &der[..block.len], &mut text).expect("fits");
        assert_eq!(&text[..n], SPKI_PEM.as_bytes());
        assert_eq!(n, encoded_len(10, 91));
        assert_eq!(encode("PUBLIC KEY", &der[..91], &mut text[..n - 1]), None);
    }

    #[test]
    fn tolerates_crlf_and_surrounding_text() {
        let crlf = SPKI_PEM.replace('\n', "\r\n");
        let text = std::format!("Bag Attributes\r\n{crlf}trailing");
        let mut der = [0u8; 128];
        assert_eq!(decode(text.as_bytes(), &mut der).map(|b| b.len), Ok(91));
    }

    #[test]
    fn refuses_what_is_not_pem() {
        let mut der = [0u8; 128];
        assert_eq!(decode(b"MFkw", &mut der), Err(PemError::NoBeginLine));
        let cut = &SPKI_PEM[..SPKI_PEM.len() - 26];
        assert_eq!(decode(cut.as_bytes(), &mut der), Err(PemError::NoEndLine));
        let other_end = SPKI_PEM.replace("END PUBLIC", "END PRIVATE");
        assert_eq!(
            decode(other_end.as_bytes(), &mut der),
            Err(PemError::NoEndLine)
        );
        let bad = SPKI_PEM.replace("MFkw", "MF*w");
        assert_eq!(
            decode(bad.as_bytes(), &mut der),
            Err(PemError::Base64 { offset: 29 })
        );
        let legacy = SPKI_PEM.replace("MFkw", "Proc-Type: 4,ENCRYPTED\nMFkw");
        assert_eq!(decode(legacy.as_bytes(), &mut der), Err(PemError::Headers));
        assert_eq!(
            decode(SPKI_PEM.as_bytes(), &mut der[..90]),
            Err(PemError::BufferTooSmall { needed: 91 })
        );
    }
}
