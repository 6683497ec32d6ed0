//! Minting the device's JWT: shared by the MQTT driver (at each connect) and the
//! HTTP client (per request, cached until the refresh plan says to renew).

use tether_jwt::{Claims, MintError, Signer, max_token_len, mint};

/// A token for `aud` issued at `iat` (Unix seconds) that lives `lifetime_secs`;
/// returns it and its `exp`.
///
/// # Errors
/// The signer failed.
pub(crate) fn mint_token(
    signer: &dyn Signer,
    aud: &str,
    iat: u64,
    lifetime_secs: u64,
) -> Result<(String, u64), MintError> {
    let exp = iat + lifetime_secs;
    let mut buf = vec![0u8; max_token_len(signer.algorithm(), aud.len())];
    let n = mint(signer, &Claims { aud, iat, exp }, &mut buf)?;
    buf.truncate(n);
    // Minted tokens are base64url and dots only, so this never replaces anything.
    Ok((String::from_utf8_lossy(&buf).into_owned(), exp))
}
