//! Shamir t-of-n secret sharing over GF(2^127 − 1).
//!
//! Each node shares its self-mask seed among the cohort so that the gateway can remove the self
//! mask of a survivor only when at least t members agree it survived, and never for a member
//! they call dropped (double masking). The member at position p (0-based, cohort order) holds
//! the share at x = p + 1; the secret is the polynomial's value at 0. Our own ~100 lines instead
//! of a crate: `sharks` is unmaintained with biased coefficients (RUSTSEC-2024-0398), `blahaj`
//! stops at 255 shares, and this is small enough to test completely.

use super::field::FieldElement;
use crate::disclosure::discrete_gaussian::UniformSource;
use std::collections::BTreeSet;
use zeroize::Zeroize;

/// One share: the polynomial's value `y` at `x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Zeroize)]
pub struct Share {
    /// The x-coordinate, 1 ..= n (never 0, where the secret is).
    pub x: u32,
    /// f(x).
    pub y: FieldElement,
}

/// Why a secret cannot be split or recovered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShamirError {
    /// A threshold of zero shares nothing.
    #[error("the threshold must be at least 1")]
    ZeroThreshold,
    /// More shares would be needed than exist.
    #[error("a threshold of {threshold} cannot be met by {shares} shares")]
    ThresholdAboveShares {
        /// Threshold asked for.
        threshold: usize,
        /// Shares to make.
        shares: usize,
    },
    /// x-coordinates are u32.
    #[error("{0} shares are more than x-coordinates 1..=2^32−1 can name")]
    TooManyShares(usize),
    /// Fewer than t shares say nothing about the secret.
    #[error("{have} shares given, {need} needed")]
    TooFewShares {
        /// Shares given.
        have: usize,
        /// The threshold.
        need: usize,
    },
    /// Two shares claim the same x (one of them is not a share of this polynomial).
    #[error("two shares at x = {0}")]
    DuplicateX(u32),
    /// A share at x = 0 would be the secret itself.
    #[error("a share at x = 0")]
    ZeroX,
}

/// Splits `secret` into `shares` shares at x = 1 ..= `shares`, any `threshold` of which recover
/// it. The polynomial's other coefficients are uniform from `rng` and zeroized afterwards.
pub fn split(
    secret: FieldElement,
    threshold: usize,
    shares: usize,
    rng: &mut impl UniformSource,
) -> Result<Vec<Share>, ShamirError> {
    if threshold == 0 {
        return Err(ShamirError::ZeroThreshold);
    }
    if threshold > shares {
        return Err(ShamirError::ThresholdAboveShares { threshold, shares });
    }
    let last = u32::try_from(shares).map_err(|_| ShamirError::TooManyShares(shares))?;
    // f(x) = secret + c1·x + … + c_{t−1}·x^{t−1}.
    let mut coefficients: Vec<FieldElement> = std::iter::once(secret)
        .chain((1..threshold).map(|_| FieldElement::random(rng)))
        .collect();
    let out = (1..=last)
        .map(|x| {
            let at = FieldElement::from_u64(u64::from(x));
            let y = coefficients
                .iter()
                .rev()
                .fold(FieldElement::ZERO, |acc, c| acc * at + *c);
            Share { x, y }
        })
        .collect();
    coefficients.zeroize();
    Ok(out)
}

/// The secret from any `threshold` shares (Lagrange interpolation at 0). When more are given,
/// the first `threshold` are used; shares of one polynomial agree, so which does not matter.
pub fn reconstruct(shares: &[Share], threshold: usize) -> Result<FieldElement, ShamirError> {
    if threshold == 0 {
        return Err(ShamirError::ZeroThreshold);
    }
    if shares.len() < threshold {
        return Err(ShamirError::TooFewShares {
            have: shares.len(),
            need: threshold,
        });
    }
    let used = &shares[..threshold];
    let xs: Vec<u32> = used.iter().map(|s| s.x).collect();
    Ok(combine(used, &lagrange_at_zero(&xs)?))
}

