//! The per-connection read buffer: none while a device is quiet, small while it sends a
//! little, larger while it sends a lot.
//!
//! Most connections are idle devices that send a two-byte PINGREQ every few minutes, and
//! a fixed 16 KiB buffer was the largest part of an idle connection's memory. The buffer
//! starts small (a CONNECT with an RS256 token fits), doubles while reads fill it (a large
//! PUBLISH arriving), and halves with each read that used a quarter of it or less. A
//! connection that waits for its socket to become readable releases it
//! ([`ReadBuffer::release`]) and gets one of the same size back for the read, from the
//! thread's [`buffer_pool`], where the buffers of waiting connections go.

use crate::listen::buffer_pool;

/// Fits a CONNECT carrying an RS256 JWT (about 900 bytes) in one read.
const SMALL: usize = 2 * 1024;
/// Past this a large PUBLISH is read in several chunks; the codec reassembles it.
const LARGE: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct ReadBuffer {
    /// Empty while released.
    buf: Vec<u8>,
    /// The size the next read gets.
    size: usize,
    /// Bytes the last read returned, until the next [`ReadBuffer::space`] adapts to it.
    last: Option<usize>,
}

impl Default for ReadBuffer {
    /// Released: nothing is allocated before the first read.
    fn default() -> Self {
        Self {
            buf: Vec::new(),
            size: SMALL,
            last: None,
        }
    }
}

impl ReadBuffer {
    /// Where the next read goes, sized by what the previous read returned.
    pub(crate) fn space(&mut self) -> &mut [u8] {
        if let Some(n) = self.last.take() {
            let len = self.size;
            if n == len && len < LARGE {
                self.size = len.saturating_mul(2).min(LARGE);
            } else if len > SMALL && n <= len / 4 {
                // Halve per small read; a burst of small messages brings it back to
                // SMALL.
                self.size = (len / 2).max(SMALL);
                buffer_pool::release(&mut self.buf);
            }
        }
        if self.buf.capacity() == 0 {
            self.buf = buffer_pool::take(self.size);
        }
        if self.buf.len() != self.size {
            self.buf.resize(self.size, 0);
        }
        &mut self.buf
    }

    /// The `n` bytes a read just placed in [`ReadBuffer::space`].
    pub(crate) fn filled(&mut self, n: usize) -> &[u8] {
        self.last = Some(n);
        self.buf.get(..n).unwrap_or_default()
    }

    /// Returns the memory while the connection waits; the next [`ReadBuffer::space`]
    /// allocates the same size again. Bytes already read were handed on by
    /// [`ReadBuffer::filled`]'s caller, so nothing is lost.
    pub(crate) fn release(&mut self) {
        buffer_pool::release(&mut self.buf);
    }

    /// Bytes held for reads.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_small_and_stays_small_for_small_reads() {
        let mut b = ReadBuffer::default();
        assert_eq!(b.space().len(), SMALL);
        assert_eq!(b.filled(2), &[0, 0]);
        assert_eq!(b.space().len(), SMALL);
    }

    #[test]
    fn grows_while_reads_fill_it_up_to_the_cap() {
        let mut b = ReadBuffer::default();
        let mut sizes = vec![];
        for _ in 0..8 {
            let n = b.space().len();
            sizes.push(n);
            b.filled(n);
        }
        assert_eq!(
            sizes,
            vec![SMALL, 4096, 8192, 16384, 32768, LARGE, LARGE, LARGE]
        );
    }

    #[test]
    fn a_partial_read_keeps_the_size_and_a_small_one_shrinks_it() {
        let mut b = ReadBuffer::default();
        let n = b.space().len();
        b.filled(n);
        let n = b.space().len();
        b.filled(n);
        assert_eq!(b.space().len(), 8192);
        b.filled(5000);
        assert_eq!(b.space().len(), 8192, "a read that did not fill it");
        b.filled(2048);
        assert_eq!(b.space().len(), 4096, "a quarter: halved");
        b.filled(1500);
        assert_eq!(b.space().len(), 4096, "more than a quarter: kept");
        b.filled(10);
        assert_eq!(b.space().len(), SMALL);
        b.filled(10);
        assert_eq!(b.space().len(), SMALL, "never below SMALL");
    }

    #[test]
    fn holds_nothing_before_the_first_read_and_while_released() {
        let mut b = ReadBuffer::default();
        assert_eq!(b.capacity(), 0, "nothing before the first read");
        b.space();
        b.filled(10);
        b.release();
        assert_eq!(b.capacity(), 0, "released");
        assert_eq!(b.space().len(), SMALL);
    }

    #[test]
    fn a_released_buffer_comes_back_at_the_size_reads_grew_it_to() {
        let mut b = ReadBuffer::default();
        let n = b.space().len();
        b.filled(n);
        let n = b.space().len();
        b.filled(n);
        b.release();
        assert_eq!(b.capacity(), 0);
        assert_eq!(
            b.space().len(),
            8192,
            "grown twice, then released: still 8 KiB"
        );
        b.filled(100);
        b.release();
        assert_eq!(
            b.space().len(),
            4096,
            "a small read before the release halves it"
        );
    }

    #[test]
    fn wakes_without_a_read_change_nothing() {
        let mut b = ReadBuffer::default();
        let n = b.space().len();
        b.filled(n);
        assert_eq!(b.space().len(), 4096);
        assert_eq!(b.space().len(), 4096, "no read in between");
    }

    #[test]
    fn the_bytes_returned_are_the_ones_read() {
        let mut b = ReadBuffer::default();
        b.space()[..3].copy_from_slice(b"abc");
        assert_eq!(b.filled(3), b"abc");
        assert_eq!(
            b.filled(SMALL + 1),
            b"",
            "a count past the buffer reads nothing"
        );
    }
}
