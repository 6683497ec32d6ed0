//! P-256's base field on fiat-crypto's formally verified, constant-time Montgomery
//! arithmetic (64-bit limbs on 64-bit targets, 32-bit on the rest, such as Cortex-M).
//! The `p256` crate's own field type works too but its additions and selects are not
//! inlined across crates: with it the fixed-base multiplication ran 1.7× slower.

use core::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use fiat::fiat_p256_montgomery_domain_field_element as Montgomery;
// `tether_fiat32`: the 32-bit limbs on a 64-bit host, so that CI tests what a
// Cortex-M runs.
#[cfg(any(not(target_pointer_width = "64"), tether_fiat32))]
use fiat_crypto::p256_32 as fiat;
#[cfg(all(target_pointer_width = "64", not(tether_fiat32)))]
use fiat_crypto::p256_64 as fiat;
use p256::elliptic_curve::subtle::Choice;

#[cfg(all(target_pointer_width = "64", not(tether_fiat32)))]
type Word = u64;
#[cfg(any(not(target_pointer_width = "64"), tether_fiat32))]
type Word = u32;
const LIMBS: usize = 32 / core::mem::size_of::<Word>();

/// An element of GF(p), held in Montgomery form x·2²⁵⁶ mod p (the same integer on
/// 32- and 64-bit targets, so one table serves both).
#[derive(Clone, Copy)]
pub(super) struct Fe(Montgomery);

impl Fe {
    pub(super) const ZERO: Fe =
        Fe::from_montgomery_hex("0000000000000000000000000000000000000000000000000000000000000000");
    /// 2²⁵⁶ mod p.
    pub(super) const ONE: Fe =
        Fe::from_montgomery_hex("00000000fffffffeffffffffffffffffffffffff000000000000000000000001");

    /// From the big-endian hex of the Montgomery form, at compile time. Panics (at
    /// compile time, for the constants) on anything but 64 hex digits.
    pub(super) const fn from_montgomery_hex(hex: &str) -> Fe {
        let hex = hex.as_bytes();
        assert!(hex.len() == 64, "64 hex digits");
        let mut words = [0 as Word; LIMBS];
        let digits_per_word = 2 * core::mem::size_of::<Word>();
        let mut i = 0;
        while i < 64 {
            let digit = match hex[i] {
                b'0'..=b'9' => hex[i] - b'0',
                b'a'..=b'f' => hex[i] - b'a' + 10,
                _ => panic!("not a lowercase hex digit"),
            };
            // Digit i (from the most significant) lands in word LIMBS-1 - i/digits_per_word.
            let word = LIMBS - 1 - i / digits_per_word;
            words[word] = (words[word] << 4) | digit as Word;
            i += 1;
        }
        Fe(Montgomery(words))
    }

    pub(super) fn double(&self) -> Fe {
        *self + *self
    }

    /// `self²`: fiat's squaring, cheaper than a multiplication by itself.
    pub(super) fn square(&self) -> Fe {
        let mut out = Montgomery([0; LIMBS]);
        fiat::fiat_p256_square(&mut out, &self.0);
        Fe(out)
    }

    /// `other` where `choice` is set, in constant time.
    pub(super) fn conditional_assign(&mut self, other: &Fe, choice: Choice) {
        let mut out = [0 as Word; LIMBS];
        fiat::fiat_p256_selectznz(&mut out, choice.unwrap_u8(), &self.0.0, &other.0.0);
        self.0.0 = out;
    }

    /// The canonical value, big-endian.
    pub(super) fn to_bytes(self) -> [u8; 32] {
        let mut canonical = fiat::fiat_p256_non_montgomery_domain_field_element([0; LIMBS]);
        fiat::fiat_p256_from_montgomery(&mut canonical, &self.0);
        let mut out = [0u8; 32];
        fiat::fiat_p256_to_bytes(&mut out, &canonical.0);
        out.reverse();
        out
    }

    /// The Montgomery form of the canonical big-endian `value`, big-endian (what the
    /// table generator writes).
    #[cfg(test)]
    pub(super) fn montgomery_bytes(value: &[u8; 32]) -> [u8; 32] {
        let mut little = *value;
        little.reverse();
        let mut words = [0 as Word; LIMBS];
        fiat::fiat_p256_from_bytes(&mut words, &little);
        let mut montgomery = Montgomery([0; LIMBS]);
        let canonical = fiat::fiat_p256_non_montgomery_domain_field_element(words);
        fiat::fiat_p256_to_montgomery(&mut montgomery, &canonical);
        let mut out = [0u8; 32];
        fiat::fiat_p256_to_bytes(&mut out, &montgomery.0);
        out.reverse();
        out
    }
}

/// `Fe op Fe` and `Fe op= Fe` on fiat's function for `op`.
macro_rules! binary_op {
    ($op:ident, $method:ident, $assign:ident, $assign_method:ident, $fiat:ident) => {
        impl $op for Fe {
            type Output = Fe;
            fn $method(self, rhs: Fe) -> Fe {
                let mut out = Montgomery([0; LIMBS]);
                fiat::$fiat(&mut out, &self.0, &rhs.0);
                Fe(out)
            }
        }

        impl $assign for Fe {
            fn $assign_method(&mut self, rhs: Fe) {
                *self = $op::$method(*self, rhs);
            }
        }
    };
}

binary_op!(Add, add, AddAssign, add_assign, fiat_p256_add);
binary_op!(Sub, sub, SubAssign, sub_assign, fiat_p256_sub);
binary_op!(Mul, mul, MulAssign, mul_assign, fiat_p256_mul);

impl Neg for Fe {
    type Output = Fe;
    fn neg(self) -> Fe {
        let mut out = Montgomery([0; LIMBS]);
        fiat::fiat_p256_opp(&mut out, &self.0);
        Fe(out)
    }
}
