//! Points of P-256 for the fixed-base multiplication: affine table entries, and two
//! accumulators.
//!
//! - [`Jacobian`] adds with the incomplete mixed formula (8 multiplications, 3
//!   squarings, about half the field operations of the complete one). It is wrong
//!   for the identity and for `P + ±P`; the caller rules both out (see
//!   `mul_generator`), without a branch on the scalar.
//! - [`Projective`] adds with the complete mixed formula of Renes, Costello and
//!   Batina ("Complete addition formulas for prime order elliptic curves", 2015,
//!   algorithm 5, a = −3): no special case for the identity or for doubling, for the
//!   one addition where the incomplete formula's conditions cannot be shown.

use p256::NistP256;
use p256::elliptic_curve::PrimeField;
use p256::elliptic_curve::hazmat::FieldArithmetic;
use p256::elliptic_curve::subtle::{Choice, ConstantTimeEq};

use super::fe::Fe;

/// The curve's `b` (FIPS 186-4, D.1.2.3: 5ac635d8…27d2604b) in Montgomery form.
pub(super) const B: Fe =
    Fe::from_montgomery_hex("dc30061d04874834e5a220abf7212ed6acf005cd78843090d89cdf6229c4bddf");

/// A point other than the identity, as the table stores it.
#[derive(Clone, Copy)]
pub(super) struct Affine {
    pub(super) x: Fe,
    pub(super) y: Fe,
}

impl Affine {
    /// From the big-endian hex of the coordinates' Montgomery forms, at compile time.
    pub(super) const fn from_montgomery_hex(x: &str, y: &str) -> Self {
        Affine {
            x: Fe::from_montgomery_hex(x),
            y: Fe::from_montgomery_hex(y),
        }
    }

    /// `-self` when `negate` is set, in constant time.
    pub(super) fn negate_if(&mut self, negate: Choice) {
        let minus_y = -self.y;
        self.y.conditional_assign(&minus_y, negate);
    }

    /// `entries[index - 1]` for `index` in 1..=len, scanning every entry so that the
    /// memory access pattern does not depend on `index`. Any other index gives
    /// `entries[0]`.
    pub(super) fn select(entries: &[Affine], index: u8) -> Affine {
        let mut out = entries[0];
        for (i, entry) in entries.iter().enumerate().skip(1) {
            let hit = index.ct_eq(&(i as u8 + 1));
            out.x.conditional_assign(&entry.x, hit);
            out.y.conditional_assign(&entry.y, hit);
        }
        out
    }
}

/// A point in Jacobian coordinates (X:Y:Z), x = X/Z², y = Y/Z³; never the identity.
#[derive(Clone, Copy)]
pub(super) struct Jacobian {
    x: Fe,
    y: Fe,
    z: Fe,
}

impl Jacobian {
    pub(super) fn from_affine(point: &Affine) -> Jacobian {
        Jacobian {
            x: point.x,
            y: point.y,
            z: Fe::ONE,
        }
    }

    /// `self + other` when `self ≠ ±other`; any other input gives a meaningless
    /// point (no panic, no branch). "madd-2007-bl" of the Explicit-Formulas
    /// Database, with Z₃ = 2·Z₁·H.
    pub(super) fn add_mixed_distinct(&self, other: &Affine) -> Jacobian {
        let z1z1 = self.z.square();
        let u2 = other.x * z1z1;
        let s2 = other.y * self.z * z1z1;
        let h = u2 - self.x;
        let i = h.square().double().double();
        let j = h * i;
        let r = (s2 - self.y).double();
        let v = self.x * i;
        let x3 = r.square() - j - v.double();
        let y3 = r * (v - x3) - (self.y * j).double();
        let z3 = (self.z * h).double();
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// `a` where `choice` is unset, `b` where it is set, in constant time.
    pub(super) fn select(a: &Jacobian, b: &Jacobian, choice: Choice) -> Jacobian {
        let mut out = *a;
        out.x.conditional_assign(&b.x, choice);
        out.y.conditional_assign(&b.y, choice);
        out.z.conditional_assign(&b.z, choice);
        out
    }

    /// The same point in projective coordinates: (X·Z : Y : Z³).
    pub(super) fn to_projective(self) -> Projective {
        Projective {
            x: self.x * self.z,
            y: self.y,
            z: self.z.square() * self.z,
        }
    }
}

/// A point in projective coordinates (X:Y:Z), x = X/Z, y = Y/Z; the identity is (0:1:0).
#[derive(Clone, Copy)]
pub(super) struct Projective {
    x: Fe,
    y: Fe,
    z: Fe,
}

impl Projective {
    pub(super) const IDENTITY: Projective = Projective {
        x: Fe::ZERO,
        y: Fe::ONE,
        z: Fe::ZERO,
    };

