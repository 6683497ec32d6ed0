//! `libtether_device.a`: every `tether_*` function of `tether-device-c`, with no
//! `std` and no allocator. A panic (a bug: no input causes one) traps at once, so
//! nothing unwinds into C: SIGILL on a host, a HardFault on a Cortex-M.
#![no_std]

pub use tether_device_c::*;

/// The precompiled `core` refers to this unwinding hook from its unwind tables. With
/// `panic = "abort"` nothing unwinds, so it is never called; defining it lets the
/// library link without `--gc-sections` (IAR, Keil, a plain `gcc`).
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    trap()
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn trap() -> ! {
    // SAFETY: `ud2` only raises an invalid-opcode exception.
    unsafe { core::arch::asm!("ud2", options(noreturn)) }
}

#[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
fn trap() -> ! {
    // SAFETY: `udf` only raises an undefined-instruction exception.
    unsafe { core::arch::asm!("udf #0", options(noreturn)) }
}

#[cfg(not(any(
    target_arch = "x86",
    target_arch = "x86_64",
    target_arch = "arm",
    target_arch = "aarch64"
)))]
fn trap() -> ! {
    loop {}
}
