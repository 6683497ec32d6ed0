//! The on-disk record formats: pure encode/decode, no I/O.
//!
//! A segment holds records of one format, told apart by how the file starts:
//!
//! * **format 2** (written today, [`v2`]): the file opens with the 8-byte
//!   [`v2::HEADER`] (`FF 't' 'l' 'g' 02 00 00 00`); records carry no topic,
//!   share attribute sets through a small dictionary, and use varints;
//! * **format 1** ([`v1`], read only): no header; every record repeats its topic
//!   and attributes. A format-1 segment is never appended to again.
//!
//! Both frame a record as length, CRC-32 of the body, body: the length is
//! checked against the maximum before anything is allocated, and the CRC
//! before any field is trusted, so a torn or flipped record is detected.

use std::fmt;

pub(crate) mod v1;
pub(crate) mod v2;
pub(crate) mod varint;

/// Bytes of a frame's CRC, after its length in both formats.
pub(crate) const CRC_LEN: usize = 4;

/// The record format of one segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The first format: self-contained records, no file header.
    V1,
    /// The compact format, after [`v2::HEADER`].
    V2,
}

impl Format {
    /// The format of a file that starts with `head` (its first bytes, maybe
    /// fewer than a header). Empty files and cut-off headers are format 2: an
    /// empty file is written in format 2, and a cut header is found torn later.
    pub(crate) fn detect(head: &[u8]) -> Self {
        let n = head.len().min(v2::MAGIC.len());
        if head[..n] == v2::MAGIC[..n] {
            Format::V2
        } else {
            Format::V1
        }
    }

    /// Bytes before the first record.
    pub(crate) fn header_len(self) -> u64 {
        match self {
            Format::V1 => 0,
            Format::V2 => v2::HEADER.len() as u64,
        }
    }
}

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
    /// The body (or the segment header) names a version this build does not know.
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

/// Checks a body length against the limits, before anything is allocated.
pub(crate) fn check_len(len: u64, min_body: usize, max_body: u64) -> Result<(), CorruptReason> {
    if len > max_body {
        return Err(CorruptReason::LengthTooLarge { len, max: max_body });
    }
    if len < min_body as u64 {
        return Err(CorruptReason::LengthTooSmall { len });
    }
    Ok(())
}

/// Checks the CRC of a body before any of its fields is trusted.
pub(crate) fn check_crc(body: &[u8], stored: u32) -> Result<(), CorruptReason> {
    let computed = crc32fast::hash(body);
    if computed == stored {
        Ok(())
    } else {
        Err(CorruptReason::ChecksumMismatch { stored, computed })
    }
}

/// Reads the fields of a body in order; every read is bounds-checked.
pub(crate) struct Cursor<'a> {
    pub buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CorruptReason> {
        if n > self.buf.len() {
            return Err(CorruptReason::Malformed(
                "a field runs past the end of the record",
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], CorruptReason> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CorruptReason> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn varint(&mut self) -> Result<u64, CorruptReason> {
        let (n, used) = varint::get(self.buf)
            .map_err(|_| CorruptReason::Malformed("a number runs past its end"))?;
        self.buf = &self.buf[used..];
        Ok(n)
    }

    /// A varint length, which cannot exceed what is left of the body.
    pub(crate) fn varint_len(&mut self) -> Result<usize, CorruptReason> {
        let n = self.varint()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.buf.len() => Ok(n),
            _ => Err(CorruptReason::Malformed(
                "a field runs past the end of the record",
            )),
        }
    }

    pub(crate) fn string(&mut self, n: usize, what: &'static str) -> Result<String, CorruptReason> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| CorruptReason::Malformed(what))
    }
}

#[cfg(test)]
mod tests;
