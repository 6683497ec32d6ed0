//! Byte buffers that connections hand back while they wait, kept per thread for the
//! next connection that reads or writes.
//!
//! An idle connection holds no buffer (see [`tls`](super::tls) and the MQTT driver's
//! read buffer): it gives them back whenever its socket has nothing to read. Given back
//! to the allocator, a busy server paid for that on every message: a few KiB freed and
//! allocated again per read are glibc's slow path (`malloc_consolidate`,
//! `unlink_chunk`), 10–13 % of the server's CPU at saturation. Kept here, a buffer goes
//! from one connection's wait to the next connection's read on the same thread, and the
//! pool stays small: at most [`KEPT`] buffers of at most [`LARGEST`] bytes per thread,
//! whatever the number of connections.

use std::cell::RefCell;

/// Buffers kept per thread.
const KEPT: usize = 32;

/// Larger buffers (a burst's) go back to the allocator.
const LARGEST: usize = 64 * 1024 + 1024;

/// What a buffer made here holds at least: a socket read plus a TLS record's overhead.
const SMALLEST: usize = 4096 + 512;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least `want` bytes (at least [`SMALLEST`]).
pub(crate) fn take(want: usize) -> Vec<u8> {
    let recycled = FREE.try_with(|free| free.borrow_mut().pop()).ok().flatten();
    let mut buf = recycled.unwrap_or_default();
    buf.reserve(want.max(SMALLEST));
    buf
}

/// Keeps `buf` for a later [`take`] on this thread, emptied; a large one, or one past
/// [`KEPT`], is freed.
pub(crate) fn give(mut buf: Vec<u8>) {
    if buf.capacity() < SMALLEST || buf.capacity() > LARGEST {
        return;
    }
    buf.clear();
    // During thread teardown the pool is gone: the buffer is simply freed.
    let _ = FREE.try_with(|free| {
        let mut free = free.borrow_mut();
        if free.len() < KEPT {
            free.push(buf);
        }
    });
}

/// Gives `buf` back and leaves it empty and unallocated.
pub(crate) fn release(buf: &mut Vec<u8>) {
    if buf.capacity() > 0 {
        give(std::mem::take(buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_comes_back_empty_on_the_same_thread() {
        let mut a = take(100);
        assert!(a.capacity() >= SMALLEST);
        a.extend_from_slice(b"secret");
        let ptr = a.as_ptr();
        give(a);
        let b = take(10);
        assert_eq!(b.as_ptr(), ptr, "the same allocation");
        assert!(b.is_empty(), "nothing of its last use is visible");
    }

    #[test]
    fn large_and_surplus_buffers_are_freed() {
        std::thread::spawn(|| {
            give(Vec::with_capacity(LARGEST + 1));
            give(Vec::with_capacity(16));
            assert_eq!(FREE.with(|f| f.borrow().len()), 0);
            for _ in 0..KEPT + 5 {
                give(Vec::with_capacity(SMALLEST));
            }
            assert_eq!(FREE.with(|f| f.borrow().len()), KEPT);
            let mut empty = Vec::new();
            release(&mut empty);
            assert_eq!(FREE.with(|f| f.borrow().len()), KEPT);
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn take_grows_a_small_recycled_buffer_to_what_is_wanted() {
        std::thread::spawn(|| {
            give(Vec::with_capacity(SMALLEST));
            let b = take(40_000);
            assert!(b.capacity() >= 40_000);
            let mut c = take(1);
            c.push(1);
            release(&mut c);
            assert_eq!(c.capacity(), 0, "released: holds nothing");
        })
        .join()
        .expect("thread");
    }
}
