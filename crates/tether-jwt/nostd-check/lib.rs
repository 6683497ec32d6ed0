//! A firmware-shaped consumer of tether-jwt: no `std`, no allocator, panic = abort.
#![no_std]

use tether_jwt::signers::P256Signer;
use tether_jwt::{Claims, mint};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// Mints an ES256 token for project "acme" at `iat` with a fixed test key into a
/// stack buffer and returns its length (0 on failure). Called from C in the check.
#[unsafe(no_mangle)]
pub extern "C" fn tether_nostd_mint_len(iat: u64) -> usize {
    let Ok(signer) = P256Signer::from_scalar(&[7u8; 32]) else {
        return 0;
    };
    let mut buf = [0u8; 256];
    let claims = Claims { aud: "acme", iat, exp: iat + 1200 };
    mint(&signer, &claims, &mut buf).unwrap_or(0)
}
