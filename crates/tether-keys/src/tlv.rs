//! A minimal DER tag-length-value reader, used only to recognise which structure a
//! blob holds (and to say precisely where it is truncated) before the real parsers
//! from `pkcs8`, `sec1`, `pkcs1`, `spki` and `x509-parser` read it.

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;

/// One element: its tag and contents.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
}

/// Why a TLV could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TlvError {
    /// The length says more bytes follow than there are.
    Truncated { needed: usize, available: usize },
    /// A length encoding DER forbids (indefinite, or longer than 4 bytes).
    BadLength,
    /// Nothing left to read.
    End,
}

impl std::fmt::Display for TlvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlvError::Truncated { needed, available } => write!(
                f,
                "an element declares {needed} bytes but only {available} remain"
            ),
            TlvError::BadLength => f.write_str("invalid DER length encoding"),
            TlvError::End => f.write_str("unexpected end of data"),
        }
    }
}

/// Reads elements one after another from a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Reads the next element whatever its tag.
    pub fn next(&mut self) -> Result<Tlv<'a>, TlvError> {
        let (&tag, rest) = self.rest.split_first().ok_or(TlvError::End)?;
        let (&first, mut rest) = rest.split_first().ok_or(TlvError::End)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(TlvError::BadLength);
            }
            if rest.len() < n {
                return Err(TlvError::Truncated {
                    needed: n,
                    available: rest.len(),
                });
            }
            let (bytes, after) = rest.split_at(n);
            rest = after;
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        if rest.len() < len {
            return Err(TlvError::Truncated {
                needed: len,
                available: rest.len(),
            });
        }
        let (value, after) = rest.split_at(len);
        self.rest = after;
        Ok(Tlv { tag, value })
    }

    /// The tag of the next element, without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut r = Reader::new(&[0x30, 0x02, 0x05, 0x00, 0x04, 0x81, 0x01, 0xaa]);
        assert_eq!(r.next().map(|t| (t.tag, t.value.len())), Ok((0x30, 2)));
        assert_eq!(r.next().map(|t| (t.tag, t.value)), Ok((0x04, &[0xaa][..])));
        assert!(r.is_empty());
    }

    #[test]
    fn reports_truncation_sizes() {
        let mut r = Reader::new(&[0x30, 0x82, 0x01, 0x00, 0x01]);
        assert_eq!(
            r.next().err(),
            Some(TlvError::Truncated {
                needed: 256,
                available: 1
            })
        );
    }
}
