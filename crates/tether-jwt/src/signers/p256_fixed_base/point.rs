//! Points of P-256 for the fixed-base multiplication: projective accumulators and
//! affine table entries, added with the complete mixed formula of Renes, Costello and
//! Batina ("Complete addition formulas for prime order elliptic curves", 2015,
//! algorithm 5, a = −3). Complete: no special case for the identity or for doubling,
//! so the sequence of field operations never depends on the secret scalar.

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

    /// The affine x coordinate, big-endian; `None` for the identity. The one inversion
    /// is `p256`'s (constant-time safegcd, faster than a Fermat power here).
    pub(super) fn affine_x(&self) -> Option<[u8; 32]> {
        let (x, z_inv) = (to_p256(self.x)?, inverse(self.z)?);
        Some((x * z_inv).to_repr().into())
    }

    /// The affine coordinates, big-endian (for tests against another implementation).
    #[cfg(test)]
    pub(super) fn affine_xy(&self) -> Option<([u8; 32], [u8; 32])> {
        let (x, y, z_inv) = (to_p256(self.x)?, to_p256(self.y)?, inverse(self.z)?);
        Some(((x * z_inv).to_repr().into(), (y * z_inv).to_repr().into()))
    }
}

type P256Fe = <NistP256 as FieldArithmetic>::FieldElement;

fn to_p256(value: Fe) -> Option<P256Fe> {
    P256Fe::from_repr(value.to_bytes().into()).into()
}

fn inverse(value: Fe) -> Option<P256Fe> {
    to_p256(value)?.invert().into()
}