    /// `self + other`, for any `self` (the identity included) and any affine `other`.
    pub(super) fn add_mixed(&self, other: &Affine) -> Projective {
        let (x1, y1, z1) = (self.x, self.y, self.z);
        let (x2, y2) = (other.x, other.y);

        let mut t0 = x1 * x2;
        let mut t1 = y1 * y2;
        let mut t3 = (x2 + y2) * (x1 + y1);
        let mut t4 = t0 + t1;
        t3 -= t4;
        t4 = y2 * z1 + y1;
        let mut y3 = x2 * z1 + x1;
        let mut z3 = B * z1;
        let mut x3 = y3 - z3;
        z3 = x3.double();
        x3 += z3;
        z3 = t1 - x3;
        x3 += t1;
        y3 *= B;
        t1 = z1.double();
        let t2 = t1 + z1;
        y3 -= t2;
        y3 -= t0;
        t1 = y3.double();
        y3 += t1;
        t1 = t0.double();
        t0 += t1;
        t0 -= t2;
        t1 = t4 * y3;
        let t2 = t0 * y3;
        y3 = x3 * z3;
        y3 += t2;
        x3 *= t3;
        x3 -= t1;
        z3 *= t4;
        t1 = t3 * t0;
        z3 += t1;

        Projective {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// `a` where `choice` is unset, `b` where it is set, in constant time.
    pub(super) fn select(a: &Projective, b: &Projective, choice: Choice) -> Projective {
        let mut out = *a;
        out.x.conditional_assign(&b.x, choice);
        out.y.conditional_assign(&b.y, choice);
        out.z.conditional_assign(&b.z, choice);
        out
    }

    /// The affine x coordinate, big-endian; `None` for the identity. Z is inverted
    /// by the fast variable-time algorithm, blinded: x = X·b·(Z·b)⁻¹ with `blind` a
    /// secret nonzero b, so that the inversion's time says nothing about Z (the
    /// projective coordinates of k·G carry information about k).
    pub(super) fn affine_x_blinded(&self, blind: &P256Fe) -> Option<[u8; 32]> {
        let (x, z) = (to_p256(self.x)?, to_p256(self.z)?);
        let zb_inv = Option::<P256Fe>::from((z * blind).invert_vartime())?;
        Some((x * blind * zb_inv).to_repr().into())
    }

    /// The affine coordinates, big-endian (for tests against another implementation).
    #[cfg(test)]
    pub(super) fn affine_xy(&self) -> Option<([u8; 32], [u8; 32])> {
        let (x, y, z_inv) = (to_p256(self.x)?, to_p256(self.y)?, inverse(self.z)?);
        Some(((x * z_inv).to_repr().into(), (y * z_inv).to_repr().into()))
    }
}

pub(super) type P256Fe = <NistP256 as FieldArithmetic>::FieldElement;

fn to_p256(value: Fe) -> Option<P256Fe> {
    P256Fe::from_repr(value.to_bytes().into()).into()
}

#[cfg(test)]
fn inverse(value: Fe) -> Option<P256Fe> {
    to_p256(value)?.invert().into()
}
