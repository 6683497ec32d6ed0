//! Field encoders. Lengths are checked by the `*_len` functions before anything is
//! written, so a failed encode leaves the output untouched.

use alloc::vec::Vec;

use crate::error::EncodeError;

/// The wire size of a length-prefixed field (string or binary).
pub(crate) fn prefixed_len(field: &'static str, bytes: &[u8]) -> Result<usize, EncodeError> {
    if bytes.len() > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong {
            field,
            len: bytes.len(),
        });
    }
    Ok(2 + bytes.len())
}

pub(crate) fn u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends a length-prefixed field already checked by [`prefixed_len`].
pub(crate) fn prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    // Checked by `prefixed_len`; saturate rather than wrap if a caller forgot.
    u16(out, u16::try_from(bytes.len()).unwrap_or(u16::MAX));
    out.extend_from_slice(bytes);
}
