//! Text into a caller's buffer: always NUL-terminated, never past its end, and
//! counting what the whole text would need so the caller can size the buffer.

use core::fmt;

use crate::status::tether_status::{self, *};

/// A `fmt::Write` over a byte buffer. Once something does not fit, nothing more is
/// written (the text stays a prefix of the full one), but lengths keep counting.
pub(crate) struct Text<'a> {
    buf: &'a mut [u8],
    len: usize,
    needed: usize,
    full: bool,
}

impl<'a> Text<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Text {
            buf,
            len: 0,
            needed: 0,
            full: false,
        }
    }

    /// Bytes written so far (without the NUL).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether something did not fit.
    pub(crate) fn is_full(&self) -> bool {
        self.full
    }

    /// Forgets what was written after `len` (a line that did not fit whole).
    pub(crate) fn cut(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Bytes the whole text needs, NUL included.
    pub(crate) fn needed(&self) -> usize {
        self.needed + 1
    }

    /// NUL-terminates. On overflow the text is emptied (a partial value is useless)
    /// and `*len` gets the size needed; otherwise `*len` gets the length.
    pub(crate) fn finish(mut self, len: &mut usize) -> Result<(), tether_status> {
        if self.full {
            self.len = 0;
            self.terminate();
            *len = self.needed();
            return Err(TETHER_ERR_BUFFER_TOO_SMALL);
        }
        self.terminate();
        *len = self.len;
        Ok(())
    }

    /// Writes the NUL after what fitted.
    pub(crate) fn terminate(&mut self) {
        if let Some(b) = self.buf.get_mut(self.len) {
            *b = 0;
        }
    }
}

impl fmt::Write for Text<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.needed += s.len();
        // One byte stays free for the NUL.
        let fits = self.len + s.len() < self.buf.len();
        if self.full || !fits {
            self.full = true;
            return Ok(());
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}
