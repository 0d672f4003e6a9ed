//! The prime field GF(2^127 − 1), where self-mask seeds are Shamir-shared.
//!
//! Shamir's scheme needs a field with more elements than there are members and at least as many
//! as secrets: a 127-bit seed fits, and 2^127 − 1 is a Mersenne prime, so reduction is a shift and
//! an add on `u128` with no big-integer crate. Addition, subtraction and multiplication run in
//! constant time (no branch or table index depends on a value), because shares and seeds are
//! secret; inversion is only applied to public x-coordinates and may take variable time.

use crate::disclosure::discrete_gaussian::UniformSource;
use std::fmt;
use std::ops::{Add, Mul, Neg, Sub};
use zeroize::Zeroize;

/// p = 2^127 − 1.
pub const MODULUS: u128 = (1 << 127) - 1;

/// An element of GF(2^127 − 1), always held reduced (`0 ≤ value < p`).
#[derive(Clone, Copy, PartialEq, Eq, Default, Zeroize)]
pub struct FieldElement(u128);

/// Sixteen bytes that are not the encoding of a field element (a value `≥ p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("16 bytes that encode a value of 2^127 − 1 or more, not a field element")]
pub struct NotAFieldElement;

/// `x` when `x < p`, else `x − p`, for `x < 2p`, without a branch on `x`.
fn reduce_once(x: u128) -> u128 {
    let t = x.wrapping_sub(MODULUS);
    // The top bit of t is set exactly when x < p (the subtraction wrapped).
    let keep_x = 0u128.wrapping_sub(t >> 127);
    (x & keep_x) | (t & !keep_x)
}

impl FieldElement {
    /// Zero.
    pub const ZERO: FieldElement = FieldElement(0);
    /// One.
    pub const ONE: FieldElement = FieldElement(1);

    /// The element `value`, if it is below p.
    pub fn new(value: u128) -> Option<Self> {
        (value < MODULUS).then_some(Self(value))
    }

    /// A small integer, e.g. a Shamir x-coordinate.
    pub fn from_u64(value: u64) -> Self {
        Self(u128::from(value))
    }

    /// A uniformly random element (rejection sampling inside `rng`, so no value is favoured:
    /// biased coefficients are what broke the `sharks` crate, RUSTSEC-2024-0398).
    pub fn random(rng: &mut impl UniformSource) -> Self {
        Self(rng.below(MODULUS))
    }

    /// The value, `0 ≤ value < p`.
    pub fn value(self) -> u128 {
        self.0
    }

    /// Little-endian bytes, the form used on the wire and as key-derivation input.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    /// The element encoded by little-endian `bytes`; non-canonical encodings are refused so
    /// that every element has exactly one encoding.
    pub fn from_bytes(bytes: [u8; 16]) -> Result<Self, NotAFieldElement> {
        Self::new(u128::from_le_bytes(bytes)).ok_or(NotAFieldElement)
    }

    /// `self^exponent` by square-and-multiply (the exponent is public).
    pub fn pow(self, exponent: u128) -> Self {
        let mut result = Self::ONE;
        for bit in (0..128).rev() {
            result = result * result;
            if (exponent >> bit) & 1 == 1 {
                result = result * self;
            }
        }
        result
    }

    /// The multiplicative inverse (Fermat: a^(p−2)); `None` for zero.
    pub fn inverse(self) -> Option<Self> {
        (self.0 != 0).then(|| self.pow(MODULUS - 2))
    }
}

impl Add for FieldElement {
    type Output = Self;

    fn add(self, rhs: Self) -> Self {
        // Both are below 2^127, so the sum fits in u128 and is below 2p.
        Self(reduce_once(self.0 + rhs.0))
    }
}

impl Sub for FieldElement {
    type Output = Self;

    fn sub(self, rhs: Self) -> Self {
        let t = self.0.wrapping_sub(rhs.0);
        // Wrapped (top bit set) exactly when self < rhs; then add p back.
        let borrow = 0u128.wrapping_sub(t >> 127);
        Self(t.wrapping_add(MODULUS & borrow))
    }
}

impl Neg for FieldElement {
    type Output = Self;

    fn neg(self) -> Self {
        Self::ZERO - self
    }
}

impl Mul for FieldElement {
    type Output = Self;

    fn mul(self, rhs: Self) -> Self {
        // 64-bit limbs: a = a1·2^64 + a0 with a1 < 2^63, likewise b.
        let (a0, a1) = (self.0 as u64 as u128, self.0 >> 64);
        let (b0, b1) = (rhs.0 as u64 as u128, rhs.0 >> 64);
        let low = a0 * b0;
        // Each cross product is below 2^127, so their sum fits.
        let mid = a0 * b1 + a1 * b0;
        let high = a1 * b1;
        let (low, carry) = low.overflowing_add(mid << 64);
        let high = high + (mid >> 64) + u128::from(carry);
        // product = high·2^128 + low < 2^254; since 2^127 ≡ 1 (mod p), it is congruent to
        // (product >> 127) + (product mod 2^127), both below 2^127.
        let top = (high << 1) | (low >> 127);
        let sum = (low & MODULUS) + top;
        Self(reduce_once((sum & MODULUS) + (sum >> 127)))
    }
}

impl fmt::Debug for FieldElement {
    /// Elements are shares and seeds: never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FieldElement(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secagg::SeededSource;

    /// a·b by double-and-add: only additions, an independent check of the limb product.
    fn slow_mul(a: FieldElement, b: FieldElement) -> FieldElement {
        let mut acc = FieldElement::ZERO;
        for bit in (0..127).rev() {
            acc = acc + acc;
            if (b.0 >> bit) & 1 == 1 {
                acc = acc + a;
            }
        }
        acc
    }

    fn fe(v: u128) -> FieldElement {
        FieldElement::new(v).unwrap()
    }

    #[test]
    fn arithmetic_wraps_at_the_modulus() {
        let max = fe(MODULUS - 1);
        assert_eq!(max + FieldElement::ONE, FieldElement::ZERO);
        assert_eq!(FieldElement::ZERO - FieldElement::ONE, max);
        assert_eq!(-FieldElement::ONE, max);
        // (p − 1)² = 1.
        assert_eq!(max * max, FieldElement::ONE);
        assert_eq!(fe(1 << 126) * fe(2), FieldElement::ONE);
        assert_eq!(fe(6) * fe(7), fe(42));
    }

    #[test]
    fn products_agree_with_double_and_add_and_inverses_invert() {
        let mut rng = SeededSource::new(1);
        for _ in 0..500 {
            let (a, b) = (
                FieldElement::random(&mut rng),
                FieldElement::random(&mut rng),
            );
            assert_eq!(a * b, slow_mul(a, b));
            assert_eq!(a * b, b * a);
            assert_eq!((a + b) - b, a);
            if let Some(inv) = a.inverse() {
                assert_eq!(a * inv, FieldElement::ONE);
            }
        }
        assert_eq!(FieldElement::ZERO.inverse(), None);
    }

    #[test]
    fn bytes_round_trip_and_non_canonical_encodings_are_refused() {
        let mut rng = SeededSource::new(2);
        let a = FieldElement::random(&mut rng);
        assert_eq!(FieldElement::from_bytes(a.to_bytes()), Ok(a));
        assert_eq!(
            FieldElement::from_bytes(MODULUS.to_le_bytes()),
            Err(NotAFieldElement)
        );
        assert_eq!(
            FieldElement::from_bytes(u128::MAX.to_le_bytes()),
            Err(NotAFieldElement)
        );
        assert_eq!(format!("{a:?}"), "FieldElement(..)");
    }
}
