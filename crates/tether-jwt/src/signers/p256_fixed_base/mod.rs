//! ES256 signing with a precomputed table of the generator's multiples (feature
//! `p256-table`): the device path, about seven times faster than `p256`'s own signer.
//!
//! An ECDSA signature costs one multiplication k·G of the curve's generator G by the
//! secret nonce k. Done generically that is ~256 point doublings and ~64 additions.
//! With k written in 65 signed base-16 digits, k = Σ dᵢ·16ⁱ (dᵢ ∈ [−8, 8]), and the
//! points j·16ⁱ·G (j = 1..8) stored once in read-only memory, it is 65 additions and no
//! doubling: 64 with the incomplete Jacobian formula (8 multiplications and 3
//! squarings each), the last with the complete one. The table (`table.rs`, 520 affine
//! points, 33,280 bytes) is const data: it lives in flash on a microcontroller and
//! costs no RAM and no start-up work.
//!
//! Everything that touches k runs in constant time: each table row is scanned whole,
//! the digit's sign is applied by a masked negation, and a zero digit still performs
//! its addition and then discards it by a masked select. The two inversions run in
//! variable time, on blinded values (see [`sign`]).
//!
//! The nonce is RFC 6979's, derived exactly as the `ecdsa` crate derives it, so the
//! signatures are byte-identical to `p256::ecdsa::SigningKey`'s (a test holds that).

mod fe;
mod point;
mod table;

use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::subtle::{Choice, ConstantTimeEq};
use p256::elliptic_curve::{Curve, Field, PrimeField};
use p256::{FieldBytes, NistP256, NonZeroScalar, Scalar, U256};
use sha2::{Digest, Sha256};

use self::point::{Affine, Jacobian, Projective};
use self::table::TABLE;

/// Digits of the recoding: 64 nibbles and a carry.
const DIGITS: usize = 65;

/// `k` (big-endian) as signed base-16 digits dᵢ ∈ [−8, 8], k = Σ dᵢ·16ⁱ; branch-free.
fn signed_digits(k: &[u8; 32]) -> [i8; DIGITS] {
    let mut digits = [0i8; DIGITS];
    let mut carry = 0i8;
    for (i, digit) in digits.iter_mut().take(DIGITS - 1).enumerate() {
        let byte = k[31 - i / 2];
        let nibble = if i % 2 == 0 { byte & 0x0f } else { byte >> 4 };
        let d = nibble as i8 + carry; // 0..=16
        carry = (d + 8) >> 4; // 1 when d ≥ 8
        *digit = d - (carry << 4);
    }
    digits[DIGITS - 1] = carry;
    digits
}

/// k·G in constant time, for any k (big-endian, below 2²⁵⁶).
///
/// Rows 0..=63 add into a Jacobian accumulator with the incomplete formula, whose
/// conditions hold there without a check. Before row i the accumulator is a·G with
/// |a| ≤ 8·(16ⁱ − 1)/15 < 16ⁱ, and the row adds b·G with 16ⁱ ≤ |b| ≤ 8·16ⁱ, so
/// |a| + |b| < 9·16⁶³ < n: a ≡ ±b (mod n) would need |a| = |b|, and a·G is the
/// identity only while a = 0, that is while every digit so far was zero. A flag
/// tracks that case and a select stands in for the addition. Row 64 (its digit is
/// 0 or 1, and 16⁶⁴ > n breaks the bound) uses the complete formula.
fn mul_generator(k: &[u8; 32]) -> Projective {
    let digits = signed_digits(k);
    let (low_rows, top_row) = TABLE.split_at(DIGITS - 1);
    // Any point: it is replaced by the first nonzero digit's entry.
    let mut acc = Jacobian::from_affine(&TABLE[0][0]);
    let mut empty = Choice::from(1);
    for (row, &digit) in low_rows.iter().zip(&digits) {
        let (entry, zero) = entry_for(row, digit);
        let sum = acc.add_mixed_distinct(&entry);
        let sum = Jacobian::select(&sum, &Jacobian::from_affine(&entry), empty);
        acc = Jacobian::select(&sum, &acc, zero);
        empty &= zero;
    }
    let acc = Projective::select(&acc.to_projective(), &Projective::IDENTITY, empty);
    let (entry, zero) = entry_for(&top_row[0], digits[DIGITS - 1]);
    Projective::select(&acc.add_mixed(&entry), &acc, zero)
}