/// The Lagrange coefficients λ_i at 0 for shares at `xs`: the secret is Σ λ_i·y_i. They depend
/// only on the x-coordinates, so a gateway opening many seeds from the same holders computes
/// them once.
pub fn lagrange_at_zero(xs: &[u32]) -> Result<Vec<FieldElement>, ShamirError> {
    let mut seen = BTreeSet::new();
    for x in xs {
        if *x == 0 {
            return Err(ShamirError::ZeroX);
        }
        if !seen.insert(*x) {
            return Err(ShamirError::DuplicateX(*x));
        }
    }
    let xs: Vec<FieldElement> = xs
        .iter()
        .map(|x| FieldElement::from_u64(u64::from(*x)))
        .collect();
    // λ_i = Π_{j≠i} x_j / (x_j − x_i) = (Π_j x_j) / (x_i · Π_{j≠i} (x_j − x_i)).
    let product = xs.iter().fold(FieldElement::ONE, |acc, x| acc * *x);
    let denominators: Vec<FieldElement> = xs
        .iter()
        .enumerate()
        .map(|(i, xi)| {
            xs.iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .fold(*xi, |acc, (_, xj)| acc * (*xj - *xi))
        })
        .collect();
    Ok(batch_inverse(&denominators)
        .into_iter()
        .map(|inverse| product * inverse)
        .collect())
}

/// Σ λ_i·y_i over `shares` and their coefficients from [`lagrange_at_zero`].
pub fn combine(shares: &[Share], coefficients: &[FieldElement]) -> FieldElement {
    shares
        .iter()
        .zip(coefficients)
        .fold(FieldElement::ZERO, |acc, (share, l)| acc + share.y * *l)
}

/// Inverses of non-zero elements with one field inversion (Montgomery's trick).
fn batch_inverse(values: &[FieldElement]) -> Vec<FieldElement> {
    let mut prefix = Vec::with_capacity(values.len());
    let mut acc = FieldElement::ONE;
    for v in values {
        prefix.push(acc);
        acc = acc * *v;
    }
    // The x-coordinates are distinct and non-zero, so every value and the product are non-zero.
    let mut inverse = acc.inverse().unwrap_or(FieldElement::ZERO);
    let mut out = vec![FieldElement::ZERO; values.len()];
    for i in (0..values.len()).rev() {
        out[i] = inverse * prefix[i];
        inverse = inverse * values[i];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secagg::SeededSource;

    #[test]
    fn any_threshold_subset_recovers_the_secret() {
        let mut rng = SeededSource::new(3);
        let secret = FieldElement::random(&mut rng);
        let shares = split(secret, 3, 5, &mut rng).unwrap();
        assert_eq!(
            shares.iter().map(|s| s.x).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    let subset = [shares[c], shares[a], shares[b]];
                    assert_eq!(reconstruct(&subset, 3), Ok(secret), "{a} {b} {c}");
                }
            }
        }
        assert_eq!(reconstruct(&shares, 3), Ok(secret));
    }

    #[test]
    fn fewer_than_threshold_shares_are_refused_and_say_nothing() {
        let mut rng = SeededSource::new(4);
        let secret = FieldElement::random(&mut rng);
        let shares = split(secret, 4, 6, &mut rng).unwrap();
        assert_eq!(
            reconstruct(&shares[..3], 4),
            Err(ShamirError::TooFewShares { have: 3, need: 4 })
        );
        // Interpolating 3 shares of a degree-3 polynomial as if it were degree 2 misses.
        assert_ne!(reconstruct(&shares[..3], 3), Ok(secret));
    }

    #[test]
    fn malformed_share_sets_are_named() {
        let mut rng = SeededSource::new(5);
        let shares = split(FieldElement::ONE, 2, 3, &mut rng).unwrap();
        assert_eq!(
            reconstruct(&[shares[0], shares[0]], 2),
            Err(ShamirError::DuplicateX(1))
        );
        let zero = Share {
            x: 0,
            y: FieldElement::ONE,
        };
        assert_eq!(reconstruct(&[zero, shares[1]], 2), Err(ShamirError::ZeroX));
        assert_eq!(
            split(FieldElement::ONE, 4, 3, &mut rng),
            Err(ShamirError::ThresholdAboveShares {
                threshold: 4,
                shares: 3
            })
        );
        assert_eq!(
            split(FieldElement::ONE, 0, 3, &mut rng),
            Err(ShamirError::ZeroThreshold)
        );
    }

    #[test]
    fn one_of_one_is_the_secret_itself() {
        let mut rng = SeededSource::new(6);
        let secret = FieldElement::random(&mut rng);
        let shares = split(secret, 1, 4, &mut rng).unwrap();
        assert!(shares.iter().all(|s| s.y == secret));
    }
}
