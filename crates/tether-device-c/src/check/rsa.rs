//! The RSA public-key operation for RS256 checks, `s^e mod n` on fixed-size numbers
//! (keys up to 4096 bits, no allocator), and what the PKCS#1 v1.5 block it opens to
//! says: the SHA-256 that was signed, another hash, or garbage (another key).

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U4096};

/// Bytes of the largest modulus handled.
const BYTES: usize = 512;

/// What a signature opens to under a public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opened {
    /// PKCS#1 v1.5 padding around this SHA-256 digest.
    Sha256([u8; 32]),
    /// PKCS#1 v1.5 padding around another hash.
    OtherHash(&'static str),
    /// Not PKCS#1 v1.5 padding: this key did not make the signature.
    Garbage,
}

/// Applies the public key `(modulus, exponent)` to `sig`. `None` when it cannot be
/// computed here: a modulus over 4096 bits or even, or `sig` not below the modulus.
pub(crate) fn open(modulus: &[u8], exponent: &[u8], sig: &[u8]) -> Option<Opened> {
    if modulus.len() > BYTES || sig.len() > BYTES {
        return None;
    }
    let mut n_bytes = [0u8; BYTES];
    n_bytes[BYTES - modulus.len()..].copy_from_slice(modulus);
    let mut s_bytes = [0u8; BYTES];
    s_bytes[BYTES - sig.len()..].copy_from_slice(sig);
    // Big-endian arrays of one length compare as the numbers do.
    if s_bytes >= n_bytes {
        return None;
    }
    let n = Odd::new(U4096::from_be_slice(&n_bytes)).into_option()?;
    let params = FixedMontyParams::new_vartime(n);
    let s = FixedMontyForm::new(&U4096::from_be_slice(&s_bytes), &params);
    let mut m = FixedMontyForm::one(&params);
    for byte in exponent {
        for bit in (0..8).rev() {
            m = m.square();
            if byte >> bit & 1 == 1 {
                m *= &s;
            }
        }
    }
    let m = m.retrieve().to_be_bytes();
    let em = m.as_ref().get(BYTES - sig.len()..)?;
    Some(read_block(em))
}

/// Reads `00 01 FF.. 00 DigestInfo`.
fn read_block(em: &[u8]) -> Opened {
    let [0, 1, rest @ ..] = em else {
        return Opened::Garbage;
    };
    let ff = rest.iter().take_while(|&&b| b == 0xff).count();
    if ff < 8 || rest.get(ff) != Some(&0) {
        return Opened::Garbage;
    }
    let t = &rest[ff + 1..];
    if let Some(h) = t.strip_prefix(&tether_jwt::digest_info::SHA256[..]) {
        return h.try_into().map_or(Opened::Garbage, Opened::Sha256);
    }
    tether_jwt::digest_info::OTHERS
        .iter()
        .find(|(prefix, _)| t.starts_with(prefix))
        .map_or(Opened::Garbage, |(_, name)| Opened::OtherHash(name))
}
