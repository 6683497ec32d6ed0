//! Where raw pointers from C become Rust references, and nowhere else. Every helper
//! treats NULL as absent, so the exported functions can answer
//! `TETHER_ERR_NULL_POINTER` instead of crashing.

#![allow(unsafe_code, reason = "the C ABI hands us raw pointers")]

use core::ffi::c_char;

use crate::sizes::TETHER_MAX_PROJECT_ID_LEN;
use crate::status::tether_status;

/// `len` bytes at `ptr`, or `None` if `ptr` is NULL.
///
/// # Safety
/// A non-NULL `ptr` must be valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Option<&'a [u8]> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the caller's contract.
    Some(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// `cap` writable bytes at `ptr`, or `None` if `ptr` is NULL.
///
/// # Safety
/// A non-NULL `ptr` must be valid for writes of `cap` bytes for `'a`, and not alias
/// any other argument.
pub(crate) unsafe fn bytes_mut<'a>(ptr: *mut u8, cap: usize) -> Option<&'a mut [u8]> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the caller's contract.
    Some(unsafe { core::slice::from_raw_parts_mut(ptr, cap) })
}

/// The value at `ptr`, or `None` if NULL.
///
/// # Safety
/// A non-NULL `ptr` must point to a valid, initialised `T` for `'a`.
pub(crate) unsafe fn get<'a, T>(ptr: *const T) -> Option<&'a T> {
    // SAFETY: the caller's contract.
    unsafe { ptr.as_ref() }
}

/// The value at `ptr` for writing, or `None` if NULL.
///
/// # Safety
/// A non-NULL `ptr` must be valid for writes of a `T` for `'a`.
pub(crate) unsafe fn get_mut<'a, T>(ptr: *mut T) -> Option<&'a mut T> {
    // SAFETY: the caller's contract.
    unsafe { ptr.as_mut() }
}

/// Stores `value` at `ptr` unless it is NULL (optional out-parameters).
///
/// # Safety
/// A non-NULL `ptr` must be valid for writes of a `T`.
pub(crate) unsafe fn put<T>(ptr: *mut T, value: T) {
    // SAFETY: the caller's contract.
    if let Some(slot) = unsafe { ptr.as_mut() } {
        *slot = value;
    }
}

/// A NUL-terminated project id, read at most one byte past the longest allowed.
///
/// # Safety
/// A non-NULL `ptr` must point to a NUL-terminated string or to at least
/// `TETHER_MAX_PROJECT_ID_LEN + 1` readable bytes.
pub(crate) unsafe fn project_id<'a>(ptr: *const c_char) -> Result<&'a str, tether_status> {
    if ptr.is_null() {
        return Err(tether_status::TETHER_ERR_NULL_POINTER);
    }
    let mut len = 0;
    // SAFETY: every byte read is at or before the terminating NUL, which the caller
    // promises, and never past TETHER_MAX_PROJECT_ID_LEN + 1 bytes.
    while len <= TETHER_MAX_PROJECT_ID_LEN && unsafe { ptr.add(len).read() } != 0 {
        len += 1;
    }
    // SAFETY: the `len` bytes before the NUL were just read.
    let bytes = unsafe { core::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    crate::mint::valid_project_id(bytes).ok_or(tether_status::TETHER_ERR_PROJECT_ID)
}

/// A NUL-terminated string of at most `max` bytes (its bytes, without the NUL), read
/// at most one byte past `max`; a longer one is `TETHER_ERR_BAD_ARGUMENT`.
///
/// # Safety
/// A non-NULL `ptr` must point to a NUL-terminated string or to at least `max + 1`
/// readable bytes.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, max: usize) -> Result<&'a [u8], tether_status> {
    if ptr.is_null() {
        return Err(tether_status::TETHER_ERR_NULL_POINTER);
    }
    let mut len = 0;
    // SAFETY: every byte read is at or before the terminating NUL, which the caller
    // promises, and never past `max + 1` bytes.
    while len <= max && unsafe { ptr.add(len).read() } != 0 {
        len += 1;
    }
    if len > max {
        return Err(tether_status::TETHER_ERR_BAD_ARGUMENT);
    }
    // SAFETY: the `len` bytes before the NUL were just read.
    Ok(unsafe { core::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}
