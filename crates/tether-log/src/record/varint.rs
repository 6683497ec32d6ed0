//! LEB128 varints (7 bits a byte, low bits first) and zigzag for signed
//! numbers, so small values take one byte whatever their sign.

/// Most bytes a u64 varint takes.
pub(crate) const MAX_LEN: usize = 10;

/// Appends `n` as a varint.
pub(crate) fn put(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Bytes `n` takes as a varint.
pub(crate) fn len(n: u64) -> usize {
    let bits = 64 - (n | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// What a decode stopped on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarintError {
    /// The input ends inside the varint.
    Truncated,
    /// More than ten bytes, or a value past u64::MAX.
    Overlong,
}

/// Decodes a varint from the start of `buf`: (value, bytes taken).
pub(crate) fn get(buf: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut n: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(MAX_LEN) {
        let low = u64::from(b & 0x7f);
        // The tenth byte may carry only the top bit of a u64.
        if i == MAX_LEN - 1 && low > 1 {
            return Err(VarintError::Overlong);
        }
        n |= low << (7 * i);
        if b & 0x80 == 0 {
            return Ok((n, i + 1));
        }
    }
    if buf.len() >= MAX_LEN {
        Err(VarintError::Overlong)
    } else {
        Err(VarintError::Truncated)
    }
}

/// Signed to unsigned: 0, -1, 1, -2, ... become 0, 1, 2, 3, ...
pub(crate) fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub(crate) fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_width() {
        let mut values = vec![0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        values.extend((0..64).map(|s| 1u64 << s));
        for n in values {
            let mut out = vec![];
            put(&mut out, n);
            assert_eq!(out.len(), len(n), "{n}");
            assert_eq!(get(&out), Ok((n, out.len())), "{n}");
            assert_eq!(get(&out[..out.len() - 1]), Err(VarintError::Truncated));
        }
        for n in [0, -1, 1, i64::MIN, i64::MAX, -1_764_000_000_000_000] {
            assert_eq!(unzigzag(zigzag(n)), n);
        }
        assert_eq!(zigzag(-1), 1);
    }

    #[test]
    fn overlong_input_is_refused() {
        assert_eq!(get(&[0xff; 11]), Err(VarintError::Overlong));
        let mut past_max = vec![0xff; 9];
        past_max.push(0x02);
        assert_eq!(get(&past_max), Err(VarintError::Overlong));
    }
}