/// `digit`·(the row's base point), selected and negated in constant time, and
/// whether `digit` is zero (the entry is then meaningless).
fn entry_for(row: &[Affine], digit: i8) -> (Affine, Choice) {
    // |digit| and its sign by arithmetic, not by a branch the compiler might emit.
    let sign_mask = digit >> 7; // 0 or -1
    let negative = Choice::from((sign_mask & 1) as u8);
    let magnitude = ((digit ^ sign_mask) - sign_mask) as u8;
    let mut entry = Affine::select(row, magnitude);
    entry.negate_if(negative);
    (entry, magnitude.ct_eq(&0))
}

/// Extra input of the second RFC 6979 generator, the one that draws the blinding
/// factors: a stream of its own, so that the nonces stay RFC 6979's.
const BLINDING_STREAM: &[u8] = b"tether: blinding for the inversions";

/// The ES256 signature `r‖s` of `message` under the secret scalar `d`, with RFC 6979's
/// deterministic nonce. `None` only if the nonce generator never yields a usable k,
/// which does not happen (each retry has a chance below 2⁻¹²⁸ of being needed).
///
/// The two inversions (k mod n, and the accumulator's Z mod p) use the fast
/// variable-time algorithm on blinded values: v⁻¹ = b·(v·b)⁻¹ with b secret,
/// uniform in [1, n) and drawn afresh for each inversion, so v·b is uniform whatever
/// v is, and the time the inversion takes says nothing about k. The factors come
/// from a second HMAC-DRBG keyed by d and the message, as the nonce is; no random
/// source is needed.
pub(super) fn sign(d: &NonZeroScalar, message: &[u8]) -> Option<[u8; 64]> {
    let digest = Sha256::digest(message);
    let z = <Scalar as Reduce<FieldBytes>>::reduce(&digest);
    let order: &U256 = &NistP256::ORDER;
    let secret = d.to_repr();
    let mut nonces = rfc6979::KGenerator::<Sha256, U256>::new(&secret, &digest, &[], order);
    let mut blinds =
        rfc6979::KGenerator::<Sha256, U256>::new(&secret, &digest, BLINDING_STREAM, order);
    for _ in 0..64 {
        let mut k_bytes = FieldBytes::default();
        nonces.fill_next_k(&mut k_bytes);
        let Some(k) = Option::<NonZeroScalar>::from(NonZeroScalar::from_repr(k_bytes)) else {
            continue;
        };
        // Two factors, one per inversion: no value's timing shares a factor with
        // another's.
        let (mut b_scalar, mut b_field) = (FieldBytes::default(), FieldBytes::default());
        blinds.fill_next_k(&mut b_scalar);
        blinds.fill_next_k(&mut b_field);
        let (Some(b_scalar), Some(b_field)) = (blind_scalar(b_scalar), blind_field(b_field)) else {
            continue;
        };
        let k_be: [u8; 32] = k.to_repr().into();
        let Some(x) = mul_generator(&k_be).affine_x_blinded(&b_field) else {
            continue;
        };
        let r = <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(x));
        let Some(kb_inv) = Option::<Scalar>::from((*k.as_ref() * b_scalar).invert_vartime()) else {
            continue;
        };
        let k_inv = kb_inv * b_scalar;
        let s = k_inv * (z + r * *d.as_ref());
        if bool::from(r.is_zero() | s.is_zero()) {
            continue;
        }
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&r.to_repr());
        out[32..].copy_from_slice(&s.to_repr());
        return Some(out);
    }
    None
}

/// A blinding factor for the inversion mod n: `bytes` in [1, n), as the generator
/// yields (`None` otherwise, which does not happen).
fn blind_scalar(bytes: FieldBytes) -> Option<Scalar> {
    Option::<NonZeroScalar>::from(NonZeroScalar::from_repr(bytes)).map(|b| *b.as_ref())
}

/// A blinding factor for the inversion mod p: `bytes` in [1, n) ⊂ [1, p), so nonzero
/// in GF(p) too.
fn blind_field(bytes: FieldBytes) -> Option<point::P256Fe> {
    blind_scalar(bytes)?;
    Option::<point::P256Fe>::from(point::P256Fe::from_repr(bytes))
}

#[cfg(test)]
mod tests;
